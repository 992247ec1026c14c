"""Differential fuzz harness for cpool's public entry points.

Every call the fuzzer's bytes decode to is made on cpool's active backend
(the compiled kernels) and on :mod:`cpool.slow` (the NumPy reference), and
must satisfy:

* EITHER the call raises ``ValueError`` / ``TypeError`` -- then the reference
  raises the same type with the same message, and nothing observable was
  written: every input buffer and every ``out=`` buffer is byte-for-byte as
  it was (the whole backing buffer of a view, not only the view), and a
  layer's attributes are the same objects as before;
* OR the result equals the reference's bit for bit (dtype with byte order,
  shape, bytes: NaN payloads and signed zeros included), it shares no memory
  with the inputs, and the inputs are unchanged.

Anything else (another exception type, a mismatch, a sanitizer report, a
crash) is a finding. :class:`Finding` is raised for broken invariants.

Decoding happens in two phases, so that a reproducer decodes the same way
on every build: :func:`decode` reads all the bytes into a plain spec (dicts
of ints, strings and byte strings) through :class:`provider.ByteProvider`;
:func:`run_spec` then builds the arrays and makes the calls, reading no more
bytes. Arguments come from tables: a new argument of an entry point is one
entry in ``POOL_ARGS`` or ``OPTIONAL_ARGS``. Optional keyword arguments
(``data_format=``, ``out=``) are always decoded, last, whatever the build
supports, and passed only where ``inspect.signature`` shows the entry point
takes them: adding one to the API does not change how existing corpus and
crash files decode.

Entry points (targets): ``max_pool2d``, ``max_pool2d_backward``,
``MaxPool2d``, ``avg_pool2d``, ``avg_pool2d_backward``,
``adaptive_avg_pool2d`` and ``adaptive_max_pool2d`` (each with its
backward), ``max_unpool2d`` (with its backward), ``indices``
(``indices_to`` / ``indices_from``); ``all`` picks one of them from the
first byte.
"""

from __future__ import annotations

import collections
import inspect
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from provider import ByteProvider  # noqa: E402

__all__ = ["TARGETS", "Finding", "decode", "run_spec", "run_one", "describe"]

ACCEPTED = (ValueError, TypeError)
#: (call, "ok" or the error type) -> count, for judging what the bytes reach.
STATS = collections.Counter()


class Finding(AssertionError):
    """An invariant of the differential check does not hold."""


# ---------------------------------------------------------------- dtypes
SUPPORTED = ["float16", "float32", "float64", "uint8", "int8", "int16", "int32", "int64"]
UNSUPPORTED = ["bool", "complex64", "complex128", "uint16", "uint32", "uint64", "longdouble", "object"]
INDEX_DTYPES = ["int64", "int64", "int64", "int32", "int32", "int16", "uint64", "float64", "intp", "uint32"]


def _float_specials(dtype: np.dtype):
    """Bit patterns of the float values that matter for max pooling."""
    f = np.finfo(dtype)
    bits = 8 * dtype.itemsize
    nmant = f.nmant
    sign = 1 << (bits - 1)
    exp = ((1 << (bits - 1 - nmant)) - 1) << nmant
    quiet = 1 << (nmant - 1)
    plain = np.array([0.0, 1.0, -1.0, 2.0, 0.5, np.inf, -np.inf, f.max, -f.max, f.tiny, 3.0, -2.0],
                     dtype=dtype).view(f"u{dtype.itemsize}")
    nans = [exp | quiet, sign | exp | quiet, exp | quiet | 1, exp | 1, sign | exp | 5, sign, 1, exp | quiet | 0x3f]
    return list(plain.tolist()) + nans


def _int_specials(dtype: np.dtype):
    i = np.iinfo(dtype)
    return [0, 1, 2, 3, i.max, i.min, i.max - 1, i.min + 1, -1 if i.min < 0 else i.max // 2]


# ---------------------------------------------------------------- decoding
MAX_ELEMENTS = 6000
LAYOUTS = ["c", "c", "c", "fortran", "steps", "negative", "transpose", "unaligned", "readonly",
           "broadcast", "list", "subclass", "zero_stride"]
VALUE_MODES = ["palette", "palette", "raw", "ramp", "const"]


def _small(fdp, lo, hi, zero_in=0):
    """An int in [lo, hi], or 0 with probability about 1/zero_in."""
    if zero_in and fdp.ConsumeIntInRange(0, zero_in - 1) == zero_in - 1:
        return 0
    return fdp.ConsumeIntInRange(lo, hi)


NDIMS = [4, 4, 4, 4, 3, 3, 3, 2, 5, 1, 0]


def decode_shape(fdp, plane_max=12, ndims=NDIMS):
    ndim = fdp.PickValueInList(ndims)
    wide = fdp.ConsumeIntInRange(0, 7) == 7  # an occasional wide plane for the vector main loops
    dims = []
    for axis in range(ndim):
        last_two = axis >= ndim - 2
        if last_two:
            dims.append(_small(fdp, 1, 40 if wide else plane_max, zero_in=24))
        else:
            dims.append(_small(fdp, 1, 3, zero_in=8))
    while int(np.prod(dims, dtype=np.int64)) > MAX_ELEMENTS:
        dims[dims.index(max(dims))] //= 2
    return tuple(dims)


def decode_dtype(fdp, pool=SUPPORTED):
    if fdp.ConsumeIntInRange(0, 11) == 11:
        return fdp.PickValueInList(UNSUPPORTED)
    return fdp.PickValueInList(pool)


def decode_array(fdp, shape=None, dtype=None, pool=SUPPORTED, ndims=NDIMS):
    """The spec of one array: shape, dtype, byte order, layout, values.
    (Rare choices are the high values: an exhausted input decodes to plain ones.)"""
    shape = decode_shape(fdp, ndims=ndims) if shape is None else tuple(shape)
    dtype = decode_dtype(fdp, pool) if dtype is None else dtype
    n = int(np.prod(shape, dtype=np.int64))
    spec = {"shape": shape, "dtype": dtype, "swap": fdp.ConsumeIntInRange(0, 7) == 7,
            "layout": fdp.PickValueInList(LAYOUTS), "layout_arg": fdp.ConsumeIntInRange(0, 255),
            "mode": fdp.PickValueInList(VALUE_MODES)}
    itemsize = np.dtype(dtype).itemsize if dtype != "object" else 8
    if spec["mode"] == "raw":
        spec["values"] = fdp.ConsumeBytes(n * itemsize)
    elif spec["mode"] == "palette":
        spec["palette"] = fdp.ConsumeIntInRange(1, 16)
        spec["values"] = fdp.ConsumeBytes(n)
    else:
        spec["values"] = fdp.ConsumeBytes(4)
    return spec


# Pool arguments: name -> (low, high) of the plain valid values; the decoder
# mixes in every odd type and value PyTorch's argument rules must reject.
POOL_ARGS = {
    "divisor_override": (-2, 6),
    "kernel_size": (1, 5),
    "stride": (1, 4),
    "padding": (0, 2),
    "dilation": (1, 3),
    "output_size": (0, 7),
}
BOOL_ARGS = ("ceil_mode", "return_indices", "count_include_pad")
_ODD_VALUES = [0, -1, -2, 2**31 - 1, 2**31, 2**32 + 1, 2**63, -(2**63), True, False, 2.0, "2", b"2", None,
               (1, 2, 3), (), (1.0, 2), (True, 1), [2, None], float("nan"), 1 + 0j, object()]
_ODD_BOOLS = [np.True_, np.False_, 0, 1, None, "True", 1.0, np.array(True), [True]]


def decode_pool_value(fdp, lo, hi):
    kind = fdp.ConsumeIntInRange(0, 15)
    a, b = fdp.ConsumeIntInRange(lo, hi), fdp.ConsumeIntInRange(lo, hi)
    odd = fdp.ConsumeIntInRange(0, len(_ODD_VALUES) - 1)
    if kind <= 5:
        return ("int", a)
    if kind <= 8:
        return ("tuple", a, b)
    return ({9: "list", 10: "one", 11: "np_int64", 12: "np_int32", 13: "array0d", 14: "array1d"}.get(kind, "odd"),
            a, b, odd)


def make_pool_value(v):
    kind = v[0]
    if kind == "int":
        return v[1]
    if kind == "tuple":
        return (v[1], v[2])
    a, b, odd = v[1], v[2], v[3]
    return {"list": lambda: [a, b], "one": lambda: (a,), "np_int64": lambda: np.int64(a),
            "np_int32": lambda: (np.int32(a), np.int32(b)), "array0d": lambda: np.array(a),
            "array1d": lambda: np.array([a, b]), "odd": lambda: _ODD_VALUES[odd]}[kind]()


def decode_bool(fdp):
    kind = fdp.ConsumeIntInRange(0, 15)
    odd = fdp.ConsumeIntInRange(0, len(_ODD_BOOLS) - 1)
    return ("odd", odd) if kind == 15 else ("bool", kind % 2 == 1)


def make_bool(v):
    return _ODD_BOOLS[v[1]] if v[0] == "odd" else v[1]


def decode_pool_args(fdp, names):
    """Each argument: ("omit",) for its default, or a value spec."""
    args = {}
    for name in names:
        if name in POOL_ARGS:
            omit = name != "kernel_size" and fdp.ConsumeIntInRange(0, 2) == 0
            value = decode_pool_value(fdp, *POOL_ARGS[name])
            if name == "stride" and fdp.ConsumeIntInRange(0, 7) == 0:
                value = ("odd", 0, 0, _ODD_VALUES.index(None))
        else:
            omit = fdp.ConsumeIntInRange(0, 2) == 0
            value = decode_bool(fdp)
        args[name] = ("omit",) if omit else value
    return args


def make_arg(name, v):
    return make_bool(v) if name in BOOL_ARGS else make_pool_value(v)


# Optional keyword arguments: passed when the entry point's signature has
# them. Each decoder reads a fixed part of the bytes, whether or not the
# argument is passed, so the decoding does not depend on the API.
def decode_data_format(fdp):
    return fdp.PickValueInList(["NCHW", "NHWC", "NCHW", "NHWC", "nhwc", "NWHC", "", None, 1, b"NCHW"])


OUT_KINDS = ["good", "good", "good", "fortran", "steps", "negative", "readonly", "unaligned", "swapped",
             "wrong_shape", "wrong_dtype", "overlap_input", "zero_stride", "list", "none", "tuple", "subclass",
             "good_3d_of_4d", "single"]


def decode_out(fdp):
    return {"kind": fdp.PickValueInList(OUT_KINDS), "arg": fdp.ConsumeIntInRange(0, 255),
            "fill": fdp.ConsumeBytes(2)}


OPTIONAL_ARGS = {
    "data_format": decode_data_format,
    "out": decode_out,
}


def decode_optional(fdp):
    found = {}
    for name, decoder in OPTIONAL_ARGS.items():
        passed = fdp.ConsumeIntInRange(0, 2) != 0
        value = decoder(fdp)
        if passed:
            found[name] = value
    return found


def accepts(fn, name):
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------- arrays
class _Sub(np.ndarray):
    pass


def _values(spec):
    """A C-contiguous native array of spec's shape and dtype with its values."""
    shape, name = spec["shape"], spec["dtype"]
    dtype = np.dtype("float64") if name == "object" else np.dtype(name)
    n = int(np.prod(shape, dtype=np.int64))
    raw = spec["values"]
    if dtype.kind in "fiu" and dtype.itemsize <= 8:
        word = np.dtype(f"u{dtype.itemsize}")
        specials = _float_specials(dtype) if dtype.kind == "f" else None
    else:
        word, specials = None, None
    mode = spec["mode"]
    if mode == "raw" or word is None:
        need = n * dtype.itemsize
        data = (raw * (need // max(len(raw), 1) + 1))[:need] if raw else bytes(need)
        arr = np.frombuffer(data, dtype=dtype, count=n).copy()
    elif mode == "palette":
        if dtype.kind == "f":
            palette = np.array(specials, dtype=word)
        else:
            bits = 8 * dtype.itemsize
            palette = np.array([v % 2**bits for v in _int_specials(dtype)], dtype=word)
        rotate = raw[0] if raw else 0
        palette = np.roll(palette, -rotate)[:spec["palette"]]
        sel = np.frombuffer(raw, dtype=np.uint8) if raw else np.zeros(1, np.uint8)
        sel = np.resize(sel, n).astype(np.int64) % len(palette)
        arr = palette[sel].view(dtype)
    elif mode == "ramp":  # distinct values in a scrambled order: unique maxima
        seed = int.from_bytes(raw.ljust(4, b"\0"), "little")
        order = np.random.default_rng(seed).permutation(n)
        top = 2000 if dtype.itemsize > 1 else 120
        arr = (order % top).astype(dtype)
    else:  # const: every element ties
        arr = np.full(n, (raw[0] if raw else 0) % 7, dtype=dtype)
    arr = arr.reshape(shape)
    if name == "object":
        arr = arr.astype(object)
    elif name not in ("float16", "float32", "float64", "uint8", "int8", "int16", "int32", "int64"):
        arr = arr.astype(name)
    return arr


def materialize(spec, base=None):
    """(array or array_like, buffers that must stay unchanged). ``base``: the
    values to lay out (default: the spec's own)."""
    base = _values(spec) if base is None else base
    shape = base.shape
    layout, k = spec["layout"], spec["layout_arg"]
    if base.dtype == object or base.ndim == 0:
        layout = "c"
    if spec["swap"] and base.dtype.byteorder != "|" and base.dtype != object:
        base = base.byteswap().view(base.dtype.newbyteorder())
    if layout == "fortran":
        arr = np.asfortranarray(base)
        return arr, [arr]
    if layout == "steps":
        steps = [1 + ((k >> (2 * i)) % 3) for i in range(base.ndim)]
        big = np.zeros([max(d * s, 1) for d, s in zip(shape, steps)], base.dtype)
        view = big[tuple(slice(None, None, s) for s in steps)]
        view = view[tuple(slice(0, d) for d in shape)]
        view[...] = base
        return view, [big]
    if layout == "negative":
        axes = tuple(i for i in range(base.ndim) if (k >> i) & 1) or tuple(range(base.ndim))
        big = np.flip(base, axes).copy()
        return np.flip(big, axes), [big]
    if layout == "transpose" and base.ndim >= 2:
        perm = list(np.random.default_rng(k).permutation(base.ndim))
        big = np.ascontiguousarray(base.transpose(perm))
        return big.transpose(np.argsort(perm)), [big]
    if layout == "unaligned":
        offset = 1 + k % max(base.dtype.itemsize - 1, 1)
        buf = np.zeros(base.nbytes + offset + 8, np.uint8)
        arr = buf[offset:offset + base.nbytes].view(base.dtype).reshape(shape)
        arr[...] = base
        return arr, [buf]
    if layout == "readonly":
        arr = base.copy()
        arr.flags.writeable = False
        return arr, [arr]
    if layout == "broadcast" and base.ndim >= 1:
        axis = k % base.ndim
        src = np.ascontiguousarray(base[tuple(slice(0, 1) if i == axis else slice(None) for i in range(base.ndim))])
        return np.broadcast_to(src, shape), [src]
    if layout == "zero_stride" and base.ndim >= 1:
        axis = k % base.ndim
        src = np.ascontiguousarray(base[tuple(slice(0, 1) if i == axis else slice(None) for i in range(base.ndim))])
        strides = list(src.strides)
        strides[axis] = 0
        arr = np.lib.stride_tricks.as_strided(src, shape, strides, writeable=False)
        return arr, [src]
    if layout == "list":
        return base.tolist(), []
    if layout == "subclass":
        arr = base.copy().view(_Sub)
        return arr, [arr]
    arr = base.copy()
    return arr, [arr]


def make_out(spec, expected, inputs):
    """(out argument, buffers it may write to, whether it overlaps an input).

    ``expected``: the reference's result without ``out=`` (its shapes and
    dtypes make the good ``out=``; a pair gives a (values, indices) pair)."""
    kind, k = spec["kind"], spec["arg"]
    if isinstance(expected, tuple) and len(expected) == 2 and kind not in ("none", "list", "single"):
        first, buf1, over1 = _make_one_out(kind, k, spec["fill"], expected[0], inputs)
        if k % 5 == 4 and isinstance(first, np.ndarray):  # out[1] inside out[0]'s memory
            second, buf2, over2 = _make_one_out("overlap_input", k // 5, spec["fill"], expected[1], [first])
            over2 = False
        else:
            second, buf2, over2 = _make_one_out(kind if k % 5 == 3 else "good", k, spec["fill"], expected[1],
                                                inputs)
        return (first, second), buf1 + buf2, over1 or over2
    if isinstance(expected, tuple):
        expected = expected[0]
    if kind == "tuple":
        first, buf1, over1 = _make_one_out("good", k, spec["fill"], expected, inputs)
        return (first, np.zeros(first.shape if first is not None else (1,), np.int64)), buf1, over1
    return _make_one_out(kind, k, spec["fill"], expected, inputs)


def _make_one_out(kind, k, fill, expected, inputs):
    fill = fill[:1] or b"\x7f"
    if isinstance(expected, np.ndarray) and expected.dtype != object:
        shape, dtype = expected.shape, expected.dtype
    else:
        shape, dtype = (1, 1, 1, 1), np.dtype(np.float32)

    def fresh(shape=shape, dtype=dtype):
        arr = np.empty(shape, dtype)
        arr.view(np.uint8).reshape(-1)[...] = np.frombuffer(fill, np.uint8)[0] if arr.size else 0
        return arr

    if kind == "none":
        return None, [], False
    if kind == "list":
        return fresh().tolist(), [], False
    if kind == "fortran":
        arr = np.asfortranarray(fresh())
        return arr, [arr], False
    if kind == "steps" and shape:
        big = fresh((max(shape[0], 1) * 2,) + tuple(shape[1:]))
        arr = big[::2][:shape[0]]
        return arr, [big], False
    if kind == "negative" and shape:
        big = fresh()
        return big[::-1], [big], False
    if kind == "readonly":
        arr = fresh()
        arr.flags.writeable = False
        return arr, [arr], False
    if kind == "unaligned":
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        buf = np.zeros(nbytes + 9, np.uint8)
        arr = buf[1:1 + nbytes].view(dtype).reshape(shape)
        return arr, [buf], False
    if kind == "swapped":
        arr = fresh(dtype=dtype.newbyteorder())
        return arr, [arr], False
    if kind == "wrong_shape":
        bad = list(shape) or [1]
        axis = k % len(bad)
        bad[axis] = bad[axis] + 1 if (k & 0x80 or bad[axis] == 0) else bad[axis] - 1
        arr = fresh(tuple(bad))
        return arr, [arr], False
    if kind == "wrong_dtype":
        arr = fresh(dtype=np.dtype(["float32", "float64", "float16", "int64", "int32", "uint8"][k % 6]))
        return arr, [arr], False
    if kind == "zero_stride" and shape:
        src = fresh()
        arr = np.lib.stride_tricks.as_strided(src, shape, (0,) * len(shape))
        return arr, [src], False
    if kind == "overlap_input":
        arrays = [a for a in inputs if isinstance(a, np.ndarray) and a.flags.writeable and a.flags.c_contiguous
                  and a.dtype != object]
        if arrays:
            src = arrays[k % len(arrays)]
            need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            flat = src.reshape(-1).view(np.uint8)
            if need and flat.size >= need:
                start = (k // 7) % (flat.size - need + 1)
                start -= start % dtype.itemsize
                arr = flat[start:start + need].view(dtype).reshape(shape)
                return arr, [src], True
    if kind == "subclass":
        arr = fresh().view(_Sub)
        return arr, [arr], False
    if kind == "good_3d_of_4d" and len(shape) == 4 and shape[0] == 1:
        arr = fresh(shape[1:])
        return arr, [arr], False
    arr = fresh()
    return arr, [arr], False


# ---------------------------------------------------------------- checks
def _snapshot(buffers):
    return [(b, b.tobytes()) for b in buffers]


def _unchanged(snapshot):
    return all(b.tobytes() == before for b, before in snapshot)


def _same(a, b) -> bool:
    if isinstance(a, tuple) or isinstance(b, tuple):
        return (isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b)))
    if a is None or b is None:
        return a is b
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return (type(a) is type(b) and a.dtype.str == b.dtype.str and a.shape == b.shape
                and a.tobytes() == b.tobytes())
    return type(a) is type(b) and a == b


def _same_values(a, b) -> bool:
    """Same shape and bits, whatever the layout and byte order."""
    a = np.ascontiguousarray(a, a.dtype.newbyteorder("="))
    b = np.ascontiguousarray(b, b.dtype.newbyteorder("="))
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _arrays_in(value):
    if isinstance(value, tuple):
        return [a for v in value for a in _arrays_in(v)]
    return [value] if isinstance(value, np.ndarray) else []


def _call(fn, args, kwargs):
    try:
        return fn(*args, **kwargs), None
    except ACCEPTED as exc:
        return None, exc


def _show(x):
    if isinstance(x, tuple):
        return "(" + ", ".join(_show(v) for v in x) + ")"
    if isinstance(x, np.ndarray):
        return f"ndarray(shape={x.shape}, dtype={x.dtype.str}, strides={x.strides}, aligned={x.flags.aligned})"
    return repr(x)


def checked_call(what, fast_fn, ref_fn, args, kwargs, buffers, out_spec=None):
    """Call ``fast_fn`` and ``ref_fn`` with the same arguments; check the invariants.

    ``buffers``: the inputs' backing arrays. ``out_spec``: the decoded ``out=``
    spec when the entry point takes ``out=`` and the bytes pass one.
    Returns the fast result (None after an error) and the error.
    """
    where = f"{what}(*{[_show(a) for a in args]}, **{ {k: _show(v) for k, v in kwargs.items()} })"
    before = _snapshot(buffers)
    expected, ref_err = _call(ref_fn, args, kwargs)
    if not _unchanged(before):
        raise Finding(f"the reference modified an input: {where}")
    out_buffers, overlap, twin = [], False, None
    if out_spec is not None:
        out, out_buffers, overlap = make_out(out_spec, expected, [b for b, _ in before])
        kwargs = dict(kwargs, out=out)
        where += f" with out={_show(out)} ({out_spec['kind']})"
        if not overlap:
            twin, _, _ = make_out(out_spec, expected, [b for b, _ in before])
    out_before = _snapshot(out_buffers)
    got, err = _call(fast_fn, args, kwargs)
    if err is not None:
        if not _unchanged(before):
            raise Finding(f"{type(err).__name__} raised, but an input was modified: {where}: {err}")
        if not _unchanged(out_before):
            raise Finding(f"{type(err).__name__} raised, but out= was written to: {where}: {err}")
    elif not overlap and not _unchanged(before):
        raise Finding(f"the call modified its input: {where}")
    if overlap and err is not None:
        # it wrote nothing, so the reference may see the same out= (and must refuse it too)
        expected, ref_err = _call(ref_fn, args, kwargs)
    if out_spec is not None and not overlap:
        # The reference with its own copy of out=: same error or same writes.
        expected, ref_err = _call(ref_fn, args, dict(kwargs, out=twin))
        if err is None and ref_err is None:
            for a, b in zip(_arrays_in(kwargs["out"]), _arrays_in(twin)):
                if a.tobytes() != b.tobytes():
                    raise Finding(f"out= holds {a!r}, the reference's out= {b!r}: {where}")
    STATS[what, "ok" if err is None else type(err).__name__] += 1
    if err is not None or ref_err is not None:
        if type(err) is not type(ref_err) or str(err) != str(ref_err):
            raise Finding(f"cpool raised {err!r}, the reference {ref_err!r}: {where}")
        return None, err
    if overlap:  # accepted although it overlaps an input: it must still hold the right values
        if not all(_same_values(a, b) for a, b in zip(_arrays_in(got), _arrays_in(expected))):
            raise Finding(f"cpool returned {got!r} into an overlapping out=, the reference {expected!r}: {where}")
    elif not _same(got, expected):
        raise Finding(f"cpool returned {got!r}, the reference {expected!r}: {where}")
    outs = [id(a) for a in _arrays_in(kwargs.get("out"))]
    for a in _arrays_in(got):
        if id(a) in outs:
            continue
        for b, _ in before:
            if np.shares_memory(a, b):
                raise Finding(f"the result shares memory with an input: {where}")
    return got, None


# ---------------------------------------------------------------- targets
FORWARD_PARAMS = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
LAYER_PARAMS = ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode")


def _arguments(positional_names, values, npos):
    """(args, kwargs) passing the first ``npos`` values by position, the rest
    by keyword; an omitted one ends the positional run."""
    args, kwargs = [], {}
    for i, name in enumerate(positional_names):
        v = values[name]
        if v == ("omit",):
            npos = min(npos, i)
            continue
        if i < npos:
            args.append(make_arg(name, v))
        else:
            kwargs[name] = make_arg(name, v)
    return args, kwargs


def decode_max_pool2d(fdp):
    return {"x": decode_array(fdp), "args": decode_pool_args(fdp, FORWARD_PARAMS),
            "npos": fdp.ConsumeIntInRange(0, len(FORWARD_PARAMS)), "optional": decode_optional(fdp)}


def _optional_kwargs(spec, fns):
    """The optional keyword arguments every one of ``fns`` takes (out= apart)."""
    kw, out = {}, None
    for name, value in spec["optional"].items():
        if all(accepts(fn, name) for fn in fns):
            if name == "out":
                out = value
            else:
                kw[name] = value
    return kw, out


def run_max_pool2d(spec, cpool):
    x, buffers = materialize(spec["x"])
    args, kwargs = _arguments(FORWARD_PARAMS, spec["args"], spec["npos"])
    extra, out = _optional_kwargs(spec, [cpool.max_pool2d, cpool.slow.max_pool2d])
    checked_call("max_pool2d", cpool.max_pool2d, cpool.slow.max_pool2d, [x] + args, dict(kwargs, **extra),
                 buffers, out)


HOSTILE = [-1, -2, 0, 1, "plane", "plane+1", "plane-1", 2**31 - 1, 2**31, 2**32, "2**32+valid", 2**63 - 1,
           -(2**63), -(2**31), "valid+plane"]
SHAPE_EDITS = ["same", "same", "same", "same", "list", "ndarray", "np_ints", "h+1", "w-1", "swap", "zero_h",
               "negative", "short", "long", "bool", "float", "huge_empty", "n+1", "none", "str"]


def decode_max_pool2d_backward(fdp):
    spec = {"consistent": fdp.ConsumeIntInRange(0, 4) != 4}
    if spec["consistent"]:  # indices from a real forward, then edited
        spec["x"] = decode_array(fdp, pool=["float32", "float64", "float16"], ndims=[4, 4, 3, 3, 4, 5, 2])
        spec["args"] = decode_pool_args(fdp, FORWARD_PARAMS[:5])
        spec["edits"] = [(fdp.ConsumeIntInRange(0, 2**16), fdp.PickValueInList(HOSTILE))
                         for _ in range(fdp.ConsumeIntInRange(0, 3))]
        spec["shape_edit"] = fdp.PickValueInList(SHAPE_EDITS)
        spec["go_dtype"] = decode_dtype(fdp, ["float32", "float32", "float64", "float16"])
    else:  # everything independent
        spec["go"] = decode_array(fdp, pool=["float32", "float64", "float16"], ndims=[4, 4, 3, 3, 4, 5, 2])
        spec["idx_values"] = decode_array(fdp, shape=spec["go"]["shape"], dtype="int64")
        spec["input_shape"] = decode_shape(fdp)
        spec["shape_edit"] = fdp.PickValueInList(SHAPE_EDITS)
    spec["go_layout"] = decode_array(fdp, shape=(), dtype="float32")
    spec["idx_layout"] = decode_array(fdp, shape=(), dtype="int64")
    spec["idx_dtype"] = fdp.PickValueInList(INDEX_DTYPES)
    spec["npos"] = fdp.ConsumeIntInRange(0, 3)
    spec["optional"] = decode_optional(fdp)
    return spec


def _edit_shape(shape, edit):
    s = list(shape)
    if edit == "list":
        return s
    if edit == "ndarray":
        return np.array(s, dtype=np.int64)
    if edit == "np_ints":
        return tuple(np.int64(v) for v in s)
    if edit == "h+1" and len(s) >= 2:
        s[-2] += 1
    elif edit == "w-1" and s:
        s[-1] -= 1
    elif edit == "swap" and len(s) >= 2:
        s[-1], s[-2] = s[-2], s[-1]
    elif edit == "zero_h" and len(s) >= 2:
        s[-2] = 0
    elif edit == "negative" and s:
        s[-1] = -s[-1] - 1
    elif edit == "short":
        s = s[1:]
    elif edit == "long":
        s = [1] + s
    elif edit == "bool" and s:
        s[0] = True
    elif edit == "float" and s:
        s[-1] = float(s[-1])
    elif edit == "huge_empty" and len(s) >= 3:
        s[0], s[-1], s[-2] = 0, 2**40, 2**31  # nothing to allocate: no plane
        if len(s) == 3:
            s[-1] = 5
    elif edit == "n+1" and s:
        s[0] += 1
    elif edit == "none":
        return None
    elif edit == "str":
        return "1,1,2,2"
    return tuple(s)


def _hostile_value(v, plane, valid):
    if isinstance(v, int):
        return v
    return {"plane": plane, "plane+1": plane + 1, "plane-1": plane - 1, "2**32+valid": 2**32 + valid,
            "valid+plane": valid + plane}[v]


def _with_layout(values, layout_spec, dtype=None):
    """``values`` in the layout (and byte order) a layout spec describes."""
    if dtype is not None:
        with warnings.catch_warnings():  # complex values to a real gradient dtype: the casting is the point
            warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
            try:
                base = values.astype(dtype)
            except (OverflowError, ValueError, TypeError):
                # Python objects (inf, nan, huge ints) that the gradient dtype
                # cannot hold: the gradient's shape is what matters then.
                base = np.zeros(np.shape(values), dtype)
    else:
        base = values
    if base.dtype == object or base.ndim == 0:
        return base, []
    return materialize(layout_spec, base)


def _wrap64(v: int) -> int:
    """``v`` as the int64 that has its low 64 bits."""
    return (v + 2**63) % 2**64 - 2**63


def run_max_pool2d_backward(spec, cpool):
    slow = cpool.slow
    extra, out = _optional_kwargs(spec, [cpool.max_pool2d_backward, slow.max_pool2d_backward])
    fwd_extra = {k: v for k, v in extra.items() if accepts(slow.max_pool2d, k)}
    if spec["consistent"]:
        x = _values(spec["x"])
        args, kwargs = _arguments(FORWARD_PARAMS[:5], spec["args"], 5)
        try:
            res = slow.max_pool2d(x, *args, return_indices=True, **kwargs, **fwd_extra)
        except ACCEPTED:
            return
        if not (isinstance(res, tuple) and len(res) == 2):
            return
        out_vals, idx = res
        idx = idx.copy()
        shape = x.shape
        if idx.size:
            plane = int(np.prod(shape[-2:])) if len(shape) >= 2 else 1
            flat = idx.reshape(-1)
            for pos, v in spec["edits"]:
                p = pos % idx.size
                flat[p] = _wrap64(_hostile_value(v, plane, int(flat[p])))
        go_dtype = spec["go_dtype"]
        go = out_vals.astype(go_dtype if go_dtype != "object" else object)
        if go.dtype.kind == "f":
            go = (go.astype(np.float64) * 0.5 + np.arange(go.size).reshape(go.shape) % 3).astype(go.dtype)
        input_shape = _edit_shape(shape, spec["shape_edit"])
    else:
        go = _values(spec["go"])
        idx = _values(spec["idx_values"])
        input_shape = _edit_shape(spec["input_shape"], spec["shape_edit"])
    idx_dtype = spec["idx_dtype"]
    with np.errstate(all="ignore"):
        idx_typed = idx.astype(idx_dtype)
    go_arr, go_buffers = _with_layout(go, spec["go_layout"])
    idx_arr, idx_buffers = _with_layout(idx_typed, spec["idx_layout"])
    values = [go_arr, idx_arr, input_shape]
    npos = spec["npos"]
    names = ("grad_output", "indices", "input_shape")
    args = values[:npos]
    kwargs = dict(zip(names[npos:], values[npos:]), **extra)
    checked_call("max_pool2d_backward", cpool.max_pool2d_backward, slow.max_pool2d_backward, args, kwargs,
                 go_buffers + idx_buffers, out)


LAYER_OPS = ["forward", "forward", "updateOutput", "call", "backward", "backward", "updateGradInput",
             "set_indices", "read_indices", "read_index", "evaluate", "new_input", "backward_other_input"]


def decode_MaxPool2d(fdp):
    spec = {"args": decode_pool_args(fdp, LAYER_PARAMS), "npos": fdp.ConsumeIntInRange(0, len(LAYER_PARAMS)),
            "x": decode_array(fdp, pool=SUPPORTED + ["float32"] * 4)}
    ops = []
    for _ in range(fdp.ConsumeIntInRange(1, 6)):
        op = fdp.PickValueInList(LAYER_OPS)
        item = {"op": op}
        if op == "new_input" or op == "backward_other_input":
            item["x"] = decode_array(fdp, pool=SUPPORTED + ["float32"] * 4)
        if op in ("backward", "updateGradInput", "backward_other_input"):
            item["go_dtype"] = decode_dtype(fdp, ["float32", "float64", "float16"])
            item["go_layout"] = decode_array(fdp, shape=(), dtype="float32")
            item["go_shape_edit"] = fdp.PickValueInList(["same"] * 6 + ["h+1", "w-1", "short", "long"])
        if op == "set_indices":
            item["edits"] = [(fdp.ConsumeIntInRange(0, 2**16), fdp.PickValueInList(HOSTILE))
                             for _ in range(fdp.ConsumeIntInRange(0, 2))]
            item["idx_dtype"] = fdp.PickValueInList(INDEX_DTYPES)
            item["idx_layout"] = decode_array(fdp, shape=(), dtype="int64")
        ops.append(item)
    spec["ops"] = ops
    spec["optional"] = decode_optional(fdp)
    return spec


def _layer_state(layer):
    return {k: id(v) for k, v in vars(layer).items()}


def run_MaxPool2d(spec, cpool):
    slow_backend = "numpy"
    args, kwargs = _arguments(LAYER_PARAMS, spec["args"], spec["npos"])
    extra, _ = _optional_kwargs(spec, [cpool.MaxPool2d.__init__])
    kwargs.update(extra)
    try:
        fast = cpool.MaxPool2d(*args, **kwargs)
        fast_err = None
    except ACCEPTED as exc:
        fast, fast_err = None, exc
    try:
        ref = cpool.MaxPool2d(*args, backend=slow_backend, **kwargs)
        ref_err = None
    except ACCEPTED as exc:
        ref, ref_err = None, exc
    if type(fast_err) is not type(ref_err) or str(fast_err) != str(ref_err):
        raise Finding(f"MaxPool2d(*{args!r}, **{kwargs!r}): cpool raised {fast_err!r}, the reference {ref_err!r}")
    if fast is None:
        return
    x, x_buffers = materialize(spec["x"])
    last_out = None
    for item in spec["ops"]:
        op = item["op"]
        if op == "new_input":
            x, x_buffers = materialize(item["x"])
            continue
        if op == "evaluate":
            fast.evaluate()
            ref.evaluate()
            continue
        if op == "read_indices":
            if not _same(fast.indices, ref.indices):
                raise Finding(f"MaxPool2d.indices differ: {fast.indices!r} vs {ref.indices!r}")
            continue
        if op == "read_index":
            if not _same(fast.index, ref.index):
                raise Finding(f"MaxPool2d.index differ: {fast.index!r} vs {ref.index!r}")
            continue
        if op == "set_indices":
            current = ref.indices
            if current is None:
                continue
            with np.errstate(all="ignore"):  # earlier set_indices may have left another dtype
                idx = np.array(current).astype(np.int64)
            in_shape = getattr(ref, "_input_shape", None) or ()
            if idx.size and len(in_shape) >= 2:
                nhwc = getattr(ref, "data_format", "NCHW") == "NHWC" and len(in_shape) >= 3
                plane = int(np.prod(in_shape[-3:-1] if nhwc else in_shape[-2:]))
                flat = idx.reshape(-1)
                for pos, v in item["edits"]:
                    p = pos % idx.size
                    flat[p] = _wrap64(_hostile_value(v, plane, int(flat[p])))
            with np.errstate(all="ignore"):
                typed = idx.astype(item["idx_dtype"])
            arr, _ = _with_layout(typed, item["idx_layout"])
            fast.indices = arr
            ref.indices = arr
            continue
        if op in ("forward", "updateOutput", "call"):
            name = {"call": "__call__"}.get(op, op)
            state = _layer_state(fast)
            got, err = checked_call(f"MaxPool2d.{name}", getattr(fast, name), getattr(ref, name), [x], {},
                                    x_buffers)
            if err is not None and _layer_state(fast) != state:
                raise Finding(f"MaxPool2d.{name} raised {err!r} but changed the layer's state")
            if err is None:
                last_out = got[0] if isinstance(got, tuple) else got
                if not _same(fast.output, ref.output):
                    raise Finding("MaxPool2d.output differs after forward")
            continue
        # backward ops
        inp, inp_buffers = (materialize(item["x"]) if op == "backward_other_input" else (x, x_buffers))
        template = last_out if last_out is not None else np.zeros((1, 1, 1, 1), np.float32)
        go_shape = _edit_shape(template.shape, item["go_shape_edit"])
        go = np.resize(np.arange(7, dtype=np.float64) - 2.5, go_shape) if isinstance(go_shape, tuple) else None
        if go is None:
            continue
        go = go.astype(item["go_dtype"])
        go_arr, go_buffers = _with_layout(go, item["go_layout"])
        name = "backward" if op != "updateGradInput" else op
        state = _layer_state(fast)
        _, err = checked_call(f"MaxPool2d.{name}", getattr(fast, name), getattr(ref, name), [inp, go_arr], {},
                              inp_buffers + go_buffers + _arrays_in(fast.indices if getattr(fast, "_indices", None)
                                                                    is not None else None))
        if err is not None and _layer_state(fast) != state:
            raise Finding(f"MaxPool2d.{name} raised {err!r} but changed the layer's state")
        if err is None and not _same(fast.gradInput, ref.gradInput):
            raise Finding("MaxPool2d.gradInput differs after backward")


AVG_PARAMS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
AVG_GRAD_DTYPES = ["float32", "float32", "float64", "float16", "int64", "int32"]


def decode_avg_pool2d(fdp):
    return {"x": decode_array(fdp), "args": decode_pool_args(fdp, AVG_PARAMS),
            "npos": fdp.ConsumeIntInRange(0, len(AVG_PARAMS)), "optional": decode_optional(fdp)}


def run_avg_pool2d(spec, cpool):
    x, buffers = materialize(spec["x"])
    args, kwargs = _arguments(AVG_PARAMS, spec["args"], spec["npos"])
    extra, out = _optional_kwargs(spec, [cpool.avg_pool2d, cpool.slow.avg_pool2d])
    checked_call("avg_pool2d", cpool.avg_pool2d, cpool.slow.avg_pool2d, [x] + args, dict(kwargs, **extra),
                 buffers, out)


def decode_avg_pool2d_backward(fdp):
    # The gradient has the shape of a real forward's output (of the decoded
    # input and arguments), then the input shape may be edited.
    return {"x": decode_array(fdp, pool=["float32", "float64", "float16", "int64"], ndims=[4, 4, 3, 3, 4, 5, 2]),
            "args": decode_pool_args(fdp, AVG_PARAMS), "npos": fdp.ConsumeIntInRange(0, len(AVG_PARAMS)),
            "shape_edit": fdp.PickValueInList(SHAPE_EDITS), "go_dtype": decode_dtype(fdp, AVG_GRAD_DTYPES),
            "go_layout": decode_array(fdp, shape=(), dtype="float32"), "optional": decode_optional(fdp)}


def run_avg_pool2d_backward(spec, cpool):
    x, _ = materialize(spec["x"])
    args, kwargs = _arguments(AVG_PARAMS, spec["args"], spec["npos"])
    fmt = spec["optional"].get("data_format")
    fwd_kwargs = dict(kwargs, data_format=fmt) if isinstance(fmt, str) and fmt in ("NCHW", "NHWC") else kwargs
    try:
        with np.errstate(all="ignore"):
            values = np.asarray(cpool.slow.avg_pool2d(x, *args, **fwd_kwargs))
    except ACCEPTED:
        values = np.asarray(x)  # a gradient of the input's own shape, for the error paths
    go, buffers = _with_layout(values, spec["go_layout"], spec["go_dtype"])
    shape = _edit_shape(np.shape(x), spec["shape_edit"])
    extra, out = _optional_kwargs(spec, [cpool.avg_pool2d_backward, cpool.slow.avg_pool2d_backward])
    checked_call("avg_pool2d_backward", cpool.avg_pool2d_backward, cpool.slow.avg_pool2d_backward,
                 [go, shape] + args, dict(kwargs, **extra), buffers, out)


# ---------------------------------------------------------------- adaptive pooling
def decode_adaptive(fdp):
    spec = {"x": decode_array(fdp), "output_size": decode_pool_value(fdp, *POOL_ARGS["output_size"]),
            "none_entry": fdp.ConsumeIntInRange(0, 5), "return_indices": decode_bool(fdp),
            "npos": fdp.ConsumeIntInRange(0, 2), "optional": decode_optional(fdp)}
    return spec


def _output_size(spec):
    size = make_pool_value(spec["output_size"])
    if isinstance(size, tuple) and len(size) == 2 and spec["none_entry"] < 2:
        size = tuple(None if i == spec["none_entry"] else v for i, v in enumerate(size))  # None keeps that size
    return size


# A valid call whose output would need more memory than this is left out:
# the fuzzer looks for wrong answers and crashes, not for how the machine
# runs out of memory (an output too large for an array at all is an error,
# and still checked).
OUTPUT_BUDGET = 2**26  # bytes


def _too_large_to_run(n_elements, itemsize=8):
    return OUTPUT_BUDGET < n_elements * itemsize < 2**62


def _run_adaptive(name, spec, cpool, with_indices_arg):
    x, buffers = materialize(spec["x"])
    fast, ref = getattr(cpool, name), getattr(cpool.slow, name)
    try:
        fmt = spec["optional"].get("data_format", "NCHW")
        _, g, _, _ = cpool._validation.prepare_adaptive_forward(x, _output_size(spec), fmt, name)
        if _too_large_to_run(int(np.prod(np.shape(x), dtype=object)) * g.OH * g.OW):
            return
    except (ValueError, TypeError):
        pass  # the error path is what the call below checks
    values = [_output_size(spec)] + ([make_bool(spec["return_indices"])] if with_indices_arg else [])
    names = ("output_size", "return_indices")[:len(values)]
    npos = spec["npos"]
    extra, out = _optional_kwargs(spec, [fast, ref])
    checked_call(name, fast, ref, [x] + values[:npos], dict(zip(names[npos:], values[npos:]), **extra),
                 buffers, out)
    # the backward of what the forward gave, through the same arguments
    try:
        with np.errstate(all="ignore"):
            res = cpool.slow.adaptive_max_pool2d(x, _output_size(spec), True, **extra) if with_indices_arg \
                else cpool.slow.adaptive_avg_pool2d(x, _output_size(spec), **extra)
    except ACCEPTED:
        return
    bwd = name + "_backward"
    if with_indices_arg:
        vals, idx = res
        args = [vals, idx, np.shape(x)]
    else:
        args = [res, np.shape(x)]
    checked_call(bwd, getattr(cpool, bwd), getattr(cpool.slow, bwd), args, dict(extra), [], None)


def run_adaptive_avg_pool2d(spec, cpool):
    _run_adaptive("adaptive_avg_pool2d", spec, cpool, False)


def run_adaptive_max_pool2d(spec, cpool):
    _run_adaptive("adaptive_max_pool2d", spec, cpool, True)


# ---------------------------------------------------------------- max unpooling
UNPOOL_PARAMS = ("kernel_size", "stride", "padding", "output_size")


def decode_max_unpool2d(fdp):
    return {"x": decode_array(fdp, pool=["float32", "float64", "float16", "float32", "int64"],
                              ndims=[4, 4, 3, 3, 4, 5, 2]),
            "pool_args": decode_pool_args(fdp, FORWARD_PARAMS[:5]),
            "args": decode_pool_args(fdp, UNPOOL_PARAMS[:3]),
            "output_size": decode_pool_value(fdp, 0, 14), "size_kind": fdp.ConsumeIntInRange(0, 4),
            "edits": [(fdp.ConsumeIntInRange(0, 2**16), fdp.PickValueInList(HOSTILE))
                      for _ in range(fdp.ConsumeIntInRange(0, 3))],
            "idx_dtype": fdp.PickValueInList(INDEX_DTYPES), "idx_layout": decode_array(fdp, shape=(), dtype="int64"),
            "go_layout": decode_array(fdp, shape=(), dtype="float32"),
            "npos": fdp.ConsumeIntInRange(0, 5), "optional": decode_optional(fdp)}


def _unpool_args_of(names, values, npos, kwargs):
    """(kernel_size, stride, padding, output_size) of a max_unpool2d call, defaults filled in."""
    given = dict(zip(names, values[:npos]))
    given.update(kwargs)
    return (given.get("kernel_size"), given.get("stride"), given.get("padding", 0), given.get("output_size"))


def run_max_unpool2d(spec, cpool):
    """max_unpool2d of a real max_pool2d's values and (edited) indices, then its backward."""
    slow = cpool.slow
    x = _values(spec["x"])
    pargs, pkw = _arguments(FORWARD_PARAMS[:5], spec["pool_args"], 5)
    try:
        with np.errstate(all="ignore"):
            vals, idx = slow.max_pool2d(x, *pargs, return_indices=True, **pkw)
    except ACCEPTED:
        vals, idx = x, np.zeros(np.shape(x), np.int64)
    idx = np.array(idx, copy=True)
    if idx.size:
        flat = idx.reshape(-1)
        plane = int(np.prod(np.shape(x)[-2:])) if np.ndim(x) >= 2 else 1
        for pos, v in spec["edits"]:
            p = pos % idx.size
            flat[p] = _wrap64(_hostile_value(v, plane, int(flat[p])))
    kind = spec["size_kind"]
    size = {0: None, 1: np.shape(x)[-2:], 2: np.shape(x), 3: make_pool_value(spec["output_size"])}.get(kind)
    with np.errstate(all="ignore"):
        idx_typed = idx.astype(spec["idx_dtype"])
    v_arr, v_buf = _with_layout(np.asarray(vals), spec["go_layout"])
    i_arr, i_buf = _with_layout(idx_typed, spec["idx_layout"])
    args, kwargs = _arguments(UNPOOL_PARAMS[:3], spec["args"], 3)
    values = [v_arr, i_arr] + args + [size]
    names = ("input", "indices") + UNPOOL_PARAMS
    npos = min(spec["npos"] + 2, len(values))
    if kwargs:  # an omitted argument ends the positional run
        npos = min(npos, 2 + len(args))
    call_kwargs = dict(zip(names[npos:], values[npos:]), **kwargs)
    extra, out = _optional_kwargs(spec, [cpool.max_unpool2d, slow.max_unpool2d])
    try:
        _, _, size_hw, _, _ = cpool._validation.prepare_unpool(
            v_arr, i_arr, *_unpool_args_of(names, values, npos, call_kwargs), extra.get("data_format", "NCHW"))
        if _too_large_to_run(int(np.prod(np.shape(v_arr), dtype=object)) * size_hw[0] * size_hw[1]):
            return
    except (ValueError, TypeError):
        pass  # the error path is what the call below checks
    checked_call("max_unpool2d", cpool.max_unpool2d, slow.max_unpool2d, values[:npos], dict(call_kwargs, **extra),
                 v_buf + i_buf, out)
    try:
        with np.errstate(all="ignore"):
            restored = slow.max_unpool2d(*values[:npos], **call_kwargs, **extra)
    except ACCEPTED:
        return
    checked_call("max_unpool2d_backward", cpool.max_unpool2d_backward, slow.max_unpool2d_backward,
                 [restored, i_arr], dict(extra), v_buf + i_buf, None)


# ---------------------------------------------------------------- index formats
def decode_indices(fdp):
    return {"x": decode_array(fdp, pool=["float32", "float64"], ndims=[4, 4, 3, 3, 4, 5, 2]),
            "pool_args": decode_pool_args(fdp, FORWARD_PARAMS[:5]),
            "format": fdp.ConsumeIntInRange(0, 6), "direction": fdp.ConsumeIntInRange(0, 1),
            "edits": [(fdp.ConsumeIntInRange(0, 2**16), fdp.PickValueInList(HOSTILE))
                      for _ in range(fdp.ConsumeIntInRange(0, 3))],
            "shape_edit": fdp.PickValueInList(SHAPE_EDITS), "optional": decode_optional(fdp)}


def run_indices(spec, cpool):
    """indices_to / indices_from: never a crash, a clear error or a round trip back to cpool's indices."""
    x = _values(spec["x"])
    fmt = (list(cpool.INDEX_FORMATS) + ["caffe", None])[spec["format"]]
    pargs, pkw = _arguments(FORWARD_PARAMS[:5], spec["pool_args"], 5)
    fmt_kw = {k: v for k, v in spec["optional"].items() if k == "data_format"}
    try:
        with np.errstate(all="ignore"):
            _, idx = cpool.slow.max_pool2d(x, *pargs, return_indices=True, **fmt_kw)
    except ACCEPTED:
        idx = np.zeros(np.shape(x), np.int64)
    idx = np.array(idx, copy=True)
    shape = _edit_shape(np.shape(x), spec["shape_edit"])
    if spec["direction"] == 1 and isinstance(fmt, str) and fmt in cpool.INDEX_FORMATS:
        try:
            idx = cpool.indices_to(idx, fmt, shape, **fmt_kw)
        except ACCEPTED:
            pass
    if idx.size:
        flat = idx.reshape(-1)
        for pos, v in spec["edits"]:
            p = pos % idx.size
            flat[p] = _wrap64(_hostile_value(v, max(idx.size, 1), int(flat[p])))
    fn = cpool.indices_from if spec["direction"] == 1 else cpool.indices_to
    before = idx.copy()
    STATS[(fn.__name__, "call")] += 1
    try:
        result = fn(idx, fmt, shape, **fmt_kw)
    except ACCEPTED:
        if not np.array_equal(idx, before):
            raise Finding(f"{fn.__name__} wrote to its input before raising") from None
        return
    if not np.array_equal(idx, before) or np.shares_memory(result, idx):
        raise Finding(f"{fn.__name__} modified or returned its input")
    back = cpool.indices_from(result, fmt, shape, **fmt_kw) if fn is cpool.indices_to \
        else cpool.indices_to(result, fmt, shape, **fmt_kw)
    if not np.array_equal(back, idx):
        raise Finding(f"{fn.__name__} then its inverse did not give the indices back ({fmt!r})")


TARGETS = {
    "max_pool2d": (decode_max_pool2d, run_max_pool2d),
    "max_pool2d_backward": (decode_max_pool2d_backward, run_max_pool2d_backward),
    "MaxPool2d": (decode_MaxPool2d, run_MaxPool2d),
    "avg_pool2d": (decode_avg_pool2d, run_avg_pool2d),
    "avg_pool2d_backward": (decode_avg_pool2d_backward, run_avg_pool2d_backward),
    "adaptive_avg_pool2d": (decode_adaptive, run_adaptive_avg_pool2d),
    "adaptive_max_pool2d": (decode_adaptive, run_adaptive_max_pool2d),
    "max_unpool2d": (decode_max_unpool2d, run_max_unpool2d),
    "indices": (decode_indices, run_indices),
}
TARGET_NAMES = list(TARGETS)


def decode(target: str, data: bytes):
    """The spec ``data`` decodes to, for ``target`` (or ``"all"``: the first byte picks it)."""
    fdp = ByteProvider(data)
    if target == "all":
        target = TARGET_NAMES[fdp.ConsumeIntInRange(0, len(TARGET_NAMES) - 1)]
    return target, TARGETS[target][0](fdp)


def run_spec(target: str, spec, cpool=None):
    if cpool is None:
        import cpool
    with np.errstate(all="ignore"):
        TARGETS[target][1](spec, cpool)


def run_one(target: str, data: bytes, cpool=None):
    """Decode ``data`` and run the differential check; raises on a finding."""
    name, spec = decode(target, data)
    run_spec(name, spec, cpool)


def describe(target: str, data: bytes) -> str:
    name, spec = decode(target, data)
    return f"{name}: {spec!r}"
