"""Benchmark cpool's max pooling and average pooling (and, asked for, max
unpooling and adaptive max pooling) against the loop from the original
question, the accepted NumPy answer (for average pooling: NumPy's
reshape-mean), cpool's own NumPy fallback, PyTorch (its NCHW kernel,
channels_last tensors and oneDNN) and (when installed) onnxruntime, numba and
JAX, on every shape in NCHW memory and in channels-last (NHWC) memory (the
-nhwc shapes).

    python -m pip install ".[bench]" && python bench/bench.py   # install, then a full run (minutes)
    python bench/bench.py --quick                               # smoke run, under a minute
    python bench/bench.py --ops avg --shapes resnet-stem        # average pooling only (--ops max: max pooling only)
    python bench/bench.py --ops unpool,adaptive                 # max unpooling and adaptive max pooling (--ops all)
    python bench/bench.py --ops pool3d --quick                  # 3-D max pooling on small 5-D shapes
    python bench/bench.py --ops pool1d                          # 1-D max pooling on the 1-D shapes (pool1d-*)

With no --ops a run times the max and average pooling ops; max unpooling (unpool, unpool_bwd), adaptive
max pooling (amax) and 1-D max pooling (pool1d, on its own shapes) are timed when asked for by name.

A full run ends with the contention section: cpool at its default thread
count against 1 thread while busy processes hold every CPU (--no-contention
leaves it out, --contention adds it to a --quick run).

It benchmarks the cpool that Python imports, and warns when that is older
than this checkout. Results go to bench/results/ (or --out DIR):
results.json, results.md and speedup.png.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cases as C
import methods as M
import numpy as np
import report as R

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


@dataclass
class Settings:
    shapes: list
    methods: tuple = M.METHOD_NAMES
    ops: tuple = C.DEFAULT_OPS
    threads: tuple = (1,)
    out: str = str(HERE / "results")
    quick: bool = False
    repeat: int = 20  # minimum samples per measurement, over all passes
    min_time: float = 0.5  # minimum seconds per measurement, over all passes
    max_time: float = 6.0  # seconds after which a measurement stops short of `repeat`
    passes: int = 2  # passes over the methods, every other one in reverse order, so drift hits all alike
    loop_cap: float = 0.5  # seconds one loop call may take: its batch is cut to fit
    loop_repeat: int = 3
    warmup: int = 3
    settle: float = 0.05  # pause before each timing, so other libraries' OpenMP threads stop spinning
    bandwidth_mb: float = 256
    seed: int = 0
    chart: bool = True
    progress: bool = True
    contention: bool = False  # the busy-machine section: default threads against 1 thread under load
    contention_loads: tuple = ()  # busy processes per load phase
    contention_seconds: float = 3.0  # per shape, op and load
    contention_cap: float = 300.0  # seconds the whole section may take: the phases that do not fit are skipped
    avg_reference: object = None  # Case.filled's avg_reference (None: cpool.slow); run() sets methods.avg_reference's


QUICK = {"repeat": 5, "min_time": 0.02, "max_time": 1.0, "passes": 2, "loop_cap": 0.05, "loop_repeat": 1,
         "warmup": 1, "settle": 0.01, "bandwidth_mb": 32, "contention_seconds": 1.0, "contention_cap": 60.0}
CONTENTION_METHODS = ("cpool", "torch")  # timed at their default thread count and at 1 thread under load


def available_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def last_level_cache_bytes():
    """The size of the largest CPU cache (Linux sysfs), or None where it cannot be read."""
    sizes = []
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        try:
            text = f.read_text().strip()
        except OSError:
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:].upper(), 1)
        digits = text.rstrip("KMGkmg")
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes, default=None)


def stale_reason(cpool, repo=REPO):
    """Why the imported cpool is older than the checkout at ``repo``, or None."""
    if cpool.backend != "cython" and os.environ.get("CPOOL_BACKEND", "").lower() != "numpy":
        return f"it runs its {cpool.backend!r} backend, not the compiled one"
    m = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)", (repo / "cpool" / "__init__.py").read_text(), re.MULTILINE)
    if m and m.group(1) != cpool.__version__:
        return f"it is version {cpool.__version__}, the checkout is {m.group(1)}"
    pkg = Path(cpool.__file__).resolve().parent
    exts = [p.stat().st_mtime for p in pkg.rglob("*") if p.suffix in (".so", ".pyd")]
    # Imported from the checkout itself, its .py files are live: only the compiled sources can be stale.
    skip = {".so", ".pyd", ".pyc"} | ({".py"} if pkg == (repo / "cpool").resolve() else set())
    sources = [p for p in (repo / "cpool").rglob("*") if p.is_file() and p.suffix not in skip]
    newest = max((p.stat().st_mtime for p in [*sources, repo / "setup.py"] if p.exists()), default=0)
    if exts and max(exts) < newest:
        return "its compiled extension files are older than the checkout's newest source file"
    return None


# ---- timing, gate, bandwidth ------------------------------------------------------------------

def time_call(fn, min_count, min_time, max_time, warmup=0, batch_time=2e-4, clock=time.perf_counter):
    """Per-call seconds of ``fn()``, and whether max_time stopped it short of min_count samples.

    Calls shorter than batch_time are timed in batches (a sample is the batch's mean). The garbage
    collector is off while timing; each call's result is dropped at once, as in a real loop."""
    for _ in range(warmup):
        fn()
    t0 = clock()
    fn()
    first = clock() - t0
    batch = min(100_000, math.ceil(batch_time / max(first, 1e-9))) if first < batch_time else 1
    samples, enabled = [], gc.isenabled()
    gc.disable()
    try:
        start = clock()
        while True:
            t0 = clock()
            for _ in range(batch):
                fn()
            t1 = clock()
            samples.append((t1 - t0) / batch)
            if len(samples) >= min_count and t1 - start >= min_time:
                return samples, False
            if t1 - start >= max_time and len(samples) >= min(3, min_count):
                return samples, len(samples) < min_count
    finally:
        if enabled:
            gc.enable()


def stats(samples):
    q1, med, q3 = np.percentile(samples, [25, 50, 75])
    return {"median_s": float(med), "q1_s": float(q1), "q3_s": float(q3), "min_s": min(samples),
            "mean_s": float(np.mean(samples)),
            "spread": float((q3 - q1) / med) if med > 0 else math.nan, "count": len(samples)}


def busy_cpu_seconds():
    """CPU-seconds all CPUs have been busy since boot (/proc/stat: user, nice, system, irq, softirq, steal);
    None where there is no /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class LoadMeter:
    """CPU-seconds other processes (and the hypervisor, as steal) used since the meter started: all CPUs' busy
    time less this process's own, all its threads. Resolution is the kernel tick (10 ms)."""

    def __init__(self, clock=time.perf_counter):
        self.clock, self.busy, self.own, self.t0 = clock, busy_cpu_seconds(), self._own(), clock()

    @staticmethod
    def _own():
        t = os.times()
        return t.user + t.system

    def read(self):
        """(other CPU-seconds or None, wall seconds) since the start."""
        busy, wall = busy_cpu_seconds(), self.clock() - self.t0
        if busy is None or self.busy is None:
            return None, wall
        return max(0.0, busy - self.busy - (self._own() - self.own)), wall


def other_cpus(cpu_s, wall_s, min_wall=0.1):
    """CPUs other processes kept busy on average, None when the meter had no reading or too short a one."""
    return cpu_s / wall_s if cpu_s is not None and wall_s >= min_wall else None


def compare(got, ref, grad_rtol=1e-5, sums_rtol=None):
    """(ok, exact, detail): values and indices must match exactly (NaN equals NaN); grad_in too, or where the
    summation order may differ (overlapping windows) to grad_rtol of the largest gradient. The average-pooling
    outputs (avg_values, avg_grad_in, gap_values) must match exactly, unless sums_rtol is given: for a peer that
    sums in its own order, they may differ by rounding, up to sums_rtol of the largest reference value."""
    exact, checked, loose = True, [k for k in C.GATE_KEYS if k in got], []
    for key in checked:
        if key not in ref:
            return False, False, f"{key}: no reference output to check it against"
        r = ref[key]
        index = key.endswith("indices")
        g = np.asarray(got[key]).astype(np.int64 if index else r.dtype, copy=False)
        if g.shape != r.shape:
            return False, False, f"{key}: shape {g.shape}, expected {r.shape}"
        if np.array_equal(g, r, equal_nan=not index):
            continue
        rtol = grad_rtol if key == "grad_in" else sums_rtol if key in C.SUM_KEYS else None
        if rtol is not None and np.max(np.abs(g.astype(np.float64) - r)) <= rtol * np.max(np.abs(r)):
            exact = False
            loose.append(f"{key} within rtol {rtol:g} (summation order)")
            continue
        bad = np.argwhere((g != r) & ~(np.isnan(g) & np.isnan(r)))
        at = tuple(int(i) for i in bad[0])
        return False, False, f"{key}: {len(bad)} of {r.size} differ, first at {at}: got {g[at]!r}, expected {r[at]!r}"
    if not checked:
        return False, False, "the method returned no known output"
    return True, exact, "exact" if exact else "; ".join(loose)


def measure_bandwidth(threads, size_mb, repeats=5):
    """Copy bandwidth (bytes read + written per second) of np.copyto between large arrays, split into
    contiguous chunks over t threads for each thread count t (NumPy releases the GIL)."""
    src = np.ones(int(size_mb * 2**20) // 4, np.float32)
    dst = np.zeros_like(src)  # touches every page before timing

    def copy_bandwidth(t):
        with ThreadPoolExecutor(t) as pool:
            parts = np.array_split(dst, t), np.array_split(src, t)
            samples, _ = time_call(lambda: list(pool.map(np.copyto, *parts)), repeats, 0, math.inf, 1, batch_time=0)
        return 2 * src.nbytes / statistics.median(samples)
    return {t: copy_bandwidth(t) for t in threads}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


# ---- the run ------------------------------------------------------------------------------------

def prepare(method, threads, case, op, s):
    """Build one (method, case, op), run it once (the first call: includes any JIT compile) and gate its
    outputs against the reference. Returns (entry, call), call None when it is not to be timed."""
    e = {"shape": case.name, "op": op, "method": method.name, "variant": f"{method.name} t{threads}" if threads
         else method.name, "threads": threads, "status": "ok", "reason": "", "exact": None, "first_call_s": None,
         "extrapolated": None}
    try:
        if op not in method.ops:
            raise M.Unsupported(f"{method.name} has no {op}")
        if case.unfit(op):
            raise M.Unsupported(case.unfit(op))
        if not all(k in case.ref for k in C.OP_KEYS[op]):
            raise M.Unsupported(f"no reference outputs for {op} on this shape (average pooling has no dilation; gap's "
                                "reference needs torch or cpool.slow.adaptive_avg_pool2d)")
        if threads:
            method.set_threads(threads)
        if method.capped:  # the loop: as many images as fit in loop_cap, timed from one image
            call, _ = method.build(case.subset(1), op)
            t0 = time.perf_counter()
            call()
            n = max(1, min(case.shape[0], int(s.loop_cap / max(time.perf_counter() - t0, 1e-9))))
            if n < case.shape[0]:
                e["extrapolated"] = {"images": n, "of": case.shape[0], "factor": case.shape[0] / n}
            case = case.subset(n)
        call, convert = method.build(case, op)
        t0 = time.perf_counter()
        ret = call()
        e["first_call_s"] = time.perf_counter() - t0
        ok, e["exact"], e["reason"] = compare(convert(ret) if convert else M.outputs(op, ret), case.ref,
                                              sums_rtol=C.SUMS_RTOL if method.own_sums else None)
    except M.Unsupported as exc:
        e.update(status="n/a", reason=str(exc))
        return e, None
    except Exception as exc:  # noqa: BLE001 - whatever a method raises is reported, and the run goes on
        e.update(status="error", reason=f"{exc.__class__.__name__}: {exc}")
        return e, None
    if not ok:
        e["status"] = "mismatch"
    return e, call if ok else None


def measure(case, op, variants, s):
    """Gate every variant on one (case, op), then time those that pass, in interleaved passes: every other
    pass in reverse order, so that drift over the run hits all methods alike."""
    prepared = [prepare(m, t, case, op, s) for m, t in variants]
    samples, load = [[] for _ in variants], [[0.0, 0.0] for _ in variants]  # per variant: other CPU-s, wall s
    group = LoadMeter()
    for p in range(s.passes):
        gc.collect()  # once per pass: the timed calls run with the collector off
        order = list(range(len(variants)))[::-1 if p % 2 else 1]
        for i in sorted(order, key=lambda i: variants[i][0].last):
            (method, threads), (e, call) = variants[i], prepared[i]
            if call is None or (method.capped and p):
                continue
            try:
                if threads:
                    method.set_threads(threads)
                time.sleep(s.settle)
                meter = LoadMeter()
                if method.capped:
                    got, capped = time_call(call, s.loop_repeat, 0, s.loop_cap * s.loop_repeat, batch_time=0)
                else:
                    got, capped = time_call(call, math.ceil(s.repeat / s.passes), s.min_time / s.passes,
                                            s.max_time / s.passes, s.warmup if e["first_call_s"] < 0.05 else 1)
            except Exception as exc:  # noqa: BLE001 - as in prepare
                e.update(status="error", reason=f"{exc.__class__.__name__}: {exc}")
                prepared[i] = (e, None)
                continue
            cpu_s, wall_s = meter.read()
            load[i] = [None if cpu_s is None else load[i][0] + cpu_s, load[i][1] + wall_s]
            factor = e["extrapolated"]["factor"] if e["extrapolated"] else 1.0
            samples[i] += [t * factor for t in got]
            e["capped"] = e.get("capped", False) or capped
            e.setdefault("pass_medians_s", []).append(statistics.median(got) * factor)
    around = other_cpus(*group.read())  # for the timings too short for a reading of their own
    for (e, _), got, (cpu_s, wall_s) in zip(prepared, samples, load):
        if e["status"] == "ok" and got:
            e.update(stats(got))
            e["other_cpus"] = other_cpus(cpu_s, wall_s)
            e["other_cpus"] = around if e["other_cpus"] is None else e["other_cpus"]
            e["busy"] = e["other_cpus"] is not None and e["other_cpus"] >= R.BUSY_OTHER_CPUS
    return [e for e, _ in prepared]


# ---- the contention section ----------------------------------------------------------------------

# A busy process: the spinning loop `while True: pass`, which also ends when this process does (its parent
# changes) or after `life` seconds, so that none outlives the benchmark, however it ends.
BUSY_CHILD = """import os, time
parent, end = os.getppid(), time.monotonic() + {life}
while os.getppid() == parent and time.monotonic() < end:
    for _ in range(100_000):
        pass
"""
BUSY_START_S = 0.2  # for the busy processes to start up and reach their loop
CONTENTION_ROUNDS = 4  # rounds per phase, each timing every variant once, every other one in reverse order


@contextlib.contextmanager
def busy_processes(n, life):
    """``n`` busy processes, one per CPU they take, killed on the way out whatever happens."""
    procs = []
    try:
        for _ in range(n):
            procs.append(subprocess.Popen([sys.executable, "-c", BUSY_CHILD.format(life=life)],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        time.sleep(BUSY_START_S)
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(5)


def measure_contention(case, op, n_busy, ready, s):
    """Time each (method, call) of ``ready`` at its default thread count and at 1 thread, in rounds over the
    variants, every other round in reverse order, while ``n_busy`` busy processes run: about
    s.contention_seconds in all. cpool, whose target this is, gets at least two rounds; a peer whose calls
    take longer than its share (torch on the large shapes: a second a call under load) at least one call per
    setting, then only what the phase has left. Returns a row per method."""
    variants = [(m, call, which) for m, call in ready for which in ("t1", "default")]
    slot = s.contention_seconds / (CONTENTION_ROUNDS * max(1, len(variants)))
    samples = {(m.name, which): [] for m, _, which in variants}
    meter, end = LoadMeter(), time.perf_counter() + s.contention_seconds
    for m, _ in ready:  # the gate ran at 1 thread
        m.default_threads()
    counts, rounds = {m.name: set() for m, _ in ready}, 0
    while rounds < 2 or time.perf_counter() < end:
        for m, call, which in variants[::-1 if rounds % 2 else 1]:
            if m.name != "cpool" and samples[(m.name, which)] and time.perf_counter() >= end:
                continue
            if which == "t1":
                m.set_threads(1)
            else:
                counts[m.name].add(m.default_threads())
            got, _ = time_call(call, 1, slot, slot)  # no warm-up: the gate warmed the code; a switch is real
            samples[(m.name, which)] += got
            # Back to the default at once: torch's count is OpenMP's default for every library in the process,
            # and cpool's default follows OpenMP's (torch t1 left in place would make cpool's default 1 thread).
            m.default_threads()
        rounds += 1
    load = other_cpus(*meter.read())
    return [{"shape": case.name, "op": op, "busy": n_busy, "method": m.name, "status": "ok", "rounds": rounds,
             "other_cpus": load, "default_threads": sorted(counts[m.name]),
             **{which: stats(samples[(m.name, which)]) for which in ("t1", "default")}} for m, _ in ready]


def contention_phases(s):
    return len(s.shapes) * len(s.ops) * len(s.contention_loads)


def run_contention(s, methods, progress=None):
    """The contention section: for each shape, load and op, cpool (and torch, when asked for) at the default
    thread count against 1 thread with busy processes running. Phases that would pass s.contention_cap are
    skipped (and listed). The libraries are back at their default thread counts at the end."""
    ms = [m for m in methods if m.name in CONTENTION_METHODS and m.build is not None and m.default_threads]
    out = {"loads": list(s.contention_loads), "seconds": s.contention_seconds, "cap_s": s.contention_cap,
           "methods": [m.name for m in ms], "rows": [], "skipped": []}
    if not any(m.name == "cpool" for m in ms):
        out["skipped"].append("all: cpool's compiled backend is not in this run")
        return out
    t0, done, total = time.perf_counter(), 0, contention_phases(s)
    deadline, life = t0 + s.contention_cap, s.contention_cap + 60
    try:
        for case in s.shapes:
            if time.perf_counter() + s.contention_seconds > deadline:
                out["skipped"].append(f"{case.name}: the section's {s.contention_cap:g} s cap")
                done += len(s.ops) * len(s.contention_loads)
                continue
            case.filled(s.seed, ops=s.ops, avg_reference=s.avg_reference)
            ready = {}
            for op in s.ops:  # built and gated at 1 thread on the idle machine, as in the main tables
                ready[op] = []
                for m in (m for m in ms if case.layout in m.layouts):
                    e, call = prepare(m, 1, case, op, s)
                    if call is None:
                        out["rows"].append({"shape": case.name, "op": op, "method": m.name, "busy": None,
                                            "status": e["status"], "reason": e["reason"]})
                    else:
                        ready[op].append((m, call))
            for n in s.contention_loads:
                with busy_processes(n, life):
                    for op in s.ops:
                        if progress:
                            progress(f"busy {done + 1}/{total} {case.name} {op}, {n} busy processes",
                                     time.perf_counter() - t0, done, total - done)
                        done += 1
                        if time.perf_counter() + s.contention_seconds > deadline:
                            out["skipped"].append(f"{case.name} {op} with {n} busy: the section's "
                                                  f"{s.contention_cap:g} s cap")
                        elif ready[op]:
                            out["rows"] += measure_contention(case, op, n, ready[op], s)
            case.x = case.grad_out = case.ref = None
    finally:
        for m in ms:
            m.default_threads()
        out["duration_s"] = time.perf_counter() - t0
    return out


def log_line(text):
    print(text, flush=True)  # in order with the progress lines on stderr, also when stdout is a file


def fmt_duration(seconds):
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def time_left(spent, done, left, unit, then=0.0):
    """How long the rest will take, learnt from the work done: seconds per ``unit`` so far x units left, plus
    ``then`` seconds expected after them."""
    if not done:
        return "time left: known after the first " + unit + (f"; then ~{fmt_duration(then)} under load" if then else "")
    each = spent / done
    return (f"about {fmt_duration(each * left + then)} left: {each:.2g} s per {unit} so far x {left}"
            + (f" + ~{fmt_duration(then)} under load" if then else ""))


def contention_estimate(s):
    """Seconds the contention section should take: its phases, starting the busy processes, capped."""
    starts = len(s.shapes) * len(s.contention_loads) * (BUSY_START_S + 0.3)
    return min(s.contention_cap, contention_phases(s) * s.contention_seconds + starts) if s.contention else 0.0


def op_skips(cpool, ops):
    """{op: why it is left out of the run} for the ops this cpool cannot do (gap needs adaptive_avg_pool2d, ...)."""
    need = {"gap": "adaptive_avg_pool2d", "unpool": "max_unpool2d", "unpool_bwd": "max_unpool2d_backward",
            "amax": "adaptive_max_pool2d", "pool1d": "max_pool1d", "max3d_fwd": "max_pool3d",
            "max3d_bwd": "max_pool3d_backward", "avg3d_fwd": "avg_pool3d", "avg3d_bwd": "avg_pool3d_backward"}
    return {op: f"the cpool imported ({cpool.__version__}, {Path(cpool.__file__).parent}) has no {need[op]}"
            for op in ops if op in need and not hasattr(cpool, need[op])}


def run(s, log=log_line, argv=None):
    import cpool

    skipped_ops = op_skips(cpool, s.ops)
    for op, why in skipped_ops.items():
        log(f"[bench] skipping op {op}: {why}")
    s.ops = [op for op in s.ops if op not in skipped_ops]
    avg_ref = "none (no average-pooling, unpooling or adaptive max op in the run)"
    if any(op in C.TORCH_REF_OPS for op in s.ops):
        avg_ref, s.avg_reference = M.avg_reference()
    methods = M.get_methods(s.methods)
    for m in methods:
        if m.build is None:
            log(f"[bench] skipping {m.name}: {m.note}")
    ready = [m for m in methods if m.build is not None]
    # The single-threaded methods first, then at each thread count cpool next to its peers.
    variants = [(m, None) for m in ready if not m.set_threads] + [(m, t) for t in s.threads for m in ready
                                                                    if m.set_threads]
    started, t_run, load_before = datetime.datetime.now(datetime.timezone.utc), time.perf_counter(), os.getloadavg()[0]
    config = dict(cpool.config(), file=cpool.__file__, stale=stale_reason(cpool))  # before any set_num_threads

    def say(label, spent, done, left, unit, then=0.0):
        if s.progress:
            print(f"[bench] {label} ({time.perf_counter() - t_run:.0f} s so far; "
                  f"{time_left(spent, done, left, unit, then)})", file=sys.stderr, flush=True)

    log(f"[bench] measuring memory bandwidth ({s.bandwidth_mb:g} MiB arrays, threads {list(s.threads)})")
    bandwidth = measure_bandwidth(s.threads, s.bandwidth_mb, 3 if s.quick else 5)
    entries, groups, t_measure = [], [(c, op) for c in s.shapes for op in s.ops], time.perf_counter()
    for k, (case, op) in enumerate(groups):
        if case.x is None:
            case.filled(s.seed, ops=s.ops, avg_reference=s.avg_reference)
        here = [(m, t) for m, t in variants if case.layout in m.layouts]  # each method on its layouts only
        say(f"{k + 1}/{len(groups)} {case.name} {op}", time.perf_counter() - t_measure, len(entries),
            sum(len([v for v in variants if c.layout in v[0].layouts]) for c, _ in groups[k:]), "entry",
            contention_estimate(s))
        got = measure(case, op, here, s)
        for e in got:
            if "median_s" in e:  # jax has no thread knob: it runs on every CPU
                bw = bandwidth.get(e["threads"] or (available_cpus() if e["method"] == "jax" else 1))
                bound = case.nbytes(op) / (bw or bandwidth[max(bandwidth)])
                e["roofline"] = {"bytes": case.nbytes(op), "bound_s": bound, "fraction": bound / e["median_s"]}
        entries += got
        busy = [e["other_cpus"] for e in got if e.get("busy")]
        if busy and s.progress:
            print(f"[bench]   busy machine: other processes kept {max(busy):.1f} CPUs busy during {len(busy)} of "
                  f"{sum('median_s' in e for e in got)} timings", file=sys.stderr, flush=True)
        if k + 1 == len(groups) or groups[k + 1][0] is not case:
            case.x = case.grad_out = case.ref = None  # free the big arrays before the next shape
    load_after = os.getloadavg()[0]  # before the contention section loads the machine on purpose
    contention = None
    if s.contention:
        log(f"[bench] contention: default threads vs 1 thread with {', '.join(map(str, s.contention_loads))} "
            f"busy processes, {s.contention_seconds:g} s per shape, op and load (at most "
            f"{fmt_duration(s.contention_cap)})")
        contention = run_contention(s, methods, lambda label, *a: say(label, *a, "phase"))
    machine = {"cpu_model": cpu_model(), "available_cpus": available_cpus(), "cache_bytes": last_level_cache_bytes(),
               "platform": platform.platform(), "python": platform.python_version(), "numpy": np.__version__,
               "cpool": config,
               "env": {k: v for k, v in os.environ.items() if k.endswith("_NUM_THREADS") or k.startswith("CPOOL_")},
               "loadavg": {"before": load_before, "after": load_after},
               **{m.name: m.version for m in methods if m.name in ("torch", "onnxruntime", "numba", "jax")}}
    return R.derive({
        "created": started.isoformat(timespec="seconds"), "duration_s": time.perf_counter() - t_run,
        "argv": sys.argv[1:] if argv is None else list(argv),
        "settings": dict(asdict(s), shapes=[c.name for c in s.shapes], avg_reference=avg_ref), "machine": machine,
        "skipped_ops": skipped_ops,
        "bandwidth_Bps": bandwidth, "shapes": [c.meta() for c in s.shapes], "ops": {op: C.OPS[op] for op in s.ops},
        "methods": {m.name: {"available": m.build is not None, "description": m.description, "note": m.note,
                             "version": m.version} for m in methods},
        "entries": entries, "contention": contention})


# ---- CLI ----------------------------------------------------------------------------------------

def parse_list(text, known, what, groups=None):
    """The names in ``text`` (comma-separated), each in ``known`` or a key of ``groups`` (standing for its names)."""
    names, groups = [], groups or {}
    for n in (t.strip() for t in text.split(",") if t.strip()):
        if n not in known and n not in groups:
            raise ValueError(f"unknown {what} {n!r}; known: {', '.join([*known, *groups])}")
        names += [m for m in groups.get(n, (n,)) if m not in names]
    return names


def parse_threads(text):
    out = []
    for tok in filter(None, (t.strip().lower() for t in text.split(","))):
        n = available_cpus() if tok in ("all", "max") else int(tok)
        if n < 1:
            raise ValueError(f"thread count must be >= 1, got {n}")
        out += [n] * (n not in out)
    return out or [1]


def parse_loads(text):
    """Busy-process counts: integers, "cpus" (the CPU count) or "Kxcpus" (K times it)."""
    out = []
    for tok in filter(None, (t.strip().lower() for t in text.split(","))):
        m = re.fullmatch(r"(?:(\d+)x)?cpus", tok)
        n = int(m.group(1) or 1) * available_cpus() if m else int(tok) if tok.isdigit() else 0
        if n < 1:
            raise ValueError(f"busy processes: a positive integer, 'cpus' or 'Kxcpus', got {tok!r}")
        out += [n] * (n not in out)
    return out


def build_parser():
    p = argparse.ArgumentParser(prog="python bench/bench.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help=f"smoke run: shapes {','.join(C.QUICK_SHAPES)}, few repeats")
    p.add_argument("--shapes", help="comma-separated names (" + ", ".join(C.SHAPES) + ") or specs "
                   "NxCxHxW[:kK][:sS][:pP][:dD][:ceil][:float64] (kernel 2, stride = kernel unless given)")
    p.add_argument("--methods", default=",".join(M.METHOD_NAMES), help="comma-separated (default: all: "
                   + ",".join(M.METHOD_NAMES) + ")")
    p.add_argument("--ops", default=",".join(C.DEFAULT_OPS), help="comma-separated (default: the max and avg groups): "
                   + "; ".join(f"{k} = {v}" for k, v in C.OPS.items()) + "; or a group: "
                   + "; ".join(f"{k} = {','.join(v)}" for k, v in C.OP_GROUPS.items()))
    p.add_argument("--threads", default="1,all", help="thread counts for cpool, torch and numba: integers or 'all' "
                   f"(default 1,all; {available_cpus()} CPUs here)")
    busy = p.add_mutually_exclusive_group()
    busy.add_argument("--contention", action="store_true", default=None, help="time the contention section: "
                      "cpool (and torch) at the default thread count against 1 thread while busy processes hold the "
                      "CPUs (default: on in a full run, off with --quick)")
    busy.add_argument("--no-contention", dest="contention", action="store_false", help="leave it out")
    p.add_argument("--contention-loads", default=C.CONTENTION_LOADS, help="busy processes per load phase: integers, "
                   f"'cpus' or 'Kxcpus' (default {C.CONTENTION_LOADS}: {available_cpus()} and {2 * available_cpus()} "
                   "here)")
    p.add_argument("--contention-seconds", type=float, help="seconds per shape, op and load (default "
                   f"{Settings.contention_seconds:g}, {QUICK['contention_seconds']:g} with --quick)")
    p.add_argument("--contention-cap", type=float, help="seconds the whole contention section may take (default "
                   f"{Settings.contention_cap:g}, {QUICK['contention_cap']:g} with --quick)")
    p.add_argument("--out", default=str(HERE / "results"), help="output folder (default bench/results)")
    p.add_argument("--no-chart", action="store_true", help="do not draw speedup.png")
    p.add_argument("--no-progress", action="store_true", help="no progress lines")
    p.add_argument("--no-build", action="store_true", help=argparse.SUPPRESS)  # accepted for old scripts: never builds
    return p


def settings_from_args(args):
    ops = parse_list(args.ops, C.OPS, "operation", C.OP_GROUPS)
    if args.shapes:
        names = args.shapes.split(",")
    else:  # the shapes of the ops' dimensions: 2-D pooling's, the pool1d op's 1-D ones, 3-D pooling's
        names = [*(C.QUICK_SHAPES if args.quick else C.SHAPES)] * any(
            op not in C.POOL1D_OPS and op not in C.POOL3D_OPS for op in ops)
        names += [*C.POOL1D_SHAPES] * ("pool1d" in ops)
        names += [*(C.QUICK_SHAPES_3D if args.quick else C.SHAPES_3D)] * any(op in C.POOL3D_OPS for op in ops)
    given = {k: v for k in ("contention_seconds", "contention_cap") if (v := getattr(args, k)) is not None}
    if any(v <= 0 for v in given.values()):
        raise ValueError("--contention-seconds and --contention-cap must be positive")
    return Settings([C.parse_shape(t) for t in names if t.strip()], parse_list(args.methods, M.METHOD_NAMES, "method"),
                    ops, parse_threads(args.threads), args.out,
                    args.quick,
                    chart=not args.no_chart, progress=not args.no_progress,
                    contention=not args.quick if args.contention is None else args.contention,
                    contention_loads=tuple(parse_loads(args.contention_loads)),
                    **{**(QUICK if args.quick else {}), **given})


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        s = settings_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        import cpool
    except ImportError as exc:
        print(f"[bench] cannot import cpool ({exc}): python -m pip install \".[bench]\"", file=sys.stderr)
        return 2
    stale = stale_reason(cpool)
    if stale:
        print(f"[bench] WARNING: the cpool imported from {Path(cpool.__file__).parent} is older than this "
              f"checkout: {stale}. Rerun `python -m pip install .` to benchmark the current code.", file=sys.stderr)
    # A plain kill (SIGTERM) unwinds too, so that the contention section's busy processes are killed on the way.
    if argv is None:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    results = run(s, argv=argv)
    print(R.render(results, md=False))
    print("[bench] wrote " + ", ".join(map(str, R.write(results, s.out, s.chart))))
    if results["busy"]["busy"]:
        print(f"[bench] {results['summary'][0]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
