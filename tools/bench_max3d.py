"""cpool's max_pool3d (forward with indices, backward) against torch's, side
by side: contiguous (NCDHW) and channels_last_3d memory, float32, 1 and 2
threads; medians of interleaved repeats.

    python tools/bench_max3d.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import cpool

SHAPES = {"8x64x16x56x56 k2 s2": ((8, 64, 16, 56, 56), dict(kernel_size=2, stride=2)),
          "2x32x64x64x64 k3 s2 p1": ((2, 32, 64, 64, 64), dict(kernel_size=3, stride=2, padding=1))}


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    F = torch.nn.functional
    for name, (shape, kw) in SHAPES.items():
        x = rng.standard_normal(shape, dtype=np.float32)
        for layout in ("contiguous", "channels_last_3d"):
            xin = x if layout == "contiguous" else np.ascontiguousarray(x.transpose(0, 2, 3, 4, 1)).transpose(0, 4, 1, 2, 3)
            t = torch.from_numpy(xin)
            o, i = cpool.max_pool3d(xin, return_indices=True, **kw)
            to, ti = F.max_pool3d(t, return_indices=True, **kw)
            assert np.array_equal(o, to.numpy()) and np.array_equal(i, ti.numpy())
            go = np.ones_like(o)
            tgo = torch.from_numpy(go)
            for threads in (1, 2):
                cpool.set_num_threads(threads)
                torch.set_num_threads(threads)
                fw = _median_pair(lambda: cpool.max_pool3d(xin, return_indices=True, **kw),
                                  lambda: F.max_pool3d(t, return_indices=True, **kw), args.repeats)
                bw = _median_pair(lambda: cpool.max_pool3d_backward(go, i, xin.shape),
                                  lambda: torch.ops.aten.max_pool3d_with_indices_backward(
                                      tgo, t, kw["kernel_size"], kw["stride"], kw.get("padding", 0), 1, False, ti),
                                  args.repeats)
                print(f"{name:24s} {layout:17s} {threads}t  fwd cpool {fw[0]*1e3:7.2f} ms torch {fw[1]*1e3:7.2f} ms "
                      f"x{fw[1]/fw[0]:5.2f} | bwd cpool {bw[0]*1e3:7.2f} ms torch {bw[1]*1e3:7.2f} ms x{bw[1]/bw[0]:5.2f}",
                      flush=True)


if __name__ == "__main__":
    main()
