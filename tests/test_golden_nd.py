"""1-D and 3-D pooling against arrays recorded from torch 2.13, without torch.

``tests/data/golden_nd_torch.npz`` (written by ``tools/make_golden_nd.py``)
holds random cases of every 1-D and 3-D op family, with NaNs of two
payloads, infinities, -0.0 and ties, on contiguous and channels-last memory:
torch's values, indices and gradients. Both backends must reproduce them bit
for bit, so exact parity is checked on a machine without torch as well.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import COMPILED, assert_same_bits

import cpool
from cpool.functional import bind_adaptive3d, bind_avg3d, bind_max3d, bind_unpool3d
from cpool.module import _functions_1d

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "golden_nd_torch.npz")


@pytest.fixture(params=["compiled", "numpy"])
def nd(request):
    """The 1-D and 3-D public functions of one backend."""
    if request.param == "numpy":
        return cpool.slow
    request.getfixturevalue("compiled")
    ns = SimpleNamespace(**vars(_functions_1d(COMPILED)))
    for fn in (*bind_max3d(COMPILED), *bind_avg3d(COMPILED), *bind_adaptive3d(COMPILED), *bind_unpool3d(COMPILED)):
        setattr(ns, fn.__name__, fn)
    return ns


def _cases():
    with np.load(GOLDEN) as data:
        names = sorted({k.split("/", 1)[0] for k in data.files if "/" in k}, key=int)
        return [{k.split("/", 1)[1]: data[k] for k in data.files if k.startswith(name + "/")} for name in names]


CASES = _cases()


def _memory(a, memory):
    """A channels-first array of the case laid out in its memory (torch's channels_last(_3d) strides)."""
    if str(memory) == "channels_last":
        return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 1, -1)), -1, 1)
    return a


def _same(got, want, what):
    assert_same_bits(np.ascontiguousarray(got), want, what)


def test_the_cases_cover_every_family():
    families = [str(c["family"]) for c in CASES]
    assert {f: families.count(f) for f in set(families)} == {f: 24 for f in (
        "max3d", "avg3d", "adaptive3d", "unpool3d", "max1d", "avg1d", "adaptive1d", "unpool1d")}
    assert sum(str(c["memory"]) == "channels_last" for c in CASES) >= 80


@pytest.mark.parametrize("n", range(len(CASES)), ids=lambda n: f"{CASES[n]['family']}-{n}")
def test_golden_case(nd, n):
    c = CASES[n]
    family, memory = str(c["family"]), c["memory"]
    x = _memory(c["x"], memory)
    go = _memory(c["grad_out"], memory)
    three_d = family.endswith("3d")
    what = f"case {n} ({family}, {memory}, {x.dtype}, {x.shape})"
    if family in ("max3d", "max1d"):
        k, s, p, d, ceil = (int(v) for v in c["args"])
        pool = nd.max_pool3d if three_d else nd.max_pool1d
        values, indices = pool(x, k, s, p, d, bool(ceil), return_indices=True)
        _same(values, c["values"], what)
        _same(indices, c["indices"], what)
        if not three_d:
            _same(pool(x, k, s, p, d, bool(ceil)), c["values_only"], what)
        backward = nd.max_pool3d_backward if three_d else nd.max_pool1d_backward
        _same(backward(go, indices, x.shape), c["grad_in"], what)
    elif family in ("unpool3d", "unpool1d"):
        k, s, p = (int(v) for v in c["args"][:3])
        values, indices = _memory(c["values"], memory), _memory(c["indices"], memory)
        unpool = nd.max_unpool3d if three_d else nd.max_unpool1d
        _same(unpool(values, indices, k, s, p, output_size=x.shape[2:]), c["unpooled"], what)
        backward = nd.max_unpool3d_backward if three_d else nd.max_unpool1d_backward
        _same(backward(go, indices), c["grad_in"], what)
    elif family in ("avg3d", "avg1d"):
        k, s, p, ceil, cip, div = (int(v) for v in c["args"])
        if three_d:
            args = (k, s, p, bool(ceil), bool(cip), div or None)
            _same(nd.avg_pool3d(x, *args), c["values"], what)
            _same(nd.avg_pool3d_backward(go, x.shape, *args), c["grad_in"], what)
        else:
            args = (k, s, p, bool(ceil), bool(cip))
            _same(nd.avg_pool1d(x, *args), c["values"], what)
            _same(nd.avg_pool1d_backward(go, x.shape, *args), c["grad_in"], what)
    else:
        size = tuple(int(v) for v in c["size"])
        avg, mx = ((nd.adaptive_avg_pool3d, nd.adaptive_max_pool3d) if three_d else
                   (nd.adaptive_avg_pool1d, nd.adaptive_max_pool1d))
        _same(avg(x, size), c["avg"], what)
        values, indices = mx(x, size, True)
        _same(values, c["max"], what)
        _same(indices, c["argmax"], what)
        avg_bwd, max_bwd = ((nd.adaptive_avg_pool3d_backward, nd.adaptive_max_pool3d_backward) if three_d else
                            (nd.adaptive_avg_pool1d_backward, nd.adaptive_max_pool1d_backward))
        _same(avg_bwd(go, x.shape), c["avg_grad"], what)
        _same(max_bwd(go, indices, x.shape), c["max_grad"], what)
