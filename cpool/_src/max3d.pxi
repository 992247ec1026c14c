# 3-D max pooling and its backward: PyTorch 2.13's cpu_max_pool (is_3d) and
# cpu_max_pool_channels_last, float32 and float64.
#
# Semantics (see the module docstring): each window starts from -inf and a
# seed index, and takes a tap when "v > best or v is NaN", in (d, h, w)
# order. The seed is the window's first in-bounds position; the scalar
# tail of PyTorch's channels_last_3d kernel drops its depth (channels
# `nodepth_from` and up), which shows only where no tap beats -inf. A window
# with no in-bounds tap gives -inf and -1.
#
# Planes ((N, C, D, H, W) memory), one work item per (plane, output depth):
# a separable fold. For each output row, the kd*kh taps of every input
# column are folded into a row buffer (value, and the tap's row d*H + h),
# over contiguous input rows, which the compiler vectorises; then each
# output folds its kw columns from the buffer. That visits the taps column
# by column rather than in window order, so the second fold does not apply
# the sequential rule but its order-free equivalent: the sequential rule
# returns the NaN of largest flat index if the window has a NaN, else the
# largest value at its smallest flat index (flat index order is window
# order), which is what comparing (value, flat index) pairs gives in any
# order. A column no tap has taken from keeps _NO_TAP and is skipped: -inf
# taps are never taken, so the seed stays.
#
# Channels-last ((N, D, H, W, C) memory), one work item per (image, output
# depth): every output position folds its taps in window order across the
# channels (contiguous lanes), with 32-bit positions, widened at the end.
#
# The backward zeroes a plane (or an image) and adds grad_output at each
# index in output order (channels inner), PyTorch's accumulation order per
# (n, c) volume. Indices are untrusted: one outside [-1, D*H*W) is skipped
# and counted, -1 (an empty window) skipped; the caller raises on a count.

from libc.stdlib cimport malloc, free

# Volumes whose positions the kernels keep in 32-bit lanes (larger ones go
# to cpool.slow), and the mark of a buffer column or channel lane that no
# tap has been taken into: above every position, and no overflow when a
# column's offset is added to it.
cdef enum:
    _NO_TAP = 1 << 30
cdef Py_ssize_t _MAX3D_VOLUME = 1 << 30


cdef inline void _max3d_fold_row(const floating* row, floating* colv, int32_t* coli, int32_t r,
                                 Py_ssize_t W) noexcept nogil:
    # One input row (starting at flat position r) into the column buffer;
    # branch-free so that it vectorises.
    cdef Py_ssize_t w
    cdef floating v, m
    cdef int take
    for w in range(W):
        v = row[w]
        m = colv[w]
        take = (v > m) | (v != v)
        colv[w] = v if take else m
        coli[w] = r if take else coli[w]


cdef inline int _max3d_beats(floating cv, int32_t fi, floating bv, int32_t bi) noexcept nogil:
    # Whether buffer column (cv, flat position fi) replaces the best (bv, bi)
    # so far, whatever the order the columns come in: the NaN of largest
    # position, else the largest value at its smallest position.
    cdef int isn = cv != cv, bn = bv != bv
    return (isn & ((1 - bn) | (fi > bi))) | ((1 - isn) & (1 - bn) & ((cv > bv) | ((cv == bv) & (fi < bi))))


cdef inline void _max3d_fold_columns(const floating* colv, const int32_t* coli, floating* orow, int32_t* bi,
                                     int64_t* irow, Geometry3 g, int64_t seed_row) noexcept nogil:
    # Each output of the row from its kw buffer columns (see the top of this
    # file); bi: OW of scratch. seed_row: the windows' seed row offset (d*H
    # + h, or h alone, times W), or -1 where every window is empty. The
    # outputs whose taps are all inside the row run tap by tap across the
    # outputs (vectorised); the few at the edges one by one.
    cdef Py_ssize_t ow, ws, wlo, whi, j, w, o0, o1, off
    cdef int32_t fi
    cdef floating cv
    cdef int take
    if seed_row < 0:
        for ow in range(g.OW):
            orow[ow] = -INFINITY
            if irow != NULL:
                irow[ow] = -1
        return
    o0 = min((g.pw + g.sw - 1) // g.sw, g.OW)
    o1 = (g.W - 1 - (g.kw - 1) * g.dw + g.pw) // g.sw + 1 if g.W - 1 - (g.kw - 1) * g.dw + g.pw >= 0 else 0
    o1 = max(o0, min(o1, g.OW))
    for ow in range(g.OW):
        orow[ow] = -INFINITY
        bi[ow] = _NO_TAP + g.W
    for j in range(g.kw):
        off = j * g.dw - g.pw
        for ow in range(o0, o1):
            w = ow * g.sw + off
            cv = colv[w]
            fi = coli[w] + <int32_t>w
            take = _max3d_beats(cv, fi, orow[ow], bi[ow])
            orow[ow] = cv if take else orow[ow]
            bi[ow] = fi if take else bi[ow]
    for ow in range(g.OW):
        if o0 <= ow < o1:
            continue
        ws = ow * g.sw - g.pw
        cpool_tap_range(ws, g.kw, g.dw, g.W, &wlo, &whi)
        for j in range(wlo, whi):
            w = ws + j * g.dw
            cv = colv[w]
            fi = coli[w] + <int32_t>w
            if _max3d_beats(cv, fi, orow[ow], bi[ow]):
                orow[ow] = cv
                bi[ow] = fi
        if wlo == whi:
            bi[ow] = -1
    if irow != NULL:
        for ow in range(g.OW):
            ws = ow * g.sw - g.pw
            if bi[ow] >= _NO_TAP:  # no tap beat -inf: the seed (the window's first in-bounds column)
                if ws < 0:
                    ws += (g.dw - 1 - ws) // g.dw * g.dw
                irow[ow] = seed_row + ws
            else:
                irow[ow] = bi[ow]
            if bi[ow] == -1:
                orow[ow] = -INFINITY


cdef bint _max3d_planes_items(const floating* x, floating* out, int64_t* idx, Py_ssize_t i0, Py_ssize_t i1,
                              Geometry3 g, Py_ssize_t C, Py_ssize_t nodepth_from) noexcept nogil:
    # Work items i0..i1, item = plane * OD + od, of C channels. False if out of memory.
    cdef Py_ssize_t HW = g.H * g.W, OHW = g.OH * g.OW
    cdef Py_ssize_t item, p, od, oh, ds, dlo, dhi, hs, hlo, hhi, a, b, d, h, w
    cdef const floating* plane
    cdef int64_t seed_row
    cdef int64_t* irow = NULL
    cdef floating* colv = <floating*>malloc(g.W * sizeof(floating))
    cdef int32_t* coli = <int32_t*>malloc((g.W + g.OW) * sizeof(int32_t))
    if colv == NULL or coli == NULL:
        free(colv)
        free(coli)
        return False
    for item in range(i0, i1):
        p = item // g.OD
        od = item - p * g.OD
        plane = x + p * g.D * HW
        ds = od * g.sd - g.pd
        cpool_tap_range(ds, g.kd, g.dd, g.D, &dlo, &dhi)
        for oh in range(g.OH):
            hs = oh * g.sh - g.ph
            cpool_tap_range(hs, g.kh, g.dh, g.H, &hlo, &hhi)
            if idx != NULL:
                irow = idx + (p * g.OD + od) * OHW + oh * g.OW
            seed_row = -1
            if dlo < dhi and hlo < hhi:
                for w in range(g.W):
                    colv[w] = -INFINITY
                    coli[w] = _NO_TAP
                for a in range(dlo, dhi):
                    d = ds + a * g.dd
                    for b in range(hlo, hhi):
                        h = hs + b * g.dh
                        _max3d_fold_row(plane + (d * g.H + h) * g.W, colv, coli, <int32_t>((d * g.H + h) * g.W),
                                        g.W)
                seed_row = hs + hlo * g.dh
                if p % C < nodepth_from:
                    seed_row += (ds + dlo * g.dd) * g.H
                seed_row *= g.W
            _max3d_fold_columns(colv, coli, out + (p * g.OD + od) * OHW + oh * g.OW, coli + g.W, irow, g, seed_row)
    free(colv)
    free(coli)
    return True


cdef inline void _max3d_fold_lanes(const floating* src, floating* best, int32_t* at, int32_t t,
                                   Py_ssize_t C) noexcept nogil:
    # One tap across the channels; branch-free so that it vectorises.
    cdef Py_ssize_t c
    cdef floating v, m
    cdef int take
    for c in range(C):
        v = src[c]
        m = best[c]
        take = (v > m) | (v != v)
        best[c] = v if take else m
        at[c] = t if take else at[c]


cdef bint _max3d_cl_items(const floating* x, floating* out, int64_t* idx, Py_ssize_t i0, Py_ssize_t i1,
                          Geometry3 g, Py_ssize_t C, Py_ssize_t nodepth_from) noexcept nogil:
    # Work items i0..i1, item = image * OD + od, of channels-last memory.
    cdef Py_ssize_t V = g.D * g.H * g.W
    cdef Py_ssize_t item, n, od, oh, ow, ds, dlo, dhi, hs, hlo, hhi, ws, wlo, whi, a, b, j, c, o
    cdef int32_t t
    cdef int64_t seed, seed_nodepth
    cdef const floating* img
    cdef floating* best
    cdef int64_t* dst
    cdef int32_t* at = <int32_t*>malloc(C * sizeof(int32_t))
    if at == NULL:
        return False
    for item in range(i0, i1):
        n = item // g.OD
        od = item - n * g.OD
        img = x + n * V * C
        ds = od * g.sd - g.pd
        cpool_tap_range(ds, g.kd, g.dd, g.D, &dlo, &dhi)
        for oh in range(g.OH):
            hs = oh * g.sh - g.ph
            cpool_tap_range(hs, g.kh, g.dh, g.H, &hlo, &hhi)
            for ow in range(g.OW):
                ws = ow * g.sw - g.pw
                cpool_tap_range(ws, g.kw, g.dw, g.W, &wlo, &whi)
                o = ((item * g.OH + oh) * g.OW + ow) * C
                best = out + o
                for c in range(C):
                    best[c] = -INFINITY
                    at[c] = _NO_TAP
                if dlo < dhi and hlo < hhi and wlo < whi:
                    for a in range(dlo, dhi):
                        for b in range(hlo, hhi):
                            for j in range(wlo, whi):
                                t = <int32_t>(((ds + a * g.dd) * g.H + hs + b * g.dh) * g.W + ws + j * g.dw)
                                _max3d_fold_lanes(img + <Py_ssize_t>t * C, best, at, t, C)
                    seed_nodepth = (hs + hlo * g.dh) * g.W + ws + wlo * g.dw
                    seed = seed_nodepth + (ds + dlo * g.dd) * g.H * g.W
                else:
                    seed = seed_nodepth = -1
                if idx != NULL:
                    dst = idx + o
                    for c in range(C):
                        dst[c] = at[c] if at[c] != _NO_TAP else (seed if c < nodepth_from else seed_nodepth)
    free(at)
    return True


cdef bint _max3d_forward_run(const floating* x, floating* out, int64_t* idx, Py_ssize_t items, Geometry3 g,
                             bint channels_last, Py_ssize_t C, Py_ssize_t nodepth_from, int n_threads,
                             bint adapt) noexcept:
    # `items` (plane or image, output depth) work items in chunks claimed
    # dynamically by the team (see "threads on a busy machine" in common.h).
    cdef Py_ssize_t c, chunks
    cdef Team team[1]
    cdef double t0
    cdef int n
    cdef bint ok = True
    # Written inside the loop: an array, shared (a scalar would be lastprivate).
    cdef int failed[1]
    n = cpool_team_threads(n_threads, items, adapt)
    if n == 1:
        with nogil:
            if channels_last:
                ok = _max3d_cl_items(x, out, idx, 0, items, g, C, nodepth_from)
            else:
                ok = _max3d_planes_items(x, out, idx, 0, items, g, C, nodepth_from)
        return ok
    failed[0] = 0
    chunks = cpool_team_open(team, n, items, adapt)
    for c in prange(chunks, nogil=True, schedule="dynamic", num_threads=n):
        t0 = cpool_team_enter(team, c)
        if channels_last:
            if not _max3d_cl_items(x, out, idx, items * c // chunks, items * (c + 1) // chunks, g, C,
                                   nodepth_from):
                failed[0] = 1
        elif not _max3d_planes_items(x, out, idx, items * c // chunks, items * (c + 1) // chunks, g, C,
                                     nodepth_from):
            failed[0] = 1
        cpool_team_leave(team, t0)
    cpool_team_close(team)
    return not failed[0]


cdef Py_ssize_t _max3d_backward_items(const floating* go, const int64_t* idx, floating* gi, Py_ssize_t i0,
                                      Py_ssize_t i1, Py_ssize_t V, Py_ssize_t OV, Py_ssize_t C) noexcept nogil:
    # Items i0..i1: volumes (C == 0) or channels-last images of C channels.
    # Returns how many indices were outside [-1, V).
    cdef Py_ssize_t i, o, c, bad = 0
    cdef int64_t t
    cdef const floating* src
    cdef const int64_t* at
    cdef floating* dst
    for i in range(i0, i1):
        if C == 0:
            src = go + i * OV
            at = idx + i * OV
            dst = gi + i * V
            memset(dst, 0, V * sizeof(floating))
            for o in range(OV):
                t = at[o]
                if 0 <= t < V:
                    dst[t] += src[o]
                elif t != -1:
                    bad += 1
        else:
            src = go + i * OV * C
            at = idx + i * OV * C
            dst = gi + i * V * C
            memset(dst, 0, V * C * sizeof(floating))
            for o in range(OV):
                for c in range(C):
                    t = at[o * C + c]
                    if 0 <= t < V:
                        dst[t * C + c] += src[o * C + c]
                    elif t != -1:
                        bad += 1
    return bad


cdef Py_ssize_t _max3d_backward_run(const floating* go, const int64_t* idx, floating* gi, Py_ssize_t items,
                                    Py_ssize_t V, Py_ssize_t OV, Py_ssize_t C, int n_threads,
                                    bint adapt) noexcept:
    # `items` volumes or images in chunks claimed dynamically by the team
    # (see "threads on a busy machine" in common.h).
    cdef Py_ssize_t c, chunks, bad = 0
    cdef Team team[1]
    cdef double t0
    cdef int n = cpool_team_threads(n_threads, items, adapt)
    if n == 1:
        with nogil:
            bad = _max3d_backward_items(go, idx, gi, 0, items, V, OV, C)
        return bad
    chunks = cpool_team_open(team, n, items, adapt)
    for c in prange(chunks, nogil=True, schedule="dynamic", num_threads=n):
        t0 = cpool_team_enter(team, c)
        bad += _max3d_backward_items(go, idx, gi, items * c // chunks, items * (c + 1) // chunks, V, OV, C)
        cpool_team_leave(team, t0)
    cpool_team_close(team)
    return bad


def max_pool3d_forward_into(const floating[:, :, :, :, ::1] x not None, floating[:, :, :, :, ::1] out not None,
                            int64_t[:, :, :, :, ::1] indices, object geometry, int n_threads, bint adapt=False,
                            bint channels_last=False, Py_ssize_t nodepth_from=-1):
    """Fill ``out`` (N, C, OD, OH, OW) and, unless it is None, ``indices``
    (int64, the same shape) from ``x`` (N, C, D, H, W).

    ``channels_last``: the arrays are (N, D, H, W, C) and (N, OD, OH, OW,
    C); channels ``nodepth_from`` and up (-1: none) start from PyTorch's
    channels_last_3d tail seed, without the depth (see max3d.pxi). Returns False, with nothing written, for a volume of
    2**31 or more elements (the caller uses the NumPy code there), or when
    a scratch buffer could not be allocated.
    """
    cdef Geometry3 g = _geometry3(geometry)
    cdef Py_ssize_t N = x.shape[0], C
    cdef int d
    cdef int64_t* ip = NULL
    if channels_last:
        C = x.shape[4]
        ok = (x.shape[1] == g.D and x.shape[2] == g.H and x.shape[3] == g.W and out.shape[0] == N
              and out.shape[1] == g.OD and out.shape[2] == g.OH and out.shape[3] == g.OW and out.shape[4] == C)
    else:
        C = 0
        ok = (x.shape[2] == g.D and x.shape[3] == g.H and x.shape[4] == g.W and out.shape[0] == N
              and out.shape[1] == x.shape[1] and out.shape[2] == g.OD and out.shape[3] == g.OH
              and out.shape[4] == g.OW)
    if not ok:
        raise ValueError("max_pool3d_forward_into: x and out must have the geometry's shapes in their layout")
    if indices is not None:
        for d in range(5):
            if indices.shape[d] != out.shape[d]:
                raise ValueError("max_pool3d_forward_into: indices must be shaped like out")
    if g.D * g.H * g.W > _MAX3D_VOLUME:
        return False
    if out.size == 0:
        return True
    if indices is not None:
        ip = &indices[0, 0, 0, 0, 0]
    if channels_last:
        return _max3d_forward_run(&x[0, 0, 0, 0, 0], &out[0, 0, 0, 0, 0], ip, N * g.OD, g, True, C,
                                  C if nodepth_from < 0 else nodepth_from, n_threads, adapt)
    C = x.shape[1]
    return _max3d_forward_run(&x[0, 0, 0, 0, 0], &out[0, 0, 0, 0, 0], ip, N * C * g.OD, g, False, C,
                              C if nodepth_from < 0 else nodepth_from, n_threads, adapt)


def max_pool3d_backward_into(const floating[:, :, :, :, ::1] grad_output not None,
                             const int64_t[:, :, :, :, ::1] indices not None,
                             floating[:, :, :, :, ::1] grad_input not None, int n_threads, bint adapt=False,
                             bint channels_last=False):
    """Overwrite ``grad_input`` (N, C, D, H, W) with ``grad_output`` (N, C,
    OD, OH, OW) added at ``indices``; ``channels_last``: (N, D, H, W, C) and
    (N, OD, OH, OW, C). Returns the number of indices outside ``[-1,
    D*H*W)``: those are skipped, and the caller must treat a non-zero count
    as an error."""
    cdef Py_ssize_t N = grad_input.shape[0], C, V, OV
    cdef int d
    ok = grad_output.shape[0] == N
    for d in range(5):
        ok = ok and indices.shape[d] == grad_output.shape[d]
    if channels_last:
        C = grad_input.shape[4]
        V = grad_input.shape[1] * grad_input.shape[2] * grad_input.shape[3]
        OV = grad_output.shape[1] * grad_output.shape[2] * grad_output.shape[3]
        ok = ok and grad_output.shape[4] == C
    else:
        C = 0
        V = grad_input.shape[2] * grad_input.shape[3] * grad_input.shape[4]
        OV = grad_output.shape[2] * grad_output.shape[3] * grad_output.shape[4]
        ok = ok and grad_output.shape[1] == grad_input.shape[1]
    if not ok:
        raise ValueError("max_pool3d_backward_into: indices must be shaped like grad_output, "
                         "with grad_input's batch and channel axes")
    if grad_input.size == 0:
        return 0
    if channels_last:
        return _max3d_backward_run(&grad_output[0, 0, 0, 0, 0] if OV else NULL,
                                   &indices[0, 0, 0, 0, 0] if OV else NULL, &grad_input[0, 0, 0, 0, 0], N, V, OV, C,
                                   n_threads, adapt)
    return _max3d_backward_run(&grad_output[0, 0, 0, 0, 0] if OV else NULL, &indices[0, 0, 0, 0, 0] if OV else NULL,
                               &grad_input[0, 0, 0, 0, 0], N * grad_input.shape[1], V, OV, 0, n_threads, adapt)
