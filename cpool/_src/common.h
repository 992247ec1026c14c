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

/* A 3-D pooling problem: the same fields as (depth, height, width) triples,
   in the order of cpool._validation.Pool3dGeometry. */
typedef struct {
    Py_ssize_t kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw, D, H, W, OD, OH, OW;
} cpool_geometry3;

/* Window positions are kept in 32-bit lanes (int32_t plane offsets) by the
   vector kernels; a plane this large or larger needs 64-bit offsets. */
#define CPOOL_INT32_PLANE ((Py_ssize_t)1 << 31)

static inline int cpool_plane_fits_int32(const cpool_geometry *g)
{
    return g->H * g->W < CPOOL_INT32_PLANE;
}

/* Taps t in [*lo, *hi) of a window whose tap t sits at start + t * d along
   an axis of `size` elements: the ones inside it (the others are padding,
   never selected and adding nothing). Loops over a window's taps run over
   these only, so a kernel far larger than the input (a ceil_mode window
   clipped to it) costs what its in-bounds taps cost. */
static inline void cpool_tap_range(Py_ssize_t start, Py_ssize_t k, Py_ssize_t d, Py_ssize_t size,
                                   Py_ssize_t *lo, Py_ssize_t *hi)
{
    Py_ssize_t a = start >= 0 ? 0 : (d - 1 - start) / d;
    Py_ssize_t b = start >= size ? 0 : (size - 1 - start) / d + 1;
    if (b > k)
        b = k;
    *lo = a;
    *hi = b > a ? b : a;
}

/* PyTorch's adaptive pooling windows: output o of an axis of out_len pools
   input [cpool_adaptive_start, cpool_adaptive_end) of that axis's size. */
static inline Py_ssize_t cpool_adaptive_start(Py_ssize_t o, Py_ssize_t out_len, Py_ssize_t size)
{
    return (o * size) / out_len;
}

static inline Py_ssize_t cpool_adaptive_end(Py_ssize_t o, Py_ssize_t out_len, Py_ssize_t size)
{
    return ((o + 1) * size + out_len - 1) / out_len;
}

/* Whether a kernel has more taps along an axis than the input has elements:
   then most taps of the portable kernels' tap-outer sweeps reach nothing,
   and the window-at-a-time loops over cpool_tap_range are used instead. */
static inline int cpool_kernel_oversized(const cpool_geometry *g)
{
    return g->kh > g->H || g->kw > g->W;
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
   baseline kernels run. Not clang-cl (clang with _MSC_VER): its
   __builtin_cpu_supports needs compiler-rt, which MSVC's linker does not
   pull in, and setup.py builds only the baseline kernels there. */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(_MSC_VER) && (defined(__x86_64__) || defined(__i386__))
#define CPOOL_X86_CPU_CHECKS 1
/* For the AVX-512 kernels, chosen at run time: the module itself is compiled
   for AVX2, so each AVX-512 function carries its own target. */
#define CPOOL_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
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
static int cpool_omp_team_size(void) { return omp_get_num_threads(); }
static int cpool_omp_member(void) { return omp_get_thread_num(); }
static double cpool_wtime(void) { return omp_get_wtime(); }
#else
static int cpool_openmp_enabled(void) { return 0; }
static int cpool_omp_max_threads(void) { return 1; }
static int cpool_omp_team_size(void) { return 1; }
static int cpool_omp_member(void) { return 0; }
static double cpool_wtime(void) { return 0.0; }
#endif

/* ---- threads on a busy machine -----------------------------------------
 * A parallel region ends in a barrier that waits for every member, so one
 * member the OS is not running holds the whole call up, for a scheduler
 * time slice or more: 64x32x28x28 forward with indices took 1.1 ms on 1
 * thread and 25 ms on 2 threads with two busy processes on this project's
 * 2-core machine. So the kernels hand out work in small chunks claimed
 * dynamically (CPOOL_CHUNKS_PER_THREAD per member: a late member finds
 * nothing left and leaves at once), and after each region they report what
 * happened here. The machine counts as busy when a member ran less than a
 * quarter of its fair share of the chunks (it was not running), or when
 * the calling thread spent more than a quarter of the region waiting for
 * the others (a member was descheduled in the middle of a chunk); on an
 * idle machine that wait is about one chunk. Calls then run on one thread
 * for a while (10 ms, doubling up to 1 s while it stays busy) and try the
 * team again. A call on one thread never enters an OpenMP region. */
#define CPOOL_CHUNKS_PER_THREAD 8
#define CPOOL_MAX_TEAM 256
#define CPOOL_SOLO_FIRST 0.01
#define CPOOL_SOLO_LONGEST 1.0

/* The state is shared by every Python thread calling the kernels; the
   updates are a heuristic, so relaxed atomic loads and stores suffice. */
#if defined(__GNUC__) || defined(__clang__)
#define CPOOL_LOAD(v) __atomic_load_n(&(v), __ATOMIC_RELAXED)
#define CPOOL_STORE(v, x) __atomic_store_n(&(v), (x), __ATOMIC_RELAXED)
#else
#define CPOOL_LOAD(v) (v)
#define CPOOL_STORE(v, x) ((v) = (x))
#endif
static int64_t cpool_solo_until_us = 0;  /* one thread until this time (cpool_wtime, microseconds) */
static int64_t cpool_solo_period_us = 0; /* the last solo period, 0 after a team ran well */

static int64_t cpool_now_us(void) { return (int64_t)(cpool_wtime() * 1e6); }

/* The team to use for a call that may use n threads. */
static int cpool_team_size(int n)
{
    if (n <= 1)
        return 1;
    if (cpool_now_us() < CPOOL_LOAD(cpool_solo_until_us))
        return 1;
    return n < CPOOL_MAX_TEAM ? n : CPOOL_MAX_TEAM;
}

/* After a region of `team` members over `chunks` chunks that took `wall`
   seconds, member t having run done[t] chunks, the calling thread (member
   0) `busy0` seconds of them. */
static void cpool_team_report(int team, const Py_ssize_t *done, Py_ssize_t chunks, double busy0, double wall)
{
    Py_ssize_t least = chunks;
    int t;
    for (t = 0; t < team; t++)
        least = done[t] < least ? done[t] : least;
    if (least * 4 * team < chunks || wall - busy0 > 0.25 * wall) {
        int64_t period = CPOOL_LOAD(cpool_solo_period_us) * 2;
        if (period < (int64_t)(CPOOL_SOLO_FIRST * 1e6))
            period = (int64_t)(CPOOL_SOLO_FIRST * 1e6);
        if (period > (int64_t)(CPOOL_SOLO_LONGEST * 1e6))
            period = (int64_t)(CPOOL_SOLO_LONGEST * 1e6);
        CPOOL_STORE(cpool_solo_period_us, period);
        CPOOL_STORE(cpool_solo_until_us, cpool_now_us() + period);
    } else if (CPOOL_LOAD(cpool_solo_period_us) != 0) {
        CPOOL_STORE(cpool_solo_period_us, 0);
    }
}

/* One call's team, kept on the runner's stack. Every parallel runner of
   the kernels does the same, in Cython (prange cannot be wrapped):

       n = cpool_team_threads(n_threads, units, adapt)
       if n == 1:
           run units [0, units) here, no OpenMP region
       else:
           chunks = cpool_team_open(team, n, units, adapt)
           for c in prange(chunks, schedule="dynamic", num_threads=n):
               t0 = cpool_team_enter(team, c)
               run units [units * c // chunks, units * (c + 1) // chunks)
               cpool_team_leave(team, t0)
           cpool_team_close(team)

   with `team` a `cpool_team team[1]`: an array, so the loop body only
   passes its address and the members share it (Cython makes a variable
   assigned in a prange body private to each member). Members write only
   their own done[] entry, member 0 alone busy0, the member running chunk 0
   alone size. `adapt`: the call follows the default thread count, so it
   may shrink its team and reports what it saw; an explicit thread count is
   used as given and reports nothing. */
typedef struct {
    int adapt;
    int size;                        /* members OpenMP started */
    Py_ssize_t chunks;
    double start;                    /* cpool_wtime() before the region */
    double busy0;                    /* seconds member 0 spent in chunks */
    Py_ssize_t done[CPOOL_MAX_TEAM]; /* chunks each member ran */
} cpool_team;

/* The members for a call of `units` independent work units that may use
   n_threads threads: never more than the units, 1 during a solo period
   (when adapt). 1 means: run serially, outside any OpenMP region. */
static int cpool_team_threads(int n_threads, Py_ssize_t units, int adapt)
{
    Py_ssize_t n = n_threads < units ? n_threads : units;
    if (n < 1)
        n = 1;
    if (n > CPOOL_MAX_TEAM)
        n = CPOOL_MAX_TEAM;
    return adapt ? cpool_team_size((int)n) : (int)n;
}

/* Before the region of n members over `units`: the number of chunks. */
static Py_ssize_t cpool_team_open(cpool_team *t, int n, Py_ssize_t units, int adapt)
{
    Py_ssize_t most = (Py_ssize_t)CPOOL_CHUNKS_PER_THREAD * n;
    t->adapt = adapt;
    t->size = 1;
    t->chunks = units < most ? units : most;
    t->busy0 = 0.0;
    memset(t->done, 0, (size_t)n * sizeof(Py_ssize_t));
    t->start = cpool_wtime();
    return t->chunks;
}

/* A member starts chunk c; returns the time, for cpool_team_leave. */
static CPOOL_ALWAYS_INLINE double cpool_team_enter(cpool_team *t, Py_ssize_t c)
{
    if (c == 0)
        t->size = cpool_omp_team_size();
    return cpool_wtime();
}

/* A member finished the chunk it entered at time t0. */
static CPOOL_ALWAYS_INLINE void cpool_team_leave(cpool_team *t, double t0)
{
    int member = cpool_omp_member();
    t->done[member] += 1;
    if (member == 0)
        t->busy0 += cpool_wtime() - t0;
}

/* After the region: report it (when adapt). */
static void cpool_team_close(const cpool_team *t)
{
    if (t->adapt)
        cpool_team_report(t->size, t->done, t->chunks, t->busy0, cpool_wtime() - t->start);
}

#endif /* CPOOL_COMMON_H */
