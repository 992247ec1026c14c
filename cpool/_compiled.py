"""The compiled backend: cpool's extension behind the two backend functions.

This module chooses the kernel variant once, at import: the extension is
built from one source per instruction set (``cpool._kernels`` for the
platform's baseline; on x86-64 also ``cpool._kernels_avx2``), and the
names are one vocabulary everywhere (``CPOOL_ISA``, :func:`cpool.config`,
the tests):

* ``"baseline"``: the portable loops, compiled for the platform's baseline;
* ``"avx2"``: the loops compiled for AVX2 and FMA, the AVX2 float32 forward
  intrinsics and the AVX2 k2 s2 backward cell writer;
* ``"avx512"``: the same with the AVX-512 cell writer and 3x3 separable
  forward (values only).

``CPOOL_ISA`` (environment) is ``auto`` (the widest this CPU runs, the
default) or one of the names; a name the build or CPU lacks warns and falls
back to ``auto``.

Per call it routes dtypes (float32 and float64 run in the kernels; float16
forward runs in the float32 kernel, since widening and narrowing float16 is
exact, NaN payloads included; integer forward and float16 backward, whose
per-add rounding must happen in float16, go to :mod:`cpool.slow`), allocates
the outputs and picks the thread count. The kernels' fused specialisations
are looked up once here, so a call is one dictionary lookup and one call.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Tuple

import numpy as np

from . import _kernels as _baseline
from ._threads import adaptive_threads, threads_for
from ._validation import GEOMETRY_FIELDS, PoolGeometry, check_index_range, check_unpool_index_range

if TYPE_CHECKING:
    from ._kernels import BackwardInto, ForwardInto

__all__ = ["forward_planes", "backward_planes", "AVAILABLE_ISAS", "OPENMP", "omp_max_threads", "isa", "use_isa",
           "facts"]

_F32, _F64, _F16 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16)
_I32, _I64 = np.dtype(np.int32), np.dtype(np.int64)
_CYTHON_NAMES: dict[np.dtype, str] = {_F32: "float", _F64: "double", _I32: "int32_t", _I64: "int64_t"}
# (dtype, index dtype): the index dtype is None for a values-only forward.
_Key = Tuple[np.dtype, Optional[np.dtype]]


def _modules() -> dict[str, ModuleType]:
    """isa name -> the extension module that runs it, narrowest first."""
    found: dict[str, ModuleType] = {"baseline": _baseline}
    # The AVX2 module is imported only on a CPU that runs it: its own
    # initialisation code may already use AVX2 instructions.
    if "avx2" in _baseline.cpu_features():
        try:
            avx2 = importlib.import_module("cpool._kernels_avx2")
        except ImportError:  # not an x86-64 build, or built with CPOOL_NO_ISA_VARIANTS
            avx2 = None
        if avx2 is not None:
            for name in avx2.isas():
                found[name] = avx2
    return found


_MODULES = _modules()
#: The instruction sets this build runs on this CPU, narrowest first.
AVAILABLE_ISAS: tuple[str, ...] = tuple(_MODULES)

if _baseline.GEOMETRY_FIELDS != GEOMETRY_FIELDS:  # a stale build of the extension
    raise ImportError(f"cpool's extension reads the geometry as {_baseline.GEOMETRY_FIELDS}, "
                      f"cpool._validation writes {GEOMETRY_FIELDS}; rebuild cpool")


def _specialisations(fn: Any, keys: Iterable[tuple[np.dtype, np.dtype]]) -> dict[_Key, Any]:
    return {key: fn[tuple(_CYTHON_NAMES[d] for d in key)] for key in keys}


class _Kernels:
    """One instruction set's entry points, specialised per (dtype, index dtype)."""

    def __init__(self, isa: str) -> None:
        self.isa = isa
        self.module = _MODULES[isa]
        pairs = [(f, i) for f in (_F32, _F64) for i in (_I32, _I64)]
        self.forward: dict[_Key, ForwardInto] = _specialisations(self.module.max_pool2d_forward_into, pairs)
        self.backward: dict[_Key, BackwardInto] = _specialisations(self.module.max_pool2d_backward_into, pairs)
        # A values-only call passes indices=None to the int64 specialisation.
        for f in (_F32, _F64):
            self.forward[f, None] = self.forward[f, _I64]

    def activate(self) -> None:
        self.module.set_isa(self.isa)


def _chosen_isa() -> str:
    want = os.environ.get("CPOOL_ISA", "").strip().lower() or "auto"
    if want == "auto":
        return AVAILABLE_ISAS[-1]
    if want not in AVAILABLE_ISAS:
        warnings.warn(f"CPOOL_ISA={want!r} is not available here (this build and CPU run: "
                      f"{', '.join(AVAILABLE_ISAS)}); using {AVAILABLE_ISAS[-1]!r}", RuntimeWarning, stacklevel=3)
        return AVAILABLE_ISAS[-1]
    return want


_ACTIVE = _Kernels(_chosen_isa())
_ACTIVE.activate()

#: Whether the kernels run on OpenMP threads (the same in every variant).
OPENMP: bool = bool(_baseline.OPENMP)
omp_max_threads = _baseline.omp_max_threads


def isa() -> str:
    """The instruction set in use: "baseline", "avx2" or "avx512"."""
    return _ACTIVE.isa


@contextlib.contextmanager
def use_isa(name: str) -> Iterator[ModuleType]:
    """Run the compiled backend on instruction set ``name`` inside the block
    (for tests and benchmarks; not thread-safe)."""
    global _ACTIVE
    if name not in AVAILABLE_ISAS:
        raise ValueError(f"isa must be one of {AVAILABLE_ISAS!r}, got isa={name!r}")
    before = _ACTIVE
    _ACTIVE = _Kernels(name)
    _ACTIVE.activate()
    try:
        yield _ACTIVE.module
    finally:
        _ACTIVE = before
        before.activate()


def _one_channel_as_planes(a: np.ndarray) -> np.ndarray:
    # (..., H, W, 1) channels-last memory is (..., 1, H, W) memory: a view.
    return a.reshape(a.shape[:-3] + (1,) + a.shape[-3:-1])


def forward_planes(x: np.ndarray, g: PoolGeometry, with_indices: bool, index_dtype: np.dtype = _I64,
                   channels_last: bool = False, out: np.ndarray | None = None,
                   indices_out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Max-pool ``x`` by geometry ``g``; see :mod:`cpool.slow`.

    ``x`` is (..., C, H, W) memory, or (..., H, W, C) with ``channels_last``;
    the results are laid out the same way, written into ``out`` /
    ``indices_out`` when given (C-contiguous arrays of the result's shape).
    """
    fn = _ACTIVE.forward.get((x.dtype, index_dtype if with_indices else None))
    if fn is None:
        return _forward_other_dtype(x, g, with_indices, index_dtype, channels_last, out, indices_out)
    if channels_last and x.shape[-1] == 1:
        o, i = forward_planes(_one_channel_as_planes(x), g, with_indices, index_dtype, False,
                              None if out is None else _one_channel_as_planes(out),
                              None if indices_out is None else _one_channel_as_planes(indices_out))
        shape = x.shape[:-3] + (g.OH, g.OW, 1)
        return o.reshape(shape), None if i is None else i.reshape(shape)
    x4 = x if x.ndim == 4 else x[None]  # the kernels take 4-D arrays
    shape = x4.shape[:1] + ((g.OH, g.OW, x4.shape[3]) if channels_last else (x4.shape[1], g.OH, g.OW))
    o4 = np.empty(shape, dtype=x.dtype) if out is None else _as_4d(out)
    i4 = None
    if with_indices:
        i4 = np.empty(shape, dtype=index_dtype) if indices_out is None else _as_4d(indices_out)
    if not fn(x4, o4, i4, g, threads_for(x.size), adaptive_threads(), channels_last):
        # indices on a 2**31+ element plane off the 2x2 path: beyond the kernels' offsets
        from . import slow
        return slow.forward_planes(x, g, with_indices, index_dtype, channels_last, out, indices_out)
    if x.ndim == 3:
        return o4[0], None if i4 is None else i4[0]
    return o4, i4


def _as_4d(a: np.ndarray) -> np.ndarray:
    return a if a.ndim == 4 else a[None]


def _forward_other_dtype(x: np.ndarray, g: PoolGeometry, with_indices: bool, index_dtype: np.dtype,
                         channels_last: bool, out: np.ndarray | None,
                         indices_out: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    if x.dtype == _F16:
        o, i = forward_planes(x.astype(_F32), g, with_indices, index_dtype, channels_last, None, indices_out)
        if out is None:
            return o.astype(_F16), i
        np.copyto(out, o, casting="same_kind")
        return out, i
    from . import slow  # integers (imported here: cpool.slow imports the public functions)
    return slow.forward_planes(x, g, with_indices, index_dtype, channels_last, out, indices_out)


def backward_planes(go: np.ndarray, idx: np.ndarray, shape: tuple[int, ...], channels_last: bool = False,
                    out: np.ndarray | None = None) -> np.ndarray:
    """Scatter-add ``go`` into an array of ``shape`` by ``idx``; see :mod:`cpool.slow`.

    The arrays and ``shape`` are (..., C, H, W)-ordered memory, or (..., H,
    W, C) with ``channels_last``; the gradient is written into ``out`` when
    given (a C-contiguous array of ``shape``), else into a new array.
    """
    fn = _ACTIVE.backward.get((go.dtype, idx.dtype))
    if fn is None:
        from . import slow  # float16: the per-add rounding must happen in float16
        return slow.backward_planes(go, idx, shape, channels_last, out)
    gi = np.empty(shape, dtype=go.dtype) if out is None else out
    H, W = (shape[-3], shape[-2]) if channels_last else (shape[-2], shape[-1])
    if channels_last and shape[-1] == 1:
        go, idx, gi4 = _one_channel_as_planes(go), _one_channel_as_planes(idx), _one_channel_as_planes(gi)
        channels_last = False
    else:
        gi4 = gi
    if go.ndim == 4:
        bad = fn(go, idx, gi4, threads_for(gi.size), adaptive_threads(), channels_last)
    else:
        bad = fn(go[None], idx[None], gi4[None], threads_for(gi.size), adaptive_threads(), channels_last)
    if bad:  # the kernel skipped them; find the first for the message
        check_index_range(idx, H, W)
    return gi


def busy_backoff(reset: bool = False) -> tuple[float, float]:
    """The kernels' one-thread period on a busy machine (see the extension's
    ``busy_backoff``), for tests."""
    return _ACTIVE.module.busy_backoff(reset)


def facts() -> dict[str, Any]:
    """What :func:`cpool.config` reports about the compiled backend."""
    return {"openmp": OPENMP, "isa": _ACTIVE.isa, "available_isas": AVAILABLE_ISAS}


# Average pooling: float32 and float64 run in the kernels; float16 and int64
# (whose sums or per-add rounding need their own types) in cpool.slow, as does
# everything with an extension built without the average-pooling entry points.
_FLOAT_KERNELS: dict[tuple[ModuleType, str], dict[np.dtype, Any]] = {}


def _float_kernel(name: str, dtype: np.dtype) -> Any:
    key = (_ACTIVE.module, name)
    table = _FLOAT_KERNELS.get(key)
    if table is None:
        fused = getattr(_ACTIVE.module, name, None)
        table = {} if fused is None else {d: fused[_CYTHON_NAMES[d]] for d in (_F32, _F64)}
        _FLOAT_KERNELS[key] = table
    return table.get(dtype)


def avg_forward_planes(x: np.ndarray, g: PoolGeometry, count_include_pad: bool, divisor: Optional[int],
                       channels_last: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Average-pool ``x`` by geometry ``g``; see :func:`cpool.slow.avg_forward_planes`."""
    fn = _float_kernel("avg_pool2d_forward_into", x.dtype)
    if fn is None:
        from . import slow
        return slow.avg_forward_planes(x, g, count_include_pad, divisor, channels_last, out)
    x4 = x if x.ndim == 4 else x[None]
    # 3-D channels-last memory: torch's planes kernel's results (its channels-last
    # kernel takes only 4-D input), from the planes kernel on a transposed copy.
    if channels_last and x.ndim == 3:
        from . import slow
        return slow.avg_forward_planes(x, g, count_include_pad, divisor, channels_last, out)
    shape = x4.shape[:1] + ((g.OH, g.OW, x4.shape[3]) if channels_last else (x4.shape[1], g.OH, g.OW))
    o4 = np.empty(shape, dtype=x.dtype) if out is None else _as_4d(out)
    fn(x4, o4, g, count_include_pad, divisor, threads_for(x.size), adaptive_threads(), channels_last)
    return o4 if x.ndim == 4 else o4[0]


def avg_backward_planes(go: np.ndarray, shape: tuple[int, ...], g: PoolGeometry, count_include_pad: bool,
                        divisor: Optional[int], channels_last: bool = False,
                        out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of :func:`avg_forward_planes`; see :func:`cpool.slow.avg_backward_planes`."""
    fn = _float_kernel("avg_pool2d_backward_into", go.dtype)
    if fn is None:
        from . import slow
        return slow.avg_backward_planes(go, shape, g, count_include_pad, divisor, channels_last, out)
    gi = np.empty(shape, dtype=go.dtype) if out is None else out
    fn(go if go.ndim == 4 else go[None], _as_4d(gi), g, count_include_pad, divisor, threads_for(gi.size),
       adaptive_threads(), channels_last)
    return gi


__all__ += ["avg_forward_planes", "avg_backward_planes"]


# ------------------------------------------------------------ max unpooling
# float32 / float64 in the kernels; float16 in cpool.slow, as is everything
# with an extension built without the unpooling entry points.

def unpool_planes(x: np.ndarray, idx: np.ndarray, size: tuple[int, int], channels_last: bool = False,
                  out: np.ndarray | None = None) -> np.ndarray:
    """Max-unpool ``x`` through ``idx``; see :func:`cpool.slow.unpool_planes`."""
    fn = _float_kernel("max_unpool2d_forward_into", x.dtype)
    if fn is None or (channels_last and x.ndim == 3):
        from . import slow
        return slow.unpool_planes(x, idx, size, channels_last, out)
    x4, i4 = (x, idx) if x.ndim == 4 else (x[None], idx[None])
    shape = x4.shape[:1] + ((size + x4.shape[3:]) if channels_last else (x4.shape[1],) + size)
    o4 = np.empty(shape, dtype=x.dtype) if out is None else _as_4d(out)
    # indices outside the plane: skipped and counted
    if fn(x4, i4, o4, threads_for(o4.size), adaptive_threads(), channels_last):
        check_unpool_index_range(idx, *size)
    return o4 if x.ndim == 4 else o4[0]


def unpool_backward_planes(go: np.ndarray, idx: np.ndarray, channels_last: bool = False,
                           out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of :func:`unpool_planes`; see :func:`cpool.slow.unpool_backward_planes`."""
    fn = _float_kernel("max_unpool2d_backward_into", go.dtype)
    if fn is None or (channels_last and go.ndim == 3):
        from . import slow
        return slow.unpool_backward_planes(go, idx, channels_last, out)
    g4, i4 = (go, idx) if go.ndim == 4 else (go[None], idx[None])
    gi = np.empty(i4.shape, dtype=go.dtype) if out is None else _as_4d(out)
    if fn(g4, i4, gi, threads_for(gi.size), adaptive_threads(), channels_last):
        check_unpool_index_range(idx, *(g4.shape[1:3] if channels_last else g4.shape[2:]))
    return gi if go.ndim == 4 else gi[0]


__all__ += ["unpool_planes", "unpool_backward_planes"]
# Adaptive pooling: float32 and float64 run in the kernels (float16 forward
# through the float32 kernel: torch sums float16 in float32 and rounds the
# float32 result once; max values widen and narrow exactly), float16 backward
# and 3-D channels-last memory (torch's planes kernel on a copy) in
# cpool.slow, as does the 1x1 backward (a division and a broadcast). The max
# backward is the max-pooling scatter (backward_planes).
def _adaptive_lanes_split(C: int, dtype: np.dtype) -> int:
    from .slow import TORCH_LANES
    return C - C % TORCH_LANES[dtype]


def _adaptive_run(x: np.ndarray, g: Any, is_max: bool, with_indices: bool, channels_last: bool,
                  out: np.ndarray | None, indices_out: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Run the adaptive kernel on ``x`` (float16 through float32), or None when it does not apply."""
    fn = _float_kernel("adaptive_pool2d_forward_into", _F32 if x.dtype == _F16 else x.dtype)
    glob = not is_max and g.OH == 1 and g.OW == 1
    if fn is None or (channels_last and x.ndim == 3 and not glob and not is_max):
        return None
    if channels_last and x.shape[-1] == 1:  # one channel: the planes kernel's results
        planes = _one_channel_as_planes(x)
        r = _adaptive_run(planes, g, is_max, with_indices, False,
                          None if out is None else _one_channel_as_planes(out),
                          None if indices_out is None else _one_channel_as_planes(indices_out))
        if r is None:
            return None
        shape = x.shape[:-3] + (g.OH, g.OW, 1)
        return r[0].reshape(shape), None if r[1] is None else r[1].reshape(shape)
    x4 = x if x.ndim == 4 else x[None]
    shape = x4.shape[:1] + ((g.OH, g.OW, x4.shape[3]) if channels_last else (x4.shape[1], g.OH, g.OW))
    half = x.dtype == _F16
    if half:
        x4 = x4.astype(_F32)
    o4 = np.empty(shape, dtype=x4.dtype) if (out is None or half) else _as_4d(out)
    i4 = None
    if with_indices:
        i4 = np.empty(shape, dtype=_I64) if indices_out is None else _as_4d(indices_out)
    from .slow import channel_groups
    split, sse, vector_tap_first = channel_groups(x4.shape[3], x.dtype) if channels_last else (0, 0, False)
    fn(x4, o4, i4, is_max, split, sse, vector_tap_first, threads_for(x.size), adaptive_threads(), channels_last)
    if half:
        if out is None:
            o4 = o4.astype(_F16)
        else:
            np.copyto(_as_4d(out), o4, casting="same_kind")
            o4 = _as_4d(out)
    if x.ndim == 3:
        return o4[0], None if i4 is None else i4[0]
    return o4, i4


def adaptive_avg_forward_planes(x: np.ndarray, g: Any, channels_last: bool = False,
                                out: np.ndarray | None = None) -> np.ndarray:
    """Adaptive-average-pool ``x``; see :func:`cpool.slow.adaptive_avg_forward_planes`."""
    r = _adaptive_run(x, g, False, False, channels_last, out, None)
    if r is None:
        from . import slow
        return slow.adaptive_avg_forward_planes(x, g, channels_last, out)
    return r[0]


def adaptive_max_forward_planes(x: np.ndarray, g: Any, with_indices: bool, channels_last: bool = False,
                                out: np.ndarray | None = None, indices_out: np.ndarray | None = None
                                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Adaptive-max-pool ``x``; see :func:`cpool.slow.adaptive_max_forward_planes`."""
    r = _adaptive_run(x, g, True, with_indices, channels_last, out, indices_out)
    if r is None:
        from . import slow
        return slow.adaptive_max_forward_planes(x, g, with_indices, channels_last, out, indices_out)
    return r


def adaptive_avg_backward_planes(go: np.ndarray, shape: tuple[int, ...], channels_last: bool = False,
                                 out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_forward_planes`; see :func:`cpool.slow.adaptive_avg_backward_planes`."""
    fn = _float_kernel("adaptive_avg_pool2d_backward_into", go.dtype)
    one = (go.shape[-3:-1] if channels_last else go.shape[-2:]) == (1, 1)
    if fn is None or one or (channels_last and go.ndim == 3):
        from . import slow
        return slow.adaptive_avg_backward_planes(go, shape, channels_last, out)
    gi = np.empty(shape, dtype=go.dtype) if out is None else out
    split = _adaptive_lanes_split(shape[-1], go.dtype) if channels_last else 0
    fn(go if go.ndim == 4 else go[None], _as_4d(gi), split, threads_for(gi.size), adaptive_threads(), channels_last)
    return gi


__all__ += ["adaptive_avg_forward_planes", "adaptive_avg_backward_planes", "adaptive_max_forward_planes"]


# ------------------------------------------------------------ 3-D average pooling
# float32 / float64 in the kernels (both memory layouts, 4-D and 5-D); int64
# in cpool.slow, as is everything with an extension built without the entry
# points.

def _as_5d(a: np.ndarray) -> np.ndarray:
    return a if a.ndim == 5 else a[None]


def avg3d_forward_planes(x: np.ndarray, g: Any, count_include_pad: bool, divisor: Optional[int],
                         channels_last: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Average-pool ``x`` by geometry ``g``; see :func:`cpool.slow.avg3d_forward_planes`."""
    fn = _float_kernel("avg_pool3d_forward_into", x.dtype)
    if fn is None:
        from . import slow
        return slow.avg3d_forward_planes(x, g, count_include_pad, divisor, channels_last, out)
    x5 = _as_5d(x)
    shape = x5.shape[:1] + ((g.OD, g.OH, g.OW, x5.shape[4]) if channels_last else (x5.shape[1], g.OD, g.OH, g.OW))
    o5 = np.empty(shape, dtype=x.dtype) if out is None else _as_5d(out)
    fn(x5, o5, g, count_include_pad, divisor, threads_for(x.size), adaptive_threads(), channels_last)
    return o5 if x.ndim == 5 else o5[0]


def avg3d_backward_planes(go: np.ndarray, shape: tuple[int, ...], g: Any, count_include_pad: bool,
                          divisor: Optional[int], channels_last: bool = False,
                          out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of :func:`avg3d_forward_planes`; see :func:`cpool.slow.avg3d_backward_planes`."""
    fn = _float_kernel("avg_pool3d_backward_into", go.dtype)
    if fn is None:
        from . import slow
        return slow.avg3d_backward_planes(go, shape, g, count_include_pad, divisor, channels_last, out)
    gi = np.empty(shape, dtype=go.dtype) if out is None else out
    fn(_as_5d(go), _as_5d(gi), g, count_include_pad, divisor, threads_for(gi.size), adaptive_threads(), channels_last)
    return gi


__all__ += ["avg3d_forward_planes", "avg3d_backward_planes"]


# ------------------------------------------------------------ 3-D max pooling
# float32 / float64 in the kernels, float16 forward through the float32 one
# (max values widen and narrow exactly, NaN payloads included); integers and
# the float16 backward (its per-add rounding must happen in float16) in
# cpool.slow, as is everything with an extension built without these entry
# points. Indices are always int64 here.
from ._validation import check_index_range3d, volume_dims  # noqa: E402


def max3d_forward_planes(x: np.ndarray, g: Any, with_indices: bool, channels_last: bool = False,
                         out: np.ndarray | None = None, indices_out: np.ndarray | None = None,
                         nodepth_from: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """3-D max-pool ``x``; see :func:`cpool.slow.max3d_forward_planes`."""
    half = x.dtype == _F16
    fn = _float_kernel("max_pool3d_forward_into", _F32 if half else x.dtype)
    if fn is None:
        from . import slow
        return slow.max3d_forward_planes(x, g, with_indices, channels_last, out, indices_out, nodepth_from)
    x5 = _as_5d(x)
    C = x5.shape[4] if channels_last else x5.shape[1]
    if half:
        x5 = x5.astype(_F32)
    shape = x5.shape[:1] + ((g.OD, g.OH, g.OW, x5.shape[4]) if channels_last else (x5.shape[1], g.OD, g.OH, g.OW))
    o5 = np.empty(shape, dtype=x5.dtype) if (out is None or half) else _as_5d(out)
    i5 = None
    if with_indices:
        i5 = np.empty(shape, dtype=_I64) if indices_out is None else _as_5d(indices_out)
    if not fn(x5, o5, i5, g, threads_for(x.size), adaptive_threads(), channels_last,
              C if nodepth_from is None else nodepth_from):
        from . import slow  # a volume beyond the kernels' 32-bit positions
        return slow.max3d_forward_planes(x, g, with_indices, channels_last, out, indices_out, nodepth_from)
    if half:
        if out is None:
            o5 = o5.astype(_F16)
        else:
            np.copyto(_as_5d(out), o5, casting="same_kind")
            o5 = _as_5d(out)
    if x.ndim == 4:
        return o5[0], None if i5 is None else i5[0]
    return o5, i5


def max3d_backward_planes(go: np.ndarray, idx: np.ndarray, shape: tuple[int, ...], channels_last: bool = False,
                          out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of :func:`max3d_forward_planes`; see :func:`cpool.slow.max3d_backward_planes`."""
    fn = _float_kernel("max_pool3d_backward_into", go.dtype)
    if fn is None:
        from . import slow
        return slow.max3d_backward_planes(go, idx, shape, channels_last, out)
    gi = np.empty(shape, dtype=go.dtype) if out is None else out
    if fn(_as_5d(go), _as_5d(idx), _as_5d(gi), threads_for(gi.size), adaptive_threads(), channels_last):
        check_index_range3d(idx, *volume_dims(shape, channels_last))  # skipped and counted: name the first
    return gi


__all__ += ["max3d_forward_planes", "max3d_backward_planes"]


# ------------------------------------------------------------ 3-D adaptive pooling
# float32 and float64 run in the 3-D kernels, as does the float16 max
# (through the float32 kernel: max values widen and narrow exactly); the
# float16 average (torch sums in float16, rounding every add) in cpool.slow.
# The 1x1x1 average is torch's mean over the volume: the 2-D mean of the
# (D * H, W) plane (adaptive_avg_forward_planes). The max backward and max
# unpooling are the 2-D scatters on flat views (cpool.functional).
from typing import cast  # noqa: E402


def _global3d(a: np.ndarray | None, channels_last: bool) -> np.ndarray | None:
    from .slow import _as_plane2d
    return _as_plane2d(a, channels_last)


def adaptive3d_avg_forward(x: np.ndarray, g: Any, channels_last: bool = False,
                           out: np.ndarray | None = None) -> np.ndarray:
    """3-D adaptive-average-pool ``x``; see :func:`cpool.slow.adaptive3d_avg_forward`."""
    from . import slow
    fn = _float_kernel("adaptive_pool3d_forward_into", x.dtype)
    if g.OD == 1 and g.OH == 1 and g.OW == 1:
        from ._validation import AdaptiveGeometry
        r = adaptive_avg_forward_planes(cast(np.ndarray, _global3d(x, channels_last)),
                                        AdaptiveGeometry(g.D * g.H, g.W, 1, 1), channels_last,
                                        _global3d(out, channels_last))
        return r.reshape(x.shape[:-4] + ((1, 1, 1, x.shape[-1]) if channels_last else (x.shape[-4], 1, 1, 1)))
    if fn is None:
        return slow.adaptive3d_avg_forward(x, g, channels_last, out)
    return _adaptive3d_run(fn, x, g, False, False, channels_last, out, None)[0]


def _adaptive3d_run(fn: Any, x: np.ndarray, g: Any, is_max: bool, with_indices: bool, channels_last: bool,
                    out: np.ndarray | None, indices_out: np.ndarray | None
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    x5 = _as_5d(x)
    if channels_last:
        shape = x5.shape[:1] + (g.OD, g.OH, g.OW, x5.shape[4])
    else:
        shape = x5.shape[:2] + (g.OD, g.OH, g.OW)
    half = x.dtype == _F16
    if half:
        x5 = x5.astype(_F32)
    o5 = np.empty(shape, dtype=x5.dtype) if (out is None or half) else _as_5d(out)
    i5 = None
    if with_indices:
        i5 = np.empty(shape, dtype=_I64) if indices_out is None else _as_5d(indices_out)
    fn(x5, o5, i5, is_max, threads_for(x.size), adaptive_threads(), channels_last)
    if half:
        if out is None:
            o5 = o5.astype(_F16)
        else:
            np.copyto(_as_5d(out), o5, casting="same_kind")
            o5 = _as_5d(out)
    if x.ndim == 4:
        return o5[0], None if i5 is None else i5[0]
    return o5, i5


def adaptive3d_max_forward(x: np.ndarray, g: Any, with_indices: bool, channels_last: bool = False,
                           out: np.ndarray | None = None, indices_out: np.ndarray | None = None
                           ) -> tuple[np.ndarray, np.ndarray | None]:
    """3-D adaptive-max-pool ``x``; see :func:`cpool.slow.adaptive3d_max_forward`."""
    fn = _float_kernel("adaptive_pool3d_forward_into", _F32 if x.dtype == _F16 else x.dtype)
    if fn is None:
        from . import slow
        return slow.adaptive3d_max_forward(x, g, with_indices, channels_last, out, indices_out)
    return _adaptive3d_run(fn, x, g, True, with_indices, channels_last, out, indices_out)


def adaptive3d_avg_backward(go: np.ndarray, shape: tuple[int, ...], channels_last: bool = False,
                            out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of :func:`adaptive3d_avg_forward`; see :func:`cpool.slow.adaptive3d_avg_backward`."""
    fn = _float_kernel("adaptive_avg_pool3d_backward_into", go.dtype)
    if (go.shape[-4:-1] if channels_last else go.shape[-3:]) == (1, 1, 1):  # the mean's gradient
        from .slow import _as_plane2d
        plane_shape = cast(np.ndarray, _as_plane2d(np.empty(shape, np.uint8), channels_last)).shape
        grad = adaptive_avg_backward_planes(cast(np.ndarray, _global3d(go, channels_last)), plane_shape,
                                            channels_last, _global3d(out, channels_last))
        return grad.reshape(shape)
    if fn is None:
        from . import slow
        return slow.adaptive3d_avg_backward(go, shape, channels_last, out)
    gi = np.empty(shape, dtype=go.dtype) if out is None else out
    fn(_as_5d(go), _as_5d(gi), threads_for(gi.size), adaptive_threads(), channels_last)
    return gi


__all__ += ["adaptive3d_avg_forward", "adaptive3d_max_forward", "adaptive3d_avg_backward"]


# ------------------------------------------------------------ index range checks
# One pass in the kernels (index_check.pxi) where NumPy's check takes two
# reductions: the check runs before every write into a caller's out= array.
from ._validation import numpy_first_outside  # noqa: E402

_KERNEL_INDEX_LIMIT = 2**62  # bounds the kernels take as int64 with room to spare


def first_outside(indices: np.ndarray, low: int, high: int) -> int:
    """The position (``indices.flat`` order) of the first element of
    ``indices`` outside ``[low, high)``, or -1; see
    :func:`cpool._validation.numpy_first_outside`, which it agrees with."""
    if -_KERNEL_INDEX_LIMIT <= low and high <= _KERNEL_INDEX_LIMIT:
        n = threads_for(indices.size)
        at: int = _ACTIVE.module.first_outside(indices, low, high, n, n > 1 and adaptive_threads())
        if at != -2:  # -2: an array the kernel does not read (strided, another dtype or byte order)
            return at
    return numpy_first_outside(indices, low, high)


__all__ += ["first_outside"]
