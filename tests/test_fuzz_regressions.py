"""Fuzzer findings and the seed corpus, replayed as regression tests.

Each file in ``fuzz/crashes/`` (named ``<target>--<what>.bin``) is an input
that once broke an invariant of the fuzz harness (``fuzz/harness.py``), and
each file in ``fuzz/corpus/<target>/`` a seed of the fuzzer. Here they go
through the same decoder and the same differential check as under the
fuzzer, on the normal build (the active backend against ``cpool.slow``),
without atheris: the harness decodes through its own ``fuzz/provider.py``.
See fuzz/README.md.
"""

from __future__ import annotations

import glob
import inspect
import os
import sys

import numpy as np
import pytest

import cpool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = os.path.join(ROOT, "fuzz")
if not os.path.isfile(os.path.join(FUZZ, "harness.py")):
    pytest.skip("no fuzz/ folder next to the tests (not a checkout)", allow_module_level=True)
sys.path.insert(0, FUZZ)
import harness  # noqa: E402

CRASHES = sorted(glob.glob(os.path.join(FUZZ, "crashes", "*.bin")))
SEEDS = sorted(glob.glob(os.path.join(FUZZ, "corpus", "*", "*")))


def _target_of_crash(path):
    name = os.path.basename(path)
    assert "--" in name, f"{name}: crash files are named <target>--<what>.bin"
    target = name.split("--", 1)[0]
    assert target in harness.TARGETS or target == "all", f"{name}: unknown target {target!r}"
    return target


def _read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("path", CRASHES, ids=os.path.basename)
def test_crash_reproducer(path):
    harness.run_one(_target_of_crash(path), _read(path), cpool)


@pytest.mark.parametrize("target", harness.TARGET_NAMES)
def test_seed_corpus(target):
    files = [p for p in SEEDS if os.path.basename(os.path.dirname(p)) == target]
    assert files, f"fuzz/corpus/{target}/ holds no seeds"
    for path in files:
        try:
            harness.run_one(target, _read(path), cpool)
        except Exception as exc:  # name the file
            raise AssertionError(f"{os.path.relpath(path, ROOT)}: {exc}") from exc


def test_decoding_needs_no_atheris_and_is_total():
    # Every byte string decodes (an exhausted input gives the plain choices),
    # the same way each time, and the harness does not import atheris.
    assert "atheris" not in vars(harness)
    for data in (b"", b"\x00", b"\xff" * 7, bytes(range(256))):
        for target in harness.TARGET_NAMES + ["all"]:
            assert harness.describe(target, data) == harness.describe(target, data)
            harness.run_one(target, data, cpool)


# ---------------------------------------------------------------------------
# The findings above, each as a readable test as well.

def _nan(dtype, payload, negative=False):
    word = np.dtype(f"u{np.dtype(dtype).itemsize}")
    bits = (0x7FC00000 if word.itemsize == 4 else 0x7FF8000000000000) | payload
    if negative:
        bits |= 1 << (8 * word.itemsize - 1)
    return np.array([bits], word).view(dtype)[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend_name", ["active", "slow"])
def test_backward_keeps_the_first_nan_of_a_cell(dtype, backend_name):
    # Several gradients go to one input cell: PyTorch computes acc = acc + g,
    # which keeps the first NaN (its payload, quieted) once the sum is NaN.
    # cpool.slow's np.add.at kept the last one.
    m = cpool if backend_name == "active" else cpool.slow
    word = np.dtype(f"u{np.dtype(dtype).itemsize}")
    go = np.zeros((1, 1, 2, 2), dtype)
    go[0, 0, 0, 0] = 1.0
    go[0, 0, 0, 1] = _nan(dtype, 1)
    go[0, 0, 1, 0] = _nan(dtype, 2, negative=True)
    go[0, 0, 1, 1] = 3.0
    idx = np.zeros((1, 1, 2, 2), np.int64)
    got = m.max_pool2d_backward(go, idx, (1, 1, 3, 3))
    assert got.view(word)[0, 0, 0, 0] == go.view(word)[0, 0, 0, 1]
    # a sum that turned NaN (inf + -inf) before the first NaN gradient keeps its own NaN
    go[0, 0, 0, 0], go[0, 0, 0, 1] = np.inf, -np.inf
    with np.errstate(invalid="ignore"):
        want = np.array(np.inf, dtype) + np.array(-np.inf, dtype)
        got = m.max_pool2d_backward(go, idx, (1, 1, 3, 3))
    assert got.view(word)[0, 0, 0, 0] == np.array(want).view(word)


def test_backward_nan_payloads_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for trial in range(40):
        dtype = (np.float32, np.float64)[trial % 2]
        word = np.dtype(f"u{np.dtype(dtype).itemsize}")
        go = rng.standard_normal((2, 2, 5, 5)).astype(dtype)
        flat = go.reshape(-1)
        for j in rng.integers(0, flat.size, 8):
            flat[j] = rng.choice([_nan(dtype, 1), _nan(dtype, 2, True), _nan(dtype, 0x35), np.inf, -np.inf])
        idx = rng.integers(0, 3, go.shape).astype(np.int64)
        want = torch.ops.aten.max_pool2d_with_indices_backward(
            torch.from_numpy(go), torch.zeros((2, 2, 6, 6), dtype=torch.from_numpy(go).dtype), [2, 2], [1, 1],
            [0, 0], [1, 1], False, torch.from_numpy(idx)).numpy()
        with np.errstate(invalid="ignore"):
            for m in (cpool, cpool.slow):
                assert m.max_pool2d_backward(go, idx, (2, 2, 6, 6)).view(word).tobytes() == want.view(word).tobytes()


@pytest.mark.parametrize("backend_name", ["active", "slow"])
def test_backward_of_an_empty_output_width(backend_name):
    # grad_output with OW = 0 (and H*W > 0): a zero gradient, not NumPy's
    # "cannot reshape array of size 0" from the reference backend.
    m = cpool if backend_name == "active" else cpool.slow
    go = np.zeros((1, 1, 2, 0), np.float32)
    got = m.max_pool2d_backward(go, np.zeros(go.shape, np.int64), (1, 1, 1, 1))
    assert got.shape == (1, 1, 1, 1) and not got.any()


@pytest.mark.skipif("data_format" not in inspect.signature(cpool.max_pool2d_backward).parameters,
                    reason="no data_format= here")
def test_nhwc_backward_names_the_same_bad_index_in_both_backends():
    # Two bad indices: both backends name the first in the indices' memory
    # order (the reference used to name the first in plane order).
    x = np.zeros((3, 9, 4))  # (H, W, C)
    out, idx = cpool.slow.max_pool2d(x, 2, return_indices=True, data_format="NHWC")
    idx = idx.copy()
    idx.reshape(-1)[1] = 2**32       # channel 1 of the first pixel
    idx.reshape(-1)[4] = 2**31 - 1   # channel 0 of the second pixel
    for m in (cpool, cpool.slow):
        with pytest.raises(ValueError, match=f"indices contains {2**32},"):
            m.max_pool2d_backward(np.ones(out.shape), idx, x.shape, data_format="NHWC")


@pytest.mark.parametrize("stride", [2**31 - 1, (1, 2**31 - 1), (2**31 - 1, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_with_a_huge_stride(stride, dtype):
    # The general path's running int32 index offset stepped once past the
    # last tap: with a stride near 2**31 that step overflowed int32 (signed
    # overflow, undefined behaviour; UBSan reports it under `make ubsan`).
    x = np.random.default_rng(3).standard_normal((2, 2, 11, 12)).astype(dtype)
    for with_indices in (False, True):
        got = cpool.max_pool2d(x, (2, 3), stride, (1, 0), 2, return_indices=with_indices)
        want = cpool.slow.max_pool2d(x, (2, 3), stride, (1, 0), 2, return_indices=with_indices)
        for g, w in zip(got if with_indices else (got,), want if with_indices else (want,)):
            assert g.tobytes() == w.tobytes() and g.shape == w.shape


@pytest.mark.parametrize("backend", [None, "numpy"])
def test_layer_backward_error_keeps_the_previous_gradInput(backend):
    # A backward that fails on hostile user-set indices changes nothing: the
    # previous gradInput stays (it used to be reset to None before the call).
    x = np.random.default_rng(4).standard_normal((2, 3, 6, 6)).astype(np.float32)
    pool = cpool.MaxPool2d(2, backend=backend)
    out = pool.forward(x)
    first = pool.backward(x, np.ones_like(out))
    bad = pool.indices.copy()
    bad.reshape(-1)[5] = np.iinfo(np.int64).min
    pool.indices = bad
    with pytest.raises(ValueError, match="indices contains"):
        pool.backward(x, np.ones_like(out))
    assert pool.gradInput is first


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend_name", ["active", "slow"])
def test_avg_sum_of_two_nans_keeps_torchs_payload(dtype, backend_name):
    # A window holding two NaN payloads: torch's planes kernel (`sum += x`)
    # keeps the running sum's (the first NaN), its channels-last vector lanes
    # the newer tap's. cpool.slow left the choice to NumPy's add, which
    # picks either operand depending on the loop it runs (a one-element
    # output in place kept the newer one).
    m = cpool if backend_name == "active" else cpool.slow
    word = np.dtype(f"u{np.dtype(dtype).itemsize}")
    first, second = _nan(dtype, 1), _nan(dtype, 2, negative=True)
    x = np.ones((1, 8, 3, 3), dtype)
    x[:, :, 0, 1] = first
    x[:, :, 2, 0] = second
    planes = m.avg_pool2d(x, 3)
    assert (planes.view(word) == np.array(first).view(word)).all()
    cl = m.avg_pool2d(np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2), 3)
    assert (cl.view(word) == np.array(second).view(word)).all()
    # backward: a cell receiving two NaN shares keeps the newer (both layouts)
    go = np.ones((1, 1, 2, 1), dtype)
    go[0, 0, 0, 0], go[0, 0, 1, 0] = first, second
    with np.errstate(invalid="ignore"):
        gi = m.avg_pool2d_backward(go, (1, 1, 3, 1), (2, 1), 1)
    assert gi.view(word)[0, 0, 1, 0] == np.array(second).view(word)


def test_avg_nan_payloads_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    specials = None
    for trial in range(40):
        dtype = (np.float32, np.float64)[trial % 2]
        word = np.dtype(f"u{np.dtype(dtype).itemsize}")
        specials = [_nan(dtype, 1), _nan(dtype, 2, True), _nan(dtype, 0x35), np.inf, -np.inf]
        # 16 channels: all in torch's vector lanes (AVX2 or AVX-512); its scalar channel
        # tail keeps the other NaN, which cpool does not reproduce (README, average pooling)
        x = rng.standard_normal((2, 16, 7, 6)).astype(dtype)
        flat = x.reshape(-1)
        for j in rng.integers(0, flat.size, 40):
            flat[j] = rng.choice(specials)
        k, s, p = int(rng.integers(2, 4)), int(rng.integers(1, 3)), int(rng.integers(0, 2))
        for channels_last in (False, True):
            xm = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) if channels_last else x
            tx = torch.from_numpy(x)
            if channels_last:
                tx = tx.contiguous(memory_format=torch.channels_last)
            want = torch.nn.functional.avg_pool2d(tx, k, s, p).numpy()
            go = rng.standard_normal(want.shape).astype(dtype)
            go.reshape(-1)[rng.integers(0, go.size, 6)] = rng.choice(specials, 6)
            gom = np.ascontiguousarray(go.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) if channels_last else go
            tg = torch.from_numpy(go)
            if channels_last:
                tg = tg.contiguous(memory_format=torch.channels_last)
            want_gi = torch.ops.aten.avg_pool2d_backward(tg, tx, [k, k], [s, s], [p, p], False, True, None).numpy()
            with np.errstate(invalid="ignore"):
                for m in (cpool, cpool.slow):
                    got = m.avg_pool2d(xm, k, s, p)
                    assert np.ascontiguousarray(got).view(word).tobytes() == \
                        np.ascontiguousarray(want).view(word).tobytes(), (m.__name__, channels_last, k, s, p)
                    gi = m.avg_pool2d_backward(gom, x.shape, k, s, p)
                    assert np.ascontiguousarray(gi).view(word).tobytes() == \
                        np.ascontiguousarray(want_gi).view(word).tobytes(), (m.__name__, channels_last, k, s, p)
