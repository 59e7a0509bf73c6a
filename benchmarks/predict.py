"""End-to-end 2-stage prediction of 3D uint8 volumes: throughput, where the time goes, peak RSS.

A 2-stage cascade is trained on a small synthetic volume; then volumes of each size are generated
chunk by chunk into zarr, predicted on 2 threads and written to zarr (stage 2 probabilities).
Each size runs in its own process so its peak RSS is its own; the time split comes from dask's
task profiler (features = the map_overlap tasks, forest = the forest tasks, I/O = reading the
input and storing the output, other = rechunk/concatenate/convert).

    python benchmarks/predict.py                       # 128^3 and 256^3
    python benchmarks/predict.py --sizes 256 512       # the issue's sizes (512^3 takes a while)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

FEATURES = {
    "features": {
        "GaussianSmoothing": [0.7, 1.6, 3.5],
        "LaplacianOfGaussian": [1.0, 3.5],
        "GaussianGradientMagnitude": [1.0, 3.5],
        "DifferenceOfGaussians": [1.6],
        "StructureTensorEigenvalues": [1.6],
        "HessianOfGaussianEigenvalues": [1.0, 3.5],
    }
}


def _volume_block(block_info: dict | None = None) -> np.ndarray:
    """A deterministic blobby uint8 block, the same wherever it is computed."""
    from scipy import ndimage

    assert block_info is not None
    loc = block_info[None]["array-location"]
    shape = tuple(b - a for a, b in loc)
    seed = abs(hash(tuple(a for a, _ in loc))) % 2**32
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random(shape, dtype=np.float32), 3.0)
    return (255 * (field > field.mean())).astype(np.uint8) // 2 + rng.integers(0, 100, shape, dtype=np.uint8)


def _train(path: Path) -> None:
    import dask.array as da

    from cascade.features import parse_feature_selection
    from cascade.pipeline import Stage
    from cascade.project.native import save_cascade
    from cascade.training import TrainingImage, fit

    volume = da.map_blocks(_volume_block, chunks=((48,), (48,), (48,)), dtype=np.uint8).compute()
    truth = np.where(volume > 100, 1, 2).astype(np.uint8)
    rng = np.random.default_rng(0)
    labels = np.where(rng.random(truth.shape) < 0.01, truth, 0).astype(np.uint8)
    sel = parse_feature_selection(FEATURES)
    stages = [Stage(sel, ("a", "b")), Stage(sel, ("a", "b"))]
    save_cascade(fit([TrainingImage(volume[..., None], "zyxc", (labels, labels))], stages, trees=100), path)


def _instrument() -> dict[str, float]:
    """Accumulate the time spent in the feature and forest kernels (all threads summed)."""
    import threading

    import zarr

    import cascade.features._halo as halo
    import cascade.pipeline as pipeline
    from cascade.io._sources import LazySource

    timers = {"features": 0.0, "forest": 0.0, "io": 0.0}
    lock = threading.Lock()

    def timed(name: str, function: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            begin = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                with lock:
                    timers[name] += time.perf_counter() - begin

        return run

    halo.block_features = timed("features", halo.block_features)  # type: ignore[assignment]
    pipeline.predict_proba = timed("forest", pipeline.predict_proba)  # type: ignore[assignment]
    LazySource.__getitem__ = timed("io", LazySource.__getitem__)  # type: ignore[method-assign]
    zarr.Array.__setitem__ = timed("io", zarr.Array.__setitem__)  # type: ignore[method-assign]
    return timers


def child(size: int, project: str, workdir: str) -> None:
    import dask
    import dask.array as da
    from dask.diagnostics import Profiler

    from cascade._malloc import tune_malloc
    from cascade.io import open_image, write_image
    from cascade.pipeline import predict
    from cascade.project.native import load_cascade

    tune_malloc()
    source = Path(workdir) / f"in{size}.zarr"
    volume = da.map_blocks(_volume_block, chunks=((64,) * (size // 64),) * 3, dtype=np.uint8)
    write_image(volume, str(source), format="zarr", axes="zyx")
    image = open_image(str(source))
    raw = image.data[..., None]
    model = load_cascade(project)
    timers = _instrument()
    start = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=2), Profiler() as prof:
        # stage 1 is computed into the scratch folder here, stage 2 streamed to the output below
        results = predict(model, raw, axes="zyxc", chunks=(64, 64, 64, 1), scratch=workdir)
        write_image(
            results[1].probabilities, str(Path(workdir) / f"out{size}.zarr"), format="zarr", axes="zyxc"
        )
    seconds = time.perf_counter() - start
    # dask fuses a block's read, features, forest and store into few tasks, so the kernels and
    # the zarr reads and writes are timed themselves; "other" is the rest of the task time
    # (concatenate, convert, rechunk, compression is inside I/O)
    task_time = sum(t.end_time - t.start_time for t in prof.results)
    shares = {k: timers[k] for k in ("features", "forest", "io")}
    shares["other"] = max(0.0, task_time - sum(shares.values()))
    total = sum(shares.values()) or 1.0
    print(json.dumps({"seconds": seconds, **{k: v / total for k, v in shares.items()}}))


def run_size(size: int, project: Path, workdir: str) -> dict[str, float]:
    """One size predicted in its own process: the child's numbers and its own peak RSS (``peak_mb``)."""
    cmd = [sys.executable, __file__, "--child", str(size), str(project), workdir]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"size {size} failed")
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1], args.child[2])
        return
    with tempfile.TemporaryDirectory() as workdir:
        project = Path(workdir) / "bench.cascade"
        _train(project)
        rows = []
        for size in args.sizes:
            r = run_size(size, project, workdir)
            rows.append((size, r, r["peak_mb"]))
            print(f"  {size}^3 done in {r['seconds']:.0f} s", file=sys.stderr)
    print(
        f"{'volume':>8} {'Mvox/s':>7} {'time s':>7} {'features':>9} {'forest':>7} {'I/O':>5} {'other':>6} {'peak MB':>8}"
    )
    for size, r, peak in rows:
        mvox = size**3 / 1e6 / r["seconds"]
        print(
            f"{size:>7}^3 {mvox:7.2f} {r['seconds']:7.1f} {r['features']:9.0%} {r['forest']:7.0%} "
            f"{r['io']:5.0%} {r['other']:6.0%} {peak:8.0f}"
        )
    from cascade.features import parse_feature_selection

    per_channel = parse_feature_selection(FEATURES).n_channels(1, 64)
    print(
        f"2 threads, 2-stage cascade, 100 trees per stage, {per_channel} feature channels per input channel "
        f"(stage 2: 3 input channels); time shares are of summed task time."
    )


if __name__ == "__main__":
    main()
