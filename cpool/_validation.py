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
import math
import numbers
import operator
from typing import Any, Callable, Iterable, NamedTuple, Sequence, Tuple, cast, overload

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
    "DATA_FORMATS",
    "check_data_format",
    "nchw_order",
    "resolve_layout",
    "to_format",
    "to_memory",
    "format_shape",
    "check_out",
    "writable_memory",
    "index_dtype_for",
    "check_index_range",
    "FirstOutside",
    "numpy_first_outside",
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

# (height, width) pair of a pooling parameter, after normalisation.
_Pair = Tuple[int, int]
#: What parse_pool_args returns: kernel, stride, padding, dilation, ceil_mode.
_PoolArgs = Tuple[_Pair, _Pair, _Pair, _Pair, bool]


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


def _describe(value: object) -> str:
    return f"{value!r} (type {type(value).__name__})"


def _is_int(value: object) -> bool:
    # bool is an int subclass, but PyTorch rejects kernel_size=True and so do we.
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _as_int(value: Any, name: str) -> int:
    if not _is_int(value):
        raise TypeError(f"{name} must be an int or a tuple of two ints, got {name}={_describe(value)}")
    return operator.index(value)


def _shape_item(value: Any) -> int:
    if not _is_int(value):
        raise TypeError(f"input_shape must contain only ints, got an element {_describe(value)}")
    return operator.index(value)


@overload
def _pair(value: Any, name: str) -> _Pair: ...
@overload
def _pair(value: Any, name: str, *, allow_none: bool) -> _Pair | None: ...


def _pair(value: Any, name: str, *, allow_none: bool = False) -> _Pair | None:
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
        return cast(_Pair, items)  # two items now
    v = _as_int(value, name)
    return (v, v)


def _as_bool(value: object, name: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be a bool, got {name}={_describe(value)}")


def _all_plain(*values: object) -> bool:
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


def parse_pool_args(kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                    ceil_mode: Any = False) -> _PoolArgs:
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


def _parse_pool_args(kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: Any) -> _PoolArgs:
    kernel = _pair(kernel_size, "kernel_size")
    stride_ = _pair(stride, "stride", allow_none=True)
    pad = _pair(padding, "padding")
    dil = _pair(dilation, "dilation")
    ceil = _as_bool(ceil_mode, "ceil_mode")
    if stride_ is None:
        stride_ = kernel

    def show(name: str, pair: _Pair, given: object) -> str:
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


def as_input_array(value: Any, name: str = "input") -> np.ndarray:
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


def _check_dtype(arr: np.ndarray, name: str, allowed: frozenset[np.dtype], what: str) -> None:
    dt = arr.dtype
    if dt in allowed:  # the common, native-order case: one hash lookup
        return
    native = dt.newbyteorder("=") if dt.byteorder not in ("=", "|") else dt
    if native not in allowed:
        names = ", ".join(str(d) for d in sorted(allowed, key=_DTYPE_ORDER.index))
        raise TypeError(f"{what} does not support {name}.dtype={dt!s}; supported dtypes: {names}")


#: The two data formats (the names TensorFlow, ONNX and oneDNN use): where
#: the channel axis is in the caller's shapes.
DATA_FORMATS = ("NCHW", "NHWC")

# An array's axes in its format -> the same array with the channel axis
# moved: to last (an NCHW-format array whose memory is channels-last) or to
# third from last (an NHWC-format array whose memory is planes).
# ``spatial`` is the number of spatial axes (1, 2 or 3: 1-, 2- and 3-D
# pooling); the axes before the channel axis are batch axes.
@functools.lru_cache(maxsize=None)
def _channels_last(ndim: int, spatial: int = 2) -> tuple[int, ...]:
    lead = ndim - spatial - 1
    return tuple(range(lead)) + tuple(range(lead + 1, ndim)) + (lead,)


@functools.lru_cache(maxsize=None)
def _channels_first(ndim: int, spatial: int = 2) -> tuple[int, ...]:
    lead = ndim - spatial - 1
    return tuple(range(lead)) + (ndim - 1,) + tuple(range(lead, ndim - 1))


#: The data formats of 1-D and 3-D pooling (TensorFlow's names): channels
#: first, then channels last.
DATA_FORMATS_1D = ("NCW", "NWC")
DATA_FORMATS_3D = ("NCDHW", "NDHWC")


def check_data_format(data_format: Any, formats: tuple[str, str] = DATA_FORMATS) -> bool:
    """True for the channels-last name of ``formats`` (``"NHWC"``), False for
    the channels-first one (``"NCHW"``); anything else is an error."""
    # str subclasses (numpy.str_, a config library's strings) count by their value.
    if isinstance(data_format, str) and str.__str__(data_format) in formats:
        return str.__str__(data_format) == formats[1]
    first, last = formats
    if not isinstance(data_format, str):
        raise TypeError(f'data_format must be "{first}" or "{last}", got data_format={_describe(data_format)}')
    raise ValueError(f'data_format must be "{first}" or "{last}", got data_format={data_format!r}')


def nchw_order(shape: Sequence[int], nhwc: bool) -> tuple[int, ...]:
    """``shape`` in the format's order -> the same axes in (N, C, H, W) order."""
    shape = tuple(shape)
    return shape[:-3] + (shape[-1],) + shape[-3:-1] if nhwc else shape


def pool_geometry(shape: Iterable[int], kernel: _Pair, stride: _Pair, padding: _Pair, dilation: _Pair,
                  ceil_mode: bool, *, name: str = "input", nhwc: bool = False) -> PoolGeometry:
    """Check ``shape`` (in the data format's order: (..., C, H, W), or
    (..., H, W, C) with ``nhwc``) against the parameters and compute the
    output size."""
    return _pool_geometry(tuple(shape), kernel, stride, padding, dilation, ceil_mode, name, nhwc)


@functools.lru_cache(maxsize=256)
def _pool_geometry(shape: tuple[int, ...], kernel: _Pair, stride: _Pair, padding: _Pair, dilation: _Pair,
                   ceil_mode: bool, name: str, nhwc: bool = False) -> PoolGeometry:
    C, H, W = nchw_order(shape, nhwc)[-3:]
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


def _check_ndim(arr: np.ndarray, name: str, nhwc: bool = False) -> None:
    if arr.ndim not in (3, 4):
        what = "3-D (H, W, C) or 4-D (N, H, W, C)" if nhwc else "3-D (C, H, W) or 4-D (N, C, H, W)"
        raise ValueError(f"{name} must be a {what} array, got {name}.ndim={arr.ndim} with {name}.shape={arr.shape!r}")


def _is_native(arr: np.ndarray) -> bool:
    flags = arr.flags
    return bool(flags.c_contiguous and flags.aligned and arr.dtype.isnative)


def as_native(arr: np.ndarray) -> np.ndarray:
    """``arr`` itself, or a C-contiguous, aligned, native-byte-order copy of it.

    The layout every backend computes on. A copy happens only for
    non-contiguous, byte-swapped or unaligned input (an unaligned buffer,
    e.g. ``np.frombuffer(..., offset=1)``, must never reach the kernels:
    their loads assume the element alignment); the caller's array is never
    written to.
    """
    if not _is_native(arr):
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
        if not arr.flags.aligned:  # a contiguous unaligned array passes through ascontiguousarray
            arr = arr.copy()
    return arr


def resolve_layout(arr: np.ndarray, nhwc: bool, spatial: int = 2) -> tuple[np.ndarray, bool, bool]:
    """The memory a backend computes on, for ``arr`` given in its format.

    Returns ``(memory, channels_last, swapped)``: ``memory`` is C-contiguous,
    aligned and native, (..., C, H, W) if not ``channels_last`` and (..., H,
    W, C) if it is; ``swapped`` says that it is ``arr`` with the channel axis
    moved (``arr``'s memory was the other format's, PyTorch's rule for
    channels_last tensors), so results go back to the caller with the axis
    moved back: outputs keep the input's memory format. Only when ``arr`` is
    contiguous in neither order is it copied, into its own format's order.
    """
    if _is_native(arr):
        return arr, nhwc, False
    other = arr.transpose((_channels_first if nhwc else _channels_last)(arr.ndim, spatial))
    if _is_native(other):
        return other, not nhwc, True
    return as_native(arr), nhwc, False


def to_format(arr: np.ndarray, swapped: bool, channels_last: bool, spatial: int = 2) -> np.ndarray:
    """A backend's result (memory order) as the caller's format sees it."""
    if not swapped:
        return arr
    return arr.transpose((_channels_first if channels_last else _channels_last)(arr.ndim, spatial))


def format_shape(shape: tuple[int, ...], swapped: bool, channels_last: bool, spatial: int = 2
                 ) -> tuple[int, ...]:
    """The shape :func:`to_format` gives an array of memory shape ``shape``."""
    if not swapped:
        return shape
    return tuple(shape[i] for i in (_channels_first if channels_last else _channels_last)(len(shape), spatial))


def to_memory(arr: np.ndarray, swapped: bool, channels_last: bool, spatial: int = 2) -> np.ndarray:
    """The inverse of :func:`to_format`: an array of the caller's format in memory order."""
    if not swapped:
        return arr
    return arr.transpose((_channels_last if channels_last else _channels_first)(arr.ndim, spatial))


# Geometries of forward calls already checked, keyed by everything the checks
# read, for calls whose arguments are a plain ndarray and exact ints/tuples of
# ints/bools: a layer called every batch with the same shapes pays for the
# checks once, in one dictionary lookup (the checks one by one cost more than
# the kernel on small inputs). Only successes are stored, so errors are
# always raised by the full checks, in their order.
_FORWARD_CHECKED: dict[tuple[Any, ...], PoolGeometry] = {}
_CHECKED_MAX = 256


def prepare_forward(input: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: Any,
                    return_indices: Any, data_format: Any = "NCHW"
                    ) -> tuple[np.ndarray, PoolGeometry, bool, bool, bool]:
    """Validate a forward call.

    Returns ``(memory, geometry, return_indices, channels_last, swapped)``:
    the input in the layout a backend computes on and how it got there (see
    :func:`resolve_layout`; the input itself whenever it is contiguous in
    either order).
    """
    if (type(input) is np.ndarray and type(ceil_mode) is bool and type(return_indices) is bool
            and type(data_format) is str
            and _all_plain(kernel_size, 1 if stride is None else stride, padding, dilation)):
        key = (input.shape, input.dtype, kernel_size, stride, padding, dilation, ceil_mode, data_format)
        geom = _FORWARD_CHECKED.get(key)
        if geom is None:
            _, geom, _ = _prepare_forward(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                                          data_format)
            if len(_FORWARD_CHECKED) >= _CHECKED_MAX:
                _FORWARD_CHECKED.clear()
            _FORWARD_CHECKED[key] = geom
        mem, channels_last, swapped = resolve_layout(input, data_format == "NHWC")
        return mem, geom, return_indices, channels_last, swapped
    arr, geom, with_indices = _prepare_forward(input, kernel_size, stride, padding, dilation, ceil_mode,
                                               return_indices, data_format)
    mem, channels_last, swapped = resolve_layout(arr, check_data_format(data_format))
    return mem, geom, with_indices, channels_last, swapped


def _prepare_forward(input: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: Any,
                     return_indices: Any, data_format: Any = "NCHW") -> tuple[np.ndarray, PoolGeometry, bool]:
    kernel, stride_, pad, dil, ceil = parse_pool_args(kernel_size, stride, padding, dilation, ceil_mode)
    with_indices = _as_bool(return_indices, "return_indices")
    nhwc = check_data_format(data_format)
    arr = as_input_array(input)
    _check_dtype(arr, "input", FORWARD_DTYPES, "max_pool2d")
    _check_ndim(arr, "input", nhwc)
    return arr, pool_geometry(arr.shape, kernel, stride_, pad, dil, ceil, nhwc=nhwc), with_indices


def index_dtype_for(g: PoolGeometry, wanted: np.dtype) -> np.dtype:
    """``wanted`` (int64, or int32 for MaxPool2d's own use), unless a plane
    is too large for int32 offsets: then int64."""
    return _INT64 if g.H * g.W >= INT32_PLANE else wanted


def _as_shape(input_shape: Any, ndim: int) -> tuple[int, ...]:
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


_BACKWARD_CHECKED: set[tuple[Any, ...]] = set()


def prepare_backward(grad_output: Any, indices: Any, input_shape: Any, *, data_format: Any = "NCHW",
                     int32_indices: bool = False
                     ) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], bool, bool]:
    """Validate a backward call.

    Returns ``(grad_output, indices, input_shape, channels_last, swapped)``:
    the arrays and the shape of the gradient in the layout a backend
    computes on. ``grad_output`` decides the layout (:func:`resolve_layout`);
    ``indices`` follow it (copied if their memory differs).

    Checks types, dtypes and shapes. The range of the index values is checked
    by the backend (the compiled kernel checks each index as it uses it).
    ``int32_indices``: also accept int32 indices (MaxPool2d's own format).
    Calls whose checks passed before with the same plain arguments are
    recognised in one set lookup, as in :func:`prepare_forward`.
    """
    if (type(grad_output) is np.ndarray and type(indices) is np.ndarray and type(input_shape) is tuple
            and type(data_format) is str and _all_plain(*input_shape)):
        key = (grad_output.shape, grad_output.dtype, indices.shape, indices.dtype, input_shape, int32_indices,
               data_format)
        if key not in _BACKWARD_CHECKED:
            _check_backward(grad_output, indices, input_shape, int32_indices, data_format)
            if len(_BACKWARD_CHECKED) >= _CHECKED_MAX:
                _BACKWARD_CHECKED.clear()
            _BACKWARD_CHECKED.add(key)
        go, idx, shape = grad_output, indices, input_shape
    else:
        go, idx, shape = _check_backward(grad_output, indices, input_shape, int32_indices, data_format)
    go_mem, channels_last, swapped = resolve_layout(go, check_data_format(data_format))
    return (go_mem, as_native(to_memory(idx, swapped, channels_last)),
            _memory_shape(shape, swapped, channels_last), channels_last, swapped)


def _memory_shape(shape: tuple[int, ...], swapped: bool, channels_last: bool, spatial: int = 2
                  ) -> tuple[int, ...]:
    if not swapped:
        return shape
    perm = (_channels_last if channels_last else _channels_first)(len(shape), spatial)
    return tuple(shape[i] for i in perm)


def _check_int64_indices(idx: np.ndarray, int32_ok: bool = False) -> None:
    """``indices`` must be int64 (either byte order), or int32 where ``int32_ok``."""
    if idx.dtype.kind != "i" or not (idx.dtype.itemsize == 8 or (int32_ok and idx.dtype.itemsize == 4)):
        raise TypeError(
            f"indices must be an int64 array as returned by max_pool2d(..., return_indices=True), "
            f"got indices.dtype={idx.dtype!s}"
        )


def _check_leading(shape: tuple[int, ...], go: np.ndarray, nhwc: bool) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A backward's ``input_shape`` and ``grad_output`` agree in batch and
    channels; returns both shapes in NCHW order."""
    nchw_shape, nchw_go = nchw_order(shape, nhwc), nchw_order(go.shape, nhwc)
    if nchw_shape[:-2] != nchw_go[:-2]:
        raise ValueError(
            f"input_shape and grad_output must agree in their leading (batch, channel) dimensions, "
            f"got input_shape={shape!r} and grad_output.shape={go.shape!r}"
        )
    return nchw_shape, nchw_go


def _check_backward(grad_output: Any, indices: Any, input_shape: Any, int32_indices: bool,
                    data_format: Any = "NCHW") -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    nhwc = check_data_format(data_format)
    go = as_input_array(grad_output, "grad_output")
    idx = as_input_array(indices, "indices")
    _check_dtype(go, "grad_output", BACKWARD_DTYPES, "max_pool2d_backward")
    _check_int64_indices(idx, int32_indices)
    _check_ndim(go, "grad_output", nhwc)
    if idx.shape != go.shape:
        raise ValueError(
            f"indices and grad_output must have the same shape, got indices.shape={idx.shape!r} "
            f"and grad_output.shape={go.shape!r}"
        )
    shape = _as_shape(input_shape, go.ndim)
    nchw_shape, nchw_go = _check_leading(shape, go, nhwc)
    if min(shape) < 0 or min(nchw_shape[-3:]) == 0:
        raise ValueError(
            f"input_shape must have non-zero channel, height and width dimensions, got input_shape={shape!r}"
        )
    if nchw_shape[-1] * nchw_shape[-2] > 2**62:
        raise ValueError(f"input_shape is too large, got input_shape={shape!r}")
    return go, idx, shape


def check_out(out: Any, name: str, shape: tuple[int, ...], dtype: np.dtype, sources: Sequence[Any]) -> np.ndarray:
    """Check an ``out=`` array: an ndarray of exactly ``shape`` and ``dtype``,
    writeable, sharing no memory with any of ``sources`` (the call's inputs
    and other outputs). Returns it as a plain ndarray view."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {name}={_describe(out)}")
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape!r}, got {name}.shape={out.shape!r}")
    if out.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype!s}, got {name}.dtype={out.dtype!s}")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable, got a read-only array")
    # The sources list an argument and then the array the kernels read from
    # it, most often the same object: a source that is one of the last two
    # compared (both passed) is not compared again.
    last = before_last = None
    for source_name, source in sources:
        if source is last or source is before_last:
            continue
        # may_share_memory compares memory bounds: an out interleaved with
        # an input (a view of every other element) is refused too.
        if isinstance(source, np.ndarray) and np.may_share_memory(out, source):
            raise ValueError(f"{name} must not share memory with {source_name}")
        last, before_last = source, last
    return out if type(out) is np.ndarray else out.view(np.ndarray)


def writable_memory(out: np.ndarray, swapped: bool, channels_last: bool, spatial: int = 2) -> np.ndarray | None:
    """``out`` (checked, in the caller's format) as the memory a backend
    writes, or None if it is not laid out that way (the caller then copies
    the result into it)."""
    mem = to_memory(out, swapped, channels_last, spatial) if swapped else out
    flags = mem.flags  # _is_native, inline: this runs on every out= call
    return mem if flags.c_contiguous and flags.aligned and mem.dtype.isnative else None


#: How a backend finds the position of the first index outside ``[low, high)``
#: (see :func:`numpy_first_outside`): each backend module has one, ``first_outside``.
FirstOutside = Callable[[np.ndarray, int, int], int]


def numpy_first_outside(indices: np.ndarray, low: int, high: int) -> int:
    """The position, in ``indices``' C order (``indices.flat``), of the first
    element outside ``[low, high)``, or -1 when there is none: two NumPy
    reductions, and a scan only when one finds a bad index. The NumPy
    backend's ``first_outside``, and every other backend's for the arrays
    its own cannot read."""
    if indices.size == 0 or (indices.min() >= low and indices.max() < high):
        return -1
    return int(np.argmax(((indices < low) | (indices >= high)).reshape(-1)))


def check_index_range(indices: np.ndarray, *dims: int, find: FirstOutside = numpy_first_outside) -> None:
    """Raise :func:`index_error` for the first index outside ``[-1, H*W)``
    (``dims`` = (H, W); (D, H, W): ``[-1, D*H*W)``), the first in
    ``indices``' memory order. ``find``: the backend's ``first_outside``."""
    at = find(indices, -1, math.prod(dims))
    if at >= 0:
        raise index_error(int(indices.flat[at]), *dims)


def index_error(bad_value: int, *dims: int) -> ValueError:
    """The error both backends raise for an index outside its plane (``dims``
    = (H, W)) or volume (``dims`` = (D, H, W): 3-D pooling)."""
    size = math.prod(dims)
    where, axes = ("plane", "height and width") if len(dims) == 2 else ("volume", "depth, height and width")
    return ValueError(
        f"indices contains {bad_value}, outside the {where} of {'x'.join(map(str, dims))}={size} elements "
        f"(input_shape's {axes}); valid indices are -1 (a window with no input element) "
        f"and 0 <= index < {size}"
    )


# ----------------------------------------------------------------- average pooling
#: dtypes accepted by avg_pool2d and its backward (PyTorch 2.13's CPU kernels:
#: AT_DISPATCH_FLOATING_TYPES_AND3(kLong, kBFloat16, kHalf), minus bfloat16).
AVG_DTYPES = frozenset(_DTYPE_ORDER[:3] + (_INT64,))

_INT64_MAX = 2**63 - 1


class AvgArgs(NamedTuple):
    """avg_pool2d's own parameters, checked: ``divisor`` is the override or None."""

    count_include_pad: bool
    divisor: int | None


def parse_avg_args(kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: Any = False,
                   count_include_pad: Any = True, divisor_override: Any = None
                   ) -> tuple[_Pair, _Pair, _Pair, bool, AvgArgs]:
    """Check avg_pool2d's hyper-parameters on their own: those of
    :func:`parse_pool_args` (dilation 1), ``count_include_pad`` (a bool) and
    ``divisor_override`` (None or a non-zero int that fits in int64, as
    PyTorch's ``std::optional<int64_t>``)."""
    kernel, stride_, pad, _, ceil = parse_pool_args(kernel_size, stride, padding, 1, ceil_mode)
    return kernel, stride_, pad, ceil, parse_avg_options(count_include_pad, divisor_override)


def parse_avg_options(count_include_pad: Any, divisor_override: Any) -> AvgArgs:
    """Check average pooling's own options (1-, 2- and 3-D alike)."""
    include = _as_bool(count_include_pad, "count_include_pad")
    divisor = None
    if divisor_override is not None:
        if not _is_int(divisor_override):
            raise TypeError(f"divisor_override must be None or an int, "
                            f"got divisor_override={_describe(divisor_override)}")
        divisor = operator.index(divisor_override)
        if divisor == 0:
            raise ValueError("divisor_override must not be zero, got divisor_override=0")
        if not -_INT64_MAX - 1 <= divisor <= _INT64_MAX:
            raise ValueError(f"divisor_override must fit in int64, got divisor_override={divisor}")
    return AvgArgs(include, divisor)


def prepare_avg_forward(input: Any, kernel_size: Any, stride: Any, padding: Any, ceil_mode: Any,
                        count_include_pad: Any, divisor_override: Any, data_format: Any = "NCHW"
                        ) -> tuple[np.ndarray, PoolGeometry, AvgArgs, bool, bool]:
    """Validate an avg_pool2d call. Returns ``(memory, geometry, avg_args,
    channels_last, swapped)`` (see :func:`resolve_layout`)."""
    kernel, stride_, pad, ceil, avg = parse_avg_args(kernel_size, stride, padding, ceil_mode, count_include_pad,
                                                     divisor_override)
    nhwc = check_data_format(data_format)
    arr = as_input_array(input)
    _check_dtype(arr, "input", AVG_DTYPES, "avg_pool2d")
    _check_ndim(arr, "input", nhwc)
    g = pool_geometry(arr.shape, kernel, stride_, pad, (1, 1), ceil, nhwc=nhwc)
    mem, channels_last, swapped = resolve_layout(arr, nhwc)
    return mem, g, avg, channels_last, swapped


def prepare_avg_backward(grad_output: Any, input_shape: Any, kernel_size: Any, stride: Any, padding: Any,
                         ceil_mode: Any, count_include_pad: Any, divisor_override: Any, data_format: Any = "NCHW"
                         ) -> tuple[np.ndarray, tuple[int, ...], PoolGeometry, AvgArgs, bool, bool]:
    """Validate an avg_pool2d_backward call. Returns ``(grad_output memory,
    grad_input memory shape, geometry, avg_args, channels_last, swapped)``:
    ``grad_output`` decides the layout, and its height and width must be
    the output size the parameters give for ``input_shape``."""
    kernel, stride_, pad, ceil, avg = parse_avg_args(kernel_size, stride, padding, ceil_mode, count_include_pad,
                                                     divisor_override)
    nhwc = check_data_format(data_format)
    go = as_input_array(grad_output, "grad_output")
    _check_dtype(go, "grad_output", AVG_DTYPES, "avg_pool2d_backward")
    _check_ndim(go, "grad_output", nhwc)
    shape = _as_shape(input_shape, go.ndim)
    if min(shape) < 0:
        raise ValueError(f"input_shape must not have negative dimensions, got input_shape={shape!r}")
    nchw_shape, nchw_go = _check_leading(shape, go, nhwc)
    g = pool_geometry(shape, kernel, stride_, pad, (1, 1), ceil, name="input_shape", nhwc=nhwc)
    if nchw_go[-2:] != (g.OH, g.OW):
        raise ValueError(
            f"grad_output must have the output size of input_shape={shape!r} ({g.OH}x{g.OW}), "
            f"got grad_output.shape={go.shape!r}"
        )
    mem, channels_last, swapped = resolve_layout(go, nhwc)
    return mem, _memory_shape(shape, swapped, channels_last), g, avg, channels_last, swapped


__all__ += ["AVG_DTYPES", "AvgArgs", "parse_avg_args", "parse_avg_options", "prepare_avg_forward",
            "prepare_avg_backward"]


# ----------------------------------------------------------------- max unpooling
#: dtypes max_unpool2d takes (PyTorch 2.13's CPU kernel: FLOATING_TYPES_AND2(Half, BFloat16), minus bfloat16).
UNPOOL_DTYPES = BACKWARD_DTYPES


def _check_unpool_indices(indices: Any, values: np.ndarray, values_name: str, what: str) -> np.ndarray:
    idx = as_input_array(indices, "indices")
    _check_int64_indices(idx)
    if idx.shape != values.shape:
        raise ValueError(f"indices and {values_name} must have the same shape for {what}, got "
                         f"indices.shape={idx.shape!r} and {values_name}.shape={values.shape!r}")
    return idx


def unpool_output_size(hw: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
                       padding: tuple[int, ...], output_size: Any) -> tuple[int, ...]:
    """PyTorch's ``_unpool_output_size``: ``(H - 1) * stride - 2 * padding +
    kernel_size`` per axis, or ``output_size`` (its last two entries; three
    for 3-D, where ``hw`` is (D, H, W)), each strictly within ``stride`` of
    that default."""
    n = len(hw)
    default = tuple((hw[d] - 1) * stride[d] - 2 * padding[d] + kernel[d] for d in range(n))
    if output_size is None:
        size = default
    else:
        if isinstance(output_size, np.ndarray):
            output_size = output_size.tolist()
        if not isinstance(output_size, (tuple, list)) or not all(_is_int(v) for v in output_size):
            raise TypeError(f"output_size must be None or a sequence of ints, got "
                            f"output_size={_describe(output_size)}")
        items = tuple(operator.index(v) for v in output_size)
        if len(items) == n + 2:
            items = items[2:]
        if len(items) != n:
            raise ValueError(f"output_size must have {n} or {n + 2} elements, got output_size={output_size!r} "
                             f"with {len(items)}")
        for d in range(n):
            lo, hi = default[d] - stride[d], default[d] + stride[d]
            if not lo < items[d] < hi:
                raise ValueError(f"output_size must be strictly between {lo} and {hi} in dimension {d} "
                                 f"(the default size {default[d]} plus or minus the stride), "
                                 f"got output_size={output_size!r}")
        size = items
    if min(size) <= 0:
        axes = "height and width" if n == 2 else "depth, height and width"
        raise ValueError(f"the unpooled output must have a positive {axes}, got {'x'.join(map(str, size))} "
                         f"from input {axes} {'x'.join(map(str, hw))}, kernel_size={kernel}, stride={stride}, "
                         f"padding={padding}")
    return tuple(size)


def parse_unpool_args(kernel_size: Any, stride: Any, padding: Any, spatial: int = 2) -> tuple[Any, Any, Any]:
    """kernel_size, stride (default: kernel_size) and padding as pairs (as
    triples for ``spatial`` = 3)."""
    parse: Callable[[Any, str], Any] = _pair if spatial == 2 else _triple
    kernel = parse(kernel_size, "kernel_size")
    stride_ = kernel if stride is None else parse(stride, "stride")
    pad = parse(padding, "padding")
    for name, pair, low in (("kernel_size", kernel, 1), ("stride", stride_, 1), ("padding", pad, 0)):
        if min(pair) < low or max(pair) > _INT_MAX:
            raise ValueError(f"{name} must be {'positive' if low else 'non-negative'} and at most {_INT_MAX}, "
                             f"got {name}={pair}")
    return kernel, stride_, pad


def check_unpool_index_range(indices: np.ndarray, *dims: int, find: FirstOutside = numpy_first_outside) -> None:
    """Raise for the first index outside ``[0, OH * OW)`` (memory order);
    ``dims`` is (OH, OW), or (OD, OH, OW) for max_unpool3d's volumes.
    ``find``: the backend's ``first_outside``."""
    size = math.prod(dims)
    at = find(indices, 0, size)
    if at >= 0:
        bad = int(indices.flat[at])
        where = "plane" if len(dims) == 2 else "volume"
        raise ValueError(f"indices contains {bad}, outside the unpooled {where} of {'x'.join(map(str, dims))}="
                         f"{size} elements; valid indices are 0 <= index < {size}")


def prepare_unpool(input: Any, indices: Any, kernel_size: Any, stride: Any, padding: Any, output_size: Any,
                   data_format: Any = "NCHW"
                   ) -> tuple[np.ndarray, np.ndarray, tuple[int, int], bool, bool]:
    """Validate a max_unpool2d call. Returns ``(input memory, indices
    memory, (OH, OW), channels_last, swapped)``. The index values are
    checked by the backend (:func:`check_unpool_index_range`; the compiled
    kernel counts them as it goes), or by the caller first where the output
    is the caller's own array."""
    kernel, stride_, pad = parse_unpool_args(kernel_size, stride, padding)
    nhwc = check_data_format(data_format)
    arr = as_input_array(input)
    _check_dtype(arr, "input", UNPOOL_DTYPES, "max_unpool2d")
    _check_ndim(arr, "input", nhwc)
    if min(nchw_order(arr.shape, nhwc)[-3:]) == 0:  # as PyTorch: only the batch may be empty
        raise ValueError(f"input must have non-zero channel, height and width dimensions (only the batch "
                         f"dimension may be 0), got input.shape={arr.shape!r}")
    idx = _check_unpool_indices(indices, arr, "input", "max_unpool2d")
    hw = nchw_order(arr.shape, nhwc)[-2:]
    OH, OW = unpool_output_size((hw[0], hw[1]), kernel, stride_, pad, output_size)
    planes = math.prod(nchw_order(arr.shape, nhwc)[:-2])
    if planes * OH * OW * arr.dtype.itemsize >= 2**62:
        raise ValueError(f"the unpooled output would have {planes} planes of {OH}x{OW} elements, too large for an "
                         f"array (kernel_size={kernel}, stride={stride_}, padding={pad}, output_size={output_size!r})")
    mem, channels_last, swapped = resolve_layout(arr, nhwc)
    idx_mem = as_native(to_memory(idx, swapped, channels_last))
    return mem, idx_mem, (OH, OW), channels_last, swapped


def prepare_unpool_backward(grad_output: Any, indices: Any, data_format: Any = "NCHW"
                            ) -> tuple[np.ndarray, np.ndarray, bool, bool]:
    """Validate a max_unpool2d_backward call. Returns ``(grad_output memory,
    indices memory, channels_last, swapped)``: ``grad_output`` (the
    unpooled output's gradient) decides the layout, ``indices`` (shaped as
    the unpooled input) must agree in batch and channels; their values are
    checked as for :func:`prepare_unpool`."""
    nhwc = check_data_format(data_format)
    go = as_input_array(grad_output, "grad_output")
    _check_dtype(go, "grad_output", UNPOOL_DTYPES, "max_unpool2d_backward")
    _check_ndim(go, "grad_output", nhwc)
    idx = as_input_array(indices, "indices")
    _check_int64_indices(idx)
    nchw_go, nchw_idx = nchw_order(go.shape, nhwc), nchw_order(idx.shape, nhwc) if idx.ndim == go.ndim else None
    if nchw_idx is None or nchw_idx[:-2] != nchw_go[:-2]:
        raise ValueError(f"indices must have grad_output's batch and channel dimensions, got "
                         f"indices.shape={idx.shape!r} and grad_output.shape={go.shape!r}")
    go_mem, channels_last, swapped = resolve_layout(go, nhwc)
    idx_mem = as_native(to_memory(idx, swapped, channels_last))
    return go_mem, idx_mem, channels_last, swapped


__all__ += ["UNPOOL_DTYPES", "parse_unpool_args", "unpool_output_size", "check_unpool_index_range", "prepare_unpool",
            "prepare_unpool_backward"]
# ----------------------------------------------------------------- adaptive pooling
#: dtypes accepted by the adaptive poolings and their backwards (PyTorch 2.13's
#: CPU kernels: AT_DISPATCH_FLOATING_TYPES_AND2(BFloat16, Half), minus bfloat16).
ADAPTIVE_DTYPES = BACKWARD_DTYPES


class AdaptiveGeometry(NamedTuple):
    """An adaptive pooling problem: the input plane and the output plane.

    Output row ``oh`` pools input rows ``[floor(oh * H / OH), ceil((oh + 1)
    * H / OH))`` (PyTorch's ``start_index`` / ``end_index``), and likewise
    for the columns."""

    H: int
    W: int
    OH: int
    OW: int


_COUNTS = {2: "two", 3: "three"}


def _output_item(value: Any, given: Any, n: int = 2) -> int | None:
    if value is None:
        return None
    if not _is_int(value):
        raise TypeError(f"output_size must be an int or a tuple of {_COUNTS[n]} ints or Nones, "
                        f"got output_size={_describe(given)}")
    size = operator.index(value)
    if size < 0:
        raise ValueError(f"output_size must be non-negative, got output_size={given!r}")
    if size > _INT_MAX:
        raise ValueError(f"output_size must be at most 2**31 - 1, got output_size={given!r}")
    return size


def parse_output_size(output_size: Any, n: int = 2) -> tuple[int | None, ...]:
    """Check an adaptive pooling's ``output_size`` on its own: an int, or a
    pair of ints or Nones (None keeps that input dimension), each >= 0
    (0 gives an empty output, as in PyTorch); ``n`` = 3: a triple (3-D)."""
    if type(output_size) is int and 0 <= output_size <= _INT_MAX:
        return (output_size,) * n
    if isinstance(output_size, np.ndarray):
        output_size = output_size.item() if output_size.ndim == 0 else output_size.tolist()
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != n:
            raise ValueError(f"output_size must be an int or a tuple of {_COUNTS[n]} ints or Nones, "
                             f"got output_size={output_size!r} with {len(output_size)} elements")
        return tuple(_output_item(v, output_size, n) for v in output_size)
    if output_size is None:
        raise TypeError(f"output_size must be an int or a tuple of {_COUNTS[n]} ints or Nones, "
                        f"got output_size=None")
    return (_output_item(output_size, output_size, n),) * n


def _adaptive_geometry(shape: tuple[int, ...], size: tuple[int | None, ...], name: str, nhwc: bool,
                       op: str) -> AdaptiveGeometry:
    C, H, W = nchw_order(shape, nhwc)[-3:]
    # PyTorch's adaptive_avg_pool2d needs a non-empty plane; adaptive_max_pool2d
    # checks every dimension after the first, so also the channel of a 4-D
    # input (a 3-D input's first dimension is its channel, and may be 0).
    channel_checked = op == "adaptive_max_pool2d" and len(shape) == 4
    if H == 0 or W == 0 or (C == 0 and channel_checked):
        what = "channel, height and width" if channel_checked else "height and width"
        raise ValueError(f"{op}: {name} must have non-zero {what} dimensions, got {name}.shape={tuple(shape)!r}")
    OH = H if size[0] is None else size[0]
    OW = W if size[1] is None else size[1]
    return AdaptiveGeometry(H, W, OH, OW)


def prepare_adaptive_forward(input: Any, output_size: Any, data_format: Any, op: str
                             ) -> tuple[np.ndarray, AdaptiveGeometry, bool, bool]:
    """Validate an adaptive pooling forward (``op`` names it in messages).
    Returns ``(memory, geometry, channels_last, swapped)`` (see
    :func:`resolve_layout`)."""
    size = parse_output_size(output_size)
    nhwc = check_data_format(data_format)
    arr = as_input_array(input)
    _check_dtype(arr, "input", ADAPTIVE_DTYPES, op)
    _check_ndim(arr, "input", nhwc)
    g = _adaptive_geometry(arr.shape, size, "input", nhwc, op)
    planes = math.prod(nchw_order(arr.shape, nhwc)[:-2])
    if max(planes, 1) * g.OH * g.OW * 8 >= 2**62:  # the output, and int64 indices for the max
        raise ValueError(f"{op}: output_size={output_size!r} gives an output of {planes} planes of {g.OH}x{g.OW} "
                         f"elements, too large for an array")
    mem, channels_last, swapped = resolve_layout(arr, nhwc)
    return mem, g, channels_last, swapped


def _adaptive_backward_shapes(go: np.ndarray, input_shape: Any, nhwc: bool, op: str
                              ) -> tuple[tuple[int, ...], AdaptiveGeometry]:
    shape = _as_shape(input_shape, go.ndim)
    if min(shape) < 0:
        raise ValueError(f"input_shape must not have negative dimensions, got input_shape={shape!r}")
    nchw_shape, nchw_go = _check_leading(shape, go, nhwc)
    if nchw_shape[-1] * nchw_shape[-2] > 2**62:
        raise ValueError(f"input_shape is too large, got input_shape={shape!r}")
    g = _adaptive_geometry(shape, (nchw_go[-2], nchw_go[-1]), "input_shape", nhwc, op)
    return shape, g


def prepare_adaptive_avg_backward(grad_output: Any, input_shape: Any, data_format: Any = "NCHW"
                                  ) -> tuple[np.ndarray, tuple[int, ...], AdaptiveGeometry, bool, bool]:
    """Validate an adaptive_avg_pool2d_backward call: the output size is
    ``grad_output``'s. Returns ``(grad_output memory, grad_input memory
    shape, geometry, channels_last, swapped)``."""
    nhwc = check_data_format(data_format)
    go = as_input_array(grad_output, "grad_output")
    _check_dtype(go, "grad_output", ADAPTIVE_DTYPES, "adaptive_avg_pool2d_backward")
    _check_ndim(go, "grad_output", nhwc)
    shape, g = _adaptive_backward_shapes(go, input_shape, nhwc, "adaptive_avg_pool2d_backward")
    mem, channels_last, swapped = resolve_layout(go, nhwc)
    return mem, _memory_shape(shape, swapped, channels_last), g, channels_last, swapped


def prepare_adaptive_max_backward(grad_output: Any, indices: Any, input_shape: Any, data_format: Any = "NCHW"
                                  ) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], bool, bool]:
    """Validate an adaptive_max_pool2d_backward call, as :func:`prepare_backward`
    (same returns), with adaptive_max_pool2d's non-empty input rule."""
    go, idx, shape, cl, swapped = prepare_backward(grad_output, indices, input_shape, data_format=data_format)
    return go, idx, shape, cl, swapped


__all__ += ["ADAPTIVE_DTYPES", "AdaptiveGeometry", "parse_output_size", "prepare_adaptive_forward",
            "prepare_adaptive_avg_backward", "prepare_adaptive_max_backward"]


# --- 3-D pooling: (N, C, D, H, W) / (C, D, H, W) inputs ----------------------

_Triple = Tuple[int, int, int]


def _triple(value: Any, name: str, *, allow_none: bool = False) -> _Triple | None:
    """Normalise an int or a 1- or 3-sequence of ints into a triple of ints
    (depth, height, width), as PyTorch's 3-D pooling reads them."""
    if value is None and allow_none:
        return None
    wanted = f"{name} must be an int or a tuple of three ints"
    if isinstance(value, np.ndarray):
        value = value.item() if value.ndim == 0 else value.tolist()
    if isinstance(value, (tuple, list)):
        if len(value) not in (1, 3):
            raise ValueError(f"{name} must be a single int or a tuple of three ints, got {name}={value!r} "
                             f"with {len(value)} elements")
        for v in value:
            if not _is_int(v):
                raise TypeError(f"{wanted}, got {name}={value!r} (an element of type {type(v).__name__})")
        items = tuple(operator.index(v) for v in value)
        return cast(_Triple, items * 3 if len(items) == 1 else items)
    if not _is_int(value):
        raise TypeError(f"{wanted}, got {name}={_describe(value)}")
    v = operator.index(value)
    return (v, v, v)


class Pool3dGeometry(NamedTuple):
    """One 3-D pooling problem, in the order the compiled kernels read it
    (``cpool/_src/common.h``'s ``cpool_geometry3``): kernel, stride, padding
    and dilation as (depth, height, width) triples, then the input volume and
    the output volume."""

    kd: int
    kh: int
    kw: int
    sd: int
    sh: int
    sw: int
    pd: int
    ph: int
    pw: int
    dd: int
    dh: int
    dw: int
    D: int
    H: int
    W: int
    OD: int
    OH: int
    OW: int


#: What parse_pool3d_args returns: kernel, stride, padding, dilation, ceil_mode.
_Pool3dArgs = Tuple[_Triple, _Triple, _Triple, _Triple, bool]


@functools.lru_cache(maxsize=256)
def _parse_pool3d_args_cached(kernel_size: Any, stride: Any, padding: Any, dilation: Any,
                              ceil_mode: bool) -> _Pool3dArgs:
    return _parse_pool3d_args(kernel_size, stride, padding, dilation, ceil_mode)


def parse_pool3d_args(kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                      ceil_mode: Any = False) -> _Pool3dArgs:
    """:func:`parse_pool_args` for 3-D pooling: the same checks (PyTorch's
    ``pool3d_shape_check``), each parameter a (depth, height, width) triple."""
    if type(ceil_mode) is bool and _all_plain(kernel_size, 1 if stride is None else stride, padding, dilation):
        return _parse_pool3d_args_cached(kernel_size, stride, padding, dilation, ceil_mode)
    return _parse_pool3d_args(kernel_size, stride, padding, dilation, ceil_mode)


def _parse_pool3d_args(kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: Any) -> _Pool3dArgs:
    kernel = cast(_Triple, _triple(kernel_size, "kernel_size"))
    stride_ = _triple(stride, "stride", allow_none=True)
    pad = cast(_Triple, _triple(padding, "padding"))
    dil = cast(_Triple, _triple(dilation, "dilation"))
    ceil = _as_bool(ceil_mode, "ceil_mode")
    if stride_ is None:
        stride_ = kernel
    for name, triple, given, low in (
        ("kernel_size", kernel, kernel_size, 1),
        ("stride", stride_, kernel_size if stride is None else stride, 1),
        ("dilation", dil, dilation, 1),
        ("padding", pad, padding, 0),
    ):
        shown = f"{name}={tuple(triple)!r}" if isinstance(given, (tuple, list)) else f"{name}={given!r}"
        if min(triple) < low:
            what = "positive" if low == 1 else "non-negative"
            origin = " (stride defaults to kernel_size)" if name == "stride" and stride is None else ""
            raise ValueError(f"{name} must be {what}, got {shown}{origin}")
        if max(triple) > _INT_MAX:
            raise ValueError(f"{name} must be at most 2**31 - 1, got {shown}")
    # As in 2-D, PyTorch compares padding with half the kernel size, not the
    # dilated kernel (pool3d_shape_check).
    if any(p > k // 2 for p, k in zip(pad, kernel)):
        raise ValueError(f"padding must be at most half of kernel_size, got padding={tuple(pad)!r} "
                         f"with kernel_size={tuple(kernel)!r}")
    return kernel, stride_, pad, dil, ceil


def check_ndim3d(arr: np.ndarray, name: str, ndhwc: bool = False) -> None:
    """A 3-D pooling input is 4-D (C, D, H, W) or 5-D (N, C, D, H, W)."""
    if arr.ndim not in (4, 5):
        what = "4-D (D, H, W, C) or 5-D (N, D, H, W, C)" if ndhwc else "4-D (C, D, H, W) or 5-D (N, C, D, H, W)"
        raise ValueError(f"{name} must be a {what} array, got {name}.ndim={arr.ndim} with {name}.shape={arr.shape!r}")


def ncdhw_order(shape: Sequence[int], ndhwc: bool) -> tuple[int, ...]:
    """``shape`` in the format's order -> the same axes in (N, C, D, H, W) order."""
    shape = tuple(shape)
    if not ndhwc:
        return shape
    return shape[:-4] + (shape[-1],) + shape[-4:-1]


@functools.lru_cache(maxsize=256)
def pool3d_geometry(shape: tuple[int, ...], kernel: _Triple, stride: _Triple, padding: _Triple,
                    dilation: _Triple, ceil_mode: bool, name: str = "input", ndhwc: bool = False
                    ) -> Pool3dGeometry:
    """Check ``shape`` (a tuple in the data format's order) against the
    parameters and compute the output size, as :func:`pool_geometry`."""
    C, D, H, W = ncdhw_order(shape, ndhwc)[-4:]
    if C == 0 or D == 0 or H == 0 or W == 0:
        raise ValueError(
            f"{name} must have non-zero channel, depth, height and width dimensions "
            f"(only the batch dimension may be 0), got {name}.shape={tuple(shape)!r}"
        )
    OD, OH, OW = (output_size(n, k, s, p, d, ceil_mode)
                  for n, k, s, p, d in zip((D, H, W), kernel, stride, padding, dilation))
    if OD < 1 or OH < 1 or OW < 1:
        raise ValueError(
            f"output size is too small: {name}.shape={tuple(shape)!r} with kernel_size={kernel!r}, "
            f"stride={stride!r}, padding={padding!r}, dilation={dilation!r}, ceil_mode={ceil_mode} "
            f"gives an output of {OD}x{OH}x{OW}"
        )
    return Pool3dGeometry(*kernel, *stride, *padding, *dilation, D, H, W, OD, OH, OW)


# --- 3-D average pooling -----------------------------------------------------

#: dtypes accepted by avg_pool3d and its backward: PyTorch 2.13's CPU kernels
#: (AveragePool3d.cpp's avg_pool3d_out_frame) take float32, float64 and int64
#: only; float16 and the other integer types raise there.
AVG3D_DTYPES: frozenset[np.dtype] = frozenset((np.dtype(np.float32), np.dtype(np.float64), _INT64))


def _avg3d_geometry(shape: tuple[int, ...], kernel: _Triple, stride: _Triple, pad: _Triple, ceil: bool,
                    name: str, ndhwc: bool) -> Pool3dGeometry:
    # PyTorch's avg_pool3d (pool3d_shape_check with check_input_size) also
    # wants every spatial size at least the kernel's, padding or not; it
    # checks that after the non-empty dimensions and before the output size.
    C, D, H, W = ncdhw_order(shape, ndhwc)[-4:]
    if min(C, D, H, W) > 0 and (D < kernel[0] or H < kernel[1] or W < kernel[2]):
        raise ValueError(
            f"{name} must be at least as large as kernel_size in depth, height and width, "
            f"got {name}.shape={tuple(shape)!r} (D={D}, H={H}, W={W}) with kernel_size={kernel!r}"
        )
    return pool3d_geometry(shape, kernel, stride, pad, (1, 1, 1), ceil, name, ndhwc)


def prepare_avg3d_forward(input: Any, kernel_size: Any, stride: Any, padding: Any, ceil_mode: Any,
                          count_include_pad: Any, divisor_override: Any, data_format: Any = "NCDHW"
                          ) -> tuple[np.ndarray, Pool3dGeometry, AvgArgs, bool, bool]:
    """Validate an avg_pool3d call. Returns ``(memory, geometry, avg_args,
    channels_last, swapped)`` (see :func:`resolve_layout`, ``spatial=3``)."""
    kernel, stride_, pad, _, ceil = parse_pool3d_args(kernel_size, stride, padding, 1, ceil_mode)
    avg = parse_avg_options(count_include_pad, divisor_override)
    ndhwc = check_data_format(data_format, DATA_FORMATS_3D)
    arr = as_input_array(input)
    _check_dtype(arr, "input", AVG3D_DTYPES, "avg_pool3d")
    check_ndim3d(arr, "input", ndhwc)
    g = _avg3d_geometry(arr.shape, kernel, stride_, pad, ceil, "input", ndhwc)
    mem, channels_last, swapped = resolve_layout(arr, ndhwc, 3)
    return mem, g, avg, channels_last, swapped


def prepare_avg3d_backward(grad_output: Any, input_shape: Any, kernel_size: Any, stride: Any, padding: Any,
                           ceil_mode: Any, count_include_pad: Any, divisor_override: Any,
                           data_format: Any = "NCDHW"
                           ) -> tuple[np.ndarray, tuple[int, ...], Pool3dGeometry, AvgArgs, bool, bool]:
    """Validate an avg_pool3d_backward call. Returns ``(grad_output memory,
    grad_input memory shape, geometry, avg_args, channels_last, swapped)``:
    ``grad_output`` decides the layout, and its depth, height and width must
    be the output size the parameters give for ``input_shape``."""
    kernel, stride_, pad, _, ceil = parse_pool3d_args(kernel_size, stride, padding, 1, ceil_mode)
    avg = parse_avg_options(count_include_pad, divisor_override)
    ndhwc = check_data_format(data_format, DATA_FORMATS_3D)
    go = as_input_array(grad_output, "grad_output")
    _check_dtype(go, "grad_output", AVG3D_DTYPES, "avg_pool3d_backward")
    check_ndim3d(go, "grad_output", ndhwc)
    shape = _as_shape(input_shape, go.ndim)
    if min(shape) < 0:
        raise ValueError(f"input_shape must not have negative dimensions, got input_shape={shape!r}")
    ncdhw_shape, ncdhw_go = ncdhw_order(shape, ndhwc), ncdhw_order(go.shape, ndhwc)
    if ncdhw_shape[:-3] != ncdhw_go[:-3]:
        raise ValueError(
            f"input_shape and grad_output must agree in their leading (batch, channel) dimensions, "
            f"got input_shape={shape!r} and grad_output.shape={go.shape!r}"
        )
    g = _avg3d_geometry(shape, kernel, stride_, pad, ceil, "input_shape", ndhwc)
    if ncdhw_go[-3:] != (g.OD, g.OH, g.OW):
        raise ValueError(
            f"grad_output must have the output size of input_shape={shape!r} ({g.OD}x{g.OH}x{g.OW}), "
            f"got grad_output.shape={go.shape!r}"
        )
    mem, channels_last, swapped = resolve_layout(go, ndhwc, 3)
    return mem, _memory_shape(shape, swapped, channels_last, 3), g, avg, channels_last, swapped


__all__ += ["AVG3D_DTYPES", "prepare_avg3d_forward", "prepare_avg3d_backward"]


# --- 3-D max pooling ----------------------------------------------------------

def prepare_max3d_forward(input: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: Any,
                          return_indices: Any, data_format: Any = "NCDHW"
                          ) -> tuple[np.ndarray, Pool3dGeometry, bool, bool, bool, int]:
    """Validate a max_pool3d call. Returns ``(memory, geometry,
    return_indices, channels_last, swapped, nodepth_from)``, the first five
    as :func:`prepare_forward` (memory (..., C, D, H, W) or (..., D, H, W,
    C), see :func:`resolve_layout`); channels ``nodepth_from`` and up start
    their windows from an index without its depth, as PyTorch's
    channels_last_3d kernel does in its scalar tail
    (:func:`cpool.slow.max3d_forward_planes`); C where PyTorch would run its
    planes kernel."""
    kernel, stride_, pad, dil, ceil = parse_pool3d_args(kernel_size, stride, padding, dilation, ceil_mode)
    with_indices = _as_bool(return_indices, "return_indices")
    ndhwc = check_data_format(data_format, DATA_FORMATS_3D)
    arr = as_input_array(input)
    _check_dtype(arr, "input", FORWARD_DTYPES, "max_pool3d")
    check_ndim3d(arr, "input", ndhwc)
    g = pool3d_geometry(arr.shape, kernel, stride_, pad, dil, ceil, "input", ndhwc)
    C = ncdhw_order(arr.shape, ndhwc)[-4]
    nodepth_from = C
    if _torch_channels_last3d(arr, ndhwc):
        _check_channels_last3d_volume(arr.dtype, g)
        # The kernel's vector lanes seed correctly; its scalar tail, the
        # last C % lanes channels (lanes: torch's AVX2 Vectorized<T>::size()),
        # drops the depth.
        nodepth_from = C - C % (32 // arr.dtype.itemsize)
    mem, channels_last, swapped = resolve_layout(arr, ndhwc, 3)
    return mem, g, with_indices, channels_last, swapped, nodepth_from


def _torch_channels_last3d(arr: np.ndarray, ndhwc: bool) -> bool:
    """Whether PyTorch runs its channels_last_3d kernel on a tensor with
    ``arr``'s (N, C, D, H, W) sizes and strides: 5-D, and strides like
    channels_last_3d by c10's ``is_channels_last_strides_3d_s5`` (so also
    for one channel, where the memory is both layouts, and for strided
    views of channels-last memory, which torch copies in that layout)."""
    if arr.ndim != 5:
        return False
    view = arr.transpose(0, 4, 1, 2, 3) if ndhwc else arr
    sizes, strides = view.shape, view.strides
    if strides[1] == 0:
        return False
    low = 0
    for d in (1, 4, 3, 2, 0):
        if sizes[d] == 0 or strides[d] < low or (d == 0 and low == strides[1]):
            return False
        low = strides[d] * sizes[d] if sizes[d] > 1 else strides[d]
    return True


# PyTorch's channels-last 3-D max pooling keeps each lane's index in the
# integer type as wide as the element (int8 lanes for uint8 and int8, int16
# for int16, int32 for 32-bit and half-precision types) and refuses volumes
# whose positions do not fit (it runs on 5-D channels_last_3d tensors with
# elements; other inputs take its planes kernel, which has no such limit).
_CL3D_INDEX_LIMIT = {np.dtype(t): lim for t, lim in ((np.uint8, 2**7 - 1), (np.int8, 2**7 - 1),
                                                     (np.int16, 2**15 - 1), (np.int32, 2**31 - 1),
                                                     (np.float16, 2**31 - 1), (np.float32, 2**31 - 1))}


def _check_channels_last3d_volume(dtype: np.dtype, g: Pool3dGeometry) -> None:
    limit = _CL3D_INDEX_LIMIT.get(dtype.newbyteorder("="))
    if limit is not None and g.D * g.H * g.W > limit:
        raise ValueError(
            f"max_pool3d on channels-last memory of dtype {dtype!s} takes volumes of at most {limit} "
            f"elements (PyTorch's channels_last_3d kernel keeps positions in {dtype.itemsize * 8}-bit "
            f"integers), got depth x height x width = {g.D}x{g.H}x{g.W} = {g.D * g.H * g.W}"
        )


def prepare_max3d_backward(grad_output: Any, indices: Any, input_shape: Any, data_format: Any = "NCDHW"
                           ) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], bool, bool]:
    """Validate a max_pool3d_backward call. Returns ``(grad_output memory,
    indices memory, grad_input memory shape, channels_last, swapped)``:
    ``grad_output`` decides the layout, ``indices`` follow it (copied if
    their memory differs). The index values are checked by the backend
    (:func:`check_index_range3d`)."""
    ndhwc = check_data_format(data_format, DATA_FORMATS_3D)
    go = as_input_array(grad_output, "grad_output")
    idx = as_input_array(indices, "indices")
    _check_dtype(go, "grad_output", BACKWARD_DTYPES, "max_pool3d_backward")
    if idx.dtype.kind != "i" or idx.dtype.itemsize != 8:
        raise TypeError(f"indices must be an int64 array as returned by max_pool3d(..., return_indices=True), "
                        f"got indices.dtype={idx.dtype!s}")
    check_ndim3d(go, "grad_output", ndhwc)
    if idx.shape != go.shape:
        raise ValueError(f"indices and grad_output must have the same shape, got indices.shape={idx.shape!r} "
                         f"and grad_output.shape={go.shape!r}")
    shape = _as_shape(input_shape, go.ndim)
    if ncdhw_order(shape, ndhwc)[:-3] != ncdhw_order(go.shape, ndhwc)[:-3]:
        raise ValueError(f"input_shape and grad_output must agree in their leading (batch, channel) dimensions, "
                         f"got input_shape={shape!r} and grad_output.shape={go.shape!r}")
    if min(shape) < 0 or min(ncdhw_order(shape, ndhwc)[-4:]) == 0:
        raise ValueError(f"input_shape must have non-zero channel, depth, height and width dimensions, "
                         f"got input_shape={shape!r}")
    D, H, W = ncdhw_order(shape, ndhwc)[-3:]
    if D * H * W > 2**62:
        raise ValueError(f"input_shape is too large, got input_shape={shape!r}")
    go_mem, channels_last, swapped = resolve_layout(go, ndhwc, 3)
    idx_mem = as_native(to_memory(idx, swapped, channels_last, 3))
    return go_mem, idx_mem, _memory_shape(shape, swapped, channels_last, 3), channels_last, swapped


def volume_dims(shape: Sequence[int], channels_last: bool) -> tuple[int, int, int]:
    """(D, H, W) of a 3-D pooling array's memory shape."""
    return cast(_Triple, tuple(shape[-4:-1] if channels_last else shape[-3:]))


def check_index_range3d(indices: np.ndarray, D: int, H: int, W: int,
                        find: FirstOutside = numpy_first_outside) -> None:
    """Raise for the first index (in ``indices``' memory order) outside
    ``[-1, D*H*W)``: the 3-D form of :func:`check_index_range`."""
    size = D * H * W
    at = find(indices, -1, size)
    if at >= 0:
        bad = int(indices.flat[at])
        raise ValueError(
            f"indices contains {bad}, outside the volume of {D}x{H}x{W}={size} elements (input_shape's depth, "
            f"height and width); valid indices are -1 (a window with no input element) and 0 <= index < {size}"
        )


__all__ += ["prepare_max3d_forward", "prepare_max3d_backward", "volume_dims", "check_index_range3d"]


# --- 1-D pooling: (N, C, L) / (C, L) inputs ---------------------------------
# PyTorch computes each 1-D op as its 2-D op on a one-row plane; cpool does
# the same on views ((N, C, 1, L), or (N, 1, L, C) for "NWC"), after the
# checks below, which name the arguments as the 1-D call has them (so no 2-D
# check can fire with a 2-D spelling of a 1-D argument).

class Pool1dArgs(NamedTuple):
    """A 1-D pooling's hyper-parameters, checked."""

    kernel: int
    stride: int
    padding: int
    dilation: int
    ceil_mode: bool


def _single(value: Any, name: str, *, empty_ok: bool = False) -> int | None:
    """An int or a 1-sequence of one int (PyTorch's ``_single``) -> the int;
    None for an empty sequence where ``empty_ok`` (PyTorch's ``stride=[]``)."""
    given = value
    if isinstance(value, np.ndarray):
        value = value.item() if value.ndim == 0 else value.tolist()
    if isinstance(value, (tuple, list)):
        if empty_ok and len(value) == 0:
            return None
        if len(value) != 1:
            raise ValueError(f"{name} must be an int or a tuple of one int for 1-D pooling, got {name}={given!r} "
                             f"with {len(value)} elements")
        value = value[0]
    if not _is_int(value):
        raise TypeError(f"{name} must be an int or a tuple of one int, got {name}={_describe(given)}")
    return operator.index(value)


@functools.lru_cache(maxsize=256)
def _parse_pool1d_cached(kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: Any
                         ) -> Pool1dArgs:
    return _parse_pool1d(kernel_size, stride, padding, dilation, ceil_mode)


def parse_pool1d_args(kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                      ceil_mode: Any = False) -> Pool1dArgs:
    """Check a 1-D pooling's hyper-parameters on their own: PyTorch's rules
    (kernel, stride, dilation >= 1, 0 <= padding <= kernel // 2, 32-bit
    values), with the 1-D argument in every message. Cached for plain ints."""
    if type(ceil_mode) is bool and _all_plain(kernel_size, 1 if stride is None else stride, padding, dilation):
        return _parse_pool1d_cached(kernel_size, stride, padding, dilation, ceil_mode)
    return _parse_pool1d(kernel_size, stride, padding, dilation, ceil_mode)


def _parse_pool1d(kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: Any) -> Pool1dArgs:
    k = cast(int, _single(kernel_size, "kernel_size"))
    s = None if stride is None else _single(stride, "stride", empty_ok=True)
    p = cast(int, _single(padding, "padding"))
    d = cast(int, _single(dilation, "dilation"))
    ceil = _as_bool(ceil_mode, "ceil_mode")
    for name, v, given, low in (("kernel_size", k, kernel_size, 1),
                                ("stride", k if s is None else s, kernel_size if s is None else stride, 1),
                                ("dilation", d, dilation, 1), ("padding", p, padding, 0)):
        if v < low:
            origin = " (stride defaults to kernel_size)" if name == "stride" and s is None else ""
            raise ValueError(f"{name} must be {'positive' if low else 'non-negative'}, got "
                             f"{name}={given!r}{origin}")
        if v > _INT_MAX:
            raise ValueError(f"{name} must be at most 2**31 - 1, got {name}={given!r}")
    if p > k // 2:
        raise ValueError(f"padding must be at most half of kernel_size, got padding={padding!r} with "
                         f"kernel_size={kernel_size!r}")
    return Pool1dArgs(k, k if s is None else s, p, d, ceil)


def ncl_order(shape: Sequence[int], nwc: bool) -> tuple[int, ...]:
    """``shape`` in the 1-D format's order -> the same axes in (N, C, L) order."""
    shape = tuple(shape)
    return shape[:-2] + (shape[-1], shape[-2]) if nwc else shape


def check_input_1d(value: Any, name: str, dtypes: frozenset[np.dtype], op: str, nwc: bool,
                   dtypes_of: str | None = None) -> np.ndarray:
    """``value`` as an ndarray of one of ``dtypes``, 2-D or 3-D (``op`` names
    the function; ``dtypes_of``, if given, what ``dtypes`` are those of)."""
    arr = as_input_array(value, name)
    _check_dtype(arr, name, dtypes, dtypes_of or op)
    if arr.ndim not in (2, 3):
        what = "2-D (L, C) or 3-D (N, L, C)" if nwc else "2-D (C, L) or 3-D (N, C, L)"
        raise ValueError(f"{op}: {name} must be a {what} array, got {name}.ndim={arr.ndim} with "
                         f"{name}.shape={arr.shape!r}")
    return arr


def check_nonempty_1d(shape: tuple[int, ...], name: str, nwc: bool, op: str, channels: bool = True) -> None:
    """Only the batch may be empty (PyTorch's rule; without ``channels``,
    only the length must be non-zero)."""
    C, L = ncl_order(shape, nwc)[-2:]
    if min(shape) < 0 or L == 0 or (channels and C == 0):
        what = "channel and length" if channels else "length"
        raise ValueError(f"{op}: {name} must have non-zero {what} dimensions (only the batch dimension may be 0), "
                         f"got {name}.shape={tuple(shape)!r}")


def pool1d_length(shape: tuple[int, ...], a: Pool1dArgs, name: str, nwc: bool) -> int:
    """The output length of a pooling of ``a`` over ``shape``; at least 1."""
    L = ncl_order(shape, nwc)[-1]
    OL = output_size(L, a.kernel, a.stride, a.padding, a.dilation, a.ceil_mode)
    if OL < 1:
        raise ValueError(f"output size is too small: {name}.shape={tuple(shape)!r} with kernel_size={a.kernel}, "
                         f"stride={a.stride}, padding={a.padding}, dilation={a.dilation}, ceil_mode={a.ceil_mode} "
                         f"gives an output of length {OL}")
    return OL


def shape_1d(shape: tuple[int, ...], length: int, nwc: bool) -> tuple[int, ...]:
    """``shape`` (1-D format order) with its length replaced by ``length``."""
    return shape[:-2] + (length, shape[-1]) if nwc else shape[:-1] + (length,)


def as_plane(arr: np.ndarray, nwc: bool) -> np.ndarray:
    """The 2-D view of a 1-D array: a one-row plane ((..., C, 1, L), or
    (..., 1, L, C) for "NWC"), no copy; channels-last memory stays channels-last."""
    return arr[..., None, :, :] if nwc else arr[..., None, :]


def plane_shape(shape: tuple[int, ...], nwc: bool) -> tuple[int, ...]:
    """:func:`as_plane`'s shape for an array of ``shape``."""
    return shape[:-2] + (1,) + shape[-2:] if nwc else shape[:-1] + (1, shape[-1])


def from_plane(arr: np.ndarray, nwc: bool) -> np.ndarray:
    """The inverse of :func:`as_plane` (a view)."""
    return arr[..., 0, :, :] if nwc else arr[..., 0, :]


def check_indices_1d(indices: Any, like: np.ndarray, like_name: str, op: str) -> np.ndarray:
    """int64 indices of ``like``'s shape."""
    idx = as_input_array(indices, "indices")
    if idx.dtype.kind != "i" or idx.dtype.itemsize != 8:
        raise TypeError(f"{op}: indices must be an int64 array, got indices.dtype={idx.dtype!s}")
    if idx.shape != like.shape:
        raise ValueError(f"{op}: indices and {like_name} must have the same shape, got indices.shape={idx.shape!r} "
                         f"and {like_name}.shape={like.shape!r}")
    return idx


def check_index_range_1d(indices: np.ndarray, length: int, low: int, what: str,
                         find: FirstOutside = numpy_first_outside) -> None:
    """Every index in ``[low, length)`` (``low`` -1 where -1 marks a window
    without an input element); the first bad one (memory order) is named.
    ``find``: the backend's ``first_outside``."""
    at = find(indices, low, length)
    if at >= 0:
        bad = int(indices.flat[at])
        raise ValueError(f"indices contains {bad}, outside {what} of length {length}; valid indices are "
                         f"{low} <= index < {length}")


def input_shape_1d(input_shape: Any, go: np.ndarray, nwc: bool, op: str, channels: bool = True
                   ) -> tuple[int, ...]:
    """A 1-D backward's ``input_shape``: ints, ``grad_output``'s number of
    dimensions, the same batch and channels, a non-empty length."""
    shape = _as_shape(input_shape, go.ndim)
    check_nonempty_1d(shape, "input_shape", nwc, op, channels)
    if ncl_order(shape, nwc)[:-1] != ncl_order(go.shape, nwc)[:-1]:
        raise ValueError(f"{op}: input_shape and grad_output must agree in their leading (batch, channel) "
                         f"dimensions, got input_shape={shape!r} and grad_output.shape={go.shape!r}")
    return shape


def parse_output_size_1d(output_size: Any) -> int:
    """An adaptive 1-D pooling's ``output_size``: an int or a tuple of one
    int, >= 0 (PyTorch takes no None here)."""
    if output_size is None:
        raise TypeError("output_size must be an int or a tuple of one int, got output_size=None")
    size = cast(int, _single(output_size, "output_size"))
    if size < 0:
        raise ValueError(f"output_size must be non-negative, got output_size={output_size!r}")
    if size > _INT_MAX:
        raise ValueError(f"output_size must be at most 2**31 - 1, got output_size={output_size!r}")
    return size


def unpool1d_length(L: int, k: int, s: int, p: int, output_size: Any) -> int:
    """PyTorch's ``_unpool_output_size`` for 1-D: ``(L - 1) * s - 2 * p + k``,
    or ``output_size`` (1 element, or 3: N, C, L), strictly within ``s`` of it."""
    default = (L - 1) * s - 2 * p + k
    if output_size is None:
        size = default
    else:
        given = output_size
        if isinstance(output_size, np.ndarray):
            output_size = output_size.tolist()
        if not isinstance(output_size, (tuple, list)) or not all(_is_int(v) for v in output_size):
            raise TypeError(f"output_size must be None or a sequence of ints, got output_size={_describe(given)}")
        items = tuple(operator.index(v) for v in output_size)
        if len(items) == 3:
            items = items[2:]
        if len(items) != 1:
            raise ValueError(f"output_size must have 1 or 3 elements, got output_size={given!r} with {len(items)}")
        if not default - s < items[0] < default + s:
            raise ValueError(f"output_size must be strictly between {default - s} and {default + s} (the default "
                             f"length {default} plus or minus the stride), got output_size={given!r}")
        size = items[0]
    if size <= 0:
        raise ValueError(f"the unpooled output must have a positive length, got {size} from input length {L}, "
                         f"kernel_size={k}, stride={s}, padding={p}")
    return size


def parse_unpool1d_args(kernel_size: Any, stride: Any, padding: Any) -> tuple[int, int, int]:
    """max_unpool1d's kernel, stride (default: the kernel) and padding:
    positive, positive, non-negative (no half-kernel rule for unpooling)."""
    k = cast(int, _single(kernel_size, "kernel_size"))
    s = k if stride is None else cast(int, _single(stride, "stride"))
    p = cast(int, _single(padding, "padding"))
    for name, v, given, low in (("kernel_size", k, kernel_size, 1), ("stride", s, stride, 1),
                                ("padding", p, padding, 0)):
        if v < low or v > _INT_MAX:
            raise ValueError(f"{name} must be {'positive' if low else 'non-negative'} and at most {_INT_MAX}, "
                             f"got {name}={given!r}")
    return k, s, p


__all__ += ["parse_unpool1d_args", "Pool1dArgs", "parse_pool1d_args", "ncl_order", "check_input_1d",
            "check_nonempty_1d", "pool1d_length",
            "shape_1d", "as_plane", "plane_shape", "from_plane", "check_indices_1d", "check_index_range_1d",
            "input_shape_1d", "parse_output_size_1d", "unpool1d_length"]


# --- 3-D adaptive pooling and max unpooling ---------------------------------

class Adaptive3dGeometry(NamedTuple):
    """A 3-D adaptive pooling problem: the input volume and the output
    volume, each axis's windows as :class:`AdaptiveGeometry`'s."""

    D: int
    H: int
    W: int
    OD: int
    OH: int
    OW: int


def _check_volume(shape: tuple[int, ...], name: str, ndhwc: bool, op: str) -> tuple[int, ...]:
    """``shape`` in (N, C, D, H, W) order, with PyTorch's 3-D rule: only the
    batch dimension may be 0."""
    ncdhw = ncdhw_order(shape, ndhwc)
    if min(ncdhw[-4:]) == 0:
        raise ValueError(f"{op}: {name} must have non-zero channel, depth, height and width dimensions "
                         f"(only the batch dimension may be 0), got {name}.shape={tuple(shape)!r}")
    return ncdhw


def _check_leading3d(shape: tuple[int, ...], go: np.ndarray, ndhwc: bool) -> tuple[int, ...]:
    """A 3-D backward's ``input_shape`` and ``grad_output`` agree in batch and
    channels; returns ``grad_output``'s shape in (N, C, D, H, W) order."""
    ncdhw_go = ncdhw_order(go.shape, ndhwc)
    if ncdhw_order(shape, ndhwc)[:-3] != ncdhw_go[:-3]:
        raise ValueError(f"input_shape and grad_output must agree in their leading (batch, channel) dimensions, "
                         f"got input_shape={shape!r} and grad_output.shape={go.shape!r}")
    return ncdhw_go


def _backward_shape3d(go: np.ndarray, input_shape: Any, ndhwc: bool, op: str
                      ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    shape = _as_shape(input_shape, go.ndim)
    if min(shape) < 0:
        raise ValueError(f"input_shape must not have negative dimensions, got input_shape={shape!r}")
    ncdhw_go = _check_leading3d(shape, go, ndhwc)
    ncdhw = _check_volume(shape, "input_shape", ndhwc, op)
    if math.prod(ncdhw[-3:]) > 2**62:
        raise ValueError(f"input_shape is too large, got input_shape={shape!r}")
    return shape, ncdhw_go


def prepare_adaptive3d_forward(input: Any, output_size: Any, data_format: Any, op: str
                               ) -> tuple[np.ndarray, Adaptive3dGeometry, bool, bool]:
    """Validate a 3-D adaptive pooling forward (``op`` names it in messages).
    Returns ``(memory, geometry, channels_last, swapped)``: memory (..., C, D,
    H, W) or, channels-last, (..., D, H, W, C) (see :func:`resolve_layout`)."""
    size = parse_output_size(output_size, 3)
    ndhwc = check_data_format(data_format, DATA_FORMATS_3D)
    arr = as_input_array(input)
    _check_dtype(arr, "input", ADAPTIVE_DTYPES, op)
    check_ndim3d(arr, "input", ndhwc)
    ncdhw = _check_volume(arr.shape, "input", ndhwc, op)
    D, H, W = ncdhw[-3:]
    g = Adaptive3dGeometry(D, H, W, *(n if s is None else s for n, s in zip((D, H, W), size)))
    planes = math.prod(ncdhw[:-3])
    if max(planes, 1) * g.OD * g.OH * g.OW * 8 >= 2**62:  # the output, and int64 indices for the max
        raise ValueError(f"{op}: output_size={output_size!r} gives an output of {planes} volumes of "
                         f"{g.OD}x{g.OH}x{g.OW} elements, too large for an array")
    mem, channels_last, swapped = resolve_layout(arr, ndhwc, spatial=3)
    return mem, g, channels_last, swapped


def prepare_adaptive3d_avg_backward(grad_output: Any, input_shape: Any, data_format: Any = "NCDHW"
                                    ) -> tuple[np.ndarray, tuple[int, ...], Adaptive3dGeometry, bool, bool]:
    """Validate an adaptive_avg_pool3d_backward call: the output size is
    ``grad_output``'s. Returns ``(grad_output memory, grad_input memory
    shape, geometry, channels_last, swapped)``."""
    op = "adaptive_avg_pool3d_backward"
    ndhwc = check_data_format(data_format, DATA_FORMATS_3D)
    go = as_input_array(grad_output, "grad_output")
    _check_dtype(go, "grad_output", ADAPTIVE_DTYPES, op)
    check_ndim3d(go, "grad_output", ndhwc)
    shape, ncdhw_go = _backward_shape3d(go, input_shape, ndhwc, op)
    g = Adaptive3dGeometry(*ncdhw_order(shape, ndhwc)[-3:], *ncdhw_go[-3:])
    mem, channels_last, swapped = resolve_layout(go, ndhwc, spatial=3)
    return mem, _memory_shape(shape, swapped, channels_last, 3), g, channels_last, swapped


def prepare_adaptive3d_max_backward(grad_output: Any, indices: Any, input_shape: Any, data_format: Any = "NCDHW"
                                    ) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], bool, bool]:
    """Validate an adaptive_max_pool3d_backward call. Returns ``(grad_output
    memory, indices memory, grad_input memory shape, channels_last,
    swapped)``; ``grad_output`` decides the layout, ``indices`` follow it.
    The index values are checked by the caller (:func:`check_index_range`
    with the volume)."""
    op = "adaptive_max_pool3d_backward"
    ndhwc = check_data_format(data_format, DATA_FORMATS_3D)
    go = as_input_array(grad_output, "grad_output")
    idx = as_input_array(indices, "indices")
    _check_dtype(go, "grad_output", ADAPTIVE_DTYPES, op)
    _check_int64_indices(idx)
    check_ndim3d(go, "grad_output", ndhwc)
    if idx.shape != go.shape:
        raise ValueError(f"indices and grad_output must have the same shape, got indices.shape={idx.shape!r} "
                         f"and grad_output.shape={go.shape!r}")
    shape, _ = _backward_shape3d(go, input_shape, ndhwc, op)
    mem, channels_last, swapped = resolve_layout(go, ndhwc, spatial=3)
    idx_mem = as_native(to_memory(idx, swapped, channels_last, 3))
    return mem, idx_mem, _memory_shape(shape, swapped, channels_last, 3), channels_last, swapped


def prepare_unpool3d(input: Any, indices: Any, kernel_size: Any, stride: Any, padding: Any, output_size: Any,
                     data_format: Any = "NCDHW"
                     ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int], bool, bool]:
    """Validate a max_unpool3d call, with max_unpool2d's rules
    (:func:`prepare_unpool`) on (D, H, W) triples. Returns ``(input memory,
    indices memory, (OD, OH, OW), channels_last, swapped)``; the index
    values are checked by the caller (:func:`check_unpool_index_range`)."""
    kernel, stride_, pad = parse_unpool_args(kernel_size, stride, padding, spatial=3)
    ndhwc = check_data_format(data_format, DATA_FORMATS_3D)
    arr = as_input_array(input)
    _check_dtype(arr, "input", UNPOOL_DTYPES, "max_unpool3d")
    check_ndim3d(arr, "input", ndhwc)
    ncdhw = _check_volume(arr.shape, "input", ndhwc, "max_unpool3d")
    idx = _check_unpool_indices(indices, arr, "input", "max_unpool3d")
    size = cast(Tuple[int, int, int], unpool_output_size(ncdhw[-3:], kernel, stride_, pad, output_size))
    planes = math.prod(ncdhw[:-3])
    if planes * math.prod(size) * arr.dtype.itemsize >= 2**62:
        raise ValueError(f"the unpooled output would have {planes} volumes of {'x'.join(map(str, size))} elements, "
                         f"too large for an array (kernel_size={kernel}, stride={stride_}, padding={pad}, "
                         f"output_size={output_size!r})")
    mem, channels_last, swapped = resolve_layout(arr, ndhwc, spatial=3)
    idx_mem = as_native(to_memory(idx, swapped, channels_last, 3))
    return mem, idx_mem, size, channels_last, swapped


def prepare_unpool3d_backward(grad_output: Any, indices: Any, data_format: Any = "NCDHW"
                              ) -> tuple[np.ndarray, np.ndarray, bool, bool]:
    """Validate a max_unpool3d_backward call, as :func:`prepare_unpool_backward`."""
    ndhwc = check_data_format(data_format, DATA_FORMATS_3D)
    go = as_input_array(grad_output, "grad_output")
    _check_dtype(go, "grad_output", UNPOOL_DTYPES, "max_unpool3d_backward")
    check_ndim3d(go, "grad_output", ndhwc)
    idx = as_input_array(indices, "indices")
    _check_int64_indices(idx)
    ncdhw_go = ncdhw_order(go.shape, ndhwc)
    ncdhw_idx = ncdhw_order(idx.shape, ndhwc) if idx.ndim == go.ndim else None
    if ncdhw_idx is None or ncdhw_idx[:-3] != ncdhw_go[:-3]:
        raise ValueError(f"indices must have grad_output's batch and channel dimensions, got "
                         f"indices.shape={idx.shape!r} and grad_output.shape={go.shape!r}")
    go_mem, channels_last, swapped = resolve_layout(go, ndhwc, spatial=3)
    idx_mem = as_native(to_memory(idx, swapped, channels_last, 3))
    return go_mem, idx_mem, channels_last, swapped


__all__ += ["Adaptive3dGeometry", "prepare_adaptive3d_forward", "prepare_adaptive3d_avg_backward",
            "prepare_adaptive3d_max_backward", "prepare_unpool3d", "prepare_unpool3d_backward"]
