# 3-D average-pooling forward: PyTorch 2.13's CPU avg_pool3d
# (AveragePool3d.cpp's avg_pool3d_out_frame), float32 and float64. torch runs
# one scalar loop for both memory formats, so both layouts here give its
# results: each output sums its window's in-bounds taps in (depth, row,
# column) order from 0 in its dtype, divides by the divisor converted to the
# dtype and stores `0 + mean` (a -0.0 mean becomes +0.0).
#
# Planes ((N, C, D, H, W) memory): float32 rows with 8 or more interior
# output columns (column stride 1 or 2) go to avg_avx2.h's 8-column blocks
# (stride-2 loads deinterleaved into even and odd taps, which the compiler
# left scalar here); otherwise tap-outer, output-inner over chunks of
# output columns (each output still sees its taps in order), vectorised by
# the compiler across columns. Channels-last ((N, D, H, W, C) memory):
# vectorised across channels. Either way the vector sums leave the NaN rule
# to the compiler's operand order, so a sum that came out NaN is summed
# again with torch's rule explicit (`sum += x` keeps the running sum's NaN);
# a sum that is not NaN never met one, and then the order of operands in
# each add changes no bit.


# (the backward's scratch rows)
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy


cdef inline int64_t _avg3d_factor(Py_ssize_t dp, Py_ssize_t hp, Py_ssize_t wp, Py_ssize_t dn, Py_ssize_t hn,
                                  Py_ssize_t wn, bint incl, bint override, int64_t divisor) noexcept nogil:
    # torch's divide_factor: the override, the window with its padding
    # (never the ceil-mode overhang) or its in-bounds taps only.
    if override:
        return divisor
    if incl:
        return dp * hp * wp
    return dn * hn * wn


cdef floating _avg3d_nan_sum(const floating* vol, Py_ssize_t step, Py_ssize_t H, Py_ssize_t W,
                             Py_ssize_t d0, Py_ssize_t d1, Py_ssize_t h0, Py_ssize_t h1,
                             Py_ssize_t w0, Py_ssize_t w1) noexcept nogil:
    # One window's sum in torch's order with its NaN rule explicit: once the
    # running sum is NaN it keeps that NaN. `step`: elements between
    # consecutive columns (1 for planes, C for channels-last).
    cdef floating total = 0
    cdef Py_ssize_t id, ih, iw
    for id in range(d0, d1):
        for ih in range(h0, h1):
            for iw in range(w0, w1):
                if total != total:
                    return total
                total = total + vol[((id * H + ih) * W + iw) * step]
    return total


cdef inline void _avg3d_tap_pass(floating* acc, const floating* row, Py_ssize_t a, Py_ssize_t b, Py_ssize_t off,
                                 Py_ssize_t sw) noexcept nogil:
    # acc[c] += row[off + c * sw] for a <= c < b.
    cdef Py_ssize_t c
    if sw == 1:
        for c in range(a, b):
            acc[c] = acc[c] + row[off + c]
    elif sw == 2:
        for c in range(a, b):
            acc[c] = acc[c] + row[off + 2 * c]
    else:
        for c in range(a, b):
            acc[c] = acc[c] + row[off + c * sw]


cdef inline void _avg3d_pair_pass(floating* acc, const floating* row, Py_ssize_t a, Py_ssize_t b, Py_ssize_t off,
                                  Py_ssize_t sw) noexcept nogil:
    # Two consecutive taps in one sweep, in their order:
    # acc[c] = (acc[c] + row[off + c * sw]) + row[off + c * sw + 1] for a <= c < b.
    cdef Py_ssize_t c, i
    if sw == 2:
        for c in range(a, b):
            i = off + 2 * c
            acc[c] = (acc[c] + row[i]) + row[i + 1]
    elif sw == 1:
        for c in range(a, b):
            i = off + c
            acc[c] = (acc[c] + row[i]) + row[i + 1]
    else:
        for c in range(a, b):
            i = off + c * sw
            acc[c] = (acc[c] + row[i]) + row[i + 1]


cdef inline void _avg3d_full_row(floating* acc, const floating* row, Py_ssize_t a, Py_ssize_t b, Py_ssize_t off0,
                                 Py_ssize_t sw, Py_ssize_t kw) noexcept nogil:
    # Every tap of the outputs a <= c < b, all inside the row: two taps per
    # sweep, which the compiler vectorises (a three-tap sweep, overlapping
    # strided loads, it left scalar).
    cdef Py_ssize_t j = 0
    while j + 1 < kw:
        _avg3d_pair_pass(acc, row, a, b, off0 + j, sw)
        j = j + 2
    if j < kw:
        _avg3d_tap_pass(acc, row, a, b, off0 + j, sw)


cdef inline void _avg3d_add_row(floating* acc, const floating* row, Py_ssize_t n, Py_ssize_t off0, Py_ssize_t sw,
                                Py_ssize_t kw, Py_ssize_t W, Py_ssize_t ilo, Py_ssize_t ihi) noexcept nogil:
    # Add one input row's taps to n outputs' sums (output c's tap j at
    # row[off0 + c * sw + j] when inside the row), each output's in tap
    # order: the outputs all of whose taps are inside ([ilo, ihi), found
    # once per chunk of columns by _avg3d_rows) in the sweeps, the few
    # others (at the row's ends: padding, a ceil-mode overhang) one output
    # at a time.
    cdef Py_ssize_t c, j, i
    ihi = max(ihi, ilo)
    for c in range(min(ilo, n)):
        for j in range(kw):
            i = off0 + c * sw + j
            if 0 <= i < W:
                acc[c] = acc[c] + row[i]
    for c in range(ihi, n):
        for j in range(kw):
            i = off0 + c * sw + j
            if 0 <= i < W:
                acc[c] = acc[c] + row[i]
    _avg3d_full_row(acc, row, ilo, ihi, off0, sw, kw)


cdef void _avg3d_rows(const floating* x, floating* out, Py_ssize_t r0, Py_ssize_t r1, Geometry3 g,
                      bint incl, bint override, int64_t divisor) noexcept nogil:
    # Output rows r = (p * OD + od) * OH + oh of (P, OD, OH, OW) planes, a
    # chunk of columns at a time. The divisors of a row depend on its
    # window's depth and height extents only, so a row reuses the last
    # row's when those match (all rows away from the borders).
    cdef Py_ssize_t D = g.D, H = g.H, W = g.W, OD = g.OD, OH = g.OH, OW = g.OW, sw = g.sw, kw = g.kw
    cdef Py_ssize_t r, t, p, od, oh, c, n, c0, c1, id, ih, d0, d1, dp, h0, h1, hp, nans
    cdef Py_ssize_t key0, key1, key2, key3
    cdef const floating* vol
    cdef floating* o
    cdef floating acc[CHUNK]
    cdef floating dv[CHUNK]
    cdef Py_ssize_t wpad[CHUNK]
    cdef Py_ssize_t w0[CHUNK]
    cdef Py_ssize_t w1[CHUNK]
    cdef Py_ssize_t base, ilo, ihi, tmp
    cdef floating zero = 0
    c0 = 0
    while c0 < OW:
        c1 = min(OW, c0 + CHUNK)
        n = c1 - c0
        for c in range(n):
            wpad[c] = _avg_divisor(c0 + c, g.kw, sw, g.pw, W, &w0[c], &w1[c])
        # the outputs all of whose taps are inside the row: [ilo, ihi)
        base = c0 * sw - g.pw  # the input column of output c0's first tap
        _valid_outputs(base, sw, W, n, &ilo, &tmp)
        _valid_outputs(base + kw - 1, sw, W, n, &tmp, &ihi)
        key0 = key1 = key2 = key3 = -1
        t = r0 // OH
        oh = r0 - t * OH
        p = t // OD
        od = t - p * OD
        for r in range(r0, r1):
            vol = x + p * D * H * W
            dp = _avg_divisor(od, g.kd, g.sd, g.pd, D, &d0, &d1)
            hp = _avg_divisor(oh, g.kh, g.sh, g.ph, H, &h0, &h1)
            if dp != key0 or hp != key1 or d1 - d0 != key2 or h1 - h0 != key3:
                key0, key1, key2, key3 = dp, hp, d1 - d0, h1 - h0
                for c in range(n):
                    dv[c] = <floating>_avg3d_factor(dp, hp, wpad[c], d1 - d0, h1 - h0, w1[c] - w0[c], incl,
                                                    override, divisor)
            for c in range(n):
                acc[c] = 0
            for id in range(d0, d1):
                for ih in range(h0, h1):
                    _avg3d_add_row(acc, vol + (id * H + ih) * W, n, base, sw, kw, W, ilo, ihi)
            nans = 0
            for c in range(n):
                nans = nans + (acc[c] != acc[c])
            if nans:
                for c in range(n):
                    if acc[c] != acc[c]:
                        acc[c] = _avg3d_nan_sum(vol, 1, H, W, d0, d1, h0, h1, w0[c], w1[c])
            o = out + r * OW + c0
            for c in range(n):
                o[c] = zero + acc[c] / dv[c]
            oh = oh + 1
            if oh == OH:
                oh = 0
                od = od + 1
                if od == OD:
                    od = 0
                    p = p + 1
        c0 = c1


cdef void _avg3d_rows_cl(const floating* x, floating* out, Py_ssize_t r0, Py_ssize_t r1, Geometry3 g,
                         Py_ssize_t C, bint incl, bint override, int64_t divisor) noexcept nogil:
    # Output rows r = (n * OD + od) * OH + oh of (N, OD, OH, OW, C) output.
    cdef Py_ssize_t D = g.D, H = g.H, W = g.W, OD = g.OD, OH = g.OH, OW = g.OW
    cdef Py_ssize_t r, t, n, od, oh, ow, c, id, ih, iw, d0, d1, dp, h0, h1, hp, w0, w1, wp, nans
    cdef const floating* tap
    cdef floating* o
    cdef floating dv
    cdef floating zero = 0
    for r in range(r0, r1):
        t = r // OH
        oh = r - t * OH
        n = t // OD
        od = t - n * OD
        dp = _avg_divisor(od, g.kd, g.sd, g.pd, D, &d0, &d1)
        hp = _avg_divisor(oh, g.kh, g.sh, g.ph, H, &h0, &h1)
        for ow in range(OW):
            wp = _avg_divisor(ow, g.kw, g.sw, g.pw, W, &w0, &w1)
            o = out + (r * OW + ow) * C
            for c in range(C):
                o[c] = 0
            for id in range(d0, d1):
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        tap = x + (((n * D + id) * H + ih) * W + iw) * C
                        for c in range(C):
                            o[c] = o[c] + tap[c]
            nans = 0
            for c in range(C):
                nans = nans + (o[c] != o[c])
            if nans:
                for c in range(C):
                    if o[c] != o[c]:
                        o[c] = _avg3d_nan_sum(x + n * D * H * W * C + c, C, H, W, d0, d1, h0, h1, w0, w1)
            dv = <floating>_avg3d_factor(dp, hp, wp, d1 - d0, h1 - h0, w1 - w0, incl, override, divisor)
            for c in range(C):
                o[c] = zero + o[c] / dv


cdef void _avg3d_forward_run(const floating* x, floating* out, Py_ssize_t P, Geometry3 g, Py_ssize_t C,
                             bint incl, bint override, int64_t divisor, int n_threads, bint adapt) noexcept:
    # P planes (C == 0) or P images of C channels: P * OD * OH output rows in
    # chunks of consecutive rows, claimed dynamically by the team (see
    # "threads on a busy machine" in common.h).
    cdef Py_ssize_t rows = P * g.OD * g.OH, c, chunks
    cdef Team team[1]
    cdef double t0
    cdef int n
    if rows == 0 or g.OW == 0:
        return
    n = cpool_team_threads(n_threads, rows, adapt)
    if n == 1:
        with nogil:
            _avg3d_block(x, out, 0, rows, g, C, incl, override, divisor)
        return
    chunks = cpool_team_open(team, n, rows, adapt)
    for c in prange(chunks, nogil=True, schedule="dynamic", num_threads=n):
        t0 = cpool_team_enter(team, c)
        _avg3d_block(x, out, rows * c // chunks, rows * (c + 1) // chunks, g, C, incl, override, divisor)
        cpool_team_leave(team, t0)
    cpool_team_close(team)


cdef inline void _avg3d_block(const floating* x, floating* out, Py_ssize_t r0, Py_ssize_t r1, Geometry3 g,
                              Py_ssize_t C, bint incl, bint override, int64_t divisor) noexcept nogil:
    # One thread's rows: float32 planes by the 8-column blocks of avg_avx2.h
    # where it is built and takes the geometry, the rest by the loops above.
    if C > 0:
        _avg3d_rows_cl(x, out, r0, r1, g, C, incl, override, divisor)
        return
    if floating is float:
        if CPOOL_HAVE_AVG_AVX2 and cpool_avg3d_rows_avx2(x, out, r0, r1, g, incl, override, divisor):
            return
    _avg3d_rows(x, out, r0, r1, g, incl, override, divisor)
