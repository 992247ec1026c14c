# Adaptive average pooling backward: PyTorch 2.13's CPU kernels, float32 and
# float64 (outputs other than 1x1; the 1x1 gradient is the mean's, computed
# in cpool._compiled). Each output's share is added to every element of its
# window, outputs in row-major order, rounding after each add (`share +
# acc`: a NaN share replaces what the element holds). Planes: the share is
# `g / kh / kw`, one plane per work item; channels-last: `g / (kh * kw)` in
# the first `split` channels (torch's vector lanes), `g / kh / kw` in the
# others, one image per work item. grad_input is zeroed here.


cdef void _ad_backward_planes(const floating* go, floating* gi, Py_ssize_t p0, Py_ssize_t p1, Py_ssize_t H,
                              Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    cdef Py_ssize_t p, oh, ow, ih, iw, h0, h1, w0, w1
    cdef floating share
    cdef floating* plane
    cdef floating* dst
    for p in range(p0, p1):
        plane = gi + p * H * W
        memset(plane, 0, H * W * sizeof(floating))
        for oh in range(OH):
            h0, h1 = cpool_adaptive_start(oh, OH, H), cpool_adaptive_end(oh, OH, H)
            for ow in range(OW):
                w0, w1 = cpool_adaptive_start(ow, OW, W), cpool_adaptive_end(ow, OW, W)
                share = go[(p * OH + oh) * OW + ow] / <floating>(h1 - h0) / <floating>(w1 - w0)
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


cdef void _ad_backward_images(const floating* go, floating* gi, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t H,
                              Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t C,
                              Py_ssize_t split) noexcept nogil:
    cdef Py_ssize_t n, oh, ow, ih, iw, c, h0, h1, w0, w1
    cdef const floating* src
    cdef floating* dst
    cdef floating d, dh, dw, share
    for n in range(n0, n1):
        memset(gi + n * H * W * C, 0, H * W * C * sizeof(floating))
        for oh in range(OH):
            h0, h1 = cpool_adaptive_start(oh, OH, H), cpool_adaptive_end(oh, OH, H)
            for ow in range(OW):
                w0, w1 = cpool_adaptive_start(ow, OW, W), cpool_adaptive_end(ow, OW, W)
                d = <floating>((h1 - h0) * (w1 - w0))
                dh, dw = <floating>(h1 - h0), <floating>(w1 - w0)
                src = go + ((n * OH + oh) * OW + ow) * C
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        dst = gi + ((n * H + ih) * W + iw) * C
                        for c in range(split):
                            share = src[c] / d
                            dst[c] = share if share != share else share + dst[c]
                        for c in range(split, C):
                            share = src[c] / dh / dw
                            dst[c] = share if share != share else share + dst[c]


cdef void _ad_backward_run(const floating* go, floating* gi, Py_ssize_t P, Py_ssize_t H, Py_ssize_t W,
                           Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t C, Py_ssize_t split,
                           int n_threads, bint adapt) noexcept:
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
                _ad_backward_images(go, gi, 0, P, H, W, OH, OW, C, split)
            else:
                _ad_backward_planes(go, gi, 0, P, H, W, OH, OW)
        return
    chunks = cpool_team_open(team, n, P, adapt)
    for c in prange(chunks, nogil=True, schedule="dynamic", num_threads=n):
        t0 = cpool_team_enter(team, c)
        if C > 0:
            _ad_backward_images(go, gi, P * c // chunks, P * (c + 1) // chunks, H, W, OH, OW, C, split)
        else:
            _ad_backward_planes(go, gi, P * c // chunks, P * (c + 1) // chunks, H, W, OH, OW)
        cpool_team_leave(team, t0)
    cpool_team_close(team)
