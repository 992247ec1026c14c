"""How many threads cpool's kernels use.

The default follows OpenMP's own view, ``omp_get_max_threads()``, which
honours ``OMP_NUM_THREADS`` and limits set through threadpoolctl (which calls
``omp_set_num_threads`` on the OpenMP runtime cpool links against), capped at
the CPUs this process may run on. ``set_num_threads`` overrides it.
"""

from __future__ import annotations

import numbers
import os
from types import ModuleType

from . import _backend

__all__ = ["set_num_threads", "get_num_threads", "threads_for", "adaptive_threads"]

_user_threads: int | None = None  # None: follow OpenMP / the environment

# Below this many input elements per thread, threads cost more than they save.
# Waking a team takes microseconds, but the real cost is contention: inside a
# NumPy network, BLAS worker threads keep spinning after each matrix product,
# and a 2-thread team on 2 cores then waits for a descheduled member. In the
# examples/ CNN on 2 cores (64x8x28x28 and 64x16x14x14 pooling) a threshold of
# 32768 made pooling cost 219 us per image against 14 us single-threaded,
# while threads gain little below ~0.5M elements (~0.1 ms of work).
MIN_ELEMENTS_PER_THREAD = 2**19


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _openmp() -> ModuleType | None:
    """The compiled backend if it runs OpenMP threads, else None."""
    compiled = _backend.compiled()
    return compiled if compiled is not None and compiled.OPENMP else None


def set_num_threads(n: int | None) -> None:
    """Set the number of threads cpool's compiled kernels may use.

    Parameters
    ----------
    n : int or None
        A positive number of threads, used as given (it overrides
        ``OMP_NUM_THREADS``, threadpoolctl limits and other libraries'
        OpenMP settings), or ``None`` to go back to the default: OpenMP's
        current default (``OMP_NUM_THREADS``, threadpoolctl limits), capped
        at the available CPUs.

    Raises
    ------
    TypeError
        If ``n`` is not an int or None.
    ValueError
        If ``n`` is less than 1.
    """
    global _user_threads
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"set_num_threads() takes a positive int or None, got n={n!r}")
        n = int(n)
        if n < 1:
            raise ValueError(f"set_num_threads() takes a positive int or None, got n={n}")
    _user_threads = n  # one assignment: atomic, readers see the old or the new value


def get_num_threads() -> int:
    """The number of threads cpool's kernels use for large enough inputs.

    Returns 1 when cpool was built without OpenMP or the compiled backend is
    not loaded (``CPOOL_BACKEND=numpy``).
    """
    compiled = _openmp()
    if compiled is None:
        return 1
    n = _user_threads
    if n is None:
        return max(1, min(compiled.omp_max_threads(), _cpu_count()))
    # An explicit setting wins, as scikit-learn's explicit n_threads does:
    # omp_get_max_threads() is the OpenMP runtime's current default, which
    # other libraries loaded with the same libgomp change behind our back
    # (torch.set_num_threads(1) set it to 1 and made cpool run 1 thread).
    return n


def threads_for(n_elements: int) -> int:
    """Threads worth using for a call that touches ``n_elements`` inputs."""
    if n_elements < 2 * MIN_ELEMENTS_PER_THREAD:
        return 1  # decided before asking OpenMP: this is the latency path
    n = get_num_threads()
    if n == 1:
        return 1
    return max(1, min(n, n_elements // MIN_ELEMENTS_PER_THREAD))


def adaptive_threads() -> bool:
    """Whether the kernels may run a call on fewer threads than asked when
    the machine is busy: with the default thread count, yes; after an
    explicit ``set_num_threads(n)``, ``n`` is used as given."""
    return _user_threads is None
