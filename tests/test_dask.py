"""cpool.dask: pooling of chunked dask arrays, bit for bit against cpool on the whole array.

Skipped as a whole without dask (``pip install "cpool-numpy[dask]"``). The
reference is always cpool itself on the computed NumPy array; comparisons are
of dtype, shape and bytes (NaN payloads and signed zeros included).
"""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import helpers  # noqa: E402

import cpool  # noqa: E402
import cpool.dask as cdask  # noqa: E402

SYNC = {"scheduler": "synchronous"}
FORWARD_DTYPES = [np.float16, np.float32, np.float64, np.uint8, np.int32, np.int64]


def _compute(*arrays):
    return dask.compute(*arrays, **SYNC)


def random_chunks(rng, n, max_cuts=4, allow_empty=True):
    """A random partition of ``n`` (cuts anywhere, so windows are cut), sometimes with 0-length chunks."""
    if n == 0:
        return (0,)
    cuts = sorted(int(c) for c in rng.integers(1, n, size=int(rng.integers(0, min(n - 1, max_cuts) + 1)))) \
        if n > 1 else []
    if allow_empty and rng.random() < 0.1:
        cuts.append(cuts[-1] if cuts else 0)
        cuts.sort()
    edges = [0, *cuts, n]
    return tuple(b - a for a, b in zip(edges[:-1], edges[1:]))


def random_chunking(rng, shape):
    return tuple(random_chunks(rng, n, max_cuts=2 if i < len(shape) - 2 else 4) for i, n in enumerate(shape))


def random_config(rng, dtypes=FORWARD_DTYPES, max_hw=23):
    """A valid (x, params) pair: ties, NaN (with payloads), +-inf, dilation, ceil mode, 3-D and 4-D."""
    while True:
        dtype = dtypes[rng.integers(len(dtypes))]
        kh, kw = (int(v) for v in rng.integers(1, 5, 2))
        sh, sw = (int(v) for v in rng.integers(1, 5, 2))
        dh, dw = (int(v) for v in (rng.integers(1, 4, 2) if rng.random() < 0.4 else (1, 1)))
        ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
        ceil = bool(rng.random() < 0.4)
        H, W = (int(v) for v in rng.integers(1, max_hw + 1, 2))
        N, C = int(rng.integers(0, 3)) if rng.random() < 0.1 else int(rng.integers(1, 4)), int(rng.integers(1, 4))
        shape = (N, C, H, W) if rng.random() < 0.75 else (C, H, W)
        params = dict(kernel_size=(kh, kw), stride=None if rng.random() < 0.2 else (sh, sw), padding=(ph, pw),
                      dilation=(dh, dw), ceil_mode=ceil)
        try:
            cpool.max_pool2d(np.zeros(shape[-3:], dtype=np.float32), **params)
        except ValueError:
            continue
        return helpers.adversarial_values(rng, dtype, shape), params


def _grad_values(rng, dtype, shape):
    """Gradients of wide dynamic range, so a different order of additions would round differently."""
    g = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, size=shape)
    return g.astype(dtype)


# --------------------------------------------------------------------------
# forward
# --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(60))
def test_forward_random_matches_cpool(seed):
    rng = np.random.default_rng(1000 + seed)
    x, params = random_config(rng)
    with_indices = bool(rng.random() < 0.7)
    chunks = random_chunking(rng, x.shape)
    dx = da.from_array(x, chunks=chunks)
    got = cdask.max_pool2d(dx, **params, return_indices=with_indices)
    want = cpool.max_pool2d(x, **params, return_indices=with_indices)
    if not with_indices:
        got, want = (got,), (want,)
    assert all(isinstance(g, da.Array) for g in got)
    computed = _compute(*got)
    for g, c, w in zip(got, computed, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        assert tuple(len(c) for c in g.chunks[:-2]) == tuple(len(c) for c in dx.chunks[:-2])
        assert g.chunks[:-2] == dx.chunks[:-2]
        helpers.assert_same_bits(c, w, (params, chunks))


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("params", [
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=2, stride=2),
    dict(kernel_size=(4, 3), stride=(1, 3), padding=(2, 1), dilation=(1, 2)),
    dict(kernel_size=2, stride=1, padding=1, dilation=3, ceil_mode=True),  # windows without any element
])
def test_forward_every_boundary_cuts_windows(params, chunk):
    rng = np.random.default_rng(chunk)
    x = helpers.adversarial_values(rng, np.float32, (2, 2, 13, 11))
    dx = da.from_array(x, chunks=(1, 1, chunk, chunk))
    got = _compute(*cdask.max_pool2d(dx, **params, return_indices=True))
    want = cpool.max_pool2d(x, **params, return_indices=True)
    for g, w in zip(got, want):
        helpers.assert_same_bits(g, w, (params, chunk))


def test_forward_chunks_follow_input_rounded_to_stride():
    dx = da.zeros((2, 3, 100, 64), chunks=(1, 3, 25, 16), dtype=np.float32)
    out = cdask.max_pool2d(dx, 2)
    assert out.chunks == ((1, 1), (3,), (13, 12, 13, 12), (8, 8, 8, 8))
    out = cdask.max_pool2d(dx, 3, stride=2, padding=1)
    # boundary b -> ceil((b + 1) / 2): 25 -> 13, 50 -> 26, 75 -> 38; 16 -> 9, 32 -> 17, 48 -> 25
    assert out.chunks[2:] == ((13, 13, 12, 12), (9, 8, 8, 7))
    # Aligned, non-overlapping windows: each output chunk reads only its own input chunk;
    # a halo makes the first chunks read the next one too.
    aligned = da.zeros((2, 3, 96, 64), chunks=(1, 3, 24, 16), dtype=np.float32)
    assert _inputs_per_task(cdask.max_pool2d(aligned, 4)) == {1}
    assert _inputs_per_task(cdask.max_pool2d(dx, 3, stride=2, padding=1)) == {1, 2, 4}  # 2x2 at most


def _inputs_per_task(out):
    """How many input blocks the pooling tasks behind ``out`` read (a set)."""
    from dask.core import get_dependencies

    graph = dict(out.__dask_graph__())
    pair = out.name.replace("-0-", "-", 1)
    return {len(get_dependencies(graph, key)) for key in graph if key[0] == pair}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_forward_3d_and_odd_layouts(dtype):
    rng = np.random.default_rng(7)
    x = helpers.adversarial_values(rng, dtype, (3, 17, 9))
    for name, arr in helpers.layouts(x, rng):
        dx = da.from_array(arr, chunks=(2, 5, 4))
        got = _compute(*cdask.max_pool2d(dx, 3, stride=2, padding=1, return_indices=True))
        want = cpool.max_pool2d(arr, 3, stride=2, padding=1, return_indices=True)
        for g, w in zip(got, want):
            helpers.assert_same_bits(g, w, name)


@pytest.mark.parametrize("params", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)])
def test_forward_large_planes_of_strided_chunks(params):
    # Chunks cut along H out of a larger array are strided views whose planes are contiguous:
    # pooled plane by plane (no copy of the chunk) once a plane reaches 1 MiB.
    rng = np.random.default_rng(8)
    x = helpers.adversarial_values(rng, np.float32, (3, 2, 640, 1024))
    dx = da.from_array(x, chunks=(2, 2, 320, 1024))
    assert cdask._contiguous_planes(x[0:2, :, 320:, :])
    got = _compute(*cdask.max_pool2d(dx, **params, return_indices=True))
    want = cpool.max_pool2d(x, **params, return_indices=True)
    for g, w in zip(got, want):
        helpers.assert_same_bits(g, w, params)


def test_forward_accepts_numpy_and_is_lazy():
    x = np.random.default_rng(3).random((1, 2, 8, 8))
    out = cdask.max_pool2d(x, 2)
    assert isinstance(out, da.Array)
    helpers.assert_same_bits(out.compute(**SYNC), cpool.max_pool2d(x, 2))

    calls = []

    def spy(block):
        calls.append(block.shape)
        return block

    lazy = da.from_array(x, chunks=(1, 1, 4, 4)).map_blocks(spy, meta=np.empty((0,) * 4, x.dtype))
    cdask.max_pool2d(lazy, 3, stride=1, padding=1, return_indices=True)
    assert calls == []  # building the graph computes nothing


def test_forward_int64_indices_of_a_tall_plane():
    # Indices are global within the plane: a region deep in the plane gives row * W + col.
    x = np.zeros((1, 1, 1500, 3), dtype=np.float32)
    x[0, 0, 1499, 2] = 1
    out, idx = cdask.max_pool2d(da.from_array(x, chunks=(1, 1, 7, 2)), 2, stride=1, return_indices=True)
    idx = idx.compute(**SYNC)
    assert idx.dtype == np.int64 and idx[0, 0, -1, -1] == 1499 * 3 + 2


# --------------------------------------------------------------------------
# errors: the same types and messages as cpool, raised before any graph exists
# --------------------------------------------------------------------------

FORWARD_ERRORS = [
    ((1, 1, 4, 4), np.float32, dict(kernel_size=0)),
    ((1, 1, 4, 4), np.float32, dict(kernel_size=2, stride=0)),
    ((1, 1, 4, 4), np.float32, dict(kernel_size=2, padding=2)),
    ((1, 1, 4, 4), np.float32, dict(kernel_size=2, dilation=-1)),
    ((1, 1, 4, 4), np.float32, dict(kernel_size=(1, 2, 3))),
    ((1, 1, 4, 4), np.float32, dict(kernel_size="2")),
    ((1, 1, 4, 4), np.float32, dict(kernel_size=True)),
    ((1, 1, 4, 4), np.float32, dict(kernel_size=2.0)),
    ((1, 1, 4, 4), np.float32, dict(kernel_size=2, ceil_mode=1)),
    ((1, 1, 4, 4), np.float32, dict(kernel_size=2, return_indices="yes")),
    ((1, 1, 4, 4), np.bool_, dict(kernel_size=2)),
    ((1, 1, 4, 4), np.complex64, dict(kernel_size=2)),
    ((4, 4), np.float32, dict(kernel_size=2)),
    ((1, 1, 1, 4, 4), np.float32, dict(kernel_size=2)),
    ((1, 0, 4, 4), np.float32, dict(kernel_size=2)),
    ((1, 1, 3, 3), np.float32, dict(kernel_size=4)),
    ((1, 1, 3, 3), np.float32, dict(kernel_size=2, dilation=3)),
]


@pytest.mark.parametrize("shape, dtype, params", FORWARD_ERRORS)
def test_forward_errors_are_cpools(shape, dtype, params):
    x = np.zeros(shape, dtype=dtype)
    with pytest.raises((TypeError, ValueError)) as want:
        cpool.max_pool2d(x, **params)
    with pytest.raises(want.type) as got:
        cdask.max_pool2d(da.from_array(x, chunks=1), **params)
    assert str(got.value) == str(want.value)


def test_forward_unknown_chunks():
    x = da.from_array(np.zeros((1, 1, 4, 8), dtype=np.float32), chunks=(1, 1, 2, 8))
    x = x[:, :, x[0, 0, :, 0] > -1, :]  # boolean selection: row chunk sizes unknown until computed
    assert np.isnan(x.shape[2])
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        cdask.max_pool2d(x, 2)


# --------------------------------------------------------------------------
# backward
# --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(40))
def test_backward_random_matches_cpool(seed):
    rng = np.random.default_rng(5000 + seed)
    x, params = random_config(rng, dtypes=[np.float32, np.float64, np.float16, np.int32], max_hw=19)
    out, idx = cpool.max_pool2d(x, **params, return_indices=True)
    gdtype = [np.float16, np.float32, np.float64][rng.integers(3)]
    go = _grad_values(rng, gdtype, out.shape)
    want = cpool.max_pool2d_backward(go, idx, x.shape)
    chunks = random_chunking(rng, out.shape)
    dgo = da.from_array(go, chunks=chunks)
    didx = da.from_array(idx, chunks=random_chunking(rng, out.shape))  # rechunked to grad_output's
    with_geometry = cdask.max_pool2d_backward(dgo, didx, x.shape, **params)
    whole = cdask.max_pool2d_backward(dgo, didx, x.shape)
    for got in _compute(with_geometry, whole):
        helpers.assert_same_bits(got, want, (params, chunks))
    assert with_geometry.chunks[:-2] == dgo.chunks[:-2]


@pytest.mark.parametrize("params", [
    dict(kernel_size=3, stride=1, padding=1),                      # each element in up to 9 windows
    dict(kernel_size=(4, 3), stride=(1, 2), padding=(2, 1), dilation=(2, 1), ceil_mode=True),
    dict(kernel_size=2, stride=1, dilation=2),
    dict(kernel_size=2, stride=2),                                 # no overlap: at most one contribution each
])
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_backward_overlapping_windows_exact_where_chunk_sums_are_not(params, dtype):
    # Few distinct values: many ties, so the argmax sits on the same element for many windows.
    rng = np.random.default_rng(11)
    x = rng.integers(0, 3, size=(2, 2, 24, 26)).astype(np.float32)
    out, idx = cpool.max_pool2d(x, **params, return_indices=True)
    go = _grad_values(rng, dtype, out.shape)
    want = cpool.max_pool2d_backward(go, idx, x.shape)
    dgo = da.from_array(go, chunks=(1, 2, 5, 3))
    didx = da.from_array(idx, chunks=(1, 2, 5, 3))
    got = cdask.max_pool2d_backward(dgo, didx, x.shape, **params)
    assert len(got.chunks[-1]) > 1 and len(got.chunks[-2]) > 1
    helpers.assert_same_bits(got.compute(**SYNC), want, params)
    # Summing each output chunk's own scatter would round differently when windows overlap,
    # which is why the backward gathers instead.
    naive = _sum_of_chunk_scatters(go, idx, x.shape, (5, 3))
    overlapping = params.get("stride", params["kernel_size"]) != params["kernel_size"]
    assert helpers.same_bits(naive, want) != overlapping


def _sum_of_chunk_scatters(go, idx, shape, chunk):
    total = np.zeros(shape, dtype=go.dtype)
    for r in range(0, go.shape[-2], chunk[0]):
        for c in range(0, go.shape[-1], chunk[1]):
            part = (..., slice(r, r + chunk[0]), slice(c, c + chunk[1]))
            total += cpool.max_pool2d_backward(np.ascontiguousarray(go[part]), np.ascontiguousarray(idx[part]),
                                               shape)
    return total


def test_forward_backward_chain_on_dask():
    rng = np.random.default_rng(21)
    x = rng.standard_normal((2, 3, 30, 20)).astype(np.float32)
    params = dict(kernel_size=3, stride=2, padding=1)
    dx = da.from_array(x, chunks=(1, 2, 7, 9))
    out, idx = cdask.max_pool2d(dx, **params, return_indices=True)
    dgo = da.ones_like(out)
    grad = cdask.max_pool2d_backward(dgo, idx, x.shape, **params)
    want_out, want_idx = cpool.max_pool2d(x, **params, return_indices=True)
    want = cpool.max_pool2d_backward(np.ones_like(want_out), want_idx, x.shape)
    helpers.assert_same_bits(grad.compute(**SYNC), want)
    # With geometry the gradient is chunked along H and W at the windows' starts.
    assert len(grad.chunks[-2]) == len(out.chunks[-2]) and len(grad.chunks[-1]) == len(out.chunks[-1])


BACKWARD_ERRORS = [
    (np.int32, np.int64, (1, 1, 2, 2), (1, 1, 4, 4)),      # integer grad_output
    (np.float32, np.int32, (1, 1, 2, 2), (1, 1, 4, 4)),    # int32 indices
    (np.float32, np.int64, (1, 1, 2, 2), (1, 1, 4)),       # input_shape of the wrong length
    (np.float32, np.int64, (1, 1, 2, 2), (1, 2, 4, 4)),    # leading dimensions disagree
    (np.float32, np.int64, (1, 1, 2, 2), (1, 1, 0, 4)),    # zero height
    (np.float32, np.int64, (1, 1, 2, 2), "1144"),          # not a tuple
    (np.float32, np.int64, (2, 2), (4, 4)),                # 2-D
]


@pytest.mark.parametrize("go_dtype, idx_dtype, shape, input_shape", BACKWARD_ERRORS)
def test_backward_errors_are_cpools(go_dtype, idx_dtype, shape, input_shape):
    go, idx = np.zeros(shape, dtype=go_dtype), np.zeros(shape, dtype=idx_dtype)
    with pytest.raises((TypeError, ValueError)) as want:
        cpool.max_pool2d_backward(go, idx, input_shape)
    for kwargs in ({}, {"kernel_size": 2}):
        with pytest.raises(want.type) as got:
            cdask.max_pool2d_backward(da.from_array(go), da.from_array(idx), input_shape, **kwargs)
        assert str(got.value) == str(want.value)


def test_backward_shape_mismatch_between_arrays():
    go, idx = np.zeros((1, 1, 2, 2), np.float32), np.zeros((1, 1, 2, 3), np.int64)
    with pytest.raises(ValueError) as want:
        cpool.max_pool2d_backward(go, idx, (1, 1, 4, 4))
    with pytest.raises(ValueError) as got:
        cdask.max_pool2d_backward(da.from_array(go), da.from_array(idx), (1, 1, 4, 4))
    assert str(got.value) == str(want.value)


def test_backward_geometry_errors():
    go, idx = da.zeros((1, 1, 2, 2), dtype=np.float32), da.zeros((1, 1, 2, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="does not match max_pool2d's output"):
        cdask.max_pool2d_backward(go, idx, (1, 1, 6, 6), kernel_size=2)
    with pytest.raises(ValueError, match="kernel_size must be positive"):
        cdask.max_pool2d_backward(go, idx, (1, 1, 4, 4), kernel_size=0)


def test_backward_index_errors_when_computed():
    x = np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6)
    _, idx = cpool.max_pool2d(x, 2, return_indices=True)
    go = np.ones(idx.shape, np.float32)
    bad = idx.copy()
    bad[0, 0, 2, 2] = 36  # outside the plane: cpool's own error, whichever way it is computed
    with pytest.raises(ValueError) as want:
        cpool.max_pool2d_backward(go, bad, x.shape)
    for kwargs in ({}, {"kernel_size": 2}):
        lazy = cdask.max_pool2d_backward(da.from_array(go, chunks=2), da.from_array(bad, chunks=2), x.shape,
                                         **kwargs)
        with pytest.raises(ValueError) as got:
            lazy.compute(**SYNC)
        assert str(got.value) == str(want.value)
    stray = idx.copy()
    stray[0, 0, 0, 0] = 35  # in the plane, but not in window (0, 0): cpool accepts it
    want = cpool.max_pool2d_backward(go, stray, x.shape)
    whole = cdask.max_pool2d_backward(da.from_array(go, chunks=2), da.from_array(stray, chunks=2), x.shape)
    helpers.assert_same_bits(whole.compute(**SYNC), want)
    chunked = cdask.max_pool2d_backward(da.from_array(go, chunks=2), da.from_array(stray, chunks=2), x.shape,
                                        kernel_size=2)
    with pytest.raises(ValueError, match="outside that output's pooling window"):
        chunked.compute(**SYNC)


# --------------------------------------------------------------------------
# the generic helper, the optional import, a real cluster
# --------------------------------------------------------------------------

def test_plan_axis_regions_hold_every_window():
    rng = np.random.default_rng(99)
    for _ in range(300):
        k, s, d = (int(v) for v in rng.integers(1, 5, 3))
        p = int(rng.integers(0, k // 2 + 1))
        ceil = bool(rng.random() < 0.5)
        size = int(rng.integers(1, 40))
        if cpool._validation.output_size(size, k, s, p, d, ceil) < 1:
            continue
        plan = cdask.plan_axis(random_chunks(rng, size, allow_empty=True), k, s, p, d, ceil)
        assert sum(plan.out_chunks) == plan.out_size and all(plan.out_chunks)
        for o0, n, lo, data_lo, hi, q in zip(plan.out_starts, plan.out_chunks, plan.lo, plan.data_lo, plan.hi,
                                             plan.skip):
            assert 0 <= lo <= data_lo < hi <= size and data_lo - lo < s and lo % s == 0 and lo == (o0 - q) * s
            assert cpool._validation.output_size(hi - lo, k, s, p, d, ceil) >= q + n
            for o in range(o0, o0 + n):
                taps = [o * s - p + i * d for i in range(k)]
                assert all(data_lo <= t < hi for t in taps if 0 <= t < size)  # in-bounds taps are all read
                local = [t - lo for t in taps]
                assert all(not (0 <= t < hi - lo) for t, g in zip(local, taps) if not 0 <= g < size)


def test_import_cpool_does_not_import_dask_and_missing_dask_says_how_to_install():
    code = (
        "import sys\n"
        "import cpool\n"
        "assert 'dask' not in sys.modules and 'cpool.dask' not in sys.modules\n"
        "sys.modules['dask'] = None\n"
        "try:\n"
        "    import cpool.dask\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('imported without dask')\n"
    )
    res = helpers.run_python(code)
    assert 'pip install "cpool-numpy[dask]"' in res.stdout


def test_distributed_local_cluster_two_processes():
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(123)
    x = helpers.adversarial_values(rng, np.float32, (4, 2, 40, 36))
    params = dict(kernel_size=3, stride=2, padding=1, dilation=(1, 2))
    dx = da.from_array(x, chunks=(2, 1, 11, 13))
    out, idx = cdask.max_pool2d(dx, **params, return_indices=True)
    grad = cdask.max_pool2d_backward(da.ones_like(out), idx, x.shape, **params)
    local = _compute(out, idx, grad)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                                  host="127.0.0.1") as cluster, distributed.Client(cluster) as client:
        futures = client.compute([out, idx, grad])
        remote = [f.result(timeout=60) for f in futures]  # the test's time bound
        assert len(client.scheduler_info()["workers"]) == 2
    for r, loc in zip(remote, local):
        helpers.assert_same_bits(r, loc)
    want_out, want_idx = cpool.max_pool2d(x, **params, return_indices=True)
    helpers.assert_same_bits(remote[0], want_out)
    helpers.assert_same_bits(remote[1], want_idx)
