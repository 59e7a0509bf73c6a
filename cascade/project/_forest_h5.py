"""A :class:`~cascade.forest.PackedForest` in an HDF5 group: plain arrays, checked when read back.

Layout: datasets ``feature, threshold, left, right, value, roots`` (gzip) and the attribute
``n_features``. Used by the pixel stages and the object stage of a ``.cascade`` project.
"""

from __future__ import annotations

import h5py
import numpy as np

from ..errors import ProjectError
from ..forest import PackedForest

__all__ = ["FOREST_ARRAYS", "read_forest", "write_forest"]

#: The forest's arrays and the dtype each is stored (and must be read back) with.
FOREST_ARRAYS = {
    "feature": np.int32,
    "threshold": np.float32,
    "left": np.int32,
    "right": np.int32,
    "value": np.float32,
    "roots": np.int64,
}


def write_forest(group: h5py.Group, forest: PackedForest) -> None:
    """Store ``forest`` in ``group`` (a new, empty group).

    Parameters
    ----------
    group : h5py.Group
        The forest's group.
    forest : PackedForest
        The forest.
    """
    group.attrs["n_features"] = forest.n_features
    for name, dtype in FOREST_ARRAYS.items():
        group.create_dataset(name, data=np.asarray(getattr(forest, name), dtype), compression="gzip")


def read_forest(group: h5py.Group, n_classes: int) -> PackedForest:
    """Read a forest written by :func:`write_forest` and check that it is one.

    Parameters
    ----------
    group : h5py.Group
        The forest's group.
    n_classes : int
        The classes the forest must give probabilities for.

    Returns
    -------
    PackedForest
        The forest.

    Raises
    ------
    ProjectError
        Arrays of the wrong dtype or shape, child indices out of range, or leaves that are not
        class distributions.
    """
    arrays = {}
    for name, dtype in FOREST_ARRAYS.items():
        data = group[name][()]
        if data.dtype != np.dtype(dtype):
            raise ProjectError(f"forest array {name!r} has dtype {data.dtype}, expected {np.dtype(dtype)}")
        arrays[name] = data
    n_nodes = arrays["feature"].shape[0]
    n_features = int(group.attrs["n_features"])
    consistent = (
        all(arrays[k].shape == (n_nodes,) for k in ("threshold", "left", "right"))
        and arrays["value"].shape == (n_nodes, n_classes)
        and arrays["roots"].ndim == 1
        and np.all((arrays["roots"] >= 0) & (arrays["roots"] < n_nodes))
        and np.all((arrays["left"] >= -1) & (arrays["left"] < n_nodes))
        and np.all((arrays["right"] >= -1) & (arrays["right"] < n_nodes))
        and np.all(arrays["feature"] < n_features)
    )
    if not consistent:
        raise ProjectError("forest arrays are inconsistent (node counts, class count or child indices)")
    _check_leaves(arrays["left"], arrays["right"], arrays["value"])
    return PackedForest(n_features=n_features, **arrays)


def _check_leaves(left: np.ndarray, right: np.ndarray, value: np.ndarray) -> None:
    """Every leaf must hold a class distribution (finite, >= 0, summing to 1), as the .ilp reader requires."""
    leaf = left < 0
    if np.any(leaf != (right < 0)):
        raise ProjectError("forest arrays are inconsistent (a node has one child)")
    rows = value[leaf].astype(np.float64)
    valid = np.isfinite(rows).all(axis=1) & (rows >= 0).all(axis=1)
    valid &= np.abs(rows.sum(axis=1) - 1.0) <= 1e-3
    if not valid.all():
        bad = int(np.flatnonzero(leaf)[np.flatnonzero(~valid)[0]])
        raise ProjectError(
            f"a forest leaf (node {bad}) holds {rows[~valid][0].tolist()}, not a class distribution "
            "(finite values >= 0 summing to 1)"
        )
