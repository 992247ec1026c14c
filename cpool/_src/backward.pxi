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
        return cpool_cells_plane(go, idx, NULL, gi, H, W, OH, OW, _cells_avx512)
    else:
        return cpool_cells_plane(go, NULL, idx, gi, H, W, OH, OW, _cells_avx512)


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


cdef Py_ssize_t _backward_run(const floating* gop, const index_t* ip, floating* gip, Py_ssize_t P,
                              Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                              int n_threads) noexcept:
    # Parallel over planes: each thread owns whole planes, so no atomics.
    # Returns the number of indices outside [-1, H*W) (skipped).
    cdef Py_ssize_t p, n_out = OH * OW, plane = H * W, bad = 0
    cdef bint cells = _use_cells(H, W, OH, OW)
    if P == 0:
        return 0
    if n_threads <= 1:  # no OpenMP machinery at all on the latency path
        with nogil:
            for p in range(P):
                bad += _backward_plane(gop + p * n_out, ip + p * n_out, gip + p * plane, H, W, OH, OW, cells)
        return bad
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        bad += _backward_plane(gop + p * n_out, ip + p * n_out, gip + p * plane, H, W, OH, OW, cells)
    return bad
