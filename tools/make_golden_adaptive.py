"""Record golden arrays from torch 2.13 for tests/test_adaptive_pool.py.

Run once (and again only if the cases change):
    python tools/make_golden_adaptive.py
It writes tests/data/golden_adaptive_torch.npz: for each random case the
(N, C, H, W) input, the output size (-1 for None), the memory layout torch
ran on ("planes" or "channels_last"), torch's adaptive average, max and
argmax, a grad_output and torch's gradients of both (for a 1x1 average the
gradient autograd gives torch's mean), all stored C-contiguous in NCHW
order. The test checks both backends against them without torch.
"""

import os

import numpy as np
import torch
import torch.nn.functional as F

TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
OUT = os.path.join(TESTS, "data", "golden_adaptive_torch.npz")
N_CASES = 80


def random_input(rng, dtype, shape):
    scale = 10.0 ** rng.integers(-3, 4 if dtype == np.float16 else 8, shape)
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    x.flat[rng.integers(0, x.size, max(1, x.size // 16))] = -0.0
    x.flat[rng.integers(0, x.size, max(1, x.size // 20))] = x.flat[0]  # ties
    return x


def main():
    assert torch.__version__.startswith("2.13.0"), torch.__version__
    torch.set_num_threads(1)
    rng = np.random.default_rng(20261202)
    arrays = {"torch_version": np.array(torch.__version__)}
    for n in range(N_CASES):
        dtype = (np.float16, np.float32, np.float64)[n % 3]
        C = int(rng.integers(1, 6)) if n % 2 else int(rng.integers(8, 20))
        H, W = (int(v) for v in rng.integers(1, 11, 2))
        if H * W < 2:
            W = 2
        x = random_input(rng, dtype, (int(rng.integers(1, 3)), C, H, W))
        pick = n % 5
        size = [(1, 1), (int(rng.integers(1, H + 4)), -1), (int(rng.integers(1, H + 5)), int(rng.integers(1, W + 5))),
                (-1, int(rng.integers(1, W + 4))), (int(rng.integers(1, 2 * H + 2)),) * 2][pick]
        tsize = tuple(None if v < 0 else v for v in size)
        memory = "channels_last" if (n // 5) % 2 else "planes"
        t = torch.from_numpy(x)
        if memory == "channels_last":
            t = t.contiguous(memory_format=torch.channels_last)
        avg = F.adaptive_avg_pool2d(t, tsize)
        mv, mi = F.adaptive_max_pool2d(t, tsize, return_indices=True)
        go = rng.standard_normal(tuple(avg.shape)).astype(dtype)
        go_t = torch.from_numpy(go)
        if memory == "channels_last":
            go_t = go_t.contiguous(memory_format=torch.channels_last)
        if tuple(avg.shape[-2:]) == (1, 1):
            leaf = t.detach().clone().requires_grad_()
            F.adaptive_avg_pool2d(leaf, 1).backward(go_t)
            avg_grad = leaf.grad
        else:
            avg_grad = torch.ops.aten._adaptive_avg_pool2d_backward(go_t, t)
        max_grad = torch.ops.aten.adaptive_max_pool2d_backward(go_t, t, mi)
        name = str(n)
        arrays[f"{name}/x"] = x
        arrays[f"{name}/size"] = np.array(size)
        arrays[f"{name}/format"] = np.array("NCHW")
        arrays[f"{name}/memory"] = np.array(memory)
        arrays[f"{name}/avg"] = np.ascontiguousarray(avg.numpy())
        arrays[f"{name}/max"] = np.ascontiguousarray(mv.numpy())
        arrays[f"{name}/argmax"] = np.ascontiguousarray(mi.numpy())
        arrays[f"{name}/go"] = go
        arrays[f"{name}/avg_grad"] = np.ascontiguousarray(avg_grad.numpy())
        arrays[f"{name}/max_grad"] = np.ascontiguousarray(max_grad.numpy())
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {N_CASES} cases to {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
