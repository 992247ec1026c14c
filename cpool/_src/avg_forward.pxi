# Average-pooling forward: PyTorch 2.13's CPU kernels (AvgPoolKernel.cpp),
# float32 and float64. Each output sums its window's in-bounds taps in
# row-major order from 0, in its own dtype, then divides by the divisor
# converted to that dtype.
#
# Planes ((N, C, H, W) memory): vectorised across a chunk of output columns
# (tap-outer, output-inner, as _rows_general: each output still sees its
# taps in row-major order), storing `0 + sum / divisor` as torch's planes
# kernel does (a -0.0 mean becomes +0.0); `acc = acc + v` keeps the running
# sum's NaN when both are NaN, as torch's `sum += v`.
# Channels-last ((N, H, W, C) memory): vectorised across channels, storing
# the mean itself; `v + acc` keeps the tap's NaN, as torch's vector lanes
# (the last C % 4 float / C % 2 double channels, torch's scalar tail, keep
# the running sum's).


cdef inline Py_ssize_t _avg_divisor(Py_ssize_t o, Py_ssize_t k, Py_ssize_t s, Py_ssize_t p, Py_ssize_t size,
                                    Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    # Window of output o along one axis: [lo, hi) in bounds; returns its
    # length counting padding (never the ceil-mode overhang past size + p).
    cdef Py_ssize_t start = o * s - p
    cdef Py_ssize_t end = min(start + k, size + p)
    lo[0] = max(start, 0)
    hi[0] = min(end, size)
    return end - start


cdef inline int64_t _avg_factor(Py_ssize_t hp, Py_ssize_t wp, Py_ssize_t hn, Py_ssize_t wn, bint incl,
                                bint override, int64_t divisor) noexcept nogil:
    if override:
        return divisor
    if incl:
        return hp * wp
    return hn * wn


cdef floating _avg_nan_sum(const floating* plane, Py_ssize_t W, Py_ssize_t h0, Py_ssize_t h1,
                          Py_ssize_t w0, Py_ssize_t w1) noexcept nogil:
    # A window whose sum is NaN, summed again in torch's order with its NaN
    # rule made explicit: once the running sum is NaN it keeps that NaN (the
    # first NaN tap's, or inf - inf's), whichever operand order the compiler
    # chose for the vector sum above.
    cdef floating total = 0
    cdef Py_ssize_t ih, iw
    for ih in range(h0, h1):
        for iw in range(w0, w1):
            if total != total:
                return total
            total = total + plane[ih * W + iw]
    return total


cdef void _avg_rows_windows(const floating* x, floating* out, Py_ssize_t r0, Py_ssize_t r1, Geometry g,
                            bint incl, bint override, int64_t divisor) noexcept nogil:
    # One window at a time over its in-bounds taps: for kernels wider than
    # the input (a ceil_mode window clipped to it), where _avg_rows' sweep
    # would visit every tap of the kernel.
    cdef Py_ssize_t W = g.W, H = g.H, OW = g.OW, OH = g.OH
    cdef Py_ssize_t r, p, oh, ow, ih, iw, h0, h1, hp, w0, w1, wp
    cdef const floating* plane
    cdef floating total
    cdef floating zero = 0
    for r in range(r0, r1):
        p = r // OH
        oh = r - p * OH
        plane = x + p * H * W
        hp = _avg_divisor(oh, g.kh, g.sh, g.ph, H, &h0, &h1)
        for ow in range(OW):
            wp = _avg_divisor(ow, g.kw, g.sw, g.pw, W, &w0, &w1)
            total = 0
            for ih in range(h0, h1):
                for iw in range(w0, w1):
                    total = total + plane[ih * W + iw]
            if total != total:
                total = _avg_nan_sum(plane, W, h0, h1, w0, w1)
            out[r * OW + ow] = zero + total / <floating>_avg_factor(hp, wp, h1 - h0, w1 - w0, incl,
                                                                    override, divisor)


cdef void _avg_rows(const floating* x, floating* out, Py_ssize_t r0, Py_ssize_t r1, Geometry g,
                    bint incl, bint override, int64_t divisor) noexcept nogil:
    cdef Py_ssize_t W = g.W, H = g.H, OW = g.OW, OH = g.OH, sw = g.sw
    cdef Py_ssize_t r, p, oh, c, c0, c1, j, ih, off, lo, hi, h0, h1, hp, w0, w1, wp
    cdef const floating* row
    cdef floating acc[CHUNK]
    cdef floating zero = 0
    if g.kw > g.W:
        _avg_rows_windows(x, out, r0, r1, g, incl, override, divisor)
        return
    if floating is float and CPOOL_HAVE_AVG_AVX2 and cpool_avg_rows_avx2(x, out, r0, r1, g, incl, override,
                                                                          divisor):
        return
    for r in range(r0, r1):
        p = r // OH
        oh = r - p * OH
        hp = _avg_divisor(oh, g.kh, g.sh, g.ph, H, &h0, &h1)
        c0 = 0
        while c0 < OW:
            c1 = min(OW, c0 + CHUNK)
            for c in range(c1 - c0):
                acc[c] = 0
            for ih in range(h0, h1):
                row = x + p * H * W + ih * W
                for j in range(g.kw):
                    off = j - g.pw + c0 * sw
                    _valid_outputs(off, sw, W, c1 - c0, &lo, &hi)
                    if sw == 1:
                        for c in range(lo, hi):
                            acc[c] = acc[c] + row[off + c]
                    else:
                        for c in range(lo, hi):
                            acc[c] = acc[c] + row[off + c * sw]
            for c in range(c1 - c0):
                wp = _avg_divisor(c0 + c, g.kw, sw, g.pw, W, &w0, &w1)
                if acc[c] != acc[c]:
                    acc[c] = _avg_nan_sum(x + p * H * W, W, h0, h1, w0, w1)
                out[r * OW + c0 + c] = zero + acc[c] / <floating>_avg_factor(hp, wp, h1 - h0, w1 - w0, incl,
                                                                            override, divisor)
            c0 = c1


cdef void _avg_rows_nhwc(const floating* x, floating* out, Py_ssize_t r0, Py_ssize_t r1, Geometry g,
                         Py_ssize_t C, bint incl, bint override, int64_t divisor) noexcept nogil:
    # Rows r = n * OH + oh of (N, OH, OW, C) output.
    cdef Py_ssize_t W = g.W, H = g.H, OW = g.OW, OH = g.OH
    cdef Py_ssize_t r, n, oh, ow, c, ih, iw, h0, h1, hp, w0, w1, wp
    cdef const floating* tap
    cdef floating* o
    cdef floating d
    cdef floating zero = 0
    # torch's channels-last lanes: 16-byte vectors at least, then a scalar tail
    cdef Py_ssize_t lanes = C - C % <Py_ssize_t>(16 // sizeof(floating))
    if floating is float and CPOOL_HAVE_AVG_AVX2 and cpool_avg_rows_nhwc_avx2(x, out, r0, r1, g, C, incl,
                                                                               override, divisor):
        return
    for r in range(r0, r1):
        n = r // OH
        oh = r - n * OH
        hp = _avg_divisor(oh, g.kh, g.sh, g.ph, H, &h0, &h1)
        for ow in range(OW):
            wp = _avg_divisor(ow, g.kw, g.sw, g.pw, W, &w0, &w1)
            o = out + (r * OW + ow) * C
            for c in range(C):
                o[c] = 0
            for ih in range(h0, h1):
                for iw in range(w0, w1):
                    tap = x + ((n * H + ih) * W + iw) * C
                    for c in range(lanes):
                        # torch's vector lanes keep a NaN tap's NaN (quieted: + 0)
                        o[c] = tap[c] + zero if tap[c] != tap[c] else tap[c] + o[c]
                    for c in range(lanes, C):
                        # its scalar tail keeps the running sum's
                        o[c] = o[c] if o[c] != o[c] else o[c] + tap[c]
            d = <floating>_avg_factor(hp, wp, h1 - h0, w1 - w0, incl, override, divisor)
            for c in range(C):
                o[c] = o[c] / d


cdef void _avg_block(const floating* x, floating* out, Py_ssize_t r0, Py_ssize_t r1, Geometry g,
                     bint incl, bint override, int64_t divisor) noexcept nogil:
    # One thread's planes rows. Planes with rows too narrow for the planes
    # kernel's vectors go whole, in slabs, through avg_slabs_avx2.h; the
    # rows of a plane split between blocks go as the rest do.
    cdef Py_ssize_t p0, p1
    if floating is float:
        if CPOOL_HAVE_AVG_SLABS_AVX2 and cpool_avg_slabs_apply(&g):
            p0 = (r0 + g.OH - 1) // g.OH
            p1 = r1 // g.OH
            if p1 > p0 and cpool_avg_slabs_run(x, out, p0, p1, g, incl, override, divisor, False):
                if r0 < p0 * g.OH:
                    _avg_rows(x, out, r0, p0 * g.OH, g, incl, override, divisor)
                if p1 * g.OH < r1:
                    _avg_rows(x, out, p1 * g.OH, r1, g, incl, override, divisor)
                return
    _avg_rows(x, out, r0, r1, g, incl, override, divisor)


cdef void _avg_forward_run(const floating* x, floating* out, Py_ssize_t P, Geometry g, Py_ssize_t C,
                           bint incl, bint override, int64_t divisor, int n_threads, bint adapt) noexcept:
    # P planes (C == 0) or P images of C channels: P * OH output rows in
    # chunks of consecutive rows, claimed dynamically by the team (see
    # "threads on a busy machine" in common.h).
    cdef Py_ssize_t rows = P * g.OH, c, chunks
    cdef Team team[1]
    cdef double t0
    cdef int n
    if rows == 0 or g.OW == 0:
        return
    n = cpool_team_threads(n_threads, rows, adapt)
    if n == 1:
        with nogil:
            if C > 0:
                _avg_rows_nhwc(x, out, 0, rows, g, C, incl, override, divisor)
            else:
                _avg_block(x, out, 0, rows, g, incl, override, divisor)
        return
    chunks = cpool_team_open(team, n, rows, adapt)
    for c in prange(chunks, nogil=True, schedule="dynamic", num_threads=n):
        t0 = cpool_team_enter(team, c)
        if C > 0:
            _avg_rows_nhwc(x, out, rows * c // chunks, rows * (c + 1) // chunks, g, C, incl, override, divisor)
        else:
            _avg_block(x, out, rows * c // chunks, rows * (c + 1) // chunks, g, incl, override, divisor)
        cpool_team_leave(team, t0)
    cpool_team_close(team)
