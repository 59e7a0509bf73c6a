"""Scaling: the same 2-stage prediction on threads and on a local distributed cluster.

Prints time, speedup and parallel efficiency for 1 and 2 workers, and the overhead of the
distributed scheduler against the threaded one at the same core count. Each run is the batch
path: stage 1 computed slab by slab into a scratch zarr, stage 2 streamed to the output zarr.
A second part runs a volume whose output is 4x the memory limit of the one worker, to show
it streams to zarr without spilling or memory errors, and reports the worker's peak RSS.

    python benchmarks/scaling.py                 # 128^3 volume for timing, 640^3 for 4x memory
    python benchmarks/scaling.py --size 256 --memory-limit 700MiB
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from cascade.cluster import execution
from cascade.features import parse_feature_selection
from cascade.io import write_image
from cascade.pipeline import Stage, predict
from cascade.training import TrainingImage, fit

FEATURES = {
    "features": {
        "GaussianSmoothing": [1.0, 3.5],
        "GaussianGradientMagnitude": [1.6],
        "HessianOfGaussianEigenvalues": [1.6],
    }
}


def _block(block_info: dict | None = None) -> np.ndarray:
    from scipy import ndimage

    assert block_info is not None
    loc = block_info[None]["array-location"]
    shape = tuple(b - a for a, b in loc)
    rng = np.random.default_rng(abs(hash(tuple(a for a, _ in loc))) % 2**32)
    field = ndimage.gaussian_filter(rng.random(shape, dtype=np.float32), 2.0)
    return ((field > field.mean()) * 120 + rng.integers(0, 100, shape)).astype(np.uint8)


def volume(size: int) -> da.Array:
    return da.map_blocks(_block, chunks=((64,) * (size // 64),) * 3, dtype=np.uint8)[..., None]


def model() -> object:
    small = volume(64).compute()
    truth = np.where(small[..., 0] > 100, 1, 2).astype(np.uint8)
    labels = np.where(np.random.default_rng(0).random(truth.shape) < 0.02, truth, 0).astype(np.uint8)
    sel = parse_feature_selection(FEATURES)
    stages = [Stage(sel, ("a", "b")), Stage(sel, ("a", "b"))]
    return fit([TrainingImage(small, "zyxc", (labels, labels))], stages, trees=30)


def run(
    cascade: object, size: int, out: Path, scheduler: str, workers: int, memory_limit: str | None
) -> float:
    shutil.rmtree(out, ignore_errors=True)
    with (
        execution(scheduler, threads=workers, memory_limit=memory_limit),
        tempfile.TemporaryDirectory(dir=out.parent) as scratch,
    ):
        # warm up: workers import cascade and load numba's cached kernels on their first task
        predict(cascade, volume(64), axes="zyxc", chunks=(64, 64, 64, 1))[1].probabilities.compute()
        start = time.perf_counter()
        results = predict(cascade, volume(size), axes="zyxc", chunks=(64, 64, 64, 1), scratch=scratch)
        write_image(results[1].probabilities, str(out), format="zarr", axes="zyxc")
        return time.perf_counter() - start


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--memory-limit", default="500MiB", help="of the one worker of the 4x-memory run")
    parser.add_argument("--skip-memory-run", action="store_true", help="only the timing table")
    args = parser.parse_args()
    cascade = model()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.zarr"
        times = {}
        for scheduler in ("threads", "local"):
            for workers in (1, 2):
                times[scheduler, workers] = run(cascade, args.size, out, scheduler, workers, None)
        mvox = args.size**3 / 1e6
        print(
            f"{'scheduler':>10} {'workers':>7} {'time s':>7} {'Mvox/s':>7} {'speedup':>8} {'efficiency':>10}"
        )
        for (scheduler, workers), seconds in times.items():
            speedup = times[scheduler, 1] / seconds
            print(
                f"{scheduler:>10} {workers:>7} {seconds:7.1f} {mvox / seconds:7.2f} {speedup:8.2f} "
                f"{speedup / workers:10.0%}"
            )
        for workers in (1, 2):
            print(
                f"distributed overhead at {workers} worker(s): {times['local', workers] / times['threads', workers]:.2f}x"
            )
        if args.skip_memory_run:
            return
        limit = dask.utils.parse_bytes(args.memory_limit)
        edge = int(round((4 * limit / 8) ** (1 / 3) / 64)) * 64  # output float32 x 2 classes = 8 B/voxel
        big = Path(tmp) / "big.zarr"
        with (
            execution("local", threads=1, memory_limit=f"{limit}B") as info,
            tempfile.TemporaryDirectory(dir=tmp) as scratch,
        ):
            start = time.perf_counter()
            results = predict(cascade, volume(edge), axes="zyxc", chunks=(64, 64, 64, 1), scratch=scratch)
            write_image(results[1].probabilities, str(big), format="zarr", axes="zyxc")
            seconds = time.perf_counter() - start
            assert info.client is not None
            peaks = info.client.run(_peak_rss_mib)
        nbytes = results[1].probabilities.nbytes
        print(
            f"{edge}^3 volume: output {nbytes / 2**30:.2f} GiB = {nbytes / limit:.1f}x the worker's memory "
            f"limit ({args.memory_limit}, 1 worker, 1 thread); completed in {seconds:.0f} s; worker peak RSS "
            f"{max(peaks.values()):.0f} MiB"
        )


if __name__ == "__main__":
    main()
