"""Record golden arrays from torch 2.13 for tests/test_golden_nd.py (1-D and 3-D pooling).

Run once (and again only if the cases change):
    python tools/make_golden_nd.py
It writes tests/data/golden_nd_torch.npz: for each random case its op family,
the input (stored C-contiguous in channels-first order), the memory layout
torch ran on ("contiguous" or "channels_last": torch's channels_last_3d, or
for 1-D the (N, L, C) memory of a transposed tensor), the arguments, a
grad_output and torch's results, forward and backward. The test checks both
cpool backends against them bit for bit without torch.
"""

import os

import numpy as np
import torch
import torch.nn.functional as F

TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
OUT = os.path.join(TESTS, "data", "golden_nd_torch.npz")
CASES_PER_FAMILY = 24
FAMILIES = ("max3d", "avg3d", "adaptive3d", "unpool3d", "max1d", "avg1d", "adaptive1d", "unpool1d")


def random_input(rng, dtype, shape, specials=True):
    """Values over many magnitudes, with -0.0, ties and (``specials``) a few NaNs of two payloads and infinities."""
    scale = 10.0 ** rng.integers(-3, 4 if dtype == np.float16 else 8, shape)
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    flat = x.reshape(-1)
    flat[rng.integers(0, flat.size, max(1, flat.size // 16))] = -0.0
    flat[rng.integers(0, flat.size, max(1, flat.size // 20))] = flat[0]  # ties
    if rng.random() < 0.5 and specials:
        bits = flat.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[x.itemsize])
        quiet = {2: 0x7E00, 4: 0x7FC00000, 8: 0x7FF8000000000000}[x.itemsize]
        for payload in (1, 2):
            bits[rng.integers(0, flat.size, max(1, flat.size // 40))] = quiet | payload
        flat[rng.integers(0, flat.size, max(1, flat.size // 40))] = np.inf
        flat[rng.integers(0, flat.size, max(1, flat.size // 40))] = -np.inf
    return x


def channels_last(t):
    if t.dim() == 5:
        return t.contiguous(memory_format=torch.channels_last_3d)
    return t.transpose(1, 2).contiguous().transpose(1, 2)  # (N, C, L) over (N, L, C) memory


def autograd(fn, t, go):
    leaf = t.detach().clone().requires_grad_()
    fn(leaf).backward(go)
    return leaf.grad


def record(rng, family, n):
    three_d = family.endswith("3d")
    dtypes = {"avg3d": (np.float32, np.float64), "max1d": (np.float16, np.float32, np.float64)}.get(
        family, (np.float16, np.float32, np.float64))
    dtype = dtypes[n % len(dtypes)]
    spatial = tuple(int(v) for v in rng.integers(3, 8, 3 if three_d else 1))
    if family == "max1d":
        spatial = (int(rng.integers(3, 24)),)
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 6)) if n % 2 else int(rng.integers(8, 13))) + spatial
    # A 1x1x1 adaptive average is torch's mean, whose choice among NaN payloads
    # cpool does not reproduce (only where the NaNs are): no NaNs there.
    x = random_input(rng, dtype, shape, specials=not (family.startswith("adaptive") and n % 6 == 5))
    memory = "channels_last" if (n // len(dtypes)) % 2 else "contiguous"
    t = torch.from_numpy(x)
    if memory == "channels_last":
        t = channels_last(t)
    k = int(rng.integers(1, min(spatial) + 1))
    s = int(rng.integers(1, 4))
    p = int(rng.integers(0, k // 2 + 1))
    d = int(rng.integers(1, 3)) if family in ("max3d", "max1d") and k > 1 and n % 3 == 0 else 1
    ceil = bool(rng.integers(0, 2))
    rec = {"family": family, "x": x, "memory": memory}
    if family in ("max3d", "max1d", "unpool3d", "unpool1d"):
        if family.startswith("unpool"):
            d, ceil = 1, False
        pool = F.max_pool3d if three_d else F.max_pool1d
        try:
            v, i = pool(t, k, s, p, d, ceil, return_indices=True)
        except RuntimeError:  # an output too small for these parameters: try the plainest
            k, s, p, d, ceil = 1, 1, 0, 1, False
            v, i = pool(t, k, s, p, d, ceil, return_indices=True)
        rec["args"] = np.array([k, s, p, d, int(ceil)])
        go = torch.from_numpy(random_input(rng, dtype, tuple(v.shape)))
        if family.startswith("max"):
            rec.update(values=v, indices=i, grad_out=go)
            if three_d:
                rec["grad_in"] = torch.ops.aten.max_pool3d_with_indices_backward(go, t, [k] * 3, [s] * 3, [p] * 3,
                                                                                [d] * 3, ceil, i)
            else:
                rec["values_only"] = F.max_pool1d(t, k, s, p, d, ceil)  # torch's own 1-D values-only kernel
                rec["grad_in"] = autograd(lambda a: F.max_pool1d(a, k, s, p, d, ceil), t, go)
        else:
            size = tuple(t.shape[2:])
            unpool = F.max_unpool3d if three_d else F.max_unpool1d
            u = unpool(v, i, k, s, p, output_size=size)
            gu = torch.from_numpy(random_input(rng, dtype, tuple(u.shape)))
            rec.update(values=v, indices=i, unpooled=u, grad_out=gu,
                       grad_in=autograd(lambda a: unpool(a, i, k, s, p, output_size=size), v, gu))
    elif family in ("avg3d", "avg1d"):
        cip = bool(rng.integers(0, 2))
        div = int(rng.integers(1, 30)) if three_d and n % 4 == 3 else 0
        if three_d:  # torch's 3-D average needs every size at least the kernel
            k = min(k, min(spatial))
        pool = F.avg_pool3d if three_d else F.avg_pool1d
        extra = (div or None,) if three_d else ()
        try:
            out = pool(t, k, s, p, ceil, cip, *extra)
        except RuntimeError:
            k, s, p, ceil = 1, 1, 0, False
            out = pool(t, k, s, p, ceil, cip, *extra)
        go = torch.from_numpy(random_input(rng, dtype, tuple(out.shape)))
        rec.update(args=np.array([k, s, p, int(ceil), int(cip), div]), values=out, grad_out=go,
                   grad_in=autograd(lambda a: pool(a, k, s, p, ceil, cip, *extra), t, go))
    else:  # adaptive
        size = tuple(int(v) for v in rng.integers(1, 2 * min(spatial) + 1, len(spatial)))
        if n % 6 == 5:
            size = (1,) * len(spatial)
        avg_fn = F.adaptive_avg_pool3d if three_d else F.adaptive_avg_pool1d
        max_fn = F.adaptive_max_pool3d if three_d else F.adaptive_max_pool1d
        avg = avg_fn(t, size)
        mv, mi = max_fn(t, size, return_indices=True)
        go = torch.from_numpy(random_input(rng, dtype, tuple(avg.shape)))
        if memory == "channels_last":
            go = channels_last(go)
        rec.update(size=np.array(size), avg=avg, max=mv, argmax=mi, grad_out=go,
                   avg_grad=autograd(lambda a: avg_fn(a, size), t, go),
                   max_grad=autograd(lambda a: max_fn(a, size), t, go))
    return rec


def main():
    assert torch.__version__.startswith("2.13.0"), torch.__version__
    torch.set_num_threads(1)
    rng = np.random.default_rng(20261202)
    arrays = {"torch_version": np.array(torch.__version__)}
    count = 0
    for family in FAMILIES:
        for n in range(CASES_PER_FAMILY):
            for key, value in record(rng, family, n).items():
                if isinstance(value, torch.Tensor):
                    value = value.contiguous().numpy()
                arrays[f"{count}/{key}"] = np.ascontiguousarray(value) if isinstance(value, np.ndarray) else \
                    np.array(value)
            count += 1
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {count} cases to {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
