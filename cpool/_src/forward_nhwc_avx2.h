/* AVX2 forward kernel for float32 channels-last memory: (N, H, W, C)
 * input, (N, OH, OW, C) values and int32 / int64 indices (values only when
 * both index pointers are NULL).
 *
 * Each output pixel's window is worked out once (its in-bounds taps, their
 * plane offsets) and shared by all C channels; the channels go 32 at a time
 * (four vectors whose running maxima and indices stay in registers across
 * the window's taps), then 8 at a time, then the last C % 8 with masked
 * loads and stores, so no channel count falls off a cliff. Each lane folds
 * its own window with PyTorch's rule, "take v if v > best or v is NaN", in
 * row-major tap order, seeded by the first in-bounds tap (PyTorch seeds the
 * index with it whatever its value). The portable loops of forward_nhwc.pxi
 * compute the same thing and are what the tests hold this kernel to.
 *
 * Offsets are 32-bit lanes: callers send only planes for which
 * cpool_plane_fits_int32() holds, and only with C >= 2 (one channel is the
 * planes layout, and goes to the planes kernels).
 */
#ifndef CPOOL_FORWARD_NHWC_AVX2_H
#define CPOOL_FORWARD_NHWC_AVX2_H

#include "common.h"

#if defined(__AVX2__)
#include <immintrin.h>
#define CPOOL_HAVE_FORWARD_NHWC_AVX2 1

/* Taps t in [*lo, *hi) of a window whose tap t sits at start + t*d, those
   inside [0, size); as forward_nhwc.pxi's _tap_range. */
static CPOOL_ALWAYS_INLINE void cpool_nhwc_tap_range(Py_ssize_t start, Py_ssize_t k, Py_ssize_t d, Py_ssize_t size,
                                                     Py_ssize_t *lo, Py_ssize_t *hi)
{
    Py_ssize_t a, b;
    if (d == 1) {
        a = start >= 0 ? 0 : -start;
        b = size - start < k ? size - start : k;
    } else {
        a = start >= 0 ? 0 : (d - 1 - start) / d;
        b = start >= size ? 0 : (size - 1 - start) / d + 1;
        b = b < k ? b : k;
    }
    *lo = a;
    *hi = b > a ? b : a;
}

/* The last C % 8 channels of a tap at q: a plain load wherever 8 floats
   from q stay inside the input (the lanes past the channels then hold the
   next pixel's, which are folded but never stored), a masked load only at
   the input's end: masked moves are microcoded and slow on some CPUs (AMD's). */
static CPOOL_ALWAYS_INLINE __m256 cpool_tail_load(const float *q, const float *end, __m256i mask)
{
    return q + 8 <= end ? _mm256_loadu_ps(q) : _mm256_maskload_ps(q, mask);
}

/* The same for the store of the last C % 8 channels at o: a plain store
   when the 8 lanes stay inside the output row (the lanes past the channels
   land on the next pixel's, which is written after, by the same thread). */
static CPOOL_ALWAYS_INLINE void cpool_tail_store(float *o, const float *row_end, __m256i mask, __m256 v)
{
    if (o + 8 <= row_end)
        _mm256_storeu_ps(o, v);
    else
        _mm256_maskstore_ps(o, mask, v);
}

/* One window, NV vectors of channels from `p` (the window's first tap's
   channel c), with `mask` lanes only when MASKED (NV == 1 then); `end`
   bounds the input. */
static CPOOL_ALWAYS_INLINE void cpool_nhwc_fold(const float *p, const float *end, const cpool_geometry *g,
                                                Py_ssize_t C, Py_ssize_t first,
                                                Py_ssize_t ilo, Py_ssize_t ihi, Py_ssize_t jlo, Py_ssize_t jhi,
                                                const int NV, const int MASKED, __m256i mask, const int WITH_IDX,
                                                __m256 *best, __m256i *bi)
{
    Py_ssize_t i, j, v;
    const Py_ssize_t rowstep = g->dh * g->W, colstep = g->dw;
    /* The first tap seeds every lane. */
    for (v = 0; v < NV; v++) {
        best[v] = MASKED ? cpool_tail_load(p, end, mask) : _mm256_loadu_ps(p + 8 * v);
        if (WITH_IDX)
            bi[v] = _mm256_set1_epi32((int32_t)first);
    }
    for (i = ilo; i < ihi; i++) {
        Py_ssize_t rowpos = first + (i - ilo) * rowstep;
        for (j = (i == ilo ? jlo + 1 : jlo); j < jhi; j++) {
            Py_ssize_t pos = rowpos + (j - jlo) * colstep;
            const float *q = p + (pos - first) * C;
            __m256i at = _mm256_set1_epi32((int32_t)pos);
            for (v = 0; v < NV; v++) {
                __m256 x = MASKED ? cpool_tail_load(q, end, mask) : _mm256_loadu_ps(q + 8 * v);
                __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
                if (WITH_IDX) {
                    __m256 take = _mm256_or_ps(_mm256_cmp_ps(x, best[v], _CMP_GT_OQ), nan);
                    best[v] = _mm256_blendv_ps(best[v], x, take);
                    bi[v] = _mm256_blendv_epi8(bi[v], at, _mm256_castps_si256(take));
                } else {
                    /* MAXPS(x, best) is "x > best ? x : best"; a NaN x then wins by the blend. */
                    best[v] = _mm256_blendv_ps(_mm256_max_ps(x, best[v]), x, nan);
                }
            }
        }
    }
}

/* Store 8 int32 lane indices at i32 + at or i64 + at (`n` of them: 8, or
   the masked tail's count). */
static CPOOL_ALWAYS_INLINE void cpool_nhwc_store_index(int32_t *i32, int64_t *i64, Py_ssize_t at, __m256i bi,
                                                       int n)
{
    if (n == 8) {
        if (i32) {
            _mm256_storeu_si256((__m256i *)(i32 + at), bi);
        } else {
            _mm256_storeu_si256((__m256i *)(i64 + at), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(bi)));
            _mm256_storeu_si256((__m256i *)(i64 + at + 4), _mm256_cvtepi32_epi64(_mm256_extracti128_si256(bi, 1)));
        }
    } else {
        int32_t lanes[8];
        int c;
        _mm256_storeu_si256((__m256i *)lanes, bi);
        for (c = 0; c < n; c++) {
            if (i32)
                i32[at + c] = lanes[c];
            else
                i64[at + c] = lanes[c];
        }
    }
}

/* Kernel 2, stride 2, no padding or dilation, every window complete (the
   MNIST case): the four taps at fixed offsets, no per-pixel bounds. */
static CPOOL_ALWAYS_INLINE void cpool_nhwc_fold2x2(const float *p, const float *end, Py_ssize_t C, Py_ssize_t W,
                                                   Py_ssize_t first,
                                                   const int NV, const int MASKED, __m256i mask, const int WITH_IDX,
                                                   __m256 *best, __m256i *bi)
{
    const Py_ssize_t off[4] = {0, C, W * C, W * C + C};
    const Py_ssize_t pos[4] = {first, first + 1, first + W, first + W + 1};
    int t, v;
    for (v = 0; v < NV; v++) {
        best[v] = MASKED ? cpool_tail_load(p, end, mask) : _mm256_loadu_ps(p + 8 * v);
        if (WITH_IDX)
            bi[v] = _mm256_set1_epi32((int32_t)first);
    }
    for (t = 1; t < 4; t++) {
        const __m256i at = _mm256_set1_epi32((int32_t)pos[t]);
        for (v = 0; v < NV; v++) {
            __m256 x = MASKED ? cpool_tail_load(p + off[t], end, mask) : _mm256_loadu_ps(p + off[t] + 8 * v);
            __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
            if (WITH_IDX) {
                __m256 take = _mm256_or_ps(_mm256_cmp_ps(x, best[v], _CMP_GT_OQ), nan);
                best[v] = _mm256_blendv_ps(best[v], x, take);
                bi[v] = _mm256_blendv_epi8(bi[v], at, _mm256_castps_si256(take));
            } else {
                best[v] = _mm256_blendv_ps(_mm256_max_ps(x, best[v]), x, nan);
            }
        }
    }
}

/* A window's fold, 2x2 (K2) or general, as cpool_nhwc_pixel's K2 says. */
static CPOOL_ALWAYS_INLINE void cpool_nhwc_window(const float *p, const float *end, const cpool_geometry *g,
                                                  Py_ssize_t C, Py_ssize_t first, Py_ssize_t ilo, Py_ssize_t ihi,
                                                  Py_ssize_t jlo, Py_ssize_t jhi, const int K2, const int NV,
                                                  const int MASKED, __m256i mask, const int WITH_IDX,
                                                  __m256 *best, __m256i *bi)
{
    if (K2)
        cpool_nhwc_fold2x2(p, end, C, g->W, first, NV, MASKED, mask, WITH_IDX, best, bi);
    else
        cpool_nhwc_fold(p, end, g, C, first, ilo, ihi, jlo, jhi, NV, MASKED, mask, WITH_IDX, best, bi);
}

/* One output pixel, all C channels: the window's taps from p (its first
   tap, plane position `first`: the index the lanes record), values to o,
   indices to i32 / i64 + at. K2: a complete 2x2 window of adjacent taps
   (cpool_nhwc_fold2x2; the tap ranges unused), else taps [ilo, ihi) x
   [jlo, jhi) of g's window. */
static CPOOL_ALWAYS_INLINE void cpool_nhwc_pixel(const float *p, const float *end, float *o, const float *row_end,
                                                 int32_t *i32, int64_t *i64, Py_ssize_t at,
                                                 const cpool_geometry *g, Py_ssize_t C, Py_ssize_t first,
                                                 Py_ssize_t ilo, Py_ssize_t ihi, Py_ssize_t jlo, Py_ssize_t jhi,
                                                 const int K2, const int WITH_IDX)
{
    __m256 best[4];
    __m256i bi[4];
    Py_ssize_t c = 0;
    int v;
    for (; c + 32 <= C; c += 32) {
        cpool_nhwc_window(p + c, end, g, C, first, ilo, ihi, jlo, jhi, K2, 4, 0, _mm256_setzero_si256(), WITH_IDX,
                          best, bi);
        for (v = 0; v < 4; v++) {
            _mm256_storeu_ps(o + c + 8 * v, best[v]);
            if (WITH_IDX)
                cpool_nhwc_store_index(i32, i64, at + c + 8 * v, bi[v], 8);
        }
    }
    for (; c + 8 <= C; c += 8) {
        cpool_nhwc_window(p + c, end, g, C, first, ilo, ihi, jlo, jhi, K2, 1, 0, _mm256_setzero_si256(), WITH_IDX,
                          best, bi);
        _mm256_storeu_ps(o + c, best[0]);
        if (WITH_IDX)
            cpool_nhwc_store_index(i32, i64, at + c, bi[0], 8);
    }
    if (c < C) {
        int rest = (int)(C - c);
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(rest), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        cpool_nhwc_window(p + c, end, g, C, first, ilo, ihi, jlo, jhi, K2, 1, 1, mask, WITH_IDX,
                          best, bi);
        cpool_tail_store(o + c, row_end, mask, best[0]);
        if (WITH_IDX)
            cpool_nhwc_store_index(i32, i64, at + c, bi[0], rest);
    }
}

static CPOOL_ALWAYS_INLINE void cpool_nhwc_rows_2x2(const float *x, float *out, int32_t *i32, int64_t *i64,
                                                    Py_ssize_t r0, Py_ssize_t r1, const cpool_geometry *g,
                                                    Py_ssize_t C, const int WITH_IDX)
{
    const Py_ssize_t W = g->W, OW = g->OW;
    /* The input of the block's images: tail loads stay inside it. */
    const float *end = x + ((r1 - 1) / g->OH + 1) * g->H * W * C;
    Py_ssize_t r, ow;
    for (r = r0; r < r1; r++) {
        Py_ssize_t n = r / g->OH, oh = r - n * g->OH;
        const float *xn = x + n * g->H * W * C;
        const float *row_end = out + (r + 1) * OW * C;
        for (ow = 0; ow < OW; ow++) {
            const Py_ssize_t first = 2 * oh * W + 2 * ow, at = (r * OW + ow) * C;
            const float *p = xn + first * C;
            float *o = out + at;
            {
                /* The window's two input rows are two streams W * C floats
                   apart that restart every output row, too short for the
                   hardware prefetchers to pick up: ask for the next output
                   row's window (2 * W * C floats on) now, where it is
                   inside the block's input. On 256x64x14x14 held in L3
                   this halves the time. Below 8 channels a pixel's window
                   is under a cache line and the prefetches cost more than
                   they bring (a quarter more instructions at 4 channels). */
                const Py_ssize_t bytes = 2 * C * (Py_ssize_t)sizeof(float), below = W * C * (Py_ssize_t)sizeof(float);
                const char *next = C >= 8 && end - p > 3 * W * C + 2 * C ? (const char *)(p + 2 * W * C) : NULL;
                Py_ssize_t b;
                for (b = 0; next && b < bytes; b += 64) {
                    _mm_prefetch(next + b, _MM_HINT_T0);
                    _mm_prefetch(next + below + b, _MM_HINT_T0);
                }
            }
            cpool_nhwc_pixel(p, end, o, row_end, i32, i64, at, g, C, first, 0, 0, 0, 0, 1, WITH_IDX);
        }
    }
}

static CPOOL_ALWAYS_INLINE void cpool_nhwc_rows(const float *x, float *out, int32_t *i32, int64_t *i64,
                                                Py_ssize_t r0, Py_ssize_t r1, const cpool_geometry *g, Py_ssize_t C,
                                                const int WITH_IDX)
{
    const float *end = x + ((r1 - 1) / g->OH + 1) * g->H * g->W * C;  /* as in cpool_nhwc_rows_2x2 */
    Py_ssize_t r, ow, c;
    for (r = r0; r < r1; r++) {
        Py_ssize_t n = r / g->OH, oh = r - n * g->OH;
        const float *xn = x + n * g->H * g->W * C;
        const float *row_end = out + (r + 1) * g->OW * C;
        Py_ssize_t ih0 = oh * g->sh - g->ph, ilo, ihi;
        cpool_nhwc_tap_range(ih0, g->kh, g->dh, g->H, &ilo, &ihi);
        for (ow = 0; ow < g->OW; ow++) {
            Py_ssize_t iw0 = ow * g->sw - g->pw, jlo, jhi;
            Py_ssize_t at = (r * g->OW + ow) * C;
            cpool_nhwc_tap_range(iw0, g->kw, g->dw, g->W, &jlo, &jhi);
            if (ilo < ihi && jlo < jhi) {
                Py_ssize_t first = (ih0 + ilo * g->dh) * g->W + iw0 + jlo * g->dw;
                cpool_nhwc_pixel(xn + first * C, end, out + at, row_end, i32, i64, at, g, C, first, ilo, ihi, jlo,
                                 jhi, 0, WITH_IDX);
            } else { /* no in-bounds tap (dilation only): -inf, index -1 */
                for (c = 0; c < C; c++) {
                    out[at + c] = -INFINITY;
                    if (WITH_IDX) {
                        if (i32)
                            i32[at + c] = -1;
                        else
                            i64[at + c] = -1;
                    }
                }
            }
        }
    }
}

/* Output rows r0 .. r1 - 1 of the N * OH rows. */
static void cpool_forward_nhwc_avx2(const float *x, float *out, int32_t *i32, int64_t *i64, Py_ssize_t r0,
                                    Py_ssize_t r1, cpool_geometry g, Py_ssize_t C)
{
    if (g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 && g.dh == 1 && g.dw == 1
            && 2 * g.OH <= g.H && 2 * g.OW <= g.W) {
        if (i32)
            cpool_nhwc_rows_2x2(x, out, i32, NULL, r0, r1, &g, C, 1);
        else if (i64)
            cpool_nhwc_rows_2x2(x, out, NULL, i64, r0, r1, &g, C, 1);
        else
            cpool_nhwc_rows_2x2(x, out, NULL, NULL, r0, r1, &g, C, 0);
        return;
    }
    if (i32)
        cpool_nhwc_rows(x, out, i32, NULL, r0, r1, &g, C, 1);
    else if (i64)
        cpool_nhwc_rows(x, out, NULL, i64, r0, r1, &g, C, 1);
    else
        cpool_nhwc_rows(x, out, NULL, NULL, r0, r1, &g, C, 0);
}

#else
#define CPOOL_HAVE_FORWARD_NHWC_AVX2 0
static void cpool_forward_nhwc_avx2(const float *x, float *out, int32_t *i32, int64_t *i64, Py_ssize_t r0,
                                    Py_ssize_t r1, cpool_geometry g, Py_ssize_t C)
{
    (void)x; (void)out; (void)i32; (void)i64; (void)r0; (void)r1; (void)g; (void)C;
}
#endif

#endif /* CPOOL_FORWARD_NHWC_AVX2_H */
