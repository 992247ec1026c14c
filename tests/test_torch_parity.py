"""Exact parity with torch 2.13 on random configurations (skipped without torch).

Values (bitwise, NaN payloads included), indices, grad_input, and the set of
rejected configurations. The golden file test keeps this checked without torch.
"""

import numpy as np
import pytest

from reference import ALL_DTYPES, full_params, random_case

torch = pytest.importorskip("torch")
F = torch.nn.functional


def empty_windows(H, W, OH, OW, k, s, p, d):
    def axis(L, O, k, s, p, d):
        pos = np.arange(O)[:, None] * s - p + np.arange(k)[None, :] * d
        return ((pos >= 0) & (pos < L)).any(axis=1)

    return ~(axis(H, OH, k[0], s[0], p[0], d[0])[:, None] & axis(W, OW, k[1], s[1], p[1], d[1])[None, :])


def torch_forward(x, params):
    k, s, p, d, ceil = full_params(params)
    v, i = F.max_pool2d(torch.from_numpy(x), k, s, p, d, ceil, return_indices=True)
    return v.numpy(), i.numpy()


def test_torch_version():
    assert torch.__version__.split("+")[0] == "2.13.0", "parity is pinned to torch 2.13.0"


@pytest.mark.parametrize("seed", range(10))
def test_forward_and_backward_match_torch(impl, seed):
    torch.set_num_threads(1)
    rng = np.random.default_rng(1000 + seed)
    compared = 0
    for _ in range(200):
        x, params = random_case(rng, max_hw=12)
        x = np.ascontiguousarray(x)
        try:
            tv, ti = torch_forward(x, params)
        except RuntimeError:
            with pytest.raises(ValueError):
                impl.max_pool2d(x, **params)
            continue
        out, idx = impl.max_pool2d(x, return_indices=True, **params)
        k, s, p, d, ceil = full_params(params)
        empty = empty_windows(x.shape[-2], x.shape[-1], tv.shape[-2], tv.shape[-1], k, s, p, d)
        assert out.dtype == tv.dtype and out.tobytes() == tv.tobytes(), (params, x)
        assert np.array_equal(idx, np.where(empty, -1, ti)), (params, x)
        assert impl.max_pool2d(x, **params).tobytes() == tv.tobytes()
        compared += 1
        if x.dtype.kind == "f" and x.size and not empty.any():
            g = rng.standard_normal(tv.shape).astype(x.dtype)
            tg = torch.ops.aten.max_pool2d_with_indices_backward(
                torch.from_numpy(g), torch.from_numpy(x), list(k), list(s), list(p), list(d), ceil,
                torch.from_numpy(ti),
            ).numpy()
            assert impl.max_pool2d_backward(g, idx, x.shape).tobytes() == tg.tobytes(), params
    assert compared > 100


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_typical_network_shapes(impl, dtype):
    rng = np.random.default_rng(7)
    for shape, k, s, p in [((8, 16, 28, 28), 2, 2, 0), ((2, 8, 56, 56), 3, 2, 1), ((4, 8, 15, 13), 3, 1, 1)]:
        if np.dtype(dtype).kind == "f":
            x = rng.standard_normal(shape).astype(dtype)
        else:
            x = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, size=shape, dtype=dtype, endpoint=True)
        tv, ti = F.max_pool2d(torch.from_numpy(x), k, s, p, return_indices=True)
        out, idx = impl.max_pool2d(x, k, s, p, return_indices=True)
        assert out.tobytes() == tv.numpy().tobytes() and np.array_equal(idx, ti.numpy())


def test_rejections_match_torch(impl):
    # Every configuration torch rejects is rejected, and nothing else.
    rng = np.random.default_rng(5)
    x = np.zeros((1, 2, 5, 6), dtype=np.float32)
    for _ in range(3000):
        k = tuple(int(v) for v in rng.integers(-1, 8, 2))
        s = tuple(int(v) for v in rng.integers(-1, 5, 2))
        p = tuple(int(v) for v in rng.integers(-1, 5, 2))
        d = tuple(int(v) for v in rng.integers(-1, 4, 2))
        ceil = bool(rng.integers(2))
        try:
            F.max_pool2d(torch.from_numpy(x), k, s, p, d, ceil)
            torch_ok = True
        except RuntimeError:
            torch_ok = False
        try:
            impl.max_pool2d(x, k, s, p, d, ceil)
            ours_ok = True
        except ValueError:
            ours_ok = False
        assert ours_ok == torch_ok, (k, s, p, d, ceil)
