"""The compiled backend: :mod:`cpool._kernels` behind the common front end.

float32 and float64 run in the compiled kernels: ``cpool._kernels_avx2``
when the build has it and the CPU supports AVX2, else the baseline
``cpool._kernels`` (the environment variable ``CPOOL_ISA=baseline`` forces the
baseline, ``CPOOL_ISA=avx2`` insists on AVX2; read once, at import). float16 forward runs in the
float32 kernel (widening and narrowing float16 is exact, NaN payloads
included); integer forward and float16 backward, whose per-add rounding must
happen in float16, use the NumPy code of :mod:`cpool.slow`.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from . import _frontend, _kernels
from . import slow as _slow
from ._threads import threads_for
from ._validation import check_index_range

__all__ = ["max_pool2d", "max_pool2d_backward"]

_COMPILED = frozenset((np.dtype(np.float32), np.dtype(np.float64)))
_F16 = np.dtype(np.float16)
# The general forward path keeps window indices as int32 plane offsets.
_INT32_PLANE = 2**31


def _select_kernels():
    want = os.environ.get("CPOOL_ISA", "").strip().lower() or "auto"
    if want not in ("auto", "baseline", "avx2"):
        warnings.warn(f"CPOOL_ISA={want!r} is not one of auto, baseline, avx2; using auto", RuntimeWarning, stacklevel=2)
        want = "auto"
    if want == "baseline":
        return _kernels
    try:
        from . import _kernels_avx2 as avx2
    except ImportError:  # not an x86-64 build, or built with CPOOL_NO_ISA_VARIANTS
        avx2 = None
    if avx2 is not None and _kernels.cpu_has_avx2():
        return avx2
    if want == "avx2":
        warnings.warn("CPOOL_ISA=avx2, but the AVX2 kernels are not built or this CPU lacks AVX2; "
                      "using the baseline kernels", RuntimeWarning, stacklevel=2)
    return _kernels


#: The kernel module in use; ``KERNELS.ISA`` names its instruction set.
KERNELS = _select_kernels()

_FORWARD = KERNELS.max_pool2d_forward
_BACKWARD = KERNELS.max_pool2d_backward


def forward_planes(x, g, with_indices, index_dtype=np.int64):
    if x.dtype not in _COMPILED:
        if x.dtype == _F16:
            out, idx = forward_planes(x.astype(np.float32), g, with_indices, index_dtype)
            return out.astype(_F16), idx
        return _slow.forward_planes(x, g, with_indices, index_dtype)
    if with_indices and g.H * g.W >= _INT32_PLANE and not KERNELS.fast_path(g.packed):
        return _slow.forward_planes(x, g, with_indices, index_dtype)  # beyond int32 offsets; never in practice
    shape = x.shape[:-2] + (g.OH, g.OW)
    out = np.empty(shape, dtype=x.dtype)
    idx = np.empty(shape, dtype=index_dtype) if with_indices else None
    _FORWARD(x, out, idx, g.packed, threads_for(x.size))
    return out, idx


def backward_planes(go, idx, shape):
    if go.dtype not in _COMPILED:
        return _slow.backward_planes(go, idx, shape)
    H, W = shape[-2:]
    gi = np.empty(shape, dtype=go.dtype)
    bad = _BACKWARD(go, idx, gi, threads_for(gi.size))
    if bad:  # the kernel skipped them; find the first for the message
        check_index_range(idx, H * W, shape)
    return gi


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-D max pooling with PyTorch's semantics, compiled. See :func:`cpool.max_pool2d`."""
    return _frontend.forward(forward_planes, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d_backward(grad_output, indices, input_shape):
    """Gradient of max pooling, compiled. See :func:`cpool.max_pool2d_backward`."""
    return _frontend.backward(backward_planes, grad_output, indices, input_shape)
