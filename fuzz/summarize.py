"""Summarise a fuzz/long_run.sh campaign as a Markdown table.

    python fuzz/summarize.py /tmp/cpool-fuzz-long

Per target and variant: fuzzing time, executions (libFuzzer's
stat::number_of_executed_units, summed over restarts), the last cov: / ft:
figures, the runs that ended on a finding, and the corpus size at the end.
"""

from __future__ import annotations

import datetime
import os
import re
import sys


def _segments(text):
    return re.split(r"^=== exit .*$", text, flags=re.M)


def summarize(out):
    rows = []
    logs = os.path.join(out, "logs")
    for name in sorted(os.listdir(logs)):
        if not name.endswith(".log"):
            continue
        target, isa = name[:-4].rsplit("-", 1)
        with open(os.path.join(logs, name), errors="replace") as f:
            text = f.read()
        execs = sum(int(n) for n in re.findall(r"stat::number_of_executed_units: (\d+)", text))
        cov = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)/", text)
        starts = [datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ")
                  for t in re.findall(r"^=== (\S+Z) ", text, flags=re.M)]
        ends = len(re.findall(r"^=== exit (\d+)", text, flags=re.M))
        findings = len(re.findall(r"^=== exit [1-9]", text, flags=re.M))
        seconds = os.path.getmtime(os.path.join(logs, name)) - starts[0].replace(
            tzinfo=datetime.timezone.utc).timestamp() if starts else 0
        corpus_dir = os.path.join(out, "corpus", target)
        corpus = len(os.listdir(corpus_dir)) if os.path.isdir(corpus_dir) else 0
        rows.append((target, isa, seconds, execs, cov[-1] if cov else ("-", "-", "-"), ends, findings, corpus))
    lines = ["| target | CPOOL_ISA | time | executions | cov | ft | runs ending on a finding | corpus at end |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    total_s = total_x = 0
    for target, isa, seconds, execs, (cov, ft, _), ends, findings, corpus in rows:
        total_s += seconds
        total_x += execs
        lines.append(f"| {target} | {isa} | {seconds / 60:.1f} min | {execs:,} | {cov} | {ft} | "
                     f"{findings} of {ends} | {corpus} |")
    lines.append(f"| **total** | | **{total_s / 60:.1f} min** | **{total_x:,}** | | | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarize(sys.argv[1]))
