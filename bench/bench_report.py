"""Reporting for the cpool benchmark: derived figures (speed-ups, summary
lines, MNIST-epoch seconds), the terminal tables, results.md, results.json,
the chart, and the JSON schema check."""

from __future__ import annotations

import json
import math
from pathlib import Path

SCHEMA = "cpool-bench/1"
MNIST_SHAPES = ("mnist-conv", "mnist-first")  # shapes the per-epoch figure is given for, in preference order
MNIST_IMAGES = 60_000
EPOCH_METHODS = ("loop", "numpy-answer", "cpool-numpy", "cpool", "torch")
OP_SHORT = {"fwd": "forward, values only", "fwd_idx": "forward with indices", "bwd": "backward",
            "step": "training step (forward with indices + backward)"}
BUSY_CPUS = 0.25  # other processes using more CPUs than this during a timing: marked

# --------------------------------------------------------------------------
# Derived figures
# --------------------------------------------------------------------------


def _ok(e):
    return e.get("status") == "ok" and isinstance(e.get("median_s"), (int, float)) and math.isfinite(e["median_s"])


def _index(results):
    return {(e["shape"], e["op"], e["variant"]): e for e in results["entries"]}


def thread_counts(results):
    return list(results["settings"]["threads"])


def choose_baseline(results):
    """torch at the most threads when it was measured, else the loop."""
    tmax = max(thread_counts(results))
    variants = {e["variant"] for e in results["entries"] if _ok(e)}
    for cand in (f"torch t{tmax}", "loop"):
        if cand in variants:
            return cand
    return None


def mnist_shape(results):
    names = [s["name"] for s in results["shapes"]]
    for n in MNIST_SHAPES:
        if n in names:
            return n
    return names[0] if names else None


def _fmt_x(r):
    if r is None or not math.isfinite(r):
        return "n/a"
    if r >= 100:
        return f"{r:.0f}x"
    if r >= 10:
        return f"{r:.1f}x"
    return f"{r:.2f}x"


def summary_lines(results):
    """One line per operation: cpool against the baseline on the MNIST shape."""
    idx = _index(results)
    shape = mnist_shape(results)
    if shape is None:
        return []
    desc = next(s["description"] for s in results["shapes"] if s["name"] == shape)
    where = "the MNIST shape" if shape in MNIST_SHAPES else "shape"
    threads = thread_counts(results)
    tmax = max(threads)
    has_torch = any(e["method"] == "torch" and _ok(e) for e in results["entries"])
    lines = []
    for op in results["ops"]:
        if has_torch:
            c = idx.get((shape, op, f"cpool t{tmax}"))
            b = idx.get((shape, op, f"torch t{tmax}"))
            peer = f"torch ({tmax} thread{'s' if tmax > 1 else ''})"
        else:
            c = idx.get((shape, op, f"cpool t{tmax}"))
            b = idx.get((shape, op, "loop"))
            peer = "the loop (torch not installed)"
        if not (c and b and _ok(c) and _ok(b)):
            lines.append(f"{op}: cpool vs {peer} on {where} ({desc}): not measured")
            continue
        r = b["median_s"] / c["median_s"]
        word = f"{_fmt_x(r)} faster than" if r >= 1 else f"{_fmt_x(1 / r)} slower than"
        line = (f"{op}: cpool is {word} {peer} on {where} ({desc}): "
                f"{fmt_ms(c['median_s'])} ms vs {fmt_ms(b['median_s'])} ms")
        if has_torch and tmax != 1:
            c1, b1 = idx.get((shape, op, "cpool t1")), idx.get((shape, op, "torch t1"))
            if c1 and b1 and _ok(c1) and _ok(b1):
                line += f"; 1 thread: {_fmt_x(b1['median_s'] / c1['median_s'])}"
        if c.get("flagged") or b.get("flagged"):
            line += " [FLAGGED: outputs differ from the reference]"
        if _busy(c) or _busy(b):
            line += " [measured while other processes were busy]"
        lines.append(line)
    return lines


def mnist_epoch(results):
    """Seconds of max pooling per MNIST epoch (60,000 images): forward with
    indices + backward of one pooling layer of the given shape, i.e. the
    ``step`` time (else fwd_idx + bwd) divided by the batch, times 60,000."""
    idx = _index(results)
    tmax = max(thread_counts(results))
    out = []
    for s in results["shapes"]:
        if s["name"] not in MNIST_SHAPES:
            continue
        N = s["shape"][0]
        rows = []
        variants = []
        for m in EPOCH_METHODS:
            if m in ("cpool", "torch"):
                variants += [f"{m} t{t}" for t in sorted({1, tmax})]
            else:
                variants.append(m)
        for v in variants:
            e = idx.get((s["name"], "step", v))
            how = "step"
            if e is not None and _ok(e):
                t = e["median_s"]
                flagged = e.get("flagged", False)
                extrap = e.get("extrapolated")
                busy = _busy(e)
            else:
                a, b = idx.get((s["name"], "fwd_idx", v)), idx.get((s["name"], "bwd", v))
                if not (a and b and _ok(a) and _ok(b)):
                    continue
                t = a["median_s"] + b["median_s"]
                how = "fwd_idx+bwd"
                flagged = a.get("flagged") or b.get("flagged")
                extrap = a.get("extrapolated") or b.get("extrapolated")
                busy = _busy(a) or _busy(b)
            rows.append({"variant": v, "per_batch_s": t, "per_image_s": t / N,
                         "epoch_s": t / N * MNIST_IMAGES, "from": how, "flagged": bool(flagged),
                         "extrapolated": extrap, "busy": bool(busy)})
        if rows:
            out.append({"shape": s["name"], "description": s["description"], "batch": N,
                        "images": MNIST_IMAGES, "rows": rows})
    return out


def compile_times(results):
    """First-call time (JIT compile included) of numba and jax, per shape/op."""
    rows = []
    seen = set()
    for e in results["entries"]:
        if e["method"] not in ("numba", "jax") or e.get("first_call_s") is None:
            continue
        key = (e["method"], e["shape"], e["op"])
        if key in seen:
            continue
        seen.add(key)
        rows.append({"method": e["method"], "shape": e["shape"], "op": e["op"],
                     "first_call_s": e["first_call_s"], "median_s": e.get("median_s")})
    return rows


def add_derived(results):
    """Fill in speed-ups, summary lines, MNIST-epoch figures and compile times."""
    base = choose_baseline(results)
    results["baseline"] = base
    idx = _index(results)
    for e in results["entries"]:
        e["speedup_vs_baseline"] = None
        if base and _ok(e):
            b = idx.get((e["shape"], e["op"], base))
            if b and _ok(b):
                e["speedup_vs_baseline"] = b["median_s"] / e["median_s"]
    results["summary"] = summary_lines(results)
    results["mnist_epoch"] = mnist_epoch(results)
    results["compile"] = compile_times(results)
    return results


# --------------------------------------------------------------------------
# Schema check
# --------------------------------------------------------------------------

_TOP = {
    "schema": str, "created": str, "argv": list, "settings": dict, "machine": dict, "bandwidth": dict,
    "shapes": list, "ops": dict, "methods": dict, "reference": dict, "entries": list, "baseline": (str, type(None)),
    "summary": list, "mnist_epoch": list, "compile": list,
}
_ENTRY = {"shape": str, "op": str, "method": str, "variant": str, "status": str, "flagged": bool}
_TIMED = ("median_s", "min_s", "q1_s", "q3_s", "spread", "count", "samples_s", "pass_medians_s", "roofline",
          "speedup_vs_baseline", "gate")


def validate_results(results):
    """Raise ValueError when ``results`` does not follow the schema."""
    def fail(msg):
        raise ValueError(f"results do not match {SCHEMA}: {msg}")

    for key, typ in _TOP.items():
        if key not in results:
            fail(f"missing key {key!r}")
        if not isinstance(results[key], typ):
            fail(f"{key!r} has type {type(results[key]).__name__}")
    if results["schema"] != SCHEMA:
        fail(f"schema is {results['schema']!r}")
    for k in ("cpu_model", "available_cpus", "python", "numpy", "cpool"):
        if k not in results["machine"]:
            fail(f"machine facts lack {k!r}")
    for k in ("copy_Bps", "read_Bps"):
        if not results["bandwidth"].get(k):
            fail(f"bandwidth lacks {k!r}")
    shape_names = set()
    for s in results["shapes"]:
        for k in ("name", "description", "shape", "out_shape", "dtype", "kernel", "stride", "padding", "bytes"):
            if k not in s:
                fail(f"shape entry lacks {k!r}")
        shape_names.add(s["name"])
    for e in results["entries"]:
        for key, typ in _ENTRY.items():
            if not isinstance(e.get(key), typ):
                fail(f"entry {e.get('variant')}/{e.get('shape')}/{e.get('op')} key {key!r} missing or wrong type")
        if e["shape"] not in shape_names:
            fail(f"entry for unknown shape {e['shape']!r}")
        if e["op"] not in results["ops"]:
            fail(f"entry for unknown op {e['op']!r}")
        if e["status"] not in ("ok", "n/a", "error"):
            fail(f"bad status {e['status']!r}")
        if e["status"] == "ok":
            for k in _TIMED:
                if k not in e:
                    fail(f"timed entry {e['variant']}/{e['shape']}/{e['op']} lacks {k!r}")
            if not (e["median_s"] > 0):
                fail(f"non-positive median in {e['variant']}/{e['shape']}/{e['op']}")
            if not isinstance(e["gate"], dict) or "ok" not in e["gate"]:
                fail("gate result missing")
            if e["flagged"] == bool(e["gate"]["ok"]):
                fail("flagged must be the negation of gate.ok")
            for k in ("bytes", "bound_s", "fraction"):
                if k not in e["roofline"]:
                    fail(f"roofline lacks {k!r}")
    for row in results["mnist_epoch"]:
        for k in ("shape", "batch", "images", "rows"):
            if k not in row:
                fail(f"mnist_epoch row lacks {k!r}")
    json.dumps(results, default=_json_default)  # must serialise
    return True


# --------------------------------------------------------------------------
# Text tables
# --------------------------------------------------------------------------


def fmt_ms(seconds):
    if seconds is None or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "n/a"
    v = seconds * 1e3
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    if v >= 0.001:
        return f"{v:.3g}" if v >= 0.01 else f"{v:.4f}"
    return f"{v:.2e}"


def _variant_order(results):
    order = []
    for e in results["entries"]:
        if e["variant"] not in order:
            order.append(e["variant"])
    # group: single-thread methods, then by method and thread count
    def key(v):
        name, _, t = v.partition(" t")
        ranks = ["loop", "numpy-answer", "numpy-maxchain", "cpool-numpy", "cpool", "torch", "numba", "jax"]
        r = ranks.index(name) if name in ranks else len(ranks)
        return (r, int(t) if t.isdigit() else 0)
    return sorted(order, key=key)


def _cell_time(e, spread=True):
    if e is None:
        return ""
    if e["status"] == "n/a":
        return "n/a"
    if e["status"] == "error":
        return "error"
    text = fmt_ms(e["median_s"])
    if e.get("extrapolated"):
        text = "~" + text
    if spread and e.get("spread") is not None and math.isfinite(e["spread"]):
        text += f" ±{100 * e['spread'] / 2:.0f}%"
    if e.get("capped"):
        text += "*"
    if _busy(e):
        text += " b"
    if e.get("flagged"):
        text += " !"
    return text


def _busy(e):
    b = e.get("background_cpus")
    return b is not None and b > BUSY_CPUS


def _cell_ratio(e):
    if e is None or e["status"] != "ok":
        return "" if e is None else e["status"]
    r = e.get("speedup_vs_baseline")
    text = _fmt_x(r) if r is not None else "n/a"
    if e.get("flagged"):
        text += " !"
    return text


def _cell_roof(e):
    if e is None or e["status"] != "ok" or "roofline" not in e:
        return ""
    rf = e["roofline"]
    return f"{fmt_ms(rf['bound_s'])} / {100 * rf['fraction']:.0f}%"


def _table(header, rows, md=False):
    if md:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    fmt = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])


def op_tables(results, op, md=False):
    """(times table, speed-up table, cpool roofline table) for one operation."""
    idx = _index(results)
    shapes = [s["name"] for s in results["shapes"]]
    variants = [v for v in _variant_order(results) if any((s, op, v) in idx for s in shapes)]
    header = ["method"] + shapes
    times = [[v] + [_cell_time(idx.get((s, op, v))) for s in shapes] for v in variants]
    ratios = [[v] + [_cell_ratio(idx.get((s, op, v))) for s in shapes] for v in variants
              if v != results.get("baseline")]
    roof = [[v] + [_cell_roof(idx.get((s, op, v))) for s in shapes] for v in variants if v.startswith("cpool t")]
    return _table(header, times, md), _table(header, ratios, md), _table(header, roof, md) if roof else ""


def _gbs(bps):
    return f"{bps / 1e9:.1f} GB/s"


def header_lines(results):
    m = results["machine"]
    c = m.get("cpool", {})
    omp = c.get("openmp")
    peers = ", ".join(f"{k} {m[k]}" for k in ("torch", "numba", "jax") if m.get(k)) or "no peers installed"
    bw = results["bandwidth"]
    copy = ", ".join(f"{t} thr {_gbs(v)}" for t, v in bw["copy_Bps"].items())
    read = ", ".join(f"{t} thr {_gbs(v)}" for t, v in bw["read_Bps"].items())
    l3 = f", L3 {m['l3_bytes'] // 2**20} MiB" if m.get("l3_bytes") else ""
    return [
        f"machine: {m['cpu_model']}, {m['available_cpus']} CPUs{l3}; Python {m['python']}, numpy {m['numpy']}",
        f"cpool {c.get('version')} (backend {c.get('backend')}, OpenMP {'on' if omp else 'off' if omp is not None else '?'}"
        f", {c.get('num_threads', '?')} threads by default); {peers}",
        f"memory bandwidth ({bw['size_mb']:.0f} MiB arrays, numpy): copy {copy}; read {read}",
        "shapes: " + "; ".join(f"{s['name']} = {s['description']}" for s in results["shapes"]),
    ]


def legend_text(results):
    base = results.get("baseline")
    return (f"times: median ms ±half the interquartile range; ~ = loop timed on part of the batch and extrapolated "
            f"per image; * = stopped by --max-time before --repeat samples; b = other processes kept more than "
            f"{BUSY_CPUS} CPUs busy during that timing; ! = outputs differ from the reference "
            f"(timing flagged). speed-up = {base or 'baseline'} time / method time (>1 = faster). "
            f"roofline: (bytes read + written) / measured copy bandwidth at the same thread count, and the fraction "
            f"of that bound reached (can pass 100% when the data fit in cache).")


def mnist_lines(results, md=False):
    out = []
    for block in results["mnist_epoch"]:
        out.append(f"Max-pooling seconds per MNIST epoch ({block['images']:,} images), one pooling layer shaped like "
                   f"{block['shape']} = {block['description']}: forward with indices + backward, "
                   f"per image = batch time / {block['batch']}:")
        rows = []
        for r in block["rows"]:
            note = []
            if r["extrapolated"]:
                note.append(f"extrapolated from {r['extrapolated']['images']} of {r['extrapolated']['of']} images")
            if r["from"] != "step":
                note.append("fwd_idx + bwd")
            if r["flagged"]:
                note.append("FLAGGED")
            if r.get("busy"):
                note.append("b: machine busy")
            per = r["per_image_s"]
            per_text = f"{1e6 * per:.3g} µs" if per < 1e-3 else f"{fmt_ms(per)} ms"
            ep = r["epoch_s"]
            rows.append([r["variant"], f"{ep:,.0f} s" if ep >= 100 else f"{ep:.3g} s", per_text, "; ".join(note)])
        out.append(_table(["method", "s / epoch", "per image", "note"], rows, md))
    return out


def notes(results):
    lines = []
    for name, m in results["methods"].items():
        if not m["available"]:
            lines.append(f"skipped {name}: {m['note']}")
        for w in m.get("warnings", []):
            lines.append(f"note: {w}")
    ref = results.get("reference", {})
    if ref.get("torch_agrees") is True:
        lines.append("reference (cpool.slow) agrees with torch on values and indices for every shape")
    elif ref.get("torch_agrees") is False:
        lines.append("WARNING: the reference (cpool.slow) differs from torch: " + "; ".join(ref.get("mismatches", [])))
    for e in results["entries"]:
        if e["status"] == "error":
            lines.append(f"error: {e['variant']} {e['shape']} {e['op']}: {e['reason']}")
        elif e.get("flagged"):
            lines.append(f"MISMATCH: {e['variant']} {e['shape']} {e['op']}: {e['gate']['detail']}")
        elif e.get("gate") and not e["gate"].get("exact", True):
            lines.append(f"close, not exact: {e['variant']} {e['shape']} {e['op']}: {e['gate']['detail']}")
    timed = [e for e in results["entries"] if e["status"] == "ok"]
    busy = [e for e in timed if _busy(e)]
    run_load = results["machine"].get("background_cpus") or 0.0
    if busy or run_load > BUSY_CPUS:
        lines.append(f"WARNING: {len(busy)} of {len(timed)} timings ran while other processes kept more than "
                     f"{BUSY_CPUS} CPUs busy (marked b; whole run: "
                     f"{results['machine'].get('background_cpus') or 0:.2f} CPUs on average); multi-threaded "
                     f"figures are the most affected: rerun on an idle machine")
    if results["compile"]:
        parts = [f"{r['method']} {r['shape']} {r['op']} {fmt_ms(r['first_call_s'])} ms" for r in results["compile"]
                 if r["median_s"] and r["first_call_s"] > 5 * r["median_s"] and r["first_call_s"] > 1e-3]
        if parts:
            lines.append("first call incl. JIT compile (excluded from the timings): " + "; ".join(parts))
    return lines


# The performance targets of issue 4, checked against this run: torch time /
# cpool time at the same thread count, each thread count measured.
# (label, op, shapes, at least this many times faster than torch)
SPEED_TARGETS = (
    ("forward with int64 indices, k2 s2", "fwd_idx", ("mnist-conv", "mnist-first", "14x14x64", "large"), 10),
    ("forward with indices, ResNet stem", "fwd_idx", ("resnet-stem",), 4),
    ("forward, values only", "fwd", ("mnist-conv", "mnist-first", "14x14x64", "large", "resnet-stem"), 15),
    ("backward, 28x28", "bwd", ("mnist-conv", "mnist-first"), 3),
    ("backward, other shapes", "bwd", ("14x14x64", "resnet-stem", "large"), 2),
    ("Module training step", "step", ("mnist-conv",), 10),
)
ROOFLINE_TARGET = (("resnet-stem", "large"), ("fwd", "fwd_idx", "bwd"), 0.5)


def target_rows(results):
    """[target, asked, this run, verdict] rows; empty without torch or cpool."""
    idx = _index(results)
    threads = thread_counts(results)
    names = {s["name"] for s in results["shapes"]}

    def ok(shape, op, variant):
        e = idx.get((shape, op, variant))
        return e if e is not None and _ok(e) else None

    if not any(ok(sh, op, "torch t1") for sh in names for op in results["ops"]):
        return []
    rows = []

    def verdict(parts, good):
        if not parts:
            return None
        return "met" if all(good) else "**not met**"

    for label, op, shapes, want in SPEED_TARGETS:
        parts, good = [], []
        for sh in shapes:
            if sh not in names or op not in results["ops"]:
                continue
            pairs = [(ok(sh, op, f"cpool t{t}"), ok(sh, op, f"torch t{t}")) for t in threads]
            if not all(c and b for c, b in pairs):
                continue  # not measured (not asked for, or it failed: the tables say which)
            rs = [b["median_s"] / c["median_s"] for c, b in pairs]
            good += [r >= want for r in rs]
            parts.append(f"{sh} " + " / ".join(_fmt_x(r) for r in rs))
        v = verdict(parts, good)
        if v:
            rows.append([label, f"{want}x torch", "; ".join(parts), v])
    if "fwd" in results["ops"]:
        parts, good = [], []
        for sh in ("mnist-conv", "mnist-first", "14x14x64", "large", "resnet-stem"):
            rivals = [e for e in (ok(sh, "fwd", "jax"), ok(sh, "fwd", "numpy-maxchain")) if e]
            mine = [ok(sh, "fwd", f"cpool t{t}") for t in threads]
            if sh not in names or not rivals or not all(mine):
                continue
            best_rival = min(e["median_s"] for e in rivals)
            worst_mine = max(e["median_s"] for e in mine)
            good.append(worst_mine < best_rival)
            parts.append(f"{sh} {best_rival / worst_mine:.1f}x")
        v = verdict(parts, good)
        if v:
            rows.append(["forward, values only", "faster than jax and numpy-maxchain",
                         "; ".join(parts) + " (fastest rival / slowest cpool)", v])
    if "tiny" in names:
        parts, good = [], []
        for op in results["ops"]:
            pairs = [(ok("tiny", op, f"cpool t{t}"), ok("tiny", op, f"torch t{t}")) for t in threads]
            if not all(c and b for c, b in pairs):
                continue
            good += [c["median_s"] <= b["median_s"] for c, b in pairs]
            parts.append(f"{op} " + " / ".join(_fmt_x(b["median_s"] / c["median_s"]) for c, b in pairs))
        v = verdict(parts, good)
        if v:
            rows.append(["latency, 1x1x28x28", "no slower than torch", "; ".join(parts), v])
    shapes, ops, frac = ROOFLINE_TARGET
    parts, good = [], []
    for sh in shapes:
        for op in ops:
            es = [ok(sh, op, f"cpool t{t}") for t in threads]
            if sh not in names or op not in results["ops"] or not all(e and "roofline" in e for e in es):
                continue
            fr = [e["roofline"]["fraction"] for e in es]
            good += [f >= frac for f in fr]
            parts.append(f"{sh} {op} " + " / ".join(f"{100 * f:.0f}%" for f in fr))
    v = verdict(parts, good)
    if v:
        rows.append(["DRAM-bound shapes", f"within 2x of the roofline bound (>= {100 * frac:.0f}%)",
                     "; ".join(parts), v])
    sh = "mnist-conv" if "mnist-conv" in names else None
    fb, loop, t1 = (ok(sh, "fwd_idx", v) for v in ("cpool-numpy", "loop", "torch t1")) if sh else (None,) * 3
    if fb and loop and t1:
        r = loop["median_s"] / fb["median_s"]
        rows.append(["NumPy fallback, forward with indices", "200x the loop, no slower than torch t1",
                     f"{sh} {_fmt_x(r)} the loop; {fmt_ms(fb['median_s'])} ms vs torch t1 {fmt_ms(t1['median_s'])} ms",
                     "met" if r >= 200 and fb["median_s"] <= t1["median_s"] else "**not met**"])
    return rows


def targets_text(results, md=False):
    rows = target_rows(results)
    if not rows:
        return ""
    t = " / ".join(f"t{n}" for n in thread_counts(results))
    head = ["target", "asked", f"this run (torch ÷ cpool at {t}, same thread count)", "verdict"]
    if not md:  # the markdown layout reads well in a terminal too; only the bold goes
        rows = [[c.replace("**", "") for c in r] for r in rows]
    return _table(head, rows, md=True)


def render_terminal(results):
    out = [f"cpool benchmark ({results['created']}, {results.get('duration_s') or 0:.0f} s)"]
    out += header_lines(results)
    out.append(legend_text(results))
    for op in results["ops"]:
        t, r, roof = op_tables(results, op)
        out += ["", f"== {op}: {results['ops'][op]} ==", "median ms:", t]
        if results.get("baseline"):
            out += [f"speed-up over {results['baseline']}:", r]
        if roof:
            out += ["cpool roofline (bound ms / fraction reached):", roof]
    out += [""] + mnist_lines(results)
    targets = targets_text(results)
    if targets:
        out += ["", "Performance targets (issue 4):", targets]
    out += ["", "Summary:"] + results["summary"]
    n = notes(results)
    if n:
        out += ["", "Notes:"] + n
    return "\n".join(out)


def render_markdown(results):
    m = results["machine"]
    out = ["# cpool benchmark results", "",
           f"Run {results['created']} in {results.get('duration_s') or 0:.0f} s: `python bench/bench.py "
           + " ".join(results["argv"]) + "`", ""]
    out += ["## Summary", ""] + [f"- {line}" for line in results["summary"]] + [""]
    targets = targets_text(results, md=True)
    if targets:
        out += ["## Performance targets", "",
                "The targets of issue 4, checked against this run: times faster than torch at the same thread "
                "count, every thread count measured; roofline fractions as in the tables below.", "",
                targets, ""]
    out += ["## Machine", ""] + [f"- {line}" for line in header_lines(results)]
    out += [f"- platform: {m.get('platform')}; transparent hugepages: {m.get('transparent_hugepage')}"]
    if m.get("env"):
        out += [f"- environment: {m['env']}"]
    out += ["", legend_text(results), ""]
    for op in results["ops"]:
        t, r, roof = op_tables(results, op, md=True)
        out += [f"## {op}: {results['ops'][op]}", "", "Median ms:", "", t, ""]
        if results.get("baseline"):
            out += [f"Speed-up over {results['baseline']}:", "", r, ""]
        if roof:
            out += ["cpool roofline (bound ms / fraction of it reached):", "", roof, ""]
    out += ["## MNIST epoch", ""]
    for line in mnist_lines(results, md=True):
        out += [line, ""]
    out += ["## Methods", ""]
    for name, meth in results["methods"].items():
        v = f" {meth['version']}" if meth.get("version") else ""
        state = meth["description"] if meth["available"] else f"skipped: {meth['note']}"
        out.append(f"- **{name}**{v}: {state}")
    out += ["", "## Bytes moved per call (roofline numerator)", ""]
    ops = list(results["ops"])
    rows = [[s["name"]] + [f"{s['bytes'][op] / 1e6:.2f} MB" for op in ops]
            + ["yes" if s.get("fits_l3") else "no" if s.get("fits_l3") is False else "?"] for s in results["shapes"]]
    out += [_table(["shape"] + ops + ["fits L3"], rows, md=True), ""]
    n = notes(results)
    if n:
        out += ["## Notes", ""] + [f"- {line}" for line in n] + [""]
    return "\n".join(out)


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def _json_default(o):
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    return str(o)


def _clean(o):
    """NaN/inf -> None so that the JSON is strict."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def write_outputs(results, out_dir, chart=True, log=print):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    p = out_dir / "results.json"
    p.write_text(json.dumps(_clean(json.loads(json.dumps(results, default=_json_default))), indent=1,
                            allow_nan=False) + "\n")
    paths.append(p)
    p = out_dir / "results.md"
    p.write_text(render_markdown(results) + "\n")
    paths.append(p)
    if chart:
        try:
            p = draw_chart(results, out_dir / "speedup.png")
        except ImportError:
            log("[bench] matplotlib is not installed, no chart drawn (pip install matplotlib)")
        else:
            if p is not None:
                paths.append(p)
    return paths


def draw_chart(results, path):
    """Speed-up over the baseline per shape and operation (log scale), one
    panel per operation, one bar per method variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = results.get("baseline")
    if not base:
        return None
    idx = _index(results)
    shapes = [s["name"] for s in results["shapes"]]
    ops = list(results["ops"])
    variants = [v for v in _variant_order(results) if v != base
                and any(idx.get((s, op, v)) and idx[(s, op, v)].get("speedup_vs_baseline") for s in shapes for op in ops)]
    if not variants:
        return None
    palette = {"loop": "#7f7f7f", "numpy-answer": "#bcbd22", "numpy-maxchain": "#17becf", "cpool-numpy": "#9467bd",
               "cpool": "#d62728", "torch": "#1f77b4", "numba": "#2ca02c", "jax": "#ff7f0e"}
    ncols = 2 if len(ops) > 1 and len(shapes) <= 3 else 1
    nrows = math.ceil(len(ops) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(10, 1.8 * len(shapes) * ncols + 1.5), 3.6 * nrows + 1.8),
                             squeeze=False)
    tmax = max(thread_counts(results))
    label_variant = f"cpool t{tmax}"
    width = 0.8 / len(variants)
    for k, op in enumerate(ops):
        ax = axes[k // ncols][k % ncols]
        for j, v in enumerate(variants):
            name, _, t = v.partition(" t")
            xs, ys, flagged = [], [], []
            for i, s in enumerate(shapes):
                e = idx.get((s, op, v))
                if e and e.get("speedup_vs_baseline"):
                    xs.append(i - 0.4 + (j + 0.5) * width)
                    ys.append(e["speedup_vs_baseline"])
                    flagged.append(bool(e.get("flagged")))
            if not xs:
                continue
            single = t == "1" and len(thread_counts(results)) > 1
            bars = ax.bar(xs, ys, width * 0.92, color=palette.get(name, "#8c564b"), alpha=0.45 if single else 1.0,
                          hatch="//" if single else None, edgecolor="black", linewidth=0.4, label=v)
            for b, f in zip(bars, flagged):
                if f:
                    b.set_edgecolor("red")
                    b.set_linewidth(2)
            if v == label_variant:
                for x, y in zip(xs, ys):
                    ax.annotate(_fmt_x(y), (x, y), xytext=(0, 2), textcoords="offset points", ha="center",
                                va="bottom", fontsize=7, fontweight="bold", color="#b01010")
        ax.axhline(1.0, color="black", linewidth=1)
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi * 2.0)  # room for the labels
        ax.set_xticks(range(len(shapes)))
        descs = {sh["name"]: sh["description"] for sh in results["shapes"]}
        ax.set_xticklabels([f"{sh}\n{descs.get(sh, '')}" for sh in shapes], rotation=0, fontsize=7)
        ax.set_title(f"{op}: {OP_SHORT.get(op, op)}", fontsize=10, loc="left")
        ax.margins(x=0.01)
        ax.set_ylabel(f"speed-up over {base}")
        ax.grid(axis="y", which="major", alpha=0.3)
    for k in range(len(ops), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    handles, labels = [], []
    for row in axes:
        for ax in row:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
    order = sorted(range(len(labels)), key=lambda i: variants.index(labels[i]))
    fig.legend([handles[i] for i in order], [labels[i] for i in order], loc="lower center",
               ncol=min(len(labels), 6), fontsize=9, frameon=False)
    m = results["machine"]
    fig.suptitle(f"Speed-up over {base} (log scale; above 1 = faster than {base}; hatched = 1 thread; "
                 f"labels: {label_variant})\n{m['cpu_model']}, {m['available_cpus']} CPUs, numpy {m['numpy']}, "
                 f"{results['created']}", fontsize=10)
    # fixed margins (tight_layout takes seconds on a slow machine)
    legend_h = 0.35 + 0.22 * math.ceil(len(labels) / 6)  # inches
    fig_h = fig.get_figheight()
    fig.subplots_adjust(left=0.07, right=0.98, top=1 - 0.75 / fig_h, bottom=(legend_h + 0.55) / fig_h,
                        hspace=0.5, wspace=0.18)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
