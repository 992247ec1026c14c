"""Ctrl-C (SIGINT) during a long kernel call.

The kernels run without the GIL and do not poll for signals, so a SIGINT
that arrives mid-call is noted by Python's signal handler and raised as
KeyboardInterrupt as soon as the call returns: never a crash, never a
half-written result handed back, and cpool keeps working afterwards.

Each test starts a child Python that loops over a long call, sends it
SIGINT while a call is running, and checks how the child ends.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest
from helpers import child_process_kwargs

import cpool

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
    pytest.mark.skipif(cpool.backend != "cython", reason="the compiled kernels are what is tested"),
]

CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import cpool
    from cpool import _backend
    from cpool.functional import bind

    max_pool2d, max_pool2d_backward = bind(_backend.load("cython"))
    mode, threads, catch = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "catch"
    cpool.set_num_threads(threads)
    x = np.random.default_rng(0).standard_normal((8, 16, 512, 256)).astype(np.float32)
    if mode == "backward":
        out, idx = max_pool2d(x, 3, 1, 1, return_indices=True)
        g = np.ones_like(out)
        call = lambda: max_pool2d_backward(g, idx, x.shape)
    else:
        call = lambda: max_pool2d(x, 5, 1, 2, return_indices=True)
    t = time.perf_counter(); call(); one = time.perf_counter() - t
    print(f"ready {one:.3f}", flush=True)
    result = None
    try:
        while True:
            started = time.perf_counter()
            result = call()
    except KeyboardInterrupt:
        # Raised after the running call finished: it took about a whole call.
        if not catch:
            raise
        late = time.perf_counter() - started
        # cpool still works, and gives the right answer.
        small = x[:1, :2, :40, :40]
        a = cpool.max_pool2d(small, 3, 2, 1, return_indices=True)
        b = cpool.slow.max_pool2d(small, 3, 2, 1, return_indices=True)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        print(f"interrupted {late:.3f}", flush=True)
        sys.exit(0)
    """
)


def _run_and_interrupt(mode, threads, catch):
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(threads), "catch" if catch else "raise"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **child_process_kwargs(),
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("ready"), (line, proc.stderr.read() if proc.poll() is not None else "")
        one_call = float(line.split()[1])
        time.sleep(min(0.5, one_call / 3))  # well inside a call
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, line + out, err, one_call


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["forward", "backward"])
@pytest.mark.parametrize("threads", [1, 2])
def test_sigint_raises_keyboard_interrupt_after_the_call(mode, threads):
    rc, out, err, one_call = _run_and_interrupt(mode, threads, catch=False)
    # An unhandled KeyboardInterrupt: traceback, then Python exits by
    # re-raising SIGINT on itself (rc -2); a crash would be SIGSEGV/SIGABRT.
    assert "KeyboardInterrupt" in err, err
    assert rc in (-signal.SIGINT, 1, 130), (rc, err)
    for word in ("Segmentation fault", "Fatal Python error", "core dumped", "Aborted"):
        assert word not in err, err


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["forward", "backward"])
@pytest.mark.parametrize("threads", [1, 2])
def test_sigint_can_be_caught_and_cpool_keeps_working(mode, threads):
    rc, out, err, one_call = _run_and_interrupt(mode, threads, catch=True)
    assert rc == 0, (rc, out, err)
    assert "interrupted" in out, out
