"""Adaptive pooling: ``adaptive_avg_pool2d`` / ``adaptive_max_pool2d``, their
backwards, and ``AdaptiveAvgPool2d`` / ``AdaptiveMaxPool2d``.

* Torch parity bit for bit on random configurations (output sizes that do
  not divide the input, larger than it, None entries, 0, the 1x1 global
  average), both data formats, channels-last memory, 3-D input, batch 0,
  float16/32/64, -0.0, inf, NaN and ties; forward, backward and autograd.
* A scalar loop oracle (torch's loops transcribed) for runs without torch,
  and the golden arrays of ``tests/data/golden_adaptive_torch.npz``.
* The gradient property, argument errors (nothing written to ``out``),
  ``out=``, the modules, and threads.
* Both backends through the backend fixture.
"""

import os

import numpy as np
import pytest
from helpers import COMPILED, assert_same_bits

import cpool
from cpool.functional import bind_adaptive

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

DTYPES = [np.float16, np.float32, np.float64]
GOLDEN = os.path.join(os.path.dirname(__file__), "data", "golden_adaptive_torch.npz")


class Adaptive:
    def __init__(self, fns):
        self.avg, self.avg_backward, self.max, self.max_backward = fns


@pytest.fixture(params=["compiled", "numpy"])
def ad(request):
    """The four adaptive functions of one backend."""
    if request.param == "numpy":
        return Adaptive((cpool.slow.adaptive_avg_pool2d, cpool.slow.adaptive_avg_pool2d_backward,
                         cpool.slow.adaptive_max_pool2d, cpool.slow.adaptive_max_pool2d_backward))
    request.getfixturevalue("compiled")
    return Adaptive(bind_adaptive(COMPILED))


# ------------------------------------------------------------------ oracles
def window(o, out_len, size):
    return (o * size) // out_len, -(-((o + 1) * size) // out_len)


def loop_adaptive_avg(x, OH, OW):
    """torch's planes loops, one output at a time ((N, C, H, W) ``x``, output not 1x1)."""
    N, C, H, W = x.shape
    acc = np.float32 if x.dtype == np.float16 else x.dtype.type
    out = np.zeros((N, C, OH, OW), x.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                h0, h1 = window(oh, OH, H)
                for ow in range(OW):
                    w0, w1 = window(ow, OW, W)
                    total = acc(0)
                    for ih in range(h0, h1):
                        for iw in range(w0, w1):
                            total = acc(total + acc(x[n, c, ih, iw]))
                    out[n, c, oh, ow] = x.dtype.type(acc(acc(total / acc(h1 - h0)) / acc(w1 - w0)))
    return out


def loop_adaptive_max(x, OH, OW):
    N, C, H, W = x.shape
    out = np.zeros((N, C, OH, OW), x.dtype)
    idx = np.zeros((N, C, OH, OW), np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                h0, h1 = window(oh, OH, H)
                for ow in range(OW):
                    w0, w1 = window(ow, OW, W)
                    best, at = x.dtype.type(-np.inf), h0 * W + w0
                    for ih in range(h0, h1):
                        for iw in range(w0, w1):
                            v = x[n, c, ih, iw]
                            if v > best or np.isnan(v):
                                best, at = v, ih * W + iw
                    out[n, c, oh, ow], idx[n, c, oh, ow] = best, at
    return out, idx


def loop_adaptive_avg_backward(go, shape):
    N, C, H, W = shape
    OH, OW = go.shape[-2:]
    gi = np.zeros(shape, go.dtype)
    t = go.dtype.type
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                h0, h1 = window(oh, OH, H)
                for ow in range(OW):
                    w0, w1 = window(ow, OW, W)
                    share = t(t(go[n, c, oh, ow] / t(h1 - h0)) / t(w1 - w0))
                    for ih in range(h0, h1):
                        for iw in range(w0, w1):
                            gi[n, c, ih, iw] = t(gi[n, c, ih, iw] + share)
    return gi


def window_share(shape, OH, OW):
    """Gradient of the sum of the average's outputs (float64): 1/window size over the windows of each element."""
    H, W = shape[-2:]
    g = np.zeros((H, W))
    for oh in range(OH):
        h0, h1 = window(oh, OH, H)
        for ow in range(OW):
            w0, w1 = window(ow, OW, W)
            g[h0:h1, w0:w1] += 1 / ((h1 - h0) * (w1 - w0))
    return np.broadcast_to(g, shape)


# ------------------------------------------------------------------ cases
def random_input(rng, dtype, shape, specials=True):
    scale = 10.0 ** rng.integers(-3, 4 if dtype == np.float16 else 8, shape)
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    if x.size and specials:
        x.flat[rng.integers(0, x.size, max(1, x.size // 16))] = -0.0
        x.flat[rng.integers(0, x.size, max(1, x.size // 20))] = x.flat[0]  # ties
    return x


def random_output_size(rng, H, W):
    pick = int(rng.integers(8))
    if pick == 0:
        return 1
    if pick == 1:
        return (int(rng.integers(1, H + 4)), None)
    if pick == 2:
        return (None, int(rng.integers(1, W + 4)))
    if pick == 3:
        return int(rng.integers(1, 2 * max(H, W) + 2))
    return (int(rng.integers(1, H + 5)), int(rng.integers(1, W + 5)))


def out_hw(size, H, W):
    size = size if isinstance(size, tuple) else (size, size)
    return (H if size[0] is None else size[0]), (W if size[1] is None else size[1])


LAYOUTS = ["nchw", "channels_last", "nhwc", "3d", "3d_channels_last"]


def layout_case(rng, layout, dtype):
    N = int(rng.integers(0, 3)) if rng.integers(6) == 0 and not layout.startswith("3d") else int(rng.integers(1, 3))
    C = int(rng.integers(2, 6)) if rng.integers(3) else int(rng.integers(6, 40))
    H, W = (int(v) for v in rng.integers(1, 15, 2))
    if H * W < 2:
        W = 2  # (H, W) = (1, 1): torch's layout of such a tensor is ambiguous
    x = random_input(rng, dtype, (N, C, H, W))
    return x[0] if layout.startswith("3d") else x


def as_layout(x, layout):
    """(cpool's input, its data_format, torch's input tensor, how to read torch's result back)."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    if layout == "channels_last":
        return (np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1), "NCHW",
                t.contiguous(memory_format=torch.channels_last), lambda r: r.numpy())
    if layout == "nhwc":
        return (np.ascontiguousarray(np.moveaxis(x, 1, -1)), "NHWC",
                t.contiguous(memory_format=torch.channels_last), lambda r: np.moveaxis(r.numpy(), 1, -1))
    if layout == "3d_channels_last":
        a = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 0, -1)), -1, 0)
        return a, "NCHW", torch.from_numpy(a), lambda r: r.numpy()
    return x, "NCHW", t, lambda r: r.numpy()


def grad_layout(go, layout):
    """(cpool's grad_output, torch's) in the layout of the case."""
    go_t = torch.from_numpy(np.ascontiguousarray(go if layout != "nhwc" else np.moveaxis(go, -1, 1)))
    if layout in ("channels_last", "nhwc"):
        go_t = go_t.contiguous(memory_format=torch.channels_last)
        if layout == "channels_last":
            go = np.moveaxis(np.ascontiguousarray(np.moveaxis(go, 1, -1)), -1, 1)
    return go, go_t


def torch_avg_backward(go_t, t, size):
    # torch's gradient of adaptive_avg_pool2d: its kernel, or for 1x1 the mean's (autograd)
    if tuple(go_t.shape[-2:]) == (1, 1):
        t = t.detach().clone().requires_grad_()
        F.adaptive_avg_pool2d(t, 1).backward(go_t)
        return t.grad
    return torch.ops.aten._adaptive_avg_pool2d_backward(go_t, t)


def canonical_nan(a):
    a = np.array(a, copy=True)
    a[np.isnan(a)] = np.nan
    return a


# ------------------------------------------------------------ torch parity
@pytest.fixture
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@needs_torch
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_avg_forward_and_backward_match_torch(ad, layout, dtype, one_torch_thread):
    rng = np.random.default_rng(hash(("avg", layout, np.dtype(dtype).name)) % 2**32)
    for _ in range(30):
        x = layout_case(rng, layout, dtype)
        size = random_output_size(rng, *x.shape[-2:])
        a, data_format, t, back = as_layout(x, layout)
        expected = back(F.adaptive_avg_pool2d(t, size))
        got = ad.avg(a, size, data_format=data_format)
        assert_same_bits(np.ascontiguousarray(got), np.ascontiguousarray(expected), (layout, x.shape, size))
        if layout in ("channels_last", "nhwc") and got.size:
            assert np.moveaxis(got, 1 if layout == "channels_last" else -1, -1).flags.c_contiguous
        go = random_input(rng, dtype, np.shape(expected), specials=False)
        go, go_t = grad_layout(go, layout)
        grad_expected = back(torch_avg_backward(go_t, t, size))
        grad = ad.avg_backward(go, a.shape, data_format=data_format)
        assert_same_bits(np.ascontiguousarray(grad), np.ascontiguousarray(grad_expected),
                         ("backward", layout, x.shape, size))


@needs_torch
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_max_forward_and_backward_match_torch(ad, layout, dtype):
    rng = np.random.default_rng(hash(("max", layout, np.dtype(dtype).name)) % 2**32)
    for trial in range(30):
        x = layout_case(rng, layout, dtype)
        if x.size and trial % 3 == 0:
            x.flat[rng.integers(0, x.size, 4)] = np.nan
            x.flat[rng.integers(0, x.size, 4)] = -np.inf
        size = random_output_size(rng, *x.shape[-2:])
        a, data_format, t, back = as_layout(x, layout)
        ev, ei = F.adaptive_max_pool2d(t, size, return_indices=True)
        got, idx = ad.max(a, size, True, data_format=data_format)
        assert_same_bits(np.ascontiguousarray(got), np.ascontiguousarray(back(ev)), (layout, x.shape, size))
        assert_same_bits(np.ascontiguousarray(idx), np.ascontiguousarray(back(ei)), (layout, x.shape, size))
        assert_same_bits(ad.max(a, size, data_format=data_format), got)
        go = random_input(rng, dtype, got.shape, specials=False)
        go, go_t = grad_layout(go, layout)
        if layout in ("channels_last", "nhwc"):
            ei = ei.contiguous(memory_format=torch.channels_last)
        grad_expected = back(torch.ops.aten.adaptive_max_pool2d_backward(go_t, t, ei))
        grad = ad.max_backward(go, idx, a.shape, data_format=data_format)
        assert_same_bits(np.ascontiguousarray(grad), np.ascontiguousarray(grad_expected),
                         ("backward", layout, x.shape, size))


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(2, 5, 7, 7), (1, 64, 7, 7), (2, 3, 56, 56), (3, 40, 13, 9), (2, 7, 3, 2),
                                   (1, 33, 1, 5), (5, 9, 9), (2, 130, 4, 4), (2, 3, 1, 31), (1, 2, 160, 170),
                                   (1, 41, 90, 91), (2, 6, 40, 41)])
def test_global_average_matches_torch(ad, dtype, shape, one_torch_thread):
    # output 1x1: torch computes input.mean((-1, -2)) (its sum's cascade order), in both layouts
    rng = np.random.default_rng(sum(shape))
    x = random_input(rng, dtype, shape)
    layouts = ["nchw", "3d_channels_last"] if len(shape) == 3 else ["nchw", "channels_last", "nhwc"]
    for layout in layouts:
        a, data_format, t, back = as_layout(x, layout)
        expected = back(F.adaptive_avg_pool2d(t, 1))
        assert_same_bits(np.ascontiguousarray(ad.avg(a, 1, data_format=data_format)),
                         np.ascontiguousarray(expected), layout)
        assert_same_bits(np.ascontiguousarray(ad.avg(a, (1, 1), data_format=data_format)),
                         np.ascontiguousarray(expected), layout)


@needs_torch
def test_special_values_match_torch(ad, one_torch_thread):
    # NaN payloads included: which NaN a sum of two keeps is torch's at one
    # thread (its channels-last kernel keeps another with more threads)
    rng = np.random.default_rng(3)
    for dtype in DTYPES:
        x = random_input(rng, dtype, (2, 23, 9, 7))
        x.flat[rng.integers(0, x.size, 12)] = np.inf
        x.flat[rng.integers(0, x.size, 12)] = -np.inf
        x.flat[rng.integers(0, x.size, 30)] = np.nan
        nan = np.isnan(x)
        word = x.view(f"u{x.itemsize}")
        word[nan] ^= rng.integers(1, 64, nan.sum()).astype(word.dtype)  # distinct payloads
        for size in ((4, 3), 1, (13, 2), (None, 5)):
            for layout in ("nchw", "channels_last", "nhwc"):
                a, data_format, t, back = as_layout(x, layout)
                got = np.ascontiguousarray(ad.avg(a, size, data_format=data_format))
                expected = np.ascontiguousarray(back(F.adaptive_avg_pool2d(t, size)))
                if size == 1:
                    # which payload torch's 1x1 mean (its sum kernel) keeps of several NaNs: not reproduced
                    got, expected = canonical_nan(got), canonical_nan(expected)
                assert_same_bits(got, expected, (dtype, layout, size))
                v, i = ad.max(a, size, True, data_format=data_format)
                ev, ei = F.adaptive_max_pool2d(t, size, True)
                assert_same_bits(np.ascontiguousarray(v), np.ascontiguousarray(back(ev)), (dtype, layout, size))
                assert_same_bits(np.ascontiguousarray(i), np.ascontiguousarray(back(ei)), (dtype, layout, size))


def nan_with_payload(dtype, payload):
    word = np.dtype(f"u{np.dtype(dtype).itemsize}")
    nm = np.finfo(dtype).nmant
    bits = ((1 << (8 * word.itemsize - 1)) - 1) ^ ((1 << nm) - 1) | (1 << (nm - 1)) | payload
    return np.array(bits, word).view(dtype)


ISAS = () if COMPILED is None else COMPILED.AVAILABLE_ISAS


@needs_torch
@pytest.mark.skipif(COMPILED is None, reason="compiled extension not built")
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_max_kernels_match_torch(isa, dtype, threads):
    # float32 planes go in slabs of up to 32 planes through a channels-last
    # buffer, a band of output rows at a time (adaptive_max_avx2.h: fewer
    # planes a slab, and several bands a plane, for large planes), or through
    # max pooling's 2x2 kernels where the plane is halved; channels-last
    # memory folds a window's channels together. Plane counts around the
    # slab and vector sizes, bands that overlap (sizes the output does not
    # divide), outputs larger than the input, planes of -inf only and of one
    # NaN only (the first tap's index, the last NaN's), NaN payloads, ties;
    # with indices and values only, both memory layouts.
    rng = np.random.default_rng(21)
    cases = ((1, 7, 7, 7, 7), (3, 14, 14, 7, 7), (33, 14, 14, 7, 7), (31, 28, 28, 7, 7), (65, 13, 17, 5, 4),
             (9, 5, 6, 9, 11), (40, 56, 56, 7, 7), (3, 200, 40, 7, 5), (20, 256, 128, 4, 3), (34, 30, 31, 1, 1),
             (2, 16, 9, 8, 3), (17, 3, 40, 2, 5))
    specials = [nan_with_payload(dtype, 1), nan_with_payload(dtype, 2), -np.inf, np.inf, -0.0]
    with COMPILED.use_isa(isa):
        for P, H, W, OH, OW in cases:
            x = rng.standard_normal((1, P, H, W)).astype(dtype)
            x[..., ::3, ::2] = np.round(x[..., ::3, ::2])  # ties
            flat = x.reshape(-1)
            at = rng.integers(0, flat.size, max(2, flat.size // 50))
            flat[at] = rng.choice(specials, at.size)
            x[0, P // 2] = -np.inf
            if P > 2:
                x[0, P // 3] = nan_with_payload(dtype, 5)
            for layout in ("nchw", "channels_last"):
                a, _, t, back = as_layout(x, layout)
                ev, ei = F.adaptive_max_pool2d(t, (OH, OW), return_indices=True)
                got, idx = cpool.adaptive_max_pool2d(a, (OH, OW), return_indices=True)
                case = (isa, layout, (P, H, W), (OH, OW))
                assert_same_bits(np.ascontiguousarray(got), np.ascontiguousarray(back(ev)), case)
                assert_same_bits(np.ascontiguousarray(idx), np.ascontiguousarray(back(ei)), case)
                assert_same_bits(cpool.adaptive_max_pool2d(a, (OH, OW)), got, case)


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("C", [1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 17, 23, 31])
def test_which_nan_payload_wins_matches_torch(ad, dtype, C, one_torch_thread):
    # Two NaN payloads in one window (forward) or two NaN shares reaching one
    # element (backward), for every channel group of torch's channels-last
    # kernel (vector lanes, the tail's compiled SSE part, its scalar rest).
    a, b = nan_with_payload(dtype, 1), nan_with_payload(dtype, 3)
    x = np.zeros((1, C, 2, 3), dtype)
    x[..., 0, 0], x[..., 1, 1] = a, b
    go = np.zeros((1, C, 1, 2), dtype)
    go[..., 0, 0], go[..., 0, 1] = a, b
    for layout in ("nchw", "channels_last", "nhwc"):
        xa, data_format, t, back = as_layout(x, layout)
        assert_same_bits(np.ascontiguousarray(ad.avg(xa, (1, 2), data_format=data_format)),
                         np.ascontiguousarray(back(F.adaptive_avg_pool2d(t, (1, 2)))), layout)
        ga, gt = grad_layout(go if layout != "nhwc" else np.moveaxis(go, 1, -1), layout)
        grad = ad.avg_backward(ga, xa.shape, data_format=data_format)
        assert_same_bits(np.ascontiguousarray(grad),
                         np.ascontiguousarray(back(torch.ops.aten._adaptive_avg_pool2d_backward(gt, t))),
                         ("backward", layout))


@needs_torch
def test_backward_matches_autograd(ad):
    rng = np.random.default_rng(7)
    for _ in range(20):
        x = random_input(rng, np.float32, (2, 3, 9, 8))
        size = random_output_size(rng, 9, 8)
        t = torch.from_numpy(x).requires_grad_()
        out = F.adaptive_avg_pool2d(t, size)
        go = rng.standard_normal(out.shape).astype(np.float32)
        out.backward(torch.from_numpy(go))
        assert_same_bits(ad.avg_backward(go, x.shape), t.grad.numpy(), size)
        t2 = torch.from_numpy(x).requires_grad_()
        mout = F.adaptive_max_pool2d(t2, size)
        mout.backward(torch.from_numpy(go))
        _, idx = ad.max(x, size, True)
        assert_same_bits(ad.max_backward(go, idx, x.shape), t2.grad.numpy(), size)


@needs_torch
def test_zero_output_size_and_empty_batch_match_torch(ad):
    x = np.ones((2, 3, 5, 4), np.float32)
    for size in (0, (0, 3), (2, 0)):
        e = F.adaptive_avg_pool2d(torch.from_numpy(x), size).numpy()
        assert ad.avg(x, size).shape == e.shape
        assert ad.max(x, size).shape == e.shape
    empty = np.ones((0, 3, 5, 4), np.float32)
    assert ad.avg(empty, 2).shape == (0, 3, 2, 2)
    assert ad.avg_backward(np.ones((0, 3, 2, 2), np.float32), empty.shape).shape == empty.shape
    v, i = ad.max(empty, 2, True)
    assert v.shape == i.shape == (0, 3, 2, 2)
    # a zero channel dimension: accepted by the average, rejected by the max (as torch)
    assert ad.avg(np.ones((2, 0, 5, 4), np.float32), 2).shape == (2, 0, 2, 2)
    with pytest.raises(ValueError, match="input"):
        ad.max(np.ones((2, 0, 5, 4), np.float32), 2)
    # torch's max checks the dimensions after the first: a 3-D input's channel may be 0
    chw = np.ones((0, 1, 5), np.float32)
    e = F.adaptive_max_pool2d(torch.from_numpy(chw), 2, return_indices=True)
    v, i = ad.max(chw, 2, True)
    assert v.shape == i.shape == tuple(e[0].shape) == (0, 2, 2)


# ------------------------------------------------------------ without torch
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_forward_and_backward_match_loop_oracle(ad, dtype):
    rng = np.random.default_rng(11)
    for _ in range(25):
        H, W = (int(v) for v in rng.integers(1, 10, 2))
        OH, OW = (int(v) for v in rng.integers(1, 12, 2))
        if (OH, OW) == (1, 1):
            OW = 2
        x = random_input(rng, dtype, (1, 3, H, W))
        assert_same_bits(ad.avg(x, (OH, OW)), loop_adaptive_avg(x, OH, OW), (H, W, OH, OW))
        v, i = ad.max(x, (OH, OW), True)
        ev, ei = loop_adaptive_max(x, OH, OW)
        assert_same_bits(v, ev, (H, W, OH, OW))
        assert_same_bits(i, ei, (H, W, OH, OW))
        go = random_input(rng, dtype, (1, 3, OH, OW), specials=False)
        assert_same_bits(ad.avg_backward(go, x.shape), loop_adaptive_avg_backward(go, x.shape), (H, W, OH, OW))


def test_gradient_is_each_elements_share_of_its_windows(ad):
    rng = np.random.default_rng(5)
    for _ in range(30):
        shape = (2, 3) + tuple(int(v) for v in rng.integers(1, 12, 2))
        OH, OW = (int(v) for v in rng.integers(1, 14, 2))
        grad = ad.avg_backward(np.ones((2, 3, OH, OW)), shape)
        np.testing.assert_allclose(grad, window_share(shape, OH, OW), rtol=1e-12, atol=1e-15)
        # the max: each output's gradient lands on its argmax, once
        x = rng.standard_normal(shape)
        _, idx = ad.max(x, (OH, OW), True)
        g = ad.max_backward(np.ones((2, 3, OH, OW)), idx, shape)
        assert g.sum() == 2 * 3 * OH * OW


def test_golden_arrays(ad):
    # torch's results stored by tools/make_golden_adaptive.py, for runs without torch
    with np.load(GOLDEN) as data:
        names = sorted({k.rsplit("/", 1)[0] for k in data.files if "/" in k})
        assert len(names) >= 20
        for name in names:
            x = data[name + "/x"]
            size = tuple(None if v < 0 else int(v) for v in data[name + "/size"])
            data_format = str(data[name + "/format"])
            a = x
            if str(data[name + "/memory"]) == "channels_last":
                a = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
            assert_same_bits(np.ascontiguousarray(ad.avg(a, size, data_format=data_format)), data[name + "/avg"],
                             name)
            v, i = ad.max(a, size, True, data_format=data_format)
            assert_same_bits(np.ascontiguousarray(v), data[name + "/max"], name)
            assert_same_bits(np.ascontiguousarray(i), data[name + "/argmax"], name)
            go = data[name + "/go"]
            ga = go
            if str(data[name + "/memory"]) == "channels_last":
                ga = np.moveaxis(np.ascontiguousarray(np.moveaxis(go, 1, -1)), -1, 1)
            assert_same_bits(np.ascontiguousarray(ad.avg_backward(ga, a.shape, data_format=data_format)),
                             data[name + "/avg_grad"], name)
            assert_same_bits(np.ascontiguousarray(ad.max_backward(ga, i, a.shape, data_format=data_format)),
                             data[name + "/max_grad"], name)


def test_backends_agree(compiled):
    rng = np.random.default_rng(9)
    sets = [Adaptive(bind_adaptive(COMPILED)),
            Adaptive((cpool.slow.adaptive_avg_pool2d, cpool.slow.adaptive_avg_pool2d_backward,
                      cpool.slow.adaptive_max_pool2d, cpool.slow.adaptive_max_pool2d_backward)),
            Adaptive((cpool.adaptive_avg_pool2d, cpool.adaptive_avg_pool2d_backward,
                      cpool.adaptive_max_pool2d, cpool.adaptive_max_pool2d_backward))]
    for _ in range(30):
        dtype = DTYPES[int(rng.integers(3))]
        x = random_input(rng, dtype, (2, 11, 8, 9))
        size = random_output_size(rng, 8, 9)
        for data_format, a in (("NCHW", x), ("NHWC", np.ascontiguousarray(np.moveaxis(x, 1, -1)))):
            r = [s.avg(a, size, data_format=data_format) for s in sets]
            for other in r[1:]:
                assert_same_bits(other, r[0], size)
            go = random_input(rng, dtype, r[0].shape, specials=False)
            g = [s.avg_backward(go, a.shape, data_format=data_format) for s in sets]
            for other in g[1:]:
                assert_same_bits(other, g[0], size)
            m = [s.max(a, size, True, data_format=data_format) for s in sets]
            for v, i in m[1:]:
                assert_same_bits(v, m[0][0], size)
                assert_same_bits(i, m[0][1], size)


def test_threads_give_the_same_bits(ad):
    rng = np.random.default_rng(13)
    before = cpool.get_num_threads()
    try:
        for size in (1, (5, 3), (9, 14)):
            x = random_input(rng, np.float32, (4, 24, 30, 28))
            xl = np.ascontiguousarray(np.moveaxis(x, 1, -1))
            results = []
            for n in (1, 2):
                cpool.set_num_threads(n)
                out = ad.avg(x, size)
                go = np.ones_like(out)
                results.append((out, ad.avg(xl, size, data_format="NHWC"), ad.avg_backward(go, x.shape),
                                *ad.max(x, size, True)))
            for a, b in zip(*results):
                assert_same_bits(a, b, size)
    finally:
        cpool.set_num_threads(before)


def test_example_values():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(cpool.adaptive_avg_pool2d(x, 2)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    assert cpool.adaptive_avg_pool2d(x, 1)[0, 0, 0, 0] == 7.5
    assert cpool.adaptive_avg_pool2d(x, (None, 1)).shape == (1, 1, 4, 1)
    # output larger than the input: windows of one element, repeated
    np.testing.assert_array_equal(cpool.adaptive_max_pool2d(x[..., :1, :2], (2, 4))[0, 0], [[0, 0, 1, 1]] * 2)
    # windows of 3 inputs over 2 outputs overlap: rows [0, 2) and [1, 3)
    y = np.array([[[1.0, 2.0, 4.0]]])
    np.testing.assert_array_equal(cpool.adaptive_avg_pool2d(y, (1, 2)), [[[1.5, 3.0]]])


# ------------------------------------------------------------ errors, out=
X = np.ones((2, 3, 6, 6), np.float32)

FORWARD_ERRORS = [
    (dict(output_size=-1), ValueError, "output_size"),
    (dict(output_size=(2, -3)), ValueError, "output_size"),
    (dict(output_size=2.0), TypeError, "output_size"),
    (dict(output_size=(2.0, 2)), TypeError, "output_size"),
    (dict(output_size=True), TypeError, "output_size"),
    (dict(output_size=None), TypeError, "output_size"),
    (dict(output_size=(1, 2, 3)), ValueError, "output_size"),
    (dict(output_size="2"), TypeError, "output_size"),
    (dict(output_size=2**31), ValueError, "output_size"),
    (dict(output_size=2, data_format="NWHC"), ValueError, "data_format"),
]


@pytest.mark.parametrize("kwargs, exc, name", FORWARD_ERRORS)
def test_forward_errors_name_the_argument_and_write_nothing(ad, kwargs, exc, name):
    out = np.full((2, 3, 2, 2), 7, np.float32)
    with pytest.raises(exc, match=name):
        ad.avg(X, **kwargs, out=out)
    with pytest.raises(exc, match=name):
        ad.max(X, **kwargs, out=out)
    assert (out == 7).all()


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.int8, np.int16, np.bool_, np.complex64])
def test_dtypes_torch_rejects(ad, dtype):
    with pytest.raises(TypeError, match="dtype"):
        ad.avg(X.astype(dtype), 2)
    with pytest.raises(TypeError, match="dtype"):
        ad.max(X.astype(dtype), 2)
    with pytest.raises(TypeError, match="dtype"):
        ad.avg_backward(np.ones((2, 3, 3, 3), dtype), X.shape)


def test_input_errors(ad):
    for fn in (ad.avg, ad.max):
        with pytest.raises(ValueError, match="input"):
            fn(np.ones((6, 6), np.float32), 2)
        with pytest.raises(ValueError, match="input"):
            fn(np.ones((1, 1, 1, 6, 6), np.float32), 2)
        with pytest.raises(ValueError, match="input"):
            fn(np.ones((1, 2, 0, 6), np.float32), 2)
    with pytest.raises(TypeError, match="return_indices"):
        ad.max(X, 2, 1)
    with pytest.raises(ValueError, match="input_shape"):
        ad.avg_backward(np.ones((2, 3, 3, 3), np.float32), (2, 4, 6, 6))
    with pytest.raises(TypeError, match="input_shape"):
        ad.avg_backward(np.ones((2, 3, 3, 3), np.float32), "shape")
    with pytest.raises(ValueError, match="input_shape"):
        ad.avg_backward(np.ones((2, 3, 3, 3), np.float32), (2, 3, 6))
    with pytest.raises(ValueError, match="input_shape"):
        ad.avg_backward(np.ones((2, 3, 3, 3), np.float32), (2, 3, 0, 6))
    go = np.ones((2, 3, 2, 2), np.float32)
    with pytest.raises(TypeError, match="indices"):
        ad.max_backward(go, np.zeros((2, 3, 2, 2), np.float32), X.shape)
    with pytest.raises(ValueError, match="indices"):
        ad.max_backward(go, np.full((2, 3, 2, 2), 36), X.shape)


def test_out(ad):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    expected = ad.avg(x, (3, 4))
    for out in (np.empty_like(expected), np.empty((2, 3, 3, 4), np.float32, order="F")):
        assert ad.avg(x, (3, 4), out=out) is out
        assert_same_bits(np.ascontiguousarray(out), expected)
    v, i = ad.max(x, (3, 4), True)
    pair = (np.empty_like(v), np.empty_like(i))
    assert ad.max(x, (3, 4), True, out=pair) is pair
    assert_same_bits(pair[0], v)
    assert_same_bits(pair[1], i)
    single = np.empty_like(v)
    assert ad.max(x, (3, 4), out=single) is single
    assert_same_bits(single, v)
    with pytest.raises(TypeError, match="out"):
        ad.max(x, (3, 4), True, out=single)
    with pytest.raises(TypeError, match="out"):
        ad.max(x, (3, 4), out=pair)
    go = rng.standard_normal(expected.shape).astype(np.float32)
    gout = np.empty_like(x)
    assert ad.avg_backward(go, x.shape, out=gout) is gout
    assert_same_bits(gout, ad.avg_backward(go, x.shape))
    mout = np.empty_like(x)
    assert ad.max_backward(go, i, x.shape, out=mout) is mout
    assert_same_bits(mout, ad.max_backward(go, i, x.shape))
    # NHWC with out=
    xl = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    o = np.empty((2, 3, 4, 3), np.float32)
    ad.avg(xl, (3, 4), data_format="NHWC", out=o)
    assert_same_bits(o, np.ascontiguousarray(ad.avg(xl, (3, 4), data_format="NHWC")))
    for bad, exc, what in ((np.empty((2, 3, 3, 5), np.float32), ValueError, "shape"),
                           (np.empty((2, 3, 3, 4), np.float64), TypeError, "dtype"),
                           ([0.0], TypeError, "out")):
        with pytest.raises(exc, match=what):
            ad.avg(x, (3, 4), out=bad)
    with pytest.raises(ValueError, match="share memory"):
        ad.avg(x, (7, 6), out=x)
    bad = np.full_like(x, 5)
    with pytest.raises(ValueError, match="indices"):
        ad.max_backward(go, np.full(go.shape, 99), x.shape, out=bad)
    assert (bad == 5).all()
    with pytest.raises(ValueError, match="share memory"):
        ad.avg_backward(go, go.shape, out=go)


# ------------------------------------------------------------ modules
@pytest.mark.parametrize("backend_name", ["cython", "numpy"])
def test_modules(backend_name, compiled):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 7)).astype(np.float32)
    pool = cpool.AdaptiveAvgPool2d((3, None), backend=backend_name)
    assert repr(pool) == "AdaptiveAvgPool2d(output_size=(3, None))"
    out = pool(x)
    assert out is pool.output
    assert_same_bits(out, cpool.slow.adaptive_avg_pool2d(x, (3, None)))
    go = rng.standard_normal(out.shape).astype(np.float32)
    grad = pool.backward(x, go)
    assert grad is pool.gradInput
    assert_same_bits(grad, cpool.slow.adaptive_avg_pool2d_backward(go, x.shape))
    assert_same_bits(pool.forward(x), pool.updateOutput(x))
    assert pool.getParameters() == [] and pool.getGradParameters() == []
    pool.evaluate()
    assert not pool.training
    mp = cpool.AdaptiveMaxPool2d(4, return_indices=True, backend=backend_name)
    assert repr(mp) == "AdaptiveMaxPool2d(output_size=4)"
    v, i = mp(x)
    ev, ei = cpool.slow.adaptive_max_pool2d(x, 4, True)
    assert_same_bits(v, ev)
    assert_same_bits(i, ei)
    go = rng.standard_normal(v.shape).astype(np.float32)
    assert_same_bits(mp.backward(x, go), cpool.slow.adaptive_max_pool2d_backward(go, ei, x.shape))
    # buffer reuse: an output nobody else holds is rewritten in place; one held is not
    plain = cpool.AdaptiveMaxPool2d(2, backend=backend_name)
    first = plain(x).copy()
    held = plain.output
    second = plain(x * 2)
    assert second is not held and held.tobytes() == first.tobytes()
    address = second.__array_interface__["data"][0]
    del second  # nothing but the layer holds its output now: the next one reuses the memory
    assert plain(x).__array_interface__["data"][0] == address
    nhwc = cpool.AdaptiveAvgPool2d(1, data_format="NHWC", backend=backend_name)
    assert repr(nhwc) == "AdaptiveAvgPool2d(output_size=1, data_format='NHWC')"
    xl = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    assert_same_bits(nhwc(xl), cpool.slow.adaptive_avg_pool2d(xl, 1, data_format="NHWC"))
    assert nhwc.backward(xl, np.ones((2, 1, 1, 3), np.float32)).shape == xl.shape


@needs_torch
def test_modules_match_torch_modules():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 9, 10)).astype(np.float32)
    for size in (2, (3, None), (None, 4), (1, 1), (11, 13)):
        ours, theirs = cpool.AdaptiveAvgPool2d(size), torch.nn.AdaptiveAvgPool2d(size)
        t = torch.from_numpy(x).requires_grad_()
        out = theirs(t)
        out.sum().backward()
        assert_same_bits(ours(x), out.detach().numpy(), size)
        assert_same_bits(ours.backward(x, np.ones(out.shape, np.float32)), t.grad.numpy(), size)
        assert repr(ours) == repr(theirs)
        ours, theirs = cpool.AdaptiveMaxPool2d(size), torch.nn.AdaptiveMaxPool2d(size)
        t = torch.from_numpy(x).requires_grad_()
        out = theirs(t)
        out.sum().backward()
        assert_same_bits(ours(x), out.detach().numpy(), size)
        assert_same_bits(ours.backward(x, np.ones(out.shape, np.float32)), t.grad.numpy(), size)
        assert repr(ours) == repr(theirs)


def test_module_errors():
    with pytest.raises(ValueError, match="output_size"):
        cpool.AdaptiveAvgPool2d(-1)
    with pytest.raises(TypeError, match="output_size"):
        cpool.AdaptiveMaxPool2d(2.5)
    with pytest.raises(TypeError, match="return_indices"):
        cpool.AdaptiveMaxPool2d(2, return_indices=1)
    with pytest.raises(ValueError, match="data_format"):
        cpool.AdaptiveAvgPool2d(2, data_format="CHWN")
    with pytest.raises(cpool.BackwardBeforeForwardError):
        cpool.AdaptiveMaxPool2d(2).backward(X, np.ones((2, 3, 2, 2), np.float32))
    pool = cpool.AdaptiveAvgPool2d(2)
    with pytest.raises(ValueError, match="input_shape"):
        pool.backward(np.ones((2, 3, 0, 2)), np.ones((2, 3, 2, 2), np.float32))


# ------------------------------------------------------------ compiled kernels
def test_compiled_kernels_on_threads_and_isas_match_numpy(compiled):
    # float32/64 run in the extension's kernels (both layouts, the 1x1 mean's
    # cascades included), on a team of threads and on every instruction set;
    # bits equal cpool.slow's.
    assert COMPILED._float_kernel("adaptive_pool2d_forward_into", np.dtype(np.float32)) is not None
    ours = Adaptive(bind_adaptive(COMPILED))
    rng = np.random.default_rng(21)
    before = cpool.get_num_threads()
    cpool.set_num_threads(2)
    try:
        for isa in COMPILED.AVAILABLE_ISAS:
            with COMPILED.use_isa(isa):
                for size in (1, (7, 5), (40, 41), (None, 3)):
                    dtype = (np.float32, np.float64)[int(rng.integers(2))]
                    x = random_input(rng, dtype, (3, 37, 40, 36))
                    for data_format, a in (("NCHW", x), ("NHWC", np.ascontiguousarray(np.moveaxis(x, 1, -1)))):
                        out = ours.avg(a, size, data_format=data_format)
                        assert_same_bits(out, cpool.slow.adaptive_avg_pool2d(a, size, data_format=data_format),
                                         (isa, size, data_format))
                        go = random_input(rng, dtype, out.shape, specials=False)
                        assert_same_bits(ours.avg_backward(go, a.shape, data_format=data_format),
                                         cpool.slow.adaptive_avg_pool2d_backward(go, a.shape,
                                                                                 data_format=data_format),
                                         (isa, size, data_format))
                        v, i = ours.max(a, size, True, data_format=data_format)
                        ev, ei = cpool.slow.adaptive_max_pool2d(a, size, True, data_format=data_format)
                        assert_same_bits(v, ev, (isa, size, data_format))
                        assert_same_bits(i, ei, (isa, size, data_format))
    finally:
        cpool.set_num_threads(before)
