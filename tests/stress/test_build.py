"""Fault injection on the build (marked ``build``: run with --run-build; minutes each).

Each test copies the repository (tracked and untracked, non-ignored files)
to a temporary directory, creates a fresh virtual environment and runs
``pip install`` there, so the checkout and its in-place build are left
alone. pip needs its package index (or the ``find-links`` it is configured
with) for the build requirements.

* ``CPOOL_DISABLE_OPENMP=1 pip install .`` gives a working serial build:
  ``cpool.config()['openmp'] is False``, one thread, results equal to the
  NumPy reference.
* With no working C compiler (``CC=false``, or a compiler that does not
  exist), ``pip install .`` fails with the compiler error and installs
  nothing: there is no silent pure-NumPy install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from helpers import REPO

pytestmark = [pytest.mark.slow, pytest.mark.build]


def _copy_repo(dest):
    """The files git would ship: tracked plus untracked-but-not-ignored."""
    try:
        names = subprocess.run(
            ["git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            check=True, capture_output=True,
        ).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        names = None
    os.makedirs(dest)
    if names is None:
        shutil.copytree(REPO, dest, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("build", "*.so", "_kernels.c", ".git", ".venv*"))
        return dest
    for name in filter(None, names):
        src = os.path.join(REPO, name)
        if not os.path.isfile(src):
            continue  # deleted in the working tree
        target = os.path.join(dest, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(src, target)
    return dest


@pytest.fixture
def venv_and_repo(tmp_path):
    repo = _copy_repo(str(tmp_path / "repo"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    return str(venv / "bin" / "python"), repo


def _pip_install(python, repo, **env):
    full_env = dict(os.environ)
    for var in ("PYTHONPATH", "CPOOL_BACKEND", "CPOOL_CFLAGS", "CPOOL_DISABLE_OPENMP", "CPOOL_REQUIRE_OPENMP",
                "CC", "LD_PRELOAD"):
        full_env.pop(var, None)
    full_env.update(env)
    return subprocess.run([python, "-m", "pip", "install", "--no-cache-dir", repo],
                          capture_output=True, text=True, env=full_env, cwd="/", timeout=1200)


def _run(python, code):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CPOOL_BACKEND")}
    return subprocess.run([python, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, cwd="/")


def test_serial_build_without_openmp(venv_and_repo):
    python, repo = venv_and_repo
    res = _pip_install(python, repo, CPOOL_DISABLE_OPENMP="1")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    check = _run(python, """
        import numpy as np, cpool
        info = cpool.config()
        assert info["backend"] == "cython", info
        assert info["openmp"] is False, info
        assert info["num_threads"] == 1, info
        cpool.set_num_threads(4)
        assert cpool.get_num_threads() == 1   # no OpenMP: always one thread
        rng = np.random.default_rng(0)
        for dt in (np.float32, np.float64):
            x = rng.standard_normal((4, 8, 67, 65)).astype(dt)
            x[rng.random(x.shape) < 0.01] = np.nan
            for args in [(2,), (3, 2, 1), (3, 1, 1, 2, True)]:
                o1, i1 = cpool.max_pool2d(x, *args, return_indices=True)
                o2, i2 = cpool.slow.max_pool2d(x, *args, return_indices=True)
                assert o1.tobytes() == o2.tobytes() and np.array_equal(i1, i2), args
                g = rng.standard_normal(o1.shape).astype(dt)
                assert cpool.max_pool2d_backward(g, i1, x.shape).tobytes() == \\
                    cpool.slow.max_pool2d_backward(g, i1, x.shape).tobytes()
        print("serial build OK", info)
    """)
    assert check.returncode == 0, check.stderr
    assert "serial build OK" in check.stdout


@pytest.mark.parametrize("cc", ["false", "/nonexistent/cc"])
def test_no_working_compiler_fails_loudly(venv_and_repo, cc):
    python, repo = venv_and_repo
    res = _pip_install(python, repo, CC=cc)
    text = res.stdout + res.stderr
    # pip fails; the log names the compiler command that failed.
    assert res.returncode != 0, text[-3000:]
    assert "cpool" in text
    # setuptools reports "error: Command '['false', ...]' returned non-zero
    # exit status 1" or "error: [Errno 2] No such file or directory: '<cc>'".
    assert "Failed building wheel for cpool" in text or "Failed to build cpool" in text, text[-3000:]
    assert (f"Command '['{cc}'" in text and "returned non-zero exit status" in text) or \
        f"No such file or directory: '{cc}'" in text, text[-3000:]
    # and nothing was installed: no silent NumPy-only cpool
    check = _run(python, "import cpool")
    assert check.returncode != 0 and "No module named 'cpool'" in check.stderr, check.stdout + check.stderr
    # Record the tail of pip's output for the README (shown with -rA / -s).
    print(f"\n--- CC={cc} pip install . (exit {res.returncode}), last lines ---")
    print("\n".join(text.strip().splitlines()[-25:]))


def test_compiler_without_openmp(venv_and_repo):
    # CPOOL_REQUIRE_OPENMP=1 with a compiler that cannot do OpenMP must fail
    # the build with cpool's own message. Simulated with a wrapper compiler
    # that rejects -fopenmp.
    python, repo = venv_and_repo
    wrapper = os.path.join(os.path.dirname(python), "cc-no-openmp")
    real = shutil.which("gcc") or shutil.which("cc")
    if real is None:
        pytest.skip("no C compiler")
    with open(wrapper, "w") as f:
        f.write(textwrap.dedent(f"""\
            #!/bin/sh
            for a in "$@"; do
                [ "$a" = "-fopenmp" ] && {{ echo "cc-no-openmp: -fopenmp not supported" >&2; exit 1; }}
            done
            exec {real} "$@"
        """))
    os.chmod(wrapper, 0o755)
    res = _pip_install(python, repo, CC=wrapper, CPOOL_REQUIRE_OPENMP="1")
    text = res.stdout + res.stderr
    assert res.returncode != 0, text[-3000:]
    assert "CPOOL_REQUIRE_OPENMP is set" in text, text[-3000:]
    # Without CPOOL_REQUIRE_OPENMP the same compiler gives a serial build.
    res = _pip_install(python, repo, CC=wrapper)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    check = _run(python, "import cpool; i = cpool.config(); assert i['backend'] == 'cython' and not i['openmp'], i")
    assert check.returncode == 0, check.stderr
