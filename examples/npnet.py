"""A minimal Torch7-style neural-network framework in NumPy.

This is the kind of framework the question behind cpool was asked in (the
"Practical Deep Learning" course style): every layer is a :class:`Module`
holding ``output`` and ``gradInput``, with ``updateOutput(input)``,
``updateGradInput(input, gradOutput)`` and ``accGradParameters(input,
gradOutput)``; a :class:`Sequential` chains them; a :class:`Criterion` has
``forward(input, target)`` / ``backward(input, target)``; optimizers are plain
functions ``opt(variables, gradients, config, state)`` that update the
parameters in place.

``cpool.MaxPool2d`` and ``cpool.AvgPool2d`` implement the same protocol, so
they go into a :class:`Sequential` exactly like the layers defined here -- no
adapter. :class:`GlobalAvgPool2d` (a global-average head) wraps one.

Layers compute in the dtype of their parameters (float32 for training,
float64 for the gradient check) and cast their input to it, because the
original loop-based pooling layer (:mod:`loop_pool`) always returns float64.

Optionally a :class:`LayerTimer` attached to a :class:`Sequential` records
the time spent in each layer type, forward and backward.
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np

__all__ = [
    "Module",
    "Sequential",
    "Conv2d",
    "ReLU",
    "Flatten",
    "GlobalAvgPool2d",
    "Linear",
    "LogSoftMax",
    "Criterion",
    "ClassNLLCriterion",
    "LayerTimer",
    "sgd_momentum",
    "adam_optimizer",
]


class Module:
    """Base class of every layer, Torch7 style.

    Attributes
    ----------
    output : ndarray or None
        Result of the last :meth:`updateOutput`.
    gradInput : ndarray or None
        Result of the last :meth:`updateGradInput`.
    training : bool
        Train / evaluation mode (see :meth:`train`, :meth:`evaluate`).
    """

    def __init__(self):
        self.output = None
        self.gradInput = None
        self.training = True

    def forward(self, input):
        """Compute and return ``self.output`` for ``input``."""
        return self.updateOutput(input)

    def backward(self, input, gradOutput):
        """Back-propagate ``gradOutput``: gradient w.r.t. input, then accumulate
        parameter gradients. Returns ``self.gradInput``."""
        self.updateGradInput(input, gradOutput)
        self.accGradParameters(input, gradOutput)
        return self.gradInput

    def __call__(self, input):
        return self.forward(input)

    def updateOutput(self, input):
        """Identity by default."""
        self.output = input
        return self.output

    def updateGradInput(self, input, gradOutput):
        """Identity by default."""
        self.gradInput = gradOutput
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        """No parameters by default."""

    def zeroGradParameters(self):
        """Set the accumulated parameter gradients to zero (none by default)."""

    def getParameters(self):
        """List of parameter arrays (updated in place by the optimizers)."""
        return []

    def getGradParameters(self):
        """List of gradient arrays, in the order of :meth:`getParameters`."""
        return []

    def train(self):
        self.training = True

    def evaluate(self):
        self.training = False

    def __repr__(self):
        return f"{type(self).__name__}()"


class LayerTimer:
    """Accumulates wall-clock seconds per (label, 'forward' | 'backward')."""

    def __init__(self):
        self.seconds = defaultdict(lambda: {"forward": 0.0, "backward": 0.0})

    def add(self, label: str, phase: str, seconds: float) -> None:
        self.seconds[label][phase] += seconds

    def reset(self) -> None:
        self.seconds.clear()

    def __contains__(self, label):
        return label in self.seconds


def layer_label(module) -> str:
    """Name under which a layer's time is reported: its ``timing_label``
    attribute when it has one (set on pooling layers to tell them apart),
    else its type name."""
    return getattr(module, "timing_label", None) or type(module).__name__


class Sequential(Module):
    """Apply modules one after another.

    Parameters
    ----------
    *modules : Module
        Any objects with the Torch7 module protocol (``cpool.MaxPool2d`` included).

    Attributes
    ----------
    timer : LayerTimer or None
        When set, every module's forward and backward are timed into it.
    """

    def __init__(self, *modules):
        super().__init__()
        self.modules = list(modules)
        self.timer = None
        self.inputs = []

    def add(self, module):
        self.modules.append(module)
        return self

    def updateOutput(self, input):
        # Keep every intermediate input: backward needs them, Torch7 style.
        self.inputs = [input]
        timer = self.timer
        for module in self.modules:
            if timer is None:
                out = module.forward(self.inputs[-1])
            else:
                t0 = time.perf_counter()
                out = module.forward(self.inputs[-1])
                timer.add(layer_label(module), "forward", time.perf_counter() - t0)
            self.inputs.append(out)
        self.output = self.inputs[-1]
        return self.output

    def backward(self, input, gradOutput):
        timer = self.timer
        for i in range(len(self.modules) - 1, -1, -1):
            module = self.modules[i]
            if timer is None:
                gradOutput = module.backward(self.inputs[i], gradOutput)
            else:
                t0 = time.perf_counter()
                gradOutput = module.backward(self.inputs[i], gradOutput)
                timer.add(layer_label(module), "backward", time.perf_counter() - t0)
        self.gradInput = gradOutput
        return self.gradInput

    def updateGradInput(self, input, gradOutput):
        for i in range(len(self.modules) - 1, -1, -1):
            gradOutput = self.modules[i].updateGradInput(self.inputs[i], gradOutput)
        self.gradInput = gradOutput
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        # Each module needs the gradient w.r.t. its own output, i.e. the
        # gradInput of the module after it, computed by updateGradInput.
        for i in range(len(self.modules) - 1, -1, -1):
            self.modules[i].accGradParameters(self.inputs[i], gradOutput)
            gradOutput = self.modules[i].gradInput

    def zeroGradParameters(self):
        for module in self.modules:
            module.zeroGradParameters()

    def getParameters(self):
        """One list per module (the course's convention the optimizers expect)."""
        return [module.getParameters() for module in self.modules]

    def getGradParameters(self):
        return [module.getGradParameters() for module in self.modules]

    def train(self):
        self.training = True
        for module in self.modules:
            module.train()

    def evaluate(self):
        self.training = False
        for module in self.modules:
            module.evaluate()

    def __repr__(self):
        return "Sequential(\n" + "".join(f"  {m!r}\n" for m in self.modules) + ")"


def _as(input, dtype):
    return np.asarray(input).astype(dtype, copy=False)


class _WeightAndBias(Module):
    """A layer with a weight ``W`` and a bias ``b`` (and their gradients)."""

    def zeroGradParameters(self):
        self.gradW.fill(0)
        self.gradb.fill(0)

    def getParameters(self):
        return [self.W, self.b]

    def getGradParameters(self):
        return [self.gradW, self.gradb]


class Conv2d(_WeightAndBias):
    """2-D convolution (cross-correlation, like PyTorch), stride 1, zero padding.

    Implemented as im2col plus one matrix product, which is what makes a
    NumPy CNN trainable in reasonable time. The column matrix is laid out
    (C*kh*kw, N*OH*OW) and filled with one slice copy per kernel tap: each
    copy moves whole image rows, which is several times faster than
    materialising a 6-D ``sliding_window_view`` transposed to rows-per-window.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int
        Square kernel.
    padding : int, default 0
        Zero padding on every side.
    dtype : dtype-like, default float32
    rng : numpy.random.Generator, optional
        For the He-normal weight initialisation.
    """

    def __init__(self, in_channels, out_channels, kernel_size, padding=0, dtype=np.float32, rng=None):
        super().__init__()
        rng = np.random.default_rng() if rng is None else rng
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.padding = kernel_size, padding
        fan_in = in_channels * kernel_size * kernel_size
        # He initialisation: keeps activations' scale stable through ReLUs.
        self.W = (rng.standard_normal((out_channels, in_channels, kernel_size, kernel_size))
                  * np.sqrt(2.0 / fan_in)).astype(dtype)
        self.b = np.zeros(out_channels, dtype=dtype)
        self.gradW = np.zeros_like(self.W)
        self.gradb = np.zeros_like(self.b)
        # accGradParameters reuses the columns built by updateOutput and the
        # gradient rows built by updateGradInput when it gets the same arrays
        # (Torch7's backward() calls them back to back): rebuilding either
        # costs as much as the matrix product that uses it. Both producers
        # always rebuild, so arrays modified in place are never served stale.
        self._cols = self._cols_of = None
        self._rows = self._rows_of = None

    def _out_size(self, H, W):
        k, p = self.kernel_size, self.padding
        return H + 2 * p - k + 1, W + 2 * p - k + 1

    def _im2col(self, input):
        """(N, C, H, W) -> (C*k*k, N*OH*OW), columns ordered (c, i, j) like W."""
        x = _as(input, self.W.dtype)
        N, C, H, W = x.shape
        k, p = self.kernel_size, self.padding
        OH, OW = self._out_size(H, W)
        if p:
            x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        xc = x.transpose(1, 0, 2, 3)
        cols = np.empty((C, k, k, N, OH, OW), dtype=self.W.dtype)
        for i in range(k):
            for j in range(k):
                cols[:, i, j] = xc[:, :, i:i + OH, j:j + OW]
        cols = cols.reshape(C * k * k, N * OH * OW)
        self._cols, self._cols_of = cols, input
        return cols

    def _grad_rows(self, gradOutput):
        """(N, F, OH, OW) -> (F, N*OH*OW), matching the columns of _im2col."""
        g = _as(gradOutput, self.W.dtype)
        rows = np.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(self.out_channels, -1)
        self._rows, self._rows_of = rows, gradOutput
        return rows

    def updateOutput(self, input):
        N, _, H, W = np.shape(input)
        OH, OW = self._out_size(H, W)
        out = self.W.reshape(self.out_channels, -1) @ self._im2col(input)
        out += self.b[:, None]
        # Contiguous NCHW, the layout the next layers (and cpool) work fastest on.
        self.output = np.ascontiguousarray(out.reshape(self.out_channels, N, OH, OW).transpose(1, 0, 2, 3))
        return self.output

    def updateGradInput(self, input, gradOutput):
        N, C, H, W = np.shape(input)
        p, k = self.padding, self.kernel_size
        OH, OW = self._out_size(H, W)
        dcols = self.W.reshape(self.out_channels, -1).T @ self._grad_rows(gradOutput)
        dcols = dcols.reshape(C, k, k, N, OH, OW)
        # col2im: one whole-slice add per kernel tap, in the (C, N, H, W)
        # layout of dcols so every add runs over contiguous rows.
        gx = np.zeros((C, N, H + 2 * p, W + 2 * p), dtype=self.W.dtype)
        for i in range(k):
            for j in range(k):
                gx[:, :, i:i + OH, j:j + OW] += dcols[:, i, j]
        self.gradInput = np.ascontiguousarray(gx[:, :, p:p + H, p:p + W].transpose(1, 0, 2, 3))
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        rows = self._rows if self._rows_of is gradOutput else self._grad_rows(gradOutput)
        cols = self._cols if self._cols_of is input else self._im2col(input)
        self.gradW += (rows @ cols.T).reshape(self.W.shape)
        self.gradb += rows.sum(axis=1)

    def __repr__(self):
        return (f"Conv2d({self.in_channels} -> {self.out_channels}, {self.kernel_size}x{self.kernel_size}, "
                f"padding={self.padding})")


class ReLU(Module):
    """max(0, x)."""

    def updateOutput(self, input):
        self.output = np.maximum(input, 0)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput * (np.asarray(input) > 0)
        return self.gradInput


class Flatten(Module):
    """(N, ...) -> (N, prod(...))."""

    def updateOutput(self, input):
        self.output = np.asarray(input).reshape(len(input), -1)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = np.asarray(gradOutput).reshape(np.shape(input))
        return self.gradInput


class GlobalAvgPool2d(Module):
    """Global average pooling: (N, C, H, W) -> (N, C), the mean of each feature map.

    A classifier head ("global average pooling", as in Network in Network and
    ResNet): the linear layer after it sees C features whatever the map's
    size. Computed by ``cpool.AdaptiveAvgPool2d(1)``, PyTorch's
    ``adaptive_avg_pool2d(x, 1)`` (the mean of each map), bit for bit.

    Parameters
    ----------
    size : (int, int)
        The (H, W) of the feature maps it will be given (checked on every
        call: a head trained on one map size sees the same features).
    backend : str, optional
        cpool's backend (``None``: the default one; ``"numpy"``).
    """

    def __init__(self, size, backend=None):
        super().__init__()
        import cpool  # only here: the rest of the framework needs NumPy alone

        self.size = tuple(size)
        self.pool = cpool.AdaptiveAvgPool2d(1, backend=backend)

    def updateOutput(self, input):
        if np.shape(input)[-2:] != self.size:
            raise ValueError(f"GlobalAvgPool2d({self.size}) was given feature maps of "
                             f"{tuple(np.shape(input)[-2:])}")
        pooled = self.pool.forward(input)
        self.output = pooled.reshape(pooled.shape[:2])
        return self.output

    def updateGradInput(self, input, gradOutput):
        g = np.asarray(gradOutput)
        self.gradInput = self.pool.backward(input, g.reshape(g.shape + (1, 1)))
        return self.gradInput

    def __repr__(self):
        return f"GlobalAvgPool2d({self.size[0]}x{self.size[1]} -> 1x1, {self.pool!r})"


class Linear(_WeightAndBias):
    """Fully connected layer, ``output = input @ W.T + b`` (Torch7 weight layout).

    Parameters
    ----------
    n_in, n_out : int
    dtype : dtype-like, default float32
    rng : numpy.random.Generator, optional
    """

    def __init__(self, n_in, n_out, dtype=np.float32, rng=None):
        super().__init__()
        rng = np.random.default_rng() if rng is None else rng
        self.W = (rng.standard_normal((n_out, n_in)) * np.sqrt(1.0 / n_in)).astype(dtype)
        self.b = np.zeros(n_out, dtype=dtype)
        self.gradW = np.zeros_like(self.W)
        self.gradb = np.zeros_like(self.b)

    def updateOutput(self, input):
        self.output = _as(input, self.W.dtype) @ self.W.T + self.b
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = _as(gradOutput, self.W.dtype) @ self.W
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        g = _as(gradOutput, self.W.dtype)
        self.gradW += g.T @ _as(input, self.W.dtype)
        self.gradb += g.sum(axis=0)

    def __repr__(self):
        return f"Linear({self.W.shape[1]} -> {self.W.shape[0]})"


class LogSoftMax(Module):
    """log(softmax(x)) along axis 1, computed stably (max subtracted first)."""

    def updateOutput(self, input):
        shifted = input - input.max(axis=1, keepdims=True)
        self.output = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return self.output

    def updateGradInput(self, input, gradOutput):
        # d/dx_j sum_i g_i (x_i - lse(x)) = g_j - softmax_j * sum_i g_i
        self.gradInput = gradOutput - np.exp(self.output) * gradOutput.sum(axis=1, keepdims=True)
        return self.gradInput


class Criterion:
    """Base class of losses: ``forward(input, target)`` -> scalar, ``backward`` -> gradient."""

    def __init__(self):
        self.output = None
        self.gradInput = None

    def forward(self, input, target):
        return self.updateOutput(input, target)

    def backward(self, input, target):
        return self.updateGradInput(input, target)

    def __call__(self, input, target):
        return self.forward(input, target)


class ClassNLLCriterion(Criterion):
    """Mean negative log-likelihood of log-probabilities (pair with :class:`LogSoftMax`).

    ``target`` is either integer class labels, shape (N,), or one-hot rows,
    shape (N, K) (the course's convention).
    """

    @staticmethod
    def _onehot(input, target):
        target = np.asarray(target)
        if target.ndim == 2:
            return target.astype(input.dtype, copy=False)
        onehot = np.zeros_like(input)
        onehot[np.arange(len(target)), target] = 1
        return onehot

    def updateOutput(self, input, target):
        self.output = float(-(input * self._onehot(input, target)).sum() / len(input))
        return self.output

    def updateGradInput(self, input, target):
        self.gradInput = -self._onehot(input, target) / len(input)
        return self.gradInput


def sgd_momentum(variables, gradients, config, state):
    """SGD with momentum, in place: ``v = momentum*v + lr*g; x -= v``.

    Parameters
    ----------
    variables, gradients : list of lists of ndarray
        As returned by ``Sequential.getParameters()`` / ``getGradParameters()``.
    config : dict
        ``learning_rate`` and ``momentum``.
    state : dict
        Carried between calls (holds the velocities).
    """
    velocity = state.setdefault("accumulated_grads", {})
    i = 0
    for layer_vars, layer_grads in zip(variables, gradients):
        for var, grad in zip(layer_vars, layer_grads):
            v = velocity.setdefault(i, np.zeros_like(grad))
            v *= config["momentum"]
            v += config["learning_rate"] * grad
            var -= v
            i += 1


def adam_optimizer(variables, gradients, config, state):
    """Adam (Kingma & Ba, 2015), in place.

    Parameters
    ----------
    variables, gradients : list of lists of ndarray
    config : dict
        ``learning_rate``, ``beta1``, ``beta2``, ``epsilon``.
    state : dict
        Carried between calls (moments and step count).
    """
    m = state.setdefault("m", {})
    v = state.setdefault("v", {})
    state["t"] = t = state.get("t", 0) + 1
    b1, b2, eps = config["beta1"], config["beta2"], config["epsilon"]
    # Bias correction folded into the step size, as in the paper's section 2.
    lr_t = config["learning_rate"] * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    i = 0
    for layer_vars, layer_grads in zip(variables, gradients):
        for var, grad in zip(layer_vars, layer_grads):
            mi = m.setdefault(i, np.zeros_like(grad))
            vi = v.setdefault(i, np.zeros_like(grad))
            mi *= b1
            mi += (1 - b1) * grad
            vi *= b2
            vi += (1 - b2) * grad * grad
            var -= (lr_t * mi / (np.sqrt(vi) + eps)).astype(var.dtype, copy=False)
            i += 1
