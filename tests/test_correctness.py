"""Results: both backends against each other, the scalar oracle, arrays
recorded from torch 2.13 and, when it is installed, torch itself.

* On adversarial random configurations the two backends agree bit for bit
  (values, NaN bits, indices, dtypes) or both raise the same exception type;
  valid results equal the oracle of ``helpers.scalar_max_pool2d``.
* Every memory layout (including unaligned buffers) gives the result of
  the C-contiguous array, and the input is never modified.
* ``data/golden_torch.npz`` (written by ``tools/make_golden.py``) keeps
  torch parity checked without torch; the torch tests compare live.
"""

import os

import numpy as np
import pytest
from helpers import (
    ALL_DTYPES,
    FLOAT_DTYPES,
    NUMPY_API,
    adversarial_values,
    assert_same_bits,
    call_outcome,
    empty_windows,
    full_params,
    layouts,
    random_case,
    same_bits,
    scalar_backward,
    scalar_max_pool2d,
    unaligned_copy,
)

import cpool

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed (the golden arrays still check parity)")


# ------------------------------------------------ backends and the oracle
@pytest.mark.parametrize("seed", range(8))
def test_backends_agree_on_adversarial_cases(compiled, seed):
    rng = np.random.default_rng(seed)
    checked = 0
    for _ in range(250):
        x, params = random_case(rng)
        for ri in (False, True):
            ks, rs = call_outcome(NUMPY_API.max_pool2d, x, return_indices=ri, **params)
            kf, rf = call_outcome(compiled.max_pool2d, x, return_indices=ri, **params)
            assert ks == kf, (params, x.shape, x.dtype, rs, rf)
            if ks == "raised":
                assert type(rs) is type(rf), (rs, rf)
                continue
            if ri:
                assert same_bits(rs[0], rf[0]) and same_bits(rs[1], rf[1]), (params, x.shape, x.dtype)
            else:
                assert same_bits(rs, rf), (params, x.shape, x.dtype)
            checked += 1
    assert checked > 300  # most random cases must be valid, or the test is vacuous


@pytest.mark.parametrize("seed", range(6))
def test_matches_scalar_oracle(backend, seed):
    rng = np.random.default_rng(100 + seed)
    valid = 0
    for _ in range(120):
        x, params = random_case(rng, max_hw=8)
        try:
            out, idx = backend.max_pool2d(x, return_indices=True, **params)
        except ValueError:
            continue
        ref_out, ref_idx = scalar_max_pool2d(x, *full_params(params))
        assert same_bits(out, ref_out), (params, x)
        assert np.array_equal(idx, ref_idx), (params, x)
        assert same_bits(backend.max_pool2d(x, **params), ref_out)
        valid += 1
        if x.dtype.kind == "f" and x.size:
            g = rng.standard_normal(out.shape).astype(x.dtype)
            assert same_bits(backend.max_pool2d_backward(g, idx, x.shape), scalar_backward(g, idx, x.shape))
    assert valid > 40


# ------------------------------------------------------------- layouts
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_layout_gives_the_same_answer(backend, dtype, rng):
    x = adversarial_values(rng, dtype, (2, 3, 9, 10))
    params = dict(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True)
    expected = scalar_max_pool2d(x, (3, 3), (2, 2), (1, 1), (1, 1), True)
    for name, view in layouts(x, rng):
        before = view.copy()
        out, idx = backend.max_pool2d(view, return_indices=True, **params)
        assert same_bits(out, expected[0]), name
        assert np.array_equal(idx, expected[1]), name
        assert same_bits(view, before), f"{name}: input was modified"
        assert not np.shares_memory(out, view) and not np.shares_memory(idx, view)
        assert out.dtype == np.dtype(dtype).newbyteorder("=")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_backward_layouts_and_accumulation(backend, dtype, rng):
    x = rng.standard_normal((2, 3, 7, 8)).astype(dtype)
    out, idx = backend.max_pool2d(x, 3, 1, 1, return_indices=True)  # overlapping windows
    g = rng.standard_normal(out.shape).astype(dtype)
    expected = scalar_backward(g, idx, x.shape)
    for name, view in layouts(g, rng):
        gi = backend.max_pool2d_backward(view, idx, x.shape)
        assert same_bits(gi, expected), name
    for name, view in layouts(idx, rng):
        if name == "byte-swapped":
            continue  # non-native int64 is still int64 and accepted; see test_api_errors
        assert same_bits(backend.max_pool2d_backward(g, view, x.shape), expected), name


# Each kind of array in an unaligned buffer must give exactly the aligned
# result: the kernels' loads assume element alignment, so such an array has
# to be copied before it reaches them. Shapes and arguments that take the
# compiled 2x2 path, the general path and the k2 s2 backward cell writer.
UNALIGNED_CASES = [((2, 3, 28, 30), (2,)), ((2, 3, 17, 21), (3, 2, 1)), ((1, 4, 9, 40), (3, 1, 1, 2, True))]


@pytest.mark.parametrize("offset", [1, 2, 3])
@pytest.mark.parametrize("dtype", [d for d in ALL_DTYPES if np.dtype(d).itemsize > 1], ids=lambda d: np.dtype(d).name)
def test_unaligned_input(backend, dtype, offset, rng):
    for shape, args in UNALIGNED_CASES:
        x = adversarial_values(rng, dtype, shape)
        view = unaligned_copy(x, offset)
        if offset % np.dtype(dtype).alignment:
            assert not view.flags.aligned
        before = view.copy()
        for ri in (False, True):
            expected = backend.max_pool2d(x, *args, return_indices=ri)
            reference = NUMPY_API.max_pool2d(x, *args, return_indices=ri)
            for e, r in zip(expected, reference) if ri else [(expected, reference)]:
                assert_same_bits(e, r, (shape, args, ri))
            got = backend.max_pool2d(view, *args, return_indices=ri)
            for e, o in zip(expected, got) if ri else [(expected, got)]:
                assert_same_bits(o, e, (shape, args, ri))
                assert not np.shares_memory(o, view)
        assert same_bits(view, before), "input was modified"


def _backward_cases(backend, dtype, rng):
    """(shape, grad_output, indices, gradient) per UNALIGNED_CASES row, the gradient checked with the oracle."""
    for shape, args in UNALIGNED_CASES:
        x = rng.standard_normal(shape).astype(dtype)
        _, idx = backend.max_pool2d(x, *args, return_indices=True)
        g = rng.standard_normal(idx.shape).astype(dtype)
        expected = backend.max_pool2d_backward(g, idx, shape)
        assert_same_bits(expected, scalar_backward(g, idx, shape), (shape, args))
        yield shape, g, idx, expected


@pytest.mark.parametrize("offset", [1, 2, 3])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_unaligned_grad_output(backend, dtype, offset, rng):
    for shape, g, idx, expected in _backward_cases(backend, dtype, rng):
        view = unaligned_copy(g, offset)
        if offset % np.dtype(dtype).alignment:
            assert not view.flags.aligned
        assert_same_bits(backend.max_pool2d_backward(view, idx, shape), expected, shape)
        assert same_bits(view, g), "grad_output was modified"


@pytest.mark.parametrize("offset", [1, 3, 4])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_unaligned_indices(backend, dtype, offset, rng):
    for shape, g, idx, expected in _backward_cases(backend, dtype, rng):
        view = unaligned_copy(idx, offset)
        assert not view.flags.aligned
        assert_same_bits(backend.max_pool2d_backward(g, view, shape), expected, shape)
        # grad_output and indices both unaligned
        assert_same_bits(backend.max_pool2d_backward(unaligned_copy(g, offset), view, shape), expected, shape)
        assert same_bits(view, idx), "indices were modified"


# ------------------------------------------------------- backward rules
def test_backward_of_sum_counts_windows(backend, rng):
    # d(sum of outputs)/dx: each element's gradient is the number of windows
    # that chose it.
    x = rng.standard_normal((3, 4, 11, 9))
    out, idx = backend.max_pool2d(x, (3, 2), (1, 2), (1, 1), return_indices=True)
    gi = backend.max_pool2d_backward(np.ones_like(out), idx, x.shape)
    counts = np.zeros((12, 99))
    for p, row in enumerate(idx.reshape(12, -1)):
        np.add.at(counts[p], row, 1)
    assert np.array_equal(gi.reshape(12, -1), counts)


def test_negative_zero_gradient_becomes_positive_zero(backend):
    # PyTorch zero-fills then adds: 0.0 + -0.0 == +0.0.
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    out, idx = backend.max_pool2d(x, 2, return_indices=True)
    gi = backend.max_pool2d_backward(np.full_like(out, -0.0), idx, x.shape)
    assert not np.signbit(gi).any()


def test_float16_backward_rounds_after_every_add(backend):
    # 1 + 3 * 2**-11 in float16: added one at a time each tiny term rounds
    # away; a wider accumulator would give 1.001953125.
    x = np.zeros((1, 1, 3, 3), dtype=np.float16)
    x[0, 0, 1, 1] = 1
    out, idx = backend.max_pool2d(x, 2, 1, return_indices=True)
    g = np.array([[[[1, 2**-11], [2**-11, 2**-11]]]], dtype=np.float16)
    assert backend.max_pool2d_backward(g, idx, x.shape)[0, 0, 1, 1] == np.float16(1.0)
    g2 = g[..., ::-1, ::-1].copy()  # tiny terms first: they add up
    assert backend.max_pool2d_backward(g2, idx, x.shape)[0, 0, 1, 1] == np.float16(1.001953125)


def test_larger_planes_and_threads(backend, rng):
    # Big enough to use several threads and every specialised kernel path.
    for shape, args in [
        ((4, 8, 28, 28), (2, 2, 0)),
        ((4, 8, 27, 29), (2, 2, 0)),
        ((2, 8, 14, 14), (2, 2, 0)),
        ((2, 4, 56, 57), (3, 2, 1)),
        ((2, 4, 33, 31), (3, 1, 1)),
        ((1, 2, 64, 64), (4, 3, 2)),
    ]:
        x = rng.standard_normal(shape).astype(np.float32)
        x[rng.random(shape) < 0.01] = np.nan
        x[rng.random(shape) < 0.05] = 0.5  # ties
        out, idx = backend.max_pool2d(x, *args, return_indices=True)
        ref_out, ref_idx = cpool.slow.max_pool2d(x, *args, return_indices=True)
        assert same_bits(out, ref_out) and np.array_equal(idx, ref_idx), shape
        g = rng.standard_normal(out.shape).astype(np.float32)
        assert same_bits(backend.max_pool2d_backward(g, idx, shape), cpool.slow.max_pool2d_backward(g, idx, shape))


def test_empty_batch(backend):
    x = np.zeros((0, 3, 8, 8), dtype=np.float32)
    out, idx = backend.max_pool2d(x, 2, return_indices=True)
    assert out.shape == idx.shape == (0, 3, 4, 4) and out.dtype == np.float32 and idx.dtype == np.int64
    assert backend.max_pool2d_backward(out, idx, x.shape).shape == x.shape


def test_window_without_input_gives_minus_one(backend):
    # 4x4, k2 s1 p1 d5: some windows hold no input element at all. PyTorch
    # returns an out-of-range index there; cpool returns -inf and -1, and the
    # backward skips it.
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    out, idx = backend.max_pool2d(x, 2, 1, 1, 5, return_indices=True)
    assert out.shape == (1, 1, 1, 1) and out[0, 0, 0, 0] == -np.inf and idx[0, 0, 0, 0] == -1
    gi = backend.max_pool2d_backward(np.ones_like(out), idx, x.shape)
    assert not gi.any()


def test_lists_are_accepted(backend):
    out = backend.max_pool2d([[[1.0, 2.0], [3.0, 4.0]]], 2)
    assert out.tolist() == [[[4.0]]]


# --------------------------------------------------------- golden arrays
GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "golden_torch.npz")


def load_golden_cases():
    with np.load(GOLDEN) as data:
        keys = set(data.files)
        n = sum(1 for k in keys if k.endswith("/x"))
        cases = []
        for i in range(n):
            c = {name: data[f"{i}/{name}"] for name in ("x", "params", "out", "idx", "grad_out", "grad_in")
                 if f"{i}/{name}" in keys}
            cases.append(c)
        return str(data["torch_version"]), cases


GOLDEN_VERSION, GOLDEN_CASES = load_golden_cases()


def test_golden_file_is_from_pinned_torch():
    assert GOLDEN_VERSION.startswith("2.13.0") and len(GOLDEN_CASES) >= 400


def test_golden_cases(backend):
    with_grad = 0
    for i, c in enumerate(GOLDEN_CASES):
        kh, kw, sh, sw, ph, pw, dh, dw, ceil, stride_none = (int(v) for v in c["params"])
        stride = None if stride_none else (sh, sw)
        out, idx = backend.max_pool2d(c["x"], (kh, kw), stride, (ph, pw), (dh, dw), bool(ceil), return_indices=True)
        assert out.dtype == c["out"].dtype and out.tobytes() == c["out"].tobytes(), i
        assert np.array_equal(idx, c["idx"]), i
        if "grad_out" in c:
            gi = backend.max_pool2d_backward(c["grad_out"], idx, c["x"].shape)
            assert gi.tobytes() == c["grad_in"].tobytes(), i
            with_grad += 1
    assert with_grad > 100


# ------------------------------------------------------------ live torch
def torch_forward(x, params):
    k, s, p, d, ceil = full_params(params)
    v, i = F.max_pool2d(torch.from_numpy(x), k, s, p, d, ceil, return_indices=True)
    return v.numpy(), i.numpy()


@needs_torch
def test_torch_version():
    assert torch.__version__.split("+")[0] == "2.13.0", "parity is pinned to torch 2.13.0"


@needs_torch
@pytest.mark.parametrize("seed", range(10))
def test_forward_and_backward_match_torch(backend, seed):
    torch.set_num_threads(1)
    rng = np.random.default_rng(1000 + seed)
    compared = 0
    for _ in range(200):
        x, params = random_case(rng, max_hw=12)
        x = np.ascontiguousarray(x)
        try:
            tv, ti = torch_forward(x, params)
        except RuntimeError:
            with pytest.raises(ValueError):
                backend.max_pool2d(x, **params)
            continue
        out, idx = backend.max_pool2d(x, return_indices=True, **params)
        k, s, p, d, ceil = full_params(params)
        empty = empty_windows(x.shape[-2], x.shape[-1], tv.shape[-2], tv.shape[-1], k, s, p, d)
        assert out.dtype == tv.dtype and out.tobytes() == tv.tobytes(), (params, x)
        assert np.array_equal(idx, np.where(empty, -1, ti)), (params, x)
        assert backend.max_pool2d(x, **params).tobytes() == tv.tobytes()
        compared += 1
        if x.dtype.kind == "f" and x.size and not empty.any():
            g = rng.standard_normal(tv.shape).astype(x.dtype)
            tg = torch.ops.aten.max_pool2d_with_indices_backward(
                torch.from_numpy(g), torch.from_numpy(x), list(k), list(s), list(p), list(d), ceil,
                torch.from_numpy(ti),
            ).numpy()
            assert backend.max_pool2d_backward(g, idx, x.shape).tobytes() == tg.tobytes(), params
    assert compared > 100


@needs_torch
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_typical_network_shapes(backend, dtype):
    rng = np.random.default_rng(7)
    for shape, k, s, p in [((8, 16, 28, 28), 2, 2, 0), ((2, 8, 56, 56), 3, 2, 1), ((4, 8, 15, 13), 3, 1, 1)]:
        if np.dtype(dtype).kind == "f":
            x = rng.standard_normal(shape).astype(dtype)
        else:
            x = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, size=shape, dtype=dtype, endpoint=True)
        tv, ti = F.max_pool2d(torch.from_numpy(x), k, s, p, return_indices=True)
        out, idx = backend.max_pool2d(x, k, s, p, return_indices=True)
        assert out.tobytes() == tv.numpy().tobytes() and np.array_equal(idx, ti.numpy())


@needs_torch
def test_rejections_match_torch(backend):
    # Every configuration torch rejects is rejected, and nothing else.
    rng = np.random.default_rng(5)
    x = np.zeros((1, 2, 5, 6), dtype=np.float32)
    for _ in range(3000):
        k = tuple(int(v) for v in rng.integers(-1, 8, 2))
        s = tuple(int(v) for v in rng.integers(-1, 5, 2))
        p = tuple(int(v) for v in rng.integers(-1, 5, 2))
        d = tuple(int(v) for v in rng.integers(-1, 4, 2))
        ceil = bool(rng.integers(2))
        try:
            F.max_pool2d(torch.from_numpy(x), k, s, p, d, ceil)
            torch_ok = True
        except RuntimeError:
            torch_ok = False
        try:
            backend.max_pool2d(x, k, s, p, d, ceil)
            ours_ok = True
        except ValueError:
            ours_ok = False
        assert ours_ok == torch_ok, (k, s, p, d, ceil)
