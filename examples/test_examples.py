"""Tests of the end-to-end example CNN in this folder: the IDX reader, the
loop and cpool pooling layers (max and average pooling, the global-average
head), gradients, training and the command line.

    python -m pytest examples -q

They import the example modules from this folder (put on sys.path here, so
that any pytest import mode finds them), and cpool from wherever it is
installed (falling back to the checkout, see ``train_mnist.import_cpool``).
torch is optional: its comparison is skipped without it. Everything runs on
small generated data; the real Fashion-MNIST run is documented in
examples/README.md.
"""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gradcheck
import mnist_idx
import npnet
import train_mnist
from loop_pool import MaxPool2d as LoopMaxPool2d

cpool = train_mnist.import_cpool()


# --------------------------------------------------------------------------
# IDX reader
# --------------------------------------------------------------------------

def _header(code, dims):
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, dtype=">u4").tobytes()


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("array", [
    np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    np.array([3, 1, 4, 1, 5], dtype=np.uint8),
    np.array([[-2, 300], [7, -32768]], dtype=np.int16),
    np.array([1.5, -2.25, np.pi], dtype=np.float32),
    np.array([[1e300, -0.0]], dtype=np.float64),
])
def test_idx_roundtrip(tmp_path, array, gz):
    path = mnist_idx.write_idx(tmp_path / ("a.idx" + (".gz" if gz else "")), array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz
    back = mnist_idx.read_idx(path)
    assert back.dtype == array.dtype.newbyteorder("=") and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_idx_gzip_detected_by_content_not_name(tmp_path):
    data = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    plain_named_gz = mnist_idx.write_idx(tmp_path / "x.gz", data, gz=False)
    gz_named_plain = mnist_idx.write_idx(tmp_path / "y", data, gz=True)
    np.testing.assert_array_equal(mnist_idx.read_idx(plain_named_gz), data)
    np.testing.assert_array_equal(mnist_idx.read_idx(gz_named_plain), data)


def test_idx_reads_big_endian_layout(tmp_path):
    # Written by hand, not by write_idx, so the test does not only check
    # that the reader undoes the writer.
    p = tmp_path / "be"
    p.write_bytes(_header(0x0C, (2,)) + b"\x00\x00\x01\x02\xff\xff\xff\xfe")
    np.testing.assert_array_equal(mnist_idx.read_idx(p), [258, -2])


@pytest.mark.parametrize("name, content, message", [
    ("empty", b"", "too short for the 4-byte IDX magic"),
    ("badmagic", b"\x1f\x00\x08\x01" + b"\x00\x00\x00\x01" + b"\x05", "bad magic number"),
    ("badcode", b"\x00\x00\x07\x01" + b"\x00\x00\x00\x01" + b"\x05", "unknown IDX type code 0x07"),
    ("shorthead", b"\x00\x00\x08\x03" + b"\x00\x00\x00\x01", "truncated header"),
    ("shortdata", _header(0x08, (2, 3, 3)) + bytes(17), "truncated data"),
    ("longdata", _header(0x08, (2, 3, 3)) + bytes(19), "the header does not match the data"),
    ("shortint", _header(0x0B, (3,)) + bytes(5), "truncated data"),
])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_malformed_raises_value_error_naming_file(tmp_path, name, content, message, gz):
    path = tmp_path / (name + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(ValueError, match=message) as info:
        mnist_idx.read_idx(path)
    assert str(path) in str(info.value)


def test_idx_damaged_gzip(tmp_path):
    blob = gzip.compress(_header(0x08, (4, 28, 28)) + bytes(4 * 784))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="damaged gzip data") as info:
        mnist_idx.read_idx(path)
    assert str(path) in str(info.value)


def test_idx_missing_file(tmp_path):
    path = tmp_path / "nope-idx3-ubyte"
    with pytest.raises(FileNotFoundError, match="no such file") as info:
        mnist_idx.read_idx(path)
    assert str(path) in str(info.value)


def test_idx_expected_dtype_and_ndim(tmp_path):
    f32 = mnist_idx.write_idx(tmp_path / "f", np.zeros((2, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"element type is float32 .*0x0D.*expected uint8"):
        mnist_idx.read_idx(f32, expected_dtype=np.uint8)
    labels = mnist_idx.write_idx(tmp_path / "l", np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match="has 1 dimension\\(s\\), expected 3"):
        mnist_idx.read_idx(labels, expected_ndim=3)


def _write_dataset(directory, n_train, n_test, size=28, gz=True, dotted=False, classes=10, seed=0):
    """A synthetic MNIST-format data set; returns the arrays written."""
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        labels = rng.integers(0, classes, n).astype(np.uint8)
        sep = "." if dotted else "-"
        mnist_idx.write_idx(Path(directory) / f"{split}-images{sep}idx3-ubyte{suffix}", images)
        mnist_idx.write_idx(Path(directory) / f"{split}-labels{sep}idx1-ubyte{suffix}", labels)
        out[split] = (images, labels)
    return out


@pytest.mark.parametrize("gz, dotted", [(True, False), (False, False), (False, True)])
def test_load_mnist_directory(tmp_path, gz, dotted):
    written = _write_dataset(tmp_path, 7, 3, size=5, gz=gz, dotted=dotted)
    (xtr, ytr), (xte, yte) = mnist_idx.load_mnist(tmp_path)
    np.testing.assert_array_equal(xtr, written["train"][0])
    np.testing.assert_array_equal(ytr, written["train"][1])
    np.testing.assert_array_equal(xte, written["t10k"][0])
    np.testing.assert_array_equal(yte, written["t10k"][1])


def test_label_image_count_mismatch(tmp_path):
    images = mnist_idx.write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 4, 4), np.uint8))
    labels = mnist_idx.write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="holds 5 images but .* holds 4 labels") as info:
        mnist_idx.load_split(images, labels)
    assert str(images) in str(info.value) and str(labels) in str(info.value)


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        mnist_idx.load_mnist(tmp_path / "absent")
    mnist_idx.write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(FileNotFoundError, match=r"no train labels file in .*train-labels-idx1-ubyte\.gz"):
        mnist_idx.load_mnist(tmp_path)


def test_cli_reports_missing_data(tmp_path, capsys):
    assert train_mnist.main(["--data", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no train images file" in err and "--data DIR" in err


# --------------------------------------------------------------------------
# Loop layer vs cpool layer
# --------------------------------------------------------------------------

@pytest.mark.parametrize("backend", [None, "numpy"])
@pytest.mark.parametrize("shape, ties", [((3, 4, 12, 12), False), ((2, 3, 13, 11), False), ((2, 3, 8, 8), True)])
def test_loop_and_cpool_layers_agree(backend, shape, ties):
    rng = np.random.default_rng(1)
    if ties:
        # Few distinct values: most windows hold ties, and both layers must
        # keep the first maximum in row-major order.
        x = rng.integers(0, 3, shape).astype(np.float32)
    else:
        x = rng.standard_normal(shape).astype(np.float32)
    loop, fast = LoopMaxPool2d(2), cpool.MaxPool2d(2, backend=backend)
    out_loop, out_fast = loop.updateOutput(x), fast.updateOutput(x)
    assert out_fast.dtype == np.float32 and out_fast.shape == out_loop.shape
    np.testing.assert_array_equal(out_fast, out_loop)
    np.testing.assert_array_equal(fast.index, loop.index)
    # cpool's own (PyTorch) index format: row * W + col.
    np.testing.assert_array_equal(fast.indices, loop.index[..., 0] * shape[3] + loop.index[..., 1])
    g = rng.standard_normal(out_loop.shape).astype(np.float32)
    np.testing.assert_array_equal(fast.backward(x, g), loop.backward(x, g))


def test_global_average_head():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5, 7, 6))
    for backend in (None, "numpy"):
        gap = npnet.GlobalAvgPool2d((7, 6), backend=backend)
        out = gap.forward(x)
        assert out.shape == (3, 5)
        np.testing.assert_allclose(out, x.mean(axis=(2, 3)), rtol=1e-13)
        g = rng.standard_normal((3, 5))
        np.testing.assert_allclose(gap.backward(x, g), np.broadcast_to(g[:, :, None, None] / 42, x.shape),
                                   rtol=1e-13)
    with pytest.raises(ValueError, match=r"GlobalAvgPool2d\(\(7, 6\)\) was given feature maps of \(7, 7\)"):
        gap.forward(np.zeros((1, 5, 7, 7)))


def test_make_pool_and_head():
    assert isinstance(train_mnist.make_pool("cpool", 2, "avg"), cpool.AvgPool2d)
    assert train_mnist.make_pool("cpool-numpy", 2, "avg").timing_label == "AvgPool2d[cpool-numpy]"
    assert train_mnist.make_pool("loop", 2, "max").timing_label == "MaxPool2d[loop]"
    with pytest.raises(ValueError, match="max pooling only"):
        train_mnist.make_pool("loop", 2, "avg")
    with pytest.raises(ValueError, match="pool must be one of max, avg"):
        train_mnist.make_pool("cpool", 2, "min")
    net = train_mnist.build_net("cpool", (1, 28, 28), 10, (8, 16), pool="avg", head="gap")
    assert [type(m).__name__ for m in net.modules] == ["Conv2d", "ReLU", "AvgPool2d", "Conv2d", "ReLU",
                                                       "AvgPool2d", "GlobalAvgPool2d", "Linear", "LogSoftMax"]
    assert net.modules[6].size == (7, 7) and net.modules[7].W.shape == (10, 16)


def test_cpool_layer_fits_the_framework_protocol():
    layer = cpool.MaxPool2d(2)
    net = npnet.Sequential(npnet.ReLU(), layer, npnet.Flatten())
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    out = net.forward(x)
    assert out.shape == (2, 12)
    assert net.backward(x, np.ones_like(out)).shape == x.shape
    assert net.getParameters() == [[], [], []] and net.getGradParameters() == [[], [], []]
    net.zeroGradParameters()
    net.evaluate()
    assert layer.training is False
    net.train()
    assert layer.training is True


# --------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------

@pytest.mark.parametrize("impl, pool, head", train_mnist.VARIANTS)
def test_gradients_match_finite_differences(impl, pool, head):
    res = gradcheck.check(impl, use_torch=False, pool=pool, head=head)
    assert set(res["fd"]) == {"input", "0.Conv2d.W", "0.Conv2d.b", "3.Conv2d.W", "3.Conv2d.b",
                              "7.Linear.W", "7.Linear.b"}
    assert max(res["fd"].values()) < 1e-6, res["fd"]


@pytest.mark.parametrize("pool", train_mnist.POOLS)
@pytest.mark.parametrize("head", train_mnist.HEADS)
def test_training_architecture_gradients_sampled(pool, head):
    res = gradcheck.check("cpool", (1, 28, 28), (8, 16), 10, max_coords=8, use_torch=False, pool=pool, head=head)
    assert max(res["fd"].values()) < 1e-6, res["fd"]


def test_gradcheck_command_checks_every_variant(capsys):
    assert gradcheck.main(["--coords", "2"]) == 0
    out = capsys.readouterr().out
    for pool in train_mnist.POOLS:
        for head in train_mnist.HEADS:
            assert out.count(f"impl cpool, {pool} pooling, {head} head") == 2, (pool, head)


@pytest.mark.parametrize("impl, pool, head", [("cpool", "max", "flatten"), ("loop", "max", "flatten"),
                                              ("cpool", "avg", "flatten"), ("cpool", "max", "gap"),
                                              ("cpool-numpy", "avg", "gap")])
def test_gradients_match_torch_autograd(impl, pool, head):
    pytest.importorskip("torch")
    res = gradcheck.check(impl, max_coords=1, pool=pool, head=head)
    assert res["torch"] is not None
    assert abs(res["loss"] - res["torch_loss"]) < 1e-12
    assert max(res["torch"].values()) < 1e-10, res["torch"]


@pytest.mark.parametrize("pool, head", [("max", "flatten"), ("avg", "gap")])
def test_layers_keep_float32(pool, head):
    net = train_mnist.build_net("cpool", (1, 12, 12), 4, (2, 3), pool=pool, head=head)
    x = np.zeros((2, 1, 12, 12), np.float32)
    out = net.forward(x)
    assert all(a.dtype == np.float32 for a in net.inputs)
    net.backward(x, np.ones_like(out))
    assert net.gradInput.dtype == np.float32


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

def _textures(n, size=12, seed=0):
    """Learnable without positions (a global-average head): class c is a 4x4
    patch anywhere over noise, of horizontal stripes, vertical stripes, a
    checkerboard or uniform brightness."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.integers(0, 60, (n, size, size)).astype(np.uint8)
    i, j = np.mgrid[:4, :4]
    patterns = [(i % 2) * 255, (j % 2) * 255, ((i + j) % 2) * 255, np.full((4, 4), 200)]
    for k, c in enumerate(y):
        r0, c0 = rng.integers(0, size - 3, 2)
        x[k, r0:r0 + 4, c0:c0 + 4] = patterns[int(c)]
    return x, y.astype(np.uint8)


def _synthetic(n, size=12, classes=4, seed=0):
    """Learnable images: class c has a bright 4x4 patch in quadrant c, over noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.integers(0, 90, (n, size, size)).astype(np.uint8)
    half = size // 2
    for i, c in enumerate(y):
        r, q = divmod(int(c), 2)
        r0, c0 = r * half + rng.integers(0, half - 3), q * half + rng.integers(0, half - 3)
        x[i, r0:r0 + 4, c0:c0 + 4] = rng.integers(180, 256, (4, 4))
    return x, y.astype(np.uint8)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_training_reduces_loss(optimizer):
    images, labels = _synthetic(320)
    X = train_mnist.preprocess(images, images.mean() / 255, images.std() / 255)
    net = train_mnist.build_net("cpool", X.shape[1:], 4)
    crit = npnet.ClassNLLCriterion()
    opt, config = train_mnist.OPTIMIZERS[optimizer]
    state, rng, timer = {}, np.random.default_rng(0), npnet.LayerTimer()
    first = train_mnist.train_epoch(net, crit, opt, config, state, X, labels, 32, rng, timer)
    for _ in range(3):
        last = train_mnist.train_epoch(net, crit, opt, config, state, X, labels, 32, rng, timer)
    assert last["loss"] < 0.5 * first["loss"], (first["loss"], last["loss"])
    _, acc = train_mnist.evaluate(net, crit, X, labels)
    assert acc > 0.9
    assert "MaxPool2d[cpool-" + cpool.backend + "]" in timer and "Conv2d" in timer


@pytest.mark.parametrize("pool, head", [("avg", "flatten"), ("avg", "gap"), ("max", "gap")])
def test_training_reduces_loss_with_average_pooling(pool, head):
    images, labels = _textures(320) if head == "gap" else _synthetic(320)
    X = train_mnist.preprocess(images, images.mean() / 255, images.std() / 255)
    net = train_mnist.build_net("cpool", X.shape[1:], 4, pool=pool, head=head)
    crit = npnet.ClassNLLCriterion()
    opt, config = train_mnist.OPTIMIZERS["adam"]
    if head == "gap":  # 16 features to learn from, not 16 * 3 * 3: a larger step for this short run
        config = dict(config, learning_rate=1e-2)
    state, rng, timer = {}, np.random.default_rng(0), npnet.LayerTimer()
    first = train_mnist.train_epoch(net, crit, opt, config, state, X, labels, 32, rng, timer)
    for _ in range(5):
        last = train_mnist.train_epoch(net, crit, opt, config, state, X, labels, 32, rng, timer)
    assert last["loss"] < 0.5 * first["loss"], (first["loss"], last["loss"])
    _, acc = train_mnist.evaluate(net, crit, X, labels)
    assert acc > 0.9
    label = ("MaxPool2d" if pool == "max" else "AvgPool2d") + "[cpool-" + cpool.backend + "]"
    assert label in timer and (head != "gap" or "GlobalAvgPool2d[cpool-" + cpool.backend + "]" in timer)


def test_cli_end_to_end(tmp_path, capsys):
    _write_dataset(tmp_path, 96, 32, size=12, classes=3)
    assert train_mnist.main(["--data", str(tmp_path), "--epochs", "1", "--batch-size", "32",
                             "--impl", "cpool-numpy"]) == 0
    captured = capsys.readouterr()
    assert "96/96" in captured.err  # the progress bar
    assert "epoch 1: train loss" in captured.out and "test loss" in captured.out
    assert "MaxPool2d[cpool-numpy]" in captured.out and "max pooling (forward + backward)" in captured.out


def test_cli_loop_with_limit_extrapolates(tmp_path, capsys):
    _write_dataset(tmp_path, 64, 16, size=12, classes=3)
    assert train_mnist.main(["--data", str(tmp_path), "--epochs", "1", "--impl", "loop", "--limit", "16",
                             "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "extrapolated x4.0 to a full epoch of 64 images" in out
    assert "MaxPool2d[loop]" in out and "extrapolated to 64 images" in out


def test_cli_average_pooling_and_gap_head(tmp_path, capsys):
    _write_dataset(tmp_path, 64, 16, size=12, classes=3)
    assert train_mnist.main(["--data", str(tmp_path), "--epochs", "1", "--batch-size", "32", "--pool", "avg",
                             "--head", "gap", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "pooling: avg pooling, gap head, cpool" in out and "GlobalAvgPool2d(3x3 -> 1x1" in out
    assert "AvgPool2d[cpool-" in out and "GlobalAvgPool2d[cpool-" in out
    assert "average pooling (forward + backward)" in out


@pytest.mark.parametrize("argv, message", [
    (["--pool", "cpool"], "'cpool' is an implementation: use --impl cpool"),
    (["--pool", "min"], "invalid choice: 'min'"),
    (["--impl", "loop", "--pool", "avg"], "--impl loop is max pooling only"),
    (["--head", "mean"], "invalid choice: 'mean'"),
])
def test_cli_rejects_bad_choices(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        train_mnist.parse_args(argv)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_progress_bar_plain_stream():
    stream = io.StringIO()
    bar = train_mnist.Progress(100, "epoch 1/1", stream=stream)
    for done in range(10, 101, 10):
        bar.update(done, 0.5, 0.75)
    bar.update(100, 0.5, 0.75, final=True)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in stream.getvalue()
    assert lines[-1].startswith("epoch 1/1 [" + "#" * 30 + "] 100/100 loss 0.5000 acc 0.750")
