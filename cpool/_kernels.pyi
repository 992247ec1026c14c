"""Types of the compiled extension's Python-visible names (cpool/_src/kernels.pyx).

``cpool._kernels`` (baseline) and ``cpool._kernels_avx2`` are built from the
same source, so they share this interface; the AVX2 module is imported by
name at run time (:mod:`cpool._compiled`) and needs no stub of its own.
Keep this file in step with the ``def`` functions and module constants of
kernels.pyx: mypy checks :mod:`cpool._compiled` against it.
"""

from typing import Protocol

import numpy as np

from ._validation import Pool3dGeometry, PoolGeometry

class ForwardInto(Protocol):
    """One specialisation of ``max_pool2d_forward_into``: False when these
    kernels do not handle the call (nothing written)."""

    def __call__(self, x: np.ndarray, out: np.ndarray, indices: np.ndarray | None, geometry: PoolGeometry,
                 n_threads: int, adapt: bool = False, channels_last: bool = False) -> bool: ...

class BackwardInto(Protocol):
    """One specialisation of ``max_pool2d_backward_into``: returns the number
    of indices outside their plane (skipped)."""

    def __call__(self, grad_output: np.ndarray, indices: np.ndarray, grad_input: np.ndarray, n_threads: int,
                 adapt: bool = False, channels_last: bool = False) -> int: ...

# The entry points are Cython fused functions; cpool._compiled indexes them by
# their (floating, index_t) C type names, e.g. ``["float", "int64_t"]``, once.
class _FusedForward:
    def __getitem__(self, signature: tuple[str, str]) -> ForwardInto: ...

class _FusedBackward:
    def __getitem__(self, signature: tuple[str, str]) -> BackwardInto: ...

OPENMP: bool
COMPILED_ISA: str
GEOMETRY_FIELDS: tuple[str, ...]

def omp_max_threads() -> int: ...
def cpu_features() -> tuple[str, ...]: ...
def isas() -> tuple[str, ...]: ...
def set_isa(name: str) -> None: ...
def get_isa() -> str: ...
def busy_backoff(reset: bool = False) -> tuple[float, float]: ...

max_pool2d_forward_into: _FusedForward
max_pool2d_backward_into: _FusedBackward

def cells_plane(grad_output: np.ndarray, indices: np.ndarray, grad_input: np.ndarray) -> bool: ...

class AvgForwardInto(Protocol):
    """One specialisation of ``avg_pool2d_forward_into`` (fills ``out``)."""

    def __call__(self, x: np.ndarray, out: np.ndarray, geometry: PoolGeometry, count_include_pad: bool,
                 divisor_override: int | None, n_threads: int, adapt: bool = False,
                 channels_last: bool = False) -> None: ...

class AvgBackwardInto(Protocol):
    """One specialisation of ``avg_pool2d_backward_into`` (overwrites ``grad_input``)."""

    def __call__(self, grad_output: np.ndarray, grad_input: np.ndarray, geometry: PoolGeometry,
                 count_include_pad: bool, divisor_override: int | None, n_threads: int, adapt: bool = False,
                 channels_last: bool = False) -> None: ...

# Fused over one type: indexed by the C type name, ``["float"]`` or ``["double"]``.
class _FusedAvgForward:
    def __getitem__(self, signature: str) -> AvgForwardInto: ...

class _FusedAvgBackward:
    def __getitem__(self, signature: str) -> AvgBackwardInto: ...

avg_pool2d_forward_into: _FusedAvgForward
avg_pool2d_backward_into: _FusedAvgBackward

class UnpoolInto(Protocol):
    """One specialisation of ``max_unpool2d_forward_into`` / ``max_unpool2d_backward_into``:
    returns how many indices were outside the plane (skipped)."""

    def __call__(self, source: np.ndarray, indices: np.ndarray, target: np.ndarray, n_threads: int,
                 adapt: bool = False, channels_last: bool = False) -> int: ...

class _FusedUnpool:
    def __getitem__(self, signature: str) -> UnpoolInto: ...

max_unpool2d_forward_into: _FusedUnpool
max_unpool2d_backward_into: _FusedUnpool
class AdaptiveForwardInto(Protocol):
    """One specialisation of ``adaptive_pool2d_forward_into`` (fills ``out`` and ``indices``)."""

    def __call__(self, x: np.ndarray, out: np.ndarray, indices: np.ndarray | None, is_max: bool, split: int,
                 sse: int, vector_tap_first: bool, n_threads: int, adapt: bool = False,
                 channels_last: bool = False) -> None: ...

class AdaptiveBackwardInto(Protocol):
    """One specialisation of ``adaptive_avg_pool2d_backward_into`` (overwrites ``grad_input``)."""

    def __call__(self, grad_output: np.ndarray, grad_input: np.ndarray, split: int, n_threads: int,
                 adapt: bool = False, channels_last: bool = False) -> None: ...

class _FusedAdaptiveForward:
    def __getitem__(self, signature: str) -> AdaptiveForwardInto: ...

class _FusedAdaptiveBackward:
    def __getitem__(self, signature: str) -> AdaptiveBackwardInto: ...

adaptive_pool2d_forward_into: _FusedAdaptiveForward
adaptive_avg_pool2d_backward_into: _FusedAdaptiveBackward

# 3-D average pooling: the same signatures over 5-D arrays and a Pool3dGeometry.
class Avg3dForwardInto(Protocol):
    """One specialisation of ``avg_pool3d_forward_into`` (fills ``out``)."""

    def __call__(self, x: np.ndarray, out: np.ndarray, geometry: Pool3dGeometry, count_include_pad: bool,
                 divisor_override: int | None, n_threads: int, adapt: bool = False,
                 channels_last: bool = False) -> None: ...

class Avg3dBackwardInto(Protocol):
    """One specialisation of ``avg_pool3d_backward_into`` (overwrites ``grad_input``)."""

    def __call__(self, grad_output: np.ndarray, grad_input: np.ndarray, geometry: Pool3dGeometry,
                 count_include_pad: bool, divisor_override: int | None, n_threads: int, adapt: bool = False,
                 channels_last: bool = False) -> None: ...

class _FusedAvg3dForward:
    def __getitem__(self, signature: str) -> Avg3dForwardInto: ...

class _FusedAvg3dBackward:
    def __getitem__(self, signature: str) -> Avg3dBackwardInto: ...

avg_pool3d_forward_into: _FusedAvg3dForward
avg_pool3d_backward_into: _FusedAvg3dBackward

class MaxPool3dForwardInto(Protocol):
    """One specialisation of ``max_pool3d_forward_into``: False (nothing
    written) for a volume beyond the kernels' 32-bit positions."""

    def __call__(self, x: np.ndarray, out: np.ndarray, indices: np.ndarray | None, geometry: tuple[int, ...],
                 n_threads: int, adapt: bool = False, channels_last: bool = False,
                 nodepth_from: int = -1) -> bool: ...

class MaxPool3dBackwardInto(Protocol):
    """One specialisation of ``max_pool3d_backward_into``: returns how many
    indices were outside the volume (skipped)."""

    def __call__(self, grad_output: np.ndarray, indices: np.ndarray, grad_input: np.ndarray, n_threads: int,
                 adapt: bool = False, channels_last: bool = False) -> int: ...

class _FusedMaxPool3dForward:
    def __getitem__(self, signature: str) -> MaxPool3dForwardInto: ...

class _FusedMaxPool3dBackward:
    def __getitem__(self, signature: str) -> MaxPool3dBackwardInto: ...

max_pool3d_forward_into: _FusedMaxPool3dForward
max_pool3d_backward_into: _FusedMaxPool3dBackward

# 3-D adaptive pooling: (N, C, D, H, W) memory, or (N, D, H, W, C) with channels_last.
class Adaptive3dForwardInto(Protocol):
    """One specialisation of ``adaptive_pool3d_forward_into`` (fills ``out`` and ``indices``)."""

    def __call__(self, x: np.ndarray, out: np.ndarray, indices: np.ndarray | None, is_max: bool, n_threads: int,
                 adapt: bool = False, channels_last: bool = False) -> None: ...

class Adaptive3dBackwardInto(Protocol):
    """One specialisation of ``adaptive_avg_pool3d_backward_into`` (overwrites ``grad_input``)."""

    def __call__(self, grad_output: np.ndarray, grad_input: np.ndarray, n_threads: int, adapt: bool = False,
                 channels_last: bool = False) -> None: ...

class _FusedAdaptive3dForward:
    def __getitem__(self, signature: str) -> Adaptive3dForwardInto: ...

class _FusedAdaptive3dBackward:
    def __getitem__(self, signature: str) -> Adaptive3dBackwardInto: ...

adaptive_pool3d_forward_into: _FusedAdaptive3dForward
adaptive_avg_pool3d_backward_into: _FusedAdaptive3dBackward

def first_outside(indices: np.ndarray, low: int, high: int, n_threads: int, adapt: bool = False) -> int: ...
