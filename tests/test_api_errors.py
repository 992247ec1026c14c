"""The error contract: every bad input raises ValueError or TypeError, before
any work, with a message naming the argument and the value; every input
NumPy converts is accepted.

* ``ERROR_CASES``: one row per kind of bad argument; each row is a test on
  both backends and on the public functions, and a row of the README's
  error table (printed by ``tools/error_table.py`` from this list).
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
from helpers import unaligned_copy

import cpool
from cpool.functional import bind_adaptive, bind_avg, bind_avg3d, bind_max3d, bind_unpool

# ------------------------------------------------------------ the table
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


# Average pooling: each call is handed an out= array filled with SENTINEL,
# which the error must leave as it is (test_avg_errors_write_nothing).
SENTINEL = 7.0
AVG_OUTS = []


def _avg_of(m):
    """(avg_pool2d, avg_pool2d_backward, AvgPool2d backend name) of a backend or of ``cpool``."""
    if m is cpool:
        return cpool.avg_pool2d, cpool.avg_pool2d_backward, None
    if m.module is cpool.slow:
        return cpool.slow.avg_pool2d, cpool.slow.avg_pool2d_backward, m.name
    return (*bind_avg(m.module), m.name)


def _sentinel(shape, dtype):
    out = np.full(shape, SENTINEL, dtype)
    AVG_OUTS.append(out)
    return out


def avg_fwd(input, *args, **kwargs):
    out = _sentinel((1, 2, 3, 3), np.float32)
    return lambda m: _avg_of(m)[0](input, *args, **kwargs, out=out)


def avg_bwd(grad_output, input_shape, *args, **kwargs):
    out = _sentinel(X.shape, np.float32)
    return lambda m: _avg_of(m)[1](grad_output, input_shape, *args, **kwargs, out=out)


def avg_layer(*args, **kwargs):
    return lambda m: cpool.AvgPool2d(*args, **kwargs, backend=_avg_of(m)[2])


def avg_layer_backward(input, grad_output, *args, **kwargs):
    def call(m):
        layer = cpool.AvgPool2d(*args, **kwargs, backend=_avg_of(m)[2])
        layer.forward(input)
        return layer.backward(input, grad_output)
    return call


AVG_ERROR_CASES = [
    # rejections of average pooling that the max-pooling rows do not show
    ("avg_pool2d int32 dtype", avg_fwd(X.astype(np.int32), 2), TypeError,
     r"avg_pool2d does not support input.dtype=int32; supported dtypes: float16, float32, float64, int64$"),
    ("avg_pool2d uint8 dtype", avg_fwd(X.astype(np.uint8), 2), TypeError, r"avg_pool2d .*input.dtype=uint8"),
    ("avg_pool2d bool dtype", avg_fwd(X.astype(bool), 2), TypeError, r"avg_pool2d .*input.dtype=bool"),
    ("avg_pool2d divisor_override 0", avg_fwd(X, 2, divisor_override=0), ValueError,
     r"divisor_override must not be zero, got divisor_override=0"),
    ("avg_pool2d divisor_override float", avg_fwd(X, 2, divisor_override=2.0), TypeError,
     r"divisor_override must be None or an int, got divisor_override=2.0 \(type float\)"),
    ("avg_pool2d divisor_override bool", avg_fwd(X, 2, divisor_override=True), TypeError,
     r"divisor_override=True \(type bool\)"),
    ("avg_pool2d divisor_override string", avg_fwd(X, 2, divisor_override="2"), TypeError,
     r"divisor_override='2' \(type str\)"),
    ("avg_pool2d divisor_override beyond int64", avg_fwd(X, 2, divisor_override=2**63), ValueError,
     r"divisor_override must fit in int64, got divisor_override=9223372036854775808"),
    ("avg_pool2d count_include_pad not bool", avg_fwd(X, 2, count_include_pad=1), TypeError,
     r"count_include_pad must be a bool, got count_include_pad=1 \(type int\)"),
    ("avg_pool2d count_include_pad None", avg_fwd(X, 2, count_include_pad=None), TypeError,
     r"count_include_pad=None"),
    ("avg_pool2d padding above half the kernel", avg_fwd(X, 3, 1, 2), ValueError,
     r"padding must be at most half of kernel_size, got padding=\(2, 2\) with kernel_size=\(3, 3\)"),
    ("avg_pool2d_backward int32 grad_output", avg_bwd(G.astype(np.int32), X.shape, 2), TypeError,
     r"avg_pool2d_backward does not support grad_output.dtype=int32; supported dtypes: float16, float32, float64, "
     r"int64$"),
    ("avg_pool2d_backward grad_output of another output size", avg_bwd(G[..., :2], X.shape, 2), ValueError,
     r"grad_output must have the output size of input_shape=\(1, 2, 6, 6\) \(3x3\), "
     r"got grad_output.shape=\(1, 2, 3, 2\)"),
    ("avg_pool2d_backward input_shape negative", avg_bwd(G, (1, 2, -6, 6), 2), ValueError,
     r"input_shape must not have negative dimensions, got input_shape=\(1, 2, -6, 6\)"),
    ("avg_pool2d_backward input_shape zero width", avg_bwd(G, (1, 2, 6, 0), 2), ValueError,
     r"input_shape must have non-zero channel, height and width .*input_shape.shape=\(1, 2, 6, 0\)"),
    ("avg_pool2d_backward input_shape smaller than the kernel", avg_bwd(G, (1, 2, 1, 1), 2), ValueError,
     r"output size is too small: input_shape.shape=\(1, 2, 1, 1\)"),
    ("avg_pool2d_backward divisor_override 0", avg_bwd(G, X.shape, 2, divisor_override=0), ValueError,
     r"divisor_override must not be zero, got divisor_override=0"),
    ("AvgPool2d divisor_override 0", avg_layer(2, divisor_override=0), ValueError,
     r"divisor_override must not be zero, got divisor_override=0"),
    ("AvgPool2d count_include_pad not bool", avg_layer(2, count_include_pad="yes"), TypeError,
     r"count_include_pad must be a bool, got count_include_pad='yes'"),
    ("AvgPool2d padding above half the kernel", avg_layer(2, padding=2), ValueError,
     r"padding must be at most half of kernel_size, got padding=\(2, 2\) with kernel_size=\(2, 2\)"),
    ("AvgPool2d.backward grad_output of another output size", avg_layer_backward(X, G[..., :2, :2], 2), ValueError,
     r"grad_output must have the output size of input_shape=\(1, 2, 6, 6\) \(3x3\)"),
]

def _public(m, name):
    """Public function ``name`` of a backend (``cpool``, or a helpers.Backend)."""
    if m is cpool:
        return getattr(cpool, name)
    if m.module is cpool.slow:
        return getattr(cpool.slow, name)
    fns = dict(zip(("adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d",
                    "adaptive_max_pool2d_backward"), bind_adaptive(m.module)))
    fns.update(zip(("max_unpool2d", "max_unpool2d_backward"), bind_unpool(m.module)))
    return fns[name]


def api(name, *args, **kwargs):
    return lambda m: _public(m, name)(*args, **kwargs)


U_IDX = np.zeros((1, 2, 3, 3), np.int64)
OTHER_ERROR_CASES = [
    # adaptive pooling, max unpooling and the index formats
    ("adaptive_avg_pool2d int32 input", api("adaptive_avg_pool2d", X.astype(np.int32), 2), TypeError,
     r"adaptive_avg_pool2d does not support input.dtype=int32; supported dtypes: float16, float32, float64$"),
    ("adaptive_max_pool2d int64 input", api("adaptive_max_pool2d", X.astype(np.int64), 2), TypeError,
     r"adaptive_max_pool2d does not support input.dtype=int64"),
    ("adaptive output_size negative", api("adaptive_avg_pool2d", X, -1), ValueError,
     r"output_size must be non-negative, got output_size=-1"),
    ("adaptive output_size of 3 entries", api("adaptive_max_pool2d", X, (1, 2, 3)), ValueError,
     r"output_size must be an int or a tuple of two ints or Nones, got output_size=\(1, 2, 3\) with 3 elements"),
    ("adaptive output_size float", api("adaptive_avg_pool2d", X, 2.0), TypeError,
     r"output_size=2.0 \(type float\)"),
    ("adaptive output_size bool", api("adaptive_avg_pool2d", X, True), TypeError, r"output_size=True \(type bool\)"),
    ("adaptive_avg_pool2d zero height", api("adaptive_avg_pool2d", np.zeros((1, 2, 0, 6), np.float32), 2),
     ValueError, r"input must have non-zero height and width dimensions, got input.shape=\(1, 2, 0, 6\)"),
    ("adaptive_max_pool2d zero channels", api("adaptive_max_pool2d", np.zeros((1, 0, 6, 6), np.float32), 2),
     ValueError, r"input must have non-zero channel, height and width dimensions"),
    ("adaptive_avg_pool2d_backward other channels",
     api("adaptive_avg_pool2d_backward", np.ones((1, 3, 2, 2), np.float32), X.shape), ValueError,
     r"input_shape and grad_output must agree in their leading \(batch, channel\) dimensions"),
    ("adaptive_max_pool2d_backward index outside the plane",
     api("adaptive_max_pool2d_backward", np.ones((1, 2, 2, 2), np.float32), np.full((1, 2, 2, 2), 36), X.shape),
     ValueError, r"indices contains 36, outside the plane of 6x6=36 elements"),
    ("max_unpool2d int64 input", api("max_unpool2d", U_IDX, U_IDX, 2), TypeError,
     r"max_unpool2d does not support input.dtype=int64"),
    ("max_unpool2d int32 indices", api("max_unpool2d", OUT, IDX.astype(np.int32), 2), TypeError,
     r"indices must be an int64 array"),
    ("max_unpool2d indices of another shape", api("max_unpool2d", OUT, U_IDX[..., :2], 2), ValueError,
     r"indices and input must have the same shape for max_unpool2d"),
    ("max_unpool2d index -1", api("max_unpool2d", OUT, U_IDX - 1, 2), ValueError,
     r"indices contains -1, outside the unpooled plane of 6x6=36 elements"),
    ("max_unpool2d index past the plane", api("max_unpool2d", OUT, U_IDX + 36, 2), ValueError,
     r"indices contains 36, outside the unpooled plane of 6x6=36 elements"),
    ("max_unpool2d output_size out of range", api("max_unpool2d", OUT, IDX, 2, output_size=(8, 6)), ValueError,
     r"output_size must be strictly between 4 and 8 in dimension 0"),
    ("max_unpool2d output_size of 3 entries", api("max_unpool2d", OUT, IDX, 2, output_size=(1, 6, 6)), ValueError,
     r"output_size must have 2 or 4 elements"),
    ("max_unpool2d output_size not a sequence", api("max_unpool2d", OUT, IDX, 2, output_size=6), TypeError,
     r"output_size must be None or a sequence of ints"),
    ("max_unpool2d stride 0", api("max_unpool2d", OUT, IDX, 2, 0), ValueError, r"stride must be positive"),
    ("max_unpool2d padding leaving no output", api("max_unpool2d", OUT, IDX, 2, 2, 3), ValueError,
     r"the unpooled output must have a positive height and width"),
    ("max_unpool2d_backward index past the plane",
     api("max_unpool2d_backward", X, np.full((1, 2, 3, 3), 36)), ValueError,
     r"indices contains 36, outside the unpooled plane of 6x6=36 elements"),
    ("max_unpool2d_backward other channels", api("max_unpool2d_backward", X, np.zeros((1, 3, 3, 3), np.int64)),
     ValueError, r"indices must have grad_output's batch and channel dimensions"),
    ("indices_to unknown format", lambda m: cpool.indices_to(IDX, "caffe", X.shape), ValueError,
     r"format must be one of 'torch', 'onnx', 'onnx-column-major', 'tensorflow', 'tensorflow-with-batch', "
     r"got format='caffe'"),
    ("indices_from index in another plane", lambda m: cpool.indices_from(np.zeros((1, 2, 3, 3), np.int64), "onnx",
                                                                          X.shape), ValueError,
     r"which points into another \(n, c\) plane than its output's"),
]

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
    ("huge index", bwd(G, np.where(IDX == 0, 2**62, IDX), X.shape), ValueError,
     r"indices contains 4611686018427387904"),
    ("input_shape wrong length", bwd(G, IDX, (2, 6, 6)), ValueError, r"input_shape must have as many"),
    ("input_shape wrong batch", bwd(G, IDX, (2, 2, 6, 6)), ValueError, r"leading"),
    ("input_shape not a tuple", bwd(G, IDX, 36), TypeError, r"input_shape=36"),
    ("input_shape with floats", bwd(G, IDX, (1, 2, 6.0, 6)), TypeError, r"input_shape"),
    ("input_shape zero width", bwd(G, IDX, (1, 2, 6, 0)), ValueError, r"input_shape=\(1, 2, 6, 0\)"),
] + AVG_ERROR_CASES + OTHER_ERROR_CASES


# 1-D pooling: each argument named as the 1-D call has it (never a 2-D spelling such as "(1, 2)").
def api1d(name, *args, **kwargs):
    def call(m):
        if m is cpool:
            return getattr(cpool, name)(*args, **kwargs)
        from cpool.module import _functions_1d
        return getattr(_functions_1d(m.module), name)(*args, **kwargs)
    return call


X1 = np.zeros((1, 2, 6), np.float32)
V1, I1 = cpool.slow.max_pool1d(X1, 2, return_indices=True)
POOL1D_ERROR_CASES = [
    ("max_pool1d kernel_size pair", api1d("max_pool1d", X1, (2, 2)), ValueError,
     r"kernel_size must be an int or a tuple of one int for 1-D pooling, got kernel_size=\(2, 2\) with 2 elements"),
    ("max_pool1d kernel_size 0", api1d("max_pool1d", X1, 0), ValueError,
     r"kernel_size must be positive, got kernel_size=0$"),
    ("max_pool1d kernel_size float", api1d("max_pool1d", X1, 2.0), TypeError,
     r"kernel_size must be an int or a tuple of one int, got kernel_size=2.0 \(type float\)"),
    ("max_pool1d stride pair", api1d("max_pool1d", X1, 2, (1, 1)), ValueError, r"got stride=\(1, 1\) with 2 elements"),
    ("max_pool1d stride 0", api1d("max_pool1d", X1, 2, 0), ValueError, r"stride must be positive, got stride=0$"),
    ("max_pool1d padding above half the kernel", api1d("max_pool1d", X1, 2, 2, 2), ValueError,
     r"padding must be at most half of kernel_size, got padding=2 with kernel_size=2$"),
    ("max_pool1d dilation 0", api1d("max_pool1d", X1, 2, dilation=0), ValueError, r"dilation must be positive"),
    ("max_pool1d ceil_mode not bool", api1d("max_pool1d", X1, 2, ceil_mode=1), TypeError, r"ceil_mode=1"),
    ("max_pool1d 4-D input", api1d("max_pool1d", X1[None], 2), ValueError,
     r"max_pool1d: input must be a 2-D \(C, L\) or 3-D \(N, C, L\) array, got input.ndim=4"),
    ("max_pool1d NWC 1-D input", api1d("max_pool1d", X1[0, 0], 2, data_format="NWC"), ValueError,
     r"input must be a 2-D \(L, C\) or 3-D \(N, L, C\) array, got input.ndim=1"),
    ("max_pool1d zero length", api1d("max_pool1d", X1[..., :0], 2), ValueError,
     r"max_pool1d: input must have non-zero channel and length dimensions .*input.shape=\(1, 2, 0\)"),
    ("max_pool1d output smaller than 1", api1d("max_pool1d", X1, 7), ValueError,
     r"output size is too small: input.shape=\(1, 2, 6\) with kernel_size=7, .* gives an output of length 0"),
    ("max_pool1d int64 without return_indices", api1d("max_pool1d", X1.astype(np.int64), 2), TypeError,
     r"max_pool1d without return_indices does not support input.dtype=int64; supported dtypes: float16, float32, "
     r"float64$"),
    ("max_pool1d bool input", api1d("max_pool1d", X1.astype(bool), 2, return_indices=True), TypeError,
     r"max_pool1d does not support input.dtype=bool"),
    ("max_pool1d data_format NCHW", api1d("max_pool1d", X1, 2, data_format="NCHW"), ValueError,
     r'data_format must be "NCW" or "NWC", got data_format=\'NCHW\''),
    ("max_pool1d out of the wrong shape", api1d("max_pool1d", X1, 2, out=np.zeros((1, 2, 4), np.float32)),
     ValueError, r"out must have shape \(1, 2, 3\), got out.shape=\(1, 2, 4\)"),
    ("max_pool1d_backward index past the row", api1d("max_pool1d_backward", V1, I1 + 6, X1.shape), ValueError,
     r"indices contains 6, outside input_shape's length of length 6; valid indices are -1 <= index < 6"),
    ("max_pool1d_backward index below -1", api1d("max_pool1d_backward", V1, I1 - 8, X1.shape), ValueError,
     r"indices contains -8, outside input_shape's length"),
    ("max_pool1d_backward int32 indices", api1d("max_pool1d_backward", V1, I1.astype(np.int32), X1.shape),
     TypeError, r"max_pool1d_backward: indices must be an int64 array, got indices.dtype=int32"),
    ("max_pool1d_backward indices of another shape", api1d("max_pool1d_backward", V1, I1[..., :2], X1.shape),
     ValueError, r"indices and grad_output must have the same shape"),
    ("max_pool1d_backward input_shape of other channels", api1d("max_pool1d_backward", V1, I1, (1, 3, 6)),
     ValueError, r"input_shape and grad_output must agree in their leading \(batch, channel\) dimensions"),
    ("max_pool1d_backward input_shape of 2-D pooling", api1d("max_pool1d_backward", V1, I1, (1, 2, 1, 6)),
     ValueError, r"input_shape must have as many dimensions as grad_output \(3\)"),
    ("avg_pool1d kernel_size pair", api1d("avg_pool1d", X1, (2, 2)), ValueError, r"kernel_size=\(2, 2\) with 2"),
    ("avg_pool1d int32 input", api1d("avg_pool1d", X1.astype(np.int32), 2), TypeError,
     r"avg_pool1d does not support input.dtype=int32"),
    ("avg_pool1d count_include_pad not bool", api1d("avg_pool1d", X1, 2, count_include_pad="no"), TypeError,
     r"count_include_pad must be a bool"),
    ("avg_pool1d_backward grad_output of another length", api1d("avg_pool1d_backward", V1[..., :2], X1.shape, 2),
     ValueError, r"avg_pool1d_backward: grad_output must have the output length of input_shape=\(1, 2, 6\) \(3\)"),
    ("adaptive_avg_pool1d output_size pair", api1d("adaptive_avg_pool1d", X1, (2, 2)), ValueError,
     r"output_size must be an int or a tuple of one int for 1-D pooling, got output_size=\(2, 2\)"),
    ("adaptive_avg_pool1d output_size None", api1d("adaptive_avg_pool1d", X1, None), TypeError,
     r"output_size must be an int or a tuple of one int, got output_size=None"),
    ("adaptive_max_pool1d output_size (None,)", api1d("adaptive_max_pool1d", X1, (None,)), TypeError,
     r"output_size=\(None,\)"),
    ("adaptive_max_pool1d output_size negative", api1d("adaptive_max_pool1d", X1, -1), ValueError,
     r"output_size must be non-negative, got output_size=-1"),
    ("adaptive_max_pool1d zero channels", api1d("adaptive_max_pool1d", np.zeros((2, 0, 5), np.float32), 2),
     ValueError, r"adaptive_max_pool1d: input must have non-zero channel and length dimensions"),
    ("adaptive_avg_pool1d zero length", api1d("adaptive_avg_pool1d", np.zeros((2, 3, 0), np.float32), 2),
     ValueError, r"adaptive_avg_pool1d: input must have non-zero length dimensions"),
    ("adaptive_max_pool1d_backward index past the row",
     api1d("adaptive_max_pool1d_backward", V1, I1 + 6, X1.shape), ValueError,
     r"indices contains 6, outside input_shape's length of length 6; valid indices are 0 <= index < 6"),
    ("max_unpool1d kernel_size pair", api1d("max_unpool1d", V1, I1, (2, 2)), ValueError,
     r"kernel_size must be an int or a tuple of one int for 1-D pooling"),
    ("max_unpool1d output_size of 2 entries", api1d("max_unpool1d", V1, I1, 2, output_size=(2, 6)), ValueError,
     r"output_size must have 1 or 3 elements, got output_size=\(2, 6\) with 2"),
    ("max_unpool1d output_size int", api1d("max_unpool1d", V1, I1, 2, output_size=6), TypeError,
     r"output_size must be None or a sequence of ints, got output_size=6"),
    ("max_unpool1d output_size out of range", api1d("max_unpool1d", V1, I1, 2, output_size=(8,)), ValueError,
     r"output_size must be strictly between 4 and 8 \(the default length 6 plus or minus the stride\)"),
    ("max_unpool1d index -1", api1d("max_unpool1d", V1, I1 * 0 - 1, 2), ValueError,
     r"indices contains -1, outside the unpooled output of length 6; valid indices are 0 <= index < 6"),
    ("max_unpool1d padding leaving no output", api1d("max_unpool1d", V1, I1, 2, 2, 5), ValueError,
     r"the unpooled output must have a positive length"),
    ("max_unpool1d int64 input", api1d("max_unpool1d", I1, I1, 2), TypeError,
     r"max_unpool1d does not support input.dtype=int64"),
    ("max_unpool1d_backward index past grad_output", api1d("max_unpool1d_backward", X1, I1 + 6), ValueError,
     r"indices contains 6, outside grad_output of length 6"),
    ("max_unpool1d_backward other channels", api1d("max_unpool1d_backward", X1, np.zeros((1, 3, 3), np.int64)),
     ValueError, r"indices must have grad_output's batch and channel dimensions"),
    ("MaxPool1d kernel_size pair", lambda m: cpool.MaxPool1d((2, 2)), ValueError, r"kernel_size=\(2, 2\) with 2"),
    ("AvgPool1d padding above half the kernel", lambda m: cpool.AvgPool1d(2, padding=2), ValueError,
     r"padding must be at most half of kernel_size, got padding=2 with kernel_size=2$"),
    ("MaxUnpool1d stride 0", lambda m: cpool.MaxUnpool1d(2, 0), ValueError, r"stride must be positive"),
]
ERROR_CASES += POOL1D_ERROR_CASES


# ------------------------------------------------------------ 3-D max pooling
X3 = np.zeros((1, 2, 4, 6, 6), dtype=np.float32)
OUT3, IDX3 = cpool.slow.max_pool3d(X3, 2, return_indices=True)
G3 = np.ones_like(OUT3)


def _max3d_of(m):
    """(max_pool3d, max_pool3d_backward) of a backend or of ``cpool``."""
    if m is cpool:
        return cpool.max_pool3d, cpool.max_pool3d_backward
    if m.module is cpool.slow:
        return cpool.slow.max_pool3d, cpool.slow.max_pool3d_backward
    return bind_max3d(m.module)


def fwd3(*args, **kwargs):
    return lambda m: _max3d_of(m)[0](*args, **kwargs)


def bwd3(*args, **kwargs):
    return lambda m: _max3d_of(m)[1](*args, **kwargs)


MAX3D_ERROR_CASES = [
    ("max_pool3d input with 3 dims", fwd3(np.zeros((4, 6, 6)), 2), ValueError,
     r"input must be a 4-D \(C, D, H, W\) or 5-D \(N, C, D, H, W\) array, got input.ndim=3"),
    ("max_pool3d input with 6 dims", fwd3(np.zeros((1, 1, 1, 4, 6, 6)), 2), ValueError, r"input.ndim=6"),
    ("max_pool3d zero depth", fwd3(np.zeros((1, 2, 0, 6, 6)), 2), ValueError,
     r"non-zero channel, depth, height and width .*input.shape=\(1, 2, 0, 6, 6\)"),
    ("max_pool3d bool dtype", fwd3(X3.astype(bool), 2), TypeError, r"max_pool3d does not support input.dtype=bool"),
    ("max_pool3d kernel_size pair", fwd3(X3, (2, 2)), ValueError,
     r"kernel_size must be a single int or a tuple of three ints, got kernel_size=\(2, 2\) with 2 elements"),
    ("max_pool3d kernel_size 0", fwd3(X3, 0), ValueError, r"kernel_size must be positive, got kernel_size=0"),
    ("max_pool3d kernel_size float", fwd3(X3, 2.0), TypeError, r"kernel_size=2.0"),
    ("max_pool3d stride 0", fwd3(X3, 2, (1, 0, 1)), ValueError, r"stride must be positive, got stride=\(1, 0, 1\)"),
    ("max_pool3d padding above half the kernel", fwd3(X3, 2, 1, (0, 2, 0)), ValueError,
     r"padding must be at most half of kernel_size, got padding=\(0, 2, 0\) with kernel_size=\(2, 2, 2\)"),
    ("max_pool3d dilation 0", fwd3(X3, 2, dilation=0), ValueError, r"dilation must be positive, got dilation=0"),
    ("max_pool3d output smaller than 1", fwd3(X3, 5), ValueError, r"output size is too small.*0x1x1"),
    ("max_pool3d data_format NCHW", fwd3(X3, 2, data_format="NCHW"), ValueError,
     r'data_format must be "NCDHW" or "NDHWC", got data_format=\'NCHW\''),
    ("max_pool3d return_indices not bool", fwd3(X3, 2, return_indices=1), TypeError, r"return_indices=1"),
    ("max_pool3d channels-last int8 volume over 127", fwd3(np.zeros((1, 1, 2, 8, 8, 2), np.int8)[0], 1,
                                                           data_format="NDHWC"), ValueError,
     r"max_pool3d on channels-last memory of dtype int8 takes volumes of at most 127 elements"),
    ("max_pool3d out wrong shape", fwd3(X3, 2, out=np.zeros((1, 2, 2, 3, 2), np.float32)), ValueError,
     r"out must have shape \(1, 2, 2, 3, 3\)"),
    ("max_pool3d out not a pair with return_indices", fwd3(X3, 2, return_indices=True, out=OUT3.copy()), TypeError,
     r"out must be a \(values, indices\) tuple"),
    ("max_pool3d_backward integer grad_output", bwd3(G3.astype(np.int64), IDX3, X3.shape), TypeError,
     r"max_pool3d_backward does not support grad_output.dtype=int64"),
    ("max_pool3d_backward indices int32", bwd3(G3, IDX3.astype(np.int32), X3.shape), TypeError,
     r"indices must be an int64 array as returned by max_pool3d"),
    ("max_pool3d_backward indices of another shape", bwd3(G3, IDX3[..., :1], X3.shape), ValueError,
     r"indices and grad_output must have the same shape"),
    ("max_pool3d_backward input_shape wrong batch", bwd3(G3, IDX3, (2, 2, 4, 6, 6)), ValueError,
     r"input_shape and grad_output must agree in their leading \(batch, channel\) dimensions"),
    ("max_pool3d_backward input_shape zero depth", bwd3(G3, IDX3, (1, 2, 0, 6, 6)), ValueError,
     r"input_shape must have non-zero channel, depth, height and width dimensions"),
    ("max_pool3d_backward index past the volume", bwd3(G3, np.where(IDX3 == IDX3.max(), 144, IDX3), X3.shape),
     ValueError, r"indices contains 144, outside the volume of 4x6x6=144 elements"),
    ("max_pool3d_backward index below -1", bwd3(G3, np.where(IDX3 == 0, -2, IDX3), X3.shape), ValueError,
     r"indices contains -2, outside the volume"),
    ("max_pool3d_backward out wrong dtype", bwd3(G3, IDX3, X3.shape, out=np.zeros(X3.shape)), TypeError,
     r"out must have dtype float32, got out.dtype=float64"),
    ("MaxPool3d padding above half the kernel", lambda m: cpool.MaxPool3d(2, padding=2), ValueError,
     r"padding must be at most half of kernel_size"),
]
ERROR_CASES += MAX3D_ERROR_CASES


# 3-D average pooling: as for the 2-D rows, each call writes into an out=
# filled with SENTINEL that the error must leave as it is.
X3 = np.zeros((1, 2, 4, 4, 4), dtype=np.float32)
G3 = np.ones((1, 2, 2, 2, 2), dtype=np.float32)
AVG3D_OUTS = []


def _avg3d_of(m):
    """(avg_pool3d, avg_pool3d_backward, AvgPool3d backend name) of a backend or of ``cpool``."""
    if m is cpool:
        return cpool.avg_pool3d, cpool.avg_pool3d_backward, None
    if m.module is cpool.slow:
        return cpool.slow.avg_pool3d, cpool.slow.avg_pool3d_backward, m.name
    return (*bind_avg3d(m.module), m.name)


def _sentinel3d(shape):
    out = np.full(shape, SENTINEL, np.float32)
    AVG3D_OUTS.append(out)
    return out


def avg3d_fwd(input, *args, out_shape=G3.shape, **kwargs):
    out = _sentinel3d(out_shape)
    return lambda m: _avg3d_of(m)[0](input, *args, **kwargs, out=out)


def avg3d_bwd(grad_output, input_shape, *args, **kwargs):
    out = _sentinel3d(X3.shape)
    return lambda m: _avg3d_of(m)[1](grad_output, input_shape, *args, **kwargs, out=out)


def avg3d_layer(*args, **kwargs):
    return lambda m: cpool.AvgPool3d(*args, **kwargs, backend=_avg3d_of(m)[2])


AVG3D_ERROR_CASES = [
    ("avg_pool3d float16 dtype", avg3d_fwd(X3.astype(np.float16), 2), TypeError,
     r"avg_pool3d does not support input.dtype=float16; supported dtypes: float32, float64, int64$"),
    ("avg_pool3d int32 dtype", avg3d_fwd(X3.astype(np.int32), 2), TypeError, r"avg_pool3d .*input.dtype=int32"),
    ("avg_pool3d 4-D kernel_size", avg3d_fwd(X3, (2, 2)), ValueError,
     r"kernel_size must be a single int or a tuple of three ints, got kernel_size=\(2, 2\)"),
    ("avg_pool3d stride 0", avg3d_fwd(X3, 2, 0), ValueError, r"stride must be positive, got stride=0"),
    ("avg_pool3d padding above half the kernel", avg3d_fwd(X3, 2, 2, 2), ValueError,
     r"padding must be at most half of kernel_size, got padding=\(2, 2, 2\) with kernel_size=\(2, 2, 2\)"),
    ("avg_pool3d input smaller than the kernel", avg3d_fwd(X3[:, :, :1], 2, 1, 1), ValueError,
     r"input must be at least as large as kernel_size in depth, height and width, "
     r"got input.shape=\(1, 2, 1, 4, 4\) \(D=1, H=4, W=4\) with kernel_size=\(2, 2, 2\)"),
    ("avg_pool3d 3-D input", avg3d_fwd(X3[0, 0], 2), ValueError, r"input must be a 4-D \(C, D, H, W\) or 5-D"),
    ("avg_pool3d zero depth", avg3d_fwd(X3[:, :, :0], 2), ValueError,
     r"input must have non-zero channel, depth, height and width dimensions"),
    ("avg_pool3d divisor_override 0", avg3d_fwd(X3, 2, divisor_override=0), ValueError,
     r"divisor_override must not be zero, got divisor_override=0"),
    ("avg_pool3d divisor_override float", avg3d_fwd(X3, 2, divisor_override=2.0), TypeError,
     r"divisor_override must be None or an int, got divisor_override=2.0 \(type float\)"),
    ("avg_pool3d divisor_override beyond int64", avg3d_fwd(X3, 2, divisor_override=-2**63 - 1), ValueError,
     r"divisor_override must fit in int64"),
    ("avg_pool3d count_include_pad not bool", avg3d_fwd(X3, 2, count_include_pad=0), TypeError,
     r"count_include_pad must be a bool, got count_include_pad=0 \(type int\)"),
    ("avg_pool3d ceil_mode not bool", avg3d_fwd(X3, 2, ceil_mode="no"), TypeError, r"ceil_mode='no'"),
    ("avg_pool3d 2-D data_format", avg3d_fwd(X3, 2, data_format="NCHW"), ValueError, r"data_format='NCHW'"),
    ("avg_pool3d out of another shape", avg3d_fwd(X3, 2, out_shape=(1, 2, 2, 2, 1)), ValueError, r"out"),
    ("avg_pool3d_backward float16 grad_output", avg3d_bwd(G3.astype(np.float16), X3.shape, 2), TypeError,
     r"avg_pool3d_backward does not support grad_output.dtype=float16; supported dtypes: float32, float64, "
     r"int64$"),
    ("avg_pool3d_backward grad_output of another output size", avg3d_bwd(G3[..., :1], X3.shape, 2), ValueError,
     r"grad_output must have the output size of input_shape=\(1, 2, 4, 4, 4\) \(2x2x2\), "
     r"got grad_output.shape=\(1, 2, 2, 2, 1\)"),
    ("avg_pool3d_backward input_shape smaller than the kernel", avg3d_bwd(G3, (1, 2, 4, 4, 1), 2, 1, 1),
     ValueError, r"input_shape must be at least as large as kernel_size"),
    ("avg_pool3d_backward input_shape of another batch", avg3d_bwd(G3, (2, 2, 4, 4, 4), 2), ValueError,
     r"input_shape and grad_output must agree in their leading \(batch, channel\) dimensions"),
    ("avg_pool3d_backward input_shape negative", avg3d_bwd(G3, (1, 2, -4, 4, 4), 2), ValueError,
     r"input_shape must not have negative dimensions"),
    ("avg_pool3d_backward divisor_override 0", avg3d_bwd(G3, X3.shape, 2, divisor_override=0), ValueError,
     r"divisor_override must not be zero, got divisor_override=0"),
    ("AvgPool3d divisor_override 0", avg3d_layer(2, divisor_override=0), ValueError,
     r"divisor_override must not be zero, got divisor_override=0"),
    ("AvgPool3d padding above half the kernel", avg3d_layer(2, padding=2), ValueError,
     r"padding must be at most half of kernel_size"),
    ("AvgPool3d 2-D data_format", avg3d_layer(2, data_format="NHWC"), ValueError, r"data_format='NHWC'"),
]
ERROR_CASES += AVG3D_ERROR_CASES


def test_avg3d_errors_write_nothing(backend):
    # every out= handed to a 3-D average-pooling row still holds only SENTINEL
    for _, call, exc, pattern in AVG3D_ERROR_CASES:
        with pytest.raises(exc, match=pattern):
            call(backend)
    assert len(AVG3D_OUTS) == sum(1 for c in AVG3D_ERROR_CASES if not c[0].startswith("AvgPool3d"))
    for out in AVG3D_OUTS:
        assert (out == SENTINEL).all()


# 3-D adaptive pooling and max unpooling.
def _public3d(m, name):
    """A 3-D adaptive / unpooling function of a backend (``cpool``, or a helpers.Backend)."""
    if m is cpool or m.module is cpool.slow:
        return getattr(cpool if m is cpool else cpool.slow, name)
    from cpool.functional import bind_adaptive3d, bind_unpool3d
    fns = dict(zip(("adaptive_avg_pool3d", "adaptive_avg_pool3d_backward", "adaptive_max_pool3d",
                    "adaptive_max_pool3d_backward"), bind_adaptive3d(m.module)))
    fns.update(zip(("max_unpool3d", "max_unpool3d_backward"), bind_unpool3d(m.module)))
    return fns[name]


def api3d(name, *args, **kwargs):
    return lambda m: _public3d(m, name)(*args, **kwargs)


X3 = np.zeros((1, 2, 4, 4, 4), np.float32)
G3 = np.ones((1, 2, 2, 2, 2), np.float32)
I3 = np.zeros((1, 2, 2, 2, 2), np.int64)
ADAPTIVE3D_UNPOOL3D_ERROR_CASES = [
    ("adaptive_avg_pool3d int64 input", api3d("adaptive_avg_pool3d", X3.astype(np.int64), 2), TypeError,
     r"adaptive_avg_pool3d does not support input.dtype=int64; supported dtypes: float16, float32, float64$"),
    ("adaptive_max_pool3d 4-D output_size", api3d("adaptive_max_pool3d", X3, (1, 2)), ValueError,
     r"output_size must be an int or a tuple of three ints or Nones, got output_size=\(1, 2\) with 2 elements"),
    ("adaptive_avg_pool3d output_size negative", api3d("adaptive_avg_pool3d", X3, (2, -1, 2)), ValueError,
     r"output_size must be non-negative, got output_size=\(2, -1, 2\)"),
    ("adaptive_avg_pool3d output_size float", api3d("adaptive_avg_pool3d", X3, (2, 2.0, 2)), TypeError,
     r"output_size must be an int or a tuple of three ints or Nones, got output_size=\(2, 2.0, 2\)"),
    ("adaptive_avg_pool3d 3-D input", api3d("adaptive_avg_pool3d", X3[0, 0], 2), ValueError,
     r"input must be a 4-D \(C, D, H, W\) or 5-D \(N, C, D, H, W\) array, got input.ndim=3"),
    ("adaptive_max_pool3d zero depth", api3d("adaptive_max_pool3d", np.zeros((1, 2, 0, 4, 4), np.float32), 2),
     ValueError, r"adaptive_max_pool3d: input must have non-zero channel, depth, height and width dimensions"),
    ("adaptive_avg_pool3d data_format NCHW", api3d("adaptive_avg_pool3d", X3, 2, data_format="NCHW"), ValueError,
     r'data_format must be "NCDHW" or "NDHWC", got data_format=\'NCHW\''),
    ("adaptive_avg_pool3d_backward other channels",
     api3d("adaptive_avg_pool3d_backward", np.ones((1, 3, 2, 2, 2), np.float32), X3.shape), ValueError,
     r"input_shape and grad_output must agree in their leading \(batch, channel\) dimensions"),
    ("adaptive_avg_pool3d_backward zero-width input_shape",
     api3d("adaptive_avg_pool3d_backward", G3, (1, 2, 4, 4, 0)), ValueError,
     r"input_shape must have non-zero channel, depth, height and width dimensions"),
    ("adaptive_max_pool3d_backward index outside the volume",
     api3d("adaptive_max_pool3d_backward", G3, np.full((1, 2, 2, 2, 2), 64), X3.shape), ValueError,
     r"indices contains 64, outside the volume of 4x4x4=64 elements \(input_shape's depth, height and width\)"),
    ("adaptive_max_pool3d_backward int32 indices",
     api3d("adaptive_max_pool3d_backward", G3, I3.astype(np.int32), X3.shape), TypeError,
     r"indices must be an int64 array"),
    ("max_unpool3d int64 input", api3d("max_unpool3d", I3, I3, 2), TypeError,
     r"max_unpool3d does not support input.dtype=int64"),
    ("max_unpool3d index -1", api3d("max_unpool3d", G3, I3 - 1, 2), ValueError,
     r"indices contains -1, outside the unpooled volume of 4x4x4=64 elements"),
    ("max_unpool3d index past the volume", api3d("max_unpool3d", G3, I3 + 64, 2), ValueError,
     r"indices contains 64, outside the unpooled volume of 4x4x4=64 elements; valid indices are 0 <= index < 64"),
    ("max_unpool3d indices of another shape", api3d("max_unpool3d", G3, I3[..., :1], 2), ValueError,
     r"indices and input must have the same shape for max_unpool3d"),
    ("max_unpool3d kernel_size of two", api3d("max_unpool3d", G3, I3, (2, 2)), ValueError,
     r"kernel_size must be a single int or a tuple of three ints, got kernel_size=\(2, 2\) with 2 elements"),
    ("max_unpool3d stride 0", api3d("max_unpool3d", G3, I3, 2, 0), ValueError, r"stride must be positive"),
    ("max_unpool3d output_size out of range", api3d("max_unpool3d", G3, I3, 2, output_size=(6, 4, 4)), ValueError,
     r"output_size must be strictly between 2 and 6 in dimension 0"),
    ("max_unpool3d output_size of 2 entries", api3d("max_unpool3d", G3, I3, 2, output_size=(4, 4)), ValueError,
     r"output_size must have 3 or 5 elements, got output_size=\(4, 4\) with 2"),
    ("max_unpool3d padding leaving no output", api3d("max_unpool3d", G3, I3, 2, 2, 2), ValueError,
     r"the unpooled output must have a positive depth, height and width, got 0x0x0"),
    ("max_unpool3d zero channels", api3d("max_unpool3d", G3[:, :0], I3[:, :0], 2), ValueError,
     r"max_unpool3d: input must have non-zero channel, depth, height and width dimensions"),
    ("max_unpool3d_backward other channels",
     api3d("max_unpool3d_backward", np.ones((1, 3, 4, 4, 4), np.float32), I3), ValueError,
     r"indices must have grad_output's batch and channel dimensions"),
    ("max_unpool3d_backward index past the volume",
     api3d("max_unpool3d_backward", np.ones((1, 2, 4, 4, 4), np.float32), I3 + 64), ValueError,
     r"indices contains 64, outside the unpooled volume of 4x4x4=64 elements"),
]
ERROR_CASES += ADAPTIVE3D_UNPOOL3D_ERROR_CASES


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_input_raises(backend, case):
    _, call, exc, pattern = case
    with pytest.raises(exc, match=pattern):
        call(backend)


def test_public_functions_raise_the_same():
    for _, call, exc, pattern in ERROR_CASES:
        with pytest.raises(exc, match=pattern):
            call(cpool)


def test_avg_errors_write_nothing(backend):
    # every out= handed to an average-pooling row still holds only SENTINEL
    for _, call, exc, pattern in AVG_ERROR_CASES:
        with pytest.raises(exc, match=pattern):
            call(backend)
    assert len(AVG_OUTS) == sum(1 for c in AVG_ERROR_CASES if not c[0].startswith("AvgPool2d"))
    for out in AVG_OUTS:
        assert (out == SENTINEL).all()


def test_index_errors_leave_no_partial_work(backend):
    # The error is raised and no array is returned; the caller's arrays are untouched.
    bad = IDX.copy()
    bad[0, 1, 2, 2] = 99
    g = G.copy()
    with pytest.raises(ValueError, match="99"):
        backend.max_pool2d_backward(g, bad, X.shape)
    assert np.array_equal(g, G) and bad[0, 1, 2, 2] == 99


# ------------------------------------------------------ hostile indices
# Overlapping windows (k2 s1) on 6x7 planes, so no index lies in its own cell.
HX = np.random.default_rng(0).standard_normal((2, 3, 6, 7))
HOUT, HIDX = cpool.slow.max_pool2d(HX, 2, 1, return_indices=True)
HG = np.random.default_rng(1).standard_normal(HOUT.shape)
PLANE = 6 * 7
I64 = np.iinfo(np.int64)


def with_value(value, where=(0, 0, 0, 0), idx=HIDX):
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
def test_hostile_index_raises_value_error(backend, name, value, where):
    bad = with_value(value, where)
    g = HG.copy()
    with pytest.raises(ValueError, match=rf"indices contains {value}, outside the plane of 6x7=42"):
        backend.max_pool2d_backward(g, bad, HX.shape)
    assert np.array_equal(g, HG) and bad[where] == value


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_hostile_index_every_grad_dtype(backend, dtype):
    with pytest.raises(ValueError, match="indices contains 42,"):
        backend.max_pool2d_backward(HG.astype(dtype), with_value(42), HX.shape)


def test_first_bad_index_in_c_order_is_reported(backend):
    bad = HIDX.copy()
    bad[1, 1, 0, 0] = -7
    bad[0, 2, 4, 5] = 99  # earlier in C order
    bad[1, 2, 4, 5] = 2**40
    with pytest.raises(ValueError, match="indices contains 99,"):
        backend.max_pool2d_backward(HG, bad, HX.shape)


def test_every_index_bad(backend):
    for value in (PLANE, -2, int(I64.max), int(I64.min)):
        with pytest.raises(ValueError, match=f"indices contains {value},"):
            backend.max_pool2d_backward(HG, np.full_like(HIDX, value), HX.shape)


@pytest.mark.parametrize("layout", ["view", "fortran", "negative", "byte-swapped", "unaligned", "read-only"])
def test_hostile_index_in_odd_layouts(backend, layout):
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
        view = unaligned_copy(bad)
        assert not view.flags.aligned
    else:
        view = bad.copy()
        view.flags.writeable = False
    with pytest.raises(ValueError, match=f"indices contains {PLANE + 2},"):
        backend.max_pool2d_backward(HG, view, HX.shape)
    # and the same layout with good indices gives the right gradient
    good = np.where(view == PLANE + 2, HIDX, view).astype(view.dtype)
    assert np.array_equal(backend.max_pool2d_backward(HG, good, HX.shape),
                          cpool.slow.max_pool2d_backward(HG, HIDX, HX.shape))


def test_byte_swapped_valid_indices(backend):
    # 1 as big-endian int64 reads as 2**56 if the bytes were used raw.
    assert np.array_equal(backend.max_pool2d_backward(HG, HIDX.astype(">i8"), HX.shape),
                          cpool.slow.max_pool2d_backward(HG, HIDX, HX.shape))


def test_hostile_index_on_the_threaded_path(backend):
    # Large enough that the compiled backward runs over planes in parallel:
    # the bad-index count is a reduction across threads.
    x = np.random.default_rng(2).standard_normal((8, 32, 64, 64)).astype(np.float32)
    out, idx = cpool.slow.max_pool2d(x, 2, return_indices=True)
    g = np.ones_like(out)
    for where in [(0, 0, 0, 0), (7, 31, 31, 31), (4, 0, 0, 0), (3, 31, 31, 31)]:
        for value in (64 * 64, -2, int(I64.min), int(I64.max)):
            bad = with_value(value, where, idx)
            with pytest.raises(ValueError, match=f"indices contains {value},"):
                backend.max_pool2d_backward(g, bad, x.shape)
    many = idx.copy()
    many[:, :, ::3, ::5] = 64 * 64 + 7
    with pytest.raises(ValueError, match=f"indices contains {64 * 64 + 7},"):
        backend.max_pool2d_backward(g, many, x.shape)


def test_minus_one_is_skipped(backend):
    skip = np.full_like(HIDX, -1)
    assert not backend.max_pool2d_backward(HG, skip, HX.shape).any()
    some = HIDX.copy()
    some[0, 0] = -1
    expected = cpool.slow.max_pool2d_backward(np.where(some < 0, 0.0, HG), HIDX, HX.shape)
    assert np.array_equal(backend.max_pool2d_backward(HG, some, HX.shape), expected)


def test_indices_from_a_larger_input_are_rejected(backend):
    # Indices of a 12x12 forward handed to a 6x7 backward: a classic mix-up.
    x = np.random.default_rng(3).standard_normal((2, 3, 12, 14))
    _, idx = cpool.slow.max_pool2d(x, 2, return_indices=True)
    g = np.ones(idx.shape)
    bad_first = idx.reshape(-1)[idx.reshape(-1) >= PLANE][0]
    with pytest.raises(ValueError, match=f"indices contains {bad_first},"):
        backend.max_pool2d_backward(g, idx, (2, 3, 6, 7))


def test_module_with_tampered_indices(backend):
    layer = cpool.MaxPool2d(2, 1, backend=backend.name)
    layer.forward(HX)
    layer.indices[1, 2, 0, 0] = 10**12
    with pytest.raises(ValueError, match="indices contains 1000000000000,"):
        layer.backward(HX, HG)


def test_backward_before_forward_is_value_error():
    layer = cpool.MaxPool2d(2)
    with pytest.raises(ValueError, match="before forward"):
        layer.backward(HX, np.ones((2, 3, 3, 3)))


# ------------------------------------------------------------------ inputs
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
def test_convertible_inputs_pool_like_the_array(backend, make):
    value = make()
    arr = np.array(np.asarray(value))
    out, idx = backend.max_pool2d(value, 2, 1, return_indices=True)
    ref_out, ref_idx = cpool.slow.max_pool2d(arr, 2, 1, return_indices=True)
    assert type(out) is np.ndarray and type(idx) is np.ndarray
    assert out.tobytes() == ref_out.tobytes() and np.array_equal(idx, ref_idx)


def test_torch_tensor_input(backend):
    torch = pytest.importorskip("torch")
    t = torch.tensor(NESTED, dtype=torch.float32)
    out = backend.max_pool2d(t, 2, 1)
    assert type(out) is np.ndarray and out.tobytes() == cpool.slow.max_pool2d(t.numpy(), 2, 1).tobytes()


def test_lists_to_backward(backend):
    out, idx = backend.max_pool2d(np.array(NESTED), 2, 1, return_indices=True)
    gi = backend.max_pool2d_backward(np.ones(out.shape).tolist(), idx.tolist(), list((2, 2, 3)))
    assert gi.dtype == np.float64 and gi.sum() == out.size
    gi2 = backend.max_pool2d_backward(np.ones(out.shape), idx, np.array([2, 2, 3]))
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
def test_unconvertible_inputs(backend, value, exc, pattern):
    with pytest.raises(exc, match=pattern.replace("|", r"\|")):
        backend.max_pool2d(value, 1)


def test_unconvertible_backward_arguments(backend):
    with pytest.raises(TypeError, match="grad_output could not be converted"):
        backend.max_pool2d_backward(Unconvertible(), HIDX, HX.shape)
    with pytest.raises(TypeError, match="indices could not be converted"):
        backend.max_pool2d_backward(HG, Unconvertible(), HX.shape)
    with pytest.raises(TypeError, match="indices"):
        backend.max_pool2d_backward(HG, HIDX.astype(object), HX.shape)
    with pytest.raises(TypeError, match="input_shape"):
        backend.max_pool2d_backward(HG, HIDX, None)
    with pytest.raises(TypeError, match="input_shape"):
        backend.max_pool2d_backward(HG, HIDX, (2, 3, 6, Unconvertible()))
    with pytest.raises(ValueError, match="input_shape"):
        backend.max_pool2d_backward(HG, HIDX, (2, 3, -6, 7))
    with pytest.raises(ValueError, match="input_shape is too large"):
        backend.max_pool2d_backward(HG, HIDX, (2, 3, 2**40, 2**40))
