"""cpool's thread controls with a second OpenMP runtime in the process.

A wheel repaired by auditwheel (or delocate) carries its own renamed copy of
the OpenMP runtime (``cpool_numpy.libs/libgomp-<hash>.so.1.0.0``), and
torch's wheel carries another (``torch/lib/libgomp.so.1``), so a process
that imports both has two runtimes, each with its own thread settings;
with a source build the two may also be one shared libgomp. Whichever it
is, and whichever of cpool and torch is imported first, cpool must still
obey ``cpool.set_num_threads``, ``OMP_NUM_THREADS`` and
``threadpoolctl.threadpool_limits``.

Each case runs in a fresh interpreter: import order, environment variables
and an OpenMP runtime's first initialisation only take effect once per
process. The child reports ``cpool.get_num_threads()`` (the team size the
kernels are given) and, on Linux, how many threads the process has after a
kernel call large enough for a team: a team of n leaves n - 1 pool threads
alive, and a call on one thread starts none.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from helpers import child_process_kwargs

import cpool

pytestmark = pytest.mark.usefixtures("compiled")

HAVE_TORCH = importlib.util.find_spec("torch") is not None
ORDERS = [
    "no torch",
    pytest.param("torch first", marks=pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")),
    pytest.param("torch last", marks=pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")),
]

# The child: imports in the given order, then runs one case and prints a
# JSON report. The input is large enough that cpool gives it up to 4
# threads (cpool._threads.MIN_ELEMENTS_PER_THREAD elements per thread).
CHILD = r"""
import json, os, sys
ORDER, CASE = {order!r}, {case!r}
if ORDER == "torch first":
    import torch
import numpy as np
import threadpoolctl
import cpool
if ORDER == "torch last":
    import torch

x = np.random.default_rng(0).standard_normal((8, 16, 128, 128)).astype(np.float32)
expected = cpool.slow.max_pool2d(x, 2, return_indices=True)


def os_threads():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def pool():
    # One kernel call; returns the process's thread count after it.
    out, idx = cpool.max_pool2d(x, 2, return_indices=True)
    assert np.array_equal(out, expected[0]) and np.array_equal(idx, expected[1])
    return os_threads()


report = {{"openmp_libs": sorted(os.path.basename(i["filepath"]) for i in threadpoolctl.threadpool_info()
                                if i["user_api"] == "openmp"),
          "before": os_threads()}}
if CASE == "set_num_threads":
    cpool.set_num_threads(3)
    if ORDER != "no torch":
        torch.set_num_threads(1)  # changes its runtime's default, not cpool's explicit setting
    report["n"] = cpool.get_num_threads()
    report["after"] = pool()
elif CASE == "OMP_NUM_THREADS":
    report["n"] = cpool.get_num_threads()
    report["after"] = pool()
    cpool.set_num_threads(3)  # an explicit setting still beats the environment's
    report["n_explicit"] = cpool.get_num_threads()
    report["after_explicit"] = pool()
elif CASE == "threadpool_limits":
    report["n_default"] = cpool.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=1):
        report["n"] = cpool.get_num_threads()
        report["after"] = pool()
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        report["n_openmp_api"] = cpool.get_num_threads()
        pool()
    report["n_restored"] = cpool.get_num_threads()
print("REPORT " + json.dumps(report))
"""


def _run(order, case, omp_num_threads=None):
    """The child's report; OMP_NUM_THREADS is set to ``omp_num_threads``, or unset."""
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    env.pop("CPOOL_BACKEND", None)
    env.pop("CPOOL_ISA", None)
    if omp_num_threads is not None:
        env["OMP_NUM_THREADS"] = omp_num_threads
    res = subprocess.run([sys.executable, "-c", CHILD.format(order=order, case=case)], capture_output=True,
                         text=True, **child_process_kwargs(env))
    assert res.returncode == 0, res.stdout + res.stderr
    lines = [line for line in res.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, res.stdout + res.stderr
    return json.loads(lines[-1][len("REPORT "):])


def _needs_openmp():
    if not cpool.config()["openmp"]:
        pytest.skip("built without OpenMP")


@pytest.mark.parametrize("order", ORDERS)
def test_set_num_threads_is_obeyed(order):
    _needs_openmp()
    r = _run(order, "set_num_threads", omp_num_threads="1")
    assert r["n"] == 3, r
    if r["before"] is not None:
        # A team of 3: at least 2 pool threads exist after the call (another
        # runtime's pool threads, if any, only add to the count).
        assert r["after"] >= r["before"] + 2, r


@pytest.mark.parametrize("order", ORDERS)
def test_omp_num_threads_is_obeyed(order):
    _needs_openmp()
    r = _run(order, "OMP_NUM_THREADS", omp_num_threads="1")
    assert r["n"] == 1, r
    assert r["n_explicit"] == 3, r
    if r["before"] is not None:
        assert r["after"] == r["before"], r  # one thread: no team was started
        assert r["after_explicit"] >= r["before"] + 2, r


@pytest.mark.parametrize("order", ORDERS)
def test_threadpool_limits_are_obeyed(order):
    _needs_openmp()
    pytest.importorskip("threadpoolctl")
    r = _run(order, "threadpool_limits")
    # threadpoolctl finds cpool's runtime however it is named (libgomp-<hash>
    # in a repaired wheel), and limits it.
    assert r["openmp_libs"], r
    assert r["n"] == 1 and r["n_openmp_api"] == 1, r
    assert r["n_restored"] == r["n_default"], r
    if r["before"] is not None:
        assert r["after"] == r["before"], r
