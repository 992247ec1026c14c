# The forward pass on channels-last memory: (N, H, W, C) input, (N, OH,
# OW, C) output and indices. Included by kernels.pyx after forward.pxi
# (whose _takes / _fold rules it shares).
#
# The C values of one input pixel are contiguous, so every tap of a window
# is one contiguous read of C values and the fold runs across channels: one
# vector lane per channel, each lane folding its own window's taps in
# row-major order (PyTorch's cpu_max_pool_channels_last vectorises the same
# way). The window's bounds, its in-bounds taps and their plane offsets are
# worked out once per output pixel and shared by all C lanes, so the inner
# loops are straight, branch-free channel sweeps the auto-vectoriser turns
# into vector code for whatever instruction set the variant is built for.
# Channels go through a stack buffer of CHANNEL_CHUNK lanes (running values
# and int32 plane offsets), so the sweeps need no alias checks against the
# output.


cdef enum:
    CHANNEL_CHUNK = 256  # channels per stack-buffer chunk (1 KiB of float32)


cdef inline void _nhwc_window(const floating* xn, floating* o, index_t* io, Py_ssize_t ih0, Py_ssize_t iw0,
                              Py_ssize_t ilo, Py_ssize_t ihi, Py_ssize_t jlo, Py_ssize_t jhi,
                              Geometry g, Py_ssize_t C, bint with_idx) noexcept nogil:
    # One output pixel, all C channels: the window's first in-bounds tap
    # seeds every lane (PyTorch seeds the index with it, whatever its
    # value), the later taps compete by the rule, in row-major order.
    cdef floating ob[CHANNEL_CHUNK]
    cdef int32_t ib[CHANNEL_CHUNK]
    cdef Py_ssize_t c0 = 0, n, c, i, j, pos
    cdef const floating* row
    cdef int32_t at
    cdef floating v
    cdef bint t, seed
    while c0 < C:
        n = min(<Py_ssize_t>CHANNEL_CHUNK, C - c0)
        seed = True
        for i in range(ilo, ihi):
            for j in range(jlo, jhi):
                pos = (ih0 + i * g.dh) * g.W + iw0 + j * g.dw
                row = xn + pos * C + c0
                at = <int32_t>pos
                if seed:
                    for c in range(n):
                        ob[c] = row[c]
                    if with_idx:
                        for c in range(n):
                            ib[c] = at
                    seed = False
                elif with_idx:
                    for c in range(n):
                        v = row[c]
                        t = _takes(v, ob[c])
                        ob[c] = v if t else ob[c]
                        ib[c] = at if t else ib[c]
                else:
                    for c in range(n):
                        ob[c] = _fold(ob[c], row[c])
        for c in range(n):
            o[c0 + c] = ob[c]
        if with_idx:
            for c in range(n):
                io[c0 + c] = ib[c]
        c0 += n


cdef inline void _rows_nhwc(const floating* x, floating* out, index_t* idx, Py_ssize_t r0, Py_ssize_t r1,
                            Geometry g, Py_ssize_t C, bint with_idx) noexcept nogil:
    # Output rows r0 .. r1 - 1 of the N * OH rows (row r: image r // OH,
    # output row r % OH), each OW pixels of C channels. Plane offsets are
    # int32: _forward_run sends larger planes with indices elsewhere.
    cdef Py_ssize_t r, n, oh, ow, c, ih0, iw0, ilo, ihi, jlo, jhi, at
    cdef const floating* xn
    cdef index_t* io = NULL
    for r in range(r0, r1):
        n = r // g.OH
        oh = r - n * g.OH
        xn = x + n * g.H * g.W * C
        ih0 = oh * g.sh - g.ph
        cpool_tap_range(ih0, g.kh, g.dh, g.H, &ilo, &ihi)
        for ow in range(g.OW):
            iw0 = ow * g.sw - g.pw
            cpool_tap_range(iw0, g.kw, g.dw, g.W, &jlo, &jhi)
            at = (r * g.OW + ow) * C
            if with_idx:
                io = idx + at
            if ilo < ihi and jlo < jhi:
                _nhwc_window(xn, out + at, io, ih0, iw0, ilo, ihi, jlo, jhi, g, C, with_idx)
            else:  # no in-bounds tap (dilation only): -inf, index -1
                for c in range(C):
                    out[at + c] = -INFINITY
                if with_idx:
                    for c in range(C):
                        io[c] = -1


cdef inline void _forward_block_nhwc(const floating* x, floating* out, index_t* idx, Py_ssize_t r0, Py_ssize_t r1,
                                     Geometry g, Py_ssize_t C) noexcept nogil:
    # float32 goes to the AVX2 kernel of forward_nhwc_avx2.h where it is
    # built (its index pointer by width), the rest to the portable loops.
    if floating is float:
        if CPOOL_HAVE_FORWARD_NHWC_AVX2 and cpool_plane_fits_int32(&g):
            if index_t is int32_t:
                cpool_forward_nhwc_avx2(x, out, idx, NULL, r0, r1, g, C)
            else:
                cpool_forward_nhwc_avx2(x, out, NULL, idx, r0, r1, g, C)
            return
    if idx == NULL:
        _rows_nhwc(x, out, idx, r0, r1, g, C, False)
    else:
        _rows_nhwc(x, out, idx, r0, r1, g, C, True)
