"""Thread control, and cpool from many Python threads at once.

``set_num_threads`` / ``get_num_threads`` and the defaults they fall back
to (OMP_NUM_THREADS, threadpoolctl limits); results are exact at every
thread count. The compiled kernels run without the GIL: results stay exact
when 8 Python threads call cpool at the same time (on the same and on
different inputs, small ones on the serial path and large ones on the
OpenMP path), ``set_num_threads`` may be called while other threads
compute, and the GIL really is released during a kernel call (another
Python thread makes progress).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import random
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from helpers import COMPILED_API, run_python, same_bits

import cpool

# Every test here needs the compiled backend (and fails without it, unless --no-extension).
pytestmark = pytest.mark.usefixtures("compiled")
needs_compiled_backend = pytest.mark.skipif(cpool.backend != "cython",
                                            reason="threads only apply to the compiled backend")

N_THREADS = 8


def _problems():
    """(x, args) pairs: small (serial path) and large (OpenMP path), several dtypes."""
    rng = np.random.default_rng(42)
    out = []
    for shape, args, dtype in [
        ((2, 3, 9, 11), (3, 2, 1), np.float32),
        ((1, 1, 28, 28), (2, 2, 0), np.float64),
        ((4, 16, 64, 64), (2, 2, 0), np.float32),   # 2x2 fast path, threaded
        ((2, 8, 96, 80), (3, 2, 1), np.float64),    # general path, threaded
        ((3, 8, 70, 70), (3, 1, 1), np.float32),    # overlapping windows
        ((2, 4, 33, 35), (2, 2, 0), np.float16),
        ((2, 4, 40, 40), (3, 2, 1), np.int16),      # the NumPy code, called by the compiled backend
    ]:
        if np.dtype(dtype).kind == "f":
            x = rng.standard_normal(shape).astype(dtype)
            x[rng.random(shape) < 0.01] = np.nan
        else:
            x = rng.integers(-50, 50, size=shape).astype(dtype)
        x.flags.writeable = False  # shared between threads: nobody may write
        out.append((x, args))
    return out


PROBLEMS = _problems()


def _reference(x, args):
    out, idx = cpool.slow.max_pool2d(x, *args, return_indices=True)
    gdt = x.dtype if x.dtype.kind == "f" else np.float32
    g = np.random.default_rng(int(idx.sum()) % 1000).standard_normal(out.shape).astype(gdt)
    return out, idx, g, cpool.slow.max_pool2d_backward(g, idx, x.shape)


REFS = [_reference(x, a) for x, a in PROBLEMS]


def _check(i, impl):
    x, args = PROBLEMS[i]
    ref_out, ref_idx, g, ref_gi = REFS[i]
    out, idx = impl.max_pool2d(x, *args, return_indices=True)
    assert same_bits(out, ref_out), f"forward values of problem {i}"
    assert same_bits(idx, ref_idx), f"indices of problem {i}"
    assert same_bits(impl.max_pool2d(x, *args), ref_out), f"values-only forward of problem {i}"
    assert same_bits(impl.max_pool2d_backward(g, idx, x.shape), ref_gi), f"backward of problem {i}"
    return i


@pytest.fixture
def restore_threads():
    yield
    cpool.set_num_threads(None)


def test_executor_same_and_different_inputs(restore_threads):
    jobs = [i for i in range(len(PROBLEMS)) for _ in range(6)]
    random.Random(0).shuffle(jobs)
    with cf.ThreadPoolExecutor(max_workers=N_THREADS) as ex:
        # different inputs at once
        assert sorted(ex.map(lambda i: _check(i, COMPILED_API), jobs)) == sorted(jobs)
        # the same (large, threaded) input from every thread at once
        big = 3
        assert list(ex.map(lambda i: _check(i, COMPILED_API), [big] * (3 * N_THREADS))) == [big] * (3 * N_THREADS)
        # public API and Module too
        assert sorted(ex.map(lambda i: _check(i, cpool), jobs)) == sorted(jobs)


def test_threads_started_together(restore_threads):
    """8 raw threads released by one barrier, each looping over every problem."""
    barrier = threading.Barrier(N_THREADS)
    errors = []

    def worker(seed):
        try:
            order = list(range(len(PROBLEMS))) * 3
            random.Random(seed).shuffle(order)
            barrier.wait()
            for i in order:
                _check(i, COMPILED_API)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert not errors, errors


def test_modules_in_threads(restore_threads):
    def run(i):
        x, (k, s, p) = PROBLEMS[i]
        layer = cpool.MaxPool2d(k, s, p)
        out = layer.forward(x)
        assert same_bits(out, REFS[i][0])
        if x.dtype.kind == "f":
            g = np.ones_like(out)
            gi = layer.backward(x, g)
            assert same_bits(gi, cpool.slow.max_pool2d_backward(g, REFS[i][1], x.shape))
        return i

    with cf.ThreadPoolExecutor(max_workers=N_THREADS) as ex:
        jobs = list(range(len(PROBLEMS))) * 4
        assert sorted(ex.map(run, jobs)) == sorted(jobs)


def test_set_num_threads_while_others_compute(restore_threads):
    stop = threading.Event()
    errors = []
    changes = [0]

    def changer():
        rnd = random.Random(1)
        while not stop.is_set():
            cpool.set_num_threads(rnd.choice([1, 2, 3, 4, 8, None]))
            cpool.get_num_threads()
            changes[0] += 1
            time.sleep(0.0005)

    def worker(seed):
        try:
            rnd = random.Random(seed)
            for _ in range(12):
                _check(rnd.randrange(len(PROBLEMS)), COMPILED_API)
        except BaseException as exc:
            errors.append(exc)

    ch = threading.Thread(target=changer)
    ch.start()
    workers = [threading.Thread(target=worker, args=(s,)) for s in range(N_THREADS - 1)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=300)
    stop.set()
    ch.join(timeout=30)
    assert not errors, errors
    assert changes[0] > 10
    cpool.set_num_threads(None)
    _check(3, COMPILED_API)


def test_threadpoolctl_limit_one(restore_threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1):
        assert cpool.get_num_threads() == 1
        for i in range(len(PROBLEMS)):
            _check(i, COMPILED_API)
            _check(i, cpool)
        # and from several Python threads at once inside the limit
        with cf.ThreadPoolExecutor(max_workers=4) as ex:
            jobs = list(range(len(PROBLEMS))) * 2
            assert sorted(ex.map(lambda i: _check(i, COMPILED_API), jobs)) == sorted(jobs)
        assert cpool.get_num_threads() == 1
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert cpool.get_num_threads() == 1


def test_explicit_setting_wins_over_the_openmp_default(restore_threads):
    # Other libraries linked to the same libgomp (torch.set_num_threads,
    # threadpoolctl) change omp_get_max_threads(); that moves the default
    # only, never an explicit setting.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not cpool.config()["openmp"]:
        pytest.skip("built without OpenMP")
    cpool.set_num_threads(3)
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert cpool.get_num_threads() == 3
        cpool.set_num_threads(None)
        assert cpool.get_num_threads() == 1
    cpool.set_num_threads(3)
    assert cpool.get_num_threads() == 3


def test_set_num_threads_overrides_and_is_exact(restore_threads):
    for n in (1, 2, 5, 16):
        cpool.set_num_threads(n)
        for i in range(len(PROBLEMS)):
            _check(i, COMPILED_API)


# -------------------------------------------------------- thread control
@needs_compiled_backend
def test_set_get_num_threads(restore_threads):
    default = cpool.get_num_threads()
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
    cpool.set_num_threads(None)
    assert cpool.get_num_threads() == default
    for bad, exc in [(0, ValueError), (-2, ValueError), (1.5, TypeError), ("2", TypeError), (True, TypeError)]:
        with pytest.raises(exc, match="set_num_threads"):
            cpool.set_num_threads(bad)


@needs_compiled_backend
def test_omp_num_threads_is_honoured():
    if not cpool.config()["openmp"]:
        pytest.skip("built without OpenMP")
    assert run_python("import cpool; print(cpool.get_num_threads())", OMP_NUM_THREADS="1").stdout.strip() == "1"


@needs_compiled_backend
def test_threadpoolctl_limits_are_honoured(restore_threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not cpool.config()["openmp"] or os.cpu_count() < 2:
        pytest.skip("needs OpenMP and 2 CPUs")
    before = cpool.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert cpool.get_num_threads() == 1
        x = np.random.default_rng(1).standard_normal((4, 8, 32, 32))
        assert np.array_equal(cpool.max_pool2d(x, 2), cpool.slow.max_pool2d(x, 2))
    assert cpool.get_num_threads() == before


# ----------------------------------------------------------- GIL release
def _progress_during(call, counter_rate_window=0.05):
    """How far another Python thread's counter advances while ``call()`` runs.

    Returns ``(increments during the call, call seconds, increments per
    second when the counter has the interpreter to itself)``.
    """
    count = [0]
    stop = threading.Event()
    running = threading.Event()

    def counter():
        running.set()
        c = 0
        while not stop.is_set():
            c += 1
            count[0] = c

    t = threading.Thread(target=counter, daemon=True)
    t.start()
    running.wait()
    # the counter's rate while this thread just sleeps (sleep releases the GIL)
    a = count[0]
    time.sleep(counter_rate_window)
    rate = (count[0] - a) / counter_rate_window
    c0 = count[0]
    t0 = time.perf_counter()
    call()
    t1 = time.perf_counter()
    c1 = count[0]
    stop.set()
    t.join()
    return c1 - c0, t1 - t0, rate


def test_gil_is_released_during_kernel_calls(restore_threads):
    """Another Python thread keeps running while a long kernel call runs.

    With the GIL held, the counter thread can only run in the switch
    intervals just before and after the call (about 2 x switchinterval =
    1 ms); with the GIL released it runs for the whole call. Each call is a
    single long kernel call (0.1-0.4 s), so the two cases are far apart
    (measured: ratio < 0.03 held, > 0.5 released). One OpenMP thread, so the
    serial code path (the one most likely to keep the GIL) is what runs and a
    second core is free for the counter.
    """
    cpool.set_num_threads(1)
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        # Big enough that even the separable 7x7 kernel (input rows folded
        # once) takes well over 0.05 s on a fast machine.
        x = np.random.default_rng(0).standard_normal((16, 16, 512, 512)).astype(np.float32)
        # Backward of 128 planes of 512x512 whose every gradient element goes
        # to the plane's first cell: 33M adds, each waiting for the one
        # before, a long call whatever its output's pages cost (a bare
        # zero-fill of a large fresh output can end in under 0.05 s).
        P = 128
        go = np.ones((P, 512, 512), np.float32)
        idx = np.zeros((P, 512, 512), np.int64)
        calls = {
            "forward 7x7": lambda: COMPILED_API.max_pool2d(x, 7, 1, 3),
            "forward 5x5 with indices": lambda: COMPILED_API.max_pool2d(x, 5, 1, 2, return_indices=True),
            "backward": lambda: COMPILED_API.max_pool2d_backward(go, idx, (P, 512, 512)),
        }
        held, held_s, rate = _progress_during(lambda: sum(range(10**7)))
        failures = []
        for name, call in calls.items():
            call()  # warm-up: page faults of fresh outputs
            best = None
            for _ in range(3):  # noisy machines: the best of three
                progress, seconds, rate = _progress_during(call)
                ratio = progress / max(1.0, rate * seconds)
                if best is None or ratio > best[0]:
                    best = (ratio, progress, seconds, rate)
                if ratio > 0.3:
                    break
            ratio, progress, seconds, rate = best
            assert seconds > 0.05, f"{name}: the call is too short ({seconds:.3f} s) to tell"
            if ratio <= 0.3:
                failures.append(
                    f"{name}: another Python thread advanced only {progress} steps during a {seconds:.3f} s "
                    f"call ({ratio:.3f} of the {rate * seconds:.0f} expected with the GIL released)"
                )
        assert not failures, (
            "the GIL seems held during kernel calls:\n" + "\n".join(failures)
            + f"\n(negative control, sum(range(10**7)) holding the GIL: ratio {held / max(1.0, rate * held_s):.3f})"
        )
    finally:
        sys.setswitchinterval(old)


# ------------------------------------------------------- a busy machine
@pytest.fixture
def busy_machine():
    """2 x the CPUs this process may use, kept busy by other processes for the test."""
    n = 2 * max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
    spin = "import time\nend = time.monotonic() + 120\nwhile time.monotonic() < end:\n    pass\n"
    procs = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(n)]
    try:
        time.sleep(0.2)
        yield n
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def _needs_openmp_team():
    if not cpool.config()["openmp"] or (os.cpu_count() or 1) < 2:
        pytest.skip("needs OpenMP and 2 CPUs")


# Every op family with a compiled parallel runner, forward and backward.
BUSY_OPS = ("max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward", "adaptive_avg_pool2d",
            "adaptive_avg_pool2d_backward", "adaptive_max_pool2d", "adaptive_max_pool2d_backward", "max_unpool2d",
            "max_unpool2d_backward", "max_pool3d", "max_pool3d_backward", "avg_pool3d", "avg_pool3d_backward",
            "adaptive_avg_pool3d", "adaptive_avg_pool3d_backward", "adaptive_max_pool3d")


def _busy_cases():
    """Op name -> ``run(ops)``: one call of that op through ``ops`` (cpool or
    cpool.slow), on inputs big enough that threads_for() gives it 2 threads
    (2 * MIN_ELEMENTS_PER_THREAD elements or more in what it sizes its team
    by). One per compiled parallel runner and direction."""
    rng = np.random.default_rng(3)
    f32 = np.float32
    x2 = rng.standard_normal((64, 32, 28, 28)).astype(f32)
    x2_nhwc = rng.standard_normal((64, 28, 28, 32)).astype(f32).transpose(0, 3, 1, 2)  # channels-last memory
    x3 = rng.standard_normal((8, 16, 16, 32, 32)).astype(f32)
    x_up = rng.standard_normal((64, 32, 56, 56)).astype(f32)  # the unpooling backward sizes by its 28x28 indices

    def grads(shape):
        return rng.standard_normal(shape).astype(f32)

    _, i2 = cpool.slow.max_pool2d(x2, 2, return_indices=True)
    v_nhwc, i_nhwc = cpool.slow.max_pool2d(x2_nhwc, 2, return_indices=True)
    _, i_up = cpool.slow.max_pool2d(x_up, 2, return_indices=True)
    _, i3 = cpool.slow.max_pool3d(x3, 2, return_indices=True)
    _, ia2 = cpool.slow.adaptive_max_pool2d(x2, (5, 7), return_indices=True)
    _, ia3 = cpool.slow.adaptive_max_pool3d(x3, (3, 5, 7), return_indices=True)
    g2, g2_avg, ga2 = grads(i2.shape), grads((64, 32, 14, 14)), grads((64, 32, 5, 7))
    g_up, g3, g3_avg, ga3 = grads(x_up.shape), grads(i3.shape), grads((8, 16, 8, 16, 16)), grads((8, 16, 3, 5, 7))
    return {
        "max_pool2d": lambda ops: ops.max_pool2d(x2, 2, return_indices=True),
        "max_pool2d_backward": lambda ops: ops.max_pool2d_backward(g2, i2, x2.shape),
        "avg_pool2d": lambda ops: ops.avg_pool2d(x2, 3, 2, 1),
        "avg_pool2d_backward": lambda ops: ops.avg_pool2d_backward(g2_avg, x2.shape, 3, 2, 1),
        "adaptive_avg_pool2d": lambda ops: ops.adaptive_avg_pool2d(x2, (5, 7)),
        "adaptive_avg_pool2d_backward": lambda ops: ops.adaptive_avg_pool2d_backward(ga2, x2.shape),
        "adaptive_max_pool2d": lambda ops: ops.adaptive_max_pool2d(x2, (5, 7), return_indices=True),
        "adaptive_max_pool2d_backward": lambda ops: ops.adaptive_max_pool2d_backward(ga2, ia2, x2.shape),
        "max_unpool2d": lambda ops: ops.max_unpool2d(v_nhwc, i_nhwc, 2),
        "max_unpool2d_backward": lambda ops: ops.max_unpool2d_backward(g_up, i_up),
        "max_pool3d": lambda ops: ops.max_pool3d(x3, 2, return_indices=True),
        "max_pool3d_backward": lambda ops: ops.max_pool3d_backward(g3, i3, x3.shape),
        "avg_pool3d": lambda ops: ops.avg_pool3d(x3, 3, 2, 1),
        "avg_pool3d_backward": lambda ops: ops.avg_pool3d_backward(g3_avg, x3.shape, 3, 2, 1),
        "adaptive_avg_pool3d": lambda ops: ops.adaptive_avg_pool3d(x3, (3, 5, 7)),
        "adaptive_avg_pool3d_backward": lambda ops: ops.adaptive_avg_pool3d_backward(ga3, x3.shape),
        "adaptive_max_pool3d": lambda ops: ops.adaptive_max_pool3d(x3, (3, 5, 7), return_indices=True),
    }


_BUSY_CASES: dict = {}


@pytest.fixture(params=BUSY_OPS)
def busy_case(request):
    """(name, run, expected): one op's call (see _busy_cases) and
    cpool.slow's answer, computed before busy_machine starts (list it first)."""
    if not _BUSY_CASES:
        _BUSY_CASES.update(_busy_cases())
    run = _BUSY_CASES[request.param]
    return request.param, run, run(cpool.slow)


def _assert_same_answer(got, expected, name):
    got, expected = (got, expected) if isinstance(expected, tuple) else ((got,), (expected,))
    assert len(got) == len(expected) and all(same_bits(a, b) for a, b in zip(got, expected)), name


@needs_compiled_backend
def test_a_busy_machine_sends_default_calls_to_one_thread(restore_threads, busy_case, busy_machine):
    # With the default thread count, a call whose team members are not all
    # running is noticed, and calls then run on one thread for a while: an
    # OpenMP team waits for its slowest member, so on a busy machine two
    # threads were many times slower than one. Every compiled parallel
    # runner takes part; the answers stay exact.
    _needs_openmp_team()
    threadpoolctl = pytest.importorskip("threadpoolctl")
    name, run, expected = busy_case
    compiled = cpool._backend.compiled()
    cpool.set_num_threads(None)
    # The default follows OpenMP's, which other libraries in this process
    # (torch.set_num_threads in the parity tests) may have set to 1.
    with threadpoolctl.threadpool_limits(limits=2, user_api="openmp"):
        assert cpool.get_num_threads() == 2
        compiled.busy_backoff(reset=True)
        noticed = False
        deadline = time.monotonic() + 30
        while not noticed and time.monotonic() < deadline:
            _assert_same_answer(run(cpool), expected, name)
            noticed = compiled.busy_backoff()[1] > 0
    assert noticed, f"{name}: with {busy_machine} busy processes the kernels never noticed a team member not running"
    left, period = compiled.busy_backoff()
    assert 0 < period <= 1.0 and left <= period


@needs_compiled_backend
def test_an_explicit_thread_count_is_used_as_given_on_a_busy_machine(restore_threads, busy_case, busy_machine):
    # set_num_threads(n) means n: those calls neither shrink their team nor
    # start a one-thread period for the default ones.
    _needs_openmp_team()
    name, run, expected = busy_case
    compiled = cpool._backend.compiled()
    compiled.busy_backoff(reset=True)
    cpool.set_num_threads(2)
    for _ in range(10):
        _assert_same_answer(run(cpool), expected, name)
    assert compiled.busy_backoff() == (0.0, 0.0), name
