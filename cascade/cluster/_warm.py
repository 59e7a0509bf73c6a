"""Get a process ready to compute: import the engine and load its numba kernels once.

A fresh worker process pays for ``import cascade.pipeline`` (numba, dask.array, zarr) and for
loading every numba kernel from numba's on-disk cache on its first block: measured 2.5-5 CPU
seconds per worker on the benchmark's 2-core machine, on the critical path of its first tasks.
:func:`warm_up` does that work once, on tiny inputs, before the tasks arrive: in the forkserver a
local cluster forks its workers from (so they start with everything loaded, see
:mod:`._preload`), or in each worker (SLURM, a running scheduler) when :mod:`._worker`'s plugin
sets it up.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["warm_up"]

_lock = threading.Lock()
_warm = False

#: Every feature at one small scale, in 3D and in 2D (scale column 2: slice by slice).
_FEATURES = {
    "GaussianSmoothing": [0.7, 1.0],
    "LaplacianOfGaussian": [0.7, 1.0],
    "GaussianGradientMagnitude": [0.7, 1.0],
    "DifferenceOfGaussians": [0.7, 1.0],
    "StructureTensorEigenvalues": [0.7, 1.0],
    "HessianOfGaussianEigenvalues": [0.7, 1.0],
}


def warm_up() -> bool:
    """Import the compute modules and run every numba kernel once on a tiny input.

    Safe to call from several threads and many times: the work is done once per process (a
    process forked after it inherits the loaded kernels). Results are thrown away.

    Returns
    -------
    bool
        True once the kernels are loaded.
    """
    global _warm
    with _lock:
        if not _warm:
            _imports()
            _features()
            _forest()
            _warm = True
    return _warm


def _imports() -> None:
    """What a prediction's tasks unpickle besides the kernels: the stage graph's functions, zarr.

    Measured 0.25 s (``cascade.pipeline``, with ``cascade.io``) and 0.3 s (zarr: the scratch folder
    and zarr inputs and outputs) on the first task of every worker, before this.
    """
    import zarr  # noqa: F401

    from ..pipeline import predict  # noqa: F401


def _features() -> None:
    """Feature blocks of a 3D and a 2D image, and a 3D one with a 2D-only scale column."""
    from ..features import compute_features, parse_feature_selection

    rng = np.random.default_rng(0)
    selection = parse_feature_selection({"features": _FEATURES, "compute_in_2d": [False, True]})
    volume = rng.integers(0, 255, (12, 12, 12, 1), dtype=np.uint8)
    compute_features(volume, selection, axes="zyxc").compute(scheduler="sync")
    plain = parse_feature_selection({"features": _FEATURES})
    image = rng.integers(0, 255, (12, 12, 1), dtype=np.uint8)
    compute_features(image, plain, axes="yxc").compute(scheduler="sync")


def _forest() -> None:
    """A two-tree forest with one-hot and with mixed leaves (both kernel paths, and its layout)."""
    from ..forest import PackedForest, predict_proba

    x = np.random.default_rng(0).random((70, 3), dtype=np.float32)
    for leaf in (1.0, 0.75):
        forest = PackedForest(
            feature=np.array([0, -1, -1, 1, -1, -1], np.int32),
            threshold=np.array([0.5, 0, 0, 0.5, 0, 0], np.float32),
            left=np.array([1, -1, -1, 4, -1, -1], np.int32),
            right=np.array([2, -1, -1, 5, -1, -1], np.int32),
            value=np.array([[0, 0], [leaf, 1 - leaf], [0, 1], [0, 0], [1, 0], [1 - leaf, leaf]], np.float32),
            roots=np.array([0, 3], np.int64),
            n_features=3,
        )
        predict_proba(forest, x)
        predict_proba(forest, np.asfortranarray(x))
