"""The single-pass float32 backward for indices that each lie in their own
2x2 cell (``cpool/_src/backward_cells.h``), on each AVX2-family ISA this
machine has ("avx2"; "avx512" on an AVX-512 CPU), against the "baseline"
kernels' zero-and-scatter (``cpool._kernels``, which has no cell writer).

The cell writer must give bit-identical results whenever it is used, give up
(and leave the plane to the scatter) whenever any index is outside its cell,
and never touch memory outside the row it writes, whatever the indices.
"""

import numpy as np
import pytest
from helpers import AVX2_ISAS, COMPILED, COMPILED_API, with_specials

import cpool

pytestmark = [
    pytest.mark.usefixtures("compiled"),
    pytest.mark.skipif(not AVX2_ISAS, reason="no cell writer here (not an x86-64 AVX2 build and CPU)"),
]

INDEX_NAMES = {np.dtype(np.int32): "int32_t", np.dtype(np.int64): "int64_t"}
SPECIALS = [-0.0, 0.0, np.nan, np.inf, -np.inf, 1e-45, -1e-45]


@pytest.fixture(params=[np.int64, np.int32], ids=["int64", "int32"])
def index_dtype(request):
    """int64: the public format; int32: what MaxPool2d keeps for its own backward."""
    return request.param


@pytest.fixture(params=AVX2_ISAS)
def variant(request):
    return request.param


def _run(go, idx, shape, isa, threads=1):
    """(bad-index count, grad_input) from the backward kernel of `isa`, with guard planes around it.

    ``go`` and ``idx`` are (P, OH, OW), passed to the kernel as N = 1.
    """
    P, H, W = shape
    # One extra plane on each side, filled with a sentinel: the writer
    # must not touch them (they are where an over-run would land).
    buf = np.full((P + 2, H, W), 7.0, dtype=np.float32)
    with COMPILED.use_isa(isa) as module:
        assert module.get_isa() == isa
        backward = module.max_pool2d_backward_into[("float", INDEX_NAMES[idx.dtype])]
        bad = backward(go[None], idx[None], buf[None, 1:-1], threads)
    assert (buf[0] == 7.0).all() and (buf[-1] == 7.0).all(), "wrote outside grad_input"
    return bad, buf[1:-1].copy()


def _in_cell_indices(rng, P, H, W, OH, OW, dtype=np.int64):
    oh = np.arange(OH)[:, None]
    ow = np.arange(OW)[None, :]
    tap = rng.integers(0, 4, size=(P, OH, OW))
    return ((2 * oh + tap // 2) * W + 2 * ow + tap % 2).astype(dtype)


def _grads(rng, shape):
    g = rng.standard_normal(shape).astype(np.float32)
    return with_specials(rng, g, SPECIALS, min(g.size, 64))


def _check_same(isa, go, idx, shape, threads=1):
    bad_ref, ref = _run(go, idx, shape, "baseline", threads)
    bad, got = _run(go, idx, shape, isa, threads)
    assert bad == bad_ref
    np.testing.assert_array_equal(got.view(np.int32), ref.view(np.int32))
    return bad


# OW from the minimum row length up, with W == 2*OW (over-running rows) and
# W, H one larger (a spare column/row to zero), and OH == 1 (no over-run).
SHAPES = [(3, 16, 16, 8, 8), (2, 28, 28, 14, 14), (2, 29, 29, 14, 14), (2, 28, 29, 14, 14),
          (2, 29, 28, 14, 14), (1, 2, 30, 1, 15), (2, 34, 34, 17, 17), (1, 66, 66, 33, 33),
          (2, 18, 48, 9, 24), (1, 4, 64, 2, 32), (1, 112, 112, 56, 56)]


@pytest.mark.parametrize("P,H,W,OH,OW", SHAPES)
def test_in_cell_indices_match_scatter(variant, index_dtype, P, H, W, OH, OW):
    rng = np.random.default_rng(P * 1000 + H * 10 + W)
    go = _grads(rng, (P, OH, OW))
    idx = _in_cell_indices(rng, P, H, W, OH, OW, index_dtype)
    assert _check_same(variant, go, idx, (P, H, W)) == 0


def _writer_accepts(isa, go, idx, H, W):
    with COMPILED.use_isa(isa) as module:
        return module.cells_plane(go, idx, np.empty((H, W), np.float32))


@pytest.mark.parametrize("P,H,W,OH,OW", SHAPES)
def test_writer_is_used_and_gives_up_on_a_stray_index(variant, index_dtype, P, H, W, OH, OW):
    # Guards the tests above against a writer that always gives up (and so
    # trivially matches the scatter), and against a baseline that is not the
    # scatter it is compared with.
    rng = np.random.default_rng(OW)
    go = _grads(rng, (OH, OW))
    idx = _in_cell_indices(rng, 1, H, W, OH, OW, index_dtype)[0]
    assert _writer_accepts(variant, go, idx, H, W)
    assert not _writer_accepts("baseline", go, idx, H, W)
    idx[OH - 1, OW - 1] = idx[OH - 1, 0]
    assert not _writer_accepts(variant, go, idx, H, W)


@pytest.mark.parametrize("P,H,W,OH,OW", SHAPES)
def test_one_stray_index_anywhere_falls_back(variant, index_dtype, P, H, W, OH, OW):
    # A valid index outside its own cell, on the first and last row and in
    # the first, middle and last lanes: the plane must be scattered instead.
    rng = np.random.default_rng(7 + OW)
    positions = {(0, 0), (0, OW - 1), (OH - 1, 0), (OH - 1, OW - 1), (OH // 2, OW // 2), (0, 7 % OW), (0, 8 % OW)}
    for oh, ow in sorted(positions):
        go = _grads(rng, (P, OH, OW))
        idx = _in_cell_indices(rng, P, H, W, OH, OW, index_dtype)
        # Point at a cell of a neighbour (or, for a 1x1 plane of cells, at a spare element).
        target = idx[P - 1, oh, (ow + 1) % OW] if OW > 1 else H * W - 1
        idx[P - 1, oh, ow] = target
        assert _check_same(variant, go, idx, (P, H, W)) == 0


@pytest.mark.parametrize("value", [-1, -2, 2**32, 2**32 + 1, -(2**63), 2**63 - 1, 10**6, -(2**31), 2**31 - 1])
def test_hostile_indices_count_as_bad_exactly_as_scatter(variant, index_dtype, value):
    if not np.iinfo(index_dtype).min <= value <= np.iinfo(index_dtype).max:
        pytest.skip("not representable")
    rng = np.random.default_rng(3)
    P, H, W, OH, OW = 2, 28, 28, 14, 14
    for oh, ow in ((0, 0), (13, 13), (5, 9)):
        go = _grads(rng, (P, OH, OW))
        idx = _in_cell_indices(rng, P, H, W, OH, OW, index_dtype)
        idx[1, oh, ow] = value
        bad = _check_same(variant, go, idx, (P, H, W))
        assert bad == (0 if value == -1 else 1)


@pytest.mark.parametrize("shift", [2**32, -(2**32), 2**31, -(2**31), 2**40 + 2**32, -(2**63)])
def test_in_cell_index_plus_high_bits_is_bad(variant, shift):
    # An int64 index whose low 32 bits name the right cell position but whose
    # high bits do not: a writer that compared only the low halves would
    # take it for valid. Every lane and every position in the cell.
    rng = np.random.default_rng(5)
    P, H, W, OH, OW = 1, 28, 28, 14, 14
    for ow in range(OW):
        go = _grads(rng, (P, OH, OW))
        idx = _in_cell_indices(rng, P, H, W, OH, OW, np.int64)
        oh = ow % OH
        idx[0, oh, ow] = np.int64((int(idx[0, oh, ow]) + shift + 2**63) % 2**64 - 2**63)
        assert _check_same(variant, go, idx, (P, H, W)) == 1


def test_two_threads_match(variant, index_dtype):
    rng = np.random.default_rng(11)
    P, H, W, OH, OW = 64, 28, 28, 14, 14
    go = _grads(rng, (P, OH, OW))
    idx = _in_cell_indices(rng, P, H, W, OH, OW, index_dtype)
    idx[17, 3, 4] = idx[17, 3, 5]  # one plane falls back
    assert _check_same(variant, go, idx, (P, H, W), threads=2) == 0


@pytest.mark.parametrize("shape", [(4, 8, 28, 28), (2, 3, 33, 35), (1, 16, 56, 56)])
def test_public_backward_through_each_variant_matches_numpy(variant, shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    out, idx = cpool.slow.max_pool2d(x, 2, return_indices=True)
    go = _grads(rng, out.shape)
    with COMPILED.use_isa(variant):
        got = COMPILED_API.max_pool2d_backward(go, idx, shape)
    ref = cpool.slow.max_pool2d_backward(go, idx, shape)
    np.testing.assert_array_equal(got.view(np.int32), ref.view(np.int32))


# ---------------------------------------------------------------- channels-last memory
# The channels-last cell writer (backward_nhwc_avx2.h) takes each pixel's
# channels 8 at a time (the last 8 overlapping the ones before when C is
# not a multiple of 8), 8 / C outputs a vector for C = 1, 2, 4, one pixel a
# vector with the lanes past C spilling into positions written later for
# the other C < 8, and channel by channel where a vector would reach past
# the row. Every channel count from 1 to 19 and a few larger, against the
# baseline kernels' scalar channels-last backward.

NHWC_CHANNELS = list(range(1, 20)) + [24, 31, 64, 65, 72, 130]
NHWC_SHAPES = [(2, 28, 28, 14, 14), (1, 29, 31, 14, 15), (3, 8, 6, 4, 3), (1, 2, 2, 1, 1), (2, 4, 18, 2, 9)]


def _run_nhwc(go, idx, shape, isa, threads=1):
    """(bad-index count, grad_input) of the channels-last backward of `isa`.

    ``go`` and ``idx`` are (N, OH, OW, C); guard images on each side of
    grad_input must keep their sentinel."""
    N, H, W, C = shape
    buf = np.full((N + 2, H, W, C), 7.0, dtype=np.float32)
    with COMPILED.use_isa(isa) as module:
        assert module.get_isa() == isa
        backward = module.max_pool2d_backward_into[("float", INDEX_NAMES[idx.dtype])]
        bad = backward(go, idx, buf[1:-1], threads, False, True)
    assert (buf[0] == 7.0).all() and (buf[-1] == 7.0).all(), "wrote outside grad_input"
    return bad, buf[1:-1].copy()


def _nhwc_in_cell_indices(rng, N, H, W, OH, OW, C, dtype=np.int64):
    # (N, OH, OW, C): each (n, c) plane's index of a position in its cell.
    planes = _in_cell_indices(rng, N * C, H, W, OH, OW, dtype).reshape(N, C, OH, OW)
    return np.ascontiguousarray(planes.transpose(0, 2, 3, 1))


def _check_same_nhwc(isa, go, idx, shape, threads=1):
    bad_ref, ref = _run_nhwc(go, idx, shape, "baseline", threads)
    bad, got = _run_nhwc(go, idx, shape, isa, threads)
    assert bad == bad_ref
    np.testing.assert_array_equal(got.view(np.int32), ref.view(np.int32))
    return bad


@pytest.mark.parametrize("C", NHWC_CHANNELS)
@pytest.mark.parametrize("N,H,W,OH,OW", NHWC_SHAPES)
def test_nhwc_in_cell_indices_match_scatter(variant, index_dtype, N, H, W, OH, OW, C):
    rng = np.random.default_rng(N * 7 + H * 5 + W * 3 + C)
    go = _grads(rng, (N, OH, OW, C))
    idx = _nhwc_in_cell_indices(rng, N, H, W, OH, OW, C, index_dtype)
    assert _check_same_nhwc(variant, go, idx, (N, H, W, C)) == 0


@pytest.mark.parametrize("C", [1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17])
def test_nhwc_one_stray_index_anywhere_falls_back(variant, index_dtype, C):
    # A valid index outside its own cell in every channel of the first,
    # middle and last outputs of a row: the image must be scattered instead,
    # with the same sums; -1 (no input element) is skipped by both.
    rng = np.random.default_rng(C)
    N, H, W, OH, OW = 2, 12, 14, 6, 7
    for oh, ow in ((0, 0), (0, OW - 1), (OH - 1, OW - 1), (3, 3), (2, OW - 2)):
        for c in range(C):
            go = _grads(rng, (N, OH, OW, C))
            idx = _nhwc_in_cell_indices(rng, N, H, W, OH, OW, C, index_dtype)
            idx[1, oh, ow, c] = idx[1, oh, (ow + 1) % OW, c]
            idx[0, oh, ow, c] = -1
            assert _check_same_nhwc(variant, go, idx, (N, H, W, C)) == 0


@pytest.mark.parametrize("value", [-2, 2**32, -(2**63), 2**63 - 1, 10**6, -(2**31), 2**31 - 1])
@pytest.mark.parametrize("C", [2, 3, 4, 8, 11])
def test_nhwc_hostile_indices_count_as_bad_exactly_as_scatter(variant, index_dtype, value, C):
    if not np.iinfo(index_dtype).min <= value <= np.iinfo(index_dtype).max:
        pytest.skip("not representable")
    rng = np.random.default_rng(C)
    N, H, W, OH, OW = 2, 8, 10, 4, 5
    for oh, ow, c in ((0, 0, 0), (OH - 1, OW - 1, C - 1), (1, 2, C // 2)):
        go = _grads(rng, (N, OH, OW, C))
        idx = _nhwc_in_cell_indices(rng, N, H, W, OH, OW, C, index_dtype)
        idx[1, oh, ow, c] = value
        assert _check_same_nhwc(variant, go, idx, (N, H, W, C)) == 1


@pytest.mark.parametrize("C", [3, 4, 8])
def test_nhwc_in_cell_index_plus_high_bits_is_bad(variant, C):
    rng = np.random.default_rng(C)
    N, H, W, OH, OW = 1, 8, 8, 4, 4
    for ow in range(OW):
        for c in range(C):
            go = _grads(rng, (N, OH, OW, C))
            idx = _nhwc_in_cell_indices(rng, N, H, W, OH, OW, C, np.int64)
            idx[0, ow % OH, ow, c] += 2**32
            assert _check_same_nhwc(variant, go, idx, (N, H, W, C)) == 1


@pytest.mark.parametrize("C", [2, 4, 5, 8])
def test_nhwc_two_threads_match(variant, index_dtype, C):
    rng = np.random.default_rng(13)
    N, H, W, OH, OW = 16, 28, 28, 14, 14
    go = _grads(rng, (N, OH, OW, C))
    idx = _nhwc_in_cell_indices(rng, N, H, W, OH, OW, C, index_dtype)
    idx[5, 3, 4, C - 1] = idx[5, 3, 5, C - 1]  # one image falls back
    assert _check_same_nhwc(variant, go, idx, (N, H, W, C), threads=2) == 0
