"""``python -m cpool``: the configuration report and the self-check."""

import subprocess
import sys

import numpy as np
import pytest
from helpers import COMPILED, child_process_kwargs

import cpool
import cpool.__main__ as cli


def run_cli(*args, **env):
    """``python -m cpool ARGS`` as a user runs it (CPOOL_BACKEND and CPOOL_ISA unset unless given)."""
    kwargs = child_process_kwargs()
    kwargs["env"].pop("CPOOL_BACKEND", None)
    kwargs["env"].pop("CPOOL_ISA", None)
    kwargs["env"].update(env)
    return subprocess.run([sys.executable, "-m", "cpool", *args], capture_output=True, text=True, timeout=300,
                          **kwargs)


def test_self_check_passes():
    res = run_cli()
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert out.startswith(f"cpool {cpool.__version__}\n")
    assert "numpy:" in out and "FAIL" not in out
    assert "cpool.slow against a plain Python loop" in out
    if COMPILED is None:  # a run without the extension (--no-extension)
        assert "The compiled backend is NOT in use: the extension could not be imported" in out
        assert "NumPy fallback:" in out and out.rstrip().endswith("passed.")
    else:
        assert "Self-check: the compiled backend" in out
        assert out.count("PASS") >= 7
        assert "x faster" in out and "compiled:" in out and "NumPy fallback:" in out
        assert out.rstrip().endswith("checks passed.")


def test_without_the_compiled_backend():
    res = run_cli("--no-timing", CPOOL_BACKEND="numpy")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "backend:     numpy" in res.stdout
    assert "The compiled backend is NOT in use: CPOOL_BACKEND=numpy is set." in res.stdout
    assert "PASS" in res.stdout and "FAIL" not in res.stdout and "Speed" not in res.stdout

    res = run_cli("--no-timing", "--require-compiled", CPOOL_BACKEND="numpy")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "FAILED: --require-compiled" in res.stdout


def test_require_compiled_with_the_compiled_backend():
    if COMPILED is None:
        pytest.skip("the compiled extension is not available")
    res = run_cli("--no-timing", "--require-compiled")
    assert res.returncode == 0, res.stdout + res.stderr


def test_help():
    res = run_cli("--help")
    assert res.returncode == 0 and "--require-compiled" in res.stdout


def test_a_mismatch_fails(monkeypatch, capsys):
    """A wrong index anywhere makes its group FAIL and the exit status 1 (on either backend)."""
    real = cpool.slow.max_pool2d

    def off_by_one(*args, **kwargs):
        result = real(*args, **kwargs)
        if isinstance(result, tuple) and result[1].size:
            result[1].flat[0] += 1
        return result

    monkeypatch.setattr(cpool.slow, "max_pool2d", off_by_one)
    assert cli.main(["--no-timing"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "indices differ" in out and "FAILED:" in out


def test_python_loop_reference_matches_known_values():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    out, idx = cli.loop_max_pool2d(x, 2)
    assert out.tolist() == [[[[5.0, 7.0], [13.0, 15.0]]]]
    assert idx.tolist() == [[[[5, 7], [13, 15]]]]
    grad = cli.loop_max_pool2d_backward(np.ones_like(out), idx, x.shape)
    assert grad.sum() == 4 and grad[0, 0, 1, 1] == 1
