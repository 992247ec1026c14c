"""cpool.avg_pool3d (+ backward) against torch on the CPU, float32, side by side.

Medians of interleaved repeats (cpool, torch, cpool, ...) per shape, layout
(contiguous NCDHW and channels_last_3d memory) and thread count; with
``--out``, cpool writes into buffers made once (out=), no fresh pages::

    python tools/bench_avg3d.py [--repeats 15] [--threads 1 2] [--out]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import cpool

CASES = (  # (shape, kernel_size, stride, padding)
    ((8, 64, 16, 56, 56), 2, 2, 0),
    ((2, 32, 64, 64, 64), 3, 2, 1),
)


def _median_pair(fa, fb, repeats: int) -> tuple[float, float]:
    fa(), fb()  # warm up
    ta, tb = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fa()
        t1 = time.perf_counter()
        fb()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    return statistics.median(ta), statistics.median(tb)


def _time_case(x, tx, go, go_t, k: int, s: int, p: int, repeats: int, outs=(None, None)):
    """(cpool, torch) median seconds of the forward and of the backward; ``outs``: cpool's out= buffers (or
    None) for each."""
    fwd = _median_pair(lambda: cpool.avg_pool3d(x, k, s, p, out=outs[0]),
                       lambda: torch.nn.functional.avg_pool3d(tx, k, s, p), repeats)
    bwd = _median_pair(lambda: cpool.avg_pool3d_backward(go, x.shape, k, s, p, out=outs[1]),
                       lambda: torch.ops.aten.avg_pool3d_backward(go_t, tx, [k] * 3, [s] * 3, [p] * 3, False, True,
                                                                  None),
                       repeats)
    return fwd, bwd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", action="store_true", help="cpool into out= buffers made once")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'case':<34} {'layout':<8} {'thr':>3} {'op':<8} {'cpool ms':>9} {'torch ms':>9} {'speedup':>8}")
    for shape, k, s, p in CASES:
        base = rng.standard_normal(shape, dtype=np.float32)
        for layout in ("NCDHW", "CL3D"):
            tx = torch.from_numpy(base)
            if layout == "CL3D":
                tx = tx.contiguous(memory_format=torch.channels_last_3d)
            x = tx.numpy()  # the same memory: channels-last-3d strides for CL3D
            ty = torch.nn.functional.avg_pool3d(tx, k, s, p)
            go_t = torch.ones_like(ty)
            go = go_t.numpy()
            for n in args.threads:
                torch.set_num_threads(n)
                cpool.set_num_threads(n)
                outs = (np.zeros_like(ty.numpy()), np.zeros_like(x)) if args.out else (None, None)
                fwd, bwd = _time_case(x, tx, go, go_t, k, s, p, args.repeats, outs)
                case = f"{'x'.join(map(str, shape))} k{k} s{s} p{p}"
                for op, (a, b) in (("forward", fwd), ("backward", bwd)):
                    print(f"{case:<34} {layout:<8} {n:>3} {op:<8} {a * 1e3:>9.2f} {b * 1e3:>9.2f} {b / a:>7.2f}x",
                          flush=True)


if __name__ == "__main__":
    main()
