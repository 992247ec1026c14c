"""Unaligned arrays of every input kind: the kernels never see them.

An array that starts at an odd address (``np.frombuffer(buf, offset=1)``)
is a valid NumPy array, but the kernels' loads assume element alignment
(undefined behaviour otherwise, and a fault on some CPUs). Each kind of
array a call takes (input, grad_output, indices, out=) is given unaligned
here; the result must equal the reference's, the argument must be left
as it was, and every array handed to a compiled kernel must be aligned,
C-contiguous and native (checked by wrapping the kernel entry points).
Under ``make asan`` / ``make ubsan`` the same tests run on sanitizer builds.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from helpers import unaligned_copy

import cpool
from cpool import _backend

HAS_OUT = "out" in inspect.signature(cpool.max_pool2d).parameters
HAS_BACKWARD_OUT = "out" in inspect.signature(cpool.max_pool2d_backward).parameters
HAS_FORMAT = "data_format" in inspect.signature(cpool.max_pool2d).parameters
FORMATS = ["NCHW", "NHWC"] if HAS_FORMAT else ["NCHW"]

FLOATS = [np.float32, np.float64, np.float16]
OFFSETS = [1, 3]


def _fmt(data_format):
    return {"data_format": data_format} if HAS_FORMAT else {}


def _unaligned(x, offset):
    view = unaligned_copy(x, offset)
    if np.dtype(x.dtype).itemsize > 1:
        assert not view.flags.aligned
    assert np.array_equal(view, x, equal_nan=x.dtype.kind == "f")
    return view


def _same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.fixture
def kernels_see_aligned(monkeypatch):
    """Wrap the compiled backend's kernel entry points: every ndarray they
    get must be aligned, C-contiguous and in native byte order. Yields the
    list of arrays checked (empty when the call never reached a kernel)."""
    compiled = _backend.compiled()
    if compiled is None or cpool.backend != "cython":
        yield None
        return
    active = getattr(compiled, "_ACTIVE", None)
    if active is None or not isinstance(getattr(active, "forward", None), dict):
        pytest.skip("cpool._compiled has no _ACTIVE.forward/backward tables to wrap")
    seen = []

    def wrap(fn):
        def checked(*args, **kwargs):
            for a in list(args) + list(kwargs.values()):
                if isinstance(a, np.ndarray):
                    assert a.flags.aligned, "an unaligned array reached a kernel"
                    assert a.flags.c_contiguous, "a non-contiguous array reached a kernel"
                    assert a.dtype.isnative, "a byte-swapped array reached a kernel"
                    seen.append(a)
            return fn(*args, **kwargs)
        return checked

    monkeypatch.setattr(active, "forward", {k: wrap(v) for k, v in active.forward.items()})
    monkeypatch.setattr(active, "backward", {k: wrap(v) for k, v in active.backward.items()})
    yield seen


def _input(dtype, data_format, shape=(2, 3, 9, 10)):
    x = np.random.default_rng(5).standard_normal(shape) * 10
    x = x.astype(dtype)
    if x.dtype.kind == "f":
        x.reshape(-1)[::7] = np.nan
        x.reshape(-1)[3::11] = -0.0
    if data_format == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    return x


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", FLOATS + [np.int16, np.int32, np.int64])
@pytest.mark.parametrize("with_indices", [False, True])
def test_unaligned_input(kernels_see_aligned, dtype, data_format, offset, with_indices):
    x = _input(dtype, data_format)
    ux = _unaligned(x, offset)
    before = ux.tobytes()
    got = cpool.max_pool2d(ux, 3, 2, 1, return_indices=with_indices, **_fmt(data_format))
    want = cpool.slow.max_pool2d(x, 3, 2, 1, return_indices=with_indices, **_fmt(data_format))
    for g, w in zip(got if with_indices else (got,), want if with_indices else (want,)):
        assert _same(g, w)
    assert ux.tobytes() == before
    if kernels_see_aligned is not None and dtype in (np.float32, np.float64, np.float16):
        assert kernels_see_aligned, "the call did not reach a compiled kernel"


def _backward_case(dtype, data_format):
    x = _input(np.float32, data_format)
    out, idx = cpool.slow.max_pool2d(x, 2, return_indices=True, **_fmt(data_format))
    grad = (np.arange(out.size).reshape(out.shape) % 5 - 2).astype(dtype)
    return x.shape, grad, idx


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_unaligned_grad_output(kernels_see_aligned, dtype, data_format, offset):
    shape, grad, idx = _backward_case(dtype, data_format)
    ugrad = _unaligned(grad, offset)
    got = cpool.max_pool2d_backward(ugrad, idx, shape, **_fmt(data_format))
    assert _same(got, cpool.slow.max_pool2d_backward(grad, idx, shape, **_fmt(data_format)))
    assert ugrad.tobytes() == grad.tobytes()
    if kernels_see_aligned is not None and dtype is not np.float16:
        assert kernels_see_aligned


@pytest.mark.parametrize("offset", [1, 4])
@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("swapped", [False, True])
def test_unaligned_indices(kernels_see_aligned, data_format, offset, swapped):
    shape, grad, idx = _backward_case(np.float32, data_format)
    uidx = _unaligned(idx.astype(">i8") if swapped else idx, offset)
    before = uidx.tobytes()
    got = cpool.max_pool2d_backward(grad, uidx, shape, **_fmt(data_format))
    assert _same(got, cpool.slow.max_pool2d_backward(grad, idx, shape, **_fmt(data_format)))
    assert uidx.tobytes() == before
    # and a hostile value in an unaligned array is found, not read past
    bad = idx.copy()
    bad.reshape(-1)[-1] = 2**40
    with pytest.raises(ValueError, match="indices contains 1099511627776"):
        cpool.max_pool2d_backward(grad, _unaligned(bad, offset), shape, **_fmt(data_format))
    if kernels_see_aligned is not None:
        assert kernels_see_aligned


@pytest.mark.parametrize("offset", [1, 2])
def test_unaligned_int32_indices_of_the_layer(kernels_see_aligned, offset):
    # MaxPool2d's own index format is int32; an unaligned int32 array set as
    # its indices is copied before its backward reads it.
    x = _input(np.float32, "NCHW")
    pool = cpool.MaxPool2d(2)
    ref = cpool.MaxPool2d(2, backend="numpy")
    out = pool.forward(x)
    ref.forward(x)
    idx32 = ref.indices.astype(np.int32)
    pool.indices = _unaligned(idx32, offset)
    ref.indices = idx32
    grad = np.ones_like(out)
    assert _same(pool.backward(x, grad), ref.backward(x, grad))


@pytest.mark.skipif(not HAS_OUT, reason="max_pool2d has no out= here")
@pytest.mark.parametrize("offset", [1, 3])
@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("which", ["values", "indices", "both"])
def test_unaligned_forward_out(kernels_see_aligned, dtype, data_format, offset, which):
    x = _input(dtype, data_format)
    want_v, want_i = cpool.slow.max_pool2d(x, 3, 2, 1, return_indices=True, **_fmt(data_format))
    v = np.full_like(want_v, 7)
    i = np.full_like(want_i, 7)
    if which in ("values", "both"):
        v = _unaligned(v, offset)
    if which in ("indices", "both"):
        i = _unaligned(i, offset)
    got = cpool.max_pool2d(x, 3, 2, 1, return_indices=True, out=(v, i), **_fmt(data_format))
    assert got[0] is v and got[1] is i
    assert np.array_equal(v, want_v, equal_nan=True) and v.tobytes() == want_v.tobytes()
    assert i.tobytes() == want_i.tobytes()
    if which == "values":  # values only, one out array
        w = _unaligned(np.zeros_like(want_v), offset)
        assert cpool.max_pool2d(x, 3, 2, 1, out=w, **_fmt(data_format)) is w
        assert w.tobytes() == want_v.tobytes()


@pytest.mark.skipif(not HAS_BACKWARD_OUT, reason="max_pool2d_backward has no out= here")
@pytest.mark.parametrize("offset", [1, 3])
@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_unaligned_backward_out(kernels_see_aligned, dtype, data_format, offset):
    shape, grad, idx = _backward_case(dtype, data_format)
    want = cpool.slow.max_pool2d_backward(grad, idx, shape, **_fmt(data_format))
    target = _unaligned(np.full(shape, 9, dtype), offset)
    assert cpool.max_pool2d_backward(grad, idx, shape, out=target, **_fmt(data_format)) is target
    assert target.tobytes() == want.tobytes()
    # on an error nothing is written to it
    bad = idx.copy()
    bad.reshape(-1)[0] = -5
    target[...] = 9
    before = target.tobytes()
    with pytest.raises(ValueError, match="indices contains -5"):
        cpool.max_pool2d_backward(grad, bad, shape, out=target, **_fmt(data_format))
    assert target.tobytes() == before
