#!/usr/bin/env bash
# Build cpool's extension with AddressSanitizer and run the whole test suite
# against it. Fails on any ASan report (and on any test failure).
#
# Self-contained: copies the repository (tracked and untracked, non-ignored
# files) into a temporary directory and builds there, so the in-place build
# in the checkout is left alone.
#
#   bash tools/asan_check.sh                  # the whole suite
#   bash tools/asan_check.sh tests/test_api_errors.py -k hostile   # extra pytest args (passed to pytest)
#
# Environment:
#   ASAN_CHECK_UBSAN=1   also build with -fsanitize=undefined (reports fail the run)
#   ASAN_CHECK_KEEP=1    keep the temporary copy (its path is printed)
#   ASAN_CHECK_ISAS="baseline avx2"   the CPOOL_ISA values to run the suite with
#                        (default: every variant the build and this CPU run)
#   PYTHON=...           the interpreter (default: python)
#
# Reports are collected where pytest's capture of fd 2 cannot hide them:
# ASan writes them to files (log_path); gcc's libubsan ignores log_path and
# writes to stderr, so the suite runs with -s (no capture) and its output is
# kept in a log that is searched for reports too. Before the suite a canary
# (a small instrumented library with a heap overflow, and with UBSan a
# misaligned load) checks that a report really is found that way.
#
# Needs gcc (or a compiler whose -print-file-name=libasan.so works) and the
# test dependencies (pytest, hypothesis, threadpoolctl; torch optional).
# Leak detection is off: CPython itself does not free everything at exit.
set -euo pipefail

PYTHON=${PYTHON:-python}
CC_FOR_ASAN=${CC:-gcc}
here=$(cd "$(dirname "$0")/.." && pwd)

libasan=$("$CC_FOR_ASAN" -print-file-name=libasan.so)
if [ ! -e "$libasan" ]; then
    echo "asan_check: $CC_FOR_ASAN has no libasan.so (got '$libasan'); install libasan (e.g. apt-get install libasan8)" >&2
    exit 2
fi
# libstdc++ right after libasan: ASan's __cxa_throw interceptor needs the real
# one resolvable, or the first C++ exception in an uninstrumented library
# (matplotlib, torch) aborts with "CHECK failed ... real___cxa_throw".
libstdcxx=$("$CC_FOR_ASAN" -print-file-name=libstdc++.so)
preload="$libasan"
[ -e "$libstdcxx" ] && preload="$preload $libstdcxx"
sanitize="-fsanitize=address"
if [ "${ASAN_CHECK_UBSAN:-0}" = 1 ]; then
    libubsan=$("$CC_FOR_ASAN" -print-file-name=libubsan.so)
    preload="$preload $libubsan"
    # -fno-wrapv: CPython's -fwrapv would make signed overflow defined (and unchecked)
    sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-wrapv"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cpool-asan.XXXXXX")
cleanup() { if [ "${ASAN_CHECK_KEEP:-0}" = 1 ]; then echo "asan_check: kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT

echo "asan_check: copying $here to $work/repo"
mkdir -p "$work/repo"
if git -C "$here" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # tracked files plus untracked files git does not ignore (no builds, no .so)
    (cd "$here" && git ls-files -z --cached --others --exclude-standard) |
        (cd "$here" && xargs -0 tar cf - --ignore-failed-read 2>/dev/null) | (cd "$work/repo" && tar xf -)
else
    (cd "$here" && tar cf - --exclude=build --exclude='*.so' --exclude='cpool/_kernels.c' --exclude=.git .) |
        (cd "$work/repo" && tar xf -)
fi
rm -f "$work"/repo/cpool/*.so "$work"/repo/cpool/_kernels.c

echo "asan_check: building with $sanitize"
cd "$work/repo"
# -O1 -g: readable reports; CPOOL_CFLAGS comes after setup.py's -O3, so it wins.
CPOOL_CFLAGS="$sanitize -fno-omit-frame-pointer -g -O1" LDFLAGS="$sanitize" \
    "$PYTHON" setup.py -q build_ext --inplace >"$work/build.log" 2>&1 || {
    cat "$work/build.log" >&2; echo "asan_check: the ASan build failed" >&2; exit 2; }
for so in cpool/_kernels*.so; do
    syms=$(nm -D "$so")   # (not piped into grep -q: SIGPIPE + pipefail)
    if ! grep -q __asan_report <<<"$syms"; then
        echo "asan_check: $so is not instrumented (no __asan_report symbols)" >&2
        exit 2
    fi
    echo "asan_check: built $so (instrumented)"
done

mkdir -p "$work/reports"
export LD_PRELOAD="$preload"
# detect_leaks=0: CPython's own allocations at exit are not leaks of cpool.
# alloc_dealloc_mismatch=0: some wheels (torch) mix allocators harmlessly.
export ASAN_OPTIONS="detect_leaks=0:alloc_dealloc_mismatch=0:abort_on_error=0:halt_on_error=1:exitcode=99:log_path=$work/reports/asan:handle_segv=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$work/reports/ubsan"
export PYTHONPATH="$work/repo"
export PYTHONMALLOC=malloc   # let ASan see Python-level buffers too
unset CPOOL_BACKEND || true

# The canary: a report must reach the log files, or a clean run proves nothing.
mkdir -p "$work/canary"
cat >"$work/canary/canary.c" <<'EOF'
#include <stdlib.h>
#include <string.h>
int canary_heap(int n) { char *p = malloc(n); memset(p, 1, n); int v = p[n]; free(p); return v; }
int canary_misaligned(int off) { char b[16] = {0}; return *(int *)(b + off); }
EOF
# shellcheck disable=SC2086
"$CC_FOR_ASAN" $sanitize -fno-omit-frame-pointer -g -O0 -shared -fPIC -o "$work/canary/libcanary.so" \
    "$work/canary/canary.c"
report_pattern="ERROR: AddressSanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer"
canary_check() {   # $1: the function to call, $2: the report file prefix, $3: its argument
    rm -f "$work/reports"/*
    set +e
    "$PYTHON" -c "import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]); getattr(lib, sys.argv[2])(int(sys.argv[3]))" \
        "$work/canary/libcanary.so" "$1" "$3" >"$work/canary/$1.out" 2>&1
    set -e
    # (grep -q succeeds on a match even if another file is missing)
    if ! grep -q -E "$report_pattern" "$work/canary/$1.out" "$work/reports/$2".* 2>/dev/null; then
        echo "asan_check: the canary ($1) left no $2 report in $work/reports or its output: reports would go unseen" >&2
        exit 2
    fi
    rm -f "$work/reports"/*
}
canary_check canary_heap asan 8
if [ "${ASAN_CHECK_UBSAN:-0}" = 1 ]; then canary_check canary_misaligned ubsan 1; fi
echo "asan_check: the canaries' reports reached $work/reports"

# Every kernel variant the build has: CPOOL_ISA=baseline forces the portable
# kernels, "auto" picks the widest the CPU runs (avx2 or avx512 on most
# x86-64). The suite fails if the extension does not import (no --no-extension).
all_isas=$("$PYTHON" -c "import cpool._compiled as c; print(' '.join(c.AVAILABLE_ISAS))")
isas=${ASAN_CHECK_ISAS:-$all_isas}
case " $all_isas " in *" avx512 "*) ;; *) echo "asan_check: no avx512 variant on this CPU/build; variants: $all_isas";; esac
rc=0
for isa in $isas; do
    echo "asan_check: === CPOOL_ISA=$isa ==="
    CPOOL_ISA=$isa "$PYTHON" -c "import cpool; assert cpool.backend == 'cython'; print('asan_check: cpool from', cpool.__file__); cpool.show_config()"
    set +e
    # no -x: a failing test must not hide sanitizer checks in the tests after it;
    # -s: UBSan's reports go to stderr, which pytest would otherwise capture
    CPOOL_ISA=$isa "$PYTHON" -m pytest tests -q -s -p no:cacheprovider "$@" 2>&1 | tee "$work/pytest-$isa.log"
    this=${PIPESTATUS[0]}
    set -e
    [ "$this" -eq 0 ] || rc=$this
    if grep -q -E "$report_pattern" "$work/pytest-$isa.log"; then
        grep -E -A40 "$report_pattern" "$work/pytest-$isa.log" >"$work/reports/stderr-$isa.txt"
    fi
    [ "$(ls "$work/reports" 2>/dev/null | wc -l)" -eq 0 ] || break
done

reports=$(ls "$work/reports" 2>/dev/null | wc -l)
if [ "$reports" -gt 0 ]; then
    echo "asan_check: $reports sanitizer report(s):" >&2
    for f in "$work"/reports/*; do echo "--- $f" >&2; grep -v -E "in _PyEval|in _PyObject|in do_call_core|in slot_tp_call|in _PyVectorcall" "$f" >&2; done
    exit 1
fi
if [ "$rc" -ne 0 ]; then
    echo "asan_check: the test suite failed under ASan (pytest exit code $rc), no sanitizer report" >&2
    exit "$rc"
fi
sanitizers="AddressSanitizer"
[ "${ASAN_CHECK_UBSAN:-0}" = 1 ] && sanitizers="AddressSanitizer + UndefinedBehaviorSanitizer"
what="the whole suite"
[ "$#" -eq 0 ] || what="the suite (pytest $*)"
echo "asan_check: OK: $what passed under $sanitizers with zero reports (CPOOL_ISA: $isas)"
