"""The error contract beyond tests/test_errors.py's table.

* Hostile indices handed to backward: every out-of-range pattern (just past
  the plane, below -1, the int64 extremes, values that would be in range
  for the whole batch but not for one plane, in the first or last element,
  in a view, byte-swapped, on the multi-threaded path) raises ValueError
  naming the first bad value in C order, never crashes, writes nothing the
  caller can see; -1 is skipped.
* Inputs NumPy converts (nested lists, tuples, torch tensors, memoryviews,
  ndarray subclasses) are pooled as the equivalent array; objects it does
  not convert raise TypeError (or ValueError for a convertible object of the
  wrong shape).
"""

import warnings

import numpy as np
import pytest

import cpool

X = np.random.default_rng(0).standard_normal((2, 3, 6, 7))
OUT, IDX = cpool.slow.max_pool2d(X, 2, 1, return_indices=True)  # overlapping windows
G = np.random.default_rng(1).standard_normal(OUT.shape)
PLANE = 6 * 7
I64 = np.iinfo(np.int64)


def with_value(value, where=(0, 0, 0, 0), idx=IDX):
    bad = idx.copy()
    bad[where] = value
    return bad


HOSTILE = [
    ("just past the plane", PLANE),
    ("plane + 1", PLANE + 1),
    ("in range for the batch, not the plane", PLANE * 5 + 3),
    ("-2", -2),
    ("-plane", -PLANE),
    ("int32 max + 1", 2**31),
    ("uint32 max + 1", 2**32),
    ("int32 min", -(2**31)),
    ("2**62", 2**62),
    ("int64 max", int(I64.max)),
    ("int64 min", int(I64.min)),
    ("int64 min + 1", int(I64.min) + 1),
    ("-(2**32) + 5 (wraps to 5 as uint32)", -(2**32) + 5),
    ("2**32 + 5 (wraps to 5 as uint32)", 2**32 + 5),
]

WHERE = [(0, 0, 0, 0), (1, 2, 4, 5), (1, 0, 2, 3), (0, 2, 0, 5)]


@pytest.mark.parametrize("where", WHERE, ids=["first", "last", "middle", "row-end"])
@pytest.mark.parametrize("name,value", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_index_raises_value_error(impl, name, value, where):
    bad = with_value(value, where)
    g = G.copy()
    with pytest.raises(ValueError, match=rf"indices contains {value}, outside the plane of 6x7=42"):
        impl.max_pool2d_backward(g, bad, X.shape)
    assert np.array_equal(g, G) and bad[where] == value


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_hostile_index_every_grad_dtype(impl, dtype):
    with pytest.raises(ValueError, match="indices contains 42,"):
        impl.max_pool2d_backward(G.astype(dtype), with_value(42), X.shape)


def test_first_bad_index_in_c_order_is_reported(impl):
    bad = IDX.copy()
    bad[1, 1, 0, 0] = -7
    bad[0, 2, 4, 5] = 99  # earlier in C order
    bad[1, 2, 4, 5] = 2**40
    with pytest.raises(ValueError, match="indices contains 99,"):
        impl.max_pool2d_backward(G, bad, X.shape)


def test_every_index_bad(impl):
    for value in (PLANE, -2, int(I64.max), int(I64.min)):
        with pytest.raises(ValueError, match=f"indices contains {value},"):
            impl.max_pool2d_backward(G, np.full_like(IDX, value), X.shape)


@pytest.mark.parametrize("layout", ["view", "fortran", "negative", "byte-swapped", "unaligned", "read-only"])
def test_hostile_index_in_odd_layouts(impl, layout):
    bad = with_value(PLANE + 2, (1, 1, 3, 3))
    if layout == "view":
        big = np.zeros((2, 3, 10, 12), np.int64)
        big[:, :, ::2, ::2] = bad
        view = big[:, :, ::2, ::2]
    elif layout == "fortran":
        view = np.asfortranarray(bad)
    elif layout == "negative":
        view = bad[..., ::-1, ::-1].copy()[..., ::-1, ::-1]
    elif layout == "byte-swapped":
        # ">i8" is still int64; its values must be read as values, not bytes.
        view = bad.astype(">i8")
    elif layout == "unaligned":
        buf = bytearray(bad.nbytes + 1)
        view = np.frombuffer(buf, np.int64, offset=1, count=bad.size).reshape(bad.shape)
        view[...] = bad
    else:
        view = bad.copy()
        view.flags.writeable = False
    with pytest.raises(ValueError, match=f"indices contains {PLANE + 2},"):
        impl.max_pool2d_backward(G, view, X.shape)
    # and the same layout with good indices gives the right gradient
    good = np.where(view == PLANE + 2, IDX, view).astype(view.dtype)
    assert np.array_equal(impl.max_pool2d_backward(G, good, X.shape), cpool.slow.max_pool2d_backward(G, IDX, X.shape))


def test_byte_swapped_valid_indices(impl):
    # 1 as big-endian int64 reads as 2**56 if the bytes were used raw.
    assert np.array_equal(impl.max_pool2d_backward(G, IDX.astype(">i8"), X.shape),
                          cpool.slow.max_pool2d_backward(G, IDX, X.shape))


def test_hostile_index_on_the_threaded_path(impl):
    # Large enough that the compiled backward runs over planes in parallel:
    # the bad-index count is a reduction across threads.
    x = np.random.default_rng(2).standard_normal((8, 32, 64, 64)).astype(np.float32)
    out, idx = cpool.slow.max_pool2d(x, 2, return_indices=True)
    g = np.ones_like(out)
    for where in [(0, 0, 0, 0), (7, 31, 31, 31), (4, 0, 0, 0), (3, 31, 31, 31)]:
        for value in (64 * 64, -2, int(I64.min), int(I64.max)):
            bad = with_value(value, where, idx)
            with pytest.raises(ValueError, match=f"indices contains {value},"):
                impl.max_pool2d_backward(g, bad, x.shape)
    many = idx.copy()
    many[:, :, ::3, ::5] = 64 * 64 + 7
    with pytest.raises(ValueError, match=f"indices contains {64 * 64 + 7},"):
        impl.max_pool2d_backward(g, many, x.shape)


def test_minus_one_is_skipped(impl):
    skip = np.full_like(IDX, -1)
    assert not impl.max_pool2d_backward(G, skip, X.shape).any()
    some = IDX.copy()
    some[0, 0] = -1
    expected = cpool.slow.max_pool2d_backward(np.where(some < 0, 0.0, G), IDX, X.shape)
    assert np.array_equal(impl.max_pool2d_backward(G, some, X.shape), expected)


def test_indices_from_a_larger_input_are_rejected(impl):
    # Indices of a 12x12 forward handed to a 6x7 backward: a classic mix-up.
    x = np.random.default_rng(3).standard_normal((2, 3, 12, 14))
    _, idx = cpool.slow.max_pool2d(x, 2, return_indices=True)
    g = np.ones(idx.shape)
    bad_first = idx.reshape(-1)[idx.reshape(-1) >= PLANE][0]
    with pytest.raises(ValueError, match=f"indices contains {bad_first},"):
        impl.max_pool2d_backward(g, idx, (2, 3, 6, 7))


def test_module_with_tampered_indices():
    for backend in ("numpy", "cython") if cpool.backend == "cython" else ("numpy",):
        layer = cpool.MaxPool2d(2, 1, backend=backend)
        layer.forward(X)
        layer.indices[1, 2, 0, 0] = 10**12
        with pytest.raises(ValueError, match="indices contains 1000000000000,"):
            layer.backward(X, G)


def test_backward_before_forward_is_value_error():
    layer = cpool.MaxPool2d(2)
    with pytest.raises(ValueError, match="before forward"):
        layer.backward(X, np.ones((2, 3, 3, 3)))


# ------------------------------------------------------------------ inputs
class Unconvertible:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("no")


class ArrayLike:
    """An object that converts via __array__."""

    def __init__(self, a):
        self.a = a

    def __array__(self, dtype=None, copy=None):
        return self.a if dtype is None else self.a.astype(dtype)


class BadLen:
    def __len__(self):
        raise ZeroDivisionError("len")

    def __getitem__(self, i):
        raise ZeroDivisionError("getitem")


with warnings.catch_warnings():
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    MATRIX = np.matrix([[1.0, 2.0], [3.0, 4.0]])

NESTED = [[[1.0, 5.0, 2.0], [4.0, 3.0, 0.0]], [[-1.0, -5.0, 9.0], [7.0, float("nan"), 0.5]]]


@pytest.mark.parametrize("make", [
    lambda: NESTED,
    lambda: tuple(tuple(tuple(r) for r in p) for p in NESTED),
    lambda: [NESTED],
    lambda: ArrayLike(np.array(NESTED)),
    lambda: memoryview(np.array(NESTED)),
    lambda: np.ma.MaskedArray(np.array(NESTED)),
    lambda: np.array(NESTED).view(type("Sub", (np.ndarray,), {})),
    lambda: np.array(NESTED),
], ids=["list", "tuple", "list-4d", "__array__", "memoryview", "masked", "subclass", "array"])
def test_convertible_inputs_pool_like_the_array(impl, make):
    value = make()
    arr = np.array(np.asarray(value))
    out, idx = impl.max_pool2d(value, 2, 1, return_indices=True)
    ref_out, ref_idx = cpool.slow.max_pool2d(arr, 2, 1, return_indices=True)
    assert type(out) is np.ndarray and type(idx) is np.ndarray
    assert out.tobytes() == ref_out.tobytes() and np.array_equal(idx, ref_idx)


def test_torch_tensor_input(impl):
    torch = pytest.importorskip("torch")
    t = torch.tensor(NESTED, dtype=torch.float32)
    out = impl.max_pool2d(t, 2, 1)
    assert type(out) is np.ndarray and out.tobytes() == cpool.slow.max_pool2d(t.numpy(), 2, 1).tobytes()


def test_lists_to_backward(impl):
    out, idx = impl.max_pool2d(np.array(NESTED), 2, 1, return_indices=True)
    gi = impl.max_pool2d_backward(np.ones(out.shape).tolist(), idx.tolist(), list((2, 2, 3)))
    assert gi.dtype == np.float64 and gi.sum() == out.size
    gi2 = impl.max_pool2d_backward(np.ones(out.shape), idx, np.array([2, 2, 3]))
    assert np.array_equal(gi, gi2)


@pytest.mark.parametrize("value,exc,pattern", [
    (Unconvertible(), TypeError, "could not be converted"),
    ([[[1.0, 2.0], [3.0]]], TypeError, "could not be converted"),  # ragged
    (BadLen(), TypeError, "dtype=object"),
    (None, TypeError, "dtype=object"),
    ({"a": 1}, TypeError, "dtype=object"),
    ({1, 2}, TypeError, "dtype=object"),
    (object(), TypeError, "dtype=object"),
    ((i for i in range(3)), TypeError, "dtype=object"),
    ("abc", TypeError, "dtype=<U3"),
    (b"abc", TypeError, "dtype=|S3"),
    ([[["a", "b"]]], TypeError, "dtype=<U1"),
    ([[[1, None]]], TypeError, "dtype=object"),
    ([[[True, False]]], TypeError, "dtype=bool"),
    ([[[1 + 2j]]], TypeError, "dtype=complex128"),
    ([[[2**70]]], TypeError, "dtype=object"),
    (3.0, ValueError, "ndim=0"),
    ([1.0, 2.0], ValueError, "ndim=1"),
    (MATRIX, ValueError, "ndim=2"),
    ([[[]]], ValueError, "non-zero"),
], ids=lambda v: None)
def test_unconvertible_inputs(impl, value, exc, pattern):
    with pytest.raises(exc, match=pattern.replace("|", r"\|")):
        impl.max_pool2d(value, 1)


def test_unconvertible_backward_arguments(impl):
    with pytest.raises(TypeError, match="grad_output could not be converted"):
        impl.max_pool2d_backward(Unconvertible(), IDX, X.shape)
    with pytest.raises(TypeError, match="indices could not be converted"):
        impl.max_pool2d_backward(G, Unconvertible(), X.shape)
    with pytest.raises(TypeError, match="indices"):
        impl.max_pool2d_backward(G, IDX.astype(object), X.shape)
    with pytest.raises(TypeError, match="input_shape"):
        impl.max_pool2d_backward(G, IDX, None)
    with pytest.raises(TypeError, match="input_shape"):
        impl.max_pool2d_backward(G, IDX, (2, 3, 6, Unconvertible()))
    with pytest.raises(ValueError, match="input_shape"):
        impl.max_pool2d_backward(G, IDX, (2, 3, -6, 7))
    with pytest.raises(ValueError, match="input_shape is too large"):
        impl.max_pool2d_backward(G, IDX, (2, 3, 2**40, 2**40))
