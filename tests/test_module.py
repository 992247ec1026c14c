"""cpool.MaxPool2d as a layer of a Torch7-style NumPy framework."""

import numpy as np
import pytest

import cpool
from reference import loop_max_pool2d, loop_max_pool2d_backward


@pytest.fixture(params=["cython", "numpy"])
def backend(request, impl):  # impl: fails/skips like the other backend tests
    return request.param


def test_matches_the_original_loop_code(backend, rng):
    x = rng.standard_normal((4, 3, 12, 10))
    layer = cpool.MaxPool2d(2, backend=backend)
    out = layer.forward(x)
    ref_out, ref_index = loop_max_pool2d(x, 2)
    assert out is layer.output
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(layer.index, ref_index)
    assert layer.index.dtype == ref_index.dtype == np.int32
    g = rng.standard_normal(out.shape)
    gi = layer.backward(x, g)
    assert gi is layer.gradInput
    np.testing.assert_array_equal(gi, loop_max_pool2d_backward(x, g, ref_index))


def test_kernel_3_on_odd_sizes_matches_loop(backend, rng):
    x = rng.standard_normal((2, 2, 10, 11))
    layer = cpool.MaxPool2d(3, backend=backend)
    ref_out, ref_index = loop_max_pool2d(x, 3)
    np.testing.assert_array_equal(layer(x), ref_out)
    np.testing.assert_array_equal(layer.index, ref_index)


def test_protocol(backend, rng):
    layer = cpool.MaxPool2d(kernel_size=2, stride=1, padding=1, dilation=1, ceil_mode=True, backend=backend)
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    assert layer.updateOutput(x) is layer.output
    out, idx = cpool.slow.max_pool2d(x, 2, 1, 1, 1, True, return_indices=True)
    np.testing.assert_array_equal(layer.output, out)
    np.testing.assert_array_equal(layer.indices, idx)
    g = np.ones_like(out)
    assert layer.updateGradInput(x, g) is layer.gradInput
    np.testing.assert_array_equal(layer.gradInput, cpool.slow.max_pool2d_backward(g, idx, x.shape))
    assert layer.accGradParameters(x, g) is None
    assert layer.zeroGradParameters() is None
    assert layer.getParameters() == [] and layer.getGradParameters() == []
    layer.evaluate()
    assert layer.training is False
    np.testing.assert_array_equal(layer(x), out)
    layer.train()
    assert layer.training is True


def test_repr_like_torch():
    assert repr(cpool.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(cpool.MaxPool2d((2, 3), 1, (1, 0), 2, True)) == (
        "MaxPool2d(kernel_size=(2, 3), stride=1, padding=(1, 0), dilation=2, ceil_mode=True)"
    )
    torch = pytest.importorskip("torch")
    for args in [(2,), (3, 2, 1), ((2, 3), 1, (1, 0), 2, True)]:
        assert repr(cpool.MaxPool2d(*args)) == repr(torch.nn.MaxPool2d(*args[:4], ceil_mode=(args + (False,) * 5)[4]))


def test_unbatched_input(backend, rng):
    x = rng.standard_normal((3, 6, 6))
    layer = cpool.MaxPool2d(2, backend=backend)
    assert layer.forward(x).shape == (3, 3, 3)
    assert layer.index.shape == (3, 3, 3, 2)
    assert layer.backward(x, np.ones((3, 3, 3))).shape == x.shape


def test_errors():
    with pytest.raises(ValueError, match="kernel_size"):
        cpool.MaxPool2d(0)
    with pytest.raises(ValueError, match="backend"):
        cpool.MaxPool2d(2, backend="fortran")
    layer = cpool.MaxPool2d(2)
    with pytest.raises(cpool.BackwardBeforeForwardError, match="before forward"):
        layer.backward(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError):  # also a ValueError, as promised for bad input
        layer.updateGradInput(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 2, 2)))
    layer.forward(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="shape"):
        layer.backward(np.zeros((1, 1, 6, 6)), np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="grad_output"):
        layer.backward(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)))


def test_in_a_sequential_net(backend, rng):
    # A minimal Torch7-style container: the layer is driven only through
    # the protocol, as course frameworks do.
    class Sequential:
        def __init__(self, *modules):
            self.modules = modules

        def forward(self, x):
            self.inputs = []
            for m in self.modules:
                self.inputs.append(x)
                x = m.forward(x)
            return x

        def backward(self, g):
            for m, x in zip(reversed(self.modules), reversed(self.inputs)):
                g = m.backward(x, g)
            return g

    net = Sequential(cpool.MaxPool2d(2, backend=backend), cpool.MaxPool2d(2, backend=backend))
    x = rng.standard_normal((2, 2, 8, 8))
    out = net.forward(x)
    np.testing.assert_array_equal(out, x.reshape(2, 2, 2, 4, 2, 4).max(axis=(3, 5)))
    gi = net.backward(np.ones_like(out))
    assert gi.sum() == out.size and gi.shape == x.shape


def test_layer_keeps_int32_indices_and_shows_int64(backend, rng):
    # The layer's own backward runs on int32 indices (half the traffic); the
    # public `indices` are PyTorch's int64, made on demand, and once made they
    # are what backward uses.
    x = rng.standard_normal((3, 4, 10, 12)).astype(np.float32)
    g = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    layer = cpool.MaxPool2d(2, backend=backend)
    layer.forward(x)
    assert layer._compact.dtype == np.int32 and layer._indices is None
    gi = layer.backward(x, g).copy()
    out, idx = cpool.slow.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(gi, cpool.slow.max_pool2d_backward(g, idx, x.shape))
    assert layer.indices.dtype == np.int64
    np.testing.assert_array_equal(layer.indices, idx)
    layer.indices[...] = idx[..., ::-1]  # now route every gradient elsewhere
    np.testing.assert_array_equal(layer.backward(x, g), cpool.slow.max_pool2d_backward(g, idx[..., ::-1], x.shape))
    layer.indices = idx
    np.testing.assert_array_equal(layer.backward(x, g), gi)
