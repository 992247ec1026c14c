#!/usr/bin/env bash
# A long fuzzing campaign: every target on every kernel variant, one process
# at a time, at the lowest priority (fuzz/README.md).
#
#   bash tools/fuzz_build.sh /tmp/cpool-fuzz-build
#   bash fuzz/long_run.sh /tmp/cpool-fuzz-build 600 /tmp/cpool-fuzz-long
#
# Arguments: the sanitizer build (tools/fuzz_build.sh), seconds per target
# and variant, and an output folder: corpus/<target>/ (the working corpus,
# seeded from fuzz/corpus/<target>/ and shared by the variants),
# crashes/<target>-<isa>-crash-* (libFuzzer's artifacts), logs/<target>-<isa>.log.
# A segment that stops on a finding is restarted for the rest of its time.
# FUZZ_TARGETS and FUZZ_ISAS override the lists (defaults below).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: long_run.sh BUILD_DIR SECONDS_PER_SEGMENT OUT_DIR}
seconds=${2:?seconds per segment}
out=${3:?output folder}
targets=${FUZZ_TARGETS:-max_pool2d max_pool2d_backward MaxPool2d avg_pool2d avg_pool2d_backward adaptive_avg_pool2d adaptive_max_pool2d max_unpool2d indices}
isas=${FUZZ_ISAS:-baseline avx2}
# shellcheck disable=SC1091
. "$build/env.sh"
export PYTHONHASHSEED=0
# With the kernel's autogroup scheduling, nice only ranks processes within a
# session: lower this session's group as well (when the kernel lets us).
echo 19 2>/dev/null >/proc/self/autogroup || true
# a smaller quarantine keeps the long run's memory flat (use-after-free is still caught)
export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=64"
mkdir -p "$out/logs" "$out/crashes"
seed=1
for isa in $isas; do
    for target in $targets; do
        mkdir -p "$out/corpus/$target"
        seeds=()
        [ -d "$here/corpus/$target" ] && seeds=("$here/corpus/$target")
        log="$out/logs/$target-$isa.log"
        : >"$log"
        start=$(date +%s)
        while :; do
            left=$((seconds - ($(date +%s) - start)))
            [ "$left" -gt 20 ] || break
            echo "=== $(date -u +%FT%TZ) $target CPOOL_ISA=$isa seed=$seed for ${left}s" >>"$log"
            set +e
            CPOOL_ISA=$isa nice -n 19 python "$here/fuzz_cpool.py" --target "$target" \
                -max_total_time="$left" -seed="$seed" -max_len=1024 -timeout=60 -rss_limit_mb=4096 \
                -print_final_stats=1 -artifact_prefix="$out/crashes/$target-$isa-" \
                "$out/corpus/$target" "${seeds[@]}" >>"$log" 2>&1
            rc=$?
            set -e
            echo "=== exit $rc" >>"$log"
            seed=$((seed + 1))
        done
    done
done
echo "long_run: done; logs in $out/logs, crashes (if any) in $out/crashes"
