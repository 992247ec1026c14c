"""``MaxPool2d`` as a layer of a Torch7-style NumPy framework.

Course frameworks (``Module`` with ``updateOutput`` / ``updateGradInput``,
``Sequential``, criteria, ``sgd_momentum``) call layers through a small duck
-typed protocol; this class implements it, so it drops in where a
hand-written loop-based ``MaxPool2d`` was.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from . import _backend
from ._validation import (
    DATA_FORMATS_3D,
    check_data_format,
    index_dtype_for,
    parse_avg_args,
    parse_avg_options,
    parse_output_size,
    parse_pool3d_args,
    parse_pool_args,
    parse_unpool_args,
    prepare_adaptive_avg_backward,
    prepare_adaptive_forward,
    prepare_adaptive_max_backward,
    prepare_avg3d_backward,
    prepare_avg3d_forward,
    prepare_avg_backward,
    prepare_avg_forward,
    prepare_backward,
    prepare_forward,
    prepare_max3d_backward,
    prepare_max3d_forward,
    prepare_unpool,
    prepare_unpool_backward,
    to_format,
)

__all__ = ["MaxPool2d", "BackwardBeforeForwardError"]


class BackwardBeforeForwardError(RuntimeError, ValueError):
    """``updateGradInput``/``backward`` was called before any ``forward``."""


_INT32 = np.dtype(np.int32)


def _references(held):
    """Reference counts of ``held`` and of the array owning its memory, and that array."""
    base = held if held.base is None else held.base
    return sys.getrefcount(held), sys.getrefcount(base), base


def _counts_of(held):
    # Calls _references exactly as _reusable does (from a local variable).
    return _references(held)[:2]


def _unshared_references():
    # The counts _reusable sees for an array that only an attribute refers
    # to, measured rather than assumed (they differ between Python
    # versions): an owner of its memory, and a transposed view of one.
    class Holder:
        pass

    holder = Holder()
    holder.owner = np.empty((1, 2))
    holder.view = np.empty((1, 2)).T
    return _counts_of(holder.owner), _counts_of(holder.view)


_UNSHARED = _unshared_references() if hasattr(sys, "getrefcount") else None


def _reusable(held, shape, dtype):
    """The memory of ``held`` if the layer may write its next result into it:
    the same memory shape and dtype, and nothing but the layer refers to it
    or to its memory (a caller still holding the last output gets a new one,
    never an overwritten one). None otherwise."""
    if held is None or _UNSHARED is None:
        return None
    held_refs, base_refs, base = _references(held)
    if (not isinstance(base, np.ndarray) or base.dtype != dtype or base.size != held.size
            or not base.flags.c_contiguous or base.size != math.prod(shape)):
        return None
    unshared = _UNSHARED[0 if base is held else 1]
    if held_refs > unshared[0] or base_refs > unshared[1]:
        return None
    # (A 3-D result is a view of a 4-D array: the same memory, reshaped.)
    return base if base.shape == shape else base.reshape(shape)


class _PoolingLayer:
    """The Torch7-style layer protocol every pooling layer shares: a layer
    defines ``updateOutput`` and ``updateGradInput`` (which set
    ``self.output`` / ``self.gradInput``); pooling has no parameters."""

    def accGradParameters(self, input, gradOutput):
        """No-op: pooling has no parameters."""

    def zeroGradParameters(self):
        """No-op: pooling has no parameters."""

    def getParameters(self):
        """Pooling has no parameters: returns ``[]``."""
        return []

    def getGradParameters(self):
        """Pooling has no parameters: returns ``[]``."""
        return []

    def forward(self, input):
        """Same as :meth:`updateOutput`."""
        return self.updateOutput(input)

    def backward(self, input, gradOutput):
        """:meth:`updateGradInput` then :meth:`accGradParameters`; returns ``self.gradInput``.

        The arguments are in Torch7's order: the forward's ``input`` first,
        then ``gradOutput`` (the gradient with respect to this layer's
        output), unlike PyTorch's ``tensor.backward(grad)``.
        """
        self.updateGradInput(input, gradOutput)
        self.accGradParameters(input, gradOutput)
        return self.gradInput

    def __call__(self, input):
        """Same as :meth:`forward`."""
        return self.forward(input)

    def train(self):
        """Switch to training mode (no effect on pooling itself)."""
        self.training = True

    def evaluate(self):
        """Switch to evaluation mode (no effect on pooling itself)."""
        self.training = False


class MaxPool2d(_PoolingLayer):
    """2-D max pooling layer for NumPy networks, PyTorch-exact.

    The arguments are ``torch.nn.MaxPool2d``'s, in its order.

    Parameters
    ----------
    kernel_size, stride, padding, dilation, ceil_mode
        As in :func:`cpool.max_pool2d` and ``torch.nn.MaxPool2d``.
    return_indices : bool, default False
        As in ``torch.nn.MaxPool2d``: :meth:`forward` (and
        :meth:`updateOutput`, ``__call__``) return ``(output, indices)``
        instead of ``output``. The indices are kept for :meth:`backward`
        either way.
    data_format : {"NCHW", "NHWC"}, keyword-only, default "NCHW"
        Where the channel axis is in the layer's arrays, as for
        :func:`cpool.max_pool2d`; memory laid out the other way (a
        channels-last NCHW array) is pooled without a copy and the results
        keep its layout.
    backend : {None, 'cython', 'numpy'}, keyword-only
        Which implementation to use; None uses the active one
        (:data:`cpool.backend`).

    Attributes
    ----------
    output : ndarray or None
        The last forward result. As in Torch7, the layer writes the next
        result of the same shape into the same memory (no new pages, no
        allocation), but only when nothing else refers to it: a caller who
        kept the last output keeps its values.
    gradInput : ndarray or None
        The last backward result, reused the same way.
    indices : ndarray of int64 or None
        PyTorch-format indices (``h * W + w`` within each plane) of the last
        forward. The layer itself keeps them as int32 (half the memory
        traffic in forward and backward) and makes this int64 array on first
        access; from then on its backward uses that array, so changes made
        to it take effect as before.
    index : ndarray of int32
        The same positions as (row, col) pairs, shape (N, C, OH, OW, 2): the
        format of the classic loop implementation's ``self.index``. -1 marks
        a window with no input element.
    training : bool
        Set by :meth:`train` / :meth:`evaluate`; pooling behaves the same in
        both modes.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> pool = cpool.MaxPool2d(2)
    >>> pool
    MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    >>> x = np.random.rand(8, 3, 28, 28).astype(np.float32)
    >>> pool.forward(x).shape
    (8, 3, 14, 14)
    >>> pool.backward(x, np.ones((8, 3, 14, 14), np.float32)).shape
    (8, 3, 28, 28)
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False, *,
                 data_format="NCHW", backend=None):
        # Checked now so a bad layer fails where it is built, not mid-epoch.
        parse_pool_args(kernel_size, stride, padding, dilation, ceil_mode)
        self.data_format = "NHWC" if check_data_format(data_format) else "NCHW"
        if type(return_indices) is not bool:
            raise TypeError(f"return_indices must be a bool, got return_indices={return_indices!r} "
                            f"(type {type(return_indices).__name__})")
        self._impl = _backend.load(backend)
        self.return_indices = return_indices
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.ceil_mode = ceil_mode
        self.output = None
        self.gradInput = None
        self._compact = None  # the last forward's indices, int32 (int64 for planes >= 2**31 elements), as output
        self._indices = None  # their int64 form, once asked for
        self.training = True
        self._input_shape = None
        self._plane = None  # (H, W) of the last forward input

    # -- the framework protocol -------------------------------------------
    def updateOutput(self, input):
        """Pool ``input``; sets ``self.output`` (and ``self.indices``) and returns
        ``self.output``, or ``(self.output, self.indices)`` with ``return_indices``."""
        x, g, _, cl, swapped = prepare_forward(input, self.kernel_size, self.stride, self.padding, self.dilation,
                                               self.ceil_mode, True, self.data_format)
        shape = x.shape[:-3] + ((g.OH, g.OW, x.shape[-1]) if cl else (x.shape[-3], g.OH, g.OW))
        index_dtype = index_dtype_for(g, _INT32)
        out = _reusable(self.output, shape, x.dtype)
        idx = _reusable(self._compact, shape, index_dtype)
        self.output = self._compact = None  # dropped first: a failure leaves no stale result
        values, idx = self._impl.forward_planes(x, g, True, index_dtype, cl, out, idx)
        self.output, self._compact = to_format(values, swapped, cl), to_format(idx, swapped, cl)
        self._indices = None
        self._input_shape = np.shape(input)
        self._plane = (g.H, g.W)
        if self.return_indices:
            return self.output, self.indices
        return self.output

    def updateGradInput(self, input, gradOutput):
        """Gradient with respect to the last forward's input; sets and returns ``self.gradInput``."""
        indices = self._compact if self._indices is None else self._indices
        if indices is None:
            raise BackwardBeforeForwardError(
                "MaxPool2d.updateGradInput() was called before forward(): there are no indices to route "
                "gradOutput through"
            )
        shape = np.shape(input)
        if tuple(shape) != tuple(self._input_shape):
            raise ValueError(
                f"input.shape={tuple(shape)!r} differs from the shape of the last forward input "
                f"{tuple(self._input_shape)!r}; call forward() on this input first"
            )
        go, idx, shape, cl, swapped = prepare_backward(gradOutput, indices, self._input_shape,
                                                       data_format=self.data_format, int32_indices=True)
        out = _reusable(self.gradInput, shape, go.dtype)
        if out is not None and self._indices is not None:
            # User-set or user-visible indices are untrusted and the kernels find a bad one
            # only as they reach it: the buffer reuse must not leave a
            # half-written gradient behind on an error.
            out = None
        if out is not None:
            # its buffer is being rewritten: never left visible half-written
            # (without reuse an error leaves the previous gradInput as it was)
            self.gradInput = None
        self.gradInput = to_format(self._impl.backward_planes(go, idx, shape, cl, out), swapped, cl)
        return self.gradInput

    # -- extras ----------------------------------------------------------
    @property
    def indices(self):
        if self._indices is None and self._compact is not None:
            self._indices = self._compact.astype(np.int64)
        return self._indices

    @indices.setter
    def indices(self, value):
        # Replacing them (as with torch7's ``self.indices``) routes backward through the new ones.
        self._indices = value
        self._compact = None

    @property
    def index(self):
        if self.indices is None:
            return None
        W = self._plane[1]
        rows, cols = np.divmod(self.indices, W)
        pairs = np.stack((rows, cols), axis=-1).astype(np.int32)
        pairs[self.indices < 0] = -1
        return pairs

    def __repr__(self):
        extra = "" if self.data_format == "NCHW" else f", data_format={self.data_format!r}"
        return (
            f"MaxPool2d(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}{extra})"
        )


class AvgPool2d(_PoolingLayer):
    """2-D average pooling layer for NumPy networks, PyTorch-exact.

    The arguments are ``torch.nn.AvgPool2d``'s, in its order, as in
    :func:`cpool.avg_pool2d`; ``data_format`` and ``backend`` are as for
    :class:`MaxPool2d`. The layer has no state between calls beyond its
    last ``output`` and ``gradInput``: the backward needs only the forward
    input's shape.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> pool = cpool.AvgPool2d(2)
    >>> pool
    AvgPool2d(kernel_size=2, stride=2, padding=0)
    >>> x = np.random.rand(8, 3, 28, 28).astype(np.float32)
    >>> pool.forward(x).shape
    (8, 3, 14, 14)
    >>> pool.backward(x, np.ones((8, 3, 14, 14), np.float32)).shape
    (8, 3, 28, 28)
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None, *, data_format="NCHW", backend=None):
        # Checked now so a bad layer fails where it is built, not mid-epoch.
        parse_avg_args(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        self.data_format = "NHWC" if check_data_format(data_format) else "NCHW"
        self._impl = _backend.load(backend)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override
        self.output = None
        self.gradInput = None
        self.training = True

    def _args(self):
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                self.divisor_override)

    def updateOutput(self, input):
        """Pool ``input``; sets and returns ``self.output``."""
        x, g, avg, cl, swapped = prepare_avg_forward(input, *self._args(), self.data_format)
        self.output = None  # dropped first: a failure leaves no stale result
        self.output = to_format(self._impl.avg_forward_planes(x, g, avg.count_include_pad, avg.divisor, cl),
                                swapped, cl)
        return self.output

    def updateGradInput(self, input, gradOutput):
        """Gradient with respect to ``input`` (only its shape is read); sets and returns ``self.gradInput``."""
        go, shape, g, avg, cl, swapped = prepare_avg_backward(gradOutput, np.shape(input), *self._args(),
                                                              self.data_format)
        self.gradInput = None
        self.gradInput = to_format(self._impl.avg_backward_planes(go, shape, g, avg.count_include_pad,
                                                                  avg.divisor, cl), swapped, cl)
        return self.gradInput

    def __repr__(self):
        extra = "" if self.data_format == "NCHW" else f", data_format={self.data_format!r}"
        return f"AvgPool2d(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}{extra})"


__all__ += ["AvgPool2d"]


def _output_size_repr(output_size):
    return repr(tuple(output_size)) if isinstance(output_size, (tuple, list)) else repr(output_size)


class AdaptiveAvgPool2d(_PoolingLayer):
    """2-D adaptive average pooling layer for NumPy networks, PyTorch-exact.

    ``output_size`` is ``torch.nn.AdaptiveAvgPool2d``'s, as in
    :func:`cpool.adaptive_avg_pool2d`; ``data_format`` and ``backend`` are
    as for :class:`MaxPool2d`. The backward needs only the forward input's
    shape. Like :class:`MaxPool2d`, the layer writes its next output and
    gradient into the memory of the last ones when nothing else refers to
    them.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> pool = cpool.AdaptiveAvgPool2d((1, 1))
    >>> pool
    AdaptiveAvgPool2d(output_size=(1, 1))
    >>> x = np.random.rand(8, 3, 7, 7).astype(np.float32)
    >>> pool.forward(x).shape
    (8, 3, 1, 1)
    >>> pool.backward(x, np.ones((8, 3, 1, 1), np.float32)).shape
    (8, 3, 7, 7)
    """

    def __init__(self, output_size, *, data_format="NCHW", backend=None):
        parse_output_size(output_size)  # checked now: a bad layer fails where it is built
        self.data_format = "NHWC" if check_data_format(data_format) else "NCHW"
        self._impl = _backend.load(backend)
        self.output_size = output_size
        self.output = None
        self.gradInput = None
        self.training = True

    def updateOutput(self, input):
        """Pool ``input``; sets and returns ``self.output``."""
        x, g, cl, swapped = prepare_adaptive_forward(input, self.output_size, self.data_format,
                                                     "adaptive_avg_pool2d")
        shape = x.shape[:-3] + ((g.OH, g.OW, x.shape[-1]) if cl else (x.shape[-3], g.OH, g.OW))
        out = _reusable(self.output, shape, x.dtype)
        self.output = None  # dropped first: a failure leaves no stale result
        self.output = to_format(self._impl.adaptive_avg_forward_planes(x, g, cl, out), swapped, cl)
        return self.output

    def updateGradInput(self, input, gradOutput):
        """Gradient with respect to ``input`` (only its shape is read); sets and returns ``self.gradInput``."""
        go, shape, g, cl, swapped = prepare_adaptive_avg_backward(gradOutput, np.shape(input), self.data_format)
        out = _reusable(self.gradInput, shape, go.dtype)
        self.gradInput = None
        self.gradInput = to_format(self._impl.adaptive_avg_backward_planes(go, shape, cl, out), swapped, cl)
        return self.gradInput

    def __repr__(self):
        extra = "" if self.data_format == "NCHW" else f", data_format={self.data_format!r}"
        return f"AdaptiveAvgPool2d(output_size={_output_size_repr(self.output_size)}{extra})"


class AdaptiveMaxPool2d(_PoolingLayer):
    """2-D adaptive max pooling layer for NumPy networks, PyTorch-exact.

    The arguments are ``torch.nn.AdaptiveMaxPool2d``'s, as in
    :func:`cpool.adaptive_max_pool2d`; ``data_format`` and ``backend`` are
    as for :class:`MaxPool2d`. With ``return_indices`` :meth:`forward`
    returns ``(output, indices)``; the indices (int64, ``h * W + w`` per
    plane) are kept in ``self.indices`` for :meth:`backward` either way.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> pool = cpool.AdaptiveMaxPool2d((2, None))
    >>> pool
    AdaptiveMaxPool2d(output_size=(2, None))
    >>> x = np.random.rand(8, 3, 5, 6).astype(np.float32)
    >>> pool.forward(x).shape
    (8, 3, 2, 6)
    >>> pool.backward(x, np.ones((8, 3, 2, 6), np.float32)).shape
    (8, 3, 5, 6)
    """

    def __init__(self, output_size, return_indices=False, *, data_format="NCHW", backend=None):
        parse_output_size(output_size)
        self.data_format = "NHWC" if check_data_format(data_format) else "NCHW"
        if type(return_indices) is not bool:
            raise TypeError(f"return_indices must be a bool, got return_indices={return_indices!r} "
                            f"(type {type(return_indices).__name__})")
        self._impl = _backend.load(backend)
        self.output_size = output_size
        self.return_indices = return_indices
        self.output = None
        self.gradInput = None
        self.indices = None
        self.training = True
        self._input_shape = None

    def updateOutput(self, input):
        """Pool ``input``; sets ``self.output`` and ``self.indices`` and returns
        ``self.output``, or ``(self.output, self.indices)`` with ``return_indices``."""
        x, g, cl, swapped = prepare_adaptive_forward(input, self.output_size, self.data_format,
                                                     "adaptive_max_pool2d")
        shape = x.shape[:-3] + ((g.OH, g.OW, x.shape[-1]) if cl else (x.shape[-3], g.OH, g.OW))
        out = _reusable(self.output, shape, x.dtype)
        idx = _reusable(self.indices, shape, np.dtype(np.int64))
        self.output = self.indices = None  # dropped first: a failure leaves no stale result
        values, idx = self._impl.adaptive_max_forward_planes(x, g, True, cl, out, idx)
        self.output, self.indices = to_format(values, swapped, cl), to_format(idx, swapped, cl)
        self._input_shape = np.shape(input)
        if self.return_indices:
            return self.output, self.indices
        return self.output

    def updateGradInput(self, input, gradOutput):
        """Gradient with respect to the last forward's input; sets and returns ``self.gradInput``."""
        if self.indices is None:
            raise BackwardBeforeForwardError(
                "AdaptiveMaxPool2d.updateGradInput() was called before forward(): there are no indices to "
                "route gradOutput through"
            )
        shape = np.shape(input)
        if tuple(shape) != tuple(self._input_shape):
            raise ValueError(
                f"input.shape={tuple(shape)!r} differs from the shape of the last forward input "
                f"{tuple(self._input_shape)!r}; call forward() on this input first"
            )
        go, idx, shape, cl, swapped = prepare_adaptive_max_backward(gradOutput, self.indices, self._input_shape,
                                                                    self.data_format)
        self.gradInput = None
        self.gradInput = to_format(self._impl.backward_planes(go, idx, shape, cl), swapped, cl)
        return self.gradInput

    def __repr__(self):
        extra = "" if self.data_format == "NCHW" else f", data_format={self.data_format!r}"
        return f"AdaptiveMaxPool2d(output_size={_output_size_repr(self.output_size)}{extra})"


__all__ += ["AdaptiveAvgPool2d", "AdaptiveMaxPool2d"]


class MaxUnpool2d(_PoolingLayer):
    """Max unpooling layer (:func:`cpool.max_unpool2d`), PyTorch-exact.

    ``kernel_size``, ``stride`` and ``padding`` are ``torch.nn.MaxUnpool2d``'s.
    As in PyTorch, ``forward(input, indices, output_size=None)`` takes the
    indices of the pooling being inverted. As in Torch7's
    ``SpatialMaxUnpooling``, the layer can instead be built on that pooling
    layer (``pool=``, a :class:`MaxPool2d`): then ``forward(input)`` (and so
    ``updateOutput``, for a ``Sequential``) reads ``pool.indices``, and the
    output has the shape of ``pool``'s last input unless ``output_size`` is
    given. ``backward(input, gradOutput)`` gathers the gradient at the
    indices of the last forward.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> pool = cpool.MaxPool2d(2)
    >>> unpool = cpool.MaxUnpool2d(2, pool=pool)
    >>> x = np.random.rand(2, 3, 5, 5).astype(np.float32)
    >>> unpool.forward(pool.forward(x)).shape
    (2, 3, 5, 5)
    """

    def __init__(self, kernel_size, stride=None, padding=0, *, pool=None, data_format="NCHW", backend=None):
        # checked now, so a bad layer fails where it is built
        self._pairs = parse_unpool_args(kernel_size, stride, padding)
        if pool is not None and not isinstance(pool, MaxPool2d):
            raise TypeError(f"pool must be None or a cpool.MaxPool2d, got pool={pool!r} (type {type(pool).__name__})")
        self.data_format = "NHWC" if check_data_format(data_format) else "NCHW"
        self._impl = _backend.load(backend)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.pool = pool
        self.output = None
        self.gradInput = None
        self.training = True
        self._last_indices = None

    def updateOutput(self, input, indices=None, output_size=None):
        """Unpool ``input`` through ``indices`` (default: ``pool.indices``); sets and returns ``self.output``."""
        if indices is None:
            if self.pool is None or self.pool.indices is None:
                raise ValueError("indices must be given (or the layer built with pool= on a MaxPool2d that "
                                 "has run forward)")
            indices = self.pool.indices
            if output_size is None:
                output_size = self.pool._input_shape
        x, idx, size, cl, swapped = prepare_unpool(input, indices, self.kernel_size, self.stride, self.padding,
                                                   output_size, self.data_format)
        self.output = None  # dropped first: a failure leaves no stale result
        self.output = to_format(self._impl.unpool_planes(x, idx, size, cl), swapped, cl)
        self._last_indices = indices
        return self.output

    def forward(self, input, indices=None, output_size=None):
        """Same as :meth:`updateOutput`."""
        return self.updateOutput(input, indices, output_size)

    def __call__(self, input, indices=None, output_size=None):
        """Same as :meth:`forward`."""
        return self.forward(input, indices, output_size)

    def updateGradInput(self, input, gradOutput):
        """Gradient with respect to ``input``: ``gradOutput`` at the last forward's indices."""
        if self._last_indices is None:
            raise BackwardBeforeForwardError("MaxUnpool2d.backward needs a forward first (it reads its indices)")
        go, idx, cl, swapped = prepare_unpool_backward(gradOutput, self._last_indices, self.data_format)
        self.gradInput = None
        self.gradInput = to_format(self._impl.unpool_backward_planes(go, idx, cl), swapped, cl)
        return self.gradInput

    def __repr__(self):
        extra = "" if self.data_format == "NCHW" else f", data_format={self.data_format!r}"
        kernel, stride, padding = self._pairs  # as torch prints them: pairs
        return f"MaxUnpool2d(kernel_size={kernel}, stride={stride}, padding={padding}{extra})"


__all__ += ["MaxUnpool2d"]


# ----------------------------------------------------------------- 3-D average pooling


class AvgPool3d(_PoolingLayer):
    """3-D average pooling layer for NumPy networks, PyTorch-exact.

    The arguments are ``torch.nn.AvgPool3d``'s, in its order, as in
    :func:`cpool.avg_pool3d`; ``data_format`` is "NCDHW" or "NDHWC" and
    ``backend`` is as for :class:`MaxPool2d`. The backward needs only the
    forward input's shape.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> pool = cpool.AvgPool3d(2)
    >>> pool
    AvgPool3d(kernel_size=2, stride=2, padding=0)
    >>> x = np.random.rand(2, 3, 8, 8, 8).astype(np.float32)
    >>> pool.forward(x).shape
    (2, 3, 4, 4, 4)
    >>> pool.backward(x, np.ones((2, 3, 4, 4, 4), np.float32)).shape
    (2, 3, 8, 8, 8)
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None, *, data_format="NCDHW", backend=None):
        # Checked now so a bad layer fails where it is built, not mid-epoch.
        parse_pool3d_args(kernel_size, stride, padding, 1, ceil_mode)
        parse_avg_options(count_include_pad, divisor_override)
        self.data_format = DATA_FORMATS_3D[check_data_format(data_format, DATA_FORMATS_3D)]
        self._impl = _backend.load(backend)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override
        self.output = None
        self.gradInput = None
        self.training = True

    def _args(self):
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                self.divisor_override)

    def updateOutput(self, input):
        """Pool ``input``; sets and returns ``self.output``."""
        x, g, avg, cl, swapped = prepare_avg3d_forward(input, *self._args(), self.data_format)
        self.output = None  # dropped first: a failure leaves no stale result
        self.output = to_format(self._impl.avg3d_forward_planes(x, g, avg.count_include_pad, avg.divisor, cl),
                                swapped, cl, 3)
        return self.output

    def updateGradInput(self, input, gradOutput):
        """Gradient with respect to ``input`` (only its shape is read); sets and returns ``self.gradInput``."""
        go, shape, g, avg, cl, swapped = prepare_avg3d_backward(gradOutput, np.shape(input), *self._args(),
                                                                self.data_format)
        self.gradInput = None
        self.gradInput = to_format(self._impl.avg3d_backward_planes(go, shape, g, avg.count_include_pad,
                                                                    avg.divisor, cl), swapped, cl, 3)
        return self.gradInput

    def __repr__(self):
        extra = "" if self.data_format == "NCDHW" else f", data_format={self.data_format!r}"
        return f"AvgPool3d(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}{extra})"


__all__ += ["AvgPool3d"]


# ----------------------------------------------------------------- 3-D max pooling


class MaxPool3d(_PoolingLayer):
    """3-D max pooling layer for NumPy networks, PyTorch-exact.

    The arguments are ``torch.nn.MaxPool3d``'s, in its order, as in
    :func:`cpool.max_pool3d`; ``return_indices`` and ``backend`` are as for
    :class:`MaxPool2d`, and ``data_format`` is "NCDHW" or "NDHWC".

    Attributes
    ----------
    output, gradInput : ndarray or None
        The last results; as in :class:`MaxPool2d`, the next result of the
        same shape is written into the same memory when nothing else refers
        to it.
    indices : ndarray of int64 or None
        PyTorch-format indices (``(d * H + h) * W + w`` within each volume)
        of the last forward; :meth:`backward` routes the gradient through
        them (set them to route it through others).

    Examples
    --------
    >>> import numpy as np, cpool
    >>> pool = cpool.MaxPool3d(2)
    >>> pool
    MaxPool3d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    >>> x = np.random.rand(2, 3, 8, 8, 8).astype(np.float32)
    >>> pool.forward(x).shape
    (2, 3, 4, 4, 4)
    >>> pool.backward(x, np.ones((2, 3, 4, 4, 4), np.float32)).shape
    (2, 3, 8, 8, 8)
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False, *,
                 data_format="NCDHW", backend=None):
        # Checked now so a bad layer fails where it is built, not mid-epoch.
        parse_pool3d_args(kernel_size, stride, padding, dilation, ceil_mode)
        self.data_format = DATA_FORMATS_3D[check_data_format(data_format, DATA_FORMATS_3D)]
        if type(return_indices) is not bool:
            raise TypeError(f"return_indices must be a bool, got return_indices={return_indices!r} "
                            f"(type {type(return_indices).__name__})")
        self._impl = _backend.load(backend)
        self.return_indices = return_indices
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.ceil_mode = ceil_mode
        self.output = None
        self.gradInput = None
        self._indices = None
        self._exposed = False  # whether the caller has seen (and may have changed) the indices
        self.training = True
        self._input_shape = None

    def updateOutput(self, input):
        """Pool ``input``; sets ``self.output`` (and ``self.indices``) and returns
        ``self.output``, or ``(self.output, self.indices)`` with ``return_indices``."""
        x, g, _, cl, swapped, nodepth_from = prepare_max3d_forward(input, self.kernel_size, self.stride, self.padding,
                                                                 self.dilation, self.ceil_mode, True,
                                                                 self.data_format)
        shape = x.shape[:-4] + ((g.OD, g.OH, g.OW, x.shape[-1]) if cl else (x.shape[-4], g.OD, g.OH, g.OW))
        out = _reusable(self.output, shape, x.dtype)
        idx = _reusable(self._indices, shape, np.dtype(np.int64))
        self.output = self._indices = None  # dropped first: a failure leaves no stale result
        values, idx = self._impl.max3d_forward_planes(x, g, True, cl, out, idx, nodepth_from)
        self.output, self._indices = to_format(values, swapped, cl, 3), to_format(idx, swapped, cl, 3)
        self._exposed = False
        self._input_shape = np.shape(input)
        if self.return_indices:
            return self.output, self.indices
        return self.output

    def updateGradInput(self, input, gradOutput):
        """Gradient with respect to the last forward's input; sets and returns ``self.gradInput``."""
        if self._indices is None:
            raise BackwardBeforeForwardError(
                "MaxPool3d.updateGradInput() was called before forward(): there are no indices to route "
                "gradOutput through"
            )
        if tuple(np.shape(input)) != tuple(self._input_shape):
            raise ValueError(
                f"input.shape={tuple(np.shape(input))!r} differs from the shape of the last forward input "
                f"{tuple(self._input_shape)!r}; call forward() on this input first"
            )
        go, idx, shape, cl, swapped = prepare_max3d_backward(gradOutput, self._indices, self._input_shape,
                                                             self.data_format)
        # Indices the caller has seen are untrusted, and the kernels find a
        # bad one only as they reach it: no buffer reuse then, so an error
        # leaves the previous gradInput as it was.
        out = None if self._exposed else _reusable(self.gradInput, shape, go.dtype)
        if out is not None:
            self.gradInput = None  # its buffer is being rewritten: never left visible half-written
        self.gradInput = to_format(self._impl.max3d_backward_planes(go, idx, shape, cl, out), swapped, cl, 3)
        return self.gradInput

    @property
    def indices(self):
        self._exposed = True
        return self._indices

    @indices.setter
    def indices(self, value):
        self._exposed = True
        self._indices = value

    def __repr__(self):
        extra = "" if self.data_format == "NCDHW" else f", data_format={self.data_format!r}"
        return (
            f"MaxPool3d(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}{extra})"
        )


__all__ += ["MaxPool3d"]


# --------------------------------------------------------------------------- 1-D pooling layers
# Each calls the public 1-D functions bound to its backend (the same
# argument path as cpool.max_pool1d, ...): PyTorch's 1-D layers, with the
# Torch7-style protocol of the 2-D ones.

_FUNCTIONS_1D: dict = {}


def _functions_1d(impl):
    """The public 1-D functions computed by backend module ``impl``."""
    fns = _FUNCTIONS_1D.get(impl.__name__)
    if fns is None:
        from types import SimpleNamespace

        from . import functional as F
        if impl is _backend.IMPL:
            ops = F
        else:
            ops = SimpleNamespace(first_outside=impl.first_outside)
            for binder in (F.bind, F.bind_avg, F.bind_unpool, F.bind_adaptive):
                for fn in binder(impl):
                    setattr(ops, fn.__name__, fn)
        fns = SimpleNamespace(**F.bind_1d(ops))
        _FUNCTIONS_1D[impl.__name__] = fns
    return fns


def _base_shape(held):
    """The shape of the array owning ``held``'s memory (for :func:`_reusable`)."""
    return (held if held.base is None else held.base).shape


def _format_1d(data_format):
    from ._validation import DATA_FORMATS_1D
    return "NWC" if check_data_format(data_format, DATA_FORMATS_1D) else "NCW"


class _Layer1d(_PoolingLayer):
    def _setup(self, data_format, backend):
        self.data_format = _format_1d(data_format)
        self._f = _functions_1d(_backend.load(backend))
        self.output = None
        self.gradInput = None
        self.training = True

    def _extra(self):
        return "" if self.data_format == "NCW" else f", data_format={self.data_format!r}"


class MaxPool1d(_Layer1d):
    """1-D max pooling layer for NumPy networks, PyTorch-exact (:func:`cpool.max_pool1d`).

    The arguments are ``torch.nn.MaxPool1d``'s, in its order; ``data_format``
    ("NCW" or "NWC") and ``backend`` are as for :class:`MaxPool2d`. The
    indices of the last forward are kept in ``self.indices`` for the backward.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> pool = cpool.MaxPool1d(2)
    >>> pool
    MaxPool1d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    >>> x = np.random.rand(8, 3, 10).astype(np.float32)
    >>> pool.forward(x).shape
    (8, 3, 5)
    >>> pool.backward(x, np.ones((8, 3, 5), np.float32)).shape
    (8, 3, 10)
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False, *,
                 data_format="NCW", backend=None):
        from ._validation import _as_bool, parse_pool1d_args
        parse_pool1d_args(kernel_size, stride, padding, dilation, ceil_mode)  # a bad layer fails where it is built
        self.return_indices = _as_bool(return_indices, "return_indices")
        self._setup(data_format, backend)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.ceil_mode = ceil_mode
        self.indices = None
        self._input_shape = None
        self._input_key = None  # shape, dtype and strides of the last forward input: its results' shapes and layout

    def updateOutput(self, input):
        """Pool ``input``; sets ``self.output`` and ``self.indices``; returns
        ``self.output`` (``(output, indices)`` with ``return_indices``).

        As :class:`MaxPool2d`, the layer writes into its last output and
        indices when the input is laid out as the last one was and nothing
        else refers to them."""
        key = (np.shape(input), getattr(input, "dtype", None), getattr(input, "strides", None))
        out = None
        if (key == self._input_key and self.output is not None and self.indices is not None
                and _reusable(self.output, _base_shape(self.output), self.output.dtype) is not None
                and _reusable(self.indices, _base_shape(self.indices), np.dtype(np.int64)) is not None):
            out = (self.output, self.indices)
        self.output = self.indices = None  # dropped first: a failure leaves no stale result
        self._input_key = None
        self.output, self.indices = self._f.max_pool1d(input, self.kernel_size, self.stride, self.padding,
                                                       self.dilation, self.ceil_mode, True,
                                                       data_format=self.data_format, out=out)
        self._input_shape = np.shape(input)
        self._input_key = key if isinstance(input, np.ndarray) else None
        return (self.output, self.indices) if self.return_indices else self.output

    def updateGradInput(self, input, gradOutput):
        """Gradient with respect to the last forward's input; sets and returns ``self.gradInput``."""
        if self.indices is None:
            raise BackwardBeforeForwardError("MaxPool1d.updateGradInput() was called before forward(): there are "
                                             "no indices to route gradOutput through")
        if tuple(np.shape(input)) != tuple(self._input_shape):
            raise ValueError(f"input.shape={tuple(np.shape(input))!r} differs from the shape of the last forward "
                             f"input {tuple(self._input_shape)!r}; call forward() on this input first")
        out = None
        # (every index is checked before anything is written into the reused buffer)
        if (self.gradInput is not None and self.gradInput.shape == tuple(self._input_shape)
                and self.gradInput.dtype == getattr(gradOutput, "dtype", None)
                and _reusable(self.gradInput, _base_shape(self.gradInput), self.gradInput.dtype) is not None):
            out = self.gradInput
        self.gradInput = None
        self.gradInput = self._f.max_pool1d_backward(gradOutput, self.indices, self._input_shape,
                                                     data_format=self.data_format, out=out)
        return self.gradInput

    def __repr__(self):
        return (f"MaxPool1d(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}{self._extra()})")


class AvgPool1d(_Layer1d):
    """1-D average pooling layer for NumPy networks, PyTorch-exact (:func:`cpool.avg_pool1d`).

    The arguments are ``torch.nn.AvgPool1d``'s, in its order; ``data_format``
    and ``backend`` as for :class:`MaxPool1d`.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> pool = cpool.AvgPool1d(3, stride=2, padding=1)
    >>> pool
    AvgPool1d(kernel_size=(3,), stride=(2,), padding=(1,))
    >>> x = np.random.rand(8, 3, 10).astype(np.float32)
    >>> pool.forward(x).shape
    (8, 3, 5)
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, *,
                 data_format="NCW", backend=None):
        from ._validation import _as_bool, parse_pool1d_args
        self._singles = parse_pool1d_args(kernel_size, stride, padding, 1, ceil_mode)
        _as_bool(count_include_pad, "count_include_pad")
        self._setup(data_format, backend)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def _args(self):
        return self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad

    def updateOutput(self, input):
        """Pool ``input``; sets and returns ``self.output``."""
        self.output = None
        self.output = self._f.avg_pool1d(input, *self._args(), data_format=self.data_format)
        return self.output

    def updateGradInput(self, input, gradOutput):
        """Gradient with respect to ``input`` (only its shape is read); sets and returns ``self.gradInput``."""
        self.gradInput = None
        self.gradInput = self._f.avg_pool1d_backward(gradOutput, np.shape(input), *self._args(),
                                                     data_format=self.data_format)
        return self.gradInput

    def __repr__(self):
        a = self._singles  # as torch prints them: 1-tuples
        return f"AvgPool1d(kernel_size={(a.kernel,)}, stride={(a.stride,)}, padding={(a.padding,)}{self._extra()})"


class AdaptiveAvgPool1d(_Layer1d):
    """1-D adaptive average pooling layer, PyTorch-exact (:func:`cpool.adaptive_avg_pool1d`).

    Examples
    --------
    >>> import numpy as np, cpool
    >>> pool = cpool.AdaptiveAvgPool1d(4)
    >>> pool
    AdaptiveAvgPool1d(output_size=4)
    >>> x = np.random.rand(8, 3, 10).astype(np.float32)
    >>> pool.forward(x).shape
    (8, 3, 4)
    >>> pool.backward(x, np.ones((8, 3, 4), np.float32)).shape
    (8, 3, 10)
    """

    def __init__(self, output_size, *, data_format="NCW", backend=None):
        from ._validation import parse_output_size_1d
        parse_output_size_1d(output_size)
        self._setup(data_format, backend)
        self.output_size = output_size

    def updateOutput(self, input):
        """Pool ``input``; sets and returns ``self.output``."""
        self.output = None
        self.output = self._f.adaptive_avg_pool1d(input, self.output_size, data_format=self.data_format)
        return self.output

    def updateGradInput(self, input, gradOutput):
        """Gradient with respect to ``input`` (only its shape is read); sets and returns ``self.gradInput``."""
        self.gradInput = None
        self.gradInput = self._f.adaptive_avg_pool1d_backward(gradOutput, np.shape(input),
                                                              data_format=self.data_format)
        return self.gradInput

    def __repr__(self):
        return f"AdaptiveAvgPool1d(output_size={_output_size_repr(self.output_size)}{self._extra()})"


class AdaptiveMaxPool1d(_Layer1d):
    """1-D adaptive max pooling layer, PyTorch-exact (:func:`cpool.adaptive_max_pool1d`).

    As :class:`MaxPool1d`, the indices of the last forward are kept in
    ``self.indices``; ``forward`` returns them too with ``return_indices``.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> pool = cpool.AdaptiveMaxPool1d(4)
    >>> pool
    AdaptiveMaxPool1d(output_size=4)
    >>> x = np.random.rand(8, 3, 10).astype(np.float32)
    >>> pool.forward(x).shape
    (8, 3, 4)
    >>> pool.backward(x, np.ones((8, 3, 4), np.float32)).shape
    (8, 3, 10)
    """

    def __init__(self, output_size, return_indices=False, *, data_format="NCW", backend=None):
        from ._validation import _as_bool, parse_output_size_1d
        parse_output_size_1d(output_size)
        self.return_indices = _as_bool(return_indices, "return_indices")
        self._setup(data_format, backend)
        self.output_size = output_size
        self.indices = None
        self._input_shape = None

    def updateOutput(self, input):
        """Pool ``input``; sets ``self.output`` and ``self.indices``; returns
        ``self.output`` (``(output, indices)`` with ``return_indices``)."""
        self.output = self.indices = None
        self.output, self.indices = self._f.adaptive_max_pool1d(input, self.output_size, True,
                                                                data_format=self.data_format)
        self._input_shape = np.shape(input)
        return (self.output, self.indices) if self.return_indices else self.output

    def updateGradInput(self, input, gradOutput):
        """Gradient with respect to the last forward's input; sets and returns ``self.gradInput``."""
        if self.indices is None:
            raise BackwardBeforeForwardError("AdaptiveMaxPool1d.updateGradInput() was called before forward(): "
                                             "there are no indices to route gradOutput through")
        if tuple(np.shape(input)) != tuple(self._input_shape):
            raise ValueError(f"input.shape={tuple(np.shape(input))!r} differs from the shape of the last forward "
                             f"input {tuple(self._input_shape)!r}; call forward() on this input first")
        self.gradInput = None
        self.gradInput = self._f.adaptive_max_pool1d_backward(gradOutput, self.indices, self._input_shape,
                                                              data_format=self.data_format)
        return self.gradInput

    def __repr__(self):
        return f"AdaptiveMaxPool1d(output_size={_output_size_repr(self.output_size)}{self._extra()})"


class MaxUnpool1d(_Layer1d):
    """1-D max unpooling layer (:func:`cpool.max_unpool1d`), PyTorch-exact.

    ``kernel_size``, ``stride`` and ``padding`` are ``torch.nn.MaxUnpool1d``'s;
    ``forward(input, indices, output_size=None)`` as in PyTorch, or, built
    with ``pool=`` (a :class:`MaxPool1d`), ``forward(input)`` reads
    ``pool.indices`` and unpools to the shape of ``pool``'s last input.
    ``backward(input, gradOutput)`` gathers the gradient at the indices of
    the last forward.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> pool = cpool.MaxPool1d(2)
    >>> unpool = cpool.MaxUnpool1d(2, pool=pool)
    >>> unpool
    MaxUnpool1d(kernel_size=(2,), stride=(2,), padding=(0,))
    >>> x = np.random.rand(2, 3, 9).astype(np.float32)
    >>> unpool.forward(pool.forward(x)).shape
    (2, 3, 9)
    """

    def __init__(self, kernel_size, stride=None, padding=0, *, pool=None, data_format="NCW", backend=None):
        from ._validation import parse_unpool1d_args
        self._singles = parse_unpool1d_args(kernel_size, stride, padding)
        if pool is not None and not isinstance(pool, MaxPool1d):
            raise TypeError(f"pool must be None or a cpool.MaxPool1d, got pool={pool!r} (type {type(pool).__name__})")
        self._setup(data_format, backend)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.pool = pool
        self._last_indices = None

    def updateOutput(self, input, indices=None, output_size=None):
        """Unpool ``input`` through ``indices`` (default: ``pool.indices``); sets and returns ``self.output``."""
        if indices is None:
            if self.pool is None or self.pool.indices is None:
                raise ValueError("indices must be given (or the layer built with pool= on a MaxPool1d that "
                                 "has run forward)")
            indices = self.pool.indices
            if output_size is None:
                output_size = self.pool._input_shape
        self.output = None
        self.output = self._f.max_unpool1d(input, indices, self.kernel_size, self.stride, self.padding, output_size,
                                           data_format=self.data_format)
        self._last_indices = indices
        return self.output

    def forward(self, input, indices=None, output_size=None):
        """Same as :meth:`updateOutput`."""
        return self.updateOutput(input, indices, output_size)

    def __call__(self, input, indices=None, output_size=None):
        """Same as :meth:`forward`."""
        return self.forward(input, indices, output_size)

    def updateGradInput(self, input, gradOutput):
        """Gradient with respect to ``input``: ``gradOutput`` at the last forward's indices."""
        if self._last_indices is None:
            raise BackwardBeforeForwardError("MaxUnpool1d.backward needs a forward first (it reads its indices)")
        self.gradInput = None
        self.gradInput = self._f.max_unpool1d_backward(gradOutput, self._last_indices, data_format=self.data_format)
        return self.gradInput

    def __repr__(self):
        k, s, p = self._singles  # as torch prints them: 1-tuples
        return f"MaxUnpool1d(kernel_size={(k,)}, stride={(s,)}, padding={(p,)}{self._extra()})"


__all__ += ["MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d", "AdaptiveMaxPool1d", "MaxUnpool1d"]


# ------------------------------------------------------------ 3-D adaptive pooling and max unpooling
def _ops3d(impl):
    """The 3-D adaptive and unpooling functions bound to backend module
    ``impl`` (made once per backend): the layers below run the public
    functions' argument path and ``out=`` reuse."""
    ops = _OPS3D.get(impl.__name__)
    if ops is None:
        from .functional import bind_adaptive3d, bind_unpool3d
        avg, avg_backward, mx, mx_backward = bind_adaptive3d(impl)
        unpool, unpool_backward = bind_unpool3d(impl)
        ops = _OPS3D[impl.__name__] = {"avg": avg, "avg_backward": avg_backward, "max": mx,
                                       "max_backward": mx_backward, "unpool": unpool,
                                       "unpool_backward": unpool_backward}
    return ops


_OPS3D: dict = {}


def _format3d(data_format):
    return "NDHWC" if check_data_format(data_format, DATA_FORMATS_3D) else "NCDHW"


class AdaptiveAvgPool3d(_PoolingLayer):
    """3-D adaptive average pooling layer for NumPy networks, PyTorch-exact.

    ``output_size`` is ``torch.nn.AdaptiveAvgPool3d``'s, as in
    :func:`cpool.adaptive_avg_pool3d`; ``data_format`` ("NCDHW" or
    "NDHWC") and ``backend`` are as for :class:`MaxPool2d`. The backward
    needs only the forward input's shape.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> pool = cpool.AdaptiveAvgPool3d((1, 2, 2))
    >>> pool
    AdaptiveAvgPool3d(output_size=(1, 2, 2))
    >>> x = np.random.rand(2, 3, 4, 5, 5).astype(np.float32)
    >>> pool.forward(x).shape
    (2, 3, 1, 2, 2)
    >>> pool.backward(x, np.ones((2, 3, 1, 2, 2), np.float32)).shape
    (2, 3, 4, 5, 5)
    """

    def __init__(self, output_size, *, data_format="NCDHW", backend=None):
        parse_output_size(output_size, 3)  # checked now: a bad layer fails where it is built
        self.data_format = _format3d(data_format)
        self._ops = _ops3d(_backend.load(backend))
        self.output_size = output_size
        self.output = None
        self.gradInput = None
        self.training = True

    def updateOutput(self, input):
        """Pool ``input``; sets and returns ``self.output``."""
        self.output = None  # dropped first: a failure leaves no stale result
        self.output = self._ops["avg"](input, self.output_size, data_format=self.data_format)
        return self.output

    def updateGradInput(self, input, gradOutput):
        """Gradient with respect to ``input`` (only its shape is read); sets and returns ``self.gradInput``."""
        self.gradInput = None
        self.gradInput = self._ops["avg_backward"](gradOutput, np.shape(input), data_format=self.data_format)
        return self.gradInput

    def __repr__(self):
        extra = "" if self.data_format == "NCDHW" else f", data_format={self.data_format!r}"
        return f"AdaptiveAvgPool3d(output_size={_output_size_repr(self.output_size)}{extra})"


class AdaptiveMaxPool3d(_PoolingLayer):
    """3-D adaptive max pooling layer for NumPy networks, PyTorch-exact.

    The arguments are ``torch.nn.AdaptiveMaxPool3d``'s, as in
    :func:`cpool.adaptive_max_pool3d`; ``data_format`` and ``backend`` as
    for :class:`AdaptiveAvgPool3d`. With ``return_indices`` :meth:`forward`
    returns ``(output, indices)``; the indices (int64, ``(d * H + h) * W +
    w`` per volume) are kept in ``self.indices`` for :meth:`backward`.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> pool = cpool.AdaptiveMaxPool3d((2, None, 1))
    >>> x = np.random.rand(2, 3, 4, 5, 6).astype(np.float32)
    >>> pool.forward(x).shape
    (2, 3, 2, 5, 1)
    >>> pool.backward(x, np.ones((2, 3, 2, 5, 1), np.float32)).shape
    (2, 3, 4, 5, 6)
    """

    def __init__(self, output_size, return_indices=False, *, data_format="NCDHW", backend=None):
        parse_output_size(output_size, 3)
        self.data_format = _format3d(data_format)
        if type(return_indices) is not bool:
            raise TypeError(f"return_indices must be a bool, got return_indices={return_indices!r} "
                            f"(type {type(return_indices).__name__})")
        self._ops = _ops3d(_backend.load(backend))
        self.output_size = output_size
        self.return_indices = return_indices
        self.output = None
        self.gradInput = None
        self.indices = None
        self.training = True
        self._input_shape = None

    def updateOutput(self, input):
        """Pool ``input``; sets ``self.output`` and ``self.indices`` and returns
        ``self.output``, or ``(self.output, self.indices)`` with ``return_indices``."""
        self.output = self.indices = None  # dropped first: a failure leaves no stale result
        self.output, self.indices = self._ops["max"](input, self.output_size, True, data_format=self.data_format)
        self._input_shape = np.shape(input)
        if self.return_indices:
            return self.output, self.indices
        return self.output

    def updateGradInput(self, input, gradOutput):
        """Gradient with respect to the last forward's input; sets and returns ``self.gradInput``."""
        if self.indices is None:
            raise BackwardBeforeForwardError(
                "AdaptiveMaxPool3d.updateGradInput() was called before forward(): there are no indices to "
                "route gradOutput through"
            )
        shape = np.shape(input)
        if tuple(shape) != tuple(self._input_shape):
            raise ValueError(
                f"input.shape={tuple(shape)!r} differs from the shape of the last forward input "
                f"{tuple(self._input_shape)!r}; call forward() on this input first"
            )
        self.gradInput = None
        self.gradInput = self._ops["max_backward"](gradOutput, self.indices, self._input_shape,
                                                   data_format=self.data_format)
        return self.gradInput

    def __repr__(self):
        extra = "" if self.data_format == "NCDHW" else f", data_format={self.data_format!r}"
        return f"AdaptiveMaxPool3d(output_size={_output_size_repr(self.output_size)}{extra})"


class MaxUnpool3d(_PoolingLayer):
    """3-D max unpooling layer (:func:`cpool.max_unpool3d`), PyTorch-exact.

    ``kernel_size``, ``stride`` and ``padding`` are ``torch.nn.MaxUnpool3d``'s.
    As in PyTorch, ``forward(input, indices, output_size=None)`` takes the
    indices of the pooling being inverted; ``backward(input, gradOutput)``
    gathers the gradient at the indices of the last forward.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> unpool = cpool.MaxUnpool3d(2)
    >>> unpool
    MaxUnpool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2), padding=(0, 0, 0))
    >>> v = np.ones((1, 1, 1, 1, 1), np.float32)
    >>> unpool.forward(v, np.array([[[[[7]]]]])).shape
    (1, 1, 2, 2, 2)
    """

    def __init__(self, kernel_size, stride=None, padding=0, *, data_format="NCDHW", backend=None):
        # checked now, so a bad layer fails where it is built
        self._triples = parse_unpool_args(kernel_size, stride, padding, spatial=3)
        self.data_format = _format3d(data_format)
        self._ops = _ops3d(_backend.load(backend))
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.output = None
        self.gradInput = None
        self.training = True
        self._last_indices = None

    def updateOutput(self, input, indices=None, output_size=None):
        """Unpool ``input`` through ``indices``; sets and returns ``self.output``."""
        if indices is None:
            raise ValueError("indices must be given: those of the 3-D max pooling being inverted")
        self.output = None  # dropped first: a failure leaves no stale result
        self.output = self._ops["unpool"](input, indices, self.kernel_size, self.stride, self.padding, output_size,
                                          data_format=self.data_format)
        self._last_indices = indices
        return self.output

    def forward(self, input, indices=None, output_size=None):
        """Same as :meth:`updateOutput`."""
        return self.updateOutput(input, indices, output_size)

    def __call__(self, input, indices=None, output_size=None):
        """Same as :meth:`forward`."""
        return self.forward(input, indices, output_size)

    def updateGradInput(self, input, gradOutput):
        """Gradient with respect to ``input``: ``gradOutput`` at the last forward's indices."""
        if self._last_indices is None:
            raise BackwardBeforeForwardError("MaxUnpool3d.backward needs a forward first (it reads its indices)")
        self.gradInput = None
        self.gradInput = self._ops["unpool_backward"](gradOutput, self._last_indices, data_format=self.data_format)
        return self.gradInput

    def __repr__(self):
        extra = "" if self.data_format == "NCDHW" else f", data_format={self.data_format!r}"
        kernel, stride, padding = self._triples  # as torch prints them: triples
        return f"MaxUnpool3d(kernel_size={kernel}, stride={stride}, padding={padding}{extra})"



__all__ += ["AdaptiveAvgPool3d", "AdaptiveMaxPool3d", "MaxUnpool3d"]
