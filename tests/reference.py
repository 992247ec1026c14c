"""Test oracles and the adversarial input generator shared by the tests.

* :func:`scalar_max_pool2d` follows PyTorch's CPU kernel literally (pure
  Python loops over every window; small inputs only). It shares no code with
  either backend, so agreeing with it is evidence, not tautology.
* :func:`loop_max_pool2d` is the original question's 4-deep loop.
* :func:`random_case` draws adversarial configurations: ties, NaN, +-inf,
  all-lowest windows, dilation, ceil mode, odd sizes, N=0, every dtype.
* :func:`layouts` yields the same logical array in odd memory layouts.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

FLOAT_DTYPES = [np.float16, np.float32, np.float64]
INT_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.int64]
ALL_DTYPES = FLOAT_DTYPES + INT_DTYPES


def _lowest(dtype):
    dtype = np.dtype(dtype)
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def out_size(L, k, s, p, d, ceil):
    o = (L + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)) // s + 1
    if ceil and (o - 1) * s >= L + p:
        o -= 1
    return o


def scalar_max_pool2d(x, k, s, p, d, ceil):
    """PyTorch's cpu_max_pool, transcribed loop for loop (values, indices)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = k, s, p, d
    x = np.asarray(x)
    lead = x.shape[:-2]
    H, W = x.shape[-2:]
    OH, OW = out_size(H, kh, sh, ph, dh, ceil), out_size(W, kw, sw, pw, dw, ceil)
    planes = x.reshape(-1, H, W)
    out = np.empty((planes.shape[0], OH, OW), dtype=x.dtype.newbyteorder("="))
    idx = np.empty((planes.shape[0], OH, OW), dtype=np.int64)
    for n, plane in enumerate(planes):
        for oh in range(OH):
            h0 = oh * sh - ph
            h1 = min(h0 + (kh - 1) * dh + 1, H)
            while h0 < 0:
                h0 += dh
            for ow in range(OW):
                w0 = ow * sw - pw
                w1 = min(w0 + (kw - 1) * dw + 1, W)
                while w0 < 0:
                    w0 += dw
                best, best_i = _lowest(x.dtype), h0 * W + w0
                for ih in range(h0, h1, dh):
                    for iw in range(w0, w1, dw):
                        v = plane[ih, iw]
                        if v > best or (isinstance(v, np.floating) and math.isnan(v)):
                            best, best_i = v, ih * W + iw
                if h0 >= h1 or w0 >= w1:  # no input element: cpool's -1
                    best_i = -1
                out[n, oh, ow] = best
                idx[n, oh, ow] = best_i
    return out.reshape(lead + (OH, OW)), idx.reshape(lead + (OH, OW))


def scalar_backward(grad_out, idx, input_shape):
    """Zero-fill, then add in output row-major order per plane (PyTorch's order)."""
    H, W = input_shape[-2:]
    g = np.asarray(grad_out).reshape(-1, grad_out.shape[-2] * grad_out.shape[-1])
    ii = np.asarray(idx).reshape(g.shape)
    gi = np.zeros((g.shape[0], H * W), dtype=g.dtype)
    for n in range(g.shape[0]):
        for o in range(g.shape[1]):
            if ii[n, o] >= 0:
                gi[n, ii[n, o]] = gi[n, ii[n, o]] + g[n, o]
    return gi.reshape(input_shape)


def _loop_layer(kernel):
    # The question's layer has one copy in the repository: examples/loop_pool.py.
    examples = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
    if examples not in sys.path:
        sys.path.insert(0, examples)
    from loop_pool import MaxPool2d

    return MaxPool2d(kernel)


def loop_max_pool2d(input, kernel):
    """The original question's updateOutput: (output, index of (row, col))."""
    layer = _loop_layer(kernel)
    return layer.updateOutput(input), layer.index


def loop_max_pool2d_backward(input, grad_output, index):
    """The loop layer's updateGradInput, routing each gradient to its (row, col)."""
    layer = _loop_layer(2)
    layer.index = index
    return layer.updateGradInput(input, grad_output)


def child_process_kwargs(env=None):
    """subprocess kwargs so a child ``python -c`` imports the same cpool as this process.

    The child starts in the folder that holds the imported ``cpool`` package
    (site-packages for an installed wheel, the repository for an in-place
    build): ``python -c`` puts its working directory first on sys.path, and
    from a source checkout without a build it would import the uncompiled tree.
    """
    import cpool

    home = os.path.dirname(os.path.dirname(os.path.abspath(cpool.__file__)))
    return {"cwd": home, "env": dict(os.environ if env is None else env)}


def adversarial_values(rng, dtype, shape):
    """Few distinct values (so ties are common), with NaN/inf and extremes."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        pool = np.array([0.0, -0.0, 1.0, 2.0, -1.0, 3.0, np.nan, -np.nan, np.inf, -np.inf], dtype=dtype)
        # A NaN with a payload checks that the *bits* of the last NaN survive.
        payload = np.array([np.nan], dtype=dtype)
        payload.view(f"u{dtype.itemsize}")[0] |= 1
        pool = np.concatenate([pool, payload, rng.standard_normal(4).astype(dtype)])
        p = np.full(pool.size, 1.0)
        p[6:9] = 0.3  # NaN less often than plain values, but often enough
        p /= p.sum()
        return rng.choice(pool, size=shape, p=p)
    info = np.iinfo(dtype)
    pool = np.array([info.min, info.max, 0, 1, 2, info.min + 1], dtype=dtype)
    return rng.choice(pool, size=shape)


def random_case(rng, dtypes=None, max_hw=11):
    """One random (x, params) pair; params may well be invalid."""
    dtype = (dtypes or ALL_DTYPES)[rng.integers(len(dtypes or ALL_DTYPES))]
    kh, kw = (int(v) for v in rng.integers(1, 5, 2))
    if rng.random() < 0.5:
        kw = kh
    sh, sw = (int(v) for v in rng.integers(1, 5, 2))
    dh, dw = (int(v) for v in (rng.integers(1, 4, 2) if rng.random() < 0.4 else (1, 1)))
    ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
    ceil = bool(rng.random() < 0.4)
    H, W = (int(v) for v in rng.integers(1, max_hw + 1, 2))
    N, C = int(rng.integers(0, 4)), int(rng.integers(1, 4))
    shape = (N, C, H, W) if rng.random() < 0.85 else (C, H, W)
    x = adversarial_values(rng, dtype, shape)
    stride = None if rng.random() < 0.2 else (sh, sw)
    params = dict(kernel_size=(kh, kw), stride=stride, padding=(ph, pw), dilation=(dh, dw), ceil_mode=ceil)
    return x, params


def full_params(params):
    """(k, s, p, d, ceil) pairs with stride defaulted, for the oracles."""
    k = params["kernel_size"]
    s = params["stride"] or k
    return k, s, params["padding"], params["dilation"], params["ceil_mode"]


def layouts(x, rng):
    """The same logical array in several memory layouts (name, array)."""
    yield "c-contiguous", x
    yield "fortran", np.asfortranarray(x)
    if x.ndim >= 2:
        t = np.ascontiguousarray(np.swapaxes(x, -1, -2))
        yield "transposed-view", np.swapaxes(t, -1, -2)
    rev = np.ascontiguousarray(x[..., ::-1, ::-1])
    yield "negative-strides", rev[..., ::-1, ::-1]
    big = np.zeros(tuple(2 * n + 1 for n in x.shape), dtype=x.dtype)
    big[tuple(slice(1, None, 2) for _ in x.shape)] = x
    yield "strided-view", big[tuple(slice(1, None, 2) for _ in x.shape)]
    if x.dtype.itemsize > 1:
        yield "byte-swapped", x.astype(x.dtype.newbyteorder())
    ro = x.copy()
    ro.flags.writeable = False
    yield "read-only", ro
    if x.dtype.itemsize > 1 and x.size:
        buf = bytearray(x.nbytes + 1)
        unaligned = np.frombuffer(buf, dtype=x.dtype, offset=1, count=x.size).reshape(x.shape)
        unaligned[...] = x
        yield "unaligned", unaligned
