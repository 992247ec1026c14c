"""Measurement machinery for the cpool benchmark: timing, correctness gate,
memory bandwidth and roofline, machine facts.

Nothing here knows about particular methods; ``bench_methods`` supplies the
callables and ``bench_report`` formats what this module measures.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np

# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------


@dataclass
class TimingConfig:
    """How long and how often one callable is timed.

    Sampling stops once there are at least ``min_count`` samples AND
    ``min_time`` seconds have been spent, or once ``max_time`` seconds have
    been spent with at least ``floor_count`` samples. Calls shorter than
    ``batch_time`` are batched so that one sample lasts about that long (the
    sample then holds the per-call average of the batch).
    """

    warmup: int = 3
    min_count: int = 20
    min_time: float = 0.5
    max_time: float = 10.0
    floor_count: int = 3
    batch_time: float = 2e-4
    collect: bool = True  # run gc.collect() before timing (about 20 ms with torch loaded)


@dataclass
class Timing:
    """Per-call times, in seconds, of one callable."""

    samples: list = field(default_factory=list)
    batch: int = 1
    elapsed: float = 0.0
    capped: bool = False  # stopped by max_time before min_count

    @property
    def count(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else math.nan

    @property
    def minimum(self) -> float:
        return min(self.samples) if self.samples else math.nan

    def quantile(self, q: float) -> float:
        if not self.samples:
            return math.nan
        return float(np.quantile(np.asarray(self.samples), q))

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median (0.05 = 5 %)."""
        med = self.median
        if not self.samples or not med > 0:
            return math.nan
        return (self.quantile(0.75) - self.quantile(0.25)) / med

    def merged(self, other: "Timing") -> "Timing":
        return Timing(
            samples=self.samples + other.samples,
            batch=max(self.batch, other.batch),
            elapsed=self.elapsed + other.elapsed,
            capped=self.capped or other.capped,
        )

    def summary(self) -> dict:
        return {
            "median_s": self.median,
            "min_s": self.minimum,
            "q1_s": self.quantile(0.25),
            "q3_s": self.quantile(0.75),
            "spread": self.spread,
            "count": self.count,
            "batch": self.batch,
            "elapsed_s": self.elapsed,
            "capped": self.capped,
        }


def time_call(fn, cfg: TimingConfig | None = None, clock=time.perf_counter) -> Timing:
    """Time ``fn()`` (no arguments) with warm-up, batching and stop rules.

    The garbage collector is off while timing. Every call's result is
    dropped right away, so freshly allocated outputs are freed between calls
    (as in a real loop) and memory does not pile up inside a batch.
    """
    cfg = cfg or TimingConfig()
    for _ in range(cfg.warmup):
        fn()
    gc_was_enabled = gc.isenabled()
    if cfg.collect:
        gc.collect()
    gc.disable()
    try:
        # Estimate one call, then pick the batch size.
        t0 = clock()
        fn()
        first = clock() - t0
        batch = 1
        if cfg.batch_time > 0 and first < cfg.batch_time:
            batch = max(1, int(math.ceil(cfg.batch_time / max(first, 1e-9))))
            batch = min(batch, 100_000)
        timing = Timing(batch=batch)
        start = clock()
        while True:
            t0 = clock()
            for _ in range(batch):
                fn()
            t1 = clock()
            timing.samples.append((t1 - t0) / batch)
            elapsed = t1 - start
            n = len(timing.samples)
            if n >= cfg.min_count and elapsed >= cfg.min_time:
                break
            if elapsed >= cfg.max_time and n >= cfg.floor_count:
                timing.capped = n < cfg.min_count
                break
        timing.elapsed = clock() - start
        return timing
    finally:
        if gc_was_enabled:
            gc.enable()


# --------------------------------------------------------------------------
# Correctness gate
# --------------------------------------------------------------------------

GATE_KEYS = ("values", "indices", "grad_in")


@dataclass
class GateResult:
    ok: bool
    checked: list
    detail: str = ""
    exact: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def _describe_mismatch(got, ref) -> str:
    diff = np.argwhere(~_equal_mask(got, ref))
    first = tuple(int(i) for i in diff[0]) if len(diff) else ()
    return f"{len(diff)} of {ref.size} differ, first at {first}: got {got[first]!r}, expected {ref[first]!r}"


def _equal_mask(got, ref):
    eq = got == ref
    if ref.dtype.kind == "f":
        eq |= np.isnan(got) & np.isnan(ref)
    return eq


def compare(result: dict, reference: dict, grad_rtol: float = 1e-5) -> GateResult:
    """Compare a method's outputs with the reference outputs.

    ``result`` and ``reference`` map some of ``values``, ``indices`` and
    ``grad_in`` to NumPy arrays (indices in PyTorch's format: int64
    ``h * W + w`` within each plane). Only the keys the method returns are
    checked. Values and indices must match exactly (values are compared in
    the reference dtype; NaN equals NaN); grad_in must match exactly or, where
    accumulation order may differ (overlapping windows), to ``grad_rtol``
    relative to the largest gradient, which is reported as not exact.
    """
    checked = []
    exact = True
    for key in GATE_KEYS:
        if key not in result or result[key] is None:
            continue
        if key not in reference:
            continue
        ref = np.asarray(reference[key])
        got = np.asarray(result[key])
        checked.append(key)
        if got.shape != ref.shape:
            return GateResult(False, checked, f"{key}: shape {got.shape} != expected {ref.shape}")
        if key == "indices":
            got = got.astype(np.int64, copy=False)
        else:
            with np.errstate(all="ignore"):
                got = got.astype(ref.dtype, copy=False)
        if np.array_equal(got, ref, equal_nan=ref.dtype.kind == "f"):
            continue
        if key == "grad_in":
            scale = float(np.max(np.abs(ref))) if ref.size else 0.0
            err = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64)))) if ref.size else 0.0
            if np.isfinite(err) and err <= grad_rtol * max(scale, 1e-30):
                exact = False
                continue
            return GateResult(False, checked, f"grad_in: max abs error {err:.3g} (scale {scale:.3g}); " + _describe_mismatch(got, ref))
        return GateResult(False, checked, f"{key}: " + _describe_mismatch(got, ref))
    if not checked:
        return GateResult(False, checked, "nothing to compare (the method returned no known output)")
    return GateResult(True, checked, "exact" if exact else f"grad_in within rtol {grad_rtol:g} (summation order)", exact)


# --------------------------------------------------------------------------
# Bandwidth and roofline
# --------------------------------------------------------------------------


def _run_threads(fn, chunks):
    if len(chunks) == 1:
        fn(*chunks[0])
        return
    threads = [threading.Thread(target=fn, args=c) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def measure_bandwidth(threads=(1,), size_mb: float = 256, repeats: int = 7) -> dict:
    """Memory bandwidth in bytes/s, measured with NumPy on large arrays.

    ``copy``: ``np.copyto`` of a pre-touched array into another, counted as
    bytes read + bytes written. ``read``: ``ndarray.max`` over an array
    (bytes read). For t > 1 threads the arrays are split into t contiguous
    chunks handled by t Python threads (NumPy releases the GIL in both).
    The median of ``repeats`` runs is kept. Returns
    ``{"size_mb", "copy": {t: B/s}, "read": {t: B/s}}``.
    """
    n = max(1, int(size_mb * 2**20 // 4))
    src = np.ones(n, dtype=np.float32)
    dst = np.zeros(n, dtype=np.float32)  # touch every page before timing
    out = {"size_mb": n * 4 / 2**20, "copy": {}, "read": {}}
    for t in threads:
        t = max(1, int(t))
        edges = np.linspace(0, n, t + 1).astype(int)
        chunks = [(edges[i], edges[i + 1]) for i in range(t)]

        def copy(a, b):
            np.copyto(dst[a:b], src[a:b])

        def read(a, b):
            src[a:b].max()

        for name, fn, nbytes in (("copy", copy, 2 * src.nbytes), ("read", read, src.nbytes)):
            times = []
            _run_threads(fn, chunks)  # warm-up
            for _ in range(repeats):
                t0 = time.perf_counter()
                _run_threads(fn, chunks)
                times.append(time.perf_counter() - t0)
            out[name][t] = nbytes / statistics.median(times)
    return out


def op_bytes(op: str, in_elems: int, out_elems: int, itemsize: int, index_itemsize: int = 8) -> int:
    """Bytes an operation must move at the least (read + write, each once).

    fwd: read the input, write the values. fwd_idx: also write int64
    indices. bwd: read grad_output and indices, write grad_input (zeroed and
    scattered into in one pass at best). step: fwd_idx then bwd.
    """
    x = in_elems * itemsize
    v = out_elems * itemsize
    i = out_elems * index_itemsize
    if op == "fwd":
        return x + v
    if op == "fwd_idx":
        return x + v + i
    if op == "bwd":
        return v + i + x
    if op == "step":
        return op_bytes("fwd_idx", in_elems, out_elems, itemsize, index_itemsize) + op_bytes(
            "bwd", in_elems, out_elems, itemsize, index_itemsize
        )
    raise ValueError(f"unknown operation {op!r}")


def roofline(nbytes: int, bandwidth: float, seconds: float) -> dict:
    """Lower bound on the time to move ``nbytes`` at ``bandwidth`` B/s, and
    the fraction of it reached by a call taking ``seconds`` (1.0 = at the
    bound; above 1 is possible when the data stay in cache)."""
    bound = nbytes / bandwidth if bandwidth > 0 else math.nan
    frac = bound / seconds if seconds and seconds > 0 and math.isfinite(seconds) else math.nan
    return {"bytes": int(nbytes), "bandwidth_Bps": bandwidth, "bound_s": bound, "fraction": frac}


# --------------------------------------------------------------------------
# Machine facts
# --------------------------------------------------------------------------


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def l3_bytes() -> int | None:
    size = _read("/sys/devices/system/cpu/cpu0/cache/index3/size")
    if not size:
        return None
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    try:
        if size[-1] in units:
            return int(size[:-1]) * units[size[-1]]
        return int(size)
    except ValueError:
        return None


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def machine_facts() -> dict:
    mem = None
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) * 1024
    thp = _read("/sys/kernel/mm/transparent_hugepage/enabled")
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "available_cpus": available_cpus(),
        "l3_bytes": l3_bytes(),
        "memory_bytes": mem,
        "transparent_hugepage": thp,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "numpy": np.__version__,
        "env": {k: os.environ[k] for k in sorted(os.environ) if k.endswith("_NUM_THREADS") or k in ("OMP_WAIT_POLICY", "CPOOL_BACKEND")},
    }


# --------------------------------------------------------------------------
# Background load
# --------------------------------------------------------------------------


def _busy_cpu_seconds():
    """CPU seconds all processes have been busy since boot (/proc/stat), or None."""
    text = _read("/proc/stat")
    if not text or not text.startswith("cpu "):
        return None
    f = [int(v) for v in text.splitlines()[0].split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    busy = f[0] + f[1] + f[2] + sum(f[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


class LoadMeter:
    """How many CPUs other processes kept busy while a measurement ran.

    On a small shared machine (2 cores here) another process using a core
    slows multi-threaded timings by several times; entries measured under
    such load are marked. Resolution is the kernel tick (10 ms)."""

    def __init__(self):
        self._t0 = self._busy0 = self._own0 = None

    def start(self):
        self._busy0 = _busy_cpu_seconds()
        t = os.times()
        self._own0 = t.user + t.system
        self._t0 = time.perf_counter()
        return self

    def stop(self) -> float | None:
        """Average number of CPUs used by other processes since start()."""
        busy = _busy_cpu_seconds()
        if busy is None or self._busy0 is None:
            return None
        t = os.times()
        wall = time.perf_counter() - self._t0
        if wall <= 0:
            return None
        other = (busy - self._busy0) - (t.user + t.system - self._own0)
        return max(0.0, other / wall)
