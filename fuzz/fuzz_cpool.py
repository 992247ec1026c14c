"""Coverage-guided fuzzing of cpool's public entry points with atheris (libFuzzer).

    python fuzz/fuzz_cpool.py --target max_pool2d [libFuzzer flags] [corpus dirs]
    python fuzz/fuzz_cpool.py --replay FILE...      # no atheris needed

Targets: those of harness.TARGETS (max_pool2d, max_pool2d_backward,
MaxPool2d, avg_pool2d, avg_pool2d_backward, adaptive_avg_pool2d,
adaptive_max_pool2d, max_unpool2d, indices), or all (the first byte picks
one). The invariants are in fuzz/harness.py; fuzz/README.md has the
sanitizer build and the commands. A broken invariant raises harness.Finding,
which atheris reports as a crash (and writes the input to a crash-* file);
an ASan/UBSan report aborts the process, which libFuzzer reports likewise.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=True)
    parser.add_argument("--target", default="all", help="one of harness.TARGETS (max_pool2d, avg_pool2d, ...) or all")
    parser.add_argument("--replay", nargs="+", metavar="FILE", help="run these inputs once each, without atheris")
    parser.add_argument("--describe", action="store_true", help="with --replay: print each decoded spec")
    parser.add_argument("--allow-numpy", action="store_true",
                        help="do not require the compiled backend (a replay on CPOOL_BACKEND=numpy)")
    return parser.parse_known_args(argv)


def _target_of(path, default):
    """A crash file's target is the part of its name before '--' (see fuzz/README.md)."""
    name = os.path.basename(path)
    return name.split("--", 1)[0] if "--" in name else default


def _check_build(cpool, allow_numpy):
    if cpool.backend != "cython" and not allow_numpy:
        sys.exit(f"fuzz_cpool: cpool runs on the {cpool.backend!r} backend; the fuzzer needs the compiled one")
    build = os.environ.get("CPOOL_FUZZ_BUILD")
    if build and not os.path.abspath(cpool.__file__).startswith(os.path.abspath(build)):
        sys.exit(f"fuzz_cpool: CPOOL_FUZZ_BUILD={build} but cpool comes from {cpool.__file__}")
    cfg = cpool.config()
    print(f"fuzz_cpool: cpool from {os.path.dirname(cpool.__file__)}, backend {cfg['backend']}, isa {cfg['isa']}",
          file=sys.stderr, flush=True)


def main(argv=None):
    opts, rest = _parse(sys.argv[1:] if argv is None else argv)
    if opts.replay:
        import harness

        import cpool
        _check_build(cpool, opts.allow_numpy)
        for path in opts.replay:
            with open(path, "rb") as f:
                data = f.read()
            target = _target_of(path, opts.target)
            if opts.describe:
                print(harness.describe(target, data))
            harness.run_one(target, data, cpool)
            print(f"fuzz_cpool: {path}: ok ({target})")
        return 0

    import atheris

    with atheris.instrument_imports(include=["cpool", "harness", "provider"]):
        import harness

        import cpool
    if opts.target != "all" and opts.target not in harness.TARGETS:
        sys.exit(f"fuzz_cpool: unknown target {opts.target!r}; one of {', '.join(harness.TARGET_NAMES)}, all")
    _check_build(cpool, opts.allow_numpy)
    target = opts.target

    def test_one_input(data):
        harness.run_one(target, data, cpool)

    # argv[0] as a whole command: libFuzzer's -merge=1 (and -fork) re-run it
    # through the shell, and the children need the interpreter and the target.
    argv0 = " ".join(shlex.quote(a) for a in (sys.executable, os.path.abspath(__file__), "--target", target)
                     + (("--allow-numpy",) if opts.allow_numpy else ()))
    atheris.Setup([argv0] + rest, test_one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
