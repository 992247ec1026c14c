#!/usr/bin/env bash
# Build a sanitizer copy of cpool's extension for fuzzing (fuzz/README.md).
#
#   bash tools/fuzz_build.sh [DIR]      # default DIR: ${TMPDIR:-/tmp}/cpool-fuzz-build
#   . DIR/env.sh                        # LD_PRELOAD, ASAN_OPTIONS, UBSAN_OPTIONS, PYTHONPATH
#   python fuzz/fuzz_cpool.py --target max_pool2d -runs=10000 -seed=1
#
# Copies the repository (tracked and untracked, non-ignored files) into
# DIR/repo and builds both kernel variants (cpool._kernels, the baseline, and
# cpool._kernels_avx2) there with
#     -fsanitize=address,undefined -fno-sanitize-recover=all
# so the in-place build of the checkout is never touched. With clang (the
# default when it is installed) the build also gets libFuzzer's coverage
# instrumentation (-fsanitize=fuzzer-no-link), and env.sh preloads atheris'
# asan_with_fuzzer.so, the ASan + UBSan + libFuzzer runtime the instrumented
# code links against at run time; libFuzzer then sees the kernels' edges as
# well as the Python code's. With gcc (FUZZ_CC=gcc, or no clang) env.sh
# preloads gcc's libasan and libubsan, whose coverage stubs shadow atheris'
# own: libFuzzer gets no coverage at all and only mutates the seed corpus
# (still a sanitizer and invariant check, but not coverage-guided).
#
# Environment:
#   FUZZ_CC=clang|gcc    the compiler (default: clang if installed, else gcc)
#   PYTHON=...           the interpreter (default: python); atheris must be
#                        importable for the clang build (pip install atheris)
#   FUZZ_LOG_DIR=...     where the sanitizers write their reports (env.sh's
#                        log_path; default DIR/reports)
#   FUZZ_SOURCE=HEAD     build the last commit (git archive) instead of the
#                        working tree, e.g. while the tree is mid-edit
set -euo pipefail

PYTHON=${PYTHON:-python}
here=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-${TMPDIR:-/tmp}/cpool-fuzz-build}
if [ -z "${FUZZ_CC:-}" ]; then
    if command -v clang >/dev/null; then FUZZ_CC=clang; else FUZZ_CC=gcc; fi
fi
command -v "$FUZZ_CC" >/dev/null || { echo "fuzz_build: no compiler '$FUZZ_CC'" >&2; exit 2; }

sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all"
case "$FUZZ_CC" in
    *clang*)
        atheris_dir=$("$PYTHON" -c "import atheris; print(atheris.path())") || {
            echo "fuzz_build: the clang build needs atheris (pip install atheris)" >&2; exit 2; }
        preload="$atheris_dir/asan_with_fuzzer.so"
        [ -e "$preload" ] || { echo "fuzz_build: $preload is missing from atheris' wheel" >&2; exit 2; }
        cflags="$sanitize -fsanitize=fuzzer-no-link"
        ldflags="$sanitize -fsanitize=fuzzer-no-link"
        coverage=native
        ;;
    *)
        preload="$("$FUZZ_CC" -print-file-name=libasan.so) $("$FUZZ_CC" -print-file-name=libubsan.so)"
        for lib in $preload; do
            [ -e "$lib" ] || { echo "fuzz_build: $FUZZ_CC has no $lib (apt-get install libasan8 libubsan1)" >&2; exit 2; }
        done
        cflags="$sanitize"
        ldflags="$sanitize"
        coverage="none (gcc's libasan shadows atheris' coverage hooks)"
        ;;
esac

rm -rf "$dest/repo"
mkdir -p "$dest/repo"
echo "fuzz_build: copying $here (${FUZZ_SOURCE:-working tree}) to $dest/repo"
if [ -n "${FUZZ_SOURCE:-}" ]; then
    git -C "$here" archive --format=tar "$FUZZ_SOURCE" | (cd "$dest/repo" && tar xf -)
    # the fuzz harness itself always comes from the working tree
    (cd "$here" && tar cf - fuzz) | (cd "$dest/repo" && tar xf -)
elif git -C "$here" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$here" && git ls-files -z --cached --others --exclude-standard) |
        (cd "$here" && xargs -0 tar cf - --ignore-failed-read 2>/dev/null) | (cd "$dest/repo" && tar xf -)
else
    (cd "$here" && tar cf - --exclude=build --exclude='*.so' --exclude=.git .) | (cd "$dest/repo" && tar xf -)
fi
rm -f "$dest"/repo/cpool/*.so "$dest"/repo/cpool/_kernels.c

echo "fuzz_build: building with $FUZZ_CC $cflags"
cd "$dest/repo"
# -O1 -g: readable reports. CPOOL_CFLAGS comes after setup.py's -O3, so it
# wins; -fno-wrapv undoes CPython's -fwrapv, so signed overflow in the
# kernels is reported instead of silently wrapping.
CC="$FUZZ_CC" LDSHARED="$FUZZ_CC -shared" \
    CPOOL_CFLAGS="$cflags -fno-wrapv -fno-omit-frame-pointer -g -O1" LDFLAGS="$ldflags" \
    "$PYTHON" setup.py -q build_ext --inplace >"$dest/build.log" 2>&1 || {
    cat "$dest/build.log" >&2; echo "fuzz_build: the build failed (log: $dest/build.log)" >&2; exit 2; }
n=0
for so in cpool/_kernels*.so; do
    syms=$(nm -D "$so")   # (not piped into grep -q: SIGPIPE + pipefail)
    grep -q __asan_report <<<"$syms" || { echo "fuzz_build: $so has no ASan instrumentation" >&2; exit 2; }
    grep -q __ubsan_handle <<<"$syms" || { echo "fuzz_build: $so has no UBSan instrumentation" >&2; exit 2; }
    if [ "$coverage" = native ] && ! grep -q __sanitizer_cov <<<"$syms"; then
        echo "fuzz_build: $so has no coverage instrumentation" >&2; exit 2
    fi
    echo "fuzz_build: built $so"
    n=$((n + 1))
done
[ "$n" -ge 1 ] || { echo "fuzz_build: no extension was built" >&2; exit 2; }

logs=${FUZZ_LOG_DIR:-$dest/reports}
mkdir -p "$logs"
# detect_leaks=0: CPython's own allocations at exit are not cpool's leaks.
# handle_abort etc.: libFuzzer's own crash handling is kept (atheris prints
# the Python traceback and writes the crash file).
cat >"$dest/env.sh" <<EOF
# Generated by tools/fuzz_build.sh ($FUZZ_CC; coverage: $coverage). Source it.
export LD_PRELOAD="$preload"
export ASAN_OPTIONS="detect_leaks=0:alloc_dealloc_mismatch=0:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=0:allocator_may_return_null=1:log_path=$logs/asan"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
export PYTHONPATH="$dest/repo"
export PYTHONMALLOC=malloc
export CPOOL_FUZZ_BUILD="$dest"
export CPOOL_FUZZ_REPORTS="$logs"
unset CPOOL_BACKEND
EOF
echo "fuzz_build: OK ($FUZZ_CC, coverage: $coverage); . $dest/env.sh to use it; reports go to $logs"
