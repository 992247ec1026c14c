#!/usr/bin/env python
"""Print the README's error table from the tested rows of tests/test_api_errors.py.

Every row of ``ERROR_CASES`` (and of ``tests/test_layouts.py``'s
``LAYOUT_ERROR_CASES``: data formats and ``out=``) is called on the public API (``cpool``) and the
exception it actually raises is printed as a markdown table::

    | input | exception | message example |

so the README's table is exactly what the test suite checks. Exits non-zero
if a row does not raise the exception (and message) its test expects.

Usage::

    PYTHONPATH=. python tools/error_table.py            # markdown to stdout
    PYTHONPATH=. python tools/error_table.py --max-len 160
"""

from __future__ import annotations

import argparse
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "tests")


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-len", type=int, default=0,
                        help="shorten messages to this many characters (0: full messages)")
    args = parser.parse_args(argv)

    sys.path.insert(0, TESTS)
    from test_api_errors import ERROR_CASES
    from test_layouts import LAYOUT_ERROR_CASES

    import cpool

    rows, failures = [], []
    for what, call, exc, pattern in ERROR_CASES + LAYOUT_ERROR_CASES:
        try:
            call(cpool)
        except Exception as raised:  # what it actually raises is the point
            msg = str(raised)
            if type(raised) is not exc and not isinstance(raised, exc):
                failures.append(f"{what}: expected {exc.__name__}, got {type(raised).__name__}: {msg}")
            elif not re.search(pattern, msg):
                failures.append(f"{what}: message {msg!r} does not match {pattern!r}")
            if args.max_len and len(msg) > args.max_len:
                msg = msg[: args.max_len - 3] + "..."
            rows.append((what, type(raised).__name__, msg))
        else:
            failures.append(f"{what}: raised nothing")
            rows.append((what, "(none)", ""))

    print("| input | exception | message example |")
    print("|---|---|---|")
    for what, name, msg in rows:
        print(f"| {_cell(what)} | `{name}` | {_cell(msg)} |")
    if failures:
        print("\n".join(["", "error_table.py: rows that do not behave as tested:"] + failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
