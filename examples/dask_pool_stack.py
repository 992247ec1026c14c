"""Max-pool an image stack larger than memory with ``cpool.dask``, and time it.

It creates (unless it is there already) a memory-mapped ``.npy`` stack of
float32 images, (N, 1, H, W), of ``--size-gb`` GB in ``--dir`` (default: a
new temporary directory), pools it lazily with :func:`cpool.dask.max_pool2d`
under a :class:`dask.diagnostics.ProgressBar`, stores the result into a
``.npy`` file (zarr too when installed and ``--zarr`` is given), checks the
part of it that fits in memory against one in-memory :func:`cpool.max_pool2d`
call, and reports the throughput in GB/s of input:

* ``in-memory cpool``: one ``cpool.max_pool2d`` call on ``--memory-gb`` GB
  already in RAM (the reference; best of ``--repeat``);
* ``dask, in memory``: ``cpool.dask`` on the same in-RAM array, computed
  into one NumPy array (best of ``--repeat``);
* ``dask, .npy -> .npy``: the whole stack, read from the memory map, written
  to the output file (once).

What it created is deleted at the end unless ``--keep``. The chunks cut the
images along H (``--chunk-rows``), so the windows that straddle chunk
boundaries go through cpool.dask's halos.

Examples
--------
::

    python examples/dask_pool_stack.py                           # 4 GB stack in a temp dir, k3 s2 p1
    python examples/dask_pool_stack.py --size-gb 8 --dir /data --keep
    python examples/dask_pool_stack.py --size-gb 0.05 --memory-gb 0.02 --image 256   # a quick run
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GB = 1e9


def import_cpool():
    """Import cpool and cpool.dask: the installed cpool, else the checkout this file belongs to."""
    try:
        import cpool
    except ImportError:
        root = Path(__file__).resolve().parent.parent
        if not (root / "cpool" / "__init__.py").is_file():
            raise
        sys.path.append(str(root))
        import cpool
    try:
        import cpool.dask  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"cpool.dask is not available with the cpool at {cpool.__file__}: {exc}\n"
                         f'install it with its dask extra (pip install ".[dask]" in the checkout)') from exc
    return cpool


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=None,
                    help="directory for the stack and the result (default: a new temporary directory)")
    ap.add_argument("--size-gb", type=float, default=4.0, help="size of the input stack in GB (default 4)")
    ap.add_argument("--memory-gb", type=float, default=1.0,
                    help="size of the in-memory comparison in GB (default 1; capped at --size-gb)")
    ap.add_argument("--image", type=int, default=2048, help="image height and width (default 2048)")
    ap.add_argument("--chunk-images", type=int, default=4, help="images per chunk (default 4)")
    ap.add_argument("--chunk-rows", type=int, default=None,
                    help="rows per chunk (default: half an image, so windows are cut at chunk borders)")
    ap.add_argument("--kernel", type=int, default=3)
    ap.add_argument("--stride", type=int, default=2)
    ap.add_argument("--padding", type=int, default=1)
    ap.add_argument("--workers", type=int, default=None,
                    help="dask threads (default: the number of CPUs)")
    ap.add_argument("--cpool-threads", type=int, default=1,
                    help="cpool's threads inside each dask task (default 1: dask already runs one task "
                         "per CPU); the in-memory reference uses cpool's default")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of the in-memory measurements; the best is reported (default 3)")
    ap.add_argument("--zarr", action="store_true", help="also store the result as a zarr array (needs zarr)")
    ap.add_argument("--keep", action="store_true", help="keep the stack and the result")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    return ap.parse_args(argv)


def stack_shape(size_gb: float, image: int):
    n = max(1, int(round(size_gb * GB / (image * image * 4))))
    return (n, 1, image, image)


def create_stack(path: Path, shape, quiet=False):
    """A float32 .npy of ``shape`` at ``path``, filled with random images a few at a time. Reused if there."""
    if path.exists():
        try:
            existing = np.load(path, mmap_mode="r")
            if existing.shape == shape and existing.dtype == np.float32:
                return False
        except ValueError:
            pass
    rng = np.random.default_rng(0)
    stack = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    step = max(1, int(256e6 // (stack[0].nbytes)))
    t0 = time.perf_counter()
    for i in range(0, shape[0], step):
        block = rng.random((min(step, shape[0] - i),) + shape[1:], dtype=np.float32)
        stack[i:i + block.shape[0]] = block
        if not quiet:
            print(f"\r  writing the stack: {min(i + step, shape[0])}/{shape[0]} images", end="", flush=True)
    stack.flush()
    del stack
    if not quiet:
        print(f" ({time.perf_counter() - t0:.1f} s)")
    return True


def main(argv=None) -> dict:
    args = parse_args(argv)
    cpool = import_cpool()
    import dask
    import dask.array as da
    from dask.diagnostics import ProgressBar

    shape = stack_shape(args.size_gb, args.image)
    nbytes = int(np.prod(shape)) * 4
    pool_args = dict(kernel_size=args.kernel, stride=args.stride, padding=args.padding)

    made_dir = args.dir is None
    workdir = Path(tempfile.mkdtemp(prefix="cpool-dask-stack-")) if made_dir else args.dir
    workdir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(workdir).free
    need = nbytes * 1.3  # the stack and the (4x smaller for stride 2) result, with room to spare
    stack_path, out_path, zarr_path = workdir / "stack.npy", workdir / "pooled.npy", workdir / "pooled.zarr"
    if not stack_path.exists() and free < need:
        if made_dir:
            shutil.rmtree(workdir)
        raise SystemExit(f"not enough disk space in {workdir}: {free / GB:.1f} GB free, "
                         f"{need / GB:.1f} GB needed for a {nbytes / GB:.1f} GB stack; use --size-gb or --dir")
    created = []
    report = {}
    try:
        print(f"stack: {shape} float32, {nbytes / GB:.2f} GB at {stack_path}")
        if create_stack(stack_path, shape, quiet=args.quiet):
            created.append(stack_path)
        stack = np.load(stack_path, mmap_mode="r")
        rows = args.chunk_rows or max(1, args.image // 2)
        chunks = (min(args.chunk_images, shape[0]), 1, rows, args.image)
        workers = args.workers or os.cpu_count()
        print(f"pool: {pool_args}, chunks {chunks}, {workers} dask threads x {args.cpool_threads} cpool "
              f"thread(s)")

        # 1. The reference: one cpool call on a part of the stack already in memory.
        n_mem = max(1, min(shape[0], int(args.memory_gb * GB // (stack[0].nbytes))))
        in_mem = np.ascontiguousarray(stack[:n_mem])
        mem_gb = in_mem.nbytes / GB
        t_ref = math.inf
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            want = cpool.max_pool2d(in_mem, **pool_args)
            t_ref = min(t_ref, time.perf_counter() - t0)
        report["in-memory cpool"] = (mem_gb, t_ref)

        # 2. cpool.dask on the same in-memory array.
        previous_threads = cpool.get_num_threads()
        cpool.set_num_threads(args.cpool_threads)
        try:
            with dask.config.set(scheduler="threads", num_workers=workers):
                lazy = cpool.dask.max_pool2d(da.from_array(in_mem, chunks=chunks), **pool_args)
                lazy[:1, :, :1, :1].compute()  # warm-up: the thread pool and the first calls
                t_mem = math.inf
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    got = lazy.compute()
                    t_mem = min(t_mem, time.perf_counter() - t0)
                report["dask, in memory"] = (mem_gb, t_mem)
                if got.tobytes() != want.tobytes():
                    raise SystemExit("cpool.dask's result differs from cpool's on the in-memory stack")
                del got

                # 3. The whole stack: memory map in, .npy out.
                x = da.from_array(stack, chunks=chunks)
                pooled = cpool.dask.max_pool2d(x, **pool_args)
                target = np.lib.format.open_memmap(out_path, mode="w+", dtype=pooled.dtype, shape=pooled.shape)
                created.append(out_path)
                print(f"result: {pooled.shape} in {len(pooled.chunks[0]) * len(pooled.chunks[2])} chunks "
                      f"(row chunks {pooled.chunks[2]}), to {out_path}")
                t0 = time.perf_counter()
                if args.quiet:
                    da.store(pooled, target, lock=False)
                else:
                    with ProgressBar():
                        da.store(pooled, target, lock=False)
                target.flush()
                t_disk = time.perf_counter() - t0
                report["dask, .npy -> .npy"] = (nbytes / GB, t_disk)
                if target[:n_mem].tobytes() != want.tobytes():
                    raise SystemExit("the stored result differs from cpool's on the in-memory part")
                del target
                if args.zarr:
                    try:
                        import zarr  # noqa: F401
                    except ImportError:
                        print("--zarr: zarr is not installed; skipped")
                    else:
                        t0 = time.perf_counter()
                        pooled.to_zarr(str(zarr_path), overwrite=True)
                        created.append(zarr_path)
                        report["dask, .npy -> zarr"] = (nbytes / GB, time.perf_counter() - t0)
        finally:
            cpool.set_num_threads(previous_threads)

        print(f"\n{'':22s} {'input GB':>9s} {'seconds':>8s} {'GB/s':>6s}")
        for name, (gb, seconds) in report.items():
            print(f"{name:22s} {gb:9.2f} {seconds:8.2f} {gb / seconds:6.2f}")
        print(f"(the stack was {'just written' if stack_path in created else 'already there'}: the memory-mapped "
              f"reads may come from the page cache rather than the disk)")
    finally:
        if not args.keep:
            for path in created:
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
            if made_dir:
                shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept: {', '.join(str(p) for p in created) or 'nothing new'} in {workdir}")
    return {name: gb / seconds for name, (gb, seconds) in report.items()}


if __name__ == "__main__":
    main()
