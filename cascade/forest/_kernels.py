"""Numba kernels of the compact layout: building it, and the float walk of out-of-bag sums.

Prediction uses :mod:`cascade.forest._lanes` (integer keys, branch-free lanes); this module
checks and orders a forest's nodes (``preorder_split_nodes``, ``leaf_table_rows``) and walks
single trees for the out-of-bag probabilities of training (``tree_sum_rows``).

Layout (built once per forest by ``_layout.compact_layout``):

- ``nodes``: int32, 4 entries per split node: feature column, threshold (the float32 bits;
  ``nodes_f`` is a float32 view of the same buffer), left child, right child. The split nodes of
  each tree are stored in depth-first preorder, so a left child usually shares its parent's
  cache line.
- A child reference ``ref >= 0`` is the offset of the child's record in ``nodes`` (node index
  times 4); ``ref < 0`` is a leaf, and ``~ref`` is its row in the leaf table ``leaves``
  (float64, one row per leaf distribution; one-hot leaves share the first ``n_outputs`` rows).
- ``roots``: one reference per tree (a tree that is a single leaf has a negative root).

Rule: go left when ``x[feature] < threshold``, right otherwise (a NaN goes right), as in
:class:`~cascade.forest.packed.PackedForest`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "leaf_table_rows",
    "preorder_split_nodes",
    "tree_sum_rows",
]

# Status codes of ``preorder_split_nodes``.
OK = 0
BAD_ROOT = 1
BAD_CHILD = 2
REVISITED = 3
BAD_FEATURE = 4


@njit(nogil=True, cache=True, inline="always")
def _step(xf, row, nodes, nodes_f, ref):  # type: ignore[no-untyped-def]
    """One step down a tree: the reference of the child that pixel ``row`` goes to."""
    u = np.uint64(ref)
    x = xf[np.uint64(row + nodes[u])]
    left = nodes[u + np.uint64(2)]
    right = nodes[u + np.uint64(3)]
    return right if not (x < nodes_f[u + np.uint64(1)]) else left


@njit(nogil=True, cache=True, inline="always")
def _add_leaf(acc, k, leaves, leaf):  # type: ignore[no-untyped-def]
    for c in range(leaves.shape[1]):
        acc[k, c] += leaves[leaf, c]


@njit(nogil=True, cache=True, inline="always")
def _walk(xf, row, nodes, nodes_f, ref):  # type: ignore[no-untyped-def]
    while ref >= 0:
        ref = _step(xf, row, nodes, nodes_f, ref)
    return ~ref


@njit(nogil=True, cache=True)
def tree_sum_rows(x, nodes, nodes_f, root, leaves, rows, acc):  # type: ignore[no-untyped-def]
    """Add one tree's leaf distribution for the pixels ``rows`` of C-contiguous ``x`` to ``acc[rows]``."""
    nf = x.shape[1]
    xf = x.reshape(-1)
    for k in range(rows.shape[0]):
        p = rows[k]
        _add_leaf(acc, p, leaves, _walk(xf, p * nf, nodes, nodes_f, root))


@njit(nogil=True, cache=True)
def preorder_split_nodes(left, right, feature, roots, n_features):  # type: ignore[no-untyped-def]
    """Split nodes reachable from ``roots``, tree by tree in depth-first preorder (left first).

    Checks that every tree is a tree: children in range, no node reached twice (which also
    rules out cycles), both children or none, feature in ``[0, n_features)`` at split nodes.

    Returns
    -------
    order : int64 array
        Node indices of the split nodes, in layout order.
    status : int
        ``OK`` or one of the error codes of this module.
    where : int
        The offending tree (``BAD_ROOT``) or node (other codes).
    """
    n = left.shape[0]
    order = np.empty(n, np.int64)
    seen = np.zeros(n, np.bool_)
    stack = np.empty(2 * n + 2, np.int64)
    k = 0
    for t in range(roots.shape[0]):
        if roots[t] < 0 or roots[t] >= n:
            return order[:0], BAD_ROOT, t
        top = 0
        stack[0] = roots[t]
        while top >= 0:
            node = stack[top]
            top -= 1
            if seen[node]:
                return order[:0], REVISITED, node
            seen[node] = True
            lo, hi = left[node], right[node]
            if lo < 0 and hi < 0:
                continue
            if lo < 0 or hi < 0 or lo >= n or hi >= n:
                return order[:0], BAD_CHILD, node
            if feature[node] < 0 or feature[node] >= n_features:
                return order[:0], BAD_FEATURE, node
            order[k] = node
            k += 1
            stack[top + 1] = hi
            stack[top + 2] = lo
            top += 2
    return order[:k], OK, 0


@njit(nogil=True, cache=True)
def leaf_table_rows(value, leaf_nodes):  # type: ignore[no-untyped-def]
    """Leaf-table row of each leaf node: its class if one-hot, else a new row after the one-hot rows.

    Parameters
    ----------
    value : float array, shape (n_nodes, n_outputs)
    leaf_nodes : int64 array
        Leaf node indices, in the order their new rows are numbered.
    """
    n_outputs = value.shape[1]
    row_of = np.empty(leaf_nodes.shape[0], np.int64)
    n_other = 0
    for j in range(leaf_nodes.shape[0]):
        hot = -1
        n_nonzero = 0
        for c in range(n_outputs):
            v = value[leaf_nodes[j], c]
            if v != 0.0:
                n_nonzero += 1
                if v == 1.0:
                    hot = c
        if n_nonzero == 1 and hot >= 0:
            row_of[j] = hot
        else:
            row_of[j] = n_outputs + n_other
            n_other += 1
    return row_of
