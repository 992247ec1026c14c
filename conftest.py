"""Make every test run (tests/, bench/, examples/) use the cpool that is installed.

``python -m pytest`` puts the working directory first on ``sys.path``; from
the repository root that is the source tree, whose ``cpool/`` has no
compiled extension after ``pip install .`` (the build went into
site-packages). Then the source tree is taken off the path, so the suite
tests the installed package, as plain ``pytest`` does. With an in-place
build (``make build``), or with no other cpool installed, nothing changes.
"""

from __future__ import annotations

import importlib.util
import os
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))


def _has_extension(package_dir: str) -> bool:
    return any(name.startswith("_kernels") and name.endswith((".so", ".pyd")) for name in os.listdir(package_dir))


def _prefer_installed_cpool() -> None:
    if "cpool" in sys.modules or _has_extension(os.path.join(_ROOT, "cpool")):
        return
    here = [p for p in sys.path if os.path.abspath(p or os.curdir) == _ROOT]
    if not here:
        return
    rest = [p for p in sys.path if p not in here]
    saved = sys.path[:]
    sys.path[:] = rest
    spec = importlib.util.find_spec("cpool")
    if spec is None or spec.origin is None:  # no other cpool: keep testing the source tree
        sys.path[:] = saved


_prefer_installed_cpool()
