"""Train a small CNN on an MNIST-format data set with the NumPy framework in :mod:`npnet`.

The network is the one from the question that started cpool::

    Conv2d(1->8, 3x3, pad 1) - ReLU - MaxPool2d(2)
    Conv2d(8->16, 3x3, pad 1) - ReLU - MaxPool2d(2)
    Flatten - Linear(16*7*7 -> 10) - LogSoftMax        + ClassNLLCriterion

``--pool`` picks the pooling of the two stages: ``max`` (``MaxPool2d(2)``) or
``avg`` (``cpool.AvgPool2d(2)``, the same kernel and stride). ``--head``
picks the classifier head: ``flatten`` (above) or ``gap``, global average
pooling (``GlobalAvgPool2d``: the mean of each of the 16 7x7 maps) then
``Linear(16 -> 10)``. ``--impl`` picks who computes the pooling: ``cpool``
(the default backend), ``cpool-numpy`` (``backend='numpy'``) or ``loop``
(the original loop layer in :mod:`loop_pool`, max pooling only; use it with
``--limit``, a full epoch takes hours). After each epoch it prints the time
spent in each layer type; with ``--limit`` it also extrapolates that epoch to
the full training set.

Examples
--------
::

    python examples/train_mnist.py --epochs 2
    python examples/train_mnist.py --epochs 2 --pool avg --head gap
    python examples/train_mnist.py --epochs 1 --impl loop --limit 300
    python examples/train_mnist.py --data ~/data/mnist --epochs 1

Data are read from disk only (default: Fashion-MNIST from Debian's
``dataset-fashion-mnist`` package); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# BLAS threads. The network is small: multi-threaded BLAS keeps its worker
# threads spinning between the many small matrix products, and when other
# programs hold the cores they fight everything else. On this project's
# 2-core machine an epoch took 13.1 s with two OpenBLAS threads and 15.8 s
# with one when the machine was idle, but with other work running the
# default threads made it about 4x slower (81 s against 20 s). One thread
# is never far from the best, so, run as a script, BLAS gets one thread
# unless the environment already says otherwise or --blas-threads N asks for
# more. The variables must be set before NumPy loads its BLAS, hence here,
# before the imports below.
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def _blas_threads_from_argv(argv):
    """--blas-threads's value as given on the command line, or None."""
    for i, arg in enumerate(argv):
        if arg == "--blas-threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--blas-threads="):
            return arg.split("=", 1)[1]
    return None


if __name__ == "__main__":
    _asked = _blas_threads_from_argv(sys.argv[1:])
    for _var in BLAS_VARIABLES:
        if _asked is not None:
            os.environ[_var] = _asked  # an explicit option wins over the environment
        else:
            os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

# Runs as a script from anywhere: the sibling modules live next to this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import mnist_idx  # noqa: E402
from npnet import (  # noqa: E402
    ClassNLLCriterion,
    Conv2d,
    Flatten,
    GlobalAvgPool2d,
    LayerTimer,
    Linear,
    LogSoftMax,
    ReLU,
    Sequential,
    adam_optimizer,
    sgd_momentum,
)

IMPLS = ("cpool", "cpool-numpy", "loop")
POOLS = ("max", "avg")
HEADS = ("flatten", "gap")
#: Every (impl, pool, head) build_net takes (the loop layer is max pooling only).
VARIANTS = tuple((i, p, h) for i in IMPLS for p in POOLS for h in HEADS if not (i == "loop" and p == "avg"))

__all__ = ["IMPLS", "POOLS", "HEADS", "VARIANTS", "make_pool", "build_net", "preprocess", "train_epoch", "evaluate",
           "timing_report", "main"]


def import_cpool():
    """Import cpool: the installed one, else the one in the checkout this file belongs to.

    The fallback lets ``python examples/train_mnist.py`` run straight after
    ``python setup.py build_ext --inplace``; an installed cpool always wins
    (the checkout is appended to ``sys.path``, not prepended).
    """
    try:
        import cpool
    except ImportError:
        root = Path(__file__).resolve().parent.parent
        if not (root / "cpool" / "__init__.py").is_file():
            raise
        sys.path.append(str(root))
        import cpool
    return cpool


def cpool_backend(impl: str):
    """(cpool, backend= argument, label) of a cpool implementation (``cpool`` or ``cpool-numpy``)."""
    cpool = import_cpool()
    if impl == "cpool-numpy":
        return cpool, "numpy", impl
    return cpool, None, f"cpool-{cpool.backend}"


def make_pool(impl: str, kernel_size: int = 2, pool: str = "max"):
    """The pooling layer of ``pool`` (one of :data:`POOLS`) computed by ``impl``
    (one of :data:`IMPLS`).

    The layer gets a ``timing_label`` attribute so the timing table says
    which pooling ran.
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    if impl == "loop":
        if pool != "max":
            raise ValueError("the loop layer is max pooling only: --pool avg needs --impl cpool or cpool-numpy")
        from loop_pool import MaxPool2d
        layer, label = MaxPool2d(kernel_size), impl
    elif impl in ("cpool", "cpool-numpy"):
        cpool, backend, label = cpool_backend(impl)  # only here, so --impl loop works without cpool
        layer_type = cpool.MaxPool2d if pool == "max" else cpool.AvgPool2d
        layer = layer_type(kernel_size, backend=backend)
    else:
        raise ValueError(f"impl must be one of {', '.join(IMPLS)}, got {impl!r}")
    layer.timing_label = f"{type(layer).__name__}[{label}]"
    return layer


def make_head(impl: str, head: str, channels: int, size, n_classes: int, dtype, rng):
    """The classifier head's layers: Flatten + Linear over every feature
    (``flatten``), or global average pooling + Linear over the channels
    (``gap``, computed by cpool: its default backend unless ``impl`` is
    ``cpool-numpy``)."""
    if head == "flatten":
        return [Flatten(), Linear(channels * size[0] * size[1], n_classes, dtype=dtype, rng=rng)]
    if head == "gap":
        _, backend, label = cpool_backend("cpool-numpy" if impl == "cpool-numpy" else "cpool")
        gap = GlobalAvgPool2d(size, backend=backend)
        gap.timing_label = f"GlobalAvgPool2d[{label}]"
        return [gap, Linear(channels, n_classes, dtype=dtype, rng=rng)]
    raise ValueError(f"head must be one of {', '.join(HEADS)}, got {head!r}")


def build_net(impl: str = "cpool", in_shape=(1, 28, 28), n_classes: int = 10, channels=(8, 16),
              dtype=np.float32, seed: int = 0, *, pool: str = "max", head: str = "flatten") -> Sequential:
    """The example CNN: two (conv 3x3 pad 1, ReLU, pool 2) stages, then a linear classifier.

    Parameters
    ----------
    impl : str
        Who computes the pooling, see :func:`make_pool`.
    in_shape : (C, H, W)
        One input image's shape.
    n_classes : int
    channels : (int, int)
        Output channels of the two convolutions.
    dtype : dtype-like
        Parameter dtype (float32 to train, float64 for gradient checks).
    seed : int
        Seed of the weight initialisation.
    pool : str
        ``max`` or ``avg`` pooling in the two stages.
    head : str
        ``flatten`` (Flatten + Linear) or ``gap`` (global average pooling +
        Linear), see :func:`make_head`.
    """
    rng = np.random.default_rng(seed)
    c, h, w = in_shape
    c1, c2 = channels
    return Sequential(
        Conv2d(c, c1, 3, padding=1, dtype=dtype, rng=rng),
        ReLU(),
        make_pool(impl, 2, pool),
        Conv2d(c1, c2, 3, padding=1, dtype=dtype, rng=rng),
        ReLU(),
        make_pool(impl, 2, pool),
        *make_head(impl, head, c2, (h // 4, w // 4), n_classes, dtype, rng),
        LogSoftMax(),
    )


def preprocess(images: np.ndarray, mean: float, std: float, dtype=np.float32) -> np.ndarray:
    """uint8 (N, H, W) -> standardised float (N, 1, H, W)."""
    x = images.astype(dtype)[:, None, :, :]
    x /= 255
    x -= dtype(mean)
    x /= dtype(std)
    return x


OPTIMIZERS = {
    "adam": (adam_optimizer, {"learning_rate": 2e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}),
    "sgd": (sgd_momentum, {"learning_rate": 5e-2, "momentum": 0.9}),
}


class Progress:
    """A one-line progress bar on stderr (carriage return on a terminal;
    a line every 10 % otherwise, so logs stay readable)."""

    def __init__(self, total: int, label: str, enabled: bool = True, stream=None):
        self.total, self.label, self.enabled = total, label, enabled
        self.stream = sys.stderr if stream is None else stream
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.start = time.perf_counter()
        self.last_draw = 0.0
        self.next_decile = 1
        self.last_done = None

    def update(self, done: int, loss: float, acc: float, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        elapsed = now - self.start
        frac = done / self.total if self.total else 1.0
        if self.tty:
            if not final and now - self.last_draw < 0.1:
                return
        elif (not final and frac * 10 < self.next_decile) or done == self.last_done:
            return
        self.last_done = done
        self.next_decile = int(frac * 10) + 1
        self.last_draw = now
        width = 30
        filled = int(width * frac)
        bar = "#" * filled + "-" * (width - filled)
        rate = done / elapsed if elapsed > 0 else 0.0
        line = (f"{self.label} [{bar}] {done}/{self.total} loss {loss:.4f} acc {acc:.3f} "
                f"{rate:,.0f} img/s {elapsed:.1f}s")
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def iterate_minibatches(X, y, batch_size, rng=None):
    """Yield (X, y) batches, in a random order when ``rng`` is given."""
    order = rng.permutation(len(X)) if rng is not None else np.arange(len(X))
    for start in range(0, len(X), batch_size):
        idx = order[start:start + batch_size]
        yield X[idx], y[idx]


def train_epoch(net, criterion, optimizer, config, state, X, y, batch_size=64, rng=None,
                timer=None, progress=None):
    """One pass over (X, y). Returns a dict with mean ``loss``, ``acc``,
    wall ``seconds`` and ``n`` images, plus per-batch ``losses``.

    When ``timer`` is given, the network's layers, the criterion and the
    optimizer are timed into it.
    """
    net.train()
    net.timer = timer
    losses, seen, correct, loss_sum = [], 0, 0, 0.0
    t_start = time.perf_counter()
    for xb, yb in iterate_minibatches(X, y, batch_size, rng):
        net.zeroGradParameters()
        out = net.forward(xb)
        t0 = time.perf_counter()
        loss = criterion.forward(out, yb)
        grad = criterion.backward(out, yb)
        t1 = time.perf_counter()
        net.backward(xb, grad)
        t2 = time.perf_counter()
        optimizer(net.getParameters(), net.getGradParameters(), config, state)
        t3 = time.perf_counter()
        if timer is not None:
            timer.add(type(criterion).__name__, "forward", t1 - t0)
            timer.add(f"optimizer ({optimizer.__name__})", "forward", t3 - t2)
        losses.append(loss)
        loss_sum += loss * len(xb)
        correct += int((out.argmax(axis=1) == yb).sum())
        seen += len(xb)
        if progress is not None:
            progress.update(seen, loss_sum / seen, correct / seen)
    seconds = time.perf_counter() - t_start
    net.timer = None
    if progress is not None:
        progress.update(seen, loss_sum / max(seen, 1), correct / max(seen, 1), final=True)
    return {"loss": loss_sum / max(seen, 1), "acc": correct / max(seen, 1), "seconds": seconds,
            "n": seen, "losses": losses}


def evaluate(net, criterion, X, y, batch_size=1000):
    """Mean loss and accuracy of ``net`` on (X, y), in evaluation mode."""
    net.evaluate()
    loss_sum, correct = 0.0, 0
    for xb, yb in iterate_minibatches(X, y, batch_size):
        out = net.forward(xb)
        loss_sum += criterion.forward(out, yb) * len(xb)
        correct += int((out.argmax(axis=1) == yb).sum())
    net.train()
    return loss_sum / len(X), correct / len(X)


def timing_report(timer: LayerTimer, epoch_seconds: float, n_images: int, full_n: int | None = None) -> str:
    """Table of seconds per layer type (forward, backward, total, share of the epoch).

    When ``full_n`` exceeds ``n_images`` the table is extrapolated linearly to
    ``full_n`` images (per-image costs do not depend on the epoch length).
    """
    scale = full_n / n_images if full_n and full_n > n_images else 1.0
    rows = sorted(timer.seconds.items(), key=lambda kv: -(kv[1]["forward"] + kv[1]["backward"]))
    head = (f"time per layer type, {n_images} images in {epoch_seconds:.2f} s"
            + (f", extrapolated x{scale:.1f} to a full epoch of {full_n} images: {epoch_seconds * scale:.1f} s"
               if scale != 1.0 else ""))
    lines = [head, f"  {'layer':<28}{'forward s':>11}{'backward s':>12}{'total s':>10}{'share':>8}"]
    accounted = 0.0
    for label, t in rows:
        tot = t["forward"] + t["backward"]
        accounted += tot
        lines.append(f"  {label:<28}{t['forward'] * scale:>11.2f}{t['backward'] * scale:>12.2f}"
                     f"{tot * scale:>10.2f}{tot / epoch_seconds:>8.1%}")
    rest = epoch_seconds - accounted
    lines.append(f"  {'other (batching, bookkeeping)':<28}{'':>11}{'':>12}{rest * scale:>10.2f}"
                 f"{rest / epoch_seconds:>8.1%}")
    return "\n".join(lines)


def pool_seconds(timer: LayerTimer) -> float:
    """Forward + backward seconds of the two stages' pooling layers in ``timer``
    (not the global-average head)."""
    return sum(t["forward"] + t["backward"] for label, t in timer.seconds.items()
               if label.startswith(("MaxPool2d", "AvgPool2d")))


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Train a small CNN on an MNIST-format data set (NumPy framework, "
                    "pooling by cpool or the original loop layer).")
    p.add_argument("--data", metavar="DIR", default=None,
                   help=f"folder with the four MNIST-format IDX files (default {mnist_idx.DEFAULT_DATA_DIR})")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--pool", default="max", type=_pool_choice, metavar="{max,avg}",
                   help="pooling of the two stages: max (MaxPool2d(2)) or avg (cpool.AvgPool2d(2))")
    p.add_argument("--head", choices=HEADS, default="flatten",
                   help="classifier head: flatten (Flatten + Linear) or gap (global average pooling, "
                        "cpool.AvgPool2d over the whole map, + Linear on the channels)")
    p.add_argument("--impl", choices=IMPLS, default="cpool",
                   help="who pools: cpool (default backend), cpool forced to NumPy, or the original loop "
                        "layer (max pooling only; use with --limit)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="use only the first N training and N test images; the timing table is then "
                        "extrapolated to the full training set")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: 2e-3 adam, 5e-2 sgd)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--blas-threads", type=int, default=1, metavar="N",
                   help="threads for NumPy's BLAS (default 1: faster for this small network; set before NumPy "
                        "loads, so only when run as a script)")
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.batch_size < 1:
        p.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.limit is not None and args.limit < 1:
        p.error(f"--limit must be at least 1, got {args.limit}")
    if args.blas_threads < 1:
        p.error(f"--blas-threads must be at least 1, got {args.blas_threads}")
    if args.impl == "loop" and args.pool != "max":
        p.error("--impl loop is max pooling only: --pool avg needs --impl cpool or cpool-numpy")
    return args


def _pool_choice(value: str) -> str:
    if value in POOLS:
        return value
    if value in IMPLS:  # the implementation was once chosen with --pool
        raise argparse.ArgumentTypeError(f"{value!r} is an implementation: use --impl {value} "
                                         "(--pool picks max or avg)")
    raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from max, avg)")


def blas_threads_description() -> str:
    """The BLAS thread count in effect, and where it came from, for the log."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        found = [f"{i['internal_api']} {i['num_threads']}" for i in threadpool_info() if i["user_api"] == "blas"]
        if found:
            return ", ".join(found) + " thread(s) (threadpoolctl)"
    set_vars = [f"{v}={os.environ[v]}" for v in BLAS_VARIABLES if v in os.environ]
    return ", ".join(set_vars) if set_vars else "the BLAS default"


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        (train_x, train_y), (test_x, test_y) = mnist_idx.load_mnist(args.data)
    except (FileNotFoundError, IsADirectoryError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    full_n = len(train_x)
    if args.limit is not None:
        train_x, train_y = train_x[:args.limit], train_y[:args.limit]
        test_x, test_y = test_x[:args.limit], test_y[:args.limit]
    # Standardise with the statistics of the training images used.
    mean = float(train_x.mean()) / 255
    std = float(train_x.std()) / 255
    X, Xt = preprocess(train_x, mean, std), preprocess(test_x, mean, std)
    n_classes = int(max(train_y.max(), test_y.max())) + 1

    try:
        net = build_net(args.impl, X.shape[1:], n_classes, seed=args.seed, pool=args.pool, head=args.head)
    except ImportError as exc:
        print(f"error: --impl {args.impl} --head {args.head} needs cpool ({exc}); build it with "
              "`python setup.py build_ext --inplace` or `pip install .` in the cpool checkout, "
              "or use --impl loop --head flatten", file=sys.stderr)
        return 2
    pool_desc = f"{args.pool} pooling, {args.head} head, {args.impl}"
    if args.impl.startswith("cpool") or args.head == "gap":
        cpool = import_cpool()
        threads = cpool.get_num_threads() if hasattr(cpool, "get_num_threads") else "?"
        pool_desc += (f" (cpool {getattr(cpool, '__version__', '?')} from {Path(cpool.__file__).parent}, "
                      f"layer {net.modules[2].timing_label}, {threads} thread(s))")
    optimizer, config = OPTIMIZERS[args.optimizer]
    config = dict(config)
    if args.lr is not None:
        config["learning_rate"] = args.lr
    print(f"data: {args.data or mnist_idx.DEFAULT_DATA_DIR}: {len(X)} train / {len(Xt)} test images "
          f"{X.shape[2]}x{X.shape[3]}, {n_classes} classes")
    print(f"pooling: {pool_desc}; optimizer {args.optimizer} {config}; batch {args.batch_size}")
    print(f"BLAS: {blas_threads_description()}")
    print(net)
    if args.impl == "loop" and args.limit is None:
        print("warning: --impl loop without --limit: an epoch of the loop layer takes hours",
              file=sys.stderr)

    criterion = ClassNLLCriterion()
    rng = np.random.default_rng(args.seed)
    state = {}
    for epoch in range(1, args.epochs + 1):
        timer = LayerTimer()
        progress = Progress(len(X), f"epoch {epoch}/{args.epochs}", enabled=not args.no_progress)
        stats = train_epoch(net, criterion, optimizer, config, state, X, train_y, args.batch_size,
                            rng, timer, progress)
        t0 = time.perf_counter()
        test_loss, test_acc = evaluate(net, criterion, Xt, test_y)
        eval_s = time.perf_counter() - t0
        print(f"epoch {epoch}: train loss {stats['loss']:.4f} acc {stats['acc']:.4f} "
              f"({stats['seconds']:.1f} s, {stats['n'] / stats['seconds']:,.0f} img/s) | "
              f"test loss {test_loss:.4f} acc {test_acc:.4f} ({eval_s:.1f} s)")
        print(timing_report(timer, stats["seconds"], stats["n"], full_n))
        pool_s = pool_seconds(timer)
        kind = "max" if args.pool == "max" else "average"
        print(f"{kind} pooling (forward + backward): {pool_s:.3f} s = {pool_s / stats['seconds']:.1%} of the "
              f"epoch, {pool_s / stats['n'] * 1e6:.1f} us per image"
              + (f"; extrapolated to {full_n} images: {pool_s * full_n / stats['n']:.1f} s"
                 if stats["n"] < full_n else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
