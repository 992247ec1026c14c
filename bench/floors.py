"""What the memory system allows, next to cpool and torch, for the shapes of the backward targets.

    python bench/floors.py            # about a minute; needs cpool and torch

For each shape of a backward target in cases.TARGETS (float32, 1 thread, all in one run):

* zero gi: a fresh grad_input zeroed with glibc's memset (any backward writes every element);
* read idx+go: one pass over the int64 indices and grad_output;
* cpool's backward (public API, fresh output, as benchmarked), torch's, and the target time
  (torch / the ratio asked for).

Then, for the ResNet stem, what a fresh output costs: an array of more than 32 MiB comes from mmap on every
call (glibc's threshold stops growing there) and the kernel zero-fills its pages on first touch; filling a
preallocated array does not pay that.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
import time

import cases as C
import numpy as np

_memset = ctypes.CDLL(None).memset
_memset.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t)


def median_ms(fn, seconds, min_runs=7):
    fn()
    times, end = [], time.perf_counter() + seconds
    while len(times) < min_runs or time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def fresh_zeroed(shape, dtype=np.float32):
    a = np.empty(shape, dtype)
    _memset(a.ctypes.data, 0, a.nbytes)
    return a


def backward_targets():
    """(case, ratio asked of cpool's backward over torch's) for every shape of a backward target."""
    return [(C.parse_shape(sh), want) for _, _, ops, shapes, checks in C.TARGETS if ops == ("bwd",)
            for sh in shapes for mine, rival, want in checks if rival.startswith("torch t")]


def backward_row(cpool, torch, case, ratio, seconds, rng):
    x = rng.standard_normal(case.shape, dtype=np.float32)
    out, idx = cpool.max_pool2d(x, *case.args, return_indices=True)
    go = rng.standard_normal(out.shape, dtype=np.float32)
    tx, tgo, tidx = torch.from_numpy(x), torch.from_numpy(go), torch.from_numpy(idx)
    zero = median_ms(lambda: fresh_zeroed(case.shape), seconds)
    read = median_ms(lambda: (idx.view(np.uint64).max(), go.max()), seconds)
    cp = median_ms(lambda: cpool.max_pool2d_backward(go, idx, case.shape), seconds)
    tt = median_ms(lambda: torch.ops.aten.max_pool2d_with_indices_backward(tgo, tx, *case.args, False, tidx), seconds)
    return (f"| {case.name} {case.describe()} | {zero:.3f} | {read:.3f} | {zero + read:.3f} | {cp:.3f} | {tt:.3f} "
            f"| {tt / ratio:.3f} (torch / {ratio}) |")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python bench/floors.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=1.0, help="seconds per measurement (default 1)")
    p.add_argument("--shapes", help="comma-separated shape names (default: those of the backward targets)")
    args = p.parse_args(argv)
    import cpool

    try:
        import torch
    except ImportError:
        sys.exit("bench/floors.py needs torch: python -m pip install '.[bench]'")
    cpool.set_num_threads(1)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print("1 thread, float32; median ms of repeated calls\n")
    print("| shape | zero gi | read idx+go | zero + read | cpool bwd | torch bwd | target |\n" + "|---" * 7 + "|")
    for case, ratio in backward_targets():
        if not args.shapes or case.name in args.shapes.split(","):
            print(backward_row(cpool, torch, case, ratio, args.seconds, rng))

    stem = C.parse_shape("resnet-stem")
    x = rng.standard_normal(stem.shape, dtype=np.float32)
    idx = np.empty(stem.out_shape, np.int64)
    print(f"\nresnet-stem {stem.describe()}: forward with int64 indices ({idx.nbytes / 2**20:.0f} MiB of them), "
          "1 thread\n\n| what | ms |\n|---|---|")
    fresh = median_ms(lambda: fresh_zeroed(idx.shape, np.int64), args.seconds)
    print(f"| fill a fresh array of the indices' size | {fresh:.2f} |")
    print(f"| fill it preallocated | {median_ms(lambda: _memset(idx.ctypes.data, 0, idx.nbytes), args.seconds):.2f} |")
    fwd = median_ms(lambda: cpool.max_pool2d(x, *stem.args, return_indices=True), args.seconds)
    print(f"| cpool, fresh outputs (public API) | {fwd:.2f} |")


if __name__ == "__main__":
    main()
