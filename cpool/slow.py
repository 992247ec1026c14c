"""cpool's pure-NumPy backend: the reference implementation and the fallback.

``cpool.slow.max_pool2d`` and ``cpool.slow.max_pool2d_backward`` are the
public functions computed without the compiled extension: same signatures,
same argument checks (the same code path) and the same results bit for bit
(values, indices, NaN payloads, gradients). It is the backend when the
extension is unavailable or ``CPOOL_BACKEND=numpy`` is set, and the test
suite checks the compiled backend against it (as ``bottleneck`` checks its C
functions against ``bottleneck.slow``).

As a backend (see :mod:`cpool._backend`) it provides the two functions on
validated arrays in :func:`cpool._validation.as_native` layout:
``forward_planes(x, g, with_indices, index_dtype)`` and
``backward_planes(grad_output, indices, input_shape)``.

It is vectorized over batch, channels and output positions; the only Python
loop is over the ``kh * kw`` kernel taps, visited in row-major order, which is
what makes PyTorch's tie and NaN rules come out exactly: a tap replaces the
running best when ``v > best or isnan(v)``, so ties keep the first maximum and
the last NaN wins.
"""

from __future__ import annotations

import sys

import numpy as np

from ._validation import PoolGeometry, check_index_range

__all__ = ["max_pool2d", "max_pool2d_backward", "forward_planes", "backward_planes"]


def _lowest(dtype: np.dtype):
    """The value a window starts from: -inf for floats, the minimum for ints."""
    if dtype.kind == "f":
        return -np.inf
    return np.iinfo(dtype).min


def _tap_positions(out_len: int, k_off: int, stride: int, pad: int, size: int):
    """Input coordinate of one kernel tap for every output position, and
    whether it lies inside the input (padding is never selected)."""
    pos = np.arange(out_len, dtype=np.int64) * stride - pad + k_off
    return pos, (pos >= 0) & (pos < size)


def forward_planes(x: np.ndarray, g: PoolGeometry, with_indices: bool, index_dtype=np.int64):
    """Max-pool a C-contiguous (..., H, W) array. Returns ``(out, indices or None)``, (..., OH, OW).

    Indices are of ``index_dtype`` (int64, or int32 for planes of < 2**31 elements).
    """
    shape = x.shape[:-2] + (g.OH, g.OW)
    out, idx = _forward_3d(x.reshape(-1, g.H, g.W), g, with_indices)
    if idx is None:
        return out.reshape(shape), None
    if index_dtype != np.int64:
        idx = idx.astype(index_dtype)
    return out.reshape(shape), idx.reshape(shape)


def _forward_3d(x: np.ndarray, g: PoolGeometry, with_indices: bool):
    P = x.shape[0]
    lowest = _lowest(x.dtype)
    # The NaN passes are skipped when the input has none: one read of the
    # input instead of two extra passes per tap.
    has_nan = x.dtype.kind == "f" and bool(np.isnan(x).any())
    # Pad with the lowest value so every tap is a plain strided slice. A padded
    # value never beats the running best (ties keep the first), and in the
    # index path taps outside the input are masked out explicitly.
    top, left = g.ph, g.pw
    rows = max(g.H, (g.OH - 1) * g.sh - g.ph + (g.kh - 1) * g.dh + 1)
    cols = max(g.W, (g.OW - 1) * g.sw - g.pw + (g.kw - 1) * g.dw + 1)
    complete = not (top or left or rows > g.H or cols > g.W)  # every tap of every window is in bounds
    if complete:
        xp = x
    else:
        xp = np.full((P, top + rows, left + cols), lowest, dtype=x.dtype)
        xp[:, top:top + g.H, left:left + g.W] = x

    def tap(i, j):
        # Input row ih = oh*sh - ph + i*dh sits at padded row oh*sh + i*dh.
        return xp[:, i * g.dh:i * g.dh + (g.OH - 1) * g.sh + 1:g.sh,
                  j * g.dw:j * g.dw + (g.OW - 1) * g.sw + 1:g.sw]

    shape = (P, g.OH, g.OW)
    buf = np.empty(shape, dtype=x.dtype)  # the current tap, made contiguous
    take = np.empty(shape, dtype=bool)
    scratch = np.empty(shape, dtype=bool) if has_nan else None

    def compete(i, j, best):
        """Copy tap (i, j) to `buf`; set `take` where it replaces `best`.

        NumPy's ufuncs are many times faster on contiguous operands, so each
        tap is copied once. The rule is PyTorch's: v > best, or v is NaN
        (ties keep the first maximum, the last NaN wins).
        """
        np.copyto(buf, tap(i, j))
        np.greater(buf, best, out=take)
        if has_nan:
            np.isnan(buf, out=scratch)
            np.logical_or(take, scratch, out=take)
        return buf

    # Bit-exact, branch-free select: dst ^= (dst ^ src) & mask. NumPy's masked
    # copies (copyto(where=), np.where) branch per element and run ~30x slower
    # on random masks; this also keeps NaN payloads and signed zeros intact.
    blenders = {}

    def blend(dst, src):
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
        i, j = np.divmod(np.arange(n_taps), g.kw)
        tap_offset = (i * g.dh) * g.W + j * g.dw
        window_start = (np.arange(g.OH) * g.sh)[:, None] * g.W + (np.arange(g.OW) * g.sw)[None, :]
        return out, window_start + tap_offset[tap_no]

    out = np.full(shape, lowest, dtype=x.dtype)
    idx = np.full(shape, -1, dtype=np.int64) if with_indices else None
    for i in range(g.kh):
        ih, row_ok = _tap_positions(g.OH, i * g.dh, g.sh, g.ph, g.H)
        if not row_ok.any():
            continue
        for j in range(g.kw):
            iw, col_ok = _tap_positions(g.OW, j * g.dw, g.sw, g.pw, g.W)
            v = compete(i, j, out)
            if with_indices:
                # The first in-bounds tap of a window is taken unconditionally
                # (PyTorch initialises the index with it), and padding never is.
                np.logical_or(take, idx < 0, out=take)
                np.logical_and(take, row_ok[:, None] & col_ok[None, :], out=take)
                blend(idx, np.broadcast_to(ih[:, None] * g.W + iw[None, :], shape))
            blend(out, v)
    return out, idx


def backward_planes(go: np.ndarray, idx: np.ndarray, shape) -> np.ndarray:
    """Scatter-add (..., OH, OW) ``go`` into a fresh array of ``shape`` (..., H, W) by ``idx``.

    ``np.add.at`` applies the additions in output row-major order within each
    plane, rounding after every add in the array's dtype, exactly as PyTorch's
    CPU kernel does (float16 included).
    """
    H, W = shape[-2:]
    plane = H * W
    n_out = idx.shape[-2] * idx.shape[-1]
    flat_idx = idx.reshape(-1, n_out)
    P = flat_idx.shape[0]
    check_index_range(flat_idx, plane, shape)
    grad_in = np.zeros((P, plane), dtype=go.dtype)
    keep = flat_idx >= 0
    planes = np.broadcast_to(np.arange(P, dtype=np.int64)[:, None], flat_idx.shape)
    np.add.at(grad_in, (planes[keep], flat_idx[keep]), go.reshape(P, n_out)[keep])
    return grad_in.reshape(shape)


# The public pair, bound to this module by the one argument path of
# cpool.functional (imported last: cpool.functional imports the backends).
from .functional import bind  # noqa: E402

max_pool2d, max_pool2d_backward = bind(sys.modules[__name__], module=__name__)
