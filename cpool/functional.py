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

import sys

import numpy as np

from ._validation import (
    check_index_range,
    check_out,
    check_unpool_index_range,
    format_shape,
    prepare_adaptive_avg_backward,
    prepare_adaptive_forward,
    prepare_adaptive_max_backward,
    prepare_avg_backward,
    prepare_avg_forward,
    prepare_backward,
    prepare_forward,
    prepare_unpool,
    prepare_unpool_backward,
    to_format,
    writable_memory,
)

__all__ = ["max_pool2d", "max_pool2d_backward"]

_INT64 = np.dtype(np.int64)


def _into_out(out, mem_shape, dtype, sources, swapped, cl, compute, check=None, spatial=2):
    """The ``out=`` path every single-result function shares: check ``out``
    (against the result's memory shape ``mem_shape`` in the caller's
    format, ``dtype`` and the ``sources`` it must not overlap), run
    ``check()`` (the index checks that must pass before the caller's array
    is written), then ``compute(memory)`` writes into ``out`` directly when
    its layout is the backend's (``memory`` is ``out`` in memory order),
    else ``compute(None)`` returns a result that is copied in. ``spatial``
    is the number of spatial axes (1, 2 or 3). Returns ``out``."""
    target = check_out(out, "out", format_shape(mem_shape, swapped, cl, spatial) if swapped else mem_shape, dtype,
                       sources)
    if check is not None:
        check()
    mem = writable_memory(target, swapped, cl, spatial)
    result = compute(mem)
    if mem is None:
        np.copyto(target, to_format(result, swapped, cl, spatial))
    return out


def _check_outs(out, shape, dtype, sources, with_indices):
    """Check the ``out=`` of a function that returns values and, with
    ``return_indices``, int64 indices: the (values, indices) pair then, else
    one array, each of ``shape`` (the caller's format). Returns
    ``(values, indices or None)``."""
    if with_indices:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(f"out must be a (values, indices) tuple of two arrays with return_indices=True, "
                            f"got out of type {type(out).__name__}")
        values = check_out(out[0], "out[0]", shape, dtype, sources)
        return values, check_out(out[1], "out[1]", shape, _INT64, sources + (("out[0]", values),))
    if isinstance(out, tuple):
        raise TypeError("out must be one array with return_indices=False, got a tuple")
    return check_out(out, "out", shape, dtype, sources), None


def _into_outs(out, mem_shape, dtype, sources, with_indices, swapped, cl, compute, spatial=2):
    """:func:`_into_out` for the functions that return values and, with
    ``return_indices``, indices: ``out`` checked by :func:`_check_outs`, then
    ``compute(values_memory, indices_memory)`` writes into the arrays laid
    out as the backend's memory (None for one laid out otherwise, whose
    result is copied in). Returns ``out``."""
    shape = format_shape(mem_shape, swapped, cl, spatial) if swapped else mem_shape
    out_values, out_indices = _check_outs(out, shape, dtype, sources, with_indices)
    mem_values = writable_memory(out_values, swapped, cl, spatial)
    mem_indices = None if out_indices is None else writable_memory(out_indices, swapped, cl, spatial)
    values, idx = compute(mem_values, mem_indices)
    if mem_values is None:  # out is laid out otherwise: the result goes in by a copy
        np.copyto(out_values, to_format(values, swapped, cl, spatial))
    if out_indices is not None and mem_indices is None:
        np.copyto(out_indices, to_format(idx, swapped, cl, spatial))
    return out


def bind(impl, module=__name__):
    """``(max_pool2d, max_pool2d_backward)`` computed by backend module ``impl``.

    ``module`` is the ``__module__`` the functions report (where they are
    published, so they pickle and show their home in ``help``).
    """

    def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False,
                   *, data_format="NCHW", out=None):
        x, g, with_indices, cl, swapped = prepare_forward(input, kernel_size, stride, padding, dilation, ceil_mode,
                                                          return_indices, data_format)
        if out is None:
            values, idx = impl.forward_planes(x, g, with_indices, _INT64, cl)
            values = to_format(values, swapped, cl)
            return (values, to_format(idx, swapped, cl)) if with_indices else values
        mem_shape = x.shape[:-3] + ((g.OH, g.OW, x.shape[-1]) if cl else (x.shape[-3], g.OH, g.OW))
        # The input, and the array the kernels read: the same memory when the
        # input is not an ndarray (a memoryview, a torch tensor, ...).
        return _into_outs(out, mem_shape, x.dtype, (("input", input), ("input", x)), with_indices, swapped, cl,
                          lambda mv, mi: impl.forward_planes(x, g, with_indices, _INT64, cl, mv, mi))

    def max_pool2d_backward(grad_output, indices, input_shape, *, data_format="NCHW", out=None):
        go, idx, shape, cl, swapped = prepare_backward(grad_output, indices, input_shape, data_format=data_format)
        if out is None:
            return to_format(impl.backward_planes(go, idx, shape, cl), swapped, cl)
        # the arrays read too: the same memory for an input that is not an ndarray.
        # Nothing may be written on an error, and the kernels find a bad
        # index only as they reach it: check them all first.
        return _into_out(out, shape, go.dtype, (("grad_output", grad_output), ("indices", indices),
                                                ("grad_output", go), ("indices", idx)), swapped, cl,
                         lambda mem: impl.backward_planes(go, idx, shape, cl, mem),
                         lambda: check_index_range(idx, *((shape[-3], shape[-2]) if cl else shape[-2:]),
                                                   find=impl.first_outside))

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
    data_format : {"NCHW", "NHWC"}, keyword-only, default "NCHW"
        Where the channel axis is: "NHWC" takes (N, H, W, C) or (H, W, C)
        input and returns (N, OH, OW, C) results (TensorFlow's, ONNX's and
        oneDNN's name for it). Memory laid out the other way needs no copy:
        an "NCHW" array whose memory is channels-last (as
        ``a.transpose(0, 3, 1, 2)`` of a C-contiguous (N, H, W, C) array
        ``a``, or a torch ``channels_last`` tensor's) runs the channels-last
        kernel, and the results come back in that memory layout, as torch
        returns them. Only an array contiguous in neither order is copied.
    out : ndarray, or tuple (values, indices) with ``return_indices``, keyword-only
        Arrays to write the results into instead of new ones (the result's
        shape in ``data_format`` order, the input's dtype and int64; any
        strides, fastest when laid out as the result would be). They must
        not share memory with the input. Returned. New outputs of more than
        a few tens of MiB cost fresh pages on every call, whose zeroing by
        the OS can take longer than the pooling; ``out=`` avoids that.

    Returns
    -------
    out : ndarray
        The pooled array, of the input's dtype (native byte order), shaped
        (N, C, OH, OW) or (C, OH, OW) ((N, OH, OW, C) or (OH, OW, C) for
        "NHWC"), with
        ``OH = floor((H + 2*p - d*(k-1) - 1 + (s-1 if ceil_mode else 0)) / s) + 1``.
    indices : ndarray of int64, only if ``return_indices``
        Flat position ``h * W + w`` of each maximum within its own (n, c)
        plane, as in PyTorch, in either data format. A window that holds no input element at all
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
        Shape of the forward input: (N, C, H, W) or (C, H, W), in
        ``data_format`` order.
    data_format : {"NCHW", "NHWC"}, keyword-only, default "NCHW"
        As for :func:`max_pool2d`. ``grad_output``'s memory layout decides
        the kernel's (channels-last memory is used as it is) and that of
        the result; ``indices`` laid out otherwise are converted.
    out : ndarray, keyword-only
        An array of ``input_shape`` and ``grad_output``'s dtype to write the
        gradient into (it must not share memory with ``grad_output`` or
        ``indices``); returned. Every index is checked before anything is
        written to it.

    Returns
    -------
    grad_input : ndarray
        A new array of ``input_shape`` and ``grad_output``'s dtype, or ``out``.

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

def bind_avg(impl, module=__name__):
    """``(avg_pool2d, avg_pool2d_backward)`` computed by backend module ``impl``
    (its ``avg_forward_planes`` / ``avg_backward_planes``), as :func:`bind`."""

    def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                   divisor_override=None, *, data_format="NCHW", out=None):
        x, g, avg, cl, swapped = prepare_avg_forward(input, kernel_size, stride, padding, ceil_mode,
                                                     count_include_pad, divisor_override, data_format)
        if out is None:
            return to_format(impl.avg_forward_planes(x, g, avg.count_include_pad, avg.divisor, cl), swapped, cl)
        mem_shape = x.shape[:-3] + ((g.OH, g.OW, x.shape[-1]) if cl else (x.shape[-3], g.OH, g.OW))
        return _into_out(out, mem_shape, x.dtype, (("input", input), ("input", x)), swapped, cl,
                         lambda mem: impl.avg_forward_planes(x, g, avg.count_include_pad, avg.divisor, cl, mem))

    def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                            count_include_pad=True, divisor_override=None, *, data_format="NCHW", out=None):
        go, shape, g, avg, cl, swapped = prepare_avg_backward(grad_output, input_shape, kernel_size, stride,
                                                              padding, ceil_mode, count_include_pad,
                                                              divisor_override, data_format)
        if out is None:
            return to_format(impl.avg_backward_planes(go, shape, g, avg.count_include_pad, avg.divisor, cl),
                             swapped, cl)
        return _into_out(out, shape, go.dtype, (("grad_output", grad_output), ("grad_output", go)), swapped, cl,
                         lambda mem: impl.avg_backward_planes(go, shape, g, avg.count_include_pad, avg.divisor,
                                                              cl, mem))

    avg_pool2d.__doc__ = _AVG_POOL2D_DOC
    avg_pool2d_backward.__doc__ = _AVG_POOL2D_BACKWARD_DOC
    for fn in (avg_pool2d, avg_pool2d_backward):
        fn.__module__ = module
        fn.__qualname__ = fn.__name__
    return avg_pool2d, avg_pool2d_backward


_AVG_POOL2D_DOC = """2-D average pooling over (N, C, H, W) or (C, H, W) arrays, as in PyTorch.

    Same arguments, output shape and values as
    ``torch.nn.functional.avg_pool2d`` on the CPU, bit for bit.

    Parameters
    ----------
    input : array_like
        A 4-D (N, C, H, W) or 3-D (C, H, W) array of float16, float32,
        float64 or int64 (PyTorch's CPU kernel takes no other integer type).
    kernel_size, stride, padding, ceil_mode
        As for :func:`max_pool2d` (no dilation). Padding counts as zeros.
    count_include_pad : bool, default True
        Divide by the window's size including its padding (but never the
        part of a ceil-mode window beyond the right/bottom padding); if
        False, by the number of input elements in the window.
    divisor_override : int, optional
        Divide every window's sum by this non-zero int instead.
    data_format : {"NCHW", "NHWC"}, keyword-only, default "NCHW"
        As for :func:`max_pool2d`; 4-D channels-last memory runs PyTorch's
        channels-last kernel, whose results differ from the planes kernel's
        only in the sign of a zero mean (it keeps -0.0).
    out : ndarray, keyword-only
        An array of the result's shape and the input's dtype to write into.

    Returns
    -------
    out : ndarray
        The window means: each window's in-bounds elements summed in
        row-major order from 0 in float32 (float16 input) or the dtype
        (int64 wraps), divided (int64: truncated toward zero) and rounded
        to the dtype.

    Raises
    ------
    TypeError, ValueError
        As for :func:`max_pool2d`, and for a ``divisor_override`` that is
        not an int, is 0 or does not fit in int64.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> cpool.avg_pool2d(x, 2)[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    """

_AVG_POOL2D_BACKWARD_DOC = """Gradient of :func:`avg_pool2d` with respect to its input.

    PyTorch's ``avg_pool2d_backward``: each output's ``grad_output / divisor``
    (in the dtype) is added to every input element of its window, outputs
    in row-major order, rounding after each add in the dtype.

    Parameters
    ----------
    grad_output : array_like
        (N, C, OH, OW) or (C, OH, OW), float16, float32, float64 or int64,
        of the output size the parameters give for ``input_shape``.
    input_shape : tuple of ints
        Shape of the forward input, in ``data_format`` order.
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        The forward's arguments.
    data_format, out : keyword-only
        As for :func:`avg_pool2d`; ``grad_output``'s memory decides the layout.

    Returns
    -------
    grad_input : ndarray
        Of ``input_shape`` and ``grad_output``'s dtype, or ``out``.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> cpool.avg_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), (1, 1, 2, 2), 2)[0, 0]
    array([[0.25, 0.25],
           [0.25, 0.25]], dtype=float32)
    """


def bind_unpool(impl, module=__name__):
    """``(max_unpool2d, max_unpool2d_backward)`` computed by backend module
    ``impl`` (its ``unpool_planes`` / ``unpool_backward_planes``), as :func:`bind`."""

    def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                     data_format="NCHW", out=None):
        x, idx, size, cl, swapped = prepare_unpool(input, indices, kernel_size, stride, padding, output_size,
                                                   data_format)
        if out is None:
            return to_format(impl.unpool_planes(x, idx, size, cl), swapped, cl)
        mem_shape = x.shape[:-3] + ((size + (x.shape[-1],)) if cl else ((x.shape[-3],) + size))
        return _into_out(out, mem_shape, x.dtype,
                         (("input", input), ("input", x), ("indices", indices), ("indices", idx)), swapped, cl,
                         lambda mem: impl.unpool_planes(x, idx, size, cl, mem),
                         lambda: check_unpool_index_range(idx, *size, find=impl.first_outside))

    def max_unpool2d_backward(grad_output, indices, *, data_format="NCHW", out=None):
        go, idx, cl, swapped = prepare_unpool_backward(grad_output, indices, data_format)
        if out is None:
            return to_format(impl.unpool_backward_planes(go, idx, cl), swapped, cl)
        return _into_out(out, idx.shape, go.dtype, (("grad_output", grad_output), ("grad_output", go),
                                                    ("indices", indices), ("indices", idx)), swapped, cl,
                         lambda mem: impl.unpool_backward_planes(go, idx, cl, mem),
                         lambda: check_unpool_index_range(idx, *(go.shape[-3:-1] if cl else go.shape[-2:]),
                                                          find=impl.first_outside))

    max_unpool2d.__doc__ = _MAX_UNPOOL2D_DOC
    max_unpool2d_backward.__doc__ = _MAX_UNPOOL2D_BACKWARD_DOC
    for fn in (max_unpool2d, max_unpool2d_backward):
        fn.__module__ = module
        fn.__qualname__ = fn.__name__
    return max_unpool2d, max_unpool2d_backward


_MAX_UNPOOL2D_DOC = """Partial inverse of :func:`max_pool2d`: each value put back at its index, zeros elsewhere.

    ``torch.nn.functional.max_unpool2d`` on the CPU, bit for bit.

    Parameters
    ----------
    input : array_like
        The pooled values, a 4-D (N, C, H, W) or 3-D (C, H, W) array of
        float16, float32 or float64 (PyTorch's CPU kernel's types).
    indices : array_like of int64
        ``input``'s shape: the position ``h * OW + w`` of each value in its
        (n, c) plane of the output, as :func:`max_pool2d` returns them.
        Every index is checked (0 <= index < OH * OW) before anything is
        written; -1 (a window without an input element) is rejected, as in
        PyTorch.
    kernel_size, stride, padding : int or tuple of two ints
        Those of the pooling being inverted (``stride`` defaults to
        ``kernel_size``); they set the output size
        ``(H - 1) * stride - 2 * padding + kernel_size``.
    output_size : sequence of 2 (or 4: N, C, OH, OW) ints, optional
        The output's height and width instead, each strictly within
        ``stride`` of that default (PyTorch's rule; it resolves the sizes a
        floor-mode pooling maps to one).
    data_format : {"NCHW", "NHWC"}, default "NCHW"
        As for :func:`max_pool2d`; channels-last memory gives a
        channels-last result.
    out : numpy.ndarray, optional
        The result's array (shape, dtype and no overlap with the inputs
        checked before anything is written).

    Returns
    -------
    numpy.ndarray
        (N, C, OH, OW) (or (N, OH, OW, C) with ``"NHWC"``). Where two values
        share an index, the later one (in the input's (h, w) order) is kept:
        PyTorch's result on one thread (with several, its choice varies from
        run to run).

    Raises
    ------
    ValueError, TypeError
        As PyTorch rejects, naming the argument and value.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.array([[[[1, 5], [3, 2]]]], np.float32)
    >>> v, i = cpool.max_pool2d(x, 2, return_indices=True)
    >>> cpool.max_unpool2d(v, i, 2)[0, 0]
    array([[0., 5.],
           [0., 0.]], dtype=float32)
    """

_MAX_UNPOOL2D_BACKWARD_DOC = """Gradient of :func:`max_unpool2d` with respect to its input.

    ``grad_output`` (the unpooled output's gradient, (N, C, OH, OW) or
    (C, OH, OW)) read at each of ``indices`` (shaped as the unpooled input):
    the result has ``indices``' shape. Every index is checked first.
    ``data_format`` and ``out`` are as for :func:`max_unpool2d`.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> g = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    >>> cpool.max_unpool2d_backward(g, np.array([[[[3]]]]))
    array([[[[3.]]]], dtype=float32)
    """


# Imported after bind() is defined: choosing the backend may import
# cpool.slow, which binds its own public functions with it.
from . import _backend  # noqa: E402

max_pool2d, max_pool2d_backward = bind(_backend.IMPL)
#: The backend's index range check (``ops.first_outside`` of :func:`bind_1d`).
first_outside = _backend.IMPL.first_outside

# Average pooling, bound to the same backend.
avg_pool2d, avg_pool2d_backward = bind_avg(_backend.IMPL)
__all__ += ["avg_pool2d", "avg_pool2d_backward"]

# Max unpooling, bound to the same backend.
max_unpool2d, max_unpool2d_backward = bind_unpool(_backend.IMPL)
__all__ += ["max_unpool2d", "max_unpool2d_backward"]

# Adaptive pooling, bound to the same backend.
def bind_adaptive(impl, module=__name__):
    """``(adaptive_avg_pool2d, adaptive_avg_pool2d_backward, adaptive_max_pool2d,
    adaptive_max_pool2d_backward)`` computed by backend module ``impl`` (its
    ``adaptive_avg_forward_planes``, ``adaptive_avg_backward_planes``,
    ``adaptive_max_forward_planes`` and ``backward_planes``), as :func:`bind`."""

    def adaptive_avg_pool2d(input, output_size, *, data_format="NCHW", out=None):
        x, g, cl, swapped = prepare_adaptive_forward(input, output_size, data_format, "adaptive_avg_pool2d")
        if out is None:
            return to_format(impl.adaptive_avg_forward_planes(x, g, cl), swapped, cl)
        return _into_out(out, _adaptive_shape(x, g, cl), x.dtype, (("input", input), ("input", x)), swapped, cl,
                         lambda mem: impl.adaptive_avg_forward_planes(x, g, cl, mem))

    def adaptive_avg_pool2d_backward(grad_output, input_shape, *, data_format="NCHW", out=None):
        go, shape, g, cl, swapped = prepare_adaptive_avg_backward(grad_output, input_shape, data_format)
        if out is None:
            return to_format(impl.adaptive_avg_backward_planes(go, shape, cl), swapped, cl)
        return _into_out(out, shape, go.dtype, (("grad_output", grad_output), ("grad_output", go)), swapped, cl,
                         lambda mem: impl.adaptive_avg_backward_planes(go, shape, cl, mem))

    def adaptive_max_pool2d(input, output_size, return_indices=False, *, data_format="NCHW", out=None):
        if type(return_indices) is not bool and not isinstance(return_indices, np.bool_):
            raise TypeError(f"return_indices must be a bool, got return_indices={return_indices!r} "
                            f"(type {type(return_indices).__name__})")
        with_indices = bool(return_indices)
        x, g, cl, swapped = prepare_adaptive_forward(input, output_size, data_format, "adaptive_max_pool2d")
        if out is None:
            values, idx = impl.adaptive_max_forward_planes(x, g, with_indices, cl)
            values = to_format(values, swapped, cl)
            return (values, to_format(idx, swapped, cl)) if with_indices else values
        return _into_outs(out, _adaptive_shape(x, g, cl), x.dtype, (("input", input), ("input", x)), with_indices,
                          swapped, cl, lambda mv, mi: impl.adaptive_max_forward_planes(x, g, with_indices, cl, mv, mi))

    def adaptive_max_pool2d_backward(grad_output, indices, input_shape, *, data_format="NCHW", out=None):
        go, idx, shape, cl, swapped = prepare_adaptive_max_backward(grad_output, indices, input_shape, data_format)
        if out is None:
            return to_format(impl.backward_planes(go, idx, shape, cl), swapped, cl)
        return _into_out(out, shape, go.dtype, (("grad_output", grad_output), ("indices", indices),
                                                ("grad_output", go), ("indices", idx)), swapped, cl,
                         lambda mem: impl.backward_planes(go, idx, shape, cl, mem),
                         lambda: check_index_range(idx, *((shape[-3], shape[-2]) if cl else shape[-2:]),
                                                   find=impl.first_outside))

    fns = (adaptive_avg_pool2d, adaptive_avg_pool2d_backward, adaptive_max_pool2d, adaptive_max_pool2d_backward)
    docs = (_ADAPTIVE_AVG_POOL2D_DOC, _ADAPTIVE_AVG_POOL2D_BACKWARD_DOC, _ADAPTIVE_MAX_POOL2D_DOC,
            _ADAPTIVE_MAX_POOL2D_BACKWARD_DOC)
    for fn, doc in zip(fns, docs):
        fn.__doc__ = doc
        fn.__module__ = module
        fn.__qualname__ = fn.__name__
    return fns


def _adaptive_shape(x, g, channels_last):
    """The result's memory shape for memory ``x``."""
    return x.shape[:-3] + ((g.OH, g.OW, x.shape[-1]) if channels_last else (x.shape[-3], g.OH, g.OW))


_ADAPTIVE_AVG_POOL2D_DOC = """2-D adaptive average pooling over (N, C, H, W) or (C, H, W) arrays, as in PyTorch.

    Same arguments, output shape and values as
    ``torch.nn.functional.adaptive_avg_pool2d`` on the CPU, bit for bit.
    Output ``(oh, ow)`` averages input rows ``floor(oh * H / OH)`` to
    ``ceil((oh + 1) * H / OH) - 1`` and the columns likewise, so windows
    may differ in size and overlap.

    Parameters
    ----------
    input : array_like
        A 4-D (N, C, H, W) or 3-D (C, H, W) array of float16, float32 or
        float64 (PyTorch's CPU kernels take no integer type). H and W must
        be non-zero; N and C may be 0.
    output_size : int or tuple of two (int or None)
        The output's height and width; None keeps that input dimension, 0
        gives an empty result.
    data_format : {"NCHW", "NHWC"}, keyword-only, default "NCHW"
        As for :func:`max_pool2d`: 4-D channels-last memory runs PyTorch's
        channels-last kernel.
    out : ndarray, keyword-only
        An array of the result's shape and the input's dtype to write into.

    Returns
    -------
    out : ndarray
        The window means, as PyTorch's kernels compute them: the planes
        kernel ((N, C, H, W) memory and all 3-D input) sums each window in
        row-major order from 0 (in float32 for float16) and divides twice,
        ``sum / kh / kw``; the channels-last kernel sums the same way but
        divides once by ``kh * kw`` in its vector lanes (the first
        ``C - C % L`` channels, ``L`` = 16 float16, 8 float32 or 4 float64
        channels: torch's AVX2 vector width) and twice in the others. An
        output of 1x1 is PyTorch's ``input.mean((-1, -2))``: its sum
        reduction's cascade order, then one division by ``H * W``.

    Raises
    ------
    TypeError
        For a non-integer ``output_size`` entry or an unsupported dtype.
    ValueError
        For a negative ``output_size``, a 1-, 2- or 5-D input, or a zero
        height or width.

    Notes
    -----
    Which NaN a window of several NaN payloads keeps is torch's on one
    thread (its channels-last kernel keeps another with more threads: its
    serial and threaded code were compiled with different operand orders);
    for a 1x1 output only where the NaN is, not which payload, is
    reproduced. An input contiguous in neither layout is computed as torch
    computes it made contiguous (torch's 1x1 mean would follow its
    strides). cpool's results never depend on its thread count.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> cpool.adaptive_avg_pool2d(x, 2)[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    >>> cpool.adaptive_avg_pool2d(x, (3, None)).shape
    (1, 1, 3, 4)
    """

_ADAPTIVE_AVG_POOL2D_BACKWARD_DOC = """Gradient of :func:`adaptive_avg_pool2d` with respect to its input.

    PyTorch's ``_adaptive_avg_pool2d_backward``: each output's share
    ``grad_output / kh / kw`` (channels-last vector lanes: ``/ (kh * kw)``),
    in the dtype, is added to every element of its window, outputs in
    row-major order, rounding after each add in the dtype. For a 1x1 output
    it is the gradient torch's autograd gives the mean the forward computes:
    ``grad_output / (H * W)`` (float16: in float32, rounded once) everywhere.

    Parameters
    ----------
    grad_output : array_like
        (N, C, OH, OW) or (C, OH, OW), float16, float32 or float64; its
        height and width are the forward's output size.
    input_shape : tuple of ints
        Shape of the forward input, in ``data_format`` order.
    data_format, out : keyword-only
        As for :func:`adaptive_avg_pool2d`; ``grad_output``'s memory decides the layout.

    Returns
    -------
    grad_input : ndarray
        Of ``input_shape`` and ``grad_output``'s dtype, or ``out``.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> cpool.adaptive_avg_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), (1, 1, 2, 2))[0, 0]
    array([[0.25, 0.25],
           [0.25, 0.25]], dtype=float32)
    """

_ADAPTIVE_MAX_POOL2D_DOC = """2-D adaptive max pooling over (N, C, H, W) or (C, H, W) arrays, as in PyTorch.

    Same arguments, output shape, values and indices as
    ``torch.nn.functional.adaptive_max_pool2d`` on the CPU, bit for bit,
    with the windows of :func:`adaptive_avg_pool2d`.

    Parameters
    ----------
    input : array_like
        A 4-D (N, C, H, W) or 3-D (C, H, W) array of float16, float32 or
        float64, with non-zero C, H and W (N may be 0).
    output_size : int or tuple of two (int or None)
        As for :func:`adaptive_avg_pool2d`.
    return_indices : bool, default False
        Also return the position of each maximum.
    data_format : {"NCHW", "NHWC"}, keyword-only, default "NCHW"
        As for :func:`max_pool2d`.
    out : ndarray, or tuple (values, indices) with ``return_indices``, keyword-only
        As for :func:`max_pool2d`.

    Returns
    -------
    out : ndarray
        Each window's maximum. Ties go to the first in row-major window
        order; a NaN always replaces the running maximum (the last NaN of a
        window is returned, with its index).
    indices : ndarray of int64, only if ``return_indices``
        Flat position ``h * W + w`` of each maximum within its plane.

    Raises
    ------
    TypeError, ValueError
        As for :func:`adaptive_avg_pool2d`, and for a zero channel dimension.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> out, idx = cpool.adaptive_max_pool2d(x, 3, return_indices=True)
    >>> out[0, 0]
    array([[ 5.,  6.,  7.],
           [ 9., 10., 11.],
           [13., 14., 15.]], dtype=float32)
    >>> idx[0, 0, 0]
    array([5, 6, 7])
    """

_ADAPTIVE_MAX_POOL2D_BACKWARD_DOC = """Gradient of :func:`adaptive_max_pool2d` with respect to its input.

    PyTorch's ``adaptive_max_pool2d_backward``: each element of
    ``grad_output`` is added to the input position its index names,
    outputs in row-major order (as :func:`max_pool2d_backward`, whose
    arguments and checks these are).

    Parameters
    ----------
    grad_output : array_like
        (N, C, OH, OW) or (C, OH, OW), float16, float32 or float64.
    indices : array_like of int64
        The indices of ``adaptive_max_pool2d(..., return_indices=True)``.
    input_shape : tuple of ints
        Shape of the forward input, in ``data_format`` order.
    data_format, out : keyword-only
        As for :func:`max_pool2d_backward`.

    Returns
    -------
    grad_input : ndarray
        Of ``input_shape`` and ``grad_output``'s dtype, or ``out``.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> out, idx = cpool.adaptive_max_pool2d(x, 1, return_indices=True)
    >>> cpool.adaptive_max_pool2d_backward(np.ones_like(out), idx, x.shape)[0, 0]
    array([[0., 0., 0., 0.],
           [0., 0., 0., 0.],
           [0., 0., 0., 0.],
           [0., 0., 0., 1.]], dtype=float32)
    """

(adaptive_avg_pool2d, adaptive_avg_pool2d_backward, adaptive_max_pool2d,
 adaptive_max_pool2d_backward) = bind_adaptive(_backend.IMPL)


# ----------------------------------------------------------------- 3-D average pooling
from ._validation import prepare_avg3d_backward, prepare_avg3d_forward  # noqa: E402


def bind_avg3d(impl, module=__name__):
    """``(avg_pool3d, avg_pool3d_backward)`` computed by backend module ``impl``
    (its ``avg3d_forward_planes`` / ``avg3d_backward_planes``), as :func:`bind`."""

    def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                   divisor_override=None, *, data_format="NCDHW", out=None):
        x, g, avg, cl, swapped = prepare_avg3d_forward(input, kernel_size, stride, padding, ceil_mode,
                                                       count_include_pad, divisor_override, data_format)
        if out is None:
            return to_format(impl.avg3d_forward_planes(x, g, avg.count_include_pad, avg.divisor, cl), swapped, cl,
                             3)
        mem_shape = x.shape[:-4] + ((g.OD, g.OH, g.OW, x.shape[-1]) if cl else (x.shape[-4], g.OD, g.OH, g.OW))
        return _into_out(out, mem_shape, x.dtype, (("input", input), ("input", x)), swapped, cl,
                         lambda mem: impl.avg3d_forward_planes(x, g, avg.count_include_pad, avg.divisor, cl, mem),
                         spatial=3)

    def avg_pool3d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                            count_include_pad=True, divisor_override=None, *, data_format="NCDHW", out=None):
        go, shape, g, avg, cl, swapped = prepare_avg3d_backward(grad_output, input_shape, kernel_size, stride,
                                                                padding, ceil_mode, count_include_pad,
                                                                divisor_override, data_format)
        if out is None:
            return to_format(impl.avg3d_backward_planes(go, shape, g, avg.count_include_pad, avg.divisor, cl),
                             swapped, cl, 3)
        return _into_out(out, shape, go.dtype, (("grad_output", grad_output), ("grad_output", go)), swapped, cl,
                         lambda mem: impl.avg3d_backward_planes(go, shape, g, avg.count_include_pad, avg.divisor,
                                                                cl, mem),
                         spatial=3)

    avg_pool3d.__doc__ = _AVG_POOL3D_DOC
    avg_pool3d_backward.__doc__ = _AVG_POOL3D_BACKWARD_DOC
    for fn in (avg_pool3d, avg_pool3d_backward):
        fn.__module__ = module
        fn.__qualname__ = fn.__name__
    return avg_pool3d, avg_pool3d_backward


_AVG_POOL3D_DOC = """3-D average pooling over (N, C, D, H, W) or (C, D, H, W) arrays, as in PyTorch.

    Same arguments, output shape and values as
    ``torch.nn.functional.avg_pool3d`` on the CPU, bit for bit.

    Parameters
    ----------
    input : array_like
        A 5-D (N, C, D, H, W) or 4-D (C, D, H, W) array of float32, float64
        or int64 (PyTorch's CPU kernel takes no other dtype, float16
        included). Its depth, height and width must each be at least the
        kernel's (PyTorch's rule, whatever the padding).
    kernel_size : int or tuple of three ints
        The window's (depth, height, width).
    stride : int or tuple of three ints, optional
        Defaults to ``kernel_size``.
    padding : int or tuple of three ints, default 0
        Implicit zeros on both sides of each axis, at most half the kernel.
    ceil_mode : bool, default False
        Round the output size up (a last window may start in the padding
        but not beyond it).
    count_include_pad : bool, default True
        Divide by the window's size including its padding (but never the
        part of a ceil-mode window beyond the padding); if False, by the
        number of input elements in the window.
    divisor_override : int, optional
        Divide every window's sum by this non-zero int instead.
    data_format : {"NCDHW", "NDHWC"}, keyword-only, default "NCDHW"
        Where the channel axis is. An (N, C, D, H, W) array whose memory is
        channels-last-3d (PyTorch's ``channels_last_3d``) is pooled without
        a copy and the result has that memory layout too (and likewise an
        NDHWC-format array whose memory is NCDHW). PyTorch runs the same
        loop for both memory formats, so the values do not depend on it.
    out : ndarray, keyword-only
        An array of the result's shape and the input's dtype to write into.

    Returns
    -------
    out : ndarray
        The window means: each window's in-bounds elements summed in
        (depth, row, column) order from 0 in the dtype (int64 wraps; of two
        NaNs the running sum's stays), divided (int64: truncated toward
        zero), stored as ``0 + mean`` (a -0.0 mean is +0.0).

    Raises
    ------
    TypeError, ValueError
        For an unsupported dtype or ``ndim``, a bad kernel, stride,
        padding, ``ceil_mode`` or ``count_include_pad``, an input smaller
        than the kernel, a ``divisor_override`` that is not an int, is 0 or
        does not fit in int64, and a bad ``out``; before any work.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.arange(32, dtype=np.float32).reshape(1, 1, 2, 4, 4)
    >>> cpool.avg_pool3d(x, 2)[0, 0]
    array([[[10.5, 12.5],
            [18.5, 20.5]]], dtype=float32)
    >>> cpool.avg_pool3d(x, (1, 2, 2), divisor_override=2)[0, 0, 1]
    array([[37., 41.],
           [53., 57.]], dtype=float32)
    """

_AVG_POOL3D_BACKWARD_DOC = """Gradient of :func:`avg_pool3d` with respect to its input.

    PyTorch's ``avg_pool3d_backward``: each output's ``grad_output / divisor``
    (in the dtype; int64 truncates) is added to every input element of its
    window, outputs in row-major order, rounding after each add in the
    dtype (a cell already NaN keeps its NaN).

    Parameters
    ----------
    grad_output : array_like
        (N, C, OD, OH, OW) or (C, OD, OH, OW), float32, float64 or int64, of
        the output size the parameters give for ``input_shape``.
    input_shape : tuple of ints
        Shape of the forward input, in ``data_format`` order.
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        The forward's arguments.
    data_format, out : keyword-only
        As for :func:`avg_pool3d`; ``grad_output``'s memory decides the
        layout of the result (PyTorch returns a contiguous gradient; the
        values are the same).

    Returns
    -------
    grad_input : ndarray
        Of ``input_shape`` and ``grad_output``'s dtype, or ``out``.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> cpool.avg_pool3d_backward(np.ones((1, 1, 1, 1, 1), np.float32), (1, 1, 2, 2, 2), 2)[0, 0]
    array([[[0.125, 0.125],
            [0.125, 0.125]],
    <BLANKLINE>
           [[0.125, 0.125],
            [0.125, 0.125]]], dtype=float32)
    """

avg_pool3d, avg_pool3d_backward = bind_avg3d(_backend.IMPL)
__all__ += ["avg_pool3d", "avg_pool3d_backward"]


# 3-D max pooling, bound to the same backend.
from ._validation import check_index_range3d, prepare_max3d_backward, prepare_max3d_forward, volume_dims  # noqa: E402


def bind_max3d(impl, module=__name__):
    """``(max_pool3d, max_pool3d_backward)`` computed by backend module
    ``impl`` (its ``max3d_forward_planes`` / ``max3d_backward_planes``), as
    :func:`bind`."""

    def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False,
                   *, data_format="NCDHW", out=None):
        x, g, with_indices, cl, swapped, nodepth_from = prepare_max3d_forward(
            input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, data_format)
        if out is None:
            values, idx = impl.max3d_forward_planes(x, g, with_indices, cl, None, None, nodepth_from)
            values = to_format(values, swapped, cl, 3)
            return (values, to_format(idx, swapped, cl, 3)) if with_indices else values
        mem_shape = x.shape[:-4] + ((g.OD, g.OH, g.OW, x.shape[-1]) if cl else (x.shape[-4], g.OD, g.OH, g.OW))
        return _into_outs(out, mem_shape, x.dtype, (("input", input), ("input", x)), with_indices, swapped, cl,
                          lambda mv, mi: impl.max3d_forward_planes(x, g, with_indices, cl, mv, mi, nodepth_from),
                          spatial=3)

    def max_pool3d_backward(grad_output, indices, input_shape, *, data_format="NCDHW", out=None):
        go, idx, shape, cl, swapped = prepare_max3d_backward(grad_output, indices, input_shape, data_format)
        if out is None:
            return to_format(impl.max3d_backward_planes(go, idx, shape, cl), swapped, cl, 3)
        # Nothing may be written on an error, and the kernels find a bad
        # index only as they reach it: check them all first.
        return _into_out(out, shape, go.dtype, (("grad_output", grad_output), ("indices", indices),
                                                ("grad_output", go), ("indices", idx)), swapped, cl,
                         lambda mem: impl.max3d_backward_planes(go, idx, shape, cl, mem),
                         lambda: check_index_range3d(idx, *volume_dims(shape, cl), find=impl.first_outside), spatial=3)

    max_pool3d.__doc__ = _MAX_POOL3D_DOC
    max_pool3d_backward.__doc__ = _MAX_POOL3D_BACKWARD_DOC
    for fn in (max_pool3d, max_pool3d_backward):
        fn.__module__ = module
        fn.__qualname__ = fn.__name__
    return max_pool3d, max_pool3d_backward


_MAX_POOL3D_DOC = """3-D max pooling over (N, C, D, H, W) or (C, D, H, W) arrays, as in PyTorch.

    Same arguments, output shape, values and indices as
    ``torch.nn.functional.max_pool3d`` on the CPU, bit for bit.

    Parameters
    ----------
    input : array_like
        A 5-D (N, C, D, H, W) or 4-D (C, D, H, W) array of float16,
        float32, float64, uint8, int8, int16, int32 or int64. Any memory
        layout is accepted; the array is never modified. N may be 0.
    kernel_size : int or tuple of three ints
        Window depth, height and width.
    stride : int or tuple of three ints, optional
        Step between windows. Defaults to ``kernel_size``.
    padding : int or tuple of three ints, default 0
        Implicit padding on both sides; it acts as -inf and is never
        selected. At most half the kernel size.
    dilation : int or tuple of three ints, default 1
        Spacing between the taps of a window.
    ceil_mode : bool, default False
        Round the output size up instead of down; the last window must still
        start inside the input or the leading padding.
    return_indices : bool, default False
        Also return the position of each maximum.
    data_format : {"NCDHW", "NDHWC"}, keyword-only, default "NCDHW"
        Where the channel axis is: "NDHWC" takes (N, D, H, W, C) or
        (D, H, W, C) input and returns results in that order. Memory laid
        out the other way needs no copy: an "NCDHW" array whose memory is
        channels-last (``a.transpose(0, 4, 1, 2, 3)`` of a C-contiguous
        (N, D, H, W, C) array ``a``, or a torch ``channels_last_3d``
        tensor's) runs the channels-last kernel, and the results come back
        in that memory layout, as torch returns them.
    out : ndarray, or tuple (values, indices) with ``return_indices``, keyword-only
        Arrays to write the results into (the result's shape in
        ``data_format`` order, the input's dtype and int64), not sharing
        memory with the input. Returned; nothing is written on an error.

    Returns
    -------
    out : ndarray
        The pooled array, of the input's dtype, shaped (N, C, OD, OH, OW)
        or (C, OD, OH, OW) (channels last for "NDHWC"), each output size as
        for :func:`max_pool2d`.
    indices : ndarray of int64, only if ``return_indices``
        Flat position ``(d * H + h) * W + w`` of each maximum within its
        own (n, c) volume, as in PyTorch. A window that holds no input
        element (possible only with dilation) gives -inf and index -1.

    Raises
    ------
    TypeError
        For arguments of the wrong type and unsupported dtypes.
    ValueError
        For values PyTorch rejects: an input that is not 4- or 5-D, a zero
        channel, depth, height or width, non-positive
        kernel/stride/dilation, negative padding or padding above half the
        kernel, or an empty output.

    Notes
    -----
    Ties go to the first maximum in (d, h, w) window order. A NaN always
    replaces the running maximum, so the last NaN of a window is returned,
    with its index.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.arange(64, dtype=np.float32).reshape(1, 1, 4, 4, 4)
    >>> out, idx = cpool.max_pool3d(x, 2, return_indices=True)
    >>> out[0, 0]
    array([[[21., 23.],
            [29., 31.]],
    <BLANKLINE>
           [[53., 55.],
            [61., 63.]]], dtype=float32)
    >>> idx[0, 0, 1]
    array([[53, 55],
           [61, 63]])
    """

_MAX_POOL3D_BACKWARD_DOC = """Gradient of :func:`max_pool3d` with respect to its input.

    Equivalent to PyTorch's ``max_pool3d_with_indices_backward``: each
    element of ``grad_output`` is added to the input position its index
    names; overlapping windows accumulate in output (d, h, w) order, rounding
    after every add in the dtype (float16 included), as PyTorch does.

    Parameters
    ----------
    grad_output : array_like
        Gradient with respect to the pooled output, (N, C, OD, OH, OW) or
        (C, OD, OH, OW), float16, float32 or float64.
    indices : array_like of int64
        The indices returned by ``max_pool3d(..., return_indices=True)``,
        of the same shape as ``grad_output``.
    input_shape : tuple of ints
        Shape of the forward input, in ``data_format`` order.
    data_format : {"NCDHW", "NDHWC"}, keyword-only, default "NCDHW"
        As for :func:`max_pool3d`. ``grad_output``'s memory layout decides
        the kernel's and the result's; ``indices`` laid out otherwise are
        converted.
    out : ndarray, keyword-only
        An array of ``input_shape`` and ``grad_output``'s dtype to write the
        gradient into; returned. Every index is checked before anything is
        written to it.

    Returns
    -------
    grad_input : ndarray
        A new array of ``input_shape`` and ``grad_output``'s dtype, or ``out``.

    Raises
    ------
    TypeError
        If ``grad_output`` is not floating point or ``indices`` is not int64.
    ValueError
        If the shapes disagree, or an index lies outside ``[-1, D*H*W)``
        (-1 marks a window with no input element and is skipped).

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.arange(8, dtype=np.float32).reshape(1, 1, 2, 2, 2)
    >>> out, idx = cpool.max_pool3d(x, 2, return_indices=True)
    >>> cpool.max_pool3d_backward(np.ones_like(out), idx, x.shape)[0, 0, 1]
    array([[0., 0.],
           [0., 1.]], dtype=float32)
    """

max_pool3d, max_pool3d_backward = bind_max3d(_backend.IMPL)
__all__ += ["max_pool3d", "max_pool3d_backward"]
__all__ += ["adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d",
            "adaptive_max_pool2d_backward"]


# --------------------------------------------------------------------------- 1-D pooling
# PyTorch computes every 1-D pooling as its 2-D op on a one-row plane
# (max_pool1d_with_indices, avg_pool1d and the adaptive ones on
# ``unsqueeze(-2)``, max_unpool1d on ``unsqueeze(-1)``: the same flat
# indices), and torch's values-only max_pool1d kernel (MaxPooling.cpp) keeps
# the 2-D kernel's values: the first of equal maxima (so -0.0 before 0.0 is
# kept), the last NaN of a window. So the 1-D functions check their
# arguments as 1-D ones, then run the backend's 2-D functions on views
# (N, C, 1, L) / (N, 1, L, C) of the same memory: channels-last memory stays
# channels-last, and the results are views of the 2-D results.

def bind_1d(ops, module=__name__):
    """The 1-D public functions computed by the 2-D public functions of
    ``ops`` (a module: ``max_pool2d``, ``avg_pool2d``, ... bound to one
    backend, and that backend's ``first_outside``). Returns a dict name -> function."""
    from ._validation import (
        ADAPTIVE_DTYPES,
        AVG_DTYPES,
        BACKWARD_DTYPES,
        DATA_FORMATS_1D,
        FORWARD_DTYPES,
        UNPOOL_DTYPES,
        _all_plain,
        _as_bool,
        as_input_array,
        as_plane,
        check_data_format,
        check_index_range_1d,
        check_indices_1d,
        check_input_1d,
        check_nonempty_1d,
        from_plane,
        input_shape_1d,
        ncl_order,
        parse_output_size_1d,
        parse_pool1d_args,
        parse_unpool1d_args,
        plane_shape,
        pool1d_length,
        shape_1d,
        unpool1d_length,
    )

    float_dtypes = frozenset(d for d in FORWARD_DTYPES if d.kind == "f")

    def fmt(data_format):
        nwc = check_data_format(data_format, DATA_FORMATS_1D)
        return nwc, ("NHWC" if nwc else "NCHW")

    def check_outs(out, nwc, shape, dtype, with_indices, sources):
        """``out=`` in 1-D terms: returns the 2-D views to hand on (one, or a pair)."""
        values, indices = _check_outs(out, shape, dtype, sources, with_indices)
        return (as_plane(values, nwc), as_plane(indices, nwc)) if with_indices else as_plane(values, nwc)

    def result(res, out, with_indices, nwc):
        if out is not None:
            return out
        if with_indices:
            return from_plane(res[0], nwc), from_plane(res[1], nwc)
        return from_plane(res, nwc)

    # Calls already checked, keyed by everything the checks read, for a plain
    # ndarray and exact ints / tuples of ints / bools (as prepare_forward's
    # cache): a layer called every batch pays for the 1-D checks once. Only
    # successes are stored; the value is the 2-D call's arguments.
    checked = {}

    def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False,
                   *, data_format="NCW", out=None):
        key = None
        if (out is None and type(input) is np.ndarray and type(ceil_mode) is bool and type(return_indices) is bool
                and type(data_format) is str
                and _all_plain(kernel_size, 1 if stride is None else stride, padding, dilation)):
            key = (input.shape, input.dtype, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                   data_format)
            hit = checked.get(key)
            if hit is not None:
                nwc, args2, fmt2 = hit
                return result(ops.max_pool2d(as_plane(input, nwc), *args2, data_format=fmt2), None, return_indices,
                              nwc)
        a = parse_pool1d_args(kernel_size, stride, padding, dilation, ceil_mode)
        with_indices = _as_bool(return_indices, "return_indices")
        nwc, fmt2 = fmt(data_format)
        # torch's values-only max_pool1d kernel has no integer types; its
        # indices path (max_pool2d_with_indices) has them all.
        x = check_input_1d(input, "input", FORWARD_DTYPES if with_indices else float_dtypes, "max_pool1d", nwc,
                           None if with_indices else "max_pool1d without return_indices")
        check_nonempty_1d(x.shape, "input", nwc, "max_pool1d")
        OL = pool1d_length(x.shape, a, "input", nwc)
        out2 = None
        if out is not None:
            out2 = check_outs(out, nwc, shape_1d(x.shape, OL, nwc), x.dtype, with_indices,
                              (("input", input), ("input", x)))
        args2 = ((1, a.kernel), (1, a.stride), (0, a.padding), (1, a.dilation), a.ceil_mode, with_indices)
        res = ops.max_pool2d(as_plane(x, nwc), *args2, data_format=fmt2, out=out2)
        if key is not None:
            if len(checked) >= 256:
                checked.clear()
            checked[key] = (nwc, args2, fmt2)
        return result(res, out, with_indices, nwc)

    def max_pool1d_backward(grad_output, indices, input_shape, *, data_format="NCW", out=None):
        op = "max_pool1d_backward"
        nwc, fmt2 = fmt(data_format)
        go = check_input_1d(grad_output, "grad_output", BACKWARD_DTYPES, op, nwc)
        idx = check_indices_1d(indices, go, "grad_output", op)
        shape = input_shape_1d(input_shape, go, nwc, op)
        out2 = None
        if out is not None:
            out2 = check_outs(out, nwc, shape, go.dtype, False, (("grad_output", grad_output), ("indices", indices),
                                                             ("grad_output", go), ("indices", idx)))
        check_index_range_1d(idx, ncl_order(shape, nwc)[-1], -1, "input_shape's length", ops.first_outside)
        res = ops.max_pool2d_backward(as_plane(go, nwc), as_plane(idx, nwc), plane_shape(shape, nwc),
                                      data_format=fmt2, out=out2)
        return result(res, out, False, nwc)

    def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, *,
                   data_format="NCW", out=None):
        a = parse_pool1d_args(kernel_size, stride, padding, 1, ceil_mode)
        include = _as_bool(count_include_pad, "count_include_pad")
        nwc, fmt2 = fmt(data_format)
        x = check_input_1d(input, "input", AVG_DTYPES, "avg_pool1d", nwc)
        check_nonempty_1d(x.shape, "input", nwc, "avg_pool1d")
        OL = pool1d_length(x.shape, a, "input", nwc)
        out2 = None
        if out is not None:
            out2 = check_outs(out, nwc, shape_1d(x.shape, OL, nwc), x.dtype, False, (("input", input), ("input", x)))
        res = ops.avg_pool2d(as_plane(x, nwc), (1, a.kernel), (1, a.stride), (0, a.padding), a.ceil_mode, include,
                             data_format=fmt2, out=out2)
        return result(res, out, False, nwc)

    def avg_pool1d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                            count_include_pad=True, *, data_format="NCW", out=None):
        op = "avg_pool1d_backward"
        a = parse_pool1d_args(kernel_size, stride, padding, 1, ceil_mode)
        include = _as_bool(count_include_pad, "count_include_pad")
        nwc, fmt2 = fmt(data_format)
        go = check_input_1d(grad_output, "grad_output", AVG_DTYPES, op, nwc)
        shape = input_shape_1d(input_shape, go, nwc, op)
        OL = pool1d_length(shape, a, "input_shape", nwc)
        if ncl_order(go.shape, nwc)[-1] != OL:
            raise ValueError(f"{op}: grad_output must have the output length of input_shape={shape!r} ({OL}), "
                             f"got grad_output.shape={go.shape!r}")
        out2 = None
        if out is not None:
            out2 = check_outs(out, nwc, shape, go.dtype, False, (("grad_output", grad_output), ("grad_output", go)))
        res = ops.avg_pool2d_backward(as_plane(go, nwc), plane_shape(shape, nwc), (1, a.kernel), (1, a.stride),
                                      (0, a.padding), a.ceil_mode, include, data_format=fmt2, out=out2)
        return result(res, out, False, nwc)

    def adaptive_avg_pool1d(input, output_size, *, data_format="NCW", out=None):
        size = parse_output_size_1d(output_size)
        nwc, fmt2 = fmt(data_format)
        x = check_input_1d(input, "input", ADAPTIVE_DTYPES, "adaptive_avg_pool1d", nwc)
        check_nonempty_1d(x.shape, "input", nwc, "adaptive_avg_pool1d", channels=False)
        out2 = None
        if out is not None:
            out2 = check_outs(out, nwc, shape_1d(x.shape, size, nwc), x.dtype, False, (("input", input), ("input", x)))
        res = ops.adaptive_avg_pool2d(as_plane(x, nwc), (1, size), data_format=fmt2, out=out2)
        return result(res, out, False, nwc)

    def adaptive_avg_pool1d_backward(grad_output, input_shape, *, data_format="NCW", out=None):
        op = "adaptive_avg_pool1d_backward"
        nwc, fmt2 = fmt(data_format)
        go = check_input_1d(grad_output, "grad_output", ADAPTIVE_DTYPES, op, nwc)
        shape = input_shape_1d(input_shape, go, nwc, op, channels=False)
        out2 = None
        if out is not None:
            out2 = check_outs(out, nwc, shape, go.dtype, False, (("grad_output", grad_output), ("grad_output", go)))
        res = ops.adaptive_avg_pool2d_backward(as_plane(go, nwc), plane_shape(shape, nwc), data_format=fmt2,
                                               out=out2)
        return result(res, out, False, nwc)

    def adaptive_max_pool1d(input, output_size, return_indices=False, *, data_format="NCW", out=None):
        size = parse_output_size_1d(output_size)
        with_indices = _as_bool(return_indices, "return_indices")
        nwc, fmt2 = fmt(data_format)
        x = check_input_1d(input, "input", ADAPTIVE_DTYPES, "adaptive_max_pool1d", nwc)
        # PyTorch checks the dimensions after the first: the channels of a
        # batch, the length only of a (C, L) input.
        check_nonempty_1d(x.shape, "input", nwc, "adaptive_max_pool1d", channels=x.ndim == 3)
        shape = shape_1d(x.shape, size, nwc)
        out2 = None
        if out is not None:
            out2 = check_outs(out, nwc, shape, x.dtype, with_indices, (("input", input), ("input", x)))
        if x.size == 0:  # no plane at all (a (0, L) input, or an empty batch): nothing to compute
            values, idx = np.empty(shape, x.dtype), np.empty(shape, _INT64)
            return out if out is not None else ((values, idx) if with_indices else values)
        res = ops.adaptive_max_pool2d(as_plane(x, nwc), (1, size), with_indices, data_format=fmt2, out=out2)
        return result(res, out, with_indices, nwc)

    def adaptive_max_pool1d_backward(grad_output, indices, input_shape, *, data_format="NCW", out=None):
        op = "adaptive_max_pool1d_backward"
        nwc, fmt2 = fmt(data_format)
        go = check_input_1d(grad_output, "grad_output", ADAPTIVE_DTYPES, op, nwc)
        idx = check_indices_1d(indices, go, "grad_output", op)
        shape = input_shape_1d(input_shape, go, nwc, op)
        out2 = None
        if out is not None:
            out2 = check_outs(out, nwc, shape, go.dtype, False, (("grad_output", grad_output), ("indices", indices),
                                                             ("grad_output", go), ("indices", idx)))
        check_index_range_1d(idx, ncl_order(shape, nwc)[-1], 0, "input_shape's length", ops.first_outside)
        res = ops.adaptive_max_pool2d_backward(as_plane(go, nwc), as_plane(idx, nwc), plane_shape(shape, nwc),
                                               data_format=fmt2, out=out2)
        return result(res, out, False, nwc)

    def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None, *, data_format="NCW",
                     out=None):
        op = "max_unpool1d"
        k, s, p = parse_unpool1d_args(kernel_size, stride, padding)
        nwc, fmt2 = fmt(data_format)
        x = check_input_1d(input, "input", UNPOOL_DTYPES, op, nwc)
        check_nonempty_1d(x.shape, "input", nwc, op)
        idx = check_indices_1d(indices, x, "input", op)
        OL = unpool1d_length(ncl_order(x.shape, nwc)[-1], k, s, p, output_size)
        shape = shape_1d(x.shape, OL, nwc)
        out2 = None
        if out is not None:
            out2 = check_outs(out, nwc, shape, x.dtype, False, (("input", input), ("input", x), ("indices", indices),
                                                            ("indices", idx)))
        check_index_range_1d(idx, OL, 0, "the unpooled output", ops.first_outside)
        res = ops.max_unpool2d(as_plane(x, nwc), as_plane(idx, nwc), (1, k), (1, s), (0, p), (1, OL),
                               data_format=fmt2, out=out2)
        return result(res, out, False, nwc)

    def max_unpool1d_backward(grad_output, indices, *, data_format="NCW", out=None):
        op = "max_unpool1d_backward"
        nwc, fmt2 = fmt(data_format)
        go = check_input_1d(grad_output, "grad_output", UNPOOL_DTYPES, op, nwc)
        idx = as_input_array(indices, "indices")
        if idx.dtype.kind != "i" or idx.dtype.itemsize != 8:
            raise TypeError(f"{op}: indices must be an int64 array, got indices.dtype={idx.dtype!s}")
        if idx.ndim != go.ndim or ncl_order(idx.shape, nwc)[:-1] != ncl_order(go.shape, nwc)[:-1]:
            raise ValueError(f"{op}: indices must have grad_output's batch and channel dimensions, got "
                             f"indices.shape={idx.shape!r} and grad_output.shape={go.shape!r}")
        out2 = None
        if out is not None:
            out2 = check_outs(out, nwc, idx.shape, go.dtype, False, (("grad_output", grad_output), ("grad_output", go),
                                                                 ("indices", indices), ("indices", idx)))
        check_index_range_1d(idx, ncl_order(go.shape, nwc)[-1], 0, "grad_output", ops.first_outside)
        res = ops.max_unpool2d_backward(as_plane(go, nwc), as_plane(idx, nwc), data_format=fmt2, out=out2)
        return result(res, out, False, nwc)

    fns = {f.__name__: f for f in (max_pool1d, max_pool1d_backward, avg_pool1d, avg_pool1d_backward,
                                   adaptive_avg_pool1d, adaptive_avg_pool1d_backward, adaptive_max_pool1d,
                                   adaptive_max_pool1d_backward, max_unpool1d, max_unpool1d_backward)}
    for name, fn in fns.items():
        fn.__doc__ = _DOCS_1D[name]
        fn.__module__ = module
        fn.__qualname__ = name
    return fns



_DATA_FORMAT_1D_DOC = """data_format : {"NCW", "NWC"}, keyword-only, default "NCW"
        Where the channel axis is: "NWC" takes (N, L, C) or (L, C) arrays
        and returns results in that order. An "NCW" array whose memory is
        channels-last (``a.transpose(0, 2, 1)`` of a C-contiguous (N, L, C)
        array ``a``) runs without a copy, and its results come back in that
        memory layout."""

_DOCS_1D = {
    "max_pool1d": f"""1-D max pooling over (N, C, L) or (C, L) arrays, as in PyTorch.

    Same arguments, output shape, values and indices as
    ``torch.nn.functional.max_pool1d`` on the CPU, bit for bit: the 2-D
    pooling :func:`max_pool2d` of a one-row plane.

    Parameters
    ----------
    input : array_like
        (N, C, L) or (C, L), float16, float32 or float64; with
        ``return_indices`` also uint8, int8, int16, int32 or int64 (PyTorch's
        values-only ``max_pool1d`` kernel takes no integer type). N may be 0.
    kernel_size, stride, padding, dilation : int or tuple of one int
        Window length, step (default ``kernel_size``), implicit -inf padding
        on both sides (at most half the kernel) and tap spacing.
    ceil_mode : bool, default False
        Round the output length up (the last window must start inside the
        input or the left padding).
    return_indices : bool, default False
        Also return the position of each maximum.
    {_DATA_FORMAT_1D_DOC}
    out : ndarray, or tuple (values, indices) with ``return_indices``, keyword-only
        Arrays to write the results into (checked before anything is written).

    Returns
    -------
    out : ndarray
        (N, C, OL) (or (N, OL, C) with "NWC"), of the input's dtype, with
        ``OL = floor((L + 2*p - d*(k-1) - 1 + (s-1 if ceil_mode else 0)) / s) + 1``.
    indices : ndarray of int64, only if ``return_indices``
        Position ``l`` of each maximum within its (n, c) row; -1 for a window
        without an input element (possible only with dilation).

    Raises
    ------
    TypeError, ValueError
        For the arguments PyTorch rejects, naming the argument and value.

    Notes
    -----
    Ties go to the first maximum; a NaN always replaces the running maximum.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.array([[[1, 3, 2, 5, 4]]], np.float32)
    >>> cpool.max_pool1d(x, 2)
    array([[[3., 5.]]], dtype=float32)
    >>> cpool.max_pool1d(x, 3, stride=1, padding=1, return_indices=True)[1]
    array([[[1, 1, 3, 3, 3]]])
    """,
    "max_pool1d_backward": f"""Gradient of :func:`max_pool1d` with respect to its input.

    PyTorch's max pooling backward: each element of ``grad_output`` is added
    at the input position its index names, outputs in order.

    Parameters
    ----------
    grad_output : array_like
        (N, C, OL) or (C, OL), float16, float32 or float64.
    indices : array_like of int64
        ``max_pool1d(..., return_indices=True)``'s indices, of
        ``grad_output``'s shape; each in ``[-1, L)`` (-1 is skipped),
        checked before anything is written.
    input_shape : tuple of ints
        The forward input's shape, in ``data_format`` order.
    {_DATA_FORMAT_1D_DOC}
    out : ndarray, keyword-only
        An array of ``input_shape`` and ``grad_output``'s dtype to write into.

    Returns
    -------
    grad_input : ndarray
        Of ``input_shape`` and ``grad_output``'s dtype, or ``out``.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.array([[[1, 3, 2, 5]]], np.float32)
    >>> v, i = cpool.max_pool1d(x, 2, return_indices=True)
    >>> cpool.max_pool1d_backward(np.ones_like(v), i, x.shape)
    array([[[0., 1., 0., 1.]]], dtype=float32)
    """,
    "avg_pool1d": f"""1-D average pooling over (N, C, L) or (C, L) arrays, as in PyTorch.

    Same arguments, output shape and values as
    ``torch.nn.functional.avg_pool1d`` on the CPU, bit for bit: the 2-D
    pooling :func:`avg_pool2d` of a one-row plane (PyTorch's kernels,
    including its channels-last kernel for channels-last memory).

    Parameters
    ----------
    input : array_like
        (N, C, L) or (C, L), float16, float32, float64 or int64.
    kernel_size, stride, padding : int or tuple of one int
        As for :func:`max_pool1d` (no dilation); padding counts as zeros.
    ceil_mode : bool, default False
        As for :func:`max_pool1d`.
    count_include_pad : bool, default True
        Divide by the window's length including its padding.
    {_DATA_FORMAT_1D_DOC}
    out : ndarray, keyword-only
        An array of the result's shape and the input's dtype to write into.

    Returns
    -------
    out : ndarray
        (N, C, OL) (or (N, OL, C) with "NWC"), of the input's dtype.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.array([[[1, 3, 2, 5, 4]]], np.float32)
    >>> cpool.avg_pool1d(x, 2)
    array([[[2. , 3.5]]], dtype=float32)
    """,
    "avg_pool1d_backward": f"""Gradient of :func:`avg_pool1d` with respect to its input.

    PyTorch's ``avg_pool2d_backward`` of a one-row plane.

    Parameters
    ----------
    grad_output : array_like
        (N, C, OL) or (C, OL): OL must be the output length the arguments
        give for ``input_shape``.
    input_shape : tuple of ints
        The forward input's shape, in ``data_format`` order.
    kernel_size, stride, padding, ceil_mode, count_include_pad
        Those of the forward call.
    {_DATA_FORMAT_1D_DOC}
    out : ndarray, keyword-only
        An array of ``input_shape`` and ``grad_output``'s dtype to write into.

    Returns
    -------
    grad_input : ndarray
        Of ``input_shape`` and ``grad_output``'s dtype, or ``out``.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> cpool.avg_pool1d_backward(np.ones((1, 1, 2), np.float32), (1, 1, 4), 2)
    array([[[0.5, 0.5, 0.5, 0.5]]], dtype=float32)
    """,
    "adaptive_avg_pool1d": f"""1-D adaptive average pooling over (N, C, L) or (C, L) arrays, as in PyTorch.

    Same output and values as ``torch.nn.functional.adaptive_avg_pool1d``
    on the CPU: output ``o`` averages input elements ``floor(o * L / OL)``
    to ``ceil((o + 1) * L / OL) - 1`` (:func:`adaptive_avg_pool2d` of a
    one-row plane).

    Parameters
    ----------
    input : array_like
        (N, C, L) or (C, L), float16, float32 or float64; L non-zero.
    output_size : int or tuple of one int
        The output length OL (0 gives an empty result).
    {_DATA_FORMAT_1D_DOC}
    out : ndarray, keyword-only
        An array of the result's shape and the input's dtype to write into.

    Returns
    -------
    out : ndarray
        (N, C, OL) (or (N, OL, C) with "NWC").

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.arange(6, dtype=np.float32).reshape(1, 1, 6)
    >>> cpool.adaptive_avg_pool1d(x, 4)
    array([[[0.5, 1.5, 3.5, 4.5]]], dtype=float32)
    """,
    "adaptive_avg_pool1d_backward": f"""Gradient of :func:`adaptive_avg_pool1d` with respect to its input.

    Parameters
    ----------
    grad_output : array_like
        (N, C, OL) or (C, OL); OL is the forward's output size.
    input_shape : tuple of ints
        The forward input's shape, in ``data_format`` order.
    {_DATA_FORMAT_1D_DOC}
    out : ndarray, keyword-only
        An array of ``input_shape`` and ``grad_output``'s dtype to write into.

    Returns
    -------
    grad_input : ndarray
        Of ``input_shape`` and ``grad_output``'s dtype, or ``out``.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> cpool.adaptive_avg_pool1d_backward(np.ones((1, 1, 2), np.float32), (1, 1, 4))
    array([[[0.5, 0.5, 0.5, 0.5]]], dtype=float32)
    """,
    "adaptive_max_pool1d": f"""1-D adaptive max pooling over (N, C, L) or (C, L) arrays, as in PyTorch.

    Same output, values and indices as
    ``torch.nn.functional.adaptive_max_pool1d`` on the CPU, with the
    windows of :func:`adaptive_avg_pool1d`.

    Parameters
    ----------
    input : array_like
        (N, C, L) or (C, L), float16, float32 or float64; L (and C of a
        batch) non-zero.
    output_size : int or tuple of one int
        The output length OL.
    return_indices : bool, default False
        Also return the position of each maximum.
    {_DATA_FORMAT_1D_DOC}
    out : ndarray, or tuple (values, indices) with ``return_indices``, keyword-only
        As for :func:`max_pool1d`.

    Returns
    -------
    out : ndarray
        Each window's maximum (ties: the first; NaN: the last NaN).
    indices : ndarray of int64, only if ``return_indices``
        Position of each maximum within its row.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.array([[[1, 3, 2, 5, 4]]], np.float32)
    >>> cpool.adaptive_max_pool1d(x, 2, return_indices=True)
    (array([[[3., 5.]]], dtype=float32), array([[[1, 3]]]))
    """,
    "adaptive_max_pool1d_backward": f"""Gradient of :func:`adaptive_max_pool1d` with respect to its input.

    Parameters
    ----------
    grad_output : array_like
        (N, C, OL) or (C, OL), float16, float32 or float64.
    indices : array_like of int64
        ``adaptive_max_pool1d(..., return_indices=True)``'s indices, each in
        ``[0, L)``, checked before anything is written.
    input_shape : tuple of ints
        The forward input's shape, in ``data_format`` order.
    {_DATA_FORMAT_1D_DOC}
    out : ndarray, keyword-only
        An array of ``input_shape`` and ``grad_output``'s dtype to write into.

    Returns
    -------
    grad_input : ndarray
        Of ``input_shape`` and ``grad_output``'s dtype, or ``out``.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.array([[[1, 3, 2, 5, 4]]], np.float32)
    >>> v, i = cpool.adaptive_max_pool1d(x, 2, return_indices=True)
    >>> cpool.adaptive_max_pool1d_backward(np.ones_like(v), i, x.shape)
    array([[[0., 1., 0., 1., 0.]]], dtype=float32)
    """,
    "max_unpool1d": f"""Partial inverse of :func:`max_pool1d`: each value put back at its index, zeros elsewhere.

    Same output as ``torch.nn.functional.max_unpool1d`` on the CPU.

    Parameters
    ----------
    input : array_like
        (N, C, L) or (C, L), float16, float32 or float64 (C and L non-zero).
    indices : array_like of int64
        ``max_pool1d(..., return_indices=True)``'s indices, of ``input``'s
        shape, each in ``[0, OL)``, checked before anything is written.
    kernel_size, stride, padding : int or tuple of one int
        Those of the pooling being inverted (``stride`` defaults to
        ``kernel_size``): the output length is
        ``(L - 1) * stride - 2 * padding + kernel_size``.
    output_size : sequence of 1 (or 3: N, C, OL) ints, optional
        The output length instead, strictly within ``stride`` of that default.
    {_DATA_FORMAT_1D_DOC}
    out : ndarray, keyword-only
        An array of the result's shape and the input's dtype to write into.

    Returns
    -------
    out : ndarray
        (N, C, OL) (or (N, OL, C) with "NWC"). Of two values with one index
        the later (in the row) is kept.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.array([[[1, 3, 2, 5]]], np.float32)
    >>> v, i = cpool.max_pool1d(x, 2, return_indices=True)
    >>> cpool.max_unpool1d(v, i, 2)
    array([[[0., 3., 0., 5.]]], dtype=float32)
    """,
    "max_unpool1d_backward": f"""Gradient of :func:`max_unpool1d` with respect to its input.

    ``grad_output`` (the unpooled output's gradient) read at each of
    ``indices``: the result has ``indices``' shape.

    Parameters
    ----------
    grad_output : array_like
        (N, C, OL) or (C, OL), float16, float32 or float64.
    indices : array_like of int64
        The unpooling's indices, (N, C, L) or (C, L), each in ``[0, OL)``.
    {_DATA_FORMAT_1D_DOC}
    out : ndarray, keyword-only
        An array of ``indices``' shape and ``grad_output``'s dtype to write into.

    Returns
    -------
    grad_input : ndarray
        Of ``indices``' shape and ``grad_output``'s dtype, or ``out``.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> g = np.arange(4, dtype=np.float32).reshape(1, 1, 4)
    >>> cpool.max_unpool1d_backward(g, np.array([[[1, 3]]]))
    array([[[1., 3.]]], dtype=float32)
    """,
}

NAMES_1D = ("max_pool1d", "max_pool1d_backward", "avg_pool1d", "avg_pool1d_backward", "adaptive_avg_pool1d",
            "adaptive_avg_pool1d_backward", "adaptive_max_pool1d", "adaptive_max_pool1d_backward", "max_unpool1d",
            "max_unpool1d_backward")

# 1-D pooling, over this module's 2-D functions (bound to the chosen backend).
_fns_1d = bind_1d(sys.modules[__name__])
(max_pool1d, max_pool1d_backward, avg_pool1d, avg_pool1d_backward, adaptive_avg_pool1d,
 adaptive_avg_pool1d_backward, adaptive_max_pool1d, adaptive_max_pool1d_backward, max_unpool1d,
 max_unpool1d_backward) = (_fns_1d[n] for n in NAMES_1D)
__all__ += list(NAMES_1D)


# ------------------------------------------------------------ 3-D adaptive pooling and max unpooling
from ._validation import (  # noqa: E402
    prepare_adaptive3d_avg_backward,
    prepare_adaptive3d_forward,
    prepare_adaptive3d_max_backward,
    prepare_unpool3d,
    prepare_unpool3d_backward,
)


def _flat_volumes(a, cl):
    """3-D memory as 2-D memory with each (n, c) volume one row: (..., C, 1,
    D*H*W), channels-last (..., 1, D*H*W, C). A view (the memory is
    C-contiguous): the scatters and gathers of max unpooling and the max
    backward see a volume as the flat plane its indices address."""
    if a is None:
        return None
    if cl:
        return a.reshape(a.shape[:-4] + (1, a.shape[-4] * a.shape[-3] * a.shape[-2], a.shape[-1]))
    return a.reshape(a.shape[:-3] + (1, a.shape[-3] * a.shape[-2] * a.shape[-1]))


def _adaptive3d_shape(x, g, cl):
    """The result's memory shape for 3-D memory ``x``."""
    return x.shape[:-4] + ((g.OD, g.OH, g.OW, x.shape[-1]) if cl else (x.shape[-4], g.OD, g.OH, g.OW))


def _volume(shape, cl):
    """(D, H, W) of a 3-D memory shape."""
    return tuple(shape[-4:-1]) if cl else tuple(shape[-3:])


def bind_adaptive3d(impl, module=__name__):
    """``(adaptive_avg_pool3d, adaptive_avg_pool3d_backward, adaptive_max_pool3d,
    adaptive_max_pool3d_backward)`` computed by backend module ``impl`` (its
    ``adaptive3d_avg_forward``, ``adaptive3d_avg_backward``,
    ``adaptive3d_max_forward`` and, on flat views of the volumes,
    ``backward_planes``), as :func:`bind`."""

    def adaptive_avg_pool3d(input, output_size, *, data_format="NCDHW", out=None):
        x, g, cl, swapped = prepare_adaptive3d_forward(input, output_size, data_format, "adaptive_avg_pool3d")
        if out is None:
            return to_format(impl.adaptive3d_avg_forward(x, g, cl), swapped, cl, 3)
        return _into_out(out, _adaptive3d_shape(x, g, cl), x.dtype, (("input", input), ("input", x)), swapped, cl,
                         lambda mem: impl.adaptive3d_avg_forward(x, g, cl, mem), spatial=3)

    def adaptive_avg_pool3d_backward(grad_output, input_shape, *, data_format="NCDHW", out=None):
        go, shape, g, cl, swapped = prepare_adaptive3d_avg_backward(grad_output, input_shape, data_format)
        if out is None:
            return to_format(impl.adaptive3d_avg_backward(go, shape, cl), swapped, cl, 3)
        return _into_out(out, shape, go.dtype, (("grad_output", grad_output), ("grad_output", go)), swapped, cl,
                         lambda mem: impl.adaptive3d_avg_backward(go, shape, cl, mem), spatial=3)

    def adaptive_max_pool3d(input, output_size, return_indices=False, *, data_format="NCDHW", out=None):
        if type(return_indices) is not bool and not isinstance(return_indices, np.bool_):
            raise TypeError(f"return_indices must be a bool, got return_indices={return_indices!r} "
                            f"(type {type(return_indices).__name__})")
        with_indices = bool(return_indices)
        x, g, cl, swapped = prepare_adaptive3d_forward(input, output_size, data_format, "adaptive_max_pool3d")
        if out is None:
            values, idx = impl.adaptive3d_max_forward(x, g, with_indices, cl)
            values = to_format(values, swapped, cl, 3)
            return (values, to_format(idx, swapped, cl, 3)) if with_indices else values
        sources = (("input", input), ("input", x))
        return _into_outs(out, _adaptive3d_shape(x, g, cl), x.dtype, sources, with_indices, swapped, cl,
                          lambda mv, mi: impl.adaptive3d_max_forward(x, g, with_indices, cl, mv, mi), spatial=3)

    def adaptive_max_pool3d_backward(grad_output, indices, input_shape, *, data_format="NCDHW", out=None):
        go, idx, shape, cl, swapped = prepare_adaptive3d_max_backward(grad_output, indices, input_shape,
                                                                      data_format)
        flat_shape = _flat_volumes(np.empty(shape, np.uint8), cl).shape

        def check():  # with the volume's sizes, before the flat views reach a backend
            check_index_range(idx, *_volume(shape, cl), find=impl.first_outside)

        def compute(mem=None):
            with np.errstate(invalid="ignore"):  # NaN gradients add up to NaN, as in torch
                grad = impl.backward_planes(_flat_volumes(go, cl), _flat_volumes(idx, cl), flat_shape, cl,
                                            _flat_volumes(mem, cl))
            grad = grad.reshape(shape)
            if grad.dtype == np.float16:  # torch's 3-D kernel has NaN rules of its own there
                from .slow import half_max_backward3d_nans
                half_max_backward3d_nans(grad, go, idx, cl)
            return grad

        if out is None:
            check()
            return to_format(compute(), swapped, cl, 3)
        return _into_out(out, shape, go.dtype, (("grad_output", grad_output), ("indices", indices),
                                                ("grad_output", go), ("indices", idx)), swapped, cl,
                         compute, check, spatial=3)

    fns = (adaptive_avg_pool3d, adaptive_avg_pool3d_backward, adaptive_max_pool3d, adaptive_max_pool3d_backward)
    docs = (_ADAPTIVE_AVG_POOL3D_DOC, _ADAPTIVE_AVG_POOL3D_BACKWARD_DOC, _ADAPTIVE_MAX_POOL3D_DOC,
            _ADAPTIVE_MAX_POOL3D_BACKWARD_DOC)
    for fn, doc in zip(fns, docs):
        fn.__doc__ = doc
        fn.__module__ = module
        fn.__qualname__ = fn.__name__
    return fns


def bind_unpool3d(impl, module=__name__):
    """``(max_unpool3d, max_unpool3d_backward)`` computed by backend module
    ``impl`` (its ``unpool_planes`` / ``unpool_backward_planes`` on flat
    views of the volumes), as :func:`bind`."""

    def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                     data_format="NCDHW", out=None):
        x, idx, size, cl, swapped = prepare_unpool3d(input, indices, kernel_size, stride, padding, output_size,
                                                     data_format)
        mem_shape = x.shape[:-4] + ((size + (x.shape[-1],)) if cl else ((x.shape[-4],) + size))
        flat = (1, size[0] * size[1] * size[2])

        def check():  # with the volume's sizes, before the flat views reach a backend
            check_unpool_index_range(idx, *size, find=impl.first_outside)

        def compute(mem=None):
            result = impl.unpool_planes(_flat_volumes(x, cl), _flat_volumes(idx, cl), flat, cl,
                                        _flat_volumes(mem, cl))
            return result.reshape(mem_shape)

        if out is None:
            check()
            return to_format(compute(), swapped, cl, 3)
        return _into_out(out, mem_shape, x.dtype,
                         (("input", input), ("input", x), ("indices", indices), ("indices", idx)), swapped, cl,
                         compute, check, spatial=3)

    def max_unpool3d_backward(grad_output, indices, *, data_format="NCDHW", out=None):
        go, idx, cl, swapped = prepare_unpool3d_backward(grad_output, indices, data_format)

        def check():
            check_unpool_index_range(idx, *_volume(go.shape, cl), find=impl.first_outside)

        def compute(mem=None):
            grad = impl.unpool_backward_planes(_flat_volumes(go, cl), _flat_volumes(idx, cl), cl,
                                               _flat_volumes(mem, cl))
            return grad.reshape(idx.shape)

        if out is None:
            check()
            return to_format(compute(), swapped, cl, 3)
        return _into_out(out, idx.shape, go.dtype, (("grad_output", grad_output), ("grad_output", go),
                                                    ("indices", indices), ("indices", idx)), swapped, cl,
                         compute, check, spatial=3)

    max_unpool3d.__doc__ = _MAX_UNPOOL3D_DOC
    max_unpool3d_backward.__doc__ = _MAX_UNPOOL3D_BACKWARD_DOC
    for fn in (max_unpool3d, max_unpool3d_backward):
        fn.__module__ = module
        fn.__qualname__ = fn.__name__
    return max_unpool3d, max_unpool3d_backward


_ADAPTIVE_AVG_POOL3D_DOC = """3-D adaptive average pooling over (N, C, D, H, W) or (C, D, H, W) arrays, as in PyTorch.

    Same arguments, output shape and values as
    ``torch.nn.functional.adaptive_avg_pool3d`` on the CPU, bit for bit.
    Output ``(od, oh, ow)`` averages input depths ``floor(od * D / OD)`` to
    ``ceil((od + 1) * D / OD) - 1``, and the rows and columns likewise.

    Parameters
    ----------
    input : array_like
        A 5-D (N, C, D, H, W) or 4-D (C, D, H, W) array of float16, float32
        or float64 (PyTorch's CPU kernels take no integer type). C, D, H
        and W must be non-zero; N may be 0.
    output_size : int or tuple of three (int or None)
        The output's depth, height and width; None keeps that input
        dimension, 0 gives an empty result.
    data_format : {"NCDHW", "NDHWC"}, keyword-only, default "NCDHW"
        Where the channel axis is. 5-D channels-last memory (PyTorch's
        ``channels_last_3d``) runs PyTorch's channels-last kernel without a
        copy and gives a channels-last result.
    out : ndarray, keyword-only
        An array of the result's shape and the input's dtype to write into.

    Returns
    -------
    out : ndarray
        The window means, as PyTorch's kernels compute them: the planes
        kernel sums each window in (d, h, w) order from 0 (in float32 for
        float16) and divides three times, ``sum / kd / kh / kw``; the
        channels-last kernel divides once by ``kd * kh * kw`` in its vector
        lanes (as :func:`adaptive_avg_pool2d`'s). An output of 1x1x1 is
        PyTorch's ``input.mean((-1, -2, -3))``.

    Raises
    ------
    TypeError
        For a non-integer ``output_size`` entry or an unsupported dtype.
    ValueError
        For a negative ``output_size`` or one of other than three entries,
        an input of other than 4 or 5 dimensions, or an empty channel,
        depth, height or width.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.arange(8, dtype=np.float32).reshape(1, 1, 2, 2, 2)
    >>> cpool.adaptive_avg_pool3d(x, (1, 2, 1))[0, 0]
    array([[[2.5],
            [4.5]]], dtype=float32)
    >>> cpool.adaptive_avg_pool3d(x, (None, 1, 1)).shape
    (1, 1, 2, 1, 1)
    """

_ADAPTIVE_AVG_POOL3D_BACKWARD_DOC = """Gradient of :func:`adaptive_avg_pool3d` with respect to its input.

    PyTorch's ``adaptive_avg_pool3d_backward``: each output's share
    ``grad_output / kd / kh / kw`` (channels-last vector lanes: ``/ (kd * kh
    * kw)``) is added to every element of its window, outputs in row-major
    order, rounding after each add. For a 1x1x1 output it is the gradient
    of the mean: ``grad_output / (D * H * W)`` everywhere.

    Parameters
    ----------
    grad_output : array_like
        (N, C, OD, OH, OW) or (C, OD, OH, OW), float16, float32 or float64.
    input_shape : tuple of ints
        Shape of the forward input, in ``data_format`` order.
    data_format, out : keyword-only
        As for :func:`adaptive_avg_pool3d`; ``grad_output``'s memory decides the layout.

    Returns
    -------
    grad_input : ndarray
        Of ``input_shape`` and ``grad_output``'s dtype, or ``out``.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> g = cpool.adaptive_avg_pool3d_backward(np.ones((1, 1, 1, 1, 1), np.float32), (1, 1, 2, 2, 2))
    >>> g[0, 0, 0]
    array([[0.125, 0.125],
           [0.125, 0.125]], dtype=float32)
    """

_ADAPTIVE_MAX_POOL3D_DOC = """3-D adaptive max pooling over (N, C, D, H, W) or (C, D, H, W) arrays, as in PyTorch.

    Same arguments, output shape, values and indices as
    ``torch.nn.functional.adaptive_max_pool3d`` on the CPU, bit for bit,
    with the windows of :func:`adaptive_avg_pool3d`.

    Parameters
    ----------
    input : array_like
        As for :func:`adaptive_avg_pool3d`.
    output_size : int or tuple of three (int or None)
        As for :func:`adaptive_avg_pool3d`.
    return_indices : bool, default False
        Also return the position of each maximum.
    data_format : {"NCDHW", "NDHWC"}, keyword-only, default "NCDHW"
        As for :func:`adaptive_avg_pool3d`.
    out : ndarray, or tuple (values, indices) with ``return_indices``, keyword-only
        Arrays of the results' shapes and dtypes to write into.

    Returns
    -------
    out : ndarray
        Each window's maximum. Ties go to the first in (d, h, w) window
        order; a NaN always replaces the running maximum (the last NaN of a
        window is returned, with its index).
    indices : ndarray of int64, only if ``return_indices``
        Flat position ``(d * H + h) * W + w`` of each maximum within its
        (n, c) volume.

    Raises
    ------
    TypeError, ValueError
        As for :func:`adaptive_avg_pool3d`.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.arange(8, dtype=np.float32).reshape(1, 1, 2, 2, 2)
    >>> out, idx = cpool.adaptive_max_pool3d(x, (1, 1, 2), return_indices=True)
    >>> out[0, 0], idx[0, 0]
    (array([[[6., 7.]]], dtype=float32), array([[[6, 7]]]))
    """

_ADAPTIVE_MAX_POOL3D_BACKWARD_DOC = """Gradient of :func:`adaptive_max_pool3d` with respect to its input.

    Each element of ``grad_output`` is added to the input position its
    index names, outputs in row-major order (:func:`max_pool2d_backward`'s
    scatter, on each (n, c) volume as one flat plane).

    Parameters
    ----------
    grad_output : array_like
        (N, C, OD, OH, OW) or (C, OD, OH, OW), float16, float32 or float64.
    indices : array_like of int64
        The indices of ``adaptive_max_pool3d(..., return_indices=True)``,
        each checked (-1 or ``0 <= index < D * H * W``) before anything is
        written; -1 is skipped.
    input_shape : tuple of ints
        Shape of the forward input, in ``data_format`` order.
    data_format, out : keyword-only
        As for :func:`adaptive_avg_pool3d`; ``grad_output``'s memory decides the layout.

    Returns
    -------
    grad_input : ndarray
        Of ``input_shape`` and ``grad_output``'s dtype, or ``out``.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.arange(8, dtype=np.float32).reshape(1, 1, 2, 2, 2)
    >>> out, idx = cpool.adaptive_max_pool3d(x, 1, return_indices=True)
    >>> cpool.adaptive_max_pool3d_backward(np.ones_like(out), idx, x.shape)[0, 0, 1]
    array([[0., 0.],
           [0., 1.]], dtype=float32)
    """

_MAX_UNPOOL3D_DOC = """Partial inverse of 3-D max pooling: each value put back at its index, zeros elsewhere.

    ``torch.nn.functional.max_unpool3d`` on the CPU, bit for bit.

    Parameters
    ----------
    input : array_like
        The pooled values, a 5-D (N, C, D, H, W) or 4-D (C, D, H, W) array
        of float16, float32 or float64 (PyTorch's CPU kernel's types).
    indices : array_like of int64
        ``input``'s shape: the position ``(d * OH + h) * OW + w`` of each
        value in its (n, c) volume of the output, as 3-D max pooling
        returns them. Every index is checked (0 <= index < OD * OH * OW)
        before anything is written; -1 is rejected, as in PyTorch.
    kernel_size, stride, padding : int or tuple of three ints
        Those of the pooling being inverted (``stride`` defaults to
        ``kernel_size``); they set the output size
        ``(D - 1) * stride - 2 * padding + kernel_size`` per axis.
    output_size : sequence of 3 (or 5: N, C, OD, OH, OW) ints, optional
        The output's depth, height and width instead, each strictly within
        ``stride`` of that default (PyTorch's rule).
    data_format : {"NCDHW", "NDHWC"}, default "NCDHW"
        Where the channel axis is; channels-last memory gives a
        channels-last result, without a copy.
    out : numpy.ndarray, optional
        The result's array (shape, dtype and no overlap with the inputs
        checked before anything is written).

    Returns
    -------
    numpy.ndarray
        (N, C, OD, OH, OW) (or (N, OD, OH, OW, C) with ``"NDHWC"``). Where
        two values share an index, the later one (in the input's (d, h, w)
        order) is kept: PyTorch's result on one thread.

    Raises
    ------
    ValueError, TypeError
        As PyTorch rejects, naming the argument and value; also, as
        :func:`max_unpool2d`, for an empty output or a negative padding
        (which PyTorch lets through).

    Examples
    --------
    >>> import numpy as np, cpool
    >>> v = np.array([[[[[5.]]]]], np.float32)
    >>> cpool.max_unpool3d(v, np.array([[[[[6]]]]]), 2)[0, 0]
    array([[[0., 0.],
            [0., 0.]],
    <BLANKLINE>
           [[0., 0.],
            [5., 0.]]], dtype=float32)
    """

_MAX_UNPOOL3D_BACKWARD_DOC = """Gradient of :func:`max_unpool3d` with respect to its input.

    ``grad_output`` (the unpooled output's gradient, (N, C, OD, OH, OW) or
    (C, OD, OH, OW)) read at each of ``indices`` (shaped as the unpooled
    input): the result has ``indices``' shape. Every index is checked
    first. ``data_format`` and ``out`` are as for :func:`max_unpool3d`.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> g = np.arange(8, dtype=np.float32).reshape(1, 1, 2, 2, 2)
    >>> cpool.max_unpool3d_backward(g, np.array([[[[[6]]]]]))
    array([[[[[6.]]]]], dtype=float32)
    """

(adaptive_avg_pool3d, adaptive_avg_pool3d_backward, adaptive_max_pool3d,
 adaptive_max_pool3d_backward) = bind_adaptive3d(_backend.IMPL)
max_unpool3d, max_unpool3d_backward = bind_unpool3d(_backend.IMPL)
__all__ += ["adaptive_avg_pool3d", "adaptive_avg_pool3d_backward", "adaptive_max_pool3d",
            "adaptive_max_pool3d_backward", "max_unpool3d", "max_unpool3d_backward"]
