"""The one code path from public arguments to a backend's plane kernels.

A backend supplies two functions working on C-contiguous, native-endian
``(P, H, W)`` planes; this module does the validation, the reshaping to and
from the caller's 3-D or 4-D layout, and nothing else, for every backend.
"""

from __future__ import annotations

from ._validation import as_native_planes, prepare_backward, prepare_forward


def forward(forward_planes, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    """Run ``forward_planes(x, geometry, with_indices) -> (out, idx)`` on ``input``."""
    arr, g, with_indices = prepare_forward(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    out, idx = forward_planes(as_native_planes(arr), g, with_indices)
    shape = arr.shape[:-2] + (g.OH, g.OW)
    if with_indices:
        return out.reshape(shape), idx.reshape(shape)
    return out.reshape(shape)


def backward(backward_planes, grad_output, indices, input_shape):
    """Run ``backward_planes(go, idx, input_shape) -> grad_in planes``."""
    go, idx, shape = prepare_backward(grad_output, indices, input_shape)
    return backward_planes(as_native_planes(go), as_native_planes(idx), shape).reshape(shape)
