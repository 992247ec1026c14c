"""3-D average pooling: ``avg_pool3d`` / ``avg_pool3d_backward`` and ``AvgPool3d``.

* Torch parity bit for bit on random configurations (kernel, stride,
  padding, ``ceil_mode``, ``count_include_pad``, ``divisor_override``) with
  adversarial values (NaN with payloads, inf, -0.0, large magnitudes), every
  dtype torch's CPU kernel takes (float32, float64, int64), both memory
  layouts (torch ``channels_last_3d`` tensors), both data formats, 4-D
  input, forward and backward, both backends.
* torch's rules, checked without torch too: the sum order, the running
  sum's NaN (forward) and the cell's NaN (backward) kept, ``0 + mean``,
  int64 wrap-around and truncation, the divisor rules.
* Results keep the input's memory layout; ``out=``; empty batches; the
  layer; the compiled kernels on threads and every instruction set.
"""

import numpy as np
import pytest
from helpers import COMPILED, assert_same_bits

import cpool
from cpool.functional import bind_avg3d

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

DTYPES = [np.float32, np.float64, np.int64]


@pytest.fixture(params=["compiled", "numpy"])
def avg3d(request):
    """``(avg_pool3d, avg_pool3d_backward, AvgPool3d backend name)`` of one backend."""
    if request.param == "numpy":
        return cpool.slow.avg_pool3d, cpool.slow.avg_pool3d_backward, "numpy"
    request.getfixturevalue("compiled")  # fails (or skips with --no-extension) without the extension
    return (*bind_avg3d(COMPILED), "cython")


def nan_with(payload, dtype):
    a = np.array([np.nan], dtype)
    a.view(f"u{a.itemsize}")[0] |= payload
    return a[0]


def payload(v):
    v = np.asarray(v)
    return v.view(f"u{v.itemsize}") & 0xFFFFF


def adversarial(rng, dtype, shape):
    dtype = np.dtype(dtype)
    if dtype.kind == "i":
        return rng.integers(-2**62, 2**62, shape, dtype=np.int64) * rng.integers(1, 3, shape)
    x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(dtype)
    m = rng.random(shape)
    x[m < 0.04] = np.nan
    nans = np.isnan(x)
    x.view(f"u{dtype.itemsize}")[nans] |= rng.integers(1, 2**16, int(nans.sum())).astype(f"u{dtype.itemsize}")
    x[(m >= 0.04) & (m < 0.06)] = np.inf
    x[(m >= 0.06) & (m < 0.08)] = -np.inf
    x[(m >= 0.08) & (m < 0.14)] = -0.0
    x[(m >= 0.14) & (m < 0.18)] = np.finfo(dtype).max / 2
    return x


def random_params(rng):
    k = tuple(int(v) for v in rng.integers(1, 4, 3))
    params = dict(kernel_size=k, stride=tuple(int(v) for v in rng.integers(1, 4, 3)),
                  padding=tuple(int(rng.integers(0, v // 2 + 1)) for v in k),
                  ceil_mode=bool(rng.integers(2)), count_include_pad=bool(rng.integers(2)),
                  divisor_override=[None, None, int(rng.integers(1, 9)) * int(rng.choice([-1, 1]))][rng.integers(3)])
    shape = tuple(int(v) + int(rng.integers(0, 5)) for v in k)
    return params, shape


def torch_args(params):
    def triple(v):
        return [v] * 3 if isinstance(v, int) else list(v)
    stride = params["kernel_size"] if params["stride"] is None else params["stride"]
    return (triple(params["kernel_size"]), triple(stride), triple(params["padding"]), params["ceil_mode"],
            params["count_include_pad"], params["divisor_override"])


# ------------------------------------------------------------ torch parity
@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last_3d", "NDHWC", "NDHWC-planes", "unbatched"])
def test_torch_parity(avg3d, dtype, layout):
    fwd, bwd, _ = avg3d
    rng = np.random.default_rng([DTYPES.index(dtype), len(layout)])
    for _ in range(6):
        params, dhw = random_params(rng)
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 11))) + dhw
        tx = torch.from_numpy(adversarial(rng, dtype, shape))
        if layout == "channels_last_3d":
            tx = tx.contiguous(memory_format=torch.channels_last_3d)
        ty = F.avg_pool3d(tx, **params)
        tgo = torch.from_numpy(adversarial(rng, dtype, tuple(ty.shape)))
        tg = torch.ops.aten.avg_pool3d_backward(tgo, tx, *torch_args(params))
        if layout in ("contiguous", "channels_last_3d"):
            x, go, kw = tx.numpy(), tgo.numpy(), {}
            want, want_g = ty.numpy(), tg.numpy()
        elif layout == "unbatched":
            x, go, kw = tx.numpy()[0], tgo.numpy()[0], {}
            want, want_g = ty.numpy()[0], tg.numpy()[0]
        else:  # the channel axis last in the caller's shapes; its memory channels-last or planes
            move = (0, 2, 3, 4, 1)
            x = tx.numpy().transpose(move)
            go = tgo.numpy().transpose(move)
            if layout == "NDHWC":
                x, go = np.ascontiguousarray(x), np.ascontiguousarray(go)
            kw = {"data_format": "NDHWC"}
            want, want_g = ty.numpy().transpose(move), tg.numpy().transpose(move)
        got = fwd(x, **params, **kw)
        assert_same_bits(got, want, params)
        got_g = bwd(go, x.shape, **params, **kw)
        assert_same_bits(got_g, want_g, params)
        # results keep the memory layout of the array they come from
        assert_same_layout(got, x, layout.startswith("NDHWC"))
        assert_same_layout(got_g, go, layout.startswith("NDHWC"))


def assert_same_layout(result, source, ndhwc):
    if result.ndim == 4:
        return
    moved = (0, 4, 1, 2, 3) if ndhwc else (0, 2, 3, 4, 1)
    if source.flags.c_contiguous:
        assert result.flags.c_contiguous
    elif source.transpose(moved).flags.c_contiguous:
        assert result.transpose(moved).flags.c_contiguous


@needs_torch
def test_torch_parity_overlapping_windows_large_volume(avg3d):
    # windows overlapping along every axis on a volume wide enough for the
    # vector paths, with NaN payloads meeting in sums and in gradient cells
    fwd, bwd, _ = avg3d
    rng = np.random.default_rng(5)
    for cl in (False, True):
        tx = torch.from_numpy(adversarial(rng, np.float32, (2, 9, 7, 12, 37)))
        if cl:
            tx = tx.contiguous(memory_format=torch.channels_last_3d)
        for params in (dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(2, 3, 3), stride=1),
                       dict(kernel_size=(3, 2, 3), stride=(1, 2, 2), padding=(1, 0, 1), ceil_mode=True,
                            count_include_pad=False)):
            full = dict(stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None)
            full.update(params)
            ty = F.avg_pool3d(tx, **full)
            assert_same_bits(fwd(tx.numpy(), **full), ty.numpy(), (cl, params))
            # gradients with NaNs (the explicit rule) and without (the plain sweeps)
            for go in (adversarial(rng, np.float32, tuple(ty.shape)),
                       (rng.standard_normal(tuple(ty.shape)) * 1e3).astype(np.float32)):
                tgo = torch.from_numpy(go)
                if cl:
                    tgo = tgo.contiguous(memory_format=torch.channels_last_3d)
                tg = torch.ops.aten.avg_pool3d_backward(tgo, tx, *torch_args(full))
                assert_same_bits(bwd(tgo.numpy(), tx.shape, **full), tg.numpy(), (cl, params))


@needs_torch
def test_torch_refuses_what_cpool_refuses():
    x = torch.zeros(1, 1, 4, 4, 4)
    for dtype in (torch.float16, torch.int32):
        with pytest.raises(RuntimeError):
            F.avg_pool3d(x.to(dtype), 2)
        with pytest.raises(TypeError):
            cpool.avg_pool3d(x.to(dtype).numpy(), 2)
    with pytest.raises(RuntimeError, match="smaller than kernel size"):
        F.avg_pool3d(x[:, :, :1], 2, 1, 1)
    with pytest.raises(ValueError, match="at least as large as kernel_size"):
        cpool.avg_pool3d(x[:, :, :1].numpy(), 2, 1, 1)
    with pytest.raises(RuntimeError, match="divisor must be not zero"):
        F.avg_pool3d(x, 2, divisor_override=0)


# ------------------------------------------------------------ torch's rules, without torch
def test_sum_order_and_divisors(avg3d):
    # the sum runs from 0 in (depth, row, column) order in the dtype: with
    # 1e8, 1, -1e8 (float32) the 1 is lost only in that order
    fwd, _, _ = avg3d
    x = np.zeros((1, 1, 2, 2, 2), np.float32)
    x[0, 0, 0, 0, 0], x[0, 0, 0, 0, 1], x[0, 0, 1, 1, 1] = 1e8, 1.0, -1e8
    assert fwd(x, 2, divisor_override=1)[0, 0, 0, 0, 0] == 0.0
    x[0, 0, 0, 0, 1], x[0, 0, 1, 1, 1] = -1e8, 1.0
    assert fwd(x, 2, divisor_override=1)[0, 0, 0, 0, 0] == 1.0
    # divisors: with padding (count_include_pad), never the ceil-mode overhang
    ones = np.ones((1, 1, 3, 3, 3), np.float64)
    got = fwd(ones, 2, 2, 1, ceil_mode=True)
    assert got.shape == (1, 1, 2, 2, 2)
    assert got[0, 0, 0, 0, 0] == 1 / 8 and got[0, 0, 1, 1, 1] == 1.0
    assert (fwd(ones, 2, 2, 1, ceil_mode=True, count_include_pad=False) == 1.0).all()
    assert (fwd(ones, 2, 2, 1, divisor_override=-2) == -0.5 * fwd(ones, 2, 2, 1, divisor_override=1)).all()


@pytest.mark.parametrize("channels_last", [False, True])
def test_nan_rules_and_zero_sign(avg3d, channels_last):
    fwd, bwd, _ = avg3d
    for dtype in (np.float32, np.float64):
        C = 11  # vector lanes and a tail
        x = np.ones((1, C, 1, 1, 3), dtype)
        x[..., 0], x[..., 1], x[..., 2] = nan_with(1, dtype), nan_with(2, dtype), -0.0
        if channels_last:
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 4, 1)).transpose(0, 4, 1, 2, 3)
        y = fwd(x, (1, 1, 2), 1)
        assert (payload(y[..., 0]) == 1).all()  # the running sum keeps the first NaN
        neg = np.full_like(x, -0.0)
        assert not np.signbit(fwd(neg, (1, 1, 2), 1)).any()  # 0 + mean: +0.0
        go = np.ones((1, C, 1, 1, 2), dtype)
        go[..., 0], go[..., 1] = nan_with(3, dtype), nan_with(4, dtype)
        if channels_last:
            go = np.ascontiguousarray(go.transpose(0, 2, 3, 4, 1)).transpose(0, 4, 1, 2, 3)
        g = bwd(go, x.shape, (1, 1, 2), 1)
        assert (payload(g[..., 1]) == 3).all()  # a NaN cell keeps its own (the older share's)
        assert (payload(g[..., 0]) == 3).all() and (payload(g[..., 2]) == 4).all()
        assert not np.signbit(bwd(np.full_like(go, -0.0), x.shape, (1, 1, 2), 1)).any()


def test_int64_wraps_and_truncates(avg3d):
    fwd, bwd, _ = avg3d
    big = np.iinfo(np.int64).max
    x = np.array([big, 1, -7, 0, 0, 0, 0, 0], np.int64).reshape(1, 1, 2, 2, 2)
    want = (big + 1 - 7 + 2**63) % 2**64 - 2**63  # the int64 sum wraps
    assert fwd(x, 2, divisor_override=1)[0, 0, 0, 0, 0] == want
    x = np.array([-7, 0, 0, 0, 0, 0, 0, 0], np.int64).reshape(1, 1, 2, 2, 2)
    assert fwd(x, 2, divisor_override=2)[0, 0, 0, 0, 0] == -3  # toward zero, not -4
    g = bwd(np.full((1, 1, 1, 1, 1), -7, np.int64), (1, 1, 2, 2, 2), 2, divisor_override=2)
    assert (g == -3).all() and g.dtype == np.int64


def loop_avg_pool3d(x, k, s, p, ceil, cip, div):
    """torch's avg_pool3d_out_frame, one output at a time ((N, C, D, H, W) float ``x``)."""
    N, C = x.shape[:2]
    size = x.shape[2:]
    outs = [(n + 2 * pp - kk + (ss - 1 if ceil else 0)) // ss + 1 for n, kk, ss, pp in zip(size, k, s, p)]
    outs = [o - 1 if ceil and (o - 1) * ss >= n + pp else o for o, n, ss, pp in zip(outs, size, s, p)]
    out = np.zeros((N, C, *outs), x.dtype)
    t = x.dtype.type
    for idx in np.ndindex(*outs):
        lo = [o * ss - pp for o, ss, pp in zip(idx, s, p)]
        hi = [min(a + kk, n + pp) for a, kk, n, pp in zip(lo, k, size, p)]
        pool = np.prod([b - a for a, b in zip(lo, hi)])
        lo = [max(a, 0) for a in lo]
        hi = [min(b, n) for b, n in zip(hi, size)]
        d = div if div is not None else (pool if cip else np.prod([b - a for a, b in zip(lo, hi)]))
        for n in range(N):
            for c in range(C):
                total = t(0)
                for i in np.ndindex(*[b - a for a, b in zip(lo, hi)]):
                    v = x[(n, c) + tuple(a + j for a, j in zip(lo, i))]
                    total = total if np.isnan(total) else t(total + v)
                out[(n, c) + idx] = t(t(0) + t(total / t(d)))
    return out


def test_loop_oracle(avg3d):
    fwd, _, _ = avg3d
    rng = np.random.default_rng(9)
    for _ in range(8):
        params, dhw = random_params(rng)
        x = adversarial(rng, np.float32, (1, 2) + dhw)
        k, s, p = params["kernel_size"], params["stride"], params["padding"]
        with np.errstate(all="ignore"):
            want = loop_avg_pool3d(x, k, s, p, params["ceil_mode"], params["count_include_pad"],
                                   params["divisor_override"])
        assert_same_bits(fwd(x, **params), want, params)


def test_gradient_sums_the_windows_shares(avg3d):
    # the gradient of the outputs' sum: each element gets 1 / divisor of every window holding it
    _, bwd, _ = avg3d
    shape = (1, 1, 5, 6, 7)
    g = bwd(np.ones((1, 1, 3, 3, 4), np.float64), shape, (3, 2, 3), (2, 2, 2), (1, 0, 1), count_include_pad=False)
    counts = np.zeros(shape)
    for od in range(3):
        for oh in range(3):
            for ow in range(4):
                d = [slice(max(o * 2 - p, 0), min(o * 2 - p + k, n)) for o, p, k, n in
                     zip((od, oh, ow), (1, 0, 1), (3, 2, 3), shape[2:])]
                counts[(0, 0, *d)] += 1 / np.prod([sl.stop - sl.start for sl in d])
    np.testing.assert_allclose(g, counts, rtol=1e-12)


# ------------------------------------------------------------ shapes, out=, layer
def test_empty_batch_and_unbatched(avg3d):
    fwd, bwd, _ = avg3d
    x = np.zeros((0, 3, 4, 4, 4), np.float32)
    assert fwd(x, 2).shape == (0, 3, 2, 2, 2)
    assert bwd(np.zeros((0, 3, 2, 2, 2), np.float32), x.shape, 2).shape == x.shape
    x4 = np.arange(2 * 4 * 4 * 4, dtype=np.float64).reshape(2, 4, 4, 4)
    assert_same_bits(fwd(x4, 2), fwd(x4[None], 2)[0])
    assert_same_bits(fwd(np.moveaxis(x4, 0, -1), 2, data_format="NDHWC"), np.moveaxis(fwd(x4, 2), 0, -1))


def test_out(avg3d):
    fwd, bwd, _ = avg3d
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 5, 6, 7)).astype(np.float32)
    out = np.full((2, 3, 2, 3, 3), 9.0, np.float32)
    assert fwd(x, 2, out=out) is out
    assert_same_bits(out, fwd(x, 2))
    # channels-last memory: an out of that memory layout is written directly
    xcl = np.ascontiguousarray(x.transpose(0, 2, 3, 4, 1)).transpose(0, 4, 1, 2, 3)
    ocl = np.empty((2, 2, 3, 3, 3), np.float32).transpose(0, 4, 1, 2, 3)
    assert fwd(xcl, 2, out=ocl) is ocl
    assert_same_bits(np.ascontiguousarray(ocl), fwd(x, 2))
    gi = np.full(x.shape, 9.0, np.float32)
    go = np.ones((2, 3, 2, 3, 3), np.float32)
    assert bwd(go, x.shape, 2, out=gi) is gi
    assert_same_bits(gi, bwd(go, x.shape, 2))
    bad = np.full((2, 3, 2, 3, 3), 9.0, np.float64)
    with pytest.raises((TypeError, ValueError)):
        fwd(x, 2, out=bad)
    assert (bad == 9.0).all()


def test_layer(avg3d):
    fwd, bwd, name = avg3d
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 6, 6))
    pool = cpool.AvgPool3d(3, 2, 1, ceil_mode=True, count_include_pad=False, backend=name)
    assert repr(pool) == "AvgPool3d(kernel_size=3, stride=2, padding=1)"
    y = pool.forward(x)
    assert_same_bits(y, fwd(x, 3, 2, 1, True, False))
    go = rng.standard_normal(y.shape)
    assert_same_bits(pool.backward(x, go), bwd(go, x.shape, 3, 2, 1, True, False))
    layer = cpool.AvgPool3d((1, 2, 2), data_format="NDHWC", backend=name)
    assert repr(layer) == "AvgPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2), padding=0, data_format='NDHWC')"
    xl = np.moveaxis(x, 1, -1)
    assert_same_bits(layer.forward(xl), np.moveaxis(fwd(x, (1, 2, 2)), 1, -1))
    with pytest.raises(ValueError, match="divisor_override"):
        cpool.AvgPool3d(2, divisor_override=0, backend=name)


def test_compiled_kernels_on_threads_and_isas_match_numpy(compiled):
    assert COMPILED._float_kernel("avg_pool3d_forward_into", np.dtype(np.float32)) is not None
    fwd, bwd = bind_avg3d(COMPILED)
    rng = np.random.default_rng(21)
    before = cpool.get_num_threads()
    cpool.set_num_threads(2)
    try:
        for isa in COMPILED.AVAILABLE_ISAS:
            with COMPILED.use_isa(isa):
                for _ in range(4):
                    params, dhw = random_params(rng)
                    dtype = (np.float32, np.float64)[int(rng.integers(2))]
                    x = adversarial(rng, dtype, (2, 9) + tuple(v + 6 for v in dhw))
                    for data_format, a in (("NCDHW", x), ("NDHWC", np.ascontiguousarray(np.moveaxis(x, 1, -1)))):
                        out = fwd(a, **params, data_format=data_format)
                        assert_same_bits(out, cpool.slow.avg_pool3d(a, **params, data_format=data_format),
                                         (isa, params))
                        for go in (adversarial(rng, dtype, out.shape), rng.standard_normal(out.shape).astype(dtype)):
                            assert_same_bits(bwd(go, a.shape, **params, data_format=data_format),
                                             cpool.slow.avg_pool3d_backward(go, a.shape, **params,
                                                                            data_format=data_format), (isa, params))
    finally:
        cpool.set_num_threads(before)


@needs_torch
@pytest.mark.skipif(COMPILED is None, reason="compiled extension not built")
@pytest.mark.parametrize("isa", () if COMPILED is None else COMPILED.AVAILABLE_ISAS)
def test_planes_blocks_match_torch(isa, threads):
    # float32 planes with 8 or more interior output columns go by the
    # 8-column blocks of avg_avx2.h (column stride 1 or 2, its kernel widths
    # 2 and 3 specialised): each window's depth slices, rows and taps in
    # order, border columns one window at a time, the last block overlapping
    # the one before, NaN windows summed again with the explicit rule.
    rng = np.random.default_rng(33)
    geometries = (dict(kernel_size=2, stride=2), dict(kernel_size=3, stride=2, padding=1),
                  dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=(2, 3, 3), stride=(1, 2, 1)),
                  dict(kernel_size=(3, 2, 5), stride=(1, 1, 2), padding=(1, 1, 2), ceil_mode=True,
                       count_include_pad=False),
                  dict(kernel_size=(1, 2, 4), stride=(2, 1, 2), divisor_override=7),
                  dict(kernel_size=(2, 1, 5), stride=1, padding=(0, 0, 2), count_include_pad=False),
                  dict(kernel_size=(2, 2, 3), stride=(2, 2, 2), padding=(1, 0, 1), ceil_mode=True))
    shapes = ((1, 3, 5, 6, 17), (2, 2, 4, 7, 24), (1, 2, 6, 5, 37), (1, 1, 3, 4, 64), (2, 3, 4, 9, 41))
    with COMPILED.use_isa(isa):
        for shape, tx, full in planes_cases(shapes, geometries, lambda shape: adversarial(rng, np.float32, shape)):
            assert_same_bits(cpool.avg_pool3d(tx.numpy(), **full), F.avg_pool3d(tx, **full).numpy(),
                             (isa, shape, full))


def planes_cases(shapes, geometries, make):
    """(shape, torch.from_numpy(make(shape)), avg_pool3d's keyword arguments: a geometry over the defaults), for
    each shape and geometry."""
    defaults = dict(stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None)
    for shape in shapes:
        tx = torch.from_numpy(make(shape))
        for params in geometries:
            yield shape, tx, {**defaults, **params}


@needs_torch
@pytest.mark.skipif(COMPILED is None, reason="compiled extension not built")
@pytest.mark.parametrize("isa", () if COMPILED is None else COMPILED.AVAILABLE_ISAS)
def test_planes_backward_stride2_rows_match_torch(isa, threads):
    # float32 planes whose gradient has no NaN take column stride 2 a share
    # row at a time in vectors of 8 shares (avg_avx2.h's
    # cpool_avg3d_share_row_s2_avx2): window columns in pairs, column 0 of
    # an odd width alone, the row's first share row stored rather than
    # added, the row itself the buffer where no window leaves it. Widths
    # 2-5 (and 1: the scalar loops), rows with and without padding or
    # overhang, tails under 8 shares; -0.0, inf and huge shares (no NaN),
    # and planes with a NaN beside them.
    rng = np.random.default_rng(34)
    geometries = (dict(kernel_size=2, stride=2), dict(kernel_size=3, stride=2, padding=1),
                  dict(kernel_size=(1, 1, 3), stride=(1, 1, 2)), dict(kernel_size=(2, 1, 4), stride=(2, 1, 2)),
                  dict(kernel_size=(1, 2, 5), stride=(1, 2, 2), padding=(0, 1, 2), ceil_mode=True),
                  dict(kernel_size=(2, 2, 2), stride=(3, 3, 2), ceil_mode=True, count_include_pad=False),
                  dict(kernel_size=(2, 2, 1), stride=2),
                  dict(kernel_size=(2, 3, 3), stride=(2, 2, 2), padding=(1, 1, 0), divisor_override=3))
    shapes = ((1, 3, 4, 5, 16), (2, 2, 3, 6, 35), (1, 2, 5, 4, 34), (1, 3, 3, 3, 64), (1, 1, 3, 3, 7))
    with COMPILED.use_isa(isa):
        for shape, tx, full in planes_cases(shapes, geometries,
                                            lambda shape: rng.standard_normal(shape).astype(np.float32)):
            out_shape = tuple(F.avg_pool3d(tx, **full).shape)
            go = adversarial(rng, np.float32, out_shape)
            go[np.isnan(go)] = -0.0
            go[:, :1] = -0.0  # a plane of -0.0 shares: 0 + -0.0 is +0.0 in every cell
            if out_shape[1] > 2:
                go[:, 2, 0, 0, 0] = np.nan  # one plane takes the scalar path
            want = torch.ops.aten.avg_pool3d_backward(torch.from_numpy(go), tx, *torch_args(full)).numpy()
            assert_same_bits(cpool.avg_pool3d_backward(go, shape, **full), want, (isa, shape, full))
