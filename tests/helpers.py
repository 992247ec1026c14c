"""What the tests share: oracles, input generators, comparisons, the backends.

* :func:`scalar_max_pool2d` follows PyTorch's CPU kernel literally (pure
  Python loops over every window; small inputs only). It shares no code with
  either backend, so agreeing with it is evidence, not tautology.
  :func:`scalar_backward` is its gradient, in PyTorch's order of additions.
* :func:`loop_max_pool2d` / :func:`loop_max_pool2d_backward` are the original
  question's 4-deep loop layer (``examples/loop_pool.py``).
* :func:`random_case` draws adversarial configurations: ties, NaN, +-inf,
  all-lowest windows, dilation, ceil mode, odd sizes, N=0, every dtype.
* :func:`layouts` yields the same logical array in odd memory layouts.
* :func:`same_bits` / :func:`assert_same_bits`: equality of dtype, shape and
  bytes (NaN payloads and signed zeros count).
* :class:`Backend`: one backend behind the public signatures.
  :data:`COMPILED_API` (None without the extension) and :data:`NUMPY_API`;
  :data:`COMPILED` is :mod:`cpool._compiled` itself (or None) and
  :data:`AVX2_ISAS` the instruction sets beyond the baseline it runs here.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np

import cpool
from cpool import _backend
from cpool.functional import bind

FLOAT_DTYPES = [np.float16, np.float32, np.float64]
INT_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.int64]
ALL_DTYPES = FLOAT_DTYPES + INT_DTYPES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(REPO, "examples")


# ---------------------------------------------------------------- backends
class Backend:
    """``max_pool2d`` and ``max_pool2d_backward`` computed by one backend module.

    ``name`` is the backend's name ("cython" or "numpy"), which is also what
    :class:`cpool.MaxPool2d`'s ``backend=`` takes; ``module`` the backend
    module (:mod:`cpool._compiled` or :mod:`cpool.slow`).
    """

    def __init__(self, name, module, functions=None):
        self.name = name
        self.module = module
        self.max_pool2d, self.max_pool2d_backward = functions or bind(module)

    def __repr__(self):
        return f"<backend {self.name}: {self.module.__name__}>"


def _load_compiled():
    try:
        return _backend.load("cython"), None
    except ValueError as exc:
        return None, exc


#: :mod:`cpool._compiled`, or None when the extension does not import
#: (:data:`EXTENSION_ERROR` says why; conftest's fixtures report it).
COMPILED, EXTENSION_ERROR = _load_compiled()
#: The compiled backend behind the public signatures, or None.
COMPILED_API = None if COMPILED is None else Backend("cython", COMPILED)
#: The NumPy backend: its published functions, ``cpool.slow.max_pool2d[_backward]``.
NUMPY_API = Backend("numpy", cpool.slow, (cpool.slow.max_pool2d, cpool.slow.max_pool2d_backward))
#: The compiled backend's instruction sets beyond the baseline on this machine
#: ("avx2", and "avx512" on an AVX-512 CPU); each is checked against "baseline".
AVX2_ISAS = () if COMPILED is None else tuple(isa for isa in COMPILED.AVAILABLE_ISAS if isa != "baseline")


def call_outcome(fn, *args, **kwargs):
    """``("ok", result)`` or ``("raised", exception)``: two backends' outcomes compare."""
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as exc:  # compared by the caller
        return "raised", exc


# ------------------------------------------------------------- comparisons
def same_bits(a, b) -> bool:
    """Equal dtype, shape and bytes (so NaN payloads and -0.0 count)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_same_bits(a, b, msg=""):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype, (msg, a.dtype, b.dtype)
    assert a.shape == b.shape, (msg, a.shape, b.shape)
    if a.tobytes() != b.tobytes():
        word = np.dtype(f"u{a.dtype.itemsize}") if a.dtype.itemsize in (1, 2, 4, 8) else np.uint8
        np.testing.assert_array_equal(np.ascontiguousarray(a).view(word), np.ascontiguousarray(b).view(word),
                                      err_msg=str(msg))
        raise AssertionError(msg)


# ------------------------------------------------------------------ oracles
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


def window_counts(idx, shape):
    """Number of windows that chose each input element (the gradient of a sum)."""
    H, W = shape[-2:]
    flat = idx.reshape(-1, idx.shape[-2] * idx.shape[-1]) if idx.size else idx.reshape(0, 1)
    P = int(np.prod(shape[:-2], dtype=np.int64))
    counts = np.zeros((P, H * W), dtype=np.int64)
    for p in range(flat.shape[0]):
        row = flat[p]
        counts[p] = np.bincount(row[row >= 0], minlength=H * W)
    return counts.reshape(shape)


def empty_windows(H, W, OH, OW, k, s, p, d):
    """Which output windows hold no input element (torch gives an out-of-range index there, cpool -1)."""

    def axis(L, n_out, k, s, p, d):
        pos = np.arange(n_out)[:, None] * s - p + np.arange(k)[None, :] * d
        return ((pos >= 0) & (pos < L)).any(axis=1)

    return ~(axis(H, OH, k[0], s[0], p[0], d[0])[:, None] & axis(W, OW, k[1], s[1], p[1], d[1])[None, :])


# The question's layer has one copy in the repository: examples/loop_pool.py.
if EXAMPLES not in sys.path:
    sys.path.insert(0, EXAMPLES)
from loop_pool import MaxPool2d as LoopMaxPool2d  # noqa: E402


def loop_max_pool2d(input, kernel):
    """The original question's updateOutput: (output, index of (row, col))."""
    layer = LoopMaxPool2d(kernel)
    return layer.updateOutput(input), layer.index


def loop_max_pool2d_backward(input, grad_output, index):
    """The loop layer's updateGradInput, routing each gradient to its (row, col)."""
    layer = LoopMaxPool2d(2)
    layer.index = index
    return layer.updateGradInput(input, grad_output)


# --------------------------------------------------------------- generators
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


def with_specials(rng, x, specials, count):
    """``x`` with ``count`` random elements replaced by values from ``specials`` (in place; returned)."""
    flat = x.reshape(-1)
    specials = np.asarray(specials, dtype=x.dtype)
    pick = rng.integers(0, flat.size, size=count)
    flat[pick] = specials[rng.integers(0, specials.size, size=pick.size)]
    return x


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


def unaligned_copy(x, offset=1):
    """``x``'s values in a C-contiguous array starting ``offset`` bytes into a buffer (so not aligned)."""
    buf = bytearray(x.nbytes + offset)
    view = np.frombuffer(buf, dtype=x.dtype, offset=offset, count=x.size).reshape(x.shape)
    view[...] = x
    return view


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
        yield "unaligned", unaligned_copy(x)


# ---------------------------------------------------------------- processes
def child_process_kwargs(env=None):
    """subprocess kwargs so a child ``python -c`` imports the same cpool as this process.

    The child starts in the folder that holds the imported ``cpool`` package
    (site-packages for an installed wheel, the repository for an in-place
    build): ``python -c`` puts its working directory first on sys.path, and
    from a source checkout without a build it would import the uncompiled tree.
    """
    home = os.path.dirname(os.path.dirname(os.path.abspath(cpool.__file__)))
    return {"cwd": home, "env": dict(os.environ if env is None else env)}


def run_python(code, check=True, **env):
    """Run ``python -c code`` as a user would (CPOOL_BACKEND and CPOOL_ISA unset unless given).

    Returns the completed process (stdout and stderr as text); with
    ``check``, asserts it succeeded.
    """
    full_env = dict(os.environ)
    full_env.pop("CPOOL_BACKEND", None)
    full_env.pop("CPOOL_ISA", None)
    full_env.update(env)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         **child_process_kwargs(full_env))
    if check:
        assert res.returncode == 0, res.stderr
    return res
