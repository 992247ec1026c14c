/* AVX2 average pooling for float32 planes too small for the planes kernels
 * of avg_avx2.h to pay. Forward: planes under CPOOL_AVG_SLAB_MAX_W columns,
 * a column stride of 3 or more, or rows of more than 8 outputs with fewer
 * than 8 interior ones (wide padding), where the portable loop goes one
 * window at a time. Backward: planes of at most CPOOL_AVG_SLAB_BWD_MAX_OW
 * outputs a row, whose short rows leave the planes kernel scattering shares
 * a few cells at a time.
 *
 * As forward_slabs_avx2.h does for max pooling: slabs of up to CPOOL_SLAB
 * planes are transposed into a channels-last buffer (one plane per lane,
 * CPOOL_SLAB lanes a pixel), pooled there with one lane per plane, and the
 * means transposed back. The pooling keeps the planes kernels' rules, not
 * the channels-last ones, so the results are the planes kernels' bits:
 * each window's in-bounds taps summed in row-major order from +0 with the
 * running sum as the first operand (a NaN sum stays, as torch's planes
 * kernel's `sum += v`), divided by the same divisor, and `0 + mean` stored
 * (a -0.0 mean becomes +0.0). The backward scatters each output's share
 * `grad_output / divisor` over its window with the planes rule too: outputs
 * in row-major order, a cell gets `share + cell` with the share as the
 * first operand (a NaN share replaces the cell), from +0. The lanes past a
 * short last slab hold zeros or an earlier slab's values; their results
 * are never read.
 */
#ifndef CPOOL_AVG_SLABS_AVX2_H
#define CPOOL_AVG_SLABS_AVX2_H

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "avg_avx2.h"
#include "forward_slabs_avx2.h"

#if CPOOL_HAVE_AVG_AVX2 && CPOOL_HAVE_FORWARD_SLABS_AVX2
#define CPOOL_HAVE_AVG_SLABS_AVX2 1

/* Planes narrower than this go in slabs even where the narrow planes
   kernel takes them. That kernel costs about 20 cycles an output row
   whatever its width; the slabs about 0.5 ns an output plus 0.2 ns an input
   element. At 1 thread on a Xeon, 7x7 planes (3x3 stride 1 and 2, 2x2
   stride 1) and 5x5 ones (5x5 stride 1) ran 1.4-2.3x faster in slabs, 8x8
   2x2 stride 2 even, 14x14 (2x2 and 3x3 stride 2) 1.3-1.4x slower. */
#define CPOOL_AVG_SLAB_MAX_W 12
/* The backward of planes with at most this many outputs a row goes in
   slabs. At 1 thread on a Xeon, against the planes kernel: 7x7 planes 3x3
   stride 1 9x faster, 14x14 2x2 and 3x3 stride 2 1.5-2.3x, 28x28 1.1-1.3x;
   16 outputs a row (32x32, 2x2 stride 2) 0.78x. */
#define CPOOL_AVG_SLAB_BWD_MAX_OW 15

/* Whether planes of this geometry go in slabs: a slab of CPOOL_SLAB planes
   fits the buffer, and the planes kernels of avg_avx2.h do not take their
   rows (a column stride of 3 or more; too wide for the narrow kernel with
   too few interior columns for the 8-column blocks) or take them slower
   (see CPOOL_AVG_SLAB_MAX_W). */
static int cpool_avg_slabs_apply(const cpool_geometry *g)
{
    if (g->OH <= 0 || g->OW <= 0)
        return 0;
    if (g->H * g->W > CPOOL_SLAB_BUFFER / (CPOOL_SLAB * (Py_ssize_t)sizeof(float)))
        return 0;
    if (g->sw > 2)
        return 1;
    if (cpool_avg_narrow_applies(g))
        return g->W < CPOOL_AVG_SLAB_MAX_W;
    return !cpool_avg_blocks_apply(g);
}

/* One slab, NV vectors of 8 lanes a pixel (the rest are never read).
   Forward: sb holds H * W pixels of CPOOL_SLAB lanes of input, db gets the
   OH * OW means. Backward: sb holds OH * OW pixels of grad_output, db
   (zeroed) gets the H * W of grad_input. */
static CPOOL_ALWAYS_INLINE void cpool_avg_slab(const float *sb, float *db, const cpool_geometry *g, int incl,
                                               int override, int64_t divisor, const int NV, const int backward)
{
    const Py_ssize_t W = g->W, H = g->H, OW = g->OW, OH = g->OH;
    const __m256 zero = _mm256_setzero_ps();
    Py_ssize_t oh, ow, ih, iw;
    int k;
    for (oh = 0; oh < OH; oh++) {
        Py_ssize_t h0, h1, hp = cpool_avg_extent(oh, g->kh, g->sh, g->ph, H, &h0, &h1);
        for (ow = 0; ow < OW; ow++) {
            Py_ssize_t w0, w1, wp = cpool_avg_extent(ow, g->kw, g->sw, g->pw, W, &w0, &w1);
            const __m256 d = _mm256_set1_ps(cpool_avg_div(hp, wp, h1 - h0, w1 - w0, incl, override, divisor));
            const Py_ssize_t at = (oh * OW + ow) * CPOOL_SLAB;
            __m256 v[4];
            for (k = 0; k < NV; k++)
                v[k] = backward ? _mm256_div_ps(_mm256_loadu_ps(sb + at + 8 * k), d) : zero;
            for (ih = h0; ih < h1; ih++) {
                const Py_ssize_t t0 = (ih * W + w0) * CPOOL_SLAB;
                for (iw = w0; iw < w1; iw++)
                    for (k = 0; k < NV; k++) {
                        const Py_ssize_t t = t0 + (iw - w0) * CPOOL_SLAB + 8 * k;
                        if (backward)  /* the share first: a NaN share replaces the cell */
                            _mm256_storeu_ps(db + t, cpool_avg_add_first(v[k], _mm256_loadu_ps(db + t)));
                        else  /* the running sum first: a NaN sum stays */
                            v[k] = cpool_avg_add_first(v[k], _mm256_loadu_ps(sb + t));
                    }
            }
            if (!backward)
                for (k = 0; k < NV; k++)
                    _mm256_storeu_ps(db + at + 8 * k, _mm256_add_ps(zero, _mm256_div_ps(v[k], d)));
        }
    }
}

/* Whether the backward of planes of this geometry goes in slabs. */
static int cpool_avg_backward_slabs_apply(const cpool_geometry *g)
{
    return g->OH > 0 && g->OW > 0 && g->OW <= CPOOL_AVG_SLAB_BWD_MAX_OW
        && g->H * g->W <= CPOOL_SLAB_BUFFER / (CPOOL_SLAB * (Py_ssize_t)sizeof(float));
}

/* Whole planes p0 .. p1 - 1: the forward's means ((P, OH, OW) out of
   (P, H, W) src), or the backward's grad_input ((P, H, W) out, every cell
   written, from (P, OH, OW) grad_output src). Callers check
   cpool_avg_slabs_apply() / cpool_avg_backward_slabs_apply(); returns 0
   (nothing written) if the buffer cannot be allocated. */
static int cpool_avg_slabs_run(const float *src, float *out, Py_ssize_t p0, Py_ssize_t p1, cpool_geometry g,
                               int incl, int override, int64_t divisor, int backward)
{
    const Py_ssize_t plane = g.H * g.W, oplane = g.OH * g.OW;
    const Py_ssize_t in_plane = backward ? oplane : plane, out_plane = backward ? plane : oplane;
    float *sb, *db;
    Py_ssize_t p;
    /* zeroed once: no lane is ever read uninitialised */
    sb = (float *)calloc((size_t)(CPOOL_SLAB * (plane + oplane)), sizeof(float));
    if (!sb)
        return 0;
    db = sb + CPOOL_SLAB * in_plane;
    for (p = p0; p < p1;) {
        const Py_ssize_t n = p1 - p < CPOOL_SLAB ? p1 - p : CPOOL_SLAB;
        const int nv = (int)((n + 7) / 8);
        /* n planes (rows of in_plane elements) to pixels of CPOOL_SLAB lanes, and back */
        cpool_transpose32(src + p * in_plane, in_plane, n, in_plane, sb, CPOOL_SLAB);
        if (backward)
            memset(db, 0, (size_t)(CPOOL_SLAB * plane) * sizeof(float));
        switch (nv + 4 * backward) {
        case 1: cpool_avg_slab(sb, db, &g, incl, override, divisor, 1, 0); break;
        case 2: cpool_avg_slab(sb, db, &g, incl, override, divisor, 2, 0); break;
        case 3: cpool_avg_slab(sb, db, &g, incl, override, divisor, 3, 0); break;
        case 4: cpool_avg_slab(sb, db, &g, incl, override, divisor, 4, 0); break;
        case 5: cpool_avg_slab(sb, db, &g, incl, override, divisor, 1, 1); break;
        case 6: cpool_avg_slab(sb, db, &g, incl, override, divisor, 2, 1); break;
        case 7: cpool_avg_slab(sb, db, &g, incl, override, divisor, 3, 1); break;
        default: cpool_avg_slab(sb, db, &g, incl, override, divisor, 4, 1); break;
        }
        cpool_transpose32(db, CPOOL_SLAB, out_plane, n, out + p * out_plane, out_plane);
        p += n;
    }
    free(sb);
    return 1;
}

#else
#define CPOOL_HAVE_AVG_SLABS_AVX2 0
static int cpool_avg_slabs_apply(const cpool_geometry *g)
{
    (void)g;
    return 0;
}
static int cpool_avg_backward_slabs_apply(const cpool_geometry *g)
{
    (void)g;
    return 0;
}
static int cpool_avg_slabs_run(const float *src, float *out, Py_ssize_t p0, Py_ssize_t p1, cpool_geometry g,
                               int incl, int override, int64_t divisor, int backward)
{
    (void)src; (void)out; (void)p0; (void)p1; (void)g; (void)incl; (void)override; (void)divisor; (void)backward;
    return 0;
}
#endif

#endif /* CPOOL_AVG_SLABS_AVX2_H */
