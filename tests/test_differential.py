"""Both backends against each other and against the scalar oracle.

The bottleneck-style driver: on adversarial random configurations the two
backends must agree bit for bit (values, NaN bits, indices, dtypes) or both
raise the same exception type; and valid results must equal the oracle.
"""

import numpy as np
import pytest

import cpool
from reference import (
    ALL_DTYPES,
    FLOAT_DTYPES,
    adversarial_values,
    full_params,
    layouts,
    random_case,
    scalar_backward,
    scalar_max_pool2d,
)

try:
    import cpool._fast as fast
except ImportError:  # the conftest fixture reports this; here just skip
    fast = None


def _call(fn, *args, **kwargs):
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as exc:  # compared by type below
        return "raised", exc


def _same(a, b):
    """Bitwise equality including dtype (so NaN payloads and -0.0 count)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.skipif(fast is None, reason="compiled extension not built")
@pytest.mark.parametrize("seed", range(8))
def test_backends_agree_on_adversarial_cases(seed):
    rng = np.random.default_rng(seed)
    checked = 0
    for _ in range(250):
        x, params = random_case(rng)
        for ri in (False, True):
            ks, rs = _call(cpool.slow.max_pool2d, x, return_indices=ri, **params)
            kf, rf = _call(fast.max_pool2d, x, return_indices=ri, **params)
            assert ks == kf, (params, x.shape, x.dtype, rs, rf)
            if ks == "raised":
                assert type(rs) is type(rf), (rs, rf)
                continue
            if ri:
                assert _same(rs[0], rf[0]) and _same(rs[1], rf[1]), (params, x.shape, x.dtype)
            else:
                assert _same(rs, rf), (params, x.shape, x.dtype)
            checked += 1
    assert checked > 300  # most random cases must be valid, or the test is vacuous


@pytest.mark.parametrize("seed", range(6))
def test_matches_scalar_oracle(impl, seed):
    rng = np.random.default_rng(100 + seed)
    valid = 0
    for _ in range(120):
        x, params = random_case(rng, max_hw=8)
        try:
            out, idx = impl.max_pool2d(x, return_indices=True, **params)
        except ValueError:
            continue
        ref_out, ref_idx = scalar_max_pool2d(x, *full_params(params))
        assert _same(out, ref_out), (params, x)
        assert np.array_equal(idx, ref_idx), (params, x)
        assert _same(impl.max_pool2d(x, **params), ref_out)
        valid += 1
        if x.dtype.kind == "f" and x.size:
            g = rng.standard_normal(out.shape).astype(x.dtype)
            assert _same(impl.max_pool2d_backward(g, idx, x.shape), scalar_backward(g, idx, x.shape))
    assert valid > 40


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_layout_gives_the_same_answer(impl, dtype, rng):
    x = adversarial_values(rng, dtype, (2, 3, 9, 10))
    params = dict(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True)
    expected = scalar_max_pool2d(x, (3, 3), (2, 2), (1, 1), (1, 1), True)
    for name, view in layouts(x, rng):
        before = view.copy()
        out, idx = impl.max_pool2d(view, return_indices=True, **params)
        assert _same(out, expected[0]), name
        assert np.array_equal(idx, expected[1]), name
        assert _same(view, before), f"{name}: input was modified"
        assert not np.shares_memory(out, view) and not np.shares_memory(idx, view)
        assert out.dtype == np.dtype(dtype).newbyteorder("=")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_backward_layouts_and_accumulation(impl, dtype, rng):
    x = rng.standard_normal((2, 3, 7, 8)).astype(dtype)
    out, idx = impl.max_pool2d(x, 3, 1, 1, return_indices=True)  # overlapping windows
    g = rng.standard_normal(out.shape).astype(dtype)
    expected = scalar_backward(g, idx, x.shape)
    for name, view in layouts(g, rng):
        gi = impl.max_pool2d_backward(view, idx, x.shape)
        assert _same(gi, expected), name
    for name, view in layouts(idx, rng):
        if name == "byte-swapped":
            continue  # non-native int64 is still int64 and accepted; covered below
        assert _same(impl.max_pool2d_backward(g, view, x.shape), expected), name


def test_backward_of_sum_counts_windows(impl, rng):
    # d(sum of outputs)/dx: each element's gradient is the number of windows
    # that chose it.
    x = rng.standard_normal((3, 4, 11, 9))
    out, idx = impl.max_pool2d(x, (3, 2), (1, 2), (1, 1), return_indices=True)
    gi = impl.max_pool2d_backward(np.ones_like(out), idx, x.shape)
    counts = np.zeros((12, 99))
    for p, row in enumerate(idx.reshape(12, -1)):
        np.add.at(counts[p], row, 1)
    assert np.array_equal(gi.reshape(12, -1), counts)


def test_negative_zero_gradient_becomes_positive_zero(impl):
    # PyTorch zero-fills then adds: 0.0 + -0.0 == +0.0.
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    out, idx = impl.max_pool2d(x, 2, return_indices=True)
    gi = impl.max_pool2d_backward(np.full_like(out, -0.0), idx, x.shape)
    assert not np.signbit(gi).any()


def test_float16_backward_rounds_after_every_add(impl):
    # 1 + 3 * 2**-11 in float16: added one at a time each tiny term rounds
    # away; a wider accumulator would give 1.001953125.
    x = np.zeros((1, 1, 3, 3), dtype=np.float16)
    x[0, 0, 1, 1] = 1
    out, idx = impl.max_pool2d(x, 2, 1, return_indices=True)
    g = np.array([[[[1, 2**-11], [2**-11, 2**-11]]]], dtype=np.float16)
    assert impl.max_pool2d_backward(g, idx, x.shape)[0, 0, 1, 1] == np.float16(1.0)
    g2 = g[..., ::-1, ::-1].copy()  # tiny terms first: they add up
    assert impl.max_pool2d_backward(g2, idx, x.shape)[0, 0, 1, 1] == np.float16(1.001953125)


def test_larger_planes_and_threads(impl, rng):
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
        out, idx = impl.max_pool2d(x, *args, return_indices=True)
        ref_out, ref_idx = cpool.slow.max_pool2d(x, *args, return_indices=True)
        assert _same(out, ref_out) and np.array_equal(idx, ref_idx), shape
        g = rng.standard_normal(out.shape).astype(np.float32)
        assert _same(impl.max_pool2d_backward(g, idx, shape), cpool.slow.max_pool2d_backward(g, idx, shape))


def test_empty_batch(impl):
    x = np.zeros((0, 3, 8, 8), dtype=np.float32)
    out, idx = impl.max_pool2d(x, 2, return_indices=True)
    assert out.shape == idx.shape == (0, 3, 4, 4) and out.dtype == np.float32 and idx.dtype == np.int64
    assert impl.max_pool2d_backward(out, idx, x.shape).shape == x.shape


def test_window_without_input_gives_minus_one(impl):
    # 4x4, k2 s1 p1 d5: some windows hold no input element at all. PyTorch
    # returns an out-of-range index there; cpool returns -inf and -1, and the
    # backward skips it.
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    out, idx = impl.max_pool2d(x, 2, 1, 1, 5, return_indices=True)
    assert out.shape == (1, 1, 1, 1) and out[0, 0, 0, 0] == -np.inf and idx[0, 0, 0, 0] == -1
    gi = impl.max_pool2d_backward(np.ones_like(out), idx, x.shape)
    assert not gi.any()


def test_lists_are_accepted(impl):
    out = impl.max_pool2d([[[1.0, 2.0], [3.0, 4.0]]], 2)
    assert out.tolist() == [[[4.0]]]
