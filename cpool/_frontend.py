"""The one code path from public arguments to a backend's plane kernels.

A backend supplies two functions working on C-contiguous, native-endian
``(..., H, W)`` arrays (3-D or 4-D: the leading axes count planes) that
return arrays with the same leading axes; this module does the validation
and the conversion to that layout, and nothing else, for every backend.
"""

from __future__ import annotations

import numpy as np

from ._validation import as_native, prepare_backward, prepare_forward


def forward(forward_planes, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
            index_dtype=np.int64):
    """Run ``forward_planes(x, geometry, with_indices, index_dtype) -> (out, idx)`` on ``input``.

    ``index_dtype``: int64 (the public format) or, for MaxPool2d's own use,
    int32, used when a plane has fewer than 2**31 elements (else int64).
    The backends return indices of the dtype they are given.
    """
    arr, g, with_indices = prepare_forward(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    if g.H * g.W >= 2**31:
        index_dtype = np.int64
    out, idx = forward_planes(as_native(arr), g, with_indices, index_dtype)
    return (out, idx) if with_indices else out


def backward(backward_planes, grad_output, indices, input_shape, int32_indices=False):
    """Run ``backward_planes(go, idx, input_shape) -> grad_in`` (of ``input_shape``).

    ``int32_indices``: also accept int32 indices (MaxPool2d's own format).
    """
    go, idx, shape = prepare_backward(grad_output, indices, input_shape, int32_indices=int32_indices)
    return backward_planes(as_native(go), as_native(idx), shape)
