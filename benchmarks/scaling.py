"""Scaling: the same 2-stage prediction on threads and on a local distributed cluster.

Prints time, speedup and parallel efficiency for 1 and 2 workers, and the overhead of the
distributed scheduler against the threaded one at the same core count. A second part runs a
volume whose output is 4x the total worker memory limit, to show it streams to zarr without
spilling or memory errors.

    python benchmarks/scaling.py                 # 192^3 volume for timing, 4x-memory volume after
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

FEATURES = {"features": {"GaussianSmoothing": [1.0, 3.5], "GaussianGradientMagnitude": [1.6],
                         "HessianOfGaussianEigenvalues": [1.6]}}


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


def run(cascade: object, size: int, out: Path, scheduler: str, workers: int, memory_limit: str | None) -> float:
    shutil.rmtree(out, ignore_errors=True)
    with execution(scheduler, threads=workers, memory_limit=memory_limit):
        probabilities = predict(cascade, volume(size), axes="zyxc", chunks=(64, 64, 64, 1))[1].probabilities
        start = time.perf_counter()
        write_image(probabilities, str(out), format="zarr", axes="zyxc")
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--memory-limit", default="400MiB", help="of the one worker of the 4x-memory run")
    args = parser.parse_args()
    cascade = model()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.zarr"
        times = {}
        for scheduler in ("threads", "local"):
            for workers in (1, 2):
                times[scheduler, workers] = run(cascade, args.size, out, scheduler, workers, None)
        mvox = args.size**3 / 1e6
        print(f"{'scheduler':>10} {'workers':>7} {'time s':>7} {'Mvox/s':>7} {'speedup':>8} {'efficiency':>10}")
        for (scheduler, workers), seconds in times.items():
            speedup = times[scheduler, 1] / seconds
            print(f"{scheduler:>10} {workers:>7} {seconds:7.1f} {mvox / seconds:7.2f} {speedup:8.2f} "
                  f"{speedup / workers:10.0%}")
        for workers in (1, 2):
            print(f"distributed overhead at {workers} worker(s): {times['local', workers] / times['threads', workers]:.2f}x")
        limit = dask.utils.parse_bytes(args.memory_limit)
        edge = int(round((4 * limit / 8) ** (1 / 3) / 64)) * 64  # output float32 x 2 classes = 8 B/voxel
        with execution("local", threads=1, memory_limit=f"{limit}B"):
            probabilities = predict(cascade, volume(edge), axes="zyxc", chunks=(64, 64, 64, 1))[1].probabilities
            start = time.perf_counter()
            write_image(probabilities, str(Path(tmp) / "big.zarr"), format="zarr", axes="zyxc")
            seconds = time.perf_counter() - start
        print(f"{edge}^3 volume: output {probabilities.nbytes / 2**30:.2f} GiB = "
              f"{probabilities.nbytes / limit:.1f}x the worker's memory limit "
              f"({args.memory_limit}, 1 worker); completed in {seconds:.0f} s")


if __name__ == "__main__":
    main()
