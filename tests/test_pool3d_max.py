"""max_pool3d, its backward and MaxPool3d against PyTorch 2.13 (bit for bit).

Torch parity runs where torch is installed; the two backends are compared
with each other everywhere. Every torch tensor is made from the very array
cpool is given (``torch.from_numpy``), so both see the same strides and
torch picks its kernel (planes or channels_last_3d) from them, as cpool does.
PyTorch reports a position outside the window (contiguous memory) or of
another depth (channels_last_3d) for a window with no input element at all;
cpool reports -1 there, as its max_pool2d does, and the tests check that.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import COMPILED, adversarial_values, assert_same_bits

import cpool
from cpool.functional import bind_max3d

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed (backend agreement still runs)")
FLOATS = [np.float16, np.float32, np.float64]
INTS = [np.uint8, np.int8, np.int16, np.int32, np.int64]


@pytest.fixture(params=["compiled", "numpy"])
def pool3d(request):
    """``(max_pool3d, max_pool3d_backward, MaxPool3d's backend name)`` of one backend."""
    if request.param == "numpy":
        return cpool.slow.max_pool3d, cpool.slow.max_pool3d_backward, "numpy"
    request.getfixturevalue("compiled")  # fails (or skips with --no-extension) without the extension
    return (*bind_max3d(COMPILED), "cython")


def _channels_last(x):
    """``x`` (N, C, D, H, W) with channels-last memory: torch's channels_last_3d."""
    return np.ascontiguousarray(np.moveaxis(x, 1, -1)).transpose(0, 4, 1, 2, 3)


def _random_config(rng):
    k = tuple(int(v) for v in rng.integers(1, 4, 3))
    s = tuple(int(v) for v in rng.integers(1, 4, 3))
    p = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
    d = tuple(int(v) for v in rng.integers(1, 3, 3))
    return k, s, p, d, bool(rng.integers(2))


def _torch_forward(x, args):
    try:
        o, i = F.max_pool3d(torch.from_numpy(x), *args, return_indices=True)
    except RuntimeError:
        return None
    return o.numpy(), i.numpy()


def _check_against(o, i, ref_o, ref_i):
    assert_same_bits(o, ref_o)
    empty = i == -1  # no input element in the window: torch's index lies elsewhere
    if empty.any():
        assert (o[empty] == (-np.inf if o.dtype.kind == "f" else np.iinfo(o.dtype).min)).all()
    np.testing.assert_array_equal(i[~empty], ref_i[~empty])


@needs_torch
@pytest.mark.parametrize("dtype", FLOATS + INTS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "unbatched"])
def test_forward_matches_torch(pool3d, dtype, layout):
    fwd = pool3d[0]
    rng = np.random.default_rng([7, FLOATS.index(dtype) if dtype in FLOATS else 3 + INTS.index(dtype)])
    checked = 0
    for _ in range(6):
        args = _random_config(rng)
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 5))) + tuple(int(v) for v in rng.integers(2, 8, 3))
        x = adversarial_values(rng, dtype, shape)
        if layout == "channels_last":
            x = _channels_last(x)
        elif layout == "unbatched":
            x = x[0]
        ref = _torch_forward(x, args)
        if ref is None:
            with pytest.raises(ValueError):
                fwd(x, *args, return_indices=True)
            continue
        o, i = fwd(x, *args, return_indices=True)
        _check_against(o, i, *ref)
        assert_same_bits(fwd(x, *args), o)
        if layout == "channels_last":  # results in the input's memory layout
            assert o.transpose(0, 2, 3, 4, 1).flags.c_contiguous and i.transpose(0, 2, 3, 4, 1).flags.c_contiguous
        checked += 1
    assert checked


@needs_torch
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_lowest_windows_report_torch_seed(pool3d, layout):
    # Windows of only -inf (or the integer minimum): no tap is taken, and the
    # index is torch's seed, which its channels_last_3d kernel computes
    # without the depth.
    fwd = pool3d[0]
    for dtype in (np.float32, np.uint8, np.int16):
        lowest = -np.inf if dtype == np.float32 else np.iinfo(dtype).min
        x = np.full((2, 3, 5, 4, 4), lowest, dtype)
        x[0, 1, 3, 2, 1] = 1
        if layout == "channels_last":
            x = _channels_last(x)
        args = ((2, 2, 2), 1, (1, 1, 0))
        o, i = fwd(x, *args, return_indices=True)
        _check_against(o, i, *_torch_forward(x, args))


@needs_torch
def test_ties_nan_payloads_and_signed_zeros(pool3d):
    fwd = pool3d[0]
    nan1 = np.array(np.nan, np.float32)
    nan1.view(np.uint32)[...] |= 5
    for layout in ("contiguous", "channels_last"):
        x = np.zeros((1, 2, 4, 4, 4), np.float32)
        x[0, 0, 0, 0, 1] = -0.0  # a -0.0 after a 0.0: the first wins
        x[0, 0, 1, 1, 0] = 0.0
        x[0, 1, 0, 0, 0] = np.nan
        x[0, 1, 1, 1, 1] = nan1  # two NaNs in one window: the last in (d, h, w) order wins
        x[0, 1, 0, 1, 0] = -np.inf
        x[0, 1, 2, 2, 2] = np.inf
        x[0, 1, 2, 3, 3] = np.inf
        xs = _channels_last(x) if layout == "channels_last" else x
        args = (2, 2)
        o, i = fwd(xs, *args, return_indices=True)
        _check_against(o, i, *_torch_forward(xs, args))
        assert o.view(np.uint32)[0, 1, 0, 0, 0] == nan1.view(np.uint32)
        assert i[0, 1, 0, 0, 0] == 21 and i[0, 1, 1, 1, 1] == (2 * 4 + 2) * 4 + 2


def test_backends_agree(pool3d):
    fwd, bwd, _ = pool3d
    rng = np.random.default_rng(3)
    for _ in range(10):
        args = _random_config(rng)
        x = adversarial_values(rng, np.float32, (2, 3, 7, 6, 5))
        try:
            ref = cpool.slow.max_pool3d(x, *args, return_indices=True)
        except ValueError:
            continue
        o, i = fwd(x, *args, return_indices=True)
        assert_same_bits(o, ref[0])
        assert_same_bits(i, ref[1])
        g = rng.standard_normal(o.shape).astype(np.float32)
        assert_same_bits(bwd(g, i, x.shape), cpool.slow.max_pool3d_backward(g, i, x.shape))


def test_data_format_ndhwc(pool3d):
    fwd, bwd, _ = pool3d
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 5, 7)).astype(np.float32)
    ref_o, ref_i = cpool.slow.max_pool3d(x, 3, 2, 1, return_indices=True)
    ndhwc = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    o, i = fwd(ndhwc, 3, 2, 1, return_indices=True, data_format="NDHWC")
    assert_same_bits(np.moveaxis(o, -1, 1), ref_o)
    assert_same_bits(np.moveaxis(i, -1, 1), ref_i)
    assert o.flags.c_contiguous
    # planes memory given as NDHWC: computed without a copy, returned in that memory
    o2 = fwd(x.transpose(0, 2, 3, 4, 1), 3, 2, 1, data_format="NDHWC")
    assert_same_bits(np.moveaxis(o2, -1, 1), ref_o)
    g = rng.standard_normal(ref_o.shape).astype(np.float32)
    ref_g = cpool.slow.max_pool3d_backward(g, ref_i, x.shape)
    got = bwd(np.ascontiguousarray(np.moveaxis(g, 1, -1)), i, ndhwc.shape, data_format="NDHWC")
    assert_same_bits(np.moveaxis(got, -1, 1), ref_g)


@needs_torch
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "unbatched"])
def test_backward_matches_torch(pool3d, dtype, layout):
    fwd, bwd, _ = pool3d
    rng = np.random.default_rng([11, FLOATS.index(dtype)])
    # overlapping windows (stride 1 and 2 under kernel 3) and a plain one
    for args in (((3, 3, 3), 1, 1), ((3, 2, 3), (2, 1, 2), (1, 0, 1), 1, True), (2, 2)):
        x = rng.standard_normal((2, 3, 6, 5, 7)).astype(dtype)
        x[rng.random(x.shape) < 0.3] = 0.5  # ties: gradients pile up on the first
        if layout == "channels_last":
            x = _channels_last(x)
        elif layout == "unbatched":
            x = x[0]
        o, i = fwd(x, *args, return_indices=True)
        g = (rng.standard_normal(o.shape) * 100).astype(dtype)
        if layout == "channels_last":
            g = _channels_last(g)
        t = torch.from_numpy(x)
        _, ti = F.max_pool3d(t, *args, return_indices=True)
        full = tuple(args) + (0, 1, False)[len(args) - 2:]
        ref = torch.ops.aten.max_pool3d_with_indices_backward(torch.from_numpy(g), t, *full, ti).numpy()
        got = bwd(g, i, x.shape)
        assert_same_bits(got, ref)
        if layout == "channels_last":
            assert got.transpose(0, 2, 3, 4, 1).flags.c_contiguous


@needs_torch
def test_errors_match_torch(pool3d):
    fwd = pool3d[0]
    x = np.zeros((1, 2, 4, 4, 4), np.float32)
    for args in ((0,), (2, 0), (2, 1, 2), (5,), ((2, 2),), (2, 1, 0, 0)):
        with pytest.raises(RuntimeError):
            F.max_pool3d(torch.from_numpy(x), *args)
        with pytest.raises((ValueError, TypeError)):
            fwd(x, *args)
    for shape in ((1, 0, 4, 4, 4), (1, 1, 4, 0, 4), (4, 4, 4), (1, 1, 1, 4, 4, 4)):
        with pytest.raises(RuntimeError):
            F.max_pool3d(torch.zeros(shape), 1)
        with pytest.raises(ValueError):
            fwd(np.zeros(shape, np.float32), 1)
    # channels_last_3d integer volumes beyond the kernel's index lanes: torch refuses them
    for dtype, size in ((np.uint8, 128), (np.int8, 128), (np.int16, 2**15)):
        for n in (1, 0):
            x = _channels_last(np.zeros((n, 2, 1, 1, size), dtype))
            try:
                F.max_pool3d(torch.from_numpy(x), 1)
                torch_ok = True
            except RuntimeError:
                torch_ok = False
            if torch_ok:
                fwd(x, 1)
            else:
                with pytest.raises(ValueError, match=r"channels-last memory of dtype"):
                    fwd(x, 1)
            assert torch_ok == (n == 0)
            fwd(x[:, :, :, :, :size - 1], 1)  # (a copy in either layout: below the limit anyway)
        fwd(np.zeros((1, 2, 1, 1, size), dtype), 1)  # planes memory: no limit


def test_empty_batch(pool3d):
    fwd, bwd, _ = pool3d
    for x in (np.zeros((0, 3, 4, 5, 6), np.float32), _channels_last(np.zeros((0, 3, 4, 5, 6), np.float32))):
        o, i = fwd(x, 2, return_indices=True)
        assert o.shape == i.shape == (0, 3, 2, 2, 3)
        assert bwd(o, i, x.shape).shape == x.shape


def test_out_arrays(pool3d):
    fwd, bwd, _ = pool3d
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 6, 6, 6)).astype(np.float32)
    ref_o, ref_i = fwd(x, 3, 2, 1, return_indices=True)
    for make in (np.empty, lambda shape, dtype: np.empty(shape[::-1], dtype).T):  # in layout, and strided
        vals, idx = make(ref_o.shape, np.float32), make(ref_o.shape, np.int64)
        res = fwd(x, 3, 2, 1, return_indices=True, out=(vals, idx))
        assert res[0] is vals and res[1] is idx
        assert_same_bits(vals, ref_o)
        assert_same_bits(idx, ref_i)
        g = rng.standard_normal(ref_o.shape).astype(np.float32)
        gi = make(x.shape, np.float32)
        assert bwd(g, ref_i, x.shape, out=gi) is gi
        assert_same_bits(gi, cpool.slow.max_pool3d_backward(g, ref_i, x.shape))
    # errors leave out untouched
    vals = np.full(ref_o.shape, 7.0, np.float32)
    with pytest.raises(ValueError):
        fwd(x, 3, 2, 2, out=vals)
    with pytest.raises(TypeError):
        fwd(x, 3, 2, 1, return_indices=True, out=vals)
    with pytest.raises(ValueError):
        fwd(x, 3, 2, 1, out=np.zeros((2, 3, 3, 3, 4), np.float32))
    with pytest.raises(TypeError):
        fwd(x, 3, 2, 1, out=np.zeros(ref_o.shape, np.float64))
    assert (vals == 7).all()
    bad = ref_i.copy()
    bad[1, 2, 2, 2, 2] = x[0, 0].size
    gi = np.full(x.shape, 7.0, np.float32)
    with pytest.raises(ValueError, match=f"indices contains {x[0, 0].size}"):
        bwd(np.ones_like(ref_o), bad, x.shape, out=gi)
    assert (gi == 7).all()


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_hostile_indices(pool3d, layout):
    fwd, bwd, _ = pool3d
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 5, 6, 7)).astype(np.float32)
    if layout == "channels_last":
        x = _channels_last(x)
    o, i = fwd(x, 2, 1, return_indices=True)
    g = np.ones_like(o)
    V = 5 * 6 * 7
    for value in (V, -2, 2**40, -2**63, 2**63 - 1):
        for where in ((0, 0, 0, 0, 0), (1, 2, 3, 4, 5)):
            bad = i.copy()
            bad[where] = value
            with pytest.raises(ValueError, match=rf"indices contains {value}, outside the volume of 5x6x7={V}"):
                bwd(g, bad, x.shape)
    # -1 (an empty window) is skipped
    ok = i.copy()
    ok[0, 0, 0, 0, 0] = -1
    ref = bwd(g, i, x.shape)
    got = bwd(g, ok, x.shape)
    assert got[0, 0].sum() == ref[0, 0].sum() - 1


def test_dilated_empty_windows(pool3d):
    fwd, bwd, _ = pool3d
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 1, 4, 4)
    o, i = fwd(x, 2, 1, (1, 0, 0), (2, 1, 1), return_indices=True)
    assert (o == -np.inf).all() and (i == -1).all()
    assert (bwd(np.ones_like(o), i, x.shape) == 0).all()


def test_float16_backward_rounds_every_add(pool3d):
    # Every window ties, so the gradients pile up on few elements; each add
    # rounds to float16, in output order (a float32 sum rounded once differs).
    fwd, bwd, _ = pool3d
    x = np.ones((1, 2, 5, 5, 5), np.float16)
    o, i = fwd(x, 3, 1, return_indices=True)
    g = np.full(o.shape, 0.1, np.float16)
    acc = np.zeros(x.shape[2:], np.float16)
    for t, v in zip(i[0, 0].ravel(), g[0, 0].ravel()):
        acc.flat[t] = np.float16(acc.flat[t] + v)
    got = bwd(g, i, x.shape)
    assert_same_bits(got[0, 0], acc)


def test_module(pool3d):
    fwd, bwd, name = pool3d
    rng = np.random.default_rng(9)
    layer = cpool.MaxPool3d(3, 2, 1, return_indices=True, backend=name)
    assert repr(layer) == "MaxPool3d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)"
    with pytest.raises(cpool.BackwardBeforeForwardError):
        layer.backward(np.zeros((1, 1, 4, 4, 4), np.float32), np.zeros((1, 1, 2, 2, 2), np.float32))
    for x in (rng.standard_normal((2, 3, 7, 6, 5)).astype(np.float32),
              _channels_last(rng.standard_normal((2, 3, 7, 6, 5)).astype(np.float32))):
        o, i = layer.forward(x)
        ref_o, ref_i = fwd(x, 3, 2, 1, return_indices=True)
        assert_same_bits(o, ref_o)
        assert_same_bits(i, ref_i)
        g = rng.standard_normal(o.shape).astype(np.float32)
        assert_same_bits(layer.backward(x, g), bwd(g, ref_i, x.shape))
        with pytest.raises(ValueError, match="differs from the shape"):
            layer.backward(x[:1], g[:1])
    # buffers are reused when nothing else refers to them
    plain = cpool.MaxPool3d(2, backend=name)
    x = rng.standard_normal((1, 2, 4, 4, 4)).astype(np.float32)
    plain.forward(x)
    first = plain.output.__array_interface__["data"][0]
    plain.forward(x + 1)
    assert plain.output.__array_interface__["data"][0] == first
    kept = plain.forward(x)
    again = plain.forward(x + 1)
    assert again is not kept and kept.max() < again.max()
    # routed through changed indices; a bad one raises and leaves gradInput as it was
    g = np.ones((1, 2, 2, 2, 2), np.float32)
    before = plain.backward(x, g).copy()
    plain.indices = np.zeros_like(plain.indices)
    assert plain.backward(x, g)[0, 0, 0, 0, 0] == 8
    prev = plain.gradInput
    plain.indices[0, 0, 0, 0, 0] = 64
    with pytest.raises(ValueError, match="indices contains 64"):
        plain.backward(x, g)
    assert plain.gradInput is prev
    assert before.sum() == 16
    ndhwc = cpool.MaxPool3d(2, data_format="NDHWC", backend=name)
    assert repr(ndhwc).endswith("data_format='NDHWC')")
    assert ndhwc.forward(np.ascontiguousarray(np.moveaxis(x, 1, -1))).shape == (1, 2, 2, 2, 2)
    with pytest.raises(ValueError, match="data_format"):
        cpool.MaxPool3d(2, data_format="NCHW")


def test_threads_give_the_same_bits():
    rng = np.random.default_rng(10)
    x = adversarial_values(rng, np.float32, (2, 8, 9, 10, 11))
    before = cpool.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            cpool.set_num_threads(n)
            o, i = cpool.max_pool3d(x, 3, 2, 1, return_indices=True)
            xc = _channels_last(x)
            oc, ic = cpool.max_pool3d(xc, 3, 2, 1, return_indices=True)
            results.append((o, i, oc, ic, cpool.max_pool3d_backward(np.ones_like(o), i, x.shape)))
    finally:
        cpool.set_num_threads(before)
    for r in results[1:]:
        for a, b in zip(r, results[0]):
            assert_same_bits(a, b)


def test_docstring_examples_run():
    x = np.arange(64, dtype=np.float32).reshape(1, 1, 4, 4, 4)
    out, idx = cpool.max_pool3d(x, 2, return_indices=True)
    assert out[0, 0, 1, 1, 1] == 63 and idx[0, 0, 1, 1, 1] == 63
    assert cpool.max_pool3d.__module__ == "cpool.functional" and cpool.slow.max_pool3d.__module__ == "cpool.slow"


def test_byte_swapped_strided_and_read_only_input(pool3d):
    fwd = pool3d[0]
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 3, 6, 7, 8)).astype(np.float32)
    ref = cpool.slow.max_pool3d(x, 3, 2, 1, return_indices=True)
    ro = x.copy()
    ro.flags.writeable = False
    for variant in (x.astype(">f4"), np.pad(x, ((0, 0),) * 4 + ((0, 3),))[..., :8], x[:, :, ::-1][:, :, ::-1], ro):
        o, i = fwd(variant, 3, 2, 1, return_indices=True)
        assert_same_bits(o, ref[0])
        assert_same_bits(i, ref[1])
