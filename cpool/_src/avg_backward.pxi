# Average-pooling backward: PyTorch 2.13's CPU kernels, float32 and float64.
# Each output's share `grad_output / divisor` is added to every in-bounds
# element of its window, outputs in row-major order, taps in row-major
# order, rounding after every add (`share + acc`: a cell receiving two NaN
# shares keeps the newer one, as torch). Planes: one plane per work item
# (the adds of a window row are contiguous); channels-last: one image per
# work item, vectorised across channels. grad_input is zeroed here.


cdef void _avg_backward_planes(const floating* go, floating* gi, Py_ssize_t p0, Py_ssize_t p1, Geometry g,
                               bint incl, bint override, int64_t divisor) noexcept nogil:
    cdef Py_ssize_t W = g.W, H = g.H, OW = g.OW, OH = g.OH
    cdef Py_ssize_t p, oh, ow, ih, iw, h0, h1, hp, w0, w1, wp
    cdef floating share
    cdef floating* plane
    cdef floating* dst
    if floating is float:
        # planes with short rows in slabs through a channels-last buffer
        # (avg_slabs_avx2.h), the rest by the planes kernel
        if (CPOOL_HAVE_AVG_SLABS_AVX2 and cpool_avg_backward_slabs_apply(&g)
                and cpool_avg_slabs_run(go, gi, p0, p1, g, incl, override, divisor, True)):
            return
        if CPOOL_HAVE_AVG_AVX2 and cpool_avg_backward_planes_avx2(go, gi, p0, p1, g, incl, override, divisor):
            return
    for p in range(p0, p1):
        plane = gi + p * H * W
        memset(plane, 0, H * W * sizeof(floating))
        for oh in range(OH):
            hp = _avg_divisor(oh, g.kh, g.sh, g.ph, H, &h0, &h1)
            for ow in range(OW):
                wp = _avg_divisor(ow, g.kw, g.sw, g.pw, W, &w0, &w1)
                share = go[(p * OH + oh) * OW + ow] / <floating>_avg_factor(hp, wp, h1 - h0, w1 - w0, incl,
                                                                            override, divisor)
                # A NaN share replaces what the cell holds (torch's result for two NaN
                # shares: the newer), whatever operand order the compiler picks.
                if share != share:
                    for ih in range(h0, h1):
                        dst = plane + ih * W
                        for iw in range(w0, w1):
                            dst[iw] = share
                else:
                    for ih in range(h0, h1):
                        dst = plane + ih * W
                        for iw in range(w0, w1):
                            dst[iw] = share + dst[iw]


cdef void _avg_backward_images(const floating* go, floating* gi, Py_ssize_t n0, Py_ssize_t n1, Geometry g,
                               Py_ssize_t C, bint incl, bint override, int64_t divisor) noexcept nogil:
    cdef Py_ssize_t W = g.W, H = g.H, OW = g.OW, OH = g.OH
    cdef Py_ssize_t n, oh, ow, ih, iw, c, h0, h1, hp, w0, w1, wp
    cdef const floating* src
    cdef floating* dst
    cdef floating d, share
    if floating is float and CPOOL_HAVE_AVG_AVX2:
        cpool_avg_backward_images_avx2(go, gi, n0, n1, g, C, incl, override, divisor)
        return
    for n in range(n0, n1):
        memset(gi + n * H * W * C, 0, H * W * C * sizeof(floating))
        for oh in range(OH):
            hp = _avg_divisor(oh, g.kh, g.sh, g.ph, H, &h0, &h1)
            for ow in range(OW):
                wp = _avg_divisor(ow, g.kw, g.sw, g.pw, W, &w0, &w1)
                d = <floating>_avg_factor(hp, wp, h1 - h0, w1 - w0, incl, override, divisor)
                src = go + ((n * OH + oh) * OW + ow) * C
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        dst = gi + ((n * H + ih) * W + iw) * C
                        for c in range(C):
                            share = src[c] / d
                            dst[c] = share if share != share else share + dst[c]


cdef void _avg_backward_run(const floating* go, floating* gi, Py_ssize_t P, Geometry g, Py_ssize_t C,
                            bint incl, bint override, int64_t divisor, int n_threads, bint adapt) noexcept:
    # P planes (C == 0) or P images of C channels, each written by one
    # thread, in chunks of consecutive ones claimed dynamically by the team
    # (see "threads on a busy machine" in common.h).
    cdef Py_ssize_t c, chunks
    cdef Team team[1]
    cdef double t0
    cdef int n
    if P == 0:
        return
    n = cpool_team_threads(n_threads, P, adapt)
    if n == 1:
        with nogil:
            if C > 0:
                _avg_backward_images(go, gi, 0, P, g, C, incl, override, divisor)
            else:
                _avg_backward_planes(go, gi, 0, P, g, incl, override, divisor)
        return
    chunks = cpool_team_open(team, n, P, adapt)
    for c in prange(chunks, nogil=True, schedule="dynamic", num_threads=n):
        t0 = cpool_team_enter(team, c)
        if C > 0:
            _avg_backward_images(go, gi, P * c // chunks, P * (c + 1) // chunks, g, C, incl, override, divisor)
        else:
            _avg_backward_planes(go, gi, P * c // chunks, P * (c + 1) // chunks, g, incl, override, divisor)
        cpool_team_leave(team, t0)
    cpool_team_close(team)
