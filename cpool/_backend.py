"""The one place that decides which backend cpool runs.

A backend is a module with two functions on arrays already validated and in
the memory layout :func:`cpool._validation.resolve_layout` chose (see
:mod:`cpool.slow` for their contract)::

    forward_planes(x, g, with_indices, index_dtype, channels_last=False, out=None, indices_out=None)
        -> (out, indices or None)
    backward_planes(grad_output, indices, input_shape, channels_last=False, out=None) -> grad_input

There are two: :mod:`cpool._compiled` (the extension) and :mod:`cpool.slow`
(NumPy). ``CPOOL_BACKEND`` (environment, read once at import): unset or
``auto`` uses the compiled one when it imports and NumPy otherwise;
``numpy`` forces NumPy (the extension is then not even imported);
``cython`` requires the extension and fails the import without it.
Everything else (the public functions, :class:`cpool.MaxPool2d`, the thread
settings, :func:`cpool.config`) asks this module.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["BACKEND", "IMPL", "IMPORT_ERROR", "load", "compiled"]

_NAMES = {"cython": "cpool._compiled", "numpy": "cpool.slow"}

_choice = os.environ.get("CPOOL_BACKEND", "auto").strip().lower() or "auto"
if _choice not in ("auto", "cython", "numpy"):
    raise ImportError(
        f"CPOOL_BACKEND must be 'auto', 'cython' or 'numpy', got CPOOL_BACKEND={os.environ['CPOOL_BACKEND']!r}"
    )

#: Why the compiled backend did not load (shown by show_config()), or None.
IMPORT_ERROR: ImportError | None = None


def _import_compiled() -> ModuleType | None:
    global IMPORT_ERROR
    try:
        return importlib.import_module(_NAMES["cython"])
    except ImportError as exc:
        IMPORT_ERROR = exc
        return None


_compiled: ModuleType | None
if _choice == "numpy":
    _compiled = None
else:
    _compiled = _import_compiled()
    if _compiled is None and _choice == "cython":
        raise ImportError(
            "CPOOL_BACKEND=cython but cpool's compiled extension cannot be imported "
            f"({IMPORT_ERROR}); reinstall cpool with a C compiler available"
        ) from IMPORT_ERROR

#: The backend the public functions use: "cython" or "numpy".
BACKEND: str = "numpy" if _compiled is None else "cython"
#: Its module.
IMPL: ModuleType = importlib.import_module(_NAMES[BACKEND])


def load(name: str | None = None) -> ModuleType:
    """The backend module called ``name`` ("cython" or "numpy"; None: :data:`IMPL`).

    Raises ``ValueError`` for another name, or for "cython" when the
    extension cannot be imported.
    """
    global _compiled
    if name is None:
        return IMPL
    if name == "numpy":
        return importlib.import_module(_NAMES["numpy"])
    if name == "cython":
        if _compiled is None:
            _compiled = _import_compiled()
        if _compiled is None:
            raise ValueError(
                f"backend='cython' is not available: cpool's compiled extension cannot be imported ({IMPORT_ERROR})"
            ) from None
        return _compiled
    raise ValueError(f"backend must be None, 'cython' or 'numpy', got backend={name!r}")


def compiled() -> ModuleType | None:
    """The compiled backend if it has been loaded (by default or by a
    :class:`cpool.MaxPool2d` that asked for it), else None."""
    return _compiled
