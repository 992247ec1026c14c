"""Decide once, at import, which backend cpool's public functions use.

``CPOOL_BACKEND`` (environment): unset or ``auto`` uses the compiled
extension when it imports and the NumPy fallback otherwise; ``numpy`` forces
the fallback; ``cython`` requires the extension and fails the import
without it.
"""

from __future__ import annotations

import os

_choice = os.environ.get("CPOOL_BACKEND", "auto").strip().lower() or "auto"
if _choice not in ("auto", "cython", "numpy"):
    raise ImportError(
        f"CPOOL_BACKEND must be 'auto', 'cython' or 'numpy', got CPOOL_BACKEND={os.environ['CPOOL_BACKEND']!r}"
    )

IMPORT_ERROR = None  # why the extension did not load, for show_config()
if _choice == "numpy":
    BACKEND = "numpy"
else:
    try:
        from . import _kernels  # noqa: F401
    except ImportError as exc:
        if _choice == "cython":
            raise ImportError(
                "CPOOL_BACKEND=cython but cpool's compiled extension cannot be imported "
                f"({exc}); reinstall cpool with a C compiler available"
            ) from exc
        IMPORT_ERROR = exc
        BACKEND = "numpy"
    else:
        BACKEND = "cython"
