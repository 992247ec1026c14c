"""Backend selection, configuration and thread control (subprocesses where
the choice is made at import)."""

import os
import subprocess
import sys

import numpy as np
import pytest

import cpool
from reference import child_process_kwargs


def run_python(code, **env):
    full_env = dict(os.environ)
    full_env.pop("CPOOL_BACKEND", None)
    full_env.update(env)
    # Run from a neutral directory so the import resolves as a user's would.
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         **child_process_kwargs(full_env))
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


@pytest.mark.skipif(os.environ.get("CPOOL_EXPECT_EXTENSION", "1") == "0", reason="extension deliberately absent")
def test_default_import_uses_compiled_backend():
    out = run_python("import cpool, cpool.functional as f; print(cpool.backend, f._impl.__name__, "
                     "cpool.max_pool2d.__module__)")
    assert out == "cython cpool._fast cpool.functional"


def test_env_forces_numpy_backend():
    out = run_python("import cpool, cpool.functional as f; print(cpool.backend, f._impl.__name__, "
                     "cpool.get_num_threads())", CPOOL_BACKEND="numpy")
    assert out == "numpy cpool.slow 1"


def test_bad_backend_env_is_a_clear_error():
    code = "import cpool"
    env = dict(os.environ, CPOOL_BACKEND="fortran")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode != 0 and "CPOOL_BACKEND" in res.stderr and "fortran" in res.stderr


def test_show_config(capsys):
    cpool.show_config()
    text = capsys.readouterr().out
    for word in ("cpool", cpool.__version__, "backend", cpool.backend, "openmp", "num_threads", np.__version__):
        assert word in text
    info = cpool.config()
    assert info["backend"] == cpool.backend and info["num_threads"] == cpool.get_num_threads()


def test_set_get_num_threads():
    if cpool.backend != "cython":
        pytest.skip("threads only apply to the compiled backend")
    default = cpool.get_num_threads()
    try:
        cpool.set_num_threads(1)
        assert cpool.get_num_threads() == 1
        if cpool.config()["openmp"]:
            cpool.set_num_threads(3)
            assert cpool.get_num_threads() == 3
        x = np.random.default_rng(0).standard_normal((8, 16, 128, 128)).astype(np.float32)  # big enough for threads
        expected = cpool.slow.max_pool2d(x, 3, 2, 1, return_indices=True)
        for n in (1, 2, 3, 7):
            cpool.set_num_threads(n)
            out, idx = cpool.max_pool2d(x, 3, 2, 1, return_indices=True)
            assert np.array_equal(out, expected[0]) and np.array_equal(idx, expected[1])
    finally:
        cpool.set_num_threads(None)
    assert cpool.get_num_threads() == default
    for bad, exc in [(0, ValueError), (-2, ValueError), (1.5, TypeError), ("2", TypeError), (True, TypeError)]:
        with pytest.raises(exc, match="set_num_threads"):
            cpool.set_num_threads(bad)


@pytest.mark.skipif(cpool.backend != "cython", reason="threads only apply to the compiled backend")
def test_omp_num_threads_is_honoured():
    if not cpool.config()["openmp"]:
        pytest.skip("built without OpenMP")
    assert run_python("import cpool; print(cpool.get_num_threads())", OMP_NUM_THREADS="1") == "1"


@pytest.mark.skipif(cpool.backend != "cython", reason="threads only apply to the compiled backend")
def test_threadpoolctl_limits_are_honoured():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not cpool.config()["openmp"] or os.cpu_count() < 2:
        pytest.skip("needs OpenMP and 2 CPUs")
    before = cpool.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert cpool.get_num_threads() == 1
        x = np.random.default_rng(1).standard_normal((4, 8, 32, 32))
        assert np.array_equal(cpool.max_pool2d(x, 2), cpool.slow.max_pool2d(x, 2))
    assert cpool.get_num_threads() == before
