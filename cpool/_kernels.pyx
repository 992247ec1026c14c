"""Compiled max-pooling kernels (float32 / float64, NCHW planes).

The Python wrapper (:mod:`cpool._fast`) validates every argument and hands
these functions C-contiguous (P, H, W) inputs and freshly allocated outputs,
so the kernels do no checking of their own except the range of each index
in the backward pass, which is untrusted user data.

Semantics are PyTorch's (``aten/src/ATen/native/cpu/MaxPoolKernel.cpp``):
taps are folded in row-major window order with "take ``v`` if ``v > best``
or ``v`` is NaN", so ties keep the first maximum and the last NaN wins; the
first in-bounds tap of a window seeds its index; padding is never selected.
A window with no in-bounds tap (only possible with dilation) yields -inf and
index -1.

Cython directives are set for the whole extension in ``setup.py``.
"""

from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memset
from libc.math cimport INFINITY

ctypedef fused floating:
    float
    double


cdef extern from * nogil:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int cpool_openmp_enabled(void) { return 1; }
    static int cpool_omp_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int cpool_openmp_enabled(void) { return 0; }
    static int cpool_omp_max_threads(void) { return 1; }
    #endif
    """
    int cpool_openmp_enabled()
    int cpool_omp_max_threads()


OPENMP = bool(cpool_openmp_enabled())


def omp_max_threads():
    """``omp_get_max_threads()``: honours OMP_NUM_THREADS and threadpoolctl."""
    return cpool_omp_max_threads()


cdef struct Geometry:
    Py_ssize_t kh, kw, sh, sw, ph, pw, dh, dw, H, W, OH, OW


cdef inline bint _takes(floating v, floating best) noexcept nogil:
    # PyTorch's update rule. `v != v` is the NaN test; written with `|` rather
    # than `or` so the compiler can turn the select into a vector blend.
    return (v > best) | (v != v)


cdef inline void _valid_outputs(Py_ssize_t off, Py_ssize_t stride, Py_ssize_t size,
                                Py_ssize_t n_out, Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    # Output positions o with 0 <= o*stride + off < size, as [lo, hi): the tap
    # falls into padding outside that range and is skipped (never selected).
    lo[0] = 0 if off >= 0 else (stride - 1 - off) // stride
    if off >= size:
        hi[0] = 0
    else:
        hi[0] = min(n_out, (size - 1 - off) // stride + 1)


cdef void _rows_2x2(const floating* x, floating* out, int64_t* idx,
                    Py_ssize_t r0, Py_ssize_t r1, Geometry g) noexcept nogil:
    # kernel 2, stride 2, no padding or dilation: the common case. Every
    # window is complete; its four taps are folded in row-major order with
    # selects (no branches), which the compiler turns into vector blends.
    # Geometry arrives by value: stores through `idx` (int64_t*) could alias
    # a struct read through a pointer and would block vectorisation.
    cdef Py_ssize_t W = g.W, OW = g.OW, OH = g.OH, H = g.H
    cdef Py_ssize_t r, ow, p, oh
    cdef const floating* a
    cdef const floating* b
    cdef floating* o
    cdef int64_t* io
    cdef floating best, v
    cdef int k  # window-local tap 0..3: 32-bit so it shares the float lanes
    cdef int64_t top
    cdef bint t
    for r in range(r0, r1):
        p = r // OH
        oh = r - p * OH
        a = x + p * H * W + 2 * oh * W
        b = a + W
        o = out + r * OW
        if idx == NULL:
            for ow in range(OW):
                best = a[2 * ow]
                v = a[2 * ow + 1]
                best = v if _takes(v, best) else best
                v = b[2 * ow]
                best = v if _takes(v, best) else best
                v = b[2 * ow + 1]
                best = v if _takes(v, best) else best
                o[ow] = best
        else:
            io = idx + r * OW
            top = 2 * oh * W
            for ow in range(OW):
                best = a[2 * ow]
                k = 0
                v = a[2 * ow + 1]
                t = _takes(v, best)
                best = v if t else best
                k = 1 if t else k
                v = b[2 * ow]
                t = _takes(v, best)
                best = v if t else best
                k = 2 if t else k
                v = b[2 * ow + 1]
                t = _takes(v, best)
                best = v if t else best
                k = 3 if t else k
                o[ow] = best
                io[ow] = top + 2 * ow + (k >> 1) * W + (k & 1)


cdef void _rows_general(const floating* x, floating* out, int64_t* idx,
                        Py_ssize_t r0, Py_ssize_t r1, Geometry g) noexcept nogil:
    # Tap-outer, output-inner: for each kernel tap, sweep the whole output
    # row. Each output's taps are still visited in row-major window order, so
    # the fold (and PyTorch's tie/NaN rules) is unchanged, but the inner loop
    # is a long strided sweep without data-dependent branches.
    cdef Py_ssize_t W = g.W, H = g.H, OW = g.OW, OH = g.OH, sw = g.sw
    cdef Py_ssize_t r, p, oh, ow, i, j, ih, off, lo, hi
    cdef const floating* row
    cdef floating* o
    cdef int64_t* io = NULL
    cdef floating v
    cdef int64_t base
    cdef bint t
    for r in range(r0, r1):
        p = r // OH
        oh = r - p * OH
        o = out + r * OW
        for ow in range(OW):
            o[ow] = -INFINITY
        if idx != NULL:
            io = idx + r * OW
            for ow in range(OW):
                io[ow] = -1
        for i in range(g.kh):
            ih = oh * g.sh - g.ph + i * g.dh
            if ih < 0 or ih >= H:
                continue
            for j in range(g.kw):
                off = j * g.dw - g.pw
                _valid_outputs(off, sw, W, OW, &lo, &hi)
                row = x + p * H * W + ih * W + off
                if idx == NULL:
                    for ow in range(lo, hi):
                        v = row[ow * sw]
                        o[ow] = v if _takes(v, o[ow]) else o[ow]
                else:
                    base = ih * W + off
                    for ow in range(lo, hi):
                        v = row[ow * sw]
                        # io < 0: the first in-bounds tap seeds the window.
                        t = _takes(v, o[ow]) | (io[ow] < 0)
                        o[ow] = v if t else o[ow]
                        io[ow] = base + ow * sw if t else io[ow]


cdef Geometry _geometry(geom) except *:
    cdef Geometry g
    g.kh, g.kw, g.sh, g.sw = geom.kh, geom.kw, geom.sh, geom.sw
    g.ph, g.pw, g.dh, g.dw = geom.ph, geom.pw, geom.dh, geom.dw
    g.H, g.W, g.OH, g.OW = geom.H, geom.W, geom.OH, geom.OW
    return g


def max_pool2d_forward(const floating[:, :, ::1] x, floating[:, :, ::1] out,
                       int64_t[:, :, ::1] indices, geom, int num_threads):
    """Fill ``out`` (P, OH, OW) and, unless it is None, ``indices``.

    ``geom`` is a :class:`cpool._validation.PoolGeometry` that has been
    checked against ``x``. The P*OH output rows are split into
    ``num_threads`` contiguous blocks, one per thread.
    """
    cdef Geometry g = _geometry(geom)
    cdef Py_ssize_t rows = x.shape[0] * g.OH, t, n = max(1, num_threads)
    if rows == 0:
        return
    cdef const floating* xp = &x[0, 0, 0]
    cdef floating* op = &out[0, 0, 0]
    cdef int64_t* ip = NULL if indices is None else &indices[0, 0, 0]
    cdef bint is_2x2 = (g.kh == 2 and g.kw == 2 and g.sh == 2 and g.sw == 2
                        and g.ph == 0 and g.pw == 0 and g.dh == 1 and g.dw == 1
                        # ceil_mode can add a partial last window; the 2x2 path
                        # assumes every window is complete.
                        and 2 * g.OH <= g.H and 2 * g.OW <= g.W)
    n = min(n, rows)
    for t in prange(n, nogil=True, schedule="static", num_threads=n, use_threads_if=n > 1):
        if is_2x2:
            _rows_2x2(xp, op, ip, rows * t // n, rows * (t + 1) // n, g)
        else:
            _rows_general(xp, op, ip, rows * t // n, rows * (t + 1) // n, g)


cdef inline Py_ssize_t _backward_plane(const floating* go, const int64_t* idx, floating* gi,
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


def max_pool2d_backward(const floating[:, :, ::1] grad_output, const int64_t[:, :, ::1] indices,
                        floating[:, :, ::1] grad_input, int num_threads):
    """Scatter-add ``grad_output`` into ``grad_input`` (overwritten) by plane.

    Returns the number of indices outside ``[-1, H*W)``; those are skipped,
    and the caller must treat a non-zero count as an error. Parallel over
    planes: each thread owns whole planes, so no atomics are needed.
    """
    cdef Py_ssize_t P = grad_output.shape[0], p
    cdef Py_ssize_t n_out = grad_output.shape[1] * grad_output.shape[2]
    cdef Py_ssize_t plane = grad_input.shape[1] * grad_input.shape[2]
    cdef Py_ssize_t bad = 0
    if P == 0:
        return 0
    cdef const floating* gop = &grad_output[0, 0, 0]
    cdef const int64_t* ip = &indices[0, 0, 0]
    cdef floating* gip = &grad_input[0, 0, 0]
    for p in prange(P, nogil=True, schedule="static", num_threads=num_threads,
                    use_threads_if=num_threads > 1):
        bad += _backward_plane(gop + p * n_out, ip + p * n_out, gip + p * plane, n_out, plane)
    return bad
