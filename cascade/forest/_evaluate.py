"""The block loop of a prediction: each tree walked by lanes or evaluated by masks, then summed.

Pixels go through the forest in blocks of ``block`` rows whose feature keys stay in the L2
cache: row-major for the lanes (:mod:`cascade.forest._lanes`), feature-major for the masks
(:mod:`cascade.forest._masks`: mask trees and the tops of the lane trees). Trees are taken in
forest order; a lane tree's top gives each row its start node, the lanes walk on from there;
each tree adds its leaves to the block's totals:

- one-hot forests count votes: uint32 per class but the last and pixel, one vectorised compare
  pass per class (the last class gets the other votes), for the mask trees and, up to
  ``_COUNTED_CLASSES + 1`` classes, the lanes' trees; the lanes' trees of forests with more
  classes add to uint16 counters per pixel and class (a scattered increment per pixel: 2-6 %
  slower for 2 to 9 classes, measured on 100 fully grown trees); integer counts, so the order
  does not matter and the result is exact;
- other forests add the float64 leaf rows, tree after tree in forest order, whichever path found
  the leaf, so the sums are the same floating-point numbers as a tree-by-tree walk.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._lanes import LANES, block_leaves, copy_keys
from ._masks import mask_tree_leaves, mask_tree_votes, top_starts, transpose_keys

__all__ = ["forest_votes_or_sums"]

#: Most classes but the last whose votes from lane trees are counted by compare passes.
_COUNTED_CLASSES = 8


@njit(nogil=True, cache=True)
def _add_leaves(leaf_of, m, sink, leaves, votes, sums):  # type: ignore[no-untyped-def]
    """Add one tree's leaves of block rows ``k < m``: a vote, or (``votes`` empty) the leaf's row."""
    if votes.shape[0]:
        for k in range(m):
            votes[k, (leaf_of[k] - sink) >> 2] += 1
    else:
        for k in range(m):
            row = (leaf_of[k] - sink) >> 2
            for c in range(sums.shape[1]):
                sums[k, c] += leaves[row, c]


@njit(nogil=True, cache=True)
def _count_votes(leaf_of, m, sink, counts):  # type: ignore[no-untyped-def]
    """Add one one-hot tree's votes of block rows ``k < m`` to ``counts[c, k]`` (``c < len(counts)``)."""
    for c in range(counts.shape[0]):
        ref, count = sink + 4 * c, counts[c]
        for k in range(m):
            count[k] += leaf_of[k] == ref


@njit(nogil=True, cache=True)
def _block_totals(xb, shift, xt, m, keys, roots, sink, leaves, masks, votes, counts, sums, bv, leaf_of):  # type: ignore[no-untyped-def]
    """Add every tree's leaves of the block's rows ``k < m``; returns how many trees voted in ``counts``.

    ``bv`` is a pair of buffers: uint64 for the mask trees, uint16 for the tops.
    """
    feature, key, bits, span, refs, base, class_bits = masks[:7]
    tops = masks[7:]
    voters = 0
    for t in range(roots.shape[0]):
        first, stop = span[t, 0], span[t, 1]
        if first < 0:
            if roots[t] >= sink:
                leaf_of[:m] = roots[t]
            else:
                top_starts(xt, m, tops, t, roots[t], bv[1], leaf_of)
                block_leaves(xb, shift, m, keys, sink, leaf_of)
            if votes.shape[0] and counts.shape[0] <= _COUNTED_CLASSES:
                _count_votes(leaf_of, m, sink, counts)
                voters += 1
                continue
        elif votes.shape[0]:
            mask_tree_votes(xt, m, feature, key, bits, first, stop, class_bits[t], counts, bv[0])
            voters += 1
            continue
        else:
            mask_tree_leaves(xt, m, feature, key, bits, first, stop, refs, base[t], bv[0], leaf_of)
        _add_leaves(leaf_of, m, sink, leaves, votes, sums)
    return voters


@njit(nogil=True, cache=True)
def _write_block(out, start, m, n_trees, votes, counts, voters, sums):  # type: ignore[no-untyped-def]
    """The block's probabilities: totals over the number of trees."""
    n_out = out.shape[1]
    for k in range(m):
        if votes.shape[0]:
            rest = voters
            for c in range(n_out):
                total = np.int64(votes[k, c])
                if c < n_out - 1:
                    total += counts[c, k]
                    rest -= counts[c, k]
                else:
                    total += rest
                out[start + k, c] = np.float64(total) / n_trees
        else:
            for c in range(n_out):
                out[start + k, c] = sums[k, c] / n_trees


@njit(nogil=True, cache=True)
def forest_votes_or_sums(x, keys, roots, sink, leaves, masks, use_votes, out, block):  # type: ignore[no-untyped-def]
    """Fill ``out`` (n_pixels, n_outputs) with the forest's probabilities for the rows of ``x``.

    Parameters
    ----------
    x : float32 array, shape (n_pixels, n_features), C-contiguous
    keys, roots, sink, leaves : the lanes layout (:mod:`cascade.forest._lanes`)
    masks : tuple
        ``MaskLayout.arrays()`` (:mod:`cascade.forest._masks`).
    use_votes : bool
        Count votes (every leaf one-hot, at most ``MAX_VOTES`` trees), else add float64 rows.
    out : float32 array, shape (n_pixels, n_outputs)
    block : int
        Pixels taken through the forest together (their keys should stay in the L2 cache).
    """
    n, nf = x.shape
    n_out = leaves.shape[1]
    any_masks = masks[0].shape[0] > 0 or masks[7].shape[0] > 0
    shift = 0
    while (1 << shift) < nf:
        shift += 1
    xb2 = np.empty((block + 1, 1 << shift), np.int32)
    xb2[:, nf:] = 0
    xb = xb2.reshape(-1)
    xt = np.empty((nf if any_masks else 0, block), np.int32)
    bv = (np.empty(block, np.uint64), np.empty(block, np.uint16))
    leaf_of = np.empty(block + LANES, np.int32)
    votes = np.zeros((block if use_votes else 0, n_out), np.uint16)
    counts = np.zeros((n_out - 1 if use_votes else 0, block), np.uint32)
    sums = np.zeros((0 if use_votes else block, n_out), np.float64)
    for start in range(0, n, block):
        m = min(block, n - start)
        copy_keys(x, start, m, xb2)
        if any_masks:
            transpose_keys(xb2, m, nf, xt)
        votes[:] = 0
        counts[:] = 0
        sums[:] = 0.0
        voters = _block_totals(
            xb, shift, xt, m, keys, roots, sink, leaves, masks, votes, counts, sums, bv, leaf_of
        )
        _write_block(out, start, m, roots.shape[0], votes, counts, voters, sums)
