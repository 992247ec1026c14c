"""cpool's pure-NumPy backend: the reference implementation and the fallback.

``cpool.slow.max_pool2d`` and ``cpool.slow.max_pool2d_backward`` are the
public functions computed without the compiled extension: same signatures,
same argument checks (the same code path) and the same results bit for bit
(values, indices, NaN payloads, gradients). It is the backend when the
extension is unavailable or ``CPOOL_BACKEND=numpy`` is set, and the test
suite checks the compiled backend against it (as ``bottleneck`` checks its C
functions against ``bottleneck.slow``).

As a backend (see :mod:`cpool._backend`) it provides the two functions on
validated arrays in the memory layout :func:`cpool._validation.resolve_layout`
chose, planes or channels-last:
``forward_planes(x, g, with_indices, index_dtype, channels_last, out, indices_out)`` and
``backward_planes(grad_output, indices, input_shape, channels_last, out)``.

It is vectorized over batch, channels and output positions; the only Python
loop is over the ``kh * kw`` kernel taps, visited in row-major order, which is
what makes PyTorch's tie and NaN rules come out exactly: a tap replaces the
running best when ``v > best or isnan(v)``, so ties keep the first maximum and
the last NaN wins.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ._validation import PoolGeometry, check_index_range, check_unpool_index_range, numpy_first_outside

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

__all__ = ["max_pool2d", "max_pool2d_backward", "forward_planes", "backward_planes", "first_outside"]

#: This backend's index range check (every backend has one: see
#: :func:`cpool._validation.check_index_range`).
first_outside = numpy_first_outside


def _lowest(dtype: np.dtype) -> float | int:
    """The value a window starts from: -inf for floats, the minimum for ints."""
    if dtype.kind == "f":
        return -np.inf
    return np.iinfo(dtype).min


def _tap_positions(out_len: int, k_off: int, stride: int, pad: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Input coordinate of one kernel tap for every output position, and
    whether it lies inside the input (padding is never selected)."""
    pos = np.arange(out_len, dtype=np.int64) * stride - pad + k_off
    return pos, (pos >= 0) & (pos < size)


def _reaching_taps(out_len: int, k: int, s: int, p: int, d: int, size: int) -> np.ndarray:
    """The kernel taps along one axis that lie inside the input for at
    least one output position (a superset where the kernel is no longer
    than the input; exactly those otherwise, since a kernel far larger than
    the input, a ceil_mode window clipped to it, has few that do)."""
    if k <= size:
        return np.arange(k)
    ranges = []
    for o in range(out_len):
        start = o * s - p
        lo = 0 if start >= 0 else (d - 1 - start) // d
        hi = min(k, (size - 1 - start) // d + 1) if start < size else 0
        if hi > lo:
            ranges.append(np.arange(lo, hi))
    return np.unique(np.concatenate(ranges)) if ranges else np.arange(0)


class _Taps:
    """Each kernel tap's (..., OH, OW) view of ``x`` (..., H, W): the value
    the tap sees at every output position, ``fill`` where it is padding.

    Taps are strided slices of ``x`` itself when every tap of every window
    is inside it (``complete``), else of a copy padded with ``fill``; where
    that copy would be much larger than the input (huge kernels, strides or
    padding), gathers instead. ``rows`` / ``cols`` are the taps that can
    reach the input; the others see only padding.
    """

    def __init__(self, x: np.ndarray, g: PoolGeometry, fill: float | int) -> None:
        self.x, self.g, self.fill = x, g, fill
        self.rows = _reaching_taps(g.OH, g.kh, g.sh, g.ph, g.dh, g.H)
        self.cols = _reaching_taps(g.OW, g.kw, g.sw, g.pw, g.dw, g.W)
        self.complete = False
        if not (self.rows.size and self.cols.size):
            self.mode = "none"  # no tap reaches the input (dilation only)
            return
        # The input coordinates the taps' slices span, padding included.
        self.r0 = min(0, -g.ph + int(self.rows[0]) * g.dh)
        r1 = max(g.H, (g.OH - 1) * g.sh - g.ph + int(self.rows[-1]) * g.dh + 1)
        self.c0 = min(0, -g.pw + int(self.cols[0]) * g.dw)
        c1 = max(g.W, (g.OW - 1) * g.sw - g.pw + int(self.cols[-1]) * g.dw + 1)
        self.complete = (self.r0 == 0 and r1 == g.H and self.c0 == 0 and c1 == g.W
                         and self.rows.size == g.kh and self.cols.size == g.kw)
        if self.complete:
            self.mode, self.xp = "slice", x
        elif (r1 - self.r0) * (c1 - self.c0) <= 4 * g.H * g.W + 4096:
            self.mode = "slice"
            self.xp = np.full(x.shape[:-2] + (r1 - self.r0, c1 - self.c0), fill, dtype=x.dtype)
            self.xp[..., -self.r0:-self.r0 + g.H, -self.c0:-self.c0 + g.W] = x
        else:
            self.mode = "gather"

    def __call__(self, i: int, j: int) -> np.ndarray:
        g = self.g
        if self.mode == "slice":
            a = -g.ph + i * g.dh - self.r0
            b = -g.pw + j * g.dw - self.c0
            return self.xp[..., a:a + (g.OH - 1) * g.sh + 1:g.sh, b:b + (g.OW - 1) * g.sw + 1:g.sw]
        ih, row_ok = _tap_positions(g.OH, i * g.dh, g.sh, g.ph, g.H)
        iw, col_ok = _tap_positions(g.OW, j * g.dw, g.sw, g.pw, g.W)
        v = self.x[..., np.clip(ih, 0, g.H - 1)[:, None], np.clip(iw, 0, g.W - 1)[None, :]]
        v[..., ~(row_ok[:, None] & col_ok[None, :])] = self.fill
        return v


# Memory order <-> (..., C, H, W) order, for channels-last memory.
_PLANES_VIEW = {4: (0, 3, 1, 2), 3: (2, 0, 1)}
_CHANNELS_LAST_VIEW = {4: (0, 2, 3, 1), 3: (1, 2, 0)}


def _result(a: np.ndarray, channels_last: bool, out: np.ndarray | None) -> np.ndarray:
    # A (..., C, H, W) result in the memory layout asked for, in `out` if given.
    if channels_last:
        a = a.transpose(_CHANNELS_LAST_VIEW[a.ndim])
    if out is None:
        return np.ascontiguousarray(a)
    np.copyto(out, a)
    return out


def forward_planes(x: np.ndarray, g: PoolGeometry, with_indices: bool, index_dtype: DTypeLike = np.int64,
                   channels_last: bool = False, out: np.ndarray | None = None,
                   indices_out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Max-pool ``x``. Returns ``(out, indices or None)``.

    ``x`` is (..., C, H, W) memory, or (..., H, W, C) with ``channels_last``
    (computed on a transposed view, without a copy); the results are laid out
    the same way, (..., C, OH, OW) or (..., OH, OW, C), and written into
    ``out`` / ``indices_out`` when given. Indices are of ``index_dtype``
    (int64, or int32 for planes of < 2**31 elements).
    """
    planes = x.transpose(_PLANES_VIEW[x.ndim]) if channels_last else x
    o, i = _forward_3d(planes, g, with_indices)
    o = _result(o, channels_last, out)
    if i is None:
        return o, None
    if index_dtype != np.int64:
        i = i.astype(index_dtype)
    return o, _result(i, channels_last, indices_out)


def _forward_3d(x: np.ndarray, g: PoolGeometry, with_indices: bool) -> tuple[np.ndarray, np.ndarray | None]:
    # x: (..., H, W) with any strides; results (..., OH, OW), C-contiguous.
    lead = x.shape[:-2]
    lowest = _lowest(x.dtype)
    # The NaN passes are skipped when the input has none: one read of the
    # input instead of two extra passes per tap.
    has_nan = x.dtype.kind == "f" and bool(np.isnan(x).any())
    # Padding sees the lowest value, so every tap is a plain array. A padded
    # value never beats the running best (ties keep the first), and in the
    # index path taps outside the input are masked out explicitly.
    tap = _Taps(x, g, lowest)
    complete = tap.complete  # every tap of every window is in bounds

    shape = lead + (g.OH, g.OW)
    buf = np.empty(shape, dtype=x.dtype)  # the current tap, made contiguous
    take = np.empty(shape, dtype=bool)
    scratch = np.empty(shape, dtype=bool) if has_nan else None

    def compete(i: int, j: int, best: np.ndarray) -> np.ndarray:
        """Copy tap (i, j) to `buf`; set `take` where it replaces `best`.

        NumPy's ufuncs are many times faster on contiguous operands, so each
        tap is copied once. The rule is PyTorch's: v > best, or v is NaN
        (ties keep the first maximum, the last NaN wins).
        """
        np.copyto(buf, tap(i, j))
        np.greater(buf, best, out=take)
        if scratch is not None:  # the input has NaNs
            np.isnan(buf, out=scratch)
            np.logical_or(take, scratch, out=take)
        return buf

    # Bit-exact, branch-free select: dst ^= (dst ^ src) & mask. NumPy's masked
    # copies (copyto(where=), np.where) branch per element and run ~30x slower
    # on random masks; this also keeps NaN payloads and signed zeros intact.
    blenders: dict[np.dtype, tuple[np.ndarray, np.ndarray]] = {}

    def blend(dst: np.ndarray, src: np.ndarray) -> None:
        word = np.dtype(f"u{dst.dtype.itemsize}")
        if word not in blenders:
            blenders[word] = (np.empty(shape, dtype=word), np.empty(shape, dtype=word))
        mask, diff = blenders[word]
        np.copyto(mask, take)
        np.negative(mask, out=mask)  # 1 -> all ones
        dst_bits = dst.view(word)
        np.bitwise_xor(dst_bits, src.view(word), out=diff)
        np.bitwise_and(diff, mask, out=diff)
        np.bitwise_xor(dst_bits, diff, out=dst_bits)

    if complete:
        # The first tap seeds every window; later taps only compete. Indices
        # are tracked as a tap number and expanded once at the end: tap
        # numbers only grow, so "take" is a maximum with take * t.
        out = tap(0, 0).copy()
        n_taps = g.kh * g.kw
        if with_indices:
            tap_no = np.zeros(shape, dtype=np.min_scalar_type(n_taps))
            candidate = np.empty(shape, dtype=tap_no.dtype)
        for t in range(1, n_taps):
            v = compete(*divmod(t, g.kw), out)
            blend(out, v)
            if with_indices:
                np.multiply(take, t, out=candidate, casting="unsafe")
                np.maximum(tap_no, candidate, out=tap_no)
        if not with_indices:
            return out, None
        tap_i, tap_j = np.divmod(np.arange(n_taps), g.kw)
        tap_offset = (tap_i * g.dh) * g.W + tap_j * g.dw
        window_start = (np.arange(g.OH) * g.sh)[:, None] * g.W + (np.arange(g.OW) * g.sw)[None, :]
        return out, window_start + tap_offset[tap_no]

    out = np.full(shape, lowest, dtype=x.dtype)
    idx = np.full(shape, -1, dtype=np.int64) if with_indices else None
    for i in tap.rows.tolist():
        ih, row_ok = _tap_positions(g.OH, i * g.dh, g.sh, g.ph, g.H)
        if not row_ok.any():
            continue
        for j in tap.cols.tolist():
            iw, col_ok = _tap_positions(g.OW, j * g.dw, g.sw, g.pw, g.W)
            v = compete(i, j, out)
            if idx is not None:  # with_indices
                # The first in-bounds tap of a window is taken unconditionally
                # (PyTorch initialises the index with it), and padding never is.
                np.logical_or(take, idx < 0, out=take)
                np.logical_and(take, row_ok[:, None] & col_ok[None, :], out=take)
                blend(idx, np.broadcast_to(ih[:, None] * g.W + iw[None, :], shape))
            blend(out, v)
    return out, idx


def backward_planes(go: np.ndarray, idx: np.ndarray, shape: Sequence[int], channels_last: bool = False,
                    out: np.ndarray | None = None) -> np.ndarray:
    """Scatter-add (..., C, OH, OW) ``go`` into an array of ``shape`` (..., C, H, W) by ``idx``.

    With ``channels_last`` the arrays and ``shape`` are (..., OH, OW, C) and
    (..., H, W, C) instead. The gradient goes into ``out`` when given, else
    into a new array. ``np.add.at`` applies the additions in output row-major
    order within each plane, rounding after every add in the array's dtype,
    exactly as PyTorch's CPU kernel does (float16 included); a cell's NaN is
    PyTorch's in every float dtype (:func:`_first_nan_wins`).
    """
    shape = tuple(shape)
    # Checked before the channels-last transpose: the error names the first
    # bad index in memory order, as the compiled backend's does.
    check_index_range(idx, *((shape[-3], shape[-2]) if channels_last else (shape[-2], shape[-1])))
    if channels_last:
        go, idx = go.transpose(_PLANES_VIEW[go.ndim]), idx.transpose(_PLANES_VIEW[idx.ndim])
        shape = tuple(shape[i] for i in _PLANES_VIEW[len(shape)])
    H, W = shape[-2:]
    plane = H * W
    n_out = idx.shape[-2] * idx.shape[-1]
    P = int(np.prod(idx.shape[:-2], dtype=np.int64))  # (not reshape(-1, n_out): n_out may be 0)
    flat_idx = idx.reshape(P, n_out)
    grad_in = np.zeros((P, plane), dtype=go.dtype)
    keep = flat_idx >= 0
    planes = np.broadcast_to(np.arange(P, dtype=np.int64)[:, None], flat_idx.shape)
    rows, cells, values = planes[keep], flat_idx[keep], go.reshape(P, n_out)[keep]
    with np.errstate(invalid="ignore"):  # inf + -inf: NaN, as in PyTorch
        np.add.at(grad_in, (rows, cells), values)
        if values.dtype.kind == "f":
            _first_nan_wins(grad_in, rows * plane + cells, values)
    return _result(grad_in.reshape(shape), channels_last, out)


def _first_nan_wins(grad_in: np.ndarray, cell: np.ndarray, values: np.ndarray) -> None:
    """Give the cells that received a NaN gradient PyTorch's NaN.

    PyTorch's kernel (and the compiled one) computes ``acc = acc + g``, and
    on x86 a NaN operand of that sum is returned with its payload (quieted),
    the first operand's if both are NaN: once a sum is NaN it keeps that NaN.
    ``np.add.at`` keeps the *added* NaN instead. So in each cell that gets a
    NaN gradient the result is the sum of the gradients before the first one
    if that sum is already NaN (infinities of both signs), else the first
    NaN gradient itself, quieted.
    """
    is_nan = np.isnan(values)
    if not is_nan.any():
        return
    flat = grad_in.reshape(-1)
    order = np.arange(values.size)
    first = np.full(flat.shape, values.size, dtype=np.int64)
    np.minimum.at(first, cell[is_nan], order[is_nan])
    hit = first < values.size
    before = (order < first[cell]) & hit[cell]
    prefix = np.zeros_like(flat)
    np.add.at(prefix, cell[before], values[before])
    word = np.dtype(f"u{values.dtype.itemsize}")
    quiet = word.type(1 << (np.finfo(values.dtype).nmant - 1))
    first_nan = values.view(word)[np.minimum(first[hit], values.size - 1)] | quiet
    flat.view(word)[hit] = np.where(np.isnan(prefix[hit]), prefix[hit].view(word), first_nan)


# The public pair, bound to this module by the one argument path of
# cpool.functional (imported last: cpool.functional imports the backends).
from .functional import bind  # noqa: E402

max_pool2d, max_pool2d_backward = bind(sys.modules[__name__], module=__name__)


# ----------------------------------------------------------------- average pooling
# PyTorch 2.13's CPU kernels (aten/src/ATen/native/cpu/AvgPoolKernel.cpp):
# each output sums its window's in-bounds taps in row-major order, starting
# from 0, in the accumulation type (float32 for float16, else the dtype
# itself: int64 sums wrap), then divides by the divisor (converted to the
# accumulation type; int64 divides truncating toward zero) and rounds to the
# dtype. The planes kernel stores ``0 + mean`` (so a -0.0 mean becomes +0.0);
# the channels-last one (4-D channels-last memory only) stores the mean.
# Padding taps are added here as zeros: the running sum starts at +0 and can
# never be -0, so adding +0 changes no bit (NaN payloads included).

_F16, _F32 = np.dtype(np.float16), np.dtype(np.float32)


def _acc_dtype(dtype: np.dtype) -> np.dtype:
    return _F32 if dtype == _F16 else dtype


def _axis_bounds(out_len: int, k: int, s: int, p: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output position along one axis: the window's first and last+1
    in-bounds input index, and its length counting padding (not the
    ceil-mode overhang beyond ``size + p``)."""
    start = np.arange(out_len, dtype=np.int64) * s - p
    end = np.minimum(start + k, size + p)
    padded = end - start
    return np.maximum(start, 0), np.minimum(end, size), padded


def _tap_span(out_len: int, k_off: int, s: int, p: int, size: int) -> tuple[int, int, int]:
    """The outputs [o0, o1) along one axis whose kernel tap ``k_off`` lands
    inside the input, and that tap's input index for output o0."""
    o0 = max(0, -((k_off - p) // s))
    o1 = min(out_len, (size - 1 + p - k_off) // s + 1)
    return o0, o1, o0 * s - p + k_off


def avg_divisors(g: PoolGeometry, count_include_pad: bool, divisor: int | None) -> np.ndarray | int:
    """PyTorch's ``divide_factor``: the override, else the window's size with
    padding (count_include_pad) or without it, (OH, OW) int64."""
    if divisor is not None:
        return divisor
    h0, h1, hp = _axis_bounds(g.OH, g.kh, g.sh, g.ph, g.H)
    w0, w1, wp = _axis_bounds(g.OW, g.kw, g.sw, g.pw, g.W)
    if count_include_pad:
        return hp[:, None] * wp[None, :]
    return (h1 - h0)[:, None] * (w1 - w0)[None, :]


def _divide(total: np.ndarray, div: np.ndarray | int, dtype: np.dtype) -> np.ndarray:
    """``total / div`` as PyTorch computes it in ``total``'s (accumulation) dtype."""
    if total.dtype.kind == "i":
        d = np.asarray(div, dtype=np.int64)
        # C++ integer division truncates toward zero; NumPy's floors.
        q = np.floor_divide(total, d)
        q += ((q * d) != total) & ((total < 0) != (d < 0))
        return q
    return np.divide(total, np.asarray(div, dtype=np.int64).astype(total.dtype), dtype=total.dtype)


def _window_mask(g: PoolGeometry) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    h0, h1, _ = _axis_bounds(g.OH, g.kh, g.sh, g.ph, g.H)
    w0, w1, _ = _axis_bounds(g.OW, g.kw, g.sw, g.pw, g.W)
    return (h0 < h1)[:, None] & (w0 < w1)[None, :], (h0, h1, w0, w1)


def avg_forward_planes(x: np.ndarray, g: PoolGeometry, count_include_pad: bool, divisor: int | None,
                       channels_last: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Average-pool ``x``: (..., C, H, W) memory, or (..., H, W, C) with
    ``channels_last``; the result is laid out the same way, in ``out`` when
    given."""
    with np.errstate(all="ignore"):  # overflow to inf, inf - inf: IEEE results, as torch's (silent)
        return _avg_forward(x, g, count_include_pad, divisor, channels_last, out)


def _avg_forward(x: np.ndarray, g: PoolGeometry, count_include_pad: bool, divisor: int | None,
                 channels_last: bool, out: np.ndarray | None) -> np.ndarray:
    planes = x.transpose(_PLANES_VIEW[x.ndim]) if channels_last else x
    lead = planes.shape[:-2]
    acc = _acc_dtype(x.dtype)
    tap = _Taps(planes, g, 0)  # padding adds +0: no bit changes (the sum is never -0)
    total = np.zeros(lead + (g.OH, g.OW), dtype=acc)
    # Which NaN a sum keeps when a NaN tap meets a NaN running sum is made
    # explicit (NumPy's add picks either operand, by loop and size): the
    # planes kernel (`sum += x`) keeps the running sum's NaN; torch's
    # channels-last kernel keeps the tap's (quieted) in its vector lanes and
    # in the 16-byte-vector part of its channel tail, the running sum's in
    # the last C % 4 float32 (C % 2 float64) channels (float16: the tap's in
    # every channel). Without a NaN in the input two NaNs never meet: an
    # inf - inf NaN only meets finite values and infs.
    tap_first = channels_last and x.ndim == 4
    C = planes.shape[-3] if planes.ndim >= 3 else 1
    split = C if x.dtype == _F16 else C - C % (16 // x.dtype.itemsize)  # channels [0, split) keep the tap's
    has_nan = x.dtype.kind == "f" and bool(np.isnan(x).any())
    zero = np.zeros((), dtype=acc)
    for i in tap.rows.tolist():
        for j in tap.cols.tolist():
            v = tap(i, j)
            if not has_nan:
                np.add(total, v, out=total, dtype=acc)
            elif tap_first:
                head, tail = total[..., :split, :, :], total[..., split:, :, :]
                np.add(head, v[..., :split, :, :], out=head, dtype=acc)
                np.add(v[..., :split, :, :], zero, out=head, dtype=acc, where=np.isnan(v[..., :split, :, :]))
                np.add(tail, v[..., split:, :, :], out=tail, dtype=acc, where=~np.isnan(tail))
            else:
                np.add(total, v, out=total, dtype=acc, where=~np.isnan(total))
    mean = _divide(total, avg_divisors(g, count_include_pad, divisor), acc).astype(x.dtype, copy=False)
    if not (channels_last and x.ndim == 4):
        np.add(mean, np.zeros((), dtype=x.dtype), out=mean)  # the planes kernel's `out = 0; out += mean`
    nonempty, _ = _window_mask(g)
    if not nonempty.all():  # a window without an input element averages to 0 (not reachable by the checks)
        mean[..., ~nonempty] = 0
    return _result(mean, channels_last, out)


def avg_backward_planes(go: np.ndarray, shape: Sequence[int], g: PoolGeometry, count_include_pad: bool,
                        divisor: int | None, channels_last: bool = False,
                        out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of :func:`avg_forward_planes`: ``go`` (..., C, OH, OW)
    memory (or (..., OH, OW, C)) into an array of ``shape``.

    As PyTorch's kernels (both layouts): each output's share
    ``grad_output / divisor`` (computed in the dtype; for float16 the divisor
    is first rounded to float16, as ``c10::Half``'s ``operator/(Half,
    int64_t)`` does) is added to every in-bounds element of its window,
    outputs in row-major order, rounding after every add in the dtype. Here
    one kernel tap of every window at a time, in reverse row-major tap
    order, which gives each input element its windows in that order.
    """
    with np.errstate(all="ignore"):  # a float16 divisor above 65504 is inf, as in torch
        return _avg_backward(go, tuple(shape), g, count_include_pad, divisor, channels_last, out)


def _avg_backward(go: np.ndarray, shape: tuple[int, ...], g: PoolGeometry, count_include_pad: bool,
                  divisor: int | None, channels_last: bool, out: np.ndarray | None) -> np.ndarray:
    shape = tuple(shape)
    if channels_last:
        go = go.transpose(_PLANES_VIEW[go.ndim])
        shape = tuple(shape[i] for i in _PLANES_VIEW[len(shape)])
    div = avg_divisors(g, count_include_pad, divisor)
    if go.dtype == _F16:
        delta = np.divide(go, np.asarray(div, dtype=np.int64).astype(_F16), dtype=_F16)
    else:
        delta = _divide(go, div, go.dtype)
    grad = np.zeros(shape, dtype=go.dtype)
    H, W = shape[-2:]
    # A cell receiving a NaN share while it holds a NaN keeps torch's: the
    # newer (the share) for float32/64, the older for float16 (c10::Half's
    # add in float keeps its first operand's), made explicit because NumPy's
    # add picks either operand by loop and size. Without a NaN share no two
    # NaNs meet.
    has_nan = bool(np.isnan(delta).any()) if delta.dtype.kind == "f" else False
    keep_newer = go.dtype != _F16
    # Tap (i, j) of every window at once: the shares of the outputs whose
    # tap lands inside the input, added to those cells (a strided view). A
    # cell's windows then arrive in row-major output order, as in torch's
    # loop, because the taps go in reverse row-major order: a later kernel
    # row reaches a cell from an earlier output row, a later kernel column
    # from an earlier output column.
    col_spans = [_tap_span(g.OW, j, g.sw, g.pw, W) for j in _reaching_taps(g.OW, g.kw, g.sw, g.pw, 1, W)[::-1].tolist()]
    for i in _reaching_taps(g.OH, g.kh, g.sh, g.ph, 1, H)[::-1].tolist():
        oh0, oh1, ih0 = _tap_span(g.OH, i, g.sh, g.ph, H)
        if oh0 >= oh1:
            continue
        rows = slice(ih0, ih0 + (oh1 - oh0 - 1) * g.sh + 1, g.sh)
        for ow0, ow1, iw0 in col_spans:
            if ow0 >= ow1:
                continue
            cells = grad[..., rows, iw0:iw0 + (ow1 - ow0 - 1) * g.sw + 1:g.sw]
            share = delta[..., oh0:oh1, ow0:ow1]
            if not has_nan:
                np.add(cells, share, out=cells)
            elif keep_newer:
                np.add(cells, share, out=cells)
                np.copyto(cells, share, where=np.isnan(share))
            else:
                np.add(cells, share, out=cells, where=~np.isnan(cells))
    return _result(grad, channels_last, out)


from .functional import bind_avg  # noqa: E402

avg_pool2d, avg_pool2d_backward = bind_avg(sys.modules[__name__], module=__name__)
__all__ += ["avg_pool2d", "avg_pool2d_backward", "avg_forward_planes", "avg_backward_planes"]


# ----------------------------------------------------------------- max unpooling
# PyTorch 2.13's CPU kernels (aten/src/ATen/native/cpu/MaxUnpoolKernel.cpp):
# the output starts at zero, and each input element is written to its index
# in its own (n, c) plane, in input order. Two elements with one index: the
# later one is what torch's loop leaves (on one thread; its parallel loop
# makes the choice nondeterministic across threads), and what cpool always
# gives. The backward gathers grad_output at each index.

def _planes_of(a: np.ndarray, channels_last: bool) -> tuple[np.ndarray, tuple[int, ...]]:
    """(P, L): the (n, c) planes of a (..., C, H, W) or (..., H, W, C) array, flattened."""
    planes = a.transpose(_PLANES_VIEW[a.ndim]) if channels_last else a
    lead = planes.shape[:-2]
    return planes.reshape(int(np.prod(lead)), planes.shape[-2] * planes.shape[-1]), lead


def unpool_planes(x: np.ndarray, idx: np.ndarray, size: tuple[int, int], channels_last: bool = False,
                  out: np.ndarray | None = None) -> np.ndarray:
    """Max-unpool ``x`` through ``idx`` (same shape, checked to lie in an
    ``size`` = (OH, OW) plane) into a zero (..., C, OH, OW) array, or
    (..., OH, OW, C) with ``channels_last``."""
    check_unpool_index_range(idx, *size)
    values, lead = _planes_of(x, channels_last)
    targets, _ = _planes_of(idx, channels_last)
    P, L = values.shape
    OL = size[0] * size[1]
    flat = (targets + (np.arange(P, dtype=np.int64) * OL)[:, None]).ravel()
    # Keep the last element of each index, explicitly (NumPy leaves the order
    # of a fancy assignment with repeated indices unspecified).
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    last = np.ones(ordered.size, dtype=bool)
    last[:-1] = ordered[1:] != ordered[:-1]
    winners = order[last]
    result = np.zeros(P * OL, dtype=x.dtype)
    result[flat[winners]] = values.ravel()[winners]
    return _result(result.reshape(lead + size), channels_last, out)


def unpool_backward_planes(go: np.ndarray, idx: np.ndarray, channels_last: bool = False,
                           out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of :func:`unpool_planes`: ``go`` at each index of ``idx``
    (``idx``'s shape and layout)."""
    check_unpool_index_range(idx, *(go.shape[-3:-1] if channels_last else go.shape[-2:]))
    grads, _ = _planes_of(go, channels_last)
    targets, lead = _planes_of(idx, channels_last)
    planes_shape = idx.transpose(_PLANES_VIEW[idx.ndim]).shape if channels_last else idx.shape
    gathered = np.take_along_axis(grads, targets, axis=1)
    return _result(gathered.reshape(planes_shape), channels_last, out)


from .functional import bind_unpool  # noqa: E402

max_unpool2d, max_unpool2d_backward = bind_unpool(sys.modules[__name__], module=__name__)
__all__ += ["max_unpool2d", "max_unpool2d_backward", "unpool_planes", "unpool_backward_planes"]
# ----------------------------------------------------------------- adaptive pooling
# PyTorch 2.13's CPU kernels (aten/src/ATen/native/cpu/AdaptiveAvgPoolKernel.cpp,
# AdaptiveMaxPoolKernel.cpp; windows from AdaptivePooling.h's start_index /
# end_index). Output (oh, ow) pools rows [floor(oh*H/OH), ceil((oh+1)*H/OH))
# and the columns likewise; windows differ in size, so the taps are visited
# as (i, j) offsets from each window's start up to the largest window, each
# masked by whether the window has it: every output still sees its own taps
# in row-major order.
#
# Average, planes kernel ((N, C, H, W) memory, and all 3-D input): the sum
# from 0 in the accumulation type (float32 for float16), `sum += x`, then
# `sum / kh / kw` (two roundings) rounded to the dtype.
# Average, channels-last kernel (4-D channels-last memory): vector lanes
# (the first C - C % L channels, L = 32 bytes / element size: torch's AVX2
# Vectorized width; 16 for float16, summed in float32) divide once by kh * kw;
# the remaining channels (the scalar tail) `out / kh / kw`. Which NaN a sum of
# two NaNs keeps follows torch's compiled code, measured per channel group
# (CL_NAN_RULES): the tap's ("tap first") or the running sum's.

#: torch's Vectorized<T>::size() on its AVX2 build: the channels-last kernels'
#: vector lanes per step (float16 goes through float32 sums, 16 at a time).
TORCH_LANES = {np.dtype(np.float16): 16, np.dtype(np.float32): 8, np.dtype(np.float64): 4}

#: Per dtype: (vector lanes keep the tap's NaN, width of the tail's compiled
#: SSE part, whose lanes keep the tap's NaN); the rest of the tail keeps the
#: running sum's. (float16: every channel keeps the tap's.)
CL_NAN_RULES = {np.dtype(np.float16): (True, 1), np.dtype(np.float32): (True, 4),
                np.dtype(np.float64): (True, 2)}


def channel_groups(C: int, dtype: np.dtype) -> tuple[int, int, bool]:
    """torch's channels-last average kernel's channel groups for C channels:
    ``(split, sse, vector_tap_first)``: channels [0, split) are vector lanes,
    [split, sse) tail lanes keeping the tap's NaN, [sse, C) tail lanes keeping
    the running sum's."""
    dtype = np.dtype(dtype)
    lanes = TORCH_LANES[dtype]
    vector_tap_first, width = CL_NAN_RULES[dtype]
    split = C - C % lanes
    return split, split + (C - split) // width * width, vector_tap_first


def adaptive_windows(out_len: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last+1 input index of each output's window along one axis
    (PyTorch's start_index / end_index, exact integer arithmetic)."""
    o = np.arange(out_len, dtype=np.int64)
    return (o * size) // out_len, -((-(o + 1) * size) // out_len)


def _adaptive_taps(g: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """(h0, kh, w0, kw, KH, KW): window starts and lengths, and the largest."""
    h0, h1 = adaptive_windows(g.OH, g.H)
    w0, w1 = adaptive_windows(g.OW, g.W)
    kh, kw = h1 - h0, w1 - w0
    return h0, kh, w0, kw, int(kh.max(initial=0)), int(kw.max(initial=0))


def _lanes_split(C: int, dtype: np.dtype) -> int:
    """How many leading channels torch's channels-last kernels run in vector lanes."""
    return channel_groups(C, dtype)[0]


def adaptive_avg_forward_planes(x: np.ndarray, g: Any, channels_last: bool = False,
                                out: np.ndarray | None = None) -> np.ndarray:
    """Adaptive-average-pool ``x``: (..., C, H, W) memory, or (..., H, W, C)
    with ``channels_last``; the result is laid out the same way, in ``out``
    when given."""
    if channels_last and x.shape[-1] == 1:  # one channel: planes memory
        planes_out = None if out is None else out.reshape(out.shape[:-3] + (1,) + out.shape[-3:-1])
        result = adaptive_avg_forward_planes(x.reshape(x.shape[:-3] + (1,) + x.shape[-3:-1]), g, False, planes_out)
        return result.reshape(result.shape[:-3] + result.shape[-2:] + (1,)) if out is None else out
    if g.OH == 1 and g.OW == 1:
        return adaptive_global_mean(x, channels_last, out)
    with np.errstate(all="ignore"):
        planes = x.transpose(_PLANES_VIEW[x.ndim]) if channels_last else x
        if channels_last and x.ndim == 4:  # torch's channels-last kernel
            split, sse, vector_tap_first = channel_groups(planes.shape[-3], x.dtype)
            mean = np.empty(planes.shape[:-2] + (g.OH, g.OW), dtype=x.dtype)
            for lo, hi, once, tap_first in ((0, split, True, vector_tap_first), (split, sse, False, True),
                                            (sse, planes.shape[-3], False, False)):
                mean[..., lo:hi, :, :] = _adaptive_mean(planes[..., lo:hi, :, :], g, once, tap_first)
        else:
            mean = _adaptive_mean(planes, g, False, False)
        return _result(mean, channels_last, out)


def _add_first_nan(first: np.ndarray, second: np.ndarray, acc: np.dtype, has_nan: bool) -> np.ndarray:
    """``first + second`` in ``acc``, where two NaNs give ``first``'s (quieted),
    as a compiled ``first + second`` on x86 does; NumPy's own loops may
    return either operand's."""
    total = np.add(first, second, dtype=acc)
    if has_nan:
        first_nan = np.isnan(first)
        if first_nan.any():
            quiet = np.add(first, np.zeros((), acc), dtype=acc)  # one NaN operand: its payload, quieted
            np.copyto(total, quiet, where=first_nan)
    return total


def _adaptive_mean(planes: np.ndarray, g: Any, one_division: bool, tap_first: bool) -> np.ndarray:
    lead = planes.shape[:-2]
    acc = _acc_dtype(planes.dtype)
    total = np.zeros(lead + (g.OH, g.OW), dtype=acc)
    h0, kh, w0, kw, KH, KW = _adaptive_taps(g)
    if total.size == 0:
        return total.astype(planes.dtype)
    has_nan = bool(np.isnan(planes).any())
    for i in range(KH):
        rows, row_ok = np.minimum(h0 + i, g.H - 1), i < kh
        for j in range(KW):
            cols, col_ok = np.minimum(w0 + j, g.W - 1), j < kw
            tap = planes[..., rows[:, None], cols[None, :]]
            mask = row_ok[:, None] & col_ok[None, :]
            new = _add_first_nan(tap, total, acc, has_nan) if tap_first else _add_first_nan(total, tap, acc, has_nan)
            np.copyto(total, new, where=mask)
    kh_, kw_ = kh.astype(acc)[:, None], kw.astype(acc)[None, :]
    if one_division:
        mean = total / (kh[:, None] * kw[None, :]).astype(acc)
    else:
        mean = total / kh_ / kw_
    return mean.astype(planes.dtype, copy=False)


def adaptive_max_forward_planes(x: np.ndarray, g: Any, with_indices: bool, channels_last: bool = False,
                                out: np.ndarray | None = None, indices_out: np.ndarray | None = None
                                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Adaptive-max-pool ``x`` (memory as :func:`adaptive_avg_forward_planes`).
    Returns ``(values, int64 indices or None)``: each window's maximum, ties
    to the first, the last NaN winning, as PyTorch (both kernels alike)."""
    planes = x.transpose(_PLANES_VIEW[x.ndim]) if channels_last else x
    lead = planes.shape[:-2]
    h0, kh, w0, kw, KH, KW = _adaptive_taps(g)
    shape = lead + (g.OH, g.OW)
    best = np.full(shape, -np.inf, dtype=x.dtype)
    idx = np.empty(shape, dtype=np.int64)
    idx[...] = h0[:, None] * g.W + w0[None, :]
    if best.size:
        take = np.empty(shape, dtype=bool)
        for i in range(KH):
            rows, row_ok = np.minimum(h0 + i, g.H - 1), i < kh
            for j in range(KW):
                cols, col_ok = np.minimum(w0 + j, g.W - 1), j < kw
                tap = planes[..., rows[:, None], cols[None, :]]
                np.greater(tap, best, out=take)
                np.logical_or(take, np.isnan(tap), out=take)
                np.logical_and(take, row_ok[:, None] & col_ok[None, :], out=take)
                np.copyto(best, tap, where=take)
                np.copyto(idx, (rows[:, None] * g.W + cols[None, :]), where=take)
    values = _result(best, channels_last, out)
    if not with_indices:
        return values, None
    return values, _result(idx, channels_last, indices_out)


def adaptive_avg_backward_planes(go: np.ndarray, shape: Sequence[int], channels_last: bool = False,
                                 out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_forward_planes`: ``go`` (..., C, OH, OW)
    memory (or (..., OH, OW, C)) into an array of ``shape``.

    As PyTorch's kernels: each output's share (planes: ``g / kh / kw``,
    rounding after each division in the dtype; channels-last vector lanes:
    ``g / (kh * kw)``) is added to every element of its window, outputs in
    row-major order, rounding after every add in the dtype. Here each input
    element receives its windows' shares in that order.
    """
    with np.errstate(all="ignore"):
        shape = tuple(shape)
        if (go.shape[-3:-1] if channels_last else go.shape[-2:]) == (1, 1):
            return _global_mean_backward(go, shape, channels_last, out)
        if channels_last:
            go_p = go.transpose(_PLANES_VIEW[go.ndim])
            pshape = tuple(shape[i] for i in _PLANES_VIEW[len(shape)])
        else:
            go_p, pshape = go, shape
        grad = np.zeros(pshape, dtype=go.dtype)
        if channels_last and go.ndim == 4:
            split = _lanes_split(pshape[-3], go.dtype)
            grad[..., :split, :, :] = _adaptive_scatter(go_p[..., :split, :, :], (pshape[-2], pshape[-1]), vector=True)
            grad[..., split:, :, :] = _adaptive_scatter(go_p[..., split:, :, :], (pshape[-2], pshape[-1]), vector=False)
        else:
            grad[...] = _adaptive_scatter(go_p, (pshape[-2], pshape[-1]), vector=False)
        return _result(grad, channels_last, out)


def _divide_by(a: np.ndarray, d: np.ndarray) -> np.ndarray:
    # a / d in a's dtype, d an int64 count converted to that dtype first (for
    # float16 c10::Half's operator/(Half, int64_t): the count rounded to half).
    return np.divide(a, d.astype(a.dtype), dtype=a.dtype)


def _adaptive_scatter(go: np.ndarray, plane: tuple[int, int], vector: bool) -> np.ndarray:
    H, W = plane
    OH, OW = go.shape[-2:]
    grad = np.zeros(go.shape[:-2] + (H, W), dtype=go.dtype)
    if grad.size == 0 or OH == 0 or OW == 0:
        return grad
    h0, h1 = adaptive_windows(OH, H)
    w0, w1 = adaptive_windows(OW, W)
    kh, kw = (h1 - h0)[:, None], (w1 - w0)[None, :]
    if vector:
        delta = _divide_by(go, kh * kw)
    else:
        delta = _divide_by(_divide_by(go, kh), kw)
    # Windows holding input row ih: output rows first_h[ih] .. first_h[ih] + count_h[ih] - 1.
    ih, iw = np.arange(H), np.arange(W)
    first_h = np.searchsorted(h1, ih, side="right")
    count_h = np.searchsorted(h0, ih, side="right") - first_h
    first_w = np.searchsorted(w1, iw, side="right")
    count_w = np.searchsorted(w0, iw, side="right") - first_w
    has_nan = bool(np.isnan(delta).any())
    for r in range(int(count_h.max())):
        ok_h = r < count_h
        oh = np.minimum(first_h + r, OH - 1)
        for c in range(int(count_w.max())):
            ok_w = c < count_w
            ow = np.minimum(first_w + c, OW - 1)
            share = delta[..., oh[:, None], ow[None, :]]
            mask = ok_h[:, None] & ok_w[None, :]
            # Two NaNs: torch keeps the newer share's for float32/64, the
            # element's for float16.
            if go.dtype == _F16:
                new = _add_first_nan(grad, share, grad.dtype, has_nan)
            else:
                new = _add_first_nan(share, grad, grad.dtype, has_nan)
            np.copyto(grad, new, where=mask)
    return grad


# Global average (output 1x1): PyTorch's adaptive_avg_pool2d computes it as
# ``input.mean((-1, -2), keepdim=True)`` (aten/src/ATen/native/
# AdaptiveAveragePooling.cpp), the sum reduction's cascade order
# (aten/src/ATen/native/cpu/SumKernel.cpp) then one division by H * W (float16:
# summed in float32, divided in float32, rounded once). Emulated here: planes
# memory sums each plane as `vectorized_inner_sum` (H*W >= L: L-element
# vectors in 4 interleaved cascades, the scalar tail, then the lanes) or
# `row_sum` (H*W < L); channels-last memory as `vectorized_outer_sum` (groups
# of 32 channels in one cascade each, then 8, then single channels in 4
# interleaved cascades) or `scalar_outer_sum` (C < L).

def _ceil_log2(x: int) -> int:
    return 1 if x <= 2 else (x - 1).bit_length()


def _accumulate(acc: np.ndarray, item: np.ndarray) -> None:
    """``acc += item`` keeping ``acc``'s NaN when both are NaN (torch's `acc += x`)."""
    np.copyto(acc, _add_first_nan(acc, item, acc.dtype, True))


_Add = Callable[[np.ndarray, np.ndarray], None]


def _plain_add(acc: np.ndarray, item: np.ndarray) -> None:
    np.add(acc, item, out=acc)


def _multi_row_sum(get: Callable[[int], np.ndarray], size: int, zeros: Callable[[], np.ndarray],
                   add: _Add) -> np.ndarray:
    """SumKernel.cpp's multi_row_sum: a 4-level cascade over ``size`` items
    (``get(i)``: an array of the accumulators' shape)."""
    levels = 4
    power = max(4, _ceil_log2(size) // levels)
    step, mask = 1 << power, (1 << power) - 1
    acc = [zeros() for _ in range(levels)]
    i = 0
    while i + step <= size:
        for _ in range(step):
            add(acc[0], get(i))
            i += 1
        for j in range(1, levels):
            add(acc[j], acc[j - 1])
            acc[j - 1][...] = 0
            if i & (mask << (j * power)):
                break
    while i < size:
        add(acc[0], get(i))
        i += 1
    for j in range(1, levels):
        add(acc[0], acc[j])
    return acc[0]


def _row_sum(items: np.ndarray, add: _Add) -> np.ndarray:
    """SumKernel.cpp's row_sum over axis 0 of ``items``: four interleaved
    cascades (item i in the (i % 4)-th), the leftover items into the first,
    then the four combined in order."""
    size = items.shape[0]
    ilp = size // 4
    grouped = items[:ilp * 4].reshape((ilp, 4) + items.shape[1:])
    part = _multi_row_sum(lambda i: grouped[i], ilp, lambda: np.zeros((4,) + items.shape[1:], items.dtype), add)
    for i in range(ilp * 4, size):
        add(part[0], items[i])
    for k in range(1, 4):
        add(part[0], part[k])
    return part[0]


def _global_sum_planes(planes: np.ndarray, add: _Add) -> np.ndarray:
    # planes: (P, HW) contiguous, in the accumulation type; returns (P,).
    P, n = planes.shape
    lanes = TORCH_LANES[np.dtype(np.float32) if planes.dtype == _F32 else planes.dtype]
    if n < lanes:
        return _row_sum(planes.T, add)
    nvec = n // lanes
    vec = planes[:, :nvec * lanes].reshape(P, nvec, lanes).transpose(1, 0, 2)  # (nvec, P, lanes)
    vacc = _row_sum(vec, add)
    final = np.zeros(P, dtype=planes.dtype)
    for k in range(nvec * lanes, n):
        add(final, planes[:, k])
    for k in range(lanes):
        add(final, vacc[:, k])
    return final


def _global_sum_channels_last(img: np.ndarray, add: _Add) -> np.ndarray:
    # img: (N, HW, C) in the accumulation type; returns (N, C).
    N, n, C = img.shape
    lanes = TORCH_LANES[np.dtype(np.float32) if img.dtype == _F32 else img.dtype]
    total = np.zeros((N, C), dtype=img.dtype)
    items = img.transpose(1, 0, 2)  # (HW, N, C)
    if C >= lanes:
        j = 0
        wide = C // (4 * lanes) * 4 * lanes
        if wide:
            total[:, :wide] = _multi_row_sum(lambda i: items[i, :, :wide], n,
                                             lambda: np.zeros((N, wide), img.dtype), add)
            j = wide
        narrow = j + (C - j) // lanes * lanes
        if narrow > j:
            total[:, j:narrow] = _row_sum(items[:, :, j:narrow], add)
        if narrow < C:
            total[:, narrow:] = _row_sum(items[:, :, narrow:], add)
        return total
    quad = C // 4 * 4
    if quad:
        total[:, :quad] = _multi_row_sum(lambda i: items[i, :, :quad], n, lambda: np.zeros((N, quad), img.dtype),
                                         add)
    if quad < C:
        total[:, quad:] = _row_sum(items[:, :, quad:], add)
    return total


def adaptive_global_mean(x: np.ndarray, channels_last: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """adaptive_avg_pool2d(x, 1) as PyTorch computes it: ``x.mean((-1, -2))``.
    ``x`` is (..., C, H, W) memory, or (..., H, W, C) with ``channels_last``."""
    with np.errstate(all="ignore"):
        acc = _acc_dtype(x.dtype)
        add = _accumulate if np.isnan(x).any() else _plain_add
        if channels_last:  # (N, H, W, C) or (H, W, C) memory: torch's mean follows the strides
            x4 = x if x.ndim == 4 else x[None]
            N, H, W, C = x4.shape
            total = _global_sum_channels_last(x4.reshape(N, H * W, C).astype(acc, copy=False), add)
            shape = x.shape[:-3] + (1, 1, C)
        else:
            H, W = x.shape[-2:]
            total = _global_sum_planes(x.reshape(-1, H * W).astype(acc, copy=False), add)
            shape = x.shape[:-2] + (1, 1)
        total = np.add(np.zeros((), acc), total)  # the sum's output starts from 0
        mean = np.divide(total, acc.type(H * W), dtype=acc).astype(x.dtype, copy=False).reshape(shape)
        if out is None:
            return np.ascontiguousarray(mean)
        np.copyto(out, mean)
        return out


def _global_mean_backward(go: np.ndarray, shape: tuple[int, ...], channels_last: bool,
                          out: np.ndarray | None) -> np.ndarray:
    # The gradient of x.mean((-1, -2)) as torch's autograd computes it:
    # grad_output / (H * W) (float16: in float32, rounded once), broadcast.
    H, W = (shape[-3], shape[-2]) if channels_last else (shape[-2], shape[-1])
    acc = _acc_dtype(go.dtype)
    share = np.divide(go.astype(acc, copy=False), acc.type(H * W), dtype=acc).astype(go.dtype, copy=False)
    grad = np.broadcast_to(share, shape)
    if out is None:
        return np.ascontiguousarray(grad)
    np.copyto(out, grad)
    return out


from .functional import bind_adaptive  # noqa: E402

(adaptive_avg_pool2d, adaptive_avg_pool2d_backward, adaptive_max_pool2d,
 adaptive_max_pool2d_backward) = bind_adaptive(sys.modules[__name__], module=__name__)
__all__ += ["adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d",
            "adaptive_max_pool2d_backward", "adaptive_avg_forward_planes", "adaptive_avg_backward_planes",
            "adaptive_max_forward_planes"]


# ----------------------------------------------------------------- 3-D average pooling
# PyTorch 2.13's CPU avg_pool3d (AveragePool3d.cpp's avg_pool3d_out_frame and
# avg_pool3d_backward_out_frame) runs one scalar loop for both memory formats
# (a channels_last_3d tensor is pooled through a contiguous copy), so unlike
# 2-D there are no per-layout rules. Forward: each output sums its window's
# in-bounds taps in (depth, row, column) order from 0 in the dtype (`sum +=
# x`: of two NaNs the running sum's stays; int64 wraps), divides by the
# divisor converted to the dtype (int64: truncating) and stores `0 + mean`
# (a -0.0 mean becomes +0.0). Backward: each output's share `grad_output /
# divisor` is added to every in-bounds element of its window, outputs in
# row-major order, rounding after every add; a cell holding a NaN keeps it
# (the older of two NaN shares, unlike 2-D). float16 is not supported there.

# Memory order <-> (..., C, D, H, W) order, for channels-last-3d memory.
_VOLUMES_VIEW = {5: (0, 4, 1, 2, 3), 4: (3, 0, 1, 2)}
_CHANNELS_LAST_3D_VIEW = {5: (0, 2, 3, 4, 1), 4: (1, 2, 3, 0)}


def _result3d(a: np.ndarray, channels_last: bool, out: np.ndarray | None) -> np.ndarray:
    # A (..., C, D, H, W) result in the memory layout asked for, in `out` if given.
    return _result(a.transpose(_CHANNELS_LAST_3D_VIEW[a.ndim]) if channels_last else a, False, out)


def _axes3d(g: Any) -> tuple[tuple[int, int, int, int, int], ...]:
    # (output size, kernel, stride, padding, input size) per spatial axis.
    return ((g.OD, g.kd, g.sd, g.pd, g.D), (g.OH, g.kh, g.sh, g.ph, g.H), (g.OW, g.kw, g.sw, g.pw, g.W))


def avg3d_divisors(g: Any, count_include_pad: bool, divisor: int | None) -> np.ndarray | int:
    """PyTorch's ``divide_factor`` per output, (OD, OH, OW) int64 (or the override)."""
    if divisor is not None:
        return divisor
    (d0, d1, dp), (h0, h1, hp), (w0, w1, wp) = (_axis_bounds(*axis) for axis in _axes3d(g))
    if count_include_pad:
        return dp[:, None, None] * hp[None, :, None] * wp[None, None, :]
    return (d1 - d0)[:, None, None] * (h1 - h0)[None, :, None] * (w1 - w0)[None, None, :]


def avg3d_forward_planes(x: np.ndarray, g: Any, count_include_pad: bool, divisor: int | None,
                         channels_last: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Average-pool ``x``: (..., C, D, H, W) memory, or (..., D, H, W, C) with
    ``channels_last``; the result is laid out the same way, in ``out`` when
    given."""
    with np.errstate(all="ignore"):  # overflow to inf, inf - inf: IEEE results, as torch's (silent)
        vol = x.transpose(_VOLUMES_VIEW[x.ndim]) if channels_last else x
        # Zero padding on every side a window reaches (its padding and any
        # ceil-mode overhang), so each tap is one strided slice: adding +0
        # to a sum that starts at +0 changes no bit (it is never -0, and a
        # NaN sum keeps its payload).
        pads = [(p, max(0, (o - 1) * s + k - p - n)) for o, k, s, p, n in _axes3d(g)]
        xp = np.pad(vol, [(0, 0)] * (vol.ndim - 3) + pads)
        total = np.zeros(vol.shape[:-3] + (g.OD, g.OH, g.OW), dtype=x.dtype)
        # NumPy's add may keep either NaN of two; torch keeps the running sum's.
        has_nan = x.dtype.kind == "f" and bool(np.isnan(x).any())
        span = [slice(None)] * (vol.ndim - 3)
        for i in range(g.kd):
            for j in range(g.kh):
                for k in range(g.kw):
                    v = xp[tuple(span) + (slice(i, i + (g.OD - 1) * g.sd + 1, g.sd),
                                          slice(j, j + (g.OH - 1) * g.sh + 1, g.sh),
                                          slice(k, k + (g.OW - 1) * g.sw + 1, g.sw))]
                    np.add(total, v, out=total, where=~np.isnan(total) if has_nan else True)
        mean = _divide(total, avg3d_divisors(g, count_include_pad, divisor), x.dtype)
        np.add(mean, np.zeros((), dtype=x.dtype), out=mean)  # torch's `*op = 0; *op += sum / divide_factor`
        return _result3d(mean, channels_last, out)


def _first_windows(n: int, k: int, s: int, p: int) -> np.ndarray:
    # Per input position along an axis: the first output whose window holds it.
    return np.maximum(0, -((k - 1 - np.arange(n) - p) // s))


def avg3d_backward_planes(go: np.ndarray, shape: Sequence[int], g: Any, count_include_pad: bool,
                          divisor: int | None, channels_last: bool = False,
                          out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of :func:`avg3d_forward_planes`: ``go`` (..., C, OD, OH, OW)
    memory (or channels-last) into an array of ``shape``. Each input element
    receives the shares of the windows holding it in output row-major order:
    the r-th such window along depth, height and width, in (r_d, r_h, r_w)
    order."""
    with np.errstate(all="ignore"):
        shape = tuple(shape)
        if channels_last:
            go = go.transpose(_VOLUMES_VIEW[go.ndim])
            shape = tuple(shape[i] for i in _VOLUMES_VIEW[len(shape)])
        delta = _divide(go, avg3d_divisors(g, count_include_pad, divisor), go.dtype)
        grad = np.zeros(shape, dtype=go.dtype)
        has_nan = delta.dtype.kind == "f" and bool(np.isnan(delta).any())
        zero = np.zeros((), dtype=go.dtype)
        per_axis = []
        for o, k, s, p, n in _axes3d(g):
            first, pos = _first_windows(n, k, s, p), np.arange(n)
            steps = []
            for r in range(min(-(-k // s), o)):
                idx = first + r
                steps.append((np.minimum(idx, o - 1), (idx < o) & (idx * s - p <= pos)))
            per_axis.append(steps)
        for od, okd in per_axis[0]:
            for oh, okh in per_axis[1]:
                for ow, okw in per_axis[2]:
                    share = delta[..., od[:, None, None], oh[None, :, None], ow[None, None, :]]
                    np.copyto(share, zero, where=~(okd[:, None, None] & okh[None, :, None] & okw[None, None, :]))
                    # a cell holding a NaN keeps it (NumPy's add may keep either NaN)
                    np.add(grad, share, out=grad, where=~np.isnan(grad) if has_nan else True)
        return _result3d(grad, channels_last, out)


from .functional import bind_avg3d  # noqa: E402

avg_pool3d, avg_pool3d_backward = bind_avg3d(sys.modules[__name__], module=__name__)
__all__ += ["avg_pool3d", "avg_pool3d_backward", "avg3d_forward_planes", "avg3d_backward_planes"]


# ----------------------------------------------------------------- 3-D max pooling
# PyTorch 2.13's cpu_max_pool (is_3d) and its channels-last variant, which
# agree on every value: a window's in-bounds taps in (d, h, w) order, "take
# v if v > best or v is NaN" from the lowest value. Their indices differ
# only in the seed, the index a window reports when no tap beats the lowest
# value (see max3d_forward_planes). A window with no in-bounds tap
# (dilation only) gives the lowest value and index -1, as max_pool2d does
# (PyTorch reports a position outside the window there).

from ._validation import Pool3dGeometry, check_index_range3d, volume_dims  # noqa: E402

# Memory order <-> (..., C, D, H, W) order, for channels-last memory.
_PLANES_VIEW3 = {5: (0, 4, 1, 2, 3), 4: (3, 0, 1, 2)}
_CHANNELS_LAST_VIEW3 = {5: (0, 2, 3, 4, 1), 4: (1, 2, 3, 0)}


def _axis_taps(out_len: int, k: int, s: int, p: int, d: int, size: int
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Along one axis, for each kernel tap that reaches the input for some
    output position: the (clipped) input coordinate at every output
    position and whether it is inside the input."""
    taps = []
    for t in _reaching_taps(out_len, k, s, p, d, size).tolist():
        pos, ok = _tap_positions(out_len, t * d, s, p, size)
        if ok.any():
            taps.append((np.clip(pos, 0, size - 1), ok))
    return taps


def _first_in_bounds(out_len: int, k: int, s: int, p: int, d: int, size: int) -> np.ndarray:
    """Along one axis, each window's first in-bounds coordinate, -1 for a
    window with none (PyTorch's start advanced past the padding)."""
    start = np.arange(out_len, dtype=np.int64) * s - p
    lo = np.where(start >= 0, 0, (d - 1 - start) // d)
    first = start + lo * d
    return np.where((lo < k) & (first < size), first, -1)


def max3d_forward_planes(x: np.ndarray, g: Pool3dGeometry, with_indices: bool, channels_last: bool = False,
                         out: np.ndarray | None = None, indices_out: np.ndarray | None = None,
                         nodepth_from: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """3-D max-pool ``x``: (..., C, D, H, W) memory, or (..., D, H, W, C)
    with ``channels_last`` (computed on a transposed view). Returns
    ``(out, int64 indices or None)`` in the same layout, written into
    ``out`` / ``indices_out`` when given.

    Each window starts from the lowest value and the index of its first
    in-bounds tap, ``(d0 * H + h0) * W + w0``; in channels ``nodepth_from``
    and up (None: none) it starts from ``h0 * W + w0`` instead, as the
    scalar tail of PyTorch's channels_last_3d kernel does (so a window of
    only -inf / the integer minimum reports that position). A window with
    no in-bounds tap gives index -1.
    """
    vol = x.transpose(_PLANES_VIEW3[x.ndim]) if channels_last else x
    shape = vol.shape[:-3] + (g.OD, g.OH, g.OW)
    best = np.full(shape, _lowest(x.dtype), dtype=x.dtype)
    idx = None
    if with_indices:
        fd = _first_in_bounds(g.OD, g.kd, g.sd, g.pd, g.dd, g.D)[:, None, None]
        fh = _first_in_bounds(g.OH, g.kh, g.sh, g.ph, g.dh, g.H)[None, :, None]
        fw = _first_in_bounds(g.OW, g.kw, g.sw, g.pw, g.dw, g.W)[None, None, :]
        empty = (fd < 0) | (fh < 0) | (fw < 0)
        seed = np.where(empty, -1, (fd * g.H + fh) * g.W + fw)
        idx = np.array(np.broadcast_to(seed, shape))
        C = shape[-4]
        if nodepth_from is not None and nodepth_from < C:
            idx[..., nodepth_from:, :, :, :] = np.where(empty, -1, fh * g.W + fw)
    take = np.empty(shape, dtype=bool)
    nan = np.empty(shape, dtype=bool) if x.dtype.kind == "f" and bool(np.isnan(x).any()) else None
    # The taps' gathers are nested, so each depth tap's and row tap's
    # gathers are made once and shared by the taps after them.
    for pd, okd in _axis_taps(g.OD, g.kd, g.sd, g.pd, g.dd, g.D):
        xd = np.take(vol, pd, axis=-3)
        for ph, okh in _axis_taps(g.OH, g.kh, g.sh, g.ph, g.dh, g.H):
            xdh = np.take(xd, ph, axis=-2)
            ok_dh = okd[:, None, None] & okh[None, :, None]
            for pw, okw in _axis_taps(g.OW, g.kw, g.sw, g.pw, g.dw, g.W):
                v = np.take(xdh, pw, axis=-1)
                np.greater(v, best, out=take)  # PyTorch's rule: v > best, or v is NaN
                if nan is not None:
                    np.logical_or(take, np.isnan(v, out=nan), out=take)
                np.logical_and(take, ok_dh & okw[None, None, :], out=take)  # padding is never taken
                np.copyto(best, v, where=take)  # a selection: NaN payloads and zero signs kept
                if idx is not None:
                    flat = (pd[:, None, None] * g.H + ph[None, :, None]) * g.W + pw[None, None, :]
                    np.copyto(idx, np.broadcast_to(flat, shape), where=take)
    best = _result3(best, channels_last, out)
    return best, None if idx is None else _result3(idx, channels_last, indices_out)


def _result3(a: np.ndarray, channels_last: bool, out: np.ndarray | None) -> np.ndarray:
    # A (..., C, D, H, W) result in the memory layout asked for, in `out` if given.
    if channels_last:
        a = a.transpose(_CHANNELS_LAST_VIEW3[a.ndim])
    if out is None:
        return np.ascontiguousarray(a)
    np.copyto(out, a)
    return out


def max3d_backward_planes(go: np.ndarray, idx: np.ndarray, shape: Sequence[int], channels_last: bool = False,
                          out: np.ndarray | None = None) -> np.ndarray:
    """Scatter-add ``go`` (..., C, OD, OH, OW) into an array of ``shape``
    (..., C, D, H, W) by ``idx`` (flat within each volume); channels-last
    memory with ``channels_last``. Each volume is a plane of D*H rows of W
    to :func:`backward_planes` (C-contiguous reshapes are views): the same
    scatter in the same order, PyTorch's."""
    shape = tuple(shape)
    D, H, W = volume_dims(shape, channels_last)
    check_index_range3d(idx, D, H, W)
    if channels_last:
        flat_go = go.reshape(go.shape[:-4] + (go.shape[-4] * go.shape[-3],) + go.shape[-2:])
        flat_idx = idx.reshape(flat_go.shape)
        flat_shape = shape[:-4] + (D * H, W, shape[-1])
    else:
        flat_go = go.reshape(go.shape[:-3] + (go.shape[-3] * go.shape[-2], go.shape[-1]))
        flat_idx = idx.reshape(flat_go.shape)
        flat_shape = shape[:-3] + (D * H, W)
    flat_out = None if out is None else out.reshape(flat_shape)
    return backward_planes(flat_go, flat_idx, flat_shape, channels_last, flat_out).reshape(shape)


from .functional import bind_max3d  # noqa: E402

max_pool3d, max_pool3d_backward = bind_max3d(sys.modules[__name__], module=__name__)
__all__ += ["max_pool3d", "max_pool3d_backward", "max3d_forward_planes", "max3d_backward_planes"]

# 1-D pooling: the same functions as cpool's, over this module's 2-D ones.
from .functional import NAMES_1D, bind_1d  # noqa: E402

_fns_1d = bind_1d(sys.modules[__name__], module=__name__)
(max_pool1d, max_pool1d_backward, avg_pool1d, avg_pool1d_backward, adaptive_avg_pool1d,
 adaptive_avg_pool1d_backward, adaptive_max_pool1d, adaptive_max_pool1d_backward, max_unpool1d,
 max_unpool1d_backward) = (_fns_1d[n] for n in NAMES_1D)
__all__ += list(NAMES_1D)
# ----------------------------------------------------------------- 3-D adaptive pooling and max unpooling
# PyTorch 2.13's 3-D CPU kernels (AdaptiveAvgPoolKernel.cpp's and
# AdaptiveMaxPoolKernel.cpp's 3-D variants): the 2-D rules above with a
# depth axis. Output (od, oh, ow) pools input [floor(o * I / O), ceil((o +
# 1) * I / O)) on each axis, taps in (d, h, w) row-major order.
# Average forward: one kernel for every memory layout (torch's 3-D forward
# runs on its input made contiguous): each window summed from 0 in the
# dtype itself (float16 too: `sum += x` rounds to half after every add, and
# a float16 NaN comes out as sign | 0x7e00, its payload dropped; float32/64
# keep the running sum's NaN), then `sum / kd / kh / kw`, each rounded.
# Average backward: the share `g / kd / kh / kw` in both layouts (unlike
# 2-D, no single division in channels-last vector lanes), added to each
# element of the window, outputs in row-major order. An output of
# 1x1x1 is torch's `mean((-1, -2, -3))`: the reduction over the volume's
# collapsed axes, i.e. the 2-D mean of the (D * H, W) plane.
# The max backward and max unpooling scatter into each (n, c) volume as a
# flat plane: the 2-D backends run them on (..., C, 1, D*H*W) views
# (channels-last (..., 1, D*H*W, C)), in cpool.functional.

from typing import cast  # noqa: E402

_VOLUMES_VIEW = {5: (0, 4, 1, 2, 3), 4: (3, 0, 1, 2)}


def _as_plane2d(a: np.ndarray | None, channels_last: bool) -> np.ndarray | None:
    # A 3-D array's memory as 2-D memory whose plane is (D * H, W): how
    # torch's reduction over (-1, -2, -3) sees the volume.
    if a is None:
        return None
    if channels_last:
        return a.reshape(a.shape[:-4] + (a.shape[-4] * a.shape[-3],) + a.shape[-2:])
    return a.reshape(a.shape[:-3] + (a.shape[-3] * a.shape[-2], a.shape[-1]))


def _axis_windows(g: Any) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
    """Per axis (depth, height, width): window starts, lengths, the longest, the input size."""
    axes = []
    for out_len, size in ((g.OD, g.D), (g.OH, g.H), (g.OW, g.W)):
        start, end = adaptive_windows(out_len, size)
        axes.append((start, end - start, int((end - start).max(initial=0)), size))
    return axes


def _volume_taps(g: Any) -> Any:
    """Each tap offset (a, i, j) of the largest window: the (OD, OH, OW)
    input coordinates it reads and where windows have it."""
    (d0, kd, KD, D), (h0, kh, KH, H), (w0, kw, KW, W) = _axis_windows(g)
    for a in range(KD):
        ds, d_ok = np.minimum(d0 + a, D - 1)[:, None, None], (a < kd)[:, None, None]
        for i in range(KH):
            hs, h_ok = np.minimum(h0 + i, H - 1)[None, :, None], (i < kh)[None, :, None]
            for j in range(KW):
                ws, w_ok = np.minimum(w0 + j, W - 1)[None, None, :], (j < kw)[None, None, :]
                yield ds, hs, ws, d_ok & h_ok & w_ok


def _adaptive3d_mean(vols: np.ndarray, g: Any) -> np.ndarray:
    dt = vols.dtype
    total = np.zeros(vols.shape[:-3] + (g.OD, g.OH, g.OW), dtype=dt)
    if total.size == 0:
        return total
    has_nan = bool(np.isnan(vols).any())
    for ds, hs, ws, mask in _volume_taps(g):
        np.copyto(total, _add_first_nan(total, vols[..., ds, hs, ws], dt, has_nan), where=mask)
    (_, kd, _, _), (_, kh, _, _), (_, kw, _, _) = _axis_windows(g)
    mean = _divide_by(_divide_by(_divide_by(total, kd[:, None, None]), kh[None, :, None]), kw[None, None, :])
    if dt == _F16 and has_nan:
        _canonical_half_nans(mean)
    return mean


def _canonical_half_nans(a: np.ndarray) -> None:
    # c10::Half arithmetic rounds through its own float -> half conversion,
    # which makes any NaN sign | 0x7e00 (the payload dropped).
    bits = a.view(np.uint16)
    np.copyto(bits, (bits & 0x8000) | 0x7E00, where=np.isnan(a))


def adaptive3d_avg_forward(x: np.ndarray, g: Any, channels_last: bool = False,
                           out: np.ndarray | None = None) -> np.ndarray:
    """3-D adaptive-average-pool ``x``: (..., C, D, H, W) memory, or (..., D,
    H, W, C) with ``channels_last``; the result is laid out the same way, in
    ``out`` when given."""
    if g.OD == 1 and g.OH == 1 and g.OW == 1:
        from ._validation import AdaptiveGeometry
        plane = cast(np.ndarray, _as_plane2d(x, channels_last))
        r = adaptive_avg_forward_planes(plane, AdaptiveGeometry(g.D * g.H, g.W, 1, 1), channels_last,
                                        _as_plane2d(out, channels_last))
        return r.reshape(x.shape[:-4] + ((1, 1, 1, x.shape[-1]) if channels_last else (x.shape[-4], 1, 1, 1)))
    with np.errstate(all="ignore"):
        vols = x.transpose(_VOLUMES_VIEW[x.ndim]) if channels_last else x
        return _result3d(_adaptive3d_mean(vols, g), channels_last, out)


def adaptive3d_max_forward(x: np.ndarray, g: Any, with_indices: bool, channels_last: bool = False,
                           out: np.ndarray | None = None, indices_out: np.ndarray | None = None
                           ) -> tuple[np.ndarray, np.ndarray | None]:
    """3-D adaptive-max-pool ``x`` (memory as :func:`adaptive3d_avg_forward`).
    Returns ``(values, int64 indices or None)``: each window's maximum, ties
    to the first in (d, h, w) order, the last NaN winning; indices ``(d * H
    + h) * W + w``."""
    vols = x.transpose(_VOLUMES_VIEW[x.ndim]) if channels_last else x
    shape = vols.shape[:-3] + (g.OD, g.OH, g.OW)
    best = np.full(shape, -np.inf, dtype=x.dtype)
    idx = np.zeros(shape, dtype=np.int64)
    if best.size:
        take = np.empty(shape, dtype=bool)
        first = True
        for ds, hs, ws, mask in _volume_taps(g):
            tap = vols[..., ds, hs, ws]
            if first:  # the window's first tap: its start, where nothing beats -inf
                idx[...] = (ds * g.H + hs) * g.W + ws
                first = False
            np.greater(tap, best, out=take)
            np.logical_or(take, np.isnan(tap), out=take)
            np.logical_and(take, mask, out=take)
            np.copyto(best, tap, where=take)
            np.copyto(idx, (ds * g.H + hs) * g.W + ws, where=take)
    values = _result3d(best, channels_last, out)
    if not with_indices:
        return values, None
    return values, _result3d(idx, channels_last, indices_out)


def half_max_backward3d_nans(grad: np.ndarray, go: np.ndarray, idx: np.ndarray, channels_last: bool) -> None:
    """Give float16 ``grad`` (the 2-D max backward's scatter of ``go`` by
    ``idx`` on flat volumes; 3-D memory) the NaNs of torch's 3-D kernel: it
    adds in c10::Half, which keeps the first NaN of a cell (as float32/64,
    :func:`_first_nan_wins`; ``np.add.at`` keeps the last) and makes every
    NaN sign | 0x7e00."""
    nan = np.isnan(go)
    if not nan.any():
        return
    if channels_last:
        grad_v, go, idx = (a.transpose(_VOLUMES_VIEW[a.ndim]) for a in (grad, go, idx))
    else:
        grad_v = grad
    P = int(np.prod(go.shape[:-3], dtype=np.int64))
    n_out, vol = int(np.prod(go.shape[-3:], dtype=np.int64)), int(np.prod(grad_v.shape[-3:], dtype=np.int64))
    planes = np.ascontiguousarray(grad_v).reshape(P, vol)
    flat_idx = idx.reshape(P, n_out)
    keep = flat_idx >= 0
    rows = np.broadcast_to(np.arange(P, dtype=np.int64)[:, None], flat_idx.shape)[keep]
    with np.errstate(invalid="ignore"):
        _first_nan_wins(planes, rows * vol + flat_idx[keep], go.reshape(P, n_out)[keep])
    _canonical_half_nans(planes)
    np.copyto(grad_v, planes.reshape(grad_v.shape))


def _adaptive3d_scatter(go: np.ndarray, vol: tuple[int, int, int]) -> np.ndarray:
    OD, OH, OW = go.shape[-3:]
    grad = np.zeros(go.shape[:-3] + vol, dtype=go.dtype)
    if grad.size == 0 or go.size == 0:
        return grad
    axes = []
    counts = []
    for out_len, size in zip((OD, OH, OW), vol):
        start, end = adaptive_windows(out_len, size)
        i = np.arange(size)
        first = np.searchsorted(end, i, side="right")  # windows holding input i: first .. first + count - 1
        axes.append((first, np.searchsorted(start, i, side="right") - first, out_len))
        counts.append(end - start)
    kd, kh, kw = counts[0][:, None, None], counts[1][None, :, None], counts[2][None, None, :]
    delta = _divide_by(_divide_by(_divide_by(go, kd), kh), kw)
    has_nan = bool(np.isnan(delta).any())
    (fd, cd, _), (fh, ch, _), (fw, cw, _) = axes
    for r in range(int(cd.max())):
        od, ok_d = np.minimum(fd + r, OD - 1)[:, None, None], (r < cd)[:, None, None]
        for s in range(int(ch.max())):
            oh, ok_h = np.minimum(fh + s, OH - 1)[None, :, None], (s < ch)[None, :, None]
            for t in range(int(cw.max())):
                ow, ok_w = np.minimum(fw + t, OW - 1)[None, None, :], (t < cw)[None, None, :]
                # Two NaNs: the element keeps its own (every dtype; 2-D keeps the share's for float32/64).
                new = _add_first_nan(grad, delta[..., od, oh, ow], grad.dtype, has_nan)
                np.copyto(grad, new, where=ok_d & ok_h & ok_w)
    if go.dtype == _F16 and has_nan:
        _canonical_half_nans(grad)
    return grad


def adaptive3d_avg_backward(go: np.ndarray, shape: Sequence[int], channels_last: bool = False,
                            out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of :func:`adaptive3d_avg_forward`: ``go`` (..., C, OD, OH, OW)
    memory (or (..., OD, OH, OW, C)) into an array of ``shape``: each
    output's share ``g / kd / kh / kw`` (in both layouts) added to its
    window's elements, outputs in row-major order, rounding after every add
    in the dtype."""
    shape = tuple(shape)
    if (go.shape[-4:-1] if channels_last else go.shape[-3:]) == (1, 1, 1):  # the mean's gradient
        plane_shape = cast(np.ndarray, _as_plane2d(np.empty(shape, np.uint8), channels_last)).shape
        grad = adaptive_avg_backward_planes(cast(np.ndarray, _as_plane2d(go, channels_last)), plane_shape,
                                            channels_last, _as_plane2d(out, channels_last))
        return grad.reshape(shape)
    with np.errstate(all="ignore"):
        go_v = go.transpose(_VOLUMES_VIEW[go.ndim]) if channels_last else go
        vshape = tuple(shape[i] for i in _VOLUMES_VIEW[len(shape)]) if channels_last else shape
        vol = (vshape[-3], vshape[-2], vshape[-1])
        grad = _adaptive3d_scatter(go_v, vol)
        return _result3d(grad, channels_last, out)


from .functional import bind_adaptive3d, bind_unpool3d  # noqa: E402

(adaptive_avg_pool3d, adaptive_avg_pool3d_backward, adaptive_max_pool3d,
 adaptive_max_pool3d_backward) = bind_adaptive3d(sys.modules[__name__], module=__name__)
max_unpool3d, max_unpool3d_backward = bind_unpool3d(sys.modules[__name__], module=__name__)
__all__ += ["adaptive_avg_pool3d", "adaptive_avg_pool3d_backward", "adaptive_max_pool3d",
            "adaptive_max_pool3d_backward", "max_unpool3d", "max_unpool3d_backward", "adaptive3d_avg_forward",
            "adaptive3d_max_forward", "adaptive3d_avg_backward", "half_max_backward3d_nans"]
