"""Smoke test of examples/dask_pool_stack.py on a tiny stack (skipped without dask)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("dask.array")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dask_pool_stack  # noqa: E402

TINY = ["--size-gb", "0.004", "--memory-gb", "0.002", "--image", "128", "--chunk-images", "2",
        "--chunk-rows", "50", "--quiet"]


def test_runs_checks_and_deletes_what_it_made(tmp_path, capsys):
    work = tmp_path / "stack"
    rates = dask_pool_stack.main(TINY + ["--dir", str(work)])
    assert set(rates) >= {"in-memory cpool", "dask, in memory", "dask, .npy -> .npy"}
    assert all(r > 0 for r in rates.values())
    assert list(work.iterdir()) == []  # the stack and the result are gone
    out = capsys.readouterr().out
    assert "GB/s" in out and "(61, 1, 128, 128)" in out


def test_keep_and_reuse(tmp_path):
    import numpy as np

    work = tmp_path / "kept"
    dask_pool_stack.main(TINY + ["--dir", str(work), "--keep"])
    stack, pooled = np.load(work / "stack.npy", mmap_mode="r"), np.load(work / "pooled.npy")
    assert stack.shape == (61, 1, 128, 128) and pooled.shape == (61, 1, 64, 64)
    mtime = (work / "stack.npy").stat().st_mtime_ns
    dask_pool_stack.main(TINY + ["--dir", str(work), "--keep"])  # the existing stack is reused
    assert (work / "stack.npy").stat().st_mtime_ns == mtime


def test_default_directory_is_removed(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dask_pool_stack.main(TINY)
    assert list(tmp_path.iterdir()) == []
