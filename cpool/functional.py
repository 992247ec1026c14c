"""The public functional API: ``max_pool2d`` and ``max_pool2d_backward``.

How a call runs (see ``docs/architecture.md``)::

    cpool.max_pool2d(x, ...)                      this module
      -> _validation.prepare_forward(...)         checks, geometry, layout
      -> backend.forward_planes(x, g, ...)        cpool._compiled or cpool.slow
         -> extension entry point                 cpool._kernels[_avx2]

:func:`bind` makes the two public functions for a backend module; the
functions here are bound to the one :mod:`cpool._backend` chose at import,
and :mod:`cpool.slow` binds the same two to the NumPy backend, so every
backend shares one argument path.
"""

from __future__ import annotations

import numpy as np

from ._validation import prepare_backward, prepare_forward

__all__ = ["max_pool2d", "max_pool2d_backward"]

_INT64 = np.dtype(np.int64)


def bind(impl, module=__name__):
    """``(max_pool2d, max_pool2d_backward)`` computed by backend module ``impl``.

    ``module`` is the ``__module__`` the functions report (where they are
    published, so they pickle and show their home in ``help``).
    """

    def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        x, g, with_indices = prepare_forward(input, kernel_size, stride, padding, dilation, ceil_mode,
                                             return_indices)
        out, idx = impl.forward_planes(x, g, with_indices, _INT64)
        return (out, idx) if with_indices else out

    def max_pool2d_backward(grad_output, indices, input_shape):
        go, idx, shape = prepare_backward(grad_output, indices, input_shape)
        return impl.backward_planes(go, idx, shape)

    max_pool2d.__doc__ = _MAX_POOL2D_DOC
    max_pool2d_backward.__doc__ = _MAX_POOL2D_BACKWARD_DOC
    for fn in (max_pool2d, max_pool2d_backward):
        fn.__module__ = module
        fn.__qualname__ = fn.__name__
    return max_pool2d, max_pool2d_backward


_MAX_POOL2D_DOC = """2-D max pooling over (N, C, H, W) or (C, H, W) arrays, as in PyTorch.

    Same arguments, output shape, values and indices as
    ``torch.nn.functional.max_pool2d`` on the CPU, bit for bit.

    Parameters
    ----------
    input : array_like
        A 4-D (N, C, H, W) or 3-D (C, H, W) array of float16, float32,
        float64, uint8, int8, int16, int32 or int64. Any memory layout is
        accepted; the array is never modified. N may be 0.
    kernel_size : int or tuple of two ints
        Window height and width.
    stride : int or tuple of two ints, optional
        Step between windows. Defaults to ``kernel_size``.
    padding : int or tuple of two ints, default 0
        Implicit padding on both sides; it acts as -inf and is never
        selected. At most half the kernel size.
    dilation : int or tuple of two ints, default 1
        Spacing between the taps of a window.
    ceil_mode : bool, default False
        Round the output size up instead of down; the last window must still
        start inside the input or the left padding.
    return_indices : bool, default False
        Also return the position of each maximum.

    Returns
    -------
    out : ndarray
        The pooled array, of the input's dtype (native byte order), shaped
        (N, C, OH, OW) or (C, OH, OW) with
        ``OH = floor((H + 2*p - d*(k-1) - 1 + (s-1 if ceil_mode else 0)) / s) + 1``.
    indices : ndarray of int64, only if ``return_indices``
        Flat position ``h * W + w`` of each maximum within its own (n, c)
        plane, as in PyTorch. A window that holds no input element at all
        (possible only with dilation) gives -inf and index -1.

    Raises
    ------
    TypeError
        For arguments of the wrong type and unsupported dtypes (bool,
        complex, object, ...).
    ValueError
        For values PyTorch rejects: a 1-, 2- or 5-D input, a zero channel,
        height or width, non-positive kernel/stride/dilation, negative
        padding or padding above half the kernel, or an empty output.

    Notes
    -----
    Ties go to the first maximum in row-major window order. NaN propagates:
    a NaN always replaces the running maximum, so the last NaN of a window
    is returned, with its index.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> out, idx = cpool.max_pool2d(x, 2, return_indices=True)
    >>> out[0, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    >>> idx[0, 0]
    array([[ 5,  7],
           [13, 15]])
    """

_MAX_POOL2D_BACKWARD_DOC = """Gradient of :func:`max_pool2d` with respect to its input.

    Equivalent to PyTorch's ``max_pool2d_with_indices_backward``: each
    element of ``grad_output`` is added to the input position its index
    names; overlapping windows accumulate, in output row-major order.

    Parameters
    ----------
    grad_output : array_like
        Gradient with respect to the pooled output, (N, C, OH, OW) or
        (C, OH, OW), float16, float32 or float64.
    indices : array_like of int64
        The indices returned by ``max_pool2d(..., return_indices=True)``,
        of the same shape as ``grad_output``.
    input_shape : tuple of ints
        Shape of the forward input: (N, C, H, W) or (C, H, W).

    Returns
    -------
    grad_input : ndarray
        A new array of ``input_shape`` and ``grad_output``'s dtype.

    Raises
    ------
    TypeError
        If ``grad_output`` is not floating point or ``indices`` is not int64.
    ValueError
        If the shapes disagree, or an index lies outside ``[-1, H*W)``
        (-1 marks a window with no input element and is skipped).

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> out, idx = cpool.max_pool2d(x, 2, return_indices=True)
    >>> cpool.max_pool2d_backward(np.ones_like(out), idx, x.shape)[0, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 0., 1.],
           [0., 0., 0., 0.],
           [0., 1., 0., 1.]], dtype=float32)
    """

# Imported after bind() is defined: choosing the backend may import
# cpool.slow, which binds its own public functions with it.
from . import _backend  # noqa: E402

max_pool2d, max_pool2d_backward = bind(_backend.IMPL)
