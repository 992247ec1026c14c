/* Single-pass float32 backward for pooling whose indices each lie in their
 * own 2x2 cell (kernel 2, stride 2: the MNIST case), AVX2 and AVX-512.
 *
 * Output (oh, ow) owns the input cell rows 2*oh, 2*oh+1 and columns 2*ow,
 * 2*ow+1. If every index of a plane lies in its own output's cell, the cells
 * are disjoint and the scatter-add "zero, then gi[k] += go[o]" reduces to
 * writing each cell once: go[o] at the chosen position, 0 at the other three.
 * That is a pure streaming write with no read-modify-write, which the
 * auto-vectoriser turns into poor code for rows of 7 or 14 outputs, hence the
 * intrinsics.
 *
 * The function checks each index while it writes (64-bit exact) and returns
 * 0 as soon as one is not in its cell: the caller then redoes the plane with
 * the general zero-and-scatter code, which also bounds-checks. Results are
 * bit-identical to that code: go + 0.0f turns -0.0 into +0.0 as 0 + go does.
 *
 * A vector of L cells (8 for AVX2, 16 for AVX-512) runs past the end of a
 * row, except on a plane's last row: with n cells left in the row it reads
 * L-n elements of the next row of go/idx and writes 2*(L-n) floats past the
 * row being written. That is safe when W == 2*OW and OW >= L/2 (so OW >= L-n;
 * the callers need OW >= 8):
 * the top row's spill lands in the first floats of the bottom row, the bottom
 * row's in the next row pair's top row, and each row pair is written right
 * to left, so its chunk at column 0, stored last, overwrites the spill.
 * Lanes past the row end are left out of the check.
 */
#ifndef CPOOL_CELLS_H
#define CPOOL_CELLS_H

#include <stdint.h>
#include <string.h>

/* Rows shorter than this go to zero-and-scatter (see cpool_cells_plane_avx2). */
#define CPOOL_CELLS_MIN_OW 8

#if defined(__AVX2__)
#include <immintrin.h>
#define CPOOL_HAVE_CELLS 1

/* Write 8 cells whose top-left corners are top[0], top[2], ..., top[14]
   (plane offset e); return the lanes whose index was in its cell. */
static inline __m256i cpool_cells8_f32(const float *g, const int64_t *ix, int64_t e, int64_t W,
                                       float *top, float *bot)
{
    const __m256i step = _mm256_setr_epi64x(0, 2, 4, 6);
    const __m256i split = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    __m256i d0 = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)ix),
                                  _mm256_add_epi64(_mm256_set1_epi64x(e), step));
    __m256i d1 = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)(ix + 4)),
                                  _mm256_add_epi64(_mm256_set1_epi64x(e + 8), step));
    /* Low and high 32-bit halves of the 8 offsets-within-cell. */
    __m256i s0 = _mm256_permutevar8x32_epi32(d0, split);
    __m256i s1 = _mm256_permutevar8x32_epi32(d1, split);
    __m256i lo = _mm256_permute2x128_si256(s0, s1, 0x20);
    __m256i hi = _mm256_permute2x128_si256(s0, s1, 0x31);
    __m256i m0 = _mm256_cmpeq_epi32(lo, _mm256_setzero_si256());
    __m256i m1 = _mm256_cmpeq_epi32(lo, _mm256_set1_epi32(1));
    __m256i m2 = _mm256_cmpeq_epi32(lo, _mm256_set1_epi32((int32_t)W));
    __m256i m3 = _mm256_cmpeq_epi32(lo, _mm256_set1_epi32((int32_t)(W + 1)));
    __m256i ok = _mm256_and_si256(_mm256_cmpeq_epi32(hi, _mm256_setzero_si256()),
                                  _mm256_or_si256(_mm256_or_si256(m0, m1), _mm256_or_si256(m2, m3)));
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

/* One row of at least 8 cells without over-running: vectors of 8, the
   last one overlapping the one before.
   Also zeroes the columns past 2*OW. Returns 0 if an index is not in its cell. */
static inline int cpool_cells_row_exact(const float *g, const int64_t *ix, int64_t e, Py_ssize_t W, Py_ssize_t OW,
                                        float *top, float *bot)
{
    __m256i bad = _mm256_setzero_si256();
    Py_ssize_t c;
    for (c = 0;; c += 8) {
        if (c + 8 > OW)
            c = OW - 8; /* the last vector overlaps the one before: same cells, same values */
        bad = _mm256_or_si256(bad, _mm256_andnot_si256(
            cpool_cells8_f32(g + c, ix + c, e + 2 * c, W, top + 2 * c, bot + 2 * c), _mm256_set1_epi32(-1)));
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
static inline int cpool_cells_row_overrun(const float *g, const int64_t *ix, int64_t e, Py_ssize_t W, Py_ssize_t OW,
                                          float *top, float *bot)
{
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    Py_ssize_t c = (OW - 1) / 8 * 8;
    __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)(OW - c)), iota);
    __m256i bad = _mm256_andnot_si256(cpool_cells8_f32(g + c, ix + c, e + 2 * c, W, top + 2 * c, bot + 2 * c), live);
    for (c -= 8; c >= 0; c -= 8)  /* right to left: column 0, stored last, covers the spill */
        bad = _mm256_or_si256(bad, _mm256_andnot_si256(
            cpool_cells8_f32(g + c, ix + c, e + 2 * c, W, top + 2 * c, bot + 2 * c), _mm256_set1_epi32(-1)));
    return _mm256_testz_si256(bad, bad);
}

/* One (H, W) plane from its (OH, OW) go and idx; needs H >= 2*OH,
   W >= 2*OW and OW >= CPOOL_CELLS_MIN_OW (shorter rows measured slower than zero-and-scatter:
   too little work per row for the vector set-up). Returns 1 if done, 0 if an index is not in its cell (gi is
   then partly written and must be redone). */
static int cpool_cells_plane_avx2(const float *go, const int64_t *idx, float *gi, Py_ssize_t H, Py_ssize_t W,
                                  Py_ssize_t OH, Py_ssize_t OW)
{
    const int overrun = (W == 2 * OW);
    Py_ssize_t oh;
    for (oh = 0; oh < OH; oh++) {
        float *top = gi + 2 * oh * W;
        int ok = (overrun && oh + 1 < OH)
            ? cpool_cells_row_overrun(go + oh * OW, idx + oh * OW, 2 * oh * W, W, OW, top, top + W)
            : cpool_cells_row_exact(go + oh * OW, idx + oh * OW, 2 * oh * W, W, OW, top, top + W);
        if (!ok)
            return 0;
    }
    if (H > 2 * OH)
        memset(gi + 2 * OH * W, 0, (H - 2 * OH) * W * sizeof(float));
    return 1;
}

/* The same with AVX-512 (16 cells a vector, compares straight into mask
   registers): about 1.3x faster than AVX2 where the CPU has it. Compiled
   with a target attribute and chosen at run time, so the module as a whole
   still runs on any AVX2 CPU. */
#if defined(__GNUC__) || defined(__clang__)
#define CPOOL_HAVE_CELLS_AVX512 1
#define CPOOL_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

CPOOL_TARGET_AVX512
static inline __mmask16 cpool_cells16_f32(const float *g, const int64_t *ix, int64_t e, int64_t W,
                                          float *top, float *bot)
{
    const __m512i step = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi64(1);
    const __m512i w0 = _mm512_set1_epi64(W), w1 = _mm512_set1_epi64(W + 1);
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    __m512i d0 = _mm512_sub_epi64(_mm512_loadu_si512((const void *)ix),
                                  _mm512_add_epi64(_mm512_set1_epi64(e), step));
    __m512i d1 = _mm512_sub_epi64(_mm512_loadu_si512((const void *)(ix + 8)),
                                  _mm512_add_epi64(_mm512_set1_epi64(e + 16), step));
    __mmask16 m0 = (__mmask16)(_mm512_cmpeq_epi64_mask(d0, zero) | (_mm512_cmpeq_epi64_mask(d1, zero) << 8));
    __mmask16 m1 = (__mmask16)(_mm512_cmpeq_epi64_mask(d0, one) | (_mm512_cmpeq_epi64_mask(d1, one) << 8));
    __mmask16 m2 = (__mmask16)(_mm512_cmpeq_epi64_mask(d0, w0) | (_mm512_cmpeq_epi64_mask(d1, w0) << 8));
    __mmask16 m3 = (__mmask16)(_mm512_cmpeq_epi64_mask(d0, w1) | (_mm512_cmpeq_epi64_mask(d1, w1) << 8));
    __m512 v = _mm512_add_ps(_mm512_loadu_ps(g), _mm512_setzero_ps());
    __m512 a0 = _mm512_maskz_mov_ps(m0, v), a1 = _mm512_maskz_mov_ps(m1, v);
    __m512 a2 = _mm512_maskz_mov_ps(m2, v), a3 = _mm512_maskz_mov_ps(m3, v);
    _mm512_storeu_ps(top, _mm512_permutex2var_ps(a0, lo, a1));
    _mm512_storeu_ps(top + 16, _mm512_permutex2var_ps(a0, hi, a1));
    _mm512_storeu_ps(bot, _mm512_permutex2var_ps(a2, lo, a3));
    _mm512_storeu_ps(bot + 16, _mm512_permutex2var_ps(a2, hi, a3));
    return (__mmask16)(m0 | m1 | m2 | m3);
}

CPOOL_TARGET_AVX512
static int cpool_cells_plane_avx512(const float *go, const int64_t *idx, float *gi, Py_ssize_t H, Py_ssize_t W,
                                    Py_ssize_t OH, Py_ssize_t OW)
{
    Py_ssize_t oh, c;
    if (!(W == 2 * OW && H == 2 * OH))
        return cpool_cells_plane_avx2(go, idx, gi, H, W, OH, OW);
    for (oh = 0; oh + 1 < OH; oh++) {  /* over-running rows, as in the AVX2 code */
        const float *g = go + oh * OW;
        const int64_t *ix = idx + oh * OW;
        float *top = gi + 2 * oh * W, *bot = top + W;
        int64_t e = 2 * oh * W;
        c = (OW - 1) / 16 * 16;
        unsigned live = OW - c >= 16 ? 0xFFFFu : (1u << (OW - c)) - 1u;
        if ((cpool_cells16_f32(g + c, ix + c, e + 2 * c, W, top + 2 * c, bot + 2 * c) & live) != live)
            return 0;
        for (c -= 16; c >= 0; c -= 16)
            if (cpool_cells16_f32(g + c, ix + c, e + 2 * c, W, top + 2 * c, bot + 2 * c) != 0xFFFFu)
                return 0;
    }
    return cpool_cells_row_exact(go + oh * OW, idx + oh * OW, 2 * oh * W, W, OW, gi + 2 * oh * W, gi + (2 * oh + 1) * W);
}

static int cpool_cpu_has_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
#else
#define CPOOL_HAVE_CELLS_AVX512 0
static int cpool_cells_plane_avx512(const float *go, const int64_t *idx, float *gi, Py_ssize_t H, Py_ssize_t W,
                                    Py_ssize_t OH, Py_ssize_t OW)
{
    return cpool_cells_plane_avx2(go, idx, gi, H, W, OH, OW);
}
static int cpool_cpu_has_avx512(void) { return 0; }
#endif

/* 2: AVX-512, 1: AVX2. Set once at import by cpool._fast (cells_level). */
static int cpool_cells_level = 1;

static int cpool_cells_plane_f32(const float *go, const int64_t *idx, float *gi, Py_ssize_t H, Py_ssize_t W,
                                 Py_ssize_t OH, Py_ssize_t OW)
{
    if (cpool_cells_level >= 2)
        return cpool_cells_plane_avx512(go, idx, gi, H, W, OH, OW);
    return cpool_cells_plane_avx2(go, idx, gi, H, W, OH, OW);
}

#else /* no AVX2: callers always take the general path */
#define CPOOL_HAVE_CELLS 0
#define CPOOL_HAVE_CELLS_AVX512 0
static int cpool_cells_level = 0;
static int cpool_cpu_has_avx512(void) { return 0; }
static int cpool_cells_plane_f32(const float *go, const int64_t *idx, float *gi, Py_ssize_t H, Py_ssize_t W,
                                 Py_ssize_t OH, Py_ssize_t OW)
{
    (void)go; (void)idx; (void)gi; (void)H; (void)W; (void)OH; (void)OW;
    return 0;
}
#endif

#endif /* CPOOL_CELLS_H */
