"""Record golden arrays from torch 2.13 for tests/test_correctness.py.

Run once (and again only if the case generator changes):
    python tools/make_golden.py
It writes tests/data/golden_torch.npz: for each random adversarial case the
input, the parameters, torch's values and indices (empty dilated windows
mapped to cpool's -1) and, for floating inputs, a grad_output with torch's
grad_input. The test then checks both backends against these arrays without
needing torch.
"""

import os
import sys

import numpy as np
import torch

TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
sys.path.insert(0, TESTS)
from helpers import empty_windows, full_params, random_case  # noqa: E402

N_CASES = 400
OUT = os.path.join(TESTS, "data", "golden_torch.npz")


def main():
    assert torch.__version__.startswith("2.13.0"), torch.__version__
    torch.set_num_threads(1)
    rng = np.random.default_rng(20261124)
    arrays = {"torch_version": np.array(torch.__version__)}
    n = 0
    while n < N_CASES:
        x, params = random_case(rng, max_hw=12)
        x = np.ascontiguousarray(x)
        k, s, p, d, ceil = full_params(params)
        try:
            tv, ti = torch.nn.functional.max_pool2d(torch.from_numpy(x), k, s, p, d, ceil, return_indices=True)
        except RuntimeError:
            continue
        tv, ti = tv.numpy(), ti.numpy()
        empty = empty_windows(x.shape[-2], x.shape[-1], tv.shape[-2], tv.shape[-1], k, s, p, d)
        arrays[f"{n}/x"] = x
        arrays[f"{n}/params"] = np.array([*k, *s, *p, *d, int(ceil), int(params["stride"] is None)])
        arrays[f"{n}/out"] = tv
        arrays[f"{n}/idx"] = np.where(empty, -1, ti)
        if x.dtype.kind == "f" and x.size and not empty.any():
            g = rng.standard_normal(tv.shape).astype(x.dtype)
            arrays[f"{n}/grad_out"] = g
            arrays[f"{n}/grad_in"] = torch.ops.aten.max_pool2d_with_indices_backward(
                torch.from_numpy(g), torch.from_numpy(x), list(k), list(s), list(p), list(d), ceil,
                torch.from_numpy(ti)).numpy()
        n += 1
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {n} cases to {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
