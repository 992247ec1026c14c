"""Shared fixtures: every backend-level test runs once per implementation."""

import importlib
import os

import numpy as np
import pytest

import cpool


def _expect_extension() -> bool:
    # Without the compiled extension the "cython" runs would silently test
    # nothing; fail loudly unless the run deliberately disables it.
    return os.environ.get("CPOOL_EXPECT_EXTENSION", "1") != "0"


@pytest.fixture(params=["cython", "numpy"])
def impl(request):
    """The module implementing one backend: ``cpool._fast`` or ``cpool.slow``."""
    if request.param == "numpy":
        return cpool.slow
    try:
        return importlib.import_module("cpool._fast")
    except ImportError as exc:
        if _expect_extension():
            pytest.fail(f"cpool's compiled extension does not import: {exc}")
        pytest.skip("compiled extension not built (CPOOL_EXPECT_EXTENSION=0)")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_report_header(config):
    info = cpool.config()
    return (
        f"cpool {info['version']} from {os.path.dirname(cpool.__file__)}: backend={info['backend']}, "
        f"openmp={info['openmp']}, num_threads={info['num_threads']}"
    )
