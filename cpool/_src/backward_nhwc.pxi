# The backward pass on channels-last memory: (N, OH, OW, C) grad_output
# and indices into (N, H, W, C) grad_input. Included by kernels.pyx after
# backward.pxi.
#
# The work is split into items of one image and a block of channels
# (channel planes are independent): whole images when there are enough of
# them for the team (each item then writes its gradient sequentially, the
# fastest way through memory), else blocks of CHANNEL_BLOCK channels, so
# that a few images of many channels are still shared by the team where
# PyTorch's channels-last backward runs one thread per image. Each item
# adds in output row-major order, PyTorch's order and rounding, per
# channel.
#
# Where grad_input holds a 2x2 cell per output (k2 s2-shaped, the common
# case), an item first tries a single pass that writes each cell once, all
# channels of a pixel at a time: go + 0 at the position the index names, 0
# at the other three. That equals zero-then-add exactly (go + 0 turns -0.0
# into +0.0, as 0 + go does), and it is a pure streaming write. It checks
# every index while it writes; one outside its own cell (overlapping
# windows, hostile input) and the item is redone by zero-and-scatter, which
# bounds-checks each index.


cdef enum:
    CHANNEL_BLOCK = 64  # channels per work item when images are split (a multiple of a cache line of float32)


cdef inline void _zero_pixels(floating* gi, Py_ssize_t first, Py_ssize_t count, Py_ssize_t C,
                              Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    # Channels [c0, c1) of pixels first .. first + count - 1.
    cdef Py_ssize_t p, c
    if c0 == 0 and c1 == C:
        memset(gi + first * C, 0, count * C * sizeof(floating))
        return
    for p in range(first, first + count):
        for c in range(c0, c1):
            gi[p * C + c] = 0


cdef inline Py_ssize_t _nhwc_scatter(const floating* go, const index_t* idx, floating* gi, Py_ssize_t plane,
                                     Py_ssize_t n_out, Py_ssize_t C, Py_ssize_t c0,
                                     Py_ssize_t c1) noexcept nogil:
    # Zero, then add in output row-major order; an index outside [-1,
    # plane) is counted and skipped, -1 (no input element) skipped.
    cdef Py_ssize_t o, c, bad = 0
    cdef int64_t k
    _zero_pixels(gi, 0, plane, C, c0, c1)
    for o in range(n_out):
        for c in range(c0, c1):
            k = idx[o * C + c]
            if <size_t>k < <size_t>plane:
                gi[k * C + c] += go[o * C + c]
            elif k != -1:
                bad += 1
    return bad


cdef inline bint _nhwc_cells_row(const floating* go, const index_t* idx, floating* gi, Py_ssize_t oh,
                                 Py_ssize_t W, Py_ssize_t OW, Py_ssize_t C, Py_ssize_t c0,
                                 Py_ssize_t c1) noexcept nogil:
    # Output row oh of the single-pass writer; False if an index of the row
    # is outside its cell. float32 goes to backward_nhwc_avx2.h where built.
    cdef Py_ssize_t ow, c, n = c1 - c0, miss = 0
    cdef index_t k, p00, p01, p10, p11
    cdef floating v
    cdef floating zero = 0
    cdef const floating* gp
    cdef const index_t* ip
    cdef floating* a
    cdef floating* b
    cdef floating* d
    cdef floating* e
    if floating is float:
        if CPOOL_HAVE_BACKWARD_NHWC_AVX2:
            if index_t is int32_t:
                return cpool_nhwc_cells_row_avx2(go, idx, NULL, gi, oh, W, OW, C, c0, c1)
            else:
                return cpool_nhwc_cells_row_avx2(go, NULL, idx, gi, oh, W, OW, C, c0, c1)
    for ow in range(OW):
        p00 = <index_t>(2 * oh * W + 2 * ow)
        p01 = p00 + 1
        p10 = p00 + <index_t>W
        p11 = p10 + 1
        gp = go + (oh * OW + ow) * C + c0
        ip = idx + (oh * OW + ow) * C + c0
        a = gi + <Py_ssize_t>p00 * C + c0
        b = a + C
        d = a + W * C
        e = d + C
        for c in range(n):
            k = ip[c]
            v = gp[c] + zero
            a[c] = v if k == p00 else zero
            b[c] = v if k == p01 else zero
            d[c] = v if k == p10 else zero
            e[c] = v if k == p11 else zero
            miss += (k != p00) & (k != p01) & (k != p10) & (k != p11) & (k != -1)
    return miss == 0


cdef inline bint _nhwc_cells(const floating* go, const index_t* idx, floating* gi, Py_ssize_t H, Py_ssize_t W,
                             Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t C, Py_ssize_t c0,
                             Py_ssize_t c1) noexcept nogil:
    # The single-pass writer (see the top of this file); False as soon as
    # an output row has an index outside its cell (the caller scatters).
    cdef Py_ssize_t oh
    for oh in range(OH):
        if not _nhwc_cells_row(go, idx, gi, oh, W, OW, C, c0, c1):
            return False
        # The columns right of the last cell.
        if W > 2 * OW:
            _zero_pixels(gi, 2 * oh * W + 2 * OW, W - 2 * OW, C, c0, c1)
            _zero_pixels(gi, (2 * oh + 1) * W + 2 * OW, W - 2 * OW, C, c0, c1)
    # The rows below the last cell.
    if H > 2 * OH:
        _zero_pixels(gi, 2 * OH * W, (H - 2 * OH) * W, C, c0, c1)
    return True


cdef inline Py_ssize_t _backward_items_nhwc(const floating* gop, const index_t* ip, floating* gip,
                                            Py_ssize_t w0, Py_ssize_t w1, Py_ssize_t H, Py_ssize_t W,
                                            Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t C, Py_ssize_t cb,
                                            bint cells) noexcept nogil:
    # Items w0 .. w1 - 1 of cb channels each; item w is image w // blocks,
    # channel block w % blocks.
    cdef Py_ssize_t blocks = (C + cb - 1) // cb
    cdef Py_ssize_t w, n, c0, c1, bad = 0
    cdef Py_ssize_t n_out = OH * OW, plane = H * W
    cdef const floating* go
    cdef const index_t* idx
    cdef floating* gi
    for w in range(w0, w1):
        n = w // blocks
        c0 = (w - n * blocks) * cb
        c1 = min(C, c0 + cb)
        go = gop + n * n_out * C
        idx = ip + n * n_out * C
        gi = gip + n * plane * C
        if cells and _nhwc_cells(go, idx, gi, H, W, OH, OW, C, c0, c1):
            continue
        bad += _nhwc_scatter(go, idx, gi, plane, n_out, C, c0, c1)
    return bad


cdef inline Py_ssize_t _nhwc_block(Py_ssize_t N, Py_ssize_t C, int n_threads) noexcept nogil:
    # Channels per work item: whole images when there are a few per thread.
    if N >= 4 * n_threads or C <= CHANNEL_BLOCK:
        return C
    return CHANNEL_BLOCK


cdef inline bint _use_cells_nhwc(Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                                 bint narrow_index) noexcept nogil:
    # narrow_index: int32 indices, whose cell offsets must fit in int32.
    return H >= 2 * OH and W >= 2 * OW and (not narrow_index or H * W < (<Py_ssize_t>1 << 31))
