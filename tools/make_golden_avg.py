"""Record golden arrays of average pooling from torch 2.13 for tests/test_avg_pool.py.

Run once (and again only if the case generator changes):
    python tools/make_golden_avg.py
It writes tests/data/golden_avg_torch.npz: random adversarial configurations
of ``avg_pool2d`` (kernel, stride or none, padding up to half the kernel,
ceil_mode, count_include_pad, divisor_override including negative ones;
float16, float32, float64 and int64; NaN payloads, +-inf, -0.0, subnormals,
overflowing sums, tie-heavy values; 3-D and 4-D input, batch 0; NCHW
contiguous, 4-D channels-last and 3-D channels-last memory) with torch's
forward values and, for every non-empty case, a grad_output with torch's
grad_input. The test then checks both backends against these arrays without
needing torch.

Layout of the file (one flat buffer per dtype keeps it small; an npz member
per array would cost more in zip headers than the data):

* ``torch_version``: the torch that recorded it.
* ``cases``: int64 (n, len(FIELDS)) table, one row per case, columns FIELDS.
* ``data/<dtype>``: the concatenated arrays of the cases of that dtype, each
  in logical (C, H, W) / (N, C, H, W) order, C-contiguous, at the row's
  offsets: input, output, grad_output, grad_input.
* ``cpu_dependent``: bool, concatenated like the outputs of the
  channels-last cases (offset ``mask_at``): output elements whose NaN
  payload torch's channels-last forward chooses differently in its
  vectorised channels and in its scalar channel tail, whose length depends on
  the CPU torch runs on (see README "### Average pooling").
"""

import os

import numpy as np
import torch
import torch.nn.functional as F

TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
OUT = os.path.join(TESTS, "data", "golden_avg_torch.npz")
N_CASES = 480

DTYPES = ("float16", "float32", "float64", "int64")
LAYOUTS = ("nchw", "channels_last", "3d_channels_last")
#: The columns of ``cases``. shape is (N, C, H, W), N = -1 for 3-D input;
#: divisor 0 means None; *_at are offsets into data/<dtype> (-1: absent).
FIELDS = ("dtype", "layout", "N", "C", "H", "W", "kh", "kw", "sh", "sw", "ph", "pw", "ceil_mode",
          "count_include_pad", "divisor", "stride_none", "x_at", "out_at", "grad_out_at", "grad_in_at", "mask_at")
DIVISORS = (None,) * 10 + (1, 2, 3, -1, -2, -3, 7, 9, -9, 2049, 100000, -65505, 2**40)


def nan_bits(dtype, rng, n):
    """``n`` NaNs of random sign and payload (mostly quiet; a few signalling)."""
    word = np.dtype(f"u{np.dtype(dtype).itemsize}")
    nm = np.finfo(dtype).nmant
    exp = ((1 << (8 * word.itemsize - 1)) - 1) ^ ((1 << nm) - 1)
    payload = rng.integers(1, 1 << min(nm, 30), n).astype(np.uint64)
    quiet = (rng.random(n) < 0.9).astype(np.uint64) << np.uint64(nm - 1)
    sign = rng.integers(0, 2, n).astype(np.uint64) << np.uint64(8 * word.itemsize - 1)
    bits = (np.uint64(exp) | quiet | payload | sign).astype(word)
    return bits.view(dtype)


def float_values(rng, dtype, shape, mode):
    dtype = np.dtype(dtype)
    fi = np.finfo(dtype)
    n = int(np.prod(shape))
    if mode == "spread":  # magnitudes over many decades: sums whose value depends on the order
        top = 4 if dtype == np.float16 else 8
        x = rng.standard_normal(n) * 10.0 ** rng.integers(-3, top, n)
    elif mode == "ties":  # few values, exact halves: ties of sums and of rounding the mean
        x = rng.integers(-8, 9, n) * 0.25
        if rng.integers(2):
            base = 2048.0 if dtype == np.float16 else (2.0**24 if dtype == np.float32 else 2.0**53)
            x = base + rng.integers(-6, 7, n)
    elif mode == "tiny":  # subnormals: means round to +-0.0 (the sign differs between torch's kernels)
        x = -fi.smallest_subnormal * rng.integers(0, 4, n)
        x[rng.random(n) < 0.2] *= -1
    elif mode == "large":  # sums that overflow to inf (float16 sums in float32; its mean may overflow)
        x = float(fi.max) * rng.uniform(0.3, 1.0, n) * rng.choice([-1.0, 1.0], n, p=[0.2, 0.8])
    else:  # "special": NaN payloads, +-inf, -0.0 among ordinary values
        x = rng.standard_normal(n)
    x = x.astype(dtype)
    if mode in ("spread", "special", "ties"):
        x[rng.random(n) < 0.08] = -0.0
    if mode == "special":
        r = rng.random(n)
        x[r < 0.08] = np.inf
        x[(r >= 0.08) & (r < 0.16)] = -np.inf
        nan = r >= 0.84
        x[nan] = nan_bits(dtype, rng, int(nan.sum()))
    return x.reshape(shape)


def int_values(rng, shape):
    if rng.integers(3):
        return rng.integers(-1000, 1001, shape).astype(np.int64)
    # int64 sums wrap, as torch's
    return rng.integers(-(2**63), 2**63 - 1, shape, dtype=np.int64, endpoint=True)


def random_case(rng):
    dtype = DTYPES[int(rng.integers(len(DTYPES)))]
    layout = LAYOUTS[int(rng.choice(3, p=[0.5, 0.35, 0.15]))]
    three_d = layout == "3d_channels_last" or (layout == "nchw" and rng.random() < 0.3)
    N = -1 if three_d else int(rng.choice([0, 1, 2, 3], p=[0.06, 0.5, 0.3, 0.14]))
    if rng.random() < 0.25:  # channels across torch's vector lanes and a scalar tail
        C, H, W = int(rng.integers(9, 41)), int(rng.integers(1, 6)), int(rng.integers(1, 6))
        N = min(N, 1)
    else:
        C, H, W = int(rng.integers(1, 6)), int(rng.integers(1, 13)), int(rng.integers(1, 13))
    if H * W < 2:
        W = 2  # a 1x1 plane's memory format is ambiguous to torch
    kh = int(rng.integers(1, min(H, 5) + 2))
    kw = kh if rng.random() < 0.4 else int(rng.integers(1, min(W, 5) + 2))
    stride_none = bool(rng.random() < 0.3)
    sh, sw = (kh, kw) if stride_none else (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    # padding up to half the kernel, often exactly half (PyTorch's limit)
    ph = kh // 2 if rng.random() < 0.4 else int(rng.integers(0, kh // 2 + 1))
    pw = kw // 2 if rng.random() < 0.4 else int(rng.integers(0, kw // 2 + 1))
    params = dict(kh=kh, kw=kw, sh=sh, sw=sw, ph=ph, pw=pw, ceil_mode=bool(rng.integers(2)),
                  count_include_pad=bool(rng.integers(2)), divisor=DIVISORS[int(rng.integers(len(DIVISORS)))],
                  stride_none=stride_none)
    shape = (C, H, W) if N < 0 else (N, C, H, W)
    if dtype == "int64":
        x, mode = int_values(rng, shape), "int"
    else:
        mode = str(rng.choice(["spread", "ties", "tiny", "large", "special"], p=[0.3, 0.2, 0.1, 0.1, 0.3]))
        x = float_values(rng, dtype, shape, mode)
    return x, layout, params, mode


def to_torch(x, layout):
    t = torch.from_numpy(np.ascontiguousarray(x))
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "3d_channels_last":  # (C, H, W) with the channels innermost in memory
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, 0, -1))).permute(2, 0, 1)
    return t


def forward(t, p):
    stride = None if p["stride_none"] else (p["sh"], p["sw"])
    return F.avg_pool2d(t, (p["kh"], p["kw"]), stride, (p["ph"], p["pw"]), p["ceil_mode"],
                        p["count_include_pad"], p["divisor"])


def backward(go, t, p):
    return torch.ops.aten.avg_pool2d_backward(go, t, [p["kh"], p["kw"]], [p["sh"], p["sw"]], [p["ph"], p["pw"]],
                                              p["ceil_mode"], p["count_include_pad"], p["divisor"])


def bits(a):
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


def cpu_dependent(x, p, out):
    """Output elements of a 4-D channels-last forward whose NaN depends on
    torch's channel tail: the NaN of its vector lanes (every channel in a
    lane: the channels padded to a multiple of 64) differs from that of its
    scalar loop (which the planes kernel shares)."""
    N, C = x.shape[:2]
    padded = np.zeros((N, -(-C // 64) * 64) + x.shape[2:], x.dtype)
    padded[:, :C] = x
    lanes = forward(to_torch(padded, "channels_last"), p).numpy()[:, :C]
    scalar = forward(torch.from_numpy(np.ascontiguousarray(x)), p).numpy()
    both = np.isnan(lanes) & np.isnan(scalar)
    mask = both & (bits(lanes) != bits(scalar))
    # torch's own result is one of the two in every element
    assert ((bits(out) == bits(lanes)) | (bits(out) == bits(scalar)) | ~both).all()
    return mask


def main():
    assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
    torch.set_num_threads(1)
    rng = np.random.default_rng(20261202)
    data = {d: [] for d in DTYPES}
    sizes = dict.fromkeys(DTYPES, 0)
    masks, mask_size = [], 0
    rows, modes = [], {}

    def put(dtype, a):
        nonlocal sizes
        at = sizes[dtype]
        data[dtype].append(np.ascontiguousarray(a).reshape(-1))
        sizes[dtype] += a.size
        return at

    while len(rows) < N_CASES:
        x, layout, p, mode = random_case(rng)
        t = to_torch(x, layout)
        try:
            out = forward(t, p).numpy()
        except RuntimeError:  # output smaller than 1: an error case, not a golden one
            continue
        out = np.ascontiguousarray(out)
        dtype = x.dtype.name
        row = dict(dtype=DTYPES.index(dtype), layout=LAYOUTS.index(layout),
                   N=-1 if x.ndim == 3 else x.shape[0], C=x.shape[-3], H=x.shape[-2], W=x.shape[-1],
                   **{k: int(v) if v is not None else 0 for k, v in p.items()},
                   x_at=put(dtype, x), out_at=put(dtype, out), grad_out_at=-1, grad_in_at=-1, mask_at=-1)
        if layout == "channels_last" and np.isnan(out).any():
            m = cpu_dependent(x, p, out)
            if m.any():
                row["mask_at"] = mask_size
                masks.append(m.reshape(-1))
                mask_size += m.size
        if x.size:
            if dtype == "int64":
                go = int_values(rng, out.shape)
            else:
                go_mode = "special" if mode == "special" or rng.random() < 0.2 else "spread"
                go = float_values(rng, dtype, out.shape, go_mode)
            go_t = to_torch(go, layout)
            gi = np.ascontiguousarray(backward(go_t, t, p).numpy())
            row["grad_out_at"], row["grad_in_at"] = put(dtype, go), put(dtype, gi)
        rows.append([row[f] for f in FIELDS])
        modes[mode] = modes.get(mode, 0) + 1
    arrays = {"torch_version": np.array(torch.__version__), "fields": np.array(FIELDS),
              "cases": np.array(rows, np.int64),
              "cpu_dependent": np.concatenate(masks) if masks else np.zeros(0, bool)}
    for d in DTYPES:
        arrays[f"data/{d}"] = np.concatenate(data[d]) if data[d] else np.zeros(0, d)
    np.savez_compressed(OUT, **arrays)
    table = np.array(rows)
    print(f"wrote {len(rows)} cases to {OUT} ({os.path.getsize(OUT)} bytes): "
          f"dtypes {dict(zip(DTYPES, np.bincount(table[:, 0], minlength=4).tolist()))}, "
          f"layouts {dict(zip(LAYOUTS, np.bincount(table[:, 1], minlength=3).tolist()))}, values {modes}, "
          f"{int((table[:, FIELDS.index('grad_out_at')] >= 0).sum())} with a gradient, "
          f"{int((table[:, FIELDS.index('mask_at')] >= 0).sum())} with CPU-dependent NaN payloads")


if __name__ == "__main__":
    main()
