#!/usr/bin/env bash
# Build the documentation (docs/: the API reference from the numpydoc
# docstrings, and docs/architecture.md) with Sphinx, warnings as errors and
# nitpicky cross-references, against the *installed* cpool. Installs Sphinx,
# numpydoc and myst-parser into the current environment first. PYTHON selects
# the interpreter (default: python); DOCS_OUT the output folder (default: a
# new temporary folder, printed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
PYTHON=${PYTHON:-python}
"$PYTHON" -m pip install -q "sphinx>=7.2,<10" "numpydoc>=1.6,<2" "myst-parser>=2,<6"
out=${DOCS_OUT:-$(mktemp -d)}
mkdir -p "$out"
# Run from the output folder: "python -m" puts the working directory first on
# sys.path, and from the checkout that would document the source tree's cpool
# rather than the installed one.
cd "$out"
"$PYTHON" -c "import cpool; print('documenting cpool', cpool.__version__, 'from', cpool.__file__)"
"$PYTHON" -m sphinx -b html -W --keep-going -n -q -d "$out/doctrees" "$repo/docs" "$out/html"
echo "docs built: $out/html/index.html"
