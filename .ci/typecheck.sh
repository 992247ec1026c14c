#!/usr/bin/env bash
# Type-check cpool with mypy (configuration: [tool.mypy] in pyproject.toml).
# Installs mypy into the current environment first. PYTHON selects the
# interpreter (default: python). Checks the source tree's cpool/ (its .py
# files and the extension's stub, cpool/_kernels.pyi); nothing is built.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
# Pinned: a new mypy release can report new errors; bump it deliberately.
"$PYTHON" -m pip install -q "mypy==2.4.1"
"$PYTHON" -m mypy
