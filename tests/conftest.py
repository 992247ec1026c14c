"""Fixtures, options and markers of cpool's test suite.

Fixtures: ``backend`` (every backend-level test runs once per backend:
"compiled" and "numpy"), ``compiled`` (the compiled backend alone), ``rng``.

Options (``pytest --help`` lists them under "cpool"):

* ``--no-extension``: the run is meant to work without the compiled
  extension; tests that need it skip when it does not import. Without the
  option they fail, so a broken build cannot pass as a run of the NumPy
  backend alone.
* ``--run-big``: run the tests marked ``big`` (planes over 2**31 elements,
  ~16 GB of memory).
* ``--run-build``: run the tests marked ``build`` (fresh virtual
  environments and pip installs; minutes each).
* ``--leak-calls N``: calls per memory-growth scenario (stress/test_leaks.py).
* ``--property-counts FILE``: append the property tests' generated-case
  counts to FILE.

The hypothesis profile is chosen by ``HYPOTHESIS_PROFILE``, hypothesis's own
convention (see test_properties.py).
"""

import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # helpers.py, for the test modules in subfolders whatever the import mode
    sys.path.insert(0, HERE)

import helpers  # noqa: E402

import cpool  # noqa: E402

GATED_MARKERS = {
    # marker: (option that runs it, description)
    "big": ("--run-big", "planes of more than 2**31 elements (~16 GB of memory, minutes)"),
    "build": ("--run-build", "fresh virtual environments and pip installs of the checkout (minutes each)"),
}


def pytest_addoption(parser):
    group = parser.getgroup("cpool")
    group.addoption("--no-extension", action="store_true",
                    help="skip, instead of failing, the tests that need the compiled extension when it does "
                         "not import")
    for marker, (option, what) in GATED_MARKERS.items():
        group.addoption(option, action="store_true", help=f"run the tests marked '{marker}': {what}")
    group.addoption("--leak-calls", type=int, default=10000, metavar="N",
                    help="calls per scenario of the memory-growth tests on the compiled backend (a tenth "
                         "on the NumPy one; default 10000)")
    group.addoption("--property-counts", metavar="FILE", default=None,
                    help="append the property tests' generated-case counts to FILE")


def pytest_configure(config):
    for marker, (option, what) in GATED_MARKERS.items():
        config.addinivalue_line("markers", f"{marker}: {what}; run only with {option}")


def pytest_collection_modifyitems(config, items):
    for marker, (option, what) in GATED_MARKERS.items():
        if config.getoption(option):
            continue
        skip = pytest.mark.skip(reason=f"{what}: run with {option}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def compiled(request):
    """The compiled backend (a :class:`helpers.Backend`; ``.module`` is ``cpool._compiled``).

    Fails when the extension does not import, unless ``--no-extension``.
    """
    if helpers.COMPILED_API is None:
        if request.config.getoption("--no-extension"):
            pytest.skip(f"compiled extension not available (--no-extension): {helpers.EXTENSION_ERROR}")
        pytest.fail(f"cpool's compiled extension does not import: {helpers.EXTENSION_ERROR} "
                    "(pass --no-extension if that is intended)", pytrace=False)
    return helpers.COMPILED_API


@pytest.fixture(params=["compiled", "numpy"])
def backend(request):
    """One backend behind the public signatures: ``.max_pool2d``, ``.max_pool2d_backward``,
    ``.name`` (MaxPool2d's ``backend=`` for it) and ``.module``."""
    if request.param == "numpy":
        return helpers.NUMPY_API
    return request.getfixturevalue("compiled")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    """cpool's thread count for the test: 1, then 2 (restored after)."""
    before = cpool.get_num_threads()
    cpool.set_num_threads(request.param)
    yield request.param
    cpool.set_num_threads(before)


def pytest_report_header(config):
    info = cpool.config()
    return (
        f"cpool {info['version']} from {os.path.dirname(cpool.__file__)}: backend={info['backend']}, "
        f"openmp={info['openmp']}, isa={info['isa']} (available: {', '.join(info['available_isas'])}), "
        f"num_threads={info['num_threads']}"
    )
