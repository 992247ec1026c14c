"""Argument normalisation and checking: the one argument path of every backend.

The public functions (:mod:`cpool.functional`, :mod:`cpool.slow`) and
:class:`cpool.MaxPool2d` call :func:`prepare_forward` / :func:`prepare_backward`
before handing arrays to a backend, so every backend accepts and rejects
exactly the same inputs and they cannot drift apart. The rules follow PyTorch 2.13's ``max_pool2d``
(``aten/src/ATen/native/Pool.h``), except that PyTorch raises ``RuntimeError``
where cpool raises ``ValueError`` (bad values) or ``TypeError`` (bad types),
always naming the argument and the offending value.
"""

from __future__ import annotations

import functools
import numbers
import operator
from typing import NamedTuple

import numpy as np

__all__ = [
    "PoolGeometry",
    "GEOMETRY_FIELDS",
    "FORWARD_DTYPES",
    "BACKWARD_DTYPES",
    "INT32_PLANE",
    "parse_pool_args",
    "output_size",
    "pool_geometry",
    "as_input_array",
    "as_native",
    "prepare_forward",
    "prepare_backward",
    "index_dtype_for",
    "check_index_range",
    "index_error",
]

# The order dtypes are listed in, in messages.
_DTYPE_ORDER = tuple(
    np.dtype(t)
    for t in (np.float16, np.float32, np.float64, np.uint8, np.int8, np.int16, np.int32, np.int64)
)
#: dtypes accepted by the forward pass (PyTorch's ALL_TYPES_AND2(Half, BFloat16)
#: minus bfloat16, which NumPy lacks).
FORWARD_DTYPES = frozenset(_DTYPE_ORDER)
#: dtypes accepted by the backward pass (PyTorch: FLOATING_TYPES_AND2).
BACKWARD_DTYPES = frozenset(_DTYPE_ORDER[:3])

_INT64 = np.dtype(np.int64)
_INT32 = np.dtype(np.int32)

#: Planes of this many elements or more get int64 indices whatever was asked
#: (int32 offsets would overflow); the kernels keep 32-bit offsets below it.
INT32_PLANE = 2**31

# PyTorch stores every pooling parameter in a C ``int`` (safe_downcast in
# Pool.h) and rejects larger values; so do we, which also keeps every size
# product in the kernels far from int64 overflow.
_INT_MAX = 2**31 - 1


class PoolGeometry(NamedTuple):
    """Everything a kernel needs to know about one pooling problem.

    Plain Python ints, in the order the compiled kernels read them
    (``cpool/_src/common.h``'s ``cpool_geometry`` and the extension's
    ``GEOMETRY_FIELDS``): kernel, stride, padding and dilation as (height,
    width) pairs, then the input plane and the output plane.
    """

    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    H: int
    W: int
    OH: int
    OW: int


#: PoolGeometry's fields; the extension checks that it reads them in this order.
GEOMETRY_FIELDS = PoolGeometry._fields


def _describe(value) -> str:
    return f"{value!r} (type {type(value).__name__})"


def _is_int(value) -> bool:
    # bool is an int subclass, but PyTorch rejects kernel_size=True and so do we.
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _as_int(value, name: str) -> int:
    if not _is_int(value):
        raise TypeError(f"{name} must be an int or a tuple of two ints, got {name}={_describe(value)}")
    return operator.index(value)


def _shape_item(value) -> int:
    if not _is_int(value):
        raise TypeError(f"input_shape must contain only ints, got an element {_describe(value)}")
    return operator.index(value)


def _pair(value, name: str, *, allow_none: bool = False):
    """Normalise an int or a 1- or 2-sequence of ints into a pair of ints."""
    if value is None and allow_none:
        return None
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an int or a tuple of two ints, got {name}={_describe(value)}")
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            value = value.item()
        else:
            value = value.tolist()
    if isinstance(value, (tuple, list)):
        if len(value) not in (1, 2):
            raise ValueError(
                f"{name} must be a single int or a tuple of two ints, got {name}={value!r} "
                f"with {len(value)} elements"
            )
        items = tuple(_as_int(v, name) for v in value)
        if len(items) == 1:
            items = items * 2
        return items
    v = _as_int(value, name)
    return (v, v)


def _as_bool(value, name: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be a bool, got {name}={_describe(value)}")


def _all_plain(*values) -> bool:
    """True if each value is an int or a tuple of ints *by exact type*.

    Only such arguments are cached: ``True == 1`` and ``np.int64(2) == 2``
    hash alike, and a cache keyed on equality would let ``kernel_size=True``
    through as if it were 1. (One call for all four arguments, and the usual
    pair tested without a generator: this runs on every call.)
    """
    for value in values:
        if type(value) is int:
            continue
        if type(value) is not tuple:
            return False
        if len(value) == 2:
            if type(value[0]) is not int or type(value[1]) is not int:
                return False
        elif not all(type(v) is int for v in value):
            return False
    return True


def parse_pool_args(kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Check the pooling hyper-parameters on their own (no input needed).

    Results for plain int / tuple-of-int arguments are cached, so a layer
    called every batch pays for the checks once.

    Returns ``(kernel, stride, padding, dilation, ceil_mode)`` with each of the
    first four a pair of ints. Raises ``TypeError`` for wrong types and
    ``ValueError`` for values PyTorch rejects: kernel/stride/dilation < 1,
    negative padding, padding above half the kernel, or values that do not fit
    PyTorch's 32-bit parameters.
    """
    if type(ceil_mode) is bool and _all_plain(kernel_size, 1 if stride is None else stride, padding, dilation):
        return _parse_pool_args_cached(kernel_size, stride, padding, dilation, ceil_mode)
    return _parse_pool_args(kernel_size, stride, padding, dilation, ceil_mode)


def _parse_pool_args(kernel_size, stride, padding, dilation, ceil_mode):
    kernel = _pair(kernel_size, "kernel_size")
    stride_ = _pair(stride, "stride", allow_none=True)
    pad = _pair(padding, "padding")
    dil = _pair(dilation, "dilation")
    ceil = _as_bool(ceil_mode, "ceil_mode")
    if stride_ is None:
        stride_ = kernel

    def show(name, pair, given):
        return f"{name}={given!r}" if not isinstance(given, (tuple, list)) else f"{name}={tuple(pair)!r}"

    for name, pair, given, low in (
        ("kernel_size", kernel, kernel_size, 1),
        ("stride", stride_, kernel_size if stride is None else stride, 1),
        ("dilation", dil, dilation, 1),
        ("padding", pad, padding, 0),
    ):
        if min(pair) < low:
            what = "positive" if low == 1 else "non-negative"
            origin = " (stride defaults to kernel_size)" if name == "stride" and stride is None else ""
            raise ValueError(f"{name} must be {what}, got {show(name, pair, given)}{origin}")
        if max(pair) > _INT_MAX:
            raise ValueError(f"{name} must be at most 2**31 - 1, got {show(name, pair, given)}")
    # PyTorch 2.13 compares padding with half the *kernel size* (not the
    # dilated, effective kernel): pool2d_shape_check's `kW/2 >= padW`.
    if pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
        raise ValueError(
            f"padding must be at most half of kernel_size, got padding={tuple(pad)!r} "
            f"with kernel_size={tuple(kernel)!r}"
        )
    return kernel, stride_, pad, dil, ceil


_parse_pool_args_cached = functools.lru_cache(maxsize=256)(_parse_pool_args)


def output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's ``pooling_output_shape``: output length along one axis."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    # In ceil mode the last window must start inside the input or the left
    # padding; a window starting in the right padding is dropped.
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def as_input_array(value, name: str = "input") -> np.ndarray:
    """Convert ``value`` to an ndarray without copying when it already is one.

    ndarray subclasses (np.ma.MaskedArray, np.matrix, memmap, ...) become a
    plain ndarray view of the same memory, so both backends see (and return)
    the same type; a mask is not applied.
    """
    if type(value) is np.ndarray:
        arr = value
    elif isinstance(value, np.ndarray):
        arr = value.view(np.ndarray)
    else:
        try:
            arr = np.asarray(value)
        except Exception as exc:  # ragged lists, objects whose __array__ fails
            raise TypeError(f"{name} could not be converted to a numpy array: {exc!r}") from exc
    return arr


def _check_dtype(arr: np.ndarray, name: str, allowed: frozenset, what: str) -> None:
    dt = arr.dtype
    if dt in allowed:  # the common, native-order case: one hash lookup
        return
    native = dt.newbyteorder("=") if dt.byteorder not in ("=", "|") else dt
    if native not in allowed:
        names = ", ".join(str(d) for d in sorted(allowed, key=_DTYPE_ORDER.index))
        raise TypeError(f"{what} does not support {name}.dtype={dt!s}; supported dtypes: {names}")


def pool_geometry(shape, kernel, stride, padding, dilation, ceil_mode, *, name="input") -> PoolGeometry:
    """Check ``shape`` against the parameters and compute the output size."""
    return _pool_geometry(tuple(shape), kernel, stride, padding, dilation, ceil_mode, name)


@functools.lru_cache(maxsize=256)
def _pool_geometry(shape, kernel, stride, padding, dilation, ceil_mode, name) -> PoolGeometry:
    C, H, W = shape[-3:]
    if C == 0 or H == 0 or W == 0:
        raise ValueError(
            f"{name} must have non-zero channel, height and width dimensions "
            f"(only the batch dimension may be 0), got {name}.shape={tuple(shape)!r}"
        )
    OH = output_size(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    OW = output_size(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    if OH < 1 or OW < 1:
        raise ValueError(
            f"output size is too small: {name}.shape={tuple(shape)!r} with kernel_size={kernel!r}, "
            f"stride={stride!r}, padding={padding!r}, dilation={dilation!r}, ceil_mode={ceil_mode} "
            f"gives an output of {OH}x{OW}"
        )
    return PoolGeometry(
        kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1],
        dilation[0], dilation[1], H, W, OH, OW,
    )


def _check_ndim(arr: np.ndarray, name: str) -> None:
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"{name} must be a 3-D (C, H, W) or 4-D (N, C, H, W) array, "
            f"got {name}.ndim={arr.ndim} with {name}.shape={arr.shape!r}"
        )


def as_native(arr: np.ndarray) -> np.ndarray:
    """``arr`` itself, or a C-contiguous, aligned, native-byte-order copy of it.

    The layout every backend computes on. A copy happens only for
    non-contiguous, byte-swapped or unaligned input (an unaligned buffer,
    e.g. ``np.frombuffer(..., offset=1)``, must never reach the kernels:
    their loads assume the element alignment); the caller's array is never
    written to.
    """
    flags = arr.flags
    if not (flags.c_contiguous and flags.aligned and arr.dtype.isnative):
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
        if not arr.flags.aligned:  # a contiguous unaligned array passes through ascontiguousarray
            arr = arr.copy()
    return arr


# Geometries of forward calls already checked, keyed by everything the checks
# read, for calls whose arguments are a plain ndarray and exact ints/tuples of
# ints/bools: a layer called every batch with the same shapes pays for the
# checks once, in one dictionary lookup (the checks one by one cost more than
# the kernel on small inputs). Only successes are stored, so errors are
# always raised by the full checks, in their order.
_FORWARD_CHECKED: dict = {}
_CHECKED_MAX = 256


def prepare_forward(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    """Validate a forward call. Returns ``(array, geometry, return_indices)``.

    The array is the caller's input in the layout backends compute on
    (:func:`as_native`: the input itself when it already is).
    """
    if (type(input) is np.ndarray and type(ceil_mode) is bool and type(return_indices) is bool
            and _all_plain(kernel_size, 1 if stride is None else stride, padding, dilation)):
        key = (input.shape, input.dtype, kernel_size, stride, padding, dilation, ceil_mode)
        geom = _FORWARD_CHECKED.get(key)
        if geom is None:
            _, geom, _ = _prepare_forward(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
            if len(_FORWARD_CHECKED) >= _CHECKED_MAX:
                _FORWARD_CHECKED.clear()
            _FORWARD_CHECKED[key] = geom
        return as_native(input), geom, return_indices
    arr, geom, with_indices = _prepare_forward(input, kernel_size, stride, padding, dilation, ceil_mode,
                                               return_indices)
    return as_native(arr), geom, with_indices


def _prepare_forward(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    kernel, stride_, pad, dil, ceil = parse_pool_args(kernel_size, stride, padding, dilation, ceil_mode)
    with_indices = _as_bool(return_indices, "return_indices")
    arr = as_input_array(input)
    _check_dtype(arr, "input", FORWARD_DTYPES, "max_pool2d")
    _check_ndim(arr, "input")
    return arr, pool_geometry(arr.shape, kernel, stride_, pad, dil, ceil), with_indices


def index_dtype_for(g: PoolGeometry, wanted: np.dtype) -> np.dtype:
    """``wanted`` (int64, or int32 for MaxPool2d's own use), unless a plane
    is too large for int32 offsets: then int64."""
    return _INT64 if g.H * g.W >= INT32_PLANE else wanted


def _as_shape(input_shape, ndim: int):
    if type(input_shape) is tuple and len(input_shape) == ndim and all(type(v) is int for v in input_shape):
        return input_shape  # the usual `x.shape`
    if isinstance(input_shape, np.ndarray):
        input_shape = input_shape.tolist()
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"input_shape must be a tuple of ints, got input_shape={_describe(input_shape)}")
    shape = tuple(_shape_item(v) for v in input_shape)
    if len(shape) != ndim:
        raise ValueError(
            f"input_shape must have as many dimensions as grad_output ({ndim}), got input_shape={shape!r}"
        )
    return shape


_BACKWARD_CHECKED: set = set()


def prepare_backward(grad_output, indices, input_shape, *, int32_indices=False):
    """Validate a backward call. Returns ``(grad_output, indices, input_shape)``,
    the arrays in the layout backends compute on (:func:`as_native`).

    Checks types, dtypes and shapes. The range of the index values is checked
    by the backend (the compiled kernel checks each index as it uses it).
    ``int32_indices``: also accept int32 indices (MaxPool2d's own format).
    Calls whose checks passed before with the same plain arguments are
    recognised in one set lookup, as in :func:`prepare_forward`.
    """
    if (type(grad_output) is np.ndarray and type(indices) is np.ndarray and type(input_shape) is tuple
            and _all_plain(*input_shape)):
        key = (grad_output.shape, grad_output.dtype, indices.shape, indices.dtype, input_shape, int32_indices)
        if key not in _BACKWARD_CHECKED:
            _check_backward(grad_output, indices, input_shape, int32_indices)
            if len(_BACKWARD_CHECKED) >= _CHECKED_MAX:
                _BACKWARD_CHECKED.clear()
            _BACKWARD_CHECKED.add(key)
        return as_native(grad_output), as_native(indices), input_shape
    go, idx, shape = _check_backward(grad_output, indices, input_shape, int32_indices)
    return as_native(go), as_native(idx), shape


def _check_backward(grad_output, indices, input_shape, int32_indices):
    go = as_input_array(grad_output, "grad_output")
    idx = as_input_array(indices, "indices")
    _check_dtype(go, "grad_output", BACKWARD_DTYPES, "max_pool2d_backward")
    if idx.dtype != _INT64 and (idx.dtype.kind != "i" or idx.dtype.itemsize != 8) and not (
            int32_indices and idx.dtype.kind == "i" and idx.dtype.itemsize == 4):
        raise TypeError(
            f"indices must be an int64 array as returned by max_pool2d(..., return_indices=True), "
            f"got indices.dtype={idx.dtype!s}"
        )
    _check_ndim(go, "grad_output")
    if idx.shape != go.shape:
        raise ValueError(
            f"indices and grad_output must have the same shape, got indices.shape={idx.shape!r} "
            f"and grad_output.shape={go.shape!r}"
        )
    shape = _as_shape(input_shape, go.ndim)
    if shape[:-2] != go.shape[:-2]:
        raise ValueError(
            f"input_shape and grad_output must agree in their leading (batch, channel) dimensions, "
            f"got input_shape={shape!r} and grad_output.shape={go.shape!r}"
        )
    if min(shape) < 0 or shape[-1] == 0 or shape[-2] == 0 or shape[-3] == 0:
        raise ValueError(
            f"input_shape must have non-zero channel, height and width dimensions, got input_shape={shape!r}"
        )
    if shape[-1] * shape[-2] > 2**62:
        raise ValueError(f"input_shape is too large, got input_shape={shape!r}")
    return go, idx, shape


def check_index_range(indices: np.ndarray, plane_size: int, shape) -> None:
    """Raise :func:`index_error` for the first index outside ``[-1, plane_size)``."""
    bad = (indices < -1) | (indices >= plane_size)
    if bad.any():
        raise index_error(int(indices[bad].flat[0]), plane_size, shape)


def index_error(bad_value, plane_size: int, shape) -> ValueError:
    """The error both backends raise for an index outside its plane."""
    return ValueError(
        f"indices contains {bad_value}, outside the plane of {shape[-2]}x{shape[-1]}={plane_size} elements "
        f"given by input_shape={tuple(shape)!r}; valid indices are -1 (a window with no input element) "
        f"and 0 <= index < {plane_size}"
    )
