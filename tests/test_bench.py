"""Tests of the benchmark script under bench/ (harness, gate, roofline,
methods, report, CLI). Fast, and independent of torch, numba, jax and
matplotlib: the parts that need them are skipped when they are absent."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import bench as B  # noqa: E402
import bench_harness as H  # noqa: E402
import bench_methods as M  # noqa: E402
import bench_report as R  # noqa: E402

try:
    import cpool  # noqa: F401
    import cpool.slow  # noqa: F401

    HAVE_CPOOL = True
except Exception:  # pragma: no cover - the package is absent or broken
    HAVE_CPOOL = False

needs_cpool = pytest.mark.skipif(not HAVE_CPOOL, reason="cpool cannot be imported")


def have(mod):
    return importlib.util.find_spec(mod) is not None


# ---- a NumPy reference independent of cpool, for the tests that must run without it


class LoopReference:
    """max_pool2d / max_pool2d_backward for kernel == stride, no padding,
    written with plain loops (PyTorch's rule: v > best or isnan(v))."""

    @staticmethod
    def max_pool2d(x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        kh, kw = M._pair(kernel)
        N, C, H, W = x.shape
        OH, OW = H // kh, W // kw
        out = np.empty((N, C, OH, OW), x.dtype)
        idx = np.empty((N, C, OH, OW), np.int64)
        for n in range(N):
            for c in range(C):
                for i in range(OH):
                    for j in range(OW):
                        best, bi = -np.inf, i * kh * W + j * kw
                        for a in range(kh):
                            for b in range(kw):
                                v = x[n, c, i * kh + a, j * kw + b]
                                if v > best or v != v:
                                    best, bi = v, (i * kh + a) * W + j * kw + b
                        out[n, c, i, j], idx[n, c, i, j] = best, bi
        return (out, idx) if return_indices else out

    @staticmethod
    def max_pool2d_backward(go, idx, shape):
        N, C, H, W = shape
        gi = np.zeros((N, C, H * W), go.dtype)
        for n in range(N):
            for c in range(C):
                for o, i in zip(go[n, c].ravel(), idx[n, c].ravel()):
                    gi[n, c, i] += o
        return gi.reshape(shape)


def small_case(shape=(2, 3, 6, 8), kernel=2, seed=1):
    return M.make_case("small", shape, kernel, seed=seed, reference=LoopReference)


# ---- timing harness


def test_time_call_counts_batches_and_stops():
    calls = []
    cfg = H.TimingConfig(warmup=2, min_count=5, min_time=0.0, max_time=5.0, batch_time=0.0)
    t = H.time_call(lambda: calls.append(1), cfg)
    assert t.count == 5 and t.batch == 1
    assert len(calls) == 2 + 1 + 5  # warm-up, the estimate, the samples
    assert all(s >= 0 for s in t.samples)
    assert t.median >= 0 and t.minimum <= t.median


def test_time_call_with_fake_clock():
    """A fake clock advancing 1 ms per call: the per-call time is exact and
    short calls get batched up to batch_time."""
    now = [0.0]

    def clock():
        return now[0]

    def fn():
        now[0] += 1e-3

    cfg = H.TimingConfig(warmup=0, min_count=4, min_time=0.0, max_time=10.0, batch_time=5e-3)
    t = H.time_call(fn, cfg, clock=clock)
    assert t.batch == 5
    assert t.count == 4
    assert all(abs(s - 1e-3) < 1e-12 for s in t.samples)
    assert abs(t.median - 1e-3) < 1e-12 and t.spread < 1e-9


def test_time_call_max_time_caps():
    now = [0.0]

    def fn():
        now[0] += 1.0

    cfg = H.TimingConfig(warmup=0, min_count=100, min_time=0.0, max_time=3.0, floor_count=2, batch_time=0.0)
    t = H.time_call(fn, cfg, clock=lambda: now[0])
    assert t.capped and 2 <= t.count < 100


def test_timing_stats_and_merge():
    a = H.Timing(samples=[1.0, 2.0, 3.0, 4.0, 5.0])
    assert a.median == 3.0 and a.minimum == 1.0
    assert a.quantile(0.25) == 2.0 and a.quantile(0.75) == 4.0
    assert math.isclose(a.spread, 2.0 / 3.0)
    b = a.merged(H.Timing(samples=[10.0], batch=3, capped=True))
    assert b.count == 6 and b.batch == 3 and b.capped
    s = a.summary()
    assert set(s) >= {"median_s", "min_s", "q1_s", "q3_s", "spread", "count"}
    assert math.isnan(H.Timing().median)


# ---- correctness gate


def test_compare_exact_and_mismatch():
    ref = {"values": np.array([1.0, np.nan], np.float32), "indices": np.array([3, 4]), "grad_in": np.ones(3)}
    assert H.compare({"values": np.array([1.0, np.nan]), "indices": np.array([3, 4], np.int32)}, ref).ok
    g = H.compare({"values": np.array([1.0, 2.0], np.float32)}, ref)
    assert not g.ok and "values" in g.detail
    g = H.compare({"values": ref["values"], "indices": np.array([3, 5])}, ref)
    assert not g.ok and "indices" in g.detail and "1 of 2" in g.detail
    g = H.compare({"values": np.zeros(3)}, ref)
    assert not g.ok and "shape" in g.detail
    assert not H.compare({}, ref).ok


def test_compare_grad_tolerance():
    ref = {"grad_in": np.array([1.0, 2.0, 3.0], np.float32)}
    close = H.compare({"grad_in": ref["grad_in"] * (1 + 1e-7)}, ref)
    assert close.ok and not close.exact
    assert not H.compare({"grad_in": ref["grad_in"] + 0.1}, ref).ok


def test_gate_flags_a_wrong_method():
    """A deliberately wrong method gets flagged (and still timed); a right
    one passes."""
    case = small_case()
    right = M.Method("right", "loop reference", M.OPS, lambda c, op: M.Prepared(
        lambda: LoopReference.max_pool2d(c.x, 2, return_indices=True), M._np_result(["values", "indices"])))

    def wrong_build(c, op):
        def call():
            v, i = LoopReference.max_pool2d(c.x, 2, return_indices=True)
            return v, i + 1  # off by one
        return M.Prepared(call, M._np_result(["values", "indices"]))

    wrong = M.Method("wrong", "off-by-one indices", M.OPS, wrong_build)
    settings = B.Settings(shapes=[], methods=[], ops=["fwd_idx"], threads=[1], out="", repeat=2, min_time=0.0,
                          warmup=0, passes=2, settle=0.0)
    entries = B.measure_case_op(case, "fwd_idx", [(right, None), (wrong, None)], settings)
    ok, bad = entries
    assert ok["status"] == "ok" and not ok["flagged"] and ok["gate"]["ok"]
    assert bad["status"] == "ok" and bad["flagged"] and "indices" in bad["gate"]["detail"]
    assert bad["median_s"] > 0 and len(bad["pass_medians_s"]) == 2


def test_unsupported_and_failing_methods():
    case = M.make_case("pad", (1, 2, 8, 8), 3, 2, 1, reference=False)
    loop = M.get_methods(["loop"])[0]
    entry, prep = B.prepare_entry(loop, None, case, "fwd", B.Settings([], [], [], [1], ""))
    assert entry["status"] == "n/a" and prep is None

    def boom(c, op):
        raise RuntimeError("broken")

    entry, prep = B.prepare_entry(M.Method("boom", "", M.OPS, boom), None, small_case(), "fwd",
                                  B.Settings([], [], [], [1], ""))
    assert entry["status"] == "error" and "broken" in entry["reason"]


# ---- roofline


def test_op_bytes_and_roofline():
    # 64x32x28x28 float32, k2 s2: 1,605,632 inputs, 401,408 outputs
    i, o = 64 * 32 * 28 * 28, 64 * 32 * 14 * 14
    assert H.op_bytes("fwd", i, o, 4) == 4 * i + 4 * o
    assert H.op_bytes("fwd_idx", i, o, 4) == 4 * i + 4 * o + 8 * o == 11_239_424
    assert H.op_bytes("bwd", i, o, 4) == 4 * o + 8 * o + 4 * i
    assert H.op_bytes("step", i, o, 4) == H.op_bytes("fwd_idx", i, o, 4) + H.op_bytes("bwd", i, o, 4)
    with pytest.raises(ValueError):
        H.op_bytes("nope", 1, 1, 4)
    r = H.roofline(45_000, 45e9, 2e-6)  # 45 kB at 45 GB/s: a 1 µs bound
    assert math.isclose(r["bound_s"], 1e-6) and math.isclose(r["fraction"], 0.5)
    assert math.isnan(H.roofline(10, 1e9, 0.0)["fraction"])


def test_measure_bandwidth_small():
    bw = H.measure_bandwidth(threads=(1, 2), size_mb=4, repeats=2)
    assert set(bw["copy"]) == {1, 2} and set(bw["read"]) == {1, 2}
    assert all(v > 1e8 for v in list(bw["copy"].values()) + list(bw["read"].values()))


def test_machine_facts_and_load_meter():
    f = H.machine_facts()
    assert f["cpu_model"] and f["available_cpus"] >= 1 and f["numpy"] == np.__version__
    load = H.LoadMeter().start().stop()
    assert load is None or load >= 0


# ---- methods


def test_loop_and_answer_match_the_reference():
    case = small_case(shape=(2, 2, 7, 9))  # odd sizes: both crop
    for name in ("loop", "numpy-answer", "numpy-maxchain"):
        meth = M.get_methods([name])[0]
        for op in meth.ops:
            prep = meth.build(case, op)
            gate = H.compare(prep.to_result(prep.call()), case.ref)
            assert gate.ok, (name, op, gate.detail)


def test_maxchain_padding_and_dilation():
    x = np.random.default_rng(3).standard_normal((2, 3, 9, 10)).astype(np.float32)
    out = M.maxchain_forward(x, (3, 3), (2, 2), (1, 1), (1, 1))
    assert out.shape == (2, 3, 5, 5)
    assert out[0, 0, 0, 0] == x[0, 0, :2, :2].max()
    out = M.maxchain_forward(x, (2, 2), (1, 1), (0, 0), (2, 2))
    assert out.shape == (2, 3, 7, 8) and out[1, 2, 3, 4] == x[1, 2, 3:6:2, 4:7:2].max()


def test_pool_out_len_matches_torch_rules():
    assert M.pool_out_len(28, 2, 2, 0, 1, False) == 14
    assert M.pool_out_len(112, 3, 2, 1, 1, False) == 56
    assert M.pool_out_len(5, 2, 2, 0, 1, True) == 3
    assert M.pool_out_len(6, 2, 2, 1, 1, True) == 4  # last window would start in the padding: dropped


def test_registry_skips_missing_peers_with_a_note(monkeypatch):
    """With torch, numba and jax made to look absent, they are skipped, each
    with a note on how to install it (torch pinned)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(M.importlib.util, "find_spec",
                        lambda name, *a: None if name.split(".")[0] in ("torch", "numba", "jax", "jaxlib")
                        else real(name, *a))
    got = {m.name: m for m in M.get_methods(["torch", "numba", "jax", "loop"])}
    assert not got["torch"].available and f"pip install torch=={M.TORCH_PIN}" in got["torch"].note
    assert not got["numba"].available and "pip install numba" in got["numba"].note
    assert not got["jax"].available and "pip install jax jaxlib" in got["jax"].note
    assert got["loop"].available
    assert B.make_variants(list(got.values()), [1, 2]) == [(got["loop"], None)]
    with pytest.raises(KeyError):
        M.get_methods(["nope"])


@needs_cpool
def test_cpool_methods_pass_the_gate():
    case = M.make_case("c", (2, 3, 12, 12), 3, 2, 1)
    names = ["cpool-numpy", "cpool"] + (["torch"] if have("torch") else [])  # numba/jax: in the --quick run
    for meth in M.get_methods(names):
        if not meth.available:
            continue
        for op in meth.ops:
            prep = meth.build(case, op)
            gate = H.compare(prep.to_result(prep.call()), case.ref)
            assert gate.ok, (meth.name, op, gate.detail)


# ---- CLI and install logic


def test_parse_shape_and_threads():
    s = B.parse_shape("resnet-stem")
    assert s["shape"] == (32, 64, 112, 112) and s["kernel"] == 3 and s["stride"] == 2 and s["padding"] == 1
    s = B.parse_shape("8x3x32x32:k3:s1:p1:d1:ceil:float64")
    assert (s["kernel"], s["stride"], s["padding"], s["ceil_mode"], s["dtype"]) == (3, 1, 1, True, "float64")
    assert B.parse_shape("1x1x4x4")["stride"] == 2
    with pytest.raises(ValueError):
        B.parse_shape("bogus")
    assert B.parse_threads("1,all,1") == [1, H.available_cpus()] if H.available_cpus() > 1 else [1]
    with pytest.raises(ValueError):
        B.parse_threads("0")


def test_settings_quick_and_overrides():
    p = B.build_parser()
    s = B.settings_from_args(p.parse_args(["--quick", "--repeat", "7"]))
    assert [sp["name"] for sp in s.shapes] == list(B.QUICK_SHAPES) and s.ops == list(M.OPS)
    assert s.repeat == 7 and s.passes == 1
    with pytest.raises(ValueError):
        B.settings_from_args(p.parse_args(["--methods", "cpool,nope"]))
    assert "--quick" in p.format_help() and "--threads" in p.format_help()


def test_install_reason(tmp_path):
    assert B.install_reason(False) == "cpool is not installed"
    assert B.install_reason(True, "cython", "0.1.0", "0.1.0", tmp_path / "site" / "cpool", tmp_path, 10.0, 5.0) is None
    assert "version" in B.install_reason(True, "cython", "0.0.9", "0.1.0")
    assert "'numpy'" in B.install_reason(True, "numpy", "0.1.0", "0.1.0")
    assert "changed" in B.install_reason(True, "cython", "0.1.0", "0.1.0", tmp_path / "site" / "cpool", tmp_path,
                                         5.0, 10.0)
    # an in-tree (editable) install is never called stale
    assert B.install_reason(True, "cython", "0.1.0", "0.1.0", tmp_path / "cpool", tmp_path, 5.0, 10.0) is None
    assert B.install_reason(True, "cython", "0.1.0", "0.1.0", rebuild=True) == "--rebuild was given"
    assert B.install_reason(True, "numpy", "0.1.0", "0.1.0", numpy_chosen=True) is None


def test_source_version_reads_the_tree(tmp_path):
    (tmp_path / "cpool").mkdir()
    (tmp_path / "cpool" / "__init__.py").write_text('"""doc"""\n__version__ = "1.2.3"\n')
    assert B.source_version(tmp_path) == "1.2.3"
    assert B.source_version(tmp_path / "nowhere") is None


# ---- a whole small run: results, JSON schema, files


@needs_cpool
def test_small_run_writes_valid_results(tmp_path, capsys):
    rc = B.main(["--shapes", "1x2x8x8,mnist-first", "--methods", "loop,numpy-answer,cpool-numpy,cpool",
                 "--threads", "1,2", "--repeat", "2", "--min-time", "0", "--warmup", "0", "--loop-cap", "0.01",
                 "--bandwidth-mb", "8", "--settle", "0", "--no-chart", "--no-build", "--no-progress",
                 "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "Summary:" in out and "MNIST epoch" in out
    data = json.loads((tmp_path / "results.json").read_text())
    assert R.validate_results(data)
    assert data["schema"] == R.SCHEMA
    assert len(data["summary"]) == len(M.OPS)
    expected = {"loop", "numpy-answer", "cpool-numpy"} | ({"cpool t1", "cpool t2"} if cpool.backend == "cython" else set())
    assert {e["variant"] for e in data["entries"]} >= expected
    assert not [e for e in data["entries"] if e.get("flagged")]
    loop = [e for e in data["entries"] if e["variant"] == "loop" and e["shape"] == "mnist-first"]
    assert loop and all(e["extrapolated"] for e in loop)  # 10 ms cap: part of the batch only
    assert data["mnist_epoch"] and data["mnist_epoch"][0]["shape"] == "mnist-first"
    md = (tmp_path / "results.md").read_text()
    assert "## Summary" in md and "| method |" in md
    assert not (tmp_path / "speedup.png").exists()
    if have("matplotlib"):
        png = R.draw_chart(data, tmp_path / "chart.png")
        assert png is not None and png.read_bytes()[:4] == b"\x89PNG"


def test_validate_results_rejects_bad_documents():
    with pytest.raises(ValueError):
        R.validate_results({})
    good_entry = {"shape": "s", "op": "fwd", "method": "m", "variant": "m", "status": "weird", "flagged": False}
    doc = {k: (t[0] if isinstance(t, tuple) else t)() for k, t in R._TOP.items()}
    doc.update(schema=R.SCHEMA, baseline=None, ops={"fwd": ""}, shapes=[],
               machine={"cpu_model": "x", "available_cpus": 1, "python": "3", "numpy": "2", "cpool": {}},
               bandwidth={"copy_Bps": {"1": 1.0}, "read_Bps": {"1": 1.0}})
    assert R.validate_results(doc)
    doc["entries"] = [good_entry]
    with pytest.raises(ValueError):
        R.validate_results(doc)


def test_report_formatting():
    assert R.fmt_ms(0.0031) == "3.10" and R.fmt_ms(2.5) == "2,500" and R.fmt_ms(None) == "n/a"
    assert R.fmt_ms(3.5e-6) == "0.0035"
    assert R._fmt_x(12.34) == "12.3x" and R._fmt_x(float("nan")) == "n/a"


def test_target_rows_compare_at_the_same_thread_count():
    def entry(shape, op, variant, ms, roof=None):
        e = {"shape": shape, "op": op, "variant": variant, "status": "ok", "median_s": ms / 1e3}
        if roof is not None:
            e["roofline"] = {"fraction": roof}
        return e
    results = {"settings": {"threads": [1, 2]}, "ops": {"fwd_idx": "", "bwd": ""},
               "shapes": [{"name": "mnist-conv"}, {"name": "large"}],
               "entries": [
                   # fwd_idx: 10x at t1 but 9x at t2 -> not met (each thread count must hold)
                   entry("mnist-conv", "fwd_idx", "cpool t1", 1.0), entry("mnist-conv", "fwd_idx", "torch t1", 10.0),
                   entry("mnist-conv", "fwd_idx", "cpool t2", 1.0), entry("mnist-conv", "fwd_idx", "torch t2", 9.0),
                   # bwd: 3x at both -> met; large's backward is not measured, so its row is left out
                   entry("mnist-conv", "bwd", "cpool t1", 1.0), entry("mnist-conv", "bwd", "torch t1", 3.0),
                   entry("mnist-conv", "bwd", "cpool t2", 0.5), entry("mnist-conv", "bwd", "torch t2", 1.6),
                   entry("large", "fwd_idx", "cpool t1", 1.0, roof=0.5), entry("large", "fwd_idx", "torch t1", 30.0),
                   entry("large", "fwd_idx", "cpool t2", 1.0, roof=0.49), entry("large", "fwd_idx", "torch t2", 30.0),
               ]}
    rows = {r[0]: r for r in R.target_rows(results)}
    assert rows["forward with int64 indices, k2 s2"][2] == "mnist-conv 10.0x / 9.00x; large 30.0x / 30.0x"
    assert rows["forward with int64 indices, k2 s2"][3] == "**not met**"
    assert rows["backward, 28x28"][3] == "met"
    assert "backward, other shapes" not in rows
    assert rows["DRAM-bound shapes"][2] == "large fwd_idx 50% / 49%" and rows["DRAM-bound shapes"][3] == "**not met**"
    assert "not met" in R.targets_text(results) and "**" not in R.targets_text(results)
    results["entries"] = [e for e in results["entries"] if not e["variant"].startswith("torch")]
    assert R.target_rows(results) == [] and R.targets_text(results) == ""
