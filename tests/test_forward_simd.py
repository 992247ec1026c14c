"""The AVX2 float32 forward kernels (``cpool/_forward.h``: the 2x2 stride-2
one and the general one for column stride 1 or 2) against the
auto-vectorised loops of the same module, which the differential and
PyTorch-parity tests check against the NumPy reference and torch.

Both must agree bit for bit (values and indices, NaN payloads, signed zeros)
on every row length, including the 2x2 rows of 4 to 7 windows whose vector
runs past the row end and the general kernel's border columns, at every
split of rows between threads, and neither may write outside its output
arrays.
"""

import numpy as np
import pytest

fast = pytest.importorskip("cpool._fast")
from cpool._validation import prepare_forward  # noqa: E402

KERNELS = fast.KERNELS
FORWARD = fast._FORWARD

pytestmark = pytest.mark.skipif(KERNELS.forward_isa() != "avx2",
                                reason="these kernels have no AVX2 forward (not an AVX2 build/CPU)")

SENTINEL = np.float32(-7.25)


def _data(rng, shape, ties):
    if ties:  # few distinct values: every window has ties
        x = rng.integers(-2, 3, size=shape).astype(np.float32)
    else:
        x = rng.standard_normal(shape).astype(np.float32)
    flat = x.reshape(-1)
    specials = np.array([-0.0, 0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-45], np.float32)
    pick = rng.integers(0, flat.size, size=max(1, flat.size // 8))
    flat[pick] = specials[rng.integers(0, specials.size, size=pick.size)]
    return x


def _run(x, isa, index_dtype, threads, geometry=(2, 2, 0, 1, False)):
    """(out, idx) from the forward with kernels `isa`, written into guarded buffers.

    geometry: (kernel_size, stride, padding, dilation, ceil_mode).
    """
    _, g, _ = prepare_forward(x, *geometry, True)
    shape = x.shape[:-2] + (g.OH, g.OW)
    n = int(np.prod(shape))
    # 16 guard elements after each output: where an over-running vector would land.
    obuf = np.full(n + 16, SENTINEL, np.float32)
    ibuf = None if index_dtype is None else np.full(n + 16, -5, index_dtype)
    before = KERNELS.forward_isa()
    try:
        assert KERNELS.forward_isa(isa) == isa
        FORWARD(x, obuf[:n].reshape(shape), None if ibuf is None else ibuf[:n].reshape(shape), g.packed, threads)
    finally:
        KERNELS.forward_isa(before)
    assert (obuf[n:].view(np.uint32) == SENTINEL.view(np.uint32)).all(), "wrote past the end of out"
    if ibuf is not None:
        assert (ibuf[n:] == -5).all(), "wrote past the end of indices"
        return obuf[:n].reshape(shape), ibuf[:n].reshape(shape)
    return obuf[:n].reshape(shape), None


@pytest.mark.parametrize("index_dtype", [None, np.int32, np.int64], ids=["values", "int32", "int64"])
@pytest.mark.parametrize("OW", list(range(1, 19)) + [24, 28, 56])
@pytest.mark.parametrize("odd", [False, True], ids=["even", "odd"])
def test_2x2_matches_loop(OW, odd, index_dtype):
    rng = np.random.default_rng(1000 * OW + odd)
    for OH, P, threads, ties in ((1, 5, 1, False), (3, 4, 2, True), (4, 3, 3, False), (2, 1, 1, True)):
        H, W = 2 * OH + odd, 2 * OW + odd
        x = _data(rng, (P, H, W), ties)
        out, idx = _run(x, "avx2", index_dtype, threads)
        ref_out, ref_idx = _run(x, "none", index_dtype, threads)
        np.testing.assert_array_equal(out.view(np.uint32), ref_out.view(np.uint32))
        if index_dtype is not None:
            assert idx.dtype == index_dtype
            np.testing.assert_array_equal(idx, ref_idx)
            # The chosen tap holds the output's value, bit for bit.
            chosen = np.take_along_axis(x.reshape(P, -1), idx.reshape(P, -1).astype(np.int64), axis=1)
            np.testing.assert_array_equal(chosen.view(np.uint32), out.reshape(P, -1).view(np.uint32))


@pytest.mark.parametrize("threads", [1, 2, 5, 7])
def test_2x2_thread_splits_inside_planes(threads):
    # 7 rows of 7 windows per plane: with 2, 5 or 7 threads the blocks end
    # mid-plane, where a row must not run past its block.
    rng = np.random.default_rng(threads)
    x = _data(rng, (2, 3, 14, 14), ties=True)
    for index_dtype in (None, np.int32, np.int64):
        out, idx = _run(x, "avx2", index_dtype, threads)
        ref_out, ref_idx = _run(x, "none", index_dtype, 1)
        np.testing.assert_array_equal(out.view(np.uint32), ref_out.view(np.uint32))
        if index_dtype is not None:
            np.testing.assert_array_equal(idx, ref_idx)


def test_2x2_nan_and_tie_rules():
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
            _, idx = _run(x, "avx2", np.int64, 1)
            assert idx[0, 0, lane] == (want // 2) * 16 + 2 * lane + want % 2, (taps, lane)


def test_forward_isa_switch():
    before = KERNELS.forward_isa()
    try:
        assert KERNELS.forward_isa("none") == "none"
        assert KERNELS.forward_isa() == "none"
        assert KERNELS.forward_isa("avx2") == "avx2"
        with pytest.raises(ValueError, match="isa"):
            KERNELS.forward_isa("avx512")
    finally:
        KERNELS.forward_isa(before)


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
def test_general_matches_loop(geometry, index_dtype):
    rng = np.random.default_rng(abs(hash(str(geometry))) % 2**32)
    # Widths around the vector length: no interior, interiors of 7, 8, 9, 16, 17, ...
    for W in (1, 5, 9, 15, 16, 17, 18, 19, 21, 33, 40, 112):
        for H, P, threads, ties in ((W % 7 + 1, 3, 1, False), (9, 2, 3, True)):
            x = _data(rng, (P, H, W), ties)
            try:
                out, idx = _run(x, "avx2", index_dtype, threads, geometry)
            except ValueError:  # the geometry does not fit this input
                with pytest.raises(ValueError):
                    _run(x, "none", index_dtype, threads, geometry)
                continue
            ref_out, ref_idx = _run(x, "none", index_dtype, threads, geometry)
            np.testing.assert_array_equal(out.view(np.uint32), ref_out.view(np.uint32), err_msg=f"W={W}")
            if index_dtype is not None:
                np.testing.assert_array_equal(idx, ref_idx, err_msg=f"W={W}")


def test_general_all_nan_and_all_minus_inf_windows():
    # A window of -inf keeps its first in-bounds tap; of NaN, its last tap.
    for fill, pick in ((-np.inf, "first"), (np.nan, "last")):
        x = np.full((1, 6, 40), fill, np.float32)
        out, idx = _run(x, "avx2", np.int64, 1, (3, 2, 1, 1, False))
        ref_out, ref_idx = _run(x, "none", np.int64, 1, (3, 2, 1, 1, False))
        np.testing.assert_array_equal(idx, ref_idx, err_msg=pick)
        np.testing.assert_array_equal(out.view(np.uint32), ref_out.view(np.uint32))
        # Output (1, 1) covers rows 1-3, columns 1-3.
        assert idx[0, 1, 1] == (1 * 40 + 1 if pick == "first" else 3 * 40 + 3)
