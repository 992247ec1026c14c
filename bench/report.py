"""What a benchmark run means: speed-ups, summary lines, the MNIST-epoch table and the performance targets
(derive), and the outputs: terminal text, results.md, results.json, speedup.png."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cases as C
from methods import METHOD_NAMES

BUSY_LOAD = 0.5  # a 1-minute load average above this before the run: other processes were using the CPUs


def fmt_ms(seconds):
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "n/a"
    return f"{seconds * 1e3:,.0f}" if seconds >= 0.1 else f"{seconds * 1e3:.3g}"


def fmt_x(r):
    return "n/a" if r is None or not math.isfinite(r) else f"{r:,.0f}x" if r >= 100 else f"{r:.3g}x"


def timed(e):
    return e if e and isinstance(e.get("median_s"), float) and math.isfinite(e["median_s"]) else None


def index(results):
    return {(e["shape"], e["op"], e["variant"]): e for e in results["entries"]}


def med(idx, *key):
    """The median of a timed entry, else None."""
    return (timed(idx.get(key)) or {}).get("median_s")


def variants(results):
    """Variant names in table order: by method, then by thread count."""
    seen = {(e["method"], e["threads"] or 0): e["variant"] for e in results["entries"]}
    return [seen[k] for k in sorted(seen, key=lambda k: (METHOD_NAMES.index(k[0]) if k[0] in METHOD_NAMES else 99,
                                                          k[1]))]


# ---- derived figures ----------------------------------------------------------------------------

def summary_lines(results, idx, tmax):
    """Per op, cpool at the most threads against torch at as many (else the loop), on an MNIST shape."""
    names = [s["name"] for s in results["shapes"]]
    shape = next((n for n in C.MNIST_SHAPES if n in names), names[0])
    where = f"{shape} ({results['shapes'][names.index(shape)]['description']})"
    torch = any(e["method"] == "torch" and timed(e) for e in results["entries"])
    peer, rival = (f"torch ({tmax} thread{'s' * (tmax > 1)})", f"torch t{tmax}") if torch else ("the loop", "loop")
    lines = []
    for op in results["ops"]:
        c, b = med(idx, shape, op, f"cpool t{tmax}"), med(idx, shape, op, rival)
        if not (c and b):
            lines.append(f"{op}: cpool vs {peer} on {where}: not measured")
            continue
        fast = f"{fmt_x(b / c)} faster" if b >= c else f"{fmt_x(c / b)} slower"
        line = f"{op}: cpool is {fast} than {peer} on {where}: {fmt_ms(c)} ms vs {fmt_ms(b)} ms"
        c1, b1 = med(idx, shape, op, "cpool t1"), med(idx, shape, op, "torch t1")
        lines.append(line + (f"; 1 thread: {fmt_x(b1 / c1)}" if torch and tmax > 1 and c1 and b1 else ""))
    return lines


def mnist_epoch(results, idx):
    """Seconds of max pooling per 60,000-image epoch for one pooling layer of each MNIST shape: the step
    time (else fwd_idx + bwd) / batch * 60,000."""
    out = []
    for s in (s for s in results["shapes"] if s["name"] in C.MNIST_SHAPES):
        rows = []
        for v in variants(results):
            parts = [timed(idx.get((s["name"], "step", v)))]
            parts = parts if parts[0] else [timed(idx.get((s["name"], op, v))) for op in ("fwd_idx", "bwd")]
            if all(parts):
                per_image = sum(e["median_s"] for e in parts) / s["shape"][0]
                rows.append({"variant": v, "per_image_s": per_image, "epoch_s": per_image * C.MNIST_IMAGES,
                             "from": "+".join(e["op"] for e in parts),
                             "extrapolated": any(e["extrapolated"] for e in parts)})
        if rows:
            out.append({"shape": s["name"], "description": s["description"], "batch": s["shape"][0], "rows": rows})
    return out


def target_rows(results, idx=None):
    """[target, asked, this run, verdict] for each target in cases.TARGETS that this run measured."""
    idx, rows = idx or index(results), []
    for label, asked, ops, shapes, checks in C.TARGETS:
        parts, good = [], []
        for sh, op, (mine, rival, want) in ((sh, op, c) for sh in shapes for op in ops for c in checks):
            ts = results["settings"]["threads"] if "{t}" in mine + rival else [None]
            es = [timed(idx.get((sh, op, mine.format(t=t)))) for t in ts]
            rs = [e and e.get("roofline", {}).get("bound_s") if rival == "roofline" else med(idx, sh, op, rival.format(
                t=t)) for e, t in zip(es, ts)]
            if not all(es) or not all(rs):
                continue  # not measured: not asked for, or failed (the tables say which)
            ratios = [r / e["median_s"] for r, e in zip(rs, es)]
            good += [r >= want for r in ratios]
            what = sh + f" {op}" * (len(ops) > 1) + f" vs {rival.replace(' t{t}', '')}" * (len(checks) > 1)
            shown = [f"{100 * r:.0f}%" if rival == "roofline" else fmt_x(r) for r in ratios]
            parts.append(f"{what} " + " / ".join(shown))
        if parts:
            rows.append([label, asked, "; ".join(parts), "met" if all(good) else "**not met**"])
    return rows


def derive(results):
    idx, tmax = index(results), max(results["settings"]["threads"])
    vs = {e["variant"] for e in results["entries"] if timed(e)}
    base = results["baseline"] = next((v for v in (f"torch t{tmax}", "loop") if v in vs), None)
    for e in results["entries"]:
        b = med(idx, e["shape"], e["op"], base)
        e["speedup"] = b / e["median_s"] if b and timed(e) else None
    results.update(summary=summary_lines(results, idx, tmax), mnist_epoch=mnist_epoch(results, idx),
                   targets=target_rows(results, idx))
    return results


# ---- text ---------------------------------------------------------------------------------------

def table(header, rows):
    """A Markdown table, padded so that it reads as well in a terminal."""
    w = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = ["| " + " | ".join(str(c).ljust(n) for c, n in zip(r, w)) + " |" for r in [header, *rows]]
    return "\n".join([lines[0], "|" + "|".join("-" * (n + 2) for n in w) + "|", *lines[1:]])


def cell(e, what):
    if e is None:
        return ""
    if e["status"] != "ok":
        return e["status"]
    if what == "time":
        spread = f" ±{50 * e['spread']:.0f}%" if math.isfinite(e.get("spread", math.nan)) else ""
        return "~" * bool(e["extrapolated"]) + fmt_ms(e["median_s"]) + spread + "*" * bool(e.get("capped"))
    if what == "speedup":
        return fmt_x(e["speedup"])
    return f"{fmt_ms(e['roofline']['bound_s'])} / {100 * e['roofline']['fraction']:.0f}%" if "roofline" in e else ""


def busy(results):
    load, tmax = results["machine"]["loadavg"], max(results["settings"]["threads"])
    return load["before"] > BUSY_LOAD or load["after"] > tmax + BUSY_LOAD


def notes(results):
    m = results["machine"]
    stale = f"WARNING: the cpool benchmarked is older than the checkout ({m['cpool']['stale']}): rerun " \
        "`python -m pip install .`"
    lines = [stale] * bool(m["cpool"].get("stale"))
    if busy(results):
        lines.append(f"WARNING: the machine was busy: 1-minute load average {m['loadavg']['before']:.2f} before the "
                     f"run, {m['loadavg']['after']:.2f} after, on {m['available_cpus']} CPUs; multi-threaded figures "
                     "suffer most: rerun on an idle machine")
    lines += [f"skipped {n}: {d['note']}" for n, d in results["methods"].items() if not d["available"]]
    for e in results["entries"]:
        where = f"{e['variant']} {e['shape']} {e['op']}"
        if e["status"] in ("error", "mismatch"):
            lines.append(f"{e['status'].upper()} (not timed): {where}: {e['reason']}")
        elif e["status"] == "ok" and not e["exact"]:
            lines.append(f"close, not exact: {where}: {e['reason']}")
    jit = [f"{e['variant']} {e['shape']} {e['op']} {fmt_ms(e['first_call_s'])} ms" for e in results["entries"]
           if e["method"] in ("numba", "jax") and timed(e) and e["first_call_s"] > max(5 * e["median_s"], 1e-3)]
    if jit:
        lines.append("first call incl. JIT compile (excluded from the timings): " + "; ".join(jit))
    return lines


LEGEND = (
    "Times: median ms ±half the interquartile range; ~ = timed on part of the batch and extrapolated per image; "
    "* = stopped by the time cap before the minimum count of samples; mismatch = outputs differ from the reference "
    "(cpool.slow), not timed. Speed-up = {base} time / method time (> 1: faster). Roofline: (bytes read + written) / "
    "copy bandwidth at the same thread count, and the fraction of that bound reached (over 100% when the data fit in "
    "cache). `name tN` = the method at N threads.")


def render(results, md=True):
    """results.md; with md=False the terminal text (the same without bold)."""
    m, c, idx, base = results["machine"], results["machine"]["cpool"], index(results), results["baseline"]
    shapes, ops = [s["name"] for s in results["shapes"]], list(results["ops"])
    threads = " / ".join(f"t{t}" for t in results["settings"]["threads"])
    peers = ", ".join(f"{k} {m[k]}" for k in ("torch", "numba", "jax") if m.get(k)) or "no peers"
    bandwidth = ", ".join(f"{t} thread{'s' * (int(t) > 1)} {bw / 1e9:.1f} GB/s"
                          for t, bw in results["bandwidth_Bps"].items())
    out = ["# cpool benchmark results", "",
           f"Run {results['created']} in {results['duration_s']:.0f} s: `python bench/bench.py "
           + " ".join(results["argv"]) + "`",
           "", *[line for line in notes(results)[:2] if line.startswith("WARNING")], "", "## Summary", "",
           *[f"- {line}" for line in results["summary"]], ""]
    if results["targets"]:
        out += ["## Performance targets", "", ("Checked against this run: rival time / cpool time, at the same thread "
                "count where a thread count is named; the roofline as in the tables below."), "",
                table(["target", "asked", f"this run ({threads})", "verdict"],
                      [[x if md else x.replace("**", "") for x in r] for r in results["targets"]]), ""]
    out += ["## Machine", "", f"- {m['cpu_model']}, {m['available_cpus']} CPUs; {m['platform']}; "
            + f"Python {m['python']}, numpy {m['numpy']}; {peers}",
            f"- cpool {c['version']} from {c['file']}: backend {c['backend']}, OpenMP "
            + f"{'on' if c['openmp'] else 'off'}, ISA {c.get('isa')}, threads by default: {c['num_threads']}",
            f"- memory bandwidth (np.copyto, bytes read + written): {bandwidth}",
            f"- load average (1 minute): {m['loadavg']['before']:.2f} before the run, {m['loadavg']['after']:.2f} after"
            + (f"; environment {m['env']}" if m["env"] else ""), "", "## Legend", "",
            LEGEND.format(base=base or "baseline"), ""]
    out += [f"- {'**' * md}{n}{'**' * md}{' ' + d['version'] if d['version'] else ''}: "
            + (d["description"] if d["available"] else f"skipped: {d['note']}") for n, d in results["methods"].items()]
    for op, title in results["ops"].items():
        vs = [v for v in variants(results) if any((s, op, v) in idx for s in shapes)]
        out += ["", f"## {op}: {title}", "", "Median ms:", "",
                table(["method", *shapes], [[v] + [cell(idx.get((s, op, v)), "time") for s in shapes] for v in vs])]
        if base:
            out += ["", f"Speed-up over {base}:", "", table(["method", *shapes], [
                [v] + [cell(idx.get((s, op, v)), "speedup") for s in shapes] for v in vs if v != base])]
        roof = [[v] + [cell(idx.get((s, op, v)), "roofline") for s in shapes] for v in vs if v.startswith("cpool t")]
        if roof:
            out += ["", "cpool roofline (bound ms / fraction of it reached):", "", table(["method", *shapes], roof)]
    out += ["", "## MNIST epoch", ""] + ["Not measured: it needs step, or fwd_idx and bwd, on "
                                         + " or ".join(C.MNIST_SHAPES) + ".", ""] * (not results["mnist_epoch"])
    for b in results["mnist_epoch"]:
        rows = [[r["variant"], f"{r['epoch_s']:,.3g} s" if r["epoch_s"] < 100 else f"{r['epoch_s']:,.0f} s",
                 f"{fmt_ms(r['per_image_s'] * 1e3)} µs", r["from"] + " (extrapolated)" * r["extrapolated"]]
                for r in b["rows"]]
        out += [f"Seconds of max pooling per {C.MNIST_IMAGES:,}-image epoch, one pooling layer shaped like "
                + f"{b['shape']} = {b['description']} (forward with indices + backward; per image = batch time / "
                + f"{b['batch']}):", "", table(["method", "s / epoch", "per image", "from"], rows), ""]
    sizes = [[f"{s['name']} ({s['description']})"] + [f"{b / 1e6:.3g} MB" if b >= 1e5 else f"{b / 1e3:.3g} kB"
                                                     for b in map(s["bytes"].get, ops)] for s in results["shapes"]]
    out += ["## Bytes each op must move (the roofline's numerator)", "", table(["shape", *ops], sizes), "",
            "## Notes", "", *[f"- {line}" for line in notes(results) or ["none"]]]
    return "\n".join(out) + "\n"


# ---- files --------------------------------------------------------------------------------------

def _clean(o):
    """Strict JSON: NaN/inf -> null, tuples -> lists, NumPy scalars -> Python numbers."""
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if hasattr(o, "item"):
        o = o.item()
    return None if isinstance(o, float) and not math.isfinite(o) else o


def write(results, out_dir, chart=True, log=print):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(_clean(results), indent=1, allow_nan=False) + "\n")
    (out / "results.md").write_text(render(results))
    paths = [out / "results.json", out / "results.md"]
    if chart:
        try:
            paths += [p for p in [draw_chart(results, out / "speedup.png")] if p]
        except ImportError:
            log("[bench] matplotlib is not installed: no chart (pip install matplotlib)")
    return paths


COLOURS = {"loop": "#7f7f7f", "numpy-answer": "#bcbd22", "numpy-maxchain": "#17becf", "cpool-numpy": "#9467bd",
           "cpool": "#d62728", "torch": "#1f77b4", "numba": "#2ca02c", "jax": "#ff7f0e"}


def draw_chart(results, path):
    """Speed-up over the baseline, log scale: a panel per op, a group of bars per shape, a bar per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx, base, ops, shapes = index(results), results["baseline"], list(results["ops"]), [s["name"] for s in
                                                                                       results["shapes"]]
    tmax = max(results["settings"]["threads"])
    speedups = {v: {op: [(i, idx[(s, op, v)]["speedup"]) for i, s in enumerate(shapes)
                         if (idx.get((s, op, v)) or {}).get("speedup")] for op in ops} for v in variants(results)}
    vs = [v for v in speedups if v != base and any(speedups[v].values())]
    if not vs:
        return None
    fig, axes = plt.subplots(len(ops), 1, figsize=(max(10, 1.6 * len(shapes) + 2), 3.4 * len(ops) + 1.5),
                             squeeze=False)
    for ax, op in zip(axes[:, 0], ops):
        for j, v in enumerate(vs):
            xs = [i - 0.4 + (j + 0.5) * 0.8 / len(vs) for i, _ in speedups[v][op]]
            ys = [y for _, y in speedups[v][op]]
            one = v.endswith(" t1") and tmax > 1  # hatched and pale: single-threaded
            ax.bar(xs, ys, 0.75 / len(vs), color=COLOURS.get(v.split()[0], "#8c564b"), alpha=0.5 if one else 1,
                   hatch="//" if one else None, edgecolor="black", linewidth=0.4, label=v)
            for x, y in zip(xs, ys) if v == f"cpool t{tmax}" else ():
                ax.annotate(fmt_x(y), (x, y), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7,
                            fontweight="bold", color="#b01010")
        ax.axhline(1.0, color="black", linewidth=1)
        ax.set_yscale("log")
        ax.set_ylim(top=ax.get_ylim()[1] * 2)  # room for the labels
        ax.set_xticks(range(len(shapes)), [f"{s['name']}\n{s['description']}" for s in results["shapes"]], fontsize=7)
        ax.set_title(f"{op}: {results['ops'][op]}", fontsize=10, loc="left")
        ax.set_ylabel(f"speed-up over {base}")
        ax.grid(axis="y", alpha=0.3)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center", ncol=6, fontsize=9, frameon=False)
    m = results["machine"]
    fig.suptitle(f"Speed-up over {base} (log scale; hatched = 1 thread; labels: cpool t{tmax})\n{m['cpu_model']}, "
                 f"{m['available_cpus']} CPUs, {results['created']}", fontsize=10)
    h = fig.get_figheight()  # fixed margins: tight_layout takes seconds on a slow machine
    fig.subplots_adjust(left=0.07, right=0.98, top=1 - 0.75 / h, bottom=(0.9 + 0.22 * math.ceil(len(vs) / 6)) / h,
                        hspace=0.55)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
