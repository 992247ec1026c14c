"""The one catalogue the bench scripts share: shapes, operations (max pooling and
average pooling), the bytes each operation must move, and the performance targets.

bench.py times these shapes, report.py checks the targets against a run,
floors.py times the memory floors of the backward targets' shapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np

# name -> spec in the --shapes syntax NxCxHxW[:kK][:sS][:pP][:dD][:ceil][:float64][:nhwc]. Every shape is also
# measured on channels-last memory: NAME-nhwc is NAME with its input (and grad_output, indices) held as an
# (N, H, W, C) C-contiguous array, seen through its (N, C, H, W) transpose, as torch's channels_last tensors are.
BASE_SHAPES = {
    "mnist-conv": "64x32x28x28:k2:s2",
    "mnist-first": "128x8x28x28:k2:s2",
    "14x14x64": "256x64x14x14:k2:s2",
    "resnet-stem": "32x64x112x112:k3:s2:p1",
    "large": "16x256x56x56:k2:s2",
    "rgb-stem": "16x3x224x224:k3:s2:p1",  # small C: 3 channels (an RGB image's first pooling)
    "c4": "64x4x56x56:k2:s2",  # small C: 4 channels
    "inception-pool": "64x128x14x14:k3:s2:ceil",  # small planes: GoogLeNet's late 3x3 stride-2 pooling, 7 outputs a row
    "tiny": "1x1x28x28:k2:s2",
    "mnist-conv-f64": "64x32x28x28:k2:s2:float64",
}
# 3-D pooling's shapes (the pool3d group's), in the same syntax with NxCxDxHxW: kept apart from BASE_SHAPES, so a run
# of the 2-D ops does not visit them (each op runs on the shapes of its dimensions only, see Case.unfit).
BASE_SHAPES_3D = {
    "vol-k2": "8x64x16x56x56:k2:s2",
    "vol-k3": "2x32x64x64x64:k3:s2:p1",
}
QUICK_SHAPES_3D = ("vol-quick", "vol-quick-nhwc")
LAYOUTS = ("nchw", "nhwc")
NHWC = "-nhwc"  # the suffix of a shape's channels-last twin
SHAPES = {n: spec for name, base in BASE_SHAPES.items() for n, spec in ((name, base), (name + NHWC, base + ":nhwc"))}
SHAPES_3D = {n: spec for name, base in {**BASE_SHAPES_3D, "vol-quick": "2x8x8x16x16:k2:s2"}.items()
             for n, spec in ((name, base), (name + NHWC, base + ":nhwc"))}
QUICK_SHAPES = ("mnist-first", "mnist-first-nhwc", "tiny")
# The 1-D shapes (the pool1d op's; run when it is, and only it runs on them): (N, C, L) rows as (N, C, 1, L)
# arrays, the kernel, stride and padding along L only (":1d"). Not in SHAPES: no 2-D op runs on them.
POOL1D_SHAPES = {
    "pool1d-k2s2": "64x128x1x4096:k2:s2:1d",
    "pool1d-k3s1p1": "64x128x1x4096:k3:s1:p1:1d",
}
MNIST_SHAPES = ("mnist-conv", "mnist-first")  # shapes the per-epoch table is given for
MNIST_IMAGES = 60_000


def nchw_twin(name):
    """The name of the NCHW-memory shape a channels-last shape is the twin of (the name itself otherwise)."""
    for suffix in (NHWC, ":nhwc"):
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return name


def nhwc(*names):
    return tuple(n + NHWC for n in names)


OPS = {
    "fwd": "forward, values only",
    "fwd_idx": "forward with indices",
    "bwd": "backward (grad_input from grad_output + indices)",
    "step": "training step (forward with indices + backward, Module API)",
    "avg_fwd": "average pooling forward (avg_pool2d, count_include_pad=True)",
    "avg_bwd": "average pooling backward (avg_pool2d_backward: grad_input from grad_output)",
    "gap": "global average pooling (adaptive_avg_pool2d(x, 1); the shape's kernel, stride and padding unused)",
    "unpool": "max unpooling (max_unpool2d of max_pool2d's values and indices back to the input's size)",
    "unpool_bwd": "max unpooling backward (max_unpool2d_backward: grad_output, shaped like the input, gathered at the "
                  "indices)",
    "amax": "adaptive max pooling to 7x7 with indices (adaptive_max_pool2d(x, (7, 7), return_indices=True); the "
            "shape's kernel, stride and padding unused; H, W >= 7 only)",
    "pool1d": "1-D max pooling, values only (max_pool1d of the (N, C, W) rows of a 1-D shape: NxCx1xW:...:1d)",
}
# 3-D pooling (the pool3d group): on the 5-D shapes only.
OPS.update({
    "max3d_fwd": "3-D max pooling forward with indices (max_pool3d(..., return_indices=True))",
    "max3d_bwd": "3-D max pooling backward (max_pool3d_backward: grad_input from grad_output + indices)",
    "avg3d_fwd": "3-D average pooling forward (avg_pool3d, count_include_pad=True)",
    "avg3d_bwd": "3-D average pooling backward (avg_pool3d_backward: grad_input from grad_output)",
})
POOL3D_OPS = ("max3d_fwd", "max3d_bwd", "avg3d_fwd", "avg3d_bwd")
MAX_OPS = ("fwd", "fwd_idx", "bwd", "step")
AVG_OPS = ("avg_fwd", "avg_bwd", "gap")
UNPOOL_OPS = ("unpool", "unpool_bwd")
ADAPTIVE_OPS = ("amax",)
POOL1D_OPS = ("pool1d",)
AMAX_SIZE = (7, 7)  # amax's output size
# Ops whose reference (the gate) is torch's own output where torch 2.13 is installed, else cpool.slow's.
TORCH_REF_OPS = AVG_OPS + UNPOOL_OPS + ADAPTIVE_OPS
# What a run with no --ops runs: max and average pooling. The unpool and adaptive groups are asked for by name
# (--ops unpool,adaptive, or --ops all), so that the README's plain `python bench/bench.py` keeps its length and its
# contention section (capped in seconds, shapes outside, ops inside) keeps covering the same shapes.
DEFAULT_OPS = MAX_OPS + AVG_OPS
OP_GROUPS = {"max": MAX_OPS, "avg": AVG_OPS, "unpool": UNPOOL_OPS, "adaptive": ADAPTIVE_OPS,
             "pool1d": POOL1D_OPS, "pool3d": POOL3D_OPS, "all": tuple(OPS)}  # --ops names that stand for a group of ops
# The outputs of each op, named for the correctness gate; the average-pooling ones have names of their own, so that
# one case's reference holds them next to max pooling's.
OP_KEYS = {"fwd": ("values",), "fwd_idx": ("values", "indices"), "bwd": ("grad_in",),
           "step": ("values", "indices", "grad_in"), "avg_fwd": ("avg_values",), "avg_bwd": ("avg_grad_in",),
           "gap": ("gap_values",), "unpool": ("unpool_values",), "unpool_bwd": ("unpool_grad",),
           "amax": ("amax_values", "amax_indices"), "pool1d": ("pool1d_values",),
           "max3d_fwd": ("max3d_values", "max3d_indices"), "max3d_bwd": ("max3d_grad_in",),
           "avg3d_fwd": ("avg3d_values",), "avg3d_bwd": ("avg3d_grad_in",)}
GATE_KEYS = tuple(dict.fromkeys(k for keys in OP_KEYS.values() for k in keys))  # every output the gate knows
SUM_KEYS = ("grad_in", "avg_values", "avg_grad_in", "gap_values")  # outputs that are sums: rounding follows the order
SUMS_RTOL = 1e-5  # how close a peer's average-pooling sums must come where it sums in its own order (own_sums)

# Performance targets checked against every run: (label, asked, ops, shapes, checks). A check
# (mine, rival, ratio) holds when rival time / mine time >= ratio for every listed shape and op and,
# where a name holds "{t}", every thread count measured; a check (mine, rival, ratio, AT_MOST) holds when
# mine time / rival time <= ratio instead (and shows that ratio). The rival "roofline" is the time the op's
# bytes take at the measured memory bandwidth, so its ratio is the fraction of the bound reached. A rival
# ending in ON_NCHW is timed on the shape's NCHW twin (the same shape on NCHW memory).
AT_MOST = "at most"
ON_NCHW = " @nchw"
K2S2 = ("mnist-conv", "mnist-first", "14x14x64", "large")
SMALL_C = ("rgb-stem", "c4")
NHWC_F32 = nhwc(*K2S2, "resnet-stem", *SMALL_C)  # channels-last float32 shapes with a real batch
NHWC_C8 = nhwc(*K2S2, "resnet-stem")  # ... of 8 channels or more
DRAM = ("resnet-stem", "large")
AVG_SHAPES = K2S2 + ("resnet-stem",)  # the average-pooling targets' shapes: the k2 s2 ones and the ResNet stem
TARGETS = (
    ("forward with int64 indices, k2 s2", "10x torch", ("fwd_idx",), K2S2, (("cpool t{t}", "torch t{t}", 10),)),
    ("forward with indices, ResNet stem", "4x torch", ("fwd_idx",), ("resnet-stem",),
     (("cpool t{t}", "torch t{t}", 4),)),
    ("forward, values only", "15x torch", ("fwd",), K2S2 + ("resnet-stem",), (("cpool t{t}", "torch t{t}", 15),)),
    ("backward, 28x28", "3x torch", ("bwd",), ("mnist-conv", "mnist-first"), (("cpool t{t}", "torch t{t}", 3),)),
    ("backward, other shapes", "2x torch", ("bwd",), ("14x14x64", "resnet-stem", "large"),
     (("cpool t{t}", "torch t{t}", 2),)),
    ("Module training step", "10x torch", ("step",), ("mnist-conv",), (("cpool t{t}", "torch t{t}", 10),)),
    ("forward, values only", "faster than jax and numpy-maxchain", ("fwd",), K2S2 + ("resnet-stem",),
     (("cpool t{t}", "jax", 1), ("cpool t{t}", "numpy-maxchain", 1))),
    ("latency, 1x1x28x28", "no slower than torch", MAX_OPS, ("tiny",), (("cpool t{t}", "torch t{t}", 1),)),
    ("DRAM-bound shapes", "within 2x of the roofline bound", ("fwd", "fwd_idx", "bwd"), DRAM,
     (("cpool t{t}", "roofline", 0.5),)),
    ("NumPy fallback, forward with indices", "200x the loop, no slower than torch t1", ("fwd_idx",),
     ("mnist-conv",), (("cpool-numpy", "loop", 200), ("cpool-numpy", "torch t1", 1))),
    ("NHWC input, forward values only", "3x torch-cl and 1.5x torch-mkldnn", ("fwd",), NHWC_F32,
     (("cpool t{t}", "torch-cl t{t}", 3), ("cpool t{t}", "torch-mkldnn t{t}", 1.5))),
    ("NHWC input, forward with indices", "2x torch-cl", ("fwd_idx",), NHWC_F32, (("cpool t{t}", "torch-cl t{t}", 2),)),
    ("NHWC input, backward", "3x torch-cl", ("bwd",), NHWC_F32, (("cpool t{t}", "torch-cl t{t}", 3),)),
    ("NHWC vs NCHW, same shape, C >= 8", "cpool on NHWC at most 1.2x the time of cpool on NCHW, each op", MAX_OPS,
     NHWC_C8, (("cpool t{t}", "cpool t{t}" + ON_NCHW, 1.2, AT_MOST),)),
    ("NCHW forward values only, every shape", "1.2x torch-mkldnn", ("fwd",),
     K2S2 + ("resnet-stem",) + SMALL_C + ("inception-pool", "tiny"), (("cpool t{t}", "torch-mkldnn t{t}", 1.2),)),
    ("DRAM-bound shapes, both layouts, out= buffers", "70% of the roofline bound at 1 thread",
     ("fwd", "fwd_idx", "bwd"), DRAM + nhwc(*DRAM), (("cpool-out t1", "roofline", 0.7),)),
    ("average pooling forward, NCHW", "5x torch, 1.5x torch-cl and 1.5x torch-mkldnn", ("avg_fwd",), AVG_SHAPES,
     (("cpool t{t}", "torch t{t}", 5), ("cpool t{t}", "torch-cl t{t}", 1.5), ("cpool t{t}", "torch-mkldnn t{t}", 1.5))),
    ("average pooling forward, NHWC", "5x torch (on the NCHW twin), 1.5x torch-cl and 1.5x torch-mkldnn", ("avg_fwd",),
     nhwc(*AVG_SHAPES), (("cpool t{t}", "torch t{t}" + ON_NCHW, 5), ("cpool t{t}", "torch-cl t{t}", 1.5),
                         ("cpool t{t}", "torch-mkldnn t{t}", 1.5))),
    ("average pooling backward, NCHW", "5x torch and 1.5x torch-cl", ("avg_bwd",), AVG_SHAPES,
     (("cpool t{t}", "torch t{t}", 5), ("cpool t{t}", "torch-cl t{t}", 1.5))),
    ("average pooling backward, NHWC", "5x torch (on the NCHW twin) and 1.5x torch-cl", ("avg_bwd",),
     nhwc(*AVG_SHAPES), (("cpool t{t}", "torch t{t}" + ON_NCHW, 5), ("cpool t{t}", "torch-cl t{t}", 1.5))),
    ("global average pooling, large shapes", "70% of the roofline bound (the input read once)", ("gap",),
     DRAM + nhwc(*DRAM), (("cpool t{t}", "roofline", 0.7),)),
    ("NumPy fallback, average pooling", "no slower than torch t1", ("avg_fwd", "avg_bwd", "gap"), AVG_SHAPES,
     (("cpool-numpy", "torch t1", 1),)),
    ("max_unpool2d, MNIST shapes", "3x torch", ("unpool",), MNIST_SHAPES, (("cpool t{t}", "torch t{t}", 3),)),
    # Informational: the table has no such notion, so a normal row, labelled so.
    ("adaptive_max_pool2d, large shapes (informational)", "1.5x torch-cl", ("amax",), DRAM + nhwc(*DRAM),
     (("cpool t{t}", "torch-cl t{t}", 1.5),)),
    ("3-D max pooling, NCDHW", "5x torch", POOL3D_OPS[:2], tuple(BASE_SHAPES_3D), (("cpool t{t}", "torch t{t}", 5),)),
    ("3-D max pooling, channels_last_3d", "1.5x torch-cl", POOL3D_OPS[:2], nhwc(*BASE_SHAPES_3D),
     (("cpool t{t}", "torch-cl t{t}", 1.5),)),
    ("3-D average pooling, NCDHW", "5x torch", POOL3D_OPS[2:], tuple(BASE_SHAPES_3D),
     (("cpool t{t}", "torch t{t}", 5),)),
    ("3-D average pooling, channels_last_3d", "1.5x torch-cl", POOL3D_OPS[2:], nhwc(*BASE_SHAPES_3D),
     (("cpool t{t}", "torch-cl t{t}", 1.5),)),
    ("max_pool1d, 64x128x4096 k2 s2 and k3 s1 p1", "5x torch", ("pool1d",), tuple(POOL1D_SHAPES),
     (("cpool t{t}", "torch t{t}", 5),)),
    ("max_pool1d, 64x128x4096, out= buffers", "5x torch", ("pool1d",), tuple(POOL1D_SHAPES),
     (("cpool-out t{t}", "torch t{t}", 5),)),
)

# For a target (label, asked) that a run may not meet: what was tried and what stops it, shown under the targets
# table of results.md when the row is not met. The figures of each run are in the row itself (with the roofline
# ceiling where the data exceed the caches); these say why, and which tool measures the floor.
# The part of several notes that is about the machine, not the code.
MACHINE_NOTE = (
    "The k2 s2 shapes of 4-22 MB are bound by memory, and how fast depends on the machine's caches: on a 2-core "
    "Intel Xeon VM they run at 103-115% of the copy-bandwidth bound at 1 thread (that floor), on a 2-core AMD EPYC "
    "(32 MB L3) from cache in about half that time, while torch's NCHW kernel, bound by instructions, is 10-20% "
    "faster on the Xeon. ")

TARGET_NOTES = {
    ("forward with int64 indices, k2 s2", "10x torch"):
        "the miss is on large (16x256x56x56, 90 MB moved): one thread reads it from memory at about 12 GB/s, "
        "43% of the copy-bandwidth bound (np.copyto's streaming stores do better than a kernel that reads), and "
        "at 2 threads cpool reaches 84% of it. The fresh values and int64 indices come from new pages on every "
        "call; with out= buffers the page zeroing goes (the cpool-out rows).",
    ("forward, values only", "15x torch"):
        MACHINE_NOTE + "The misses are large at 1 thread (12x; 48% of its bound, read from memory at about "
        "12 GB/s by one core) and mnist-first at 2 threads (its 3 MB run on one thread: see threads_for in "
        "cpool/_threads.py).",
    ("backward, 28x28", "3x torch"):
        MACHINE_NOTE + "cpool's backward here is one write pass over grad_input (the cell writer: no zeroing pass, "
        "every index checked as it is used), already above the DRAM roofline because the 6 MB fit in the cache; "
        "`python bench/floors.py` puts it next to a bare memset of the same grad_input. torch's time on these "
        "cache-resident shapes is within 3x of that memset.",
    ("backward, other shapes", "2x torch"):
        MACHINE_NOTE + "14x14x64's backward runs at 107% of its bound at 1 thread and 202% at 2 on the Xeon "
        "(114% and 221% on the EPYC, where torch t1 takes 1.84x cpool's time); the ResNet "
        "stem's fresh 103 MB grad_input is zero-filled on new pages (`python bench/floors.py`), and with out= it "
        "takes 22.6 against 27 ms.",
    ("Module training step", "10x torch"):
        MACHINE_NOTE + "The step (forward with indices, then backward, 22.5 MB moved) runs at 113% of its bound "
        "at 1 thread and 199% at 2: 10.7x / 9.8x torch.",
    ("latency, 1x1x28x28", "no slower than torch"):
        "the kernels take well under a microsecond on a 28x28 plane; what is left is Python: argument checks, "
        "layout resolution and (for the Module step) the buffer-reuse checks, about 3-7 us a call against torch's "
        "C++ dispatch. The layers' reuse check no longer calls np.prod, which was most of a step (35 us to 13 us).",
    ("DRAM-bound shapes", "within 2x of the roofline bound"):
        "the ResNet stem's 3x3 windows read each input element up to 4 times from cache and write fresh outputs "
        "(over 32 MiB: new pages every call); with out= buffers (the next rows) the fresh-page cost goes. The "
        "backward's floor is the zero-fill of a fresh 103 MB grad_input: see `python bench/floors.py`.",
    ("NHWC input, forward values only", "3x torch-cl and 1.5x torch-mkldnn"):
        "the misses are on the DRAM-bound shapes (large-nhwc, resnet-stem-nhwc), where the roofline ceiling in the "
        "row is below 3x: torch-cl already runs at about half the memory bandwidth there. A two-pass variant "
        "(one input row at a time) was measured: faster on cache-resident shapes, slower on large-nhwc, not kept. "
        "The 2x2 kernel prefetches the next output row's window (its two input-row streams restart every output "
        "row, too short for the hardware prefetchers): 256x64x14x14 held in L3 went from about 5 to 1.7-3.6 us an "
        "image; the same prefetch in the general kernel (3x3 windows) measured slower and is not in.",
    ("NHWC input, forward with indices", "2x torch-cl"):
        "large-nhwc's roofline ceiling is about 1.3x: torch-cl writes its int64 indices at about 75% of the memory "
        "bandwidth. 14x14x64-nhwc (22 MB, beyond what stays cached between calls) runs at about 96% of its bound.",
    ("NHWC input, backward", "3x torch-cl"):
        "torch-cl's channels-last backward is scalar but parallel over images, and on the 28x28 shapes it takes "
        "about 2x cpool's own NCHW backward: 3x torch-cl would need the NHWC writer faster than the planes one. "
        "The small-C cliff (4 channels: 20x slower than planes) is gone: the cell writer now fills its vectors "
        "with 8 / C outputs for C = 1, 2, 4 and has no mispredicting branch in its channel tail. rgb-stem-nhwc "
        "(3x3 windows, zero-and-scatter) runs near its roofline bound.",
    ("NHWC vs NCHW, same shape, C >= 8", "cpool on NHWC at most 1.2x the time of cpool on NCHW, each op"):
        "the misses are the DRAM-bound large-nhwc (two input rows 57 KB apart per output row, where planes read "
        "one stream) and 8-channel backward (one 8-lane vector a pixel; the planes writer has AVX-512 16-cell "
        "vectors). An AVX-512 channels-last writer and a 16-channel store grouping were measured and not kept "
        "(within noise of the AVX2 writer).",
    ("NCHW forward values only, every shape", "1.2x torch-mkldnn"):
        "oneDNN's pooling works on its own blocked layout (16 channels a vector; the conversion to it is not timed). "
        "The ResNet stem: the separable 3x3 fold now prefetches the next plane's input and output rows (about 20% "
        "faster at 1 thread in one process: 12.4 to 9.3 ms), folds 16 outputs a vector with AVX-512, and has "
        "branch-free border columns, pointer-walking row vectors and fixed-trip column folds (28% fewer "
        "instructions under callgrind). Tried and not kept: a NaN-free fast path (the NaN scan costs what it "
        "saves), prefetching two planes ahead, PREFETCHW for the output. k2 s2 on the same input (the same bytes, "
        "4 taps instead of 9) takes 8.1 ms at 1 thread, the time of a bare read of the input (x.sum()): the stem's "
        "floor here. inception-pool (14x14 planes, 7 outputs a row) goes in slabs of 32 planes through the "
        "channels-last kernel (27 ms to 1.3 ms for 256x64x14x14 k3 s2 p1, where torch takes 26 ms); the two "
        "transposes are about two thirds of its time (timed with the pooling left out), and prefetching the next "
        "slab measured slower; on the AMD EPYC (32 MB L3) it is the only miss, at 0.94x / 0.89x oneDNN (0.30 "
        "against 0.28 ms at 1 thread, both at about 70-75% of the copy-bandwidth bound). large at 1 thread on "
        "the Xeon: read from memory at about 12 GB/s (see above).",
    ("DRAM-bound shapes, both layouts, out= buffers", "70% of the roofline bound at 1 thread"):
        "out= removes the fresh pages but not the index pre-check (indices must all be valid before the caller's "
        "array is written): now one vectorised pass (it was two NumPy reductions), which is still one more read "
        "of the indices than the roofline counts. The stem's 3x3 windows re-read inputs from cache.",
    ("average pooling forward, NCHW", "5x torch, 1.5x torch-cl and 1.5x torch-mkldnn"):
        "against torch-cl the k2 s2 shapes are bound by memory: 14x14x64 (16 MB moved) and large (64 MB) run at "
        "96-103% of the copy-bandwidth bound at 1 thread, and torch-cl, vectorised across their 32-256 channels, "
        "within about 10% of cpool; 1.5x torch-cl would need 1.5x the copy bandwidth. Planes rows of up to 8 "
        "outputs (14x14 planes: 7) went one window at a time, 6.5x slower than torch-cl; they now take one "
        "masked vector a row, border windows included (4.2 to 0.61 ms at 1 thread), and planes under 12 columns "
        "go in slabs of 32 planes through a channels-last buffer (7x7 3x3 stride 1: 1.4x faster than the masked "
        "rows). Tried and not kept: the slabs for 14x14 planes (1.5x slower than the masked rows: the two "
        "transposes cost more than the short rows) and for 28x28 ones (1.8x slower than the 8-column blocks).",
    ("average pooling backward, NCHW", "5x torch and 1.5x torch-cl"):
        "planes of up to 15 outputs a row go in slabs of 32 planes through a channels-last buffer (zeroed, each "
        "share added to its window's cells across the slab's planes, transposed back), which took 256x64x14x14 "
        "from 2.1 to 1.3 ms at 1 thread and 7x7 3x3 stride 1 from 5.4 to 0.58 ms (torch-cl: 1.05 ms); 16 outputs "
        "a row measured slower in slabs and stays with the planes kernel. 14x14x64 is not at a floor: its 16 MB "
        "move at about half the copy bandwidth, most of the time in the two transposes and the zeroing; torch-cl "
        "reads its channels-last grad_output once and writes each cell once. large and resnet-stem meet 1.5x "
        "torch-cl at 1 thread.",
    ("average pooling forward, NHWC", "5x torch (on the NCHW twin), 1.5x torch-cl and 1.5x torch-mkldnn"):
        "the kernel now prefetches the next output row's window (its input-row streams restart every output "
        "row), which took large-nhwc from 3.69 to 2.19 ms and resnet-stem-nhwc from 8.2 to 3.8 ms at 1 thread "
        "(two full runs on the AMD EPYC): 86% and 99% of the copy-bandwidth bound, so large-nhwc's 1.5x "
        "torch-cl is above its roofline ceiling (1.24x at 1 thread in the row). mnist-first-nhwc at 2 threads "
        "runs on one thread (threads_for in cpool/_threads.py).",
    ("average pooling backward, NHWC", "5x torch (on the NCHW twin) and 1.5x torch-cl"):
        "resnet-stem-nhwc's fresh 103 MB grad_input comes from new pages every call: 10.7 ms at 1 thread and "
        "10.1 at 2 (30% of the bound, the page faults do not split across threads), against 4.9 ms at 2 threads "
        "into a reused buffer (the cpool-out row, 62%); mnist-first-nhwc at 2 threads runs on one thread "
        "(threads_for in cpool/_threads.py).",
    ("global average pooling, large shapes", "70% of the roofline bound (the input read once)"):
        "the miss is large-nhwc at 1 thread (50% on the AMD EPYC; resnet-stem-nhwc, 64 channels, 74%): the "
        "channels-last mean reproduces torch's cascade sums (SumKernel.cpp's vectorized outer sum), which cpool "
        "runs one 32-channel block at a time down all of an image's pixels: with 256 channels that is eight "
        "passes over each 3.2 MB image at a 1 KB stride. Summing all blocks over each run of 16 pixels (the "
        "cascade's first level) before the next, which reads each image once in order with the same sums, "
        "measured no faster (2.45 against 2.48 ms at 1 thread, one process), and is not in: what holds it at "
        "half the bandwidth is not yet found. torch-cl takes 1.1x cpool's time there.",
    ("max_unpool2d, MNIST shapes", "3x torch"):
        "the output is zeroed and each value written at its index, and at 1 thread mnist-conv and mnist-first run "
        "at about 90% of the copy-bandwidth bound for the bytes read and written (the roofline table): 3x torch "
        "t1 would be faster than that bound. At 2 threads mnist-first (200 KB of output) stays on one thread "
        "(threads_for in cpool/_threads.py: threads under 0.5M elements each cost more than they save inside a "
        "NumPy network).",
    ("NumPy fallback, average pooling", "no slower than torch t1"):
        "gap: cpool.slow reproduces torch's summation order (SumKernel.cpp's cascades over 8-lane vectors), "
        "many strided adds, and even NumPy's own fastest reduction in its own order, "
        "x.reshape(N * C, H * W).sum(axis=1), takes 1.2-1.7x torch t1's time on these shapes (one thread, one "
        "process): that is the floor here. avg_bwd adds each kernel tap's shares to a strided view of "
        "grad_input at once, in reverse row-major tap order (which keeps torch's order at every cell), where it "
        "gathered a full-size array per window row and column: 6-13x faster (resnet-stem 1.2 s to 0.1 s), and "
        "no slower than torch t1 but on resnet-stem (3x3 stride 2 padding 1: nine strided adds of a quarter of "
        "the 103 MB grad_input each, about 0.85x). avg_fwd on resnet-stem: nine strided adds over a padded copy "
        "of the input.",
    ("adaptive_max_pool2d, large shapes (informational)", "1.5x torch-cl"):
        "a 7x7 output of 56x56 and 112x112 planes pools 8x8 and 16x16 windows, each input element once, so the "
        "floor is one read of the input (x.max() of large's 51 MB takes 1.8 ms at 1 thread), and torch-cl, "
        "vectorised across channels, runs within about 1.7x of it. Planes windows took a scalar fold with a "
        "branch per tap (large: 17 ms at 1 thread); float32 planes now go in slabs of 32 through a channels-last "
        "buffer, a band of output rows at a time, and channels-last memory folds a window's channels together "
        "(large about 4 ms on planes and 3.3 ms channels-last at 1 thread, torch-cl 3 ms). The planes path's "
        "two transposes are about a quarter of its time.",
    ("3-D max pooling, NCDHW", "5x torch"):
        "the backward's fresh 103 MB grad_input comes from new pages every call (zero-filling it alone takes "
        "about 20 ms on the Xeon), and at 2 threads the page faults do not split across threads (vol-k2 9.9 ms "
        "at 1 and at 2 threads on the EPYC); the cpool-out rows, into a buffer made once, take 6.7 / 4.0 ms "
        "(vol-k2) and 4.9 / 3.2 ms (vol-k3) at 1 / 2 threads: 7.0-7.8x torch's fresh-output time at both "
        "thread counts.",
    ("3-D max pooling, channels_last_3d", "1.5x torch-cl"):
        "the forward reads a 103 MB input once and its roofline ceiling is at or below 1.5x torch-cl on vol-k2; a "
        "register-blocked 16-channel fold was tried and was 10x slower.",
    ("3-D average pooling, NCDHW", "5x torch"):
        "forward: float32 planes go by the 2-D planes kernel's 8-column vectors, a window's depth slices, rows "
        "and taps in torch's order (stride-2 pairs of loads split into even and odd taps), which took vol-k2 from "
        "8.7 to about 5.6 ms and vol-k3 from 10.9 to 5.7 ms at 1 thread on the Xeon (5x torch and more there). "
        "On the AMD EPYC torch's forward is faster (vol-k2 24 ms at 1 thread) and vol-k2 runs at 3.9x, at 49% of "
        "its copy-bandwidth bound at 1 thread and 83% at 2: the kernel, not memory, bounds it at 1 thread. "
        "backward: grad_input is new pages every call (vol-k2's "
        "103 MB: np.empty(...).fill(0) alone takes about 13 ms at 1 thread on the Xeon); float32 stride-2 share "
        "rows go by AVX2 vectors (each share doubled onto the two cells of a pair of window columns, one "
        "contiguous add a pair; an odd width's column 0 as (share, 0) pairs; the input row's first share row "
        "stored, not added to a zeroed row; the input row itself the buffer where no window leaves it), which "
        "took the out= backward at 1 thread from 7.9 to 6.7 ms (vol-k2) and 14.4 to 8.9 ms (vol-k3) on the EPYC "
        "(`python tools/bench_avg3d.py --out`). The cpool-out rows: 10.4x (vol-k2) and 6.6x (vol-k3) torch's "
        "fresh-output time at 1 thread. Tried and not kept: all of a 16-cell block's taps in registers, loaded "
        "and stored once (no store-forwarding stalls between the pair sweeps): 8.4 and 12.5 ms, slower.",
    ("max_pool1d, 64x128x4096 k2 s2 and k3 s1 p1", "5x torch"):
        "the 64 and 128 MB outputs come from new pages every call (the out= row below takes them away): with "
        "out= buffers both meet 5x torch on the AMD EPYC (k2 s2: 6.0 against torch's 41.8 ms at 1 thread, 88% of "
        "the copy-bandwidth bound); on the Xeon even out= stays under 5x: see the next row.",
    ("max_pool1d, 64x128x4096, out= buffers", "5x torch"):
        "the 1-D rows are memory-bound: k2 s2 moves 201 MB, whose copy-bandwidth bound (the roofline table) is "
        "about 7.7 ms at 1 thread, where 5x torch allows 7.9 ms, and 7.2 ms at 2 threads, where it allows 4.4 ms. "
        "k3 s1 p1 moves 268 MB: np.copyto of its 134 MB input to an output of the same size takes about 15 ms at "
        "1 thread (np.maximum(x, x, out=o): 18 ms), more than the 13.6 ms 5x torch allows; at 2 threads 5x "
        "torch (7.6 ms) is under the bound (9.6 ms).",
}

# The busy-machine target, checked against the contention section (bench.py --contention): with N busy processes
# running (N = the CPU count and twice it), cpool at its default thread count (cpool.set_num_threads(None)) may
# take at most this many times its 1-thread time (medians), on every shape and op measured.
BUSY_TARGET = ("busy machine: default threads", "no more than 1.5x the 1-thread time", 1.5)
CONTENTION_LOADS = "cpus,2xcpus"  # busy processes per load phase: integers, "cpus" or "Kxcpus"


def out_len(L, k, s, p, d, ceil_mode):
    """PyTorch's output length (aten/src/ATen/native/Pool.h)."""
    out = (L + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= L + p:
        out -= 1
    return out


@dataclass
class Case:
    """One shape: geometry, and once filled, the input, grad_output and reference outputs."""

    name: str
    shape: tuple
    kernel: int = 2
    stride: int = 2
    padding: int = 0
    dilation: int = 1
    ceil_mode: bool = False
    dtype: str = "float32"
    layout: str = "nchw"  # the memory of x, grad_out and the reference indices: nchw, or nhwc (channels-last)
    one_d: bool = False  # a 1-D shape: (N, C, 1, W) holding (N, C, W) rows, pooled along W only (the pool1d op)
    x: np.ndarray = None
    grad_out: np.ndarray = None
    ref: dict = field(default_factory=dict)

    @property
    def out_shape(self):
        # a 1-D shape (N, C, 1, L) pools along L only
        return self.shape[:2] + tuple(L if self.one_d and i == 0 else
                                      out_len(L, self.kernel, self.stride, self.padding, self.dilation, self.ceil_mode)
                                      for i, L in enumerate(self.shape[2:]))

    @property
    def volume(self):
        """Whether this is a 3-D pooling shape (N, C, D, H, W)."""
        return len(self.shape) == 5

    @property
    def args(self):
        """kernel, stride, padding, dilation: the positional arguments after the input (torch and cpool)."""
        return self.kernel, self.stride, self.padding, self.dilation

    @property
    def simple(self):
        """kernel == stride, no padding or dilation, floor mode: all the loop and the NumPy answer handle."""
        return self.kernel == self.stride and self.padding == 0 and self.dilation == 1 and not self.ceil_mode

    def describe(self):
        text = "x".join(map(str, self.shape[:2] + self.shape[3:] if self.one_d else self.shape))
        text += " (1-D)" * self.one_d + f" k{self.kernel} s{self.stride}"
        text += f" p{self.padding}" * bool(self.padding) + f" d{self.dilation}" * (self.dilation != 1)
        return (text + " ceil" * self.ceil_mode + f" {self.dtype}" * (self.dtype != "float32")
                + f" {self.layout}" * (self.layout != "nchw"))

    def nbytes(self, op):
        """Bytes ``op`` must move at the least, each read or written once: fwd reads the input and writes the
        values, fwd_idx also writes int64 indices, bwd reads grad_output and indices and writes grad_input,
        step is fwd_idx then bwd; avg_fwd reads the input and writes the means, avg_bwd reads grad_output and
        writes grad_input, gap reads the input and writes one mean per (image, channel); unpool reads the values
        and their int64 indices and writes the input-sized output once (its zeros and the scattered values: one
        pass over it); unpool_bwd reads the indices and, gathered, one grad_output element per index (counted as
        that many elements: a lower bound, the gathered cache lines cost more) and writes a values-sized
        grad_input; amax reads the input and writes the 7x7 values and int64 indices."""
        item = np.dtype(self.dtype).itemsize
        x, v = int(np.prod(self.shape)) * item, int(np.prod(self.out_shape)) * item
        i = int(np.prod(self.out_shape)) * 8
        amax_out = int(np.prod(AMAX_SIZE))
        return {"fwd": x + v, "fwd_idx": x + v + i, "bwd": v + i + x, "step": 2 * (x + v + i), "avg_fwd": x + v,
                "avg_bwd": v + x, "gap": x + self.shape[0] * self.shape[1] * item, "unpool": v + i + x,
                "unpool_bwd": i + 2 * v, "amax": x + self.shape[0] * self.shape[1] * amax_out * (item + 8),
                "pool1d": x + v, "max3d_fwd": x + v + i, "max3d_bwd": v + i + x, "avg3d_fwd": x + v,
                "avg3d_bwd": v + x}[op]

    def meta(self):
        return {"name": self.name, "description": self.describe(), "shape": list(self.shape),
                "out_shape": list(self.out_shape), "kernel": self.kernel, "stride": self.stride,
                "padding": self.padding, "dilation": self.dilation, "ceil_mode": self.ceil_mode, "dtype": self.dtype,
                "layout": self.layout, "nchw_twin": nchw_twin(self.name), "one_d": self.one_d,
                "bytes": {op: self.nbytes(op) for op in OPS}}

    def filled(self, seed=0, reference=None, ops=None, avg_reference=None):
        """This case with random normal data and the reference outputs of ``ops`` (default: every op). Max
        pooling's come from ``reference`` (default: cpool.slow); average pooling's from ``avg_reference(case,
        ops)``, a dict of them computed on the case's own memory layout (default: slow_avg_reference, cpool.slow),
        only gap's where the case has dilation (average pooling has none). A channels-last case has the same data as its
        NCHW twin, its x, grad_out and reference indices in channels-last memory."""
        ops = tuple(OPS) if ops is None else tuple(ops)
        ops = tuple(op for op in ops if not self.unfit(op))  # (a 1-D shape takes pool1d only, and only it)
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal(self.shape).astype(self.dtype)
        self.grad_out = rng.standard_normal(self.out_shape).astype(self.dtype)
        self.ref = {}
        if self.volume:
            return self._filled_3d(ops)
        if set(ops) & set(MAX_OPS):
            if reference is None:
                import cpool.slow as reference
            values, indices = reference.max_pool2d(self.x, *self.args, ceil_mode=self.ceil_mode, return_indices=True)
            self.ref = {"values": values, "indices": indices,
                        "grad_in": reference.max_pool2d_backward(self.grad_out, indices, self.x.shape)}
        if self.layout == "nhwc":
            self.x, self.grad_out = to_channels_last(self.x), to_channels_last(self.grad_out)
            if "indices" in self.ref:
                self.ref["indices"] = to_channels_last(self.ref["indices"])
        if set(ops) & set(UNPOOL_OPS) and self.unpool_fits:  # unpooling's inputs: cpool's max pooling of x, in x's
            # memory layout
            import cpool

            self.ref["pool_values"], self.ref["pool_indices"] = cpool.max_pool2d(
                self.x, *self.args, ceil_mode=self.ceil_mode, return_indices=True)
        avg = [op for op in ops if op in AVG_OPS and (op == "gap" or self.dilation == 1)
               or op in UNPOOL_OPS + ADAPTIVE_OPS and not self.unfit(op)]
        if avg:
            self.ref.update((avg_reference or slow_avg_reference)(self, avg))
        if set(ops) & set(POOL1D_OPS):
            import cpool.slow

            self.ref["pool1d_values"] = cpool.slow.max_pool1d(self.x1d, *self.args, ceil_mode=self.ceil_mode)
        return self

    def _filled_3d(self, ops):
        """filled() for a 5-D shape: the pool3d ops' references, from cpool.slow (torch's values and indices bit
        for bit), the indices in the case's memory layout (max3d_bwd's input)."""
        if set(ops) & set(POOL3D_OPS):
            import cpool.slow as slow

            values, indices = slow.max_pool3d(self.x, *self.args, ceil_mode=self.ceil_mode, return_indices=True)
            self.ref = {"max3d_values": values, "max3d_indices": indices,
                        "max3d_grad_in": slow.max_pool3d_backward(self.grad_out, indices, self.x.shape),
                        "avg3d_values": slow.avg_pool3d(self.x, *self.avg_args),
                        "avg3d_grad_in": slow.avg_pool3d_backward(self.grad_out, self.x.shape, *self.avg_args)}
        if self.layout == "nhwc":
            self.x, self.grad_out = to_channels_last(self.x), to_channels_last(self.grad_out)
            if "max3d_indices" in self.ref:
                self.ref["max3d_indices"] = to_channels_last(self.ref["max3d_indices"])
        return self

    @property
    def x1d(self):
        """A 1-D shape's input as max_pool1d takes it: the (N, C, W) view of x (channels-last memory for nhwc)."""
        return self.x[:, :, 0, :]

    @property
    def avg_args(self):
        """kernel, stride, padding, ceil_mode: avg_pool2d's positional arguments after the input (torch and
        cpool), count_include_pad left at its default, True."""
        return self.kernel, self.stride, self.padding, self.ceil_mode

    @property
    def unpool_args(self):
        """kernel, stride, padding, output_size: max_unpool2d's positional arguments after values and indices (torch
        and cpool); output_size is the input's (H, W)."""
        return self.kernel, self.stride, self.padding, tuple(self.shape[2:])

    @property
    def amax_fits(self):
        """Whether amax's 7x7 output fits: H, W >= 7 (no window smaller than one pixel)."""
        return min(self.shape[2:]) >= min(AMAX_SIZE)

    @property
    def unpool_fits(self):
        """Whether max_unpool2d can unpool to the input's size: PyTorch's output-size rule (each side strictly
        within one stride of (out - 1) * stride - 2 * padding + kernel), which a dilated or ceil_mode pooling's
        input can break."""
        return all(d - self.stride < L < d + self.stride for L, o in zip(self.shape[2:], self.out_shape[2:])
                   for d in [(o - 1) * self.stride - 2 * self.padding + self.kernel])

    def unfit(self, op):
        """Why ``op`` cannot run on this shape, or None."""
        if (op in POOL3D_OPS) != self.volume:
            return ("a 3-D pooling op runs on (N, C, D, H, W) shapes only" if op in POOL3D_OPS
                    else "a 2-D op does not run on an (N, C, D, H, W) shape")
        if self.one_d != (op in POOL1D_OPS):
            return ("a 1-D shape (:1d): only pool1d runs on it" if self.one_d else
                    "pool1d runs on the 1-D shapes only (NxCx1xW:...:1d, e.g. " + ", ".join(POOL1D_SHAPES) + ")")
        if op == "amax" and not self.amax_fits:
            return f"amax's {AMAX_SIZE[0]}x{AMAX_SIZE[1]} output needs H, W >= {min(AMAX_SIZE)}"
        if op in UNPOOL_OPS and not self.unpool_fits:
            return ("max_unpool2d cannot unpool to the input's size here (PyTorch's output-size rule: a dilated or "
                    "ceil_mode pooling)")
        return None

    def subset(self, n):
        """The same case on the first ``n`` images of the batch."""
        if n >= self.shape[0]:
            return self
        return replace(self, shape=(n,) + self.shape[1:], x=self.x[:n], grad_out=self.grad_out[:n],
                       ref={k: v[:n] for k, v in self.ref.items()})


def slow_avg_reference(case, ops):
    """The reference outputs of ``ops`` (those of TORCH_REF_OPS) from cpool.slow, on the case's arrays as they lie in
    memory (gap only where cpool.slow has adaptive_avg_pool2d); unpool_bwd's grad_output is the case's x (random
    normal data of the unpooled output's shape and layout)."""
    import cpool.slow as slow

    out = {}
    if "unpool" in ops:
        out["unpool_values"] = slow.max_unpool2d(case.ref["pool_values"], case.ref["pool_indices"], *case.unpool_args)
    if "unpool_bwd" in ops:
        out["unpool_grad"] = slow.max_unpool2d_backward(case.x, case.ref["pool_indices"])
    if "amax" in ops:
        out["amax_values"], out["amax_indices"] = slow.adaptive_max_pool2d(case.x, AMAX_SIZE, return_indices=True)
    if "avg_fwd" in ops:
        out["avg_values"] = slow.avg_pool2d(case.x, *case.avg_args)
    if "avg_bwd" in ops:
        out["avg_grad_in"] = slow.avg_pool2d_backward(case.grad_out, case.shape, *case.avg_args)
    if "gap" in ops and hasattr(slow, "adaptive_avg_pool2d"):
        out["gap_values"] = slow.adaptive_avg_pool2d(case.x, 1)
    return out


def to_channels_last(a):
    """The same (N, C, H, W) values in channels-last memory: the (N, C, H, W) view of a C-contiguous (N, H, W, C)
    array (and likewise for (N, C, D, H, W): torch's channels_last_3d)."""
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 1, -1)), -1, 1)


_SPEC = re.compile(r"^(\d+)x(\d+)x(\d+)x(\d+)((?:x\d+)?)((?::[a-z0-9]+)*)$")


def parse_shape(token):
    """A Case (no data yet) from a name in SHAPES or a spec NxCxHxW[:kK][:sS][:pP][:dD][:ceil][:float64][:nhwc]
    (kernel 2, stride = kernel unless given; nhwc: the input in channels-last memory)."""
    name = token.strip()
    m = _SPEC.match(SHAPES.get(name) or POOL1D_SHAPES.get(name) or SHAPES_3D.get(name, name))
    if not m:
        raise ValueError(f"unknown shape {name!r}: use one of {', '.join([*SHAPES, *POOL1D_SHAPES, *SHAPES_3D])} or "
                         "NxCxHxW[:kK][:sS][:pP][:dD][:ceil][:float64][:nhwc] (NxCxDxHxW for 3-D pooling)")
    opts = {}
    for part in filter(None, m.group(6).split(":")):
        if part == "ceil":
            opts["ceil_mode"] = True
        elif part in ("float16", "float32", "float64"):
            opts["dtype"] = part
        elif part in LAYOUTS:
            opts["layout"] = part
        elif part == "1d":
            opts["one_d"] = True
        elif part[0] in "kspd" and part[1:].isdigit():
            opts[{"k": "kernel", "s": "stride", "p": "padding", "d": "dilation"}[part[0]]] = int(part[1:])
        else:
            raise ValueError(f"bad shape option {part!r} in {name!r}")
    opts.setdefault("stride", opts.get("kernel", 2))
    if opts.get("one_d") and int(m.group(3)) != 1:
        raise ValueError(f"a 1-D shape (:1d) has H = 1, got {name!r}")
    dims = m.groups()[:4] + ((m.group(5)[1:],) if m.group(5) else ())
    return Case(name, tuple(int(g) for g in dims), **opts)
