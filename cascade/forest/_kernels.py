"""Numba kernels that evaluate a forest in the compact layout of :mod:`cascade.forest._layout`.

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

Speed: one traversal step is a chain of dependent loads (node, feature value, child), so one
pixel at a time leaves the core idle (about 3x slower). ``_tree_block`` walks one tree with
eight pixels in flight ("lanes"); when a lane reaches a leaf it adds the leaf to the pixel's
sums and takes the next pixel of the block. Trees are walked one after the other over a block
of pixels, so that a tree's nodes stay in the L2 cache while the block's feature rows stream
past. All kernels release the GIL and use one thread: callers (dask) provide the parallelism.

What did not pay off on our AMD EPYC machines: branch-free lanes (selects instead of the
leaf branch; numba spills the lane state and LLVM reintroduces branches), lock-step groups
that wait for their deepest pixel, a level-by-level frontier of all pixels, loading both
children before the comparison, and lanes kept in small arrays instead of scalars.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "forest_sum_contiguous",
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


@njit(nogil=True, cache=True, inline="always")
def _refill(acc, leaves, base, m, nf, root, ref, k, nxt):  # type: ignore[no-untyped-def]
    """A lane reached leaf ``~ref`` with block pixel ``k``: add it, then take pixel ``nxt``."""
    _add_leaf(acc, k, leaves, ~ref)
    if nxt < m:
        return root, nxt, (base + nxt) * nf, nxt + 1
    return ref, -1, 0, nxt


@njit(nogil=True, cache=True)
def _drain(xf, nodes, nodes_f, leaves, acc, ref, k, row):  # type: ignore[no-untyped-def]
    if k >= 0:
        _add_leaf(acc, k, leaves, _walk(xf, row, nodes, nodes_f, ref))


@njit(nogil=True, cache=True)
def _tree_block(xf, nf, base, m, nodes, nodes_f, root, leaves, acc):  # type: ignore[no-untyped-def]
    """Add one tree's leaf distributions for block pixels ``k < m`` (rows ``base + k``) to ``acc``.

    Eight lanes are written out by hand: numba keeps scalars in registers, not small arrays.
    """
    if root < 0 or m < 8:
        for k in range(m):
            _add_leaf(acc, k, leaves, _walk(xf, (base + k) * nf, nodes, nodes_f, root))
        return
    r0 = r1 = r2 = r3 = r4 = r5 = r6 = r7 = root
    k0, k1, k2, k3, k4, k5, k6, k7 = 0, 1, 2, 3, 4, 5, 6, 7
    w0, w1, w2, w3 = base * nf, (base + 1) * nf, (base + 2) * nf, (base + 3) * nf
    w4, w5, w6, w7 = (base + 4) * nf, (base + 5) * nf, (base + 6) * nf, (base + 7) * nf
    nxt = 8
    while nxt < m:
        r0 = _step(xf, w0, nodes, nodes_f, r0)
        if r0 < 0:
            r0, k0, w0, nxt = _refill(acc, leaves, base, m, nf, root, r0, k0, nxt)
        r1 = _step(xf, w1, nodes, nodes_f, r1)
        if r1 < 0:
            r1, k1, w1, nxt = _refill(acc, leaves, base, m, nf, root, r1, k1, nxt)
        r2 = _step(xf, w2, nodes, nodes_f, r2)
        if r2 < 0:
            r2, k2, w2, nxt = _refill(acc, leaves, base, m, nf, root, r2, k2, nxt)
        r3 = _step(xf, w3, nodes, nodes_f, r3)
        if r3 < 0:
            r3, k3, w3, nxt = _refill(acc, leaves, base, m, nf, root, r3, k3, nxt)
        r4 = _step(xf, w4, nodes, nodes_f, r4)
        if r4 < 0:
            r4, k4, w4, nxt = _refill(acc, leaves, base, m, nf, root, r4, k4, nxt)
        r5 = _step(xf, w5, nodes, nodes_f, r5)
        if r5 < 0:
            r5, k5, w5, nxt = _refill(acc, leaves, base, m, nf, root, r5, k5, nxt)
        r6 = _step(xf, w6, nodes, nodes_f, r6)
        if r6 < 0:
            r6, k6, w6, nxt = _refill(acc, leaves, base, m, nf, root, r6, k6, nxt)
        r7 = _step(xf, w7, nodes, nodes_f, r7)
        if r7 < 0:
            r7, k7, w7, nxt = _refill(acc, leaves, base, m, nf, root, r7, k7, nxt)
    _drain(xf, nodes, nodes_f, leaves, acc, r0, k0, w0)
    _drain(xf, nodes, nodes_f, leaves, acc, r1, k1, w1)
    _drain(xf, nodes, nodes_f, leaves, acc, r2, k2, w2)
    _drain(xf, nodes, nodes_f, leaves, acc, r3, k3, w3)
    _drain(xf, nodes, nodes_f, leaves, acc, r4, k4, w4)
    _drain(xf, nodes, nodes_f, leaves, acc, r5, k5, w5)
    _drain(xf, nodes, nodes_f, leaves, acc, r6, k6, w6)
    _drain(xf, nodes, nodes_f, leaves, acc, r7, k7, w7)


@njit(nogil=True, cache=True)
def _forest_block(xf, nf, base, m, nodes, nodes_f, roots, leaves, acc, out):  # type: ignore[no-untyped-def]
    """Mean over trees for pixels ``base + k``, ``k < m``, written to ``out[base + k]``."""
    acc[:m] = 0.0
    for t in range(roots.shape[0]):
        _tree_block(xf, nf, base, m, nodes, nodes_f, roots[t], leaves, acc)
    n_trees = roots.shape[0]
    for k in range(m):
        for c in range(acc.shape[1]):
            out[base + k, c] = acc[k, c] / n_trees


@njit(nogil=True, cache=True)
def forest_sum_contiguous(x, nodes, nodes_f, roots, leaves, out, block):  # type: ignore[no-untyped-def]
    """Fill ``out`` (n_pixels, n_outputs) with forest probabilities of C-contiguous ``x``.

    Parameters
    ----------
    x : float32 array, shape (n_pixels, n_features), C-contiguous
    nodes, nodes_f, roots, leaves : compact layout (see module docstring)
    out : float32 array, shape (n_pixels, n_outputs), C-contiguous
    block : int
        Pixels walked tree by tree (see ``_predict.block_rows``).
    """
    n, nf = x.shape
    xf = x.reshape(-1)
    acc = np.empty((min(block, n), leaves.shape[1]), np.float64)
    for s in range(0, n, block):
        m = min(block, n - s)
        _forest_block(xf, nf, s, m, nodes, nodes_f, roots, leaves, acc, out)


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
