"""Max pooling of dask arrays with cpool, chunk by chunk, bit for bit.

Needs dask (``pip install "cpool-numpy[dask]"``); ``import cpool`` never
imports this module.

>>> import dask.array as da, cpool.dask
>>> x = da.random.random((64, 3, 1024, 1024), chunks=(8, 3, 512, 512)).astype("float32")
>>> out, idx = cpool.dask.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
>>> grad = cpool.dask.max_pool2d_backward(da.ones_like(out), idx, x.shape, kernel_size=3, stride=2, padding=1)

The results are lazy dask arrays holding exactly what :func:`cpool.max_pool2d`
and :func:`cpool.max_pool2d_backward` give on the whole NumPy array: the same
values, NaN payloads, tie-breaking, dtypes, and indices in the same format
(flat ``h * W + w`` within the whole (n, c) plane, -1 for a window with no
input element).

How the chunks work
-------------------
Chunks along N and C map one to one onto the output. Along H (and W alike)
each input chunk boundary ``b`` becomes the output boundary
``ceil((b + padding) / stride)``: an output chunk holds the windows that
*start* in its input chunk, so the output chunking follows the input's,
rounded to the stride. Each output chunk reads the input region its windows
reach (its own input chunk plus a halo of ``dilation * (kernel - 1) + 1 -
stride`` rows from the chunks after it, fewer or none for non-overlapping
windows), and cpool pools that region with the *same* kernel, stride,
padding and dilation (see :func:`plan_axis` for why that reproduces the
windows of the whole array exactly: padding is applied only where the region
touches the true border of the plane). Region-local indices are then moved
to whole-plane coordinates.

The graph is built explicitly (one task per output chunk that reads the
input chunks its region overlaps) rather than with ``da.map_overlap``:
map_overlap adds the same depth to every chunk and keeps each chunk's shape
through the function, but pooling changes the length by the stride, the halo
is one-sided, and the output boundaries have to be moved to the stride; that
would need rechunking to stride multiples and trimming by hand, and still
could not express the border padding exactly.

The backward pass gathers rather than scatters: each chunk of the gradient
reads every grad_output/indices element whose window can reach it (an output
halo) and calls :func:`cpool.max_pool2d_backward` on that rectangle with its
indices made local (indices pointing outside the chunk skipped). Every input
element so receives all of its contributions in cpool's order (output
row-major order; a rectangle's row-major order is the whole plane's order
restricted to it), so overlapping windows (stride < dilated kernel) round
exactly as cpool's single pass does. Summing per-chunk partial gradients
instead would add in a different order whenever an element receives
contributions from several chunks. That needs the pooling geometry, which
``max_pool2d_backward`` does not otherwise receive: pass the forward's
``kernel_size`` (and ``stride``, ``padding``, ``dilation``, ``ceil_mode``);
without it H and W are made whole (rechunked) and each (N, C) chunk is one
cpool call, exact for any indices.

Adding another pooling function
-------------------------------
:func:`plan_axis` and :func:`halo_map` are the generic part: they know only
the window geometry. A new operation (say ``avg_pool2d``) writes a block
function that pools one region with the global arguments and crops it with
:func:`crop_block` (as :func:`_max_pool_block` does), and calls
``halo_map(x, geometry, block_fn, outputs)``. The region reproduces the whole
array's windows exactly, including where each window is clipped by the
padding, so padding-dependent rules (``count_include_pad``) come out the same.
"""

from __future__ import annotations

import bisect
import math
import operator
from dataclasses import dataclass
from functools import partial

import numpy as np

try:
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph
except ImportError as exc:  # pragma: no cover - exercised in a dask-less environment
    raise ImportError(
        'cpool.dask needs dask, which is not installed: pip install "cpool-numpy[dask]" '
        f"(importing it failed with: {exc})"
    ) from exc

from . import functional as _functional
from ._validation import (
    _check_backward,
    _prepare_forward,
    output_size,
    parse_pool_args,
    pool_geometry,
)

__all__ = ["max_pool2d", "max_pool2d_backward", "AxisPlan", "BlockRegion", "plan_axis", "halo_map", "crop_block"]

_INT64 = np.dtype(np.int64)


# --------------------------------------------------------------------------
# The generic part: window geometry along one axis, and the halo graph
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class AxisPlan:
    """How one axis (H or W) of a chunked input maps onto the pooled output.

    For output chunk ``i`` (``out_chunks[i]`` windows, the first being global
    window ``out_starts[i]``), the input rows ``lo[i]:hi[i]`` are pooled with
    the global kernel, stride, padding and dilation; of that local result,
    windows ``skip[i] : skip[i] + out_chunks[i]`` are the chunk. Only rows
    ``data_lo[i]:hi[i]`` are read: the ``data_lo[i] - lo[i]`` (< stride) rows
    before them are tapped by skipped windows alone, and are filled with zeros
    instead of being read from the previous chunk.
    """

    size: int
    out_size: int
    out_chunks: tuple
    out_starts: tuple
    lo: tuple
    data_lo: tuple
    hi: tuple
    skip: tuple


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def plan_axis(in_chunks, k: int, s: int, p: int, d: int, ceil_mode: bool) -> AxisPlan:
    """Output chunks and input regions along one axis of length ``sum(in_chunks)``.

    Window ``o`` covers input positions ``o*s - p + i*d`` (``i < k``); it goes
    to the output chunk of the input chunk it starts in (windows starting in
    the left padding to the first), so an input boundary ``b`` becomes the
    output boundary ``ceil((b + p) / s)``; empty chunks are dropped.

    Output chunk ``[o0, o1)`` is computed by pooling the region
    ``[lo, hi)`` with the *same* (k, s, p, d, ceil_mode), where
    ``lo = (o0 - q) * s``, ``q = min(o0, ceil(p / s))`` and
    ``hi = min(size, (o1 - 1)*s - p + (k - 1)*d + 1)`` (the end of the
    chunk's last window), keeping local windows ``q .. q + o1 - o0 - 1``:

    * ``lo`` is a multiple of s, so local window ``q + j`` starts at global
      ``(o0 + j)*s - p``: the same window.
    * Its taps never fall in the region's *local* left padding unless they are
      in the plane's: either ``lo = 0`` (local is global) or ``q*s >= p``.
      Nor before ``data_lo = max(0, o0*s - p)``, the chunk's first tap.
    * Taps past ``hi`` are past the plane's end (when ``hi = size``) or
      absent (``hi`` is the end of the last window), so each window holds
      exactly the in-bounds elements it has in the whole array, in the same
      order: same maximum, same ties, same NaN, same -1 for an empty window.
    * The local call has enough windows: with ``hi = size``,
      ``output_size(size - lo) = out_size - lo/s`` exactly (floor and ceil
      mode alike, lo being a multiple of s); otherwise the last window ends
      inside the region.
    """
    in_chunks = tuple(int(c) for c in in_chunks)
    size = sum(in_chunks)
    out = output_size(size, k, s, p, d, ceil_mode)
    bounds = {0, out}
    edge = 0
    for c in in_chunks[:-1]:
        edge += c
        bounds.add(min(out, max(0, _ceil_div(edge + p, s))))
    bounds = sorted(bounds)
    q_max = _ceil_div(p, s)
    starts, chunks, lo, data_lo, hi, skip = [], [], [], [], [], []
    for o0, o1 in zip(bounds[:-1], bounds[1:]):
        q = min(o0, q_max)
        starts.append(o0)
        chunks.append(o1 - o0)
        lo.append((o0 - q) * s)
        data_lo.append(max(0, o0 * s - p))
        hi.append(min(size, (o1 - 1) * s - p + (k - 1) * d + 1))
        skip.append(q)
    return AxisPlan(size, out, tuple(chunks), tuple(starts), tuple(lo), tuple(data_lo), tuple(hi), tuple(skip))


def _block_edges(chunks):
    edges = [0]
    for c in chunks:
        edges.append(edges[-1] + int(c))
    return edges


def _overlapping(edges, lo: int, hi: int):
    """``[(block, slice within it)]`` of the blocks that cover ``[lo, hi)``, in order."""
    first = bisect.bisect_right(edges, lo) - 1
    found = []
    for b in range(first, len(edges) - 1):
        start, end = edges[b], edges[b + 1]
        if start >= hi:
            break
        if end <= lo:  # an empty block at lo
            continue
        found.append((b, slice(max(lo, start) - start, min(hi, end) - start)))
    return found


def _read_from(edges, lo: int, data_lo: int) -> int:
    """Where to start reading for a region ``[lo, ...)`` whose first needed row is ``data_lo``:
    ``lo`` when that is in the same block (a view instead of a zero-filled copy), else ``data_lo``."""
    block = bisect.bisect_right(edges, data_lo) - 1
    return lo if edges[block] <= lo else data_lo


def _assemble(pieces, row_slices, col_slices):
    """The region made of ``pieces[i][j][..., row_slices[i], col_slices[j]]``."""
    rows = []
    for row, rs in zip(pieces, row_slices):
        parts = [p[..., rs, cs] for p, cs in zip(row, col_slices)]
        rows.append(parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1))
    return rows[0] if len(rows) == 1 else np.concatenate(rows, axis=-2)


def crop_block(arr: np.ndarray, rows: tuple, cols: tuple) -> np.ndarray:
    """``arr[..., r0:r0+nr, c0:c0+nc]`` for ``rows=(r0, nr)``, ``cols=(c0, nc)``;
    a copy when that is not all of ``arr`` (so a chunk never pins a larger buffer)."""
    (r0, nr), (c0, nc) = rows, cols
    if (r0, nr, c0, nc) == (0, arr.shape[-2], 0, arr.shape[-1]):
        return arr
    return np.ascontiguousarray(arr[..., r0:r0 + nr, c0:c0 + nc])


@dataclass(frozen=True)
class BlockRegion:
    """What a block function is told about its region (plain ints).

    ``origin``: global (row, col) of the region's first element.
    ``skip``, ``count``: (rows, cols) of local windows to drop, and to keep.
    """

    origin: tuple
    skip: tuple
    count: tuple


def _run_block(fn, region: BlockRegion, fill, kernel_rows, row_slices, col_slices, pieces):
    if fill == (0, 0) and len(row_slices) == 2 and len(col_slices) == 1:
        split = _split_rows(fn, region, kernel_rows, pieces[0][0][..., row_slices[0], col_slices[0]],
                            pieces[1][0][..., row_slices[1], col_slices[0]])
        if split is not None:
            return split
    data = _assemble(pieces, row_slices, col_slices)
    if fill != (0, 0):  # rows/cols no kept window taps: zeros, not a read of the previous chunk
        padded = np.zeros(data.shape[:-2] + (data.shape[-2] + fill[0], data.shape[-1] + fill[1]), data.dtype)
        padded[..., fill[0]:, fill[1]:] = data
        data = padded
    return fn(data, region)


def _split_rows(fn, region: BlockRegion, kernel_rows, top: np.ndarray, bottom: np.ndarray):
    """``fn`` on a region made of two row pieces, without copying the first one.

    The usual case of a halo along H: ``top`` is a whole input chunk (a view,
    whose planes are contiguous) and ``bottom`` the few rows of the next one
    that the last windows reach. The windows that end inside ``top`` are
    pooled from ``top`` alone; the rest from a strip copied from the end of
    ``top`` and ``bottom`` (built as :func:`plan_axis` builds a region, now
    within this one). Returns None when nothing is gained.
    """
    k, s, p, d = kernel_rows
    skip, count = region.skip[0], region.count[0]
    top_rows = top.shape[-2]
    inside = max(0, (top_rows - 1 + p - (k - 1) * d) // s + 1)  # local windows ending in top
    if inside <= skip:
        return None
    parts = [fn(top, BlockRegion(region.origin, region.skip, (min(inside, skip + count) - skip, region.count[1])))]
    if skip + count > inside:
        q = min(inside, _ceil_div(p, s))
        lo = (inside - q) * s
        strip = np.concatenate([top[..., lo:, :], bottom], axis=-2)
        parts.append(fn(strip, BlockRegion((region.origin[0] + lo, region.origin[1]), (q, region.skip[1]),
                                           (skip + count - inside, region.count[1]))))
    if len(parts) == 1:
        return parts[0]
    return tuple(np.concatenate(pair, axis=-2) for pair in zip(*parts))


def _check_known_chunks(arr, name):
    if any(math.isnan(c) for chunks in arr.chunks for c in chunks):
        raise ValueError(
            f"{name} has unknown chunk sizes (chunks={arr.chunks!r}); call {name}.compute_chunk_sizes() first"
        )


def halo_map(x, geometry, block_fn, outputs, name="cpool-pool2d"):
    """Apply a 2-D pooling ``block_fn`` to the dask array ``x`` (..., H, W), region by region.

    ``geometry``: ``(kernel, stride, padding, dilation, ceil_mode)`` as
    :func:`cpool._validation.parse_pool_args` returns them. ``block_fn(region,
    info)`` gets the input region (a NumPy array) of one output chunk and its
    :class:`BlockRegion`, pools the region with the global arguments, and
    returns one array per entry of ``outputs`` (a list of dtypes), each the
    crop ``info.skip``/``info.count`` of its local result (:func:`crop_block`)
    with positions moved to global coordinates where it has any. Returns the
    list of dask arrays, chunked as the input along the leading axes and as
    :func:`plan_axis` says along H and W.
    """
    kernel, stride, pad, dil, ceil = geometry
    plans = [plan_axis(x.chunks[ax], kernel[i], stride[i], pad[i], dil[i], ceil)
             for i, ax in enumerate((-2, -1))]
    lead = x.ndim - 2
    kernel_rows = (kernel[0], stride[0], pad[0], dil[0])
    token = tokenize(x, geometry, block_fn, tuple(np.dtype(o).str for o in outputs))
    pair_name = f"{name}-{token}"
    edges = [_block_edges(x.chunks[ax]) for ax in (-2, -1)]
    tasks = {}
    axes = []  # per axis and output chunk: (zero rows before the data, [(input block, slice)])
    for plan, e in zip(plans, edges):
        reads = [_read_from(e, lo, data_lo) for lo, data_lo in zip(plan.lo, plan.data_lo)]
        axes.append([(start - lo, _overlapping(e, start, hi)) for lo, start, hi in zip(plan.lo, reads, plan.hi)])
    for lead_idx in np.ndindex(*x.numblocks[:lead]):
        lead_idx = tuple(int(i) for i in lead_idx)
        for i, (fill_rows, row_blocks) in enumerate(axes[0]):
            for j, (fill_cols, col_blocks) in enumerate(axes[1]):
                info = BlockRegion(
                    origin=(plans[0].lo[i], plans[1].lo[j]),
                    skip=(plans[0].skip[i], plans[1].skip[j]),
                    count=(plans[0].out_chunks[i], plans[1].out_chunks[j]),
                )
                fill = (fill_rows, fill_cols)
                pieces = [[(x.name, *lead_idx, rb, cb) for cb, _ in col_blocks] for rb, _ in row_blocks]
                fn = partial(_run_block, block_fn, info, fill, kernel_rows, [s for _, s in row_blocks],
                             [s for _, s in col_blocks])
                tasks[(pair_name, *lead_idx, i, j)] = (fn, pieces)
    chunks = x.chunks[:lead] + (plans[0].out_chunks, plans[1].out_chunks)
    graph = HighLevelGraph.from_collections(pair_name, tasks, dependencies=[x])
    pair = da.Array(graph, pair_name, chunks, meta=np.empty((0,) * x.ndim, dtype=object))
    results = []
    for n, dtype in enumerate(outputs):
        out_name = f"{name}-{n}-{token}"
        layer = {(out_name, *key[1:]): (operator.getitem, key, n) for key in tasks}
        g = HighLevelGraph.from_collections(out_name, layer, dependencies=[pair])
        results.append(da.Array(g, out_name, chunks, meta=np.empty((0,) * x.ndim, dtype=dtype)))
    return results


# --------------------------------------------------------------------------
# max_pool2d
# --------------------------------------------------------------------------

def _to_global(idx: np.ndarray, origin: tuple, local_w: int, width: int) -> np.ndarray:
    """Region-local flat indices (row-major over ``local_w`` columns) to whole-plane ones; -1 stays -1."""
    r0, c0 = origin
    if r0 == 0 and c0 == 0 and local_w == width:
        return idx
    if local_w == width:  # full rows: a constant shift
        out = idx + r0 * width
    else:
        rows, cols = np.divmod(idx, local_w)
        out = (rows + r0) * width + (cols + c0)
    np.copyto(out, -1, where=idx < 0)
    return out


#: Below this size a strided region is copied whole (one cpool call) rather than pooled plane by plane.
_PLANE_BY_PLANE_BYTES = 1 << 20


def _contiguous_planes(region: np.ndarray) -> bool:
    """True if ``region`` is not C-contiguous but each of its (H, W) planes is, and large.

    A chunk cut out of a larger array along H (from ``da.from_array`` of a
    memory map, say) is such a view; cpool would copy it whole (its kernels
    take C-contiguous arrays), while each plane alone passes through as is.
    """
    if region.flags.c_contiguous or region.ndim == 2 or not (region.dtype.isnative and region.flags.aligned):
        return False
    plane = region[(0,) * (region.ndim - 2)]
    return plane.flags.c_contiguous and plane.nbytes >= _PLANE_BY_PLANE_BYTES


def _max_pool_block(args, width, with_indices, region: np.ndarray, info: BlockRegion):
    rows, cols = (info.skip[0], info.count[0]), (info.skip[1], info.count[1])
    lead = region.shape[:-2]
    if 0 in lead or _contiguous_planes(region):
        out = np.empty(lead + info.count, dtype=region.dtype.newbyteorder("="))
        idx = np.empty(lead + info.count, dtype=_INT64) if with_indices else None
        for plane in np.ndindex(*lead):  # nothing at all for an empty chunk along N or C
            res = _functional.max_pool2d(region[plane][None], *args, return_indices=with_indices)
            if with_indices:
                out[plane], idx[plane] = (crop_block(r[0], rows, cols) for r in res)
            else:
                out[plane] = crop_block(res[0], rows, cols)
    else:
        res = _functional.max_pool2d(region, *args, return_indices=with_indices)
        out, idx = res if with_indices else (res, None)
        out = crop_block(out, rows, cols)
        idx = None if idx is None else crop_block(idx, rows, cols)
    if not with_indices:
        return (out,)
    return out, _to_global(idx, info.origin, region.shape[-1], width)


def _stand_in(shape, dtype) -> np.ndarray:
    """A zero-memory array of ``shape`` and ``dtype``, for cpool's own argument checks."""
    return np.broadcast_to(np.zeros((), dtype=dtype), tuple(shape))


def _as_dask(value, name, like=None):
    if isinstance(value, da.Array):
        return value
    from ._validation import as_input_array

    arr = as_input_array(value, name)
    if like is not None and arr.shape == like.shape:
        return da.from_array(arr, chunks=like.chunks)
    return da.from_array(arr)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """:func:`cpool.max_pool2d` on a dask array, lazily, chunk by chunk.

    ``x``: a ``dask.array.Array`` (or anything :func:`numpy.asarray` takes,
    wrapped with ``da.from_array``) of shape (N, C, H, W) or (C, H, W), any
    chunking. Arguments, checks and errors are cpool's, raised here before
    any graph is built. Returns a dask array (and the int64 indices, global
    within each (n, c) plane, when ``return_indices``) equal bit for bit to
    ``cpool.max_pool2d(x.compute(), ...)``. Chunks: the input's along N and
    C; along H and W each input chunk boundary ``b`` becomes
    ``ceil((b + padding) / stride)`` (see the module docstring).
    """
    geometry = parse_pool_args(kernel_size, stride, padding, dilation, ceil_mode)
    x = _as_dask(x, "input")
    _check_known_chunks(x, "input")
    # cpool's own checks on a stand-in of x's shape and dtype: the same
    # errors, in the same order, as cpool.max_pool2d on the computed array.
    _, g, with_indices = _prepare_forward(_stand_in(x.shape, x.dtype), kernel_size, stride, padding, dilation,
                                          ceil_mode, return_indices)
    out_dtype = x.dtype.newbyteorder("=")
    outputs = [out_dtype, _INT64] if with_indices else [out_dtype]
    block_fn = partial(_max_pool_block, geometry, g.W, with_indices)
    results = halo_map(x, geometry, block_fn, outputs, name="cpool-max_pool2d")
    return tuple(results) if with_indices else results[0]


# --------------------------------------------------------------------------
# max_pool2d_backward
# --------------------------------------------------------------------------

def _backward_whole(shape_hw, go: np.ndarray, idx: np.ndarray) -> np.ndarray:
    if 0 in go.shape[:-2]:  # an empty chunk along N or C
        return np.zeros(go.shape[:-2] + shape_hw, dtype=go.dtype.newbyteorder("="))
    return _functional.max_pool2d_backward(go, idx, go.shape[:-2] + shape_hw)


def _zeros_block(shape, dtype):
    return np.zeros(shape, dtype=dtype)


@dataclass(frozen=True)
class _BackwardRegion:
    shape: tuple        # the whole forward input's shape (for error messages)
    geometry: tuple     # (kh, kw, sh, sw, ph, pw, dh, dw)
    rows: tuple         # input rows [a, b) of this block
    cols: tuple         # input cols [c, d)
    out_rows: tuple     # gathered output rows [o0, o1)
    out_cols: tuple     # gathered output cols [o0, o1)


def _backward_block(spec: _BackwardRegion, row_slices, col_slices, go_pieces, idx_pieces):
    go = _assemble(go_pieces, row_slices, col_slices)
    idx = _assemble(idx_pieces, row_slices, col_slices)
    (a, b), (c0, c1) = spec.rows, spec.cols
    if 0 in go.shape[:-2]:  # an empty chunk along N or C
        return np.zeros(go.shape[:-2] + (b - a, c1 - c0), dtype=go.dtype.newbyteorder("="))
    H, W = spec.shape[-2:]
    kh, kw, sh, sw, ph, pw, dh, dw = spec.geometry
    if idx.size and (idx.min() < -1 or idx.max() >= H * W):
        # cpool's own error for an index outside the plane, raised by cpool itself.
        _functional.max_pool2d_backward(go, idx, go.shape[:-2] + (H, W))
    valid = idx >= 0
    r, c = np.divmod(idx, W)
    # Every index must lie in its own window's extent: then all the outputs
    # that name an element of this block are in the gathered rectangle.
    top = np.arange(*spec.out_rows, dtype=np.int64)[:, None] * sh - ph
    left = np.arange(*spec.out_cols, dtype=np.int64)[None, :] * sw - pw
    inside_window = (r >= top) & (r <= top + (kh - 1) * dh) & (c >= left) & (c <= left + (kw - 1) * dw)
    stray = valid & ~inside_window
    if stray.any():
        pos = np.argwhere(stray)[0]
        raise ValueError(
            f"indices holds {int(idx[tuple(pos)])} at output position (row {spec.out_rows[0] + pos[-2]}, "
            f"col {spec.out_cols[0] + pos[-1]}), outside that output's pooling window for the kernel_size, "
            f"stride, padding and dilation given; pass the indices max_pool2d returned with the same "
            f"arguments, or omit kernel_size (H and W are then processed whole)"
        )
    mine = valid & (r >= a) & (r < b) & (c >= c0) & (c < c1)
    local = np.where(mine, (r - a) * (c1 - c0) + (c - c0), -1)
    return _functional.max_pool2d_backward(go, local, go.shape[:-2] + (b - a, c1 - c0))


def _input_chunks(out_chunks, size, s, p):
    """Input chunks along one axis for the backward: boundaries at the starts of the output chunks' windows."""
    bounds = {0, size}
    edge = 0
    for c in out_chunks[:-1]:
        edge += c
        bounds.add(min(size, max(0, edge * s - p)))
    bounds = sorted(bounds)
    return tuple(b - a for a, b in zip(bounds[:-1], bounds[1:]))


def _output_range(a, b, out_size, k, s, p, d):
    """Output positions whose window extent reaches input positions [a, b)."""
    return max(0, _ceil_div(a + p - (k - 1) * d, s)), min(out_size, (b - 1 + p) // s + 1)


def max_pool2d_backward(grad_output, indices, input_shape, *, kernel_size=None, stride=None, padding=0,
                        dilation=1, ceil_mode=False):
    """:func:`cpool.max_pool2d_backward` on dask arrays, lazily; equal bit for bit to cpool's result.

    ``grad_output`` and ``indices`` are dask arrays (or arrays, wrapped with
    ``da.from_array``) of the same shape; ``indices`` as
    :func:`max_pool2d` returns them. Argument checks and errors are cpool's.

    With the forward's ``kernel_size`` (and its ``stride``, ``padding``,
    ``dilation``, ``ceil_mode``), the gradient is chunked along H and W too:
    the boundaries are the starts of the windows of grad_output's chunks, and
    each chunk gathers the outputs whose windows reach it, so every element
    receives its contributions in cpool's order (exact with overlapping
    windows). An index outside its own window then raises ValueError when
    computed. Without ``kernel_size``, H and W of grad_output/indices are
    rechunked whole and each (N, C) chunk is one cpool call, for any indices.
    The result's N and C chunks are grad_output's.
    """
    go = _as_dask(grad_output, "grad_output")
    idx = _as_dask(indices, "indices", like=go)
    _check_known_chunks(go, "grad_output")
    _check_known_chunks(idx, "indices")
    shape = _check_backward(_stand_in(go.shape, go.dtype), _stand_in(idx.shape, idx.dtype), input_shape, False)[2]
    shape = tuple(int(v) for v in shape)
    dtype = go.dtype.newbyteorder("=")
    lead = go.ndim - 2
    if idx.chunks != go.chunks:
        idx = idx.rechunk(go.chunks)

    if kernel_size is None:
        go = go.rechunk({go.ndim - 2: -1, go.ndim - 1: -1})
        idx = idx.rechunk(go.chunks)
        return da.map_blocks(partial(_backward_whole, shape[-2:]), go, idx, dtype=dtype,
                             chunks=go.chunks[:lead] + ((shape[-2],), (shape[-1],)),
                             name=f"cpool-max_pool2d_backward-{tokenize(go, idx, shape)}",
                             meta=np.empty((0,) * go.ndim, dtype=dtype))

    kernel, stride_, pad, dil, ceil = parse_pool_args(kernel_size, stride, padding, dilation, ceil_mode)
    g = pool_geometry(shape, kernel, stride_, pad, dil, ceil, name="input_shape")
    if (g.OH, g.OW) != go.shape[-2:]:
        raise ValueError(
            f"grad_output.shape={go.shape!r} does not match max_pool2d's output for input_shape={shape!r} "
            f"with kernel_size={kernel!r}, stride={stride_!r}, padding={pad!r}, dilation={dil!r}, "
            f"ceil_mode={ceil}, which is {g.OH}x{g.OW}"
        )
    axes = []
    for ax, size, out_size, k, s, p, d in ((-2, g.H, g.OH, g.kh, g.sh, g.ph, g.dh),
                                           (-1, g.W, g.OW, g.kw, g.sw, g.pw, g.dw)):
        in_chunks = _input_chunks(go.chunks[ax], size, s, p)
        in_edges = _block_edges(in_chunks)
        out_edges = _block_edges(go.chunks[ax])
        blocks = []
        for a, b in zip(in_edges[:-1], in_edges[1:]):
            o0, o1 = _output_range(a, b, out_size, k, s, p, d)
            blocks.append(((a, b), (o0, o1), _overlapping(out_edges, o0, o1) if o1 > o0 else []))
        axes.append((in_chunks, blocks))
    token = tokenize(go, idx, shape, g)
    name = f"cpool-max_pool2d_backward-{token}"
    geom = (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw)
    tasks = {}
    for lead_idx in np.ndindex(*go.numblocks[:lead]):
        lead_idx = tuple(int(i) for i in lead_idx)
        lead_shape = tuple(int(go.chunks[ax][i]) for ax, i in enumerate(lead_idx))
        for i, (rows, out_rows, row_blocks) in enumerate(axes[0][1]):
            for j, (cols, out_cols, col_blocks) in enumerate(axes[1][1]):
                key = (name, *lead_idx, i, j)
                if not row_blocks or not col_blocks:  # no window reaches this block
                    block_shape = lead_shape + (rows[1] - rows[0], cols[1] - cols[0])
                    tasks[key] = (partial(_zeros_block, block_shape, dtype),)
                    continue
                spec = _BackwardRegion(shape, geom, rows, cols, out_rows, out_cols)
                fn = partial(_backward_block, spec, [s for _, s in row_blocks], [s for _, s in col_blocks])
                go_pieces = [[(go.name, *lead_idx, rb, cb) for cb, _ in col_blocks] for rb, _ in row_blocks]
                idx_pieces = [[(idx.name, *lead_idx, rb, cb) for cb, _ in col_blocks] for rb, _ in row_blocks]
                tasks[key] = (fn, go_pieces, idx_pieces)
    chunks = go.chunks[:lead] + (axes[0][0], axes[1][0])
    graph = HighLevelGraph.from_collections(name, tasks, dependencies=[go, idx])
    return da.Array(graph, name, chunks, meta=np.empty((0,) * go.ndim, dtype=dtype))
