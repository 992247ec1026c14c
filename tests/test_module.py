"""cpool.MaxPool2d as a layer of a Torch7-style NumPy framework, with
torch.nn.MaxPool2d's signature.

Tests that run a layer take the ``backend`` fixture and build the layer with
``backend=backend.name``: each runs once per backend.
"""

import inspect

import numpy as np
import pytest
from helpers import loop_max_pool2d, loop_max_pool2d_backward

import cpool

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

# torch.nn.MaxPool2d's parameters, in its order, with its defaults.
TORCH_PARAMETERS = [("kernel_size", inspect.Parameter.empty), ("stride", None), ("padding", 0), ("dilation", 1),
                    ("return_indices", False), ("ceil_mode", False)]


def test_matches_the_original_loop_code(backend, rng):
    x = rng.standard_normal((4, 3, 12, 10))
    layer = cpool.MaxPool2d(2, backend=backend.name)
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
    layer = cpool.MaxPool2d(3, backend=backend.name)
    ref_out, ref_index = loop_max_pool2d(x, 3)
    np.testing.assert_array_equal(layer(x), ref_out)
    np.testing.assert_array_equal(layer.index, ref_index)


def test_protocol(backend, rng):
    layer = cpool.MaxPool2d(kernel_size=2, stride=1, padding=1, dilation=1, ceil_mode=True, backend=backend.name)
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
    assert repr(cpool.MaxPool2d((2, 3), 1, (1, 0), 2, ceil_mode=True)) == (
        "MaxPool2d(kernel_size=(2, 3), stride=1, padding=(1, 0), dilation=2, ceil_mode=True)"
    )
    # torch's repr does not show return_indices, and neither does ours
    assert repr(cpool.MaxPool2d(2, return_indices=True)) == repr(cpool.MaxPool2d(2))
    if torch is None:
        pytest.skip("torch is not installed (the comparison with torch's repr)")
    for args, kwargs in [((2,), {}), ((3, 2, 1), {}), (((2, 3), 1, (1, 0), 2), {"ceil_mode": True}),
                         ((2, 1, 1, 1, True, True), {}), ((2,), {"return_indices": True})]:
        assert repr(cpool.MaxPool2d(*args, **kwargs)) == repr(torch.nn.MaxPool2d(*args, **kwargs)), (args, kwargs)


# ------------------------------------------------------ torch's signature
EXTRA_PARAMETERS = [("data_format", inspect.Parameter.KEYWORD_ONLY, "NCHW"),
                    ("backend", inspect.Parameter.KEYWORD_ONLY, None)]


def test_signature_is_torchs_plus_keyword_only_extras():
    params = list(inspect.signature(cpool.MaxPool2d).parameters.values())
    n = len(EXTRA_PARAMETERS)
    assert [(p.name, p.default) for p in params[:-n]] == TORCH_PARAMETERS
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params[:-n])
    assert [(p.name, p.kind, p.default) for p in params[-n:]] == EXTRA_PARAMETERS


@needs_torch
def test_signature_equals_torchs():
    ours = inspect.signature(cpool.MaxPool2d).parameters
    theirs = inspect.signature(torch.nn.MaxPool2d).parameters
    extras = [name for name, _, _ in EXTRA_PARAMETERS]
    assert [(p.name, p.kind, p.default) for p in theirs.values()] == \
        [(p.name, p.kind, p.default) for p in ours.values() if p.name not in extras]
    assert list(ours)[-len(extras):] == extras and len(ours) == len(theirs) + len(extras)


def test_fifth_positional_argument_is_return_indices(backend, rng):
    x = rng.standard_normal((2, 3, 7, 7)).astype(np.float32)
    layer = cpool.MaxPool2d(2, 2, 0, 1, True, backend=backend.name)
    assert layer.return_indices is True and layer.ceil_mode is False
    out, idx = layer.forward(x)
    assert out.shape == (2, 3, 3, 3)  # floor mode: ceil_mode would give 4x4
    ref_out, ref_idx = cpool.slow.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(idx, ref_idx)
    layer = cpool.MaxPool2d(2, 2, 0, 1, False, True, backend=backend.name)
    assert layer.return_indices is False and layer.ceil_mode is True
    assert layer.forward(x).shape == (2, 3, 4, 4)


def test_return_indices_returns_output_and_indices(backend, rng):
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    x[0, 0, :2, :2] = np.nan
    layer = cpool.MaxPool2d(3, 2, 1, return_indices=True, backend=backend.name)
    ref_out, ref_idx = cpool.slow.max_pool2d(x, 3, 2, 1, return_indices=True)
    for call in (layer.forward, layer.updateOutput, layer):
        result = call(x)
        assert type(result) is tuple and len(result) == 2
        out, idx = result
        assert out is layer.output
        assert idx.dtype == np.int64 and idx is layer.indices
        assert out.tobytes() == ref_out.tobytes() and np.array_equal(idx, ref_idx)
    # backward is unchanged: it routes through the kept indices
    g = rng.standard_normal(ref_out.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(x, g), cpool.slow.max_pool2d_backward(g, ref_idx, x.shape))
    # and without return_indices, forward returns the output alone
    plain = cpool.MaxPool2d(3, 2, 1, backend=backend.name)
    assert isinstance(plain.forward(x), np.ndarray)


@needs_torch
def test_return_indices_equals_torch(backend, rng):
    x = rng.standard_normal((2, 3, 11, 10)).astype(np.float32)
    for args, kwargs in [((2,), {}), ((3, 2, 1), {}), ((3, 1, 1, 2), {"ceil_mode": True}),
                         ((2, 2, 0, 1, True, True), {})]:
        kwargs = dict(kwargs)
        if len(args) < 5:
            kwargs["return_indices"] = True
        out, idx = cpool.MaxPool2d(*args, backend=backend.name, **kwargs).forward(x)
        t_out, t_idx = torch.nn.MaxPool2d(*args, **kwargs)(torch.from_numpy(x))
        assert out.tobytes() == t_out.numpy().tobytes(), (args, kwargs)
        assert idx.dtype == t_idx.numpy().dtype and np.array_equal(idx, t_idx.numpy()), (args, kwargs)


@pytest.mark.parametrize("value", [1, 0, "yes", None, np.bool_(True)], ids=repr)
def test_return_indices_must_be_a_bool(value):
    with pytest.raises(TypeError, match="return_indices"):
        cpool.MaxPool2d(2, return_indices=value)


# ------------------------------------------------------------------ more
def test_unbatched_input(backend, rng):
    x = rng.standard_normal((3, 6, 6))
    layer = cpool.MaxPool2d(2, backend=backend.name)
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

    net = Sequential(cpool.MaxPool2d(2, backend=backend.name), cpool.MaxPool2d(2, backend=backend.name))
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
    layer = cpool.MaxPool2d(2, backend=backend.name)
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


def test_layer_runs_on_the_backend_it_was_given(backend):
    layer = cpool.MaxPool2d(2, backend=backend.name)
    assert layer._impl is backend.module
