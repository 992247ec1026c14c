"""``python -m cpool``: print cpool's configuration and check it on this machine.

Prints :func:`cpool.show_config`, then checks the compiled backend against
the NumPy reference :mod:`cpool.slow`, bit for bit, on a handful of small
random inputs (values, indices and the backward; several dtypes; padding,
dilation, ceil_mode; NaN, infinities and ties; unusual memory layouts; the
:class:`cpool.MaxPool2d` layer; every instruction set this CPU runs), after
checking :mod:`cpool.slow` itself against a plain Python loop. Ends with one
speed figure. It takes a few seconds.

Exit status: 0 when every check passes, 1 on any mismatch. Without the
compiled backend (the extension did not import, or ``CPOOL_BACKEND=numpy``)
it says so and why, checks the NumPy fallback and exits 0, or 1 with
``--require-compiled``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import traceback
from typing import Any, Callable, Iterator, Sequence, Tuple

import numpy as np

import cpool
from cpool import slow

# One check: what it ran on, and what went wrong (None: it passed).
Result = Tuple[str, "str | None"]
Group = Callable[[np.random.Generator], Iterator[Result]]

# Pooling arguments covering the kernels' paths: the common k2 s2 layer,
# overlapping windows with padding, dilation, rectangular windows in ceil
# mode, and dilated windows that can hold no input element (index -1).
GEOMETRIES: tuple[dict[str, Any], ...] = (
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": 3, "stride": 1, "dilation": 2},
    {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 0), "ceil_mode": True},
    {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 3, "ceil_mode": True},
)
SHAPES = ((2, 3, 13, 17), (3, 12, 9))  # (N, C, H, W) and (C, H, W)
FLOATS = (np.float32, np.float64, np.float16)
INTEGERS = (np.uint8, np.int8, np.int16, np.int32, np.int64)
# The speed figure's problem: the first pooling layer of a small MNIST CNN.
SPEED_SHAPE = (64, 32, 28, 28)


def _describe(x: np.ndarray, kwargs: dict[str, Any]) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return f"{x.shape} {x.dtype} {args}"


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit: dtype, shape and bytes (NaN payloads and signed zeros included)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _random(rng: np.random.Generator, shape: Sequence[int], dtype: Any) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return rng.integers(0, 6, size=shape).astype(dtype)  # few distinct values: many ties
    return rng.standard_normal(shape).astype(dtype)


def _specials(rng: np.random.Generator, shape: Sequence[int], dtype: Any) -> np.ndarray:
    """Ties, signed zeros, infinities and NaNs with distinct payloads."""
    x = rng.choice(np.array([0.0, -0.0, 1.0, 2.0, 2.0, -np.inf, np.inf], dtype=dtype), size=shape)
    nan = rng.random(shape) < 0.15
    bits = np.dtype(f"u{x.dtype.itemsize}")
    base = np.array(np.nan, dtype=dtype).view(bits)
    payloads = (base | rng.integers(0, 8, size=shape).astype(bits)).view(x.dtype)
    x[nan] = payloads[nan]
    return x


def compare(x: np.ndarray, kwargs: dict[str, Any], backward: bool, rng: np.random.Generator) -> str | None:
    """cpool's public functions against cpool.slow's on one input: None, or what differs."""
    if not _same(cpool.max_pool2d(x, **kwargs), slow.max_pool2d(x, **kwargs)):
        return "values differ"
    out, idx = cpool.max_pool2d(x, return_indices=True, **kwargs)
    ref, ref_idx = slow.max_pool2d(x, return_indices=True, **kwargs)
    if not _same(out, ref):
        return "values differ (return_indices=True)"
    if not _same(idx, ref_idx):
        return "indices differ"
    if backward:
        grad = rng.standard_normal(out.shape).astype(x.dtype)
        if not _same(cpool.max_pool2d_backward(grad, idx, x.shape), slow.max_pool2d_backward(grad, idx, x.shape)):
            return "backward differs"
    return None


def _compare_all(rng: np.random.Generator, dtypes: Sequence[Any], make: Callable[..., np.ndarray],
                 backward: bool) -> Iterator[Result]:
    for dtype in dtypes:
        for shape in SHAPES:
            for kwargs in GEOMETRIES:
                x = make(rng, shape, dtype)
                yield _describe(x, kwargs), compare(x, kwargs, backward, rng)


# ------------------------------------------------------------------ groups
def group_floats(rng: np.random.Generator) -> Iterator[Result]:
    yield from _compare_all(rng, FLOATS, _random, backward=True)


def group_integers(rng: np.random.Generator) -> Iterator[Result]:
    yield from _compare_all(rng, INTEGERS, _random, backward=False)  # the backward takes floats only


def group_specials(rng: np.random.Generator) -> Iterator[Result]:
    yield from _compare_all(rng, FLOATS, _specials, backward=True)


def group_layouts(rng: np.random.Generator) -> Iterator[Result]:
    x = _random(rng, (2, 3, 13, 17), np.float32)
    layouts = {
        "transposed": np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2),
        "strided": _random(rng, (2, 3, 26, 34), np.float32)[:, :, ::2, ::2],
        "byte-swapped": x.astype(x.dtype.newbyteorder()),
        "Fortran order": np.asfortranarray(x),
    }
    for name, arr in layouts.items():
        for kwargs in GEOMETRIES[:2]:
            yield f"{name} {_describe(arr, kwargs)}", compare(arr, kwargs, True, rng)


def group_channels_last(rng: np.random.Generator) -> Iterator[Result]:
    """Channels-last memory and data_format="NHWC", against cpool.slow, and out=."""
    for channels in (3, 8, 40):
        x = _specials(rng, (2, 11, 13, channels), np.float32)
        for kwargs in GEOMETRIES:
            what = f"NHWC {_describe(x, kwargs)}"
            got = cpool.max_pool2d(x, return_indices=True, data_format="NHWC", **kwargs)
            ref = slow.max_pool2d(x, return_indices=True, data_format="NHWC", **kwargs)
            if not (_same(got[0], ref[0]) and _same(got[1], ref[1])):
                yield what, "values or indices differ"
                continue
            as_nchw = x.transpose(0, 3, 1, 2)  # channels-last memory, NCHW shape
            out = (np.empty_like(ref[0].transpose(0, 3, 1, 2)),
                   np.empty(as_nchw.shape[:2] + ref[1].shape[1:3], np.int64))
            cpool.max_pool2d(as_nchw, return_indices=True, out=out, **kwargs)
            if not (_same(out[0], ref[0].transpose(0, 3, 1, 2)) and _same(out[1], ref[1].transpose(0, 3, 1, 2))):
                yield what, "channels-last NCHW (out=) differs"
                continue
            grad = rng.standard_normal(ref[0].shape).astype(np.float32)
            if not _same(cpool.max_pool2d_backward(grad, ref[1], x.shape, data_format="NHWC"),
                         slow.max_pool2d_backward(grad, ref[1], x.shape, data_format="NHWC")):
                yield what, "backward differs"
                continue
            yield what, None


def group_layer(rng: np.random.Generator) -> Iterator[Result]:
    for kwargs in GEOMETRIES:
        x = _random(rng, SHAPES[0], np.float32)
        layer, ref = cpool.MaxPool2d(**kwargs), cpool.MaxPool2d(**kwargs, backend="numpy")
        grad = rng.standard_normal(layer.forward(x).shape).astype(x.dtype)
        ref.forward(x)
        problem = None
        if not _same(layer.output, ref.output):
            problem = "forward differs"
        elif not _same(layer.indices, ref.indices):
            problem = "indices differ"
        elif not _same(layer.backward(x, grad), ref.backward(x, grad)):
            problem = "backward differs"
        yield f"MaxPool2d {_describe(x, kwargs)}", problem


def group_threads(rng: np.random.Generator) -> Iterator[Result]:
    # 2**20 elements: large enough for the kernels to split the work among threads.
    x = _random(rng, (16, 16, 64, 64), np.float32)
    for kwargs in GEOMETRIES[:2]:
        yield _describe(x, kwargs), compare(x, kwargs, True, rng)


def group_isas(rng: np.random.Generator) -> Iterator[Result]:
    from cpool import _compiled

    for name in _compiled.AVAILABLE_ISAS:
        with _compiled.use_isa(name):
            for dtype in (np.float32, np.float64):
                for kwargs in GEOMETRIES:
                    x = _random(rng, SHAPES[0], dtype)
                    yield f"isa {name}: {_describe(x, kwargs)}", compare(x, kwargs, True, rng)


# ------------------------------------------------- the reference's own check
def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[-1])


def _out_len(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window must start inside the input or left padding
        out -= 1
    return out


def loop_max_pool2d(x: np.ndarray, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                    ceil_mode: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling as PyTorch's CPU kernel defines it, one window at a time."""
    (kh, kw), (ph, pw), (dh, dw) = _pair(kernel_size), _pair(padding), _pair(dilation)
    sh, sw = _pair(kernel_size if stride is None else stride)
    H, W = x.shape[-2:]
    OH, OW = _out_len(H, kh, sh, ph, dh, ceil_mode), _out_len(W, kw, sw, pw, dw, ceil_mode)
    planes = x.reshape(-1, H, W)
    lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    out = np.full((len(planes), OH, OW), lowest, dtype=x.dtype)
    idx = np.full((len(planes), OH, OW), -1, dtype=np.int64)
    for n, plane in enumerate(planes):
        for oh in range(OH):
            for ow in range(OW):
                for i in range(kh):
                    ih = oh * sh - ph + i * dh
                    for j in range(kw):
                        iw = ow * sw - pw + j * dw
                        if not (0 <= ih < H and 0 <= iw < W):
                            continue
                        v = plane[ih, iw]
                        # The first tap in the input starts the window; then a
                        # larger value or a NaN replaces the best so far.
                        if idx[n, oh, ow] < 0 or v > out[n, oh, ow] or v != v:
                            out[n, oh, ow], idx[n, oh, ow] = v, ih * W + iw
    shape = x.shape[:-2] + (OH, OW)
    return out.reshape(shape), idx.reshape(shape)


def loop_max_pool2d_backward(grad: np.ndarray, idx: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Scatter-add, one output element at a time in row-major order."""
    H, W = shape[-2:]
    out = np.zeros((int(np.prod(shape[:-2])), H * W), dtype=grad.dtype)
    flat_grad, flat_idx = grad.reshape(len(out), -1), idx.reshape(len(out), -1)
    for n in range(len(out)):
        for k in range(flat_idx.shape[1]):
            if flat_idx[n, k] >= 0:
                out[n, flat_idx[n, k]] += flat_grad[n, k]
    return out.reshape(tuple(shape))


def group_reference(rng: np.random.Generator) -> Iterator[Result]:
    for dtype in (np.float32, np.float64, np.int16):
        for kwargs in GEOMETRIES:
            make = _specials if dtype is np.float64 else _random
            x = make(rng, (2, 3, 7, 9), dtype)
            out, idx = slow.max_pool2d(x, return_indices=True, **kwargs)
            ref, ref_idx = loop_max_pool2d(x, **kwargs)
            problem = None
            if not _same(out, ref):
                problem = "values differ"
            elif not _same(idx, ref_idx):
                problem = "indices differ"
            elif x.dtype.kind == "f":
                grad = rng.standard_normal(out.shape).astype(x.dtype)
                gi = slow.max_pool2d_backward(grad, idx, x.shape)
                if not _same(gi, loop_max_pool2d_backward(grad, idx, x.shape)):
                    problem = "backward differs"
            yield _describe(x, kwargs), problem


# ------------------------------------------------------------------ running
def run_group(title: str, group: Group, rng: np.random.Generator, width: int = 62) -> bool:
    """Run one group of checks and print its PASS/FAIL line; True if it passed."""
    failures: list[str] = []
    count = 0
    try:
        for what, problem in group(rng):
            count += 1
            if problem is not None:
                failures.append(f"{problem}: {what}")
    except Exception:
        failures.append("raised " + traceback.format_exc().strip().splitlines()[-1])
    dots = " " + "." * max(2, width - len(title)) + " "
    if not failures:
        print(f"  {title}{dots}PASS ({count} cases)")
        return True
    print(f"  {title}{dots}FAIL ({len(failures)} of {max(count, len(failures))} cases)")
    for line in failures[:5]:
        print(f"      {line}")
    if len(failures) > 5:
        print(f"      ... and {len(failures) - 5} more")
    return False


def _median_seconds(fn: Callable[[], object], budget: float, max_runs: int) -> float:
    fn()  # warm up: first-call caches, page faults
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_runs and (len(times) < 3 or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def speed_line(compiled: bool) -> str:
    x = np.random.default_rng(0).standard_normal(SPEED_SHAPE).astype(np.float32)
    what = "x".join(map(str, SPEED_SHAPE)) + " float32 forward, kernel 2 stride 2"
    fallback = _median_seconds(lambda: slow.max_pool2d(x, 2), budget=0.5, max_runs=7)
    if not compiled:
        return f"Speed, {what}: NumPy fallback: {fallback * 1e3:.3g} ms (the compiled backend is not in use)"
    fast = _median_seconds(lambda: cpool.max_pool2d(x, 2), budget=0.3, max_runs=50)
    return (f"Speed, {what}, {cpool.get_num_threads()} thread(s), median: compiled: {fast * 1e3:.3g} ms, "
            f"NumPy fallback: {fallback * 1e3:.3g} ms, {fallback / fast:.3g}x faster")


def _not_in_use_reason(info: dict[str, Any]) -> str:
    if info["extension_error"]:
        return f"the extension could not be imported: {info['extension_error']}"
    choice = os.environ.get("CPOOL_BACKEND", "").strip()
    if choice:
        return f"CPOOL_BACKEND={choice} is set"
    return "cpool chose its NumPy backend"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cpool",
        description="Print cpool's configuration, check its compiled backend against the NumPy reference "
                    "(cpool.slow) bit for bit, and time one forward pass. Exit status 1 on any mismatch.")
    parser.add_argument("--require-compiled", action="store_true",
                        help="exit with status 1 when the compiled backend is not in use")
    parser.add_argument("--no-timing", action="store_true", help="skip the speed figure")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    args = parser.parse_args(argv)

    cpool.show_config()
    info = cpool.config()
    compiled = info["backend"] == "cython"
    rng = np.random.default_rng(args.seed)
    print()
    if compiled:
        print(f"Self-check: the compiled backend (isa {info['isa']}) against cpool.slow, bit for bit")
    else:
        print(f"The compiled backend is NOT in use: {_not_in_use_reason(info)}.")
        print("cpool runs on its NumPy fallback (correct, but many times slower).")
        print()
        print("Self-check of the NumPy fallback")
    groups: list[tuple[str, Group]] = [("cpool.slow against a plain Python loop", group_reference)]
    if compiled:
        groups += [
            ("float16, float32, float64 (values, indices, backward)", group_floats),
            ("uint8, int8, int16, int32, int64 (values, indices)", group_integers),
            ("NaN, infinities, signed zeros and ties", group_specials),
            ("memory layouts (transposed, strided, byte-swapped)", group_layouts),
            ("channels-last memory, data_format=\"NHWC\", out=", group_channels_last),
            ("the MaxPool2d layer", group_layer),
            (f"a large input ({cpool.get_num_threads()} thread(s))", group_threads),
        ]
        if len(info["available_isas"]) > 1:
            groups.append((f"every instruction set ({', '.join(info['available_isas'])})", group_isas))
    passed = [run_group(title, group, rng) for title, group in groups]
    if not args.no_timing:
        print()
        print(speed_line(compiled))
    print()
    if not all(passed):
        print(f"FAILED: {passed.count(False)} of {len(passed)} checks found a mismatch. Please report it, "
              "with this output, at https://github.com/cpool-numpy/cpool/issues")
        return 1
    print("The check passed." if len(passed) == 1 else f"All {len(passed)} checks passed.")
    if not compiled and args.require_compiled:
        print("FAILED: --require-compiled, and the compiled backend is not in use.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
