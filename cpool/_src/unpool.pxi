# Max unpooling: PyTorch 2.13's CPU kernels (MaxUnpoolKernel.cpp), float32
# and float64. Each output plane starts at zero and receives its input
# plane's values at their indices, in input order (a repeated index keeps
# the later value, torch's result on one thread); the backward gathers
# grad_output at each index. Indices are untrusted: one outside the plane
# is skipped and counted (never read or written through), and the caller
# raises on a non-zero count, discarding its fresh output. Planes ((N, C, H, W) memory): one plane per work item;
# channels-last ((N, H, W, C) memory): one image per work item, positions
# in order, channels inner, so each (n, c) plane still sees its inputs in
# order.


cdef Py_ssize_t _unpool_items(const floating* x, const int64_t* idx, floating* out, Py_ssize_t i0,
                              Py_ssize_t i1, Py_ssize_t L, Py_ssize_t OL, Py_ssize_t C) noexcept nogil:
    # Items i0..i1: planes (C == 0) or images of C channels. Returns how many
    # indices were outside the plane.
    cdef Py_ssize_t i, j, c, t, bad = 0
    cdef const floating* src
    cdef const int64_t* at
    cdef floating* dst
    for i in range(i0, i1):
        if C == 0:
            src = x + i * L
            at = idx + i * L
            dst = out + i * OL
            memset(dst, 0, OL * sizeof(floating))
            for j in range(L):
                t = at[j]
                if 0 <= t < OL:
                    dst[t] = src[j]
                else:
                    bad += 1
        else:
            src = x + i * L * C
            at = idx + i * L * C
            dst = out + i * OL * C
            memset(dst, 0, OL * C * sizeof(floating))
            for j in range(L):
                for c in range(C):
                    t = at[j * C + c]
                    if 0 <= t < OL:
                        dst[t * C + c] = src[j * C + c]
                    else:
                        bad += 1
    return bad


cdef Py_ssize_t _unpool_backward_items(const floating* go, const int64_t* idx, floating* gi, Py_ssize_t i0,
                                       Py_ssize_t i1, Py_ssize_t L, Py_ssize_t OL, Py_ssize_t C) noexcept nogil:
    cdef Py_ssize_t i, j, t, bad = 0, n = L if C == 0 else L * C
    cdef Py_ssize_t c
    cdef const floating* src
    cdef const int64_t* at
    cdef floating* dst
    for i in range(i0, i1):
        dst = gi + i * n
        at = idx + i * n
        if C == 0:
            src = go + i * OL
            for j in range(L):
                t = at[j]
                if 0 <= t < OL:
                    dst[j] = src[t]
                else:
                    dst[j] = 0
                    bad += 1
        else:
            src = go + i * OL * C
            for j in range(L):
                for c in range(C):
                    t = at[j * C + c]
                    if 0 <= t < OL:
                        dst[j * C + c] = src[t * C + c]
                    else:
                        dst[j * C + c] = 0
                        bad += 1
    return bad


cdef Py_ssize_t _unpool_run(const floating* x, const int64_t* idx, floating* out, Py_ssize_t items,
                            Py_ssize_t L, Py_ssize_t OL, Py_ssize_t C, bint backward, int n_threads,
                            bint adapt) noexcept:
    # `items` planes (C == 0) or images, in chunks claimed dynamically by the
    # team (see "threads on a busy machine" in common.h). Returns the number
    # of indices outside the plane.
    cdef Py_ssize_t c, chunks, bad = 0
    cdef Team team[1]
    cdef double t0
    cdef int n
    if items == 0:
        return 0
    n = cpool_team_threads(n_threads, items, adapt)
    if n == 1:
        with nogil:
            if backward:
                bad = _unpool_backward_items(x, idx, out, 0, items, L, OL, C)
            else:
                bad = _unpool_items(x, idx, out, 0, items, L, OL, C)
        return bad
    chunks = cpool_team_open(team, n, items, adapt)
    for c in prange(chunks, nogil=True, schedule="dynamic", num_threads=n):
        t0 = cpool_team_enter(team, c)
        if backward:
            bad += _unpool_backward_items(x, idx, out, items * c // chunks, items * (c + 1) // chunks, L, OL, C)
        else:
            bad += _unpool_items(x, idx, out, items * c // chunks, items * (c + 1) // chunks, L, OL, C)
        cpool_team_leave(team, t0)
    cpool_team_close(team)
    return bad
