# Adaptive pooling forward: PyTorch 2.13's CPU kernels (AdaptiveAvgPoolKernel.cpp,
# AdaptiveMaxPoolKernel.cpp), float32 and float64. Output o of an axis of
# out_len pools input [o * size // out_len, ceil((o + 1) * size / out_len)).
#
# Average, planes ((N, C, H, W) memory): each window summed in row-major
# order from 0 (`acc + v`: once NaN, the sum keeps its NaN), then
# `sum / kh / kw`. Channels-last ((N, H, W, C) memory): the first `split`
# channels are torch's vector lanes (`v + acc`: the tap's NaN wins; one
# division by kh * kw), the others its scalar tail (`acc + v`, two
# divisions); which NaN a sum of two NaNs keeps is torch's per channel
# group (the tap's in `sse`-bounded tail lanes and, per dtype, vector lanes).
# An output of 1x1 is torch's `mean((-1, -2))`: the cascade
# order of SumKernel.cpp (multi_row_sum / row_sum), one division by H * W.
# Max: the first maximum in row-major order, a NaN always taken (the last
# NaN wins), the index `h * W + w`.


cdef inline Py_ssize_t _ceil_log2(Py_ssize_t x) noexcept nogil:
    cdef Py_ssize_t bits = 0, v
    if x <= 2:
        return 1
    v = x - 1
    while v:
        bits += 1
        v >>= 1
    return bits


cdef void _cascade(const floating* base, Py_ssize_t row_stride, Py_ssize_t nsub, Py_ssize_t sub_stride,
                   Py_ssize_t width, Py_ssize_t size, floating* out) noexcept nogil:
    # SumKernel.cpp's multi_row_sum: out[k * width + l] sums base[i * row_stride
    # + k * sub_stride + l] over rows i < size in a 4-level cascade (levels of
    # 2**power rows; a level is folded into the next every 2**power rows).
    cdef floating acc[4][128]  # nsub * width <= 128 accumulators per level
    cdef Py_ssize_t n = nsub * width, power, step, mask, i = 0, r, j, k, l, a
    cdef const floating* row
    cdef bint flat = sub_stride == width or nsub == 1
    power = max(<Py_ssize_t>4, _ceil_log2(size) // 4)
    step = (<Py_ssize_t>1) << power
    mask = step - 1
    for j in range(4):
        for a in range(n):
            acc[j][a] = 0
    while i + step <= size:
        for r in range(step):
            row = base + i * row_stride
            if flat:
                for a in range(n):
                    acc[0][a] = acc[0][a] + row[a]
            else:
                for k in range(nsub):
                    for l in range(width):
                        acc[0][k * width + l] = acc[0][k * width + l] + row[k * sub_stride + l]
            i += 1
        for j in range(1, 4):
            for a in range(n):
                acc[j][a] = acc[j][a] + acc[j - 1][a]
                acc[j - 1][a] = 0
            if i & (mask << (j * power)):
                break
    while i < size:
        row = base + i * row_stride
        if flat:
            for a in range(n):
                acc[0][a] = acc[0][a] + row[a]
        else:
            for k in range(nsub):
                for l in range(width):
                    acc[0][k * width + l] = acc[0][k * width + l] + row[k * sub_stride + l]
        i += 1
    for j in range(1, 4):
        for a in range(n):
            acc[0][a] = acc[0][a] + acc[j][a]
    for a in range(n):
        out[a] = acc[0][a]


cdef void _cascade_vec(const floating* base, Py_ssize_t row_stride, Py_ssize_t size,
                       floating* out) noexcept nogil:
    # _cascade of rows of 4 vectors (4 * L contiguous elements, L = 32 bytes of
    # floating): a compile-time width, so the adds stay in vector registers.
    cdef floating acc0[32]
    cdef floating acc1[32]
    cdef floating acc2[32]
    cdef floating acc3[32]
    cdef Py_ssize_t i = 0, r, a, power, step, mask
    cdef const floating* row
    power = max(<Py_ssize_t>4, _ceil_log2(size) // 4)
    step = (<Py_ssize_t>1) << power
    mask = step - 1
    for a in range(4 * (<Py_ssize_t>(32 // sizeof(floating)))):
        acc0[a] = 0
        acc1[a] = 0
        acc2[a] = 0
        acc3[a] = 0
    while i + step <= size:
        for r in range(step):
            row = base + i * row_stride
            for a in range(4 * (<Py_ssize_t>(32 // sizeof(floating)))):
                acc0[a] = acc0[a] + row[a]
            i += 1
        for a in range(4 * (<Py_ssize_t>(32 // sizeof(floating)))):
            acc1[a] = acc1[a] + acc0[a]
            acc0[a] = 0
        if i & (mask << power):
            continue
        for a in range(4 * (<Py_ssize_t>(32 // sizeof(floating)))):
            acc2[a] = acc2[a] + acc1[a]
            acc1[a] = 0
        if i & (mask << (2 * power)):
            continue
        for a in range(4 * (<Py_ssize_t>(32 // sizeof(floating)))):
            acc3[a] = acc3[a] + acc2[a]
            acc2[a] = 0
    while i < size:
        row = base + i * row_stride
        for a in range(4 * (<Py_ssize_t>(32 // sizeof(floating)))):
            acc0[a] = acc0[a] + row[a]
        i += 1
    for a in range(4 * (<Py_ssize_t>(32 // sizeof(floating)))):
        out[a] = ((acc0[a] + acc1[a]) + acc2[a]) + acc3[a]


cdef void _row_sum(const floating* base, Py_ssize_t item_stride, Py_ssize_t width, Py_ssize_t size,
                   floating* out) noexcept nogil:
    # SumKernel.cpp's row_sum: items i (width elements at base + i * item_stride)
    # in four interleaved cascades, the leftover items into the first, then
    # the four folded in order.
    cdef floating part[128]
    cdef Py_ssize_t ilp = size // 4, i, k, l
    _cascade(base, 4 * item_stride, 4, item_stride, width, ilp, part)
    for i in range(ilp * 4, size):
        for l in range(width):
            part[l] = part[l] + base[i * item_stride + l]
    for k in range(1, 4):
        for l in range(width):
            part[l] = part[l] + part[k * width + l]
    for l in range(width):
        out[l] = part[l]


cdef inline floating _plane_sum(const floating* p, Py_ssize_t n) noexcept nogil:
    # vectorized_inner_sum (n >= the vector width) or a scalar row_sum.
    cdef Py_ssize_t L = <Py_ssize_t>(32 // sizeof(floating)), nvec, k, l
    cdef floating part[32]
    cdef floating final = 0
    cdef floating zero = 0
    if n < L:
        _row_sum(p, 1, 1, n, &final)
        return final
    nvec = n // L
    # row_sum over the vectors: rows of 4 consecutive vectors, then the rest
    if nvec < 4:
        # no row of 4 vectors: the cascades are 0 and the vectors go to the first
        for l in range(<Py_ssize_t>(32 // sizeof(floating))):
            part[l] = zero + p[l]
        for k in range(1, nvec):
            for l in range(<Py_ssize_t>(32 // sizeof(floating))):
                part[l] = part[l] + p[k * L + l]
    else:
        if 1 <= nvec // 4 < 16:
            # fewer rows than a cascade level: one level, its adds in order (the
            # other levels stay 0, and adding 0 to a sum that is never -0.0 is
            # exact); the first row is added to 0 as it is loaded
            for l in range(4 * (<Py_ssize_t>(32 // sizeof(floating)))):
                part[l] = zero + p[l]
            for k in range(1, nvec // 4):
                for l in range(4 * (<Py_ssize_t>(32 // sizeof(floating)))):
                    part[l] = part[l] + p[k * 4 * L + l]
        else:
            _cascade_vec(p, 4 * L, nvec // 4, part)
        for k in range(nvec // 4 * 4, nvec):
            for l in range(<Py_ssize_t>(32 // sizeof(floating))):
                part[l] = part[l] + p[k * L + l]
        for k in range(1, 4):
            for l in range(<Py_ssize_t>(32 // sizeof(floating))):
                part[l] = part[l] + part[k * L + l]
    for k in range(nvec * L, n):
        final = final + p[k]
    for k in range(L):
        final = final + part[k]
    return final


cdef void _image_sum(const floating* img, Py_ssize_t n, Py_ssize_t C, floating* out) noexcept nogil:
    # vectorized_outer_sum (C >= the vector width) or scalar_outer_sum: n items of stride C.
    cdef Py_ssize_t L = <Py_ssize_t>(32 // sizeof(floating)), j = 0
    if C >= L:
        while j + 4 * L <= C:
            _cascade_vec(img + j, C, n, out + j)
            j += 4 * L
        while j + L <= C:
            _row_sum(img + j, C, L, n, out + j)
            j += L
    else:
        while j + 4 <= C:
            _cascade(img + j, C, 1, 0, 4, n, out + j)
            j += 4
    while j < C:
        _row_sum(img + j, C, 1, n, out + j)
        j += 1


cdef void _ad_global_planes(const floating* x, floating* out, Py_ssize_t p0, Py_ssize_t p1,
                            Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t p
    cdef floating zero = 0
    cdef floating d = <floating>n
    for p in range(p0, p1):
        out[p] = (zero + _plane_sum(x + p * n, n)) / d


cdef void _ad_global_images(const floating* x, floating* out, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t n,
                            Py_ssize_t C) noexcept nogil:
    cdef Py_ssize_t i, c
    cdef floating zero = 0
    cdef floating d = <floating>n
    for i in range(i0, i1):
        _image_sum(x + i * n * C, n, C, out + i * C)
        for c in range(C):
            out[i * C + c] = (zero + out[i * C + c]) / d


cdef floating _ad_nan_sum(const floating* plane, Py_ssize_t W, Py_ssize_t h0, Py_ssize_t h1,
                          Py_ssize_t w0, Py_ssize_t w1) noexcept nogil:
    # A window whose sum is NaN, again with the NaN rule explicit: once the
    # running sum is NaN it keeps that NaN, whatever operand order the
    # compiler chose above.
    cdef floating total = 0
    cdef Py_ssize_t ih, iw
    for ih in range(h0, h1):
        for iw in range(w0, w1):
            if total != total:
                return total
            total = total + plane[ih * W + iw]
    return total


cdef void _ad_avg_rows(const floating* x, floating* out, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t H,
                       Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    # Output rows r = plane * OH + oh of (P, OH, OW) output.
    cdef Py_ssize_t r, p, oh, ow, ih, iw, h0, h1, w0, w1
    cdef const floating* plane
    cdef floating acc
    for r in range(r0, r1):
        p = r // OH
        oh = r - p * OH
        h0, h1 = cpool_adaptive_start(oh, OH, H), cpool_adaptive_end(oh, OH, H)
        plane = x + p * H * W
        for ow in range(OW):
            w0, w1 = cpool_adaptive_start(ow, OW, W), cpool_adaptive_end(ow, OW, W)
            acc = 0
            for ih in range(h0, h1):
                for iw in range(w0, w1):
                    acc = acc + plane[ih * W + iw]
            if acc != acc:
                acc = _ad_nan_sum(plane, W, h0, h1, w0, w1)
            out[r * OW + ow] = acc / <floating>(h1 - h0) / <floating>(w1 - w0)


cdef void _ad_avg_rows_nhwc(const floating* x, floating* out, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t H,
                            Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t C,
                            Py_ssize_t split, Py_ssize_t sse, bint vector_tap_first) noexcept nogil:
    # Rows r = n * OH + oh of (N, OH, OW, C) output; channel groups as
    # cpool.slow.channel_groups.
    cdef Py_ssize_t r, n, oh, ow, c, ih, iw, h0, h1, w0, w1
    cdef const floating* tap
    cdef floating* o
    cdef floating d, dh, dw, v
    cdef floating zero = 0
    cdef bint nan
    for r in range(r0, r1):
        n = r // OH
        oh = r - n * OH
        h0, h1 = cpool_adaptive_start(oh, OH, H), cpool_adaptive_end(oh, OH, H)
        for ow in range(OW):
            w0, w1 = cpool_adaptive_start(ow, OW, W), cpool_adaptive_end(ow, OW, W)
            o = out + (r * OW + ow) * C
            for c in range(C):
                o[c] = 0
            for ih in range(h0, h1):
                for iw in range(w0, w1):
                    tap = x + ((n * H + ih) * W + iw) * C
                    for c in range(C):
                        o[c] = o[c] + tap[c]
            nan = False
            for c in range(C):
                nan = nan | (o[c] != o[c])
            if nan:  # again, with torch's NaN rules made explicit per channel
                for c in range(C):
                    if o[c] == o[c]:
                        continue
                    o[c] = 0
                    for ih in range(h0, h1):
                        for iw in range(w0, w1):
                            v = x[((n * H + ih) * W + iw) * C + c]
                            if (c < split and vector_tap_first) or (split <= c < sse):
                                # the tap's NaN wins (quieted: + 0)
                                o[c] = v + zero if v != v else v + o[c]
                            else:  # the running sum's NaN wins
                                o[c] = o[c] if o[c] != o[c] else o[c] + v
            d = <floating>((h1 - h0) * (w1 - w0))
            dh, dw = <floating>(h1 - h0), <floating>(w1 - w0)
            for c in range(split):
                o[c] = o[c] / d
            for c in range(split, C):
                o[c] = o[c] / dh / dw


cdef void _ad_max_rows(const floating* x, floating* out, int64_t* idx, Py_ssize_t r0, Py_ssize_t r1,
                       Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    cdef Py_ssize_t r, p, oh, ow, ih, iw, h0, h1, w0, w1, at
    cdef const floating* plane
    cdef floating best, v
    for r in range(r0, r1):
        p = r // OH
        oh = r - p * OH
        h0, h1 = cpool_adaptive_start(oh, OH, H), cpool_adaptive_end(oh, OH, H)
        plane = x + p * H * W
        for ow in range(OW):
            w0, w1 = cpool_adaptive_start(ow, OW, W), cpool_adaptive_end(ow, OW, W)
            best = -INFINITY
            at = h0 * W + w0
            for ih in range(h0, h1):
                for iw in range(w0, w1):
                    v = plane[ih * W + iw]
                    if v > best or v != v:
                        best = v
                        at = ih * W + iw
            out[r * OW + ow] = best
            if idx != NULL:
                idx[r * OW + ow] = at


cdef void _ad_max_rows_nhwc(const floating* x, floating* out, int64_t* idx, Py_ssize_t r0, Py_ssize_t r1,
                            Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                            Py_ssize_t C) noexcept nogil:
    cdef Py_ssize_t r, n, oh, ow, c, ih, iw, h0, h1, w0, w1, base
    cdef const floating* tap
    cdef floating* o
    cdef int64_t* i = NULL
    cdef floating v
    for r in range(r0, r1):
        n = r // OH
        oh = r - n * OH
        h0, h1 = cpool_adaptive_start(oh, OH, H), cpool_adaptive_end(oh, OH, H)
        for ow in range(OW):
            w0, w1 = cpool_adaptive_start(ow, OW, W), cpool_adaptive_end(ow, OW, W)
            o = out + (r * OW + ow) * C
            for c in range(C):
                o[c] = -INFINITY
            if idx != NULL:
                i = idx + (r * OW + ow) * C
                for c in range(C):
                    i[c] = h0 * W + w0
            for ih in range(h0, h1):
                for iw in range(w0, w1):
                    tap = x + ((n * H + ih) * W + iw) * C
                    base = ih * W + iw
                    if idx != NULL:
                        for c in range(C):
                            v = tap[c]
                            if v > o[c] or v != v:
                                o[c] = v
                                i[c] = base
                    else:
                        for c in range(C):
                            v = tap[c]
                            if v > o[c] or v != v:
                                o[c] = v


cdef void _ad_forward_run(const floating* x, floating* out, int64_t* idx, bint is_max, Py_ssize_t P,
                          Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t C,
                          Py_ssize_t split, Py_ssize_t sse, bint vector_tap_first, int n_threads,
                          bint adapt) noexcept:
    # P planes (C == 0) or P images of C channels; P * OH output rows in
    # chunks claimed dynamically by the team (see "threads on a busy
    # machine" in common.h; each output on its own: any split gives the same
    # bits). The 1x1 average: planes or images.
    # The max of float32 planes goes in slabs of planes (adaptive_max_avx2.h):
    # its units are planes then, as for the 1x1 average.
    cdef Py_ssize_t rows = P * OH, c, chunks, units
    cdef Team team[1]
    cdef double t0
    cdef int n
    cdef bint glob = (not is_max) and OH == 1 and OW == 1
    cdef bint slabs = False
    cdef Geometry halve
    if is_max and C == 0 and H == 2 * OH and W == 2 * OW:
        # Planes halved: the windows are max pooling's 2x2 stride-2 ones, and
        # its planes kernels (forward.pxi) run them 2x faster than slabs do.
        halve.kh = halve.kw = halve.sh = halve.sw = 2
        halve.ph = halve.pw = 0
        halve.dh = halve.dw = 1
        halve.H, halve.W, halve.OH, halve.OW = H, W, OH, OW
        if _forward_run(x, out, idx, P, halve, n_threads, adapt, 0):
            return
    if floating is float:
        slabs = (CPOOL_HAVE_ADAPTIVE_MAX_AVX2 and is_max and C == 0
                 and cpool_adaptive_max_slabs_apply(H, W, OH, OW))
    units = P if (glob or slabs) else rows
    if units == 0 or OW == 0:
        return
    n = cpool_team_threads(n_threads, units, adapt)
    if n == 1:
        with nogil:
            _ad_forward_chunk(x, out, idx, is_max, glob, slabs, 0, units, H, W, OH, OW, C, split, sse,
                              vector_tap_first)
        return
    chunks = cpool_team_open(team, n, units, adapt)
    for c in prange(chunks, nogil=True, schedule="dynamic", num_threads=n):
        t0 = cpool_team_enter(team, c)
        _ad_forward_chunk(x, out, idx, is_max, glob, slabs, units * c // chunks, units * (c + 1) // chunks,
                          H, W, OH, OW, C, split, sse, vector_tap_first)
        cpool_team_leave(team, t0)
    cpool_team_close(team)


cdef void _ad_forward_chunk(const floating* x, floating* out, int64_t* idx, bint is_max, bint glob,
                            bint slabs, Py_ssize_t u0, Py_ssize_t u1, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH,
                            Py_ssize_t OW, Py_ssize_t C, Py_ssize_t split, Py_ssize_t sse,
                            bint vector_tap_first) noexcept nogil:
    # Units u0 .. u1 - 1: planes or images (glob, slabs), else output rows.
    if glob:
        if C > 0:
            _ad_global_images(x, out, u0, u1, H * W, C)
        else:
            _ad_global_planes(x, out, u0, u1, H * W)
    elif is_max:
        if floating is float:
            if slabs:
                if not cpool_adaptive_max_slabs_avx2(x, out, idx, u0, u1, H, W, OH, OW):
                    _ad_max_rows(x, out, idx, u0 * OH, u1 * OH, H, W, OH, OW)  # no buffer
                return
            if CPOOL_HAVE_ADAPTIVE_MAX_AVX2 and C > 0 and H * W < CPOOL_INT32_PLANE:
                cpool_adaptive_max_nhwc_avx2(x, out, idx, u0, u1, H, W, OH, OW, C)
                return
        if C > 0:
            _ad_max_rows_nhwc(x, out, idx, u0, u1, H, W, OH, OW, C)
        else:
            _ad_max_rows(x, out, idx, u0, u1, H, W, OH, OW)
    else:
        if C > 0:
            _ad_avg_rows_nhwc(x, out, u0, u1, H, W, OH, OW, C, split, sse, vector_tap_first)
        else:
            _ad_avg_rows(x, out, u0, u1, H, W, OH, OW)
