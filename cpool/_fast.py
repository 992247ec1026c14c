"""The compiled backend: :mod:`cpool._kernels` behind the common front end.

float32 and float64 run in the compiled kernels. float16 forward runs in the
float32 kernel (widening and narrowing float16 is exact, NaN payloads
included); integer forward and float16 backward, whose per-add rounding must
happen in float16, use the NumPy code of :mod:`cpool.slow`.
"""

from __future__ import annotations

import numpy as np

from . import _frontend, _kernels
from . import slow as _slow
from ._threads import threads_for
from ._validation import index_error

__all__ = ["max_pool2d", "max_pool2d_backward"]

_COMPILED = (np.dtype(np.float32), np.dtype(np.float64))
_F16 = np.dtype(np.float16)


def forward_planes(x, g, with_indices):
    if x.dtype == _F16:
        out, idx = forward_planes(x.astype(np.float32), g, with_indices)
        return out.astype(_F16), idx
    if x.dtype not in _COMPILED:
        return _slow.forward_planes(x, g, with_indices)
    P = x.shape[0]
    out = np.empty((P, g.OH, g.OW), dtype=x.dtype)
    idx = np.empty((P, g.OH, g.OW), dtype=np.int64) if with_indices else None
    _kernels.max_pool2d_forward(x, out, idx, g, threads_for(x.size))
    return out, idx


def backward_planes(go, idx, shape):
    if go.dtype not in _COMPILED:
        return _slow.backward_planes(go, idx, shape)
    H, W = shape[-2:]
    gi = np.empty((go.shape[0], H, W), dtype=go.dtype)
    bad = _kernels.max_pool2d_backward(go, idx, gi, threads_for(gi.size))
    if bad:
        flat = idx.reshape(-1)
        first = flat[(flat < -1) | (flat >= H * W)][0]
        raise index_error(int(first), H * W, shape)
    return gi


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-D max pooling with PyTorch's semantics, compiled. See :func:`cpool.max_pool2d`."""
    return _frontend.forward(forward_planes, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d_backward(grad_output, indices, input_shape):
    """Gradient of max pooling, compiled. See :func:`cpool.max_pool2d_backward`."""
    return _frontend.backward(backward_planes, grad_output, indices, input_shape)
