"""Tests of the benchmark (python -m pytest bench -q): timing, gate, shapes, methods, targets, a small
whole run. Fast; the torch, numba and matplotlib parts are skipped when those are absent."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases as C
import floors
import methods as M
import report as R

import bench as B


def gate(method, case, op):
    call, convert = method.build(case, op)
    ret = call()
    return B.compare(convert(ret) if convert else M.outputs(op, ret), case.ref)


def test_time_call_batches_and_caps_with_a_fake_clock():
    now = [0.0]

    def tick(dt):
        def fn():
            now[0] += dt
        return fn
    samples, capped = B.time_call(tick(1e-3), 4, 0.0, 10.0, batch_time=5e-3, clock=lambda: now[0])
    assert len(samples) == 4 and not capped and all(abs(s - 1e-3) < 1e-12 for s in samples)
    samples, capped = B.time_call(tick(1.0), 100, 0.0, 3.0, clock=lambda: now[0])
    assert capped and 3 <= len(samples) < 100
    st = B.stats([1.0, 2.0, 3.0, 4.0, 5.0])
    assert st["median_s"] == 3.0 and st["q1_s"] == 2.0 and math.isclose(st["spread"], 2 / 3) and st["count"] == 5


def test_compare():
    ref = {"values": np.array([1.0, np.nan], np.float32), "indices": np.array([3, 4]),
           "grad_in": np.array([1.0, 2.0, 3.0], np.float32)}
    got = {"values": np.array([1.0, np.nan]), "indices": np.array([3, 4], np.int32)}  # other dtypes, same values
    assert B.compare(got, ref)[:2] == (True, True)
    ok, _, detail = B.compare({"values": ref["values"], "indices": np.array([3, 5])}, ref)
    assert not ok and "indices: 1 of 2 differ, first at (1,)" in detail
    assert "shape" in B.compare({"values": np.zeros(3)}, ref)[2]
    assert B.compare({"grad_in": ref["grad_in"] * (1 + 1e-7)}, ref)[:2] == (True, False)
    assert not B.compare({"grad_in": ref["grad_in"] + 0.1}, ref)[0]
    assert not B.compare({}, ref)[0]


def test_shapes_catalogue_and_parser():
    stem = C.parse_shape("resnet-stem")
    assert (stem.shape, stem.args, stem.out_shape) == ((32, 64, 112, 112), (3, 2, 1, 1), (32, 64, 56, 56))
    c = C.parse_shape("8x3x32x32:k3:s1:p1:d2:ceil:float64")
    assert (c.args, c.ceil_mode, c.dtype, c.simple) == ((3, 1, 1, 2), True, "float64", False)
    assert C.parse_shape("1x1x4x4").stride == 2 and C.parse_shape("mnist-conv").simple
    assert C.parse_shape("mnist-conv-f64").describe() == "64x32x28x28 k2 s2 float64"
    for bad in ("bogus", "1x1x4x4:q3"):
        with pytest.raises(ValueError):
            C.parse_shape(bad)
    assert C.out_len(5, 2, 2, 0, 1, True) == 3 and C.out_len(6, 2, 2, 1, 1, True) == 4  # starts in the padding
    mnist = C.parse_shape("mnist-conv")  # 1,605,632 inputs, 401,408 outputs
    assert mnist.nbytes("fwd_idx") == 11_239_424 and mnist.nbytes("step") == 2 * mnist.nbytes("fwd_idx")
    assert {sh for *_, shapes, _ in C.TARGETS for sh in shapes} <= set(C.SHAPES)
    assert [c.name for c, _ in floors.backward_targets()] == ["mnist-conv", "mnist-first", "14x14x64", "resnet-stem",
                                                              "large"]


@pytest.mark.parametrize("name", ["loop", "numpy-answer", "numpy-maxchain", "cpool-numpy", "cpool", "torch", "numba"])
def test_methods_pass_the_gate(name):
    method = M.get_methods([name])[0]
    if method.build is None:
        pytest.skip(method.note)
    for spec in ("2x2x7x9", "2x3x12x12:k3:s2:p1:ceil", "2x2x9x10:s1:d2"):  # crop; padding, overlap, ceil; dilation
        case = C.parse_shape(spec).filled()
        for op in method.ops:
            try:
                ok, _, detail = gate(method, case, op)
            except M.Unsupported:
                assert not case.simple or name == "jax"
                continue
            assert ok, (name, spec, op, detail)


def test_missing_or_other_peers_are_skipped_with_a_note(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(M.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("torch", "numba", "jax") else real(name, *a))
    got = {m.name: m for m in M.get_methods(["torch", "numba", "jax", "loop"])}
    assert f"pip install torch=={M.TORCH_PIN}" in got["torch"].note and got["torch"].build is None
    assert "pip install numba" in got["numba"].note and "pip install jax jaxlib" in got["jax"].note
    assert got["loop"].build is not None
    if real("torch"):
        import torch

        monkeypatch.setattr(M.importlib.util, "find_spec", real)
        monkeypatch.setattr(torch, "__version__", "9.9.9")
        assert M.get_methods(["torch"])[0].build is None


def test_a_wrong_method_is_reported_and_not_timed():
    case = C.parse_shape("2x3x6x8").filled()

    def build(c, op):
        return (lambda: (c.ref["values"], c.ref["indices"] + (op == "fwd_idx"))), None
    right, wrong = M.Method("right", "", build, ops=("fwd",)), M.Method("wrong", "", build)
    s = B.Settings([], repeat=2, min_time=0.0, warmup=0, settle=0.0)
    ok, bad = B.measure(case, "fwd_idx", [(right, None), (wrong, None)], s)
    assert ok["status"] == "n/a" and "right has no fwd_idx" in ok["reason"]
    assert bad["status"] == "mismatch" and "indices" in bad["reason"] and "median_s" not in bad
    good = B.measure(case, "fwd", [(wrong, None)], s)[0]
    assert good["status"] == "ok" and good["median_s"] > 0 and len(good["pass_medians_s"]) == 2


def test_stale_reason(tmp_path, monkeypatch):
    import cpool

    monkeypatch.delenv("CPOOL_BACKEND", raising=False)  # with it set to numpy, the NumPy backend is not stale
    (tmp_path / "cpool").mkdir()
    init = tmp_path / "cpool" / "__init__.py"
    init.write_text(f'__version__ = "{cpool.__version__}"\n')
    fake = type("cpool", (), {"backend": "cython", "__version__": cpool.__version__, "__file__": str(init)})
    (tmp_path / "cpool" / "_k.so").write_text("")
    assert B.stale_reason(fake, tmp_path) is None
    (tmp_path / "cpool" / "kernels.pyx").write_text("")
    os.utime(tmp_path / "cpool" / "_k.so", (0, 0))
    assert "older" in B.stale_reason(fake, tmp_path)
    fake.__version__ = "0.0.1"
    assert "version 0.0.1" in B.stale_reason(fake, tmp_path)
    fake.backend = "numpy"
    assert "'numpy' backend" in B.stale_reason(fake, tmp_path)


def test_cli_settings():
    p = B.build_parser()
    s = B.settings_from_args(p.parse_args(["--quick", "--no-build"]))
    assert [c.name for c in s.shapes] == list(C.QUICK_SHAPES) and s.ops == list(C.OPS) and s.repeat == 5
    assert s.passes == 1 and s.methods == list(M.METHOD_NAMES)
    for bad in (["--methods", "cpool,nope"], ["--ops", "fwd,nope"], ["--threads", "0"]):
        with pytest.raises(ValueError):
            B.settings_from_args(p.parse_args(bad))
    assert B.parse_threads("1,all,1") == sorted({1, B.available_cpus()})


def test_targets_compare_at_the_same_thread_count():
    def e(shape, op, variant, ms, roof=None):
        return {"shape": shape, "op": op, "variant": variant, "status": "ok", "median_s": ms / 1e3,
                **({"roofline": {"bound_s": roof * ms / 1e3}} if roof else {})}
    results = {"settings": {"threads": [1, 2]}, "entries": [
        # fwd_idx: 10x at t1 but 9x at t2: not met (every thread count must hold)
        e("mnist-conv", "fwd_idx", "cpool t1", 1.0), e("mnist-conv", "fwd_idx", "torch t1", 10.0),
        e("mnist-conv", "fwd_idx", "cpool t2", 1.0), e("mnist-conv", "fwd_idx", "torch t2", 9.0),
        e("mnist-conv", "bwd", "cpool t1", 1.0), e("mnist-conv", "bwd", "torch t1", 3.0),
        e("mnist-conv", "bwd", "cpool t2", 0.5), e("mnist-conv", "bwd", "torch t2", 1.6),
        e("large", "fwd_idx", "cpool t1", 1.0, roof=0.5), e("large", "fwd_idx", "torch t1", 30.0),
        e("large", "fwd_idx", "cpool t2", 1.0, roof=0.49), e("large", "fwd_idx", "torch t2", 30.0),
        e("mnist-conv", "fwd_idx", "cpool-numpy", 2.0), e("mnist-conv", "fwd_idx", "loop", 500.0)]}
    rows = {r[0]: r[2:] for r in R.target_rows(results)}
    assert rows["forward with int64 indices, k2 s2"] == ["mnist-conv 10x / 9x; large 30x / 30x", "**not met**"]
    assert rows["backward, 28x28"][1] == "met" and "backward, other shapes" not in rows
    assert rows["DRAM-bound shapes"] == ["large fwd_idx 50% / 49%", "**not met**"]
    assert rows["NumPy fallback, forward with indices"] == ["mnist-conv vs loop 250x; mnist-conv vs torch t1 5x", "met"]


def test_formatting():
    assert R.fmt_ms(0.0031) == "3.1" and R.fmt_ms(2.5) == "2,500" and R.fmt_ms(None) == "n/a"
    assert R.fmt_ms(3.5e-6) == "0.0035" and R.fmt_x(12.34) == "12.3x" and R.fmt_x(float("nan")) == "n/a"
    assert R.table(["a", "bb"], [["1", "2"]]) == "| a | bb |\n|---|----|\n| 1 | 2  |"


def test_small_run_writes_the_results(tmp_path, capsys):
    methods = "loop,numpy-answer,numpy-maxchain,cpool-numpy,cpool"
    assert B.main(["--quick", "--shapes", "1x2x8x8,mnist-first", "--methods", methods, "--threads", "1,2", "--no-chart",
                   "--no-progress", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "## Summary" in out and "## MNIST epoch" in out and "**" not in out
    data = json.loads((tmp_path / "results.json").read_text())
    assert len(data["summary"]) == len(C.OPS) and data["baseline"] == "loop"
    compiled = ["cpool t1", "cpool t2"] if data["machine"]["cpool"]["backend"] == "cython" else []
    assert {e["variant"] for e in data["entries"]} == {*methods.split(",")[:-1], *compiled}
    assert not [e for e in data["entries"] if e["status"] in ("error", "mismatch")]
    loop = [e for e in data["entries"] if e["variant"] == "loop" and e["shape"] == "mnist-first"]
    assert all(e["extrapolated"] for e in loop)  # a 50 ms cap: part of the batch only
    assert data["mnist_epoch"][0]["shape"] == "mnist-first" and data["mnist_epoch"][0]["rows"]
    md = (tmp_path / "results.md").read_text()
    assert "| method" in md and "- **numpy-maxchain**" in md and "## Bytes each op must move" in md
    assert not (tmp_path / "speedup.png").exists()
    if importlib.util.find_spec("matplotlib"):
        assert R.draw_chart(data, tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"
