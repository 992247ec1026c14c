# The backward pass: zero-fill, then scatter-add in output row-major order
# (PyTorch's order and rounding), per plane; float32 planes of k2 s2-shaped
# indices first try the single-pass cell writer of backward_cells.h.
# Included by kernels.pyx (fused types and extern declarations come from
# there).


cdef inline Py_ssize_t _scatter_plane(const floating* go, const index_t* idx, floating* gi,
                                      Py_ssize_t n_out, Py_ssize_t plane) noexcept nogil:
    # Zero, then add in output row-major order: the same order and rounding
    # as PyTorch, and -0.0 gradients become +0.0 as they do there.
    cdef Py_ssize_t o, bad = 0
    cdef int64_t k
    memset(gi, 0, plane * sizeof(floating))
    for o in range(n_out):
        k = idx[o]
        # One unsigned compare bounds-checks the index; -1 marks a window
        # with no input element and is skipped.
        if <size_t>k < <size_t>plane:
            gi[k] += go[o]
        elif k != -1:
            bad += 1
    return bad


cdef inline bint _cells_plane(const float* go, const index_t* idx, float* gi, Py_ssize_t H, Py_ssize_t W,
                              Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    # The cell writer of the ISA in use, given idx as the pointer of its width.
    if index_t is int32_t:
        return cpool_cells_plane(go, idx, NULL, gi, H, W, OH, OW, _avx512)
    else:
        return cpool_cells_plane(go, NULL, idx, gi, H, W, OH, OW, _avx512)


cdef inline Py_ssize_t _backward_plane(const floating* go, const index_t* idx, floating* gi,
                                      Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                                      bint cells) noexcept nogil:
    # `cells`: the plane may be k2 s2-shaped (H >= 2*OH, W >= 2*OW); try the
    # single-pass cell writer, which gives up (and we scatter) as soon as an
    # index is outside its own output's cell, e.g. from overlapping windows.
    if floating is float:
        if cells and _cells_plane(go, idx, gi, H, W, OH, OW):
            return 0
    return _scatter_plane(go, idx, gi, OH * OW, H * W)


cdef inline bint _use_cells(Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    return CPOOL_HAVE_CELLS and OW >= CPOOL_CELLS_MIN_OW and H >= 2 * OH and W >= 2 * OW


cdef inline Py_ssize_t _backward_planes(const floating* gop, const index_t* ip, floating* gip, Py_ssize_t p0,
                                        Py_ssize_t p1, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                                        bint cells) noexcept nogil:
    cdef Py_ssize_t p, n_out = OH * OW, plane = H * W, bad = 0
    for p in range(p0, p1):
        bad += _backward_plane(gop + p * n_out, ip + p * n_out, gip + p * plane, H, W, OH, OW, cells)
    return bad


cdef inline Py_ssize_t _backward_block(const floating* gop, const index_t* ip, floating* gip, Py_ssize_t w0,
                                       Py_ssize_t w1, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                                       Py_ssize_t C, Py_ssize_t cb, bint cells) noexcept nogil:
    if C > 0:
        return _backward_items_nhwc(gop, ip, gip, w0, w1, H, W, OH, OW, C, cb, cells)
    return _backward_planes(gop, ip, gip, w0, w1, H, W, OH, OW, cells)


cdef Py_ssize_t _backward_run(const floating* gop, const index_t* ip, floating* gip, Py_ssize_t P,
                              Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                              int n_threads, bint adapt, Py_ssize_t C) noexcept:
    # Parallel over work items: chunks of consecutive items, claimed
    # dynamically (see "threads on a busy machine" in common.h); each item
    # owns whole planes (C == 0: P planes of (N, C, H, W) memory) or one
    # image's block of channels (C > 0: P images of channels-last memory,
    # backward_nhwc.pxi), so no atomics. Returns the number of indices
    # outside [-1, H*W) (skipped).
    cdef Py_ssize_t c, chunks, bad = 0, items, cb = 0
    cdef Team team[1]
    cdef double t0
    cdef int n
    cdef bint cells
    if C > 0:
        cells = _use_cells_nhwc(H, W, OH, OW, index_t is int32_t)
    else:
        cells = _use_cells(H, W, OH, OW)
    if P == 0:
        return 0
    n = cpool_team_threads(n_threads, P if C == 0 else P * C, adapt)
    if C > 0:
        cb = _nhwc_block(P, C, n)
        items = P * ((C + cb - 1) // cb)
        n = <int>min(<Py_ssize_t>n, items)
    else:
        items = P
    if n == 1:  # no OpenMP machinery at all on the latency path
        with nogil:
            bad = _backward_block(gop, ip, gip, 0, items, H, W, OH, OW, C, cb, cells)
        return bad
    chunks = cpool_team_open(team, n, items, adapt)
    for c in prange(chunks, nogil=True, schedule="dynamic", num_threads=n):
        t0 = cpool_team_enter(team, c)
        bad += _backward_block(gop, ip, gip, items * c // chunks, items * (c + 1) // chunks, H, W, OH, OW, C,
                               cb, cells)
        cpool_team_leave(team, t0)
    cpool_team_close(team)
    return bad
