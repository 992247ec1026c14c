"""1-D pooling (max, average, adaptive, unpooling, their backwards and layers)
against PyTorch 2.13, bit for bit, on both backends.

Torch parity runs where torch is installed (on one thread, as the other
torch tests: torch's unpooling leaves a repeated index to whichever thread
writes last). Each test draws a few random configurations and salts the
values with NaN, +-inf, ties and -0.0; every layout is checked: (N, C, L)
memory, channels-last memory seen as (N, C, L), the "NWC" format, and
non-batched (C, L) input.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import COMPILED

import cpool
from cpool.module import _functions_1d

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")
FLOATS = [np.float16, np.float32, np.float64]
WORD = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
LAYOUTS = ["ncw", "channels_last", "nwc", "unbatched"]


@pytest.fixture(params=["compiled", "numpy"])
def f1(request):
    """The public 1-D functions of one backend."""
    if request.param == "numpy":
        return cpool.slow
    request.getfixturevalue("compiled")
    return _functions_1d(COMPILED)


@pytest.fixture(autouse=True)
def _torch_one_thread():
    if torch is not None:
        old = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(old)
    else:
        yield


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view(WORD[a.itemsize])


def assert_same(got, want):
    """Same shape, dtype and bits (NaN payloads and the sign of zero included)."""
    want = np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    np.testing.assert_array_equal(bits(got), bits(want))


def salted(rng, shape, dtype):
    """Random values with ties, NaN (several payloads), +-inf, -0.0 and 0.0."""
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -100), min(info.max, 100), shape, endpoint=True).astype(dtype)
    x = np.round(rng.standard_normal(shape) * 2).astype(dtype)  # few distinct values: many ties
    flat = x.reshape(-1)
    n = flat.size
    for value in (np.nan, np.inf, -np.inf, -0.0, 0.0):
        flat[rng.integers(0, n, max(1, n // 40))] = value
    payload = np.array(np.nan, dtype).view(WORD[x.itemsize]) | 1  # a second NaN payload, negative sign
    flat[rng.integers(0, n, max(1, n // 60))] = (payload | (1 << (8 * x.itemsize - 1))).view(dtype)
    return x


def layout_of(x, layout):
    """``x`` (N, C, L) as the 1-D call sees it, the data format, and torch's
    tensor of it (in x's memory)."""
    if layout == "ncw":
        return x, "NCW", torch.from_numpy(x) if torch else None
    if layout == "channels_last":
        cl = np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1)
        return cl, "NCW", torch.from_numpy(cl) if torch else None
    if layout == "nwc":
        nwc = np.ascontiguousarray(x.transpose(0, 2, 1))
        return nwc, "NWC", torch.from_numpy(nwc).permute(0, 2, 1) if torch else None
    assert layout == "unbatched"
    return x[0], "NCW", torch.from_numpy(np.ascontiguousarray(x[0])) if torch else None


def to_caller(t, layout):
    """A torch result as the 1-D call returns it (NWC: channels last)."""
    a = t.detach().numpy()
    return np.ascontiguousarray(a.transpose(0, 2, 1)) if layout == "nwc" else a


def from_caller(a, layout):
    """A caller-format array as torch's (N, C, L) / (C, L) tensor."""
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 2, 1) if layout == "nwc" else a))


def pool_config(rng, dilation=True):
    k = int(rng.integers(1, 6))
    s = int(rng.integers(1, 4))
    p = int(rng.integers(0, k // 2 + 1))
    d = int(rng.integers(1, 3)) if dilation else 1
    ceil = bool(rng.integers(0, 2))
    L = int(rng.integers(max(1, d * (k - 1) + 1 - 2 * p), 40))
    return k, s, p, d, ceil, L


def check_memory(got, x, layout):
    """Results come back in the input's memory format: channels-last in, channels-last out."""
    if layout == "channels_last" and got.shape[1] > 1 and got.shape[2] > 1:
        assert got.transpose(0, 2, 1).flags.c_contiguous
    elif got.size:
        assert got.flags.c_contiguous


# ------------------------------------------------------------------ max pooling
@needs_torch
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_max_pool1d_matches_torch(f1, rng, layout, dtype):
    for _ in range(4):
        k, s, p, d, ceil, L = pool_config(rng)
        x, df, t = layout_of(salted(rng, (int(rng.integers(1, 4)), int(rng.integers(2, 6)), L), dtype), layout)
        args = (k, s, p, d, ceil)
        fast = F.max_pool1d(t, *args)  # torch's own values-only kernel (max_pool1d_impl)
        tv, ti = F.max_pool1d(t, *args, return_indices=True)  # max_pool1d_with_indices: 2-D
        assert_same(fast.numpy(), tv.numpy())  # torch's two paths agree bit for bit
        got = f1.max_pool1d(x, *args, data_format=df)
        assert_same(got, to_caller(tv, layout))
        check_memory(got, x, layout)
        gv, gi = f1.max_pool1d(x, *args, return_indices=True, data_format=df)
        assert_same(gv, to_caller(tv, layout))
        assert_same(gi, to_caller(ti, layout))


@needs_torch
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.int64])
def test_max_pool1d_integers_with_indices_only(f1, rng, dtype):
    x = salted(rng, (2, 3, 17), dtype)
    tv, ti = F.max_pool1d(torch.from_numpy(x), 3, 2, 1, return_indices=True)
    gv, gi = f1.max_pool1d(x, 3, 2, 1, return_indices=True)
    assert_same(gv, tv.numpy())
    assert_same(gi, ti.numpy())
    with pytest.raises(NotImplementedError):  # torch's values-only kernel has no integer types
        F.max_pool1d(torch.from_numpy(x), 3, 2, 1)
    with pytest.raises(TypeError, match=f"max_pool1d without return_indices does not support input.dtype={x.dtype}"):
        f1.max_pool1d(x, 3, 2, 1)


@needs_torch
def test_max_pool1d_adversarial_windows(f1):
    nan, inf = np.float32(np.nan), np.float32(np.inf)
    neg_nan = (np.array(nan).view(np.uint32) | np.uint32(0x80000001)).view(np.float32)
    x = np.array([[[nan, 1, -inf, -0.0, 0.0, 2, 2, neg_nan, -inf, -inf, 0.0, -0.0, nan, neg_nan]]], np.float32)
    t = torch.from_numpy(x)
    for args in [(2,), (3, 1, 1), (2, 1, 1, 3), (3, 2, 1, 1, True), (4, 3, 2, 2, True), (1,), (14,)]:
        fast = F.max_pool1d(t, *args)
        tv, ti = F.max_pool1d(t, *args, return_indices=True)
        assert_same(fast.numpy(), tv.numpy())
        gv, gi = f1.max_pool1d(x, *args, return_indices=True)
        assert_same(gv, tv.numpy())
        assert_same(gi, ti.numpy())


@needs_torch
def test_max_pool1d_window_without_input(f1):
    # dilation 3 and padding 1 on a length-2 input: the first window's taps
    # are -1 and 2, both outside: -inf, and cpool's one deliberate difference
    # (as for 2-D): index -1, where torch gives 2, outside the row.
    x = np.array([[[5.0, 7.0]]], np.float32)
    tv, ti = F.max_pool1d(torch.from_numpy(x), 2, 1, 1, 3, return_indices=True)
    gv, gi = f1.max_pool1d(x, 2, 1, 1, 3, return_indices=True)
    assert_same(gv, tv.numpy())
    assert ti.numpy()[0, 0, 0] == 2 and gi[0, 0, 0] == -1
    assert_same(gi[..., 1:], ti.numpy()[..., 1:])


@needs_torch
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_max_pool1d_backward_matches_autograd(f1, rng, layout, dtype):
    for _ in range(3):
        k, s, p, d, ceil, L = pool_config(rng)
        x, df, t = layout_of(salted(rng, (2, 3, L), dtype), layout)
        t = t.clone().requires_grad_(True)
        tv, ti = F.max_pool1d(t, k, s, p, d, ceil, return_indices=True)
        g = rng.standard_normal(tv.shape).astype(dtype)
        tv.backward(torch.from_numpy(g))
        _, gi = f1.max_pool1d(x, k, s, p, d, ceil, return_indices=True, data_format=df)
        go = np.ascontiguousarray(g.transpose(0, 2, 1)) if layout == "nwc" else g
        got = f1.max_pool1d_backward(go, gi, x.shape, data_format=df)
        assert_same(got, to_caller(t.grad, layout))


# ------------------------------------------------------------------ average pooling
@needs_torch
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", FLOATS + [np.int64])
def test_avg_pool1d_matches_torch(f1, rng, layout, dtype):
    for _ in range(4):
        k, s, p, _, ceil, L = pool_config(rng, dilation=False)
        include = bool(rng.integers(0, 2))
        x, df, t = layout_of(salted(rng, (2, int(rng.integers(2, 20)), L), dtype), layout)
        want = F.avg_pool1d(t, k, s, p, ceil, include)
        got = f1.avg_pool1d(x, k, s, p, ceil, include, data_format=df)
        assert_same(got, to_caller(want, layout))
        check_memory(got, x, layout)
        if dtype == np.int64:
            continue
        tg = t.clone().requires_grad_(True)
        g = rng.standard_normal(want.shape).astype(dtype)
        F.avg_pool1d(tg, k, s, p, ceil, include).backward(torch.from_numpy(g))
        go = np.ascontiguousarray(g.transpose(0, 2, 1)) if layout == "nwc" else g
        if layout == "channels_last":  # torch's gradient kernel follows grad_output's memory
            tg2 = torch.from_numpy(x).clone().requires_grad_(True)
            g_cl = np.ascontiguousarray(g.transpose(0, 2, 1)).transpose(0, 2, 1)
            F.avg_pool1d(tg2, k, s, p, ceil, include).backward(torch.from_numpy(g_cl))
            assert_same(f1.avg_pool1d_backward(g_cl, x.shape, k, s, p, ceil, include), tg2.grad.numpy())
            continue
        got_g = f1.avg_pool1d_backward(go, x.shape, k, s, p, ceil, include, data_format=df)
        assert_same(got_g, to_caller(tg.grad, layout))


# ------------------------------------------------------------------ adaptive pooling
@needs_torch
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_adaptive_pool1d_matches_torch(f1, rng, layout, dtype):
    for _ in range(3):
        L = int(rng.integers(1, 30))
        size = int(rng.integers(0, 2 * L + 2))
        x, df, t = layout_of(salted(rng, (2, int(rng.integers(2, 20)), L), dtype), layout)
        osz = size if rng.integers(0, 2) else (size,)
        assert_same(f1.adaptive_avg_pool1d(x, osz, data_format=df), to_caller(F.adaptive_avg_pool1d(t, osz), layout))
        tv, ti = F.adaptive_max_pool1d(t, osz, return_indices=True)
        gv, gi = f1.adaptive_max_pool1d(x, osz, True, data_format=df)
        assert_same(gv, to_caller(tv, layout))
        assert_same(gi, to_caller(ti, layout))
        assert_same(f1.adaptive_max_pool1d(x, osz, data_format=df), to_caller(tv, layout))
        if size == 0:
            continue
        g = rng.standard_normal(tv.shape).astype(dtype)
        go = np.ascontiguousarray(g.transpose(0, 2, 1)) if layout == "nwc" else g
        if layout == "channels_last":
            go = g = np.ascontiguousarray(g.transpose(0, 2, 1)).transpose(0, 2, 1)
        for op in ("avg", "max"):
            tg = torch.from_numpy(x).clone().requires_grad_(True) if layout != "nwc" else t.clone().requires_grad_()
            if layout == "channels_last":
                tg = torch.from_numpy(x).requires_grad_(True)
            if op == "avg":
                F.adaptive_avg_pool1d(tg, osz).backward(torch.from_numpy(g))
                got = f1.adaptive_avg_pool1d_backward(go, x.shape, data_format=df)
            else:
                F.adaptive_max_pool1d(tg, osz).backward(torch.from_numpy(g))
                got = f1.adaptive_max_pool1d_backward(go, gi, x.shape, data_format=df)
            assert_same(got, to_caller(tg.grad, layout))


@needs_torch
def test_adaptive_max_pool1d_of_no_channels(f1):
    # torch checks the dimensions after the first: a (0, L) input pools to (0, OL).
    x = np.zeros((0, 5), np.float32)
    tv, ti = F.adaptive_max_pool1d(torch.from_numpy(x), 2, return_indices=True)
    gv, gi = f1.adaptive_max_pool1d(x, 2, True)
    assert_same(gv, tv.numpy())
    assert_same(gi, ti.numpy())
    with pytest.raises(ValueError, match="non-zero channel and length"):
        f1.adaptive_max_pool1d(np.zeros((2, 0, 5), np.float32), 2)
    assert f1.adaptive_avg_pool1d(np.zeros((2, 0, 5), np.float32), 2).shape == (2, 0, 2)


# ------------------------------------------------------------------ max unpooling
@needs_torch
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_max_unpool1d_matches_torch(f1, rng, layout, dtype):
    for _ in range(3):
        k, s, p, _, _, L = pool_config(rng, dilation=False)
        L = max(L, k)
        x, df, t = layout_of(salted(rng, (2, 3, L), dtype), layout)
        v, i = f1.max_pool1d(x, k, s, p, return_indices=True, data_format=df)
        tv, ti = from_caller(v, layout), from_caller(i, layout)
        default = (tv.shape[-1] - 1) * s - 2 * p + k
        sizes = [None, (L,), [L]] + ([(2, 3, default)] if tv.ndim == 3 else []) if default > 0 else []
        for size in sizes:
            if size is not None and not default - s < size[-1] < default + s:
                continue
            want = F.max_unpool1d(tv, ti, k, s, p, size)
            got = f1.max_unpool1d(v, i, k, s, p, size, data_format=df)
            assert_same(got, to_caller(want, layout))
            # backward: the gradient autograd gives max_unpool1d's input
            tg = tv.clone().requires_grad_(True)
            g = rng.standard_normal(want.shape).astype(dtype)
            F.max_unpool1d(tg, ti, k, s, p, size).backward(torch.from_numpy(g))
            go = np.ascontiguousarray(g.transpose(0, 2, 1)) if layout == "nwc" else g
            assert_same(f1.max_unpool1d_backward(go, i, data_format=df), to_caller(tg.grad, layout))


def test_max_unpool1d_inverts_max_pool1d(f1, rng):
    x = rng.permutation(60).astype(np.float32).reshape(2, 3, 10)
    v, i = f1.max_pool1d(x, 2, return_indices=True)
    u = f1.max_unpool1d(v, i, 2)
    np.testing.assert_array_equal(u, np.where(u != 0, x, 0))
    assert (u != 0).sum() == v.size - (v == 0).sum()


# ------------------------------------------------------------------ both backends, one answer
@pytest.mark.parametrize("layout", LAYOUTS)
def test_backends_agree(compiled, rng, layout):
    fc, fs = _functions_1d(COMPILED), cpool.slow
    for dtype in FLOATS:
        x, df, _ = layout_of(salted(rng, (3, 9, 64), dtype), layout)
        for args in [(2, 2), (3, 1, 1), (5, 2, 2, 2, True)]:
            for a, b in zip(fc.max_pool1d(x, *args, return_indices=True, data_format=df),
                            fs.max_pool1d(x, *args, return_indices=True, data_format=df)):
                assert_same(a, b)
        assert_same(fc.avg_pool1d(x, 3, 2, 1, data_format=df), fs.avg_pool1d(x, 3, 2, 1, data_format=df))
        assert_same(fc.adaptive_avg_pool1d(x, 7, data_format=df), fs.adaptive_avg_pool1d(x, 7, data_format=df))


# ------------------------------------------------------------------ shapes, out=, indices
def test_empty_batch(f1):
    x = np.zeros((0, 3, 8), np.float32)
    v, i = f1.max_pool1d(x, 2, return_indices=True)
    assert v.shape == i.shape == (0, 3, 4)
    assert f1.max_pool1d_backward(v, i, x.shape).shape == x.shape
    assert f1.avg_pool1d(x, 2).shape == (0, 3, 4)
    assert f1.avg_pool1d_backward(v, x.shape, 2).shape == x.shape
    assert f1.adaptive_avg_pool1d(x, 3).shape == (0, 3, 3)
    assert f1.adaptive_max_pool1d(x, 3, True)[1].shape == (0, 3, 3)
    assert f1.max_unpool1d(v, i, 2).shape == x.shape
    assert f1.max_pool1d(np.zeros((0, 8, 3), np.float32), 2, data_format="NWC").shape == (0, 4, 3)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_out_arrays(f1, rng, layout):
    x, df, _ = layout_of(salted(rng, (2, 4, 12), np.float32), layout)
    v, i = f1.max_pool1d(x, 3, 2, 1, return_indices=True, data_format=df)
    for out_v in (np.empty_like(v), np.empty(v.shape[::-1], v.dtype).T):  # its layout or another
        ov, oi = out_v, np.zeros(v.shape, np.int64)
        res = f1.max_pool1d(x, 3, 2, 1, return_indices=True, data_format=df, out=(ov, oi))
        assert res[0] is ov and res[1] is oi
        assert_same(ov, v)
        assert_same(oi, i)
    o = np.empty_like(v)
    assert f1.max_pool1d(x, 3, 2, 1, data_format=df, out=o) is o
    assert_same(o, v)
    cases = [
        (lambda o: f1.avg_pool1d(x, 3, 2, 1, data_format=df, out=o), f1.avg_pool1d(x, 3, 2, 1, data_format=df)),
        (lambda o: f1.max_pool1d_backward(v, i, x.shape, data_format=df, out=o),
         f1.max_pool1d_backward(v, i, x.shape, data_format=df)),
        (lambda o: f1.avg_pool1d_backward(v, x.shape, 3, 2, 1, data_format=df, out=o),
         f1.avg_pool1d_backward(v, x.shape, 3, 2, 1, data_format=df)),
        (lambda o: f1.adaptive_avg_pool1d(x, 5, data_format=df, out=o), f1.adaptive_avg_pool1d(x, 5, data_format=df)),
        (lambda o: f1.adaptive_max_pool1d(x, 5, data_format=df, out=o), f1.adaptive_max_pool1d(x, 5, data_format=df)),
        (lambda o: f1.max_unpool1d(v, i, 3, 2, 1, (12,), data_format=df, out=o),
         f1.max_unpool1d(v, i, 3, 2, 1, (12,), data_format=df)),
        (lambda o: f1.max_unpool1d_backward(x, i, data_format=df, out=o),
         f1.max_unpool1d_backward(x, i, data_format=df)),
    ]
    for call, want in cases:
        o = np.full(want.shape, 7.0, want.dtype)
        assert call(o) is o
        assert_same(o, want)
        # errors leave out as it was
        bad = np.full(want.shape[:-1] + (want.shape[-1] + 1,), 7.0, want.dtype)
        with pytest.raises(ValueError, match=r"out must have shape"):
            call(bad)
        assert (bad == 7).all()
        with pytest.raises(TypeError, match=r"out must have dtype float32"):
            call(np.zeros(want.shape, np.float64))


def test_out_errors_write_nothing(f1, rng):
    x = rng.standard_normal((2, 3, 8)).astype(np.float32)
    v, i = f1.max_pool1d(x, 2, return_indices=True)
    o = np.full(x.shape, 7.0, np.float32)
    with pytest.raises(ValueError, match="indices contains 8, outside input_shape's length of length 8"):
        f1.max_pool1d_backward(v, np.where(i == i.max(), 8, i), x.shape, out=o)
    with pytest.raises(ValueError, match="out must not share memory with input"):
        f1.max_pool1d(x, 2, out=x[..., :4])
    with pytest.raises(TypeError, match=r"out must be a \(values, indices\) tuple"):
        f1.max_pool1d(x, 2, return_indices=True, out=np.empty_like(v))
    with pytest.raises(ValueError, match="indices contains 8, outside the unpooled output of length 8"):
        f1.max_unpool1d(v, np.where(i == i.max(), 8, i), 2, out=o)
    assert (o == 7).all()


@pytest.mark.parametrize("bad", [-2, -1, 8, 9, 2**62, -(2**63)])
def test_hostile_indices(f1, rng, bad):
    x = rng.standard_normal((2, 3, 8)).astype(np.float32)
    v, i = f1.max_pool1d(x, 2, return_indices=True)
    hostile = i.copy()
    hostile[1, 2, 3] = bad
    o = np.full(x.shape, 7.0, np.float32)
    if bad == -1:  # a window without an input element: skipped by the max pooling backward
        want = f1.max_pool1d_backward(np.where(hostile == -1, 0, v).astype(np.float32), i, x.shape)
        assert_same(f1.max_pool1d_backward(v, hostile, x.shape, out=np.empty_like(o)), want)
    else:
        with pytest.raises(ValueError, match=f"indices contains {bad}, outside input_shape's length"):
            f1.max_pool1d_backward(v, hostile, x.shape, out=o)
        assert (o == 7).all()
    for call in (lambda: f1.adaptive_max_pool1d_backward(v, hostile, x.shape, out=o),
                 lambda: f1.max_unpool1d(v, hostile, 2, out=o),
                 lambda: f1.max_unpool1d_backward(x, hostile, out=o[..., :4].copy()),
                 lambda: f1.max_unpool1d(v, hostile, 2)):
        with pytest.raises(ValueError, match=f"indices contains {bad}, outside"):
            call()
    assert (o == 7).all()


def test_arguments_named_as_given(f1):
    x = np.zeros((1, 2, 8), np.float32)
    with pytest.raises(ValueError, match=r"kernel_size must be an int or a tuple of one int for 1-D pooling, "
                                         r"got kernel_size=\(2, 2\) with 2 elements"):
        f1.max_pool1d(x, (2, 2))
    with pytest.raises(ValueError, match=r"padding must be at most half of kernel_size, got padding=2 with "
                                         r"kernel_size=\(3,\)"):
        f1.avg_pool1d(x, (3,), padding=2)
    with pytest.raises(ValueError, match=r"output size is too small: input.shape=\(1, 2, 8\) .* length 0"):
        f1.max_pool1d(x, 9)
    # stride=() is PyTorch's default too
    assert_same(f1.max_pool1d(x, 2, ()), f1.max_pool1d(x, 2))


# ------------------------------------------------------------------ layers
@pytest.mark.parametrize("backend_name", ["cython", "numpy"])
def test_layers(rng, backend_name, request):
    if backend_name == "cython":
        request.getfixturevalue("compiled")
    x = rng.standard_normal((2, 3, 11)).astype(np.float32)
    g = rng.standard_normal((2, 3, 5)).astype(np.float32)
    f = cpool.slow
    pool = cpool.MaxPool1d(3, 2, 1, return_indices=True, backend=backend_name)
    v, i = pool.forward(x)
    want_v, want_i = f.max_pool1d(x, 3, 2, 1, return_indices=True)
    assert_same(v, want_v)
    assert_same(i, want_i)
    g6 = rng.standard_normal(v.shape).astype(np.float32)
    assert_same(pool.backward(x, g6), f.max_pool1d_backward(g6, want_i, x.shape))
    avg = cpool.AvgPool1d(3, 2, 1, backend=backend_name)
    assert_same(avg.forward(x), f.avg_pool1d(x, 3, 2, 1))
    assert_same(avg.backward(x, g6), f.avg_pool1d_backward(g6, x.shape, 3, 2, 1))
    aap = cpool.AdaptiveAvgPool1d(5, backend=backend_name)
    assert_same(aap.forward(x), f.adaptive_avg_pool1d(x, 5))
    assert_same(aap.backward(x, g), f.adaptive_avg_pool1d_backward(g, x.shape))
    amp = cpool.AdaptiveMaxPool1d(5, backend=backend_name)
    assert_same(amp.forward(x), f.adaptive_max_pool1d(x, 5))
    assert_same(amp.backward(x, g), f.adaptive_max_pool1d_backward(g, f.adaptive_max_pool1d(x, 5, True)[1], x.shape))
    mp = cpool.MaxPool1d(2, backend=backend_name)
    unpool = cpool.MaxUnpool1d(2, pool=mp, backend=backend_name)
    u = unpool.forward(mp.forward(x))
    vv, ii = f.max_pool1d(x, 2, return_indices=True)
    assert_same(u, f.max_unpool1d(vv, ii, 2, output_size=x.shape))
    assert_same(unpool.backward(vv, x), f.max_unpool1d_backward(x, ii))
    nwc = cpool.MaxPool1d(2, data_format="NWC", backend=backend_name)
    assert_same(nwc.forward(np.ascontiguousarray(x.transpose(0, 2, 1))), want := f.max_pool1d(x, 2).transpose(0, 2, 1))
    assert want.shape == (2, 5, 3)
    with pytest.raises(cpool.BackwardBeforeForwardError):
        cpool.MaxPool1d(2, backend=backend_name).backward(x, g)
    with pytest.raises(ValueError, match="kernel_size"):
        cpool.MaxPool1d((2, 2))


@needs_torch
def test_layer_reprs_are_torchs():
    for ours, theirs in [(cpool.MaxPool1d(3, 2, 1), torch.nn.MaxPool1d(3, 2, 1)),
                         (cpool.AvgPool1d(3, 2, 1), torch.nn.AvgPool1d(3, 2, 1)),
                         (cpool.AdaptiveAvgPool1d(4), torch.nn.AdaptiveAvgPool1d(4)),
                         (cpool.AdaptiveMaxPool1d(4), torch.nn.AdaptiveMaxPool1d(4)),
                         (cpool.MaxUnpool1d(2), torch.nn.MaxUnpool1d(2))]:
        assert repr(ours) == repr(theirs)


def test_public_names():
    for name in ("max_pool1d", "max_pool1d_backward", "avg_pool1d", "avg_pool1d_backward", "adaptive_avg_pool1d",
                 "adaptive_avg_pool1d_backward", "adaptive_max_pool1d", "adaptive_max_pool1d_backward",
                 "max_unpool1d", "max_unpool1d_backward"):
        assert name in cpool.__all__ and name in cpool.slow.__all__
        assert getattr(cpool, name).__module__ == "cpool.functional"
        assert getattr(cpool.slow, name).__module__ == "cpool.slow"
        assert "Examples" in getattr(cpool, name).__doc__
    for name in ("MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d", "AdaptiveMaxPool1d", "MaxUnpool1d"):
        assert name in cpool.__all__


def test_odd_memory_is_pooled_like_the_array(f1, rng):
    # strided (contiguous in neither order: copied), byte-swapped and list inputs give the same bits
    x = salted(rng, (2, 5, 40), np.float32)
    want_v, want_i = f1.max_pool1d(x[:, :, ::2], 3, 2, 1, return_indices=True)
    strided = np.ascontiguousarray(x)[:, :, ::2]
    for odd in (strided, strided.astype(strided.dtype.newbyteorder(">"))):
        v, i = f1.max_pool1d(odd, 3, 2, 1, return_indices=True)
        assert_same(v, want_v)
        assert_same(i, want_i)
    v, i = f1.max_pool1d(strided.tolist(), 3, 2, 1, return_indices=True)  # a list: float64, as NumPy converts it
    assert_same(v, want_v.astype(np.float64))
    assert_same(i, want_i)
    assert_same(f1.avg_pool1d(strided.astype(">f4"), 3, 2, 1), f1.avg_pool1d(np.ascontiguousarray(strided), 3, 2, 1))
    assert not np.shares_memory(f1.max_pool1d(x, 1), x)  # a new array, never the input


def test_no_copy_of_channels_last_input(f1, rng, monkeypatch):
    # the 2-D path gets a view of the caller's memory: (N, C, 1, L) of channels-last memory is channels-last
    x = np.ascontiguousarray(salted(rng, (2, 40, 6), np.float32)).transpose(0, 2, 1)
    from cpool import _validation
    seen = []
    real = _validation.as_native
    monkeypatch.setattr(_validation, "as_native", lambda a: seen.append(a) or real(a))
    f1.max_pool1d(x, 2)
    assert all(np.shares_memory(a, x) for a in seen)


def test_repeated_calls_still_checked(f1):
    # the second call of the same arguments skips the 1-D checks; others still run them
    x = np.arange(16, dtype=np.float32).reshape(1, 2, 8)
    first = f1.max_pool1d(x, 2)
    assert_same(f1.max_pool1d(x, 2), first)
    assert_same(f1.max_pool1d(x.copy(), 2), first)
    with pytest.raises(TypeError, match="kernel_size=True"):
        f1.max_pool1d(x, True)
    with pytest.raises(TypeError, match="without return_indices"):
        f1.max_pool1d(x.astype(np.int64), 2)
    with pytest.raises(ValueError, match="output size is too small"):
        f1.max_pool1d(x[..., :1], 2)
    v, i = f1.max_pool1d(x.astype(np.int64), 2, return_indices=True)
    assert_same(v, first.astype(np.int64))


@pytest.mark.parametrize("backend_name", ["cython", "numpy"])
def test_max_pool1d_layer_reuses_its_buffers(rng, backend_name, request):
    if backend_name == "cython":
        request.getfixturevalue("compiled")
    for x in (rng.standard_normal((2, 3, 12)).astype(np.float32),
              np.ascontiguousarray(rng.standard_normal((2, 12, 3)).astype(np.float32)).transpose(0, 2, 1)):
        pool = cpool.MaxPool1d(3, 2, 1, backend=backend_name)
        pool.forward(x)
        g = np.ones_like(pool.output)
        pool.backward(x, g)
        ids = id(pool.output), id(pool.indices), id(pool.gradInput)
        memory = pool.output.__array_interface__["data"][0], pool.gradInput.__array_interface__["data"][0]
        x2 = x * 2
        v = pool.forward(x2)  # nothing else refers to the last results: written in place
        assert (id(pool.output), id(pool.indices)) == ids[:2] and v is pool.output
        assert pool.output.__array_interface__["data"][0] == memory[0]
        assert_same(v, cpool.slow.max_pool1d(x2, 3, 2, 1))
        assert pool.backward(x2, g) is pool.gradInput and id(pool.gradInput) == ids[2]
        assert pool.gradInput.__array_interface__["data"][0] == memory[1]
        kept = pool.forward(x)  # a result the caller holds is never overwritten
        kept_copy = kept.copy()
        other = pool.forward(x2)
        assert other is not kept and (kept == kept_copy).all()
        bad = pool.indices.copy()
        bad.flat[0] = 99
        pool.indices = bad  # tampered indices: an error, and the held gradient left as it was
        grad_before = pool.gradInput.copy()
        with pytest.raises(ValueError, match="indices contains 99"):
            pool.backward(x2, g)
        assert pool.gradInput is None or (pool.gradInput == grad_before).all()
