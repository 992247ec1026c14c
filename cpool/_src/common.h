/* What every kernel source of cpool shares: the pooling geometry, the
 * inlining and assumption macros, the instruction set this translation unit
 * is compiled for, the CPU feature checks and the OpenMP facts.
 *
 * Included by kernels.pyx (through its extern blocks) and by the intrinsic
 * headers; the struct is the C side of cpool._validation.PoolGeometry, whose
 * fields the Cython entry points copy in by name.
 */
#ifndef CPOOL_COMMON_H
#define CPOOL_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    Py_ssize_t kh, kw, sh, sw, ph, pw, dh, dw, H, W, OH, OW;
} cpool_geometry;

/* Window positions are kept in 32-bit lanes (int32_t plane offsets) by the
   vector kernels; a plane this large or larger needs 64-bit offsets. */
#define CPOOL_INT32_PLANE ((Py_ssize_t)1 << 31)

static inline int cpool_plane_fits_int32(const cpool_geometry *g)
{
    return g->H * g->W < CPOOL_INT32_PLANE;
}

#if defined(__GNUC__) || defined(__clang__)
#define CPOOL_ALWAYS_INLINE inline __attribute__((always_inline))
#define CPOOL_NOINLINE __attribute__((noinline))
/* Lets the compiler drop a test that the caller's contract makes true (an
   index pointer that is not NULL), so one inlined body serves every index
   width without a run-time branch. */
#define CPOOL_ASSUME(cond) do { if (!(cond)) __builtin_unreachable(); } while (0)
#elif defined(_MSC_VER)
#define CPOOL_ALWAYS_INLINE __forceinline
#define CPOOL_NOINLINE __declspec(noinline)
#define CPOOL_ASSUME(cond) __assume(cond)
#else
#define CPOOL_ALWAYS_INLINE inline
#define CPOOL_NOINLINE
#define CPOOL_ASSUME(cond) ((void)0)
#endif

/* The instruction set this translation unit is compiled for (setup.py
   builds the kernels once per variant) and its widest vector, for the
   auto-vectorised loops' chunk lengths. */
#if defined(__AVX2__)
#define CPOOL_COMPILED_ISA "avx2"
#define CPOOL_VEC_BYTES 32
#else
#define CPOOL_COMPILED_ISA "baseline"
#define CPOOL_VEC_BYTES 16
#endif

/* Whether this CPU and OS run AVX2 (with FMA) / the AVX-512 subsets the
   cell writer uses. GCC and clang on x86 only; elsewhere 0, and the
   baseline kernels run. */
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define CPOOL_X86_CPU_CHECKS 1
static int cpool_cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static int cpool_cpu_has_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
#else
#define CPOOL_X86_CPU_CHECKS 0
static int cpool_cpu_has_avx2(void) { return 0; }
static int cpool_cpu_has_avx512(void) { return 0; }
#endif

#ifdef _OPENMP
#include <omp.h>
static int cpool_openmp_enabled(void) { return 1; }
static int cpool_omp_max_threads(void) { return omp_get_max_threads(); }
#else
static int cpool_openmp_enabled(void) { return 0; }
static int cpool_omp_max_threads(void) { return 1; }
#endif

#endif /* CPOOL_COMMON_H */
