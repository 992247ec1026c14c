"""Exact parity with arrays recorded once from torch 2.13 (no torch needed).

Regenerate with ``python tests/make_golden.py``.
"""

import os

import numpy as np
import pytest

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "golden_torch.npz")


def load_cases():
    with np.load(GOLDEN) as data:
        keys = set(data.files)
        n = sum(1 for k in keys if k.endswith("/x"))
        cases = []
        for i in range(n):
            c = {name: data[f"{i}/{name}"] for name in ("x", "params", "out", "idx", "grad_out", "grad_in")
                 if f"{i}/{name}" in keys}
            cases.append(c)
        return str(data["torch_version"]), cases


VERSION, CASES = load_cases()


def test_golden_file_is_from_pinned_torch():
    assert VERSION.startswith("2.13.0") and len(CASES) >= 400


def test_golden_cases(impl):
    with_grad = 0
    for i, c in enumerate(CASES):
        kh, kw, sh, sw, ph, pw, dh, dw, ceil, stride_none = (int(v) for v in c["params"])
        stride = None if stride_none else (sh, sw)
        out, idx = impl.max_pool2d(c["x"], (kh, kw), stride, (ph, pw), (dh, dw), bool(ceil), return_indices=True)
        assert out.dtype == c["out"].dtype and out.tobytes() == c["out"].tobytes(), i
        assert np.array_equal(idx, c["idx"]), i
        if "grad_out" in c:
            gi = impl.max_pool2d_backward(c["grad_out"], idx, c["x"].shape)
            assert gi.tobytes() == c["grad_in"].tobytes(), i
            with_grad += 1
    assert with_grad > 100
