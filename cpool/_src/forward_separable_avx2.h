/* AVX2 separable forward kernel for float32 planes whose windows overlap
 * vertically (row stride below the dilated kernel height, e.g. the ResNet
 * stem's 3x3 stride 2 padding 1), values only or with int32 / int64 indices.
 *
 * PyTorch's fold over a window in row-major order is associative, so it
 * equals folding each window row on its own (seeded by its first in-bounds
 * tap) and then folding the rows' results in order: the same tap wins,
 * with the same value bits and index. The row folds depend only on the
 * input row and the output column, so each input row's horizontal folds are
 * computed once, into a buffer, and then shared by every output row whose
 * windows contain that input row (kh / sh of them: 1.5 for k3 s2), where
 * the direct kernel of forward_avx2.h redoes them per output row. The
 * vertical fold then reads the buffer with plain contiguous loads.
 *
 * The buffer holds, per input row, OW values and (with indices) OW int32
 * plane offsets of the row winners; a column whose taps all fall in the
 * padding (dilation only) holds -inf and -1 in every row, which the
 * vertical fold leaves as -inf and -1. Rows are buffered for a group of
 * output rows at a time, at most CPOOL_SEP_BUFFER bytes.
 */
#ifndef CPOOL_FORWARD_SEPARABLE_AVX2_H
#define CPOOL_FORWARD_SEPARABLE_AVX2_H

#include <stdlib.h>

#include "common.h"
#include "forward_avx2.h"

#define CPOOL_SEP_BUFFER ((Py_ssize_t)1 << 20)
#define CPOOL_SEP_AHEAD ((Py_ssize_t)64 << 10)  /* the largest plane (bytes) whose successor is prefetched */

#if defined(__AVX2__)
#define CPOOL_HAVE_FORWARD_SEPARABLE_AVX2 1

/* Whether the separable kernel applies: column stride 1 or 2, windows that
   overlap vertically, rows of at least one vector of outputs, and a buffer
   of one window's rows that fits. */
static int cpool_separable_applies(const cpool_geometry *g)
{
    Py_ssize_t span = (g->kh - 1) * g->dh + 1;
    return (g->sw == 1 || g->sw == 2) && g->sh < span && g->OW >= 8 && g->kw >= 2
        && span * g->OW * 8 <= CPOOL_SEP_BUFFER && cpool_plane_fits_int32(g);
}

/* One output column of a row fold, one tap at a time: taps j0 .. j1 - 1
   (at least one) of the window starting at column col0 of `row`, whose
   first element is at plane offset `base`. Seeded by the first tap, then
   folded without a branch: which tap wins is data, and a branch on it
   mispredicts. */
static CPOOL_ALWAYS_INLINE void cpool_sep_fold_taps(const float *row, Py_ssize_t base, Py_ssize_t col0, Py_ssize_t j0,
                                                    Py_ssize_t j1, Py_ssize_t dw, float *hv, int32_t *hx)
{
    float best = row[col0 + j0 * dw];
    int32_t chosen = (int32_t)(base + col0 + j0 * dw);
    Py_ssize_t j;
    for (j = j0 + 1; j < j1; j++) {
        const float v = row[col0 + j * dw];
        const int take = (v > best) | (v != v);
        best = take ? v : best;
        chosen = take ? (int32_t)(base + col0 + j * dw) : chosen;
    }
    *hv = best;
    if (hx)
        *hx = chosen;
}

/* AVX-512, values only, 3x3 undilated windows (the ResNet stem's): 16 outputs
   a vector, the NaN test straight into a mask register. With a target
   attribute and chosen at run time (cpool_forward_separable_avx2's
   `avx512`), so the module still runs on any AVX2 CPU. Not always_inline:
   the AVX2 copies of the callers hold calls to these in branches that are
   never taken, which must compile without AVX-512. */
#if CPOOL_X86_CPU_CHECKS
#define CPOOL_SEP_WIDE 1

/* cpool_fold8 on 16 lanes: "v > best ? v : best" (MAXPS), then v where v is NaN. */
CPOOL_TARGET_AVX512
static inline __m512 cpool_fold16(__m512 best, __m512 v)
{
    return _mm512_mask_mov_ps(_mm512_max_ps(v, best), _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
}

/* The row folds of interior columns [lo, hi) (hi - lo >= 16) of `row`, 3 taps
   each, column stride sw (1 or 2). For sw 2 the three taps of 16 outputs
   span 33 floats, read as [0, 16), [16, 32) and [17, 33): the even and odd
   lanes of the first two are taps 0 and 1, and tap 2 is tap 0 moved down a
   lane with float 32 (the third load's last) on top. */
CPOOL_TARGET_AVX512
static inline void cpool_sep_interior16(const float *row, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t pw, float *hv,
                                        Py_ssize_t sw)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i down = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 31);
    const Py_ssize_t last = hi - 16;
    Py_ssize_t c;
    for (c = lo;; c += 16) {
        if (c > last)
            c = last;  /* overlaps the vector before: same windows, same results */
        {
            const float *src = row + c * sw - pw;
            __m512 t0, t1, t2;
            if (sw == 1) {
                t0 = _mm512_loadu_ps(src);
                t1 = _mm512_loadu_ps(src + 1);
                t2 = _mm512_loadu_ps(src + 2);
            } else {
                const __m512 a = _mm512_loadu_ps(src), b = _mm512_loadu_ps(src + 16);
                t0 = _mm512_permutex2var_ps(a, even, b);
                t1 = _mm512_permutex2var_ps(a, odd, b);
                t2 = _mm512_permutex2var_ps(t0, down, _mm512_loadu_ps(src + 17));
            }
            _mm512_storeu_ps(hv + c, cpool_fold16(cpool_fold16(t0, t1), t2));
        }
        if (c == last)
            break;
    }
}

/* cpool_sep_fold_rows on 16 lanes, values only (OW >= 16). */
CPOOL_TARGET_AVX512
static inline void cpool_sep_fold_rows16(const float *hv, Py_ssize_t n, Py_ssize_t stride, Py_ssize_t OW, float *o)
{
    Py_ssize_t c, i;
    for (c = 0;; c += 16) {
        if (c + 16 > OW)
            c = OW - 16;  /* overlaps the vector before: same results */
        {
            __m512 best = _mm512_loadu_ps(hv + c);
            for (i = 1; i < n; i++)
                best = cpool_fold16(best, _mm512_loadu_ps(hv + i * stride + c));
            _mm512_storeu_ps(o + c, best);
        }
        if (c + 16 == OW)
            break;
    }
}
#else
#define CPOOL_SEP_WIDE 0
static inline void cpool_sep_interior16(const float *row, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t pw, float *hv,
                                        Py_ssize_t sw)
{
    (void)row; (void)lo; (void)hi; (void)pw; (void)hv; (void)sw;
}
static inline void cpool_sep_fold_rows16(const float *hv, Py_ssize_t n, Py_ssize_t stride, Py_ssize_t OW, float *o)
{
    (void)hv; (void)n; (void)stride; (void)OW; (void)o;
}
#endif

/* The horizontal folds of plane row ih into hv / hx (hx NULL: values only).
   KW, DW: the kernel width and column dilation when they are constants worth
   their own copy (the tap offsets then fold into the loads), else 0. wide:
   the AVX-512 interior (values only, KW 3, DW 1). */
static CPOOL_ALWAYS_INLINE void cpool_sep_row(const float *plane, Py_ssize_t ih, const cpool_geometry *g,
                                              Py_ssize_t lo, Py_ssize_t hi, float *hv, int32_t *hx,
                                              const Py_ssize_t sw, const Py_ssize_t KW, const Py_ssize_t DW,
                                              const int wide)
{
    const Py_ssize_t W = g->W, kw = KW ? KW : g->kw, dw = DW ? DW : g->dw;
    const float *row = plane + ih * W;
    const __m256i lanes = sw == 1 ? _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
                                  : _mm256_setr_epi32(0, 2, 8, 10, 4, 6, 12, 14);
    const __m256i step = _mm256_set1_epi32((int32_t)dw);
    Py_ssize_t c, j;
    /* Border columns (a tap in the padding), one at a time. */
    for (c = 0; c < g->OW; c++) {
        if (c == lo)
            c = hi > lo ? hi : lo;
        if (c >= g->OW)
            break;
        {
            const Py_ssize_t col0 = c * sw - g->pw;
            Py_ssize_t j0, j1;
            cpool_tap_range(col0, kw, dw, W, &j0, &j1);
            if (j0 < j1) {
                cpool_sep_fold_taps(row, ih * W, col0, j0, j1, dw, hv + c, hx ? hx + c : NULL);
            } else {  /* every tap in the padding (dilation only) */
                hv[c] = -INFINITY;
                if (hx)
                    hx[c] = -1;
            }
        }
    }
    if (wide && hi - lo >= 16) {
        cpool_sep_interior16(row, lo, hi, g->pw, hv, sw);
        return;
    }
    if (hi - lo < 8) {  /* too few interior columns for a vector: the same fold, one at a time */
        for (c = lo; c < hi; c++)
            cpool_sep_fold_taps(row, ih * W, c * sw - g->pw, 0, kw, dw, hv + c, hx ? hx + c : NULL);
        return;
    }
    {
        /* The interior vectors walk pointers, so a step costs one add. */
        const Py_ssize_t last = hi - 8;
        const float *src = row + lo * sw - g->pw;
        __m256i first_tap = _mm256_add_epi32(_mm256_set1_epi32((int32_t)(ih * W + lo * sw - g->pw)), lanes);
        const __m256i vector_step = _mm256_set1_epi32((int32_t)(8 * sw));
        for (c = lo;; c += 8) {
            if (c > last) {  /* overlaps the vector before: same windows, same results */
                src -= (c - last) * sw;
                first_tap = _mm256_sub_epi32(first_tap, _mm256_set1_epi32((int32_t)((c - last) * sw)));
                c = last;
            }
            {
                __m256 best = cpool_tap8(src, 0, sw);
                __m256i tap = first_tap, chosen = first_tap;
                for (j = 1; j < kw; j++) {
                    __m256 v = cpool_tap8(src, j * dw, sw);
                    if (!hx) {
                        best = cpool_fold8(best, v);
                    } else {
                        __m256 take = cpool_takes8(v, best);
                        tap = _mm256_add_epi32(tap, step);
                        best = _mm256_blendv_ps(best, v, take);
                        chosen = _mm256_blendv_epi8(chosen, tap, _mm256_castps_si256(take));
                    }
                }
                if (sw == 2) {
                    best = cpool_unsplit_ps(best);
                    if (hx)
                        chosen = cpool_unsplit_epi32(chosen);
                }
                _mm256_storeu_ps(hv + c, best);
                if (hx)
                    _mm256_storeu_si256((__m256i *)(hx + c), chosen);
            }
            if (c == last)
                break;
            src += 8 * sw;
            first_tap = _mm256_add_epi32(first_tap, vector_step);
        }
    }
}

/* Asks for `bytes` bytes from `ahead` bytes past `at` in L2. The kernel reads its input one plane
   at a time and writes its output rows in turn, two sequential streams
   that the hardware prefetchers alone leave waiting on memory: prefetching
   the next plane's rows as this plane's are folded made the ResNet stem
   (32x64x112x112, 1 thread, on a 2-core Xeon) about 20% faster, the output
   rows' part of it included. Planes over CPOOL_SEP_AHEAD bytes (224x224,
   512x512) measured 2-12% slower with it (their long rows the hardware
   prefetchers follow): they go without. A prefetch past the end of an array is
   harmless: it never faults (the address is formed as an integer, so no
   pointer runs past its array either). */
static CPOOL_ALWAYS_INLINE void cpool_sep_prefetch(const void *at, Py_ssize_t ahead, Py_ssize_t bytes)
{
    uintptr_t b = (uintptr_t)at + (uintptr_t)ahead;
    const uintptr_t end = b + (uintptr_t)bytes;
    for (; b < end; b += 64)
        _mm_prefetch((const char *)b, _MM_HINT_T1);
}

/* Folds n buffered rows, `stride` floats apart from hv / hx, into one output
   row of OW values (and their indices, at output offset `at`). n is a
   constant where the caller can make it one. */
static CPOOL_ALWAYS_INLINE void cpool_sep_fold_rows(const float *hv, const int32_t *hx, const Py_ssize_t n,
                                                    Py_ssize_t stride, Py_ssize_t OW, float *o, int32_t *i32,
                                                    int64_t *i64, Py_ssize_t at)
{
    Py_ssize_t c, i;
    for (c = 0;; c += 8) {
        if (c + 8 > OW)
            c = OW - 8;  /* overlaps the vector before: same results */
        {
            __m256 best = _mm256_loadu_ps(hv + c);
            __m256i chosen = hx ? _mm256_loadu_si256((const __m256i *)(hx + c)) : _mm256_setzero_si256();
            for (i = 1; i < n; i++) {
                __m256 v = _mm256_loadu_ps(hv + i * stride + c);
                if (!hx) {
                    best = cpool_fold8(best, v);
                } else {
                    __m256 take = cpool_takes8(v, best);
                    best = _mm256_blendv_ps(best, v, take);
                    chosen = _mm256_blendv_epi8(chosen, _mm256_loadu_si256((const __m256i *)(hx + i * stride + c)),
                                                _mm256_castps_si256(take));
                }
            }
            _mm256_storeu_ps(o + c, best);
            if (hx)
                cpool_store_index8(i32, i64, at + c, chosen);
        }
        if (c + 8 == OW)
            break;
    }
}

/* Output row oh of a plane from the buffered rows: row ih is at buffer row
   ih - first. KH: the kernel height when it is a constant worth its own
   copy, else 0. wide: the AVX-512 fold (values only). */
static CPOOL_ALWAYS_INLINE void cpool_sep_column(const float *hv, const int32_t *hx, Py_ssize_t first, Py_ssize_t oh,
                                                 const cpool_geometry *g, float *o, int32_t *i32, int64_t *i64,
                                                 Py_ssize_t at, const Py_ssize_t KH, const int wide)
{
    const Py_ssize_t OW = g->OW, top = oh * g->sh - g->ph, kh = KH ? KH : g->kh, stride = g->dh * OW;
    Py_ssize_t i0, i1, c, r;
    i0 = top >= 0 ? 0 : (-top + g->dh - 1) / g->dh;
    i1 = top + (kh - 1) * g->dh < g->H ? kh : (g->H - 1 - top) / g->dh + 1;
    if (i1 <= i0) {  /* no window row inside the plane (dilation only): -inf, index -1 */
        for (c = 0; c < OW; c++) {
            o[c] = -INFINITY;
            cpool_store_index(i32, i64, at + c, -1);
        }
        return;
    }
    r = (top + i0 * g->dh - first) * OW;
    if (wide && OW >= 16)
        cpool_sep_fold_rows16(hv + r, i1 - i0, stride, OW, o);
    else if (i0 == 0 && i1 == kh)  /* every window row inside: a fixed trip count */
        cpool_sep_fold_rows(hv + r, hx ? hx + r : NULL, kh, stride, OW, o, i32, i64, at);
    else
        cpool_sep_fold_rows(hv + r, hx ? hx + r : NULL, i1 - i0, stride, OW, o, i32, i64, at);
}

static CPOOL_ALWAYS_INLINE void cpool_sep_rows(const float *x, float *out, int32_t *i32, int64_t *i64,
                                               Py_ssize_t r0, Py_ssize_t r1, const cpool_geometry *g,
                                               float *hv, int32_t *hx, Py_ssize_t buffer_rows,
                                               const Py_ssize_t sw, const Py_ssize_t K, const int wide)
{
    const Py_ssize_t OH = g->OH, OW = g->OW, span = (g->kh - 1) * g->dh + 1;
    /* Prefetch the next plane's rows as this one's are read and written,
       where planes are small (see cpool_sep_prefetch). */
    const Py_ssize_t in_plane = g->H * g->W, out_plane = OH * OW;
    const int ahead = in_plane * 4 <= CPOOL_SEP_AHEAD;
    Py_ssize_t lo, hi, r = r0;
    cpool_interior_columns(g, &lo, &hi);
    while (r < r1) {
        /* A group of output rows of one plane whose input rows fit the buffer. */
        const Py_ssize_t p = r / OH, oh0 = r - p * OH;
        Py_ssize_t oh1 = oh0 + 1 + (buffer_rows - span) / g->sh, oh, ih, first, last;
        const float *plane = x + p * g->H * g->W;
        if (oh1 > OH)
            oh1 = OH;
        if (oh1 - oh0 > r1 - r)
            oh1 = oh0 + (r1 - r);
        first = oh0 * g->sh - g->ph;
        first = first < 0 ? 0 : first;
        last = (oh1 - 1) * g->sh - g->ph + span;
        last = last > g->H ? g->H : last;
        for (ih = first; ih < last; ih++) {
            if (ahead)
                cpool_sep_prefetch(plane + ih * g->W, in_plane * 4, g->W * 4);
            cpool_sep_row(plane, ih, g, lo, hi, hv + (ih - first) * OW, hx ? hx + (ih - first) * OW : NULL, sw,
                          K, K ? 1 : 0, wide);
        }
        for (oh = oh0; oh < oh1; oh++) {
            float *o = out + (p * OH + oh) * OW;
            if (ahead) {
                cpool_sep_prefetch(o, out_plane * 4, OW * 4);
                if (i32)
                    cpool_sep_prefetch(i32 + (o - out), out_plane * 4, OW * 4);
                if (i64)
                    cpool_sep_prefetch(i64 + (o - out), out_plane * 8, OW * 8);
            }
            cpool_sep_column(hv, hx, first, oh, g, o, i32, i64, (p * OH + oh) * OW, K, wide);
        }
        r += oh1 - oh0;
    }
}

#if CPOOL_SEP_WIDE
/* The values-only 3x3 rows with the AVX-512 row and column folds. */
CPOOL_TARGET_AVX512
static void cpool_sep_values3_avx512(const float *x, float *out, Py_ssize_t r0, Py_ssize_t r1, const cpool_geometry *g,
                                     float *hv, Py_ssize_t buffer_rows, const Py_ssize_t sw)
{
    if (sw == 1)
        cpool_sep_rows(x, out, NULL, NULL, r0, r1, g, hv, NULL, buffer_rows, 1, 3, 1);
    else
        cpool_sep_rows(x, out, NULL, NULL, r0, r1, g, hv, NULL, buffer_rows, 2, 3, 1);
}
#endif

static CPOOL_ALWAYS_INLINE void cpool_sep_kinds(const float *x, float *out, int32_t *i32, int64_t *i64,
                                                Py_ssize_t r0, Py_ssize_t r1, const cpool_geometry *g, float *hv,
                                                int32_t *hx, Py_ssize_t buffer_rows, const Py_ssize_t sw,
                                                int avx512)
{
    /* Each index kind gets its own copy, so the pointer tests are constants;
       so does the 3x3 undilated window (the ResNet stem's), whose tap
       offsets and trip counts are then constants too. */
    const int square3 = g->kh == 3 && g->kw == 3 && g->dh == 1 && g->dw == 1;
#if CPOOL_SEP_WIDE
    if (!hx && square3 && avx512) {
        cpool_sep_values3_avx512(x, out, r0, r1, g, hv, buffer_rows, sw);
        return;
    }
#else
    (void)avx512;
#endif
    if (!hx) {
        if (square3)
            cpool_sep_rows(x, out, NULL, NULL, r0, r1, g, hv, NULL, buffer_rows, sw, 3, 0);
        else
            cpool_sep_rows(x, out, NULL, NULL, r0, r1, g, hv, NULL, buffer_rows, sw, 0, 0);
    } else if (i32) {
        if (square3)
            cpool_sep_rows(x, out, i32, NULL, r0, r1, g, hv, hx, buffer_rows, sw, 3, 0);
        else
            cpool_sep_rows(x, out, i32, NULL, r0, r1, g, hv, hx, buffer_rows, sw, 0, 0);
    } else {
        if (square3)
            cpool_sep_rows(x, out, NULL, i64, r0, r1, g, hv, hx, buffer_rows, sw, 3, 0);
        else
            cpool_sep_rows(x, out, NULL, i64, r0, r1, g, hv, hx, buffer_rows, sw, 0, 0);
    }
}

/* Output rows r0 .. r1 - 1 of planes of OH rows. Callers check
   cpool_separable_applies(); returns 0 (nothing written) if the buffer
   cannot be allocated. avx512: the CPU runs the AVX-512 subsets of
   cpool_cpu_has_avx512() and the ISA in use allows them. */
static int cpool_forward_separable_avx2(const float *x, float *out, int32_t *i32, int64_t *i64, Py_ssize_t r0,
                                        Py_ssize_t r1, cpool_geometry g, int avx512)
{
    const int with_idx = i32 != NULL || i64 != NULL;
    const Py_ssize_t row_bytes = g.OW * (Py_ssize_t)(with_idx ? 8 : 4);
    const Py_ssize_t span = (g.kh - 1) * g.dh + 1;
    Py_ssize_t buffer_rows = CPOOL_SEP_BUFFER / row_bytes;
    float *hv;
    int32_t *hx = NULL;
    if (buffer_rows > g.H + span)
        buffer_rows = g.H + span;
    if (buffer_rows < span)
        return 0;
    hv = (float *)malloc((size_t)(buffer_rows * row_bytes));
    if (!hv)
        return 0;
    if (with_idx)
        hx = (int32_t *)(hv + buffer_rows * g.OW);
    if (g.sw == 1)
        cpool_sep_kinds(x, out, i32, i64, r0, r1, &g, hv, hx, buffer_rows, 1, avx512);
    else
        cpool_sep_kinds(x, out, i32, i64, r0, r1, &g, hv, hx, buffer_rows, 2, avx512);
    free(hv);
    return 1;
}

#else
#define CPOOL_HAVE_FORWARD_SEPARABLE_AVX2 0
static int cpool_separable_applies(const cpool_geometry *g)
{
    (void)g;
    return 0;
}
static int cpool_forward_separable_avx2(const float *x, float *out, int32_t *i32, int64_t *i64, Py_ssize_t r0,
                                        Py_ssize_t r1, cpool_geometry g, int avx512)
{
    (void)x; (void)out; (void)i32; (void)i64; (void)r0; (void)r1; (void)g; (void)avx512;
    return 0;
}
#endif

#endif /* CPOOL_FORWARD_SEPARABLE_AVX2_H */
