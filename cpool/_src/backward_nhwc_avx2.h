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
   of the cell's positions or -1 (`in`). */
static CPOOL_ALWAYS_INLINE void cpool_cell_masks8(const int32_t *i32, const int64_t *i64, Py_ssize_t at, int64_t p00,
                                                  Py_ssize_t W, __m256 *m, __m256 *in)
{
    if (i64) {
        __m256i lo = _mm256_loadu_si256((const __m256i *)(i64 + at));
        __m256i hi = _mm256_loadu_si256((const __m256i *)(i64 + at + 4));
        const int64_t pos[4] = {p00, p00 + 1, p00 + W, p00 + W + 1};
        __m256i any_lo = _mm256_cmpeq_epi64(lo, _mm256_set1_epi64x(-1));
        __m256i any_hi = _mm256_cmpeq_epi64(hi, _mm256_set1_epi64x(-1));
        int t;
        for (t = 0; t < 4; t++) {
            __m256i q = _mm256_set1_epi64x(pos[t]);
            __m256i e_lo = _mm256_cmpeq_epi64(lo, q), e_hi = _mm256_cmpeq_epi64(hi, q);
            any_lo = _mm256_or_si256(any_lo, e_lo);
            any_hi = _mm256_or_si256(any_hi, e_hi);
            m[t] = cpool_narrow_masks(e_lo, e_hi);
        }
        *in = cpool_narrow_masks(any_lo, any_hi);
    } else {
        __m256i k = _mm256_loadu_si256((const __m256i *)(i32 + at));
        const int32_t pos[4] = {(int32_t)p00, (int32_t)(p00 + 1), (int32_t)(p00 + W), (int32_t)(p00 + W + 1)};
        __m256i any = _mm256_cmpeq_epi32(k, _mm256_set1_epi32(-1));
        int t;
        for (t = 0; t < 4; t++) {
            __m256i e = _mm256_cmpeq_epi32(k, _mm256_set1_epi32(pos[t]));
            any = _mm256_or_si256(any, e);
            m[t] = _mm256_castsi256_ps(e);
        }
        *in = _mm256_castsi256_ps(any);
    }
}

static CPOOL_ALWAYS_INLINE int cpool_nhwc_cells_row(const float *go, const int32_t *i32, const int64_t *i64, float *gi,
                                                    Py_ssize_t oh, Py_ssize_t W, Py_ssize_t OW, Py_ssize_t C,
                                                    Py_ssize_t c0, Py_ssize_t c1)
{
    const __m256 zero = _mm256_setzero_ps();
    Py_ssize_t ow, c;
    int ok = 1;
    for (ow = 0; ow < OW; ow++) {
        const int64_t p00 = 2 * oh * W + 2 * ow;
        const Py_ssize_t base = (oh * OW + ow) * C;
        float *dst[4];
        dst[0] = gi + p00 * C;
        dst[1] = dst[0] + C;
        dst[2] = dst[0] + W * C;
        dst[3] = dst[2] + C;
        for (c = c0; c + 8 <= c1; c += 8) {
            __m256 m[4], in;
            __m256 g = _mm256_add_ps(_mm256_loadu_ps(go + base + c), zero);
            int t;
            cpool_cell_masks8(i32, i64, base + c, p00, W, m, &in);
            for (t = 0; t < 4; t++)
                _mm256_storeu_ps(dst[t] + c, _mm256_and_ps(g, m[t]));
            ok &= _mm256_movemask_ps(in) == 0xFF;
        }
        for (; c < c1; c++) {
            const int64_t k = i64 ? i64[base + c] : (int64_t)i32[base + c];
            const float v = go[base + c] + 0.0f;
            int t;
            for (t = 0; t < 4; t++) {
                const int64_t q = p00 + (t & 1) + (t >> 1) * W;
                dst[t][c] = k == q ? v : 0.0f;
            }
            ok &= k == p00 || k == p00 + 1 || k == p00 + W || k == p00 + W + 1 || k == -1;
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
