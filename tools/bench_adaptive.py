"""Time cpool's adaptive_avg_pool2d against torch's, one thread, interleaved.

    python tools/bench_adaptive.py [--reps N] [--threads T]

Each round calls every method once in turn (cpool and torch on NCHW and on
channels-last memory), so drifts of a shared machine hit them alike; the
medians over the rounds are printed, in microseconds, with cpool's results
checked against torch's bit for bit.
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import cpool  # noqa: E402

CASES = [((32, 512, 7, 7), 1), ((16, 256, 56, 56), 1), ((16, 256, 56, 56), (7, 7)), ((32, 512, 14, 14), (5, 3))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=31)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    cpool.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    for shape, size in CASES:
        x = rng.standard_normal(shape).astype(np.float32)
        x_cl = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
        t, t_cl = torch.from_numpy(x), torch.from_numpy(x_cl)
        methods = {
            "cpool NCHW": lambda x=x, size=size: cpool.adaptive_avg_pool2d(x, size),
            "torch NCHW": lambda t=t, size=size: F.adaptive_avg_pool2d(t, size),
            "cpool channels_last": lambda x=x_cl, size=size: cpool.adaptive_avg_pool2d(x, size),
            "torch channels_last": lambda t=t_cl, size=size: F.adaptive_avg_pool2d(t, size),
        }
        same = (methods["cpool NCHW"]().tobytes() == methods["torch NCHW"]().numpy().tobytes()
                and np.ascontiguousarray(methods["cpool channels_last"]()).tobytes()
                == np.ascontiguousarray(methods["torch channels_last"]().numpy()).tobytes())
        times = {name: [] for name in methods}
        for _ in range(args.reps):
            for name, fn in methods.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        cells = "  ".join(f"{name} {np.median(v) * 1e6:8.0f}" for name, v in times.items())
        print(f"{str(shape):18} output {str(size):7} {cells}  same bits: {same}")


if __name__ == "__main__":
    main()
