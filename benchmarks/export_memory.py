"""Peak memory of a headless export of a large volume, measured as a user runs it.

Writes a 1024 x 1024 x 512 (x, y, z) uint8 volume to a compressed HDF5 file block by
block, trains a small one-stage 3D project on a crop of it, then runs

    cascade --headless --project=P --output_format=F --export_source=Probabilities vol.h5/data

under ``/usr/bin/time -v`` for each output format, and prints wall time, throughput and
the maximum resident set size the kernel recorded for the whole process.

    python benchmarks/export_memory.py                              # compressed hdf5 and zarr
    python benchmarks/export_memory.py --shape 256 512 512 --formats zarr n5
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

FEATURES = {
    "features": {
        "GaussianSmoothing": [1.0, 3.5],
        "LaplacianOfGaussian": [1.6],
        "GaussianGradientMagnitude": [1.6],
        "HessianOfGaussianEigenvalues": [1.6],
    }
}


def _slab(z0: int, z1: int, shape: tuple[int, int, int]) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(z0)
    field = ndimage.gaussian_filter(rng.random((z1 - z0, *shape[1:]), dtype=np.float32), 3.0)
    return ((field > field.mean()) * 120 + rng.integers(0, 100, field.shape)).astype(np.uint8)


def make_volume(path: Path, shape: tuple[int, int, int]) -> None:
    """A blobby uint8 volume written 32 slices at a time (never whole in memory)."""
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("data", shape=shape, dtype="u1", chunks=(64, 64, 64), compression="gzip")
        ds.attrs["axistags"] = (
            '{"axes": [{"key": "z", "typeFlags": 2}, {"key": "y", "typeFlags": 2}, {"key": "x", "typeFlags": 2}]}'
        )
        for z0 in range(0, shape[0], 32):
            z1 = min(shape[0], z0 + 32)
            ds[z0:z1] = _slab(z0, z1, shape)


def make_project(volume: Path, path: Path) -> None:
    from cascade.features import parse_feature_selection
    from cascade.pipeline import Stage
    from cascade.project.native import save_cascade
    from cascade.training import TrainingImage, fit

    with h5py.File(volume, "r") as f:
        crop = f["data"][:64, :128, :128]
    truth = np.where(crop > 100, 1, 2).astype(np.uint8)
    labels = np.where(np.random.default_rng(0).random(truth.shape) < 0.01, truth, 0).astype(np.uint8)
    stage = Stage(parse_feature_selection(FEATURES), ("blob", "background"))
    model = fit([TrainingImage(crop[..., None], "zyxc", (labels,))], [stage], trees=10, seed=0)
    save_cascade(model, path)


def run(project: Path, volume: Path, fmt: str, workdir: Path) -> tuple[float, float]:
    """Run one export under /usr/bin/time -v; return (wall seconds, peak RSS in MiB)."""
    command = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "cascade",
        "--headless",
        f"--project={project}",
        f"--output_format={fmt}",
        "--export_source=Probabilities",
        f"--output_filename_format={workdir}/out_{{result_type}}",
        f"{volume}/data",
    ]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{fmt} failed:\n{proc.stderr[-2000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    assert peak is not None, proc.stderr
    return seconds, int(peak.group(1)) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", type=int, nargs=3, default=[512, 1024, 1024], metavar=("Z", "Y", "X"))
    parser.add_argument("--formats", nargs="+", default=["compressed hdf5", "zarr"])
    parser.add_argument("--workdir", help="where to put the volume and outputs (default: a temp folder)")
    args = parser.parse_args()
    shape = tuple(args.shape)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="cascade-export-memory-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        volume, project = workdir / "volume.h5", workdir / "blobs.cascade"
        if not volume.exists():
            make_volume(volume, shape)
        make_project(volume, project)
        rows = []
        for fmt in args.formats:
            seconds, peak = run(project, volume, fmt, workdir)
            rows.append((fmt, seconds, peak))
            print(f"  {fmt}: {seconds:.0f} s, peak RSS {peak:.0f} MiB", file=sys.stderr)
            for output in workdir.glob("out_*"):
                shutil.rmtree(output) if output.is_dir() else output.unlink()
        voxels = int(np.prod(shape))
        print(
            f"input {shape[2]} x {shape[1]} x {shape[0]} (x y z) uint8 = {voxels / 2**20:.0f} MiB; output "
            f"float32 x 2 classes = {8 * voxels / 2**30:.1f} GiB; 1 stage, "
            f"{sum(len(v) for v in FEATURES['features'].values())} features, 10 trees, all cores"
        )
        print(f"{'output format':>16} {'time s':>7} {'Mvox/s':>7} {'peak RSS MiB':>13}")
        for fmt, seconds, peak in rows:
            print(f"{fmt:>16} {seconds:7.0f} {voxels / 1e6 / seconds:7.2f} {peak:13.0f}")
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
