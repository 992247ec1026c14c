"""cpool: fast 2-D max pooling for NumPy arrays with PyTorch's exact semantics.

>>> import numpy as np, cpool
>>> x = np.random.rand(64, 32, 28, 28).astype(np.float32)
>>> out, idx = cpool.max_pool2d(x, 2, return_indices=True)
>>> grad_in = cpool.max_pool2d_backward(np.ones_like(out), idx, x.shape)

Public API: :func:`max_pool2d`, :func:`max_pool2d_backward`,
:class:`MaxPool2d`, :func:`avg_pool2d`, :func:`avg_pool2d_backward`,
:class:`AvgPool2d`, :func:`adaptive_avg_pool2d`,
:func:`adaptive_avg_pool2d_backward`, :func:`adaptive_max_pool2d`,
:func:`adaptive_max_pool2d_backward`, :class:`AdaptiveAvgPool2d`,
:class:`AdaptiveMaxPool2d`, :func:`max_pool3d`,
:func:`max_pool3d_backward`, :class:`MaxPool3d`, :data:`backend`, :func:`set_num_threads`,
:func:`get_num_threads`, :func:`show_config`, :func:`config`, and the NumPy
reference implementation :mod:`cpool.slow`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import Any

from . import slow
from ._backend import BACKEND as backend
from ._indices import INDEX_FORMATS, indices_from, indices_to
from ._threads import get_num_threads, set_num_threads
from .functional import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool3d,
    avg_pool3d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_pool3d,
    max_pool3d_backward,
    max_unpool2d,
    max_unpool2d_backward,
)
from .module import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool2d,
    AvgPool3d,
    BackwardBeforeForwardError,
    MaxPool2d,
    MaxPool3d,
    MaxUnpool2d,
)

__all__ = [
    "__version__",
    "backend",
    "max_pool2d",
    "max_pool2d_backward",
    "MaxPool2d",
    "avg_pool2d",
    "avg_pool2d_backward",
    "AvgPool2d",
    "max_unpool2d",
    "max_unpool2d_backward",
    "MaxUnpool2d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "max_pool3d",
    "max_pool3d_backward",
    "MaxPool3d",
    "BackwardBeforeForwardError",
    "indices_to",
    "indices_from",
    "INDEX_FORMATS",
    "set_num_threads",
    "get_num_threads",
    "show_config",
    "config",
    "slow",
]
__all__ += ["avg_pool3d", "avg_pool3d_backward", "AvgPool3d"]

# 1-D pooling: (N, C, L) arrays, PyTorch's 1-D ops.
from .functional import (  # noqa: E402
    adaptive_avg_pool1d,
    adaptive_avg_pool1d_backward,
    adaptive_max_pool1d,
    adaptive_max_pool1d_backward,
    avg_pool1d,
    avg_pool1d_backward,
    max_pool1d,
    max_pool1d_backward,
    max_unpool1d,
    max_unpool1d_backward,
)
from .module import AdaptiveAvgPool1d, AdaptiveMaxPool1d, AvgPool1d, MaxPool1d, MaxUnpool1d  # noqa: E402

__all__ += [
    "max_pool1d",
    "max_pool1d_backward",
    "MaxPool1d",
    "avg_pool1d",
    "avg_pool1d_backward",
    "AvgPool1d",
    "max_unpool1d",
    "max_unpool1d_backward",
    "MaxUnpool1d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool1d_backward",
    "adaptive_max_pool1d",
    "adaptive_max_pool1d_backward",
    "AdaptiveAvgPool1d",
    "AdaptiveMaxPool1d",
]

# 3-D adaptive pooling and max unpooling.
from .functional import (  # noqa: E402
    adaptive_avg_pool3d,
    adaptive_avg_pool3d_backward,
    adaptive_max_pool3d,
    adaptive_max_pool3d_backward,
    max_unpool3d,
    max_unpool3d_backward,
)
from .module import AdaptiveAvgPool3d, AdaptiveMaxPool3d, MaxUnpool3d  # noqa: E402

__all__ += [
    "adaptive_avg_pool3d",
    "adaptive_avg_pool3d_backward",
    "adaptive_max_pool3d",
    "adaptive_max_pool3d_backward",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool3d",
    "max_unpool3d",
    "max_unpool3d_backward",
    "MaxUnpool3d",
]


def config() -> dict[str, Any]:
    """Build and runtime facts as a dict (what :func:`show_config` prints).

    Keys: ``version``, ``backend`` ("cython" or "numpy"), ``openmp``,
    ``isa`` (the kernels' instruction set: "baseline", "avx2" or "avx512";
    None on the NumPy backend), ``available_isas`` (what ``CPOOL_ISA`` may
    choose on this machine), ``num_threads``, ``numpy``, ``extension_error``
    (why the compiled extension did not load, or None).
    """
    import numpy as np

    from . import _backend

    compiled = _backend.compiled()
    facts = compiled.facts() if compiled is not None else {"openmp": False, "isa": None, "available_isas": ()}
    return {
        "version": __version__,
        "backend": backend,
        **facts,
        "num_threads": get_num_threads(),
        "numpy": np.__version__,
        "extension_error": None if _backend.IMPORT_ERROR is None else str(_backend.IMPORT_ERROR),
    }


def show_config() -> None:
    """Print cpool's version, backend, OpenMP state, kernel ISA, thread count and numpy version."""
    info = config()
    print(f"cpool {info['version']}")
    print(f"  backend:     {info['backend']}")
    print(f"  openmp:      {'on' if info['openmp'] else 'off'}")
    if info["isa"]:
        print(f"  isa:         {info['isa']} (available: {', '.join(info['available_isas'])})")
    print(f"  num_threads: {info['num_threads']}")
    print(f"  numpy:       {info['numpy']}")
    if info["extension_error"]:
        print(f"  compiled extension unavailable: {info['extension_error']}")
