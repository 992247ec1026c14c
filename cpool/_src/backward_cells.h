/* Single-pass float32 backward for pooling whose indices each lie in their
 * own 2x2 cell (kernel 2, stride 2: the MNIST case), AVX2 and AVX-512, for
 * int64 indices (the public format) and int32 ones (MaxPool2d's own).
 *
 * Output (oh, ow) owns the input cell rows 2*oh, 2*oh+1 and columns 2*ow,
 * 2*ow+1. If every index of a plane lies in its own output's cell, the cells
 * are disjoint and the scatter-add "zero, then gi[k] += go[o]" reduces to
 * writing each cell once: go[o] at the chosen position, 0 at the other three.
 * That is a pure streaming write with no read-modify-write, which the
 * auto-vectoriser turns into poor code for rows of 7 or 14 outputs, hence the
 * intrinsics.
 *
 * The writer checks each index while it writes (exactly, all 64 bits of an
 * int64) and returns 0 as soon as one is not in its cell: the caller then
 * redoes the plane with the general zero-and-scatter code, which also
 * bounds-checks. Results are bit-identical to that code: go + 0.0f turns
 * -0.0 into +0.0 as 0 + go does.
 *
 * A vector of L cells (8 for AVX2, 16 for AVX-512) runs past the end of a
 * row, except on a plane's last row: with n cells left in the row it reads
 * L-n elements of the next row of go/idx and writes 2*(L-n) floats past the
 * row being written. That is safe when W == 2*OW and OW >= L/2 (so OW >= L-n;
 * the callers need OW >= 8): the top row's spill lands in the first floats
 * of the bottom row, the bottom row's in the next row pair's top row, and
 * each row pair is written right to left, so its chunk at column 0, stored
 * last, overwrites the spill. Lanes past the row end are left out of the
 * check.
 *
 * Index width: every function takes the indices as two typed pointers,
 * i32 and i64, exactly one of them not NULL, plus the element offset `at`
 * into whichever it is (never an offset added to a NULL pointer). The
 * bodies are inlined into one entry point per width, where the pointer
 * tests are constants.
 */
#ifndef CPOOL_BACKWARD_CELLS_H
#define CPOOL_BACKWARD_CELLS_H

#include "common.h"

/* Rows shorter than this go to zero-and-scatter (measured slower through
   the writer: too little work per row for the vector set-up). */
#define CPOOL_CELLS_MIN_OW 8

#if defined(__AVX2__)
#include <immintrin.h>
#define CPOOL_HAVE_CELLS 1

/* Offsets within their cells of the 8 indices at `at` (ix[c] - e - 2c), as
   32-bit lanes, and the lanes whose offset fits in 32 bits at all. */
static CPOOL_ALWAYS_INLINE __m256i cpool_cell_offsets8(const int32_t *i32, const int64_t *i64, Py_ssize_t at,
                                                       int64_t e, __m256i *fits)
{
    if (i64) {
        const __m256i step = _mm256_setr_epi64x(0, 2, 4, 6);
        const __m256i split = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
        __m256i d0 = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)(i64 + at)),
                                      _mm256_add_epi64(_mm256_set1_epi64x(e), step));
        __m256i d1 = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)(i64 + at + 4)),
                                      _mm256_add_epi64(_mm256_set1_epi64x(e + 8), step));
        /* Low and high 32-bit halves of the 8 offsets. */
        __m256i s0 = _mm256_permutevar8x32_epi32(d0, split);
        __m256i s1 = _mm256_permutevar8x32_epi32(d1, split);
        *fits = _mm256_cmpeq_epi32(_mm256_permute2x128_si256(s0, s1, 0x31), _mm256_setzero_si256());
        return _mm256_permute2x128_si256(s0, s1, 0x20);
    }
    *fits = _mm256_set1_epi32(-1);
    return _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(i32 + at)),
                            _mm256_add_epi32(_mm256_set1_epi32((int32_t)e),
                                             _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)));
}

/* Write 8 cells whose top-left corners are top[0], top[2], ..., top[14],
   from their offsets d; return the lanes whose offset was in the cell. */
static CPOOL_ALWAYS_INLINE __m256i cpool_cells8_write(const float *g, __m256i d, __m256i fits, int64_t W,
                                                      float *top, float *bot)
{
    __m256i m0 = _mm256_cmpeq_epi32(d, _mm256_setzero_si256());
    __m256i m1 = _mm256_cmpeq_epi32(d, _mm256_set1_epi32(1));
    __m256i m2 = _mm256_cmpeq_epi32(d, _mm256_set1_epi32((int32_t)W));
    __m256i m3 = _mm256_cmpeq_epi32(d, _mm256_set1_epi32((int32_t)(W + 1)));
    __m256i ok = _mm256_and_si256(fits, _mm256_or_si256(_mm256_or_si256(m0, m1), _mm256_or_si256(m2, m3)));
    __m256 v = _mm256_add_ps(_mm256_loadu_ps(g), _mm256_setzero_ps());
    __m256 a0 = _mm256_and_ps(v, _mm256_castsi256_ps(m0));
    __m256 a1 = _mm256_and_ps(v, _mm256_castsi256_ps(m1));
    __m256 a2 = _mm256_and_ps(v, _mm256_castsi256_ps(m2));
    __m256 a3 = _mm256_and_ps(v, _mm256_castsi256_ps(m3));
    __m256 l = _mm256_unpacklo_ps(a0, a1), h = _mm256_unpackhi_ps(a0, a1);
    _mm256_storeu_ps(top, _mm256_permute2f128_ps(l, h, 0x20));
    _mm256_storeu_ps(top + 8, _mm256_permute2f128_ps(l, h, 0x31));
    l = _mm256_unpacklo_ps(a2, a3);
    h = _mm256_unpackhi_ps(a2, a3);
    _mm256_storeu_ps(bot, _mm256_permute2f128_ps(l, h, 0x20));
    _mm256_storeu_ps(bot + 8, _mm256_permute2f128_ps(l, h, 0x31));
    return ok;
}

static CPOOL_ALWAYS_INLINE __m256i cpool_cells8(const float *g, const int32_t *i32, const int64_t *i64,
                                                Py_ssize_t at, int64_t e, int64_t W, float *top, float *bot)
{
    __m256i fits, d = cpool_cell_offsets8(i32, i64, at, e, &fits);
    return cpool_cells8_write(g, d, fits, W, top, bot);
}

/* One row of at least 8 cells (go and indices from `at`) without
   over-running: vectors of 8, the last one overlapping the one before. Also
   zeroes the columns past 2*OW. Returns 0 if an index is not in its cell. */
static CPOOL_ALWAYS_INLINE int cpool_cells_row_exact(const float *g, const int32_t *i32, const int64_t *i64,
                                                     Py_ssize_t at, int64_t e, Py_ssize_t W, Py_ssize_t OW,
                                                     float *top, float *bot)
{
    __m256i bad = _mm256_setzero_si256();
    Py_ssize_t c;
    for (c = 0;; c += 8) {
        if (c + 8 > OW)
            c = OW - 8; /* the last vector overlaps the one before: same cells, same values */
        bad = _mm256_or_si256(bad, _mm256_andnot_si256(
            cpool_cells8(g + c, i32, i64, at + c, e + 2 * c, W, top + 2 * c, bot + 2 * c),
            _mm256_set1_epi32(-1)));
        if (c + 8 == OW)
            break;
    }
    if (!_mm256_testz_si256(bad, bad))
        return 0;
    if (W > 2 * OW) {
        memset(top + 2 * OW, 0, (W - 2 * OW) * sizeof(float));
        memset(bot + 2 * OW, 0, (W - 2 * OW) * sizeof(float));
    }
    return 1;
}

/* A row of cells in vectors of 8 that over-run the row end (see the top of
   this file): needs W == 2*OW, OW >= 8 and a next row in the plane. */
static CPOOL_ALWAYS_INLINE int cpool_cells_row_overrun(const float *g, const int32_t *i32, const int64_t *i64,
                                                       Py_ssize_t at, int64_t e, Py_ssize_t W, Py_ssize_t OW,
                                                       float *top, float *bot)
{
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    Py_ssize_t c = (OW - 1) / 8 * 8;
    __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)(OW - c)), iota);
    __m256i bad = _mm256_andnot_si256(
        cpool_cells8(g + c, i32, i64, at + c, e + 2 * c, W, top + 2 * c, bot + 2 * c), live);
    for (c -= 8; c >= 0; c -= 8)  /* right to left: column 0, stored last, covers the spill */
        bad = _mm256_or_si256(bad, _mm256_andnot_si256(
            cpool_cells8(g + c, i32, i64, at + c, e + 2 * c, W, top + 2 * c, bot + 2 * c),
            _mm256_set1_epi32(-1)));
    return _mm256_testz_si256(bad, bad);
}

/* One (H, W) plane from its (OH, OW) go and indices; needs H >= 2*OH,
   W >= 2*OW and OW >= CPOOL_CELLS_MIN_OW. Returns 1 if done, 0 if an index
   is not in its cell (gi is then partly written and must be redone). */
static CPOOL_ALWAYS_INLINE int cpool_cells_plane_avx2(const float *go, const int32_t *i32, const int64_t *i64,
                                                      float *gi, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH,
                                                      Py_ssize_t OW)
{
    const int overrun = (W == 2 * OW);
    Py_ssize_t oh;
    for (oh = 0; oh < OH; oh++) {
        float *top = gi + 2 * oh * W;
        int ok = (overrun && oh + 1 < OH)
            ? cpool_cells_row_overrun(go + oh * OW, i32, i64, oh * OW, 2 * oh * W, W, OW, top, top + W)
            : cpool_cells_row_exact(go + oh * OW, i32, i64, oh * OW, 2 * oh * W, W, OW, top, top + W);
        if (!ok)
            return 0;
    }
    if (H > 2 * OH)
        memset(gi + 2 * OH * W, 0, (H - 2 * OH) * W * sizeof(float));
    return 1;
}

/* AVX-512: 16 cells a vector, compares straight into mask registers. With
   a target attribute and chosen at run time, so the module as a whole still
   runs on any AVX2 CPU. About 1.3x faster than AVX2 where the CPU has it. */
#if CPOOL_X86_CPU_CHECKS
#define CPOOL_HAVE_CELLS_AVX512 1

/* Of the lanes in `in`, those whose in-cell offset d (32-bit) is 0, 1, W, W+1. */
CPOOL_TARGET_AVX512
static inline void cpool_cell_positions16(__m512i d, __mmask16 in, int64_t W, __mmask16 *m)
{
    m[0] = _mm512_mask_cmpeq_epi32_mask(in, d, _mm512_setzero_si512());
    m[1] = _mm512_mask_cmpeq_epi32_mask(in, d, _mm512_set1_epi32(1));
    m[2] = _mm512_mask_cmpeq_epi32_mask(in, d, _mm512_set1_epi32((int32_t)W));
    m[3] = _mm512_mask_cmpeq_epi32_mask(in, d, _mm512_set1_epi32((int32_t)(W + 1)));
}

/* The masks of the 16 cells (indices from `at`) whose index is at offset 0, 1, W, W+1. */
CPOOL_TARGET_AVX512
static CPOOL_ALWAYS_INLINE void cpool_cell_masks16(const int32_t *i32, const int64_t *i64, Py_ssize_t at,
                                                   int64_t e, int64_t W, __mmask16 *m)
{
    const __m512i lanes = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    if (i64) {
        const __m512i step = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
        __m512i d0 = _mm512_sub_epi64(_mm512_loadu_si512((const void *)(i64 + at)),
                                      _mm512_add_epi64(_mm512_set1_epi64(e), step));
        __m512i d1 = _mm512_sub_epi64(_mm512_loadu_si512((const void *)(i64 + at + 8)),
                                      _mm512_add_epi64(_mm512_set1_epi64(e + 16), step));
        /* Exact for all 64 bits: lanes with 0 <= d < W+2 (one unsigned
           compare), then which of 0, 1, W, W+1 on the low 32-bit halves of
           all 16 lanes (`lanes` picks them). */
        __m512i lim = _mm512_set1_epi64(W + 2);
        __mmask16 in = (__mmask16)(_mm512_cmplt_epu64_mask(d0, lim) | (_mm512_cmplt_epu64_mask(d1, lim) << 8));
        cpool_cell_positions16(_mm512_permutex2var_epi32(d0, lanes, d1), in, W, m);
        return;
    }
    __m512i d = _mm512_sub_epi32(_mm512_loadu_si512((const void *)(i32 + at)),
                                 _mm512_add_epi32(_mm512_set1_epi32((int32_t)e), lanes));
    cpool_cell_positions16(d, (__mmask16)0xFFFFu, W, m);
}

/* Write 16 cells from their masks; return the cells whose index was in them. */
CPOOL_TARGET_AVX512
static inline __mmask16 cpool_cells16_write(const float *g, const __mmask16 *m, float *top, float *bot)
{
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    __m512 v = _mm512_add_ps(_mm512_loadu_ps(g), _mm512_setzero_ps());
    __m512 a0 = _mm512_maskz_mov_ps(m[0], v), a1 = _mm512_maskz_mov_ps(m[1], v);
    __m512 a2 = _mm512_maskz_mov_ps(m[2], v), a3 = _mm512_maskz_mov_ps(m[3], v);
    _mm512_storeu_ps(top, _mm512_permutex2var_ps(a0, lo, a1));
    _mm512_storeu_ps(top + 16, _mm512_permutex2var_ps(a0, hi, a1));
    _mm512_storeu_ps(bot, _mm512_permutex2var_ps(a2, lo, a3));
    _mm512_storeu_ps(bot + 16, _mm512_permutex2var_ps(a2, hi, a3));
    return (__mmask16)(m[0] | m[1] | m[2] | m[3]);
}

/* The AVX-512 plane writer; rows shorter than 16 cells and each plane's
   last row (which must not over-run) go through the AVX2 code. */
CPOOL_TARGET_AVX512
static CPOOL_ALWAYS_INLINE int cpool_cells_plane_avx512(const float *go, const int32_t *i32, const int64_t *i64,
                                                        float *gi, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH,
                                                        Py_ssize_t OW)
{
    Py_ssize_t oh, c;
    __mmask16 m[4];
    if (!(W == 2 * OW && H == 2 * OH))
        return cpool_cells_plane_avx2(go, i32, i64, gi, H, W, OH, OW);
    for (oh = 0; oh + 1 < OH; oh++) {  /* over-running rows, as in the AVX2 code */
        const float *g = go + oh * OW;
        const Py_ssize_t at = oh * OW;
        float *top = gi + 2 * oh * W, *bot = top + W;
        int64_t e = 2 * oh * W;
        c = (OW - 1) / 16 * 16;
        unsigned live = OW - c >= 16 ? 0xFFFFu : (1u << (OW - c)) - 1u;
        cpool_cell_masks16(i32, i64, at + c, e + 2 * c, W, m);
        if ((cpool_cells16_write(g + c, m, top + 2 * c, bot + 2 * c) & live) != live)
            return 0;
        for (c -= 16; c >= 0; c -= 16) {
            cpool_cell_masks16(i32, i64, at + c, e + 2 * c, W, m);
            if (cpool_cells16_write(g + c, m, top + 2 * c, bot + 2 * c) != 0xFFFFu)
                return 0;
        }
    }
    return cpool_cells_row_exact(go + oh * OW, i32, i64, oh * OW, 2 * oh * W, W, OW,
                                 gi + 2 * oh * W, gi + (2 * oh + 1) * W);
}

/* One entry point per index width: the target attribute must be on the
   function the AVX-512 body is inlined into. */
CPOOL_TARGET_AVX512
static int cpool_cells_plane_avx512_i32(const float *go, const int32_t *idx, float *gi, Py_ssize_t H,
                                        Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)
{
    CPOOL_ASSUME(idx != NULL);
    return cpool_cells_plane_avx512(go, idx, NULL, gi, H, W, OH, OW);
}

CPOOL_TARGET_AVX512
static int cpool_cells_plane_avx512_i64(const float *go, const int64_t *idx, float *gi, Py_ssize_t H,
                                        Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)
{
    CPOOL_ASSUME(idx != NULL);
    return cpool_cells_plane_avx512(go, NULL, idx, gi, H, W, OH, OW);
}
#else
#define CPOOL_HAVE_CELLS_AVX512 0
#endif

/* The entry point: exactly one of i32, i64 is not NULL; `avx512` picks the
   AVX-512 writer (only where CPOOL_HAVE_CELLS_AVX512 and the CPU has it). */
static int cpool_cells_plane(const float *go, const int32_t *i32, const int64_t *i64, float *gi, Py_ssize_t H,
                             Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, int avx512)
{
#if CPOOL_HAVE_CELLS_AVX512
    if (avx512)
        return i64 ? cpool_cells_plane_avx512_i64(go, i64, gi, H, W, OH, OW)
                   : cpool_cells_plane_avx512_i32(go, i32, gi, H, W, OH, OW);
#endif
    (void)avx512;
    /* i64 is tested first: inside each copy the compiler then knows which
       pointer is NULL and that the other is not, so the bodies' own tests
       of i64 fold away. */
    if (i64)
        return cpool_cells_plane_avx2(go, NULL, i64, gi, H, W, OH, OW);
    return cpool_cells_plane_avx2(go, i32, NULL, gi, H, W, OH, OW);
}

#else /* no AVX2: never called (CPOOL_HAVE_CELLS is 0); the callers scatter */
#define CPOOL_HAVE_CELLS 0
#define CPOOL_HAVE_CELLS_AVX512 0
static int cpool_cells_plane(const float *go, const int32_t *i32, const int64_t *i64, float *gi, Py_ssize_t H,
                             Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, int avx512)
{
    (void)go; (void)i32; (void)i64; (void)gi; (void)H; (void)W; (void)OH; (void)OW; (void)avx512;
    return 0;
}
#endif

#endif /* CPOOL_BACKWARD_CELLS_H */
