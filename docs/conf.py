"""Sphinx configuration of cpool's documentation: the API reference, built
from the numpydoc docstrings of the installed cpool, and the architecture
notes (docs/architecture.md, through myst-parser).

Build it with ``make docs`` (``.ci/docs.sh``: warnings are errors).
"""

from __future__ import annotations

import cpool

project = "cpool"
author = "the cpool developers"
copyright = "the cpool developers"
version = release = cpool.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# API pages: the tables link to the entries on the same page; nothing is
# generated into the source tree.
autosummary_generate = False
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# Nitpicky builds (-n): names that have no page here. The docs are built
# offline, so there is no intersphinx inventory for numpy; the private
# modules (cpool._backend, ...) that docstrings mention are not documented.
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np)(\..*)?"),
    (r"py:.*", r"cpool\._.*"),
]

html_theme = "alabaster"
html_title = f"cpool {release}"
myst_heading_anchors = 3
