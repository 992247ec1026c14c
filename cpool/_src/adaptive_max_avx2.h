/* AVX2 adaptive max pooling for float32, values only or with int64
 * indices: PyTorch's windows (output o of an axis of out_len pools input
 * [o * size / out_len, ceil((o + 1) * size / out_len))), folded by the
 * channels-last window fold of forward_nhwc_avx2.h, which is PyTorch's
 * rule ("take v if v > best or v is NaN" in row-major order, the index the
 * plane offset h * W + w; seeding by the first tap gives what PyTorch's
 * -inf seed and first-tap index give).
 *
 * Channels-last memory ((N, H, W, C)): each output pixel's window is shared
 * by all C channels, as in the max-pooling kernel.
 *
 * Planes ((N, C, H, W)): a scalar fold per window runs a branch per tap
 * that mispredicts on random data, about 10x the time of a vector fold.
 * Instead, for slabs of up to CPOOL_SLAB planes, the band of input rows one
 * output row pools is transposed into a channels-last buffer (one plane a
 * channel), folded there across the slab's planes, and that output row
 * transposed back, as forward_slabs_avx2.h does for whole planes. A band
 * is a few rows, so any plane size fits the buffer; with out_len dividing
 * size the bands do not overlap and each input element is transposed once.
 * The portable loops of adaptive_forward.pxi compute the same thing and are
 * what the tests hold these kernels to.
 */
#ifndef CPOOL_ADAPTIVE_MAX_AVX2_H
#define CPOOL_ADAPTIVE_MAX_AVX2_H

#include <stdlib.h>

#include "common.h"
#include "forward_nhwc_avx2.h"
#include "forward_slabs_avx2.h"

/* The most bytes one slab's band (its input rows and its output rows)
   takes: it stays in the L2 cache between the transpose and the fold. At
   1 thread (a Xeon, 2 MiB of L2) 32x64x112x112 to 7x7 took 7.3 ms at 512
   KiB, 8.1 at 256 KiB (bands of one output row) and 12 at 128 KiB (16
   planes a slab). */
#define CPOOL_ADAPTIVE_BAND_BUFFER ((Py_ssize_t)512 << 10)

/* Bytes a plane's band of output rows [oh0, oh1) takes: its input rows and
   its outputs (values, and int64 indices when with_idx). */
static CPOOL_ALWAYS_INLINE Py_ssize_t cpool_adaptive_band_bytes(Py_ssize_t oh0, Py_ssize_t oh1, Py_ssize_t H,
                                                                Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                                                                int with_idx)
{
    const Py_ssize_t rows = cpool_adaptive_end(oh1 - 1, OH, H) - cpool_adaptive_start(oh0, OH, H);
    return rows * W * (Py_ssize_t)sizeof(float)
        + (oh1 - oh0) * OW * (Py_ssize_t)(sizeof(float) + (with_idx ? sizeof(int64_t) : 0));
}

/* The end of the band that starts at output row oh0: as many output rows
   as fit `budget` bytes a plane, at least one. */
static inline Py_ssize_t cpool_adaptive_band_end(Py_ssize_t oh0, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH,
                                                 Py_ssize_t OW, int with_idx, Py_ssize_t budget)
{
    Py_ssize_t oh1 = oh0 + 1;
    while (oh1 < OH && cpool_adaptive_band_bytes(oh0, oh1 + 1, H, W, OH, OW, with_idx) <= budget)
        oh1++;
    return oh1;
}

/* Planes per slab: CPOOL_SLAB, or fewer (a multiple of 8) where one
   output row's band of that many planes would not fit the buffer; 0 where
   8 planes' would not. */
static inline Py_ssize_t cpool_adaptive_slab_planes(Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                                                    int with_idx)
{
    Py_ssize_t oh, widest = 0;
    for (oh = 0; oh < OH; oh++) {
        const Py_ssize_t b = cpool_adaptive_band_bytes(oh, oh + 1, H, W, OH, OW, with_idx);
        widest = b > widest ? b : widest;
    }
    return cpool_slab_planes_for(widest, CPOOL_ADAPTIVE_BAND_BUFFER);
}

#if defined(__AVX2__)
#define CPOOL_HAVE_ADAPTIVE_MAX_AVX2 1

/* Output pixels ow = 0 .. OW - 1 of one output row over input rows [h0,
   h1), whose first row's pixels start at `row` (C channels a pixel, W
   pixels a row); `end` bounds the input, values to o (OW * C), indices to
   i64 (the same offsets). */
static CPOOL_ALWAYS_INLINE void cpool_adaptive_max_row(const float *row, const float *end, float *o, int64_t *i64,
                                                       Py_ssize_t h0, Py_ssize_t h1, Py_ssize_t W, Py_ssize_t OW,
                                                       Py_ssize_t C, const int WITH_IDX)
{
    cpool_geometry g = {0};
    Py_ssize_t ow;
    g.dh = g.dw = 1;
    g.W = W;
    for (ow = 0; ow < OW; ow++) {
        const Py_ssize_t w0 = cpool_adaptive_start(ow, OW, W), w1 = cpool_adaptive_end(ow, OW, W);
        /* 2x2 windows (a plane halved) by the fixed-offset fold: 2x faster */
        if (h1 - h0 == 2 && w1 - w0 == 2)
            cpool_nhwc_pixel(row + w0 * C, end, o + ow * C, o + OW * C, NULL, i64, ow * C, &g, C, h0 * W + w0, 0,
                             0, 0, 0, 1, WITH_IDX);
        else
            cpool_nhwc_pixel(row + w0 * C, end, o + ow * C, o + OW * C, NULL, i64, ow * C, &g, C, h0 * W + w0, 0,
                             h1 - h0, 0, w1 - w0, 0, WITH_IDX);
    }
}

/* Channels-last memory: output rows r0 .. r1 - 1 of the N * OH rows.
   Callers check H * W < 2**31 (32-bit index lanes). */
static void cpool_adaptive_max_nhwc_avx2(const float *x, float *out, int64_t *i64, Py_ssize_t r0, Py_ssize_t r1,
                                         Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t C)
{
    const float *end = x + ((r1 - 1) / OH + 1) * H * W * C;  /* the block's images: tail loads stay inside */
    Py_ssize_t r;
    for (r = r0; r < r1; r++) {
        const Py_ssize_t n = r / OH, oh = r - n * OH;
        const Py_ssize_t h0 = cpool_adaptive_start(oh, OH, H), h1 = cpool_adaptive_end(oh, OH, H);
        const float *row = x + (n * H + h0) * W * C;
        if (i64)
            cpool_adaptive_max_row(row, end, out + r * OW * C, i64 + r * OW * C, h0, h1, W, OW, C, 1);
        else
            cpool_adaptive_max_row(row, end, out + r * OW * C, NULL, h0, h1, W, OW, C, 0);
    }
}

/* Whether the planes go in slabs: 32-bit index lanes and one output
   row's band of 8 planes within the buffer. */
static int cpool_adaptive_max_slabs_apply(Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)
{
    return H > 0 && W > 0 && OH > 0 && OW > 0 && H * W < CPOOL_INT32_PLANE
        && cpool_adaptive_slab_planes(H, W, OH, OW, 1) > 0;
}

/* Whole planes p0 .. p1 - 1 of (H, W) to (OH, OW), in bands of output rows
   (the whole plane where it fits). Callers check
   cpool_adaptive_max_slabs_apply(); returns 0 (nothing written) if the
   buffer cannot be allocated. */
static int cpool_adaptive_max_slabs_avx2(const float *x, float *out, int64_t *i64, Py_ssize_t p0, Py_ssize_t p1,
                                         Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)
{
    const int with_idx = i64 != NULL;
    const Py_ssize_t plane = H * W, oplane = OH * OW;
    const Py_ssize_t slab = cpool_adaptive_slab_planes(H, W, OH, OW, with_idx);
    const Py_ssize_t budget = CPOOL_ADAPTIVE_BAND_BUFFER / slab;
    Py_ssize_t p, oh, oh0, oh1, in_rows = 0, out_rows = 0;
    int64_t *ib;
    float *xb, *ob;
    /* the largest band, in rows of input and of output */
    for (oh0 = 0; oh0 < OH; oh0 = oh1) {
        Py_ssize_t rows;
        oh1 = cpool_adaptive_band_end(oh0, H, W, OH, OW, with_idx, budget);
        rows = cpool_adaptive_end(oh1 - 1, OH, H) - cpool_adaptive_start(oh0, OH, H);
        in_rows = rows > in_rows ? rows : in_rows;
        out_rows = oh1 - oh0 > out_rows ? oh1 - oh0 : out_rows;
    }
    /* the int64 indices first, where malloc's alignment holds for them */
    ib = (int64_t *)malloc((with_idx ? (size_t)(slab * out_rows * OW) * sizeof(int64_t) : 0)
                           + (size_t)(slab * (in_rows * W + out_rows * OW)) * sizeof(float));
    if (!ib)
        return 0;
    xb = (float *)(ib + (with_idx ? slab * out_rows * OW : 0));
    ob = xb + slab * in_rows * W;
    for (p = p0; p < p1; p += slab) {
        const Py_ssize_t n = p1 - p < slab ? p1 - p : slab;
        for (oh0 = 0; oh0 < OH; oh0 = oh1) {
            const Py_ssize_t hs = cpool_adaptive_start(oh0, OH, H);
            Py_ssize_t he;
            oh1 = cpool_adaptive_band_end(oh0, H, W, OH, OW, with_idx, budget);
            he = cpool_adaptive_end(oh1 - 1, OH, H);
            /* n planes' rows hs .. he - 1 (one run of (he - hs) * W elements
               each) to pixels of n channels, and the band's outputs back */
            cpool_transpose32(x + p * plane + hs * W, plane, n, (he - hs) * W, xb, n);
            for (oh = oh0; oh < oh1; oh++) {
                const Py_ssize_t h0 = cpool_adaptive_start(oh, OH, H), h1 = cpool_adaptive_end(oh, OH, H);
                const Py_ssize_t at = (oh - oh0) * OW * n;
                if (with_idx)
                    cpool_adaptive_max_row(xb + (h0 - hs) * W * n, xb + (he - hs) * W * n, ob + at, ib + at, h0,
                                           h1, W, OW, n, 1);
                else
                    cpool_adaptive_max_row(xb + (h0 - hs) * W * n, xb + (he - hs) * W * n, ob + at, NULL, h0,
                                           h1, W, OW, n, 0);
            }
            cpool_transpose32(ob, n, (oh1 - oh0) * OW, n, out + p * oplane + oh0 * OW, oplane);
            if (with_idx)
                cpool_transpose64(ib, n, (oh1 - oh0) * OW, n, i64 + p * oplane + oh0 * OW, oplane);
        }
    }
    free(ib);
    return 1;
}

#else
#define CPOOL_HAVE_ADAPTIVE_MAX_AVX2 0
static void cpool_adaptive_max_nhwc_avx2(const float *x, float *out, int64_t *i64, Py_ssize_t r0, Py_ssize_t r1,
                                         Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t C)
{
    (void)x; (void)out; (void)i64; (void)r0; (void)r1; (void)H; (void)W; (void)OH; (void)OW; (void)C;
}
static int cpool_adaptive_max_slabs_apply(Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)
{
    (void)H; (void)W; (void)OH; (void)OW;
    return 0;
}
static int cpool_adaptive_max_slabs_avx2(const float *x, float *out, int64_t *i64, Py_ssize_t p0, Py_ssize_t p1,
                                         Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)
{
    (void)x; (void)out; (void)i64; (void)p0; (void)p1; (void)H; (void)W; (void)OH; (void)OW;
    return 0;
}
#endif

#endif /* CPOOL_ADAPTIVE_MAX_AVX2_H */
