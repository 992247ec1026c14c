"""The one code path from public arguments to a backend's plane kernels.

A backend supplies two functions working on C-contiguous, native-endian
``(..., H, W)`` arrays (3-D or 4-D: the leading axes count planes) that
return arrays with the same leading axes; this module does the validation
and the conversion to that layout, and nothing else, for every backend.
"""

from __future__ import annotations

from ._validation import as_native, prepare_backward, prepare_forward


def forward(forward_planes, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    """Run ``forward_planes(x, geometry, with_indices) -> (out, idx)`` on ``input``."""
    arr, g, with_indices = prepare_forward(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    out, idx = forward_planes(as_native(arr), g, with_indices)
    return (out, idx) if with_indices else out


def backward(backward_planes, grad_output, indices, input_shape):
    """Run ``backward_planes(go, idx, input_shape) -> grad_in`` (of ``input_shape``)."""
    go, idx, shape = prepare_backward(grad_output, indices, input_shape)
    return backward_planes(as_native(go), as_native(idx), shape)
