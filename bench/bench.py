#!/usr/bin/env python
"""Benchmark cpool's max pooling against the loop from the original
question, the accepted NumPy answer, cpool's own NumPy fallback, PyTorch and
(when installed) numba and JAX.

    python bench/bench.py            # full run, a few minutes
    python bench/bench.py --quick    # smoke run, under a minute (CI)

Before measuring, the script makes sure the installed cpool is the compiled
build of this source tree, and runs ``python -m pip install <repo>`` if it is
not (``--no-build`` skips that). Results go to ``bench/results/`` (or
``--out DIR``): results.json, results.md and speedup.png.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_harness as H  # noqa: E402
import bench_methods as M  # noqa: E402
import bench_report as R  # noqa: E402

# name -> (shape, kernel, stride, padding, dtype)
SHAPES = {
    "mnist-conv": ((64, 32, 28, 28), 2, 2, 0, "float32"),
    "mnist-first": ((128, 8, 28, 28), 2, 2, 0, "float32"),
    "14x14x64": ((256, 64, 14, 14), 2, 2, 0, "float32"),
    "resnet-stem": ((32, 64, 112, 112), 3, 2, 1, "float32"),
    "large": ((16, 256, 56, 56), 2, 2, 0, "float32"),
    "tiny": ((1, 1, 28, 28), 2, 2, 0, "float32"),
    "mnist-conv-f64": ((64, 32, 28, 28), 2, 2, 0, "float64"),
}
DEFAULT_SHAPES = tuple(SHAPES)
QUICK_SHAPES = ("mnist-first", "tiny")

MAX_STORED_SAMPLES = 200  # per entry in results.json (every k-th sample, in time order)

_SPEC = re.compile(r"^(\d+)x(\d+)x(\d+)x(\d+)((?::[a-z0-9]+)*)$")


def parse_shape(token: str) -> dict:
    """A shape name from SHAPES, or a spec ``NxCxHxW[:kK][:sS][:pP][:dD][:ceil][:float64]``
    (kernel 2 and stride = kernel by default)."""
    token = token.strip()
    if token in SHAPES:
        shape, k, s, p, dtype = SHAPES[token]
        return dict(name=token, shape=shape, kernel=k, stride=s, padding=p, dilation=1, ceil_mode=False, dtype=dtype)
    m = _SPEC.match(token)
    if not m:
        raise ValueError(f"unknown shape {token!r}: use one of {', '.join(SHAPES)} or NxCxHxW[:k3][:s2][:p1][:d1][:ceil][:float64]")
    spec = dict(name=token, shape=tuple(int(g) for g in m.groups()[:4]), kernel=2, stride=None, padding=0,
                dilation=1, ceil_mode=False, dtype="float32")
    for part in filter(None, m.group(5).split(":")):
        if part == "ceil":
            spec["ceil_mode"] = True
        elif part in ("float32", "float64", "float16"):
            spec["dtype"] = part
        elif part[0] in "kspd" and part[1:].isdigit():
            spec[{"k": "kernel", "s": "stride", "p": "padding", "d": "dilation"}[part[0]]] = int(part[1:])
        else:
            raise ValueError(f"bad shape option {part!r} in {token!r}")
    if spec["stride"] is None:
        spec["stride"] = spec["kernel"]
    return spec


def parse_threads(text: str) -> list:
    cpus = H.available_cpus()
    out = []
    for tok in text.split(","):
        tok = tok.strip().lower()
        if not tok:
            continue
        n = cpus if tok in ("all", "max") else int(tok)
        if n < 1:
            raise ValueError(f"thread count must be >= 1, got {n}")
        if n not in out:
            out.append(n)
    return out or [1]


@dataclass
class Settings:
    shapes: list
    methods: list
    ops: list
    threads: list
    out: str
    quick: bool = False
    repeat: int = 20          # minimum samples per measurement (over all passes)
    min_time: float = 0.5     # minimum seconds per measurement (over all passes)
    max_time: float = 6.0     # cap in seconds per measurement (over all passes)
    warmup: int = 3
    passes: int = 2           # passes over the methods, alternate ones in reverse order
    loop_cap: float = 0.5     # seconds one loop call may take; the batch is cut to fit
    loop_repeat: int = 3
    settle: float = 0.05      # pause between methods so other thread pools stop spinning
    bandwidth_mb: float = 256
    seed: int = 0
    chart: bool = True
    progress: bool = True


# --------------------------------------------------------------------------
# Making sure the installed cpool is this tree's compiled build
# --------------------------------------------------------------------------

SOURCE_PATTERNS = ("cpool/*.py", "cpool/*.pyx", "cpool/*.pxd", "setup.py", "pyproject.toml")


def source_version(repo: Path = REPO) -> str | None:
    """``__version__`` from the source tree's cpool/__init__.py (else pyproject)."""
    for path, pat in ((repo / "cpool" / "__init__.py", r'^__version__\s*=\s*["\']([^"\']+)["\']'),
                      (repo / "pyproject.toml", r'^version\s*=\s*["\']([^"\']+)["\']')):
        try:
            m = re.search(pat, path.read_text(), re.M)
        except OSError:
            continue
        if m:
            return m.group(1)
    return None


def newest_source_mtime(repo: Path = REPO) -> float:
    times = [p.stat().st_mtime for pat in SOURCE_PATTERNS for p in repo.glob(pat)]
    return max(times, default=0.0)


def install_reason(imported, backend=None, version=None, src_version=None, pkg_dir=None, repo=REPO,
                   ext_mtime=None, src_mtime=None, rebuild=False, numpy_chosen=False) -> str | None:
    """Why cpool must be (re)installed before benchmarking, or None.

    ``numpy_chosen``: CPOOL_BACKEND=numpy is set, so a NumPy backend is
    what the user asked for, not a sign of a missing build."""
    if rebuild:
        return "--rebuild was given"
    if not imported:
        return "cpool is not installed"
    if src_version and version != src_version:
        return f"the installed cpool is version {version}, the source tree is {src_version}"
    if backend != "cython" and not numpy_chosen:
        return f"the installed cpool runs its {backend!r} backend, not the compiled one"
    in_tree = pkg_dir is not None and Path(pkg_dir).resolve() == (Path(repo) / "cpool").resolve()
    if not in_tree and ext_mtime is not None and src_mtime is not None and src_mtime > ext_mtime:
        return "the source tree has changed since cpool was installed"
    return None


def check_installed_cpool(rebuild=False) -> str | None:
    try:
        import cpool
    except Exception as exc:  # ImportError, or a broken build
        return f"cpool is not installed ({exc.__class__.__name__}: {exc})"
    pkg_dir = Path(cpool.__file__).resolve().parent
    exts = list(pkg_dir.glob("*.so")) + list(pkg_dir.glob("*.pyd"))
    ext_mtime = max((p.stat().st_mtime for p in exts), default=None)
    return install_reason(True, cpool.backend, getattr(cpool, "__version__", None), source_version(), pkg_dir,
                          REPO, ext_mtime, newest_source_mtime(), rebuild,
                          numpy_chosen=os.environ.get("CPOOL_BACKEND", "").lower() == "numpy")


def ensure_cpool(argv, no_build=False, rebuild=False):
    """Install cpool from this tree if needed, then re-run this script."""
    reason = check_installed_cpool(rebuild)
    if reason is None:
        return
    if no_build or os.environ.get("CPOOL_BENCH_INSTALLED"):
        if os.environ.get("CPOOL_BENCH_INSTALLED"):
            print(f"[bench] warning: after installing, still: {reason}; benchmarking what is there", file=sys.stderr)
        else:
            print(f"[bench] warning: {reason}; --no-build given, benchmarking what is installed", file=sys.stderr)
        return
    cmd = [sys.executable, "-m", "pip", "install", str(REPO)]
    print(f"[bench] {reason}: building and installing cpool first (about a minute; --no-build skips):\n"
          f"[bench]   {' '.join(cmd)}", file=sys.stderr, flush=True)
    rc = subprocess.call(cmd)
    if rc != 0:
        print(f"[bench] pip install failed (exit {rc})", file=sys.stderr)
        try:
            import cpool  # noqa: F401
        except Exception:
            sys.exit(2)
        print("[bench] continuing with the cpool that is installed", file=sys.stderr)
        return
    env = dict(os.environ, CPOOL_BENCH_INSTALLED="1")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, str(Path(__file__).resolve())] + list(argv), env)


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


def variant_label(method, threads):
    return f"{method.name} t{threads}" if method.threaded else method.name


def make_variants(methods, threads):
    """(method, threads) pairs in measuring order: the single-threaded
    methods first, then for each thread count cpool next to its peers."""
    out = [(m, None) for m in methods if m.available and not m.threaded]
    for t in threads:
        out += [(m, t) for m in methods if m.available and m.threaded]
    return out


class Progress:
    """A plain-stderr progress bar (a line every 10 % when not a terminal)."""

    def __init__(self, total, enabled=True, stream=None):
        self.total = max(1, total)
        self.done = 0
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self._last_decile = -1

    def step(self, text="", n=1):
        self.done = min(self.total, self.done + n)
        self.show(text)

    def show(self, text=""):
        if not self.enabled:
            return
        frac = self.done / self.total
        elapsed = time.perf_counter() - self.start
        eta = elapsed / frac - elapsed if frac > 0.02 else float("nan")
        eta_s = f"~{eta:.0f}s left" if math.isfinite(eta) else ""
        if self.tty:
            width = 28
            bar = "#" * int(frac * width) + "." * (width - int(frac * width))
            line = f"\r[{bar}] {100 * frac:5.1f}% {elapsed:5.0f}s {eta_s:>11} {text[:44]:<44}"
            self.stream.write(line)
            self.stream.flush()
        else:
            decile = int(frac * 10)
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(f"[bench] {100 * frac:3.0f}% {elapsed:.0f}s {eta_s} {text}\n")
                self.stream.flush()

    def close(self):
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _set_threads(method, threads):
    if method.set_threads is not None and threads is not None:
        method.set_threads(threads)


def _timing_config(settings, capped=False, first_call=0.0):
    passes = max(1, settings.passes)
    if capped:
        return H.TimingConfig(warmup=0, min_count=settings.loop_repeat, min_time=0.0,
                              max_time=settings.loop_cap * settings.loop_repeat, floor_count=1, batch_time=0.0,
                              collect=False)
    warmup = settings.warmup if first_call < 0.05 else min(settings.warmup, 1)
    return H.TimingConfig(warmup=warmup, min_count=max(1, math.ceil(settings.repeat / passes)),
                          min_time=settings.min_time / passes, max_time=settings.max_time / passes,
                          floor_count=min(3, settings.repeat), collect=False)


def prepare_entry(method, threads, case, op, settings, clock=time.perf_counter):
    """Build the call for one (method, case, op), run it once (the first call:
    includes JIT compilation where there is one) and gate its outputs
    against the case's reference. Returns (entry dict, Prepared or None)."""
    entry = {"shape": case.name, "op": op, "method": method.name, "variant": variant_label(method, threads),
             "threads": threads, "status": "ok", "reason": "", "gate": None, "flagged": False,
             "first_call_s": None, "extrapolated": None}
    reason = method.reason_unsupported(case, op)
    if reason:
        entry.update(status="n/a", reason=reason)
        return entry, None
    try:
        _set_threads(method, threads)
        run_case = case
        if method.capped:
            probe = method.build(case.subset(1), op)
            t0 = clock()
            probe.call()
            per_image = clock() - t0
            n = max(1, min(case.shape[0], int(settings.loop_cap / max(per_image, 1e-9))))
            run_case = case.subset(n)
            if n < case.shape[0]:
                entry["extrapolated"] = {"images": n, "of": case.shape[0], "factor": case.shape[0] / n}
        prep = method.build(run_case, op)
        t0 = clock()
        ret = prep.call()
        entry["first_call_s"] = clock() - t0
        gate = H.compare(prep.to_result(ret), run_case.ref)
        del ret
    except Exception as exc:
        entry.update(status="error", reason=f"{exc.__class__.__name__}: {exc}")
        return entry, None
    entry["gate"] = gate.to_dict()
    entry["flagged"] = not gate.ok
    return entry, prep


def measure_case_op(case, op, variants, settings, progress=None):
    """Gate, then time every variant on one (case, op); returns entry dicts."""
    entries, preps = [], []
    for method, threads in variants:
        entry, prep = prepare_entry(method, threads, case, op, settings)
        entries.append(entry)
        preps.append(prep)
        if progress and entry["status"] == "error":  # the timings it will not run
            progress.step(n=1 if method.capped else max(1, settings.passes))
    timings = [None] * len(variants)
    load_cpu_s = [0.0] * len(variants)
    load_wall_s = [0.0] * len(variants)
    pass_medians = [[] for _ in variants]
    for p in range(max(1, settings.passes)):
        gc.collect()  # once per pass; the timed calls run with the collector off
        order = list(range(len(variants)))
        if p % 2:
            order.reverse()
        # jax last in every pass: after its (all-core, unthrottled) runs, cpool t2's
        # backward on the large shapes measured 10x slow for a whole pass when numba's
        # OpenMP layer had run in between (reproduced with --methods cpool,numba,jax;
        # not with any two of them); other variants' timings must not depend on it.
        order.sort(key=lambda i: variants[i][0].measured_last)
        for i in order:
            method, threads = variants[i]
            prep, entry = preps[i], entries[i]
            if prep is None:
                continue
            if method.capped and p > 0:
                continue
            if progress:
                progress.show(f"{case.name} {op} {entry['variant']}")
            try:
                _set_threads(method, threads)
                if settings.settle:
                    time.sleep(settings.settle)
                cfg = _timing_config(settings, method.capped, entry["first_call_s"] or 0.0)
                meter = H.LoadMeter().start()
                t = H.time_call(prep.call, cfg)
                load = meter.stop()
                if load is not None:
                    load_cpu_s[i] += load * t.elapsed
                    load_wall_s[i] += t.elapsed
            except Exception as exc:
                entry.update(status="error", reason=f"{exc.__class__.__name__}: {exc}")
                preps[i] = None
                continue
            pass_medians[i].append(t.median)
            timings[i] = t if timings[i] is None else timings[i].merged(t)
            if progress:
                progress.step(f"{case.name} {op} {entry['variant']}")
    for i, entry in enumerate(entries):
        t = timings[i]
        if t is None or entry["status"] != "ok":
            continue
        factor = entry["extrapolated"]["factor"] if entry["extrapolated"] else 1.0
        summ = t.summary()
        for k in ("median_s", "min_s", "q1_s", "q3_s"):
            summ[k] *= factor
        entry.update(summ)
        entry["pass_medians_s"] = [m * factor for m in pass_medians[i]]
        step = max(1, math.ceil(t.count / MAX_STORED_SAMPLES))  # keep results.json small
        entry["samples_s"] = [s * factor for s in t.samples[::step]]
        entry["samples_stride"] = step
        # /proc/stat counts in 10 ms ticks: too coarse for shorter timings.
        entry["background_cpus"] = load_cpu_s[i] / load_wall_s[i] if load_wall_s[i] >= 0.1 else None
    return entries


def count_jobs(cases, ops, variants, methods_passes):
    n = 0
    for case in cases:
        for op in ops:
            for method, _ in variants:
                if method.reason_unsupported(case, op) is None:
                    n += 1 if method.capped else methods_passes
    return n


def run(settings: Settings, methods=None, log=print) -> dict:
    """Run the benchmark; returns the results dict (also written to disk by main)."""
    import cpool

    methods = methods if methods is not None else M.get_methods(settings.methods)
    for m in methods:
        if not m.available:
            log(f"[bench] skipping {m.name}: {m.note}")
        for w in m.warnings:
            log(f"[bench] note: {w}")
    variants = make_variants(methods, settings.threads)

    machine = H.machine_facts()
    machine["cpool"] = _cpool_facts(cpool)
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    t_run = time.perf_counter()

    log(f"[bench] measuring memory bandwidth ({settings.bandwidth_mb:g} MiB arrays, threads {settings.threads})")
    bandwidth = H.measure_bandwidth(settings.threads, settings.bandwidth_mb, repeats=3 if settings.quick else 7)

    cases = []
    for spec in settings.shapes:
        cases.append(M.make_case(spec["name"], spec["shape"], spec["kernel"], spec["stride"], spec["padding"],
                                 spec["dilation"], spec["ceil_mode"], spec["dtype"], seed=settings.seed))
    reference_check = _reference_vs_torch(cases, methods)

    run_meter = H.LoadMeter().start()
    progress = Progress(count_jobs(cases, settings.ops, variants, max(1, settings.passes)), settings.progress)
    entries = []
    try:
        for case in cases:
            for op in settings.ops:
                entries += measure_case_op(case, op, variants, settings, progress)
    finally:
        progress.close()
        for m in methods:  # back to the libraries' defaults
            if m.available and m.set_threads is not None:
                try:
                    m.set_threads(H.available_cpus())
                except Exception:
                    pass
        try:
            cpool.set_num_threads(None)
        except Exception:
            pass

    machine["background_cpus"] = run_meter.stop()
    machine.update(_peer_versions(methods))
    cpus = H.available_cpus()
    for e in entries:
        if e.get("median_s") is None:
            continue
        case = next(c for c in cases if c.name == e["shape"])
        t = e["threads"] or (cpus if e["method"] == "jax" else 1)
        bw = bandwidth["copy"].get(t) or bandwidth["copy"][max(bandwidth["copy"])]
        e["roofline"] = H.roofline(H.op_bytes(e["op"], case.in_elems, case.out_elems, case.itemsize), bw, e["median_s"])

    results = {
        "schema": R.SCHEMA,
        "created": started,
        "duration_s": None,
        "argv": sys.argv[1:],
        "settings": _settings_dict(settings),
        "machine": machine,
        "bandwidth": {"size_mb": bandwidth["size_mb"],
                      "copy_Bps": {str(k): v for k, v in bandwidth["copy"].items()},
                      "read_Bps": {str(k): v for k, v in bandwidth["read"].items()}},
        "shapes": [dict(c.meta(), bytes={op: H.op_bytes(op, c.in_elems, c.out_elems, c.itemsize) for op in M.OPS},
                        fits_l3=_fits_l3(c, machine)) for c in cases],
        "ops": {op: M.OP_TITLES[op] for op in settings.ops},
        "methods": {m.name: {"available": m.available, "description": m.description, "note": m.note,
                             "version": m.version, "threaded": m.threaded, "warnings": m.warnings}
                    for m in methods},
        "reference": reference_check,
        "entries": entries,
    }
    R.add_derived(results)
    results["duration_s"] = time.perf_counter() - t_run
    return results


def _fits_l3(case, machine):
    l3 = machine.get("l3_bytes")
    if not l3:
        return None
    return H.op_bytes("fwd_idx", case.in_elems, case.out_elems, case.itemsize) <= l3


def _settings_dict(s: Settings) -> dict:
    d = asdict(s)
    d["shapes"] = [sp["name"] for sp in s.shapes]
    return d


def _cpool_facts(cpool) -> dict:
    facts = {"version": getattr(cpool, "__version__", None), "backend": getattr(cpool, "backend", None),
             "file": getattr(cpool, "__file__", None),
             "installed_by_this_run": bool(os.environ.get("CPOOL_BENCH_INSTALLED"))}
    if hasattr(cpool, "config"):
        try:
            facts.update({k: v for k, v in cpool.config().items() if k not in facts or facts[k] is None})
        except Exception as exc:
            facts["config_error"] = repr(exc)
    elif hasattr(cpool, "show_config"):
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            cpool.show_config()
        facts["show_config"] = buf.getvalue()
    return facts


def _peer_versions(methods) -> dict:
    out = {}
    for m in methods:
        if m.name in ("torch", "numba", "jax"):
            out[m.name] = m.version if m.available else None
    if out.get("torch"):
        import torch
        out["torch_threads_default"] = torch.get_num_threads()
    if out.get("numba"):
        try:
            import numba
            out["numba_threading_layer"] = numba.threading_layer()  # known once a parallel kernel ran
        except Exception:
            out["numba_threading_layer"] = None
    return out


def _reference_vs_torch(cases, methods):
    """Check the reference itself (cpool.slow) against torch, when present."""
    if not any(m.name == "torch" and m.available for m in methods):
        return {"implementation": "cpool.slow", "torch_agrees": None}
    import torch
    import torch.nn.functional as F

    bad = []
    for c in cases:
        x = torch.from_numpy(c.x)
        v, i = F.max_pool2d(x, *[list(a) if isinstance(a, tuple) else a for a in c.pool_args()], return_indices=True)
        g = H.compare({"values": v.numpy(), "indices": i.numpy()}, c.ref)
        if not g.ok:
            bad.append(f"{c.name}: {g.detail}")
    return {"implementation": "cpool.slow", "torch_agrees": not bad, "mismatches": bad}


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def build_parser():
    p = argparse.ArgumentParser(
        prog="python bench/bench.py",
        description="Benchmark cpool's max pooling (forward, forward with indices, backward, training step) "
                    "against the question's loop, the NumPy answer, cpool's NumPy fallback, torch, numba and jax. "
                    "Writes results.json, results.md and speedup.png to --out.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  python bench/bench.py                       full run (several minutes)\n"
               "  python bench/bench.py --quick --out /tmp/b  smoke run, under a minute\n"
               "  python bench/bench.py --shapes mnist-conv,8x3x32x32:k3:s1:p1 --methods cpool,torch "
               "--threads 1,2 --ops fwd_idx,bwd\n\n"
               "Peers that are not installed are skipped with a note: pip install torch==" + M.TORCH_PIN
               + " / numba / jax jaxlib / matplotlib (chart).",
    )
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: shapes {','.join(QUICK_SHAPES)}, all operations, few repeats (< 1 min)")
    p.add_argument("--shapes", default=None,
                   help="comma-separated shape names (" + ", ".join(SHAPES) + ") or specs "
                        "NxCxHxW[:kK][:sS][:pP][:dD][:ceil][:float64] (kernel 2, stride = kernel unless given); "
                        "default: all named shapes")
    p.add_argument("--methods", default=",".join(M.METHOD_NAMES),
                   help="comma-separated methods to run (default: all: " + ",".join(M.METHOD_NAMES) + ")")
    p.add_argument("--ops", default=",".join(M.OPS), help="comma-separated operations (default: all): " + "; ".join(
        f"{k} = {v}" for k, v in M.OP_TITLES.items()))
    p.add_argument("--threads", default="1,all",
                   help="thread counts for cpool/torch/numba, comma-separated ints or 'all' "
                        f"(default 1,all; this machine: {H.available_cpus()} CPUs)")
    p.add_argument("--out", default=str(HERE / "results"), help="output folder (default bench/results)")
    p.add_argument("--repeat", type=int, default=None, help="minimum timed samples per measurement (default 20; quick 5)")
    p.add_argument("--min-time", type=float, default=None, help="minimum seconds per measurement (default 0.5; quick 0.02)")
    p.add_argument("--max-time", type=float, default=None, help="stop a measurement after this many seconds (default 6)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up calls before timing (default 3; quick 1)")
    p.add_argument("--passes", type=int, default=None,
                   help="passes over the methods, every other one in reverse order (default 2; quick 1)")
    p.add_argument("--loop-cap", type=float, default=None,
                   help="seconds one call of the loop method may take; the batch is cut to fit and the time "
                        "extrapolated per image (default 0.5; quick 0.05)")
    p.add_argument("--bandwidth-mb", type=float, default=None,
                   help="array size for the bandwidth measurement, MiB (default 256; quick 32)")
    p.add_argument("--settle", type=float, default=None,
                   help="seconds to pause before each timing so other libraries' OpenMP threads stop spinning "
                        "(default 0.05; quick 0.01)")
    p.add_argument("--seed", type=int, default=0, help="random seed for the input data (default 0)")
    p.add_argument("--no-chart", action="store_true", help="do not draw speedup.png")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-build", action="store_true",
                   help="never run pip install, benchmark whatever cpool is installed")
    p.add_argument("--rebuild", action="store_true", help="reinstall cpool from this tree before measuring")
    return p


def settings_from_args(args) -> Settings:
    shape_names = args.shapes.split(",") if args.shapes else list(QUICK_SHAPES if args.quick else DEFAULT_SHAPES)
    shapes = [parse_shape(t) for t in shape_names if t.strip()]
    methods = [t.strip() for t in args.methods.split(",") if t.strip()]
    for name in methods:
        if name not in M.METHOD_NAMES:
            raise ValueError(f"unknown method {name!r}; known: {', '.join(M.METHOD_NAMES)}")
    ops = [t.strip() for t in args.ops.split(",") if t.strip()]
    for op in ops:
        if op not in M.OPS:
            raise ValueError(f"unknown operation {op!r}; known: {', '.join(M.OPS)}")
    s = Settings(shapes=shapes, methods=methods, ops=ops, threads=parse_threads(args.threads), out=args.out,
                 quick=args.quick, seed=args.seed, chart=not args.no_chart, progress=not args.no_progress)
    if args.quick:
        s.repeat, s.min_time, s.max_time, s.warmup, s.passes = 5, 0.02, 1.0, 1, 1
        s.loop_cap, s.loop_repeat, s.settle, s.bandwidth_mb = 0.05, 1, 0.01, 32
    for name in ("repeat", "min_time", "max_time", "warmup", "passes", "loop_cap", "bandwidth_mb", "settle"):
        v = getattr(args, name)
        if v is not None:
            setattr(s, name, v)
    if s.repeat < 1 or s.passes < 1 or s.min_time < 0:
        raise ValueError("--repeat and --passes must be >= 1, --min-time >= 0")
    return s


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    ensure_cpool(argv, no_build=args.no_build, rebuild=args.rebuild)
    try:
        import cpool  # noqa: F401
    except Exception as exc:
        print(f"[bench] cannot import cpool ({exc}); install it with python -m pip install {REPO}", file=sys.stderr)
        return 2

    results = run(settings)
    results["argv"] = argv
    R.validate_results(results)
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    text = R.render_terminal(results)
    print(text)
    paths = R.write_outputs(results, out, chart=settings.chart, log=print)
    print("[bench] wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
