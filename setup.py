"""Build script for cpool's compiled extension.

Everything about the build lives here: the Cython directives (one place for
the whole extension), the compiler flags, and the OpenMP probe.

Environment variables:

CPOOL_DISABLE_OPENMP=1   build the kernels serially, without probing OpenMP.
CPOOL_REQUIRE_OPENMP=1   fail the build if the compiler cannot do OpenMP
                         (by default the build warns and goes serial).
CPOOL_CFLAGS="..."       extra compiler flags, e.g. "-march=native" for a
                         build that will only ever run on this machine.
CPOOL_NO_ISA_VARIANTS=1  build only the baseline kernels (no AVX2 copy).
CPOOL_LIBOMP_PREFIX=DIR  macOS: where libomp is installed (include/omp.h,
                         lib/libomp.dylib); default: Homebrew's libomp.

OpenMP flags per compiler: GCC and clang take -fopenmp (clang needs LLVM's
libomp, e.g. Debian's libomp-dev); Apple's clang has no -fopenmp driver flag,
so on macOS the fallback is -Xpreprocessor -fopenmp with libomp's headers and
-lomp; MSVC takes /openmp. A compiler that can do none of these builds the
kernels serially (with a warning), unless CPOOL_REQUIRE_OPENMP is set.
"""

import glob
import os
import platform
import shlex
import subprocess
import sys
import sysconfig
import tempfile
import textwrap

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CYTHON_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "nonecheck": False,
    "embedsignature": True,
    "freethreading_compatible": True,
}

OPENMP_TEST = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


def _truthy(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _check_compiler(compiler):
    """Fail early, and say why, when there is no working C compiler."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "cc_probe.c")
        with open(src, "w") as f:
            f.write("int main(void) { return 0; }\n")
        try:
            compiler.compile([src], output_dir=tmp)
        except Exception as exc:
            sys.exit(
                f"cpool: the C compiler cannot build a trivial program ({exc}). cpool's kernels are a compiled "
                "extension: install a C compiler (e.g. gcc) and the Python headers, then reinstall."
            )


def _libomp_prefixes():
    """Where macOS's libomp may be: CPOOL_LIBOMP_PREFIX, then Homebrew's."""
    found = []
    if os.environ.get("CPOOL_LIBOMP_PREFIX"):
        found.append(os.environ["CPOOL_LIBOMP_PREFIX"])
    try:
        out = subprocess.run(["brew", "--prefix", "libomp"], capture_output=True, text=True, timeout=60)
        if out.returncode == 0 and out.stdout.strip():
            found.append(out.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    found += ["/opt/homebrew/opt/libomp", "/usr/local/opt/libomp"]
    return [p for p in dict.fromkeys(found) if os.path.isfile(os.path.join(p, "include", "omp.h"))]


def _openmp_candidates(compiler):
    """(compile flags, link flags) to try, in order, for this compiler and platform."""
    if compiler.compiler_type == "msvc":
        return [(["/openmp"], [])]
    candidates = [(["-fopenmp"], ["-fopenmp"])]
    if sys.platform == "darwin":
        # Apple's clang: the preprocessor flag and an explicit libomp.
        for prefix in _libomp_prefixes():
            candidates.append((["-Xpreprocessor", "-fopenmp", "-I" + os.path.join(prefix, "include")],
                               ["-L" + os.path.join(prefix, "lib"), "-lomp"]))
    return candidates


def _openmp_flags(compiler):
    """Compile and link a small OpenMP program; return the flags that worked."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp_probe.c")
        with open(src, "w") as f:
            f.write(OPENMP_TEST)
        for cflags, ldflags in _openmp_candidates(compiler):
            try:
                objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
                compiler.link_executable(objs, os.path.join(tmp, "omp_probe"), extra_postargs=ldflags)
            except Exception:  # any compile or link failure means "not these flags"
                continue
            return cflags, ldflags
    return None


class BuildExt(build_ext):
    def finalize_options(self):
        super().finalize_options()
        # The extensions are independent: compile them side by side (pip
        # passes no -j). An explicit --parallel/-j is kept.
        if not self.parallel:
            jobs = min(len(self.distribution.ext_modules or ()), os.cpu_count() or 1)
            self.parallel = jobs if jobs > 1 else None

    def build_extensions(self):
        cflags = ["-O3"] if self.compiler.compiler_type != "msvc" else ["/O2"]
        cflags += shlex.split(os.environ.get("CPOOL_CFLAGS", ""))
        ldflags = []
        _check_compiler(self.compiler)
        if _truthy("CPOOL_DISABLE_OPENMP"):
            print("cpool: CPOOL_DISABLE_OPENMP is set; building the kernels without OpenMP (serial).")
        else:
            flags = _openmp_flags(self.compiler)
            if flags is None:
                msg = (
                    "cpool: the C compiler cannot build OpenMP code; the kernels will run on one thread. "
                    "Install your compiler's OpenMP runtime (e.g. libgomp) for multi-threaded kernels."
                )
                if _truthy("CPOOL_REQUIRE_OPENMP"):
                    sys.exit(msg.replace("will run on one thread", "and CPOOL_REQUIRE_OPENMP is set"))
                print("WARNING: " + msg, file=sys.stderr)
            else:
                cflags += flags[0]
                ldflags += flags[1]
        if self.compiler.compiler_type == "msvc":
            # The run-time CPU check (common.h) uses GCC/clang builtins; MSVC
            # builds get the baseline kernels only.
            self.extensions = [e for e in self.extensions if e.name == "cpool._kernels"]
        for ext in self.extensions:
            ext.extra_compile_args = list(ext.extra_compile_args or []) + cflags
            ext.extra_link_args = list(ext.extra_link_args or []) + ldflags
        super().build_extensions()


def _target_is_x86_64():
    """Whether the extension is built for x86-64: the target platform, which
    differs from this machine's when cross-compiling (sysconfig honours
    _PYTHON_HOST_PLATFORM; on macOS ARCHFLAGS names the architectures)."""
    target = sysconfig.get_platform().lower()
    if sys.platform == "darwin" and os.environ.get("ARCHFLAGS"):
        archs = shlex.split(os.environ["ARCHFLAGS"])[1::2]
        return archs == ["x86_64"]
    if target.endswith(("x86_64", "amd64")):
        return True
    if target.startswith(("linux", "macosx", "win")):
        return False
    return platform.machine().lower() in ("x86_64", "amd64")


# The kernels are compiled once for the baseline ISA of the platform (the
# wheel runs anywhere) and, on x86-64, once more with AVX2 and FMA, from the
# one source cpool/_src/kernels.pyx. cythonize names each generated C file
# after its .pyx, so the AVX2 variant is a generated two-line .pyx under
# build/ that includes the source. cpool._compiled picks the best variant
# the CPU runs at import (CPOOL_ISA=baseline forces the baseline).
SRC = os.path.join("cpool", "_src")
AVX2_FLAGS = ["-mavx2", "-mfma"]


def _variant_source(name):
    path = os.path.join("build", "variants", name + ".pyx")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = f'# Generated by setup.py: cpool/_src/kernels.pyx compiled as cpool.{name}.\ninclude "kernels.pyx"\n'
    try:
        with open(path) as f:
            unchanged = f.read() == text
    except OSError:
        unchanged = False
    if not unchanged:  # rewritten only when it changes, so cythonize's timestamps stay meaningful
        with open(path, "w") as f:
            f.write(text)
    return path


# include_dirs: the kernel headers, and numpy's C headers.
# depends: a change to a header or an included .pxi alone rebuilds the extensions.
_EXT = dict(
    include_dirs=[SRC, numpy.get_include()],
    depends=sorted(glob.glob(os.path.join(SRC, "*.h")) + glob.glob(os.path.join(SRC, "*.pxi"))
                   + [os.path.join(SRC, "kernels.pyx")]),
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
)
extensions = [Extension("cpool._kernels", [os.path.join(SRC, "kernels.pyx")], **_EXT)]

if _target_is_x86_64() and not _truthy("CPOOL_NO_ISA_VARIANTS"):
    extensions.append(Extension("cpool._kernels_avx2", [_variant_source("_kernels_avx2")],
                                extra_compile_args=list(AVX2_FLAGS), **_EXT))

setup(
    # build_dir: the generated C files go under build/, not next to the .pyx.
    ext_modules=cythonize(extensions, compiler_directives=CYTHON_DIRECTIVES, build_dir="build",
                          include_path=[SRC]),
    cmdclass={"build_ext": BuildExt},
)
