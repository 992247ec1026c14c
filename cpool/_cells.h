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
 * The function checks each index while it writes (exactly, all 64 bits of
 * an int64) and returns
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

/* Rows shorter than this go to zero-and-scatter (see cpool_cells_plane_avx2_*). */
#define CPOOL_CELLS_MIN_OW 8

#if defined(__AVX2__)
#include <immintrin.h>
#define CPOOL_HAVE_CELLS 1

/* Offsets within their cells of 8 indices (ix[c] - e - 2c), as 32-bit lanes,
   and the lanes whose offset fits in 32 bits at all. */
static inline __m256i cpool_cell_offsets8_i64(const int64_t *ix, int64_t e, __m256i *fits)
{
    const __m256i step = _mm256_setr_epi64x(0, 2, 4, 6);
    const __m256i split = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    __m256i d0 = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)ix),
                                  _mm256_add_epi64(_mm256_set1_epi64x(e), step));
    __m256i d1 = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)(ix + 4)),
                                  _mm256_add_epi64(_mm256_set1_epi64x(e + 8), step));
    /* Low and high 32-bit halves of the 8 offsets. */
    __m256i s0 = _mm256_permutevar8x32_epi32(d0, split);
    __m256i s1 = _mm256_permutevar8x32_epi32(d1, split);
    *fits = _mm256_cmpeq_epi32(_mm256_permute2x128_si256(s0, s1, 0x31), _mm256_setzero_si256());
    return _mm256_permute2x128_si256(s0, s1, 0x20);
}

static inline __m256i cpool_cell_offsets8_i32(const int32_t *ix, int64_t e, __m256i *fits)
{
    const __m256i step = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    *fits = _mm256_set1_epi32(-1);
    return _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)ix),
                            _mm256_add_epi32(_mm256_set1_epi32((int32_t)e), step));
}

/* Write 8 cells whose top-left corners are top[0], top[2], ..., top[14],
   from their offsets d; return the lanes whose offset was in the cell. */
static inline __m256i cpool_cells8_write(const float *g, __m256i d, __m256i fits, int64_t W,
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

/* AVX-512 (16 cells a vector, compares straight into mask registers), with
   a target attribute and chosen at run time, so the module as a whole still
   runs on any AVX2 CPU. */
#if defined(__GNUC__) || defined(__clang__)
#define CPOOL_HAVE_CELLS_AVX512 1
#define CPOOL_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

/* Of the lanes in `in`, those whose in-cell offset d (32-bit) is 0, 1, W, W+1. */
CPOOL_TARGET_AVX512
static inline void cpool_cell_positions16(__m512i d, __mmask16 in, int64_t W, __mmask16 *m)
{
    m[0] = _mm512_mask_cmpeq_epi32_mask(in, d, _mm512_setzero_si512());
    m[1] = _mm512_mask_cmpeq_epi32_mask(in, d, _mm512_set1_epi32(1));
    m[2] = _mm512_mask_cmpeq_epi32_mask(in, d, _mm512_set1_epi32((int32_t)W));
    m[3] = _mm512_mask_cmpeq_epi32_mask(in, d, _mm512_set1_epi32((int32_t)(W + 1)));
}

/* The masks of the 16 cells whose index is at offset 0, 1, W, W+1. */
CPOOL_TARGET_AVX512
static inline void cpool_cell_masks16_i64(const int64_t *ix, int64_t e, int64_t W, __mmask16 *m)
{
    const __m512i step = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    __m512i d0 = _mm512_sub_epi64(_mm512_loadu_si512((const void *)ix),
                                  _mm512_add_epi64(_mm512_set1_epi64(e), step));
    __m512i d1 = _mm512_sub_epi64(_mm512_loadu_si512((const void *)(ix + 8)),
                                  _mm512_add_epi64(_mm512_set1_epi64(e + 16), step));
    /* Exact for all 64 bits: lanes with 0 <= d < W+2 (one unsigned compare),
       then which of 0, 1, W, W+1 on the low 32-bit halves of all 16 lanes. */
    const __m512i lo = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    __m512i lim = _mm512_set1_epi64(W + 2);
    __mmask16 in = (__mmask16)(_mm512_cmplt_epu64_mask(d0, lim) | (_mm512_cmplt_epu64_mask(d1, lim) << 8));
    cpool_cell_positions16(_mm512_permutex2var_epi32(d0, lo, d1), in, W, m);
}

CPOOL_TARGET_AVX512
static inline void cpool_cell_masks16_i32(const int32_t *ix, int64_t e, int64_t W, __mmask16 *m)
{
    const __m512i step = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    __m512i d = _mm512_sub_epi32(_mm512_loadu_si512((const void *)ix),
                                 _mm512_add_epi32(_mm512_set1_epi32((int32_t)e), step));
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

static int cpool_cpu_has_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
#else
#define CPOOL_HAVE_CELLS_AVX512 0
static int cpool_cpu_has_avx512(void) { return 0; }
#endif

/* 2: AVX-512, 1: AVX2, 0: off. Set by cpool._kernels*.cells_isa(). */
static int cpool_cells_level = 1;

/* The row and plane functions, once per index type. */
#define CPOOL_IDX int64_t
#define CPOOL_SUFFIX(name) name##_i64
#include "_cells_rows.h"
#undef CPOOL_IDX
#undef CPOOL_SUFFIX
#define CPOOL_IDX int32_t
#define CPOOL_SUFFIX(name) name##_i32
#include "_cells_rows.h"
#undef CPOOL_IDX
#undef CPOOL_SUFFIX

#else /* no AVX2: callers always take the general path */
#define CPOOL_HAVE_CELLS 0
#define CPOOL_HAVE_CELLS_AVX512 0
static int cpool_cells_level = 0;
static int cpool_cpu_has_avx512(void) { return 0; }
static int cpool_cells_plane_f32_i64(const float *go, const int64_t *idx, float *gi, Py_ssize_t H, Py_ssize_t W,
                                     Py_ssize_t OH, Py_ssize_t OW)
{
    (void)go; (void)idx; (void)gi; (void)H; (void)W; (void)OH; (void)OW;
    return 0;
}
static int cpool_cells_plane_f32_i32(const float *go, const int32_t *idx, float *gi, Py_ssize_t H, Py_ssize_t W,
                                     Py_ssize_t OH, Py_ssize_t OW)
{
    (void)go; (void)idx; (void)gi; (void)H; (void)W; (void)OH; (void)OW;
    return 0;
}
#endif

#endif /* CPOOL_CELLS_H */
