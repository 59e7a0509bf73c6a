"""Peak memory of computing (and discarding) ilastik's full 3D feature set over a large volume.

The volume is generated lazily block by block, the features of each block are computed and
reduced to one number, so nothing but the blocks in flight is ever in memory. Peak RSS is read
from the kernel after the run; it should not depend on the volume size.

    python benchmarks/memory.py --size 1024            # the issue's 1024^3 uint8 volume
    python benchmarks/memory.py --size 256 --size 512  # quicker: shows RSS does not grow
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import numpy as np


def child(size: int, threads: int) -> None:
    import dask
    import dask.array as da

    from cascade._malloc import tune_malloc
    from cascade.features import FeatureSelection, compute_features

    tune_malloc()
    volume = da.random.default_rng(0).integers(0, 255, (size,) * 3, chunks=64, dtype=np.uint8)[..., None]
    features = compute_features(volume, FeatureSelection.ilastik_default(), axes="zyxc")
    checksum = features.map_blocks(
        lambda b: np.asarray(b[:1, :1, :1, :1], np.float64), chunks=(1, 1, 1, 1), dtype=np.float64
    ).sum()
    start = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=threads):
        checksum.compute()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{size}^3 uint8, {features.shape[-1]} feature channels, {features.nbytes / 2**30:.0f} GiB of features "
        f"in {features.numblocks[0] ** 3} blocks: {seconds:.0f} s ({size**3 / 1e6 / seconds:.2f} Mvox/s), "
        f"peak RSS {peak:.0f} MB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, action="append")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    sizes = args.size or [1024]
    if args.child:
        child(sizes[0], args.threads)
        return
    for size in sizes:
        subprocess.run(
            [sys.executable, __file__, "--child", "--size", str(size), "--threads", str(args.threads)],
            check=True,
        )


if __name__ == "__main__":
    main()
