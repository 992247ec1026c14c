"""Tests of the benchmark (pytest -q bench): timing, gate, shapes, methods, targets, the busy-machine
verdict, the contention section (from made-up rows, and one tiny run with one busy process for under a
second), a small whole run. Fast; the torch, numba and matplotlib parts are skipped when those are absent."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases as C
import floors
import methods as M
import readme as RM
import report as R

import bench as B


def gate(method, case, op):
    call, convert = method.build(case, op)
    ret = call()
    return B.compare(convert(ret) if convert else M.outputs(op, ret), case.ref,
                     sums_rtol=C.SUMS_RTOL if method.own_sums else None)


AVG_REFERENCE = M.avg_reference()  # (what, function): torch's averages where torch 2.13 is installed, else cpool.slow's


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
    # average pooling: exact, unless the method sums in its own order (sums_rtol), and then close only
    avg = {"avg_values": np.array([0.5, -2.0], np.float32)}
    one_ulp = {"avg_values": np.nextafter(avg["avg_values"], np.float32(np.inf))}
    ok, _, detail = B.compare(one_ulp, avg)
    assert not ok and "avg_values: 2 of 2 differ" in detail
    assert B.compare(one_ulp, avg, sums_rtol=1e-5) == (True, False, "avg_values within rtol 1e-05 (summation order)")
    assert not B.compare({"avg_values": avg["avg_values"] * 1.01}, avg, sums_rtol=1e-5)[0]
    assert "no reference" in B.compare({"gap_values": np.zeros(2)}, avg)[2]


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
    # average pooling: the input and the means; grad_output and grad_input; the input and N*C means
    assert mnist.nbytes("avg_fwd") == mnist.nbytes("avg_bwd") == 6_422_528 + 1_605_632
    assert mnist.nbytes("gap") == 6_422_528 + 64 * 32 * 4 and set(mnist.meta()["bytes"]) == set(C.OPS)
    assert C.parse_shape("resnet-stem").avg_args == (3, 2, 1, False)
    assert {sh for *_, shapes, _ in C.TARGETS for sh in shapes} <= {*C.SHAPES, *C.POOL1D_SHAPES, *C.SHAPES_3D}
    assert [c.name for c, _ in floors.backward_targets()] == ["mnist-conv", "mnist-first", "14x14x64", "resnet-stem",
                                                              "large"]


def test_every_shape_has_a_channels_last_twin():
    assert all(n + C.NHWC in C.SHAPES for n in C.BASE_SHAPES) and len(C.SHAPES) == 2 * len(C.BASE_SHAPES)
    cl, nchw = C.parse_shape("mnist-first-nhwc").filled(), C.parse_shape("mnist-first").filled()
    assert (cl.layout, cl.shape, cl.out_shape, cl.describe()) == ("nhwc", nchw.shape, nchw.out_shape,
                                                                 nchw.describe() + " nhwc")
    assert cl.x.shape == nchw.x.shape and cl.x.transpose(0, 2, 3, 1).flags.c_contiguous  # channels-last memory
    assert cl.grad_out.transpose(0, 2, 3, 1).flags.c_contiguous
    assert cl.ref["indices"].transpose(0, 2, 3, 1).flags.c_contiguous
    # the same values (gap's sums may be rounded otherwise on channels-last memory, as torch's are)
    assert np.array_equal(cl.x, nchw.x) and all(np.array_equal(cl.ref[k], nchw.ref[k]) for k in nchw.ref
                                                if k != "gap_values")
    assert {"avg_values", "avg_grad_in"} <= set(cl.ref) and cl.ref["avg_grad_in"].shape == cl.shape
    assert cl.nbytes("fwd_idx") == nchw.nbytes("fwd_idx") and cl.meta()["nchw_twin"] == "mnist-first"
    assert C.parse_shape("2x3x8x8:k3:nhwc").layout == "nhwc" and C.nchw_twin("2x3x8x8:k3:nhwc") == "2x3x8x8:k3"
    assert C.nchw_twin("large-nhwc") == "large" == C.nchw_twin("large")
    for *_, shapes, checks in C.TARGETS:  # a check against the NCHW twin: the twin is in the catalogue too
        assert all(C.nchw_twin(sh) in C.SHAPES for sh in shapes if any(c[1].endswith(C.ON_NCHW) for c in checks))


# the ops of the forward-only peers
PARTIAL = {"torch-mkldnn": ("fwd", "avg_fwd", "gap"), "onnxruntime": ("fwd", "fwd_idx", "avg_fwd", "gap")}
EXACT_AVG = ("cpool-numpy", "cpool", "cpool-out", "torch")  # their averages must equal the reference bit for bit


@pytest.mark.parametrize("name", ["loop", "numpy-answer", "numpy-maxchain", "numpy-mean", "cpool-numpy", "cpool",
                                  "cpool-out", "torch", "torch-cl", "torch-mkldnn", "onnxruntime", "numba"])
def test_methods_pass_the_gate(name):
    method = M.get_methods([name])[0]
    if method.build is None:
        pytest.skip(method.note)
    assert method.own_sums == (name not in EXACT_AVG) or not set(method.ops) & set(C.AVG_OPS)
    # crop; padding, overlap, ceil; dilation; a ceil window starting in the right padding; float64
    specs = ("2x2x7x9", "2x3x12x12:k3:s2:p1:ceil", "2x2x9x10:s1:d2", "2x3x7x5:p1:ceil", "2x2x7x9:float64")
    # the average-pooling ops against cpool.slow's averages and against the bench's own reference (torch's)
    for spec, reference in ((sp + f":{layout}", ref) for sp in specs for layout in method.layouts
                            for ref in {None, AVG_REFERENCE[1]}):
        case = C.parse_shape(spec).filled(avg_reference=reference)
        for op in method.ops:
            if method.set_threads:
                method.set_threads(2)
            if not all(k in case.ref for k in C.OP_KEYS[op]):  # no reference: gap without torch, or dilation
                assert (op in C.AVG_OPS and (op != "gap" or reference is None)
                        or case.unfit(op)), (name, spec, op)
                continue
            try:
                ok, exact, detail = gate(method, case, op)
            except M.Unsupported:
                assert not case.simple or name == "jax" or op not in PARTIAL.get(name, C.OPS) or (
                    (name == "torch-mkldnn" or name == "onnxruntime" and op in C.AVG_OPS)
                    and case.dtype != "float32"), (name, spec, op)
                continue
            assert ok, (name, spec, op, detail)
            assert exact or op not in C.AVG_OPS or name not in EXACT_AVG, (name, spec, op, detail)


def test_channels_last_methods_keep_channels_last_memory():
    case = C.parse_shape("2x8x6x6:nhwc").filled()
    for method in M.get_methods(["cpool", "cpool-out", "torch-cl"]):
        if method.build is None:
            continue
        call, _ = method.build(case, "fwd_idx")
        for out in M.outputs("fwd_idx", call()).values():  # the results come back in channels-last memory
            assert out.transpose(0, 2, 3, 1).flags.c_contiguous, method.name
    cp = M.get_methods(["cpool-out"])[0]
    if cp.build is not None:  # out=: the same buffers on every call
        call, _ = cp.build(case, "bwd")
        assert call() is call()


def test_missing_or_other_peers_are_skipped_with_a_note(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(M.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("torch", "numba", "jax") else real(name, *a))
    got = {m.name: m for m in M.get_methods(["torch", "torch-cl", "torch-mkldnn", "numba", "jax", "loop"])}
    assert f"pip install torch=={M.TORCH_PIN}" in got["torch"].note and got["torch"].build is None
    assert all(got[n].build is None and "torch" in got[n].note for n in ("torch-cl", "torch-mkldnn"))
    assert "pip install numba" in got["numba"].note and "pip install jax jaxlib" in got["jax"].note
    assert got["loop"].build is not None
    if real("torch"):
        import torch

        monkeypatch.setattr(M.importlib.util, "find_spec", real)
        monkeypatch.setattr(torch, "__version__", "9.9.9")
        assert all(m.build is None for m in M.get_methods(["torch", "torch-cl", "torch-mkldnn"]))


def test_onnxruntime_missing_is_skipped_with_a_note(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(M.importlib.util, "find_spec", lambda name, *a: None if name in ("onnxruntime", "onnx")
                        else real(name, *a))
    (ort,) = M.get_methods(["onnxruntime"])
    assert ort.build is None and "pip install onnxruntime onnx" in ort.note
    assert ort.description == M.DESCRIPTIONS["onnxruntime"]


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


def test_a_wrong_average_is_caught_by_the_gate(monkeypatch):
    case = C.parse_shape("2x3x6x8:k3:s2:p1").filled(ops=C.AVG_OPS, avg_reference=AVG_REFERENCE[1])
    assert "values" not in case.ref  # average-pooling ops only: no max-pooling reference made

    def build(c, op):  # the reference's averages, one of them a last bit off
        wrong = c.ref["avg_values"].copy()
        wrong.flat[5] = np.nextafter(wrong.flat[5], np.float32(np.inf))
        return (lambda: wrong), None
    s = B.Settings([], repeat=2, min_time=0.0, warmup=0, settle=0.0)
    exact, peer = M.Method("exact", "", build, ops=C.AVG_OPS), M.Method("peer", "", build, ops=C.AVG_OPS, own_sums=True)
    bad, close = B.measure(case, "avg_fwd", [(exact, None), (peer, None)], s)
    assert bad["status"] == "mismatch" and "avg_values: 1 of" in bad["reason"] and "median_s" not in bad
    assert close["status"] == "ok" and close["exact"] is False and "summation order" in close["reason"]
    # the real cpool, with a wrong average injected: a mismatch, not timed
    (cp,) = M.get_methods(["cpool"])
    if cp.build is None:
        pytest.skip(cp.note)
    import cpool

    real = cpool.avg_pool2d
    monkeypatch.setattr(cpool, "avg_pool2d", lambda *a, **k: real(*a, **k) * np.float32(1 + 2 ** -20))
    e, call = B.prepare(cp, 1, case, "avg_fwd", s)
    assert e["status"] == "mismatch" and call is None and e["reason"].startswith("avg_values: ")
    monkeypatch.setattr(cpool, "avg_pool2d", real)
    assert B.prepare(cp, 1, case, "avg_fwd", s)[0]["status"] == "ok"
    assert B.prepare(cp, 1, case, "fwd", s)[0]["reason"].startswith("no reference outputs for fwd")


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
    assert [c.name for c in s.shapes] == list(C.QUICK_SHAPES) and s.ops == list(C.DEFAULT_OPS) and s.repeat == 5
    assert s.passes == 2 and s.methods == list(M.METHOD_NAMES) and not s.contention
    cpus = B.available_cpus()
    full = B.settings_from_args(p.parse_args([]))
    assert full.contention and full.contention_loads == (cpus, 2 * cpus) and full.contention_seconds == 3.0
    q = B.settings_from_args(p.parse_args(["--quick", "--contention", "--contention-loads", "1,cpus,3xcpus"]))
    assert q.contention and q.contention_loads == tuple(dict.fromkeys((1, cpus, 3 * cpus)))
    assert q.contention_seconds == B.QUICK["contention_seconds"] and q.contention_cap == B.QUICK["contention_cap"]
    n = B.settings_from_args(p.parse_args(["--no-contention", "--contention-seconds", "0.5", "--contention-cap", "9"]))
    assert not n.contention and (n.contention_seconds, n.contention_cap) == (0.5, 9.0)
    for bad in (["--methods", "cpool,nope"], ["--ops", "fwd,nope"], ["--threads", "0"], ["--contention-loads", "0"],
                ["--contention-loads", "xcpus"], ["--contention-seconds", "0"]):
        with pytest.raises(ValueError):
            B.settings_from_args(p.parse_args(bad))
    with pytest.raises(SystemExit):
        p.parse_args(["--contention", "--no-contention"])
    assert B.parse_threads("1,all,1") == sorted({1, B.available_cpus()})
    assert B.settings_from_args(p.parse_args(["--ops", "avg"])).ops == list(C.AVG_OPS)
    assert B.settings_from_args(p.parse_args(["--ops", "gap,max,fwd"])).ops == ["gap", *C.MAX_OPS]
    # the default run: max and average pooling; unpooling and adaptive max pooling by name, or all
    assert B.Settings([]).ops == C.DEFAULT_OPS == C.MAX_OPS + C.AVG_OPS
    assert B.settings_from_args(p.parse_args(["--ops", "unpool,adaptive"])).ops == ["unpool", "unpool_bwd", "amax"]
    assert B.settings_from_args(p.parse_args(["--ops", "all"])).ops == list(C.OPS)


def test_time_left_learns_from_the_work_done():
    assert "known after the first entry" in B.time_left(0.0, 0, 10, "entry")
    assert B.time_left(10.0, 5, 30, "entry") == "about 60 s left: 2 s per entry so far x 30"
    assert B.time_left(60.0, 10, 100, "phase", then=30) == "about 10.5 min left: 6 s per phase so far x 100 + ~30 s " \
        "under load"
    s = B.Settings([C.parse_shape("tiny")] * 2, ops=("fwd", "bwd"), contention=True, contention_loads=(2, 4))
    assert B.contention_phases(s) == 8 and 8 * 3.0 < B.contention_estimate(s) <= s.contention_cap


def test_load_meter_counts_other_processes_only():
    if B.busy_cpu_seconds() is None:
        pytest.skip("no /proc/stat")
    meter = B.LoadMeter()
    end = time.perf_counter() + 0.15
    while time.perf_counter() < end:  # this process's own work is not "other"
        pass
    cpu_s, wall = meter.read()
    assert cpu_s >= 0 and wall >= 0.15 and B.other_cpus(cpu_s, wall) is not None
    assert B.other_cpus(None, 1.0) is None and B.other_cpus(0.5, 0.05) is None and B.other_cpus(1.0, 2.0) == 0.5


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


def test_targets_on_channels_last_shapes_and_against_the_nchw_twin():
    def e(shape, op, variant, ms, roof=None):
        return {"shape": shape, "op": op, "variant": variant, "status": "ok", "median_s": ms / 1e3,
                **({"roofline": {"bound_s": roof * ms / 1e3}} if roof else {})}
    es = []
    for op in C.OPS:  # cpool on large-nhwc: 1.1x its NCHW time at 1 thread, 1.3x at 2: not met
        es += [e("large", op, "cpool t1", 1.0), e("large-nhwc", op, "cpool t1", 1.1),
               e("large", op, "cpool t2", 1.0), e("large-nhwc", op, "cpool t2", 1.3)]
    es += [e("large-nhwc", "fwd", "torch-cl t1", 4.0), e("large-nhwc", "fwd", "torch-cl t2", 4.0),
           e("large-nhwc", "fwd", "torch-mkldnn t1", 1.5), e("large-nhwc", "fwd", "torch-mkldnn t2", 2.0)]
    es += [e(sh, op, "cpool-out t1", 1.0, roof=0.75) for sh in ("large", "large-nhwc") for op in ("fwd", "bwd")]
    rows = {r[0]: r[2:] for r in R.target_rows({"settings": {"threads": [1, 2]}, "entries": es})}
    twin = rows["NHWC vs NCHW, same shape, C >= 8"]
    assert twin[1] == "**not met**" and twin[0].startswith("large-nhwc fwd 1.1x / 1.3x; large-nhwc fwd_idx 1.1x")
    assert rows["NHWC input, forward values only"] == ["large-nhwc vs torch-cl 3.64x / 3.08x; large-nhwc vs "
                                                       "torch-mkldnn 1.36x / 1.54x", "**not met**"]
    assert rows["DRAM-bound shapes, both layouts, out= buffers"] == ["large fwd 75%; large bwd 75%; large-nhwc fwd "
                                                                     "75%; large-nhwc bwd 75%", "met"]
    assert "NHWC input, backward" not in rows


def test_average_pooling_targets():
    def e(shape, op, variant, ms, roof=None):
        return {"shape": shape, "op": op, "variant": variant, "status": "ok", "median_s": ms / 1e3,
                **({"roofline": {"bound_s": roof * ms / 1e3}} if roof else {})}
    es = []
    for t in (1, 2):
        # NCHW: 6x torch, 2x torch-cl, 1.6x torch-mkldnn; NHWC: 4x torch on the NCHW twin (not met)
        es += [e("mnist-conv", op, f"cpool t{t}", 1.0) for op in ("avg_fwd", "avg_bwd")]
        es += [e("mnist-conv", op, f"torch t{t}", 6.0) for op in ("avg_fwd", "avg_bwd")]
        es += [e("mnist-conv", op, f"torch-cl t{t}", 2.0) for op in ("avg_fwd", "avg_bwd")]
        es += [e("mnist-conv", "avg_fwd", f"torch-mkldnn t{t}", 1.6),
               e("mnist-conv-nhwc", "avg_fwd", f"cpool t{t}", 1.5)]
        es += [e("mnist-conv-nhwc", "avg_fwd", f"{m} t{t}", 3.0) for m in ("torch-cl", "torch-mkldnn")]
        es += [e("large", "gap", f"cpool t{t}", 1.0, roof=0.8), e("large-nhwc", "gap", f"cpool t{t}", 1.0, roof=0.6)]
    es += [e("mnist-conv", op, "cpool-numpy", 5.0) for op in ("avg_fwd", "avg_bwd")]
    rows = {r[0]: r[2:] for r in R.target_rows({"settings": {"threads": [1, 2]}, "entries": es})}
    assert rows["average pooling forward, NCHW"] == ["mnist-conv vs torch 6x / 6x; mnist-conv vs torch-cl 2x / 2x; "
                                                     "mnist-conv vs torch-mkldnn 1.6x / 1.6x", "met"]
    assert rows["average pooling forward, NHWC"] == ["mnist-conv-nhwc vs torch on mnist-conv 4x / 4x; mnist-conv-nhwc "
                                                     "vs torch-cl 2x / 2x; mnist-conv-nhwc vs torch-mkldnn 2x / 2x",
                                                     "**not met**"]
    assert rows["average pooling backward, NCHW"] == ["mnist-conv vs torch 6x / 6x; mnist-conv vs torch-cl 2x / 2x",
                                                      "met"]
    assert rows["global average pooling, large shapes"] == ["large 80% / 80%; large-nhwc 60% / 60%", "**not met**"]
    assert rows["NumPy fallback, average pooling"] == ["mnist-conv avg_fwd 1.2x; mnist-conv avg_bwd 1.2x", "met"]
    assert "average pooling backward, NHWC" not in rows  # not measured
    for label, _, ops, shapes, checks in C.TARGETS:  # every row names known ops, shapes and methods
        assert set(ops) <= set(C.OPS) and set(shapes) <= set(C.SHAPES) | set(C.POOL1D_SHAPES) | set(C.SHAPES_3D), label
        for mine, rival, *_ in checks:
            assert {n.split()[0] for n in (mine, rival)} <= {*M.METHOD_NAMES, "roofline"}, label


def test_formatting():
    assert R.fmt_ms(0.0031) == "3.1" and R.fmt_ms(2.5) == "2,500" and R.fmt_ms(None) == "n/a"
    assert R.fmt_ms(3.5e-6) == "0.0035" and R.fmt_x(12.34) == "12.3x" and R.fmt_x(float("nan")) == "n/a"
    assert R.table(["a", "bb"], [["1", "2"]]) == "| a | bb |\n|---|----|\n| 1 | 2  |"


def entry(shape, op, variant, ms, spread=0.02, busy=False):
    return {"shape": shape, "op": op, "variant": variant, "method": variant.split()[0], "status": "ok",
            "median_s": ms / 1e3, "spread": spread, "busy": busy, "extrapolated": None,
            "threads": int(variant.split()[1][1:]) if " t" in variant else None}


def made_up(entries, load_before=0.0, contention=None):
    """A results dict as bench.run makes it, around the given entries."""
    return {"settings": {"threads": [1, 2]}, "argv": ["--shapes", "mnist-conv"], "entries": entries,
            "shapes": [C.parse_shape("mnist-conv").meta()], "ops": {op: C.OPS[op] for op in ("fwd", "bwd")},
            "machine": {"available_cpus": 2, "loadavg": {"before": load_before, "after": 0.0}, "cpool": {}},
            "contention": contention}


def test_the_headline_leads_with_steady_figures_and_a_busy_run_has_none():
    steady = [entry("mnist-conv", "fwd", "cpool t1", 1.0), entry("mnist-conv", "fwd", "torch t1", 10.0),
              entry("mnist-conv", "fwd", "cpool t2", 0.5, spread=0.3), entry("mnist-conv", "fwd", "torch t2", 5.0),
              entry("mnist-conv", "bwd", "cpool t1", 1.0), entry("mnist-conv", "bwd", "torch t1", 2.0),
              entry("mnist-conv", "bwd", "cpool t2", 0.5), entry("mnist-conv", "bwd", "torch t2", 1.5)]
    noisy = [entry("mnist-conv", "fwd", v, ms, spread=0.5) for v, ms in (("cpool t1", 1), ("torch t1", 10))]
    lines = R.summary_lines(made_up(steady))
    # in fwd the steady 1-thread figure leads, the noisy 2-thread one follows; bwd leads with 2 threads
    assert lines[0].startswith("fwd: cpool is 10x faster than torch at 1 thread") and lines[0].endswith(
        "at 2 threads: 10x (spread 30% / 2%, noisy)")
    assert lines[1].startswith("bwd: cpool is 3x faster than torch at 2 threads") and "spread 2% / 2%" in lines[1]
    lines = R.summary_lines(made_up(steady[4:] + noisy))  # an op with no steady figure comes last
    assert lines[0].startswith("bwd") and lines[1].startswith("fwd") and lines[1].endswith("(spread 50% / 50%, noisy)")
    assert not R.busy_state(made_up(steady))["busy"]
    for busy in (made_up(steady, load_before=2.5), made_up([dict(e, busy=e["variant"] != "torch t2") for e in steady])):
        state = R.busy_state(busy)
        assert state["busy"] and (state["busy_timings"] == 6 or "load average 2.50" in state["why"])
        (line,) = R.summary_lines(busy)
        assert "faster" not in line and line.endswith("rerun on an idle machine: `python bench/bench.py --shapes "
                                                      "mnist-conv`")
    few = made_up([dict(e, busy=e["variant"] == "torch t2") for e in steady])
    assert not R.busy_state(few)["busy"] and R.busy_state(few)["busy_timings"] == 2
    assert R.summary_lines(few)[1].startswith("bwd: cpool is 2x faster than torch at 1 thread")  # busy: not first


def contention_row(op, busy, method, t1_ms, default_ms, spread=0.05):
    def st(ms):
        return {"median_s": ms / 1e3, "mean_s": 1.1 * ms / 1e3, "spread": spread}
    return {"shape": "mnist-conv", "op": op, "busy": busy, "method": method, "status": "ok", "other_cpus": 1.9,
            "default_threads": [2], "t1": st(t1_ms), "default": st(default_ms)}


def test_the_contention_table_and_its_target_from_made_up_rows():
    rows = [contention_row("fwd", 2, "cpool", 1.0, 1.1), contention_row("fwd", 2, "torch", 10.0, 25.0),
            contention_row("fwd", 4, "cpool", 1.0, 1.4), contention_row("bwd", 4, "cpool", 2.0, 2.2),
            {"shape": "mnist-conv", "op": "bwd", "busy": None, "method": "torch", "status": "error",
             "reason": "RuntimeError: boom"}]
    c = {"loads": [2, 4], "seconds": 3.0, "cap_s": 300.0, "methods": ["cpool", "torch"], "rows": rows,
         "skipped": ["large: the section's 300 s cap"], "duration_s": 12.0}
    label, asked, text, verdict = R.busy_target_row(c)
    assert (label, asked, verdict) == (C.BUSY_TARGET[0], C.BUSY_TARGET[1], "met")
    assert text == ("worst 1.4x: mnist-conv fwd, 4 busy (1.4 vs 1 ms, spread 5% / 5%); 3 shape/op/load rows, 3 "
                    "within 1.5x, median row 1.1x")
    rows.append(contention_row("bwd", 2, "cpool", 2.0, 3.2))
    assert R.busy_target_row(c)[2:] == ["worst 1.6x: mnist-conv bwd, 2 busy (3.2 vs 2 ms, spread 5% / 5%); 4 "
                                        "shape/op/load rows, 3 within 1.5x, median row 1.4x", "**not met**"]
    assert R.busy_target_row(None) is None and R.busy_target_row(dict(c, rows=rows[1:2])) is None
    text = "\n".join(R.contention_section(made_up([], contention=c), md=True))
    assert "cpool default = 2 thread(s), torch default = 2 thread(s)" in text
    assert "| mnist-conv | fwd | 2    | 1 (5%)   | 1.1 (5%)      | 1.1x  | 1.1x       | 10 (5%)  | 25 (5%)" in text
    assert R.target_rows(made_up([], contention=c))[-1][0] == C.BUSY_TARGET[0]
    notes = R.notes(dict(made_up([], contention=c), methods={}, busy=R.busy_state(made_up([]))))
    assert "contention section, not measured: large: the section's 300 s cap" in notes
    assert "contention section, error: torch mnist-conv bwd: RuntimeError: boom" in notes


class Recorded(subprocess.Popen):
    """subprocess.Popen, keeping every process it starts (to check that none is left running)."""

    started = []

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        Recorded.started.append(self)


def contention_settings(methods):
    return B.Settings([C.parse_shape("1x2x8x8")], ops=("fwd",), repeat=2, warmup=0, settle=0.0, contention=True,
                      contention_loads=(1,), contention_seconds=0.2, contention_cap=5.0, progress=False), \
        M.get_methods(methods)


def test_a_tiny_contention_run_times_both_settings_and_kills_its_busy_process(monkeypatch):
    s, methods = contention_settings(["cpool", "torch"])
    if methods[0].build is None:
        pytest.skip(methods[0].note)
    monkeypatch.setattr(B.subprocess, "Popen", Recorded)
    Recorded.started.clear()
    t0 = time.perf_counter()
    c = B.run_contention(s, methods)
    assert time.perf_counter() - t0 < 5
    assert len(Recorded.started) == 1 and all(p.poll() is not None for p in Recorded.started)
    rows = {r["method"]: r for r in c["rows"]}
    assert set(rows) == {m.name for m in methods if m.build is not None} and not c["skipped"]
    for r in rows.values():
        assert r["status"] == "ok" and r["rounds"] >= 2 and r["busy"] == 1
        assert r["t1"]["median_s"] > 0 and r["default"]["median_s"] > 0 and r["default_threads"]
    import cpool

    assert rows["cpool"]["default_threads"] == [cpool.get_num_threads()]  # set back to the default at the end
    assert R.busy_target_row(c)[0] == C.BUSY_TARGET[0]


def test_the_busy_processes_are_killed_when_a_timing_fails(monkeypatch):
    s, methods = contention_settings(["cpool"])
    if methods[0].build is None:
        pytest.skip(methods[0].note)
    monkeypatch.setattr(B.subprocess, "Popen", Recorded)
    Recorded.started.clear()

    def boom(*a, **k):
        raise RuntimeError("timing failed")
    monkeypatch.setattr(B, "time_call", boom)
    with pytest.raises(RuntimeError, match="timing failed"):
        B.run_contention(s, methods)
    assert len(Recorded.started) == 1 and Recorded.started[0].poll() is not None
    s.contention_cap = 0.1  # shorter than a phase: every phase is skipped, no process started
    Recorded.started.clear()
    assert B.run_contention(s, methods)["skipped"] == ["1x2x8x8: the section's 0.1 s cap"] and not Recorded.started


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("small_run")
    methods = "loop,numpy-answer,numpy-maxchain,cpool-numpy,cpool"
    code = B.main(["--quick", "--shapes", "1x2x8x8,mnist-first,1x2x8x8:nhwc", "--methods", methods, "--threads",
                   "1,2",
                   "--no-chart", "--no-progress", "--out", str(out)])
    return code, out, methods


def test_small_run_writes_the_results(small_run, capsys):
    code, out_dir, methods = small_run
    assert code == 0
    data = json.loads((out_dir / "results.json").read_text())
    busy = data["busy"]["busy"]  # the machine may be shared: then there is no headline, by design
    assert len(data["summary"]) == (1 if busy else len(data["ops"])) and data["baseline"] == "loop"
    compiled = ["cpool t1", "cpool t2"] if data["machine"]["cpool"]["backend"] == "cython" else []
    assert {e["variant"] for e in data["entries"]} == {*methods.split(",")[:-1], *compiled}
    assert {e["variant"] for e in data["entries"] if e["shape"] == "1x2x8x8:nhwc"} == set(compiled)  # cpool only
    assert data["baselines"] == {"nchw": "loop", "nhwc": None}
    assert not [e for e in data["entries"] if e["status"] in ("error", "mismatch")]
    assert all("other_cpus" in e and "spread" in e for e in data["entries"] if "median_s" in e)
    loop = [e for e in data["entries"] if e["variant"] == "loop" and e["shape"] == "mnist-first"]
    assert {e["op"] for e in loop if e["status"] == "n/a"} == {"gap"}  # the loop has no global average pooling
    assert all(e["extrapolated"] for e in loop if e["status"] == "ok")  # a 50 ms cap: part of the batch only
    assert data["mnist_epoch"][0]["shape"] == "mnist-first" and data["mnist_epoch"][0]["rows"]
    assert data["contention"] is None  # --quick: no contention section unless asked
    md = (out_dir / "results.md").read_text()
    assert "| method" in md and "- **numpy-maxchain**" in md and "## Bytes each op must move" in md
    assert "Median ms (spread) (NCHW memory)" in md and "## Busy machine" not in md
    assert ("Median ms (spread) (channels-last (NHWC) memory" in md) == bool(compiled)
    assert md.startswith("**WARNING: the machine was busy") == busy
    assert not (out_dir / "speedup.png").exists()
    text = R.render(data, md=False)
    assert "## Summary" in text and "## MNIST epoch" in text and "**" not in text


def test_a_busy_run_warns_first_and_the_legend_names_every_method(small_run, tmp_path):
    data = json.loads((small_run[1] / "results.json").read_text())
    data["machine"]["loadavg"]["before"] = 99.0
    data = R.derive(data)
    for md in (True, False):
        text = R.render(data, md)
        assert text.splitlines()[0].startswith(("**" if md else "") + "WARNING: the machine was busy (1-minute load "
                                                "average 99.00") and "rerun on an idle machine: `python bench" in text
        summary = text[text.index("## Summary"):text.index("## Performance targets")]
        assert "faster" not in summary and "slower" not in summary
        legend = text[text.index("## Legend"):text.index("## fwd")]
        assert all(n in legend for n in M.METHOD_NAMES) and "cpool t1, cpool t2" in legend.replace("**", "")
        assert "above 100%" in legend and "cache" in legend
    if importlib.util.find_spec("matplotlib"):
        assert R.draw_chart(data, tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"


AVG_METHODS = "loop,numpy-mean,cpool-numpy,cpool,cpool-out,torch,torch-cl,torch-mkldnn,onnxruntime"


def fake_adaptive_avg_pool2d(input, output_size, *, data_format="NCHW", out=None):
    """cpool.adaptive_avg_pool2d's signature, torch's averages (the gate's reference): gap where cpool has none."""
    import torch

    got = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(input), output_size).numpy()
    return got if out is None else (np.copyto(out, got), out)[1]


@pytest.mark.parametrize("with_gap", [False, True])
def test_a_tiny_average_pooling_run(with_gap, tmp_path, monkeypatch):
    import cpool

    if with_gap:
        if importlib.util.find_spec("torch") is None or M.get_methods(["torch"])[0].build is None:
            pytest.skip("the stand-in adaptive_avg_pool2d needs torch 2.13")
        monkeypatch.setattr(cpool, "adaptive_avg_pool2d", fake_adaptive_avg_pool2d, raising=False)
    else:
        monkeypatch.delattr(cpool, "adaptive_avg_pool2d", raising=False)
    lines = []
    s = B.settings_from_args(B.build_parser().parse_args(
        ["--quick", "--ops", "avg", "--shapes", "2x3x8x8,2x8x12x12:k3:s2:p1:nhwc", "--methods", AVG_METHODS,
         "--threads", "1", "--no-chart", "--no-progress", "--out", str(tmp_path)]))
    results = B.run(s, log=lines.append)
    ops = list(C.AVG_OPS) if with_gap else ["avg_fwd", "avg_bwd"]
    assert list(results["ops"]) == ops and ("gap" in results["skipped_ops"]) != with_gap
    assert not [e for e in results["entries"] if e["status"] in ("error", "mismatch")]
    timed = {(e["shape"], e["op"], e["variant"]) for e in results["entries"] if R.timed(e)}
    compiled = cpool.backend == "cython"
    import cpool.slow

    for op in ops:
        assert ("2x3x8x8", op, "torch t1") in timed and ("2x3x8x8", op, "torch-cl t1") in timed
        assert (("2x3x8x8", op, "cpool-numpy") in timed) == (op in M.avg_ops(cpool.slow))
        assert (("2x8x12x12:k3:s2:p1:nhwc", op, "cpool t1") in timed) == compiled
        assert ("2x8x12x12:k3:s2:p1:nhwc", op, "torch-cl t1") in timed
    assert ("2x3x8x8", "avg_fwd", "loop") in timed and ("2x3x8x8", "avg_fwd", "numpy-mean") in timed
    assert all(e["roofline"]["bytes"] == C.parse_shape(e["shape"]).nbytes(e["op"]) for e in results["entries"]
               if "roofline" in e)
    exact = {e["variant"] for e in results["entries"] if R.timed(e) and e["exact"]}
    assert {"cpool-numpy", "torch t1"} | ({"cpool t1", "cpool-out t1"} if compiled else set()) <= exact
    text = R.render(results, md=True)
    assert "## avg_fwd: average pooling forward" in text and "## fwd:" not in text
    assert ("## gap: global average pooling" in text) == with_gap
    assert ("skipped op gap" in text) != with_gap and "average-pooling reference (the gate): " in text
    body = RM.results_section(results)
    assert "Average pooling, forward, speed-up over torch t1:" in body
    assert ("Global average pooling (adaptive_avg_pool2d(x, 1)), speed-up" in body) == with_gap
    json.dumps(R._clean(results), allow_nan=False)  # results.json can be written


NEW_OPS = C.UNPOOL_OPS + C.ADAPTIVE_OPS


def test_a_wrong_unpooling_or_adaptive_max_is_caught_by_the_gate(monkeypatch):
    case = C.parse_shape("2x3x9x9:k3:s2").filled(ops=NEW_OPS, avg_reference=AVG_REFERENCE[1])
    assert {"unpool_values", "unpool_grad", "amax_values", "amax_indices"} <= set(case.ref)

    def build(c, op):  # the reference, one element changed: unpooling's values are copies, so no tolerance
        keys = C.OP_KEYS[op]
        wrong = [c.ref[k].copy() for k in keys]
        wrong[-1].flat[3] += 1
        return (lambda: tuple(wrong) if len(wrong) > 1 else wrong[0]), None
    s = B.Settings([], repeat=2, min_time=0.0, warmup=0, settle=0.0)
    peer = M.Method("peer", "", build, ops=NEW_OPS, own_sums=True)  # not even a summing peer passes
    for op in NEW_OPS:
        (bad,) = B.measure(case, op, [(peer, None)], s)
        assert bad["status"] == "mismatch" and "median_s" not in bad, op
        assert bad["reason"].startswith(C.OP_KEYS[op][-1] + ": 1 of"), op
    (cp,) = M.get_methods(["cpool"])
    if cp.build is None:
        pytest.skip(cp.note)
    import cpool

    real = cpool.max_unpool2d

    def off(*a, **k):
        got = real(*a, **k).copy()
        got.flat[np.flatnonzero(got)[0]] *= 2
        return got
    monkeypatch.setattr(cpool, "max_unpool2d", off)
    e, call = B.prepare(cp, 1, case, "unpool", s)
    assert e["status"] == "mismatch" and call is None and e["reason"].startswith("unpool_values: 1 of")
    monkeypatch.setattr(cpool, "max_unpool2d", real)
    assert B.prepare(cp, 1, case, "unpool", s)[0]["status"] == "ok"
    # a shape too small for the 7x7 output, and a dilated one unpooling cannot size: n/a with the reason
    small = C.parse_shape("1x2x5x9").filled(ops=NEW_OPS, avg_reference=AVG_REFERENCE[1])
    assert "amax_values" not in small.ref and "unpool_values" in small.ref
    e, call = B.prepare(cp, 1, small, "amax", s)
    assert e["status"] == "n/a" and call is None and "H, W >= 7" in e["reason"]
    dilated = C.parse_shape("1x2x9x10:s1:d2").filled(ops=NEW_OPS, avg_reference=AVG_REFERENCE[1])
    assert "unpool_values" not in dilated.ref and "amax_values" in dilated.ref
    assert "output-size rule" in B.prepare(cp, 1, dilated, "unpool_bwd", s)[0]["reason"]


def test_unpooling_and_adaptive_max_targets():
    def e(shape, op, variant, ms):
        return {"shape": shape, "op": op, "variant": variant, "status": "ok", "median_s": ms / 1e3}
    es = []
    for t in (1, 2):
        es += [e(sh, "unpool", f"cpool t{t}", 1.0) for sh in C.MNIST_SHAPES]
        es += [e("mnist-conv", "unpool", f"torch t{t}", 4.0), e("mnist-first", "unpool", f"torch t{t}", 2.0 + t)]
        es += [e(sh, "amax", f"cpool t{t}", 1.0) for sh in ("large", "large-nhwc")]
        es += [e(sh, "amax", f"torch-cl t{t}", 2.0) for sh in ("large", "large-nhwc")]
    rows = {r[0]: r[2:] for r in R.target_rows({"settings": {"threads": [1, 2]}, "entries": es})}
    # mnist-first at 1 thread: 3x exactly, met; every thread count must meet it
    assert rows["max_unpool2d, MNIST shapes"] == ["mnist-conv 4x / 4x; mnist-first 3x / 4x", "met"]
    assert rows["adaptive_max_pool2d, large shapes (informational)"] == ["large 2x / 2x; large-nhwc 2x / 2x", "met"]
    es[-1]["median_s"] = 1.0 / 1e3  # torch-cl t2 on large-nhwc now as fast as cpool
    rows = {r[0]: r[2:] for r in R.target_rows({"settings": {"threads": [1, 2]}, "entries": es})}
    assert rows["adaptive_max_pool2d, large shapes (informational)"][1] == "**not met**"
    labels = [t[0] for t in C.TARGETS]
    assert labels.count("max_unpool2d, MNIST shapes") == 1


def test_a_tiny_unpooling_and_adaptive_max_run(tmp_path):
    import cpool

    lines = []
    shapes = "2x3x8x8,2x8x12x12:k3:s2:p1:nhwc,1x2x5x5"
    s = B.settings_from_args(B.build_parser().parse_args(
        ["--quick", "--ops", "unpool,adaptive", "--shapes", shapes, "--methods", "cpool,cpool-numpy,torch,torch-cl",
         "--threads", "1", "--no-chart", "--no-progress", "--out", str(tmp_path)]))
    results = B.run(s, log=lines.append)
    assert list(results["ops"]) == list(NEW_OPS) and not results["skipped_ops"]
    assert not [e for e in results["entries"] if e["status"] in ("error", "mismatch")]
    timed = {(e["shape"], e["op"], e["variant"]) for e in results["entries"] if R.timed(e)}
    assert all(e["exact"] for e in results["entries"] if R.timed(e))
    compiled, torch = cpool.backend == "cython", M.get_methods(["torch"])[0].build is not None
    for op in NEW_OPS:
        assert ("2x3x8x8", op, "cpool-numpy") in timed
        assert (("2x8x12x12:k3:s2:p1:nhwc", op, "cpool t1") in timed) == compiled
        assert (("2x3x8x8", op, "torch t1") in timed) == torch
        assert (("2x8x12x12:k3:s2:p1:nhwc", op, "torch-cl t1") in timed) == torch
    na = [e for e in results["entries"] if e["shape"] == "1x2x5x5" and e["op"] == "amax"]
    assert na and all(e["status"] == "n/a" and "H, W >= 7" in e["reason"] for e in na)
    assert ("1x2x5x5", "unpool", "cpool-numpy") in timed
    assert all(e["roofline"]["bytes"] == C.parse_shape(e["shape"]).nbytes(e["op"]) for e in results["entries"]
               if "roofline" in e)
    text = R.render(results, md=True)
    assert "## unpool: max unpooling" in text and "## amax: adaptive max pooling" in text and "## fwd:" not in text
    assert "unpooling and adaptive max reference (the gate): " in text
    body = RM.results_section(results)
    assert "Max unpooling (max_unpool2d of max_pool2d's values and indices)" in body
    json.dumps(R._clean(results), allow_nan=False)


def test_no_ticket_numbers_in_the_benchmark():
    here = Path(__file__).resolve().parent
    for path in [*here.glob("*.py")]:
        assert not re.search(r"\b(issue|ticket|bug)s? ?#?\d", path.read_text(), re.I), path


# ---- the README's generated parts (readme.py) -----------------------------------------------------

README = """# cpool

Prose that gives exactly PyTorch's answers <!-- bench:intro -->old figures<!-- /bench:intro -->. More prose.

## Benchmark results (this project's 2-core machine)

<!-- bench:results -->
old results
<!-- /bench:results -->

## Next

kept
"""


def readme_run(busy=False):
    """A derived results dict as bench.run makes it: cpool and torch at 1 and 2 threads, two shapes, every op. At
    2 threads on mnist-conv cpool is 50x (fwd), 24x (fwd_idx), 3x (bwd) and 13x (step) faster; on tiny 1.2x."""
    ms = {"fwd": (0.1, 5.0), "fwd_idx": (0.2, 4.8), "bwd": (0.1, 0.3), "step": (0.4, 5.2)}
    es = [entry(sh, op, f"{m} t{t}", ms[op][m == "torch"] * t if sh == "mnist-conv" else (0.012 if m == "torch" else
                0.01) * t, busy=busy) for sh in ("mnist-conv", "tiny") for op in ms for m in ("cpool", "torch")
          for t in (1, 2)]
    results = made_up(es)
    results["machine"].update(cpu_model="AMD EPYC", torch="2.13.0+cpu", cpool={"version": "0.1.0", "isa": "avx2"})
    results.update(created="2026-12-01T10:00:00+00:00", duration_s=1.0, methods={}, ops=dict(C.OPS),
                   shapes=[C.parse_shape(n).meta() for n in ("mnist-conv", "tiny")])
    return R.derive(results)


def flat(text):
    return " ".join(text.split())


def between(text, name):
    start, end = RM.markers(name)
    return text[text.index(start) + len(start):text.index(end)]


def test_readme_parts_are_generated_between_the_markers_and_again_give_the_same():
    text, notes = RM.fill(README, readme_run())
    assert not notes and "old figures" not in text and "old results" not in text
    assert text.startswith("# cpool\n\nProse that gives exactly PyTorch's answers <!-- bench:intro -->\n")
    assert "<!-- /bench:intro -->. More prose.\n\n## Benchmark results (this project's 2-core machine)\n\n" in text
    assert text.endswith("<!-- /bench:results -->\n\n## Next\n\nkept\n")
    intro = flat(between(text, "intro"))
    assert intro.startswith("far faster than the loop (not in the benchmark run): on this project's 2-core machine, "
                            "on the MNIST shape (64x32x28x28 k2 s2) with cpool and PyTorch both at 2 threads, forward "
                            "with indices runs 24x faster than PyTorch's NCHW CPU kernel (1.2-24x over the run's 2 "
                            "shapes), values-only 50x (1.2-50x), a training step (forward + backward) 13x (1.2-13x) "
                            "and the backward alone 3x (1.2-3x) (torch on contiguous arrays: its faster "
                            "channels-last and oneDNN paths are not in this comparison)")
    assert intro.endswith("(see [Benchmark results](#benchmark-results-this-projects-2-core-machine))")
    assert all(len(line) <= RM.WIDTH for line in between(text, "intro").splitlines()[1:-1])
    body = between(text, "results")
    assert "`python bench/bench.py --shapes mnist-conv` on 2026-12-01" in flat(body)
    assert "[bench/RESULTS.md](bench/RESULTS.md)" in body and "![speed-up over torch t2](bench/speedup.png)" in body
    assert flat(body).count("- fwd: cpool is 50x faster than torch at 2 threads on mnist-conv") == 1
    assert "- Busy machine: the contention section is not in this run." in body and "Performance targets" not in body
    for title in ("Forward with indices", "Forward, values only", "Backward", "Training step through the Module API"):
        assert f"\n{title}" in body
    assert "| cpool t2 | 24x        | 1.2x |" in body and "per 60,000-image epoch" in body
    assert RM.fill(text, readme_run())[0] == text


def test_a_busy_run_gives_the_readme_no_headline():
    text = RM.fill(README, readme_run(busy=True))[0]
    intro = flat(between(text, "intro"))
    assert "busy (other processes kept 0.5 CPUs or more busy during 32 of 32 timings)" in intro
    assert "no headline figures" in intro and "PyTorch" not in intro and not re.search(r"\dx", intro)
    body = flat(between(text, "results"))
    assert "**WARNING: the machine was busy" in body and "- fwd: cpool" not in body


def test_contention_line_names_the_worst_ratio():
    run = readme_run()
    run["contention"] = {"loads": [2, 4], "rows": [contention_row("fwd", 2, "cpool", 1.0, 1.1),
                                                   contention_row("bwd", 4, "cpool", 2.0, 3.2)]}
    assert RM.contention_line(run) == ("Busy machine (cpool at its default thread count against 1 thread, with 2 and "
                                       "4 busy processes on 2 CPUs; the target is at most 1.5x): worst 1.6x: "
                                       "mnist-conv bwd, 4 busy (3.2 vs 2 ms, spread 5% / 5%); 2 shape/op/load rows, "
                                       "1 within 1.5x, median row 1.6x.")


def test_a_missing_marker_is_an_error_and_leaves_the_readme_alone(tmp_path, capsys):
    for gone in (*RM.markers("intro"), *RM.markers("results")):
        with pytest.raises(RM.ReadmeError, match=re.escape(gone.replace("/", "")[5:-4])):
            RM.fill(README.replace(gone, ""), readme_run())
    with pytest.raises(RM.ReadmeError, match="each appear once"):
        RM.fill(README + "<!-- bench:intro -->\n", readme_run())
    path, data = tmp_path / "README.md", tmp_path / "results.json"
    path.write_text(README.replace("<!-- /bench:results -->", ""))
    data.write_text(json.dumps(readme_run()))
    assert RM.main([str(data), str(path)]) == 2
    assert "<!-- /bench:results -->" in capsys.readouterr().err
    assert path.read_text() == README.replace("<!-- /bench:results -->", "")


def test_readme_cli_and_commit(tmp_path, capsys):
    run_dir, bench, readme = tmp_path / "run", tmp_path / "bench", tmp_path / "README.md"
    run_dir.mkdir()
    bench.mkdir()
    readme.write_text(README)
    (run_dir / "results.json").write_text(json.dumps(readme_run()))
    (run_dir / "results.md").write_text("# cpool benchmark results\n")
    with pytest.raises(RM.ReadmeError, match="has no speedup.png"):
        RM.commit(run_dir, readme, bench, log=lambda _: None)
    assert not list(bench.iterdir()) and readme.read_text() == README
    (run_dir / "speedup.png").write_bytes(b"\x89PNG")
    assert RM.commit(run_dir, readme, bench, log=lambda _: None)
    assert sorted(p.name for p in bench.iterdir()) == ["RESULTS.md", "results.json", "speedup.png"]
    assert (bench / "RESULTS.md").read_text() == "# cpool benchmark results\n"
    assert readme.read_text() == RM.fill(README, readme_run())[0]
    assert RM.main([str(bench / "results.json"), str(readme)]) == 0 and "already up to date" in capsys.readouterr().out
    (tmp_path / "old.json").write_text(json.dumps({"schema": "cpool-bench/1", "entries": []}))
    with pytest.raises(RM.ReadmeError, match="an older run"):
        RM.load(tmp_path / "old.json")


def test_readme_from_a_real_run_and_the_readme_has_its_markers(small_run):
    results = RM.load(small_run[1] / "results.json")
    intro = flat(between(RM.fill(README, results)[0], "intro"))
    if results["busy"]["busy"]:
        assert "no headline figures" in intro
    else:
        assert re.match(r"[\d,.]+x faster than the loop on a forward \+ backward pass: torch was not in the", intro)
    RM.spans((Path(__file__).resolve().parent.parent / "README.md").read_text())


# ---- 3-D pooling (the pool3d group) -----------------------------------------------------------------

def test_pool3d_shapes_ops_and_references():
    vol = C.parse_shape("vol-k3")
    assert vol.volume and vol.shape == (2, 32, 64, 64, 64) and vol.out_shape == (2, 32, 32, 32, 32)
    assert vol.args == (3, 2, 1, 1) and vol.nbytes("max3d_fwd") == 4 * 2 * 32 * 64**3 + 12 * 2 * 32 * 32**3
    assert all(n + C.NHWC in C.SHAPES_3D for n in C.BASE_SHAPES_3D) and set(C.QUICK_SHAPES_3D) <= set(C.SHAPES_3D)
    assert C.OP_GROUPS["pool3d"] == C.POOL3D_OPS and set(C.POOL3D_OPS) <= set(C.OP_GROUPS["all"])
    small = C.parse_shape("2x3x4x6x6:k2:nhwc")
    assert small.unfit("fwd") and small.unfit("max3d_fwd") is None and C.parse_shape("tiny").unfit("max3d_bwd")
    cl, planes = C.parse_shape("vol-quick-nhwc").filled(ops=C.POOL3D_OPS), C.parse_shape("vol-quick").filled(
        ops=C.POOL3D_OPS)
    assert cl.x.transpose(0, 2, 3, 4, 1).flags.c_contiguous and np.array_equal(cl.x, planes.x)
    assert cl.ref["max3d_indices"].transpose(0, 2, 3, 4, 1).flags.c_contiguous
    assert all(np.array_equal(cl.ref[k], planes.ref[k]) for k in C.OP_KEYS["max3d_fwd"] + C.OP_KEYS["max3d_bwd"])


def test_pool3d_quick_settings_pick_the_5d_shapes():
    s = B.settings_from_args(B.build_parser().parse_args(["--ops", "pool3d", "--quick"]))
    assert [c.name for c in s.shapes] == list(C.QUICK_SHAPES_3D) and s.ops == list(C.POOL3D_OPS)
    both = B.settings_from_args(B.build_parser().parse_args(["--ops", "fwd,max3d_fwd", "--quick"]))
    assert [c.name for c in both.shapes] == list(C.QUICK_SHAPES) + list(C.QUICK_SHAPES_3D)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_pool3d_methods_pass_the_gate():
    for name in ("vol-quick", "vol-quick-nhwc"):
        case = C.parse_shape(name).filled(ops=C.POOL3D_OPS)
        for method in M.get_methods(("cpool", "cpool-numpy", "torch", "torch-cl")):
            if method.build is None or case.layout not in method.layouts:
                continue
            for op in C.POOL3D_OPS:
                e, call = B.prepare(method, None, case, op, B.Settings([case]))
                assert e["status"] == "ok" and e["exact"], (name, method.name, op, e["reason"])


# ---- 1-D max pooling (the pool1d op) --------------------------------------------------------------

def test_pool1d_op_and_its_shapes():
    p = B.build_parser()
    s = B.settings_from_args(p.parse_args(["--ops", "pool1d"]))
    assert s.ops == ["pool1d"] and [c.name for c in s.shapes] == list(C.POOL1D_SHAPES)
    s = B.settings_from_args(p.parse_args(["--ops", "all", "--quick"]))
    assert "pool1d" in s.ops and [c.name for c in s.shapes] == [*C.QUICK_SHAPES, *C.POOL1D_SHAPES,
                                                                  *C.QUICK_SHAPES_3D]
    assert not any(c.one_d for c in B.settings_from_args(p.parse_args([])).shapes)  # the default run has none
    case = C.parse_shape("pool1d-k3s1p1")
    assert case.one_d and case.shape == (64, 128, 1, 4096) and case.out_shape == (64, 128, 1, 4096)
    assert case.describe() == "64x128x4096 (1-D) k3 s1 p1" and case.nbytes("pool1d") == 2 * 64 * 128 * 4096 * 4
    assert "only pool1d" in case.unfit("fwd") and "1-D shapes only" in C.parse_shape("tiny").unfit("pool1d")
    with pytest.raises(ValueError, match="H = 1"):
        C.parse_shape("2x3x4x5:1d")
    labels = [t[0] for t in C.TARGETS]
    assert "max_pool1d, 64x128x4096 k2 s2 and k3 s1 p1" in labels and "max_pool1d, 64x128x4096, out= buffers" in labels


def test_a_tiny_pool1d_run_and_its_gate(tmp_path, monkeypatch):
    import cpool

    shapes = "2x8x1x40:k2:s2:1d,2x8x1x40:k3:s1:p1:1d:nhwc,2x3x8x8"
    s = B.settings_from_args(B.build_parser().parse_args(
        ["--quick", "--ops", "pool1d", "--shapes", shapes, "--methods", "cpool,cpool-out,cpool-numpy,torch,loop",
         "--threads", "1", "--no-chart", "--no-progress", "--out", str(tmp_path)]))
    results = B.run(s, log=[].append)
    assert not [e for e in results["entries"] if e["status"] in ("error", "mismatch")]
    timed = {(e["shape"], e["variant"]) for e in results["entries"] if R.timed(e)}
    assert all(e["exact"] for e in results["entries"] if R.timed(e))
    compiled, torch = cpool.backend == "cython", M.get_methods(["torch"])[0].build is not None
    for shape in shapes.split(",")[:2]:  # (cpool-numpy and torch run on NCHW memory only)
        assert ((shape, "cpool-numpy") in timed) == ("nhwc" not in shape)
        assert ((shape, "cpool t1") in timed) == compiled and ((shape, "cpool-out t1") in timed) == compiled
        assert ((shape, "torch t1") in timed) == (torch and "nhwc" not in shape)
    na = [e for e in results["entries"] if e["shape"] == "2x3x8x8"]
    assert na and all(e["status"] == "n/a" and ("1-D shapes only" in e["reason"] or e["method"] == "loop")
                      for e in na)
    assert "## pool1d: 1-D max pooling" in R.render(results, md=True)
    assert "1-D max pooling, values only (max_pool1d)" in RM.results_section(results)
    # a wrong max_pool1d is caught by the gate
    (cp,) = M.get_methods(["cpool"])
    if cp.build is None:
        pytest.skip(cp.note)
    case = C.parse_shape("2x8x1x40:k2:s2:1d").filled(ops=C.POOL1D_OPS)
    real = cpool.max_pool1d
    monkeypatch.setattr(cpool, "max_pool1d", lambda *a, **k: real(*a, **k) + 1)
    e, call = B.prepare(cp, 1, case, "pool1d", B.Settings([], repeat=2, min_time=0.0, warmup=0, settle=0.0))
    assert e["status"] == "mismatch" and call is None and e["reason"].startswith("pool1d_values:")


def test_targets_show_the_roofline_ceiling_of_shapes_larger_than_the_cache():
    # A part not met on a shape whose bytes exceed the largest cache shows rival time / cpool's bound; the verdict
    # says the roofline allows less only when every part not met is capped below what was asked.
    def e(shape, op, variant, ms, bound_ms=None, nbytes=0):
        return {"shape": shape, "op": op, "variant": variant, "status": "ok", "median_s": ms / 1e3,
                **({"roofline": {"bound_s": bound_ms / 1e3, "bytes": nbytes}} if bound_ms else {})}

    def rows(cache, torch_t2, cpool_t2=3.0):
        results = {"settings": {"threads": [1, 2]}, "machine": {"cache_bytes": cache}, "entries": [
            e("large-nhwc", "fwd_idx", "cpool t1", 4.0, 3.0, 64 << 20), e("large-nhwc", "fwd_idx", "torch-cl t1", 5.0),
            e("large-nhwc", "fwd_idx", "cpool t2", cpool_t2, 2.5, 64 << 20),
            e("large-nhwc", "fwd_idx", "torch-cl t2", torch_t2)]}
        return {r[0]: r[2:] for r in R.target_rows(results)}["NHWC input, forward with indices"]

    assert rows(32 << 20, 4.0) == ["large-nhwc 1.25x / 1.33x (roofline ceiling 1.67x / 1.6x)",
                                   "**not met** (the roofline allows less)"]
    # At t2 the rival leaves room (5.5 / 2.5 = 2.2x >= 2x): the verdict is a plain "not met".
    assert rows(32 << 20, 5.5) == ["large-nhwc 1.25x / 1.83x (roofline ceiling 1.67x / 2.2x)", "**not met**"]
    # A part that beats its ceiling is not held there (t2: cpool 2 ms under its 2.5 ms bound, 1.5x against a
    # 1.2x ceiling): the verdict is a plain "not met".
    assert rows(32 << 20, 3.0, cpool_t2=2.0) == ["large-nhwc 1.25x / 1.5x (roofline ceiling 1.67x / 1.2x)",
                                                 "**not met**"]
    # Data that fit in the cache (or an unknown cache): no ceiling.
    assert rows(128 << 20, 4.0) == ["large-nhwc 1.25x / 1.33x", "**not met**"]
    assert rows(None, 4.0) == ["large-nhwc 1.25x / 1.33x", "**not met**"]


def test_every_target_note_names_a_target():
    assert set(C.TARGET_NOTES) <= {(t[0], t[1]) for t in C.TARGETS}
