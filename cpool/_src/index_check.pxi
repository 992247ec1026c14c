# Index range checks: the first index outside [low, high) in an array of
# untrusted indices. The pooling kernels skip a bad index as they reach it,
# which is too late where the output is the caller's own array (out=): that
# must stay untouched on an error, so every index is checked first, and
# this pass must cost little next to the kernel that follows it.
#
# One pass, in blocks: with d = (uint64)(k - low), wrapped, and a range of
# span = high - low <= 2**63 elements, k is in [low, high) exactly when
# neither d nor (span - 1 - d) has its top bit set (d >= span makes the
# second wrap, d >= 2**63 is the first). So a block is an OR-reduction of
# two subtractions per element, no compare, which compilers vectorise with
# any instruction set (SSE2 has no 64-bit compare). Only a block holding a
# bad index is read again, for its position. Large arrays are split among the team
# in chunks claimed dynamically (see "threads on a busy machine" in common.h);
# each chunk stops at its own first bad index and the lowest position wins.

from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport uint64_t

cdef enum:
    _RANGE_BLOCK = 2048  # elements a block reduces before it branches: 16 KiB of int64, in L1


cdef Py_ssize_t _first_outside_span(const index_t* p, Py_ssize_t i0, Py_ssize_t i1, uint64_t low,
                                    uint64_t span) noexcept nogil:
    # The position of the first of p[i0:i1] outside [low, low + span), or -1
    # (1 <= span <= 2**63).
    cdef Py_ssize_t b = i0, j, end
    cdef uint64_t d, acc, top = span - 1
    while b < i1:
        end = min(b + <Py_ssize_t>_RANGE_BLOCK, i1)
        acc = 0
        for j in range(b, end):
            d = <uint64_t>p[j] - low
            acc |= d | (top - d)
        if acc >> 63:
            for j in range(b, end):
                if (<uint64_t>p[j] - low) >= span:
                    return j
        b = end
    return -1


cdef Py_ssize_t _first_outside_run(const index_t* p, Py_ssize_t size, int64_t low, int64_t high,
                                   int n_threads, bint adapt) noexcept:
    cdef uint64_t lo = <uint64_t>low, span = <uint64_t>high - <uint64_t>low
    cdef Py_ssize_t c, chunks, at, first = -1
    # Written inside the loop: an array, shared (a scalar would be lastprivate).
    cdef Py_ssize_t found[CPOOL_CHUNKS_PER_THREAD * CPOOL_MAX_TEAM]
    cdef Team team[1]
    cdef double t0
    cdef int n
    if high <= low:  # an empty range: every index is outside
        return 0 if size > 0 else -1
    if span > (<uint64_t>1 << 63):
        return -2
    n = cpool_team_threads(n_threads, size // _RANGE_BLOCK, adapt)
    if n == 1:  # no OpenMP machinery at all on the latency path
        with nogil:
            first = _first_outside_span(p, 0, size, lo, span)
        return first
    chunks = cpool_team_open(team, n, size // _RANGE_BLOCK, adapt)
    for c in prange(chunks, nogil=True, schedule="dynamic", num_threads=n):
        t0 = cpool_team_enter(team, c)
        found[c] = _first_outside_span(p, size * c // chunks, size * (c + 1) // chunks, lo, span)
        cpool_team_leave(team, t0)
    cpool_team_close(team)
    for c in range(chunks):  # chunks are in memory order: the first that found one holds the first
        at = found[c]
        if at >= 0:
            return at
    return -1


def first_outside(object indices, int64_t low, int64_t high, int n_threads, bint adapt=False):
    """The position (memory order) of the first element of ``indices`` outside
    ``[low, high)``, or -1 when there is none.

    ``indices``: a C-contiguous, aligned array of native int64 or int32 (any
    number of dimensions). Returns -2, checking nothing, for any other array
    or a range of more than 2**63 values: the caller then checks it another way. ``n_threads`` and ``adapt`` as
    for :func:`max_pool2d_forward_into`.
    """
    cdef Py_buffer view
    cdef Py_ssize_t result = -2
    cdef bytes fmt
    try:
        PyObject_GetBuffer(indices, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
    except (BufferError, ValueError):  # not C-contiguous (NumPy raises ValueError)
        return -2
    try:
        fmt = view.format if view.format != NULL else b"B"
        if <size_t>view.buf % <size_t>view.itemsize == 0:  # aligned
            if view.itemsize == 8 and fmt in (b"l", b"q", b"=l", b"=q", b"@l", b"@q"):
                result = _first_outside_run(<const int64_t*>view.buf, view.len // 8, low, high, n_threads, adapt)
            elif view.itemsize == 4 and fmt in (b"i", b"=i", b"@i", b"l", b"=l", b"@l"):
                result = _first_outside_run(<const int32_t*>view.buf, view.len // 4, low, high, n_threads, adapt)
    finally:
        PyBuffer_Release(&view)
    return result
