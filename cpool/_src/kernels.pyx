"""cpool's compiled kernels: the extension's entry points.

Built by ``setup.py`` once per instruction-set variant from this one source
(``cpool._kernels`` for the platform's baseline; on x86-64 also
``cpool._kernels_avx2``, compiled with AVX2 and FMA). :mod:`cpool._compiled`
picks one at import and is the only caller: it has validated every argument
and passes C-contiguous, aligned, native-order (N, C, H, W) / (N, C, OH,
OW) arrays and freshly allocated outputs, so the kernels check nothing of their
own except the layout (through the typed memoryviews) and the range of each
index in the backward pass, which is untrusted user data.

Semantics are PyTorch's (``aten/src/ATen/native/cpu/MaxPoolKernel.cpp``):
taps are folded in row-major window order with "take ``v`` if ``v > best``
or ``v`` is NaN", so ties keep the first maximum and the last NaN wins; the
first in-bounds tap of a window seeds its index; padding is never selected.
A window with no in-bounds tap (only possible with dilation) yields -inf and
index -1. That fold is associative, so any grouping of consecutive taps gives
the same value, bits and index; it is not commutative, so taps are never
reordered.

Sources, read top-down: ``common.h`` (geometry struct, CPU and OpenMP
facts), ``forward.pxi`` (portable forward loops, the dispatch to
``forward_avx2.h`` / ``forward_separable_avx2.h`` and the threaded
driver), ``forward_nhwc.pxi`` (the
channels-last forward and its dispatch to ``forward_nhwc_avx2.h``),
``backward.pxi`` (zero-and-scatter, the dispatch to
``backward_cells.h`` and the threaded driver), ``backward_nhwc.pxi`` (the
channels-last backward and its dispatch to ``backward_nhwc_avx2.h``), then the entry points below. Each entry point
takes ``channels_last``: False for (N, C, H, W) memory, True for (N, H, W,
C) memory (inputs and outputs alike). Index width is the fused
``index_t`` throughout, and a typed pointer (``int32_t*`` / ``int64_t*``)
into C. The Cython directives are set for the whole extension in ``setup.py``.
"""

cimport cython
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdint cimport int32_t, int64_t, uint32_t
from libc.string cimport memset
from libc.math cimport INFINITY

# Index outputs: int64 (PyTorch's format) or int32 (MaxPool2d keeps these for
# its own backward when a plane has < 2**31 elements: half the memory traffic).
ctypedef fused index_t:
    int32_t
    int64_t


cdef extern from "common.h" nogil:
    ctypedef struct Geometry "cpool_geometry":
        Py_ssize_t kh, kw, sh, sw, ph, pw, dh, dw, H, W, OH, OW
    ctypedef struct Geometry3 "cpool_geometry3":
        Py_ssize_t kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw, D, H, W, OD, OH, OW
    const Py_ssize_t CPOOL_INT32_PLANE  # planes this large need 64-bit offsets
    bint cpool_plane_fits_int32(const Geometry* g)
    void cpool_tap_range(Py_ssize_t start, Py_ssize_t k, Py_ssize_t d, Py_ssize_t size,
                         Py_ssize_t* lo, Py_ssize_t* hi)
    bint cpool_kernel_oversized(const Geometry* g)
    Py_ssize_t cpool_adaptive_start(Py_ssize_t o, Py_ssize_t out_len, Py_ssize_t size)
    Py_ssize_t cpool_adaptive_end(Py_ssize_t o, Py_ssize_t out_len, Py_ssize_t size)
    const char* CPOOL_COMPILED_ISA
    enum: CPOOL_VEC_BYTES
    int cpool_cpu_has_avx2()
    int cpool_cpu_has_avx512()
    int cpool_openmp_enabled()
    int cpool_omp_max_threads()
    # A call's team on a busy machine (see "threads on a busy machine" in
    # common.h for the protocol every parallel runner follows).
    ctypedef struct Team "cpool_team":
        pass
    enum: CPOOL_CHUNKS_PER_THREAD  # the most chunks a team's region has, per member
    enum: CPOOL_MAX_TEAM
    int cpool_team_threads(int n_threads, Py_ssize_t units, bint adapt)
    Py_ssize_t cpool_team_open(Team* team, int n, Py_ssize_t units, bint adapt)
    double cpool_team_enter(Team* team, Py_ssize_t c)
    void cpool_team_leave(Team* team, double t0)
    void cpool_team_close(const Team* team)
    int64_t cpool_solo_until_us
    int64_t cpool_solo_period_us
    int64_t cpool_now_us()

cdef extern from "forward_avx2.h" nogil:
    enum: CPOOL_HAVE_FORWARD_AVX2
    void cpool_forward2x2_avx2(const float* x, float* out, int32_t* i32, int64_t* i64,
                               Py_ssize_t r0, Py_ssize_t r1, Geometry g)
    void cpool_forward_vec_avx2(const float* x, float* out, int32_t* i32, int64_t* i64,
                                Py_ssize_t r0, Py_ssize_t r1, Geometry g)

cdef extern from "forward_separable_avx2.h" nogil:
    bint cpool_separable_applies(const Geometry* g)
    bint cpool_forward_separable_avx2(const float* x, float* out, int32_t* i32, int64_t* i64,
                                      Py_ssize_t r0, Py_ssize_t r1, Geometry g, int avx512)

cdef extern from "forward_slabs_avx2.h" nogil:
    enum: CPOOL_HAVE_FORWARD_SLABS_AVX2
    bint cpool_slabs_apply(const Geometry* g, int is_2x2)
    bint cpool_forward_slabs_avx2(const float* x, float* out, int32_t* i32, int64_t* i64,
                                  Py_ssize_t p0, Py_ssize_t p1, Geometry g)

cdef extern from "forward_nhwc_avx2.h" nogil:
    enum: CPOOL_HAVE_FORWARD_NHWC_AVX2
    void cpool_forward_nhwc_avx2(const float* x, float* out, int32_t* i32, int64_t* i64,
                                 Py_ssize_t r0, Py_ssize_t r1, Geometry g, Py_ssize_t C)

cdef extern from "backward_nhwc_avx2.h" nogil:
    enum: CPOOL_HAVE_BACKWARD_NHWC_AVX2
    bint cpool_nhwc_cells_row_avx2(const float* go, const int32_t* i32, const int64_t* i64, float* gi,
                                   Py_ssize_t oh, Py_ssize_t W, Py_ssize_t OW, Py_ssize_t C, Py_ssize_t c0,
                                   Py_ssize_t c1)

cdef extern from "avg_avx2.h" nogil:
    enum: CPOOL_HAVE_AVG_AVX2
    bint cpool_avg_rows_avx2(const float* x, float* out, Py_ssize_t r0, Py_ssize_t r1, Geometry g, int incl,
                             int override, int64_t divisor)
    bint cpool_avg_rows_nhwc_avx2(const float* x, float* out, Py_ssize_t r0, Py_ssize_t r1, Geometry g,
                                  Py_ssize_t C, int incl, int override, int64_t divisor)
    bint cpool_avg3d_rows_avx2(const float* x, float* out, Py_ssize_t r0, Py_ssize_t r1, Geometry3 g,
                               int incl, int override, int64_t divisor)
    void cpool_avg_backward_images_avx2(const float* go, float* gi, Py_ssize_t n0, Py_ssize_t n1, Geometry g,
                                        Py_ssize_t C, int incl, int override, int64_t divisor)
    bint cpool_avg_backward_planes_avx2(const float* go, float* gi, Py_ssize_t p0, Py_ssize_t p1, Geometry g,
                                        int incl, int override, int64_t divisor)
    void cpool_avg3d_share_row_s2_avx2(float* buf, const float* s, Py_ssize_t OW, Py_ssize_t kw, bint fresh,
                                       Py_ssize_t n)

cdef extern from "avg_slabs_avx2.h" nogil:
    enum: CPOOL_HAVE_AVG_SLABS_AVX2
    bint cpool_avg_slabs_apply(const Geometry* g)
    bint cpool_avg_backward_slabs_apply(const Geometry* g)
    bint cpool_avg_slabs_run(const float* src, float* out, Py_ssize_t p0, Py_ssize_t p1, Geometry g, int incl,
                             int override, int64_t divisor, int backward)

cdef extern from "adaptive_max_avx2.h" nogil:
    enum: CPOOL_HAVE_ADAPTIVE_MAX_AVX2
    void cpool_adaptive_max_nhwc_avx2(const float* x, float* out, int64_t* i64, Py_ssize_t r0, Py_ssize_t r1,
                                      Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t C)
    bint cpool_adaptive_max_slabs_apply(Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)
    bint cpool_adaptive_max_slabs_avx2(const float* x, float* out, int64_t* i64, Py_ssize_t p0, Py_ssize_t p1,
                                       Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)

cdef extern from "backward_cells.h" nogil:
    enum: CPOOL_HAVE_CELLS
    enum: CPOOL_HAVE_CELLS_AVX512
    enum: CPOOL_CELLS_MIN_OW
    bint cpool_cells_plane(const float* go, const int32_t* i32, const int64_t* i64, float* gi,
                           Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, int avx512)


# The instruction set in use within this module: the cell writer and the
# values-only 3x3 separable forward have a choice at run time (AVX-512 on
# top of AVX2); set_isa() sets it.
cdef int _avx512 = 0

# A 3-D pooling problem from its Python description (both 3-D kernels take it).
cdef inline Geometry3 _geometry3(object geometry) except *:
    # Pool3dGeometry is a NamedTuple in cpool_geometry3's field order.
    if not (isinstance(geometry, tuple) and len(<tuple>geometry) == 18):
        raise TypeError("geometry must be a cpool._validation.Pool3dGeometry")
    cdef tuple t = <tuple>geometry
    cdef Geometry3 g
    (g.kd, g.kh, g.kw, g.sd, g.sh, g.sw, g.pd, g.ph, g.pw, g.dd, g.dh, g.dw,
     g.D, g.H, g.W, g.OD, g.OH, g.OW) = t
    return g


include "forward.pxi"
include "forward_nhwc.pxi"
include "backward.pxi"
include "backward_nhwc.pxi"
include "avg_forward.pxi"
include "avg_backward.pxi"
include "unpool.pxi"
include "adaptive_forward.pxi"
include "adaptive_backward.pxi"
include "max3d.pxi"
include "avg3d_forward.pxi"
include "avg3d_backward.pxi"
include "adaptive3d.pxi"


# ------------------------------------------------------------ module facts

#: Whether the kernels were built with OpenMP.
OPENMP = bool(cpool_openmp_enabled())

#: The instruction set this module was compiled for: "baseline" or "avx2".
COMPILED_ISA = CPOOL_COMPILED_ISA.decode("ascii")

#: The fields of a geometry, in the order the entry points read them
#: (cpool._validation.PoolGeometry has the same fields in the same order).
GEOMETRY_FIELDS = ("kh", "kw", "sh", "sw", "ph", "pw", "dh", "dw", "H", "W", "OH", "OW")


def omp_max_threads():
    """``omp_get_max_threads()``: honours OMP_NUM_THREADS and threadpoolctl."""
    return cpool_omp_max_threads()


def cpu_features():
    """The instruction sets this CPU and OS run, of those cpool has kernels for."""
    found = ["baseline"]
    if cpool_cpu_has_avx2():
        found.append("avx2")
        if cpool_cpu_has_avx512():
            found.append("avx512")
    return tuple(found)


def isas():
    """The instruction sets this module can run here, narrowest first.

    "baseline": the portable loops; "avx2": the AVX2 forward intrinsics and
    cell writer; "avx512": the same with the AVX-512 cell writer and 3x3
    separable forward (values only).
    """
    if COMPILED_ISA == "baseline":
        return ("baseline",)
    features = cpu_features()
    if "avx2" not in features:
        return ()
    if CPOOL_HAVE_CELLS_AVX512 and "avx512" in features:
        return ("avx2", "avx512")
    return ("avx2",)


def set_isa(str name):
    """Use instruction set ``name`` (one of :func:`isas`). Not thread-safe:
    :mod:`cpool._compiled` calls it at import, tests between calls."""
    global _avx512
    if name not in isas():
        raise ValueError(f"isa must be one of {isas()!r} for {__name__}, got isa={name!r}")
    _avx512 = 1 if name == "avx512" else 0


def get_isa():
    """The instruction set in use (see :func:`set_isa`)."""
    return "avx512" if _avx512 else COMPILED_ISA


def busy_backoff(bint reset=False):
    """``(seconds left, seconds in all)`` of the one-thread period the kernels
    are in after finding the machine busy; ``(0.0, 0.0)`` when teams run.
    ``reset``: end it now. For tests (see "threads on a busy machine" in
    common.h)."""
    global cpool_solo_until_us, cpool_solo_period_us
    if reset:
        cpool_solo_until_us = 0
        cpool_solo_period_us = 0
    return max(0, cpool_solo_until_us - cpool_now_us()) / 1e6, cpool_solo_period_us / 1e6


# ------------------------------------------------------------ entry points

cdef inline Geometry _geometry(object geometry) except *:
    # PoolGeometry is a NamedTuple in GEOMETRY_FIELDS order: positional reads
    # (a tuple subclass, so not an exact `tuple` argument).
    if not (isinstance(geometry, tuple) and len(<tuple>geometry) == 12):
        raise TypeError("geometry must be a cpool._validation.PoolGeometry")
    cdef tuple t = <tuple>geometry
    cdef Geometry g
    g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.H, g.W, g.OH, g.OW = t
    return g


def max_pool2d_forward_into(const floating[:, :, :, ::1] x not None, floating[:, :, :, ::1] out not None,
                            index_t[:, :, :, ::1] indices, object geometry, int n_threads, bint adapt=False,
                            bint channels_last=False):
    """Fill ``out`` (N, C, OH, OW) and, unless it is None, ``indices`` (the same shape).

    ``channels_last``: the arrays are (N, H, W, C) and (N, OH, OW, C)
    instead, channels-last memory; the indices have the same values
    (``h * W + w`` within each plane) in either layout.

    ``x`` is (N, C, H, W) (the adapter views 3-D input as N = 1: 4-D
    memoryviews need no reshape of the common 4-D case, which measured
    as much per call as acquiring the memoryviews themselves);
    ``geometry`` is a :class:`cpool._validation.PoolGeometry` checked
    against it. Returns False, with nothing written, for what these kernels
    do not do: indices on a plane of 2**31 or more elements off the 2x2
    stride-2 path (the caller uses the NumPy code there). Each fused
    specialisation is looked up once by :mod:`cpool._compiled`; a
    values-only call passes ``indices=None`` to the int64 one. ``adapt``:
    the team may shrink to one thread on a busy machine (see "threads on a
    busy machine" in common.h); off, ``n_threads`` is used as given.
    """
    cdef Geometry g = _geometry(geometry)
    cdef Py_ssize_t P = x.shape[0] * x.shape[1]
    cdef Py_ssize_t C = 0  # the kernels' layout switch: 0 for planes, the channel count for channels-last
    cdef index_t* ip = NULL
    cdef int d
    if channels_last:
        P = x.shape[0]
        C = x.shape[3]
        ok = (x.shape[1] == g.H and x.shape[2] == g.W and out.shape[0] == x.shape[0]
              and out.shape[1] == g.OH and out.shape[2] == g.OW and out.shape[3] == C)
    else:
        ok = (x.shape[2] == g.H and x.shape[3] == g.W and out.shape[0] == x.shape[0]
              and out.shape[1] == x.shape[1] and out.shape[2] == g.OH and out.shape[3] == g.OW)
    if not ok:
        raise ValueError("max_pool2d_forward_into: x and out must have the geometry's shapes in their layout")
    if indices is not None:
        for d in range(4):
            if indices.shape[d] != out.shape[d]:
                raise ValueError("max_pool2d_forward_into: indices must be shaped like out")
    if index_t is int32_t:
        if indices is not None and not cpool_plane_fits_int32(&g):
            raise ValueError("max_pool2d_forward_into: int32 indices need planes of fewer than 2**31 elements")
    if P == 0 or out.shape[3] == 0:
        return True
    if indices is not None:
        ip = &indices[0, 0, 0, 0]
    return _forward_run(&x[0, 0, 0, 0], &out[0, 0, 0, 0], ip, P, g, n_threads, adapt, C)


def max_pool2d_backward_into(const floating[:, :, :, ::1] grad_output not None,
                             const index_t[:, :, :, ::1] indices not None,
                             floating[:, :, :, ::1] grad_input not None, int n_threads, bint adapt=False,
                             bint channels_last=False):
    """Scatter-add ``grad_output`` (N, C, OH, OW) into ``grad_input`` (N, C, H, W), overwritten.

    ``n_threads`` and ``adapt`` as for :func:`max_pool2d_forward_into`;
    ``channels_last``: the arrays are (N, OH, OW, C) and (N, H, W, C).
    Returns the number of indices outside ``[-1, H*W)``: those are skipped,
    and the caller must treat a non-zero count as an error.
    """
    cdef Py_ssize_t P, C, OH, OW, H, W
    cdef int d
    if channels_last:
        P, OH, OW, C = grad_output.shape[0], grad_output.shape[1], grad_output.shape[2], grad_output.shape[3]
        H, W = grad_input.shape[1], grad_input.shape[2]
        lead = grad_input.shape[0] == P and grad_input.shape[3] == C
    else:
        P, C = grad_output.shape[0] * grad_output.shape[1], 0
        OH, OW = grad_output.shape[2], grad_output.shape[3]
        H, W = grad_input.shape[2], grad_input.shape[3]
        lead = grad_input.shape[0] == grad_output.shape[0] and grad_input.shape[1] == grad_output.shape[1]
    for d in range(4):
        if indices.shape[d] != grad_output.shape[d]:
            lead = False
    if not lead:
        raise ValueError("max_pool2d_backward_into: indices must be shaped like grad_output, "
                         "with grad_input's batch and channel axes")
    if P == 0 or H == 0 or W == 0 or (channels_last and C == 0):
        return 0
    if OH == 0 or OW == 0:
        memset(&grad_input[0, 0, 0, 0], 0, grad_input.shape[0] * grad_input.shape[1] * grad_input.shape[2]
               * grad_input.shape[3] * sizeof(floating))
        return 0
    return _backward_run(&grad_output[0, 0, 0, 0], &indices[0, 0, 0, 0], &grad_input[0, 0, 0, 0],
                         P, H, W, OH, OW, n_threads, adapt, C)


def cells_plane(const float[:, ::1] grad_output not None, const index_t[:, ::1] indices not None,
                float[:, ::1] grad_input not None):
    """Run the cell writer in use on one (OH, OW) plane; False if it gave up
    or does not apply (no writer, rows too short). For tests."""
    cdef Py_ssize_t OH = grad_output.shape[0], OW = grad_output.shape[1]
    cdef Py_ssize_t H = grad_input.shape[0], W = grad_input.shape[1]
    if indices.shape[0] != OH or indices.shape[1] != OW or OH == 0 or H < 2 * OH or W < 2 * OW:
        raise ValueError("cells_plane: grad_input must hold a 2x2 cell per grad_output element")
    if not _use_cells(H, W, OH, OW):
        return False
    return bool(_cells_plane(&grad_output[0, 0], &indices[0, 0], &grad_input[0, 0], H, W, OH, OW))


# ------------------------------------------------------------ average pooling

cdef inline int64_t _avg_override(object divisor_override, bint* override) except *:
    override[0] = divisor_override is not None
    return <int64_t>divisor_override if override[0] else 0


def avg_pool2d_forward_into(const floating[:, :, :, ::1] x not None, floating[:, :, :, ::1] out not None,
                            object geometry, bint count_include_pad, object divisor_override, int n_threads,
                            bint adapt=False, bint channels_last=False):
    """Fill ``out`` (N, C, OH, OW) with the window means of ``x`` (N, C, H, W),
    PyTorch's average pooling (``divisor_override``: None or a non-zero int).

    ``channels_last``: the arrays are (N, H, W, C) and (N, OH, OW, C).
    ``n_threads`` and ``adapt`` as for :func:`max_pool2d_forward_into`.
    """
    cdef Geometry g = _geometry(geometry)
    cdef bint override
    cdef int64_t divisor = _avg_override(divisor_override, &override)
    if channels_last:
        ok = (x.shape[1] == g.H and x.shape[2] == g.W and out.shape[0] == x.shape[0]
              and out.shape[1] == g.OH and out.shape[2] == g.OW and out.shape[3] == x.shape[3])
    else:
        ok = (x.shape[2] == g.H and x.shape[3] == g.W and out.shape[0] == x.shape[0]
              and out.shape[1] == x.shape[1] and out.shape[2] == g.OH and out.shape[3] == g.OW)
    if not ok:
        raise ValueError("avg_pool2d_forward_into: x and out must have the geometry's shapes in their layout")
    if x.shape[0] == 0 or x.shape[3] == 0 or out.shape[3] == 0:
        return
    if channels_last:
        _avg_forward_run(&x[0, 0, 0, 0], &out[0, 0, 0, 0], x.shape[0], g, x.shape[3], count_include_pad,
                         override, divisor, n_threads, adapt)
    else:
        _avg_forward_run(&x[0, 0, 0, 0], &out[0, 0, 0, 0], x.shape[0] * x.shape[1], g, 0, count_include_pad,
                         override, divisor, n_threads, adapt)


def avg_pool2d_backward_into(const floating[:, :, :, ::1] grad_output not None,
                             floating[:, :, :, ::1] grad_input not None, object geometry,
                             bint count_include_pad, object divisor_override, int n_threads,
                             bint adapt=False, bint channels_last=False):
    """Overwrite ``grad_input`` (N, C, H, W) with the gradient of average
    pooling for ``grad_output`` (N, C, OH, OW); ``n_threads``, ``adapt`` and
    ``channels_last`` as for :func:`avg_pool2d_forward_into`."""
    cdef Geometry g = _geometry(geometry)
    cdef bint override
    cdef int64_t divisor = _avg_override(divisor_override, &override)
    if channels_last:
        ok = (grad_input.shape[1] == g.H and grad_input.shape[2] == g.W and grad_output.shape[0] == grad_input.shape[0]
              and grad_output.shape[1] == g.OH and grad_output.shape[2] == g.OW
              and grad_output.shape[3] == grad_input.shape[3])
    else:
        ok = (grad_input.shape[2] == g.H and grad_input.shape[3] == g.W
              and grad_output.shape[0] == grad_input.shape[0] and grad_output.shape[1] == grad_input.shape[1]
              and grad_output.shape[2] == g.OH and grad_output.shape[3] == g.OW)
    if not ok:
        raise ValueError("avg_pool2d_backward_into: grad_output and grad_input must have the geometry's shapes")
    if grad_input.shape[0] == 0 or grad_input.shape[3] == 0:
        return
    if channels_last:
        _avg_backward_run(&grad_output[0, 0, 0, 0], &grad_input[0, 0, 0, 0], grad_input.shape[0], g,
                          grad_input.shape[3], count_include_pad, override, divisor, n_threads, adapt)
    else:
        _avg_backward_run(&grad_output[0, 0, 0, 0], &grad_input[0, 0, 0, 0],
                          grad_input.shape[0] * grad_input.shape[1], g, 0, count_include_pad, override, divisor,
                          n_threads, adapt)


# ------------------------------------------------------------ max unpooling

def max_unpool2d_forward_into(const floating[:, :, :, ::1] x not None, const int64_t[:, :, :, ::1] indices not None,
                              floating[:, :, :, ::1] out not None, int n_threads, bint adapt=False,
                              bint channels_last=False):
    """Fill ``out`` (N, C, OH, OW) with zeros and each value of ``x`` (N, C,
    H, W) at its index in its plane (PyTorch's max_unpool2d; a repeated
    index keeps the later value). ``channels_last``: (N, H, W, C) and (N,
    OH, OW, C); ``n_threads`` and ``adapt`` as for
    :func:`max_pool2d_forward_into`. Returns how many indices were outside
    the plane (skipped: the caller raises and discards ``out``)."""
    cdef Py_ssize_t N = x.shape[0], C, L, OL
    if indices.shape[0] != N or indices.shape[1] != x.shape[1] or indices.shape[2] != x.shape[2] \
            or indices.shape[3] != x.shape[3] or out.shape[0] != N:
        raise ValueError("max_unpool2d_forward_into: x, indices and out must agree")
    if channels_last:
        C, L, OL = x.shape[3], x.shape[1] * x.shape[2], out.shape[1] * out.shape[2]
        if out.shape[3] != C:
            raise ValueError("max_unpool2d_forward_into: out must have x's channels")
    else:
        C, L, OL = x.shape[1], x.shape[2] * x.shape[3], out.shape[2] * out.shape[3]
        if out.shape[1] != C:
            raise ValueError("max_unpool2d_forward_into: out must have x's channels")
    if N == 0 or C == 0:
        return 0
    if OL == 0:
        return N * C * L
    if channels_last:
        return _unpool_run(&x[0, 0, 0, 0], &indices[0, 0, 0, 0], &out[0, 0, 0, 0], N, L, OL, C, False,
                           n_threads, adapt)
    return _unpool_run(&x[0, 0, 0, 0], &indices[0, 0, 0, 0], &out[0, 0, 0, 0], N * C, L, OL, 0, False, n_threads,
                       adapt)


def max_unpool2d_backward_into(const floating[:, :, :, ::1] grad_output not None,
                               const int64_t[:, :, :, ::1] indices not None,
                               floating[:, :, :, ::1] grad_input not None, int n_threads, bint adapt=False,
                               bint channels_last=False):
    """Fill ``grad_input`` (``indices``' shape) with ``grad_output`` read at
    each index of its plane (0 for an index outside it); the other
    arguments and the return value as for :func:`max_unpool2d_forward_into`."""
    cdef Py_ssize_t N = grad_input.shape[0], C, L, OL
    if indices.shape[0] != N or indices.shape[1] != grad_input.shape[1] \
            or indices.shape[2] != grad_input.shape[2] or indices.shape[3] != grad_input.shape[3] \
            or grad_output.shape[0] != N:
        raise ValueError("max_unpool2d_backward_into: grad_output, indices and grad_input must agree")
    if channels_last:
        C, L, OL = grad_input.shape[3], grad_input.shape[1] * grad_input.shape[2], \
            grad_output.shape[1] * grad_output.shape[2]
        if grad_output.shape[3] != C:
            raise ValueError("max_unpool2d_backward_into: grad_output must have grad_input's channels")
    else:
        C, L, OL = grad_input.shape[1], grad_input.shape[2] * grad_input.shape[3], \
            grad_output.shape[2] * grad_output.shape[3]
        if grad_output.shape[1] != C:
            raise ValueError("max_unpool2d_backward_into: grad_output must have grad_input's channels")
    if N == 0 or C == 0 or L == 0:
        return 0
    if OL == 0:
        return N * C * L
    if channels_last:
        return _unpool_run(&grad_output[0, 0, 0, 0], &indices[0, 0, 0, 0], &grad_input[0, 0, 0, 0], N, L, OL, C,
                           True, n_threads, adapt)
    return _unpool_run(&grad_output[0, 0, 0, 0], &indices[0, 0, 0, 0], &grad_input[0, 0, 0, 0], N * C, L, OL, 0,
                       True, n_threads, adapt)
# ------------------------------------------------------------ adaptive pooling

def adaptive_pool2d_forward_into(const floating[:, :, :, ::1] x not None, floating[:, :, :, ::1] out not None,
                                 int64_t[:, :, :, ::1] indices, bint is_max, Py_ssize_t split, Py_ssize_t sse,
                                 bint vector_tap_first, int n_threads, bint adapt=False,
                                 bint channels_last=False):
    """Fill ``out`` (N, C, OH, OW) with the adaptive average (``is_max``
    False) or maximum of ``x`` (N, C, H, W), and ``indices`` (int64, may be
    None) with the maxima's positions; the output size is ``out``'s.
    ``n_threads`` and ``adapt`` as for :func:`max_pool2d_forward_into`.

    ``channels_last``: the arrays are (N, H, W, C) and (N, OH, OW, C), and
    the channels fall in torch's groups (``cpool.slow.channel_groups``):
    [0, split) vector lanes (their NaN rule ``vector_tap_first``), [split,
    sse) tail lanes keeping the tap's NaN, [sse, C) the running sum's.
    """
    cdef Py_ssize_t H, W, OH, OW
    cdef int64_t* idx = NULL
    if channels_last:
        H, W, OH, OW = x.shape[1], x.shape[2], out.shape[1], out.shape[2]
        ok = (out.shape[0] == x.shape[0] and out.shape[3] == x.shape[3]
              and 0 <= split <= sse <= x.shape[3])
    else:
        H, W, OH, OW = x.shape[2], x.shape[3], out.shape[2], out.shape[3]
        ok = out.shape[0] == x.shape[0] and out.shape[1] == x.shape[1]
    if indices is not None:
        ok = ok and all(indices.shape[d] == out.shape[d] for d in range(4))
    if not ok:
        raise ValueError("adaptive_pool2d_forward_into: x, out and indices disagree in their shapes")
    if out.size == 0 or H == 0 or W == 0:
        return
    if indices is not None:
        idx = &indices[0, 0, 0, 0]
    if channels_last:
        _ad_forward_run(&x[0, 0, 0, 0], &out[0, 0, 0, 0], idx, is_max, x.shape[0], H, W, OH, OW, x.shape[3],
                        split, sse, vector_tap_first, n_threads, adapt)
    else:
        _ad_forward_run(&x[0, 0, 0, 0], &out[0, 0, 0, 0], idx, is_max, x.shape[0] * x.shape[1], H, W, OH, OW, 0,
                        0, 0, False, n_threads, adapt)


def adaptive_avg_pool2d_backward_into(const floating[:, :, :, ::1] grad_output not None,
                                      floating[:, :, :, ::1] grad_input not None, Py_ssize_t split,
                                      int n_threads, bint adapt=False, bint channels_last=False):
    """Overwrite ``grad_input`` (N, C, H, W) with the gradient of adaptive
    average pooling for ``grad_output`` (N, C, OH, OW); the other arguments
    as for :func:`adaptive_pool2d_forward_into`."""
    cdef Py_ssize_t H, W, OH, OW
    if channels_last:
        H, W, OH, OW = grad_input.shape[1], grad_input.shape[2], grad_output.shape[1], grad_output.shape[2]
        ok = (grad_output.shape[0] == grad_input.shape[0] and grad_output.shape[3] == grad_input.shape[3]
              and 0 <= split <= grad_input.shape[3])
    else:
        H, W, OH, OW = grad_input.shape[2], grad_input.shape[3], grad_output.shape[2], grad_output.shape[3]
        ok = grad_output.shape[0] == grad_input.shape[0] and grad_output.shape[1] == grad_input.shape[1]
    if not ok:
        raise ValueError("adaptive_avg_pool2d_backward_into: grad_output and grad_input disagree in their shapes")
    if grad_input.size == 0:
        return
    if grad_output.size == 0:
        memset(&grad_input[0, 0, 0, 0], 0, grad_input.size * sizeof(floating))
        return
    if channels_last:
        _ad_backward_run(&grad_output[0, 0, 0, 0], &grad_input[0, 0, 0, 0], grad_input.shape[0], H, W, OH, OW,
                         grad_input.shape[3], split, n_threads, adapt)
    else:
        _ad_backward_run(&grad_output[0, 0, 0, 0], &grad_input[0, 0, 0, 0],
                         grad_input.shape[0] * grad_input.shape[1], H, W, OH, OW, 0, 0, n_threads, adapt)


# ------------------------------------------------------------ 3-D average pooling

cdef bint _avg3d_shapes_ok(const Py_ssize_t* x, const Py_ssize_t* o, Geometry3 g, bint channels_last):
    # x and o: the shapes (N, C, D, H, W) / (N, C, OD, OH, OW), or channels-last
    # (N, D, H, W, C) / (N, OD, OH, OW, C).
    if channels_last:
        return (x[1] == g.D and x[2] == g.H and x[3] == g.W and o[1] == g.OD and o[2] == g.OH
                and o[3] == g.OW and o[0] == x[0] and o[4] == x[4])
    return (x[2] == g.D and x[3] == g.H and x[4] == g.W and o[2] == g.OD and o[3] == g.OH
            and o[4] == g.OW and o[0] == x[0] and o[1] == x[1])


def avg_pool3d_forward_into(const floating[:, :, :, :, ::1] x not None, floating[:, :, :, :, ::1] out not None,
                            object geometry, bint count_include_pad, object divisor_override, int n_threads,
                            bint adapt=False, bint channels_last=False):
    """Fill ``out`` (N, C, OD, OH, OW) with the window means of ``x``
    (N, C, D, H, W), PyTorch's avg_pool3d (``divisor_override``: None or a
    non-zero int). ``channels_last``: the arrays are (N, D, H, W, C) and
    (N, OD, OH, OW, C); ``n_threads`` and ``adapt`` as for
    :func:`max_pool2d_forward_into`."""
    cdef Geometry3 g = _geometry3(geometry)
    cdef bint override
    cdef int64_t divisor = _avg_override(divisor_override, &override)
    if not _avg3d_shapes_ok(&x.shape[0], &out.shape[0], g, channels_last):
        raise ValueError("avg_pool3d_forward_into: x and out must have the geometry's shapes in their layout")
    if x.shape[0] == 0 or x.shape[4] == 0 or out.shape[4] == 0 or x.shape[1] == 0:
        return
    if channels_last:
        _avg3d_forward_run(&x[0, 0, 0, 0, 0], &out[0, 0, 0, 0, 0], x.shape[0], g, x.shape[4], count_include_pad,
                           override, divisor, n_threads, adapt)
    else:
        _avg3d_forward_run(&x[0, 0, 0, 0, 0], &out[0, 0, 0, 0, 0], x.shape[0] * x.shape[1], g, 0,
                           count_include_pad, override, divisor, n_threads, adapt)


def avg_pool3d_backward_into(const floating[:, :, :, :, ::1] grad_output not None,
                             floating[:, :, :, :, ::1] grad_input not None, object geometry,
                             bint count_include_pad, object divisor_override, int n_threads,
                             bint adapt=False, bint channels_last=False):
    """Overwrite ``grad_input`` (N, C, D, H, W) with the gradient of 3-D
    average pooling for ``grad_output`` (N, C, OD, OH, OW); ``n_threads``,
    ``adapt`` and ``channels_last`` as for :func:`avg_pool3d_forward_into`."""
    cdef Geometry3 g = _geometry3(geometry)
    cdef bint override
    cdef int64_t divisor = _avg_override(divisor_override, &override)
    cdef int rc
    if not _avg3d_shapes_ok(&grad_input.shape[0], &grad_output.shape[0], g, channels_last):
        raise ValueError("avg_pool3d_backward_into: grad_output and grad_input must have the geometry's shapes")
    if grad_input.shape[0] == 0 or grad_input.shape[1] == 0 or grad_input.shape[4] == 0:
        return
    if channels_last:
        rc = _avg3d_backward_run(&grad_output[0, 0, 0, 0, 0], &grad_input[0, 0, 0, 0, 0], grad_input.shape[0], 0,
                                 g, grad_input.shape[4], count_include_pad, override, divisor, n_threads, adapt)
    else:
        rc = _avg3d_backward_run(&grad_output[0, 0, 0, 0, 0], &grad_input[0, 0, 0, 0, 0], 0,
                                 grad_input.shape[0] * grad_input.shape[1], g, 0, count_include_pad, override,
                                 divisor, n_threads, adapt)
    if rc != 0:
        raise MemoryError("avg_pool3d_backward_into: no memory for the divisors and shares")


# ------------------------------------------------------------ 3-D adaptive pooling

def adaptive_pool3d_forward_into(const floating[:, :, :, :, ::1] x not None,
                                 floating[:, :, :, :, ::1] out not None, int64_t[:, :, :, :, ::1] indices,
                                 bint is_max, int n_threads, bint adapt=False, bint channels_last=False):
    """Fill ``out`` (N, C, OD, OH, OW) with the 3-D adaptive average
    (``is_max`` False) or maximum of ``x`` (N, C, D, H, W), and ``indices``
    (int64, may be None) with the maxima's positions ``(d * H + h) * W +
    w``; the output size is ``out``'s. ``channels_last``: the arrays are
    (N, D, H, W, C) and (N, OD, OH, OW, C); ``n_threads`` and ``adapt`` as
    for :func:`max_pool2d_forward_into`."""
    cdef _Vol3 v
    cdef int64_t* idx = NULL
    cdef Py_ssize_t a = 1 if channels_last else 2, c = 4 if channels_last else 1
    v.D, v.H, v.W = x.shape[a], x.shape[a + 1], x.shape[a + 2]
    v.OD, v.OH, v.OW = out.shape[a], out.shape[a + 1], out.shape[a + 2]
    ok = out.shape[0] == x.shape[0] and out.shape[c] == x.shape[c]
    if indices is not None:
        ok = ok and all(indices.shape[d] == out.shape[d] for d in range(5))
    if not ok:
        raise ValueError("adaptive_pool3d_forward_into: x, out and indices disagree in their shapes")
    if out.size == 0 or x.size == 0:
        return
    if indices is not None:
        idx = &indices[0, 0, 0, 0, 0]
    if channels_last:
        _ad3_run(&x[0, 0, 0, 0, 0], &out[0, 0, 0, 0, 0], idx, is_max, False, x.shape[0], &v, x.shape[4], n_threads,
                 adapt)
    else:
        _ad3_run(&x[0, 0, 0, 0, 0], &out[0, 0, 0, 0, 0], idx, is_max, False, x.shape[0] * x.shape[1], &v, 0,
                 n_threads, adapt)


def adaptive_avg_pool3d_backward_into(const floating[:, :, :, :, ::1] grad_output not None,
                                      floating[:, :, :, :, ::1] grad_input not None, int n_threads,
                                      bint adapt=False, bint channels_last=False):
    """Overwrite ``grad_input`` (N, C, D, H, W) with the gradient of 3-D
    adaptive average pooling for ``grad_output`` (N, C, OD, OH, OW);
    ``n_threads``, ``adapt`` and ``channels_last`` as for
    :func:`adaptive_pool3d_forward_into`."""
    cdef _Vol3 v
    cdef Py_ssize_t a = 1 if channels_last else 2, c = 4 if channels_last else 1
    v.D, v.H, v.W = grad_input.shape[a], grad_input.shape[a + 1], grad_input.shape[a + 2]
    v.OD, v.OH, v.OW = grad_output.shape[a], grad_output.shape[a + 1], grad_output.shape[a + 2]
    if not (grad_output.shape[0] == grad_input.shape[0] and grad_output.shape[c] == grad_input.shape[c]):
        raise ValueError("adaptive_avg_pool3d_backward_into: grad_output and grad_input disagree in their shapes")
    if grad_input.size == 0:
        return
    if grad_output.size == 0:
        memset(&grad_input[0, 0, 0, 0, 0], 0, grad_input.size * sizeof(floating))
        return
    if channels_last:
        _ad3_run(&grad_output[0, 0, 0, 0, 0], &grad_input[0, 0, 0, 0, 0], NULL, False, True, grad_input.shape[0],
                 &v, grad_input.shape[4], n_threads, adapt)
    else:
        _ad3_run(&grad_output[0, 0, 0, 0, 0], &grad_input[0, 0, 0, 0, 0], NULL, False, True,
                 grad_input.shape[0] * grad_input.shape[1], &v, 0, n_threads, adapt)


# ------------------------------------------------------------ index range checks

include "index_check.pxi"
