"""The methods the benchmark compares, as a registry.

Each :class:`Method` knows, for one :class:`Case` (input arrays plus pooling
geometry) and one operation, how to build a zero-argument callable that does
the work in the method's own native form (prepared inputs are made outside
the timed call), and how to turn what that callable returns into NumPy
arrays in cpool's format for the correctness gate.

Operations (``OPS``):

``fwd``      forward, values only
``fwd_idx``  forward with indices
``bwd``      backward: grad_input from grad_output and the forward's indices
``step``     a training step through the layer/Module API: forward with
             indices, then backward

Methods (``METHOD_NAMES``): ``loop``, ``numpy-answer``, ``numpy-maxchain``,
``cpool-numpy``, ``cpool``, ``torch``, ``numba``, ``jax``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

OPS = ("fwd", "fwd_idx", "bwd", "step")
OP_TITLES = {
    "fwd": "forward, values only",
    "fwd_idx": "forward with indices",
    "bwd": "backward (grad_input from grad_output + indices)",
    "step": "training step (forward with indices + backward, Module API)",
}

TORCH_PIN = "2.13.0"


# --------------------------------------------------------------------------
# Cases: input arrays, geometry and the reference outputs
# --------------------------------------------------------------------------


def _pair(v):
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[1]))
    return (int(v), int(v))


def pool_out_len(L, k, s, p, d, ceil_mode):
    """PyTorch's output length (aten/src/ATen/native/Pool.h)."""
    out = (L + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= L + p:
        out -= 1
    return out


@dataclass
class Case:
    """One benchmark configuration: arrays, geometry and reference outputs."""

    name: str
    shape: tuple
    dtype: str
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple = (1, 1)
    ceil_mode: bool = False
    x: np.ndarray | None = None
    grad_out: np.ndarray | None = None
    ref: dict = field(default_factory=dict)  # values, indices, grad_in

    @property
    def out_shape(self):
        N, C, H, W = self.shape
        OH = pool_out_len(H, self.kernel[0], self.stride[0], self.padding[0], self.dilation[0], self.ceil_mode)
        OW = pool_out_len(W, self.kernel[1], self.stride[1], self.padding[1], self.dilation[1], self.ceil_mode)
        return (N, C, OH, OW)

    @property
    def in_elems(self):
        return int(np.prod(self.shape))

    @property
    def out_elems(self):
        return int(np.prod(self.out_shape))

    @property
    def itemsize(self):
        return np.dtype(self.dtype).itemsize

    @property
    def simple(self):
        """kernel == stride, no padding, no dilation, floor mode: what the
        loop and the NumPy answer can do."""
        return (
            self.kernel == self.stride
            and self.kernel[0] == self.kernel[1]
            and self.padding == (0, 0)
            and self.dilation == (1, 1)
            and not self.ceil_mode
        )

    def pool_args(self):
        """Positional arguments after the input, torch/cpool order."""
        return (self.kernel, self.stride, self.padding, self.dilation, self.ceil_mode)

    def describe(self):
        k, s, p = self.kernel, self.stride, self.padding
        ks = f"k{k[0]}" if k[0] == k[1] else f"k{k[0]}x{k[1]}"
        ss = f"s{s[0]}" if s[0] == s[1] else f"s{s[0]}x{s[1]}"
        text = "x".join(map(str, self.shape)) + f" {ks} {ss}"
        if p != (0, 0):
            text += f" p{p[0]}" if p[0] == p[1] else f" p{p[0]}x{p[1]}"
        if self.dilation != (1, 1):
            text += f" d{self.dilation[0]}"
        if self.ceil_mode:
            text += " ceil"
        if self.dtype != "float32":
            text += f" {self.dtype}"
        return text

    def subset(self, n):
        """The same case on the first ``n`` images of the batch."""
        if n >= self.shape[0]:
            return self
        sub = Case(self.name, (n,) + tuple(self.shape[1:]), self.dtype, self.kernel, self.stride, self.padding,
                   self.dilation, self.ceil_mode)
        sub.x = self.x[:n]
        sub.grad_out = self.grad_out[:n]
        sub.ref = {k: v[:n] for k, v in self.ref.items()}
        return sub

    def meta(self):
        return {
            "name": self.name,
            "description": self.describe(),
            "shape": list(self.shape),
            "out_shape": list(self.out_shape),
            "dtype": self.dtype,
            "kernel": list(self.kernel),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "dilation": list(self.dilation),
            "ceil_mode": self.ceil_mode,
        }


def make_case(name, shape, kernel, stride=None, padding=0, dilation=1, ceil_mode=False, dtype="float32",
              seed=0, reference=None):
    """Build a case with random normal data and its reference outputs.

    ``reference`` is a module with cpool's ``max_pool2d`` /
    ``max_pool2d_backward`` signatures (default: ``cpool.slow``, cpool's
    NumPy reference implementation), or None-like ``False`` to skip.
    """
    kernel = _pair(kernel)
    stride = kernel if stride is None else _pair(stride)
    case = Case(name, tuple(int(s) for s in shape), str(np.dtype(dtype)), kernel, stride, _pair(padding),
                _pair(dilation), bool(ceil_mode))
    rng = np.random.default_rng(seed)
    case.x = rng.standard_normal(case.shape, dtype=np.float64).astype(case.dtype)
    case.grad_out = rng.standard_normal(case.out_shape, dtype=np.float64).astype(case.dtype)
    if reference is None:
        import cpool.slow as reference
    if reference is not False:
        values, indices = reference.max_pool2d(case.x, *case.pool_args(), return_indices=True)
        case.ref = {
            "values": values,
            "indices": indices,
            "grad_in": reference.max_pool2d_backward(case.grad_out, indices, case.x.shape),
        }
    return case


# --------------------------------------------------------------------------
# The method registry
# --------------------------------------------------------------------------


@dataclass
class Prepared:
    """A ready-to-time call and the conversion of its result for the gate."""

    call: Callable[[], object]
    to_result: Callable[[object], dict]
    note: str = ""


@dataclass
class Method:
    name: str
    description: str
    ops: tuple
    build: Callable  # (case, op) -> Prepared
    threaded: bool = False
    set_threads: Callable | None = None
    supports: Callable | None = None  # (case, op) -> None or reason it can't
    capped: bool = False  # run on a subset of the batch, time-capped, extrapolated
    measured_last: bool = False  # timed after every other variant in each pass (see bench.measure_case_op)
    available: bool = True
    note: str = ""  # why unavailable / how to install
    version: str | None = None
    warnings: list = field(default_factory=list)

    def reason_unsupported(self, case, op):
        if op not in self.ops:
            return f"{self.name} has no {op}"
        if self.supports is not None:
            return self.supports(case, op)
        return None


def _simple_only(case, op):
    if not case.simple:
        return "needs kernel == stride, no padding/dilation"
    return None


def _np_result(keys):
    def conv(ret):
        if not isinstance(ret, tuple):
            ret = (ret,)
        return {k: np.asarray(v) for k, v in zip(keys, ret)}

    return conv


# ---- loop: the question's code ---------------------------------------------


def _question_layer():
    """The question's loop MaxPool2d, from its one copy in examples/loop_pool.py."""
    import sys

    examples = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
    if examples not in sys.path:
        sys.path.insert(0, examples)
    from loop_pool import MaxPool2d

    return MaxPool2d


class LoopMaxPool2d(_question_layer()):
    """The question's ``MaxPool2d`` (``updateOutput`` as in the question,
    ``updateGradInput`` in the same loop style), plus ``updateOutputValues``,
    written for this benchmark: the same loops without the index line."""

    def updateOutputValues(self, input):
        kernel = self.kernel_size
        poolH = input.shape[2] // kernel
        poolW = input.shape[3] // kernel
        self.output = np.zeros((input.shape[0], input.shape[1], poolH, poolW))
        for i in range(input.shape[0]):
            for j in range(input.shape[1]):
                for k in range(0, input.shape[2] - kernel+1, kernel):
                    for m in range(0, input.shape[3] - kernel+1, kernel):
                        M = input[i, j, k : k+kernel, m : m+kernel]
                        self.output[i, j, k // kernel, m // kernel] = M.max()
        return self.output


def _pairs_to_flat(index, W):
    return index[..., 0].astype(np.int64) * W + index[..., 1]


def _build_loop(case, op):
    x, go = case.x, case.grad_out
    W = case.shape[3]
    m = LoopMaxPool2d(case.kernel[0])
    if op == "fwd":
        return Prepared(lambda: m.updateOutputValues(x), _np_result(["values"]))
    if op == "fwd_idx":
        def call():
            out = m.updateOutput(x)
            return out, m.index
        return Prepared(call, lambda r: {"values": r[0], "indices": _pairs_to_flat(r[1], W)})
    if op == "bwd":
        idx = case.ref["indices"]
        m.index = np.stack([idx // W, idx % W], axis=-1).astype(np.int32)
        return Prepared(lambda: m.updateGradInput(x, go), _np_result(["grad_in"]))
    if op == "step":
        def call():
            out = m.forward(x)
            return out, m.index, m.backward(x, go)
        return Prepared(call, lambda r: {"values": r[0], "indices": _pairs_to_flat(r[1], W), "grad_in": r[2]})
    raise ValueError(op)


# ---- numpy-answer: the accepted answer, batched over N*C planes -------------


def answer_forward(input, kernel):
    """``update_output_2`` of the answer, applied to every (n, c) plane at
    once: crop, max over the last axis in groups of ``kernel``, then over the
    rows."""
    N, C, H, W = input.shape
    pool_h = H // kernel
    pool_w = W // kernel
    input_h = pool_h * kernel
    input_w = pool_w * kernel

    # crop input
    output = input[:, :, :input_h, :input_w]
    # calculate max along second axis
    output = output.reshape((-1, kernel))
    output = output.max(axis=1)
    # calculate max along first axis
    output = output.reshape((N, C, pool_h, kernel, pool_w))
    output = output.max(axis=3)

    return output


def answer_forward_indices(input, kernel):
    """``update_output_3`` of the answer over every (n, c) plane at once.

    Returns ``(output, (plane, row, col))``: the index tuple, as in the
    answer, selects each maximum from the (N*C, H, W) input (row-major over
    (n, c, oh, ow)).
    """
    N, C, H, W = input.shape
    pool_h = H // kernel
    pool_w = W // kernel
    input_h = pool_h * kernel
    input_w = pool_w * kernel
    P = N * C

    # crop input
    output = input.reshape(P, H, W)[:, :input_h, :input_w]

    # calculate max along second axis
    output_tmp = output.reshape((-1, kernel))
    output_indices = output_tmp.argmax(axis=1)
    output_indices += np.arange(output_indices.shape[0]) * kernel
    output_indices = np.unravel_index(output_indices, output.shape)
    output_tmp = output[output_indices]

    # calculate max along first axis
    output_tmp = output_tmp.reshape((P, pool_h, kernel, pool_w))
    rows = np.arange(P * pool_h).reshape(P, pool_h, 1)
    output_indices_selector = (kernel * pool_w * rows).repeat(pool_w, axis=2)
    output_indices_selector += pool_w * output_tmp.argmax(axis=2)
    output_indices_selector += np.arange(pool_w)
    output_indices_selector = output_indices_selector.flatten()

    output_indices = tuple(a[output_indices_selector] for a in output_indices)
    output = output[output_indices].reshape(N, C, pool_h, pool_w)

    return output, output_indices


def answer_backward(grad_output, output_indices, input_shape):
    """The gradient with the answer's index tuple: windows do not overlap
    (kernel == stride), so a plain fancy-index assignment scatters it."""
    N, C, H, W = input_shape
    grad_input = np.zeros((N * C, H, W), dtype=grad_output.dtype)
    grad_input[output_indices] = grad_output.reshape(-1)
    return grad_input.reshape(input_shape)


def _answer_flat(index_tuple, out_shape, W):
    _, r, c = index_tuple
    return (r.astype(np.int64) * W + c).reshape(out_shape)


def _build_answer(case, op):
    x, go, k = case.x, case.grad_out, case.kernel[0]
    W, out_shape = case.shape[3], case.out_shape
    if op == "fwd":
        return Prepared(lambda: answer_forward(x, k), _np_result(["values"]))
    if op == "fwd_idx":
        return Prepared(lambda: answer_forward_indices(x, k),
                        lambda r: {"values": r[0], "indices": _answer_flat(r[1], out_shape, W)})
    if op == "bwd":
        idx = case.ref["indices"]
        N, C = case.shape[:2]
        planes = np.repeat(np.arange(N * C), idx[0, 0].size)
        flat = idx.reshape(-1)
        native = (planes, flat // W, flat % W)
        return Prepared(lambda: answer_backward(go, native, x.shape), _np_result(["grad_in"]))
    if op == "step":
        def call():
            out, ind = answer_forward_indices(x, k)
            return out, ind, answer_backward(go, ind, x.shape)
        return Prepared(call, lambda r: {"values": r[0], "indices": _answer_flat(r[1], out_shape, W),
                                          "grad_in": r[2]})
    raise ValueError(op)


# ---- numpy-maxchain: elementwise np.maximum over the kh*kw strided slices ----


def maxchain_forward(x, kernel, stride, padding, dilation, ceil_mode=False):
    """Values only: start from one strided slice per kernel tap and fold the
    others in with ``np.maximum(out, tap, out=out)``. Padding is -inf (the
    lowest integer for ints). NaN propagates, but np.maximum keeps the first
    NaN's payload where PyTorch keeps the last one."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    N, C, H, W = x.shape
    OH = pool_out_len(H, kh, sh, ph, dh, ceil_mode)
    OW = pool_out_len(W, kw, sw, pw, dw, ceil_mode)
    rows = (OH - 1) * sh + (kh - 1) * dh + 1
    cols = (OW - 1) * sw + (kw - 1) * dw + 1
    if ph or pw or rows > H + ph or cols > W + pw:
        low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        xp = np.full((N, C, max(rows, H + ph), max(cols, W + pw)), low, dtype=x.dtype)
        xp[:, :, ph:ph + H, pw:pw + W] = x
    else:
        xp = x
    out = None
    for i in range(kh):
        for j in range(kw):
            tap = xp[:, :, i * dh:i * dh + (OH - 1) * sh + 1:sh, j * dw:j * dw + (OW - 1) * sw + 1:sw]
            if out is None:
                out = tap.copy()
            else:
                np.maximum(out, tap, out=out)
    return out


def _build_maxchain(case, op):
    x = case.x
    args = (case.kernel, case.stride, case.padding, case.dilation, case.ceil_mode)
    return Prepared(lambda: maxchain_forward(x, *args), _np_result(["values"]))


# ---- cpool and cpool-numpy ---------------------------------------------------


def _build_cpool_generic(mod, backend):
    def build(case, op):
        import cpool

        x, go = case.x, case.grad_out
        args = case.pool_args()
        if op == "fwd":
            return Prepared(lambda: mod.max_pool2d(x, *args), _np_result(["values"]))
        if op == "fwd_idx":
            return Prepared(lambda: mod.max_pool2d(x, *args, return_indices=True),
                            _np_result(["values", "indices"]))
        if op == "bwd":
            idx = case.ref["indices"]
            shape = x.shape
            return Prepared(lambda: mod.max_pool2d_backward(go, idx, shape), _np_result(["grad_in"]))
        if op == "step":
            m = cpool.MaxPool2d(*args, backend=backend)

            def call():  # what a network runs: the layer's int64 `indices` are not asked for
                out = m.forward(x)
                return out, m, m.backward(x, go)

            def result(ret):  # for the correctness check only, outside the timing
                out, layer, grad_in = ret
                return {"values": np.asarray(out), "indices": np.asarray(layer.indices), "grad_in": np.asarray(grad_in)}
            return Prepared(call, result)
        raise ValueError(op)
    return build


def _make_cpool():
    try:
        import cpool
    except ImportError as exc:
        return Method("cpool", "cpool (compiled backend)", OPS, None, available=False,
                      note=f"cpool cannot be imported ({exc}); run python -m pip install .")
    ok = cpool.backend == "cython"
    return Method(
        "cpool", "cpool.max_pool2d / max_pool2d_backward / MaxPool2d (Cython + OpenMP)", OPS,
        _build_cpool_generic(cpool, "cython"), threaded=True, set_threads=cpool.set_num_threads,
        available=ok, version=cpool.__version__,
        note="" if ok else f"cpool's compiled backend is not active (backend={cpool.backend!r}); "
                           "rebuild with python -m pip install .",
    )


def _make_cpool_numpy():
    try:
        import cpool
        import cpool.slow
    except ImportError as exc:
        return Method("cpool-numpy", "cpool.slow", OPS, None, available=False,
                      note=f"cpool cannot be imported ({exc}); run python -m pip install .")
    return Method("cpool-numpy", "cpool.slow (cpool's NumPy fallback); step: MaxPool2d(backend='numpy')", OPS,
                  _build_cpool_generic(cpool.slow, "numpy"), version=cpool.__version__)


# ---- torch ---------------------------------------------------------------------


def _make_torch():
    if importlib.util.find_spec("torch") is None:
        return Method("torch", "torch", OPS, None, available=False,
                      note=f"torch is not installed: pip install torch=={TORCH_PIN}")
    import torch
    import torch.nn.functional as F

    aten = torch.ops.aten

    def to_np(keys):
        def conv(ret):
            if not isinstance(ret, tuple):
                ret = (ret,)
            return {k: v.numpy() for k, v in zip(keys, ret)}
        return conv

    def build(case, op):
        xt = torch.from_numpy(case.x)
        got = torch.from_numpy(case.grad_out)
        k, s, p, d, ceil = (list(a) if isinstance(a, tuple) else a for a in case.pool_args())
        if op == "fwd":
            return Prepared(lambda: F.max_pool2d(xt, k, s, p, d, ceil), to_np(["values"]))
        if op == "fwd_idx":
            return Prepared(lambda: F.max_pool2d(xt, k, s, p, d, ceil, return_indices=True),
                            to_np(["values", "indices"]))
        if op == "bwd":
            it = torch.from_numpy(case.ref["indices"])
            return Prepared(lambda: aten.max_pool2d_with_indices_backward(got, xt, k, s, p, d, ceil, it),
                            to_np(["grad_in"]))
        if op == "step":
            def call():
                out, idx = F.max_pool2d(xt, k, s, p, d, ceil, return_indices=True)
                return out, idx, aten.max_pool2d_with_indices_backward(got, xt, k, s, p, d, ceil, idx)
            return Prepared(call, to_np(["values", "indices", "grad_in"]))
        raise ValueError(op)

    version = torch.__version__
    m = Method("torch", "torch.nn.functional.max_pool2d on torch.from_numpy (zero copy); "
                        "bwd: torch.ops.aten.max_pool2d_with_indices_backward",
               OPS, build, threaded=True, set_threads=torch.set_num_threads, version=version)
    if version.split("+")[0] != TORCH_PIN:
        m.warnings.append(f"torch {version} is installed; cpool's parity target is torch=={TORCH_PIN}")
    return m


# ---- numba ---------------------------------------------------------------------

_NUMBA_KERNELS = None


def _numba_kernels():
    """Generic njit(parallel=True) kernels: runtime kernel/stride/padding/
    dilation, PyTorch's update rule ``v > best or v != v`` (ties keep the
    first maximum, the last NaN wins)."""
    global _NUMBA_KERNELS
    if _NUMBA_KERNELS is not None:
        return _NUMBA_KERNELS
    from numba import njit, prange

    @njit(parallel=True)
    def fwd(x, out, idx, with_idx, kh, kw, sh, sw, ph, pw, dh, dw):
        P, H, W = x.shape
        OH, OW = out.shape[1], out.shape[2]
        for t in prange(P * OH):
            p = t // OH
            oh = t - p * OH
            h0 = oh * sh - ph
            h1 = min(h0 + (kh - 1) * dh + 1, H)
            while h0 < 0:
                h0 += dh
            for ow in range(OW):
                w0 = ow * sw - pw
                w1 = min(w0 + (kw - 1) * dw + 1, W)
                while w0 < 0:
                    w0 += dw
                best = -np.inf
                bi = h0 * W + w0
                for ih in range(h0, h1, dh):
                    for iw in range(w0, w1, dw):
                        v = x[p, ih, iw]
                        if v > best or v != v:
                            best = v
                            bi = ih * W + iw
                out[p, oh, ow] = best
                if with_idx:
                    idx[p, oh, ow] = bi

    @njit(parallel=True)
    def bwd(go, idx, gi):
        P = go.shape[0]
        n = go.shape[1]
        for p in prange(P):
            for o in range(n):
                i = idx[p, o]
                if i >= 0:
                    gi[p, i] += go[p, o]

    _NUMBA_KERNELS = (fwd, bwd)
    return _NUMBA_KERNELS


def numba_forward(x, case_geom, with_idx):
    fwd, _ = _numba_kernels()
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), out_shape = case_geom
    N, C, H, W = x.shape
    OH, OW = out_shape[2], out_shape[3]
    out = np.empty((N * C, OH, OW), dtype=x.dtype)
    idx = np.empty((N * C, OH, OW) if with_idx else (1, 1, 1), dtype=np.int64)
    fwd(x.reshape(N * C, H, W), out, idx, with_idx, kh, kw, sh, sw, ph, pw, dh, dw)
    if with_idx:
        return out.reshape(out_shape), idx.reshape(out_shape)
    return out.reshape(out_shape)


def numba_backward(go, idx, input_shape):
    _, bwd = _numba_kernels()
    N, C, H, W = input_shape
    gi = np.zeros((N * C, H * W), dtype=go.dtype)
    bwd(go.reshape(N * C, -1), idx.reshape(N * C, -1), gi)
    return gi.reshape(input_shape)


def _make_numba():
    if importlib.util.find_spec("numba") is None:
        return Method("numba", "numba", OPS, None, available=False,
                      note="numba is not installed: pip install numba")
    import numba

    def set_threads(n):
        numba.set_num_threads(min(int(n), numba.config.NUMBA_NUM_THREADS))

    def build(case, op):
        x, go = case.x, case.grad_out
        geom = (case.kernel, case.stride, case.padding, case.dilation, case.out_shape)
        if op == "fwd":
            return Prepared(lambda: numba_forward(x, geom, False), _np_result(["values"]))
        if op == "fwd_idx":
            return Prepared(lambda: numba_forward(x, geom, True), _np_result(["values", "indices"]))
        if op == "bwd":
            idx = case.ref["indices"]
            return Prepared(lambda: numba_backward(go, idx, x.shape), _np_result(["grad_in"]))
        if op == "step":
            def call():
                out, idx = numba_forward(x, geom, True)
                return out, idx, numba_backward(go, idx, x.shape)
            return Prepared(call, _np_result(["values", "indices", "grad_in"]))
        raise ValueError(op)

    return Method("numba", "generic @njit(parallel=True) kernels, runtime geometry, torch's NaN rule "
                           "(first call per dtype = JIT compile, excluded, reported)",
                  OPS, build, threaded=True, set_threads=set_threads, version=numba.__version__)


# ---- jax -----------------------------------------------------------------------


def _jax_functions(case):
    import jax
    import jax.numpy as jnp
    from jax import lax

    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = case.kernel, case.stride, case.padding, case.dilation
    N, C, H, W = case.shape
    OH, OW = case.out_shape[2:]
    hi_h = max(0, (OH - 1) * sh + (kh - 1) * dh + 1 - H - ph)
    hi_w = max(0, (OW - 1) * sw + (kw - 1) * dw + 1 - W - pw)
    dims = (1, 1, kh, kw)
    strides = (1, 1, sh, sw)
    pads = ((0, 0), (0, 0), (ph, hi_h), (pw, hi_w))
    wdil = (1, 1, dh, dw)
    dtype = np.dtype(case.dtype)
    big = np.iinfo(np.int32).max

    def crop(a):
        return a[:, :, :OH, :OW]

    def values(x):
        # A concrete (NumPy) -inf init lets jax recognise the max monoid and
        # differentiate it (select_and_scatter_add).
        init = np.array(-np.inf, dtype)
        return crop(lax.reduce_window(x, init, lax.max, dims, strides, pads, window_dilation=wdil))

    def select(a, b):
        # An order-independent total order equal to torch's rule: NaN beats
        # everything (the larger index among NaNs: the last NaN wins), else
        # the larger value, ties to the smaller index (the first maximum).
        av, ai = a
        bv, bi = b
        a_nan = av != av
        b_nan = bv != bv
        take_b = jnp.where(a_nan | b_nan, b_nan & (~a_nan | (bi > ai)), (bv > av) | ((bv == av) & (bi < ai)))
        return jnp.where(take_b, bv, av), jnp.where(take_b, bi, ai)

    def with_indices(x):
        iota = (jnp.arange(H, dtype=jnp.int32)[:, None] * W + jnp.arange(W, dtype=jnp.int32)[None, :])
        iota = jnp.broadcast_to(iota, x.shape)
        init = (np.array(-np.inf, dtype), np.array(big, np.int32))
        v, i = lax.reduce_window((x, iota), init, select, dims, strides, pads, window_dilation=wdil)
        return crop(v), crop(i)

    def backward(x, g):
        return jax.vjp(values, x)[1](g)[0]

    def step(x, g):
        out, vjp = jax.vjp(values, x)
        return out, vjp(g)[0]

    return {
        "fwd": jax.jit(values),
        "fwd_idx": jax.jit(with_indices),
        "bwd": jax.jit(backward),
        "step": jax.jit(step),
    }


def _make_jax():
    if importlib.util.find_spec("jax") is None or importlib.util.find_spec("jaxlib") is None:
        return Method("jax", "jax", OPS, None, available=False,
                      note="jax is not installed: pip install jax jaxlib")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)  # keep float64 inputs float64

    def block(r):
        return jax.block_until_ready(r)

    def build(case, op):
        fns = _jax_functions(case)
        xj = jax.device_put(jnp.asarray(case.x))
        gj = jax.device_put(jnp.asarray(case.grad_out))
        f = fns[op]
        if op in ("fwd", "fwd_idx"):
            keys = ["values"] if op == "fwd" else ["values", "indices"]
            return Prepared(lambda: block(f(xj)), lambda r: _jax_np(keys, r))
        if op == "bwd":
            return Prepared(lambda: block(f(xj, gj)), lambda r: _jax_np(["grad_in"], r))
        return Prepared(lambda: block(f(xj, gj)), lambda r: _jax_np(["values", "grad_in"], r))

    def supports(case, op):
        if op in ("bwd", "step") and case.dilation != (1, 1):
            return "jax has no max-pool gradient with window dilation"
        return None

    return Method("jax", "jax.jit(lax.reduce_window) on device arrays (numpy->jax copy excluded); "
                         "indices: variadic reduce_window (int32); bwd/step: jax.vjp (recomputes the forward, "
                         "no indices); uses all cores (XLA has no thread knob); first call = compile, excluded, reported",
                  OPS, build, supports=supports, version=jax.__version__, measured_last=True)


def _jax_np(keys, r):
    if not isinstance(r, tuple):
        r = (r,)
    out = {}
    for k, v in zip(keys, r):
        a = np.asarray(v)
        out[k] = a.astype(np.int64) if k == "indices" else a
    return out


# ---- the registry ----------------------------------------------------------------

_FACTORIES = {
    "loop": lambda: Method("loop", "the question's 4-deep Python loop (updateOutput; values-only and backward "
                                   "written in the same style); small batches, time-capped, extrapolated per image",
                           OPS, _build_loop, supports=_simple_only, capped=True),
    "numpy-answer": lambda: Method("numpy-answer", "the accepted answer's update_output_2 (values) / "
                                                   "update_output_3 (indices), batched over planes; its (plane, row, col) "
                                                   "index tuple scatters the gradient",
                                   OPS, _build_answer, supports=_simple_only),
    "numpy-maxchain": lambda: Method("numpy-maxchain", "np.maximum chained over the kh*kw strided slices "
                                                       "(values only; NaN payload rule differs from torch)",
                                     ("fwd",), _build_maxchain),
    "cpool-numpy": _make_cpool_numpy,
    "cpool": _make_cpool,
    "torch": _make_torch,
    "numba": _make_numba,
    "jax": _make_jax,
}

METHOD_NAMES = tuple(_FACTORIES)


def get_methods(names=None, extra=None):
    """Build the methods named (all by default), in registry order.

    ``extra`` maps more names to ready :class:`Method` objects (tests use it
    to add a deliberately wrong method).
    """
    names = list(METHOD_NAMES if names is None else names)
    out = []
    for name in names:
        if extra and name in extra:
            out.append(extra[name])
            continue
        if name not in _FACTORIES:
            raise KeyError(f"unknown method {name!r}; known: {', '.join(METHOD_NAMES)}")
        try:
            out.append(_FACTORIES[name]())
        except Exception as exc:  # a broken optional install must not stop the run
            out.append(Method(name, name, OPS, None, available=False, note=f"{name} failed to load: {exc!r}"))
    return out
