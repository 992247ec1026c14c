"""Index conversion between PyTorch's format and ONNX's and TensorFlow's.

ONNX is checked against onnxruntime's MaxPool ``Indices`` output (both
``storage_order`` values) where onnxruntime is installed; TensorFlow against
``tf.nn.max_pool_with_argmax``'s documented rule, ``(y * width + x) *
channels + c`` (plus ``b * height * width * channels`` with
``include_batch_in_index=True``), written out as a loop over the (N, H, W, C)
input. Every conversion round-trips, and every bad index is rejected before
anything is returned.
"""

from __future__ import annotations

import numpy as np
import pytest

import cpool
from cpool._indices import INDEX_FORMATS, indices_from, indices_to

try:
    import onnxruntime as ort
    from onnx import TensorProto, helper
except ImportError:
    ort = None

GEOMETRIES = [(2, 2, 0, 1), (3, 2, 1, 1), (3, 1, 1, 1), (2, 3, 0, 1), (3, 2, 1, 2), (4, 3, 2, 1)]


def distinct_input(rng, shape):
    # distinct values: every framework picks the same element, ties aside
    return rng.permutation(int(np.prod(shape))).astype(np.float32).reshape(shape)


def onnx_max_pool(x, k, s, p, d, storage_order):
    node = helper.make_node("MaxPool", ["X"], ["Y", "I"], kernel_shape=[k, k], strides=[s, s],
                            pads=[p, p, p, p], dilations=[d, d], storage_order=storage_order)
    graph = helper.make_graph([node], "pool", [helper.make_tensor_value_info("X", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("I", TensorProto.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": x})


@pytest.mark.skipif(ort is None, reason="onnxruntime is not installed (pip install '.[bench-onnx]')")
@pytest.mark.parametrize("storage_order", [0, 1])
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_onnx_matches_onnxruntime(geometry, storage_order):
    k, s, p, d = geometry
    rng = np.random.default_rng(k * 10 + s)
    x = distinct_input(rng, (2, 3, 9, 8))
    values, idx = cpool.max_pool2d(x, k, s, p, d, return_indices=True)
    y, want = onnx_max_pool(x, k, s, p, d, storage_order)
    np.testing.assert_array_equal(values, y)
    fmt = "onnx" if storage_order == 0 else "onnx-column-major"
    np.testing.assert_array_equal(indices_to(idx, fmt, x.shape), want)
    np.testing.assert_array_equal(indices_from(want, fmt, x.shape), idx)


def tf_argmax(x_nhwc, k, s, p, d, with_batch):
    """tf.nn.max_pool_with_argmax's indices by its documented rule (explicit padding as cpool's)."""
    N, H, W, C = x_nhwc.shape
    OH, OW = (H + 2 * p - d * (k - 1) - 1) // s + 1, (W + 2 * p - d * (k - 1) - 1) // s + 1
    out = np.empty((N, OH, OW, C), np.int64)
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                for c in range(C):
                    best, at = -np.inf, None
                    for i in range(k):
                        for j in range(k):
                            y, xx = oh * s - p + i * d, ow * s - p + j * d
                            if 0 <= y < H and 0 <= xx < W and x_nhwc[n, y, xx, c] > best:
                                best, at = x_nhwc[n, y, xx, c], (y * W + xx) * C + c
                    out[n, oh, ow, c] = at + (n * H * W * C if with_batch else 0)
    return out


@pytest.mark.parametrize("with_batch", [False, True])
@pytest.mark.parametrize("data_format", ["NCHW", "NHWC"])
@pytest.mark.parametrize("geometry", GEOMETRIES[:4])
def test_tensorflow_rule(geometry, data_format, with_batch):
    k, s, p, d = geometry
    x_nhwc = distinct_input(np.random.default_rng(k + s), (2, 7, 6, 5))
    want = tf_argmax(x_nhwc, k, s, p, d, with_batch)
    fmt = "tensorflow-with-batch" if with_batch else "tensorflow"
    x = x_nhwc if data_format == "NHWC" else np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))
    _, idx = cpool.max_pool2d(x, k, s, p, d, return_indices=True, data_format=data_format)
    np.testing.assert_array_equal(indices_to(idx, fmt, x.shape, data_format=data_format), want)
    np.testing.assert_array_equal(indices_from(want, fmt, x.shape, data_format=data_format), idx)


@pytest.mark.parametrize("fmt", INDEX_FORMATS)
@pytest.mark.parametrize("batched", [True, False])
def test_round_trip_and_empty_windows(fmt, batched):
    x = distinct_input(np.random.default_rng(1), (2, 3, 3, 6) if batched else (3, 3, 6))
    # rows: taps at -1 and 3 of a 3-row plane (dilation 4, padding 1), no input element: index -1
    _, idx = cpool.max_pool2d(x, 2, 1, (1, 0), (4, 1), return_indices=True)
    assert (idx == -1).any()
    converted = indices_to(idx, fmt, x.shape)
    assert converted.dtype == np.int64 and ((converted == -1) == _natural(idx == -1, fmt)).all()
    np.testing.assert_array_equal(indices_from(converted, fmt, x.shape), idx)
    # the backward accepts what comes back
    cpool.max_pool2d_backward(np.ones(idx.shape, np.float32), indices_from(converted, fmt, x.shape), x.shape)


def _natural(a, fmt):
    return np.moveaxis(a, -3, -1) if fmt.startswith("tensorflow") else a


def test_onnx_index_of_another_plane_is_rejected():
    onnx_idx = np.array([[[[0]], [[0]]]])  # channel 1's output points into channel 0's plane
    with pytest.raises(ValueError, match=r"indices holds 0 at position \(0, 1, 0, 0\), which points into another"):
        indices_from(onnx_idx, "onnx", (1, 2, 2, 2))


def test_tensorflow_index_of_another_channel_is_rejected():
    tf_idx = np.array([[[[1, 1]]]])  # (N, OH, OW, C): channel 0's output points at channel 1
    with pytest.raises(ValueError, match=r"position \(0, 0, 0, 0\), which points into another"):
        indices_from(tf_idx, "tensorflow", (1, 2, 2, 2))
    with pytest.raises(ValueError, match="another"):
        # image 0's outputs point into image 1
        indices_from(np.array([[[[8, 9]]], [[[8, 9]]]]), "tensorflow-with-batch", (2, 2, 2, 2))


@pytest.mark.parametrize("bad, fn, match", [
    (np.array([[[[4]]]]), indices_to, r"indices holds 4 at position \(0, 0, 0, 0\), outside \[0, H \* W\)"),
    (np.array([[[[-2]]]]), indices_to, "holds -2"),
    (np.array([[[[16]]]]), indices_from, r"outside the input: \[0, 4\)"),
])
def test_out_of_range(bad, fn, match):
    with pytest.raises(ValueError, match=match):
        fn(bad, "onnx", (1, 1, 2, 2))


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(format="caffe"), ValueError, "format must be one of 'torch', 'onnx'"),
    (dict(format=None), ValueError, "got format=None"),
    (dict(input_shape=(2, 2)), ValueError, "input_shape must be the pooled input's shape"),
    (dict(input_shape=(1, 1, 2.5, 2)), ValueError, "input_shape must be"),
    (dict(input_shape=(1, 0, 2, 2)), ValueError, "non-zero channel"),
    (dict(input_shape=(2, 1, 2, 2)), ValueError, r"must be shaped \(N, C, OH, OW\) with N=2 and C=1"),
    (dict(indices=np.zeros((1, 1, 1, 1), np.float32)), TypeError, "indices must be an array of integers"),
    (dict(indices=np.zeros((1, 1, 1), np.int64)), ValueError, "indices must have 4 dimensions"),
    (dict(data_format="NWHC"), ValueError, "data_format"),
])
def test_argument_errors(kwargs, exc, match):
    args = dict(indices=np.zeros((1, 1, 1, 1), np.int64), format="onnx", input_shape=(1, 1, 2, 2))
    args.update(kwargs)
    for fn in (indices_to, indices_from):
        with pytest.raises(exc, match=match):
            fn(args["indices"], args["format"], args["input_shape"], **({"data_format": args["data_format"]}
                                                                         if "data_format" in args else {}))


def test_inputs_are_not_modified():
    idx = np.array([[[[3, 1]]]])
    before = idx.copy()
    out = indices_to(idx, "torch", (1, 1, 2, 2))
    assert not np.shares_memory(out, idx)
    indices_from(idx, "onnx", (1, 1, 2, 2))
    np.testing.assert_array_equal(idx, before)


@pytest.mark.parametrize("shape", [(0, 2, 2**31, 2**31), (1, 1, 2**32, 2**31)])
def test_input_shape_too_large_for_int64(shape):
    with pytest.raises(ValueError, match="input_shape is too large for int64 indices"):
        indices_to(np.zeros((shape[0], shape[1], 1, 1), np.int64), "onnx", shape)
