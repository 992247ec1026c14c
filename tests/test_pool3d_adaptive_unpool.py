"""3-D adaptive pooling (``adaptive_avg_pool3d`` / ``adaptive_max_pool3d`` and
their backwards) and 3-D max unpooling (``max_unpool3d`` and its backward).

* Torch parity bit for bit on random configurations (output sizes that do
  not divide the input, larger than it, None entries, 0, the 1x1x1 mean),
  both data formats, channels_last_3d memory, 4-D input, batch 0,
  float16/32/64, -0.0, inf, NaN payloads and ties; forwards and backwards
  (torch's autograd).
* Loop oracles (torch's loops transcribed) for runs without torch.
* Hostile indices (out of range, -1, another volume's) rejected before
  anything is written, ``out=`` (errors leave it untouched), the modules.
* Both backends through the ``ops`` fixture.
"""

import numpy as np
import pytest
from helpers import COMPILED, assert_same_bits

import cpool
from cpool.functional import bind_adaptive3d, bind_unpool3d

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

DTYPES = [np.float16, np.float32, np.float64]
_BITS = {np.dtype(np.float16): np.uint16, np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


class Ops:
    def __init__(self, name, adaptive, unpool):
        self.name = name
        self.avg, self.avg_backward, self.max, self.max_backward = adaptive
        self.unpool, self.unpool_backward = unpool


@pytest.fixture(params=["compiled", "numpy"])
def ops(request):
    """The six functions of one backend."""
    if request.param == "numpy":
        s = cpool.slow
        return Ops("numpy", (s.adaptive_avg_pool3d, s.adaptive_avg_pool3d_backward, s.adaptive_max_pool3d,
                             s.adaptive_max_pool3d_backward), (s.max_unpool3d, s.max_unpool3d_backward))
    request.getfixturevalue("compiled")
    return Ops("cython", bind_adaptive3d(COMPILED), bind_unpool3d(COMPILED))


@pytest.fixture(autouse=True)
def one_torch_thread():
    # torch's results with repeated indices (unpooling) depend on its thread
    # count; cpool gives its one-thread result
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------ inputs
def adversarial(rng, shape, dtype, kind):
    """Random values; ``kind``: "normal", "ties" (few distinct values, -0.0
    and 0.0 mixed), "specials" (NaNs with payloads and signs, +-inf)."""
    if kind == "ties":
        x = rng.integers(-2, 3, shape).astype(dtype)
        x[rng.random(shape) < 0.3] = -0.0
        return x
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    if kind == "specials":
        bits = x.view(_BITS[x.dtype])
        nan = rng.random(shape) < 0.15
        x[nan] = np.nan
        payload = rng.integers(0, 8, int(nan.sum())).astype(bits.dtype)
        bits[nan] |= payload  # NaN payloads
        bits[nan & (rng.random(shape) < 0.5)] |= bits.dtype.type(1) << bits.dtype.type(8 * x.itemsize - 1)
        x[rng.random(shape) < 0.05] = np.inf
        x[rng.random(shape) < 0.05] = -np.inf
    return x


def torch_input(x, channels_last):
    t = torch.from_numpy(x.copy())
    return t.contiguous(memory_format=torch.channels_last_3d) if channels_last else t


def case_input(x, fmt, channels_last):
    """(the array cpool is given, its data_format) for an NCDHW ``x``: in
    format ``fmt``, with channels-last memory or not."""
    if fmt == "NDHWC":
        if x.ndim == 5:
            arr = np.ascontiguousarray(x.transpose(0, 2, 3, 4, 1))
            return (arr if channels_last else np.ascontiguousarray(x).transpose(0, 2, 3, 4, 1)), fmt
        arr = np.ascontiguousarray(x.transpose(1, 2, 3, 0))
        return (arr if channels_last else np.ascontiguousarray(x).transpose(1, 2, 3, 0)), fmt
    if channels_last:
        perm, back = ((0, 2, 3, 4, 1), (0, 4, 1, 2, 3)) if x.ndim == 5 else ((1, 2, 3, 0), (3, 0, 1, 2))
        return np.ascontiguousarray(x.transpose(perm)).transpose(back), fmt
    return np.ascontiguousarray(x), fmt


def to_ncdhw(a, fmt):
    a = np.asarray(a)
    if fmt == "NDHWC":
        return a.transpose((0, 4, 1, 2, 3) if a.ndim == 5 else (3, 0, 1, 2))
    return a


def from_ncdhw(a, fmt):
    if fmt == "NDHWC":
        return a.transpose((0, 2, 3, 4, 1) if a.ndim == 5 else (1, 2, 3, 0))
    return a


def random_config(rng, i):
    N = int(rng.integers(1, 3))
    C = int(rng.choice([1, 3, 8, 9, 17]))
    D, H, W = (int(v) for v in rng.integers(1, 8, 3))
    size = [int(rng.integers(1, v + 3)) for v in (D, H, W)]
    if i % 7 == 0:
        size = [1, 1, 1]
    if i % 5 == 1:
        size[int(rng.integers(0, 3))] = None
    return (N, C, D, H, W), tuple(size)


# ------------------------------------------------------------------ torch parity
def assert_same_mean(got, ref, msg=""):
    """Bits, except that of an output of 1x1x1 (torch's mean, as 2-D's 1x1)
    only where the NaNs are is reproduced, not which payload."""
    if ref.shape[-3:] == (1, 1, 1) and np.isnan(ref).any():
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=msg)
        got, ref = np.where(np.isnan(got), 0, got), np.where(np.isnan(ref), 0, ref)
    assert_same_bits(got, ref, msg)


CASES = [(i, dt, kind, fmt, cl) for i, (dt, kind, fmt, cl) in enumerate(
    (dt, kind, fmt, cl) for dt in DTYPES for kind in ("normal", "ties", "specials")
    for fmt in ("NCDHW", "NDHWC") for cl in (False, True))]


@needs_torch
@pytest.mark.parametrize("i,dtype,kind,fmt,cl", CASES)
def test_adaptive_matches_torch(ops, i, dtype, kind, fmt, cl):
    rng = np.random.default_rng(1000 + i)
    for j in range(3):
        shape, size = random_config(rng, i + j)
        if j == 2:
            shape = shape[1:]  # non-batched
        x = adversarial(rng, shape, dtype, kind)
        arr, df = case_input(x, fmt, cl)
        t = torch.from_numpy(to_ncdhw(arr, fmt))  # the same memory (torch's mean follows the strides)
        msg = f"{shape} -> {size}, {np.dtype(dtype)}, {kind}, {fmt}, channels-last memory {cl}"

        ref_avg = F.adaptive_avg_pool3d(t, size).numpy()
        got = ops.avg(arr, size, data_format=df)
        assert_same_mean(to_ncdhw(got, fmt), ref_avg, "avg " + msg)
        ref_max, ref_idx = F.adaptive_max_pool3d(t, size, return_indices=True)
        got_max, got_idx = ops.max(arr, size, True, data_format=df)
        assert_same_bits(to_ncdhw(got_max, fmt), ref_max.numpy(), "max " + msg)
        assert_same_bits(to_ncdhw(got_idx, fmt), ref_idx.numpy(), "indices " + msg)
        if cl and x.ndim == 5:  # results keep the input's memory format, computed without a copy
            mem = to_ncdhw(got, fmt).transpose(0, 2, 3, 4, 1)
            assert mem.flags.c_contiguous

        go = adversarial(rng, ref_avg.shape, dtype, "specials" if kind == "specials" else "normal")
        go_arr = case_input(go, fmt, cl)[0]
        tg = torch.from_numpy(to_ncdhw(go_arr, fmt))
        tr = t.detach().requires_grad_()
        F.adaptive_avg_pool3d(tr, size).backward(tg)
        got = ops.avg_backward(go_arr, arr.shape, data_format=df)
        assert_same_bits(to_ncdhw(got, fmt), tr.grad.numpy(), "avg backward " + msg)
        tr = t.detach().requires_grad_()
        F.adaptive_max_pool3d(tr, size).backward(tg)
        got = ops.max_backward(go_arr, got_idx, arr.shape, data_format=df)
        assert_same_bits(to_ncdhw(got, fmt), tr.grad.numpy(), "max backward " + msg)


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_payloads_and_signs_match_torch(ops, dtype):
    # Windows made only of NaNs with distinct payloads: which one (and which
    # sign) each output keeps.
    bits = _BITS[np.dtype(dtype)]
    x = np.full((1, 9, 5, 2, 3), np.nan, dtype)
    v = x.view(bits)
    v |= np.arange(v.size, dtype=bits).reshape(v.shape) % 7 + 1
    v[:, ::2] |= bits(1) << bits(8 * x.itemsize - 1)
    for cl in (False, True):
        t = torch_input(x, cl)
        arr = case_input(x, "NCDHW", cl)[0]
        for size in ((2, 1, 2), (3, 2, 1), (1, 1, 1)):
            assert_same_mean(ops.avg(arr, size), F.adaptive_avg_pool3d(t, size).numpy(), f"{size} {cl}")
            r, i = F.adaptive_max_pool3d(t, size, return_indices=True)
            got, idx = ops.max(arr, size, True)
            assert_same_bits(got, r.numpy())
            assert_same_bits(idx, i.numpy())


@needs_torch
def test_mean_1x1x1_channels_last_matches_torch(ops):
    rng = np.random.default_rng(7)
    for dtype in DTYPES:
        for shape in ((2, 40, 3, 5, 7), (1, 5, 9, 9, 9), (3, 1, 2, 17, 3), (2, 70, 1, 1, 33)):
            x = adversarial(rng, shape, dtype, "normal")
            for cl in (False, True):
                t = torch_input(x, cl)
                arr = case_input(x, "NCDHW", cl)[0]
                assert_same_bits(ops.avg(arr, 1), F.adaptive_avg_pool3d(t, 1).numpy(), f"{shape} {cl}")
                go = adversarial(rng, (shape[0], shape[1], 1, 1, 1), dtype, "normal")
                tr = t.clone().requires_grad_()
                F.adaptive_avg_pool3d(tr, 1).backward(torch_input(go, cl))
                got = ops.avg_backward(case_input(go, "NCDHW", cl)[0], shape)
                assert_same_bits(got, tr.grad.numpy())


@needs_torch
@pytest.mark.parametrize("size", [(0, 2, 2), (2, 0, 3), (0, 0, 0)])
def test_empty_outputs_and_batch(ops, size):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5, 6)).astype(np.float32)
    t = torch.from_numpy(x)
    assert_same_bits(ops.avg(x, size), F.adaptive_avg_pool3d(t, size).numpy())
    got, idx = ops.max(x, size, True)
    assert got.shape == idx.shape == tuple(F.adaptive_max_pool3d(t, size).shape)
    g = ops.avg_backward(np.zeros(got.shape, np.float32), x.shape)
    assert g.shape == x.shape and not g.any()
    empty = x[:0]
    assert ops.avg(empty, (2, 3, 1)).shape == (0, 3, 2, 3, 1)
    assert ops.max(empty, 2, True)[1].shape == (0, 3, 2, 2, 2)
    assert ops.avg_backward(np.zeros((0, 3, 2, 2, 2), np.float32), empty.shape).shape == empty.shape


# ------------------------------------------------------------------ oracles (no torch needed)
def _window(o, out_len, size):
    return (o * size) // out_len, -(-((o + 1) * size) // out_len)


def loop_adaptive3d(x, size, is_max):
    """torch's 3-D loops, one output at a time: NCDHW ``x``, outputs not 1x1x1."""
    N, C, D, H, W = x.shape
    OD, OH, OW = size
    out = np.zeros((N, C, OD, OH, OW), x.dtype)
    idx = np.zeros(out.shape, np.int64)
    for n, c, od, oh, ow in np.ndindex(*out.shape):
        (d0, d1), (h0, h1), (w0, w1) = _window(od, OD, D), _window(oh, OH, H), _window(ow, OW, W)
        best, at, total = -np.inf, (d0 * H + h0) * W + w0, x.dtype.type(0)
        for d in range(d0, d1):
            for h in range(h0, h1):
                for w in range(w0, w1):
                    v = x[n, c, d, h, w]
                    if v > best or v != v:
                        best, at = v, (d * H + h) * W + w
                    total = x.dtype.type(total + v)
        if is_max:
            out[n, c, od, oh, ow], idx[n, c, od, oh, ow] = best, at
        else:
            k = [x.dtype.type(v) for v in (d1 - d0, h1 - h0, w1 - w0)]
            out[n, c, od, oh, ow] = total / k[0] / k[1] / k[2]
    return out, idx


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cl", [False, True])
def test_matches_loop_oracle(ops, dtype, cl):
    rng = np.random.default_rng(3)
    for shape, size in (((2, 9, 5, 4, 6), (3, 2, 4)), ((1, 3, 3, 7, 2), (2, 5, 3)), ((1, 17, 4, 4, 4), (8, 1, 3))):
        x = adversarial(rng, shape, dtype, "ties")
        arr = case_input(x, "NCDHW", cl)[0]
        avg, _ = loop_adaptive3d(x, size, False)
        mx, idx = loop_adaptive3d(x, size, True)
        assert_same_bits(ops.avg(arr, size), avg)
        got, got_idx = ops.max(arr, size, True)
        assert_same_bits(got, mx)
        assert_same_bits(got_idx, idx)


def test_backends_agree_on_large_windows(compiled):
    rng = np.random.default_rng(11)
    fast, slow = bind_adaptive3d(COMPILED), cpool.slow
    for dtype in (np.float32, np.float64):
        x = adversarial(rng, (2, 12, 9, 20, 21), dtype, "specials")
        for cl in (False, True):
            arr = case_input(x, "NCDHW", cl)[0]
            for size in ((2, 3, 4), (4, 7, 7), (9, 1, 21)):
                assert_same_bits(fast[0](arr, size), slow.adaptive_avg_pool3d(arr, size))
                assert_same_bits(fast[2](arr, size, True)[1], slow.adaptive_max_pool3d(arr, size, True)[1])
                go = adversarial(rng, (2, 12) + size, dtype, "specials")
                go = case_input(go, "NCDHW", cl)[0]
                assert_same_bits(fast[1](go, arr.shape), slow.adaptive_avg_pool3d_backward(go, arr.shape))


def test_results_do_not_depend_on_threads(compiled):
    # large enough for the compiled kernels to split the work
    rng = np.random.default_rng(12)
    fast = bind_adaptive3d(COMPILED)
    x = adversarial(rng, (2, 9, 12, 100, 60), np.float32, "specials")
    before = cpool.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            cpool.set_num_threads(n)
            runs = []
            for cl in (False, True):
                arr = case_input(x, "NCDHW", cl)[0]
                avg = fast[0](arr, (5, 7, 9))
                runs += [avg, *fast[2](arr, (5, 7, 9), True), fast[1](avg, arr.shape)]
            results.append(runs)
    finally:
        cpool.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert_same_bits(a, b)


# ------------------------------------------------------------------ max unpooling
UNPOOL_CASES = [((2, 3, 4, 4, 6), 2, None, 0, None), ((2, 3, 5, 4, 7), 2, None, 0, (5, 4, 7)),
                ((1, 2, 5, 5, 5), 3, 2, 1, None),
                ((2, 9, 4, 4, 4), (2, 1, 2), (2, 1, 2), 0, (2, 9, 4, 4, 4)), ((3, 6, 7, 5), 2, 1, 0, None),
                ((1, 17, 6, 4, 5), (3, 2, 2), (2, 2, 1), (1, 0, 1), (6, 4, 5))]


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt,cl", [("NCDHW", False), ("NCDHW", True), ("NDHWC", True), ("NDHWC", False)])
@pytest.mark.parametrize("shape,k,s,p,output_size", UNPOOL_CASES)
def test_unpool_matches_torch(ops, dtype, fmt, cl, shape, k, s, p, output_size):
    rng = np.random.default_rng(5)
    x = adversarial(rng, shape, dtype, "specials").astype(np.float32)
    t = torch.from_numpy(x)
    if t.ndim == 5 and cl:
        t = t.contiguous(memory_format=torch.channels_last_3d)
    v, i = F.max_pool3d(t, k, s, p, return_indices=True)
    v = v.to(getattr(torch, np.dtype(dtype).name))
    vn, inn = np.ascontiguousarray(v.numpy()), np.ascontiguousarray(i.numpy())
    if v.ndim == 5 and cl:
        v, i = v.contiguous(memory_format=torch.channels_last_3d), i.contiguous(memory_format=torch.channels_last_3d)
    ref = F.max_unpool3d(v, i, k, s, p, output_size)
    arr, df = case_input(vn, fmt, cl)
    idx = case_input(inn, fmt, cl)[0]
    got = ops.unpool(arr, idx, k, s, p, output_size, data_format=df)
    assert_same_bits(to_ncdhw(got, fmt), ref.numpy())
    go = adversarial(rng, tuple(ref.shape), dtype, "specials")
    vr = v.clone().requires_grad_()
    F.max_unpool3d(vr, i, k, s, p, output_size).backward(torch.from_numpy(go))
    got = ops.unpool_backward(case_input(go, fmt, cl)[0], idx, data_format=df)
    assert_same_bits(to_ncdhw(got, fmt), vr.grad.numpy())


@needs_torch
def test_unpool_duplicates_keep_the_later_value(ops):
    v = np.array([1.0, 2.0, 3.0, -0.0], np.float32).reshape(1, 1, 1, 1, 4)
    i = np.array([5, 5, 0, 0]).reshape(v.shape)
    ref = F.max_unpool3d(torch.from_numpy(v), torch.from_numpy(i), (1, 2, 2))
    got = ops.unpool(v, i, (1, 2, 2))
    assert_same_bits(got, ref.numpy())
    assert got.shape == (1, 1, 1, 2, 8) and got[0, 0, 0, 0, 5] == 2.0 and np.signbit(got[0, 0, 0, 0, 0])


def test_unpool_loop_oracle_and_empty(ops):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 2, 2, 3)).astype(np.float32)
    idx = rng.integers(0, 4 * 4 * 6, x.shape)
    got = ops.unpool(x, idx, 2)
    want = np.zeros((2, 3, 4, 4, 6), np.float32)
    for n, c in np.ndindex(2, 3):
        flat = want[n, c].reshape(-1)
        for j, t in enumerate(idx[n, c].reshape(-1)):
            flat[t] = x[n, c].reshape(-1)[j]
    assert_same_bits(got, want)
    g = rng.standard_normal(want.shape).astype(np.float32)
    want_g = np.take_along_axis(g.reshape(2, 3, -1), idx.reshape(2, 3, -1), 2).reshape(x.shape)
    assert_same_bits(ops.unpool_backward(g, idx), want_g)
    assert ops.unpool(x[:0], idx[:0], 2).shape == (0, 3, 4, 4, 6)
    assert ops.unpool_backward(g[:0], idx[:0]).shape == (0, 3, 2, 2, 3)


# ------------------------------------------------------------------ hostile indices
HOSTILE = {"past the volume": 64, "-1": -1, "another volume's": 64 * 3 + 5, "huge": 2**62}


@pytest.mark.parametrize("what", HOSTILE)
@pytest.mark.parametrize("cl", [False, True])
def test_unpool_hostile_indices(ops, what, cl):
    x = np.ones((2, 3, 2, 2, 2), np.float32)
    idx = np.zeros(x.shape, np.int64)
    idx[1, 2, 1, 0, 1] = HOSTILE[what]
    arr, df = case_input(x, "NDHWC" if cl else "NCDHW", True)
    ia = case_input(idx, "NDHWC" if cl else "NCDHW", True)[0]
    with pytest.raises(ValueError, match=rf"indices contains {HOSTILE[what]}, outside the unpooled volume of "
                                         rf"4x4x4=64 elements"):
        ops.unpool(arr, ia, 2, data_format=df)
    shape = (2, 4, 4, 4, 3) if cl else (2, 3, 4, 4, 4)
    out = np.full(shape, 7.0, np.float32)
    with pytest.raises(ValueError, match="outside the unpooled volume"):
        ops.unpool(arr, ia, 2, data_format=df, out=out)
    assert (out == 7.0).all()
    g = np.ones(shape, np.float32)
    out = np.full(arr.shape, 7.0, np.float32)
    with pytest.raises(ValueError, match=rf"indices contains {HOSTILE[what]}, outside the unpooled volume"):
        ops.unpool_backward(g, ia, data_format=df)
    with pytest.raises(ValueError, match="outside the unpooled volume"):
        ops.unpool_backward(g, ia, data_format=df, out=out)
    assert (out == 7.0).all()


@pytest.mark.parametrize("bad", [64, -2, 64 * 5, -(2**40)])
@pytest.mark.parametrize("cl", [False, True])
def test_adaptive_max_backward_hostile_indices(ops, bad, cl):
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 4, 4)).astype(np.float32)
    fmt = "NDHWC" if cl else "NCDHW"
    arr, _ = case_input(x, fmt, True)
    out, idx = ops.max(arr, 2, True, data_format=fmt)
    idx = idx.copy()
    idx[(1,) * idx.ndim] = bad
    go = np.ones_like(out)
    with pytest.raises(ValueError, match=rf"indices contains {bad}, outside the volume of 4x4x4=64 elements"):
        ops.max_backward(go, idx, arr.shape, data_format=fmt)
    target = np.full(arr.shape, 3.0, np.float32)
    with pytest.raises(ValueError, match="outside the volume"):
        ops.max_backward(go, idx, arr.shape, data_format=fmt, out=target)
    assert (target == 3.0).all()


def test_adaptive_max_backward_skips_minus_one(ops):
    # -1 (max pooling's "no input element") is skipped, as in max_pool2d_backward
    # (torch writes before the volume).
    idx = np.array([[[[[-1, 7]]]]])
    got = ops.max_backward(np.ones((1, 1, 1, 1, 2), np.float32), idx, (1, 1, 2, 2, 2))
    assert got.reshape(-1).tolist() == [0, 0, 0, 0, 0, 0, 0, 1]


# ------------------------------------------------------------------ out=
@pytest.mark.parametrize("cl", [False, True])
def test_out(ops, cl):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 9, 5, 6, 7)).astype(np.float32)
    arr = case_input(x, "NCDHW", cl)[0]
    want = ops.avg(arr, (2, 3, 4))
    out = np.empty_like(want) if not cl else case_input(np.empty(want.shape, np.float32), "NCDHW", True)[0]
    assert ops.avg(arr, (2, 3, 4), out=out) is out
    assert_same_bits(out, want)
    plain = np.empty(want.shape, np.float32)  # another memory layout: filled by a copy
    ops.avg(arr, (2, 3, 4), out=plain)
    assert_same_bits(plain, want)
    values, idx = ops.max(arr, (2, 3, 4), True)
    ov, oi = np.empty_like(values), np.empty_like(idx)
    assert ops.max(arr, (2, 3, 4), True, out=(ov, oi)) == (ov, oi)
    assert_same_bits(ov, values)
    assert_same_bits(oi, idx)
    g = np.empty(x.shape, np.float32)
    assert ops.avg_backward(want, x.shape, out=g) is g
    assert_same_bits(g, ops.avg_backward(want, x.shape))
    assert ops.max_backward(values, idx, x.shape, out=g) is g
    assert_same_bits(g, ops.max_backward(values, idx, x.shape))
    bad = np.full(want.shape, 5.0, np.float64)
    with pytest.raises(TypeError, match="out must have dtype float32"):
        ops.avg(arr, (2, 3, 4), out=bad)
    with pytest.raises(ValueError, match="out must have shape"):
        ops.avg(arr, (2, 3, 3), out=np.empty(want.shape, np.float32))
    with pytest.raises(ValueError, match="out must not share memory with input"):
        ops.avg(x, (5, 6, 7), out=x)
    v, i = np.ones((1, 1, 1, 1, 1), np.float32), np.array([[[[[3]]]]])
    o = np.full((1, 1, 2, 2, 2), 4.0, np.float32)
    assert ops.unpool(v, i, 2, out=o) is o
    assert o.reshape(-1).tolist() == [0, 0, 0, 1, 0, 0, 0, 0]
    gi = np.empty((1, 1, 1, 1, 1), np.float32)
    assert ops.unpool_backward(np.arange(8, dtype=np.float32).reshape(1, 1, 2, 2, 2), i, out=gi) is gi
    assert gi.item() == 3.0


# ------------------------------------------------------------------ modules
@needs_torch
def test_modules_match_torch(backend):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 5, 6, 7)).astype(np.float32)
    t = torch.from_numpy(x).requires_grad_()
    layer = cpool.AdaptiveAvgPool3d((2, None, 3), backend=backend.name)
    assert repr(layer) == "AdaptiveAvgPool3d(output_size=(2, None, 3))"
    tl = torch.nn.AdaptiveAvgPool3d((2, None, 3))
    r = tl(t)
    assert_same_bits(layer.forward(x), r.detach().numpy())
    g = rng.standard_normal(r.shape).astype(np.float32)
    r.backward(torch.from_numpy(g))
    assert_same_bits(layer.backward(x, g), t.grad.numpy())

    t.grad = None
    layer = cpool.AdaptiveMaxPool3d(3, return_indices=True, backend=backend.name)
    r, ri = torch.nn.AdaptiveMaxPool3d(3, return_indices=True)(t)
    out, idx = layer.forward(x)
    assert_same_bits(out, r.detach().numpy())
    assert_same_bits(idx, ri.numpy())
    g = rng.standard_normal(r.shape).astype(np.float32)
    r.backward(torch.from_numpy(g))
    assert_same_bits(layer.backward(x, g), t.grad.numpy())

    v, i = F.max_pool3d(torch.from_numpy(x), 2, return_indices=True)
    unpool = cpool.MaxUnpool3d(2, backend=backend.name)
    assert repr(unpool) == repr(torch.nn.MaxUnpool3d(2)).replace("MaxUnpool3d(", "MaxUnpool3d(", 1)
    ref = torch.nn.MaxUnpool3d(2)(v, i, output_size=x.shape[-3:])
    assert_same_bits(unpool.forward(v.numpy(), i.numpy(), x.shape[-3:]), ref.numpy())
    g = rng.standard_normal(ref.shape).astype(np.float32)
    assert_same_bits(unpool.backward(v.numpy(), g),
                     np.take_along_axis(g.reshape(2, 3, -1), i.numpy().reshape(2, 3, -1), 2).reshape(v.shape))


def test_modules_checks(backend):
    with pytest.raises(ValueError, match="output_size must be an int or a tuple of three ints or Nones"):
        cpool.AdaptiveAvgPool3d((1, 2))
    with pytest.raises(ValueError, match='data_format must be "NCDHW" or "NDHWC"'):
        cpool.AdaptiveMaxPool3d(2, data_format="NCHW")
    with pytest.raises(ValueError, match="stride must be positive"):
        cpool.MaxUnpool3d(2, 0)
    layer = cpool.AdaptiveMaxPool3d(2, backend=backend.name)
    with pytest.raises(cpool.BackwardBeforeForwardError):
        layer.backward(np.ones((1, 1, 2, 2, 2), np.float32), np.ones((1, 1, 2, 2, 2), np.float32))
    with pytest.raises(cpool.BackwardBeforeForwardError):
        cpool.MaxUnpool3d(2, backend=backend.name).backward(None, np.ones((1, 1, 2, 2, 2), np.float32))
    x = np.ones((1, 2, 4, 4, 4), np.float32)
    layer = cpool.AdaptiveAvgPool3d(2, data_format="NDHWC", backend=backend.name)
    assert layer.forward(x.transpose(0, 2, 3, 4, 1)).shape == (1, 2, 2, 2, 2)
    assert repr(layer) == "AdaptiveAvgPool3d(output_size=2, data_format='NDHWC')"


def test_exports():
    for name in ("adaptive_avg_pool3d", "adaptive_avg_pool3d_backward", "adaptive_max_pool3d",
                 "adaptive_max_pool3d_backward", "max_unpool3d", "max_unpool3d_backward",
                 "AdaptiveAvgPool3d", "AdaptiveMaxPool3d", "MaxUnpool3d"):
        assert name in cpool.__all__ and hasattr(cpool, name)
    for name in ("adaptive_avg_pool3d", "adaptive_max_pool3d_backward", "max_unpool3d", "max_unpool3d_backward"):
        assert getattr(cpool.slow, name).__module__ == "cpool.slow"
