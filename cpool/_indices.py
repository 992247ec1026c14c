"""Max-pooling indices in other frameworks' formats.

cpool's indices are PyTorch's: the flat position ``h * W + w`` of the
selected element within its own (n, c) plane. Models moved between
frameworks meet three other conventions for the same argmax:

``"onnx"``
    ONNX ``MaxPool``'s ``Indices`` output with ``storage_order=0``: the
    flat position over the whole (N, C, H, W) input,
    ``((n * C + c) * H + h) * W + w``; the array is (N, C, OH, OW).
``"onnx-column-major"``
    ``storage_order=1``: the plane stored column by column,
    ``(n * C + c) * H * W + w * H + h``.
``"tensorflow"``
    ``tf.nn.max_pool_with_argmax`` (``include_batch_in_index=False``), on
    (N, H, W, C) data: ``(h * W + w) * C + c``; the array is (N, OH, OW, C).
``"tensorflow-with-batch"``
    ``include_batch_in_index=True``: ``((n * H + h) * W + w) * C + c``.

``"torch"`` is cpool's own format (the conversion only checks and copies).
A window without an input element (possible only with dilation) has index
-1 in cpool; it stays -1 in every format.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import as_input_array, check_data_format

INDEX_FORMATS = ("torch", "onnx", "onnx-column-major", "tensorflow", "tensorflow-with-batch")
# The memory order of each format's index array: channels first or last.
_CHANNELS_LAST = {"onnx": False, "onnx-column-major": False, "tensorflow": True, "tensorflow-with-batch": True}


def _check_format(format: Any) -> str:
    if not isinstance(format, str) or format not in INDEX_FORMATS:
        raise ValueError(f"format must be one of {', '.join(map(repr, INDEX_FORMATS))}, got format={format!r}")
    return format


def _check_input_shape(input_shape: Any, nhwc: bool) -> tuple[int, int, int, int, bool]:
    """(N, C, H, W, batched) from the pooled input's shape, in its data format's order."""
    try:
        shape = tuple(int(d) for d in input_shape)
        ok = all(isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_)) for d in input_shape)
    except TypeError:
        ok = False
    if not ok or len(shape) not in (3, 4) or min(shape) < 0:
        raise ValueError(f"input_shape must be the pooled input's shape, 3 or 4 non-negative ints, "
                         f"got input_shape={input_shape!r}")
    batched = len(shape) == 4
    if not batched:
        shape = (1,) + shape
    if nhwc:
        N, H, W, C = shape
    else:
        N, C, H, W = shape
    if min(C, H, W) == 0:
        raise ValueError(f"input_shape must have non-zero channel, height and width dimensions, "
                         f"got input_shape={tuple(input_shape)!r}")
    if max(N, 1) * C * H * W >= 2**62:  # every format's indices must fit in int64 (even for an empty batch)
        raise ValueError(f"input_shape is too large for int64 indices, got input_shape={tuple(input_shape)!r}")
    return N, C, H, W, batched


def _as_index_array(indices: Any, name: str = "indices") -> np.ndarray:
    arr = as_input_array(indices, name)
    if arr.dtype.kind not in "iu" or arr.dtype == np.uint64:
        raise TypeError(f"{name} must be an array of integers (int64 or narrower), got {name}.dtype={arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _nchw(arr: np.ndarray, channels_last: bool, batched: bool) -> np.ndarray:
    """An index array of either memory order as an (N, C, OH, OW) view."""
    if not batched:
        arr = arr[None]
    return arr.transpose(0, 3, 1, 2) if channels_last else arr


def _shaped_as(a: np.ndarray, channels_last: bool, batched: bool) -> np.ndarray:
    """An (N, C, OH, OW) result in the order a format wants, C-contiguous."""
    if channels_last:
        a = a.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(a if batched else a[0])


def _check_shape(arr: np.ndarray, N: int, C: int, batched: bool, channels_last: bool, what: str) -> None:
    want_ndim = 4 if batched else 3
    if arr.ndim != want_ndim:
        raise ValueError(f"{what} must have {want_ndim} dimensions, as the pooled input has, "
                         f"got {what}.shape={arr.shape}")
    shape = arr.shape if batched else (1,) + arr.shape
    n, c = shape[0], shape[3 if channels_last else 1]
    if n != N or c != C:
        order = "(N, OH, OW, C)" if channels_last else "(N, C, OH, OW)"
        raise ValueError(f"{what} must be shaped {order} with N={N} and C={C} from input_shape, "
                         f"got {what}.shape={arr.shape}")


def _first_bad(bad: np.ndarray, values: np.ndarray, channels_last: bool, batched: bool, what: str,
               rule: str) -> ValueError:
    """The error for the first element of ``bad`` (an (N, C, OH, OW) view),
    at its position in the caller's array ``values``."""
    if channels_last:
        bad = bad.transpose(0, 2, 3, 1)
    if not batched:
        bad = bad[0]
    at = tuple(int(i) for i in np.argwhere(bad)[0])
    return ValueError(f"{what} holds {int(values[at])} at position {at}, {rule}")


def indices_to(indices: Any, format: str, input_shape: Any, *, data_format: str = "NCHW") -> np.ndarray:
    """Convert cpool's (PyTorch's) max-pooling indices to another framework's format.

    Parameters
    ----------
    indices : array_like of int
        Indices from :func:`cpool.max_pool2d` (``return_indices=True``):
        ``h * W + w`` within each (n, c) plane, shaped like its output,
        (N, C, OH, OW) or (C, OH, OW), or with ``data_format="NHWC"``
        (N, OH, OW, C) or (OH, OW, C).
    format : str
        One of ``"onnx"``, ``"onnx-column-major"``, ``"tensorflow"``,
        ``"tensorflow-with-batch"`` or ``"torch"`` (see :mod:`cpool`'s README
        and the module docstring for each rule).
    input_shape : tuple of int
        Shape of the pooled input, in ``data_format``'s order.
    data_format : {"NCHW", "NHWC"}, optional
        The order of ``indices`` and ``input_shape``.

    Returns
    -------
    numpy.ndarray of int64
        The same argmax in ``format``: (N, C, OH, OW) for ONNX and PyTorch,
        (N, OH, OW, C) for TensorFlow (without N for a 3-D input). -1 stays -1.

    Raises
    ------
    ValueError
        An index outside ``[0, H * W)`` (other than -1), a shape that does
        not match ``input_shape``, an unknown format.
    TypeError
        Indices that are not integers.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> _, idx = cpool.max_pool2d(x, 2, return_indices=True)
    >>> cpool.indices_to(idx, "onnx", x.shape)[0, 0]
    array([[ 5,  7],
           [13, 15]])
    """
    fmt = _check_format(format)
    nhwc = check_data_format(data_format)
    N, C, H, W, batched = _check_input_shape(input_shape, nhwc)
    arr = _as_index_array(indices)
    _check_shape(arr, N, C, batched, nhwc, "indices")
    idx = _nchw(arr, nhwc, batched)
    empty = idx == -1
    bad = ((idx < 0) | (idx >= H * W)) & ~empty
    if bad.any():
        raise _first_bad(bad, arr, nhwc, batched, "indices",
                         f"outside [0, H * W) = [0, {H * W}) for H={H}, W={W} (or -1)")
    if fmt == "torch":
        return _shaped_as(idx, nhwc, batched).copy()
    n = np.arange(N, dtype=np.int64)[:, None, None, None]
    c = np.arange(C, dtype=np.int64)[None, :, None, None]
    h, w = np.divmod(idx, W)
    if fmt == "onnx":
        out = (n * C + c) * (H * W) + idx
    elif fmt == "onnx-column-major":
        out = (n * C + c) * (H * W) + w * H + h
    elif fmt == "tensorflow":
        out = idx * C + c
    else:
        out = (n * (H * W) + idx) * C + c
    out = np.where(empty, -1, out)
    return _shaped_as(out, _CHANNELS_LAST[fmt], batched)


def indices_from(indices: Any, format: str, input_shape: Any, *, data_format: str = "NCHW") -> np.ndarray:
    """Convert another framework's max-pooling indices to cpool's (PyTorch's).

    The inverse of :func:`indices_to`: ``indices`` is in ``format``'s own
    layout ((N, C, OH, OW) for ONNX, (N, OH, OW, C) for TensorFlow; without
    N for a 3-D input), ``input_shape`` the pooled input's shape in
    ``data_format``'s order, and the result is shaped like a cpool output in
    ``data_format`` ((N, C, OH, OW), or (N, OH, OW, C) for ``"NHWC"``), ready
    for :func:`cpool.max_pool2d_backward`.

    Raises
    ------
    ValueError
        An index outside the input, or one that points into another (n, c)
        plane than its output's (PyTorch's format cannot express it).
    TypeError
        Indices that are not integers.

    Examples
    --------
    >>> import numpy as np, cpool
    >>> onnx_idx = np.array([[[[5, 7], [13, 15]]]])
    >>> cpool.indices_from(onnx_idx, "onnx", (1, 1, 4, 4))[0, 0]
    array([[ 5,  7],
           [13, 15]])
    """
    fmt = _check_format(format)
    nhwc = check_data_format(data_format)
    N, C, H, W, batched = _check_input_shape(input_shape, nhwc)
    foreign_cl = nhwc if fmt == "torch" else _CHANNELS_LAST[fmt]
    arr = _as_index_array(indices)
    _check_shape(arr, N, C, batched, foreign_cl, "indices")
    idx = _nchw(arr, foreign_cl, batched)
    empty = idx == -1
    plane = H * W
    n = np.arange(N, dtype=np.int64)[:, None, None, None]
    c = np.arange(C, dtype=np.int64)[None, :, None, None]
    total = {"torch": plane, "onnx": N * C * plane, "onnx-column-major": N * C * plane,
             "tensorflow": plane * C, "tensorflow-with-batch": N * plane * C}[fmt]
    bad = ((idx < 0) | (idx >= total)) & ~empty
    if bad.any():
        raise _first_bad(bad, arr, foreign_cl, batched, "indices",
                         f"outside the input: [0, {total}) in the {fmt!r} format for "
                         f"input_shape={tuple(input_shape)!r} (or -1)")
    if fmt == "torch":
        out = idx
        own = np.ones(idx.shape, bool)
    elif fmt in ("onnx", "onnx-column-major"):
        owner, within = np.divmod(idx, plane)
        own = owner == n * C + c
        out = within if fmt == "onnx" else (within % H) * W + within // H
    else:
        pos, channel = np.divmod(idx, C)
        if fmt == "tensorflow":
            own = channel == c
        else:
            batch, pos = np.divmod(pos, plane)
            own = (channel == c) & (batch == n)
        out = pos
    stray = ~own & ~empty
    if stray.any():
        raise _first_bad(stray, arr, foreign_cl, batched, "indices",
                         "which points into another (n, c) plane than its output's; "
                         "PyTorch's format holds positions within the output's own plane")
    return _shaped_as(np.where(empty, -1, out), nhwc, batched)  # np.where: a new array
