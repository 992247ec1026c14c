"""Build script for cpool's compiled extension.

Everything about the build lives here: the Cython directives (one place for
the whole extension), the compiler flags, and the OpenMP probe.

Environment variables:

CPOOL_DISABLE_OPENMP=1   build the kernels serially, without probing OpenMP.
CPOOL_REQUIRE_OPENMP=1   fail the build if the compiler cannot do OpenMP
                         (by default the build warns and goes serial).
CPOOL_CFLAGS="..."       extra compiler flags, e.g. "-march=native" for a
                         build that will only ever run on this machine.
"""

import os
import shlex
import sys
import tempfile
import textwrap

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


def _openmp_flags(compiler):
    """Compile and link a small OpenMP program; return the flags that worked."""
    if compiler.compiler_type == "msvc":
        candidates = [(["/openmp"], [])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp_probe.c")
        with open(src, "w") as f:
            f.write(OPENMP_TEST)
        for cflags, ldflags in candidates:
            try:
                objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
                compiler.link_executable(objs, os.path.join(tmp, "omp_probe"), extra_postargs=ldflags)
            except Exception:  # any compile or link failure means "no OpenMP here"
                continue
            return cflags, ldflags
    return None


class BuildExt(build_ext):
    def build_extensions(self):
        cflags = ["-O3"] if self.compiler.compiler_type != "msvc" else ["/O2"]
        cflags += shlex.split(os.environ.get("CPOOL_CFLAGS", ""))
        ldflags = []
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
        for ext in self.extensions:
            ext.extra_compile_args = list(ext.extra_compile_args or []) + cflags
            ext.extra_link_args = list(ext.extra_link_args or []) + ldflags
        super().build_extensions()


extensions = [Extension("cpool._kernels", ["cpool/_kernels.pyx"])]

setup(
    ext_modules=cythonize(extensions, compiler_directives=CYTHON_DIRECTIVES),
    cmdclass={"build_ext": BuildExt},
)
