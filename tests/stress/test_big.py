"""Planes of more than 2**31 elements (marked ``big``: run with --run-big).

Every size, offset and index in cpool is 64-bit. These tests pool one
65536 x 32770 plane (2,147,614,720 elements, past 2**31; 8.6 GB as
float32), so any offset computed in 32 bits would wrap. They need up to
~16 GB of free memory and a minute or two, so they run only with
``pytest --run-big``; each test skips itself when /proc/meminfo shows too
little available memory.

The input is zeros with a few markers planted near the end of the plane
(offsets above 2**31), so the expected output is known without a reference
run over 8 GB: exactly the windows holding a marker are non-zero, with the
marker's value and index.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

import cpool

pytestmark = [pytest.mark.slow, pytest.mark.big]

# 65536 x 32770 = 2,147,614,720 elements > 2**31 = 2,147,483,648; rows from
# 65533 on start past 2**31 and are covered by 2x2 windows (H is even).
H, W = 65536, 32770
PLANE = H * W
GB = 10**9


def available_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def need(n_bytes):
    if available_bytes() < n_bytes * 1.15:
        pytest.skip(f"needs {n_bytes / GB:.1f} GB free, {available_bytes() / GB:.1f} GB available")


def markers(dtype):
    """(row, col, value): positions past 2**31 and at the plane's ends."""
    pts = [
        (H - 1, W - 1, 7),          # the very last element
        (H - 2, 10, 5),             # offset > 2**31
        (H - 3, 12345, 3),          # offset > 2**31
        (H // 2, W // 2 + 1, 2),    # offset < 2**31
        (0, 1, 1),
    ]
    assert sum(r * W + c > 2**31 for r, c, _ in pts) == 3
    return [(r, c, dtype.type(v)) for r, c, v in pts]


def planted(dtype):
    x = np.zeros((1, 1, H, W), dtype=dtype)
    for r, c, v in markers(dtype):
        x[0, 0, r, c] = v
    return x


def check_2x2(out, idx, dtype):
    OH, OW = H // 2, W // 2
    assert out.shape == (1, 1, OH, OW)
    expected = {}
    for r, c, v in markers(dtype):
        if r < 2 * OH and c < 2 * OW:
            expected[(r // 2, c // 2)] = (v, r * W + c)
    assert np.count_nonzero(out) == len(expected)
    for (oh, ow), (v, flat) in expected.items():
        assert out[0, 0, oh, ow] == v
        if idx is not None:
            assert idx[0, 0, oh, ow] == flat, (oh, ow, idx[0, 0, oh, ow], flat)
    if idx is not None:
        # a zero window's index is its first (top-left) element
        assert idx[0, 0, OH - 1, 0] == 2 * (OH - 1) * W
        assert idx[0, 0, OH - 1, OW - 2] == 2 * (OH - 1) * W + 2 * (OW - 2) > 2**31
        assert idx[0, 0, 3, 5] == 6 * W + 10


def test_forward_values_float32_plane_over_2_31(compiled):
    dtype = np.dtype(np.float32)
    need(PLANE * 4 * 1.25)
    x = planted(dtype)
    out = compiled.max_pool2d(x, 2)
    check_2x2(out, None, dtype)
    del out
    gc.collect()


def test_forward_indices_float32_plane_over_2_31(compiled):
    dtype = np.dtype(np.float32)
    need(PLANE * 4 * 1.25 + PLANE // 4 * 8)
    x = planted(dtype)
    out, idx = compiled.max_pool2d(x, 2, return_indices=True)
    check_2x2(out, idx, dtype)
    del out, idx
    gc.collect()


def test_forward_general_path_plane_over_2_31(compiled):
    # kernel 3, stride 3, padding 1: the general (tap-sweep) kernel, values only.
    dtype = np.dtype(np.float32)
    need(PLANE * 4 * 1.15)
    x = planted(dtype)
    out = compiled.max_pool2d(x, 3, 3, 1)
    OH, OW = (H + 2 - 3) // 3 + 1, (W + 2 - 3) // 3 + 1
    assert out.shape == (1, 1, OH, OW)
    expected = {}
    for r, c, v in markers(dtype):
        if (r + 1) // 3 < OH and (c + 1) // 3 < OW:
            expected[((r + 1) // 3, (c + 1) // 3)] = v
    assert len(expected) >= 4
    assert np.count_nonzero(out) == len(expected)
    for (oh, ow), v in expected.items():
        assert out[0, 0, oh, ow] == v


def test_backward_plane_over_2_31(compiled):
    # A small grad_output scattered into a 2**31+ plane: indices past 2**31,
    # the last element, and a hostile index just past the plane.
    need(PLANE * 4 * 1.1)
    idx = np.array([[[[PLANE - 1, 2**31 + 5, (H - 3) * W + 12345, 0, -1, 2**31 - 1]]]], dtype=np.int64)
    g = np.arange(1, 7, dtype=np.float32).reshape(1, 1, 1, 6)
    gi = compiled.max_pool2d_backward(g, idx, (1, 1, H, W))
    flat = gi.reshape(-1)
    assert flat[PLANE - 1] == 1 and flat[2**31 + 5] == 2 and flat[(H - 3) * W + 12345] == 3
    assert flat[0] == 4 and flat[2**31 - 1] == 6
    assert np.count_nonzero(flat) == 5
    del gi, flat
    gc.collect()
    for bad in (PLANE, PLANE + 2**31, -2):
        hostile = idx.copy()
        hostile[0, 0, 0, 3] = bad
        with pytest.raises(ValueError, match=f"indices contains {bad},"):
            compiled.max_pool2d_backward(g, hostile, (1, 1, H, W))
        gc.collect()


def test_uint8_plane_over_2_31():
    # uint8 (2.1 GB) runs through the NumPy code in both backends.
    dtype = np.dtype(np.uint8)
    need(PLANE * 3.5)
    x = planted(dtype)
    out, idx = cpool.max_pool2d(x, 2, return_indices=True)
    check_2x2(out, idx, dtype)
