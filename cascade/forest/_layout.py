"""Check a :class:`PackedForest` and convert it once to the compact layout the kernels walk.

The compact layout is described in :mod:`cascade.forest._kernels` (float thresholds, used for
out-of-bag sums) and :mod:`cascade.forest._lanes` (the same records with integer keys, used for
prediction, with the small trees also as bit masks: :mod:`cascade.forest._masks`). It is cached per forest
object (weakly, so it goes away with the forest): a forest is converted on its first
prediction, and chunk after chunk reuses it. Treat a forest's arrays as read-only once it has
been used for prediction.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import ProjectError
from . import _kernels, _lanes
from ._masks import MaskLayout, mask_layout
from .packed import PackedForest

__all__ = ["CompactForest", "compact_layout"]

_STATUS_MESSAGES = {
    _kernels.BAD_ROOT: "tree {where} has a root index outside the node arrays",
    _kernels.BAD_CHILD: "node {where} has a child index outside the node arrays, or only one child",
    _kernels.REVISITED: "node {where} is reached twice (a cycle, or a node shared between trees)",
    _kernels.BAD_FEATURE: "split node {where} tests a feature outside [0, n_features={n_features})",
}
_MAX_SPLIT_NODES = (2**31 - 1) // 4
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass(frozen=True, eq=False)
class CompactForest:
    """A forest in the layout of :mod:`cascade.forest._kernels`.

    Attributes
    ----------
    nodes : ndarray of int32, shape (4 * n_split_nodes,)
        Records ``[feature, threshold bits, left ref, right ref]``.
    nodes_f : ndarray of float32, shape (4 * n_split_nodes,)
        A float32 view of ``nodes`` (the thresholds are at offsets ``4 * i + 1``).
    keys : ndarray of int32, shape (4 * (n_split_nodes + n_leaf_rows),)
        ``nodes`` with integer threshold keys and leaves as sink records (see
        :mod:`cascade.forest._lanes`).
    key_roots : ndarray of int64, shape (n_trees,)
        Each tree's root in ``keys``.
    sink : int
        Offset in ``keys`` of the first sink record.
    roots : ndarray of int64, shape (n_trees,)
        Reference of each tree's root (negative: the tree is one leaf).
    leaves : ndarray of float64, shape (n_leaf_rows, n_outputs)
        Leaf distributions; rows ``0 .. n_outputs-1`` are the one-hot rows.
    masks : MaskLayout
        The small trees again, as bit masks (:mod:`cascade.forest._masks`).
    n_features : int
        Feature columns expected.
    """

    nodes: npt.NDArray[np.int32]
    nodes_f: npt.NDArray[np.float32]
    keys: npt.NDArray[np.int32]
    key_roots: npt.NDArray[np.int64]
    sink: int
    roots: npt.NDArray[np.int64]
    leaves: npt.NDArray[np.float64]
    masks: MaskLayout
    n_features: int

    @property
    def n_outputs(self) -> int:
        """Number of output channels."""
        return int(self.leaves.shape[1])

    @property
    def one_hot(self) -> bool:
        """Whether every leaf is one class (the leaf table holds only the one-hot rows)."""
        return bool(self.leaves.shape[0] == self.leaves.shape[1])


_CACHE: weakref.WeakKeyDictionary[PackedForest, CompactForest] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def compact_layout(forest: PackedForest) -> CompactForest:
    """The compact layout of ``forest``, built on first use and then cached.

    Raises
    ------
    ProjectError
        If the forest's arrays are inconsistent (shapes, dtypes, indices, cycles).
    """
    if not isinstance(forest, PackedForest):
        raise ProjectError(f"expected a PackedForest, got {type(forest).__name__}")
    compact = _CACHE.get(forest)
    if compact is None:
        with _CACHE_LOCK:  # one build per forest, even when many chunks start at once
            compact = _CACHE.get(forest)
            if compact is None:
                compact = _build(forest)
                _CACHE[forest] = compact
    return compact


def _check_arrays(forest: PackedForest) -> None:
    """Shapes and dtypes of a packed forest; the index checks come in ``_split_order``."""
    n_nodes = np.shape(forest.feature)[0] if np.ndim(forest.feature) == 1 else -1
    for name in ("feature", "threshold", "left", "right"):
        array = getattr(forest, name)
        if not isinstance(array, np.ndarray) or array.shape != (n_nodes,):
            raise ProjectError(
                f"PackedForest.{name} must be a 1-D array with one entry per node ({n_nodes}), "
                f"got shape {np.shape(array)}"
            )
    for name in ("feature", "left", "right", "roots"):
        array = np.asarray(getattr(forest, name))
        if array.dtype.kind not in "iu":
            raise ProjectError(f"PackedForest.{name} must hold integers, got dtype {array.dtype}")
    if forest.threshold.dtype != np.float32:
        raise ProjectError(f"PackedForest.threshold must be float32, got dtype {forest.threshold.dtype}")
    value = np.asarray(forest.value)
    if value.ndim != 2 or value.shape[0] != n_nodes or value.shape[1] < 1 or value.dtype not in _FLOATS:
        raise ProjectError(
            f"PackedForest.value must be a float32 array of shape ({n_nodes}, n_outputs >= 1), "
            f"got {value.dtype} {value.shape}"
        )
    roots = np.asarray(forest.roots)
    if roots.ndim != 1 or roots.shape[0] < 1:
        raise ProjectError(
            f"PackedForest.roots must be a 1-D array of at least one tree, got shape {roots.shape}"
        )
    if isinstance(forest.n_features, bool) or not isinstance(forest.n_features, (int, np.integer)):
        raise ProjectError(f"PackedForest.n_features must be an int, got {forest.n_features!r}")
    if forest.n_features < 1:
        raise ProjectError(f"PackedForest.n_features must be >= 1, got {forest.n_features}")


def _split_order(forest: PackedForest) -> npt.NDArray[np.int64]:
    """Split nodes in layout order, after checking every tree's structure."""
    order, status, where = _kernels.preorder_split_nodes(
        forest.left.astype(np.int64),
        forest.right.astype(np.int64),
        forest.feature.astype(np.int64),
        np.asarray(forest.roots, dtype=np.int64),
        int(forest.n_features),
    )
    if status != _kernels.OK:
        message = _STATUS_MESSAGES[status].format(where=where, n_features=forest.n_features)
        raise ProjectError(f"invalid PackedForest: {message}")
    if order.shape[0] > _MAX_SPLIT_NODES:
        raise ProjectError(
            f"forest has {order.shape[0]} split nodes, more than the {_MAX_SPLIT_NODES} supported"
        )
    return np.asarray(order, dtype=np.int64)


def _leaf_table(
    value: npt.NDArray[np.floating], leaf_nodes: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Leaf table (the one-hot rows first) and the table row of each node in ``leaf_nodes``."""
    n_outputs = value.shape[1]
    row_of = _kernels.leaf_table_rows(value, leaf_nodes)
    others = leaf_nodes[row_of >= n_outputs]
    table = np.concatenate([np.eye(n_outputs, dtype=np.float64), value[others].astype(np.float64)])
    return table, row_of


def _key_layout(
    records: npt.NDArray[np.int32], roots: npt.NDArray[np.int64], n_rows: int
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64], int]:
    """The records of :mod:`cascade.forest._lanes`: threshold keys, leaves as sink records."""
    sink = 4 * records.shape[0]
    if sink + 4 * n_rows > 2**31 - 1:
        raise ProjectError(f"forest has {records.shape[0]} split nodes and {n_rows} leaf rows, too many")
    keys = records.copy()
    keys[:, 1] = _lanes.threshold_keys(np.ascontiguousarray(records.view(np.float32)[:, 1]))
    for side in (2, 3):
        leaf = keys[:, side] < 0
        keys[leaf, side] = sink + 4 * ~keys[leaf, side]
    key_roots = np.where(roots < 0, sink + 4 * ~roots, roots).astype(np.int64)
    return np.concatenate([keys, _lanes.sink_records(n_rows, sink)]).reshape(-1), key_roots, sink


def _build(forest: PackedForest) -> CompactForest:
    _check_arrays(forest)
    order = _split_order(forest)
    left = forest.left.astype(np.int64)
    right = forest.right.astype(np.int64)
    roots = np.asarray(forest.roots, dtype=np.int64)
    is_split = np.zeros(left.shape[0], dtype=bool)
    is_split[order] = True
    children = np.concatenate([left[order], right[order], roots])
    leaf_nodes = children[~is_split[children]]
    table, row_of = _leaf_table(np.asarray(forest.value), leaf_nodes)
    ref = np.zeros(left.shape[0], dtype=np.int64)
    ref[order] = 4 * np.arange(order.shape[0], dtype=np.int64)
    ref[leaf_nodes] = ~row_of
    records = np.empty((order.shape[0], 4), dtype=np.int32)
    records[:, 0] = forest.feature[order]
    records.view(np.float32)[:, 1] = forest.threshold[order]
    records[:, 2] = ref[left[order]]
    records[:, 3] = ref[right[order]]
    nodes = records.reshape(-1)
    keys, key_roots, sink = _key_layout(records, ref[roots], table.shape[0])
    return CompactForest(
        nodes=nodes,
        nodes_f=nodes.view(np.float32),
        keys=keys,
        key_roots=key_roots,
        sink=sink,
        roots=ref[roots],
        leaves=table,
        masks=mask_layout(keys, key_roots, sink, table.shape[1]),
        n_features=int(forest.n_features),
    )
