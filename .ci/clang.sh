#!/usr/bin/env bash
# The extension built with clang (and LLVM's OpenMP runtime, libomp) instead
# of gcc, then a fast test run of the compiled kernels against that build.
#
# The build must be warning-free under -Wall -Wextra (the kernel headers and
# the C that Cython generates from the .pyx/.pxi sources), must find OpenMP
# (CPOOL_REQUIRE_OPENMP=1) and must build the AVX2 variant on x86-64. It runs
# in a copy of the checkout and a fresh virtual environment under a
# temporary directory, removed at exit: the checkout is not touched.
# Installs clang and libomp-dev with apt-get when they are missing.
# PYTHON picks the interpreter (default: python).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
export PIP_DISABLE_PIP_VERSION_CHECK=1
unset CPOOL_BACKEND CPOOL_ISA OMP_NUM_THREADS
PYTHON=${PYTHON:-python}
start=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/cpool-clang.XXXXXX")
trap 'rm -rf "$work"' EXIT
say() { printf '\n--- %s [%ds] ---\n' "$*" $((SECONDS - start)); }

clang_openmp_works() {
    printf '#include <omp.h>\nint main(void) { int n = 0;\n#pragma omp parallel reduction(+:n)\nn += 1;\nreturn n > 0 ? 0 : 1; }\n' \
        >"$work/omp.c"
    clang -fopenmp "$work/omp.c" -o "$work/omp" 2>/dev/null && "$work/omp"
}
if ! command -v clang >/dev/null || ! clang_openmp_works; then
    say "installing clang and libomp-dev"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq clang libomp-dev >/dev/null
    clang_openmp_works || { echo "clang -fopenmp does not work even with libomp-dev" >&2; exit 1; }
fi
clang --version | head -n 1

say "build with clang"
mkdir "$work/src"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -) | tar -C "$work/src" -xf -
"$PYTHON" -m venv "$work/venv"
py="$work/venv/bin/python"
# CC alone also makes clang the linker (setuptools derives LDSHARED from it),
# so the extension links libomp, the runtime clang's OpenMP code calls.
if ! CC=clang CXX=clang++ CPOOL_REQUIRE_OPENMP=1 CPOOL_CFLAGS="-Wall -Wextra" \
        nice "$py" -m pip install -v "$work/src[test]" >"$work/build.log" 2>&1; then
    tail -n 60 "$work/build.log"
    exit 1
fi
grep -E '^\s*clang .* -c .*kernels' "$work/build.log" | cut -c1-240 || true
# Compiler diagnostics only (file:line: warning/error, or the driver's own),
# not setuptools' packaging warnings.
if grep -E '\.(c|h|pyx|pxi):[0-9]+(:[0-9]+)?: (warning|error):|clang: (warning|error):' "$work/build.log"; then
    echo "clang reported warnings building cpool (above)" >&2
    exit 1
fi

say "the clang build: backend, OpenMP runtime, variants"
cd "$work"  # outside the copy: import the installed package
"$py" - <<'EOF'
import glob, os, subprocess
import cpool
info = cpool.config()
print(info)
assert info["backend"] == "cython" and info["openmp"], info
mods = glob.glob(os.path.join(os.path.dirname(cpool.__file__), "_kernels*.so"))
for m in mods:
    ldd = subprocess.run(["ldd", m], capture_output=True, text=True).stdout
    assert "libomp" in ldd and "libgomp" not in ldd, (m, ldd)
    print(os.path.basename(m), "links", [ln.split()[0] for ln in ldd.splitlines() if "omp" in ln])
if os.uname().machine == "x86_64":
    assert any("_kernels_avx2" in m for m in mods), mods
EOF

# On Python 3.11, torch==2.13.0 (its CPU build) too: then
# tests/test_openmp_runtimes.py runs with LLVM's libomp (cpool) and torch's
# libgomp in one process.
if "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    say "torch==2.13.0 for the two-runtime tests"
    "$py" -m pip install -q --only-binary=:all: "torch==2.13.0"
fi

say "fast test run on the clang build"
mkdir "$work/suite"
for d in tests examples pyproject.toml; do cp -R "$work/src/$d" "$work/suite/"; done
(cd "$work/suite" && "$py" -m pytest -p no:cacheprovider -q -x tests/test_correctness.py tests/kernels \
    tests/test_threads.py tests/test_openmp_runtimes.py)
echo "clang build and tests passed in $((SECONDS - start)) s"
