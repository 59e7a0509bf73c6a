"""Global connected components at scale: time and peak RSS, blockwise against whole-image scipy.

The volume (z, 1024, 1024) holds a lattice of balls (radius 4, spacing 12: ~163k objects at
z = 256, many crossing chunk borders), generated lazily chunk by chunk, so the exact object
count is known. Each run happens in a child process so that its peak RSS is its own:

- ``blockwise``: ``cascade.objects.label_components`` (one eager scan, then the lazy labels
  computed chunk by chunk and reduced to their maximum id);
- ``whole``: the whole volume in RAM and ``scipy.ndimage.label`` (what ilastik does per time point).

    python benchmarks/objects_components.py                 # z = 128 and 256, both methods
    python benchmarks/objects_components.py --z 256 --method blockwise
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import numpy as np

SPACING, RADIUS, CHUNKS = 12, 4, (128, 256, 256)


def _balls(block_info: dict | None = None) -> np.ndarray:  # type: ignore[type-arg]
    assert block_info is not None
    location = block_info[None]["array-location"]
    z, y, x = np.ogrid[tuple(slice(a, b) for a, b in location)]

    def offset(c: np.ndarray) -> np.ndarray:
        return (c + SPACING // 2) % SPACING - SPACING // 2

    return (offset(z) ** 2 + offset(y) ** 2 + offset(x) ** 2) <= RADIUS * RADIUS


def child(z: int, method: str, threads: int) -> None:
    import dask
    import dask.array as da

    shape = (z, 1024, 1024)
    volume = da.map_blocks(
        _balls, chunks=da.core.normalize_chunks(CHUNKS, shape), dtype=bool, meta=np.empty((0, 0, 0), bool)
    )
    expected = len(range(0, z, SPACING)) * len(range(0, 1024, SPACING)) ** 2
    start = time.perf_counter()
    if method == "blockwise":
        from cascade.objects import label_components

        with dask.config.set(num_workers=threads):
            objects = label_components(volume, "zyx")
            scanned = time.perf_counter() - start
            top = objects.labels.map_blocks(
                lambda b: np.full((1, 1, 1), b.max(), np.int64), chunks=(1, 1, 1), dtype=np.int64
            )
            found = int(top.max().compute())
        detail = f"scan {scanned:.1f} s"
    else:
        from scipy import ndimage

        whole = volume.compute(scheduler="threads", num_workers=threads)
        _, found = ndimage.label(whole, ndimage.generate_binary_structure(3, 1))
        detail = "scipy.ndimage.label"
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    voxels = float(np.prod(shape))
    status = "ok" if found == expected else f"WRONG (expected {expected})"
    print(
        f"{method:9s} z={z:4d} objects={found:7d} {status}  {seconds:6.1f} s  "
        f"{voxels / seconds / 1e6:6.1f} Mvoxel/s  peak RSS {rss:7.0f} MB  ({detail})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--z", type=int, action="append", help="z extent (repeatable; default 128 and 256)")
    parser.add_argument("--method", choices=("blockwise", "whole", "both"), default="both")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.z or [128, 256]
    if args.child:
        child(sizes[0], args.method, args.threads)
        return
    methods = ("blockwise", "whole") if args.method == "both" else (args.method,)
    for z in sizes:
        for method in methods:
            command = [sys.executable, __file__, "--child", "--z", str(z), "--method", method]
            subprocess.run([*command, "--threads", str(args.threads)], check=True)


if __name__ == "__main__":
    main()
