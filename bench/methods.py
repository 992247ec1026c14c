"""The methods the benchmark compares.

A method's ``build(case, op)`` makes, outside the timing, everything the
call needs in the method's own form, and returns ``(call, convert)``: a
zero-argument callable doing one op, and a function turning what the call
returns into cpool-format NumPy arrays for the correctness gate (None: the
call returns the op's outputs in ``cases.OP_KEYS`` order).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from cases import (
    ADAPTIVE_OPS,
    AMAX_SIZE,
    AVG_OPS,
    LAYOUTS,
    MAX_OPS,
    OP_KEYS,
    POOL1D_OPS,
    POOL3D_OPS,
    UNPOOL_OPS,
    out_len,
    slow_avg_reference,
)

# The question's loop layer lives in one place, examples/loop_pool.py (it imports examples/npnet.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from loop_pool import MaxPool2d as QuestionMaxPool2d

TORCH_PIN = "2.13.0"


# What each method name stands for, in the report's legend (also when the method is not available).
DESCRIPTIONS = {
    "loop": "the question's 4-deep Python loop layer (examples/loop_pool.py: updateOutput as asked, values-only and "
            "backward in the same style; avg_fwd / avg_bwd: the same loops with a mean per window, written for this "
            "benchmark); timed on part of the batch, cut to fit a time cap, extrapolated per image",
    "numpy-answer": "the accepted StackOverflow answer's NumPy code (update_output_2 for values, update_output_3 for "
                    "indices) batched over the N*C planes; its (plane, row, col) index tuple scatters the gradient",
    "numpy-maxchain": "np.maximum folded over the kh*kw strided slices of the input (values only; NaN payloads differ "
                      "from torch's)",
    "numpy-mean": "what a NumPy user writes for average pooling: avg_fwd x.reshape(N, C, OH, k, OW, k).mean(axis=(3, "
                  "5)) and avg_bwd np.repeat of grad_output / k^2 (kernel == stride, no padding only), gap "
                  "x.mean(axis=(2, 3)); NumPy's own summation order, so its means may differ from torch's in the last "
                  "bit",
    "cpool-numpy": "cpool.slow, cpool's NumPy fallback (step: MaxPool2d(backend='numpy'); avg_fwd / avg_bwd / gap: "
                   "cpool.slow.avg_pool2d / avg_pool2d_backward / adaptive_avg_pool2d; unpool / unpool_bwd / amax: "
                   "cpool.slow.max_unpool2d / max_unpool2d_backward / adaptive_max_pool2d; pool1d: "
                   "cpool.slow.max_pool1d; max3d_fwd / max3d_bwd / avg3d_fwd / avg3d_bwd: cpool.slow.max_pool3d / "
                   "max_pool3d_backward / avg_pool3d / avg_pool3d_backward)",
    "cpool": "cpool.max_pool2d / max_pool2d_backward / MaxPool2d (avg_fwd / avg_bwd / gap: cpool.avg_pool2d / "
             "avg_pool2d_backward / adaptive_avg_pool2d(x, 1); unpool / unpool_bwd / amax: cpool.max_unpool2d / "
             "max_unpool2d_backward / adaptive_max_pool2d(x, (7, 7), return_indices=True); pool1d: cpool.max_pool1d), "
             "the compiled backend "
             "(Cython + OpenMP), fresh "
             "outputs; on the -nhwc shapes it is given the channels-last array (the NCHW view of (N, H, W) C memory) "
             "and runs its channels-last kernels without a copy, results in channels-last memory; cpool tN: at N "
             "threads (cpool.set_num_threads(N)); cpool default: the default thread count "
             "(cpool.set_num_threads(None)), which drops to one thread while the machine is busy; max3d_fwd / "
             "max3d_bwd: cpool.max_pool3d(..., return_indices=True) / max_pool3d_backward; avg3d_fwd / avg3d_bwd: "
             "cpool.avg_pool3d / avg_pool3d_backward",
    "cpool-out": "cpool.max_pool2d(..., out=) / max_pool2d_backward(..., out=) writing into output buffers allocated "
                 "once (in the input's memory layout) and reused by every call: no fresh pages to fault in; step: "
                 "the two calls, each with out=; the average-pooling ops, pool1d and the 3-D ops likewise with out=",
    "torch": "torch.nn.functional.max_pool2d on torch.from_numpy (zero copy); bwd: "
             "torch.ops.aten.max_pool2d_with_indices_backward; step: the same two calls; avg_fwd F.avg_pool2d, avg_bwd "
             "aten.avg_pool2d_backward, gap F.adaptive_avg_pool2d(x, 1); unpool F.max_unpool2d, unpool_bwd "
             "torch.gather of grad_output at the indices per plane (the gradient's own formula), amax "
             "F.adaptive_max_pool2d(x, 7, return_indices=True); pool1d F.max_pool1d (a tensor without grad: torch's "
             "own 1-D kernel); torch tN: at N threads "
             "(torch.set_num_threads(N)); torch default: its thread count at import; max3d_fwd F.max_pool3d(..., "
             "return_indices=True), max3d_bwd aten.max_pool3d_with_indices_backward; avg3d_fwd F.avg_pool3d, avg3d_bwd "
             "aten.avg_pool3d_backward",
    "torch-cl": "torch on channels_last tensors (x.contiguous(memory_format=torch.channels_last), converted before "
                "the timing; zero copy on the -nhwc shapes): F.max_pool2d, aten.max_pool2d_with_indices_backward on "
                "channels_last grad_output / input / indices; unpool, unpool_bwd (the gather along the H*W axis of "
                "the (N, H*W, C) view) and amax on channels_last tensors; the average-pooling ops likewise (on an "
                "NCHW shape its gap sums in another order than torch's NCHW one: close, not exact); outputs in "
                "channels_last; torch-cl tN: at N threads; the 3-D ops (max3d_*, avg3d_*): as torch's on "
                "channels_last_3d tensors",
    "torch-mkldnn": "oneDNN through torch: F.max_pool2d on x.to_mkldnn() (the conversion to oneDNN's blocked layout "
                    "before the timing, the result's to_dense() after it); values only: oneDNN's inference pooling "
                    "computes no indices; avg_fwd F.avg_pool2d and gap F.adaptive_avg_pool2d(x, 1) on it likewise "
                    "(oneDNN's own sums: close to torch's, not always exact); torch-mkldnn tN: at N threads "
                    "(torch.set_num_threads)",
    "onnxruntime": "onnxruntime: a one-node ONNX MaxPool model (opset 12; pads, dilations, ceil_mode, storage_order 0; "
                   "the Indices output for fwd_idx, flat over N*C*H*W, turned into per-plane indices for the gate), "
                   "NumPy in and out, session built before the timing with intra_op_num_threads = N "
                   "(onnxruntime tN); NCHW only (no NHWC MaxPool in ONNX); forward only; avg_fwd: one AveragePool node "
                   "(opset 19, count_include_pad=1), gap: one GlobalAveragePool node (its own sums: close to torch's, "
                   "not always exact)",
    "numba": "generic @njit(parallel=True) kernels written for this benchmark: runtime geometry, torch's NaN rule; "
             "first call per dtype = JIT compile (excluded, reported); numba tN: at N threads (numba.set_num_threads)",
    "jax": "jax.jit(lax.reduce_window) on device arrays (numpy->jax copy excluded); indices: variadic reduce_window "
           "(int32); bwd/step: jax.vjp (recomputes the forward, no indices); all cores (XLA has no thread knob); "
           "first call = compile (excluded, reported)",
}


class Unsupported(Exception):
    """The method cannot do this case or op (the table says n/a, with this reason)."""


@dataclass
class Method:
    name: str
    description: str  # what the name stands for, in the report's legend
    build: Callable | None  # None: not available, see note
    ops: tuple = MAX_OPS
    set_threads: Callable | None = None  # timed at each thread count when set
    default_threads: Callable | None = None  # back to the library's own default thread count; returns it
    capped: bool = False  # timed on part of the batch, cut to fit the time cap, extrapolated
    last: bool = False  # timed after every other method in each pass
    layouts: tuple = ("nchw",)  # the memory layouts of the shapes it is timed on (cases.LAYOUTS)
    version: str | None = None
    note: str = ""  # why it is not available
    # A peer that sums average-pooling windows in its own order (or divides another way): its avg outputs pass the
    # gate within cases.SUMS_RTOL, reported as close, not exact. cpool's methods and torch's NCHW one have it False:
    # their averages must equal the reference (torch's) bit for bit.
    own_sums: bool = False


def unavailable(name, note, version=None):
    """A method that cannot run here: the legend still says what it is, the notes why it is missing."""
    return Method(name, DESCRIPTIONS.get(name, name), None, version=version, note=note)


def outputs(op, ret):
    ret = ret if isinstance(ret, tuple) else (ret,)
    return {k: np.asarray(v.detach().numpy() if hasattr(v, "detach") else v) for k, v in zip(OP_KEYS[op], ret)}


def composed(case, op, forward, forward_idx, backward, native=None, to_flat=None):
    """(call, convert) for methods with their own forward, forward with indices (returning values and
    indices in the method's native form) and backward from those indices; step is forward_idx then backward.
    ``native`` turns torch-format indices into the native ones, ``to_flat`` the native ones into torch's."""
    convert = (lambda r: dict(outputs(op, r), indices=to_flat(r[1]))) if to_flat else None
    if op == "fwd":
        return forward, None
    if op == "fwd_idx":
        return forward_idx, convert
    if op == "bwd":
        idx = native(case.ref["indices"]) if native else case.ref["indices"]
        return (lambda: backward(idx)), None

    def step():
        out, idx = forward_idx()
        return out, idx, backward(idx)
    return step, convert


def _simple(case):
    if not case.simple:
        raise Unsupported("needs kernel == stride, no padding/dilation/ceil")


def _avg(case, op):
    """avg_pool2d's (kernel, stride, padding, ceil_mode) for avg_fwd / avg_bwd; gap needs none of them."""
    if op != "gap" and case.dilation != 1:
        raise Unsupported("average pooling has no dilation")
    return case.avg_args


def _gap_shape(case):
    return case.shape[:2] + (1, 1)


# ---- loop: the question's code -----------------------------------------------------------------

class LoopMaxPool2d(QuestionMaxPool2d):
    def updateOutputValues(self, input):
        """The question's updateOutput without its index line: the values-only forward, in the same loops."""
        kernel = self.kernel_size
        self.output = np.zeros((input.shape[0], input.shape[1], input.shape[2] // kernel, input.shape[3] // kernel))
        for i in range(input.shape[0]):
            for j in range(input.shape[1]):
                for k in range(0, input.shape[2] - kernel+1, kernel):
                    for m in range(0, input.shape[3] - kernel+1, kernel):
                        self.output[i, j, k // kernel, m // kernel] = input[i, j, k : k+kernel, m : m+kernel].max()
        return self.output


class LoopAvgPool2d:
    """Average pooling written as the question's MaxPool2d is: the same four loops over (image, channel, window row,
    window column), a mean per window, float64 output, kernel == stride, no padding; the backward spreads each
    output's gradient over its window in the same loops."""

    def __init__(self, kernel_size):
        self.kernel_size = kernel_size

    def updateOutput(self, input):
        kernel = self.kernel_size
        self.output = np.zeros((input.shape[0], input.shape[1], input.shape[2] // kernel, input.shape[3] // kernel))
        for i in range(input.shape[0]):
            for j in range(input.shape[1]):
                for k in range(0, input.shape[2] - kernel+1, kernel):
                    for m in range(0, input.shape[3] - kernel+1, kernel):
                        self.output[i, j, k // kernel, m // kernel] = input[i, j, k : k+kernel, m : m+kernel].mean()
        return self.output

    def updateGradInput(self, input, gradOutput):
        kernel = self.kernel_size
        self.gradInput = np.zeros_like(input)
        for i in range(gradOutput.shape[0]):
            for j in range(gradOutput.shape[1]):
                for k in range(gradOutput.shape[2]):
                    for m in range(gradOutput.shape[3]):
                        self.gradInput[i, j, k * kernel : (k+1) * kernel, m * kernel : (m+1) * kernel] += \
                            gradOutput[i, j, k, m] / (kernel * kernel)
        return self.gradInput


def _build_loop(case, op):
    _simple(case)
    if op in AVG_OPS:
        layer = LoopAvgPool2d(case.kernel)
        if op == "avg_fwd":
            return (lambda: layer.updateOutput(case.x)), None
        return (lambda: layer.updateGradInput(case.x, case.grad_out)), None
    x, go, W = case.x, case.grad_out, case.shape[3]
    m = LoopMaxPool2d(case.kernel)

    def backward(index):  # the layer routes the gradient through its own (row, col) pairs
        m.index = index
        return m.updateGradInput(x, go)
    return composed(case, op, lambda: m.updateOutputValues(x), lambda: (m.updateOutput(x), m.index), backward,
                    native=lambda i: np.stack([i // W, i % W], axis=-1).astype(np.int32),
                    to_flat=lambda i: i[..., 0].astype(np.int64) * W + i[..., 1])


# ---- numpy-answer: the accepted answer's update_output_2 / _3, batched over the N*C planes -----

def answer_forward(input, kernel):
    N, C, H, W = input.shape
    pool_h, pool_w = H // kernel, W // kernel
    # crop input
    output = input[:, :, :pool_h * kernel, :pool_w * kernel]
    # calculate max along second axis
    output = output.reshape((-1, kernel)).max(axis=1)
    # calculate max along first axis
    return output.reshape((N, C, pool_h, kernel, pool_w)).max(axis=3)


def answer_forward_indices(input, kernel):
    """Returns (output, (plane, row, col)): as in the answer, the index tuple selects each maximum."""
    N, C, H, W = input.shape
    pool_h, pool_w = H // kernel, W // kernel
    P = N * C
    # crop input
    output = input.reshape(P, H, W)[:, :pool_h * kernel, :pool_w * kernel]
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
    return output[output_indices].reshape(N, C, pool_h, pool_w), output_indices


def answer_backward(grad_output, output_indices, input_shape):
    """Windows do not overlap (kernel == stride): one fancy-index assignment scatters the gradient."""
    N, C, H, W = input_shape
    grad_input = np.zeros((N * C, H, W), dtype=grad_output.dtype)
    grad_input[output_indices] = grad_output.reshape(-1)
    return grad_input.reshape(input_shape)


def _build_answer(case, op):
    _simple(case)
    x, go, k, W = case.x, case.grad_out, case.kernel, case.shape[3]
    per_plane = int(np.prod(case.out_shape[2:]))
    return composed(case, op, lambda: answer_forward(x, k), lambda: answer_forward_indices(x, k),
                    lambda idx: answer_backward(go, idx, x.shape),
                    native=lambda i: (np.arange(i.size) // per_plane, i.reshape(-1) // W, i.reshape(-1) % W),
                    to_flat=lambda i: (i[1].astype(np.int64) * W + i[2]).reshape(case.out_shape))


# ---- numpy-maxchain: np.maximum folded over the kh*kw strided slices ----------------------------

def maxchain_forward(x, k, s, p, d, ceil_mode=False):
    """Values only; -inf padding. NaN propagates, but np.maximum keeps the first NaN's payload where
    torch keeps the last one's."""
    N, C, H, W = x.shape
    OH, OW = (out_len(L, k, s, p, d, ceil_mode) for L in (H, W))
    rows, cols = (OH - 1) * s + (k - 1) * d + 1, (OW - 1) * s + (k - 1) * d + 1
    if p or rows > H or cols > W:
        xp = np.full((N, C, max(rows, H + p), max(cols, W + p)), -np.inf, dtype=x.dtype)
        xp[:, :, p:p + H, p:p + W] = x
    else:
        xp = x
    out = None
    for i in range(k):
        for j in range(k):
            tap = xp[:, :, i * d:i * d + (OH - 1) * s + 1:s, j * d:j * d + (OW - 1) * s + 1:s]
            out = tap.copy() if out is None else np.maximum(out, tap, out=out)
    return out


def _build_maxchain(case, op):
    return (lambda: maxchain_forward(case.x, *case.args, case.ceil_mode)), None


# ---- numpy-mean: average pooling as a NumPy user writes it ---------------------------------------

def _build_numpy_mean(case, op):
    x, go = case.x, case.grad_out
    if op == "gap":
        return (lambda: x.mean(axis=(2, 3), keepdims=True)), None
    _simple(case)
    k, (N, C, OH, OW), (H, W) = case.kernel, case.out_shape, case.shape[2:]
    if op == "avg_fwd":  # crop to whole windows, one axis per window dimension, mean over them
        return (lambda: x[:, :, :OH * k, :OW * k].reshape(N, C, OH, k, OW, k).mean(axis=(3, 5))), None

    def backward():  # each output's gradient / k^2, repeated over its window; zeros on the cropped edge
        g = np.repeat(np.repeat(go / (k * k), k, axis=2), k, axis=3)
        return np.pad(g, ((0, 0), (0, 0), (0, H - OH * k), (0, W - OW * k))) if (H, W) != g.shape[2:] else g
    return backward, None


# ---- cpool, cpool-numpy ------------------------------------------------------------------------

def _cpool_avg(mod, case, op, out=False):
    """(call, None) for cpool's (or cpool.slow's) average-pooling ops; with out=, into a buffer made once, in the
    input's memory layout."""
    x, go, args = case.x, case.grad_out, _avg(case, op)
    if op == "gap" and not hasattr(mod, "adaptive_avg_pool2d"):
        raise Unsupported(f"{mod.__name__} has no adaptive_avg_pool2d")
    shape = {"avg_fwd": case.out_shape, "avg_bwd": case.shape, "gap": _gap_shape(case)}[op]
    kw = {"out": empty_like_layout(shape, x.dtype, case.layout)} if out else {}
    if op == "avg_fwd":
        return (lambda: mod.avg_pool2d(x, *args, **kw)), None
    if op == "avg_bwd":
        return (lambda: mod.avg_pool2d_backward(go, x.shape, *args, **kw)), None
    return (lambda: mod.adaptive_avg_pool2d(x, 1, **kw)), None


def _cpool_build(mod, backend):
    def build(case, op):
        import cpool

        if op in AVG_OPS:
            return _cpool_avg(mod, case, op)
        if op in UNPOOL_OPS + ADAPTIVE_OPS:
            return _cpool_unpool_amax(mod, case, op)
        if op in POOL3D_OPS:
            return _cpool_pool3d(mod, case, op)
        if op in POOL1D_OPS:
            return _cpool_pool1d(mod, case)
        x, go, args, ceil = case.x, case.grad_out, case.args, case.ceil_mode
        if op == "fwd":
            return (lambda: mod.max_pool2d(x, *args, ceil_mode=ceil)), None
        if op == "fwd_idx":
            return (lambda: mod.max_pool2d(x, *args, ceil_mode=ceil, return_indices=True)), None
        if op == "bwd":
            idx = case.ref["indices"]
            return (lambda: mod.max_pool2d_backward(go, idx, x.shape)), None
        layer = cpool.MaxPool2d(*args, ceil_mode=ceil, backend=backend)
        # What a network runs: the layer's int64 `indices` are made for the gate only, outside the timing.
        return (lambda: (layer.forward(x), layer.backward(x, go))), \
            (lambda r: {"values": r[0], "indices": layer.indices, "grad_in": r[1]})
    return build


def _fits(case, op):
    if case.unfit(op):
        raise Unsupported(case.unfit(op))


def _cpool_unpool_amax(mod, case, op):
    """(call, None) for cpool's (or cpool.slow's) unpool, unpool_bwd and amax; unpooling's values and indices are
    cpool.max_pool2d's of the case's x (in its memory layout), made with the case, outside the timing."""
    name = {"unpool": "max_unpool2d", "unpool_bwd": "max_unpool2d_backward", "amax": "adaptive_max_pool2d"}[op]
    if not hasattr(mod, name):
        raise Unsupported(f"{mod.__name__} has no {name}")
    _fits(case, op)
    if op == "amax":
        x = case.x
        return (lambda: mod.adaptive_max_pool2d(x, AMAX_SIZE, return_indices=True)), None
    values, indices, go = case.ref["pool_values"], case.ref["pool_indices"], case.x
    if op == "unpool":
        args = case.unpool_args
        return (lambda: mod.max_unpool2d(values, indices, *args)), None
    return (lambda: mod.max_unpool2d_backward(go, indices)), None


def _cpool_pool1d(mod, case, out=False):
    """(call, None) for cpool's (or cpool.slow's) max_pool1d of a 1-D shape's (N, C, W) rows; with out=, into a
    buffer made once, in the input's memory layout."""
    if not hasattr(mod, "max_pool1d"):
        raise Unsupported(f"{mod.__name__} has no max_pool1d")
    _fits(case, "pool1d")
    x, args, ceil = case.x1d, case.args, case.ceil_mode
    kw = {"out": empty_like_layout(case.out_shape, x.dtype, case.layout)[:, :, 0, :]} if out else {}
    return (lambda: mod.max_pool1d(x, *args, ceil_mode=ceil, **kw)), None


def _cpool_pool3d(mod, case, op, out=False):
    """(call, None) for cpool's (or cpool.slow's) 3-D pooling ops; max3d_bwd's indices are the reference's, in the
    case's memory layout; with out=, into buffers made once, in that layout."""
    need = "avg_pool3d" if op.startswith("avg3d") else "max_pool3d"
    if not hasattr(mod, need):
        raise Unsupported(f"{mod.__name__} has no {need}")
    _fits(case, op)
    x, go, args, ceil = case.x, case.grad_out, case.args, case.ceil_mode
    kw = {}
    if out:
        buffer = empty_like_layout(case.shape if op.endswith("_bwd") else case.out_shape, x.dtype, case.layout)
        kw = {"out": (buffer, empty_like_layout(case.out_shape, np.int64, case.layout)) if op == "max3d_fwd"
              else buffer}
    if op == "max3d_fwd":
        return (lambda: mod.max_pool3d(x, *args, ceil_mode=ceil, return_indices=True, **kw)), None
    if op == "avg3d_fwd":
        return (lambda: mod.avg_pool3d(x, *case.avg_args, **kw)), None
    if op == "avg3d_bwd":
        return (lambda: mod.avg_pool3d_backward(go, x.shape, *case.avg_args, **kw)), None
    idx = case.ref["max3d_indices"]
    return (lambda: mod.max_pool3d_backward(go, idx, x.shape, **kw)), None


def _torch_pool3d(torch, case, op, tensor):
    """torch's 3-D pooling op on the case's arrays made tensors by ``tensor`` (their memory format picks its
    kernel)."""
    import torch.nn.functional as F

    _fits(case, op)
    xt, got = tensor(case.x), tensor(case.grad_out)
    k, s, p, d, ceil = *case.args, case.ceil_mode
    if op == "max3d_fwd":
        return lambda: F.max_pool3d(xt, k, s, p, d, ceil, return_indices=True)
    if op == "avg3d_fwd":
        return lambda: F.avg_pool3d(xt, k, s, p, ceil)
    if op == "avg3d_bwd":
        return lambda: torch.ops.aten.avg_pool3d_backward(got, xt, [k] * 3, [s] * 3, [p] * 3, ceil, True, None)
    it = tensor(case.ref["max3d_indices"])
    return lambda: torch.ops.aten.max_pool3d_with_indices_backward(got, xt, k, s, p, d, ceil, it)


def empty_like_layout(shape, dtype, layout):
    """An uninitialised (N, C, H, W) or (N, C, D, H, W) array in ``layout`` memory (nhwc: the channels last in
    memory), every page touched once (as a reused buffer is)."""
    a = np.empty(shape[:1] + shape[2:] + shape[1:2] if layout == "nhwc" else shape, dtype)
    a.fill(0)
    return np.moveaxis(a, -1, 1) if layout == "nhwc" else a


def _build_cpool_out(case, op):
    import cpool

    if op in AVG_OPS:
        return _cpool_avg(cpool, case, op, out=True)
    if op in POOL1D_OPS:
        return _cpool_pool1d(cpool, case, out=True)
    if op in POOL3D_OPS:
        return _cpool_pool3d(cpool, case, op, out=True)
    x, go, args, ceil = case.x, case.grad_out, case.args, case.ceil_mode
    wanted = ((case.out_shape, x.dtype, op != "bwd"), (case.out_shape, np.int64, op in ("fwd_idx", "step")),
              (case.shape, x.dtype, op in ("bwd", "step")))  # only the buffers the op writes
    values, indices, grad_in = (empty_like_layout(shape, dtype, case.layout) if need else None
                                for shape, dtype, need in wanted)
    if op == "fwd":
        return (lambda: cpool.max_pool2d(x, *args, ceil_mode=ceil, out=values)), None
    if op == "fwd_idx":
        return (lambda: cpool.max_pool2d(x, *args, ceil_mode=ceil, return_indices=True, out=(values, indices))), None
    if op == "bwd":
        idx = case.ref["indices"]
        return (lambda: cpool.max_pool2d_backward(go, idx, x.shape, out=grad_in)), None

    def step():
        v, i = cpool.max_pool2d(x, *args, ceil_mode=ceil, return_indices=True, out=(values, indices))
        return v, i, cpool.max_pool2d_backward(go, i, x.shape, out=grad_in)
    return step, None


def _cpool_default_threads():
    import cpool

    cpool.set_num_threads(None)
    return cpool.get_num_threads()


def _cpool(numpy=False, out=False):
    import cpool
    import cpool.slow

    if numpy:
        return Method("cpool-numpy", DESCRIPTIONS["cpool-numpy"], _cpool_build(cpool.slow, "numpy"),
                      ops=MAX_OPS + avg_ops(cpool.slow) + UNPOOL_OPS + ADAPTIVE_OPS + POOL1D_OPS + POOL3D_OPS,
                      version=cpool.__version__)
    name = "cpool-out" if out else "cpool"
    if cpool.backend != "cython":
        return unavailable(name, f"cpool's compiled backend is not active (backend={cpool.backend!r}): "
                           "python -m pip install .")
    if out and "out" not in inspect.signature(cpool.max_pool2d).parameters:
        return unavailable(name, f"the cpool imported ({cpool.__version__}, {Path(cpool.__file__).parent}) has no "
                           "out=: python -m pip install .", cpool.__version__)
    # The unpooling and adaptive ops are timed as fresh-output calls only (cpool, not cpool-out).
    new_ops = POOL3D_OPS if out else UNPOOL_OPS + ADAPTIVE_OPS + POOL3D_OPS
    return Method(name, DESCRIPTIONS[name], _build_cpool_out if out else _cpool_build(cpool, None),
                  ops=MAX_OPS + avg_ops(cpool) + new_ops + POOL1D_OPS, set_threads=cpool.set_num_threads,
                  default_threads=_cpool_default_threads, version=cpool.__version__, layouts=LAYOUTS)


def avg_ops(mod):
    """The average-pooling ops ``mod`` (cpool or cpool.slow) has: gap only with adaptive_avg_pool2d."""
    return tuple(op for op in AVG_OPS if op != "gap" or hasattr(mod, "adaptive_avg_pool2d"))


# ---- torch -------------------------------------------------------------------------------------

_TORCH_DEFAULT = []


def _torch():
    torch, missing = _torch_import("torch")
    if missing:
        return missing
    import torch.nn.functional as F

    def build(case, op):
        if op in POOL3D_OPS:
            return _torch_pool3d(torch, case, op, torch.from_numpy), None
        xt, got = torch.from_numpy(case.x), torch.from_numpy(case.grad_out)
        if op in AVG_OPS:
            return _torch_avg(torch, case, op, xt, got), None
        if op in UNPOOL_OPS + ADAPTIVE_OPS:
            return _torch_unpool_amax(torch, case, op, lambda a: torch.from_numpy(a)), None
        k, s, p, d, ceil = *case.args, case.ceil_mode
        if op in POOL1D_OPS:  # torch's own 1-D values-only kernel (max_pool1d_impl: a tensor without grad)
            _fits(case, op)
            x1 = torch.from_numpy(case.x1d)
            return (lambda: F.max_pool1d(x1, k, s, p, d, ceil)), None
        if op in ("fwd", "fwd_idx"):
            return (lambda: F.max_pool2d(xt, k, s, p, d, ceil, return_indices=op == "fwd_idx")), None
        if op == "bwd":
            it = torch.from_numpy(case.ref["indices"])
            return (lambda: torch.ops.aten.max_pool2d_with_indices_backward(got, xt, k, s, p, d, ceil, it)), None
        aten = torch.ops.aten

        def step():  # the two kernels a training step runs, without autograd's bookkeeping
            out, idx = F.max_pool2d(xt, k, s, p, d, ceil, return_indices=True)
            return out, idx, aten.max_pool2d_with_indices_backward(got, xt, k, s, p, d, ceil, idx)
        return step, None

    return _torch_method("torch", build, torch, ops=MAX_OPS + AVG_OPS + UNPOOL_OPS + ADAPTIVE_OPS + POOL1D_OPS
                         + POOL3D_OPS)


def _torch_avg(torch, case, op, xt, got):
    """torch's average-pooling op on the tensors given (their memory format picks torch's kernel)."""
    import torch.nn.functional as F

    if op == "gap":
        return lambda: F.adaptive_avg_pool2d(xt, 1)
    k, s, p, ceil = _avg(case, op)
    if op == "avg_fwd":
        return lambda: F.avg_pool2d(xt, k, s, p, ceil, True)
    return lambda: torch.ops.aten.avg_pool2d_backward(got, xt, [k, k], [s, s], [p, p], ceil, True, None)


def _torch_unpool_amax(torch, case, op, tensor):
    """torch's unpool, unpool_bwd or amax on the case's arrays made tensors by ``tensor`` (their memory format picks
    torch's kernel). unpool_bwd is torch.gather of grad_output at the indices per plane: the formula autograd's
    max_unpool2d backward computes, without autograd's bookkeeping (no forward to record first). On channels_last
    tensors the gather runs along the H*W axis of the (N, H*W, C) view of the memory, no copy."""
    import torch.nn.functional as F

    _fits(case, op)
    if op == "amax":
        xt = tensor(case.x)
        return lambda: F.adaptive_max_pool2d(xt, AMAX_SIZE, return_indices=True)
    vt, it = tensor(case.ref["pool_values"]), tensor(case.ref["pool_indices"])
    if op == "unpool":
        k, s, p, size = case.unpool_args
        return lambda: F.max_unpool2d(vt, it, k, s, p, size)
    gt, (N, C, OH, OW) = tensor(case.x), case.out_shape
    if gt.is_contiguous(memory_format=torch.channels_last) and not gt.is_contiguous():
        g3, i3 = (t.permute(0, 2, 3, 1).reshape(N, -1, C) for t in (gt, it))  # views: the memory is NHWC
        return lambda: torch.gather(g3, 1, i3).reshape(N, OH, OW, C).permute(0, 3, 1, 2)
    g3, i3 = gt.reshape(N, C, -1), it.reshape(N, C, -1)
    return lambda: torch.gather(g3, 2, i3).reshape(N, C, OH, OW)


def _torch_method(name, build, torch, layouts=("nchw",), ops=MAX_OPS + AVG_OPS + UNPOOL_OPS + ADAPTIVE_OPS + POOL3D_OPS,
                  own_sums=False):
    if not _TORCH_DEFAULT:  # torch has no "back to the default": the count it had before this benchmark set one
        _TORCH_DEFAULT.append(torch.get_num_threads())
    return Method(name, DESCRIPTIONS[name], build, ops=ops, set_threads=torch.set_num_threads,
                  default_threads=lambda: torch.set_num_threads(_TORCH_DEFAULT[0]) or _TORCH_DEFAULT[0],
                  version=torch.__version__, layouts=layouts, own_sums=own_sums)


def avg_reference():
    """(what it is, function) for cases.Case.filled's avg_reference: torch's F.avg_pool2d, aten.avg_pool2d_backward
    and F.adaptive_avg_pool2d(x, 1) on the case's arrays as they lie in memory (a -nhwc shape's are channels-last:
    torch's channels-last kernels, whose averages equal its NCHW ones but for a zero's sign, and whose gap sums in
    another order), where torch 2.13 is installed; else cpool.slow's."""
    torch, missing = _torch_import("torch")
    if missing:
        return f"cpool.slow ({missing.note})", slow_avg_reference

    def reference(case, ops):
        xt, got = torch.from_numpy(case.x), torch.from_numpy(case.grad_out)
        out = {OP_KEYS[op][0]: _torch_avg(torch, case, op, xt, got)().numpy() for op in ops if op in AVG_OPS}
        # Unpooling at 1 thread: torch's CPU max_unpool2d splits the elements (not the planes) over its threads, so
        # with overlapping windows (k3 s2) an index repeated across a split is written by two threads in no fixed
        # order. Here the repeats carry the same value (max_pool2d's values are the input at its indices), so no
        # thread count could change the answer; the reference is taken at 1 thread, in torch's sequential order
        # (the later write wins, as cpool's does), all the same, and every method, torch at every thread count
        # included, must equal it exactly.
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for op in (op for op in ops if op not in AVG_OPS):
                got_ = _torch_unpool_amax(torch, case, op, torch.from_numpy)()
                got_ = got_ if isinstance(got_, tuple) else (got_,)
                out.update((k, t.numpy()) for k, t in zip(OP_KEYS[op], got_))
        finally:
            torch.set_num_threads(before)
        return out
    return f"torch {torch.__version__} on the shape's memory layout", reference


def _torch_import(name):
    """(torch, None), or (None, an unavailable Method) when torch 2.13 is not installed."""
    if importlib.util.find_spec("torch") is None:
        return None, unavailable(name, f"torch is not installed: pip install torch=={TORCH_PIN}")
    import torch

    if torch.__version__.split("+")[0] != TORCH_PIN:  # cpool's bit-for-bit parity target is this version
        return None, unavailable(name, f"torch {torch.__version__} is installed, cpool's target is pip install "
                                 f"torch=={TORCH_PIN}", torch.__version__)
    return torch, None


def _torch_cl():
    torch, missing = _torch_import("torch-cl")
    if missing:
        return missing
    import torch.nn.functional as F

    cl = torch.channels_last

    def build(case, op):
        if op in POOL3D_OPS:
            return _torch_pool3d(torch, case, op,
                                 lambda a: torch.from_numpy(a).contiguous(memory_format=torch.channels_last_3d)), None
        # Zero copy when the case's arrays are channels-last already (the -nhwc shapes).
        xt, got = (torch.from_numpy(a).contiguous(memory_format=cl) for a in (case.x, case.grad_out))
        if op in AVG_OPS:
            return _torch_avg(torch, case, op, xt, got), None
        if op in UNPOOL_OPS + ADAPTIVE_OPS:
            return _torch_unpool_amax(torch, case, op, lambda a: torch.from_numpy(a).contiguous(memory_format=cl)), None
        k, s, p, d, ceil = *case.args, case.ceil_mode
        if op in ("fwd", "fwd_idx"):
            return (lambda: F.max_pool2d(xt, k, s, p, d, ceil, return_indices=op == "fwd_idx")), None
        aten = torch.ops.aten
        if op == "bwd":
            it = torch.from_numpy(case.ref["indices"]).contiguous(memory_format=cl)
            return (lambda: aten.max_pool2d_with_indices_backward(got, xt, k, s, p, d, ceil, it)), None

        def step():
            out, idx = F.max_pool2d(xt, k, s, p, d, ceil, return_indices=True)
            return out, idx, aten.max_pool2d_with_indices_backward(got, xt, k, s, p, d, ceil, idx)
        return step, None

    # own_sums: on an NCHW shape its gap (a channels-last mean) sums in another order than torch's NCHW reference.
    return _torch_method("torch-cl", build, torch, LAYOUTS, own_sums=True)


def _torch_mkldnn():
    torch, missing = _torch_import("torch-mkldnn")
    if missing:
        return missing
    if not torch.backends.mkldnn.is_available():
        return unavailable("torch-mkldnn", "this torch build has no oneDNN (torch.backends.mkldnn.is_available() is "
                           "False)", torch.__version__)
    import torch.nn.functional as F

    def build(case, op):
        if op == "avg_bwd":
            raise Unsupported("timed on oneDNN's inference pooling, values only (its average-pool backward is not "
                              "compared)")
        if op not in ("fwd", "avg_fwd", "gap"):
            raise Unsupported("oneDNN's inference pooling computes no indices (so no backward from them either)")
        if case.dtype != "float32":
            raise Unsupported(f"torch's mkldnn tensors pool float32 (and bfloat16) only, not {case.dtype}")
        if case.dilation != 1 and op != "gap":
            raise Unsupported("torch's mkldnn_max_pool2d and mkldnn_avg_pool2d do not support dilation")
        if op == "avg_fwd" and case.ceil_mode and case.out_shape != replace(case, ceil_mode=False).out_shape:
            # Measured: mkldnn_avg_pool2d pads the extra ceil_mode window on the right and, count_include_pad=True,
            # divides it by the whole kernel, padding beyond the input's own included; torch does not count that part.
            raise Unsupported("mkldnn_avg_pool2d divides a ceil_mode window past the padding by the whole kernel "
                              "(count_include_pad=True); torch does not count that part")
        xm = torch.from_numpy(case.x).to_mkldnn()

        def convert(r):
            return {OP_KEYS[op][0]: r.to_dense().numpy()}
        if op == "gap":
            return (lambda: F.adaptive_avg_pool2d(xm, 1)), convert
        if op == "avg_fwd":
            k, s, p, ceil = case.avg_args
            return (lambda: F.avg_pool2d(xm, k, s, p, ceil, True)), convert
        k, s, p, d, ceil = *case.args, case.ceil_mode
        return (lambda: F.max_pool2d(xm, k, s, p, d, ceil)), convert

    return _torch_method("torch-mkldnn", build, torch, LAYOUTS, own_sums=True)


# ---- onnxruntime ------------------------------------------------------------------------------

_ORT_THREADS = [1]


def _onnx_model(case, with_indices):
    """A serialized one-node ONNX model: MaxPool with the case's geometry."""
    from onnx import TensorProto, helper

    k, s, p, d = case.args
    elem = {"float16": TensorProto.FLOAT16, "float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}[case.dtype]
    outs = ["y", "i"][:1 + with_indices]
    node = helper.make_node("MaxPool", ["x"], outs, kernel_shape=[k, k], strides=[s, s], pads=[p] * 4,
                            dilations=[d, d], ceil_mode=int(case.ceil_mode), storage_order=0)
    vi = [helper.make_tensor_value_info("y", elem, None)] + [helper.make_tensor_value_info("i", TensorProto.INT64,
                                                                                            None)] * with_indices
    graph = helper.make_graph([node], "maxpool", [helper.make_tensor_value_info("x", elem, None)], vi)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    model.ir_version = 8  # opset 12's IR version: every onnxruntime since 1.10 reads it
    return model.SerializeToString()


def _onnx_avg_model(case, op):
    """A serialized one-node ONNX model: AveragePool with the case's geometry (count_include_pad=1; opset 19, whose
    onnxruntime kernel gave torch's averages bit for bit on the benchmark's shapes where opset 12's differed in the
    last bit, measured with onnxruntime 1.32), or GlobalAveragePool."""
    from onnx import TensorProto, helper

    elem = {"float16": TensorProto.FLOAT16, "float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}[case.dtype]
    if op == "gap":
        node = helper.make_node("GlobalAveragePool", ["x"], ["y"])
    else:
        k, s, p, ceil = case.avg_args
        node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[k, k], strides=[s, s], pads=[p] * 4,
                                ceil_mode=int(ceil), count_include_pad=1)
    graph = helper.make_graph([node], "avgpool", [helper.make_tensor_value_info("x", elem, None)],
                              [helper.make_tensor_value_info("y", elem, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9  # opset 19's IR version: onnxruntime 1.15 and later read it
    return model.SerializeToString()


def _onnxruntime():
    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
        return unavailable("onnxruntime", "onnxruntime is not installed: pip install onnxruntime onnx (or "
                           "pip install \".[bench,bench-onnx]\")")
    import onnxruntime as ort

    def build(case, op):
        if op == "avg_bwd":
            raise Unsupported("ONNX has no average-pool gradient operator (onnxruntime's AveragePoolGrad is "
                              "training-only)")
        if op not in ("fwd", "fwd_idx", "avg_fwd", "gap"):
            raise Unsupported("ONNX has no max-pool gradient operator (onnxruntime's MaxPoolGrad is training-only)")
        avg = op in AVG_OPS
        if avg:
            _avg(case, op)  # Unsupported where average pooling cannot run (dilation)
            if case.dtype != "float32":  # measured: NOT_IMPLEMENTED for float64 (onnxruntime 1.32)
                raise Unsupported(f"onnxruntime's CPU AveragePool / GlobalAveragePool take float32 here, not "
                                  f"{case.dtype}")
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = _ORT_THREADS[0], 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        model = _onnx_avg_model(case, op) if avg else _onnx_model(case, op == "fwd_idx")
        sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        x = np.ascontiguousarray(case.x)  # ONNX's pooling is NCHW
        feed, names = {"x": x}, ["y", "i"][:1 + (op == "fwd_idx")]
        got, want = sess.run(names, feed)[0].shape, _gap_shape(case) if op == "gap" else case.out_shape
        if got != want:  # ONNX's own output-size rule (ceil_mode's last window) differs from torch's here
            raise Unsupported(f"onnxruntime's output shape {got} differs from torch's {want} (ceil_mode's "
                              "last-window rule)")
        if avg:
            return (lambda: sess.run(names, feed)), (lambda r: {OP_KEYS[op][0]: r[0]})
        N, C, H, W = case.shape
        planes = (np.arange(N * C, dtype=np.int64) * (H * W)).reshape(N, C, 1, 1)

        def convert(r):
            out = {"values": r[0]}
            if len(r) > 1:  # flat over N*C*H*W: less each plane's offset, cpool's (and torch's) per-plane index
                out["indices"] = np.where(r[1] >= 0, r[1] - planes, r[1])
            return out
        return (lambda: sess.run(names, feed)), convert

    def set_threads(n):
        _ORT_THREADS[0] = n

    return Method("onnxruntime", DESCRIPTIONS["onnxruntime"], build, ops=MAX_OPS + AVG_OPS, set_threads=set_threads,
                  version=ort.__version__, own_sums=True)


# ---- numba -------------------------------------------------------------------------------------

_NUMBA = []


def _numba_kernels():
    """Generic njit(parallel=True) kernels, runtime geometry, torch's update rule ``v > best or v != v``
    (ties keep the first maximum, the last NaN wins). Compiled on first use."""
    if not _NUMBA:
        from numba import njit, prange

        @njit
        def span(o, k, s, p, d, L):  # the window's first and past-the-end input positions inside [0, L)
            start = o * s - p
            return start + max(0, -start + d - 1) // d * d, min(start + (k - 1) * d + 1, L)

        @njit(parallel=True)
        def fwd(x, out, idx, with_idx, k, s, p, d):
            P, H, W = x.shape
            OH, OW = out.shape[1], out.shape[2]
            for t in prange(P * OH):
                q, oh = t // OH, t % OH
                h0, h1 = span(oh, k, s, p, d, H)
                for ow in range(OW):
                    w0, w1 = span(ow, k, s, p, d, W)
                    best, bi = -np.inf, h0 * W + w0
                    for ih in range(h0, h1, d):
                        for iw in range(w0, w1, d):
                            v = x[q, ih, iw]
                            if v > best or np.isnan(v):
                                best, bi = v, ih * W + iw
                    out[q, oh, ow] = best
                    if with_idx:
                        idx[q, oh, ow] = bi

        @njit(parallel=True)
        def bwd(go, idx, gi):
            for q in prange(go.shape[0]):
                for o in range(go.shape[1]):
                    gi[q, idx[q, o]] += go[q, o]

        _NUMBA[:] = [fwd, bwd]
    return _NUMBA


def _numba():
    if importlib.util.find_spec("numba") is None:
        return unavailable("numba", "numba is not installed: pip install numba")
    import numba

    def build(case, op):
        fwd, bwd = _numba_kernels()
        x, go, P = case.x, case.grad_out, case.shape[0] * case.shape[1]

        def forward(with_idx):
            out = np.empty(case.out_shape, x.dtype)
            idx = np.empty(case.out_shape if with_idx else (1, 1, 1, 1), np.int64)
            fwd(x.reshape(P, *x.shape[2:]), out.reshape(P, *out.shape[2:]), idx.reshape(-1, *idx.shape[2:]),
                with_idx, *case.args)
            return (out, idx) if with_idx else out

        def backward(idx):
            gi = np.zeros(x.shape, x.dtype)
            bwd(go.reshape(P, -1), idx.reshape(P, -1), gi.reshape(P, -1))
            return gi
        return composed(case, op, lambda: forward(False), lambda: forward(True), backward)

    return Method("numba", DESCRIPTIONS["numba"], build,
                  set_threads=lambda n: numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS)),
                  version=numba.__version__)


# ---- jax ---------------------------------------------------------------------------------------

def _jax_functions(case):
    import jax
    import jax.numpy as jnp
    from jax import lax

    k, s, p, d = case.args
    (H, W), (OH, OW) = case.shape[2:], case.out_shape[2:]
    pads = ((0, 0), (0, 0)) + tuple((p, max(0, (n - 1) * s + (k - 1) * d + 1 - L - p)) for n, L in ((OH, H), (OW, W)))
    geom = {"window_dimensions": (1, 1, k, k), "window_strides": (1, 1, s, s), "padding": pads,
            "window_dilation": (1, 1, d, d)}
    dtype = np.dtype(case.dtype)

    def values(x):
        # A concrete (NumPy) -inf init lets jax recognise the max monoid and differentiate it.
        return lax.reduce_window(x, np.array(-np.inf, dtype), lax.max, **geom)[:, :, :OH, :OW]

    def select(a, b):
        # An order-independent total order equal to torch's rule: NaN beats everything (the larger index
        # among NaNs: the last NaN wins), else the larger value, ties to the smaller index (the first maximum).
        (av, ai), (bv, bi) = a, b
        a_nan, b_nan = jnp.isnan(av), jnp.isnan(bv)
        take_b = jnp.where(a_nan | b_nan, b_nan & (~a_nan | (bi > ai)), (bv > av) | ((bv == av) & (bi < ai)))
        return jnp.where(take_b, bv, av), jnp.where(take_b, bi, ai)

    def with_indices(x):
        iota = jnp.broadcast_to(jnp.arange(H * W, dtype=jnp.int32).reshape(H, W), x.shape)
        init = (np.array(-np.inf, dtype), np.array(np.iinfo(np.int32).max, np.int32))
        v, i = lax.reduce_window((x, iota), init, select, **geom)
        return v[:, :, :OH, :OW], i[:, :, :OH, :OW]

    def step(x, g):
        out, vjp = jax.vjp(values, x)
        return out, vjp(g)[0]

    return {"fwd": jax.jit(values), "fwd_idx": jax.jit(with_indices),
            "bwd": jax.jit(lambda x, g: jax.vjp(values, x)[1](g)[0]), "step": jax.jit(step)}


def _jax():
    if importlib.util.find_spec("jax") is None or importlib.util.find_spec("jaxlib") is None:
        return unavailable("jax", "jax is not installed: pip install jax jaxlib")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    jax.config.update("jax_enable_x64", True)  # keep float64 inputs float64

    def build(case, op):
        if op in ("bwd", "step") and case.dilation != 1:
            raise Unsupported("jax has no max-pool gradient with window dilation")
        f = _jax_functions(case)[op]
        xj, gj = jax.device_put(case.x), jax.device_put(case.grad_out)
        args = (xj,) if op in ("fwd", "fwd_idx") else (xj, gj)
        convert = (lambda r: {"values": np.asarray(r[0]), "grad_in": np.asarray(r[1])}) if op == "step" else None
        return (lambda: jax.block_until_ready(f(*args))), convert

    # jax last in every pass: after its all-core runs, with numba's OpenMP layer run in between, cpool t2's
    # backward on the large shapes measured 10x slow for a whole pass; no other timing may depend on it.
    return Method("jax", DESCRIPTIONS["jax"], build, last=True, version=jax.__version__)


FACTORIES = {
    # own_sums: the loop's and numpy-mean's means are NumPy's (its own summation order), not torch's.
    "loop": lambda: Method("loop", DESCRIPTIONS["loop"], _build_loop, ops=MAX_OPS + ("avg_fwd", "avg_bwd"), capped=True,
                           own_sums=True),
    "numpy-answer": lambda: Method("numpy-answer", DESCRIPTIONS["numpy-answer"], _build_answer),
    "numpy-maxchain": lambda: Method("numpy-maxchain", DESCRIPTIONS["numpy-maxchain"], _build_maxchain, ops=("fwd",)),
    "numpy-mean": lambda: Method("numpy-mean", DESCRIPTIONS["numpy-mean"], _build_numpy_mean, ops=AVG_OPS,
                                 own_sums=True),
    "cpool-numpy": lambda: _cpool(numpy=True),
    "cpool": _cpool,
    "cpool-out": lambda: _cpool(out=True),
    "torch": _torch,
    "torch-cl": _torch_cl,
    "torch-mkldnn": _torch_mkldnn,
    "onnxruntime": _onnxruntime,
    "numba": _numba,
    "jax": _jax,
}
METHOD_NAMES = tuple(FACTORIES)


def get_methods(names=METHOD_NAMES):
    out = []
    for name in names:
        try:
            out.append(FACTORIES[name]())
        except Exception as exc:  # noqa: BLE001 - a broken optional install must not stop the run
            out.append(unavailable(name, f"{name} failed to load: {exc!r}"))
    return out
