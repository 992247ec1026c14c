"""max_unpool2d, its backward and MaxUnpool2d against PyTorch 2.13 (bit for bit).

Torch parity runs where torch is installed (on one thread: torch's CPU
kernel leaves a repeated index to whichever thread writes last, cpool
always keeps the later value, torch's one-thread result); a loop oracle
(torch's loop transcribed) checks both backends everywhere.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import COMPILED

import cpool
from cpool.functional import bind_unpool

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed (the loop oracle still runs)")
DTYPES = [np.float16, np.float32, np.float64]
WORD = {2: np.uint16, 4: np.uint32, 8: np.uint64}


@pytest.fixture(params=["compiled", "numpy"])
def unpool(request):
    """``(max_unpool2d, max_unpool2d_backward)`` of one backend."""
    if request.param == "numpy":
        return cpool.slow.max_unpool2d, cpool.slow.max_unpool2d_backward
    request.getfixturevalue("compiled")  # fails (or skips with --no-extension) without the extension
    return bind_unpool(COMPILED)


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


def channels_last(a):
    """The same (N, C, H, W) values held in (N, H, W, C) memory."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def loop_unpool(x, idx, size):
    """PyTorch's cpu_max_unpool, one element at a time, (..., C, H, W) planes."""
    lead = x.shape[:-2]
    planes, targets = x.reshape(-1, x.shape[-2] * x.shape[-1]), idx.reshape(-1, x.shape[-2] * x.shape[-1])
    out = np.zeros((planes.shape[0], size[0] * size[1]), x.dtype)
    for p in range(planes.shape[0]):
        for i in range(planes.shape[1]):
            out[p, targets[p, i]] = planes[p, i]
    return out.reshape(lead + tuple(size))


def random_case(rng):
    """A pooled (values, indices) pair, the pooling's parameters and its input's size."""
    k = int(rng.integers(1, 5))
    s = int(rng.integers(1, 4))
    p = int(rng.integers(0, k // 2 + 1))
    H, W = int(rng.integers(max(k, 2), 12)), int(rng.integers(max(k, 2), 12))
    shape = (int(rng.integers(0, 3)), int(rng.integers(1, 5)), H, W)
    x = rng.standard_normal(shape).astype(np.float32)
    x[rng.random(shape) < 0.2] = 1.0  # ties: overlapping windows pick the same element
    v, i = cpool.max_pool2d(x, k, s, p, return_indices=True)
    return v, i, (k, s, p), (H, W)


def torch_unpool(v, i, k, s, p, size, cl):
    tv, ti = torch.from_numpy(np.ascontiguousarray(v)), torch.from_numpy(np.ascontiguousarray(i))
    if cl:
        tv, ti = tv.contiguous(memory_format=torch.channels_last), ti.contiguous(memory_format=torch.channels_last)
    tv.requires_grad_()
    out = F.max_unpool2d(tv, ti, k, s, p, output_size=size)
    return tv, out


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_torch_parity(unpool, dtype):
    forward, backward = unpool
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(60):
        v, i, (k, s, p), hw = random_case(rng)
        v = v.astype(dtype)
        default = ((v.shape[2] - 1) * s - 2 * p + k, (v.shape[3] - 1) * s - 2 * p + k)
        # the pooled input's size when the rule allows it, else the default
        size = hw if all(default[d] - s < hw[d] < default[d] + s for d in range(2)) else None
        if size is None and min(default) <= 0 or (size is None and i.size and i.max() >= default[0] * default[1]):
            continue
        for layout in ("nchw", "channels_last", "nhwc", "3d"):
            if layout == "3d":
                if v.shape[0] == 0:
                    continue
                vv, ii, kw = v[0], i[0], {}
                tv, out = torch_unpool(v[:1], i[:1], k, s, p, size, False)
                want = out.detach().numpy()[0]
            elif layout == "nhwc":
                vv, ii, kw = v.transpose(0, 2, 3, 1), i.transpose(0, 2, 3, 1), {"data_format": "NHWC"}
                tv, out = torch_unpool(v, i, k, s, p, size, False)
                want = out.detach().numpy().transpose(0, 2, 3, 1)
            else:
                cl = layout == "channels_last"
                vv, ii, kw = (channels_last(v), channels_last(i), {}) if cl else (v, i, {})
                tv, out = torch_unpool(v, i, k, s, p, size, cl)
                want = out.detach().numpy()
            got = forward(vv, ii, k, s, p, size, **kw)
            assert got.shape == want.shape and got.dtype == want.dtype
            assert (bits(got) == bits(want)).all(), (layout, k, s, p, size)
            if layout == "channels_last":  # torch's rule: the output keeps the input's memory format
                assert got.transpose(0, 2, 3, 1).flags.c_contiguous
            go = rng.standard_normal(out.shape).astype(dtype)
            out.backward(torch.from_numpy(go))
            want_grad = tv.grad.numpy()
            if layout == "3d":
                go, want_grad = go[0], want_grad[0]
            elif layout == "nhwc":
                go, want_grad = go.transpose(0, 2, 3, 1), want_grad.transpose(0, 2, 3, 1)
            elif layout == "channels_last":
                go = channels_last(go)
            grad = backward(go, ii, **kw)
            assert grad.shape == want_grad.shape
            assert (bits(grad) == bits(want_grad)).all(), (layout, k, s, p, size)
            checked += 1
    assert checked > 100


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_loop_oracle(unpool, dtype):
    forward, backward = unpool
    rng = np.random.default_rng(9)
    checked = 0
    for _ in range(60):
        v, i, (k, s, p), hw = random_case(rng)
        v = v.astype(dtype)
        default = ((v.shape[2] - 1) * s - 2 * p + k, (v.shape[3] - 1) * s - 2 * p + k)
        if not all(default[d] - s < hw[d] < default[d] + s for d in range(2)):
            continue
        got = forward(v, i, k, s, p, output_size=hw)
        np.testing.assert_array_equal(bits(got), bits(loop_unpool(v, i, hw)))
        go = rng.standard_normal(got.shape).astype(dtype)
        grad = backward(go, i)
        N, C = i.shape[:2]
        want = np.take_along_axis(go.reshape(N, C, hw[0] * hw[1]), i.reshape(N, C, i.shape[2] * i.shape[3]), axis=2)
        np.testing.assert_array_equal(bits(grad), bits(want.reshape(i.shape)))
        checked += 1
    assert checked > 10


def test_repeated_index_keeps_the_later_value(unpool):
    forward, _ = unpool
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], np.float32)
    idx = np.zeros((1, 1, 2, 2), np.int64)
    idx[0, 0, 1, 1] = 3
    out = forward(x, idx, 2)
    assert out[0, 0, 0, 0] == 3.0 and out[0, 0, 0, 3] == 4.0  # index 3 of the 4x4 plane: row 0, column 3
    out = forward(channels_last(x), channels_last(idx), 2)
    assert out[0, 0, 0, 0] == 3.0


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_give_the_same_bits(threads):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 16, 30, 30)).astype(np.float32)
    v, i = cpool.max_pool2d(x, 3, 2, 1, return_indices=True)
    old = cpool.get_num_threads()
    try:
        cpool.set_num_threads(threads)
        got = cpool.max_unpool2d(v, i, 3, 2, 1, output_size=x.shape)
        grad = cpool.max_unpool2d_backward(got, i)
    finally:
        cpool.set_num_threads(old)
    assert (bits(got) == bits(cpool.slow.max_unpool2d(v, i, 3, 2, 1, output_size=x.shape))).all()
    assert (bits(grad) == bits(cpool.slow.max_unpool2d_backward(got, i))).all()


def test_out_is_filled_and_returned(unpool):
    forward, backward = unpool
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    idx = np.array([[[[0, 3], [10, 15]]]])
    out = np.full((1, 1, 4, 4), 7.0, np.float32)
    assert forward(x, idx, 2, out=out) is out
    np.testing.assert_array_equal(out, forward(x, idx, 2))
    g = np.full((1, 1, 2, 2), 9.0, np.float32)
    assert backward(out, idx, out=g) is g
    np.testing.assert_array_equal(g, x)


BAD_CALLS = [
    (dict(input=np.ones((1, 1, 2, 2), np.int32)), TypeError, "max_unpool2d does not support input.dtype=int32"),
    (dict(indices=np.zeros((1, 1, 2, 2), np.int32)), TypeError, "indices must be an int64 array"),
    (dict(indices=np.zeros((1, 1, 2, 1), np.int64)), ValueError, "indices and input must have the same shape"),
    (dict(input=np.ones((2, 2), np.float32)), ValueError, "input must be a 3-D"),
    (dict(indices=np.full((1, 1, 2, 2), 16)), ValueError, "indices contains 16, outside the unpooled plane of 4x4"),
    (dict(indices=np.full((1, 1, 2, 2), -1)), ValueError, "indices contains -1"),
    (dict(output_size=(6, 6)), ValueError, "output_size must be strictly between 2 and 6 in dimension 0"),
    (dict(output_size=(4,)), ValueError, "output_size must have 2 or 4 elements"),
    (dict(output_size=4), TypeError, "output_size must be None or a sequence of ints"),
    (dict(output_size=(4.0, 4)), TypeError, "output_size must be None or a sequence of ints"),
    (dict(kernel_size=0), ValueError, "kernel_size must be positive"),
    (dict(kernel_size="2"), TypeError, "kernel_size must be an int or a tuple of two ints"),
    (dict(stride=0), ValueError, "stride must be positive"),
    (dict(padding=-1), ValueError, "padding must be non-negative"),
    (dict(padding=2), ValueError, "the unpooled output must have a positive height and width"),
    (dict(data_format="NWHC"), ValueError, "data_format"),
]


@pytest.mark.parametrize("kwargs, exc, match", BAD_CALLS, ids=lambda v: v if isinstance(v, str) else None)
def test_bad_calls_raise_before_writing(unpool, kwargs, exc, match):
    forward, _ = unpool
    args = dict(input=np.ones((1, 1, 2, 2), np.float32), indices=np.zeros((1, 1, 2, 2), np.int64),
                kernel_size=2, stride=None, padding=0, output_size=None)
    args.update({k: v for k, v in kwargs.items() if k != "data_format"})
    out = np.full((1, 1, 4, 4), 5.0, np.float32)
    extra = {"data_format": kwargs["data_format"]} if "data_format" in kwargs else {}
    with pytest.raises(exc, match=match):
        forward(args["input"], args["indices"], args["kernel_size"], args["stride"], args["padding"],
                args["output_size"], out=out, **extra)
    assert (out == 5.0).all()


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(indices=np.full((1, 1, 2, 2), 4)), ValueError, "indices contains 4, outside the unpooled plane of 2x2"),
    (dict(indices=np.zeros((1, 2, 2, 2), np.int64)), ValueError, "batch and channel dimensions"),
    (dict(indices=np.zeros((1, 1, 2, 2), np.float64)), TypeError, "indices must be an int64 array"),
    (dict(grad_output=np.ones((1, 1, 2, 2), np.int64)), TypeError, "max_unpool2d_backward does not support"),
])
def test_bad_backward_calls(unpool, kwargs, exc, match):
    _, backward = unpool
    args = dict(grad_output=np.ones((1, 1, 2, 2), np.float32), indices=np.zeros((1, 1, 2, 2), np.int64))
    args.update(kwargs)
    out = np.full((1, 1, 2, 2), 5.0, np.float32)
    with pytest.raises(exc, match=match):
        backward(args["grad_output"], args["indices"], out=out)
    assert (out == 5.0).all()


def test_out_sharing_memory_with_input_is_refused(unpool):
    forward, _ = unpool
    buf = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="out must not share memory with input"):
        forward(buf[:, :, :2, :2], np.zeros((1, 1, 2, 2), np.int64), 2, out=buf)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_module_with_its_pooling_layer(backend):
    if backend == "cython" and COMPILED is None:
        pytest.skip("no compiled extension")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 9)).astype(np.float32)
    pool = cpool.MaxPool2d(2, backend=backend)
    unpool = cpool.MaxUnpool2d(2, pool=pool, backend=backend)
    with pytest.raises(cpool.BackwardBeforeForwardError):
        unpool.backward(None, np.ones((2, 3, 7, 9), np.float32))
    y = unpool(pool(x))
    assert y.shape == x.shape  # the pooling layer's input size, odd sizes included
    np.testing.assert_array_equal(y, cpool.slow.max_unpool2d(pool.output, pool.indices, 2, output_size=x.shape))
    g = unpool.backward(pool.output, x)
    np.testing.assert_array_equal(g, cpool.slow.max_unpool2d_backward(x, pool.indices))
    explicit = cpool.MaxUnpool2d(2, backend=backend)
    with pytest.raises(ValueError, match="indices must be given"):
        explicit.forward(pool.output)
    np.testing.assert_array_equal(explicit.forward(pool.output, pool.indices, x.shape), y)
    with pytest.raises(TypeError, match="pool must be None or a cpool.MaxPool2d"):
        cpool.MaxUnpool2d(2, pool="pool")


@needs_torch
@pytest.mark.parametrize("args", [(2,), (3, 2, 1), ((2, 3), (1, 2), (1, 0))])
def test_module_repr_is_torchs(args):
    assert repr(cpool.MaxUnpool2d(*args)) == repr(torch.nn.MaxUnpool2d(*args))


@pytest.mark.parametrize("hostile", [-1, 16, 2**31, 2**62, -(2**63)])
@pytest.mark.parametrize("memory", ["nchw", "channels_last"])
def test_hostile_index_without_out(unpool, hostile, memory):
    # No out=: the compiled kernel skips and counts the index as it goes, then the call raises.
    forward, backward = unpool
    x = np.ones((2, 3, 2, 2), np.float32)
    idx = np.tile(np.array([0, 5, 10, 15]).reshape(2, 2), (2, 3, 1, 1)).astype(np.int64)
    idx[1, 2, 1, 0] = hostile
    go = np.ones((2, 3, 4, 4), np.float32)
    if memory == "channels_last":
        x, idx, go = channels_last(x), channels_last(idx), channels_last(go)
    with pytest.raises(ValueError, match=f"indices contains {hostile}, outside the unpooled plane of 4x4"):
        forward(x, idx, 2)
    with pytest.raises(ValueError, match=f"indices contains {hostile}, outside the unpooled plane of 4x4"):
        backward(go, idx)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=2**31 - 1), dict(kernel_size=2, stride=2**31 - 1)])
def test_output_too_large_for_an_array(unpool, kwargs):
    # Both backends refuse before any work (the NumPy one would otherwise overflow its int64 offsets).
    forward, _ = unpool
    x = np.ones((2, 3, 2, 2), np.float32)
    idx = np.zeros((2, 3, 2, 2), np.int64)
    with pytest.raises(ValueError, match=r"the unpooled output would have 6 planes of \d+x\d+ elements, too large"):
        forward(x, idx, **kwargs)


def test_empty_batch_and_empty_planes(unpool):
    forward, backward = unpool
    x = np.broadcast_to(np.ones((1, 1, 1, 1), np.float32), (0, 2, 1, 14))  # zero strides, no element
    idx = np.zeros((0, 2, 1, 14), np.int64)
    out = forward(x, idx, (1, 2), (1, 3), 0)
    assert out.shape == (0, 2, 1, 41)
    assert backward(out, idx).shape == (0, 2, 1, 14)
    # as PyTorch: only the batch may be empty
    with pytest.raises(ValueError, match=r"non-zero channel, height and width .*input.shape=\(0, 0, 14\)"):
        forward(np.zeros((0, 0, 14), np.float32), np.zeros((0, 0, 14), np.int64), 2)
