"""No memory growth over many calls (as bottleneck's leak tests do).

Each scenario is warmed up, then called 10,000 times (compiled backend;
1,000 for the NumPy reference; ``--leak-calls N`` changes the count): the
process's resident set size (``/proc/self/statm``) must not grow by more
than 4 MiB, and over a further 2,000 calls under ``tracemalloc`` (which
sees NumPy's array data as well as Python objects) the traced memory by no
more than 128 KiB. Leaking one output array per call would grow RSS by
10,000 x (8 KiB or more); leaking one small Python object per call would
grow the traced memory by >= 2,000 x 64 bytes.

Scenarios: forward with and without indices (compiled and NumPy paths,
float16 and integer dtypes, odd layouts), backward, the Module, and the
error paths (bad arguments, hostile indices).
"""

from __future__ import annotations

import gc
import os
import tracemalloc

import numpy as np
import pytest

import cpool

# Under AddressSanitizer (tools/asan_check.sh) freed memory sits in ASan's
# quarantine (256 MB by default), so RSS grows by design; only the
# tracemalloc check applies there.
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm (Linux)")


@pytest.fixture
def leak_calls(request):
    return request.config.getoption("--leak-calls")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


rng = np.random.default_rng(0)
X = rng.standard_normal((2, 4, 32, 32)).astype(np.float32)  # out: 2x4x16x16 = 8 KiB
X64 = X.astype(np.float64)
X16 = X.astype(np.float16)
XI = (X * 50).astype(np.int16)
XF = np.asfortranarray(X)
XS = X.astype(">f4")
OUT, IDX = cpool.slow.max_pool2d(X, 3, 2, 1, return_indices=True)
G = np.ones_like(OUT)
BAD = IDX.copy()
BAD[1, 3, 5, 5] = 10**9


def _raises(fn, exc):
    def call(m):
        try:
            fn(m)
        except exc:
            return
        raise AssertionError("did not raise")
    return call


def _module(m):
    layer = cpool.MaxPool2d(3, 2, 1, backend=m.name)
    layer.forward(X)
    layer.backward(X, G)
    _ = layer.index


SCENARIOS = {
    "forward": lambda m: m.max_pool2d(X, 2),
    "forward+indices": lambda m: m.max_pool2d(X, 3, 2, 1, return_indices=True),
    "forward float64 dilated ceil": lambda m: m.max_pool2d(X64, 3, 2, 1, 2, True, True),
    "forward float16": lambda m: m.max_pool2d(X16, 2, return_indices=True),
    "forward int16": lambda m: m.max_pool2d(XI, 2, return_indices=True),
    "forward fortran": lambda m: m.max_pool2d(XF, 2, return_indices=True),
    "forward byte-swapped": lambda m: m.max_pool2d(XS, 2, return_indices=True),
    "forward list args": lambda m: m.max_pool2d(X, [2, 2], [2, 1], [1, 0], np.int64(1)),
    "backward": lambda m: m.max_pool2d_backward(G, IDX, X.shape),
    "backward float16": lambda m: m.max_pool2d_backward(G.astype(np.float16), IDX, X.shape),
    "module": _module,
    "error: bad kernel": _raises(lambda m: m.max_pool2d(X, 0), ValueError),
    "error: bad dtype": _raises(lambda m: m.max_pool2d(X.astype(bool), 2), TypeError),
    "error: output too small": _raises(lambda m: m.max_pool2d(X, 33), ValueError),
    "error: hostile index": _raises(lambda m: m.max_pool2d_backward(G, BAD, X.shape), ValueError),
    "error: wrong index dtype": _raises(lambda m: m.max_pool2d_backward(G, IDX.astype(np.int32), X.shape),
                                        TypeError),
    "error: backward before forward": _raises(
        lambda m: cpool.MaxPool2d(2).backward(X, G), cpool.BackwardBeforeForwardError),
}


def _measure(call, n_rss, n_traced):
    """(RSS growth over n_rss calls, tracemalloc growth over n_traced calls)."""
    for _ in range(max(200, n_rss // 10)):  # warm-up: caches, allocator arenas
        call()
    gc.collect()
    rss0 = rss_bytes()
    for _ in range(n_rss):
        call()
    gc.collect()
    rss_growth = rss_bytes() - rss0
    tracemalloc.start()
    try:
        for _ in range(20):
            call()
        gc.collect()
        t0, _ = tracemalloc.get_traced_memory()
        for _ in range(n_traced):
            call()
        gc.collect()
        t1, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return rss_growth, t1 - t0


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_no_memory_growth(backend, name, leak_calls):
    call = SCENARIOS[name]
    # The compiled backend gets the full count; the NumPy reference, which
    # has no C code of its own and is ~50x slower, a tenth of it.
    n = leak_calls if backend.name == "cython" else leak_calls // 10
    rss_growth, traced_growth = _measure(lambda: call(backend), n, n // 5)
    # A leaked 8 KiB output per call would be 80 MB; allow allocator noise.
    if not UNDER_ASAN:
        assert rss_growth < 4 * 2**20, f"{name}: RSS grew by {rss_growth / 2**20:.1f} MiB over {n} calls"
    assert traced_growth < 128 * 2**10, f"{name}: traced memory grew by {traced_growth} bytes over {n // 5} calls"


@pytest.mark.slow
def test_no_growth_on_the_threaded_path(compiled, leak_calls):
    # Large calls that use the OpenMP team: fewer calls, bigger arrays.
    x = np.random.default_rng(1).standard_normal((4, 16, 64, 64)).astype(np.float32)
    out, idx = compiled.max_pool2d(x, 2, return_indices=True)
    g = np.ones_like(out)

    def call():
        compiled.max_pool2d(x, 2, return_indices=True)
        compiled.max_pool2d(x, 3, 2, 1)
        compiled.max_pool2d_backward(g, idx, x.shape)

    n = max(100, leak_calls // 10)
    rss_growth, traced_growth = _measure(call, n, n // 5)
    if not UNDER_ASAN:
        assert rss_growth < 8 * 2**20, f"RSS grew by {rss_growth / 2**20:.1f} MiB"
    assert traced_growth < 128 * 2**10, f"traced memory grew by {traced_growth} bytes"
