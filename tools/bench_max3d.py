"""cpool's max_pool3d (forward with indices, backward) against torch's, side
by side: contiguous (NCDHW) and channels_last_3d memory, float32, 1 and 2
threads; medians of interleaved repeats (each check's results are compared
with torch's first).

    PYTHONPATH=. python tools/bench_max3d.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
import torch

import cpool

SHAPES = {"8x64x16x56x56 k2 s2": ((8, 64, 16, 56, 56), (2, 2, 0)),
          "2x32x64x64x64 k3 s2 p1": ((2, 32, 64, 64, 64), (3, 2, 1))}


def _median_pair(f, g, repeats):
    a, b = [], []
    for _ in range(repeats):  # interleaved, so both see the same machine load
        t = time.perf_counter()
        f()
        a.append(time.perf_counter() - t)
        t = time.perf_counter()
        g()
        b.append(time.perf_counter() - t)
    return float(np.median(a)), float(np.median(b))


def _row(name, layout, threads, fw, bw):
    return (f"{name:24s} {layout:17s} {threads}t  fwd cpool {fw[0] * 1e3:7.2f} ms torch {fw[1] * 1e3:7.2f} ms "
            f"x{fw[1] / fw[0]:5.2f} | bwd cpool {bw[0] * 1e3:7.2f} ms torch {bw[1] * 1e3:7.2f} ms "
            f"x{bw[1] / bw[0]:5.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    F = torch.nn.functional
    backward = torch.ops.aten.max_pool3d_with_indices_backward
    for name, (shape, (k, s, p)) in SHAPES.items():
        x = rng.standard_normal(shape, dtype=np.float32)
        for layout in ("contiguous", "channels_last_3d"):
            xin = x if layout == "contiguous" else np.ascontiguousarray(np.moveaxis(x, 1, -1)).transpose(0, 4, 1, 2, 3)
            t = torch.from_numpy(xin)
            o, i = cpool.max_pool3d(xin, k, s, p, return_indices=True)
            to, ti = F.max_pool3d(t, k, s, p, return_indices=True)
            assert np.array_equal(o, to.numpy()) and np.array_equal(i, ti.numpy())
            go = rng.standard_normal(o.shape, dtype=np.float32)
            if layout != "contiguous":
                go = np.ascontiguousarray(np.moveaxis(go, 1, -1)).transpose(0, 4, 1, 2, 3)
            tgo = torch.from_numpy(go)
            assert np.array_equal(cpool.max_pool3d_backward(go, i, xin.shape),
                                  backward(tgo, t, k, s, p, 1, False, ti).numpy())
            for threads in (1, 2):
                cpool.set_num_threads(threads)
                torch.set_num_threads(threads)
                fw = _median_pair(partial(cpool.max_pool3d, xin, k, s, p, return_indices=True),
                                  partial(F.max_pool3d, t, k, s, p, return_indices=True), args.repeats)
                bw = _median_pair(partial(cpool.max_pool3d_backward, go, i, xin.shape),
                                  partial(backward, tgo, t, k, s, p, 1, False, ti), args.repeats)
                print(_row(name, layout, threads, fw, bw), flush=True)


if __name__ == "__main__":
    main()
