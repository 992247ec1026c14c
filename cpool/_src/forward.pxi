# The forward pass: PyTorch's fold over each window, in portable loops
# written for the auto-vectoriser, and the dispatch to the AVX2 intrinsics
# of forward_avx2.h. Included by kernels.pyx (fused types and extern
# declarations come from there).
#
# The loops have no branches in inner loops, selects instead, and
# fixed-length chunks whose length is the vector width of the variant being
# compiled (CPOOL_VEC_BYTES). They are the baseline kernels and the
# reference the tests hold the intrinsics to.


cdef enum:
    CHUNK = 256  # output columns per stack-buffer chunk in the general path


cdef inline bint _takes(floating v, floating best) noexcept nogil:
    # PyTorch's update rule. `v != v` is the NaN test; written with `|` rather
    # than `or` so the compiler can turn the select into a vector blend.
    return (v > best) | (v != v)


cdef inline floating _fold(floating best, floating v) noexcept nogil:
    # The same rule when only the value is wanted. `v > best ? v : best` is
    # exactly x86's MAXPS(v, best) (which returns `best` when either is NaN),
    # so this is a max and one NaN blend instead of two compares and a blend.
    cdef floating m = v if v > best else best
    return v if v != v else m


# ---------------------------------------------------------------- forward

cdef inline void _k2_span(const floating* a, Py_ssize_t W, floating* o, index_t* io,
                          index_t first, Py_ssize_t n, bint with_idx) noexcept nogil:
    # n consecutive 2x2 stride-2 windows whose top-left taps are a[0], a[2],
    # ...: fold a[2c], a[2c+1], a[W+2c], a[W+2c+1] in that order. `first` is
    # the plane index of a[0]. with_idx is a constant at each call site.
    cdef Py_ssize_t c
    cdef floating best, v
    cdef index_t off
    cdef bint t
    for c in range(n):
        if with_idx:
            best = a[2 * c]
            off = 0
            v = a[2 * c + 1]
            t = _takes(v, best)
            best = v if t else best
            off = 1 if t else off
            v = a[W + 2 * c]
            t = _takes(v, best)
            best = v if t else best
            off = <index_t>W if t else off
            v = a[W + 2 * c + 1]
            t = _takes(v, best)
            best = v if t else best
            off = <index_t>(W + 1) if t else off
            o[c] = best
            io[c] = first + <index_t>(2 * c) + off
        else:
            best = _fold(a[2 * c], a[2 * c + 1])
            best = _fold(best, a[W + 2 * c])
            o[c] = _fold(best, a[W + 2 * c + 1])


cdef inline void _rows_2x2(const floating* x, floating* out, index_t* idx,
                           Py_ssize_t r0, Py_ssize_t r1, Geometry g,
                           bint with_idx) noexcept nogil:
    # kernel 2, stride 2, no padding or dilation, every window complete.
    # Rows are short (OW = 7 or 14 is common), so rather than a vector loop
    # plus a scalar remainder, a row's loop runs to a whole number of
    # vectors (L outputs): it writes up to L-1 junk outputs into the next
    # row, which that row then overwrites, and reads input belonging to the
    # next row pair. The block's last row has no next row of its own, so it
    # alone stops exactly at OW. Needs OW >= L - 1 (the next row covers the
    # junk; then W >= 2*OW also keeps the reads inside the next row pair).
    # (A loop with a constant trip count of L would be fully unrolled before
    # the vectoriser sees it, and the index selects become branches.)
    # Geometry arrives by value: stores through `idx` (int64_t*) could alias
    # a struct read through a pointer and would block vectorisation.
    cdef Py_ssize_t W = g.W, OW = g.OW, OH = g.OH, H = g.H
    cdef Py_ssize_t L = CPOOL_VEC_BYTES // sizeof(floating)  # one vector
    cdef Py_ssize_t OWL = (OW + L - 1) // L * L
    cdef Py_ssize_t r, p, oh
    cdef index_t* io = NULL
    cdef bint overrun = OW >= L - 1
    p = r0 // OH
    oh = r0 - p * OH
    for r in range(r0, r1):
        if with_idx:
            io = idx + r * OW
        _k2_span(x + p * H * W + 2 * oh * W, W, out + r * OW, io, <index_t>(2 * oh * W),
                 OWL if (overrun and r + 1 < r1) else OW, with_idx)
        oh += 1
        if oh == OH:
            oh = 0
            p += 1


cdef inline void _tap(const floating* row, Py_ssize_t sw, floating* ob, int32_t* ib,
                      int32_t first, Py_ssize_t lo, Py_ssize_t hi, bint with_idx) noexcept nogil:
    # Fold tap row[c*sw] into output c for c in [lo, hi). ob/ib are stack
    # buffers, so they cannot alias `row` and the loop needs no alias checks;
    # indices are accumulated as int32 plane offsets (first = offset of
    # row[0]) so they share the float lanes. ib < 0: no tap seen yet, so this
    # one seeds the window whatever its value.
    cdef Py_ssize_t c
    cdef floating v
    cdef bint t
    # plane offset of row[c*sw]; unsigned, because the step past the last
    # tap may leave int32's range (a signed overflow would be undefined)
    cdef uint32_t at = <uint32_t>first + <uint32_t>(lo * sw)
    for c in range(lo, hi):
        v = row[c * sw]
        if with_idx:
            t = _takes(v, ob[c]) | (ib[c] < 0)
            ob[c] = v if t else ob[c]
            ib[c] = <int32_t>at if t else ib[c]
            at += <uint32_t>sw
        else:
            ob[c] = _fold(ob[c], v)


cdef inline void _valid_outputs(Py_ssize_t off, Py_ssize_t stride, Py_ssize_t size,
                                Py_ssize_t n_out, Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    # Output positions o with 0 <= o*stride + off < size, as [lo, hi): the tap
    # falls into padding outside that range and is skipped (never selected).
    lo[0] = 0 if off >= 0 else (stride - 1 - off) // stride
    if off >= size:
        hi[0] = 0
    else:
        hi[0] = min(n_out, (size - 1 - off) // stride + 1)


cdef inline void _rows_general(const floating* x, floating* out, index_t* idx,
                               Py_ssize_t r0, Py_ssize_t r1, Geometry g,
                               bint with_idx) noexcept nogil:
    # Tap-outer, output-inner, over chunks of at most CHUNK output columns:
    # for each kernel tap, sweep the chunk. Each output's taps are still
    # visited in row-major window order, so the fold is unchanged, but the
    # inner loop is a long strided sweep without data-dependent branches.
    # Strides 1 and 2 get their own copies of the sweep (constant stride:
    # plain or de-interleaving vector loads instead of gathers).
    # Index offsets are int32: _forward_run sends larger planes with indices elsewhere.
    cdef Py_ssize_t W = g.W, H = g.H, OW = g.OW, OH = g.OH, sw = g.sw
    cdef Py_ssize_t r, p, oh, c, c0, c1, i, j, ih, off, lo, hi
    cdef const floating* row
    cdef floating ob[CHUNK]
    cdef int32_t ib[CHUNK]
    for r in range(r0, r1):
        p = r // OH
        oh = r - p * OH
        c0 = 0
        while c0 < OW:
            c1 = min(OW, c0 + CHUNK)
            for c in range(c1 - c0):
                ob[c] = -INFINITY
                ib[c] = -1
            for i in range(g.kh):
                ih = oh * g.sh - g.ph + i * g.dh
                if ih < 0 or ih >= H:
                    continue
                for j in range(g.kw):
                    off = j * g.dw - g.pw + c0 * sw
                    _valid_outputs(off, sw, W, c1 - c0, &lo, &hi)
                    row = x + p * H * W + ih * W + off
                    if sw == 1:
                        _tap(row, 1, ob, ib, <int32_t>(ih * W + off), lo, hi, with_idx)
                    elif sw == 2:
                        _tap(row, 2, ob, ib, <int32_t>(ih * W + off), lo, hi, with_idx)
                    else:
                        _tap(row, sw, ob, ib, <int32_t>(ih * W + off), lo, hi, with_idx)
            for c in range(c1 - c0):
                out[r * OW + c0 + c] = ob[c]
            if with_idx:
                for c in range(c1 - c0):
                    idx[r * OW + c0 + c] = ib[c]
            c0 = c1


cdef inline void _rows_windows(const floating* x, floating* out, index_t* idx,
                               Py_ssize_t r0, Py_ssize_t r1, Geometry g,
                               bint with_idx) noexcept nogil:
    # One window at a time, over its in-bounds taps only: for kernels with
    # more taps than the input has rows or columns (a ceil_mode window
    # clipped to the input), where the sweeps above would visit every tap.
    cdef Py_ssize_t W = g.W, H = g.H, OW = g.OW, OH = g.OH
    cdef Py_ssize_t r, p, oh, ow, i, j, top, left, ilo, ihi, jlo, jhi, at, chosen
    cdef const floating* plane
    cdef floating best, v
    for r in range(r0, r1):
        p = r // OH
        oh = r - p * OH
        plane = x + p * H * W
        top = oh * g.sh - g.ph
        cpool_tap_range(top, g.kh, g.dh, H, &ilo, &ihi)
        for ow in range(OW):
            left = ow * g.sw - g.pw
            cpool_tap_range(left, g.kw, g.dw, W, &jlo, &jhi)
            best = -INFINITY
            chosen = -1
            for i in range(ilo, ihi):
                for j in range(jlo, jhi):
                    at = (top + i * g.dh) * W + left + j * g.dw
                    v = plane[at]
                    # the first in-bounds tap seeds the window whatever its value
                    if chosen < 0 or _takes(v, best):
                        best = v
                        chosen = at
            out[r * OW + ow] = best
            if with_idx:
                idx[r * OW + ow] = <index_t>chosen


cdef inline bint _is_2x2(Geometry g) noexcept nogil:
    return (g.kh == 2 and g.kw == 2 and g.sh == 2 and g.sw == 2
            and g.ph == 0 and g.pw == 0 and g.dh == 1 and g.dw == 1
            # ceil_mode can add a partial last window; the 2x2 path
            # assumes every window is complete.
            and 2 * g.OH <= g.H and 2 * g.OW <= g.W)


cdef inline bint _forward_avx2(const float* x, float* out, index_t* idx,
                               Py_ssize_t r0, Py_ssize_t r1, Geometry g, bint is_2x2) noexcept nogil:
    # The intrinsic kernels, where they apply; returns False (nothing done)
    # otherwise. They need 32-bit plane offsets; the 2x2 one rows of at least
    # 4 windows, the general one column stride 1 or 2. idx goes to the
    # pointer of its own width (NULL: values only).
    cdef int32_t* i32 = NULL
    cdef int64_t* i64 = NULL
    if not CPOOL_HAVE_FORWARD_AVX2 or not cpool_plane_fits_int32(&g):
        return False
    if is_2x2 and g.OW < 4:
        return False
    if not is_2x2 and g.sw != 1 and g.sw != 2:
        return False
    if index_t is int32_t:
        i32 = idx
    else:
        i64 = idx
    if is_2x2:
        cpool_forward2x2_avx2(x, out, i32, i64, r0, r1, g)
    elif not (cpool_separable_applies(&g) and cpool_forward_separable_avx2(x, out, i32, i64, r0, r1, g, _avx512)):
        cpool_forward_vec_avx2(x, out, i32, i64, r0, r1, g)
    return True


cdef inline bint _forward_slabs(const float* x, float* out, index_t* idx, Py_ssize_t p0, Py_ssize_t p1,
                                Geometry g) noexcept nogil:
    # Whole planes p0 .. p1 - 1 through forward_slabs_avx2.h; False if its
    # buffer could not be allocated (nothing written).
    if index_t is int32_t:
        return cpool_forward_slabs_avx2(x, out, idx, NULL, p0, p1, g)
    else:
        return cpool_forward_slabs_avx2(x, out, NULL, idx, p0, p1, g)


cdef void _forward_block(const floating* x, floating* out, index_t* idx,
                         Py_ssize_t r0, Py_ssize_t r1, Geometry g, bint is_2x2) noexcept nogil:
    # One thread's rows. Planes too narrow for the planes kernels' vectors
    # go in slabs through the channels-last kernel (forward_slabs_avx2.h),
    # the rows of a plane split between blocks as the rest do.
    cdef Py_ssize_t p0, p1
    if floating is float:
        if CPOOL_HAVE_FORWARD_SLABS_AVX2 and cpool_slabs_apply(&g, is_2x2):
            p0 = (r0 + g.OH - 1) // g.OH
            p1 = r1 // g.OH
            if p1 - p0 >= 2 and _forward_slabs(x, out, idx, p0, p1, g):
                _forward_rows(x, out, idx, r0, p0 * g.OH, g, is_2x2)
                _forward_rows(x, out, idx, p1 * g.OH, r1, g, is_2x2)
                return
    _forward_rows(x, out, idx, r0, r1, g, is_2x2)


cdef inline void _forward_rows(const floating* x, floating* out, index_t* idx,
                               Py_ssize_t r0, Py_ssize_t r1, Geometry g, bint is_2x2) noexcept nogil:
    # Rows r0 .. r1 - 1 by the planes kernels. Each (path, with indices?)
    # pair is its own call so that `with_idx` is a constant inside the
    # inlined loops.
    if r0 >= r1:
        return
    if cpool_kernel_oversized(&g):
        if idx == NULL:
            _rows_windows(x, out, idx, r0, r1, g, False)
        else:
            _rows_windows(x, out, idx, r0, r1, g, True)
        return
    if floating is float:
        if _forward_avx2(x, out, idx, r0, r1, g, is_2x2):
            return
    if is_2x2:
        if idx == NULL:
            _rows_2x2(x, out, idx, r0, r1, g, False)
        else:
            _rows_2x2(x, out, idx, r0, r1, g, True)
    else:
        if idx == NULL:
            _rows_general(x, out, idx, r0, r1, g, False)
        else:
            _rows_general(x, out, idx, r0, r1, g, True)


cdef bint _forward_run(const floating* x, floating* out, index_t* idx, Py_ssize_t P, Geometry g,
                       int n_threads, bint adapt, Py_ssize_t C) noexcept:
    # The P*OH output rows in chunks of consecutive rows, claimed
    # dynamically by the team (see "threads on a busy machine" in common.h).
    # C == 0: P planes of (N, C, H, W) memory; C > 0: P images of
    # channels-last (N, H, W, C) memory (forward_nhwc.pxi). Returns False,
    # with nothing written, where the general paths would need index
    # offsets past int32 (a plane of 2**31+ elements).
    cdef Py_ssize_t rows = P * g.OH, c, chunks
    cdef Team team[1]
    cdef double t0
    cdef int n
    cdef bint is_2x2 = _is_2x2(g)
    if idx != NULL and (C > 0 or not is_2x2) and not cpool_plane_fits_int32(&g):
        return False
    if rows == 0 or g.OW == 0:
        return True
    n = cpool_team_threads(n_threads, rows, adapt)
    if n == 1:  # no OpenMP machinery at all on the latency path
        with nogil:
            if C > 0:
                _forward_block_nhwc(x, out, idx, 0, rows, g, C)
            else:
                _forward_block(x, out, idx, 0, rows, g, is_2x2)
        return True
    chunks = cpool_team_open(team, n, rows, adapt)
    for c in prange(chunks, nogil=True, schedule="dynamic", num_threads=n):
        t0 = cpool_team_enter(team, c)
        if C > 0:
            _forward_block_nhwc(x, out, idx, rows * c // chunks, rows * (c + 1) // chunks, g, C)
        else:
            _forward_block(x, out, idx, rows * c // chunks, rows * (c + 1) // chunks, g, is_2x2)
        cpool_team_leave(team, t0)
    cpool_team_close(team)
    return True
