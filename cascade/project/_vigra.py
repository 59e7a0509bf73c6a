"""Convert the vigra random forests stored in an ilastik project into one :class:`PackedForest`.

Layout of one stored tree (``ClassifierForests/ForestNNNN/Tree_<k>``), as vigra writes it:

- ``topology`` (int32): ``[n_features, n_classes, node, node, ...]``, the root at index 2.
  A split node is five ints ``[0, param_addr, left, right, column]`` (``left``/``right`` are
  positions in ``topology``); a constant-probability leaf is two ints ``[0x40000000, param_addr]``.
- ``parameters`` (float64): a split's threshold is ``parameters[param_addr + 1]`` (go left if
  ``x[column] < threshold``); a leaf holds ``[weight, p_1, ..., p_n_classes]``.

Leaf column ``j`` belongs to the forest's ``j``-th known label (label values 1..N); cascade maps
it to output channel ``label - 1``. Leaves are normalised to sum 1 and never weighted by their
sample count: that is what ilastik's prediction does.
"""

from __future__ import annotations

import h5py
import numpy as np

from ..errors import ProjectError
from ..forest import PackedForest
from ._h5 import numbered, read_stored

__all__ = ["LEAF_NODE", "SPLIT_NODE", "float32_thresholds", "read_vigra_forests"]

#: vigra's ``i_ThresholdNode``: an axis-aligned split.
SPLIT_NODE = 0
#: vigra's ``e_ConstProbNode`` (``LeafNodeTag | 0``): a leaf holding a class distribution.
LEAF_NODE = 0x40000000
_ROOT = 2

_TreeArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def float32_thresholds(thresholds: np.ndarray) -> np.ndarray:
    """Round float64 split thresholds up to float32 so that float32 decisions do not change.

    For every float32 ``x``, ``x < t`` (compared in float64) equals ``x < t32`` where ``t32``
    is the smallest float32 that is ``>= t``.

    Parameters
    ----------
    thresholds : ndarray of float64

    Returns
    -------
    ndarray of float32, same shape
    """
    t = np.asarray(thresholds, dtype=np.float64)
    with np.errstate(over="ignore"):
        t32 = t.astype(np.float32)
    low = t32.astype(np.float64) < t
    t32[low] = np.nextafter(t32[low], np.float32(np.inf))
    return t32


def _walk(topology: list[int], where: str) -> list[int]:
    """Topology positions of the nodes reachable from the root, depth first, left child first."""
    order: list[int] = []
    seen: set[int] = set()
    stack = [_ROOT]
    size = len(topology)
    while stack:
        pos = stack.pop()
        if pos in seen:
            continue
        if not _ROOT <= pos < size - 1:
            raise ProjectError(f"{where}: node position {pos} is outside the topology (length {size})")
        seen.add(pos)
        order.append(pos)
        kind = topology[pos]
        if kind == SPLIT_NODE:
            if pos + 4 >= size:
                raise ProjectError(f"{where}: split node at {pos} is truncated")
            stack.extend((topology[pos + 3], topology[pos + 2]))
        elif kind != LEAF_NODE:
            raise ProjectError(
                f"{where}: unsupported vigra node type {kind:#x} at {pos}; only threshold splits (0) "
                f"and constant-probability leaves ({LEAF_NODE:#x}) are supported"
            )
    return order


def _convert_tree(
    topology: np.ndarray, parameters: np.ndarray, channels: np.ndarray, n_outputs: int, where: str
) -> _TreeArrays:
    """One vigra tree as (feature, threshold64, left, right, value) with tree-local indices."""
    topo = np.asarray(topology, dtype=np.int64).ravel()
    if len(topo) < _ROOT + 2:
        raise ProjectError(f"{where}: topology has {len(topo)} entries, too short for a tree")
    n_features, n_classes = int(topo[0]), int(topo[1])
    if n_classes != len(channels):
        raise ProjectError(f"{where}: tree has {n_classes} classes, the forest knows {len(channels)} labels")
    pos = np.array(_walk(topo.tolist(), where), dtype=np.int64)
    n = len(pos)
    local = np.full(len(topo), -1, dtype=np.int64)
    local[pos] = np.arange(n)
    split = topo[pos] == SPLIT_NODE
    addr = topo[pos + 1]
    feature = np.full(n, -1, dtype=np.int32)
    threshold = np.zeros(n, dtype=np.float64)
    left = np.full(n, -1, dtype=np.int32)
    right = np.full(n, -1, dtype=np.int32)
    value = np.zeros((n, n_outputs), dtype=np.float64)

    at, column, t_addr = pos[split], topo[pos[split] + 4], addr[split] + 1
    if ((column < 0) | (column >= n_features) | (t_addr < 1) | (t_addr >= len(parameters))).any():
        raise ProjectError(f"{where}: a split node has a bad column or parameter address")
    feature[split], threshold[split] = column, parameters[t_addr]
    left[split], right[split] = local[topo[at + 2]], local[topo[at + 3]]

    l_addr = addr[~split]
    if ((l_addr < 0) | (l_addr + n_classes >= len(parameters))).any():
        raise ProjectError(f"{where}: a leaf has a bad parameter address")
    probs = parameters[l_addr[:, None] + 1 + np.arange(n_classes)]
    totals = probs.sum(axis=1)
    if not (np.isfinite(totals).all() and (totals > 0).all() and (probs >= 0).all()):
        raise ProjectError(f"{where}: a leaf has no valid class distribution")
    value[np.ix_(np.flatnonzero(~split), channels)] = probs / totals[:, None]
    return feature, threshold, left, right, value


def _label_channels(labels: np.ndarray, n_outputs: int, where: str) -> np.ndarray:
    labels = np.asarray(labels).astype(np.int64).ravel()
    if len(labels) == 0 or labels.min() < 1 or labels.max() > n_outputs or len(set(labels)) != len(labels):
        raise ProjectError(
            f"{where}: forest labels {labels.tolist()} do not fit the project's {n_outputs} label class(es)"
        )
    return labels - 1


def read_vigra_forests(
    group: h5py.Group, known_labels: np.ndarray, n_outputs: int, where: str
) -> PackedForest | None:
    """Read every ``Forest*/Tree_*`` under ``group`` into one :class:`PackedForest`.

    Parameters
    ----------
    group : h5py.Group
        The ``ClassifierForests`` group.
    known_labels : ndarray of int
        ``ClassifierForests/known_labels``; used for a forest without ``_ext_param/labels``.
    n_outputs : int
        Number of output channels, ``len(LabelNames)``.
    where : str
        Prefix for error messages (file and group).

    Returns
    -------
    PackedForest or None
        None when the group holds no tree.
    """
    parts: list[_TreeArrays] = []
    n_features: set[int] = set()
    for forest_key in numbered(list(group.keys()), "Forest"):
        forest = group[forest_key]
        labels = known_labels
        if "_ext_param/labels" in forest:
            labels = read_stored(forest["_ext_param/labels"], f"{where}/{forest_key}/_ext_param/labels")
        channels = _label_channels(labels, n_outputs, f"{where}/{forest_key}")
        for tree_key in numbered(list(forest.keys()), "Tree_"):
            tree_where = f"{where}/{forest_key}/{tree_key}"
            # one path lookup per dataset: each h5py lookup costs as much as a small read
            topology = read_stored(forest[f"{tree_key}/topology"], f"{tree_where}/topology")
            parameters = read_stored(forest[f"{tree_key}/parameters"], f"{tree_where}/parameters").astype(
                np.float64
            )
            parts.append(_convert_tree(topology, parameters, channels, n_outputs, tree_where))
            n_features.add(int(topology[0]))
    if not parts:
        return None
    if len(n_features) != 1:
        raise ProjectError(f"{where}: trees disagree on the feature count ({sorted(n_features)})")
    return _pack(parts, n_features.pop())


def _pack(parts: list[_TreeArrays], n_features: int) -> PackedForest:
    """Concatenate tree-local arrays, shifting child indices to global node numbers."""
    sizes = np.array([len(p[0]) for p in parts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    left = np.concatenate(
        [np.where(p[2] >= 0, p[2] + off, -1) for p, off in zip(parts, offsets, strict=True)]
    )
    right = np.concatenate(
        [np.where(p[3] >= 0, p[3] + off, -1) for p, off in zip(parts, offsets, strict=True)]
    )
    return PackedForest(
        feature=np.concatenate([p[0] for p in parts]).astype(np.int32),
        threshold=float32_thresholds(np.concatenate([p[1] for p in parts])),
        left=left.astype(np.int32),
        right=right.astype(np.int32),
        value=np.concatenate([p[4] for p in parts]).astype(np.float32),
        roots=offsets,
        n_features=n_features,
    )
