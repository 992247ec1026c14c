/* AVX2 average-pooling kernels for float32, forward and backward, planes
 * ((N, C, H, W) memory) and channels-last ((N, H, W, C) memory). They compute
 * exactly what avg_forward.pxi / avg_backward.pxi's portable loops compute
 * (read the rules there), bit for bit:
 *
 * - forward, planes: 8 output columns per vector (column stride 1 or 2; a
 *   stride-2 pair of loads gives two consecutive taps of 8 windows, even and
 *   odd elements), each window's taps added in row-major order from +0 in a
 *   register; the columns whose windows lie inside the row share one
 *   divisor. 3-D planes go the same way, a window's depth slices one after
 *   the other (cpool_avg3d_rows_avx2). Border columns go one window at a time. Rows of at most 8
 *   outputs go in one vector, border windows included: masked loads read
 *   each lane's in-bounds taps (the rest add +0.0), each lane its divisor. Any lane whose sum is
 *   NaN is summed again with the explicit NaN rule (cpool_avg_nan_sum), and
 *   `0 + mean` is stored.
 * - forward, channels-last: per output pixel, 32 (then 8) channels in
 *   registers, taps in row-major order, `tap + sum` with a blend that makes
 *   a NaN tap replace the sum (quieted: `tap + 0`) whatever order the
 *   compiler gives the add's operands, except in the last C % 4 channels
 *   (torch's scalar tail), where a NaN sum stays; the mean is stored. The
 *   next output row's window rows are prefetched, one pixel at a time.
 * - backward, channels-last: per output pixel, the shares of 32 (then 8)
 *   channels are divided once and added to each cell of the window, a NaN
 *   share replacing the cell's value.
 * - backward, planes: per output row and window row, for each window column
 *   j from kw - 1 down to 0, a pass over a chunk of interior output
 *   columns, whose shares are divided once into a buffer: stride 1 adds 8
 *   shares to 8 consecutive cells, stride 2 to 16 consecutive cells as
 *   (share, 0) pairs (a cell is never -0.0, so adding +0.0 changes no bit,
 *   and a NaN cell keeps its NaN; a partial last block adds +0.0 in its
 *   missing lanes). Each cell still receives its shares in output
 *   row-major order: the passes over j descending give ascending output
 *   columns, chunks go left to right, rows top to bottom. Border columns go
 *   one output at a time, before and after the chunks.
 */
#ifndef CPOOL_AVG_AVX2_H
#define CPOOL_AVG_AVX2_H

#include <string.h>
#include "common.h"

#if defined(__AVX2__)
#include <immintrin.h>
#define CPOOL_HAVE_AVG_AVX2 1

/* Window of output o along one axis: [lo, hi) in bounds; returns its
   length counting padding (never the ceil-mode overhang past size + p). */
static CPOOL_ALWAYS_INLINE Py_ssize_t cpool_avg_extent(Py_ssize_t o, Py_ssize_t k, Py_ssize_t s, Py_ssize_t p,
                                                       Py_ssize_t size, Py_ssize_t *lo, Py_ssize_t *hi)
{
    Py_ssize_t start = o * s - p;
    Py_ssize_t end = start + k < size + p ? start + k : size + p;
    *lo = start > 0 ? start : 0;
    *hi = end < size ? end : size;
    return end - start;
}

static CPOOL_ALWAYS_INLINE float cpool_avg_div(Py_ssize_t hp, Py_ssize_t wp, Py_ssize_t hn, Py_ssize_t wn,
                                               int incl, int override, int64_t divisor)
{
    if (override)
        return (float)divisor;
    if (incl)
        return (float)(int64_t)(hp * wp);
    return (float)(int64_t)(hn * wn);
}

/* A window whose sum is NaN, summed again with the NaN rule explicit: once
   the running sum is NaN it keeps that NaN. The window's rows [h0, h1) in
   nd depth slices (3-D pooling; 1 for planes) dstride floats apart, the
   first at `plane`. */
static CPOOL_NOINLINE float cpool_avg_nan_sum(const float *plane, Py_ssize_t nd, Py_ssize_t dstride,
                                              Py_ssize_t W, Py_ssize_t h0, Py_ssize_t h1, Py_ssize_t w0,
                                              Py_ssize_t w1)
{
    float total = 0.0f;
    Py_ssize_t t, ih, iw;
    for (t = 0; t < nd; t++)
        for (ih = h0; ih < h1; ih++)
            for (iw = w0; iw < w1; iw++) {
                if (total != total)
                    return total;
                total = total + plane[t * dstride + ih * W + iw];
            }
    return total;
}

/* One planes output, one tap at a time. */
/* One window, its rows as cpool_avg_nan_sum's; hp: the window's height
   with padding (times its depth with padding, 3-D). */
static CPOOL_NOINLINE void cpool_avg_window_one(const float *plane, Py_ssize_t nd, Py_ssize_t dstride,
                                                const cpool_geometry *g, Py_ssize_t h0, Py_ssize_t h1,
                                                Py_ssize_t hp, Py_ssize_t ow, float *o, int incl, int override,
                                                int64_t divisor)
{
    Py_ssize_t w0, w1, t, ih, iw, wp = cpool_avg_extent(ow, g->kw, g->sw, g->pw, g->W, &w0, &w1);
    volatile float zero = 0.0f;
    float total = 0.0f;
    for (t = 0; t < nd; t++)
        for (ih = h0; ih < h1; ih++)
            for (iw = w0; iw < w1; iw++)
                total = total + plane[t * dstride + ih * g->W + iw];
    if (total != total)
        total = cpool_avg_nan_sum(plane, nd, dstride, g->W, h0, h1, w0, w1);
    *o = zero + total / cpool_avg_div(hp, wp, nd * (h1 - h0), w1 - w0, incl, override, divisor);
}

/* Interior output columns [*a, *b): windows inside [0, W) along the row. */
static CPOOL_ALWAYS_INLINE void cpool_avg_interior(const cpool_geometry *g, Py_ssize_t extra, Py_ssize_t *a,
                                                   Py_ssize_t *b)
{
    /* ow * sw - pw >= 0 and ow * sw - pw + kw + extra <= W */
    Py_ssize_t lo = (g->pw + g->sw - 1) / g->sw, hi;
    Py_ssize_t room = g->W + g->pw - g->kw - extra;
    hi = room < 0 ? 0 : room / g->sw + 1;
    if (hi > g->OW)
        hi = g->OW;
    if (lo > hi)
        lo = hi;
    *a = lo;
    *b = hi;
}

/* Sums of NB blocks of 8 interior windows starting at output column c,
   their rows as cpool_avg_nan_sum's. */
static CPOOL_ALWAYS_INLINE void cpool_avg_sum8_step(const float *plane, Py_ssize_t nd, Py_ssize_t dstride,
                                                    const cpool_geometry *g, Py_ssize_t sw, Py_ssize_t KW,
                                                    Py_ssize_t c, Py_ssize_t step, Py_ssize_t h0, Py_ssize_t h1,
                                                    int NB, __m256 *acc)
{
    /* blocks at output columns c + step * b; KW: the kernel width when a constant after inlining, else 0 */
    const Py_ssize_t W = g->W, kw = KW ? KW : g->kw, col0 = c * sw - g->pw;
    Py_ssize_t t, ih, j;
    int b;
    for (b = 0; b < NB; b++)
        acc[b] = _mm256_setzero_ps();
    for (t = 0; t < nd; t++) {
        for (ih = h0; ih < h1; ih++) {
            const float *row = plane + t * dstride + ih * W + col0;
            if (sw == 1) {
                for (j = 0; j < kw; j++)
                    for (b = 0; b < NB; b++)
                        acc[b] = _mm256_add_ps(acc[b], _mm256_loadu_ps(row + j + step * b));
            } else {
                /* lanes in order 0 1 4 5 | 2 3 6 7 until the permute below */
                for (j = 0; j + 1 < kw; j += 2)
                    for (b = 0; b < NB; b++) {
                        const float *q = row + j + 2 * step * b;
                        __m256 u = _mm256_loadu_ps(q), v = _mm256_loadu_ps(q + 8);
                        acc[b] = _mm256_add_ps(acc[b], _mm256_shuffle_ps(u, v, _MM_SHUFFLE(2, 0, 2, 0)));
                        acc[b] = _mm256_add_ps(acc[b], _mm256_shuffle_ps(u, v, _MM_SHUFFLE(3, 1, 3, 1)));
                    }
                if (j < kw)
                    for (b = 0; b < NB; b++) {
                        /* the 15 floats spanned: row[j + 16b .. j + 16b + 15) */
                        const float *q = row + j + 2 * step * b;
                        __m256 u = _mm256_loadu_ps(q), v = _mm256_loadu_ps(q + 7);
                        acc[b] = _mm256_add_ps(acc[b], _mm256_shuffle_ps(u, v, _MM_SHUFFLE(3, 1, 2, 0)));
                    }
            }
        }
    }
    if (sw == 2)
        for (b = 0; b < NB; b++)
            acc[b] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(acc[b]), 0xD8));
}

static CPOOL_ALWAYS_INLINE void cpool_avg_sum8(const float *plane, Py_ssize_t nd, Py_ssize_t dstride,
                                               const cpool_geometry *g, Py_ssize_t sw, Py_ssize_t KW, Py_ssize_t c,
                                               Py_ssize_t h0, Py_ssize_t h1, int NB, __m256 *acc)
{
    cpool_avg_sum8_step(plane, nd, dstride, g, sw, KW, c, 8, h0, h1, NB, acc);
}

static CPOOL_ALWAYS_INLINE void cpool_avg_store8(const float *plane, Py_ssize_t nd, Py_ssize_t dstride,
                                                 const cpool_geometry *g, Py_ssize_t sw, Py_ssize_t c,
                                                 Py_ssize_t h0, Py_ssize_t h1, __m256 acc, __m256 d, float dv,
                                                 float *o)
{
    const __m256 zero = _mm256_setzero_ps();
    int nan = _mm256_movemask_ps(_mm256_cmp_ps(acc, acc, _CMP_UNORD_Q));
    _mm256_storeu_ps(o, _mm256_add_ps(zero, _mm256_div_ps(acc, d)));
    if (nan) {
        int l;
        for (l = 0; l < 8; l++)
            if (nan & (1 << l)) {
                Py_ssize_t w0 = (c + l) * sw - g->pw;
                volatile float z = 0.0f;
                o[l] = z + cpool_avg_nan_sum(plane, nd, dstride, g->W, h0, h1, w0, w0 + g->kw) / dv;
            }
    }
}

/* The depth axis of 3-D pooling (D = kd = sd = OD = 1, pd = 0 for planes). */
typedef struct {
    Py_ssize_t D, kd, sd, pd, OD;
} cpool_avg_depth;

static const cpool_avg_depth cpool_avg_flat = {1, 1, 1, 0, 1};

/* Output rows r = (p * OD + od) * OH + oh, [r0, r1). */
static CPOOL_ALWAYS_INLINE void cpool_avg_rows_sw(const float *x, float *out, Py_ssize_t r0, Py_ssize_t r1,
                                                  const cpool_geometry *g, const cpool_avg_depth *z, int incl,
                                                  int override, int64_t divisor, Py_ssize_t sw, Py_ssize_t KW)
{
    const Py_ssize_t W = g->W, H = g->H, OW = g->OW, OH = g->OH, OD = z->OD, HW = H * W;
    Py_ssize_t r, a, b, ow;
    Py_ssize_t t = r0 / OH, oh = r0 - t * OH, p = t / OD, od = t - p * OD;
    cpool_avg_interior(g, 0, &a, &b);
    for (r = r0; r < r1; r++, oh++) {
        Py_ssize_t d0, d1, dp, h0, h1, hp, nd, q;
        if (oh == OH) {
            oh = 0;
            if (++od == OD) {
                od = 0;
                p++;
            }
        }
        dp = cpool_avg_extent(od, z->kd, z->sd, z->pd, z->D, &d0, &d1);
        hp = dp * cpool_avg_extent(oh, g->kh, g->sh, g->ph, H, &h0, &h1);
        nd = d1 - d0;
        const float *plane = x + (p * z->D + d0) * HW;
        float *o = out + r * OW;
        float dv = cpool_avg_div(hp, g->kw, nd * (h1 - h0), g->kw, incl, override, divisor);
        __m256 d = _mm256_set1_ps(dv), acc[4];
        for (q = 0; q < nd; q++) {
            /* the rows the next output row adds that this one does not */
            Py_ssize_t e = (h1 + g->sh) * W < HW ? (h1 + g->sh) * W : HW, f;
            for (f = h1 * W; f < e; f += 16)
                _mm_prefetch((const char *)(plane + q * HW + f), _MM_HINT_T0);
        }
        for (ow = 0; ow < a; ow++)
            cpool_avg_window_one(plane, nd, HW, g, h0, h1, hp, ow, o + ow, incl, override, divisor);
        for (; ow + 32 <= b; ow += 32) {
            int k;
            cpool_avg_sum8(plane, nd, HW, g, sw, KW, ow, h0, h1, 4, acc);
            for (k = 0; k < 4; k++)
                cpool_avg_store8(plane, nd, HW, g, sw, ow + 8 * k, h0, h1, acc[k], d, dv, o + ow + 8 * k);
        }
        if (b - ow > 8 && b - ow < 16) {
            /* the last two blocks, overlapping: the same bits stored twice */
            cpool_avg_sum8_step(plane, nd, HW, g, sw, KW, ow, b - 8 - ow, h0, h1, 2, acc);
            cpool_avg_store8(plane, nd, HW, g, sw, ow, h0, h1, acc[0], d, dv, o + ow);
            cpool_avg_store8(plane, nd, HW, g, sw, b - 8, h0, h1, acc[1], d, dv, o + b - 8);
            ow = b;
        }
        for (; ow + 8 <= b; ow += 8) {
            cpool_avg_sum8(plane, nd, HW, g, sw, KW, ow, h0, h1, 1, acc);
            cpool_avg_store8(plane, nd, HW, g, sw, ow, h0, h1, acc[0], d, dv, o + ow);
        }
        if (ow < b && b - a >= 8) {
            /* the last 8 interior columns again: stores the same bits twice */
            cpool_avg_sum8(plane, nd, HW, g, sw, KW, b - 8, h0, h1, 1, acc);
            cpool_avg_store8(plane, nd, HW, g, sw, b - 8, h0, h1, acc[0], d, dv, o + b - 8);
            ow = b;
        }
        for (; ow < OW; ow++)
            cpool_avg_window_one(plane, nd, HW, g, h0, h1, hp, ow, o + ow, incl, override, divisor);
    }
}

/* The mask of lanes [0, n) of 8 (none for n <= 0, all for n >= 8). */
static CPOOL_ALWAYS_INLINE __m256i cpool_avg_mask(Py_ssize_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Lanes i of 8 with lo <= base + i < hi. */
static CPOOL_ALWAYS_INLINE __m256i cpool_avg_range(Py_ssize_t base, Py_ssize_t lo, Py_ssize_t hi)
{
    const __m256i at = _mm256_add_epi32(_mm256_set1_epi32((int)base), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), at),
                            _mm256_cmpgt_epi32(at, _mm256_set1_epi32((int)lo - 1)));
}

#define CPOOL_AVG_NARROW_KW 16  /* the widest kernel whose tap masks the narrow kernel keeps */

/* Whether the 8-column blocks take this geometry: column stride 1 or 2
   and at least 8 interior columns. */
static CPOOL_ALWAYS_INLINE int cpool_avg_blocks_apply(const cpool_geometry *g)
{
    Py_ssize_t a, b;
    if (g->sw > 2)
        return 0;
    cpool_avg_interior(g, 0, &a, &b);
    return b - a >= 8;
}

/* Whether the narrow kernel takes this geometry: rows of at most 8
   outputs (at 8 it beat one 8-column block and its per-row setup: 16x16
   planes, 2x2 stride 2, 1.3x at 1 thread), column stride 1 or 2, and
   window extents that float holds exactly (its divisors are products of
   two of them). */
static CPOOL_ALWAYS_INLINE int cpool_avg_narrow_applies(const cpool_geometry *g)
{
    return g->OW <= 8 && (g->sw == 1 || g->sw == 2) && g->kw <= CPOOL_AVG_NARROW_KW
        && g->H + 2 * g->ph < ((Py_ssize_t)1 << 24) && g->W + 2 * g->pw < ((Py_ssize_t)1 << 24);
}

/* Planes rows of at most 8 outputs: a whole row in one vector, border
   windows included. Each window column j has a mask of the lanes whose tap
   lies inside the row (the same for every row), so masked loads read only
   in-bounds taps; the others load as +0.0, which changes no sum (a sum
   from +0 is never -0.0, and a NaN sum keeps its NaN as the first
   operand). Each lane sees its in-bounds taps in row-major order, as
   cpool_avg_sum8_step's lanes do, and its own divisor. */
static CPOOL_ALWAYS_INLINE void cpool_avg_rows_narrow(const float *x, float *out, Py_ssize_t r0, Py_ssize_t r1,
                                                      const cpool_geometry *g, int incl, int override,
                                                      int64_t divisor, Py_ssize_t sw, Py_ssize_t KW)
{
    const Py_ssize_t W = g->W, H = g->H, OW = g->OW, OH = g->OH, kw = KW ? KW : g->kw, col0 = -g->pw;
    const __m256 zero = _mm256_setzero_ps();
    const __m256i out_mask = cpool_avg_mask(OW);
    __m256i mu[CPOOL_AVG_NARROW_KW], mv[CPOOL_AVG_NARROW_KW];
    int32_t wpad[8], win[8], w0s[8];
    __m256 wpv, wnv;
    Py_ssize_t r, j, l;
    Py_ssize_t p = r0 / OH, oh = r0 - p * OH;
    for (l = 0; l < 8; l++) {
        Py_ssize_t w0 = 0, w1 = 1, wp = 1;
        if (l < OW)
            wp = cpool_avg_extent(l, g->kw, sw, g->pw, W, &w0, &w1);
        wpad[l] = (int32_t)wp;
        win[l] = (int32_t)(w1 - w0);
        w0s[l] = (int32_t)w0;
    }
    wpv = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)wpad));
    wnv = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)win));
    /* element e of the loads at row + col0 + j: in bounds and taken by a
       lane below OW (sw 1: lane e; sw 2: lanes e / 2 of the 16 elements at
       row + col0 + j, the odd kernel's last tap only even ones, its second
       load starting at element 7) */
    for (j = 0; j < kw; j++) {
        const Py_ssize_t lo = -(col0 + j), hi = W - (col0 + j);
        if (sw == 1) {
            mu[j] = cpool_avg_range(0, lo, hi < OW ? hi : OW);
        } else if (j + 1 < kw) {
            mu[j] = cpool_avg_range(0, lo, hi < 2 * OW ? hi : 2 * OW);
            mv[j] = cpool_avg_range(8, lo, hi < 2 * OW ? hi : 2 * OW);
            j++;
        } else {
            mu[j] = cpool_avg_range(0, lo, hi < 2 * OW - 1 ? hi : 2 * OW - 1);
            mv[j] = cpool_avg_range(7, lo, hi < 2 * OW - 1 ? hi : 2 * OW - 1);
        }
    }
    for (r = r0; r < r1; r++, oh++) {
        Py_ssize_t h0, h1, hp, ih;
        __m256 acc = zero, d;
        int nan;
        if (oh == OH) {
            oh = 0;
            p++;
        }
        hp = cpool_avg_extent(oh, g->kh, g->sh, g->ph, H, &h0, &h1);
        const float *plane = x + p * H * W;
        float *o = out + r * OW;
        for (ih = h0; ih < h1; ih++) {
            const float *row = plane + ih * W + col0;
            if (sw == 1) {
                for (j = 0; j < kw; j++)
                    acc = _mm256_add_ps(acc, _mm256_maskload_ps(row + j, mu[j]));
            } else {
                /* lanes in order 0 1 4 5 | 2 3 6 7 until the permute below */
                for (j = 0; j + 1 < kw; j += 2) {
                    __m256 u = _mm256_maskload_ps(row + j, mu[j]), v = _mm256_maskload_ps(row + j + 8, mv[j]);
                    acc = _mm256_add_ps(acc, _mm256_shuffle_ps(u, v, _MM_SHUFFLE(2, 0, 2, 0)));
                    acc = _mm256_add_ps(acc, _mm256_shuffle_ps(u, v, _MM_SHUFFLE(3, 1, 3, 1)));
                }
                if (j < kw) {
                    __m256 u = _mm256_maskload_ps(row + j, mu[j]), v = _mm256_maskload_ps(row + j + 7, mv[j]);
                    acc = _mm256_add_ps(acc, _mm256_shuffle_ps(u, v, _MM_SHUFFLE(3, 1, 2, 0)));
                }
            }
        }
        if (sw == 2)
            acc = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(acc), 0xD8));
        if (override)
            d = _mm256_set1_ps((float)divisor);
        else
            d = _mm256_mul_ps(_mm256_set1_ps((float)(incl ? hp : h1 - h0)), incl ? wpv : wnv);
        _mm256_maskstore_ps(o, out_mask, _mm256_add_ps(zero, _mm256_div_ps(acc, d)));
        nan = _mm256_movemask_ps(_mm256_cmp_ps(acc, acc, _CMP_UNORD_Q)) & ((1 << OW) - 1);
        for (l = 0; nan; l++, nan >>= 1)
            if (nan & 1) {
                volatile float z = 0.0f;
                float dv = cpool_avg_div(hp, wpad[l], h1 - h0, win[l], incl, override, divisor);
                o[l] = z + cpool_avg_nan_sum(plane, 1, 0, W, h0, h1, w0s[l], w0s[l] + win[l]) / dv;
            }
    }
}

/* One kernel of the planes forward, with sw and KW constant after inlining. */
static CPOOL_ALWAYS_INLINE void cpool_avg_rows_kernel(const float *x, float *out, Py_ssize_t r0, Py_ssize_t r1,
                                                      const cpool_geometry *g, const cpool_avg_depth *z, int incl,
                                                      int override, int64_t divisor, int narrow, Py_ssize_t sw,
                                                      Py_ssize_t KW)
{
    if (narrow)  /* planes only */
        cpool_avg_rows_narrow(x, out, r0, r1, g, incl, override, divisor, sw, KW);
    else
        cpool_avg_rows_sw(x, out, r0, r1, g, z, incl, override, divisor, sw, KW);
}

/* The kernels by (sw, KW), the common ones with KW constant. */
static void cpool_avg_rows_dispatch(const float *x, float *out, Py_ssize_t r0, Py_ssize_t r1,
                                    const cpool_geometry *g, const cpool_avg_depth *z, int incl, int override,
                                    int64_t divisor, int narrow)
{
    if (g->sw == 1 && g->kw == 3)
        cpool_avg_rows_kernel(x, out, r0, r1, g, z, incl, override, divisor, narrow, 1, 3);
    else if (g->sw == 1)
        cpool_avg_rows_kernel(x, out, r0, r1, g, z, incl, override, divisor, narrow, 1, 0);
    else if (g->kw == 2)
        cpool_avg_rows_kernel(x, out, r0, r1, g, z, incl, override, divisor, narrow, 2, 2);
    else if (g->kw == 3)
        cpool_avg_rows_kernel(x, out, r0, r1, g, z, incl, override, divisor, narrow, 2, 3);
    else
        cpool_avg_rows_kernel(x, out, r0, r1, g, z, incl, override, divisor, narrow, 2, 0);
}

/* Planes forward, output rows [r0, r1) of (P * OH, OW), column stride 1 or
   2: rows of at most 8 outputs (the narrow kernel), or with at least 8
   interior columns (the blocks); returns 0 (nothing written) for the rest. */
static int cpool_avg_rows_avx2(const float *x, float *out, Py_ssize_t r0, Py_ssize_t r1, cpool_geometry g, int incl,
                               int override, int64_t divisor)
{
    const int narrow = cpool_avg_narrow_applies(&g);
    if (!narrow && !cpool_avg_blocks_apply(&g))
        return 0;
    cpool_avg_rows_dispatch(x, out, r0, r1, &g, &cpool_avg_flat, incl, override, divisor, narrow);
    return 1;
}

/* 3-D planes forward ((N, C, D, H, W) memory), output rows [r0, r1) of
   (P * OD * OH, OW), by the 8-column blocks: each window's depth slices,
   then rows, then taps, in order, as the portable loop of
   avg3d_forward.pxi. Returns 0 (nothing written) where the blocks do not
   take the geometry's rows. */
static int cpool_avg3d_rows_avx2(const float *x, float *out, Py_ssize_t r0, Py_ssize_t r1, cpool_geometry3 g3,
                                 int incl, int override, int64_t divisor)
{
    cpool_geometry g;
    cpool_avg_depth z;
    g.kh = g3.kh; g.kw = g3.kw; g.sh = g3.sh; g.sw = g3.sw; g.ph = g3.ph; g.pw = g3.pw;
    g.dh = g.dw = 1;
    g.H = g3.H; g.W = g3.W; g.OH = g3.OH; g.OW = g3.OW;
    z.D = g3.D; z.kd = g3.kd; z.sd = g3.sd; z.pd = g3.pd; z.OD = g3.OD;
    if (g3.dd != 1 || g3.dh != 1 || g3.dw != 1 || !cpool_avg_blocks_apply(&g))
        return 0;
    cpool_avg_rows_dispatch(x, out, r0, r1, &g, &z, incl, override, divisor, 0);
    return 1;
}

/* a + b with a as VADDPS's first source: where both are NaN the result is
   a's NaN, quieted (one NaN: that one, quieted). GCC and clang may swap the
   operands of _mm256_add_ps, so the order is fixed with inline assembly;
   elsewhere a blend makes the rule explicit. */
static CPOOL_ALWAYS_INLINE __m256 cpool_avg_add_first(__m256 a, __m256 b)
{
#if defined(__GNUC__) || defined(__clang__)
    __m256 r;
    __asm__("vaddps %2, %1, %0" : "=x"(r) : "x"(a), "xm"(b));
    return r;
#else
    __m256 nan = _mm256_cmp_ps(a, a, _CMP_UNORD_Q);
    return _mm256_blendv_ps(_mm256_add_ps(a, b), _mm256_add_ps(a, _mm256_setzero_ps()), nan);
#endif
}

/* `tap + sum`, a NaN tap replacing the sum (quieted). */
static CPOOL_ALWAYS_INLINE __m256 cpool_avg_tap_add(__m256 sum, __m256 tap)
{
    return cpool_avg_add_first(tap, sum);
}

/* The channel tail's rule, lane by lane: `tail` lanes (torch's scalar
   channels) keep a NaN sum, the others take a NaN tap (quieted). */
static CPOOL_ALWAYS_INLINE __m256 cpool_avg_tail_add(__m256 sum, __m256 tap, __m256 tail)
{
#if defined(__GNUC__) || defined(__clang__)
    return _mm256_blendv_ps(cpool_avg_add_first(tap, sum), cpool_avg_add_first(sum, tap), tail);
#else
    __m256 r = _mm256_blendv_ps(_mm256_add_ps(tap, sum), _mm256_add_ps(tap, _mm256_setzero_ps()),
                                _mm256_andnot_ps(tail, _mm256_cmp_ps(tap, tap, _CMP_UNORD_Q)));
    return _mm256_blendv_ps(r, sum, _mm256_and_ps(tail, _mm256_cmp_ps(sum, sum, _CMP_UNORD_Q)));
#endif
}

/* Channels-last forward, rows r = n * OH + oh of (N, OH, OW, C) output, at
   least 8 channels; returns 0 (nothing written) for fewer. */
static int cpool_avg_rows_nhwc_avx2(const float *x, float *out, Py_ssize_t r0, Py_ssize_t r1, cpool_geometry g,
                                    Py_ssize_t C, int incl, int override, int64_t divisor)
{
    const Py_ssize_t W = g.W, H = g.H, OW = g.OW, OH = g.OH, lanes = C - C % 4;
    Py_ssize_t r, ow, c, ih, iw;
    if (C < 8)
        return 0;
    for (r = r0; r < r1; r++) {
        Py_ssize_t n = r / OH, oh = r - n * OH, h0, h1;
        Py_ssize_t hp = cpool_avg_extent(oh, g.kh, g.sh, g.ph, H, &h0, &h1);
        const float *img = x + n * H * W * C;
        for (ow = 0; ow < OW; ow++) {
            Py_ssize_t w0, w1, wp = cpool_avg_extent(ow, g.kw, g.sw, g.pw, W, &w0, &w1);
            float dv = cpool_avg_div(hp, wp, h1 - h0, w1 - w0, incl, override, divisor);
            __m256 d = _mm256_set1_ps(dv);
            float *o = out + (r * OW + ow) * C;
            if (oh + 1 < OH && h1 + g.sh <= H) {
                /* The window's input rows are streams W * C floats apart
                   that restart every output row, too short for the
                   hardware prefetchers: ask for the next output row's
                   window now (as the max kernel's 2x2 path does). */
                const Py_ssize_t bytes = (w1 - w0) * C * (Py_ssize_t)sizeof(float);
                Py_ssize_t b;
                for (ih = h1 > h0 + g.sh ? h1 : h0 + g.sh; ih < h1 + g.sh; ih++) {
                    const char *next = (const char *)(img + (ih * W + w0) * C);
                    for (b = 0; b < bytes; b += 64)
                        _mm_prefetch(next + b, _MM_HINT_T0);
                }
            }
            for (c = 0; c + 32 <= C; c += 32) {
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                for (ih = h0; ih < h1; ih++) {
                    const float *t = img + (ih * W + w0) * C + c;
                    for (iw = w0; iw < w1; iw++, t += C) {
                        a0 = cpool_avg_tap_add(a0, _mm256_loadu_ps(t));
                        a1 = cpool_avg_tap_add(a1, _mm256_loadu_ps(t + 8));
                        a2 = cpool_avg_tap_add(a2, _mm256_loadu_ps(t + 16));
                        a3 = cpool_avg_tap_add(a3, _mm256_loadu_ps(t + 24));
                    }
                }
                _mm256_storeu_ps(o + c, _mm256_div_ps(a0, d));
                _mm256_storeu_ps(o + c + 8, _mm256_div_ps(a1, d));
                _mm256_storeu_ps(o + c + 16, _mm256_div_ps(a2, d));
                _mm256_storeu_ps(o + c + 24, _mm256_div_ps(a3, d));
            }
            for (; c + 8 <= C; c += 8) {
                __m256 a0 = _mm256_setzero_ps();
                for (ih = h0; ih < h1; ih++) {
                    const float *t = img + (ih * W + w0) * C + c;
                    for (iw = w0; iw < w1; iw++, t += C)
                        a0 = cpool_avg_tap_add(a0, _mm256_loadu_ps(t));
                }
                _mm256_storeu_ps(o + c, _mm256_div_ps(a0, d));
            }
            if (c < C) {
                /* the last C % 8 channels, masked; torch's 4-lane vectors
                   keep a NaN tap's NaN, its scalar tail (the last C % 4
                   channels) keeps the sum's */
                __m256i m = cpool_avg_mask(C - c);
                __m256 tail = _mm256_castsi256_ps(_mm256_andnot_si256(cpool_avg_mask(lanes - c), m));
                __m256 a0 = _mm256_setzero_ps();
                for (ih = h0; ih < h1; ih++) {
                    const float *t = img + (ih * W + w0) * C + c;
                    for (iw = w0; iw < w1; iw++, t += C)
                        a0 = cpool_avg_tail_add(a0, _mm256_maskload_ps(t, m), tail);
                }
                _mm256_maskstore_ps(o + c, m, _mm256_div_ps(a0, d));
            }
        }
    }
    return 1;
}

/* `share + cell`, a NaN share replacing the cell's value. */
static CPOOL_ALWAYS_INLINE __m256 cpool_avg_share_add(__m256 cell, __m256 share, __m256 nan)
{
    /* a share is a quotient, so a NaN share is quiet: share + cell with the
       share first is then the share itself */
    (void)nan;
    return cpool_avg_add_first(share, cell);
}

/* Channels-last backward, images [n0, n1); zeroes their grad_input first. */
static void cpool_avg_backward_images_avx2(const float *go, float *gi, Py_ssize_t n0, Py_ssize_t n1,
                                           cpool_geometry g, Py_ssize_t C, int incl, int override,
                                           int64_t divisor)
{
    const Py_ssize_t W = g.W, H = g.H, OW = g.OW, OH = g.OH;
    Py_ssize_t n, oh, ow, c, ih, iw;
    for (n = n0; n < n1; n++) {
        float *img = gi + n * H * W * C;
        memset(img, 0, (size_t)(H * W * C) * sizeof(float));
        for (oh = 0; oh < OH; oh++) {
            Py_ssize_t h0, h1, hp = cpool_avg_extent(oh, g.kh, g.sh, g.ph, H, &h0, &h1);
            for (ow = 0; ow < OW; ow++) {
                Py_ssize_t w0, w1, wp = cpool_avg_extent(ow, g.kw, g.sw, g.pw, W, &w0, &w1);
                float dv = cpool_avg_div(hp, wp, h1 - h0, w1 - w0, incl, override, divisor);
                __m256 d = _mm256_set1_ps(dv);
                const float *src = go + ((n * OH + oh) * OW + ow) * C;
                for (c = 0; c + 32 <= C; c += 32) {
                    __m256 s0 = _mm256_div_ps(_mm256_loadu_ps(src + c), d);
                    __m256 s1 = _mm256_div_ps(_mm256_loadu_ps(src + c + 8), d);
                    __m256 s2 = _mm256_div_ps(_mm256_loadu_ps(src + c + 16), d);
                    __m256 s3 = _mm256_div_ps(_mm256_loadu_ps(src + c + 24), d);
                    __m256 m0 = _mm256_cmp_ps(s0, s0, _CMP_UNORD_Q), m1 = _mm256_cmp_ps(s1, s1, _CMP_UNORD_Q);
                    __m256 m2 = _mm256_cmp_ps(s2, s2, _CMP_UNORD_Q), m3 = _mm256_cmp_ps(s3, s3, _CMP_UNORD_Q);
                    for (ih = h0; ih < h1; ih++) {
                        float *t = img + (ih * W + w0) * C + c;
                        for (iw = w0; iw < w1; iw++, t += C) {
                            _mm256_storeu_ps(t, cpool_avg_share_add(_mm256_loadu_ps(t), s0, m0));
                            _mm256_storeu_ps(t + 8, cpool_avg_share_add(_mm256_loadu_ps(t + 8), s1, m1));
                            _mm256_storeu_ps(t + 16, cpool_avg_share_add(_mm256_loadu_ps(t + 16), s2, m2));
                            _mm256_storeu_ps(t + 24, cpool_avg_share_add(_mm256_loadu_ps(t + 24), s3, m3));
                        }
                    }
                }
                for (; c + 8 <= C; c += 8) {
                    __m256 s0 = _mm256_div_ps(_mm256_loadu_ps(src + c), d);
                    __m256 m0 = _mm256_cmp_ps(s0, s0, _CMP_UNORD_Q);
                    for (ih = h0; ih < h1; ih++) {
                        float *t = img + (ih * W + w0) * C + c;
                        for (iw = w0; iw < w1; iw++, t += C)
                            _mm256_storeu_ps(t, cpool_avg_share_add(_mm256_loadu_ps(t), s0, m0));
                    }
                }
                if (c < C) {
                    /* one channel at a time: masked stores to overlapping
                       cells would stall on each other */
                    float sh[8];
                    Py_ssize_t r = C - c, q;
                    for (q = 0; q < r; q++)
                        sh[q] = src[c + q] / dv;
                    for (ih = h0; ih < h1; ih++) {
                        float *t = img + (ih * W + w0) * C + c;
                        for (iw = w0; iw < w1; iw++, t += C)
                            for (q = 0; q < r; q++)
                                t[q] = sh[q] != sh[q] ? sh[q] : sh[q] + t[q];
                    }
                }
            }
        }
    }
}

/* One planes output's share added to its window, in order. */
static CPOOL_ALWAYS_INLINE void cpool_avg_scatter_one(float *plane, const cpool_geometry *g, Py_ssize_t h0,
                                                      Py_ssize_t h1, Py_ssize_t hp, Py_ssize_t ow, float gov,
                                                      int incl, int override, int64_t divisor)
{
    Py_ssize_t w0, w1, ih, iw, wp = cpool_avg_extent(ow, g->kw, g->sw, g->pw, g->W, &w0, &w1);
    float s = gov / cpool_avg_div(hp, wp, h1 - h0, w1 - w0, incl, override, divisor);
    if (s != s) {
        for (ih = h0; ih < h1; ih++)
            for (iw = w0; iw < w1; iw++)
                plane[ih * g->W + iw] = s;
    } else {
        for (ih = h0; ih < h1; ih++)
            for (iw = w0; iw < w1; iw++)
                plane[ih * g->W + iw] = s + plane[ih * g->W + iw];
    }
}

#define CPOOL_AVG_CHUNK 256

static CPOOL_ALWAYS_INLINE void cpool_avg_backward_planes_sw(const float *go, float *gi, Py_ssize_t p0,
                                                             Py_ssize_t p1, const cpool_geometry *g, int incl,
                                                             int override, int64_t divisor, Py_ssize_t sw)
{
    const Py_ssize_t W = g->W, H = g->H, OW = g->OW, OH = g->OH, kw = g->kw;
    Py_ssize_t p, oh, ow, ih, j, a, b, c0, c1, q;
    const __m256 zero = _mm256_setzero_ps();
    /* shares of up to CPOOL_AVG_CHUNK columns, as stored to 8 (stride 1) or
       16 (stride 2, with zeros between) consecutive cells per block of 8 */
    float buf[2 * CPOOL_AVG_CHUNK + 16];
    cpool_avg_interior(g, 0, &a, &b);
    for (p = p0; p < p1; p++) {
        float *plane = gi + p * H * W;
        memset(plane, 0, (size_t)(H * W) * sizeof(float));
        for (oh = 0; oh < OH; oh++) {
            Py_ssize_t h0, h1, hp = cpool_avg_extent(oh, g->kh, g->sh, g->ph, H, &h0, &h1), bv = b;
            const float *src = go + (p * OH + oh) * OW;
            __m256 d = _mm256_set1_ps(cpool_avg_div(hp, kw, h1 - h0, kw, incl, override, divisor));
            if (h1 <= h0)
                bv = a;
            /* the last block may be partial (its missing lanes add +0) and
               may reach past the row's end, but never past the plane's */
            while (bv > a && (h1 - 1) * W + (a + (bv - a - 1) / 8 * 8) * sw - g->pw + kw - 1 + 8 * sw > H * W)
                bv = a + (bv - a - 1) / 8 * 8;
            for (ow = 0; ow < a; ow++)
                cpool_avg_scatter_one(plane, g, h0, h1, hp, ow, src[ow], incl, override, divisor);
            if (sw == 2 && (kw == 2 || kw == 3)) {
                /* 16 cells per block of 8 columns, with window columns 0 and
                   1 of column i on cells 2i and 2i + 1 (D) and column 2 of
                   column i - 1 on cell 2i (P, added first); column 2 of the
                   block's last column is the next block's lane 0 (carry) */
                __m256 carry = zero, s = zero;
                const __m256i back = _mm256_setr_epi32(7, 0, 1, 2, 3, 4, 5, 6);
                for (ow = a; ow < bv; ow += 8) {
                    Py_ssize_t n = bv - ow;
                    __m256 v = n >= 8 ? _mm256_loadu_ps(src + ow) : _mm256_maskload_ps(src + ow, cpool_avg_mask(n));
                    __m256 dl, dh, d0, d1, p0 = zero, p1 = zero;
                    s = _mm256_div_ps(v, d);
                    dl = _mm256_unpacklo_ps(s, s);
                    dh = _mm256_unpackhi_ps(s, s);
                    d0 = _mm256_permute2f128_ps(dl, dh, 0x20);
                    d1 = _mm256_permute2f128_ps(dl, dh, 0x31);
                    if (kw == 3) {
                        __m256 sh = _mm256_blend_ps(_mm256_permutevar8x32_ps(s, back), carry, 1);
                        __m256 pl = _mm256_unpacklo_ps(sh, zero), ph = _mm256_unpackhi_ps(sh, zero);
                        p0 = _mm256_permute2f128_ps(pl, ph, 0x20);
                        p1 = _mm256_permute2f128_ps(pl, ph, 0x31);
                        carry = _mm256_permutevar8x32_ps(s, _mm256_set1_epi32(7));
                    }
                    for (ih = h0; ih < h1; ih++) {
                        float *t = plane + ih * W + ow * 2 - g->pw;
                        __m256 c0v = _mm256_loadu_ps(t), c1v = _mm256_loadu_ps(t + 8);
                        if (kw == 3) {
                            c0v = cpool_avg_add_first(p0, c0v);
                            c1v = cpool_avg_add_first(p1, c1v);
                        }
                        _mm256_storeu_ps(t, cpool_avg_add_first(d0, c0v));
                        _mm256_storeu_ps(t + 8, cpool_avg_add_first(d1, c1v));
                    }
                }
                if (kw == 3 && bv > a && (bv - a) % 8 == 0) {
                    /* the last block's carry: its last column's window column 2 */
                    float sv = _mm256_cvtss_f32(carry);
                    for (ih = h0; ih < h1; ih++) {
                        float *t = plane + ih * W + bv * 2 - g->pw;
                        *t = sv != sv ? sv : sv + *t;
                    }
                }
                c0 = bv;
            } else {
                c0 = a;
            }
            for (; c0 < bv; c0 = c1) {
                Py_ssize_t nb;
                c1 = c0 + CPOOL_AVG_CHUNK < bv ? c0 + CPOOL_AVG_CHUNK : bv;
                nb = (c1 - c0 + 7) / 8;
                for (q = 0; q < nb; q++) {
                    Py_ssize_t n = c1 - c0 - 8 * q;
                    __m256 v = n >= 8 ? _mm256_loadu_ps(src + c0 + 8 * q)
                                      : _mm256_maskload_ps(src + c0 + 8 * q, cpool_avg_mask(n));
                    __m256 s = _mm256_div_ps(v, d);
                    if (sw == 1) {
                        _mm256_storeu_ps(buf + 8 * q, s);
                    } else {
                        __m256 lo = _mm256_unpacklo_ps(s, zero), hi = _mm256_unpackhi_ps(s, zero);
                        _mm256_storeu_ps(buf + 16 * q, _mm256_permute2f128_ps(lo, hi, 0x20));
                        _mm256_storeu_ps(buf + 16 * q + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
                    }
                }
                /* window column j descending, each pass over the whole
                   chunk: a cell gets its shares in ascending columns */
                for (ih = h0; ih < h1; ih++) {
                    float *row = plane + ih * W + c0 * sw - g->pw;
                    for (j = kw - 1; j >= 0; j--) {
                        float *t = row + j;
                        for (q = 0; q < nb * sw; q++)
                            _mm256_storeu_ps(t + 8 * q,
                                             cpool_avg_add_first(_mm256_loadu_ps(buf + 8 * q), _mm256_loadu_ps(t + 8 * q)));
                    }
                }
            }
            for (ow = bv; ow < OW; ow++)
                cpool_avg_scatter_one(plane, g, h0, h1, hp, ow, src[ow], incl, override, divisor);
        }
    }
}

/* Planes backward, planes [p0, p1), column stride 1 or 2; zeroes their
   grad_input first. Returns 0 (nothing written) for other strides. */
static int cpool_avg_backward_planes_avx2(const float *go, float *gi, Py_ssize_t p0, Py_ssize_t p1,
                                          cpool_geometry g, int incl, int override, int64_t divisor)
{
    if (g.sw == 1)
        cpool_avg_backward_planes_sw(go, gi, p0, p1, &g, incl, override, divisor, 1);
    else if (g.sw == 2)
        cpool_avg_backward_planes_sw(go, gi, p0, p1, &g, incl, override, divisor, 2);
    else
        return 0;
    return 1;
}

/* One share row of the 3-D planes backward (avg3d_backward.pxi's
   _avg3d_share_row_padded, the same adds in the same order) at column
   stride 2, kw >= 2, no NaN among its OW shares: into a zero-padded row
   `buf` of n cells (column iw at buf[iw + pw], every window inside it).
   Window columns go in pairs (j, j + 1) from the top down, then column 0
   alone when kw is odd: a pair's sweep adds each share to two consecutive
   cells, 16 cells per 8 shares, and column 0's adds (share, +0) pairs (a
   cell is never -0.0 here, so adding +0.0 changes no bit). `fresh`: buf is
   not zeroed yet; the first sweep stores 0 + share and zeroes the cells
   it does not reach. */
static CPOOL_ALWAYS_INLINE void cpool_avg_dup_pairs(const float *s, __m256 *lo, __m256 *hi, int evens)
{
    __m256 v = _mm256_loadu_ps(s), w = evens ? _mm256_setzero_ps() : v;
    __m256 l = _mm256_unpacklo_ps(v, w), h = _mm256_unpackhi_ps(v, w);
    *lo = _mm256_permute2f128_ps(l, h, 0x20);
    *hi = _mm256_permute2f128_ps(l, h, 0x31);
}

static void cpool_avg3d_share_row_s2_avx2(float *buf, const float *s, Py_ssize_t OW, Py_ssize_t kw, int fresh,
                                          Py_ssize_t n)
{
    Py_ssize_t j = kw, i;
    __m256 lo, hi;
    if (fresh) {
        const __m256 zero = _mm256_setzero_ps();
        j = kw - 2;
        memset(buf, 0, (size_t)j * sizeof(float));
        for (i = 0; i + 8 <= OW; i += 8) {
            cpool_avg_dup_pairs(s + i, &lo, &hi, 0);
            _mm256_storeu_ps(buf + j + 2 * i, _mm256_add_ps(zero, lo));
            _mm256_storeu_ps(buf + j + 2 * i + 8, _mm256_add_ps(zero, hi));
        }
        for (; i < OW; i++)
            buf[j + 2 * i] = buf[j + 2 * i + 1] = 0.0f + s[i];
        memset(buf + j + 2 * OW, 0, (size_t)(n - j - 2 * OW) * sizeof(float));
    }
    while (j >= 2) {
        float *t;
        j -= 2;
        t = buf + j;
        for (i = 0; i + 8 <= OW; i += 8) {
            cpool_avg_dup_pairs(s + i, &lo, &hi, 0);
            _mm256_storeu_ps(t + 2 * i, _mm256_add_ps(_mm256_loadu_ps(t + 2 * i), lo));
            _mm256_storeu_ps(t + 2 * i + 8, _mm256_add_ps(_mm256_loadu_ps(t + 2 * i + 8), hi));
        }
        for (; i < OW; i++) {
            t[2 * i] = t[2 * i] + s[i];
            t[2 * i + 1] = t[2 * i + 1] + s[i];
        }
    }
    if (j == 1) {
        for (i = 0; i + 8 <= OW; i += 8) {
            cpool_avg_dup_pairs(s + i, &lo, &hi, 1);
            _mm256_storeu_ps(buf + 2 * i, _mm256_add_ps(_mm256_loadu_ps(buf + 2 * i), lo));
            _mm256_storeu_ps(buf + 2 * i + 8, _mm256_add_ps(_mm256_loadu_ps(buf + 2 * i + 8), hi));
        }
        for (; i < OW; i++)
            buf[2 * i] = buf[2 * i] + s[i];
    }
}

#else /* no AVX2: never called (CPOOL_HAVE_AVG_AVX2 is 0); the .pxi loops run */
#define CPOOL_HAVE_AVG_AVX2 0
static int cpool_avg_rows_avx2(const float *x, float *out, Py_ssize_t r0, Py_ssize_t r1, cpool_geometry g, int incl,
                               int override, int64_t divisor)
{
    (void)x; (void)out; (void)r0; (void)r1; (void)g; (void)incl; (void)override; (void)divisor;
    return 0;
}
static int cpool_avg_rows_nhwc_avx2(const float *x, float *out, Py_ssize_t r0, Py_ssize_t r1, cpool_geometry g,
                                    Py_ssize_t C, int incl, int override, int64_t divisor)
{
    (void)x; (void)out; (void)r0; (void)r1; (void)g; (void)C; (void)incl; (void)override; (void)divisor;
    return 0;
}
static int cpool_avg3d_rows_avx2(const float *x, float *out, Py_ssize_t r0, Py_ssize_t r1, cpool_geometry3 g3,
                                 int incl, int override, int64_t divisor)
{
    (void)x; (void)out; (void)r0; (void)r1; (void)g3; (void)incl; (void)override; (void)divisor;
    return 0;
}
static void cpool_avg_backward_images_avx2(const float *go, float *gi, Py_ssize_t n0, Py_ssize_t n1,
                                           cpool_geometry g, Py_ssize_t C, int incl, int override,
                                           int64_t divisor)
{
    (void)go; (void)gi; (void)n0; (void)n1; (void)g; (void)C; (void)incl; (void)override; (void)divisor;
}
static int cpool_avg_backward_planes_avx2(const float *go, float *gi, Py_ssize_t p0, Py_ssize_t p1,
                                          cpool_geometry g, int incl, int override, int64_t divisor)
{
    (void)go; (void)gi; (void)p0; (void)p1; (void)g; (void)incl; (void)override; (void)divisor;
    return 0;
}
static void cpool_avg3d_share_row_s2_avx2(float *buf, const float *s, Py_ssize_t OW, Py_ssize_t kw, int fresh,
                                          Py_ssize_t n)
{
    (void)buf; (void)s; (void)OW; (void)kw; (void)fresh; (void)n;
}
#endif

#endif /* CPOOL_AVG_AVX2_H */
