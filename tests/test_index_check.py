"""The index range checks that guard every write into a caller's ``out=``.

* Every function that checks its indices before writing ``out=`` raises on a
  bad index, names the first bad one in memory order, and leaves ``out``
  as it was: the public functions (the default backend) and ``cpool.slow``.
* The compiled backend's one-pass check (``first_outside``) agrees with
  NumPy's on random, hostile, empty, strided and threaded arrays.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import COMPILED

import cpool
from cpool._validation import numpy_first_outside

I64 = np.iinfo(np.int64)
SENTINEL = 7.0
RNG = np.random.default_rng(7)


def _sentinel(shape):
    return np.full(shape, SENTINEL, np.float32)


def _calls():
    """(name, call(ops, bad_index_value, where) -> raises, out array, message prefix): one per
    function that checks its indices before writing out=. ``where`` is 'early' or 'late': the
    position of the bad index planted; a second bad index sits later in memory order."""
    x2 = RNG.standard_normal((2, 3, 6, 6)).astype(np.float32)
    v2, i2 = cpool.slow.max_pool2d(x2, 2, return_indices=True)
    x3 = RNG.standard_normal((2, 2, 4, 4, 4)).astype(np.float32)
    v3, i3 = cpool.slow.max_pool3d(x3, 2, return_indices=True)
    x1 = RNG.standard_normal((2, 3, 8)).astype(np.float32)
    v1, i1 = cpool.slow.max_pool1d(x1, 2, return_indices=True)
    a2 = cpool.slow.adaptive_max_pool2d(x2, 3, return_indices=True)[1]
    a3 = cpool.slow.adaptive_max_pool3d(x3, 2, return_indices=True)[1]
    a1 = cpool.slow.adaptive_max_pool1d(x1, 4, return_indices=True)[1]

    def rows():
        # (name, fn name, args before out given the bad indices, indices, out shape, valid range text)
        yield "max_pool2d_backward", lambda i: (np.ones_like(v2), i, x2.shape), i2, x2.shape
        yield "adaptive_max_pool2d_backward", lambda i: (np.ones(a2.shape, np.float32), i, x2.shape), a2, x2.shape
        yield "max_unpool2d", lambda i: (v2, i, 2), i2, (2, 3, 6, 6)
        yield "max_unpool2d_backward", lambda i: (np.ones((2, 3, 6, 6), np.float32), i), i2, v2.shape
        yield "max_pool3d_backward", lambda i: (np.ones_like(v3), i, x3.shape), i3, x3.shape
        yield ("adaptive_max_pool3d_backward", lambda i: (np.ones(a3.shape, np.float32), i, x3.shape), a3,
               x3.shape)
        yield "max_unpool3d", lambda i: (v3, i, 2), i3, x3.shape
        yield "max_unpool3d_backward", lambda i: (np.ones(x3.shape, np.float32), i), i3, v3.shape
        yield "max_pool1d_backward", lambda i: (np.ones_like(v1), i, x1.shape), i1, x1.shape
        yield ("adaptive_max_pool1d_backward", lambda i: (np.ones(a1.shape, np.float32), i, x1.shape), a1,
               x1.shape)
        yield "max_unpool1d", lambda i: (v1, i, 2), i1, x1.shape
        yield "max_unpool1d_backward", lambda i: (np.ones(x1.shape, np.float32), i), i1, v1.shape

    return list(rows())


CALLS = _calls()
# Past every plane / volume / length above, and below -1: bad for every function.
BAD_VALUES = [10**6, -2, int(I64.max), int(I64.min)]


@pytest.mark.parametrize("ops", [cpool, cpool.slow], ids=["public", "numpy"])
@pytest.mark.parametrize("value", BAD_VALUES)
@pytest.mark.parametrize("row", CALLS, ids=[c[0] for c in CALLS])
def test_bad_index_with_out_raises_and_writes_nothing(ops, value, row):
    name, args, good, out_shape = row
    fn = getattr(ops, name)
    bad = good.copy()
    flat = bad.reshape(-1)
    first = flat.size // 3
    flat[first] = value
    flat[-1] = 10**6 + 1  # a later bad index: not the one named
    out = _sentinel(out_shape)
    with pytest.raises(ValueError, match=rf"indices contains {value},"):
        fn(*args(bad), out=out)
    assert (out == SENTINEL).all()
    # and the good indices fill the same out
    expected = fn(*args(good))
    assert fn(*args(good), out=out) is out
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("ops", [cpool, cpool.slow], ids=["public", "numpy"])
def test_bad_index_with_channels_last_out(ops):
    # The check reads the indices in memory order: the first bad one there is named.
    x = RNG.standard_normal((2, 6, 6, 4)).astype(np.float32)
    v, i = cpool.slow.max_pool2d(x, 2, return_indices=True, data_format="NHWC")
    bad = i.copy()
    bad[0, 0, 1, 3] = 99  # first in (N, H, W, C) memory
    bad[0, 0, 2, 0] = 98
    out = _sentinel(x.shape)
    with pytest.raises(ValueError, match="indices contains 99,"):
        ops.max_pool2d_backward(np.ones_like(v), bad, x.shape, data_format="NHWC", out=out)
    assert (out == SENTINEL).all()


# ------------------------------------------------------ the compiled check against NumPy's

needs_compiled = pytest.mark.skipif(COMPILED is None, reason="the compiled backend is not available")


def _agree(arr, low, high):
    expected = numpy_first_outside(arr, low, high)
    assert COMPILED.first_outside(arr, low, high) == expected
    return expected


EDGE = [-1, 0, 1, 2**31 - 1, 2**31, 2**32, -(2**31), int(I64.max), int(I64.min), int(I64.min) + 1]


ISAS = () if COMPILED is None else COMPILED.AVAILABLE_ISAS


@needs_compiled
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.int64, np.int32])
@pytest.mark.parametrize("low", [-1, 0])
def test_compiled_check_agrees_on_random_arrays(isa, dtype, low):
    with COMPILED.use_isa(isa):
        _random_arrays_agree(dtype, low)


def _random_arrays_agree(dtype, low):
    rng = np.random.default_rng(3)
    for size in [0, 1, 2, 7, 2047, 2048, 2049, 5000, 70001]:
        high = 50
        arr = rng.integers(low, high, size).astype(dtype)
        assert _agree(arr, low, high) == -1
        limits = np.iinfo(dtype)
        for value in [low - 1, high, high - 1, low] + [e for e in EDGE if limits.min <= e <= limits.max]:
            for at in {0, size // 2, size - 1} if size else ():
                bad = arr.copy()
                bad[at] = value
                found = _agree(bad, low, high)
                assert found == (-1 if low <= value < high else at)
        if size > 4:
            many = arr.copy()
            many[rng.integers(0, size, 3)] = high
            assert _agree(many, low, high) >= 0


@needs_compiled
def test_compiled_check_edges_of_the_range():
    size = 42
    arr = np.array([-1, size - 1, 0, size, -2, int(I64.max), int(I64.min)], np.int64)
    assert _agree(arr, -1, size) == 3
    assert _agree(arr[:3], -1, size) == -1
    assert _agree(arr[:3], 0, size) == 0
    assert _agree(arr[4:], -1, size) == 0
    assert _agree(np.array([int(I64.max)]), -1, size) == 0
    assert _agree(np.array([int(I64.min)]), 0, size) == 0
    assert _agree(np.array([size - 1, size - 1]), 0, size) == -1
    assert _agree(np.empty((0, 3), np.int64), -1, size) == -1
    assert _agree(np.empty(0, np.int64), 0, 0) == -1
    assert _agree(np.zeros(3, np.int64), 0, 0) == 0  # an empty range: every index is outside
    assert _agree(np.zeros(3, np.int64), -(2**63), 2**63) == -1  # a range past the kernels' bounds


@needs_compiled
def test_compiled_check_on_views_and_odd_layouts():
    rng = np.random.default_rng(4)
    base = rng.integers(-1, 36, (3, 4, 10, 12))
    base[2, 1, 3, 7] = 36
    base[1, 3, 8, 2] = -5
    views = [base, base[:, :, ::2, ::3], base[..., ::-1], base.transpose(0, 2, 3, 1), np.asfortranarray(base),
             base[1], base[:, 2, 5], base.astype(">i8"), base.astype(np.int16), base[..., 3:4]]
    for view in views:
        _agree(view, -1, 36)
        # and position -> value, as the errors read it
        at = numpy_first_outside(view, -1, 36)
        if at >= 0:
            assert not -1 <= view.flat[at] < 36
    unaligned = np.frombuffer(b"\0" + base.astype(np.int64).tobytes(), np.int64, base.size, 1).reshape(base.shape)
    assert not unaligned.flags.aligned
    _agree(unaligned, -1, 36)


@needs_compiled
def test_compiled_check_on_the_threaded_path():
    # Large enough for several threads (threads_for), with bad indices in
    # different chunks: the lowest position wins.
    size = 3 * 2**20
    arr = np.zeros(size, np.int64)
    cpool.set_num_threads(2)
    try:
        assert _agree(arr, -1, 1) == -1
        for positions in [[size - 1], [size // 2, size - 1], [5, size // 2], [size // 3 + 1, size // 3 + 2]]:
            bad = arr.copy()
            bad[positions] = int(I64.min)
            assert _agree(bad, -1, 1) == positions[0]
    finally:
        cpool.set_num_threads(None)
