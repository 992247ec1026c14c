# 3-D adaptive pooling: PyTorch 2.13's CPU kernels, float32 and float64.
# Output o of an axis of out_len pools input [o * size // out_len,
# ceil((o + 1) * size / out_len)) (cpool_adaptive_start / _end, common.h),
# on depth, height and width. One rule for both memory layouts (torch's 3-D average runs the
# same arithmetic on channels-last-3d memory): each window summed in (d, h,
# w) order from 0, `acc + v` (once NaN, the sum keeps its NaN), then
# `sum / kd / kh / kw`. Max: the first maximum in (d, h, w) order, a NaN
# always taken (the last NaN wins), the index `(d * H + h) * W + w`. The
# average backward adds `g / kd / kh / kw` to every element of the window,
# outputs in row-major order; an element that is NaN keeps its NaN (unlike
# 2-D, where a NaN share replaces it). Planes ((N, C, D, H, W) memory): work items are output rows of a
# volume (forward) or volumes (backward); channels-last ((N, D, H, W, C)):
# the same across the channels. The 1x1x1 average (torch's mean) is the
# 2-D kernels' mean of the (D * H, W) plane, in cpool._compiled.


cdef struct _Vol3:
    Py_ssize_t D, H, W, OD, OH, OW


cdef inline void _ad3_window(const _Vol3* v, Py_ssize_t od, Py_ssize_t oh, Py_ssize_t ow, Py_ssize_t* b) noexcept nogil:
    # b = d0, d1, h0, h1, w0, w1
    b[0], b[1] = cpool_adaptive_start(od, v.OD, v.D), cpool_adaptive_end(od, v.OD, v.D)
    b[2], b[3] = cpool_adaptive_start(oh, v.OH, v.H), cpool_adaptive_end(oh, v.OH, v.H)
    b[4], b[5] = cpool_adaptive_start(ow, v.OW, v.W), cpool_adaptive_end(ow, v.OW, v.W)


cdef floating _ad3_nan_sum(const floating* vol, Py_ssize_t stride, const _Vol3* v, const Py_ssize_t* b) noexcept nogil:
    # A window whose sum is NaN, again with the NaN rule explicit: once the
    # running sum is NaN it keeps that NaN, whatever operand order the
    # compiler chose in the fast loop. `stride`: elements between taps (C).
    cdef floating total = 0
    cdef Py_ssize_t d, h, w
    for d in range(b[0], b[1]):
        for h in range(b[2], b[3]):
            for w in range(b[4], b[5]):
                if total != total:
                    return total
                total = total + vol[((d * v.H + h) * v.W + w) * stride]
    return total


cdef void _ad3_plane_rows(const floating* x, floating* out, int64_t* idx, bint is_max, Py_ssize_t r0,
                           Py_ssize_t r1, const _Vol3* v) noexcept nogil:
    # Planes memory: rows r = (p * OD + od) * OH + oh of the output, each
    # window's sum (or maximum and index) in registers.
    cdef Py_ssize_t r, p, od, oh, ow, d, h, w, at
    cdef Py_ssize_t b[6]
    cdef const floating* vol
    cdef const floating* row
    cdef floating acc, val
    for r in range(r0, r1):
        p = r // (v.OD * v.OH)
        od = (r // v.OH) % v.OD
        oh = r % v.OH
        vol = x + p * v.D * v.H * v.W
        for ow in range(v.OW):
            _ad3_window(v, od, oh, ow, b)
            if is_max:
                acc = -INFINITY
                at = (b[0] * v.H + b[2]) * v.W + b[4]
                for d in range(b[0], b[1]):
                    for h in range(b[2], b[3]):
                        row = vol + (d * v.H + h) * v.W
                        for w in range(b[4], b[5]):
                            val = row[w]
                            if val > acc or val != val:
                                acc = val
                                at = (d * v.H + h) * v.W + w
                out[r * v.OW + ow] = acc
                if idx != NULL:
                    idx[r * v.OW + ow] = at
            else:
                acc = 0
                for d in range(b[0], b[1]):
                    for h in range(b[2], b[3]):
                        row = vol + (d * v.H + h) * v.W
                        for w in range(b[4], b[5]):
                            acc = acc + row[w]
                if acc != acc:
                    acc = _ad3_nan_sum(vol, 1, v, b)
                out[r * v.OW + ow] = acc / <floating>(b[1] - b[0]) / <floating>(b[3] - b[2]) / <floating>(b[5] - b[4])


cdef void _ad3_forward_rows(const floating* x, floating* out, int64_t* idx, bint is_max, Py_ssize_t r0,
                            Py_ssize_t r1, const _Vol3* v, Py_ssize_t C) noexcept nogil:
    # Rows r = (item * OD + od) * OH + oh of the output; an item is an (n, c)
    # volume (C == 0) or an image of C channels (C > 0, channels inner).
    cdef Py_ssize_t r, item, od, oh, ow, d, h, w, c, at, base, Cs = max(C, <Py_ssize_t>1)
    cdef Py_ssize_t b[6]
    cdef const floating* vol
    cdef const floating* tap
    cdef floating* o
    cdef int64_t* i = NULL
    cdef floating val, kd, kh, kw
    cdef bint nan
    if C == 0:
        _ad3_plane_rows(x, out, idx, is_max, r0, r1, v)
        return
    for r in range(r0, r1):
        item = r // (v.OD * v.OH)
        od = (r // v.OH) % v.OD
        oh = r % v.OH
        vol = x + item * v.D * v.H * v.W * Cs
        for ow in range(v.OW):
            _ad3_window(v, od, oh, ow, b)
            o = out + (r * v.OW + ow) * Cs
            if idx != NULL:
                i = idx + (r * v.OW + ow) * Cs
            for c in range(Cs):
                o[c] = -INFINITY if is_max else 0
                if i != NULL:
                    i[c] = (b[0] * v.H + b[2]) * v.W + b[4]
            for d in range(b[0], b[1]):
                for h in range(b[2], b[3]):
                    for w in range(b[4], b[5]):
                        base = (d * v.H + h) * v.W + w
                        tap = vol + base * Cs
                        if not is_max:
                            for c in range(Cs):
                                o[c] = o[c] + tap[c]
                        elif i != NULL:
                            for c in range(Cs):
                                val = tap[c]
                                if val > o[c] or val != val:
                                    o[c] = val
                                    i[c] = base
                        else:
                            for c in range(Cs):
                                val = tap[c]
                                if val > o[c] or val != val:
                                    o[c] = val
            if is_max:
                continue
            nan = False
            for c in range(Cs):
                nan = nan | (o[c] != o[c])
            if nan:
                for c in range(Cs):
                    if o[c] != o[c]:
                        o[c] = _ad3_nan_sum(vol + c, Cs, v, b)
            kd, kh, kw = <floating>(b[1] - b[0]), <floating>(b[3] - b[2]), <floating>(b[5] - b[4])
            for c in range(Cs):
                o[c] = o[c] / kd / kh / kw


cdef void _ad3_backward_items(const floating* go, floating* gi, Py_ssize_t i0, Py_ssize_t i1, const _Vol3* v,
                              Py_ssize_t C) noexcept nogil:
    # Items i0..i1: (n, c) volumes (C == 0) or images of C channels. Each
    # element still receives its windows' shares in output order: the
    # channel loop sits outside the window's taps, so a share is divided
    # once per output.
    cdef Py_ssize_t item, od, oh, ow, d, h, w, c, Cs = max(C, <Py_ssize_t>1)
    cdef Py_ssize_t b[6]
    cdef Py_ssize_t n_in = v.D * v.H * v.W * Cs, n_out = v.OD * v.OH * v.OW * Cs
    cdef const floating* src
    cdef floating* vol
    cdef floating* dst
    cdef floating kd, kh, kw, share
    for item in range(i0, i1):
        vol = gi + item * n_in
        memset(vol, 0, n_in * sizeof(floating))
        for od in range(v.OD):
            for oh in range(v.OH):
                for ow in range(v.OW):
                    _ad3_window(v, od, oh, ow, b)
                    kd, kh, kw = <floating>(b[1] - b[0]), <floating>(b[3] - b[2]), <floating>(b[5] - b[4])
                    src = go + item * n_out + ((od * v.OH + oh) * v.OW + ow) * Cs
                    for c in range(Cs):
                        share = src[c] / kd / kh / kw
                        for d in range(b[0], b[1]):
                            for h in range(b[2], b[3]):
                                dst = vol + ((d * v.H + h) * v.W) * Cs + c
                                for w in range(b[4], b[5]):
                                    if dst[w * Cs] == dst[w * Cs]:  # a NaN element keeps its NaN
                                        dst[w * Cs] = dst[w * Cs] + share


cdef void _ad3_run(const floating* x, floating* out, int64_t* idx, bint is_max, bint backward,
                   Py_ssize_t items, const _Vol3* v, Py_ssize_t C, int n_threads, bint adapt) noexcept:
    # Forward: items * OD * OH output rows; backward: items volumes or
    # images. Split among the team in chunks claimed dynamically (see
    # "threads on a busy machine" in common.h; each output on its own: any
    # split gives the same bits).
    cdef Py_ssize_t units = items if backward else items * v.OD * v.OH, c, chunks
    cdef Team team[1]
    cdef double t0
    cdef int n
    if units == 0 or (not backward and v.OW == 0):
        return
    n = cpool_team_threads(n_threads, units, adapt)
    if n == 1:
        with nogil:
            if backward:
                _ad3_backward_items(x, out, 0, units, v, C)
            else:
                _ad3_forward_rows(x, out, idx, is_max, 0, units, v, C)
        return
    chunks = cpool_team_open(team, n, units, adapt)
    for c in prange(chunks, nogil=True, schedule="dynamic", num_threads=n):
        t0 = cpool_team_enter(team, c)
        if backward:
            _ad3_backward_items(x, out, units * c // chunks, units * (c + 1) // chunks, v, C)
        else:
            _ad3_forward_rows(x, out, idx, is_max, units * c // chunks, units * (c + 1) // chunks, v, C)
        cpool_team_leave(team, t0)
    cpool_team_close(team)
