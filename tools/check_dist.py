"""Build the wheel and the sdist into dist/ and check what each ships.

The wheel holds the compiled modules and no sources, plus the PEP 561
marker ``cpool/py.typed`` and the extension's stub ``cpool/_kernels.pyi``;
the sdist holds every kernel source (the .pyx, .pxi and .h files under
cpool/_src), those two files, and no build outputs. Then the wheel is
installed in a fresh virtual environment and imported from outside the
source tree, where it must run the compiled backend.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import venv
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    dist = os.path.join(REPO, "dist")
    shutil.rmtree(dist, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "build", "--outdir", dist, REPO], check=True)
    (wheel,) = glob.glob(os.path.join(dist, "*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("cpool/_kernels") and n.endswith((".so", ".pyd")) for n in names), names
    assert not any(n.endswith((".pyx", ".pxi", ".c", ".h")) for n in names), names
    typing_files = ("cpool/py.typed", "cpool/_kernels.pyi")  # type hints for the package's users
    for typing_file in typing_files:
        assert typing_file in names, (typing_file, names)
    (sdist,) = glob.glob(os.path.join(dist, "*.tar.gz"))
    snames = tarfile.open(sdist).getnames()
    sources = sorted(os.path.relpath(p, REPO) for ext in ("pyx", "pxi", "h")
                     for p in glob.glob(os.path.join(REPO, "cpool", "_src", f"*.{ext}")))
    for src in sources + list(typing_files):
        assert any(n.endswith(src) for n in snames), (src, snames)
    assert not any(n.endswith((".so", ".pyd", ".o")) or n.endswith("kernels.c") for n in snames), snames
    print("wheel:", os.path.basename(wheel), "| sdist:", os.path.basename(sdist), "with", len(sources), "sources")

    with tempfile.TemporaryDirectory() as tmp:
        env_dir = os.path.join(tmp, "venv")
        venv.create(env_dir, with_pip=True)
        python = os.path.join(env_dir, "bin", "python")
        subprocess.run([python, "-m", "pip", "install", "-q", wheel], check=True)
        code = "import cpool; assert cpool.backend == 'cython', cpool.backend; cpool.show_config()"
        subprocess.run([python, "-c", code], check=True, cwd=tmp)


if __name__ == "__main__":
    main()
