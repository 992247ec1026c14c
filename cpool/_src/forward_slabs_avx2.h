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
 * the results are the same bits.
 */
#ifndef CPOOL_FORWARD_SLABS_AVX2_H
#define CPOOL_FORWARD_SLABS_AVX2_H

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "forward_nhwc_avx2.h"

#define CPOOL_SLAB 32                       /* planes a slab: four vectors, the channels-last kernel's widest sweep */
#define CPOOL_SLAB_BUFFER ((Py_ssize_t)256 << 10)  /* the most bytes of input one slab transposes */
/* Rows of fewer outputs than this go in slabs. The general planes kernel
   runs 8-output vectors and scalar edges; at 1 thread (a Xeon, 3x3 stride
   2 padding 1) slabs measured 8x faster for 15x15 planes (8 outputs a
   row), 1.4x for 28x28 values (about even with indices), and mixed at
   32x32 (16 a row: 0.91x values, 1.12x indices). */
#define CPOOL_SLAB_MIN_OW 16

#if defined(__AVX2__)
#define CPOOL_HAVE_FORWARD_SLABS_AVX2 1

/* Whether the planes kernels have no vector path worth it for this
   geometry (and it is not one of the oversized kernels, which have loops of
   their own) and a slab of CPOOL_SLAB planes fits the buffer. is_2x2: the
   2x2 stride-2 kernel's geometry. */
static int cpool_slabs_apply(const cpool_geometry *g, int is_2x2)
{
    const int narrow = is_2x2 ? g->OW < 4 : g->OW < CPOOL_SLAB_MIN_OW || g->sw > 2;
    return narrow && !cpool_kernel_oversized(g) && cpool_plane_fits_int32(g) && g->OH > 0 && g->OW > 0
        && g->H * g->W <= CPOOL_SLAB_BUFFER / (CPOOL_SLAB * (Py_ssize_t)sizeof(float));
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

/* Whole planes p0 .. p1 - 1 (p1 - p0 >= 2). Callers check
   cpool_slabs_apply(); returns 0 (nothing written) if the buffer cannot be
   allocated. */
static int cpool_forward_slabs_avx2(const float *x, float *out, int32_t *i32, int64_t *i64, Py_ssize_t p0,
                                    Py_ssize_t p1, cpool_geometry g)
{
    const Py_ssize_t plane = g.H * g.W, oplane = g.OH * g.OW;
    const size_t index_bytes = i64 ? sizeof(int64_t) : i32 ? sizeof(int32_t) : 0;
    float *xb, *ob;
    void *ib = NULL;
    Py_ssize_t p = p0;
    xb = (float *)malloc((size_t)(CPOOL_SLAB * (plane + oplane)) * sizeof(float)
                         + (size_t)(CPOOL_SLAB * oplane) * index_bytes);
    if (!xb)
        return 0;
    ob = xb + CPOOL_SLAB * plane;
    if (index_bytes)
        ib = ob + CPOOL_SLAB * oplane;
    while (p < p1) {
        /* A slab of n planes; never a last slab of one (the channels-last
           kernel takes two channels or more): it borrows one from the slab
           before. */
        Py_ssize_t n = p1 - p < CPOOL_SLAB ? p1 - p : CPOOL_SLAB;
        if (p1 - p - n == 1)
            n--;
        /* n planes (rows of `plane` elements) to pixels of n channels, and back */
        cpool_transpose32(x + p * plane, plane, n, plane, xb, n);
        cpool_forward_nhwc_avx2(xb, ob, i32 ? (int32_t *)ib : NULL, i64 ? (int64_t *)ib : NULL, 0, g.OH, g, n);
        cpool_transpose32(ob, n, oplane, n, out + p * oplane, oplane);
        if (i32)
            cpool_transpose32((const float *)ib, n, oplane, n, (float *)(i32 + p * oplane), oplane);
        if (i64)
            cpool_transpose64((const int64_t *)ib, n, oplane, n, i64 + p * oplane, oplane);
        p += n;
    }
    free(xb);
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
