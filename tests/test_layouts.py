"""Memory layouts and data formats: channels-last memory, ``data_format="NHWC"``,
``out=`` and MaxPool2d's buffer reuse.

* Torch parity on channels-last memory: NCHW-format arrays whose memory is
  channels-last and ``data_format="NHWC"`` arrays give torch's results on
  ``channels_last`` tensors bit for bit (values, indices, gradients), on
  random geometries, small and large channel counts and every dtype, and
  the results keep the memory layout PyTorch's rule gives them.
* The two backends agree bit for bit on every layout: both formats, 3-D and
  4-D, memory contiguous in either order or in neither (views, negative
  strides), byte-swapped, unaligned and read-only arrays.
* ``out=``: results are written into the caller's arrays whatever their
  strides, the out object is returned, and every rejected ``out`` raises
  the right exception naming the argument with nothing written.
* ``data_format`` errors, and ``MaxPool2d`` with either format and its reuse
  of its buffers: never one the caller still holds.

``LAYOUT_ERROR_CASES`` are rows of the README's error table
(``tools/error_table.py``), like ``test_api_errors.ERROR_CASES``.
"""

import platform

import numpy as np
import pytest
from helpers import (
    ALL_DTYPES,
    FLOAT_DTYPES,
    NUMPY_API,
    adversarial_values,
    assert_same_bits,
    empty_windows,
    out_size,
    unaligned_copy,
)

import cpool

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")
CPYTHON = platform.python_implementation() == "CPython"


# --------------------------------------------------------------- layouts
def nhwc(x):
    """An NCHW-format array as a C-contiguous NHWC-format array of the same values."""
    return np.ascontiguousarray(np.moveaxis(x, -3, -1))


def from_nhwc(a):
    """An NHWC-format array seen in NCHW format (a view)."""
    return np.moveaxis(a, -1, -3)


def channels_last(x):
    """An NCHW-format array with the same values in channels-last memory
    (the strides of ``a.transpose(0, 3, 1, 2)`` for a C-contiguous (N, H, W, C) ``a``)."""
    return from_nhwc(nhwc(x))


def planes_memory_nhwc(x):
    """An NHWC-format view of NCHW-contiguous memory holding NCHW-format ``x``'s values."""
    return np.moveaxis(np.ascontiguousarray(x), -3, -1)


def is_channels_last(a):
    """Whether NCHW-format ``a``'s memory is channels-last (C-contiguous once the channels go last)."""
    return np.moveaxis(a, -3, -1).flags.c_contiguous


def expected_cl(a, nhwc_format=False):
    """Where the results of NCHW-format (or NHWC-format) ``a`` go by the rule: True for
    channels-last memory. An array contiguous in its own format stays in it (first), one
    contiguous the other way goes that way (natively aligned arrays only), others are copied
    into the format's own order."""
    if a.flags.c_contiguous and a.flags.aligned and a.dtype.isnative:
        return nhwc_format
    other = from_nhwc(a) if nhwc_format else np.moveaxis(a, -3, -1)
    if other.flags.c_contiguous and a.flags.aligned and a.dtype.isnative:
        return not nhwc_format
    return nhwc_format


def assert_memory(result, cl, nhwc_format=False, what=""):
    """``result`` (in the call's format) is laid out as channels-last memory (``cl``) or planes."""
    as_nchw = from_nhwc(result) if nhwc_format else result
    if cl:
        assert is_channels_last(as_nchw), (what, result.shape, result.strides)
    else:
        assert as_nchw.flags.c_contiguous, (what, result.shape, result.strides)


def same_layout(a, b):
    """Equal shapes and strides, ignoring the strides of length-1 axes (and of empty arrays)."""
    if a.shape != b.shape:
        return False
    if a.size == 0:
        return True
    return all(sa == sb for n, sa, sb in zip(a.shape, a.strides, b.strides) if n > 1)


def bits(a):
    """``a`` viewed as unsigned words (NaN payloads and -0.0 count), C order."""
    a = np.ascontiguousarray(a)
    return a.view(f"u{a.dtype.itemsize}")


def assert_bits(a, b, msg=""):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (msg, a.dtype, b.dtype, a.shape, b.shape)
    np.testing.assert_array_equal(bits(a), bits(b), err_msg=str(msg))


# ----------------------------------------------------------------- cases
CHANNELS = [1, 2, 3, 4, 5, 6, 7, 8, 16, 33, 64, 65, 129, 256, 257]


def layout_case(rng, dtype, channels=None, max_hw=11):
    """A valid random (x, params): NCHW-format values, any channel count of CHANNELS,
    kernel/stride/padding/dilation/ceil_mode drawn until the output is non-empty."""
    while True:
        C = int(rng.choice(channels or CHANNELS))
        hw_cap = max_hw if C <= 64 else 8
        H, W = (int(v) for v in rng.integers(1, hw_cap + 1, 2))
        if rng.random() < 0.25:  # k2 s2, the common case (and the backward's single-pass writer)
            k, s, p, d, ceil = (2, 2), (2, 2), (0, 0), (1, 1), bool(rng.random() < 0.3)
        else:
            kh, kw = (int(v) for v in rng.integers(1, 5, 2))
            if rng.random() < 0.5:
                kw = kh
            s = tuple(int(v) for v in rng.integers(1, 4, 2))
            d = tuple(int(v) for v in rng.integers(1, 4, 2)) if rng.random() < 0.3 else (1, 1)
            p = (int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1)))
            k, ceil = (kh, kw), bool(rng.random() < 0.4)
        OH, OW = out_size(H, k[0], s[0], p[0], d[0], ceil), out_size(W, k[1], s[1], p[1], d[1], ceil)
        if OH < 1 or OW < 1:
            continue
        N = int(rng.choice([0, 1, 1, 2, 3]))
        shape = (N, C, H, W) if rng.random() < 0.85 else (C, H, W)
        x = adversarial_values(rng, dtype, shape)
        params = dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
        return x, params


def pool_args(params):
    """(kernel, stride, padding, dilation) as lists of two ints, and ceil_mode (torch's backward wants lists)."""
    def pair(v):
        return [v, v] if isinstance(v, int) else list(v)

    return (pair(params["kernel_size"]), pair(params["stride"]), pair(params["padding"]), pair(params["dilation"]),
            params["ceil_mode"])


# ------------------------------------------------------------ live torch
def torch_channels_last(a):
    """NCHW-format array -> a torch channels_last tensor (4-D) of its values."""
    return torch.from_numpy(np.ascontiguousarray(a)).contiguous(memory_format=torch.channels_last)


def torch_pool(x, params, grad=None):
    """torch on a channels_last tensor of ``x``'s values (3-D: as a batch of one):
    (values, indices, gradient or None), NCHW-format arrays; and whether torch's output
    is channels-last."""
    x4 = x if x.ndim == 4 else x[None]
    k, s, p, d, ceil = pool_args(params)
    t = torch_channels_last(x4)
    tv, ti = F.max_pool2d(t, k, s, p, d, ceil, return_indices=True)
    cl = tv.is_contiguous(memory_format=torch.channels_last) and ti.is_contiguous(memory_format=torch.channels_last)
    tg = None
    if grad is not None:
        g4 = grad if grad.ndim == 4 else grad[None]
        tg = torch.ops.aten.max_pool2d_with_indices_backward(torch_channels_last(g4), t, k, s, p, d, ceil,
                                                             ti).numpy()
        tg = tg if x.ndim == 4 else tg[0]
    tv, ti = tv.numpy(), ti.numpy()
    if x.ndim == 3:
        tv, ti = tv[0], ti[0]
    return tv, ti, tg, cl


@needs_torch
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_channels_last_matches_torch(backend, dtype):
    torch.set_num_threads(1)
    rng = np.random.default_rng(7000 + ALL_DTYPES.index(dtype))
    floating = np.dtype(dtype).kind == "f"
    with_grad = 0
    for case in range(36):
        x, params = layout_case(rng, dtype)
        H, W = x.shape[-2:]
        k, s, p, d, _ = pool_args(params)
        g = None
        ref_out = cpool.slow.max_pool2d(x, **params)
        empty = empty_windows(H, W, ref_out.shape[-2], ref_out.shape[-1], k, s, p, d)
        if floating and not empty.any():
            g = adversarial_values(rng, dtype, ref_out.shape)
            g[~np.isfinite(g)] = 0.5
        tv, ti, tg, torch_cl = torch_pool(x, params, g)
        ti = np.where(empty, -1, ti)  # torch's index of a window without an input element is out of range
        what = (case, x.shape, x.dtype, params)
        x4 = x if x.ndim == 4 else x[None]
        if x4.shape[0] > 0:
            assert torch_cl, what

        # NCHW format, channels-last memory
        xc = channels_last(x)
        cl = expected_cl(xc)
        out, idx = backend.max_pool2d(xc, return_indices=True, **params)
        assert_bits(out, tv, what)
        np.testing.assert_array_equal(idx, ti, err_msg=str(what))
        assert idx.dtype == np.int64
        assert_memory(out, cl, what=what)
        assert_memory(idx, cl, what=what)
        if x4.shape[0] > 0 and (x.ndim == 4 or xc.shape[-3] > 1) and not xc.flags.c_contiguous:
            assert cl  # torch's output is channels-last, and so is ours
        values_only = backend.max_pool2d(xc, **params)
        assert_bits(values_only, tv, what)
        assert_memory(values_only, cl, what=what)

        # NHWC format
        xn = nhwc(x)
        out_n, idx_n = backend.max_pool2d(xn, return_indices=True, data_format="NHWC", **params)
        assert out_n.shape == nhwc(tv).shape
        assert_bits(out_n, nhwc(tv), what)
        np.testing.assert_array_equal(idx_n, nhwc(ti), err_msg=str(what))
        assert_memory(out_n, expected_cl(xn, True), True, what)
        assert_bits(backend.max_pool2d(xn, data_format="NHWC", **params), nhwc(tv), what)

        if g is None:
            continue
        with_grad += 1
        gc = channels_last(g)
        gi = backend.max_pool2d_backward(gc, idx, x.shape)
        assert_bits(gi, tg, what)
        assert_memory(gi, expected_cl(gc), what=what)
        # indices in the other memory layout are converted to grad_output's
        assert_bits(backend.max_pool2d_backward(gc, np.ascontiguousarray(idx), x.shape), tg, what)
        gi_planes = backend.max_pool2d_backward(np.ascontiguousarray(g), idx, x.shape)
        assert_bits(gi_planes, tg, what)
        assert gi_planes.flags.c_contiguous
        gi_n = backend.max_pool2d_backward(nhwc(g), idx_n, xn.shape, data_format="NHWC")
        assert_bits(gi_n, nhwc(tg), what)
        assert gi_n.flags.c_contiguous
    if floating:
        assert with_grad > 10


# Shapes of real networks (and every channel chunk of the kernels), big enough for threads.
NETWORK_CASES = [
    ((4, 64, 28, 28), (2, 2)),
    ((2, 64, 56, 56), (3, 2, 1)),
    ((2, 256, 14, 14), (2, 2)),
    ((3, 300, 9, 9), (3, 2, 1)),
    ((8, 3, 32, 32), (3, 1, 1)),
    ((2, 33, 17, 19), (2, 2, 0, 1, True)),
    ((1, 130, 13, 12), (3, 2, 1, 2)),
    ((4, 16, 27, 29), (2, 1)),
]


@needs_torch
@pytest.mark.parametrize("threads", [None, 1, 3], ids=["default", "1", "3"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_network_shapes_match_torch(backend, dtype, threads):
    # The default thread policy, and explicit counts (used as given; 3 splits the work unevenly).
    torch.set_num_threads(1)
    rng = np.random.default_rng(31)
    saved = cpool._threads._user_threads
    cpool.set_num_threads(threads)
    try:
        for shape, args in NETWORK_CASES:
            k, s, p, d, ceil = args + (None, 0, 1, False)[len(args) - 1:]
            params = dict(kernel_size=k, stride=s or k, padding=p, dilation=d, ceil_mode=ceil)
            x = rng.standard_normal(shape).astype(dtype)
            x[rng.random(shape) < 0.01] = np.nan
            x[rng.random(shape) < 0.05] = 0.5  # ties
            g = rng.standard_normal(cpool.slow.max_pool2d(x, **params).shape).astype(dtype)
            tv, ti, tg, _ = torch_pool(x, params, g)
            out, idx = backend.max_pool2d(channels_last(x), return_indices=True, **params)
            assert_bits(out, tv, shape)
            np.testing.assert_array_equal(idx, ti)
            assert is_channels_last(out) and is_channels_last(idx)
            gi = backend.max_pool2d_backward(channels_last(g), idx, shape)
            assert_bits(gi, tg, shape)
            assert is_channels_last(gi)
            out_n, idx_n = backend.max_pool2d(nhwc(x), return_indices=True, data_format="NHWC", **params)
            assert_bits(out_n, nhwc(tv), shape)
            assert_bits(backend.max_pool2d_backward(nhwc(g), idx_n, nhwc(x).shape, data_format="NHWC"), nhwc(tg))
    finally:
        cpool.set_num_threads(saved)


# ---------------------------------------------------------- differential
def format_views(x, rng):
    """(name, array, data_format) for NCHW-format ``x``: the same values in every kind of layout."""
    yield "nchw planes", np.ascontiguousarray(x), "NCHW"
    yield "nchw channels-last", channels_last(x), "NCHW"
    yield "nhwc", nhwc(x), "NHWC"
    yield "nhwc planes memory", planes_memory_nhwc(x), "NHWC"
    # contiguous in neither order
    big = np.zeros(x.shape[:-2] + (x.shape[-2], 2 * x.shape[-1]), x.dtype)
    big[..., ::2] = x
    yield "nchw strided view", big[..., ::2], "NCHW"
    cl_big = channels_last(big)
    yield "nchw channels-last strided view", cl_big[..., ::2], "NCHW"
    yield "nhwc strided view", np.moveaxis(big[..., ::2], -3, -1), "NHWC"
    yield "nhwc negative strides", nhwc(x)[..., ::-1, :, :].copy()[..., ::-1, :, :], "NHWC"
    yield "nhwc channels reversed", nhwc(x)[..., ::-1].copy()[..., ::-1], "NHWC"
    yield "nhwc fortran", np.asfortranarray(nhwc(x)), "NHWC"
    if x.dtype.itemsize > 1:
        yield "nhwc byte-swapped", nhwc(x).astype(x.dtype.newbyteorder()), "NHWC"
        yield "nchw channels-last byte-swapped", from_nhwc(nhwc(x).astype(x.dtype.newbyteorder())), "NCHW"
        if x.size:
            yield "nhwc unaligned", unaligned_copy(nhwc(x), 1), "NHWC"
            yield "nchw channels-last unaligned", from_nhwc(unaligned_copy(nhwc(x), 1)), "NCHW"
    ro = nhwc(x)
    ro.flags.writeable = False
    yield "nhwc read-only", ro, "NHWC"
    yield "nchw channels-last read-only", from_nhwc(ro), "NCHW"


def other_memory(a, data_format):
    """C-contiguous ``a`` (in ``data_format``) with the same values in the other format's memory order, or
    ``a`` laid out otherwise as a C-contiguous copy."""
    if not a.flags.c_contiguous:
        return np.ascontiguousarray(a)
    if data_format == "NCHW":
        return channels_last(a)
    return planes_memory_nhwc(from_nhwc(a))


def in_nchw(a, data_format):
    return from_nhwc(a) if data_format == "NHWC" else a


@pytest.mark.parametrize("seed", range(4))
def test_backends_agree_on_every_layout(compiled, seed):
    rng = np.random.default_rng(500 + seed)
    for case in range(12):
        dtype = ALL_DTYPES[(case + seed) % len(ALL_DTYPES)]
        x, params = layout_case(rng, dtype, max_hw=9)
        ref_out, ref_idx = NUMPY_API.max_pool2d(np.ascontiguousarray(x), return_indices=True, **params)
        g = None
        if x.dtype.kind == "f":
            g = rng.standard_normal(ref_out.shape).astype(x.dtype)
            ref_gi = NUMPY_API.max_pool2d_backward(g, ref_idx, x.shape)
        for name, view, fmt in format_views(x, rng):
            what = (case, name, x.shape, x.dtype, params)
            before = view.copy()
            cl = expected_cl(view, fmt == "NHWC")
            results = []
            for api in (compiled, NUMPY_API):
                out, idx = api.max_pool2d(view, return_indices=True, data_format=fmt, **params)
                assert out.dtype == x.dtype.newbyteorder("=") and idx.dtype == np.int64
                assert_bits(in_nchw(out, fmt), ref_out, what)
                np.testing.assert_array_equal(in_nchw(idx, fmt), ref_idx, err_msg=str(what))
                assert_memory(out, cl, fmt == "NHWC", what)
                assert_memory(idx, cl, fmt == "NHWC", what)
                assert not np.may_share_memory(out, view) and not np.may_share_memory(idx, view)
                values = api.max_pool2d(view, data_format=fmt, **params)
                assert_bits(values, out, what)
                assert same_layout(values, out), what
                results.append((out, idx))
            (co, ci), (no, ni) = results
            assert same_layout(co, no) and same_layout(ci, ni), what
            assert_same_bits(view, before, f"{name}: input was modified")
            if g is None:
                continue
            # grad_output in the same layout as the input, indices as the forward gave them
            gview = next(v for n, v, _ in format_views(g, rng) if n == name)
            gcl = expected_cl(gview, fmt == "NHWC")
            gshape = view.shape
            grads = []
            for api, idx in ((compiled, ci), (NUMPY_API, ni)):
                gi = api.max_pool2d_backward(gview, idx, gshape, data_format=fmt)
                assert_bits(in_nchw(gi, fmt), ref_gi, what)
                assert_memory(gi, gcl, fmt == "NHWC", what)
                # the indices in the other memory order: converted to grad_output's
                other = other_memory(idx, fmt)
                assert not same_layout(other, idx) or min(idx.shape[-3:]) == 1 or idx.size == 0
                assert_bits(in_nchw(api.max_pool2d_backward(gview, other, gshape, data_format=fmt), fmt), ref_gi,
                            what)
                grads.append(gi)
            assert same_layout(*grads), what


def test_three_d_inputs_both_formats(backend, rng):
    for C in (1, 3, 8, 70):
        x = adversarial_values(rng, np.float32, (C, 9, 8))
        ref_out, ref_idx = cpool.slow.max_pool2d(x, 3, 2, 1, return_indices=True)
        for name, view, fmt in format_views(x, rng):
            out, idx = backend.max_pool2d(view, 3, 2, 1, return_indices=True, data_format=fmt)
            assert out.ndim == 3
            assert_bits(in_nchw(out, fmt), ref_out, name)
            np.testing.assert_array_equal(in_nchw(idx, fmt), ref_idx)
            assert_memory(out, expected_cl(view, fmt == "NHWC"), fmt == "NHWC", name)
            g = np.ones(out.shape, np.float32)
            gi = backend.max_pool2d_backward(g, idx, view.shape, data_format=fmt)
            assert gi.shape == view.shape
            assert_bits(in_nchw(gi, fmt), cpool.slow.max_pool2d_backward(np.ones_like(ref_out), ref_idx, x.shape))


def test_empty_batch_layouts(backend):
    x = np.zeros((0, 3, 8, 8), np.float32)
    for view, fmt, shape in ((channels_last(x), "NCHW", (0, 3, 4, 4)), (nhwc(x), "NHWC", (0, 4, 4, 3)),
                             (planes_memory_nhwc(x), "NHWC", (0, 4, 4, 3))):
        out, idx = backend.max_pool2d(view, 2, return_indices=True, data_format=fmt)
        assert out.shape == idx.shape == shape
        gi = backend.max_pool2d_backward(out, idx, view.shape, data_format=fmt)
        assert gi.shape == view.shape


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int16], ids=lambda d: np.dtype(d).name)
def test_nhwc_matches_the_scalar_rules(backend, dtype):
    # Ties keep the first maximum, the last NaN wins, -0.0 vs 0.0 is a tie, per channel.
    x = np.zeros((1, 4, 4, 3), dtype)
    x[0, :, :, 0] = [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    if np.dtype(dtype).kind == "f":
        x[0, :, :, 1] = [[0, np.nan, 0, 0], [np.nan, 0, 0, 0], [0, 0, -0.0, 0.0], [0, 0, 0.0, -0.0]]
        x[0, 2:, 2:, 2] = [[-0.0, 0.0], [0.0, 0.0]]
    out, idx = backend.max_pool2d(x, 2, return_indices=True, data_format="NHWC")
    assert idx[0, 0, 0, 0] == 0 and idx[0, 1, 1, 0] == 10
    if np.dtype(dtype).kind == "f":
        assert np.isnan(out[0, 0, 0, 1]) and idx[0, 0, 0, 1] == 4  # the last NaN in row-major order
        assert idx[0, 1, 1, 1] == 10 and np.signbit(out[0, 1, 1, 1])  # -0.0 first, kept
        assert idx[0, 1, 1, 2] == 10 and np.signbit(out[0, 1, 1, 2])


def test_byte_swapped_and_unaligned_gradients(backend, rng):
    x = rng.standard_normal((2, 5, 6, 70)).astype(np.float32)
    out, idx = backend.max_pool2d(x, 2, return_indices=True, data_format="NHWC")
    g = rng.standard_normal(out.shape).astype(np.float32)
    expected = backend.max_pool2d_backward(g, idx, x.shape, data_format="NHWC")
    assert_bits(from_nhwc(expected),
                cpool.slow.max_pool2d_backward(from_nhwc(g).copy(), from_nhwc(idx).copy(), from_nhwc(x).shape))
    for gv in (g.astype(">f4"), unaligned_copy(g, 2), g[..., ::-1].copy()[..., ::-1]):
        for iv in (idx, idx.astype(">i8"), unaligned_copy(idx, 4), from_nhwc(idx).copy().transpose(0, 2, 3, 1)):
            assert_bits(backend.max_pool2d_backward(gv, iv, x.shape, data_format="NHWC"), expected)


# ---------------------------------------------------------------- out=
def fill(shape, dtype, order_cl=False, nhwc_format=False, kind="plain"):
    """An out array of ``shape`` (in the call's format) filled with a sentinel: C-contiguous ("plain"),
    in the other memory order ("other"), a strided view into a bigger array ("view") or with negative
    strides ("negative"). Returns (out, owner) where owner is the array the sentinel fills."""
    dtype = np.dtype(dtype)
    sentinel = np.array(np.nan if dtype.kind == "f" else 7, dtype)
    if kind == "plain":
        owner = np.empty(shape, dtype)
        out = owner
    elif kind == "other":  # the other format's memory order
        if nhwc_format:
            owner = np.empty(nchw_shape(shape), dtype)
            out = from_nhwc_inverse(owner)
        else:
            owner = np.empty(nhwc_shape(shape), dtype)
            out = from_nhwc(owner)
    elif kind == "view":
        owner = np.empty(tuple(2 * n + 1 for n in shape), dtype)
        out = owner[tuple(slice(1, None, 2) for _ in shape)]
    else:
        owner = np.empty(shape, dtype)
        out = owner[..., ::-1, :][..., ::-1, :][..., ::-1]
    owner[...] = sentinel
    assert out.shape == shape
    return out, owner


def nchw_shape(nhwc_shape_):
    return nhwc_shape_[:-3] + (nhwc_shape_[-1],) + nhwc_shape_[-3:-1]


def nhwc_shape(nchw_shape_):
    return nchw_shape_[:-3] + nchw_shape_[-2:] + (nchw_shape_[-3],)


def from_nhwc_inverse(a):
    """An NCHW-contiguous array seen in NHWC format."""
    return np.moveaxis(a, -3, -1)


OUT_KINDS = ["plain", "other", "view", "negative"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32, np.uint8],
                         ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("source", ["nchw", "nchw channels-last", "nhwc", "nhwc planes memory", "nhwc 3-d"])
def test_forward_out(backend, source, dtype, rng):
    x = adversarial_values(rng, dtype, (2, 5, 9, 8) if source != "nhwc 3-d" else (5, 9, 8))
    view = {"nchw": lambda: np.ascontiguousarray(x), "nchw channels-last": lambda: channels_last(x),
            "nhwc": lambda: nhwc(x), "nhwc planes memory": lambda: planes_memory_nhwc(x),
            "nhwc 3-d": lambda: nhwc(x)}[source]()
    fmt = "NHWC" if source.startswith("nhwc") else "NCHW"
    args = (3, 2, 1)
    ref_out, ref_idx = backend.max_pool2d(view, *args, return_indices=True, data_format=fmt)
    for kind, index_kind in [(a, b) for a in OUT_KINDS for b in OUT_KINDS]:
        o, o_owner = fill(ref_out.shape, ref_out.dtype, nhwc_format=fmt == "NHWC", kind=kind)
        i, i_owner = fill(ref_out.shape, np.int64, nhwc_format=fmt == "NHWC", kind=index_kind)
        o_before, i_before = o_owner.copy(), i_owner.copy()
        result = backend.max_pool2d(view, *args, return_indices=True, data_format=fmt, out=(o, i))
        assert type(result) is tuple and result[0] is o and result[1] is i
        assert_bits(o, ref_out, kind)
        np.testing.assert_array_equal(i, ref_idx)
        # nothing outside the out views was touched
        for owner, before, k in ((o_owner, o_before, kind), (i_owner, i_before, index_kind)):
            if k == "view":
                mask = np.ones(owner.shape, bool)
                mask[tuple(slice(1, None, 2) for _ in o.shape)] = False
                assert_bits(owner[mask], before[mask])
        o2, _ = fill(ref_out.shape, ref_out.dtype, nhwc_format=fmt == "NHWC", kind=kind)
        assert backend.max_pool2d(view, *args, data_format=fmt, out=o2) is o2
        assert_bits(o2, ref_out, kind)


def test_forward_out_written_in_place_when_laid_out_like_the_result(backend, rng):
    # An out of the result's memory layout receives the result directly: the kernels write it.
    x = rng.standard_normal((2, 7, 8, 6)).astype(np.float32)
    for view, fmt, o in ((channels_last(x), "NCHW", channels_last(np.empty((2, 7, 4, 3), np.float32))),
                         (nhwc(x), "NHWC", np.empty((2, 4, 3, 7), np.float32)),
                         (planes_memory_nhwc(x), "NHWC", from_nhwc_inverse(np.empty((2, 7, 4, 3), np.float32)))):
        address = o.__array_interface__["data"][0]
        strides = o.strides
        assert backend.max_pool2d(view, 2, data_format=fmt, out=o) is o
        assert o.__array_interface__["data"][0] == address and o.strides == strides
        assert_bits(o, backend.max_pool2d(view, 2, data_format=fmt))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("source", ["nchw", "nchw channels-last", "nhwc", "nhwc planes memory"])
def test_backward_out(backend, source, dtype, rng):
    x = rng.standard_normal((2, 5, 9, 8)).astype(dtype)
    make = {"nchw": np.ascontiguousarray, "nchw channels-last": channels_last, "nhwc": nhwc,
            "nhwc planes memory": planes_memory_nhwc}[source]
    fmt = "NHWC" if source.startswith("nhwc") else "NCHW"
    view = make(x)
    out, idx = backend.max_pool2d(view, 3, 1, 1, return_indices=True, data_format=fmt)  # overlapping windows
    g = make(rng.standard_normal(in_nchw(out, fmt).shape).astype(dtype))
    ref = backend.max_pool2d_backward(g, idx, view.shape, data_format=fmt)
    for kind in OUT_KINDS:
        o, owner = fill(view.shape, dtype, nhwc_format=fmt == "NHWC", kind=kind)
        before = owner.copy()
        assert backend.max_pool2d_backward(g, idx, view.shape, data_format=fmt, out=o) is o
        assert_bits(o, ref, kind)
        if kind == "view":
            mask = np.ones(owner.shape, bool)
            mask[tuple(slice(1, None, 2) for _ in o.shape)] = False
            assert_bits(owner[mask], before[mask])


def test_out_subclass_is_returned(backend, rng):
    x = rng.standard_normal((1, 2, 4, 4))
    o = np.empty((1, 2, 2, 2)).view(type("Sub", (np.ndarray,), {}))
    assert backend.max_pool2d(x, 2, out=o) is o
    assert_bits(np.asarray(o), backend.max_pool2d(x, 2))


# The out= rejections: (name, make call(module, x, sentinel-filled arrays), exception, pattern).
OX = np.arange(2 * 3 * 6 * 6, dtype=np.float32).reshape(2, 3, 6, 6)
OX_NHWC = np.zeros((2, 8, 8, 3), np.float32)  # its result is (2, 4, 4, 3), NCHW order would be (2, 3, 4, 4)
O_SHAPE = (2, 3, 3, 3)


def sentinel(shape, dtype):
    a = np.empty(shape, dtype)
    a[...] = -7
    return a


def overlapping_pair():
    """(values, indices) out arrays of O_SHAPE that share one buffer."""
    buf = np.full(2 * int(np.prod(O_SHAPE)), -7, np.int64)
    return buf.view(np.float32)[:int(np.prod(O_SHAPE))].reshape(O_SHAPE), buf[:int(np.prod(O_SHAPE))].reshape(O_SHAPE)


def read_only(a):
    a.flags.writeable = False
    return a


def forward_out_rejections():
    v, i = sentinel(O_SHAPE, np.float32), sentinel(O_SHAPE, np.int64)
    x_alias = OX.copy()
    pair = overlapping_pair()
    return [
        ("out of the wrong shape", OX, dict(out=sentinel((2, 3, 3, 4), np.float32)), ValueError,
         r"out must have shape \(2, 3, 3, 3\), got out.shape=\(2, 3, 3, 4\)"),
        ("out in NCHW shape for NHWC", OX_NHWC, dict(out=sentinel((2, 3, 4, 4), np.float32), data_format="NHWC"),
         ValueError, r"out must have shape \(2, 4, 4, 3\), got out.shape=\(2, 3, 4, 4\)"),
        ("out of the wrong dtype", OX, dict(out=sentinel(O_SHAPE, np.float64)), TypeError,
         r"out must have dtype float32, got out.dtype=float64"),
        ("out byte-swapped", OX, dict(out=sentinel(O_SHAPE, ">f4")), TypeError, r"out must have dtype float32"),
        ("out read-only", OX, dict(out=read_only(sentinel(O_SHAPE, np.float32))), ValueError,
         r"out must be writeable"),
        ("out a list", OX, dict(out=sentinel(O_SHAPE, np.float32).tolist()), TypeError,
         r"out must be a numpy.ndarray, got out=.*\(type list\)"),
        ("out a tuple without return_indices", OX, dict(out=(v, i)), TypeError,
         r"out must be one array with return_indices=False"),
        ("out one array with return_indices", OX, dict(out=v, return_indices=True), TypeError,
         r"out must be a \(values, indices\) tuple"),
        ("out a list pair with return_indices", OX, dict(out=[v, i], return_indices=True), TypeError,
         r"out must be a \(values, indices\) tuple .*type list"),
        ("out a 3-tuple with return_indices", OX, dict(out=(v, i, i), return_indices=True), TypeError,
         r"out must be a \(values, indices\) tuple"),
        ("out[0] of the wrong dtype", OX, dict(out=(sentinel(O_SHAPE, np.float64), i), return_indices=True),
         TypeError, r"out\[0\] must have dtype float32"),
        ("out[1] int32", OX, dict(out=(v, sentinel(O_SHAPE, np.int32)), return_indices=True), TypeError,
         r"out\[1\] must have dtype int64, got out\[1\].dtype=int32"),
        ("out[1] of the wrong shape", OX, dict(out=(v, sentinel(O_SHAPE[:3], np.int64)), return_indices=True),
         ValueError, r"out\[1\] must have shape"),
        ("out[1] read-only", OX, dict(out=(v, read_only(sentinel(O_SHAPE, np.int64))), return_indices=True),
         ValueError, r"out\[1\] must be writeable"),
        ("out overlapping the input", x_alias, dict(out=x_alias[:, :, :3, :3]), ValueError,
         r"out must not share memory with input"),
        ("out[0] overlapping the input", x_alias, dict(out=(x_alias[:, :, 3:, 3:], i), return_indices=True),
         ValueError, r"out\[0\] must not share memory with input"),
        ("out[1] overlapping out[0]", OX, dict(out=pair, return_indices=True), ValueError,
         r"out\[1\] must not share memory with out\[0\]"),
    ]


@pytest.mark.parametrize("index", range(len(forward_out_rejections())),
                         ids=[r[0] for r in forward_out_rejections()])
def test_forward_out_rejections_write_nothing(backend, index):
    name, x, kwargs, exc, pattern = forward_out_rejections()[index]
    out = kwargs["out"]
    arrays = [a for a in (out if isinstance(out, (tuple, list)) else (out,)) if isinstance(a, np.ndarray)]
    arrays.append(x)
    before = [a.copy() for a in arrays]
    with pytest.raises(exc, match=pattern):
        backend.max_pool2d(x, 2, **kwargs)
    for a, b in zip(arrays, before):
        assert_same_bits(a, b, f"{name}: an array was written")


BX = OX
B_OUT, B_IDX = cpool.slow.max_pool2d(BX, 2, 1, return_indices=True)  # overlapping windows


def backward_out_rejections():
    g = np.ones(B_OUT.shape, np.float32)
    bad = B_IDX.copy()
    bad[1, 2, 4, 4] = 36  # the last element: the kernels would have written everything else first
    g_alias = np.ones((2, 3, 6, 6), np.float32)
    idx_buf = np.zeros(B_IDX.size + BX.size, np.int64)
    idx_alias = idx_buf[:B_IDX.size].reshape(B_IDX.shape)
    idx_alias[...] = B_IDX
    return [
        ("out of the wrong shape", g, B_IDX, dict(out=sentinel((2, 3, 6, 5), np.float32)), ValueError,
         r"out must have shape \(2, 3, 6, 6\), got out.shape=\(2, 3, 6, 5\)"),
        ("out in NCHW shape for NHWC", nhwc(g), nhwc(B_IDX),
         dict(out=sentinel(BX.shape, np.float32), data_format="NHWC", input_shape=nhwc(BX).shape), ValueError,
         r"out must have shape \(2, 6, 6, 3\)"),
        ("out of the wrong dtype", g, B_IDX, dict(out=sentinel(BX.shape, np.float64)), TypeError,
         r"out must have dtype float32, got out.dtype=float64"),
        ("out read-only", g, B_IDX, dict(out=read_only(sentinel(BX.shape, np.float32))), ValueError,
         r"out must be writeable"),
        ("out not an array", g, B_IDX, dict(out=3.0), TypeError, r"out must be a numpy.ndarray"),
        ("out a tuple", g, B_IDX, dict(out=(sentinel(BX.shape, np.float32),)), TypeError,
         r"out must be a numpy.ndarray"),
        ("out overlapping grad_output", g_alias[:, :, :5, :5], B_IDX, dict(out=g_alias), ValueError,
         r"out must not share memory with grad_output"),
        ("out overlapping indices", g, idx_alias, dict(out=idx_buf.view(np.float32)[:BX.size].reshape(BX.shape)),
         ValueError, r"out must not share memory with indices"),
        ("index past the plane", g, bad, dict(out=sentinel(BX.shape, np.float32)), ValueError,
         r"indices contains 36, outside the plane of 6x6=36"),
        ("index past the plane, NHWC", nhwc(g), nhwc(bad),
         dict(out=sentinel(nhwc(BX).shape, np.float32), data_format="NHWC", input_shape=nhwc(BX).shape),
         ValueError, r"indices contains 36,"),
        ("index past the plane, channels-last", channels_last(g), channels_last(bad),
         dict(out=channels_last(sentinel(BX.shape, np.float32))), ValueError, r"indices contains 36,"),
        ("index below -1", g, np.where(B_IDX == B_IDX.max(), -2, B_IDX), dict(out=sentinel(BX.shape, np.float32)),
         ValueError, r"indices contains -2,"),
    ]


@pytest.mark.parametrize("index", range(len(backward_out_rejections())),
                         ids=[r[0] for r in backward_out_rejections()])
def test_backward_out_rejections_write_nothing(backend, index):
    name, g, idx, kwargs, exc, pattern = backward_out_rejections()[index]
    kwargs = dict(kwargs)
    shape = kwargs.pop("input_shape", BX.shape)
    arrays = [a for a in (kwargs["out"], g, idx) if isinstance(a, np.ndarray)]
    before = [a.copy() for a in arrays]
    with pytest.raises(exc, match=pattern):
        backend.max_pool2d_backward(g, idx, shape, **kwargs)
    for a, b in zip(arrays, before):
        assert_same_bits(a, b, f"{name}: an array was written")


class Wrapped:
    """A non-ndarray input NumPy converts without a copy (like a torch tensor or a memoryview)."""

    def __init__(self, a):
        self.a = a

    def __array__(self, dtype=None, copy=None):
        return self.a


@pytest.mark.parametrize("wrap", [memoryview, Wrapped], ids=["memoryview", "__array__"])
def test_out_aliasing_an_input_that_is_not_an_ndarray(backend, wrap, rng):
    # The memory the kernels read is checked, not only the object passed: written in place, a
    # 3x3 s1 forward would read values it had already overwritten.
    buf = rng.standard_normal((2, 3, 9, 9))
    before = buf.copy()
    with pytest.raises(ValueError, match="out must not share memory with input"):
        backend.max_pool2d(wrap(buf), 3, 1, 1, out=buf)
    with pytest.raises(ValueError, match=r"out\[1\] must not share memory with input"):
        backend.max_pool2d(wrap(buf), 3, 1, 1, return_indices=True, out=(np.empty_like(buf), buf.view(np.int64)))
    nhwc_buf = nhwc(buf)
    with pytest.raises(ValueError, match="out must not share memory with input"):
        backend.max_pool2d(wrap(nhwc_buf), 3, 1, 1, data_format="NHWC", out=nhwc_buf)
    assert_same_bits(buf, before)
    out, idx = backend.max_pool2d(buf, 3, 1, 1, return_indices=True)
    g = rng.standard_normal(out.shape)
    with pytest.raises(ValueError, match="out must not share memory with grad_output"):
        backend.max_pool2d_backward(wrap(g), idx, buf.shape, out=g)
    with pytest.raises(ValueError, match="out must not share memory with indices"):
        backend.max_pool2d_backward(g, wrap(idx), buf.shape, out=idx.view(np.float64))


def test_forward_errors_before_out_checks_write_nothing(backend):
    o = sentinel(O_SHAPE, np.float32)
    with pytest.raises(ValueError, match="kernel_size"):
        backend.max_pool2d(OX, 0, out=o)
    with pytest.raises(ValueError, match="data_format"):
        backend.max_pool2d(OX, 2, data_format="nchw", out=o)
    assert (o == -7).all()


# ------------------------------------------------------ data_format errors
def fwd(*args, **kwargs):
    return lambda m: m.max_pool2d(*args, **kwargs)


def bwd(*args, **kwargs):
    return lambda m: m.max_pool2d_backward(*args, **kwargs)


EX = np.zeros((1, 6, 6, 2), np.float32)  # NHWC
E_OUT, E_IDX = cpool.slow.max_pool2d(EX, 2, return_indices=True, data_format="NHWC")
EG = np.ones_like(E_OUT)
O_IDX = cpool.slow.max_pool2d(OX, 2, return_indices=True)[1]
OG = np.ones(O_SHAPE, np.float32)
OG_ALIAS = np.ones(OX.shape, np.float32)

# Rows of the README's error table (tools/error_table.py), as in test_api_errors.ERROR_CASES.
LAYOUT_ERROR_CASES = [
    # (what, call, exception, message must match)
    ("data_format not a str", fwd(EX, 2, data_format=None), TypeError,
     r'data_format must be "NCHW" or "NHWC", got data_format=None \(type NoneType\)'),
    ("data_format bytes", fwd(EX, 2, data_format=b"NHWC"), TypeError, r"data_format=b'NHWC'"),
    ("data_format lower case", fwd(EX, 2, data_format="nhwc"), ValueError,
     r'data_format must be "NCHW" or "NHWC", got data_format=\'nhwc\''),
    ("data_format unknown", fwd(EX, 2, data_format="CHWN"), ValueError, r"data_format='CHWN'"),
    ("data_format of backward", bwd(EG, E_IDX, EX.shape, data_format="NWHC"), ValueError,
     r"data_format='NWHC'"),
    ("NHWC input with 2 dims", fwd(np.zeros((6, 6)), 2, data_format="NHWC"), ValueError,
     r"input must be a 3-D \(H, W, C\) or 4-D \(N, H, W, C\) array, got input.ndim=2"),
    ("NHWC input with 5 dims", fwd(np.zeros((1, 1, 6, 6, 1)), 2, data_format="NHWC"), ValueError,
     r"\(N, H, W, C\).*input.ndim=5"),
    ("NHWC zero channels", fwd(np.zeros((1, 6, 6, 0)), 2, data_format="NHWC"), ValueError,
     r"non-zero .*input.shape=\(1, 6, 6, 0\)"),
    ("NHWC output smaller than 1", fwd(EX, 7, data_format="NHWC"), ValueError, r"output size is too small"),
    ("NHWC grad_output 2-D", bwd(EG[0, 0], E_IDX[0, 0], EX.shape[2:], data_format="NHWC"), ValueError,
     r"grad_output must be a 3-D \(H, W, C\).*grad_output.ndim=2"),
    ("NHWC input_shape in NCHW order", bwd(EG, E_IDX, (1, 2, 6, 6), data_format="NHWC"), ValueError,
     r"input_shape and grad_output must agree .*input_shape=\(1, 2, 6, 6\) and grad_output.shape=\(1, 3, 3, 2\)"),
    ("NHWC input_shape of another batch", bwd(EG, E_IDX, (2, 6, 6, 2), data_format="NHWC"), ValueError,
     r"must agree in their leading"),
    ("NHWC input_shape wrong length", bwd(EG, E_IDX, (6, 6, 2), data_format="NHWC"), ValueError,
     r"input_shape must have as many dimensions as grad_output \(4\)"),
    ("NHWC input_shape zero channels", bwd(EG[..., :0], E_IDX[..., :0], (1, 6, 6, 0), data_format="NHWC"),
     ValueError, r"non-zero channel"),
    ("NHWC indices of NCHW shape", bwd(EG, from_nhwc(E_IDX).copy(), EX.shape, data_format="NHWC"), ValueError,
     r"indices and grad_output must have the same shape"),
    ("NHWC index past the plane", bwd(EG, np.where(E_IDX == E_IDX.max(), 36, E_IDX), EX.shape,
                                      data_format="NHWC"), ValueError,
     r"indices contains 36, outside the plane of 6x6=36"),
    ("out of the wrong shape", fwd(OX, 2, out=np.zeros((2, 3, 3, 4), np.float32)), ValueError,
     r"out must have shape \(2, 3, 3, 3\), got out.shape=\(2, 3, 3, 4\)"),
    ("out of the wrong dtype", fwd(OX, 2, out=np.zeros(O_SHAPE)), TypeError,
     r"out must have dtype float32, got out.dtype=float64"),
    ("out read-only", fwd(OX, 2, out=read_only(np.zeros(O_SHAPE, np.float32))), ValueError,
     r"out must be writeable"),
    ("out not an array", fwd(OX, 2, out=[0.0]), TypeError, r"out must be a numpy.ndarray"),
    ("out one array with return_indices", fwd(OX, 2, return_indices=True, out=np.zeros(O_SHAPE, np.float32)),
     TypeError, r"out must be a \(values, indices\) tuple"),
    ("out a tuple without return_indices", fwd(OX, 2, out=(np.zeros(O_SHAPE, np.float32),)), TypeError,
     r"out must be one array with return_indices=False"),
    ("out[1] not int64", fwd(OX, 2, return_indices=True, out=(np.zeros(O_SHAPE, np.float32),
                                                            np.zeros(O_SHAPE, np.int32))), TypeError,
     r"out\[1\] must have dtype int64"),
    ("out sharing memory with input", fwd(OX, 2, out=OX[:, :, :3, :3]), ValueError,
     r"out must not share memory with input"),
    ("out[1] sharing memory with out[0]", fwd(OX, 2, return_indices=True, out=overlapping_pair()), ValueError,
     r"out\[1\] must not share memory with out\[0\]"),
    ("backward out of the wrong shape", bwd(OG, O_IDX, OX.shape, out=np.zeros(O_SHAPE, np.float32)), ValueError,
     r"out must have shape \(2, 3, 6, 6\)"),
    ("backward out of the wrong dtype", bwd(OG, O_IDX, OX.shape, out=np.zeros(OX.shape)), TypeError,
     r"out must have dtype float32"),
    ("backward out sharing memory with grad_output", bwd(OG_ALIAS[:, :, :3, :3], O_IDX, OX.shape, out=OG_ALIAS),
     ValueError, r"out must not share memory with grad_output"),
]


@pytest.mark.parametrize("case", LAYOUT_ERROR_CASES, ids=[c[0] for c in LAYOUT_ERROR_CASES])
def test_bad_layout_arguments_raise(backend, case):
    _, call, exc, pattern = case
    with pytest.raises(exc, match=pattern):
        call(backend)


def test_public_functions_raise_the_same():
    for _, call, exc, pattern in LAYOUT_ERROR_CASES:
        with pytest.raises(exc, match=pattern):
            call(cpool)


@pytest.mark.parametrize("value,exc", [(None, TypeError), (0, TypeError), (b"NCHW", TypeError),
                                       (("NHWC",), TypeError), ("NHW", ValueError), ("", ValueError),
                                       (" NHWC", ValueError)], ids=repr)
def test_module_data_format_is_checked_when_built(value, exc):
    with pytest.raises(exc, match="data_format"):
        cpool.MaxPool2d(2, data_format=value)


class Fmt(str):
    """A str subclass whose comparisons lie: only its string value may count."""

    def __eq__(self, other):
        return False

    __hash__ = str.__hash__


@pytest.mark.parametrize("kind", [np.str_, Fmt], ids=["numpy.str_", "str subclass"])
def test_str_subclass_data_format(backend, kind):
    # numpy.str_ (a value read from an array or a config file) and other str subclasses count
    # by their string value, in every function and in the layer.
    x = np.random.default_rng(0).standard_normal((2, 4, 6, 3))
    expected, idx = backend.max_pool2d(x, 2, return_indices=True, data_format="NHWC")
    out, idx2 = backend.max_pool2d(x, 2, return_indices=True, data_format=kind("NHWC"))
    assert_bits(out, expected)
    assert_bits(idx2, idx)
    assert_bits(backend.max_pool2d(x, 2, data_format=kind("NHWC"), out=np.empty(expected.shape)), expected)
    g = np.ones(expected.shape)
    assert_bits(backend.max_pool2d_backward(g, idx, x.shape, data_format=kind("NHWC")),
                backend.max_pool2d_backward(g, idx, x.shape, data_format="NHWC"))
    layer = cpool.MaxPool2d(2, data_format=kind("NHWC"), backend=backend.name)
    assert type(layer.data_format) is str and layer.data_format == "NHWC"
    assert repr(layer).endswith("data_format='NHWC')")
    assert_bits(layer.forward(x), expected)
    with pytest.raises(ValueError, match="data_format=.*'nhwc'"):
        backend.max_pool2d(x, 2, data_format=np.str_("nhwc"))


# --------------------------------------------------------------- module
LAYER_SOURCES = ["nhwc", "nchw channels-last"]


def layer_input(source, x):
    return nhwc(x) if source == "nhwc" else channels_last(x)


def layer_format(source):
    return "NHWC" if source == "nhwc" else "NCHW"


@pytest.mark.parametrize("source", LAYER_SOURCES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16], ids=lambda d: np.dtype(d).name)
def test_module_matches_functional(backend, source, dtype, rng):
    fmt = layer_format(source)
    for shape, args in (((3, 8, 10, 12), (2,)), ((2, 70, 9, 7), (3, 2, 1)), ((5, 7, 6), (2, 1)),
                        ((2, 1, 8, 8), (2,))):
        x = layer_input(source, adversarial_values(rng, dtype, shape))
        layer = cpool.MaxPool2d(*args, data_format=fmt, backend=backend.name)
        out = layer.forward(x)
        ref_out, ref_idx = backend.max_pool2d(x, *args, return_indices=True, data_format=fmt)
        assert_bits(out, ref_out, (shape, args))
        assert same_layout(out, ref_out)
        np.testing.assert_array_equal(layer.indices, ref_idx)
        assert layer.indices.dtype == np.int64
        assert layer.index.shape == ref_idx.shape + (2,)
        g = layer_input(source, rng.standard_normal(in_nchw(ref_out, fmt).shape).astype(dtype))
        layer2 = cpool.MaxPool2d(*args, data_format=fmt, backend=backend.name)
        layer2.forward(x)
        gi = layer2.backward(x, g)  # on the layer's own int32 indices
        ref_gi = backend.max_pool2d_backward(g, ref_idx, x.shape, data_format=fmt)
        assert_bits(gi, ref_gi, (shape, args))
        assert same_layout(gi, ref_gi)
        assert_bits(layer.backward(x, g), ref_gi)  # on the int64 indices (accessed above)


def test_module_return_indices_nhwc(backend, rng):
    x = rng.standard_normal((2, 9, 8, 5)).astype(np.float32)
    layer = cpool.MaxPool2d(3, 2, 1, return_indices=True, data_format="NHWC", backend=backend.name)
    out, idx = layer(x)
    ref_out, ref_idx = backend.max_pool2d(x, 3, 2, 1, return_indices=True, data_format="NHWC")
    assert out is layer.output and idx is layer.indices
    assert_bits(out, ref_out)
    assert_bits(idx, ref_idx)
    assert repr(layer).endswith("data_format='NHWC')")


def address(a):
    return a.__array_interface__["data"][0]


@pytest.mark.parametrize("source", LAYER_SOURCES + ["nchw"])
def test_module_never_overwrites_a_kept_output(backend, source, rng):
    fmt = layer_format(source) if source != "nchw" else "NCHW"
    make = (lambda a: np.ascontiguousarray(a)) if source == "nchw" else (lambda a: layer_input(source, a))
    x1 = make(rng.standard_normal((2, 6, 8, 8)).astype(np.float32))
    x2 = make(rng.standard_normal((2, 6, 8, 8)).astype(np.float32))
    layer = cpool.MaxPool2d(2, data_format=fmt, backend=backend.name)
    y = layer.forward(x1)
    kept = y.copy()
    y2 = layer.forward(x2)
    assert y2 is not y and not np.shares_memory(y, y2)
    assert_bits(y, kept)
    assert_bits(y2, backend.max_pool2d(x2, 2, data_format=fmt))
    # views of the kept output keep it too
    del y, y2
    layer.forward(x1)
    first_row = layer.output[0]
    kept = first_row.copy()
    layer.forward(x2)
    assert_bits(first_row, kept)
    assert not np.shares_memory(first_row, layer.output)


@pytest.mark.skipif(not CPYTHON, reason="buffer reuse is decided by CPython's reference counts")
@pytest.mark.parametrize("source", LAYER_SOURCES + ["nchw"])
def test_module_reuses_unreferenced_buffers(backend, source, rng):
    fmt = layer_format(source) if source != "nchw" else "NCHW"
    make = (lambda a: np.ascontiguousarray(a)) if source == "nchw" else (lambda a: layer_input(source, a))
    xs = [make(rng.standard_normal((2, 6, 8, 8)).astype(np.float32)) for _ in range(3)]
    layer = cpool.MaxPool2d(2, data_format=fmt, backend=backend.name)
    layer.forward(xs[0])
    first = address(layer.output)
    strides = layer.output.strides
    layer.forward(xs[1])
    assert address(layer.output) == first and layer.output.strides == strides
    assert_bits(layer.output, backend.max_pool2d(xs[1], 2, data_format=fmt))
    # gradInput likewise
    g = np.ones(layer.output.shape, np.float32)
    if source != "nchw":
        g = layer_input(source, np.ones(in_nchw(layer.output, fmt).shape, np.float32))
    layer.backward(xs[1], g)
    grad_first = address(layer.gradInput)
    layer.backward(xs[1], g)
    assert address(layer.gradInput) == grad_first
    kept = layer.gradInput  # now held: the next backward must not overwrite it
    before = kept.copy()
    layer.forward(xs[2])
    layer.backward(xs[2], g)
    assert layer.gradInput is not kept and not np.shares_memory(layer.gradInput, kept)
    assert_bits(kept, before)
    assert_bits(layer.gradInput,
                backend.max_pool2d_backward(g, backend.max_pool2d(xs[2], 2, return_indices=True,
                                                                  data_format=fmt)[1], xs[2].shape,
                                            data_format=fmt))
    view = layer.gradInput[0]
    before = view.copy()
    layer.backward(xs[2], 2 * g)
    assert_bits(view, before)


def test_module_reuse_across_layouts(backend, rng):
    # One layer fed channels-last, then NCHW-contiguous, then channels-last input of the same shape:
    # every result right and in its input's layout.
    layer = cpool.MaxPool2d(2, backend=backend.name)
    for make in (channels_last, np.ascontiguousarray, channels_last, np.ascontiguousarray):
        x = make(rng.standard_normal((2, 6, 8, 8)).astype(np.float32))
        out = layer.forward(x)
        assert_memory(out, make is channels_last)
        assert_bits(out, cpool.slow.max_pool2d(np.ascontiguousarray(x), 2))
        g = make(rng.standard_normal((2, 6, 4, 4)).astype(np.float32))
        gi = layer.backward(x, g)
        assert_memory(gi, make is channels_last)
        ref_idx = cpool.slow.max_pool2d(np.ascontiguousarray(x), 2, return_indices=True)[1]
        assert_bits(gi, cpool.slow.max_pool2d_backward(np.ascontiguousarray(g), ref_idx, x.shape))
        del out, gi


def test_module_backward_in_another_layout(backend, rng):
    # gradOutput laid out otherwise than the forward's output: the layer's indices follow it.
    x = channels_last(rng.standard_normal((2, 9, 8, 6)).astype(np.float32))
    ref_idx = cpool.slow.max_pool2d(np.ascontiguousarray(x), 3, 2, 1, return_indices=True)[1]
    for make in (np.ascontiguousarray, channels_last, np.ascontiguousarray):
        layer = cpool.MaxPool2d(3, 2, 1, backend=backend.name)
        layer.forward(x)
        g = make(rng.standard_normal(ref_idx.shape).astype(np.float32))
        gi = layer.backward(x, g)
        assert_memory(gi, make is channels_last)
        assert_bits(gi, cpool.slow.max_pool2d_backward(np.ascontiguousarray(g), ref_idx, x.shape))
        gi = layer.backward(x, g)  # again, into its own buffer if free
        assert_bits(gi, cpool.slow.max_pool2d_backward(np.ascontiguousarray(g), ref_idx, x.shape))


@pytest.mark.parametrize("source", LAYER_SOURCES)
def test_module_indices_access_and_changes(backend, source, rng):
    fmt = layer_format(source)
    x = layer_input(source, rng.standard_normal((2, 5, 8, 6)).astype(np.float64))
    layer = cpool.MaxPool2d(2, data_format=fmt, backend=backend.name)
    layer.forward(x)
    g = layer_input(source, rng.standard_normal((2, 5, 4, 3)))
    ref_idx = backend.max_pool2d(x, 2, return_indices=True, data_format=fmt)[1]
    ref = backend.max_pool2d_backward(g, ref_idx, x.shape, data_format=fmt)
    assert_bits(layer.backward(x, g), ref)
    idx = layer.indices
    np.testing.assert_array_equal(idx, ref_idx)
    assert_bits(layer.backward(x, g), ref)  # through the int64 indices now
    # route every gradient elsewhere (still inside its plane)
    moved = np.flip(ref_idx, axis=-2).copy()
    idx[...] = moved
    kept = layer.gradInput
    before = kept.copy()
    assert_bits(layer.backward(x, g), backend.max_pool2d_backward(g, moved, x.shape, data_format=fmt))
    assert_bits(kept, before)
    # a bad index now: ValueError, and the held gradient is untouched
    idx[(0,) * idx.ndim] = 10**6
    with pytest.raises(ValueError, match="indices contains 1000000,"):
        layer.backward(x, g)
    assert_bits(kept, before)


# ------------------------------------------------------------ signatures
@pytest.mark.parametrize("module", [cpool, cpool.slow], ids=["cpool", "cpool.slow"])
def test_data_format_and_out_are_keyword_only(module):
    import inspect

    for fn, positional in ((module.max_pool2d, ["input", "kernel_size", "stride", "padding", "dilation",
                                                 "ceil_mode", "return_indices"]),
                           (module.max_pool2d_backward, ["grad_output", "indices", "input_shape"])):
        params = inspect.signature(fn).parameters
        assert [n for n, p in params.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD] == positional
        assert [(n, p.default) for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY] == \
            [("data_format", "NCHW"), ("out", None)]
    x = np.zeros((1, 4, 4, 2))
    with pytest.raises(TypeError):
        module.max_pool2d(x, 2, None, 0, 1, False, False, "NHWC")
