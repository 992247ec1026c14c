"""Argument normalisation and checking shared by every backend.

Both backends (the compiled one and :mod:`cpool.slow`) call these functions
before doing any work, so they accept and reject exactly the same inputs and
cannot drift apart. The rules follow PyTorch 2.13's ``max_pool2d``
(``aten/src/ATen/native/Pool.h``), except that PyTorch raises ``RuntimeError``
where cpool raises ``ValueError`` (bad values) or ``TypeError`` (bad types),
always naming the argument and the offending value.
"""

from __future__ import annotations

import functools
import numbers
import operator
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PoolGeometry",
    "FORWARD_DTYPES",
    "BACKWARD_DTYPES",
    "parse_pool_args",
    "as_input_array",
    "pool_geometry",
    "prepare_forward",
    "prepare_backward",
    "output_size",
]

#: dtypes accepted by the forward pass (PyTorch's ALL_TYPES_AND2(Half, BFloat16)
#: minus bfloat16, which NumPy lacks). Order is for messages; lookups use sets.
FORWARD_DTYPES = tuple(
    np.dtype(t)
    for t in (np.float16, np.float32, np.float64, np.uint8, np.int8, np.int16, np.int32, np.int64)
)
#: dtypes accepted by the backward pass (PyTorch: FLOATING_TYPES_AND2).
BACKWARD_DTYPES = tuple(np.dtype(t) for t in (np.float16, np.float32, np.float64))

_INT64 = np.dtype(np.int64)
# The same dtypes as sets: membership is one hash lookup on the hot path.
_DTYPE_SETS = {FORWARD_DTYPES: frozenset(FORWARD_DTYPES), BACKWARD_DTYPES: frozenset(BACKWARD_DTYPES)}

# PyTorch stores every pooling parameter in a C ``int`` (safe_downcast in
# Pool.h) and rejects larger values; so do we, which also keeps every size
# product in the kernels far from int64 overflow.
_INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class PoolGeometry:
    """Everything a kernel needs to know about one pooling problem.

    All values are plain Python ints; ``planes`` is N*C (or C for 3-D input).
    """

    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    ceil_mode: bool
    H: int
    W: int
    OH: int
    OW: int

    @functools.cached_property
    def packed(self) -> tuple:
        """The twelve sizes as the kernels read them, in one tuple (one C-level
        unpack instead of twelve attribute lookups per call)."""
        return (self.kh, self.kw, self.sh, self.sw, self.ph, self.pw, self.dh, self.dw,
                self.H, self.W, self.OH, self.OW)


def _describe(value) -> str:
    return f"{value!r} (type {type(value).__name__})"


def _as_int(value, name: str) -> int:
    # bool is an int subclass, but PyTorch rejects kernel_size=True and so do we.
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int or a tuple of two ints, got {name}={_describe(value)}")
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


def _check_dtype(arr: np.ndarray, name: str, allowed, what: str) -> np.ndarray:
    dt = arr.dtype
    if dt in _DTYPE_SETS[allowed]:  # the common, native-order case
        return arr
    native = dt.newbyteorder("=") if dt.byteorder not in ("=", "|") else dt
    if native not in allowed:
        names = ", ".join(str(d) for d in allowed)
        raise TypeError(f"{what} does not support {name}.dtype={dt!s}; supported dtypes: {names}")
    return arr


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
        dilation[0], dilation[1], ceil_mode, H, W, OH, OW,
    )


def _check_ndim(arr: np.ndarray, name: str) -> None:
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"{name} must be a 3-D (C, H, W) or 4-D (N, C, H, W) array, "
            f"got {name}.ndim={arr.ndim} with {name}.shape={arr.shape!r}"
        )


def as_native(arr: np.ndarray) -> np.ndarray:
    """``arr`` itself, or a C-contiguous, native-byte-order copy of it.

    A copy happens only for non-contiguous or byte-swapped input; the caller's
    array is never written to.
    """
    if not (arr.flags.c_contiguous and arr.dtype.isnative):
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
    return arr


def prepare_forward(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    """Validate a forward call. Returns ``(array, geometry, return_indices)``.

    The array is the caller's input as an ndarray (not yet made contiguous:
    backends decide whether they need a copy).
    """
    kernel, stride_, pad, dil, ceil = parse_pool_args(kernel_size, stride, padding, dilation, ceil_mode)
    with_indices = _as_bool(return_indices, "return_indices")
    arr = as_input_array(input)
    _check_dtype(arr, "input", FORWARD_DTYPES, "max_pool2d")
    _check_ndim(arr, "input")
    geom = pool_geometry(arr.shape, kernel, stride_, pad, dil, ceil)
    return arr, geom, with_indices


def _as_shape(input_shape, ndim: int):
    if type(input_shape) is tuple and len(input_shape) == ndim and all(type(v) is int for v in input_shape):
        return input_shape  # the usual `x.shape`
    if isinstance(input_shape, np.ndarray):
        input_shape = input_shape.tolist()
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"input_shape must be a tuple of ints, got input_shape={_describe(input_shape)}")
    shape = tuple(_as_int_shape(v) for v in input_shape)
    if len(shape) != ndim:
        raise ValueError(
            f"input_shape must have as many dimensions as grad_output ({ndim}), got input_shape={shape!r}"
        )
    return shape


def _as_int_shape(v):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"input_shape must contain only ints, got an element {_describe(v)}")
    return operator.index(v)


def prepare_backward(grad_output, indices, input_shape, *, int32_indices=False):
    """Validate a backward call. Returns ``(grad_output, indices, input_shape)``.

    Checks types, dtypes and shapes. The range of the index values is checked
    by the backend (the compiled kernel checks each index as it uses it).
    ``int32_indices``: also accept int32 indices (MaxPool2d's own format).
    """
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
