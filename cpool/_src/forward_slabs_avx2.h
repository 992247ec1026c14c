/* AVX2 forward for float32 planes whose rows are too short for the
 * planes kernels' vectors to pay (under CPOOL_SLAB_MIN_OW outputs, or 4 for
 * the 2x2 kernel: a 3x3 stride-2 pooling of 28x28, 14x14 or 7x7 planes,
 * late in a network) or with a column stride they do not vectorise (3 and
 * more): values only or with int32 / int64 indices.
 *
 * Rows of 8 outputs or fewer leave most of a vector idle or run scalar,
 * and the portable loop took about 100 cycles an output on random data (a
 * branch per tap that mispredicts). Instead, slabs of up to CPOOL_SLAB
 * planes are transposed into a channels-last buffer, one plane per
 * channel, pooled there by the channels-last kernel of forward_nhwc_avx2.h
 * (one lane per plane, every lane busy), and the results transposed back:
 * oneDNN's way with NCHW data, in blocks of 16 channels. The channels-last
 * kernel folds each channel's window in the same order with the same rule
 * and writes the same plane offsets (h * W + w) as the planes kernels, so
 * the results are the same bits. Planes too large for the buffer go a band
 * of output rows at a time (the input rows those read), its indices then
 * moved down by the band's first row.
 */
#ifndef CPOOL_FORWARD_SLABS_AVX2_H
#define CPOOL_FORWARD_SLABS_AVX2_H

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "forward_nhwc_avx2.h"

#define CPOOL_SLAB 32                       /* planes a slab: four vectors, the channels-last kernel's widest sweep */
/* The most bytes one slab's band takes (input rows, outputs, indices): it stays in the L2 cache. */
#define CPOOL_SLAB_BUFFER ((Py_ssize_t)256 << 10)
/* Rows of fewer outputs than this go in slabs. The general planes kernel
   runs 8-output vectors and scalar edges; at 1 thread (a Xeon, 3x3 stride
   2 padding 1) slabs measured 8x faster for 15x15 planes (8 outputs a
   row), 1.4x for 28x28 values (about even with indices), and mixed at
   32x32 (16 a row: 0.91x values, 1.12x indices). */
#define CPOOL_SLAB_MIN_OW 16
#define CPOOL_SLAB_BAND_MAX_W 256  /* the widest rows whose planes go in bands (see cpool_slabs_apply) */

/* Planes per slab where the widest band of one output row takes `widest`
   bytes a plane: CPOOL_SLAB, or fewer (a multiple of 8) where that many
   would not fit `buffer` bytes; 0 where 8 would not. */
static inline Py_ssize_t cpool_slab_planes_for(Py_ssize_t widest, Py_ssize_t buffer)
{
    Py_ssize_t n = CPOOL_SLAB;
    while (n > 8 && n * widest > buffer)
        n -= 8;
    return n * widest <= buffer ? n : 0;
}

/* Input rows [*hs, *he) that output rows [oh0, oh1) read, clipped to the
   plane. */
static CPOOL_ALWAYS_INLINE void cpool_slab_rows(const cpool_geometry *g, Py_ssize_t oh0, Py_ssize_t oh1,
                                                Py_ssize_t *hs, Py_ssize_t *he)
{
    const Py_ssize_t a = oh0 * g->sh - g->ph, b = (oh1 - 1) * g->sh - g->ph + (g->kh - 1) * g->dh + 1;
    *hs = a > 0 ? a : 0;
    *he = b < g->H ? b : g->H;
    if (*he < *hs)
        *he = *hs;
}

/* Bytes a plane's band of output rows [oh0, oh1) takes: its input rows,
   its outputs and their indices (index_bytes each). */
static CPOOL_ALWAYS_INLINE Py_ssize_t cpool_slab_band_bytes(const cpool_geometry *g, Py_ssize_t oh0, Py_ssize_t oh1,
                                                            Py_ssize_t index_bytes)
{
    Py_ssize_t hs, he;
    cpool_slab_rows(g, oh0, oh1, &hs, &he);
    return (he - hs) * g->W * (Py_ssize_t)sizeof(float)
        + (oh1 - oh0) * g->OW * ((Py_ssize_t)sizeof(float) + index_bytes);
}

/* The end of the band that starts at output row oh0: as many output rows
   as fit `budget` bytes a plane, at least one. */
static inline Py_ssize_t cpool_slab_band_end(const cpool_geometry *g, Py_ssize_t oh0, Py_ssize_t index_bytes,
                                             Py_ssize_t budget)
{
    Py_ssize_t oh1 = oh0 + 1;
    while (oh1 < g->OH && cpool_slab_band_bytes(g, oh0, oh1 + 1, index_bytes) <= budget)
        oh1++;
    return oh1;
}

/* Planes per slab for this geometry (see cpool_slab_planes_for). */
static inline Py_ssize_t cpool_slab_planes(const cpool_geometry *g, Py_ssize_t index_bytes)
{
    Py_ssize_t oh, widest = 0;
    for (oh = 0; oh < g->OH; oh++) {
        const Py_ssize_t b = cpool_slab_band_bytes(g, oh, oh + 1, index_bytes);
        widest = b > widest ? b : widest;
    }
    return cpool_slab_planes_for(widest, CPOOL_SLAB_BUFFER);
}

#if defined(__AVX2__)
#define CPOOL_HAVE_FORWARD_SLABS_AVX2 1

/* Whether the planes kernels have no vector path worth it for this
   geometry (and it is not one of the oversized kernels, which have loops of
   their own), and either a slab of CPOOL_SLAB whole planes fits the buffer
   or the planes may go in bands: a column stride over 2 on rows of at most
   CPOOL_SLAB_BAND_MAX_W columns, where a band of one output row of 8 planes
   fits. At 1 thread (a Xeon; bands against the planes kernels): 56x56
   planes 8x8 stride 8 10.5 to 3.3 ms values and 22 to 4.2 ms with indices,
   3x3 stride 3 5.4 to 3.7 and 11.8 to 5.2 ms, 112x112 3x3 stride 3 2.3 to
   1.7 and 4.1 to 2.7 ms; slower on 512x512 planes (3x3 stride 4: 3.4 to 4.2
   ms values, 4.3 to 7.9 with indices) and, with indices, on 1000x30 planes
   3x3 stride 2. is_2x2: the 2x2 stride-2 kernel's geometry. */
static int cpool_slabs_apply(const cpool_geometry *g, int is_2x2)
{
    const int narrow = is_2x2 ? g->OW < 4 : g->OW < CPOOL_SLAB_MIN_OW || g->sw > 2;
    const int whole = g->H * g->W <= CPOOL_SLAB_BUFFER / (CPOOL_SLAB * (Py_ssize_t)sizeof(float));
    return narrow && !cpool_kernel_oversized(g) && cpool_plane_fits_int32(g) && g->OH > 0 && g->OW > 0
        && (whole || (g->sw > 2 && g->W <= CPOOL_SLAB_BAND_MAX_W))
        && cpool_slab_planes(g, (Py_ssize_t)sizeof(int64_t)) > 0;
}

/* Rows k = 0..7 of 8 floats (src + k * src_stride) written as columns:
   dst + j * dst_stride gets element j of each row, in row order. */
static CPOOL_ALWAYS_INLINE void cpool_transpose8x8(const float *src, Py_ssize_t src_stride, float *dst,
                                                   Py_ssize_t dst_stride)
{
    __m256 r[8], t[8], u[8];
    int k;
    for (k = 0; k < 8; k++)
        r[k] = _mm256_loadu_ps(src + k * src_stride);
    for (k = 0; k < 8; k += 2) {
        t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
    }
    for (k = 0; k < 8; k += 4) {
        u[k] = _mm256_shuffle_ps(t[k], t[k + 2], 0x44);
        u[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], 0xEE);
        u[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0x44);
        u[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0xEE);
    }
    for (k = 0; k < 4; k++) {
        _mm256_storeu_ps(dst + k * dst_stride, _mm256_permute2f128_ps(u[k], u[k + 4], 0x20));
        _mm256_storeu_ps(dst + (k + 4) * dst_stride, _mm256_permute2f128_ps(u[k], u[k + 4], 0x31));
    }
}

/* A transpose of 4-byte elements (float, or int32 through float loads and
   stores and memcpy, which copy bits and never read an int32 as a float):
   element (a, b) of a rows x cols matrix at src (row stride src_stride)
   goes to dst + b * dst_stride + a; 8x8 blocks by vectors, the edges one
   at a time. */
static CPOOL_ALWAYS_INLINE void cpool_transpose32(const float *src, Py_ssize_t src_stride, Py_ssize_t rows,
                                                  Py_ssize_t cols, float *dst, Py_ssize_t dst_stride)
{
    Py_ssize_t a, b;
    for (b = 0; b + 8 <= cols; b += 8) {
        for (a = 0; a + 8 <= rows; a += 8)
            cpool_transpose8x8(src + a * src_stride + b, src_stride, dst + b * dst_stride + a, dst_stride);
        for (; a < rows; a++)
            for (Py_ssize_t j = b; j < b + 8; j++)
                memcpy(dst + j * dst_stride + a, src + a * src_stride + j, 4);
    }
    for (; b < cols; b++)
        for (a = 0; a < rows; a++)
            memcpy(dst + b * dst_stride + a, src + a * src_stride + b, 4);
}

/* The same for int64 elements, one at a time. */
static CPOOL_ALWAYS_INLINE void cpool_transpose64(const int64_t *src, Py_ssize_t src_stride, Py_ssize_t rows,
                                                  Py_ssize_t cols, int64_t *dst, Py_ssize_t dst_stride)
{
    Py_ssize_t a, b, b0;
    for (b0 = 0; b0 < cols; b0 += 16)  /* in runs of 16 columns: the rows' runs and the block stay in L1 */
        for (a = 0; a < rows; a++)
            for (b = b0; b < cols && b < b0 + 16; b++)
                dst[b * dst_stride + a] = src[a * src_stride + b];
}

/* Band indices are offsets within the band's rows: moved down by `by`
   (the band's first row times W), the -1 of a window without an
   in-bounds tap kept. */
static CPOOL_ALWAYS_INLINE void cpool_slab_shift_indices(int32_t *i32, int64_t *i64, Py_ssize_t n, Py_ssize_t by)
{
    Py_ssize_t k;
    if (i32) {
        const __m256i add = _mm256_set1_epi32((int32_t)by), zero = _mm256_setzero_si256();
        for (k = 0; k + 8 <= n; k += 8) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(i32 + k));
            __m256i keep = _mm256_cmpgt_epi32(zero, v);
            _mm256_storeu_si256((__m256i *)(i32 + k), _mm256_blendv_epi8(_mm256_add_epi32(v, add), v, keep));
        }
        for (; k < n; k++)
            i32[k] = i32[k] < 0 ? i32[k] : i32[k] + (int32_t)by;
    } else {
        for (k = 0; k < n; k++)
            i64[k] = i64[k] < 0 ? i64[k] : i64[k] + by;
    }
}

/* Whole planes p0 .. p1 - 1 (p1 - p0 >= 2), in slabs of planes and bands
   of output rows (the whole plane where it fits). Callers check
   cpool_slabs_apply(); returns 0 (nothing written) if the buffer cannot be
   allocated. */
static int cpool_forward_slabs_avx2(const float *x, float *out, int32_t *i32, int64_t *i64, Py_ssize_t p0,
                                    Py_ssize_t p1, cpool_geometry g)
{
    const Py_ssize_t plane = g.H * g.W, oplane = g.OH * g.OW;
    const Py_ssize_t index_bytes = i64 ? (Py_ssize_t)sizeof(int64_t) : i32 ? (Py_ssize_t)sizeof(int32_t) : 0;
    const Py_ssize_t slab = cpool_slab_planes(&g, index_bytes), budget = CPOOL_SLAB_BUFFER / slab;
    Py_ssize_t p = p0, oh0, oh1, hs, he, in_rows = 0, out_rows = 0;
    float *xb, *ob;
    void *buf, *ib;
    /* the largest band, in rows of input and of output */
    for (oh0 = 0; oh0 < g.OH; oh0 = oh1) {
        oh1 = cpool_slab_band_end(&g, oh0, index_bytes, budget);
        cpool_slab_rows(&g, oh0, oh1, &hs, &he);
        in_rows = he - hs > in_rows ? he - hs : in_rows;
        out_rows = oh1 - oh0 > out_rows ? oh1 - oh0 : out_rows;
    }
    /* the indices first, where malloc's alignment holds for them */
    buf = malloc((size_t)(slab * out_rows * g.OW * index_bytes)
                 + (size_t)(slab * (in_rows * g.W + out_rows * g.OW)) * sizeof(float));
    if (!buf)
        return 0;
    ib = buf;
    xb = (float *)((char *)buf + slab * out_rows * g.OW * index_bytes);
    ob = xb + slab * in_rows * g.W;
    while (p < p1) {
        /* A slab of n planes; never a last slab of one (the channels-last
           kernel takes two channels or more): it borrows one from the slab
           before. */
        Py_ssize_t n = p1 - p < slab ? p1 - p : slab;
        if (p1 - p - n == 1)
            n--;
        for (oh0 = 0; oh0 < g.OH; oh0 = oh1) {
            cpool_geometry band = g;
            Py_ssize_t at = oh0 * g.OW, count;
            oh1 = cpool_slab_band_end(&g, oh0, index_bytes, budget);
            cpool_slab_rows(&g, oh0, oh1, &hs, &he);
            /* the band as a plane of its own: its rows, its outputs, its padding above */
            band.H = he - hs;
            band.OH = oh1 - oh0;
            band.ph = hs + g.ph - oh0 * g.sh;
            count = band.OH * g.OW;
            /* n planes' rows hs .. he - 1 (one run each) to pixels of n channels, and the band's outputs back */
            cpool_transpose32(x + p * plane + hs * g.W, plane, n, band.H * g.W, xb, n);
            cpool_forward_nhwc_avx2(xb, ob, i32 ? (int32_t *)ib : NULL, i64 ? (int64_t *)ib : NULL, 0, band.OH,
                                    band, n);
            cpool_transpose32(ob, n, count, n, out + p * oplane + at, oplane);
            if (index_bytes && hs > 0)
                cpool_slab_shift_indices(i32 ? (int32_t *)ib : NULL, i64 ? (int64_t *)ib : NULL, count * n,
                                         hs * g.W);
            if (i32)
                cpool_transpose32((const float *)ib, n, count, n, (float *)(i32 + p * oplane + at), oplane);
            if (i64)
                cpool_transpose64((const int64_t *)ib, n, count, n, i64 + p * oplane + at, oplane);
        }
        p += n;
    }
    free(buf);
    return 1;
}

#else
#define CPOOL_HAVE_FORWARD_SLABS_AVX2 0
static int cpool_slabs_apply(const cpool_geometry *g, int is_2x2)
{
    (void)g; (void)is_2x2;
    return 0;
}
static int cpool_forward_slabs_avx2(const float *x, float *out, int32_t *i32, int64_t *i64, Py_ssize_t p0,
                                    Py_ssize_t p1, cpool_geometry g)
{
    (void)x; (void)out; (void)i32; (void)i64; (void)p0; (void)p1; (void)g;
    return 0;
}
#endif

#endif /* CPOOL_FORWARD_SLABS_AVX2_H */
