"""Check the example network's gradients: finite differences, and torch autograd if installed.

On a tiny float64 batch, the gradient of the loss with respect to the input
and to every parameter, as back-propagated by the framework (cpool's
``MaxPool2d`` / ``AvgPool2d.updateGradInput`` included), is compared with

* central finite differences of the loss (every coordinate, or a random
  sample of them for large tensors), and
* PyTorch autograd on the same weights (``torch.nn.functional``), when torch
  can be imported. torch is optional: it is imported only here, lazily.

Every variant of the network is checked (max and average pooling, each
with the flatten and the global-average head) unless ``--pool`` / ``--head``
pick one.

Usage::

    python examples/gradcheck.py                          # cpool, every variant, small net + training size
    python examples/gradcheck.py --pool avg --head gap    # one variant
    python examples/gradcheck.py --impl loop              # the original loop layer (max pooling)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from npnet import ClassNLLCriterion, Conv2d, Flatten, GlobalAvgPool2d, Linear, LogSoftMax, ReLU  # noqa: E402
from train_mnist import HEADS, IMPLS, POOLS, build_net  # noqa: E402

__all__ = ["analytic_gradients", "finite_difference_gradients", "torch_gradients", "compare", "check"]


def named_parameters(net):
    """[(name, array)] of every parameter, e.g. ``('0.Conv2d.W', W)``."""
    out = []
    for i, m in enumerate(net.modules):
        for suffix, p in zip(("W", "b"), m.getParameters()):
            out.append((f"{i}.{type(m).__name__}.{suffix}", p))
    return out


def loss_of(net, criterion, x, y) -> float:
    return criterion.forward(net.forward(x), y)


def analytic_gradients(net, criterion, x, y) -> dict:
    """{'input': dL/dx, name: dL/dparam} from one forward/backward pass of the framework."""
    net.zeroGradParameters()
    out = net.forward(x)
    criterion.forward(out, y)
    net.backward(x, criterion.backward(out, y))
    grads = {"input": np.array(net.gradInput, dtype=np.float64)}
    for (name, _), (_, g) in zip(named_parameters(net), _named_grads(net)):
        grads[name] = g.copy()
    return grads


def _named_grads(net):
    out = []
    for i, m in enumerate(net.modules):
        for suffix, g in zip(("W", "b"), m.getGradParameters()):
            out.append((f"{i}.{type(m).__name__}.{suffix}", g))
    return out


def finite_difference_gradients(net, criterion, x, y, eps=1e-6, max_coords=None, rng=None) -> dict:
    """Central differences ``(L(t + eps) - L(t - eps)) / (2 eps)`` per coordinate.

    Parameters
    ----------
    max_coords : int, optional
        Check at most this many coordinates per tensor (chosen by ``rng``);
        the others are NaN in the result. ``None`` checks every coordinate.

    Returns
    -------
    dict
        Same keys as :func:`analytic_gradients`.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    x = np.array(x, dtype=np.float64)
    tensors = [("input", x)] + named_parameters(net)
    grads = {}
    for name, t in tensors:
        g = np.full(t.shape, np.nan)
        flat_t, flat_g = t.reshape(-1), g.reshape(-1)  # views: perturbing flat_t perturbs t
        coords = np.arange(t.size)
        if max_coords is not None and t.size > max_coords:
            coords = rng.choice(t.size, max_coords, replace=False)
        for c in coords:
            orig = flat_t[c]
            flat_t[c] = orig + eps
            plus = loss_of(net, criterion, x, y)
            flat_t[c] = orig - eps
            minus = loss_of(net, criterion, x, y)
            flat_t[c] = orig
            flat_g[c] = (plus - minus) / (2 * eps)
        grads[name] = g
    return grads


def torch_gradients(net, x, y):
    """The same loss and gradients by torch autograd, or ``None`` without torch.

    The network is rebuilt layer by layer with ``torch.nn.functional`` on
    copies of the framework's weights; every max-pooling layer (cpool's or
    the loop one) becomes ``F.max_pool2d(kernel_size)``, ``cpool.AvgPool2d``
    ``F.avg_pool2d`` with its arguments, and the global-average head
    ``F.adaptive_avg_pool2d(h, 1)``.
    """
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    xt = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    params = {}
    h = xt
    for i, m in enumerate(net.modules):
        name = f"{i}.{type(m).__name__}"
        if isinstance(m, (Conv2d, Linear)):
            W = torch.tensor(m.W, dtype=torch.float64, requires_grad=True)
            b = torch.tensor(m.b, dtype=torch.float64, requires_grad=True)
            params[name + ".W"], params[name + ".b"] = W, b
            h = F.conv2d(h, W, b, padding=m.padding) if isinstance(m, Conv2d) else F.linear(h, W, b)
        elif isinstance(m, ReLU):
            h = F.relu(h)
        elif isinstance(m, Flatten):
            h = h.flatten(1)
        elif isinstance(m, LogSoftMax):
            h = F.log_softmax(h, dim=1)
        elif type(m).__name__ == "MaxPool2d":
            h = F.max_pool2d(h, m.kernel_size)
        elif type(m).__name__ == "AvgPool2d":
            h = F.avg_pool2d(h, m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad,
                             m.divisor_override)
        elif isinstance(m, GlobalAvgPool2d):
            h = F.adaptive_avg_pool2d(h, 1).flatten(1)
        else:
            raise TypeError(f"torch_gradients: no torch equivalent for layer {i} ({m!r})")
    loss = F.nll_loss(h, torch.as_tensor(np.asarray(y), dtype=torch.int64))
    loss.backward()
    grads = {"input": xt.grad.numpy()}
    grads.update({k: v.grad.numpy() for k, v in params.items()})
    return float(loss.detach()), grads


def compare(reference: dict, grads: dict) -> dict:
    """Max relative error per tensor, ``max|a - r| / max(max|r|, tiny)``,
    over the coordinates where ``reference`` is not NaN."""
    errors = {}
    for name, r in reference.items():
        a = grads[name]
        mask = ~np.isnan(r)
        scale = max(float(np.abs(r[mask]).max(initial=0.0)), 1e-12)
        errors[name] = float(np.abs(a[mask] - r[mask]).max(initial=0.0)) / scale
    return errors


def check(impl="cpool", in_shape=(1, 8, 8), channels=(2, 3), n_classes=4, batch=2, max_coords=None,
          seed=0, use_torch=True, *, pool="max", head="flatten"):
    """Run both comparisons on a fresh float64 network; returns a results dict.

    Keys: ``loss``, ``fd`` (errors vs finite differences), and ``torch``
    (errors vs autograd, with ``torch_loss``) or ``None`` without torch.
    """
    rng = np.random.default_rng(seed)
    net = build_net(impl, in_shape, n_classes, channels, dtype=np.float64, seed=seed, pool=pool, head=head)
    crit = ClassNLLCriterion()
    x = rng.standard_normal((batch,) + tuple(in_shape))
    y = rng.integers(0, n_classes, batch)
    loss = loss_of(net, crit, x, y)
    grads = analytic_gradients(net, crit, x, y)
    fd = finite_difference_gradients(net, crit, x, y, max_coords=max_coords, rng=rng)
    result = {"loss": loss, "fd": compare(fd, grads), "torch": None, "torch_loss": None}
    if use_torch:
        tg = torch_gradients(net, x, y)
        if tg is not None:
            result["torch_loss"], tgrads = tg
            result["torch"] = compare(tgrads, grads)
    return result


def _print(title, res):
    print(title)
    print(f"  loss {res['loss']:.12f}" + (f" (torch {res['torch_loss']:.12f})" if res["torch"] else ""))
    print(f"  {'tensor':<20}{'vs finite diff':>16}{'vs torch':>12}")
    for name, err in res["fd"].items():
        t = f"{res['torch'][name]:.1e}" if res["torch"] else "n/a"
        print(f"  {name:<20}{err:>16.1e}{t:>12}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Gradient check of the example CNN (float64).")
    p.add_argument("--impl", choices=IMPLS, default="cpool", help="who pools (see train_mnist.py)")
    p.add_argument("--pool", choices=POOLS + ("all",), default="all", help="max or avg pooling (default: both)")
    p.add_argument("--head", choices=HEADS + ("all",), default="all", help="flatten or gap head (default: both)")
    p.add_argument("--tol", type=float, default=1e-6,
                   help="largest relative error accepted against finite differences")
    p.add_argument("--torch-tol", type=float, default=1e-10,
                   help="largest relative error accepted against torch autograd (same float64 math)")
    p.add_argument("--coords", type=int, default=40,
                   help="coordinates sampled per tensor for the training-size network")
    args = p.parse_args(argv)
    pools = POOLS if args.pool == "all" else (args.pool,)
    heads = HEADS if args.head == "all" else (args.head,)
    if args.impl == "loop":
        if args.pool == "avg":
            p.error("--impl loop is max pooling only")
        pools = ("max",)
    runs = []
    for pool in pools:
        for head in heads:
            variant = f"impl {args.impl}, {pool} pooling, {head} head"
            runs.append((f"small network, 2 images 1x8x8, every coordinate ({variant})",
                         check(args.impl, pool=pool, head=head)))
            if args.impl != "loop":  # the loop layer makes hundreds of 28x28 forwards take minutes
                runs.append((f"training architecture, 2 images 1x28x28, {args.coords} coordinates per tensor "
                             f"({variant})",
                             check(args.impl, (1, 28, 28), (8, 16), 10, max_coords=args.coords, pool=pool,
                                   head=head)))
    worst_fd = worst_torch = 0.0
    for title, res in runs:
        _print(title, res)
        worst_fd = max([worst_fd, *res["fd"].values()])
        worst_torch = max([worst_torch, *(res["torch"] or {}).values()])
    ok = worst_fd <= args.tol
    print(f"{'OK' if ok else 'FAILED'}: largest relative error vs finite differences {worst_fd:.1e} "
          f"(tolerance {args.tol:.0e})")
    if runs[0][1]["torch"] is None:
        print("torch not installed: autograd comparison skipped")
    else:
        ok_t = worst_torch <= args.torch_tol
        print(f"{'OK' if ok_t else 'FAILED'}: largest relative error vs torch autograd {worst_torch:.1e} "
              f"(tolerance {args.torch_tol:.0e})")
        ok = ok and ok_t
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
