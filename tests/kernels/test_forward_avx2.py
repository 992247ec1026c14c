"""The AVX2 float32 forward kernels (``cpool/_src/forward_avx2.h``: the 2x2
stride-2 one and the general one for column stride 1 or 2) against the
"baseline" kernels: the portable loops, compiled separately for the
platform's baseline (``cpool._kernels``), which the correctness and
property tests check against the NumPy reference and torch.

Both must agree bit for bit (values and indices, NaN payloads, signed zeros)
on every row length, including the 2x2 rows of 4 to 7 windows whose vector
runs past the row end and the general kernel's border columns, at every
split of rows between threads, and neither may write outside its output
arrays. Each test runs on every AVX2-family ISA this machine has
("avx2"; also "avx512", whose forward is the same AVX2 code but for the
values-only 3x3 separable fold, 16 outputs a vector) and is skipped where
there is none.
"""

import itertools
import zlib

import numpy as np
import pytest
from helpers import AVX2_ISAS, COMPILED, COMPILED_API, NUMPY_API, assert_same_bits, with_specials

from cpool._validation import prepare_forward

pytestmark = [
    pytest.mark.usefixtures("compiled"),
    pytest.mark.skipif(not AVX2_ISAS, reason="no AVX2 kernels here (not an x86-64 AVX2 build and CPU)"),
]

SENTINEL = np.float32(-7.25)
GUARD = 16  # elements before and after each output: where an over-running vector would land
INDEX_NAMES = {None: "int64_t", np.int32: "int32_t", np.int64: "int64_t"}  # values only: the int64 one, indices=None
SPECIALS = [-0.0, 0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-45]


@pytest.fixture(params=AVX2_ISAS)
def isa(request):
    return request.param


def _data(rng, shape, ties, nans="many"):
    """Random planes with ties (if asked) and special values.

    nans: "many" (NaN among the specials), "none" (every other special, no
    NaN: the kernels' NaN-free fast paths) or "one" (no NaN but one, in the
    last plane: the fast path for the others, the exact one around it).
    """
    if ties:  # few distinct values: every window has ties
        x = rng.integers(-2, 3, size=shape).astype(np.float32)
    else:
        x = rng.standard_normal(shape).astype(np.float32)
    specials = SPECIALS if nans == "many" else [v for v in SPECIALS if not np.isnan(v)]
    x = with_specials(rng, x, specials, max(1, x.size // 8))
    if nans == "one":
        last = x.reshape(-1, x.shape[-2] * x.shape[-1])[-1]
        last[rng.integers(last.size)] = np.float32(-np.nan) if rng.random() < 0.5 else np.float32(np.nan)
    return x


def _seed(*parts):
    return zlib.crc32(repr(parts).encode())


def _run(x, isa, index_dtype, threads, geometry=(2, 2, 0, 1, False)):
    """(out, idx) from the forward kernel of `isa`, written into guarded buffers.

    geometry: (kernel_size, stride, padding, dilation, ceil_mode). The
    kernels take (N, C, H, W); a 3-D ``x`` is passed as N = 1.
    """
    x, g, *_ = prepare_forward(x, *geometry, True)
    x4 = x if x.ndim == 4 else x[None]
    shape = x4.shape[:2] + (g.OH, g.OW)
    n = int(np.prod(shape))
    obuf = np.full(n + 2 * GUARD, SENTINEL, np.float32)
    out = obuf[GUARD:GUARD + n].reshape(shape)
    ibuf = idx = None
    if index_dtype is not None:
        ibuf = np.full(n + 2 * GUARD, -5, index_dtype)
        idx = ibuf[GUARD:GUARD + n].reshape(shape)
    with COMPILED.use_isa(isa) as module:
        assert module.get_isa() == isa
        forward = module.max_pool2d_forward_into[("float", INDEX_NAMES[index_dtype])]
        assert forward(x4, out, idx, g, threads) is True
    guards = np.concatenate([obuf[:GUARD], obuf[GUARD + n:]])
    assert (guards.view(np.uint32) == SENTINEL.view(np.uint32)).all(), "wrote outside out"
    lead = x.shape[:-2] + (g.OH, g.OW)
    if ibuf is None:
        return out.reshape(lead), None
    assert (ibuf[:GUARD] == -5).all() and (ibuf[GUARD + n:] == -5).all(), "wrote outside indices"
    return out.reshape(lead), idx.reshape(lead)


def _check_same(x, isa, index_dtype, threads, geometry=(2, 2, 0, 1, False), ref_threads=None, msg=""):
    out, idx = _run(x, isa, index_dtype, threads, geometry)
    ref_out, ref_idx = _run(x, "baseline", index_dtype, threads if ref_threads is None else ref_threads, geometry)
    assert_same_bits(out, ref_out, msg)
    if index_dtype is not None:
        assert idx.dtype == index_dtype
        np.testing.assert_array_equal(idx, ref_idx, err_msg=msg)
    return out, idx


@pytest.mark.parametrize("index_dtype", [None, np.int32, np.int64], ids=["values", "int32", "int64"])
@pytest.mark.parametrize("OW", list(range(1, 19)) + [24, 28, 56])
@pytest.mark.parametrize("odd", [False, True], ids=["even", "odd"])
def test_2x2_matches_baseline(isa, OW, odd, index_dtype):
    rng = np.random.default_rng(1000 * OW + odd)
    for OH, P, threads, ties in ((1, 5, 1, False), (3, 4, 2, True), (4, 3, 3, False), (2, 1, 1, True)):
        H, W = 2 * OH + odd, 2 * OW + odd
        x = _data(rng, (P, H, W), ties)
        out, idx = _check_same(x, isa, index_dtype, threads)
        if index_dtype is not None:
            # The chosen tap holds the output's value, bit for bit.
            chosen = np.take_along_axis(x.reshape(P, -1), idx.reshape(P, -1).astype(np.int64), axis=1)
            np.testing.assert_array_equal(chosen.view(np.uint32), out.reshape(P, -1).view(np.uint32))


@pytest.mark.parametrize("threads", [1, 2, 5, 7])
def test_2x2_thread_splits_inside_planes(isa, threads):
    # 7 rows of 7 windows per plane: with 2, 5 or 7 threads the blocks end
    # mid-plane, where a row must not run past its block.
    rng = np.random.default_rng(threads)
    x = _data(rng, (2, 3, 14, 14), ties=True)
    for index_dtype in (None, np.int32, np.int64):
        _check_same(x, isa, index_dtype, threads, ref_threads=1)


def test_2x2_nan_and_tie_rules(isa):
    # Window taps in order a b / c d: the last NaN wins, else the first maximum.
    nan = np.float32(np.nan)
    cases = [
        ([1, 1, 1, 1], 0), ([1, 2, 2, 2], 1), ([0, 0, 3, 3], 2), ([0, 0, 0, 4], 3),
        ([nan, 5, 5, 5], 0), ([1, nan, 9, 1], 1), ([nan, nan, 1, nan], 3), ([9, 1, nan, 9], 2),
        ([-0.0, 0.0, 0.0, -0.0], 0), ([-np.inf, -np.inf, -np.inf, -np.inf], 0),
    ]
    # 8 windows in a row so the vector path runs; each case in each lane.
    for lane in range(8):
        for taps, want in cases:
            x = np.zeros((1, 2, 16), np.float32)
            x[0, 0, 2 * lane:2 * lane + 2] = taps[:2]
            x[0, 1, 2 * lane:2 * lane + 2] = taps[2:]
            _, idx = _run(x, isa, np.int64, 1)
            assert idx[0, 0, lane] == (want // 2) * 16 + 2 * lane + want % 2, (taps, lane)


GENERAL = [
    # (kernel_size, stride, padding, dilation, ceil_mode)
    (3, 2, 1, 1, False),            # the ResNet stem
    (3, 1, 1, 1, False),
    (3, 2, 0, 1, True),
    (2, 2, 0, 1, True),             # k2 s2 with a partial last window: not the 2x2 kernel
    (2, 1, 0, 1, False),
    (1, 1, 0, 1, False),
    (1, 2, 0, 1, True),
    (4, 2, 2, 1, False),
    (5, 1, 2, 1, True),
    (3, 2, 1, 2, False),
    (3, 1, 2, 2, True),
    ((2, 5), (1, 2), (1, 2), (2, 1), False),
    ((4, 3), (3, 1), (2, 1), 1, True),
    ((3, 3), (2, 3), 1, 1, False),  # column stride 3: the loop, for comparison
    (7, 2, 3, 1, False),
]


@pytest.mark.parametrize("index_dtype", [None, np.int32, np.int64], ids=["values", "int32", "int64"])
@pytest.mark.parametrize("geometry", GENERAL, ids=[str(g) for g in GENERAL])
def test_general_matches_baseline(isa, geometry, index_dtype):
    rng = np.random.default_rng(_seed(geometry))
    # Widths around the vector lengths (8, and 16 for AVX-512): no interior,
    # interiors of 7, 8, 9, 15, 16, 17, 31, 32, 33, ...
    for W in (1, 5, 9, 15, 16, 17, 18, 19, 21, 33, 34, 35, 36, 40, 65, 66, 112):
        for (H, P, threads, ties), nans in itertools.product(((W % 7 + 1, 3, 1, False), (9, 2, 3, True)),
                                                             ("many", "none", "one")):
            x = _data(rng, (P, H, W), ties, nans)
            try:
                _run(x, isa, index_dtype, threads, geometry)
            except ValueError:  # the geometry does not fit this input
                with pytest.raises(ValueError):
                    _run(x, "baseline", index_dtype, threads, geometry)
                continue
            _check_same(x, isa, index_dtype, threads, geometry, msg=f"W={W} nans={nans}")


def test_general_all_nan_and_all_minus_inf_windows(isa):
    # A window of -inf keeps its first in-bounds tap; of NaN, its last tap.
    for fill, pick in ((-np.inf, "first"), (np.nan, "last")):
        x = np.full((1, 6, 40), fill, np.float32)
        _, idx = _check_same(x, isa, np.int64, 1, (3, 2, 1, 1, False), msg=pick)
        # Output (1, 1) covers rows 1-3, columns 1-3.
        assert idx[0, 1, 1] == (1 * 40 + 1 if pick == "first" else 3 * 40 + 3)


@pytest.mark.parametrize("shape,args", [((4, 8, 28, 28), (2,)), ((2, 3, 33, 35), (2,)), ((2, 4, 56, 57), (3, 2, 1)),
                                        ((1, 3, 40, 41), (3, 1, 1)), ((2, 2, 30, 30), (5, 2, 2, 2, True))])
def test_public_forward_through_each_isa_matches_numpy(isa, shape, args):
    # The whole compiled backend on this ISA (dtype routing, float16 through
    # the float32 kernel, the OpenMP split) against the NumPy backend.
    rng = np.random.default_rng(_seed(shape, args))
    for dtype in (np.float32, np.float16, np.float64):
        x = _data(rng, shape, ties=dtype is np.float16).astype(dtype)
        with COMPILED.use_isa(isa):
            got = COMPILED_API.max_pool2d(x, *args, return_indices=True)
            values = COMPILED_API.max_pool2d(x, *args)
        expected = NUMPY_API.max_pool2d(x, *args, return_indices=True)
        assert_same_bits(got[0], expected[0], (dtype, shape, args))
        assert_same_bits(values, expected[0], (dtype, shape, args))
        assert_same_bits(got[1], expected[1], (dtype, shape, args))


SLAB_GEOMETRIES = [
    # (kernel_size, stride, padding, dilation, ceil_mode): rows under 16 outputs, or column stride 3
    (3, 2, 1, 1, False),
    (3, 1, 1, 1, False),
    (3, 2, 0, 1, True),
    (2, 2, 0, 1, False),  # the 2x2 geometry with rows of under 4 windows
    (3, 3, 0, 1, False),
    (5, 1, 2, 1, False),
    (3, 2, 1, 2, True),
    ((2, 4), (1, 3), (1, 2), 1, True),
]


@pytest.mark.parametrize("index_dtype", [None, np.int32, np.int64], ids=["values", "int32", "int64"])
@pytest.mark.parametrize("geometry", SLAB_GEOMETRIES, ids=[str(g) for g in SLAB_GEOMETRIES])
def test_slabs_match_baseline(isa, geometry, index_dtype):
    # Many small planes go through the channels-last kernel in slabs of up
    # to 32 (forward_slabs_avx2.h): plane counts around the slab and vector
    # sizes (a last slab that would hold one plane borrows one), plane sizes
    # off the 8x8 transpose blocks, and thread splits that leave partial
    # planes at each block's ends.
    rng = np.random.default_rng(_seed("slabs", geometry))
    for P, (H, W), threads in ((2, (7, 7), 1), (9, (14, 14), 1), (33, (15, 15), 2), (40, (5, 9), 3),
                               (65, (28, 28), 1), (70, (7, 7), 5), (31, (3, 17), 2)):
        for nans in ("many", "none"):
            x = _data(rng, (P, H, W), ties=P % 2 == 1, nans=nans)
            try:
                _run(x, isa, index_dtype, threads, geometry)
            except ValueError:  # the geometry does not fit this input
                continue
            _check_same(x, isa, index_dtype, threads, geometry, ref_threads=1, msg=f"P={P} H={H} W={W} nans={nans}")


BAND_GEOMETRIES = [
    # (kernel_size, stride, padding, dilation, ceil_mode) on planes too large for a whole-plane slab
    (8, 8, 0, 1, False),
    (3, 3, 1, 1, True),
    (4, 4, 0, 1, False),
    (3, 4, 1, 1, False),  # rows and columns no window reads
    (5, 3, 2, 2, True),  # dilation: windows whose first rows are padding
    ((2, 7), (1, 5), (1, 3), 1, True),
    ((3, 2), (3, 3), (1, 1), (1, 48), False),  # 47 columns: a window whose taps are all padding (-inf, -1)
]


@pytest.mark.parametrize("index_dtype", [None, np.int32, np.int64], ids=["values", "int32", "int64"])
@pytest.mark.parametrize("geometry", BAND_GEOMETRIES, ids=[str(g) for g in BAND_GEOMETRIES])
def test_slab_bands_match_baseline(isa, geometry, index_dtype):
    # Planes whose slab would not fit the buffer go, with a column stride
    # over 2, a band of output rows at a time (the input rows those read,
    # their indices moved down by the band's first row), with fewer planes a
    # slab for the widest bands:
    # plane counts around the slab sizes, bands that start in the padding,
    # ceil-mode windows clipped at the last row, thread splits.
    rng = np.random.default_rng(_seed("bands", geometry))
    for P, (H, W), threads in ((3, (56, 56), 1), (33, (250, 47), 2), (17, (130, 61), 1), (9, (300, 250), 2),
                               (2, (700, 90), 1)):
        x = _data(rng, (P, H, W), ties=P % 2 == 1, nans="many")
        try:
            _run(x, isa, index_dtype, threads, geometry)
        except ValueError:  # the geometry does not fit this input
            continue
        _check_same(x, isa, index_dtype, threads, geometry, ref_threads=1, msg=f"P={P} H={H} W={W}")
