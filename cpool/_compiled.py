"""The compiled backend: cpool's extension behind the two backend functions.

This module chooses the kernel variant once, at import: the extension is
built from one source per instruction set (``cpool._kernels`` for the
platform's baseline; on x86-64 also ``cpool._kernels_avx2``), and the
names are one vocabulary everywhere (``CPOOL_ISA``, :func:`cpool.config`,
the tests):

* ``"baseline"``: the portable loops, compiled for the platform's baseline;
* ``"avx2"``: the loops compiled for AVX2 and FMA, the AVX2 float32 forward
  intrinsics and the AVX2 k2 s2 backward cell writer;
* ``"avx512"``: the same with the AVX-512 cell writer.

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

import numpy as np

from . import _kernels as _baseline
from ._threads import adaptive_threads, threads_for
from ._validation import GEOMETRY_FIELDS, check_index_range

__all__ = ["forward_planes", "backward_planes", "AVAILABLE_ISAS", "OPENMP", "omp_max_threads", "isa", "use_isa",
           "facts"]

_F32, _F64, _F16 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16)
_I32, _I64 = np.dtype(np.int32), np.dtype(np.int64)
_CYTHON_NAMES = {_F32: "float", _F64: "double", _I32: "int32_t", _I64: "int64_t"}


def _modules():
    """isa name -> the extension module that runs it, narrowest first."""
    found = {"baseline": _baseline}
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
AVAILABLE_ISAS = tuple(_MODULES)

if _baseline.GEOMETRY_FIELDS != GEOMETRY_FIELDS:  # a stale build of the extension
    raise ImportError(f"cpool's extension reads the geometry as {_baseline.GEOMETRY_FIELDS}, "
                      f"cpool._validation writes {GEOMETRY_FIELDS}; rebuild cpool")


def _specialisations(fn, keys):
    return {key: fn[tuple(_CYTHON_NAMES[d] for d in key)] for key in keys}


class _Kernels:
    """One instruction set's entry points, specialised per (dtype, index dtype)."""

    def __init__(self, isa):
        self.isa = isa
        self.module = _MODULES[isa]
        pairs = [(f, i) for f in (_F32, _F64) for i in (_I32, _I64)]
        self.forward = _specialisations(self.module.max_pool2d_forward_into, pairs)
        self.backward = _specialisations(self.module.max_pool2d_backward_into, pairs)
        # A values-only call passes indices=None to the int64 specialisation.
        for f in (_F32, _F64):
            self.forward[f, None] = self.forward[f, _I64]

    def activate(self):
        self.module.set_isa(self.isa)


def _chosen_isa():
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
OPENMP = bool(_baseline.OPENMP)
omp_max_threads = _baseline.omp_max_threads


def isa():
    """The instruction set in use: "baseline", "avx2" or "avx512"."""
    return _ACTIVE.isa


@contextlib.contextmanager
def use_isa(name):
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


def forward_planes(x, g, with_indices, index_dtype=_I64):
    """Max-pool ``x`` (..., H, W) by geometry ``g``; see :mod:`cpool.slow`."""
    fn = _ACTIVE.forward.get((x.dtype, index_dtype if with_indices else None))
    if fn is None:
        return _forward_other_dtype(x, g, with_indices, index_dtype)
    x4 = x if x.ndim == 4 else x[None]  # the kernels take (N, C, H, W)
    shape = x4.shape[:2] + (g.OH, g.OW)
    out = np.empty(shape, dtype=x.dtype)
    idx = np.empty(shape, dtype=index_dtype) if with_indices else None
    if not fn(x4, out, idx, g, threads_for(x.size), adaptive_threads()):
        # indices on a 2**31+ element plane off the 2x2 path: beyond the kernels' offsets
        from . import slow
        return slow.forward_planes(x, g, with_indices, index_dtype)
    if x.ndim == 3:
        return out[0], None if idx is None else idx[0]
    return out, idx


def _forward_other_dtype(x, g, with_indices, index_dtype):
    if x.dtype == _F16:
        out, idx = forward_planes(x.astype(_F32), g, with_indices, index_dtype)
        return out.astype(_F16), idx
    from . import slow  # integers (imported here: cpool.slow imports the public functions)
    return slow.forward_planes(x, g, with_indices, index_dtype)


def backward_planes(go, idx, shape):
    """Scatter-add ``go`` into a fresh array of ``shape`` by ``idx``; see :mod:`cpool.slow`."""
    fn = _ACTIVE.backward.get((go.dtype, idx.dtype))
    if fn is None:
        from . import slow  # float16: the per-add rounding must happen in float16
        return slow.backward_planes(go, idx, shape)
    gi = np.empty(shape, dtype=go.dtype)
    if go.ndim == 4:
        bad = fn(go, idx, gi, threads_for(gi.size), adaptive_threads())
    else:
        bad = fn(go[None], idx[None], gi[None], threads_for(gi.size), adaptive_threads())
    if bad:  # the kernel skipped them; find the first for the message
        check_index_range(idx, shape[-2] * shape[-1], shape)
    return gi


def busy_backoff(reset=False):
    """The kernels' one-thread period on a busy machine (see the extension's
    ``busy_backoff``), for tests."""
    return _ACTIVE.module.busy_backoff(reset)


def facts():
    """What :func:`cpool.config` reports about the compiled backend."""
    return {"openmp": OPENMP, "isa": _ACTIVE.isa, "available_isas": AVAILABLE_ISAS}
