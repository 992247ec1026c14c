/* AVX2 single-pass backward for float32 channels-last memory whose indices
 * each lie in their own output's 2x2 cell (kernel 2, stride 2): one output
 * row, channels [c0, c1), int32 or int64 indices (one pointer NULL). See
 * backward_nhwc.pxi's _nhwc_cells, which this computes exactly: each cell
 * position gets go + 0 where the index names it and 0 elsewhere (go + 0
 * turns -0.0 into +0.0, as zero-then-add does), and every index is checked
 * exactly (all 64 bits) against its cell's four positions and -1.
 *
 * Returns 1 when every index of the row was in its cell; 0 otherwise (what
 * was written is then redone by the caller's zero-and-scatter).
 */
#ifndef CPOOL_BACKWARD_NHWC_AVX2_H
#define CPOOL_BACKWARD_NHWC_AVX2_H

#include "common.h"

#if defined(__AVX2__)
#include <immintrin.h>
#define CPOOL_HAVE_BACKWARD_NHWC_AVX2 1

/* Eight 64-bit lane masks (two vectors) as eight 32-bit lane masks, in order. */
static CPOOL_ALWAYS_INLINE __m256 cpool_narrow_masks(__m256i lo, __m256i hi)
{
    __m256 m = _mm256_shuffle_ps(_mm256_castsi256_ps(lo), _mm256_castsi256_ps(hi), _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(m), 0xD8));
}

/* Lane masks of k == p for the 8 indices at `at`, and whether each is one
   of its cell's positions or -1 (`in`). Lane j's cell starts at position
   p00 + shift[j]: shift is all zeros for eight channels of one pixel, and
   2 * (j / n) for 8 / n consecutive outputs of n channels each. */
static CPOOL_ALWAYS_INLINE void cpool_cell_masks8(const int32_t *i32, const int64_t *i64, Py_ssize_t at, int64_t p00,
                                                  Py_ssize_t W, const int32_t *shift, __m256 *m, __m256 *in)
{
    const __m256i s32 = _mm256_loadu_si256((const __m256i *)shift);
    const int64_t off[4] = {0, 1, W, W + 1};
    int t;
    if (i64) {
        __m256i lo = _mm256_loadu_si256((const __m256i *)(i64 + at));
        __m256i hi = _mm256_loadu_si256((const __m256i *)(i64 + at + 4));
        const __m256i base_lo = _mm256_add_epi64(_mm256_set1_epi64x(p00), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(s32)));
        const __m256i base_hi = _mm256_add_epi64(_mm256_set1_epi64x(p00), _mm256_cvtepi32_epi64(_mm256_extracti128_si256(s32, 1)));
        __m256i any_lo = _mm256_cmpeq_epi64(lo, _mm256_set1_epi64x(-1));
        __m256i any_hi = _mm256_cmpeq_epi64(hi, _mm256_set1_epi64x(-1));
        for (t = 0; t < 4; t++) {
            __m256i e_lo = _mm256_cmpeq_epi64(lo, _mm256_add_epi64(base_lo, _mm256_set1_epi64x(off[t])));
            __m256i e_hi = _mm256_cmpeq_epi64(hi, _mm256_add_epi64(base_hi, _mm256_set1_epi64x(off[t])));
            any_lo = _mm256_or_si256(any_lo, e_lo);
            any_hi = _mm256_or_si256(any_hi, e_hi);
            m[t] = cpool_narrow_masks(e_lo, e_hi);
        }
        *in = cpool_narrow_masks(any_lo, any_hi);
    } else {
        __m256i k = _mm256_loadu_si256((const __m256i *)(i32 + at));
        const __m256i base = _mm256_add_epi32(_mm256_set1_epi32((int32_t)p00), s32);
        __m256i any = _mm256_cmpeq_epi32(k, _mm256_set1_epi32(-1));
        for (t = 0; t < 4; t++) {
            __m256i e = _mm256_cmpeq_epi32(k, _mm256_add_epi32(base, _mm256_set1_epi32((int32_t)off[t])));
            any = _mm256_or_si256(any, e);
            m[t] = _mm256_castsi256_ps(e);
        }
        *in = _mm256_castsi256_ps(any);
    }
}

/* Lane shifts for cpool_cell_masks8: one pixel (row 0), and 8 / n outputs
   of n = 1, 2, 4 channels (rows 1, 2, 3). */
static const int32_t cpool_cell_shift[4][8] = {
    {0, 0, 0, 0, 0, 0, 0, 0}, {0, 2, 4, 6, 8, 10, 12, 14}, {0, 0, 2, 2, 4, 4, 6, 6}, {0, 0, 0, 0, 2, 2, 2, 2}};

/* 16 floats of one cell row, from the masked values of its left (a) and
   right (b) positions for 8 / n outputs of n channels: a's and b's groups
   of n interleaved, a first. */
static CPOOL_ALWAYS_INLINE void cpool_store_cell_row(float *dst, __m256 a, __m256 b, int n)
{
    __m256 lo, hi;
    if (n == 4) {
        lo = a;
        hi = b;
    } else if (n == 2) {
        lo = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(a), _mm256_castps_pd(b)));
        hi = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(a), _mm256_castps_pd(b)));
    } else {
        lo = _mm256_unpacklo_ps(a, b);
        hi = _mm256_unpackhi_ps(a, b);
    }
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(dst + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}

/* The cells of 8 / n consecutive outputs of n = 1, 2 or 4 channels (all of
   each pixel's), from output `at` whose cell starts at position p00 in
   grad_input `gi` (gi + p00 * n is its top-left). Returns the movemask of
   the lanes whose index was in its cell or -1. */
static CPOOL_ALWAYS_INLINE int cpool_nhwc_cells8(const float *go, const int32_t *i32, const int64_t *i64,
                                                 Py_ssize_t at, int64_t p00, Py_ssize_t W, float *gi, int n)
{
    __m256 m[4], in;
    const __m256 g = _mm256_add_ps(_mm256_loadu_ps(go + at), _mm256_setzero_ps());
    float *top = gi + p00 * n;
    cpool_cell_masks8(i32, i64, at, p00, W, cpool_cell_shift[n == 1 ? 1 : n == 2 ? 2 : 3], m, &in);
    cpool_store_cell_row(top, _mm256_and_ps(g, m[0]), _mm256_and_ps(g, m[1]), n);
    cpool_store_cell_row(top + W * n, _mm256_and_ps(g, m[2]), _mm256_and_ps(g, m[3]), n);
    return _mm256_movemask_ps(in);
}

/* Channels [c, c + 8) of one pixel (its grad_output and indices at `at`):
   the four cell positions' stores. Returns the movemask of the lanes whose
   index was one of the positions or -1. */
static CPOOL_ALWAYS_INLINE int cpool_nhwc_cell8(const float *go, const int32_t *i32, const int64_t *i64,
                                                Py_ssize_t at, int64_t p00, Py_ssize_t W, float *const *dst,
                                                Py_ssize_t c)
{
    __m256 m[4], in;
    const __m256 g = _mm256_add_ps(_mm256_loadu_ps(go + at), _mm256_setzero_ps());
    int t;
    cpool_cell_masks8(i32, i64, at, p00, W, cpool_cell_shift[0], m, &in);
    for (t = 0; t < 4; t++)
        _mm256_storeu_ps(dst[t] + c, _mm256_and_ps(g, m[t]));
    return _mm256_movemask_ps(in);
}

/* Channel c of one pixel, without branches: which of the four positions an
   index names is random, and a branch on it mispredicts about every other
   element (that made 4-channel memory 20x slower than planes). Returns
   whether the index was one of the positions or -1. */
static CPOOL_ALWAYS_INLINE int cpool_nhwc_cell1(const float *go, const int32_t *i32, const int64_t *i64,
                                                Py_ssize_t at, int64_t p00, Py_ssize_t W, float *const *dst,
                                                Py_ssize_t c)
{
    const int64_t k = i64 ? i64[at] : (int64_t)i32[at];
    const float v = go[at] + 0.0f;
    uint32_t bits;
    int t, hit = k == -1;
    memcpy(&bits, &v, sizeof bits);
    for (t = 0; t < 4; t++) {
        const int here = k == p00 + (t & 1) + (t >> 1) * W;
        const uint32_t b = bits & (0u - (uint32_t)here);
        memcpy(dst[t] + c, &b, sizeof b);
        hit |= here;
    }
    return hit;
}

static CPOOL_ALWAYS_INLINE int cpool_nhwc_cells_row(const float *go, const int32_t *i32, const int64_t *i64, float *gi,
                                                    Py_ssize_t oh, Py_ssize_t W, Py_ssize_t OW, Py_ssize_t C,
                                                    Py_ssize_t c0, Py_ssize_t c1)
{
    const Py_ssize_t n = c1 - c0;
    /* Fewer than 8 channels, all of each pixel's: one vector from c0 per
       position, whose lanes past c1 spill into the positions to its right
       (the next position of the cell, then later cells and the columns
       right of the last cell), which are all written after it. Its loads
       reach `spill` outputs further along the row, so the last `spill`
       outputs of a row go channel by channel. */
    const int narrow = n < 8 && c0 == 0 && c1 == C;
    const Py_ssize_t spill = narrow ? 7 / n : 0;
    const int lanes = narrow ? (1 << n) - 1 : 0xFF;
    Py_ssize_t ow = 0, c;
    int ok = 1;
    if (narrow && (n == 1 || n == 2 || n == 4)) {
        const Py_ssize_t group = 8 / n;
        for (; ow + group <= OW; ow += group)
            ok &= cpool_nhwc_cells8(go, i32, i64, (oh * OW + ow) * n, 2 * oh * W + 2 * ow, W, gi, (int)n) == 0xFF;
    }
    for (; ow < OW; ow++) {
        const int64_t p00 = 2 * oh * W + 2 * ow;
        const Py_ssize_t base = (oh * OW + ow) * C;
        float *dst[4];
        dst[0] = gi + p00 * C;
        dst[1] = dst[0] + C;
        dst[2] = dst[0] + W * C;
        dst[3] = dst[2] + C;
        if (n >= 8) {
            for (c = c0; c + 8 <= c1; c += 8)
                ok &= cpool_nhwc_cell8(go, i32, i64, base + c, p00, W, dst, c) == 0xFF;
            /* The last channels: the vector ending at c1, which rewrites
               lanes already written with the same values. */
            if (c < c1)
                ok &= cpool_nhwc_cell8(go, i32, i64, base + c1 - 8, p00, W, dst, c1 - 8) == 0xFF;
        } else if (narrow && ow + spill < OW) {
            ok &= (cpool_nhwc_cell8(go, i32, i64, base + c0, p00, W, dst, c0) & lanes) == lanes;
        } else {
            for (c = c0; c < c1; c++)
                ok &= cpool_nhwc_cell1(go, i32, i64, base + c, p00, W, dst, c);
        }
    }
    return ok;
}

static int cpool_nhwc_cells_row_avx2(const float *go, const int32_t *i32, const int64_t *i64, float *gi,
                                     Py_ssize_t oh, Py_ssize_t W, Py_ssize_t OW, Py_ssize_t C, Py_ssize_t c0,
                                     Py_ssize_t c1)
{
    if (i64)
        return cpool_nhwc_cells_row(go, NULL, i64, gi, oh, W, OW, C, c0, c1);
    return cpool_nhwc_cells_row(go, i32, NULL, gi, oh, W, OW, C, c0, c1);
}

#else
#define CPOOL_HAVE_BACKWARD_NHWC_AVX2 0
static int cpool_nhwc_cells_row_avx2(const float *go, const int32_t *i32, const int64_t *i64, float *gi,
                                     Py_ssize_t oh, Py_ssize_t W, Py_ssize_t OW, Py_ssize_t C, Py_ssize_t c0,
                                     Py_ssize_t c1)
{
    (void)go; (void)i32; (void)i64; (void)gi; (void)oh; (void)W; (void)OW; (void)C; (void)c0; (void)c1;
    return 0;
}
#endif

#endif /* CPOOL_BACKWARD_NHWC_AVX2_H */
