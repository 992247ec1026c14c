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

That fold ("the last NaN, else the first maximum") is associative, so any
grouping of consecutive taps gives the same value, bits and index; it is not
commutative, so taps are never reordered.

This one source is compiled more than once (see ``setup.py``): as
``cpool._kernels`` for the baseline ISA and, on x86-64, as
``cpool._kernels_avx2`` (``_kernels_avx2.pyx`` just includes this file).
:mod:`cpool._fast` picks one at import with :func:`cpu_has_avx2`. The loops
are written for the auto-vectoriser: no branches in inner loops, selects
instead, and fixed-length chunks whose length is the vector width of the
variant being compiled (``CPOOL_VEC_BYTES``). In the AVX2 build, float32
forward runs in the intrinsic kernels of ``_forward.h`` instead (2x2 stride
2, and any window with column stride 1 or 2), which keep each output's
running maximum and index in registers; the loops here remain the baseline
and the reference the tests hold those kernels to (:func:`forward_isa`).

Cython directives are set for the whole extension in ``setup.py``.
"""

cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memset
from libc.math cimport INFINITY

ctypedef fused floating:
    float
    double

# Index outputs: int64 (PyTorch's format) or int32 (MaxPool2d keeps these for
# its own backward when a plane has < 2**31 elements: half the memory traffic).
ctypedef fused index_t:
    int32_t
    int64_t


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

    /* The widest vectors this translation unit may use (set by the ISA flags
       setup.py passes for each variant). */
    #if defined(__AVX512F__)
    #define CPOOL_VEC_BYTES 64
    #define CPOOL_ISA "avx512"
    #elif defined(__AVX2__)
    #define CPOOL_VEC_BYTES 32
    #define CPOOL_ISA "avx2"
    #else
    #define CPOOL_VEC_BYTES 16
    #define CPOOL_ISA "baseline"
    #endif

    /* Whether this CPU (and OS) runs the AVX2 variant. GCC and clang only;
       elsewhere the baseline is used. */
    static int cpool_cpu_has_avx2(void) {
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    #else
        return 0;
    #endif
    }
    """
    int cpool_openmp_enabled()
    int cpool_omp_max_threads()
    int cpool_cpu_has_avx2()
    const char* CPOOL_ISA
    enum: CPOOL_VEC_BYTES


cnp.import_array()

OPENMP = bool(cpool_openmp_enabled())

#: The instruction set this module was compiled for: "baseline", "avx2", ...
ISA = CPOOL_ISA.decode("ascii")


def omp_max_threads():
    """``omp_get_max_threads()``: honours OMP_NUM_THREADS and threadpoolctl."""
    return cpool_omp_max_threads()


def cpu_has_avx2():
    """True if this CPU and OS can run ``cpool._kernels_avx2``."""
    return bool(cpool_cpu_has_avx2())


cdef extern from "_forward.h" nogil:
    # The pooling geometry, and the AVX2 forward kernels for float32 (see the
    # header): idx is int32_t*, int64_t* or NULL as idx_bytes (4, 8, 0) says.
    ctypedef struct Geometry "cpool_geometry":
        Py_ssize_t kh, kw, sh, sw, ph, pw, dh, dw, H, W, OH, OW
    enum: CPOOL_HAVE_FORWARD_AVX2
    int cpool_forward_avx2_on
    void cpool_forward2x2_f32(const float* x, float* out, void* idx, int idx_bytes,
                              Py_ssize_t r0, Py_ssize_t r1, Geometry g)
    void cpool_forward_vec_f32(const float* x, float* out, void* idx, int idx_bytes,
                               Py_ssize_t r0, Py_ssize_t r1, Geometry g)


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
    cdef int32_t at = first + <int32_t>(lo * sw)  # plane offset of row[c*sw]
    for c in range(lo, hi):
        v = row[c * sw]
        if with_idx:
            t = _takes(v, ob[c]) | (ib[c] < 0)
            ob[c] = v if t else ob[c]
            ib[c] = at if t else ib[c]
            at += <int32_t>sw
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
    # Plane offsets fit in int32: _fast.py sends larger planes elsewhere.
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


cdef inline bint _forward_avx2(const float* x, float* out, index_t* idx,
                               Py_ssize_t r0, Py_ssize_t r1, Geometry g, bint is_2x2) noexcept nogil:
    # The intrinsic kernels, where they apply; returns False (nothing done)
    # otherwise. They need 32-bit plane offsets; the 2x2 one rows of at least
    # 4 windows, the general one column stride 1 or 2.
    cdef int ib = 0 if idx == NULL else sizeof(index_t)
    if not cpool_forward_avx2_on or g.H * g.W >= (<Py_ssize_t>1 << 31):
        return False
    if is_2x2:
        if g.OW < 4:
            return False
        cpool_forward2x2_f32(x, out, idx, ib, r0, r1, g)
        return True
    if g.sw != 1 and g.sw != 2:
        return False
    cpool_forward_vec_f32(x, out, idx, ib, r0, r1, g)
    return True


def forward_isa(str isa=None):
    """The float32 forward kernels in use: "avx2" (intrinsics) or "none".

    "none" is the auto-vectorised loops every build has. With an argument,
    switch to that one if this module has it; returns the one in use
    afterwards. For tests and benchmarks; not thread-safe.
    """
    global cpool_forward_avx2_on
    if isa is not None:
        if isa not in ("avx2", "none"):
            raise ValueError(f"isa must be 'avx2' or 'none', got isa={isa!r}")
        cpool_forward_avx2_on = 1 if (isa == "avx2" and CPOOL_HAVE_FORWARD_AVX2) else 0
    return "avx2" if cpool_forward_avx2_on else "none"


cdef void _forward_block(const floating* x, floating* out, index_t* idx,
                         Py_ssize_t r0, Py_ssize_t r1, Geometry g, bint is_2x2) noexcept nogil:
    # One thread's rows. Each (path, with indices?) pair is its own call so
    # that `with_idx` is a constant inside the inlined loops.
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


cdef Geometry _geometry(tuple packed) except *:
    # PoolGeometry.packed: (kh, kw, sh, sw, ph, pw, dh, dw, H, W, OH, OW).
    cdef Geometry g
    g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.H, g.W, g.OH, g.OW = packed
    return g


cdef inline bint _planes(cnp.ndarray a, int type_num, bint writeable) noexcept:
    # The layout every kernel assumes: a C-contiguous, native-order array of
    # the given type whose last two axes are a plane (3-D or 4-D: the leading
    # axes just count planes). The wrapper always passes such arrays; these
    # checks only keep a wrong direct call from touching memory it should not.
    return (cnp.PyArray_NDIM(a) >= 3 and cnp.PyArray_TYPE(a) == type_num
            and cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISNOTSWAPPED(a)
            and (not writeable or cnp.PyArray_ISWRITEABLE(a)))


cdef inline Py_ssize_t _n_planes(cnp.ndarray a) noexcept:
    cdef Py_ssize_t n = 1
    cdef int d
    for d in range(cnp.PyArray_NDIM(a) - 2):
        n *= cnp.PyArray_DIM(a, d)
    return n


cdef inline bint _same_planes(cnp.ndarray a, cnp.ndarray b, Py_ssize_t h, Py_ssize_t w) noexcept:
    # b has a's leading axes and an (h, w) plane.
    cdef int d, nd = cnp.PyArray_NDIM(a)
    if cnp.PyArray_NDIM(b) != nd or cnp.PyArray_DIM(b, nd - 2) != h or cnp.PyArray_DIM(b, nd - 1) != w:
        return False
    for d in range(nd - 2):
        if cnp.PyArray_DIM(a, d) != cnp.PyArray_DIM(b, d):
            return False
    return True


cdef int _index_bytes(cnp.ndarray a) except -1:
    # 8 or 4: a signed integer array of either width (int64 has two type
    # numbers on some platforms, long and long long).
    if not (cnp.PyArray_ISSIGNED(a) and (cnp.PyArray_ITEMSIZE(a) == 8 or cnp.PyArray_ITEMSIZE(a) == 4)):
        raise TypeError(f"indices must be int64 or int32, got indices.dtype={a.dtype}")
    return cnp.PyArray_ITEMSIZE(a)


cdef int _float_type(cnp.ndarray a, str name) except -1:
    cdef int t = cnp.PyArray_TYPE(a)
    if t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64:
        raise TypeError(f"{name} must be float32 or float64, got {name}.dtype={a.dtype}")
    return t


cdef void _forward_run(const floating* xp, floating* op, index_t* ip, Py_ssize_t P, Geometry g,
                       int num_threads) noexcept:
    cdef Py_ssize_t rows = P * g.OH, t, n = max(1, num_threads)
    cdef bint is_2x2 = _is_2x2(g)
    if rows == 0 or g.OW == 0:
        return
    n = min(n, rows)
    if n == 1:  # no OpenMP machinery at all on the latency path
        with nogil:
            _forward_block(xp, op, ip, 0, rows, g, is_2x2)
        return
    for t in prange(n, nogil=True, schedule="static", num_threads=n):
        _forward_block(xp, op, ip, rows * t // n, rows * (t + 1) // n, g, is_2x2)


def max_pool2d_forward(cnp.ndarray x not None, cnp.ndarray out not None, cnp.ndarray indices,
                       tuple geom, int num_threads):
    """Fill ``out`` (P, OH, OW) and, unless it is None, ``indices``.

    ``x``, ``out`` and ``indices`` (int64) are C-contiguous native-order
    (..., H, W) / (..., OH, OW) arrays with the same leading axes (3-D or
    4-D), ``x`` and ``out`` float32 or float64 alike; ``geom`` is the ``packed`` tuple of a
    :class:`cpool._validation.PoolGeometry` that has been checked against
    ``x``. With indices, an H*W plane must be < 2**31 unless the window is
    2x2 with stride 2 (:func:`fast_path`). The P*OH output rows are split
    into ``num_threads`` contiguous blocks, one per thread, so each thread
    also first-touches its own part of the outputs. (Plain ndarrays rather
    than typed memoryviews: acquiring three memoryviews cost about 0.5 us of
    a 4 us call on small inputs.)
    """
    cdef Geometry g = _geometry(geom)
    cdef int t = _float_type(x, "x")
    cdef int ib = 8 if indices is None else _index_bytes(indices)
    if not (_planes(x, t, False) and _same_planes(x, x, g.H, g.W)
            and _planes(out, t, True) and _same_planes(x, out, g.OH, g.OW)
            and (indices is None or (_planes(indices, cnp.PyArray_TYPE(indices), True)
                                     and _same_planes(x, indices, g.OH, g.OW)))):
        raise ValueError("max_pool2d_forward needs C-contiguous native-order (..., H, W) x and (..., OH, OW) "
                         "out/indices of the geometry's sizes")
    if ib == 4 and g.H * g.W >= 2**31:
        raise ValueError("int32 indices need planes of fewer than 2**31 elements")
    cdef Py_ssize_t P = _n_planes(x)
    cdef void* xp = cnp.PyArray_DATA(x)
    cdef void* op = cnp.PyArray_DATA(out)
    cdef void* ip = NULL if indices is None else cnp.PyArray_DATA(indices)
    if t == cnp.NPY_FLOAT32:
        if ib == 4:
            _forward_run(<const float*>xp, <float*>op, <int32_t*>ip, P, g, num_threads)
        else:
            _forward_run(<const float*>xp, <float*>op, <int64_t*>ip, P, g, num_threads)
    elif ib == 4:
        _forward_run(<const double*>xp, <double*>op, <int32_t*>ip, P, g, num_threads)
    else:
        _forward_run(<const double*>xp, <double*>op, <int64_t*>ip, P, g, num_threads)


cdef inline bint _is_2x2(Geometry g) noexcept nogil:
    return (g.kh == 2 and g.kw == 2 and g.sh == 2 and g.sw == 2
            and g.ph == 0 and g.pw == 0 and g.dh == 1 and g.dw == 1
            # ceil_mode can add a partial last window; the 2x2 path
            # assumes every window is complete.
            and 2 * g.OH <= g.H and 2 * g.OW <= g.W)


def fast_path(tuple geom):
    """True if ``geom`` (``PoolGeometry.packed``) runs on the 2x2 stride-2 path (int64 offsets)."""
    return _is_2x2(_geometry(geom))


# --------------------------------------------------------------- backward

cdef extern from "_cells.h" nogil:
    # The AVX2 / AVX-512 single-pass writer for float32 planes whose indices
    # each lie in their own 2x2 cell (kernel 2 stride 2); returns 0 as soon
    # as one does not.
    enum: CPOOL_HAVE_CELLS
    enum: CPOOL_HAVE_CELLS_AVX512
    enum: CPOOL_CELLS_MIN_OW
    int cpool_cells_level
    int cpool_cpu_has_avx512()
    int cpool_cells_plane_f32_i64(const float* go, const int64_t* idx, float* gi,
                                  Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)
    int cpool_cells_plane_f32_i32(const float* go, const int32_t* idx, float* gi,
                                  Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)


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
    if index_t is int32_t:
        return cpool_cells_plane_f32_i32(go, idx, gi, H, W, OH, OW)
    else:
        return cpool_cells_plane_f32_i64(go, idx, gi, H, W, OH, OW)


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


def cells_isa(str isa=None):
    """The single-pass k2 s2 float32 backward in use: "avx512", "avx2" or "none".

    With an argument, switch to that one if this module has it and the CPU
    runs it ("none": always zero-and-scatter); tests and benchmarks use this
    to cover each. Returns the one in use afterwards. Not thread-safe: call
    it before computing.
    """
    global cpool_cells_level
    names = ("none", "avx2", "avx512")
    if isa is not None:
        if isa not in names:
            raise ValueError(f"isa must be 'avx512', 'avx2' or 'none', got isa={isa!r}")
        if isa == "none":
            cpool_cells_level = 0
        elif isa == "avx2" and CPOOL_HAVE_CELLS:
            cpool_cells_level = 1
        elif isa == "avx512" and CPOOL_HAVE_CELLS_AVX512 and cpool_cpu_has_avx512():
            cpool_cells_level = 2
    return names[cpool_cells_level]


def cells_plane(cnp.ndarray grad_output not None, cnp.ndarray indices not None, cnp.ndarray grad_input not None):
    """Run the cell writer in use on one (OH, OW) plane; False if it gave up. For tests."""
    if not (cnp.PyArray_NDIM(grad_output) == 2 and cnp.PyArray_TYPE(grad_output) == cnp.NPY_FLOAT32
            and cnp.PyArray_IS_C_CONTIGUOUS(grad_output) and cnp.PyArray_ISNOTSWAPPED(grad_output)
            and cnp.PyArray_NDIM(grad_input) == 2 and cnp.PyArray_TYPE(grad_input) == cnp.NPY_FLOAT32
            and cnp.PyArray_IS_C_CONTIGUOUS(grad_input) and cnp.PyArray_ISWRITEABLE(grad_input)
            and cnp.PyArray_NDIM(indices) == 2 and cnp.PyArray_IS_C_CONTIGUOUS(indices)
            and cnp.PyArray_DIM(indices, 0) == cnp.PyArray_DIM(grad_output, 0)
            and cnp.PyArray_DIM(indices, 1) == cnp.PyArray_DIM(grad_output, 1)):
        raise ValueError("cells_plane needs C-contiguous 2-D float32 planes and indices")
    cdef int ib = _index_bytes(indices)
    cdef Py_ssize_t OH = cnp.PyArray_DIM(grad_output, 0), OW = cnp.PyArray_DIM(grad_output, 1)
    cdef Py_ssize_t H = cnp.PyArray_DIM(grad_input, 0), W = cnp.PyArray_DIM(grad_input, 1)
    if OH == 0 or H < 2 * OH or W < 2 * OW:
        raise ValueError("grad_input must hold a 2x2 cell per grad_output element")
    if cpool_cells_level == 0 or OW < CPOOL_CELLS_MIN_OW:
        return False
    cdef const float* gop = <const float*>cnp.PyArray_DATA(grad_output)
    cdef float* gip = <float*>cnp.PyArray_DATA(grad_input)
    if ib == 4:
        return bool(_cells_plane(gop, <const int32_t*>cnp.PyArray_DATA(indices), gip, H, W, OH, OW))
    return bool(_cells_plane(gop, <const int64_t*>cnp.PyArray_DATA(indices), gip, H, W, OH, OW))


if CPOOL_HAVE_CELLS_AVX512 and cpool_cpu_has_avx512():
    cpool_cells_level = 2


cdef Py_ssize_t _backward_run(const floating* gop, const index_t* ip, floating* gip, Py_ssize_t P,
                              Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                              int num_threads) noexcept:
    cdef Py_ssize_t p, n_out = OH * OW, plane = H * W, bad = 0
    cdef bint cells = cpool_cells_level > 0 and OW >= CPOOL_CELLS_MIN_OW and H >= 2 * OH and W >= 2 * OW
    if P == 0:
        return 0
    if num_threads <= 1:  # no OpenMP machinery at all on the latency path
        with nogil:
            for p in range(P):
                bad += _backward_plane(gop + p * n_out, ip + p * n_out, gip + p * plane, H, W, OH, OW, cells)
        return bad
    for p in prange(P, nogil=True, schedule="static", num_threads=num_threads):
        bad += _backward_plane(gop + p * n_out, ip + p * n_out, gip + p * plane, H, W, OH, OW, cells)
    return bad


def max_pool2d_backward(cnp.ndarray grad_output not None, cnp.ndarray indices not None,
                        cnp.ndarray grad_input not None, int num_threads):
    """Scatter-add ``grad_output`` into ``grad_input`` (overwritten) by plane.

    C-contiguous native-order arrays with the same leading axes:
    ``grad_output`` and ``indices`` (int64, or int32) (..., OH, OW),
    ``grad_input`` (..., H, W) of ``grad_output``'s float type.
    Returns the number of indices outside ``[-1, H*W)``; those are skipped,
    and the caller must treat a non-zero count as an error. Parallel over
    planes: each thread owns whole planes, so no atomics are needed.
    """
    cdef int t = _float_type(grad_output, "grad_output")
    cdef int ib = _index_bytes(indices)
    cdef int nd = cnp.PyArray_NDIM(grad_output)
    if not (_planes(grad_output, t, False) and _planes(grad_input, t, True)
            and cnp.PyArray_NDIM(grad_input) == nd):
        raise ValueError("max_pool2d_backward needs C-contiguous native-order grad_output and grad_input "
                         "of grad_output's dtype, with the same number of axes")
    cdef Py_ssize_t OH = cnp.PyArray_DIM(grad_output, nd - 2), OW = cnp.PyArray_DIM(grad_output, nd - 1)
    cdef Py_ssize_t H = cnp.PyArray_DIM(grad_input, nd - 2), W = cnp.PyArray_DIM(grad_input, nd - 1)
    if not (_same_planes(grad_output, grad_input, H, W) and _planes(indices, cnp.PyArray_TYPE(indices), False)
            and _same_planes(grad_output, indices, OH, OW)):
        raise ValueError("max_pool2d_backward needs (..., OH, OW) indices like grad_output and a "
                         "(..., H, W) grad_input with the same leading axes")
    cdef Py_ssize_t P = _n_planes(grad_output)
    cdef const void* gop = cnp.PyArray_DATA(grad_output)
    cdef const void* ip = cnp.PyArray_DATA(indices)
    cdef void* gip = cnp.PyArray_DATA(grad_input)
    if t == cnp.NPY_FLOAT32:
        if ib == 4:
            return _backward_run(<const float*>gop, <const int32_t*>ip, <float*>gip, P, H, W, OH, OW, num_threads)
        return _backward_run(<const float*>gop, <const int64_t*>ip, <float*>gip, P, H, W, OH, OW, num_threads)
    if ib == 4:
        return _backward_run(<const double*>gop, <const int32_t*>ip, <double*>gip, P, H, W, OH, OW, num_threads)
    return _backward_run(<const double*>gop, <const int64_t*>ip, <double*>gip, P, H, W, OH, OW, num_threads)
