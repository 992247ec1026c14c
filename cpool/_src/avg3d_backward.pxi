# 3-D average-pooling backward: PyTorch 2.13's CPU avg_pool3d_backward
# (AveragePool3d.cpp's avg_pool3d_backward_out_frame), float32 and float64,
# one scalar loop there for both memory formats. Each output's share
# `grad_output / divisor` is added to every in-bounds element of its window,
# outputs in row-major order, rounding after every add; of two NaNs a cell
# keeps its own (the older share's). grad_input is zeroed here.
#
# Both layouts walk the gradient by input rows, each zeroed just before its
# adds and then given the share rows of the windows holding it in (od, oh)
# order, each share row's windows in ow order: every cell still receives
# its shares in torch's output order. Planes: one plane per work item (its
# shares computed once); within a share row the taps run from the last to
# the first, so a cell two windows share gets the earlier window's share
# first and each tap's pass is a strided vector update without conflicts.
# Channels-last: one depth slice of an image per work item, vectorised
# across channels. Only two NaNs meeting need the rule made explicit: a
# share row without a NaN is added plainly (a NaN cell plus a number keeps
# the cell's NaN whatever the operand order).


cdef void _avg3d_divisors(floating* divs, Geometry3 g, bint incl, bint override, int64_t divisor) noexcept nogil:
    # Every output's divisor, in the dtype (torch converts divide_factor to it).
    cdef Py_ssize_t od, oh, ow, d0, d1, dp, h0, h1, hp, w0, w1, wp
    for od in range(g.OD):
        dp = _avg_divisor(od, g.kd, g.sd, g.pd, g.D, &d0, &d1)
        for oh in range(g.OH):
            hp = _avg_divisor(oh, g.kh, g.sh, g.ph, g.H, &h0, &h1)
            for ow in range(g.OW):
                wp = _avg_divisor(ow, g.kw, g.sw, g.pw, g.W, &w0, &w1)
                divs[(od * g.OH + oh) * g.OW + ow] = <floating>_avg3d_factor(
                    dp, hp, wp, d1 - d0, h1 - h0, w1 - w0, incl, override, divisor)


cdef inline Py_ssize_t _first_window(Py_ssize_t i, Py_ssize_t k, Py_ssize_t s, Py_ssize_t p) noexcept nogil:
    # The first output whose window (start o * s - p, k taps) holds input i.
    cdef Py_ssize_t t = i + p - k + 1
    return 0 if t <= 0 else (t + s - 1) // s


cdef inline void _avg3d_share_row(floating* row, const floating* s, Py_ssize_t W, Py_ssize_t OW, Py_ssize_t kw,
                                  Py_ssize_t sw, Py_ssize_t pw, bint nans, const Py_ssize_t* los,
                                  const Py_ssize_t* his) noexcept nogil:
    # Add one share row `s` (OW windows) to an input row: tap passes from
    # the last to the first, so a cell two windows share gets the earlier
    # window's share first; without a NaN in `s` plain adds (see above).
    # los/his: each tap's window range (_valid_outputs), or NULL to compute them.
    cdef Py_ssize_t j, off, lo, hi, ow
    cdef floating cell
    for j in range(kw - 1, -1, -1):
        off = j - pw
        if los != NULL:
            lo, hi = los[j], his[j]
        else:
            _valid_outputs(off, sw, W, OW, &lo, &hi)
        if nans:
            for ow in range(lo, hi):
                cell = row[off + ow * sw]
                row[off + ow * sw] = cell if cell != cell else cell + s[ow]
        elif sw == 1:
            for ow in range(lo, hi):
                row[off + ow] = row[off + ow] + s[ow]
        elif sw == 2:
            for ow in range(lo, hi):
                row[off + 2 * ow] = row[off + 2 * ow] + s[ow]
        else:
            for ow in range(lo, hi):
                row[off + ow * sw] = row[off + ow * sw] + s[ow]


cdef inline void _avg3d_share_row_padded(floating* buf, const floating* s, Py_ssize_t OW, Py_ssize_t kw,
                                         Py_ssize_t sw) noexcept nogil:
    # _avg3d_share_row into a zero-padded row (buf[q] is column q - pw;
    # every window inside it) without a NaN in `s`. With sw >= 2 two taps
    # (j, j + 1) go in one sweep from the top pair down: within a sweep no
    # two adds reach one cell (that would need sw == 1), and a cell two
    # windows share is reached by the earlier window's higher tap in an
    # earlier sweep.
    cdef Py_ssize_t j = kw, ow, i
    if sw >= 2:
        while j >= 2:
            j = j - 2
            if sw == 2:
                for ow in range(OW):
                    i = 2 * ow + j
                    buf[i] = buf[i] + s[ow]
                    buf[i + 1] = buf[i + 1] + s[ow]
            else:
                for ow in range(OW):
                    i = ow * sw + j
                    buf[i] = buf[i] + s[ow]
                    buf[i + 1] = buf[i + 1] + s[ow]
    while j >= 1:
        j = j - 1
        if sw == 1:
            for ow in range(OW):
                buf[ow + j] = buf[ow + j] + s[ow]
        else:
            for ow in range(OW):
                buf[ow * sw + j] = buf[ow * sw + j] + s[ow]


cdef void _avg3d_backward_planes(const floating* go, floating* gi, Py_ssize_t p0, Py_ssize_t p1, Geometry3 g,
                                 const floating* divs, floating* share) noexcept nogil:
    # Planes p0 <= p < p1; `share`: scratch for a plane of OD * OH * OW shares.
    # Each input row is zeroed (or its first share row stored) just before
    # its adds, while it is in cache.
    cdef Py_ssize_t D = g.D, H = g.H, W = g.W, OD = g.OD, OH = g.OH, OW = g.OW
    cdef Py_ssize_t n_out = OD * OH * OW
    cdef Py_ssize_t p, i, nans, id, ih, od, oh, j
    cdef const floating* src
    cdef floating* row
    # each tap's window range, computed once (integer divisions); NULL without the memory
    cdef Py_ssize_t* los = <Py_ssize_t*>malloc(2 * g.kw * sizeof(Py_ssize_t))
    cdef Py_ssize_t* his = los + g.kw if los != NULL else NULL
    if los != NULL:
        for j in range(g.kw):
            _valid_outputs(j - g.pw, g.sw, W, OW, &los[j], &his[j])
    # Share rows without a NaN are added into a zero-padded row (column iw
    # at buf[iw + pw], room for every window), which is then copied into
    # the input row: no per-tap edge ranges, and the memset of the row folded
    # into the copy. Where every window lies inside the row (no padding, no
    # overhang) the row itself is that buffer. Without the memory, or for
    # very wide rows, in place.
    cdef Py_ssize_t plen = max((OW - 1) * g.sw + g.kw, W + g.pw)
    cdef bint direct = g.pw == 0 and plen == W
    cdef floating* buf = NULL if direct or plen > 65536 else <floating*>malloc(plen * sizeof(floating))
    cdef floating* dst
    cdef bint used, fresh
    # float32 stride-2 share rows in AVX2 builds: cpool_avg3d_share_row_s2_avx2
    cdef bint s2 = floating is float and CPOOL_HAVE_AVG_AVX2 and g.sw == 2 and g.kw >= 2
    for p in range(p0, p1):
        src = go + p * n_out
        for i in range(n_out):
            share[i] = src[i] / divs[i]
        nans = 0
        for i in range(n_out):
            nans = nans + (share[i] != share[i])
        used = (direct or buf != NULL) and nans == 0
        for id in range(D):
            for ih in range(H):
                row = gi + ((p * D + id) * H + ih) * W
                dst = row if direct else buf
                fresh = used and s2
                if used and not fresh:
                    memset(dst, 0, plen * sizeof(floating))
                elif not used:
                    memset(row, 0, W * sizeof(floating))
                od = _first_window(id, g.kd, g.sd, g.pd)
                while od < OD and od * g.sd - g.pd <= id:
                    oh = _first_window(ih, g.kh, g.sh, g.ph)
                    while oh < OH and oh * g.sh - g.ph <= ih:
                        if used and s2:
                            if floating is float:  # (s2 implies it: for the compiler)
                                cpool_avg3d_share_row_s2_avx2(dst, share + (od * OH + oh) * OW, OW, g.kw, fresh,
                                                              plen)
                            fresh = False
                        elif used:
                            _avg3d_share_row_padded(dst, share + (od * OH + oh) * OW, OW, g.kw, g.sw)
                        else:
                            _avg3d_share_row(row, share + (od * OH + oh) * OW, W, OW, g.kw, g.sw, g.pw, nans > 0,
                                             los, his)
                        oh = oh + 1
                    od = od + 1
                if fresh:  # no window holds this row
                    memset(dst, 0, plen * sizeof(floating))
                if used and not direct:
                    memcpy(row, buf + g.pw, W * sizeof(floating))
    free(los)
    free(buf)


cdef void _avg3d_backward_slices(const floating* go, floating* gi, Py_ssize_t s0, Py_ssize_t s1, Geometry3 g,
                                 Py_ssize_t C, const floating* divs, floating* share) noexcept nogil:
    # Channels-last depth slices s = n * D + id, s0 <= s < s1, one input row
    # (W * C elements) at a time: zeroed, then the shares of the windows
    # holding it in (od, oh, ow) order, vectorised across channels.
    # `share`: scratch for one share row of OW * C elements.
    cdef Py_ssize_t D = g.D, H = g.H, W = g.W, OD = g.OD, OH = g.OH, OW = g.OW
    cdef Py_ssize_t sl, n, id, ih, od, oh, ow, iw, c, i, nans, w0, w1
    cdef const floating* src
    cdef const floating* sh
    cdef floating* row
    cdef floating* dst
    cdef floating dv, cell
    for sl in range(s0, s1):
        n = sl // D
        id = sl - n * D
        for ih in range(H):
            row = gi + ((n * D + id) * H + ih) * W * C
            memset(row, 0, W * C * sizeof(floating))
            od = _first_window(id, g.kd, g.sd, g.pd)
            while od < OD and od * g.sd - g.pd <= id:
                oh = _first_window(ih, g.kh, g.sh, g.ph)
                while oh < OH and oh * g.sh - g.ph <= ih:
                    src = go + ((n * OD + od) * OH + oh) * OW * C
                    for ow in range(OW):
                        dv = divs[(od * OH + oh) * OW + ow]
                        for c in range(C):
                            share[ow * C + c] = src[ow * C + c] / dv
                    nans = 0
                    for i in range(OW * C):
                        nans = nans + (share[i] != share[i])
                    for ow in range(OW):
                        _avg_divisor(ow, g.kw, g.sw, g.pw, W, &w0, &w1)
                        sh = share + ow * C
                        for iw in range(w0, w1):
                            dst = row + iw * C
                            if nans:
                                for c in range(C):
                                    cell = dst[c]
                                    dst[c] = cell if cell != cell else cell + sh[c]
                            else:
                                for c in range(C):
                                    dst[c] = dst[c] + sh[c]
                    oh = oh + 1
                od = od + 1


cdef int _avg3d_backward_run(const floating* go, floating* gi, Py_ssize_t N, Py_ssize_t P, Geometry3 g,
                             Py_ssize_t C, bint incl, bint override, int64_t divisor, int n_threads,
                             bint adapt) noexcept:
    # P planes (C == 0), or channels-last: N images of C channels, as N * D
    # depth slices. Each work item writes its own input rows, with its
    # member's scratch; chunks of consecutive items are claimed dynamically
    # by the team (see "threads on a busy machine" in common.h). Returns -1
    # when out of memory.
    cdef Py_ssize_t c, chunks, items = N * g.D if C > 0 else P
    cdef Py_ssize_t scratch = g.OW * C if C > 0 else g.OD * g.OH * g.OW
    cdef Team team[1]
    cdef double t0
    cdef int n
    cdef floating* divs
    cdef floating* work
    cdef floating* mine
    if items == 0:
        return 0
    n = cpool_team_threads(n_threads, items, adapt)
    divs = <floating*>malloc(g.OD * g.OH * g.OW * sizeof(floating))
    work = <floating*>malloc(n * scratch * sizeof(floating))
    if divs == NULL or work == NULL:
        free(divs)
        free(work)
        return -1
    _avg3d_divisors(divs, g, incl, override, divisor)
    if n == 1:
        with nogil:
            if C > 0:
                _avg3d_backward_slices(go, gi, 0, items, g, C, divs, work)
            else:
                _avg3d_backward_planes(go, gi, 0, items, g, divs, work)
    else:
        chunks = cpool_team_open(team, n, items, adapt)
        for c in prange(chunks, nogil=True, schedule="dynamic", num_threads=n):
            t0 = cpool_team_enter(team, c)
            mine = work + threadid() * scratch
            if C > 0:
                _avg3d_backward_slices(go, gi, items * c // chunks, items * (c + 1) // chunks, g, C, divs, mine)
            else:
                _avg3d_backward_planes(go, gi, items * c // chunks, items * (c + 1) // chunks, g, divs, mine)
            cpool_team_leave(team, t0)
        cpool_team_close(team)
    free(divs)
    free(work)
    return 0
