#!/usr/bin/env bash
# A bounded, reproducible fuzz run of cpool's public entry points under
# AddressSanitizer + UndefinedBehaviorSanitizer (fuzz/README.md):
#
#  1. installs atheris (and clang, for native coverage, where apt-get can);
#  2. builds the sanitizer copy of the extension (tools/fuzz_build.sh);
#  3. replays the regression inputs (fuzz/crashes/*.bin) on it;
#  4. fuzzes each target on each kernel variant for a fixed number of runs
#     from the seed corpus (fuzz/corpus/<target>/) with a fixed -seed=.
#
# Fails on any finding (broken invariant, crash, sanitizer report). New
# corpus entries and crash files go to a temporary folder (printed); the
# repository is not written to. A few minutes on a 2-core machine.
#
# Environment: FUZZ_RUNS (runs per target and variant, default 1500),
# FUZZ_SEED (default 1), PYTHON (default python), FUZZ_KEEP=1 keeps the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
PYTHON=${PYTHON:-python}
runs=${FUZZ_RUNS:-1500}
seed=${FUZZ_SEED:-1}
targets="max_pool2d max_pool2d_backward MaxPool2d avg_pool2d avg_pool2d_backward adaptive_avg_pool2d adaptive_max_pool2d max_unpool2d indices"

# atheris, and what tools/fuzz_build.sh's in-place build of the extension
# needs (a pip install of cpool builds in an isolated environment, so a
# fresh machine has no Cython of its own).
"$PYTHON" -m pip install -q atheris "Cython>=3.1" "setuptools>=77" "numpy>=2"
if ! command -v clang >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && apt-get install -y -qq clang libomp-dev; } >/dev/null 2>&1 ||
        echo "fuzz: could not install clang; the gcc build fuzzes without coverage guidance"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cpool-ci-fuzz.XXXXXX")
cleanup() {
    local found=("$work"/crash-*)
    if [ "${FUZZ_KEEP:-0}" = 1 ] || { [ "${#found[@]}" -gt 0 ] && [ -e "${found[0]}" ]; }; then echo "fuzz: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
FUZZ_LOG_DIR="$work/reports" PYTHON="$PYTHON" bash tools/fuzz_build.sh "$work/build"
# the sanitizer environment (LD_PRELOAD, ...) for the Python runs only, not for grep & co
# shellcheck disable=SC1091
sanitized() { (. "$work/build/env.sh" && PYTHONHASHSEED=0 "$@"); }

# (from $work: run in the checkout, `python -c` would import its cpool/, which has no extension)
isas=$(cd "$work" && sanitized "$PYTHON" -c "import cpool._compiled as c; print(' '.join(c.AVAILABLE_ISAS))")
echo "fuzz: kernel variants: $isas"
shopt -s nullglob
crashes=(fuzz/crashes/*.bin)
if [ "${#crashes[@]}" -gt 0 ]; then
    for isa in $isas; do
        CPOOL_ISA=$isa sanitized "$PYTHON" fuzz/fuzz_cpool.py --replay "${crashes[@]}" >/dev/null
    done
    echo "fuzz: ${#crashes[@]} regression input(s) replayed on $isas"
fi
for isa in $isas; do
    for target in $targets; do
        mkdir -p "$work/corpus/$target"
        echo "fuzz: $target, CPOOL_ISA=$isa, $runs runs, seed $seed"
        set +e
        CPOOL_ISA=$isa sanitized "$PYTHON" fuzz/fuzz_cpool.py --target "$target" -runs="$runs" -seed="$seed" \
            -max_len=1024 -timeout=60 -rss_limit_mb=4096 -print_final_stats=1 \
            -artifact_prefix="$work/crash-$target-$isa-" "$work/corpus/$target" "fuzz/corpus/$target" \
            >"$work/$target-$isa.log" 2>&1
        rc=$?
        set -e
        grep -E "^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|^INFO: +[0-9]+ files found" "$work/$target-$isa.log" || true
        if [ "$rc" -ne 0 ]; then
            tail -n 60 "$work/$target-$isa.log" >&2
            for f in "$work"/crash-*; do
                echo "fuzz: finding in $f (hex below); to make it a regression test:" >&2
                echo "      cp $f fuzz/crashes/$target--<what>.bin" >&2
                od -An -tx1 -v "$f" >&2
            done
            exit 1
        fi
    done
done
reports=("$work"/reports/*)
if [ "${#reports[@]}" -gt 0 ]; then
    echo "fuzz: sanitizer reports:" >&2
    cat "${reports[@]}" >&2
    exit 1
fi
echo "fuzz: OK: no finding, no sanitizer report"
