"""What a benchmark run means: speed-ups, summary lines, the MNIST-epoch table and the performance targets
(derive), and the outputs: terminal text, results.md, results.json, speedup.png."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import cases as C
from methods import DESCRIPTIONS, METHOD_NAMES

BUSY_OTHER_CPUS = 0.5  # other processes kept this many CPUs busy during a timing: it ran on a busy machine
NOISY_SPREAD = 0.10  # a spread (interquartile range / median) above this: a noisy figure, no headline


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

def rerun_command(results):
    return "python bench/bench.py" + "".join(" " + shlex.quote(a) for a in results["argv"])


def busy_state(results):
    """Whether most of the run's timings were taken on a busy machine: the 1-minute load average above the CPU
    count before the run, or other processes keeping BUSY_OTHER_CPUS or more busy during most timings (the
    contention section, which loads the machine on purpose, does not count)."""
    m, es = results["machine"], [e for e in results["entries"] if timed(e)]
    flagged, cpus, before = sum(bool(e.get("busy")) for e in es), m["available_cpus"], m["loadavg"]["before"]
    why = [f"1-minute load average {before:.2f} before the run, on {cpus} CPUs"] * (before > cpus)
    if es and 2 * flagged > len(es):
        why.append(f"other processes kept {BUSY_OTHER_CPUS:g} CPUs or more busy during {flagged} of {len(es)} timings")
    return {"busy": bool(why), "why": "; ".join(why), "timings": len(es), "busy_timings": flagged}


def steady(*entries):
    """Whether a figure from these entries can lead: small spreads, no busy timing."""
    return all(e.get("spread", math.inf) <= NOISY_SPREAD and not e.get("busy") for e in entries)


def spreads(*entries):
    return "spread " + " / ".join(f"{100 * e.get('spread', math.nan):.0f}%" for e in entries)


def headline_shape(results):
    """The shape the headline figures are for: the first MNIST shape of the run, else its first shape."""
    return next((s for n in C.MNIST_SHAPES for s in results["shapes"] if s["name"] == n), results["shapes"][0])


def summary_lines(results, idx=None):
    """The headline. A busy run has none: one line saying so, with the command to rerun. Otherwise, per op, cpool
    against torch at the same thread count (else the loop) on an MNIST shape, each thread count's figure with
    both spreads; the steady figures (small spreads, no busy timing) lead, within each op and over the ops."""
    idx, state = idx or index(results), results.get("busy") or busy_state(results)
    if state["busy"]:
        return [f"the machine was busy ({state['why']}): no headline figures from this run; rerun on an idle "
                f"machine: `{rerun_command(results)}`"]
    shape = headline_shape(results)
    where = f"{shape['name']} ({shape['description']})"
    shape = shape["name"]
    torch = any(e["method"] == "torch" and timed(e) for e in results["entries"])
    peer = "torch" if torch else "the loop"
    lines = []
    for op in results["ops"]:
        figs = [(t, c, b) for t in sorted(results["settings"]["threads"], reverse=True)
                if (c := timed(idx.get((shape, op, f"cpool t{t}")))) and (b := timed(idx.get(
                    (shape, op, f"torch t{t}" if torch else "loop"))))]
        if not figs:
            lines.append((True, f"{op}: cpool vs {peer} on {where}: not measured"))
            continue
        figs.sort(key=lambda f: not steady(f[1], f[2]))  # stable: the most threads first among the steady
        parts = []
        for i, (t, c, b) in enumerate(figs):
            r, at = b["median_s"] / c["median_s"], f"at {t} thread{'s' * (t > 1)}"
            noisy = "" if steady(c, b) else ", noisy"
            if i == 0:
                fast = f"{fmt_x(r)} faster" if r >= 1 else f"{fmt_x(1 / r)} slower"
                parts.append(f"{op}: cpool is {fast} than {peer} {at} on {where}: {fmt_ms(c['median_s'])} ms vs "
                             f"{fmt_ms(b['median_s'])} ms ({spreads(c, b)}{noisy})")
            else:
                parts.append(f"{at}: {fmt_x(r)} ({spreads(c, b)}{noisy})")
        lines.append((not steady(figs[0][1], figs[0][2]), "; ".join(parts)))
    return [text for _, text in sorted(lines, key=lambda x: x[0])]


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


def roofline_ceiling(results, e, rival_s):
    """How many times faster than a rival taking ``rival_s`` cpool's entry ``e`` could be at its roofline bound
    (every byte of the op across the memory bus once, at the measured copy bandwidth); None where the op's bytes
    fit in the machine's largest cache (the bound is no floor there) or the cache size is unknown."""
    cache, roof = results.get("machine", {}).get("cache_bytes"), e.get("roofline", {})
    if not cache or roof.get("bytes", 0) <= cache or not roof.get("bound_s"):
        return None
    return rival_s / roof["bound_s"]


def target_rows(results, idx=None):
    """[target, asked, this run, verdict] for each target in cases.TARGETS that this run measured.

    A speed-up asked of a shape whose data exceed the caches can be more than the memory allows: such a part
    also shows its roofline ceiling (rival time / cpool's roofline bound), and a row not met only where the
    ceiling is below what was asked says so in its verdict."""
    idx, rows = idx or index(results), []
    for label, asked, ops, shapes, checks in C.TARGETS:
        parts, good, capped = [], [], []
        for sh, op, check in ((sh, op, c) for sh in shapes for op in ops for c in checks):
            mine, rival, want = check[:3]
            at_most = check[3:] == (C.AT_MOST,)
            rival_shape = C.nchw_twin(sh) if rival.endswith(C.ON_NCHW) else sh
            rival = rival.removesuffix(C.ON_NCHW)
            ts = results["settings"]["threads"] if "{t}" in mine + rival else [None]
            es = [timed(idx.get((sh, op, mine.format(t=t)))) for t in ts]
            rs = [e and e.get("roofline", {}).get("bound_s") if rival == "roofline" else med(
                idx, rival_shape, op, rival.format(t=t)) for e, t in zip(es, ts)]
            if not all(es) or not all(rs):
                continue  # not measured: not asked for, or failed (the tables say which)
            if at_most:  # mine time / rival time, at most want
                ratios = [e["median_s"] / r for r, e in zip(rs, es)]
                good += [r <= want for r in ratios]
            else:
                ratios = [r / e["median_s"] for r, e in zip(rs, es)]
                good += [r >= want for r in ratios]
            ceilings = [None if at_most or rival == "roofline" else roofline_ceiling(results, e, r)
                        for e, r in zip(es, rs)]
            # A ceiling the measured figure already beats is no cap (the data were partly cached, or the op
            # outran np.copyto): only a part held at or below its ceiling counts as the roofline's doing.
            capped += [c is not None and c < want and r <= c for r, c in zip(ratios, ceilings)
                       if r < want and not at_most]
            vs = rival.replace(" t{t}", "") + (f" on {rival_shape}" if rival_shape != sh else "")
            what = sh + f" {op}" * (len(ops) > 1) + f" vs {vs}" * (len(checks) > 1)
            shown = [f"{100 * r:.0f}%" if rival == "roofline" else fmt_x(r) for r in ratios]
            ceiling = (f" (roofline ceiling {' / '.join(fmt_x(c) for c in ceilings)})"
                       if all(ceilings) and any(r < want for r in ratios) else "")
            parts.append(f"{what} " + " / ".join(shown) + ceiling)
        if parts:
            capped_only = bool(capped) and all(capped)
            verdict = "met" if all(good) else "**not met**" + " (the roofline allows less)" * capped_only
            rows.append([label, asked, "; ".join(parts), verdict])
    busy = busy_target_row(results.get("contention"))
    return rows + [busy] * bool(busy)


def contention_ratios(contention):
    """The measured rows of the contention section, each with ratio = default-thread median / 1-thread median
    and mean_ratio = the same for the means (these include the default's occasional retries of the full team)."""
    rows = [r for r in (contention or {}).get("rows", []) if r["status"] == "ok"]
    for r in rows:
        r["ratio"] = r["default"]["median_s"] / r["t1"]["median_s"]
        r["mean_ratio"] = r["default"]["mean_s"] / r["t1"]["mean_s"] if "mean_s" in r["t1"] else None
    return rows


def busy_target_row(contention):
    """[target, asked, this run, verdict] for cases.BUSY_TARGET: cpool's worst ratio, or None when not measured."""
    rows = [r for r in contention_ratios(contention) if r["method"] == "cpool"]
    if not rows:
        return None
    label, asked, limit = C.BUSY_TARGET
    w = max(rows, key=lambda r: r["ratio"])
    text = (f"worst {fmt_x(w['ratio'])}: {w['shape']} {w['op']}, {w['busy']} busy ({fmt_ms(w['default']['median_s'])}"
            f" vs {fmt_ms(w['t1']['median_s'])} ms, spread {100 * w['t1']['spread']:.0f}% / "
            f"{100 * w['default']['spread']:.0f}%); {len(rows)} shape/op/load rows, "
            f"{sum(r['ratio'] <= limit for r in rows)} within {limit:g}x, median row "
            f"{fmt_x(sorted(r['ratio'] for r in rows)[len(rows) // 2])}")
    return [label, asked, text, "met" if w["ratio"] <= limit else "**not met**"]


def layout_of(shape):
    """A shape's memory layout (its meta in results["shapes"]); runs from before the layouts were all NCHW."""
    return shape.get("layout", "nchw")


BASELINES = {"nchw": ("torch t{t}", "loop"), "nhwc": ("torch-cl t{t}",)}  # each layout's speed-up baseline, in turn


def layout_groups(results):
    """[(layout, shape names, baseline variant or None)] for each layout of the run, in cases.LAYOUTS order."""
    out = []
    for layout in C.LAYOUTS:
        names = [s["name"] for s in results["shapes"] if layout_of(s) == layout]
        if names:
            out.append((layout, names, results.get("baselines", {}).get(layout, results.get("baseline"))))
    return out


def derive(results):
    idx, tmax = index(results), max(results["settings"]["threads"])
    layouts = {s["name"]: layout_of(s) for s in results["shapes"]}
    results["baselines"] = {}
    for layout in C.LAYOUTS:
        vs = {e["variant"] for e in results["entries"] if timed(e) and layouts.get(e["shape"], "nchw") == layout}
        results["baselines"][layout] = next((v for v in (b.format(t=tmax) for b in BASELINES[layout]) if v in vs),
                                            None)
    base = results["baseline"] = results["baselines"]["nchw"]
    for e in results["entries"]:
        b = med(idx, e["shape"], e["op"], results["baselines"][layouts.get(e["shape"], "nchw")])
        e["speedup"] = b / e["median_s"] if b and timed(e) else None
    results["busy"] = busy_state(results)
    contention_ratios(results.get("contention"))
    results.update(summary=summary_lines(results, idx), mnist_epoch=mnist_epoch(results, idx),
                   targets=target_rows(results, idx), baseline=base)
    return results


# ---- text ---------------------------------------------------------------------------------------

LAYOUT_TITLES = {"nchw": "NCHW memory", "nhwc": "channels-last (NHWC) memory: the -nhwc shapes"}
ROOFLINE_METHODS = ("cpool", "cpool-out")  # the methods whose rows get the roofline table


def roofline_row(variant):
    """Whether ``variant`` (cpool tN, cpool-out tN) gets a row in the roofline tables."""
    name, _, threads = variant.partition(" t")
    return name in ROOFLINE_METHODS and threads.isdigit()


def table(header, rows):
    """A Markdown table, padded so that it reads as well in a terminal."""
    w = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = ["| " + " | ".join(str(c).ljust(n) for c, n in zip(r, w)) + " |" for r in [header, *rows]]
    return "\n".join([lines[0], "|" + "|".join("-" * (n + 2) for n in w) + "|", *lines[1:]])


def fmt_time(st, busy=False):
    """Median ms and spread, "1.23 (4%)": the interquartile range over the median."""
    spread = st.get("spread", math.nan)
    return fmt_ms(st["median_s"]) + (f" ({100 * spread:.0f}%)" if math.isfinite(spread) else "") + " b" * bool(busy)


def cell(e, what):
    if e is None:
        return ""
    if e["status"] != "ok":
        return e["status"]
    if what == "time":
        return "~" * bool(e["extrapolated"]) + fmt_time(e, e.get("busy")) + "*" * bool(e.get("capped"))
    if what == "speedup":
        return fmt_x(e["speedup"])
    return f"{fmt_ms(e['roofline']['bound_s'])} / {100 * e['roofline']['fraction']:.0f}%" if "roofline" in e else ""


def warnings(results):
    """The lines that go first, before anything else: a busy machine, then an out-of-date cpool."""
    m, state = results["machine"], results["busy"]
    lines = [f"WARNING: {results['summary'][0]}"] if state["busy"] else []
    if m["cpool"].get("stale"):
        lines.append(f"WARNING: the cpool benchmarked is older than the checkout ({m['cpool']['stale']}): rerun "
                     "`python -m pip install .`")
    if not state["busy"] and state["busy_timings"]:
        lines.append(f"WARNING: {state['busy_timings']} of {state['timings']} timings ran while other processes kept "
                     f"{BUSY_OTHER_CPUS:g} CPUs or more busy (marked b in the tables): they lead nothing")
    return lines


def notes(results):
    lines = warnings(results) + [f"skipped {n}: {d['note']}" for n, d in results["methods"].items()
                                 if not d["available"]]
    lines += [f"skipped op {op} ({C.OPS.get(op, op)}): {why}" for op, why in results.get("skipped_ops", {}).items()]
    if any(op in C.AVG_OPS for op in results["ops"]) and results["settings"].get("avg_reference"):
        lines.append(f"average-pooling reference (the gate): {results['settings']['avg_reference']}; cpool's methods "
                     "and torch must equal it bit for bit, the peers that sum in their own order must come within "
                     f"{C.SUMS_RTOL:g} of the largest value (close, not exact)")
    if any(op in C.UNPOOL_OPS + C.ADAPTIVE_OPS for op in results["ops"]) and results["settings"].get("avg_reference"):
        lines.append("unpooling and adaptive max reference (the gate): "
                     f"{results['settings']['avg_reference']} (torch's taken at 1 thread); every method must equal it "
                     "exactly (the outputs are copies of input values)")
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
    c = results.get("contention") or {}
    lines += [f"contention section, not measured: {x}" for x in c.get("skipped", [])]
    solo = {n for r in c.get("rows", []) if r["method"] == "cpool" for n in r.get("default_threads", ())} == {1}
    if solo and results["machine"]["available_cpus"] > 1:
        lines.append("contention section: cpool's default thread count was 1 (OMP_NUM_THREADS or a threadpoolctl "
                     "limit?), so its default and 1-thread timings are the same setting")
    lines += [f"contention section, {r['status']}: {r['method']} {r['shape']} {r['op']}: {r['reason']}"
              for r in c.get("rows", []) if r["status"] != "ok"]
    return lines


ROOFLINE_OVER = ("Fractions above 100%: the bound assumes every byte crosses the memory bus once at the copy bandwidth "
                 "measured on arrays larger than the caches; when an op's data fit in the L2/L3 cache it runs faster "
                 "than that, so over 100% means cache-resident data, not a measuring error.")
LEGEND = (
    "Times: median ms and, in brackets, the spread: the interquartile range over the median (small = steady); "
    "~ = timed on part of the batch and extrapolated per image; * = stopped by the time cap before the minimum "
    f"count of samples; b = other processes kept {BUSY_OTHER_CPUS:g} CPUs or more busy during that timing; mismatch "
    "= outputs differ from the reference (cpool.slow; for the average-pooling, unpooling and adaptive max ops torch, "
    "see the notes), not timed; "
    "n/a = the method cannot do that op or shape. "
    "Methods were timed in interleaved passes, every other pass in reverse order, so that drift hits all alike. "
    "Speed-up = {base} time / method time (> 1: faster). Roofline: (bytes read + written) / copy bandwidth at the "
    "same thread count, and the fraction of that bound reached. " + ROOFLINE_OVER)


def legend_lines(results, md):
    """A line for every method name, those of this run with the names its tables use (cpool t1, cpool t2, ...)."""
    shown = {}
    for e in results["entries"]:
        shown.setdefault(e["method"], {})[e["variant"]] = None
    out = []
    for n in [*METHOD_NAMES, *(n for n in results["methods"] if n not in METHOD_NAMES)]:
        d, names = results["methods"].get(n), list(shown.get(n, {})) or [n]
        label = ", ".join(f"**{v}**" if md else v for v in names)
        text = d["description"] if d else DESCRIPTIONS.get(n, n)
        version = f" ({d['version']})" if d and d["version"] else ""
        if d is None:
            out.append(f"- {n}: {text} (not in this run: --methods)")
        else:
            out.append(f"- {label}{version}: " + (text if d["available"] else f"{text}; skipped: {d['note']}"))
    return out


def contention_section(results, md):
    c = results.get("contention")
    if not c:
        return []
    rows, ms = contention_ratios(c), [m for m in c["methods"] if m in ("cpool", "torch")]
    cpus, dt = results["machine"]["available_cpus"], {}
    small = [sh["name"] for sh in results["shapes"] if math.prod(sh["shape"]) < 2**20]
    for r in rows:
        dt.setdefault(r["method"], set()).update(r.get("default_threads", ()))
    out = ["## Busy machine: default threads against 1 thread", "",
           "With N busy processes running (Python `while True: pass`, one CPU each; N = "
           f"{', '.join(map(str, c['loads']))} on {cpus} CPUs), each method was timed at its default thread count ("
           + ", ".join(f"{m} default = {' or '.join(map(str, sorted(dt.get(m, ())))) or '?'} thread(s)" for m in ms)
           + ") and at 1 thread, in "
           f"alternating rounds, about {c['seconds']:g} s per shape, op and load; the section took "
           f"{c.get('duration_s', 0):.0f} s (cap {c['cap_s']:g} s). Median ms (spread); ratio = default / 1 thread "
           "(the target: at most " + f"{C.BUSY_TARGET[2]:g}x for cpool); mean ratio = the same for the mean times, "
           "which include the default's occasional retries of the full team; other CPUs = CPUs that other processes "
           "(the busy ones and any others) kept busy during the phase." + (
               f" cpool runs small inputs ({', '.join(small)}: under about a million elements) on one thread "
               "whatever the setting: there both columns time the same code." if small else ""), ""]
    if not rows:
        return out + ["Not measured: see the notes.", ""]
    by = {}
    for r in rows:
        by.setdefault((r["shape"], r["op"], r["busy"]), {})[r["method"]] = r
    header = ["shape", "op", "busy"] + [h for m in ms for h in (f"{m} t1", f"{m} default", "ratio", "mean ratio")]
    table_rows = []
    for (shape, op, n), got in by.items():
        line = [shape, op, str(n)]
        for m in ms:
            r = got.get(m)
            line += ([fmt_time(r["t1"]), fmt_time(r["default"]), fmt_x(r["ratio"]), fmt_x(r["mean_ratio"])] if r
                     else [""] * 4)
        loads = [r["other_cpus"] for r in got.values() if r.get("other_cpus") is not None]
        table_rows.append(line + [f"{max(loads):.1f}" if loads else "n/a"])
    return out + [table(header + ["other CPUs"], table_rows), ""]


def speedup_table(results, op, idx=None, shapes=None, base=None):
    """Speed-up over the baseline (of the shapes' layout) of every variant but the baseline itself: a row per
    variant, a column per shape (default: every shape of the run, the NCHW baseline)."""
    idx, shapes = idx or index(results), shapes or [s["name"] for s in results["shapes"]]
    base = base or results["baseline"]
    vs = [v for v in variants(results) if v != base and any((s, op, v) in idx for s in shapes)]
    return table(["method", *shapes], [[v] + [cell(idx.get((s, op, v)), "speedup") for s in shapes] for v in vs])


def epoch_title(b):
    return (f"Seconds of max pooling per {C.MNIST_IMAGES:,}-image epoch, one pooling layer shaped like {b['shape']} = "
            f"{b['description']} (forward with indices + backward; per image = batch time / {b['batch']}):")


def epoch_table(b):
    """One shape's MNIST-epoch table (an item of results["mnist_epoch"])."""
    rows = [[r["variant"], f"{r['epoch_s']:,.3g} s" if r["epoch_s"] < 100 else f"{r['epoch_s']:,.0f} s",
             f"{fmt_ms(r['per_image_s'] * 1e3)} µs", r["from"] + " (extrapolated)" * r["extrapolated"]]
            for r in b["rows"]]
    return table(["method", "s / epoch", "per image", "from"], rows)


def baseline_text(results):
    """What the speed-ups are over: the baseline, each layout's where the run has both."""
    groups = [(layout, b) for layout, _, b in layout_groups(results) if b]
    if len(groups) > 1:
        return " or ".join(f"{b} ({'the -nhwc shapes' if layout == 'nhwc' else 'NCHW shapes'})" for layout, b in groups)
    return groups[0][1] if groups else results.get("baseline") or "baseline"


def render(results, md=True):
    """results.md; with md=False the terminal text (the same without bold). A busy machine's warning is the first
    line of both."""
    m, c, idx, ops = results["machine"], results["machine"]["cpool"], index(results), list(results["ops"])
    threads = " / ".join(f"t{t}" for t in results["settings"]["threads"])
    peers = ", ".join(f"{k} {m[k]}" for k in ("torch", "onnxruntime", "numba", "jax") if m.get(k)) or "no peers"
    bandwidth = ", ".join(f"{t} thread{'s' * (int(t) > 1)} {bw / 1e9:.1f} GB/s"
                          for t, bw in results["bandwidth_Bps"].items())
    top = [f"**{w}**" if md else w for w in warnings(results)]
    out = [*top, ""] if top else []
    out += ["# cpool benchmark results", "",
            f"Run {results['created']} in {results['duration_s']:.0f} s: `{rerun_command(results)}`", "",
            "## Summary", "", *[f"- {line}" for line in results["summary"]], ""]
    if results["targets"]:
        out += ["## Performance targets", "", ("Checked against this run: rival time / cpool time, at the same thread "
                "count where a thread count is named; the roofline as in the tables below; the rows that ask for "
                "\"at most\": cpool time / the rival's (cpool on a -nhwc shape against cpool on its NCHW twin); the "
                "busy-machine row from the contention section.")
                + (" Measured on a busy machine: see the warning above." if results["busy"]["busy"] else ""), "",
                table(["target", "asked", f"this run ({threads})", "verdict"],
                      [[x if md else x.replace("**", "") for x in r] for r in results["targets"]]), ""]
        why = [f"- {r[0]} ({r[1]}): {C.TARGET_NOTES[r[0], r[1]]}" for r in results["targets"]
               if r[3] != "met" and (r[0], r[1]) in C.TARGET_NOTES]
        if why:
            out += ["### Targets not met: what was tried, and what stops them", "", *why, ""]
    out += ["## Machine", "", f"- {m['cpu_model']}, {m['available_cpus']} CPUs; {m['platform']}; "
            + f"Python {m['python']}, numpy {m['numpy']}; {peers}",
            f"- cpool {c['version']} from {c['file']}: backend {c['backend']}, OpenMP "
            + f"{'on' if c['openmp'] else 'off'}, ISA {c.get('isa')}, threads by default: {c['num_threads']}",
            f"- memory bandwidth (np.copyto, bytes read + written): {bandwidth}",
            f"- load average (1 minute): {m['loadavg']['before']:.2f} before the run, {m['loadavg']['after']:.2f} after"
            + " the main tables" + (f"; environment {m['env']}" if m["env"] else ""), "", "## Legend", "",
            LEGEND.format(base=baseline_text(results)), "", *legend_lines(results, md)]
    groups = layout_groups(results)
    for op, title in results["ops"].items():
        out += ["", f"## {op}: {title}"]
        for layout, names, lbase in groups:
            vs = [v for v in variants(results) if any((s, op, v) in idx for s in names)]
            if not vs:
                continue
            where = f" ({LAYOUT_TITLES[layout]})" if len(groups) > 1 else ""
            out += ["", f"Median ms (spread){where}:", "",
                    table(["method", *names], [[v] + [cell(idx.get((s, op, v)), "time") for s in names] for v in vs])]
            if lbase:
                out += ["", f"Speed-up over {lbase}{where}:", "", speedup_table(results, op, idx, names, lbase)]
            roof = [[v] + [cell(idx.get((s, op, v)), "roofline") for s in names] for v in vs if roofline_row(v)]
            over = any(e.get("roofline", {}).get("fraction", 0) > 1 for e in results["entries"] if e["op"] == op
                       and e["shape"] in names and roofline_row(e["variant"]))
            if roof:
                out += ["", f"cpool roofline (bound ms / fraction of it reached){where}:", "",
                        table(["method", *names], roof)]
                out += ["", ROOFLINE_OVER] * over
    out += ["", *contention_section(results, md)]
    out += ["## MNIST epoch", ""] + ["Not measured: it needs step, or fwd_idx and bwd, on "
                                     + " or ".join(C.MNIST_SHAPES) + ".", ""] * (not results["mnist_epoch"])
    for b in results["mnist_epoch"]:
        out += [epoch_title(b), "", epoch_table(b), ""]
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


COLOURS = {"loop": "#7f7f7f", "numpy-answer": "#bcbd22", "numpy-maxchain": "#17becf", "numpy-mean": "#dbdb8d",
           "cpool-numpy": "#9467bd",
           "cpool": "#d62728", "cpool-out": "#ff9896", "torch": "#1f77b4", "torch-cl": "#aec7e8",
           "torch-mkldnn": "#393b79", "onnxruntime": "#8c6d31", "numba": "#2ca02c", "jax": "#ff7f0e"}


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
            for x, y in zip(xs, ys) if roofline_row(v) else ():  # each cpool bar: its thread count too
                ax.annotate(f"{v.split()[1]} {fmt_x(y)}", (x, y), xytext=(0, 2), textcoords="offset points",
                            ha="center", va="bottom", rotation=90, fontsize=6.5, fontweight="bold", color="#b01010")
        ax.axhline(1.0, color="black", linewidth=1)
        ax.set_yscale("log")
        tallest = max((y for v in vs for _, y in speedups[v][op]), default=1.0)
        ax.set_ylim(top=max(ax.get_ylim()[1], tallest * 40))  # room above the tallest bar for its upright label
        ax.set_xticks(range(len(shapes)), [f"{s['name']}\n{s['description']}" for s in results["shapes"]], fontsize=7)
        ax.set_title(f"{op}: {results['ops'][op]}", fontsize=10, loc="left")
        ax.set_ylabel(f"speed-up over {base}" + " / torch-cl (-nhwc)" * (len(layout_groups(results)) > 1),
                      fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center", ncol=6, fontsize=9, frameon=False)
    m, busy = results["machine"], results["busy"]["busy"]
    labels = " and ".join(v for v in vs if roofline_row(v))
    fig.suptitle(("BUSY MACHINE: figures unreliable, rerun on an idle machine\n" if busy else "")
                 + f"Speed-up over {baseline_text(results)} (log scale; hatched = 1 thread; labelled: "
                 f"{labels or 'none'})\n"
                 f"{m['cpu_model']}, {m['available_cpus']} CPUs, {results['created']}", fontsize=10,
                 color="#b01010" if busy else "black")
    h = fig.get_figheight()  # fixed margins: tight_layout takes seconds on a slow machine
    fig.subplots_adjust(left=0.07, right=0.98, top=1 - (0.75 + 0.2 * busy) / h,
                        bottom=(0.9 + 0.22 * math.ceil(len(vs) / 6)) / h, hspace=0.55)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
