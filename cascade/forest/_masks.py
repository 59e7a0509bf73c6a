"""Small trees as bit masks, evaluated for a block of pixels at once with vector instructions.

The trees of ilastik projects are small: labels are sparse brush strokes, so a fully grown tree
has a few to a few dozen split nodes (1 to 76 on average over the 29 stages of the .ilp files in
the shared data). For such trees a walk per pixel is mostly overhead: a chain of dependent
loads and a restart at every leaf. Here a tree of at most :data:`MAX_LEAVES` leaves is
evaluated the other way round (the "QuickScorer" scheme of Lucchese et al., SIGIR 2015):

- its leaves are numbered left to right, and every pixel starts with all their bits set;
- for every split node, in any order, the pixels whose value does not go left (``not (x < t)``,
  i.e. ``key(x) >= key(t)`` on the integer keys of :mod:`cascade.forest._lanes`; a NaN value
  goes right) lose the bits of the node's left subtree;
- the leaf a pixel reaches is then its lowest bit still set: every node on its path cleared the
  leaves of the side it did not take, and no node clears the leaf it reaches (that leaf is in no
  left subtree the pixel skipped).

A node costs one compare and one masked AND per pixel, over a column of feature keys
(feature-major, contiguous), which LLVM vectorises; the tree's cost no longer depends on where
the pixels go. One-hot forests then add a tree's votes per class with the class's leaf bits
(``lowest bit & class bits != 0``, vectorised too); other forests look the leaf up and add its
float row as before, tree after tree in forest order, so the sums are the same numbers.

Measured (2-core Xeon, AVX-512, one thread, 100 trees, 49 features, CPU time per pixel and
tree, lanes -> masks): 4 split nodes per tree 4.5 -> 2.4 ns, 14 nodes 6.2 -> 3.1 ns, 38 nodes
8.5 -> 5.5 ns, 56 nodes 9.8 -> 7.8 ns; trees of 64 leaves or more keep the lanes. Tried: a
32-bit mask for trees of at most 32 leaves (within noise, dropped).

Larger trees keep the lanes, but their top (the split nodes above depth :data:`TOP_DEPTH`, at
most 15, with at most 16 ends) is evaluated here in the same way with uint16 masks: an end is a
leaf or the split node where the walk goes on, and :func:`top_starts` gives every pixel its end
as the lanes' start (measured in :mod:`cascade.forest._lanes`: 12-18 % less time on fully grown
trees).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = [
    "MAX_LEAVES",
    "TOP_DEPTH",
    "MaskLayout",
    "mask_layout",
    "mask_tree_leaves",
    "mask_tree_votes",
    "top_starts",
    "transpose_keys",
]

#: Largest tree (in leaves) evaluated by masks: one bit per leaf in a uint64.
MAX_LEAVES = 64
#: Levels of a larger tree's top evaluated by masks (at most 16 ends: one bit each in a uint16).
TOP_DEPTH = 4

_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_ALL16 = np.uint16(0xFFFF)
_NO_DEPTH_LIMIT = 2**31


@dataclass(frozen=True, eq=False)
class MaskLayout:
    """The trees of a forest that masks evaluate (see the module docstring).

    Attributes
    ----------
    feature, key : ndarray of int32, shape (n_mask_nodes,)
        Split nodes of the mask trees, tree by tree: feature column and threshold key.
    bits : ndarray of uint64, shape (n_mask_nodes,)
        Every bit set but those of the node's left-subtree leaves.
    span : ndarray of int64, shape (n_trees, 2)
        Each tree's range of nodes; ``(-1, -1)`` for trees the lanes walk.
    leaf_refs : ndarray of int32, shape (n_mask_leaves,)
        The sink reference (:mod:`cascade.forest._lanes`) of each mask tree's leaves, left to
        right, from ``leaf_base[t]`` on.
    leaf_base : ndarray of int64, shape (n_trees,)
        Each mask tree's first leaf in ``leaf_refs``.
    class_bits : ndarray of uint64, shape (n_trees, n_outputs)
        Leaf bits of each one-hot class (leaves of other rows are in none).
    top_feature, top_key : ndarray of int32, shape (n_top_nodes,)
        The tops of the trees the lanes walk (their split nodes above depth :data:`TOP_DEPTH`),
        tree by tree, as ``feature`` and ``key``.
    top_bits : ndarray of uint16, shape (n_top_nodes,)
        As ``bits``, over the top's ends (at most 16).
    top_span : ndarray of int64, shape (n_trees, 3)
        Each top's range of nodes and its first end in ``top_refs``; ``(-1, -1, -1)`` for trees
        without a top (mask trees, lone leaves).
    top_refs : ndarray of int32, shape (n_top_ends,)
        The reference (:mod:`cascade.forest._lanes`) of each top's ends, left to right: the
        split node at depth :data:`TOP_DEPTH` where a pixel's walk goes on, or a leaf above it.
    """

    feature: npt.NDArray[np.int32]
    key: npt.NDArray[np.int32]
    bits: npt.NDArray[np.uint64]
    span: npt.NDArray[np.int64]
    leaf_refs: npt.NDArray[np.int32]
    leaf_base: npt.NDArray[np.int64]
    class_bits: npt.NDArray[np.uint64]
    top_feature: npt.NDArray[np.int32]
    top_key: npt.NDArray[np.int32]
    top_bits: npt.NDArray[np.uint16]
    top_span: npt.NDArray[np.int64]
    top_refs: npt.NDArray[np.int32]

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The arrays, in the order the kernels take them."""
        return (
            self.feature,
            self.key,
            self.bits,
            self.span,
            self.leaf_refs,
            self.leaf_base,
            self.class_bits,
            self.top_feature,
            self.top_key,
            self.top_bits,
            self.top_span,
            self.top_refs,
        )

    @property
    def n_trees(self) -> int:
        """Number of trees evaluated by masks."""
        return int(np.count_nonzero(self.span[:, 0] >= 0))


def mask_layout(
    keys: npt.NDArray[np.int32], roots: npt.NDArray[np.int64], sink: int, n_outputs: int
) -> MaskLayout:
    """The mask layout of the trees of 2 to :data:`MAX_LEAVES` leaves of a lanes layout, and the
    tops of the larger trees.

    Parameters
    ----------
    keys, roots, sink
        The forest in the layout of :mod:`cascade.forest._lanes` (``CompactForest.keys``,
        ``key_roots``, ``sink``).
    n_outputs : int
        Output channels (the one-hot leaf rows are ``0 .. n_outputs-1``).
    """
    feature, key, bits, span, refs, base, class_bits = _layout(keys, roots, sink, n_outputs, MAX_LEAVES)
    top_feature, top_key, top_bits, top_span, top_refs = _top_layout(keys, roots, sink, span, TOP_DEPTH)
    return MaskLayout(
        feature,
        key,
        bits,
        span,
        refs,
        base,
        class_bits,
        top_feature,
        top_key,
        top_bits.astype(np.uint16),
        top_span,
        top_refs,
    )


@njit(cache=True)
def _layout(keys, roots, sink, n_outputs, max_leaves):  # type: ignore[no-untyped-def]
    n_trees, n_split = roots.shape[0], sink // 4
    feature = np.empty(n_split, np.int32)
    key = np.empty(n_split, np.int32)
    bits = np.empty(n_split, np.uint64)
    span = np.full((n_trees, 2), -1, np.int64)
    leaf_base = np.zeros(n_trees, np.int64)
    refs = np.empty(n_split + n_trees + max_leaves, np.int32)
    class_bits = np.zeros((n_trees, n_outputs), np.uint64)
    first_leaf = np.empty(max_leaves, np.int64)
    stack = np.empty((2 * max_leaves + 2, 4), np.int64)
    n_nodes = n_leaves = 0
    for t in range(n_trees):
        if roots[t] >= sink:  # a lone leaf: the lanes set it directly
            continue
        out = (feature, key, bits, refs)
        count = _tree_masks(
            keys, roots[t], sink, (max_leaves, _NO_DEPTH_LIMIT), (n_nodes, n_leaves), out, first_leaf, stack
        )
        if count < 0:
            continue
        span[t, 0], span[t, 1], leaf_base[t] = n_nodes, n_nodes + count - 1, n_leaves
        for i in range(count):
            row = (refs[n_leaves + i] - sink) >> 2
            if row < n_outputs:
                class_bits[t, row] |= np.uint64(1) << np.uint64(i)
        n_nodes += count - 1
        n_leaves += count
    return feature[:n_nodes], key[:n_nodes], bits[:n_nodes], span, refs[:n_leaves], leaf_base, class_bits


@njit(cache=True)
def _top_layout(keys, roots, sink, span, depth):  # type: ignore[no-untyped-def]
    """The tops (levels above ``depth``) of the trees that are neither mask trees nor lone leaves."""
    n_trees, n_ends = roots.shape[0], 1 << depth
    feature = np.empty(n_trees * (n_ends - 1), np.int32)
    key = np.empty(n_trees * (n_ends - 1), np.int32)
    bits = np.empty(n_trees * (n_ends - 1), np.uint64)
    refs = np.empty(n_trees * n_ends, np.int32)
    top_span = np.full((n_trees, 3), -1, np.int64)
    first_leaf = np.empty(n_ends, np.int64)
    stack = np.empty((2 * n_ends + 2, 4), np.int64)
    n_nodes = n_ends_total = 0
    for t in range(n_trees):
        if roots[t] >= sink or span[t, 0] >= 0:
            continue
        out = (feature, key, bits, refs)
        count = _tree_masks(
            keys, roots[t], sink, (n_ends, depth), (n_nodes, n_ends_total), out, first_leaf, stack
        )
        top_span[t, 0], top_span[t, 1], top_span[t, 2] = n_nodes, n_nodes + count - 1, n_ends_total
        n_nodes += count - 1
        n_ends_total += count
    return feature[:n_nodes], key[:n_nodes], bits[:n_nodes], top_span, refs[:n_ends_total]


@njit(cache=True)
def _tree_masks(keys, root, sink, limits, offsets, out, first_leaf, stack):  # type: ignore[no-untyped-def]
    """Write one tree's nodes to ``out = (feature, key, bits, refs)`` from ``offsets = (n0, l0)`` on
    (nodes from ``n0``, leaves from ``l0``); returns its leaf count, or -1 if too large.

    Depth-first, left first, so leaves are met left to right; a node's left subtree holds the
    leaves met between entering the node and leaving for its right child. ``limits`` is
    ``(max_leaves, max_depth)``: a split node at ``max_depth`` counts as a leaf (a top's end).
    """
    max_leaves, max_depth = limits
    n0, l0 = offsets
    feature, key, bits, refs = out
    _push(stack, 0, root, -1, 0, 0)
    top = count = nodes = 0
    while top >= 0:
        ref, parent, is_right, depth = stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3]
        top -= 1
        if is_right:
            left_leaves = np.uint64(0)
            for i in range(first_leaf[parent], count):
                left_leaves |= np.uint64(1) << np.uint64(i)
            bits[n0 + parent] = ~left_leaves
        if ref >= sink or depth == max_depth:
            if count == max_leaves:
                return -1
            refs[l0 + count] = ref
            count += 1
            continue
        if nodes == max_leaves - 1:
            return -1
        feature[n0 + nodes], key[n0 + nodes], first_leaf[nodes] = keys[ref], keys[ref + 1], count
        _push(stack, top + 1, keys[ref + 3], nodes, 1, depth + 1)
        _push(stack, top + 2, keys[ref + 2], nodes, 0, depth + 1)
        top += 2
        nodes += 1
    return count


@njit(cache=True, inline="always")
def _push(stack, i, ref, parent, is_right, depth):  # type: ignore[no-untyped-def]
    """Stack entry ``i``: a node to visit, its parent's index, which child it is, its depth."""
    stack[i, 0], stack[i, 1], stack[i, 2], stack[i, 3] = ref, parent, is_right, depth


@intrinsic
def _lowest_bit_index(typingctx, x):  # type: ignore[no-untyped-def]
    """Index of the lowest set bit of an unsigned integer (count of trailing zeros)."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return x(x), codegen


@njit(nogil=True, cache=True)
def transpose_keys(xb2, m, n_features, xt):  # type: ignore[no-untyped-def]
    """Rows ``k < m`` of the row-major keys ``xb2`` into the feature-major ``xt`` (features x rows).

    In tiles of 16 rows, read from the L1 cache (a column at a time over the whole block: 4x
    slower; keys made here from the float rows instead of copied: 10x slower, the sign test of
    every key mispredicted).
    """
    for k0 in range(0, m, 16):
        k1 = min(k0 + 16, m)
        for j in range(n_features):
            column = xt[j]
            for k in range(k0, k1):
                column[k] = xb2[k, j]


@njit(nogil=True, cache=True, inline="always")
def _leaf_bits(xt, m, feature, key, bits, first, stop, bv, ones):  # type: ignore[no-untyped-def]
    """``bv[k]``: the leaves pixel ``k`` can still reach after nodes ``first .. stop-1``.

    ``ones`` has every bit of ``bv``'s dtype set.
    """
    bv[:m] = ones
    for j in range(first, stop):
        column = xt[feature[j]]
        threshold, keep = key[j], bits[j]
        for k in range(m):
            bv[k] &= keep if column[k] >= threshold else ones


@njit(nogil=True, cache=True)
def mask_tree_votes(xt, m, feature, key, bits, first, stop, class_bits, counts, bv):  # type: ignore[no-untyped-def]
    """Add one one-hot tree's votes of pixels ``k < m`` to ``counts[c, k]``, classes ``c < len(counts)``."""
    _leaf_bits(xt, m, feature, key, bits, first, stop, bv, _ALL)
    for c in range(counts.shape[0]):
        in_class, count = class_bits[c], counts[c]
        for k in range(m):
            lowest = bv[k] & (~bv[k] + np.uint64(1))
            count[k] += (lowest & in_class) != 0


@njit(nogil=True, cache=True)
def mask_tree_leaves(xt, m, feature, key, bits, first, stop, refs, base, bv, leaf_of):  # type: ignore[no-untyped-def]
    """``leaf_of[k]``: the sink reference of the leaf pixel ``k < m`` reaches in one mask tree."""
    _leaf_bits(xt, m, feature, key, bits, first, stop, bv, _ALL)
    for k in range(m):
        leaf_of[k] = refs[base + _lowest_bit_index(bv[k])]  # type: ignore[call-arg]


@njit(nogil=True, cache=True)
def top_starts(xt, m, tops, t, root, bv, start_of):  # type: ignore[no-untyped-def]
    """``start_of[k]``: where pixel ``k < m`` enters tree ``t`` below its top (``root`` if it has none).

    ``tops`` is ``(top_feature, top_key, top_bits, top_span, top_refs)`` of a :class:`MaskLayout`
    and ``bv`` a uint16 buffer of at least ``m`` entries.
    """
    feature, key, bits, span, refs = tops
    first, stop, base = span[t, 0], span[t, 1], span[t, 2]
    if first < 0:
        start_of[:m] = root
        return
    _leaf_bits(xt, m, feature, key, bits, first, stop, bv, _ALL16)
    for k in range(m):
        start_of[k] = refs[base + _lowest_bit_index(bv[k])]  # type: ignore[call-arg]
