"""The error contract: every bad input raises ValueError or TypeError, before
any work, with a message naming the argument and the value.

Each row of ERROR_CASES is also a row of the README's error table.
"""

import numpy as np
import pytest

import cpool

X = np.zeros((1, 2, 6, 6), dtype=np.float32)
OUT, IDX = cpool.slow.max_pool2d(X, 2, return_indices=True)
G = np.ones_like(OUT)


class Unconvertible:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("no")


def fwd(*args, **kwargs):
    return lambda m: m.max_pool2d(*args, **kwargs)


def bwd(*args):
    return lambda m: m.max_pool2d_backward(*args)


ERROR_CASES = [
    # (what, call, exception, message must match)
    ("input with 2 dims", fwd(np.zeros((6, 6)), 2), ValueError, r"3-D .* 4-D .*input.ndim=2"),
    ("input with 5 dims", fwd(np.zeros((1, 1, 1, 6, 6)), 2), ValueError, r"input.ndim=5"),
    ("zero channels", fwd(np.zeros((1, 0, 6, 6)), 2), ValueError, r"non-zero .*input.shape=\(1, 0, 6, 6\)"),
    ("zero height", fwd(np.zeros((1, 1, 0, 6)), 2), ValueError, r"input.shape=\(1, 1, 0, 6\)"),
    ("zero width (3-D)", fwd(np.zeros((1, 6, 0)), 2), ValueError, r"input.shape=\(1, 6, 0\)"),
    ("ragged list input", fwd([[[1.0, 2.0], [3.0]]], 1), TypeError, r"input could not be converted"),
    ("object that does not convert", fwd(Unconvertible(), 2), TypeError, r"input could not be converted"),
    ("object dtype", fwd(np.array([[[object()]]]), 1), TypeError, r"input.dtype=object"),
    ("bool dtype", fwd(np.zeros((1, 4, 4), bool), 2), TypeError, r"input.dtype=bool"),
    ("complex dtype", fwd(np.zeros((1, 4, 4), complex), 2), TypeError, r"input.dtype=complex128"),
    ("uint16 dtype", fwd(np.zeros((1, 4, 4), np.uint16), 2), TypeError, r"input.dtype=uint16"),
    ("string input", fwd("abc", 2), TypeError, r"input.dtype=<U3"),
    ("kernel_size 0", fwd(X, 0), ValueError, r"kernel_size must be positive, got kernel_size=0"),
    ("kernel_size negative", fwd(X, (2, -1)), ValueError, r"kernel_size=\(2, -1\)"),
    ("kernel_size float", fwd(X, 2.0), TypeError, r"kernel_size=2.0"),
    ("kernel_size bool", fwd(X, True), TypeError, r"kernel_size=True"),
    ("kernel_size 3-tuple", fwd(X, (2, 2, 2)), ValueError, r"kernel_size=\(2, 2, 2\) with 3 elements"),
    ("kernel_size empty tuple", fwd(X, ()), ValueError, r"kernel_size=\(\) with 0 elements"),
    ("kernel_size string", fwd(X, "2"), TypeError, r"kernel_size='2'"),
    ("kernel_size too large for torch", fwd(X, 2**31), ValueError, r"kernel_size"),
    ("stride 0", fwd(X, 2, 0), ValueError, r"stride must be positive, got stride=0"),
    ("stride negative", fwd(X, 2, (1, -2)), ValueError, r"stride=\(1, -2\)"),
    ("stride float", fwd(X, 2, 1.5), TypeError, r"stride=1.5"),
    ("stride too large for torch", fwd(X, 2, 2**40), ValueError, r"stride"),
    ("padding negative", fwd(X, 2, 2, -1), ValueError, r"padding must be non-negative, got padding=-1"),
    ("padding above half the kernel", fwd(X, 3, 1, 2), ValueError, r"padding=\(2, 2\) with kernel_size=\(3, 3\)"),
    ("padding above half the kernel, dilated", fwd(X, 3, 1, 2, 2), ValueError, r"half of kernel_size"),
    ("padding float", fwd(X, 2, 2, 0.5), TypeError, r"padding=0.5"),
    ("dilation 0", fwd(X, 2, dilation=0), ValueError, r"dilation must be positive, got dilation=0"),
    ("dilation float", fwd(X, 2, dilation=1.0), TypeError, r"dilation=1.0"),
    ("ceil_mode not bool", fwd(X, 2, ceil_mode=1), TypeError, r"ceil_mode=1"),
    ("return_indices not bool", fwd(X, 2, return_indices="yes"), TypeError, r"return_indices='yes'"),
    ("output smaller than 1", fwd(X, 7), ValueError, r"output size is too small.*0x0"),
    ("dilated window larger than input", fwd(X, 3, dilation=3), ValueError, r"output size is too small"),
    ("grad_output integer", bwd(G.astype(np.int32), IDX, X.shape), TypeError, r"grad_output.dtype=int32"),
    ("grad_output wrong shape", bwd(G[..., :1], IDX, X.shape), ValueError, r"indices.shape=.*grad_output.shape"),
    ("grad_output 2-D", bwd(G[0, 0], IDX[0, 0], X.shape[2:]), ValueError, r"grad_output.ndim=2"),
    ("indices int32", bwd(G, IDX.astype(np.int32), X.shape), TypeError, r"indices.dtype=int32"),
    ("indices float", bwd(G, IDX.astype(np.float64), X.shape), TypeError, r"indices.dtype=float64"),
    ("indices uint64", bwd(G, IDX.astype(np.uint64), X.shape), TypeError, r"indices.dtype=uint64"),
    ("index past the plane", bwd(G, np.where(IDX == IDX.max(), 36, IDX), X.shape), ValueError,
     r"indices contains 36, outside the plane of 6x6=36"),
    ("index below -1", bwd(G, np.where(IDX == 0, -2, IDX), X.shape), ValueError, r"indices contains -2"),
    ("huge index", bwd(G, np.where(IDX == 0, 2**62, IDX), X.shape), ValueError, r"indices contains 4611686018427387904"),
    ("input_shape wrong length", bwd(G, IDX, (2, 6, 6)), ValueError, r"input_shape must have as many"),
    ("input_shape wrong batch", bwd(G, IDX, (2, 2, 6, 6)), ValueError, r"leading"),
    ("input_shape not a tuple", bwd(G, IDX, 36), TypeError, r"input_shape=36"),
    ("input_shape with floats", bwd(G, IDX, (1, 2, 6.0, 6)), TypeError, r"input_shape"),
    ("input_shape zero width", bwd(G, IDX, (1, 2, 6, 0)), ValueError, r"input_shape=\(1, 2, 6, 0\)"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_input_raises(impl, case):
    _, call, exc, pattern = case
    with pytest.raises(exc, match=pattern):
        call(impl)


def test_public_functions_raise_the_same(rng):
    for _, call, exc, pattern in ERROR_CASES:
        with pytest.raises(exc, match=pattern):
            call(cpool)


def test_index_errors_leave_no_partial_work(impl):
    # The error is raised and no array is returned; the caller's arrays are untouched.
    bad = IDX.copy()
    bad[0, 1, 2, 2] = 99
    g = G.copy()
    with pytest.raises(ValueError, match="99"):
        impl.max_pool2d_backward(g, bad, X.shape)
    assert np.array_equal(g, G) and bad[0, 1, 2, 2] == 99
