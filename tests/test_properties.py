"""Property-based tests (hypothesis): any input gives PyTorch's answer or a
clear exception, identically on both backends.

Hypothesis draws shapes (1-pixel planes, planes smaller than the kernel,
very wide and very tall planes, N = 0, bad ndim and zero sizes), pooling
arguments (valid and invalid values and types), dtypes (supported and not)
and memory layouts (strided views, transposes, Fortran order, negative and
zero strides, byte-swapped, read-only, unaligned). The invariants:

* the compiled backend and :mod:`cpool.slow` give bitwise-identical
  outputs, indices and gradients, or raise the same exception type with the
  same message, which is always ``TypeError`` or ``ValueError``;
* on small inputs the result equals the torch-literal scalar oracle of
  ``helpers.py`` (and torch itself when installed);
* inputs are never modified and outputs never alias inputs;
* the gradient of ``sum(out)`` counts, for each input element, the windows
  that chose it;
* hostile indices handed to backward raise ``ValueError`` (never a crash),
  -1 is skipped.

Profiles (``HYPOTHESIS_PROFILE``): ``cpool-ci`` (the default: bounded and
derandomised, ~30 s on 2 cores), ``cpool-dev`` (random, a few times more
examples) and ``cpool-thorough`` (long runs hunting for bugs). The number of
generated cases each test ran is printed in pytest's summary, and appended
to FILE with ``--property-counts FILE``.
"""

from __future__ import annotations

import collections
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from helpers import (  # noqa: E402
    ALL_DTYPES,
    COMPILED_API,
    FLOAT_DTYPES,
    NUMPY_API,
    adversarial_values,
    call_outcome,
    layouts,
    same_bits,
    scalar_backward,
    scalar_max_pool2d,
    window_counts,
)
from hypothesis import HealthCheck, assume, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import cpool  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

# Every test compares the compiled backend with the NumPy one: without the
# extension they fail (or skip, with --no-extension) through this fixture.
pytestmark = pytest.mark.usefixtures("compiled")

_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.register_profile("cpool-ci", max_examples=300, derandomize=True, database=None, **_COMMON)
settings.register_profile("cpool-dev", max_examples=1000, **_COMMON)
settings.register_profile("cpool-thorough", max_examples=20000, **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "cpool-ci")
if PROFILE not in ("cpool-ci", "cpool-dev", "cpool-thorough"):
    # A hypothesis built-in profile ("ci", "default", ...): take its example
    # count but keep our deadline and health-check settings.
    settings.register_profile(
        "cpool-from-env", parent=settings.get_profile(PROFILE),
        **{k: v for k, v in _COMMON.items()},
    )
    PROFILE = "cpool-from-env"
BASE = settings.get_profile(PROFILE)


def scaled(fraction):
    """The profile, with max_examples scaled for a cheaper or dearer test."""
    return settings(BASE, max_examples=max(10, int(BASE.max_examples * fraction)))


# Generated cases per test (reported in pytest's summary), and how many of
# them were valid, compared with the oracle / torch, etc.
COUNTS: collections.Counter = collections.Counter()


class _CountReporter:
    """A plugin registered by this module: prints COUNTS in pytest's summary."""

    def pytest_terminal_summary(self, terminalreporter):
        if not COUNTS:
            return
        lines = [f"hypothesis profile {PROFILE!r} (max_examples={BASE.max_examples}): generated cases"]
        lines += [f"  {k}: {v}" for k, v in sorted(COUNTS.items())]
        terminalreporter.write_sep("-", "cpool property tests")
        for line in lines:
            terminalreporter.write_line(line)
        path = terminalreporter.config.getoption("--property-counts")
        if path:
            with open(path, "a") as f:
                f.write("\n".join(lines) + "\n")


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request):
    pm = request.config.pluginmanager
    if not pm.has_plugin("cpool-property-counts"):
        pm.register(_CountReporter(), "cpool-property-counts")
    yield


# ---------------------------------------------------------------- strategies
LAYOUT_NAMES = [
    "c-contiguous", "fortran", "transposed-view", "negative-strides", "strided-view",
    "byte-swapped", "read-only", "unaligned",
    # extra layouts beyond helpers.layouts()
    "batch-channel-swapped", "broadcast", "big-endian-fortran",
]

BAD_DTYPES = [np.bool_, np.complex64, np.uint16, np.uint32, np.uint64, np.float32]  # float32: as ">f4" is fine


def make_layout(x: np.ndarray, name: str, rng) -> np.ndarray:
    """``x`` (C-contiguous) in the named memory layout, same logical values."""
    if name == "batch-channel-swapped":
        if x.ndim < 2:
            return x
        t = np.ascontiguousarray(np.swapaxes(x, 0, 1))
        return np.swapaxes(t, 0, 1)
    if name == "broadcast":
        # Zero strides along the leading axis: every plane is the same memory.
        if x.ndim < 1 or x.shape[0] == 0:
            return x
        b = np.broadcast_to(x[:1], x.shape)
        return b if np.ascontiguousarray(b).tobytes() == x.tobytes() else x
    if name == "big-endian-fortran":
        return np.asfortranarray(x.astype(x.dtype.newbyteorder(">")))
    for n, view in layouts(x, rng):
        if n == name:
            return view
    return x  # that layout does not apply (e.g. byte-swapping a uint8 array)


def _lead_shape(draw, ndim):
    if ndim == 4:
        return (draw(st.integers(0, 3)), draw(st.integers(1, 3)))
    if ndim == 3:
        return (draw(st.integers(1, 3)),)
    if ndim == 5:
        return (1, 1, draw(st.integers(1, 2)))
    return ()


@st.composite
def plane_size(draw):
    """(H, W): small, 1-pixel, very wide or very tall."""
    # (hypothesis favours the first elements and the bounds of ranges, so
    # the rare cases are placed where it draws them less often)
    kind = draw(st.sampled_from(["small"] * 6 + ["one", "wide", "tall", "zero"]))
    if kind == "small":
        return draw(st.integers(1, 12)), draw(st.integers(1, 12))
    if kind == "one":
        return 1, 1
    if kind == "wide":
        return draw(st.integers(1, 3)), draw(st.integers(100, 2000))
    if kind == "tall":
        return draw(st.integers(100, 2000)), draw(st.integers(1, 3))
    return draw(st.sampled_from([(0, 4), (4, 0), (0, 0)]))


def _pair_or_int(inner):
    return st.one_of(inner, st.tuples(inner, inner))


HOSTILE_PARAMS = st.sampled_from([
    0, -1, -(2**40), 2**31, 2**63, 2.0, 1.5, True, False, "2", b"2", None, (), (1, 2, 3), [2], [2, 2],
    (2, 0), (0, 2), (2, 2.0), np.int64(2), np.int32(0), np.array(2), np.array([2, 3]), np.float64(2.0),
    object(), float("nan"), complex(2, 0),
])


@st.composite
def pool_args(draw, invalid_rate=0.15):
    """kernel_size, stride, padding, dilation, ceil_mode: mostly valid."""
    k = draw(_pair_or_int(st.integers(1, 5)))
    s = draw(st.one_of(st.none(), _pair_or_int(st.integers(1, 5))))
    kmin = min(k) if isinstance(k, tuple) else k
    # padding up to kernel//2 + 1, so "padding above half the kernel" occurs
    p = draw(_pair_or_int(st.integers(0, kmin // 2 + (1 if draw(st.integers(0, 19)) == 13 else 0))))
    d = draw(st.one_of(st.just(1), _pair_or_int(st.integers(1, 3))))
    ceil = draw(st.booleans())
    args = dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    if draw(st.integers(0, 99)) in range(40, 40 + int(100 * invalid_rate)):
        which = draw(st.sampled_from(["kernel_size", "stride", "padding", "dilation", "ceil_mode"]))
        args[which] = draw(st.one_of(HOSTILE_PARAMS, st.integers(-3, 0)))
    return args


@st.composite
def forward_cases(draw):
    ndim = draw(st.sampled_from([4, 3, 2, 5]) if draw(st.integers(0, 29)) == 17 else st.sampled_from([4, 3]))
    H, W = draw(plane_size())
    shape = _lead_shape(draw, ndim) + (H, W)
    if ndim == 2:
        shape = (H, W)
    shape = tuple(shape)
    if draw(st.integers(0, 29)) == 17:
        dtype = np.dtype(draw(st.sampled_from(BAD_DTYPES)))
    else:
        dtype = np.dtype(draw(st.sampled_from(ALL_DTYPES)))
    seed = draw(st.integers(0, 2**32 - 1))
    layout = draw(st.sampled_from(LAYOUT_NAMES))
    return shape, dtype, seed, layout, draw(pool_args())


# ------------------------------------------------------------------ helpers
def _make_input(shape, dtype, seed, layout):
    rng = np.random.default_rng(seed)
    if dtype.kind in "fiu" and np.dtype(dtype) in [np.dtype(d) for d in ALL_DTYPES]:
        x = adversarial_values(rng, dtype, shape)
    elif dtype.kind == "b":
        x = rng.random(shape) < 0.5
    else:
        x = (rng.integers(0, 5, size=shape)).astype(dtype)
    x = np.ascontiguousarray(x)
    if layout == "broadcast" and x.ndim >= 1 and x.shape[0] > 1:
        x = np.ascontiguousarray(np.broadcast_to(x[:1], x.shape))
    return x, make_layout(x, layout, rng)


def _full(args):
    def pair(v):
        return tuple(v) if isinstance(v, tuple) else (v, v)

    k = pair(args["kernel_size"])
    s = k if args["stride"] is None else pair(args["stride"])
    return k, s, pair(args["padding"]), pair(args["dilation"]), args["ceil_mode"]


def _plain_int_args(args):
    def ok(v):
        return type(v) is int or (type(v) is tuple and all(type(i) is int for i in v))

    return all(ok(args[k]) for k in ("kernel_size", "padding", "dilation")) and (
        args["stride"] is None or ok(args["stride"])) and type(args["ceil_mode"]) is bool


def _assert_same_outcome(rs, rf, what):
    ks, vs = rs
    kf, vf = rf
    assert ks == kf, (what, vs, vf)
    if ks == "raised":
        assert type(vs) is type(vf), (what, vs, vf)
        assert str(vs) == str(vf), (what, vs, vf)
        assert isinstance(vs, (TypeError, ValueError)), (what, repr(vs))
    return ks == "ok"


# -------------------------------------------------------------------- tests
@given(case=forward_cases(), ri=st.booleans(), g_layout=st.sampled_from(LAYOUT_NAMES),
       g_dtype=st.sampled_from(FLOAT_DTYPES))
@scaled(2.0)
def test_forward_and_backward_agree(case, ri, g_layout, g_dtype):
    shape, dtype, seed, layout, args = case
    COUNTS["forward: cases"] += 1
    x, view = _make_input(shape, dtype, seed, layout)
    note(f"shape={shape} dtype={dtype} layout={layout} args={args} strides={view.strides}")
    before = view.copy()
    before_strides = view.strides
    rs = call_outcome(NUMPY_API.max_pool2d, view, return_indices=ri, **args)
    rf = call_outcome(COMPILED_API.max_pool2d, view, return_indices=ri, **args)
    rp = call_outcome(cpool.max_pool2d, view, return_indices=ri, **args)
    assert same_bits(view, before) and view.strides == before_strides, "input was modified"
    _assert_same_outcome(rs, rp, "public vs numpy")
    if not _assert_same_outcome(rs, rf, "compiled vs numpy"):
        COUNTS["forward: raised (same type and message)"] += 1
        return
    COUNTS["forward: valid"] += 1
    if ri:
        (os_, is_), (of, if_) = rs[1], rf[1]
    else:
        os_, of = rs[1], rf[1]
        # the indices of the same call, for the backward checks below
        _, is_ = NUMPY_API.max_pool2d(view, return_indices=True, **args)
        _, if_ = COMPILED_API.max_pool2d(view, return_indices=True, **args)
    assert same_bits(os_, of), "values differ between backends"
    assert same_bits(is_, if_), "indices differ between backends"
    assert of.dtype == x.dtype.newbyteorder("=") and if_.dtype == np.int64
    for arr in (of, if_, os_, is_):
        assert not np.shares_memory(arr, view), "an output aliases the input"
        assert arr.flags.writeable

    # The scalar oracle (PyTorch's loop, transcribed) on small problems.
    k, s, p, d, ceil = _full(args) if _plain_int_args(args) else (None,) * 5
    taps = of.size * (k[0] * k[1] if k else 1)
    if k is not None and taps <= 4000:
        ro, ri_ = scalar_max_pool2d(x, k, s, p, d, ceil)
        assert same_bits(of, ro), "values differ from the scalar oracle"
        assert np.array_equal(if_, ri_), "indices differ from the scalar oracle"
        COUNTS["forward: checked against the scalar oracle"] += 1
    if torch is not None and k is not None and x.size:
        tv, ti = F.max_pool2d(torch.from_numpy(x.copy()), k, s, p, d, ceil, return_indices=True)
        assert of.tobytes() == tv.numpy().tobytes(), "values differ from torch"
        keep = if_ >= 0  # -1: a window with no input element (torch: out of range)
        assert np.array_equal(if_[keep], ti.numpy()[keep]), "indices differ from torch"
        COUNTS["forward: checked against torch"] += 1

    # Backward: a random gradient in a random layout; both backends agree,
    # equal the oracle, leave their inputs alone and return fresh arrays.
    rng = np.random.default_rng(seed + 1)
    g = rng.standard_normal(of.shape).astype(g_dtype)
    gv = make_layout(g, g_layout, rng)
    g_before, idx_before = gv.copy(), if_.copy()
    gs = call_outcome(NUMPY_API.max_pool2d_backward, gv, if_, x.shape)
    gf = call_outcome(COMPILED_API.max_pool2d_backward, gv, if_, x.shape)
    assert same_bits(gv, g_before) and same_bits(if_, idx_before), "backward modified its input"
    assert _assert_same_outcome(gs, gf, "backward"), gs
    gs, gf = gs[1], gf[1]
    assert same_bits(gs, gf), "gradients differ between backends"
    assert gf.shape == x.shape and gf.dtype == np.dtype(g_dtype)
    assert not np.shares_memory(gf, gv) and not np.shares_memory(gf, if_)
    if g.size * 4 <= 20000:
        assert same_bits(gf, scalar_backward(g, if_, x.shape)), "gradient differs from the scalar oracle"
    COUNTS["backward: cases"] += 1

    # d sum(out) / dx: a 0/1/2/... map of how many windows chose each element.
    ones = np.ones(of.shape, dtype=np.float64)
    counts = window_counts(if_, x.shape)
    for impl in (NUMPY_API, COMPILED_API):
        gsum = impl.max_pool2d_backward(ones, if_, x.shape)
        assert np.array_equal(gsum, counts), "grad of sum is not the window count"
    # Non-overlapping windows choose each element at most once.
    if k is not None and s[0] >= (k[0] - 1) * d[0] + 1 and s[1] >= (k[1] - 1) * d[1] + 1:
        assert counts.max(initial=0) <= 1


@given(
    shape=st.tuples(st.integers(0, 2), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)),
    out_hw=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    values=st.lists(st.one_of(
        st.integers(-1, 80),  # mostly in range (or -1)
        st.sampled_from([-2, -3, -(2**31), 2**31, 2**32, 2**62, 2**63 - 1, -(2**63), -(2**63) + 1]),
        st.integers(-(2**63), 2**63 - 1),
    ), min_size=1, max_size=8),
    layout=st.sampled_from(LAYOUT_NAMES),
    g_dtype=st.sampled_from(FLOAT_DTYPES),
    seed=st.integers(0, 2**32 - 1),
)
@scaled(1.0)
def test_hostile_indices_never_crash(shape, out_hw, values, layout, g_dtype, seed):
    """Any int64 indices: a correct gradient, or ValueError naming the first bad one."""
    COUNTS["hostile indices: cases"] += 1
    rng = np.random.default_rng(seed)
    N, C, H, W = shape
    go_shape = (N, C) + out_hw
    idx = rng.choice(np.array(values, dtype=np.int64), size=go_shape)
    # A few plausible in-range indices mixed in.
    idx = np.where(rng.random(go_shape) < 0.5, rng.integers(-1, H * W, size=go_shape), idx)
    iv = make_layout(np.ascontiguousarray(idx), layout, rng)
    g = rng.standard_normal(go_shape).astype(g_dtype)
    before = iv.copy()
    rs = call_outcome(NUMPY_API.max_pool2d_backward, g, iv, shape)
    rf = call_outcome(COMPILED_API.max_pool2d_backward, g, iv, shape)
    assert same_bits(iv, before)
    flat = idx.reshape(-1)
    bad = flat[(flat < -1) | (flat >= H * W)]
    if bad.size:
        for kind, val in (rs, rf):
            assert kind == "raised" and type(val) is ValueError, val
            assert f"indices contains {bad[0]}," in str(val), (str(val), bad[:3])
        assert str(rs[1]) == str(rf[1])
        COUNTS["hostile indices: raised ValueError"] += 1
    else:
        assert rs[0] == rf[0] == "ok", (rs, rf)
        assert same_bits(rs[1], rf[1])
        assert same_bits(rf[1], scalar_backward(g, idx, shape))
        COUNTS["hostile indices: all in range, gradient checked"] += 1


ODD_INPUTS = st.one_of(
    st.none(), st.integers(), st.floats(), st.text(max_size=4), st.binary(max_size=4),
    st.just(object()), st.just({"a": 1}), st.just({1, 2}),
    st.recursive(
        st.one_of(st.integers(-5, 5), st.floats(allow_nan=True), st.booleans(), st.none(), st.text(max_size=1)),
        lambda children: st.lists(children, min_size=0, max_size=3),
        max_leaves=30,
    ),
)


# Nested lists NumPy does convert: 3-D and 4-D, ints/floats/bools mixed.
NESTED_LISTS = st.integers(1, 3).flatmap(lambda c: st.integers(1, 4).flatmap(lambda h: st.integers(1, 4).flatmap(
    lambda w: st.lists(st.lists(st.lists(
        st.one_of(st.integers(-100, 100), st.floats(allow_nan=True, width=32)),
        min_size=w, max_size=w), min_size=h, max_size=h), min_size=c, max_size=c))))


@given(value=st.one_of(ODD_INPUTS, NESTED_LISTS, NESTED_LISTS.map(lambda v: [v]),
                       NESTED_LISTS.map(tuple)),
       kernel=st.sampled_from([1, 2, (1, 2)]))
@scaled(0.5)
def test_arbitrary_objects_as_input(value, kernel):
    """Lists NumPy converts are pooled like the array; anything else is a TypeError/ValueError."""
    COUNTS["odd objects: cases"] += 1
    rs = call_outcome(NUMPY_API.max_pool2d, value, kernel, return_indices=True)
    rf = call_outcome(COMPILED_API.max_pool2d, value, kernel, return_indices=True)
    _assert_same_outcome(rs, rf, "odd input")
    if rs[0] == "ok":
        COUNTS["odd objects: converted and pooled"] += 1
        arr = np.asarray(value)
        expected = NUMPY_API.max_pool2d(arr, kernel, return_indices=True)
        assert same_bits(rf[1][0], expected[0]) and same_bits(rf[1][1], expected[1])


@given(
    go=st.one_of(ODD_INPUTS, st.just(np.ones((1, 1, 2, 2)))),
    idx=st.one_of(ODD_INPUTS, st.just(np.zeros((1, 1, 2, 2), np.int64))),
    input_shape=st.one_of(
        st.just((1, 1, 4, 4)),
        st.lists(st.one_of(st.integers(-3, 6), st.sampled_from([2**31, 2**62, 2**63, 1.0, None, "4"])),
                 min_size=0, max_size=5).map(tuple),
        ODD_INPUTS,
    ),
)
@scaled(0.5)
def test_arbitrary_objects_to_backward(go, idx, input_shape):
    COUNTS["odd backward args: cases"] += 1
    if isinstance(input_shape, tuple) and all(type(v) is int for v in input_shape) and len(input_shape) == 4:
        # Keep the allocation small: a valid huge input_shape is a legitimate
        # (and enormous) request, not a hostile one.
        assume(np.prod([max(v, 0) for v in input_shape], dtype=object) <= 10**6)
    rs = call_outcome(NUMPY_API.max_pool2d_backward, go, idx, input_shape)
    rf = call_outcome(COMPILED_API.max_pool2d_backward, go, idx, input_shape)
    _assert_same_outcome(rs, rf, "odd backward")
    if rs[0] == "ok":
        COUNTS["odd backward args: valid"] += 1
        assert same_bits(rs[1], rf[1])


@given(case=forward_cases())
@scaled(0.3)
def test_module_matches_functional(case):
    """MaxPool2d on both backends: forward/backward = functional, or the same exception."""
    shape, dtype, seed, layout, args = case
    COUNTS["module: cases"] += 1
    x, view = _make_input(shape, dtype, seed, layout)
    layers = []
    for backend in ("numpy", "cython"):
        r = call_outcome(cpool.MaxPool2d, backend=backend, **args)
        layers.append(r)
    if not _assert_same_outcome(*layers, "MaxPool2d()"):
        return
    ls, lf = layers[0][1], layers[1][1]
    outs = [call_outcome(layer.forward, view) for layer in (ls, lf)]
    if not _assert_same_outcome(*outs, "MaxPool2d.forward"):
        return
    COUNTS["module: valid"] += 1
    expected, idx = NUMPY_API.max_pool2d(view, return_indices=True, **args)
    assert same_bits(outs[0][1], expected) and same_bits(outs[1][1], expected)
    assert np.array_equal(lf.indices, idx)
    # return_indices=True: the same forward, returning (output, indices)
    for backend in ("numpy", "cython"):
        out, indices = cpool.MaxPool2d(backend=backend, return_indices=True, **args).forward(view)
        assert same_bits(out, expected) and same_bits(indices, idx)
    g = np.ones(expected.shape, dtype=np.float32)
    assert same_bits(ls.backward(view, g), lf.backward(view, g))
    assert np.array_equal(lf.gradInput, window_counts(idx, x.shape).astype(np.float32))
