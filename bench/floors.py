#!/usr/bin/env python
"""What the memory system allows, for the issue-4 targets that are not met.

    python bench/floors.py            # ~1 minute; needs cpool and torch==2.13.0

For each backward target (float32, k2 s2 or the ResNet stem) it times, at
1 thread and in one run, next to each other:

* ``zero gi``: allocating a fresh grad_input and zeroing it with glibc's
  ``memset`` (what any backward must at least do: every element is written);
* ``read``: one pass over the int64 indices and grad_output (``max``);
* cpool's backward, from the public API (fresh output, as benchmarked) and
  from the kernel with a preallocated output;
* torch's backward, and the target time (torch / the ratio asked for).

For the ResNet stem it also shows what the fresh output costs: an array of
more than 32 MiB comes from ``mmap`` on every call (glibc's threshold stops
growing there), and the kernel zero-fills its pages on first touch; the
same kernel on a preallocated output does not pay that.
"""

from __future__ import annotations

import ctypes
import statistics
import sys
import time

import numpy as np

import cpool
from cpool import _fast
from cpool._validation import pool_geometry

try:
    import torch
except ImportError:  # pragma: no cover - the script says what it needs
    sys.exit("bench/floors.py needs torch (python -m pip install '.[bench]')")

K = _fast.KERNELS
_memset = ctypes.CDLL(None).memset
_memset.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t)

# name, shape, kernel, stride, padding, ratio the issue asks of the backward
CASES = [
    ("mnist-conv", (64, 32, 28, 28), 2, 2, 0, 3),
    ("mnist-first", (128, 8, 28, 28), 2, 2, 0, 3),
    ("14x14x64", (256, 64, 14, 14), 2, 2, 0, 2),
    ("resnet-stem", (32, 64, 112, 112), 3, 2, 1, 2),
]


def median_ms(fn, seconds=1.0, min_runs=7):
    fn()
    times, end = [], time.perf_counter() + seconds
    while len(times) < min_runs or time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def fresh_zeroed(shape):
    a = np.empty(shape, np.float32)
    _memset(a.ctypes.data, 0, a.nbytes)
    return a


def main():
    cpool.set_num_threads(1)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print("1 thread, float32; median ms of repeated calls\n")
    print("| shape | zero gi | read idx+go | zero + read | cpool bwd | cpool bwd, gi preallocated "
          "| torch bwd | target |")
    print("|---|---|---|---|---|---|---|---|")
    for name, shape, k, s, p, ratio in CASES:
        x = rng.standard_normal(shape, dtype=np.float32)
        out, idx = cpool.max_pool2d(x, k, s, p, return_indices=True)
        go = rng.standard_normal(out.shape, dtype=np.float32)
        gi = np.empty(shape, np.float32)
        tx, tgo, tidx = torch.from_numpy(x), torch.from_numpy(go), torch.from_numpy(idx)
        zero = median_ms(lambda: fresh_zeroed(shape))
        read = median_ms(lambda: (idx.view(np.uint64).max(), go.max()))
        cp = median_ms(lambda: cpool.max_pool2d_backward(go, idx, shape))
        kern = median_ms(lambda: K.max_pool2d_backward(go, idx, gi, 1))
        tt = median_ms(lambda: torch.ops.aten.max_pool2d_with_indices_backward(
            tgo, tx, [k, k], [s, s], [p, p], [1, 1], False, tidx))
        print(f"| {name} {'x'.join(map(str, shape))} | {zero:.3f} | {read:.3f} | {zero + read:.3f} | {cp:.3f} "
              f"| {kern:.3f} | {tt:.3f} | {tt / ratio:.3f} (torch / {ratio}) |")

    name, shape, k, s, p, _ = CASES[-1]
    x = rng.standard_normal(shape, dtype=np.float32)
    g = pool_geometry(shape, (k, k), (s, s), (p, p), (1, 1), False)
    out = np.empty(shape[:2] + (g.OH, g.OW), np.float32)
    idx = np.empty(out.shape, np.int64)
    print(f"\n{name}: forward with int64 indices ({idx.nbytes / 2**20:.0f} MiB of them), 1 thread\n")
    print("| what | ms |")
    print("|---|---|")
    print(f"| fill a fresh array of the indices' size | {median_ms(lambda: fresh_zeroed(idx.shape + (2,))):.2f} |")
    print(f"| fill it preallocated | {median_ms(lambda: _memset(idx.ctypes.data, 0, idx.nbytes)):.2f} |")
    print(f"| cpool, fresh outputs (public API) | "
          f"{median_ms(lambda: cpool.max_pool2d(x, k, s, p, return_indices=True)):.2f} |")
    print(f"| cpool kernel, preallocated outputs | "
          f"{median_ms(lambda: K.max_pool2d_forward(x, out, idx, g.packed, 1)):.2f} |")


if __name__ == "__main__":
    main()
