/* AVX2 forward kernels for float32 planes, values only or with int32 /
 * int64 indices, that keep each output's running maximum and index in
 * registers (the portable loops of forward.pxi keep them in memory,
 * and spend more on per-row set-up than on the work when rows are short):
 *
 * - cpool_forward2x2_avx2: kernel 2, stride 2, no padding or dilation, every
 *   window complete (the MNIST case);
 * - cpool_forward_vec_avx2: any kernel, padding, dilation and row stride with
 *   column stride 1 or 2 (e.g. the ResNet stem's 3x3 stride 2 padding 1).
 *
 * Both fold the taps with PyTorch's rule, "take v if v > best or v is NaN",
 * in row-major window order. The rule is associative, so folding pairs of
 * taps first (as the 2x2 kernel does) selects the same tap, value bits and
 * index, as folding one tap after another.
 *
 * Stride-2 columns are split into even and odd with one shuffle per pair of
 * loads, which leaves the 8 windows of a vector in lane order 0 1 4 5 | 2 3
 * 6 7; one permute per result puts them back.
 *
 * Offsets are computed in 32-bit lanes: callers send only planes for which
 * cpool_plane_fits_int32() holds.
 */
#ifndef CPOOL_FORWARD_AVX2_H
#define CPOOL_FORWARD_AVX2_H

#include "common.h"

#if defined(__AVX2__)
#include <immintrin.h>
#define CPOOL_HAVE_FORWARD_AVX2 1

/* Store one index at at: into i32 or i64, whichever is not NULL (both
   NULL: values only, nothing stored). Each caller is inlined into an entry
   point that fixes which, so the tests cost nothing at run time. */
static CPOOL_ALWAYS_INLINE void cpool_store_index(int32_t *i32, int64_t *i64, Py_ssize_t at, Py_ssize_t value)
{
    if (i32)
        i32[at] = (int32_t)value;
    else if (i64)
        i64[at] = (int64_t)value;
}

/* Output (oh, ow) of `plane` one tap at a time, any geometry: the border
   windows and short rows of both kernels. A window with no in-bounds tap
   gets -inf and index -1. Kept out of line: inlined into the row loops it
   made the vector code around it measurably slower. */
static CPOOL_NOINLINE void cpool_window_one(const float *plane, const cpool_geometry *g, Py_ssize_t oh,
                                                 Py_ssize_t ow, float *o, int32_t *i32, int64_t *i64, Py_ssize_t at)
{
    float best = -INFINITY, v;
    const Py_ssize_t top = oh * g->sh - g->ph, left = ow * g->sw - g->pw;
    Py_ssize_t i, j, ih, iw, i0, i1, j0, j1, chosen = -1;
    cpool_tap_range(top, g->kh, g->dh, g->H, &i0, &i1);
    cpool_tap_range(left, g->kw, g->dw, g->W, &j0, &j1);
    for (i = i0; i < i1; i++) {
        ih = top + i * g->dh;
        for (j = j0; j < j1; j++) {
            iw = left + j * g->dw;
            v = plane[ih * g->W + iw];
            /* PyTorch's rule; the first in-bounds tap seeds the window whatever its value */
            if (chosen < 0 || v > best || v != v) {
                best = v;
                chosen = ih * g->W + iw;
            }
        }
    }
    *o = best;
    cpool_store_index(i32, i64, at, chosen);
}

/* PyTorch's rule as a lane mask: v > best, or v is NaN. */
static CPOOL_ALWAYS_INLINE __m256 cpool_takes8(__m256 v, __m256 best)
{
    return _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

/* The same rule when only the value is wanted: MAXPS(v, best) is
   "v > best ? v : best", then a blend for a NaN v. */
static CPOOL_ALWAYS_INLINE __m256 cpool_fold8(__m256 best, __m256 v)
{
    return _mm256_blendv_ps(_mm256_max_ps(v, best), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

/* Undo the stride-2 shuffles' lane order (64-bit pairs 0 2 1 3). */
static CPOOL_ALWAYS_INLINE __m256 cpool_unsplit_ps(__m256 v)
{
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8));
}

static CPOOL_ALWAYS_INLINE __m256i cpool_unsplit_epi32(__m256i v)
{
    return _mm256_permute4x64_epi64(v, 0xD8);
}

/* Store 8 indices (32-bit lanes, in order) at at, widened for i64. */
static CPOOL_ALWAYS_INLINE void cpool_store_index8(int32_t *i32, int64_t *i64, Py_ssize_t at, __m256i ix)
{
    if (i32) {
        _mm256_storeu_si256((__m256i *)(i32 + at), ix);
    } else if (i64) {
        _mm256_storeu_si256((__m256i *)(i64 + at), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(ix)));
        _mm256_storeu_si256((__m256i *)(i64 + at + 4), _mm256_cvtepi32_epi64(_mm256_extracti128_si256(ix, 1)));
    }
}

/* ---- kernel 2, stride 2 ------------------------------------------------
 * A vector of 8 windows loads 16 floats of each of the two input rows.
 * Rows of OW >= 8 windows are done in vectors of 8, the last one
 * overlapping the one before, so nothing outside the row is read or
 * written. Rows of 4 to 7 windows take one vector that runs past the row
 * end: it reads into the next row pair (which exists: the block has a next
 * row) and writes up to 4 junk outputs at the start of the next output row,
 * which that row, done next, overwrites. The last row of a block, and rows
 * of fewer than 4 windows, are done one window at a time. */

/* 8 windows whose top-left taps are a[0], a[2], ..., a[14]: values to
   o[0..8), indices first + 2c + offset to index at. */
static CPOOL_ALWAYS_INLINE void cpool_forward2x2_8(const float *a, Py_ssize_t W, float *o, int32_t *i32,
                                                   int64_t *i64, Py_ssize_t at, int32_t first)
{
    __m256 t0 = _mm256_loadu_ps(a), t1 = _mm256_loadu_ps(a + 8);
    __m256 b0 = _mm256_loadu_ps(a + W), b1 = _mm256_loadu_ps(a + W + 8);
    __m256 te = _mm256_shuffle_ps(t0, t1, 0x88), to = _mm256_shuffle_ps(t0, t1, 0xDD);
    __m256 be = _mm256_shuffle_ps(b0, b1, 0x88), bo = _mm256_shuffle_ps(b0, b1, 0xDD);
    if (!i32 && !i64) {
        _mm256_storeu_ps(o, cpool_unsplit_ps(cpool_fold8(cpool_fold8(te, to), cpool_fold8(be, bo))));
        return;
    }
    __m256 k0 = cpool_takes8(to, te), k1 = cpool_takes8(bo, be);
    __m256 r0 = _mm256_blendv_ps(te, to, k0), r1 = _mm256_blendv_ps(be, bo, k1);
    __m256 k = cpool_takes8(r1, r0);
    const __m256i one = _mm256_set1_epi32(1);
    __m256i o0 = _mm256_and_si256(_mm256_castps_si256(k0), one);
    __m256i o1 = _mm256_add_epi32(_mm256_set1_epi32((int32_t)W), _mm256_and_si256(_mm256_castps_si256(k1), one));
    __m256i off = _mm256_blendv_epi8(o0, o1, _mm256_castps_si256(k));
    _mm256_storeu_ps(o, cpool_unsplit_ps(_mm256_blendv_ps(r0, r1, k)));
    cpool_store_index8(i32, i64, at,
                       _mm256_add_epi32(cpool_unsplit_epi32(off),
                                        _mm256_add_epi32(_mm256_set1_epi32(first),
                                                         _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14))));
}

/* Output rows [r0, r1) of planes of OH rows (row r is plane r / OH, row
   r % OH). Needs 2*OH <= H and 2*OW <= W. */
static CPOOL_ALWAYS_INLINE void cpool_forward2x2_rows(const float *x, float *out, int32_t *i32, int64_t *i64,
                                                      Py_ssize_t r0, Py_ssize_t r1, cpool_geometry g)
{
    const Py_ssize_t H = g.H, W = g.W, OH = g.OH, OW = g.OW;
    Py_ssize_t r, c, p = r0 / OH, oh = r0 - p * OH;
    for (r = r0; r < r1; r++) {
        const float *a = x + p * H * W + 2 * oh * W;
        float *o = out + r * OW;
        int32_t first = (int32_t)(2 * oh * W);
        if (OW >= 8) {
            for (c = 0;; c += 8) {
                if (c + 8 > OW)
                    c = OW - 8;  /* overlaps the vector before: same windows, same results */
                cpool_forward2x2_8(a + 2 * c, W, o + c, i32, i64, r * OW + c, first + (int32_t)(2 * c));
                if (c + 8 == OW)
                    break;
            }
        } else if (OW >= 4 && r + 1 < r1) {
            cpool_forward2x2_8(a, W, o, i32, i64, r * OW, first);
        } else {
            for (c = 0; c < OW; c++)
                cpool_window_one(x + p * H * W, &g, oh, c, o + c, i32, i64, r * OW + c);
        }
        if (++oh == OH) {
            oh = 0;
            p++;
        }
    }
}

/* ---- any kernel, column stride 1 or 2 -----------------------------------
 * A vector holds 8 adjacent outputs of one row; their running maximum and
 * index stay in registers while the taps are folded in window order. Tap
 * (i, j) of the 8 outputs is 8 loads at stride sw: one load for stride 1,
 * two overlapping loads and a shuffle for stride 2 (reading exactly the 15
 * floats spanned). Only "interior" columns, whose taps all lie inside the
 * row, are vectorised, in vectors of 8 with the last one overlapping; the
 * border columns (padding, ceil_mode's partial windows) and interiors
 * narrower than 8 go one window at a time. Window rows outside the plane
 * are skipped for all 8 outputs at once. */

/* Interior output columns [*lo, *hi): every tap of the window in [0, W). */
static CPOOL_ALWAYS_INLINE void cpool_interior_columns(const cpool_geometry *g, Py_ssize_t *lo, Py_ssize_t *hi)
{
    Py_ssize_t last = g->W - 1 + g->pw - (g->kw - 1) * g->dw;  /* largest ow*sw allowed */
    *lo = (g->pw + g->sw - 1) / g->sw;
    if (*lo > g->OW)
        *lo = g->OW;
    *hi = last < 0 ? 0 : last / g->sw + 1;
    if (*hi > g->OW)
        *hi = g->OW;
    if (*hi < *lo)
        *hi = *lo;
}

/* Tap j of a window row for 8 outputs: row[iw], row[iw + sw], ... (sw is 1
   or 2; for 2, in the shuffles' lane order). */
static CPOOL_ALWAYS_INLINE __m256 cpool_tap8(const float *row, Py_ssize_t iw, Py_ssize_t sw)
{
    if (sw == 1)
        return _mm256_loadu_ps(row + iw);
    /* even elements of row[iw .. iw+15): reads exactly the 15 floats spanned */
    return _mm256_shuffle_ps(_mm256_loadu_ps(row + iw), _mm256_loadu_ps(row + iw + 7), _MM_SHUFFLE(3, 1, 2, 0));
}

/* Outputs c..c+7 of output row oh, window rows [i0, i1) (all inside the
   plane, at least one). sw is 1 or 2 (a constant after inlining).
   Each window row is folded on its own, seeded with its first tap, and the
   rows are then folded in order: the same selection as one tap after
   another (the rule is associative, and a window's first tap seeds it as in
   PyTorch, where a -inf first tap keeps its index), but the rows' chains of
   dependent compares and blends are independent, so they overlap instead of
   adding up their latencies. */
static CPOOL_ALWAYS_INLINE void cpool_forward_vec8(const float *plane, const cpool_geometry *g, Py_ssize_t sw,
                                                   Py_ssize_t oh, Py_ssize_t c, Py_ssize_t i0, Py_ssize_t i1,
                                                   float *o, int32_t *i32, int64_t *i64, Py_ssize_t at)
{
    /* Plane offset of each lane's tap relative to lane 0's, in the lane
       order the loads leave. */
    const __m256i lanes = sw == 1 ? _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
                                  : _mm256_setr_epi32(0, 2, 8, 10, 4, 6, 12, 14);
    const __m256i step = _mm256_set1_epi32((int32_t)g->dw);
    const Py_ssize_t W = g->W, col0 = c * sw - g->pw;
    Py_ssize_t i, j;
    __m256 best = _mm256_setzero_ps();
    __m256i chosen = _mm256_setzero_si256();
    for (i = i0; i < i1; i++) {
        const Py_ssize_t ih = oh * g->sh - g->ph + i * g->dh;
        const float *row = plane + ih * W;
        __m256 rbest = cpool_tap8(row, col0, sw);
        __m256i tap = _mm256_add_epi32(_mm256_set1_epi32((int32_t)(ih * W + col0)), lanes);
        __m256i rchosen = tap;
        for (j = 1; j < g->kw; j++) {
            __m256 v = cpool_tap8(row, col0 + j * g->dw, sw);
            if (!i32 && !i64) {
                rbest = cpool_fold8(rbest, v);
            } else {
                __m256 take = cpool_takes8(v, rbest);
                tap = _mm256_add_epi32(tap, step);
                rbest = _mm256_blendv_ps(rbest, v, take);
                rchosen = _mm256_blendv_epi8(rchosen, tap, _mm256_castps_si256(take));
            }
        }
        if (i == i0) {
            best = rbest;
            chosen = rchosen;
        } else if (!i32 && !i64) {
            best = cpool_fold8(best, rbest);
        } else {
            __m256 take = cpool_takes8(rbest, best);
            best = _mm256_blendv_ps(best, rbest, take);
            chosen = _mm256_blendv_epi8(chosen, rchosen, _mm256_castps_si256(take));
        }
    }
    if (sw == 2) {
        best = cpool_unsplit_ps(best);
        chosen = cpool_unsplit_epi32(chosen);
    }
    _mm256_storeu_ps(o, best);
    cpool_store_index8(i32, i64, at, chosen);
}

static CPOOL_ALWAYS_INLINE void cpool_forward_vec_rows(const float *x, float *out, int32_t *i32, int64_t *i64,
                                                       Py_ssize_t r0, Py_ssize_t r1, cpool_geometry g,
                                                       Py_ssize_t sw)
{
    const Py_ssize_t OH = g.OH, OW = g.OW;
    Py_ssize_t r, c, i0, i1, lo, hi, p = r0 / OH, oh = r0 - p * OH;
    cpool_interior_columns(&g, &lo, &hi);
    for (r = r0; r < r1; r++) {
        const float *plane = x + p * g.H * g.W;
        float *o = out + r * OW;
        Py_ssize_t at = r * OW;
        /* Window rows inside the plane: i0 <= i < i1. */
        Py_ssize_t top = oh * g.sh - g.ph;
        i0 = top >= 0 ? 0 : (-top + g.dh - 1) / g.dh;
        if (top >= g.H)
            i1 = i0;  /* (PyTorch's output size rule never starts a window below the plane) */
        else
            i1 = top + (g.kh - 1) * g.dh < g.H ? g.kh : (g.H - 1 - top) / g.dh + 1;
        for (c = 0; c < lo; c++)
            cpool_window_one(plane, &g, oh, c, o + c, i32, i64, at + c);
        if (hi - lo >= 8 && i1 > i0) {
            for (c = lo;; c += 8) {
                if (c + 8 > hi)
                    c = hi - 8;  /* overlaps the vector before: same windows, same results */
                cpool_forward_vec8(plane, &g, sw, oh, c, i0, i1, o + c, i32, i64, at + c);
                if (c + 8 == hi)
                    break;
            }
        } else {
            for (c = lo; c < hi; c++)
                cpool_window_one(plane, &g, oh, c, o + c, i32, i64, at + c);
        }
        for (c = hi; c < OW; c++)
            cpool_window_one(plane, &g, oh, c, o + c, i32, i64, at + c);
        if (++oh == OH) {
            oh = 0;
            p++;
        }
    }
}

/* The entry points, one per kernel: i32 or i64 (the other NULL) receives
   the indices, both NULL means values only. Each output kind, and for the
   general kernel each column stride, is its own inlined copy, so the
   pointer tests and sw are constants inside the loops (the compiler knows
   i32 is not NULL inside `if (i32)`). */
static void cpool_forward2x2_avx2(const float *x, float *out, int32_t *i32, int64_t *i64, Py_ssize_t r0,
                                  Py_ssize_t r1, cpool_geometry g)
{
    if (i32)
        cpool_forward2x2_rows(x, out, i32, NULL, r0, r1, g);
    else if (i64)
        cpool_forward2x2_rows(x, out, NULL, i64, r0, r1, g);
    else
        cpool_forward2x2_rows(x, out, NULL, NULL, r0, r1, g);
}

static CPOOL_ALWAYS_INLINE void cpool_forward_vec_kinds(const float *x, float *out, int32_t *i32, int64_t *i64,
                                                        Py_ssize_t r0, Py_ssize_t r1, cpool_geometry g,
                                                        Py_ssize_t sw)
{
    if (i32)
        cpool_forward_vec_rows(x, out, i32, NULL, r0, r1, g, sw);
    else if (i64)
        cpool_forward_vec_rows(x, out, NULL, i64, r0, r1, g, sw);
    else
        cpool_forward_vec_rows(x, out, NULL, NULL, r0, r1, g, sw);
}

static void cpool_forward_vec_avx2(const float *x, float *out, int32_t *i32, int64_t *i64, Py_ssize_t r0,
                                   Py_ssize_t r1, cpool_geometry g)
{
    if (g.sw == 1)
        cpool_forward_vec_kinds(x, out, i32, i64, r0, r1, g, 1);
    else
        cpool_forward_vec_kinds(x, out, i32, i64, r0, r1, g, 2);
}

#else /* no AVX2: never called (CPOOL_HAVE_FORWARD_AVX2 is 0); kernels.pyx uses its portable loops */
#define CPOOL_HAVE_FORWARD_AVX2 0
static void cpool_forward2x2_avx2(const float *x, float *out, int32_t *i32, int64_t *i64, Py_ssize_t r0,
                                  Py_ssize_t r1, cpool_geometry g)
{
    (void)x; (void)out; (void)i32; (void)i64; (void)r0; (void)r1; (void)g;
}
static void cpool_forward_vec_avx2(const float *x, float *out, int32_t *i32, int64_t *i64, Py_ssize_t r0,
                                   Py_ssize_t r1, cpool_geometry g)
{
    (void)x; (void)out; (void)i32; (void)i64; (void)r0; (void)r1; (void)g;
}
#endif

#endif /* CPOOL_FORWARD_AVX2_H */
