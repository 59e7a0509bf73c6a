"""Feature throughput: cascade vs fastfilters2 vs scikit-image, side by side in one run.

Each measurement runs in its own process, so its peak RSS is its own. Prints a table with
megapixels (megavoxels) per second, the speed ratio to cascade at the same thread count,
and peak RSS.

    python benchmarks/features.py              # 2048^2 image and 256^3 volume
    python benchmarks/features.py --quick      # 1024^2 and 128^3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def _image(shape: tuple[int, ...]) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(0)
    smooth = ndimage.gaussian_filter(rng.random(shape, dtype=np.float32), 2.0)
    return (255 * (smooth - smooth.min()) / (np.ptp(smooth) + 1e-9)).astype(np.uint8)


def run_cascade(shape: tuple[int, ...], threads: int) -> tuple[float, int]:
    import dask

    from cascade.features import FeatureSelection, compute_features

    sel = FeatureSelection.ilastik_default()
    image = _image(shape)[..., None]
    axes = "yxc" if len(shape) == 2 else "zyxc"
    compute_features(image[tuple(slice(0, 48) for _ in shape)], sel, axes=axes).compute(scheduler="sync")

    def discard(block: np.ndarray) -> np.ndarray:
        return np.zeros((1,) * block.ndim, np.float32)

    # the blocks a user gets: compute_features' default (feature_chunks: 512^2 in 2D, 64^3 in 3D)
    feats = compute_features(image, sel, axes=axes)
    small = feats.map_blocks(discard, chunks=(1,) * feats.ndim, dtype=np.float32)
    start = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=threads):
        small.compute()
    return time.perf_counter() - start, feats.shape[-1]


def run_fastfilters2(shape: tuple[int, ...], threads: int) -> tuple[float, int]:
    """fastfilters2's 7 filters at ilastik's 7 default scales (49 channels), 2D only.

    It is not thread-safe, so 2 "threads" are 2 processes on two halves (with halo).
    """
    import fastfilters2 as ff

    scales = (0.3, 0.7, 1.0, 1.6, 3.5, 5.0, 10.0)
    image = _image(shape).astype(np.float32)
    if threads == 1:
        start = time.perf_counter()
        for s in scales:
            ff.compute_filters(image, s)
        return time.perf_counter() - start, 7 * len(scales)
    half = shape[0] // 2
    halo = 40
    parts = [image[: half + halo], image[half - halo :]]
    np.save("/tmp/ff2_part0.npy", parts[0])
    np.save("/tmp/ff2_part1.npy", parts[1])
    code = (
        "import numpy as np, fastfilters2 as ff, sys;"
        "a=np.load(sys.argv[1]);"
        "[ff.compute_filters(a, s) for s in (0.3, 0.7, 1.0, 1.6, 3.5, 5.0, 10.0)]"
    )
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", code, f"/tmp/ff2_part{i}.npy"]) for i in range(2)]
    for p in procs:
        p.wait()
    return time.perf_counter() - start, 7 * len(scales)


def run_skimage(shape: tuple[int, ...], threads: int) -> tuple[float, int]:
    from skimage.feature import multiscale_basic_features

    image = _image(shape).astype(np.float32)
    start = time.perf_counter()
    out = multiscale_basic_features(image, workers=threads)
    return time.perf_counter() - start, out.shape[-1]


RUNNERS = {"cascade": run_cascade, "fastfilters2": run_fastfilters2, "scikit-image": run_skimage}


def child(impl: str, shape: tuple[int, ...], threads: int) -> None:
    if impl == "cascade":
        from cascade._malloc import tune_malloc

        tune_malloc()
    seconds, channels = RUNNERS[impl](shape, threads)
    print(json.dumps({"seconds": seconds, "channels": channels}))


def measure(impl: str, shape: tuple[int, ...], threads: int, env: dict[str, str] | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", impl, "x".join(map(str, shape)), str(threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env={**os.environ, **(env or {})}, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("IMPL", "SHAPE", "THREADS"))
    args = parser.parse_args()
    if args.child:
        impl, shape, threads = args.child
        child(impl, tuple(int(v) for v in shape.split("x")), int(threads))
        return
    edge2, edge3 = (1024, 128) if args.quick else (2048, 256)
    tuned = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}
    plan = [
        ((edge2, edge2), "cascade", None),
        ((edge2, edge2), "fastfilters2", None),
        ((edge2, edge2), "fastfilters2 (tuned malloc)", tuned),
        ((edge2, edge2), "scikit-image", None),
        ((edge3,) * 3, "cascade", None),
        ((edge3,) * 3, "scikit-image", None),
    ]
    rows = []
    for shape, label, env in plan:
        impl = label.split(" ")[0]
        for threads in (1, 2):
            r = measure(impl, shape, threads, env)
            mpx = float(np.prod(shape)) / 1e6 / r["seconds"]
            rows.append((shape, label, threads, r["channels"], r["seconds"], mpx, r["peak_mb"]))
            print(f"  measured {label} {shape} x{threads}: {r['seconds']:.2f} s", file=sys.stderr)
    base = {(shape, threads): mpx for shape, label, threads, _, _, mpx, _ in rows if label == "cascade"}
    print(
        f"{'workload':>16} {'implementation':>28} {'thr':>3} {'ch':>4} {'time s':>8} "
        f"{'Mpx/s':>7} {'cascade/x':>9} {'peak MB':>8}"
    )
    for shape, label, threads, channels, seconds, mpx, peak in rows:
        ratio = base[(shape, threads)] / mpx
        print(
            f"{'x'.join(map(str, shape)):>16} {label:>28} {threads:>3} {channels:>4} {seconds:8.2f} "
            f"{mpx:7.2f} {ratio:9.2f} {peak:8.0f}"
        )
    print(
        "cascade/x > 1 means cascade is faster. fastfilters2 with 2 threads runs as 2 processes "
        "(it is not thread-safe); its peak MB is the parent's only."
    )


if __name__ == "__main__":
    main()
