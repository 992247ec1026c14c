"""Kernels, strides and padding far larger than the input.

PyTorch accepts a kernel of 2**31 - 1 over an 8x4 image when ``ceil_mode``
(or padding) leaves one window: that window is clipped to the input. The
kernels must cost what the in-bounds taps cost (a loop over every tap of
such a kernel runs for minutes), and the NumPy reference must not try to
allocate an input padded to the kernel's size (a ``ValueError`` where torch
returns an answer). Every case is checked against a loop oracle (torch's
loops transcribed), against torch where it is installed, and between the
backends, in both memory layouts.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import COMPILED, assert_same_bits, scalar_max_pool2d
from test_avg_pool import loop_avg_pool2d

import cpool
from cpool.functional import bind_avg

try:
    import torch
except ImportError:  # the oracles and the backends still check each other
    torch = None

BIG = 2**31 - 1

# (kernel, stride, padding, dilation, ceil_mode) over an input of (H, W) =
# (9, 7); each is a valid call for torch (the last window starts inside the
# input or its left padding).
MAX_CASES = [
    (BIG, None, 0, 1, True),
    ((1, BIG), None, 0, 1, True),
    ((BIG, 1), None, 0, 1, True),
    ((BIG, 3), (BIG, 2), 0, 1, True),
    ((BIG, BIG), (2**31 - 4, 2**31 - 2), 0, 1, True),
    ((3, 2**20), 2, (1, 2**19), 1, False),
    ((9, 2**20), 3, (4, 2**19), 1, True),
    (3, 2**30, 1, 1, True),
    ((3, 2), (2**30, 1), 1, (4, 1), True),
]
AVG_CASES = [
    (BIG, None, 0, True, True),
    ((1, BIG), None, 0, True, True),
    ((BIG, 1), None, 0, False, True),
    ((BIG, 3), (BIG, 2), 0, True, True),
    ((3, 2**20), 2, (1, 2**19), True, False),
    ((9, 2**20), 3, (4, 2**19), False, True),
    ((9, 2**20), 3, (4, 2**19), True, True),
    (3, 2**30, 1, True, True),
]


@pytest.fixture(params=["compiled", "numpy"])
def avg(request):
    """``(avg_pool2d, avg_pool2d_backward)`` of one backend."""
    if request.param == "numpy":
        return cpool.slow.avg_pool2d, cpool.slow.avg_pool2d_backward
    request.getfixturevalue("compiled")  # fails (or skips with --no-extension) without the extension
    return bind_avg(COMPILED)


def pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


def _input(dtype, channels_last):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 9, 7)).astype(dtype)
    x[0, 0, 2, 3] = np.nan
    x[1, 2, :, 1] = 1.5  # ties
    if channels_last:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return x


def _torch_input(x):
    t = torch.from_numpy(np.ascontiguousarray(x))
    return t.contiguous(memory_format=torch.channels_last) if not x.flags.c_contiguous else t


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels-last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", MAX_CASES, ids=lambda c: repr(c))
def test_max_pool2d_oversized(backend, case, dtype, channels_last):
    k, s, p, d, ceil = case
    x = _input(dtype, channels_last)
    values, indices = backend.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    stride = pair(k) if s is None else pair(s)
    if max(pair(p)) <= 2**20:  # the oracle walks up from -padding one dilation at a time
        want_v, want_i = scalar_max_pool2d(np.ascontiguousarray(x), pair(k), stride, pair(p), pair(d), ceil)
        assert_same_bits(values, want_v)
        np.testing.assert_array_equal(indices, want_i)
    if torch is not None:
        tv, ti = torch.nn.functional.max_pool2d(_torch_input(x), k, s, p, d, ceil, return_indices=True)
        assert_same_bits(values, tv.numpy())
        np.testing.assert_array_equal(indices, ti.numpy())
    grad = backend.max_pool2d_backward(np.ones_like(values), indices, x.shape)
    assert grad.shape == x.shape


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels-last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", AVG_CASES, ids=lambda c: repr(c))
def test_avg_pool2d_oversized(avg, case, dtype, channels_last):
    k, s, p, include_pad, ceil = case
    forward, backward = avg
    x = _input(dtype, channels_last)
    values = forward(x, k, s, p, ceil, include_pad)
    stride = pair(k) if s is None else pair(s)
    want = loop_avg_pool2d(np.ascontiguousarray(x), pair(k), stride, pair(p), ceil, include_pad, None,
                           planes_kernel=not channels_last)
    assert_same_bits(values, want)
    grad = backward(np.ones_like(values), x.shape, k, s, p, ceil, include_pad)
    if torch is not None:
        t = _torch_input(x).requires_grad_()
        out = torch.nn.functional.avg_pool2d(t, k, s, p, ceil, include_pad)
        assert_same_bits(values, out.detach().numpy())
        out.backward(torch.from_numpy(np.ones(out.shape, dtype)).contiguous(
            memory_format=torch.channels_last if channels_last else torch.contiguous_format))
        assert_same_bits(grad, t.grad.numpy())
