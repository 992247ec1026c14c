/* Forward pooling for kernel 2, stride 2 (no padding or dilation, every
 * window complete) on float32 planes, with AVX2 intrinsics: values only, or
 * with int32 / int64 indices.
 *
 * The auto-vectorised loop in _kernels.pyx spends more on per-row set-up
 * than on the work when rows are short (OW = 7 or 14, the MNIST layers).
 * Here a vector of 8 windows loads 16 floats of each of the two input rows,
 * splits them into even and odd columns with two shuffles, and folds the four
 * taps with compares and blends; the lane order the shuffles leave (windows
 * 0 1 4 5 | 2 3 6 7) is undone by one permute per result.
 *
 * The fold is PyTorch's, "take v if v > best or v is NaN", applied in window
 * order. It is associative, so folding the two taps of each row first and
 * then the bottom pair into the top pair selects the same tap (value bits
 * and index) as folding the four taps one after another.
 *
 * Rows of OW >= 8 windows are done in vectors of 8, the last one overlapping
 * the one before, so nothing outside the row is read or written. Rows of 4
 * to 7 windows take one vector that runs past the row end: it reads into the
 * next row pair (which exists: the block has a next row) and writes up to 4
 * junk outputs at the start of the next output row, which that row, done
 * next, overwrites. The last row of a block, and rows of fewer than 4
 * windows, are done one window at a time.
 */
#ifndef CPOOL_FORWARD2X2_H
#define CPOOL_FORWARD2X2_H

#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define CPOOL_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define CPOOL_ALWAYS_INLINE inline
#endif

/* Window c of a row whose top-left taps are a[0], a[2], ...: the fold of
   a[2c], a[2c+1], a[W+2c], a[W+2c+1] and, in *off, the offset of the chosen
   tap from a[2c]. */
static CPOOL_ALWAYS_INLINE float cpool_fold2x2_one(const float *a, Py_ssize_t W, Py_ssize_t c, Py_ssize_t *off)
{
    const float *t = a + 2 * c;
    float best = t[0], v;
    Py_ssize_t o = 0;
    v = t[1];
    if (v > best || v != v) { best = v; o = 1; }
    v = t[W];
    if (v > best || v != v) { best = v; o = W; }
    v = t[W + 1];
    if (v > best || v != v) { best = v; o = W + 1; }
    *off = o;
    return best;
}

#if defined(__AVX2__)
#include <immintrin.h>
#define CPOOL_HAVE_FORWARD2X2 1

/* 1: use these kernels, 0: the auto-vectorised loop. Set by
   cpool._kernels*.forward_isa() so tests can compare the two. */
static int cpool_forward2x2_on = 1;

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

/* Undo the shuffles' lane order (64-bit pairs 0 2 1 3). */
static CPOOL_ALWAYS_INLINE __m256 cpool_unsplit_ps(__m256 v)
{
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8));
}

/* 8 windows whose top-left taps are a[0], a[2], ..., a[14]: store their
   values at o[0..8) and, when idx_bytes is 4 or 8, the indices first + 2c +
   offset at idx + at (idx_bytes is a constant after inlining). */
static CPOOL_ALWAYS_INLINE void cpool_forward2x2_8(const float *a, Py_ssize_t W, float *o, void *idx,
                                                   int idx_bytes, Py_ssize_t at, int32_t first)
{
    __m256 t0 = _mm256_loadu_ps(a), t1 = _mm256_loadu_ps(a + 8);
    __m256 b0 = _mm256_loadu_ps(a + W), b1 = _mm256_loadu_ps(a + W + 8);
    __m256 te = _mm256_shuffle_ps(t0, t1, 0x88), to = _mm256_shuffle_ps(t0, t1, 0xDD);
    __m256 be = _mm256_shuffle_ps(b0, b1, 0x88), bo = _mm256_shuffle_ps(b0, b1, 0xDD);
    if (idx_bytes == 0) {
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
    __m256i ix = _mm256_add_epi32(_mm256_permute4x64_epi64(off, 0xD8),
                                  _mm256_add_epi32(_mm256_set1_epi32(first),
                                                   _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)));
    _mm256_storeu_ps(o, cpool_unsplit_ps(_mm256_blendv_ps(r0, r1, k)));
    if (idx_bytes == 4) {
        _mm256_storeu_si256((__m256i *)((int32_t *)idx + at), ix);
    } else {
        int64_t *i64 = (int64_t *)idx + at;
        _mm256_storeu_si256((__m256i *)i64, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(ix)));
        _mm256_storeu_si256((__m256i *)(i64 + 4), _mm256_cvtepi32_epi64(_mm256_extracti128_si256(ix, 1)));
    }
}

/* Output rows [r0, r1) of P planes of OH rows (row r is plane r / OH, row
   r % OH). Needs H*W < 2**31 (offsets in 32-bit lanes), 2*OH <= H and
   2*OW <= W. */
static CPOOL_ALWAYS_INLINE void cpool_forward2x2_rows(const float *x, float *out, void *idx, int idx_bytes,
                                                      Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t H, Py_ssize_t W,
                                                      Py_ssize_t OH, Py_ssize_t OW)
{
    Py_ssize_t r, c, off, p = r0 / OH, oh = r0 - p * OH;
    for (r = r0; r < r1; r++) {
        const float *a = x + p * H * W + 2 * oh * W;
        float *o = out + r * OW;
        int32_t first = (int32_t)(2 * oh * W);
        if (OW >= 8) {
            for (c = 0;; c += 8) {
                if (c + 8 > OW)
                    c = OW - 8;  /* overlaps the vector before: same windows, same results */
                cpool_forward2x2_8(a + 2 * c, W, o + c, idx, idx_bytes, r * OW + c, first + (int32_t)(2 * c));
                if (c + 8 == OW)
                    break;
            }
        } else if (OW >= 4 && r + 1 < r1) {
            cpool_forward2x2_8(a, W, o, idx, idx_bytes, r * OW, first);
        } else {
            for (c = 0; c < OW; c++) {
                o[c] = cpool_fold2x2_one(a, W, c, &off);
                if (idx_bytes == 4)
                    ((int32_t *)idx)[r * OW + c] = first + (int32_t)(2 * c + off);
                else if (idx_bytes == 8)
                    ((int64_t *)idx)[r * OW + c] = first + 2 * c + off;
            }
        }
        if (++oh == OH) {
            oh = 0;
            p++;
        }
    }
}

#else /* no AVX2: _kernels.pyx uses its auto-vectorised loop */
#define CPOOL_HAVE_FORWARD2X2 0
static int cpool_forward2x2_on = 0;
static CPOOL_ALWAYS_INLINE void cpool_forward2x2_rows(const float *x, float *out, void *idx, int idx_bytes,
                                                      Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t H, Py_ssize_t W,
                                                      Py_ssize_t OH, Py_ssize_t OW)
{
    (void)x; (void)out; (void)idx; (void)idx_bytes; (void)r0; (void)r1; (void)H; (void)W; (void)OH; (void)OW;
}
#endif

/* One function per output kind, so idx_bytes is a constant in each. */
static void cpool_forward2x2_f32(const float *x, float *out, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t H,
                                 Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)
{
    cpool_forward2x2_rows(x, out, NULL, 0, r0, r1, H, W, OH, OW);
}

static void cpool_forward2x2_f32_i32(const float *x, float *out, int32_t *idx, Py_ssize_t r0, Py_ssize_t r1,
                                     Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)
{
    cpool_forward2x2_rows(x, out, idx, 4, r0, r1, H, W, OH, OW);
}

static void cpool_forward2x2_f32_i64(const float *x, float *out, int64_t *idx, Py_ssize_t r0, Py_ssize_t r1,
                                     Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)
{
    cpool_forward2x2_rows(x, out, idx, 8, r0, r1, H, W, OH, OW);
}

#endif /* CPOOL_FORWARD2X2_H */
