"""Write the README's benchmark figures from one run, so that they cannot disagree with each other.

    python bench/bench.py --out bench/results          # a full run (minutes): results.json, results.md, speedup.png
    python bench/readme.py --commit bench/results      # copy that run into bench/ and rewrite README.md from it
    python bench/readme.py bench/results.json README.md    # only rewrite README.md's generated parts

--commit DIR copies DIR/results.md to bench/RESULTS.md, and DIR/results.json and DIR/speedup.png to bench/, then
rewrites README.md from bench/results.json; it checks the run and the README's markers before copying anything.

The generated parts of README.md lie between marker comments; everything outside them is left as it is:

    <!-- bench:intro --> ... <!-- /bench:intro -->      the introduction's figures, inside its paragraph
    <!-- bench:results --> ... <!-- /bench:results -->  the body of the "Benchmark results" section

The introduction quotes cpool against torch at the run's largest thread count on the MNIST shape, with the range
over the run's shapes, and the loop; a run on a busy machine (report.busy_state, as in its summary) gets no
headline figures there. The results section has the summary, the contention result, the chart, the speed-up
tables and the MNIST-epoch table; the full tables, the roofline, the contention section and the performance
targets stay in bench/RESULTS.md. Running the script twice gives the same README; a missing marker is an error
and leaves the README as it was.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import textwrap
from pathlib import Path

import cases as C
import report as R

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PARTS = ("intro", "results")
COMMITTED = {"results.md": "RESULTS.md", "results.json": "results.json", "speedup.png": "speedup.png"}
LAYOUT = ("created", "argv", "settings", "machine", "shapes", "ops", "methods", "entries")
INTRO_OPS = {"fwd_idx": "forward with indices", "fwd": "values-only", "step": "a training step (forward + backward)",
             "bwd": "the backward alone"}
TABLE_TITLES = {"fwd_idx": "Forward with indices", "fwd": "Forward, values only", "bwd": "Backward",
                "step": "Training step through the Module API (forward with indices + backward)",
                "avg_fwd": "Average pooling, forward", "avg_bwd": "Average pooling, backward",
                "gap": "Global average pooling (adaptive_avg_pool2d(x, 1))",
                "unpool": "Max unpooling (max_unpool2d of max_pool2d's values and indices)",
                "unpool_bwd": "Max unpooling, backward (max_unpool2d_backward)",
                "amax": "Adaptive max pooling to 7x7 with indices (adaptive_max_pool2d)",
                "pool1d": "1-D max pooling, values only (max_pool1d)",
                "max3d_fwd": "3-D max pooling, forward with indices (max_pool3d)",
                "max3d_bwd": "3-D max pooling, backward (max_pool3d_backward)",
                "avg3d_fwd": "3-D average pooling (avg_pool3d)",
                "avg3d_bwd": "3-D average pooling, backward (avg_pool3d_backward)"}
WIDTH = 78  # the README's line length


class ReadmeError(ValueError):
    """A results.json or a README this script cannot use; the message says why."""


def markers(name):
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def load(path):
    """A results.json of this benchmark's layout, with its derived figures (report.derive) when it has none."""
    try:
        results = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ReadmeError(f"cannot read {path}: {exc}") from None
    missing = [k for k in LAYOUT if k not in results] + ["machine.loadavg"] * ("loadavg" not in results.get(
        "machine", {}))
    if "schema" in results or missing:
        raise ReadmeError(f"{path} is not in the layout bench/bench.py writes now (missing: {', '.join(missing) or '-'}"
                          "; an older run?): rerun python bench/bench.py")
    return results if {"busy", "summary", "baseline", "mnist_epoch"} <= set(results) else R.derive(results)


# ---- the generated text -------------------------------------------------------------------------

def wrap(text, indent=""):
    """Lines of at most WIDTH characters, none of them starting with what Markdown would read as a new block."""
    out, text = [], re.sub(r"\[[^\]]*\]\([^)]*\)", lambda m: m.group(0).replace(" ", "\0"), text)  # links whole
    for line in textwrap.wrap(text, WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False):
        if out and re.match(r"\s*([-+*#>|<=]|\d+[.)](\s|$))", line):
            out[-1] += " " + line.strip()
        else:
            out.append(line)
    return "\n".join(out).replace("\0", " ")


def cpool_vs_torch(idx, shape, op, t):
    """(torch time / cpool time at t threads, whether both timings are steady), or None when not measured."""
    c, b = R.timed(idx.get((shape, op, f"cpool t{t}"))), R.timed(idx.get((shape, op, f"torch t{t}")))
    return (b["median_s"] / c["median_s"], R.steady(c, b)) if c and b else None


def pace(r):
    return R.fmt_x(r) if r >= 1 else f"{R.fmt_x(1 / r)} slower"


def loop_figure(results, shape, t):
    """How many times faster cpool at t threads runs a forward + backward than the loop, from the MNIST-epoch
    table, or None when the loop is not in it."""
    rows = next((b["rows"] for b in results["mnist_epoch"] if b["shape"] == shape), [])
    got = {r["variant"]: r["epoch_s"] for r in rows}
    return got["loop"] / got[f"cpool t{t}"] if "loop" in got and f"cpool t{t}" in got else None


def peers_timed(results, names):
    """Whether any of the methods ``names`` has a timing in the run."""
    return any(e["method"] in names and R.timed(e) for e in results["entries"])


def intro(results, anchor):
    """The introduction's figures: a fragment of its sentence, after "gives exactly PyTorch's answers (...)"."""
    state, cpus = results.get("busy") or R.busy_state(results), results["machine"]["available_cpus"]
    see, machine = f"(see [Benchmark results]({anchor}))", f"this project's {cpus}-core machine"
    if state["busy"]:
        return (f"far faster than the loop; the benchmark run on {machine} was taken while the machine was busy "
                f"({state['why']}), so no headline figures are quoted from it {see}")
    idx, t, shape = R.index(results), max(results["settings"]["threads"]), R.headline_shape(results)
    loop = loop_figure(results, shape["name"], t)
    lead = (f"{R.fmt_x(loop)} faster than the loop on a forward + backward pass" if loop else
            "far faster than the loop (not in the benchmark run)")
    where = ("the MNIST shape" if shape["name"] in C.MNIST_SHAPES else shape["name"]) + f" ({shape['description']})"
    threads = f"{t} thread{'s' * (t > 1)}"
    if not any(e["method"] == "torch" and R.timed(e) for e in results["entries"]):
        return f"{lead}: torch was not in the benchmark run on {machine}, so there is no comparison with it {see}"
    said, absent = [], []
    for op, label in ((op, label) for op, label in INTRO_OPS.items() if op in results["ops"]):
        mine = cpool_vs_torch(idx, shape["name"], op, t)
        over = sorted((f[0], s["name"]) for s in results["shapes"] if (f := cpool_vs_torch(idx, s["name"], op, t)))
        if not mine:
            absent.append(label)
            continue
        r, steady = mine
        text = (f"{label} runs {pace(r)}{' faster' * (r >= 1)} than PyTorch's NCHW CPU kernel" if not said
                else f"{label} {pace(r)}")
        rng = f"{R.fmt_x(over[0][0])[:-1]}-{R.fmt_x(over[-1][0])}" + f" over the run's {len(over)} shapes" * (
            not said) if len(over) > 1 else ""
        notes = ["a noisy figure" * (not said) or "noisy"] * (not steady) + [rng] * bool(rng)
        said.append(text + f" ({'; '.join(notes)})" * bool(notes))
    if not said:
        return f"{lead}: the benchmark run on {machine} has no cpool-torch pair on {where} {see}"
    listed = said[0] if len(said) == 1 else ", ".join(said[:-1]) + " and " + said[-1]
    return (f"{lead}: on {machine}, on {where} with cpool and PyTorch both at {threads}, {listed}"
            + f"; not measured: {', '.join(absent)}" * bool(absent)
            + (" (torch on contiguous arrays; its channels_last and oneDNN paths are compared in bench/RESULTS.md)"
               if peers_timed(results, ("torch-cl", "torch-mkldnn")) else
               " (torch on contiguous arrays: its faster channels-last and oneDNN paths are not in this comparison)")
            + f" {see}")


def contention_line(results):
    """One line on the contention section: cpool's worst default / 1-thread ratio with busy processes running."""
    c, cpus = results.get("contention"), results["machine"]["available_cpus"]
    row = R.busy_target_row(c)
    if not row:
        return "Busy machine: the contention section is not in this run." if not c else (
            "Busy machine: the contention section measured no cpool row (see bench/RESULTS.md).")
    loads = " and ".join(map(str, c["loads"]))
    return (f"Busy machine (cpool at its default thread count against 1 thread, with {loads} busy processes on "
            f"{cpus} CPUs; the target is at most {C.BUSY_TARGET[2]:g}x): {row[2]}.")


def results_section(results):
    """The body of the README's "Benchmark results" section."""
    m, base, idx = results["machine"], results["baseline"], R.index(results)
    cp, state = m["cpool"], results.get("busy") or R.busy_state(results)
    peers = "".join(f"; {k} {m[k]}" for k in ("torch", "onnxruntime", "numba", "jax") if m.get(k))
    out = [wrap(f"From one run of `{R.rerun_command(results)}` on {results['created'][:10]} ({m['cpu_model']}, "
                f"{m['available_cpus']} CPUs; cpool {cp.get('version')}, ISA {cp.get('isa')}{peers}). "
                "[bench/RESULTS.md](bench/RESULTS.md) has the full tables (times, spreads, every method), the "
                "roofline figures, the contention section and the performance targets; "
                "[bench/results.json](bench/results.json) has the data. "
                + (f"Speed-ups are over {base} (> 1: faster); `cpool tN` and `torch tN` are cpool and torch at N "
                   f"threads, the other methods as in bench/RESULTS.md." if base else "No baseline in this run: "
                   "no speed-ups."))]
    out += [wrap(f"**{w}**") for w in R.warnings(results)]
    bullets = [] if state["busy"] else list(results["summary"])
    out.append("\n".join(wrap(f"- {b}", "  ") for b in [*bullets, contention_line(results)]))
    if base:
        out.append(f"![speed-up over {base}](bench/speedup.png)")
        ops = [*(op for op in TABLE_TITLES if op in results["ops"]), *(op for op in results["ops"]
                                                                          if op not in TABLE_TITLES)]
        for op in ops:
            for layout, names, lbase in R.layout_groups(results):
                where = ", channels-last memory (the -nhwc shapes)" * (layout == "nhwc")
                if lbase and any(e["op"] == op and e["shape"] in names and R.timed(e) for e in results["entries"]):
                    out += [f"{TABLE_TITLES.get(op, results['ops'][op])}{where}, speed-up over {lbase}:",
                            R.speedup_table(results, op, idx, names, lbase)]
    for b in results["mnist_epoch"]:
        out += [wrap(R.epoch_title(b)), R.epoch_table(b)]
    if "bwd" in results["ops"]:
        out.append(wrap("The backward is bounded by memory traffic: `python bench/floors.py` times its floor "
                        "(zero-filling a fresh grad_input, reading the indices and grad_output) at 1 thread on the "
                        "backward targets' shapes."))
    return "\n\n".join(out)


# ---- the README ---------------------------------------------------------------------------------

def slug(heading):
    """GitHub's anchor for a heading."""
    return "#" + re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def spans(text, where="README"):
    """name -> (start, end) of the text between each part's markers; ReadmeError when one is missing."""
    out = {}
    for name in PARTS:
        start, end = markers(name)
        counts = text.count(start), text.count(end)
        if counts != (1, 1) or text.index(start) > text.index(end):
            raise ReadmeError(f"{where}: the markers {start} ... {end} must each appear once, in that order (found "
                              f"{counts[0]} and {counts[1]}); put them around the generated part")
        out[name] = text.index(start) + len(start), text.index(end)
    return out


def fill(text, results, where="README"):
    """The README text with its generated parts from ``results``; (text, notes), notes for the person running it."""
    at = spans(text, where)
    heading = re.findall(r"^#{1,6} +(.+?) *$", text[:at["results"][0]], re.MULTILINE)
    anchor = slug(heading[-1]) if heading else "#benchmark-results"
    notes, cpus = [], results["machine"]["available_cpus"]
    if heading and (n := re.search(r"(\d+)-core", heading[-1])) and int(n.group(1)) != cpus:
        notes.append(f"the heading {heading[-1]!r} names another core count than the run's {cpus} CPUs")
    body = {"intro": "\n" + wrap(intro(results, anchor)), "results": "\n\n" + results_section(results) + "\n\n"}
    for name in sorted(PARTS, key=lambda n: -at[n][0]):  # from the end, so that the earlier positions hold
        i, j = at[name]
        text = text[:i] + body[name] + text[j:]
    return text, notes


def update(readme, results, log=print):
    """Rewrite ``readme``'s generated parts from ``results``; True when the file changed."""
    path = Path(readme)
    old = path.read_text()
    new, notes = fill(old, results, str(path))
    for n in notes:
        log(f"[readme] note: {n}")
    if new != old:
        path.write_text(new)
    return new != old


def commit(run_dir, readme=REPO / "README.md", bench=HERE, log=print):
    """Copy one run's files into ``bench`` (COMMITTED) and rewrite ``readme`` from it."""
    run = Path(run_dir)
    absent = [n for n in COMMITTED if not (run / n).is_file()]
    if absent:
        raise ReadmeError(f"{run} has no {', '.join(absent)}: run python bench/bench.py --out {run} (with matplotlib "
                          "installed, without --no-chart)")
    results = load(run / "results.json")
    fill(Path(readme).read_text(), results, str(readme))  # the markers are there: nothing is copied otherwise
    for src, dst in COMMITTED.items():
        if (run / src).resolve() != (Path(bench) / dst).resolve():
            shutil.copyfile(run / src, Path(bench) / dst)
    log(f"[readme] copied {', '.join(COMMITTED)} from {run} to {bench} ({', '.join(COMMITTED.values())})")
    if results["busy"]["busy"]:
        log(f"[readme] WARNING: {results['summary'][0]}")
    if results["settings"].get("quick"):
        log("[readme] WARNING: this is a --quick run")
    return update(readme, load(Path(bench) / "results.json"), log)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python bench/readme.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="a results.json; with --commit, the folder of a run (bench.py --out DIR)")
    p.add_argument("readme", nargs="?", default=str(REPO / "README.md"), help="the README (default: README.md)")
    p.add_argument("--commit", action="store_true", help="copy the run's results.md, results.json and speedup.png "
                   "into bench/ (as RESULTS.md, results.json, speedup.png), then rewrite the README from it")
    args = p.parse_args(argv)
    try:
        changed = commit(args.source, args.readme) if args.commit else update(args.readme, load(args.source))
    except (ReadmeError, OSError) as exc:
        print(f"python bench/readme.py: error: {exc}", file=sys.stderr)
        return 2
    print(f"[readme] {args.readme}: " + ("rewrote " if changed else "already up to date: ")
          + ", ".join(f"{a} ... {b}" for a, b in map(markers, PARTS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
