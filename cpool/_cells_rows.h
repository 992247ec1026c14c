/* The cell writer's rows and planes for one index type; included twice by
 * _cells.h with CPOOL_IDX (int64_t, int32_t) and CPOOL_SUFFIX(name) (name_i64,
 * name_i32) defined. Not a header of its own: no include guard on purpose. */

static inline __m256i CPOOL_SUFFIX(cpool_cells8)(const float *g, const CPOOL_IDX *ix, int64_t e, int64_t W,
                                                 float *top, float *bot)
{
    __m256i fits, d = CPOOL_SUFFIX(cpool_cell_offsets8)(ix, e, &fits);
    return cpool_cells8_write(g, d, fits, W, top, bot);
}

/* One row of at least 8 cells without over-running: vectors of 8, the last
   one overlapping the one before. Also zeroes the columns past 2*OW.
   Returns 0 if an index is not in its cell. */
static inline int CPOOL_SUFFIX(cpool_cells_row_exact)(const float *g, const CPOOL_IDX *ix, int64_t e,
                                                      Py_ssize_t W, Py_ssize_t OW, float *top, float *bot)
{
    __m256i bad = _mm256_setzero_si256();
    Py_ssize_t c;
    for (c = 0;; c += 8) {
        if (c + 8 > OW)
            c = OW - 8; /* the last vector overlaps the one before: same cells, same values */
        bad = _mm256_or_si256(bad, _mm256_andnot_si256(
            CPOOL_SUFFIX(cpool_cells8)(g + c, ix + c, e + 2 * c, W, top + 2 * c, bot + 2 * c),
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
   _cells.h): needs W == 2*OW, OW >= 8 and a next row in the plane. */
static inline int CPOOL_SUFFIX(cpool_cells_row_overrun)(const float *g, const CPOOL_IDX *ix, int64_t e,
                                                        Py_ssize_t W, Py_ssize_t OW, float *top, float *bot)
{
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    Py_ssize_t c = (OW - 1) / 8 * 8;
    __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)(OW - c)), iota);
    __m256i bad = _mm256_andnot_si256(
        CPOOL_SUFFIX(cpool_cells8)(g + c, ix + c, e + 2 * c, W, top + 2 * c, bot + 2 * c), live);
    for (c -= 8; c >= 0; c -= 8)  /* right to left: column 0, stored last, covers the spill */
        bad = _mm256_or_si256(bad, _mm256_andnot_si256(
            CPOOL_SUFFIX(cpool_cells8)(g + c, ix + c, e + 2 * c, W, top + 2 * c, bot + 2 * c),
            _mm256_set1_epi32(-1)));
    return _mm256_testz_si256(bad, bad);
}

/* One (H, W) plane from its (OH, OW) go and idx; needs H >= 2*OH, W >= 2*OW
   and OW >= CPOOL_CELLS_MIN_OW (shorter rows measured slower than
   zero-and-scatter: too little work per row for the vector set-up).
   Returns 1 if done, 0 if an index is not in its cell (gi is then partly
   written and must be redone). */
static int CPOOL_SUFFIX(cpool_cells_plane_avx2)(const float *go, const CPOOL_IDX *idx, float *gi, Py_ssize_t H,
                                                Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)
{
    const int overrun = (W == 2 * OW);
    Py_ssize_t oh;
    for (oh = 0; oh < OH; oh++) {
        float *top = gi + 2 * oh * W;
        int ok = (overrun && oh + 1 < OH)
            ? CPOOL_SUFFIX(cpool_cells_row_overrun)(go + oh * OW, idx + oh * OW, 2 * oh * W, W, OW, top, top + W)
            : CPOOL_SUFFIX(cpool_cells_row_exact)(go + oh * OW, idx + oh * OW, 2 * oh * W, W, OW, top, top + W);
        if (!ok)
            return 0;
    }
    if (H > 2 * OH)
        memset(gi + 2 * OH * W, 0, (H - 2 * OH) * W * sizeof(float));
    return 1;
}

#if CPOOL_HAVE_CELLS_AVX512
/* The same with 16 cells a vector; rows shorter than that and each plane's
   last row (which must not over-run) go through the AVX2 code. About 1.3x
   faster than AVX2 where the CPU has it. */
CPOOL_TARGET_AVX512
static int CPOOL_SUFFIX(cpool_cells_plane_avx512)(const float *go, const CPOOL_IDX *idx, float *gi, Py_ssize_t H,
                                                  Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)
{
    Py_ssize_t oh, c;
    __mmask16 m[4];
    if (!(W == 2 * OW && H == 2 * OH))
        return CPOOL_SUFFIX(cpool_cells_plane_avx2)(go, idx, gi, H, W, OH, OW);
    for (oh = 0; oh + 1 < OH; oh++) {  /* over-running rows, as in the AVX2 code */
        const float *g = go + oh * OW;
        const CPOOL_IDX *ix = idx + oh * OW;
        float *top = gi + 2 * oh * W, *bot = top + W;
        int64_t e = 2 * oh * W;
        c = (OW - 1) / 16 * 16;
        unsigned live = OW - c >= 16 ? 0xFFFFu : (1u << (OW - c)) - 1u;
        CPOOL_SUFFIX(cpool_cell_masks16)(ix + c, e + 2 * c, W, m);
        if ((cpool_cells16_write(g + c, m, top + 2 * c, bot + 2 * c) & live) != live)
            return 0;
        for (c -= 16; c >= 0; c -= 16) {
            CPOOL_SUFFIX(cpool_cell_masks16)(ix + c, e + 2 * c, W, m);
            if (cpool_cells16_write(g + c, m, top + 2 * c, bot + 2 * c) != 0xFFFFu)
                return 0;
        }
    }
    return CPOOL_SUFFIX(cpool_cells_row_exact)(go + oh * OW, idx + oh * OW, 2 * oh * W, W, OW,
                                               gi + 2 * oh * W, gi + (2 * oh + 1) * W);
}
#endif

/* The writer chosen by cpool_cells_level (callers check it is not 0). */
static int CPOOL_SUFFIX(cpool_cells_plane_f32)(const float *go, const CPOOL_IDX *idx, float *gi, Py_ssize_t H,
                                               Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW)
{
#if CPOOL_HAVE_CELLS_AVX512
    if (cpool_cells_level >= 2)
        return CPOOL_SUFFIX(cpool_cells_plane_avx512)(go, idx, gi, H, W, OH, OW);
#endif
    return CPOOL_SUFFIX(cpool_cells_plane_avx2)(go, idx, gi, H, W, OH, OW);
}
