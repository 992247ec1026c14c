"""Average pooling's compiled kernels against torch, bit for bit.

Shapes chosen to reach every path of the kernels (avg_forward.pxi,
avg_backward.pxi and their AVX2 versions in avg_avx2.h): vector blocks of
output columns with stride 1 and 2 and their partial or overlapping last
block, border columns, rows shorter than a vector, strides the vectors do
not take, channel counts around the 4/8/32-channel blocks (torch's scalar
channel tail keeps a NaN sum, its vector lanes a NaN tap), padding,
ceil_mode, count_include_pad=False, divisor_override, NaN payloads (two
different NaNs meeting in one window and one cell), inf - inf and -0.0;
float32 and float64, every instruction set, 1 and 2 threads.
"""
from __future__ import annotations

import numpy as np
import pytest
from helpers import COMPILED

import cpool

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(COMPILED is None, reason="compiled extension not built")

ISAS = () if COMPILED is None else COMPILED.AVAILABLE_ISAS


def _nan(dtype, payload, negative=False):
    word = np.dtype(f"u{np.dtype(dtype).itemsize}")
    bits = (0x7FC00000 if word.itemsize == 4 else 0x7FF8000000000000) | payload
    if negative:
        bits |= 1 << (8 * word.itemsize - 1)
    return np.array([bits], word).view(dtype)[0]


def _input(rng, dtype, shape, specials):
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    if specials and flat.size:
        values = [_nan(dtype, 1), _nan(dtype, 2, True), _nan(dtype, 0x35), np.inf, -np.inf, -0.0]
        at = rng.integers(0, flat.size, max(2, flat.size // 40))
        flat[at] = rng.choice(values, at.size)
        # two different NaNs side by side: they meet in a window and in a cell
        j = int(rng.integers(0, max(1, flat.size - 1)))
        flat[j:j + 2] = [_nan(dtype, 3), _nan(dtype, 4)][: flat[j:j + 2].size]
    return x


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


def _cl(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _check(x, go_rng, k, s, p, ceil, incl, div, channels_last):
    xm = _cl(x) if channels_last else x
    tx = torch.from_numpy(x)
    if channels_last:
        tx = tx.contiguous(memory_format=torch.channels_last)
    want = torch.nn.functional.avg_pool2d(tx, k, s, p, ceil, incl, div).numpy()
    with np.errstate(invalid="ignore", over="ignore"):
        got = cpool.avg_pool2d(xm, k, s, p, ceil, incl, div)
    case = (x.shape, x.dtype, k, s, p, ceil, incl, div, channels_last)
    np.testing.assert_array_equal(_bits(got), _bits(want), err_msg=str(case))
    go = _input(go_rng, x.dtype, want.shape, True)
    tg = torch.from_numpy(go)
    if channels_last:
        tg = tg.contiguous(memory_format=torch.channels_last)
    want_gi = torch.ops.aten.avg_pool2d_backward(tg, tx, list(k), list(s), list(p), ceil, incl, div).numpy()
    with np.errstate(invalid="ignore", over="ignore"):
        gi = cpool.avg_pool2d_backward(_cl(go) if channels_last else go, x.shape, k, s, p, ceil, incl, div)
    np.testing.assert_array_equal(_bits(gi), _bits(want_gi), err_msg=str(case) + " backward")


def _valid(H, W, k, s, p, ceil):
    if any(pp > kk // 2 for pp, kk in zip(p, k)):
        return False
    for L, kk, pp in ((H, k[0], p[0]), (W, k[1], p[1])):
        if L + 2 * pp < kk:
            return False
    return True


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_planes_paths_match_torch(isa, dtype, threads):
    rng = np.random.default_rng(5)
    cases = [
        ((2, 3, 28, 28), 2, 2, 0), ((1, 2, 23, 37), 3, 2, 1), ((1, 2, 9, 70), 3, 1, 1),
        ((1, 1, 6, 5), 2, 1, 0), ((1, 2, 11, 19), 3, 3, 1), ((1, 1, 8, 45), 5, 2, 2),
        ((2, 1, 7, 17), 4, 2, 2), ((1, 1, 5, 7), 1, 1, 0), ((1, 2, 13, 33), 2, 2, 1),
        ((1, 1, 4, 300), 3, 1, 1), ((1, 1, 5, 600), 3, 2, 0), ((1, 1, 3, 18), 3, 2, 1),
    ]
    with COMPILED.use_isa(isa):
        for shape, k, s, p in cases:
            for specials in (False, True):
                x = _input(rng, dtype, shape, specials)
                for ceil, incl, div in ((False, True, None), (True, True, None), (True, False, None),
                                        (False, False, 7), (False, True, -3)):
                    kk, ss, pp = (k, k), (s, s), (p, p)
                    if _valid(shape[2], shape[3], kk, ss, pp, ceil):
                        _check(x, rng, kk, ss, pp, ceil, incl, div, False)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channels_last_paths_match_torch(isa, dtype, threads):
    rng = np.random.default_rng(6)
    with COMPILED.use_isa(isa):
        for C in range(1, 41):
            shape = (1 + C % 2, C, 5 + C % 4, 6 + C % 5)
            for specials in (False, True):
                x = _input(rng, dtype, shape, specials)
                for k, s, p, ceil, incl, div in ((2, 2, 0, False, True, None), (3, 2, 1, False, True, None),
                                                 (3, 1, 1, True, False, None), (2, 3, 1, True, True, 5)):
                    if _valid(shape[2], shape[3], (k, k), (s, s), (p, p), ceil):
                        _check(x, rng, (k, k), (s, s), (p, p), ceil, incl, div, True)


@pytest.mark.parametrize("isa", ISAS)
def test_nan_meets_nan_and_inf_minus_inf(isa):
    # one window holding two NaNs (planes keep the first, channels-last vector
    # lanes the last), inf - inf, and -0.0 taps; and a cell two NaN shares meet
    for dtype in (np.float32, np.float64):
        for C in (1, 3, 4, 5, 8, 9, 16, 33):
            x = np.full((1, C, 4, 20), -0.0, dtype)
            x[..., 0, 0], x[..., 0, 1] = _nan(dtype, 7), _nan(dtype, 9, True)
            x[..., 2, 8], x[..., 2, 9] = np.inf, -np.inf
            x[..., 1, 16], x[..., 1, 17] = np.inf, _nan(dtype, 11)
            with COMPILED.use_isa(isa):
                for channels_last in (False, True):
                    for k, s, p in (((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)), ((2, 3), (1, 1), (1, 1))):
                        _check(x, np.random.default_rng(C), k, s, p, False, True, None, channels_last)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_narrow_planes_and_slabs_match_torch(isa, dtype, threads):
    # Rows of at most 8 outputs go through the narrow planes kernel (one
    # masked vector a row, border windows included) or, for planes under 12
    # columns and column strides over 2, in slabs of up to 32 planes through
    # a channels-last buffer (avg_slabs_avx2.h): plane counts around the
    # slab and vector sizes, plane sizes off the 8x8 transpose blocks,
    # partial planes at each thread's block ends, border and ceil-mode
    # windows, every divisor rule.
    rng = np.random.default_rng(8)
    geometries = (((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)), ((3, 3), (1, 1), (1, 1)),
                  ((3, 3), (3, 3), (1, 1)), ((2, 2), (1, 1), (0, 0)), ((5, 5), (1, 1), (2, 2)),
                  ((2, 3), (2, 1), (1, 1)), ((4, 4), (4, 4), (0, 0)), ((5, 3), (2, 2), (2, 1)))
    with COMPILED.use_isa(isa):
        for P, (H, W) in ((1, (7, 7)), (31, (14, 14)), (33, (5, 5)), (40, (8, 8)), (65, (7, 7)),
                          (9, (16, 16)), (34, (3, 17)), (35, (11, 9)), (3, (13, 20)), (36, (15, 6))):
            x = _input(rng, dtype, (1, P, H, W), True)
            # a plane of -0.0 with one negative subnormal: means that
            # underflow to -0.0, stored as +0.0 by the planes rule
            x[0, P // 2] = -0.0
            x[0, P // 2, H // 2, W // 2] = -np.finfo(dtype).smallest_subnormal
            for k, s, p in geometries:
                for ceil, incl, div in ((False, True, None), (True, False, None), (True, True, 3)):
                    if _valid(H, W, k, s, p, ceil):
                        _check(x, rng, k, s, p, ceil, incl, div, False)
