"""The prediction kernel: branch-free lanes over integer keys, one tree at a time.

Layout (built once per forest by ``_layout.compact_layout``): ``keys`` holds int32 records
``[feature, threshold key, left ref, right ref]``, a reference being the offset of a record. The
split nodes come first, tree by tree in depth-first preorder; from offset ``sink`` on, one "sink"
record per row of the leaf table (one-hot leaves of class ``c`` are row ``c``) stands for every
leaf with that row: it tests feature 0 against the smallest key and both its children are itself,
so a step from a leaf stays there. A reference ``ref >= sink`` is the leaf of row
``(ref - sink) >> 2``.

Keys: every float32 is mapped to an int32 with the same order (:func:`float_keys`), so that the
strict float rule ``x < threshold`` becomes one integer comparison. ``-0.0`` and ``0.0`` get the
same key; a NaN feature value gets the largest key (it fails every test and goes right, as in
:class:`~cascade.forest.packed.PackedForest`); a NaN threshold gets the smallest key (no value is
below it: everything goes right, as ``x < nan`` is false).

Speed: a traversal step is a chain of dependent loads, and a pixel that reaches a leaf after an
unpredictable number of steps costs a branch misprediction (measured: ~40 % of the time of the
branchy kernel on fully grown trees). Here ``LANES`` lanes walk pixels side by side, branch-free:
a lane takes two steps (a pixel that reached a leaf after the first stays on its sink), stores
the reference to ``leaf_of[row]`` unconditionally (the last store for a row is its leaf), and if
it is at a leaf takes the next row not yet taken, by conditional moves (one shared row counter,
so the loop tests one condition; the last row of each lane is walked to its leaf after the loop).
A row does not start at the root: on entry ``leaf_of[row]`` holds its start, the node it reaches
after the tree's first :data:`~cascade.forest._masks.TOP_DEPTH` levels, which the block loop
evaluates for all rows at once as bit masks (:func:`~cascade.forest._masks.top_starts`); the
start of the next free row is loaded when the row counter moves, so a restart does not wait for
it. Feature rows are copied, as keys, to a block whose row stride is a power of two, so that
the offset of row ``k`` is ``k << shift``. The block loop (:mod:`cascade.forest._evaluate`) then
adds the leaves of one tree per pixel, tree after tree (votes for one-hot forests, float64 leaf
rows otherwise); trees of at most 64 leaves skip the lanes and are evaluated as bit masks
(:mod:`cascade.forest._masks`).

All kernels release the GIL and use one thread: callers (dask) provide the parallelism.

Measured on an Intel Xeon (Sapphire Rapids, AVX-512), one thread, 100 fully grown trees, CPU time
per pixel and tree (12.6 and 16 steps on average for 10k- and 50k-row training sets): the former
branchy 8-lane kernel ~25 ns; the same with uint16 votes ~24 ns (8, 12, 16 lanes alike); the same
steps with the leaf test removed ~14 ns (so the leaf misprediction cost ~40 %); branch-free lanes
with float thresholds ~21 ns, with int keys ~20 ns, with two steps per iteration ~18 ns. Did not
pay off: a branch-free add into the vote counters at every step (a read-modify-write per step),
lanes that stop when the first lane is done and finish the other rows one by one, blocks of
4 MiB (feature rows then come from L3). numba does not turn a loop over lane arrays into AVX-512
gathers (checked in the assembly), so the lanes stay scalar.

Measured again on a 2-core Xeon (family 6 model 167, AVX-512; shared with other work, so thread
CPU time, best of 3-5, variants interleaved): 100 trees of 1.2k split nodes (depth 22, 40
features) ~17 ns, of 12.5k split nodes (depth 30, 60 features) ~35-50 ns (the nodes come from L2),
of ~10 split nodes (depth 5, the trees of sparse labels) ~4.5 ns. Rows handed out from one counter
instead of lane ``i`` taking rows ``i, i + LANES, ...``: ~3 % faster; 8 to 14 lanes alike, 4 and 6
lanes slower. Did not pay off: three or four steps per lane iteration (more steps walked on
sinks); breadth-first passes (every unfinished row of a block steps 2-4 times per pass, then the
rows at a leaf are dropped): 25-40 % slower; for shallow trees, every row walked the tree's
maximum depth without a leaf test: 30 % slower; blocks of 128-512 rows (the feature block in
L1): slower (the lanes' start and end cost more per row); votes counted per class with a
vectorised compare: 7 % faster on trees of depth 5, no gain on deep trees (not adopted); the
leaf reference stored in a padding column of the row's keys (no ``leaf_of``, no shift): same;
the first 1-3 steps of every row done in one pass before the lanes, the lanes restarting from
there: 5 % faster on trees of depth 5, 25-75 % slower on deep trees (the restart then waits
for a load).
The generated code keeps ~20 values of 10 lanes live, more than x86-64's 16 registers, so every
lane iteration spills some; the step itself is 7 instructions.

Session 8 (same machine, thread CPU time, best of 5, variants interleaved in one process;
100 trees of 1.2k split nodes, 40 features, and of 124 split nodes, 49 features): the tops. Each
lane tree's first levels are evaluated as QuickScorer masks over the block (one compare and AND
per node and pixel, vectorised), giving every row its start node, and the lanes restart at the
loaded start instead of the root. Top depth 1/3/4/5/6 with uint64 masks and the starts in their
own array indexed by ``offset >> shift``: 19.0/17.5/16.9/17.5/20.2 ns against 17.5 ns (the mask
passes cost 0.1 ns per node and pixel, growing with 2^depth, and the restart's extra pointer and
shift cost ~1.5 ns); the starts in column 0 of the feature rows: the conditional load became a
branch (LLVM sinks a load used only by a select), 28 ns; carried to the next lane instead (as
now), branch-free, but the per-tree strided store of the starts into the rows cost ~2 ns. As now
(starts in ``leaf_of``, rows counted in rows, uint16 masks for depth 4, uint32 for 5): depth 0
(starts all the root) +1.7 ns, depth 3/4/5: -7 %/-10 to -12 %/-10 % on the 1.2k-node trees,
-12 %/-18 %/-14 % on the 124-node trees; depth 4 kept. Did not pay off: lane state packed in one
register (row offset and reference in one int64, no spills but 4 more instructions per lane):
13 % slower; the child chosen by a select between the loaded left and right child (LLVM folds it
back into the indexed load); with the tops, three steps per lane iteration (-2 % to +0.4 %) and
8 lanes instead of 10 (within 1 %): within noise, not adopted; the ends' lookup in
:func:`~cascade.forest._masks.top_starts` written with a popcount to let LLVM vectorise it: it
stays scalar (a gather), dropped; the top's mask pass taking two nodes per pass over the block
(half the loads and stores of the bit masks): -0.3 to -2 %, within noise, dropped; after the
top, 2 or 4 more steps of every row in a plain loop before the lanes (no leaf test, rows
independent): +1 % and +11-16 % (a step outside the lanes is no cheaper); a software prefetch
(``llvm.prefetch``) of the 2-3 cache lines of a row 1, 2 or 4 rows past the next free one, in
every lane iteration: 13-17 % slower.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["LANES", "MAX_VOTES", "block_leaves", "copy_keys", "float_keys", "sink_records", "threshold_keys"]

#: Lanes walked side by side (9 to 12 were within noise of each other; see the module notes).
LANES = 10
#: Largest number of trees whose votes fit the uint16 counters.
MAX_VOTES = 2**16 - 1

_TOP = np.int32(2**31 - 1)
_BOTTOM = np.int32(-(2**31))


@njit(nogil=True, cache=True, inline="always")
def _key(x, bits):  # type: ignore[no-untyped-def]
    """Order-preserving int32 key of one float32 ``x`` (``bits`` is its int32 view)."""
    if x != x:
        return _TOP
    if x == 0:
        return np.int32(0)
    return bits if bits >= 0 else np.int32(-(bits & 0x7FFFFFFF))


@njit(nogil=True, cache=True)
def float_keys(x):  # type: ignore[no-untyped-def]
    """Keys of a 1-D float32 array: ``a < b`` exactly when ``key(a) < key(b)``; NaN is above all."""
    bits = x.view(np.int32)
    out = np.empty(x.shape[0], np.int32)
    for i in range(x.shape[0]):
        out[i] = _key(x[i], bits[i])
    return out


@njit(nogil=True, cache=True)
def threshold_keys(t):  # type: ignore[no-untyped-def]
    """Keys of 1-D float32 thresholds; a NaN threshold is below every key (all go right)."""
    out = float_keys(t)
    for i in range(t.shape[0]):
        if t[i] != t[i]:
            out[i] = _BOTTOM
    return out


def sink_records(n_rows: int, sink: int) -> np.ndarray:
    """The ``(n_rows, 4)`` sink records of leaf-table rows ``0 .. n_rows-1``, the first at offset ``sink``."""
    records = np.zeros((n_rows, 4), dtype=np.int32)
    records[:, 1] = _BOTTOM
    records[:, 2] = records[:, 3] = sink + 4 * np.arange(n_rows, dtype=np.int64)
    return records


@njit(nogil=True, cache=True, inline="always")
def _child(xb, w, keys, ref):  # type: ignore[no-untyped-def]
    """One step: the child reference that the row at offset ``w`` goes to from split ``ref``."""
    u = np.uint64(ref)
    go_right = not (xb[np.uint64(w + keys[u])] < keys[u + np.uint64(1)])
    return keys[u + np.uint64(2) + np.uint64(go_right)]


@njit(nogil=True, cache=True, inline="always")
def _walk(xb, w, keys, ref, sink):  # type: ignore[no-untyped-def]
    while ref < sink:
        ref = _child(xb, w, keys, ref)
    return ref


@njit(nogil=True, cache=True, inline="always")
def _lane(xb, k, keys, ref, start, sink, leaf_of, shift, nxt):  # type: ignore[no-untyped-def]
    """Two branch-free steps of the lane on row ``k``; at a leaf it takes the next free row ``nxt``.

    ``start`` is the start reference of row ``nxt``, loaded when the row counter last moved.
    Returns the lane's new reference and row, the next free row and its start reference.
    """
    w = k << shift
    child = _child(xb, w, keys, _child(xb, w, keys, ref))
    leaf_of[np.uint64(k)] = child
    at_leaf = child >= sink
    nxt_after = nxt + (1 if at_leaf else 0)
    return (start if at_leaf else child), (nxt if at_leaf else k), nxt_after, leaf_of[np.uint64(nxt_after)]


@njit(nogil=True, cache=True)
def _tree_leaves(xb, shift, m, keys, sink, leaf_of):  # type: ignore[no-untyped-def]
    """Replace the start reference ``leaf_of[k]`` of block row ``k < m`` by its leaf (``m >= LANES``).

    Rows are handed out in order to the lane that finishes first. When none is left, the lanes
    walk their last rows to the end one by one; a lane that got no last row holds a row ``>= m``
    that it never walks (``leaf_of`` has ``m + LANES`` entries, so that its start can be loaded).
    """
    r0, r1, r2, r3, r4 = leaf_of[0], leaf_of[1], leaf_of[2], leaf_of[3], leaf_of[4]
    r5, r6, r7, r8, r9 = leaf_of[5], leaf_of[6], leaf_of[7], leaf_of[8], leaf_of[9]
    k0, k1, k2, k3, k4, k5, k6, k7, k8, k9 = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
    nxt = LANES
    start = leaf_of[nxt]
    while nxt < m:
        r0, k0, nxt, start = _lane(xb, k0, keys, r0, start, sink, leaf_of, shift, nxt)
        r1, k1, nxt, start = _lane(xb, k1, keys, r1, start, sink, leaf_of, shift, nxt)
        r2, k2, nxt, start = _lane(xb, k2, keys, r2, start, sink, leaf_of, shift, nxt)
        r3, k3, nxt, start = _lane(xb, k3, keys, r3, start, sink, leaf_of, shift, nxt)
        r4, k4, nxt, start = _lane(xb, k4, keys, r4, start, sink, leaf_of, shift, nxt)
        r5, k5, nxt, start = _lane(xb, k5, keys, r5, start, sink, leaf_of, shift, nxt)
        r6, k6, nxt, start = _lane(xb, k6, keys, r6, start, sink, leaf_of, shift, nxt)
        r7, k7, nxt, start = _lane(xb, k7, keys, r7, start, sink, leaf_of, shift, nxt)
        r8, k8, nxt, start = _lane(xb, k8, keys, r8, start, sink, leaf_of, shift, nxt)
        r9, k9, nxt, start = _lane(xb, k9, keys, r9, start, sink, leaf_of, shift, nxt)
    for k, ref in (
        (k0, r0),
        (k1, r1),
        (k2, r2),
        (k3, r3),
        (k4, r4),
        (k5, r5),
        (k6, r6),
        (k7, r7),
        (k8, r8),
        (k9, r9),
    ):
        if k < m:
            leaf_of[k] = _walk(xb, k << shift, keys, ref, sink)


@njit(nogil=True, cache=True)
def block_leaves(xb, shift, m, keys, sink, leaf_of):  # type: ignore[no-untyped-def]
    """Replace the start reference ``leaf_of[k]`` of block rows ``k < m`` by the leaf it leads to.

    ``leaf_of`` must have at least ``m + LANES`` entries; a start may be a leaf already.
    """
    if m < LANES:
        for k in range(m):
            leaf_of[k] = _walk(xb, k << shift, keys, leaf_of[k], sink)
    else:
        _tree_leaves(xb, shift, m, keys, sink, leaf_of)


@njit(nogil=True, cache=True)
def copy_keys(x, start, m, xb2):  # type: ignore[no-untyped-def]
    """Rows ``start .. start + m`` of ``x`` as keys into the first ``m`` rows of ``xb2``; row ``m`` zero."""
    bits = x.view(np.int32)
    for k in range(m):
        for j in range(x.shape[1]):
            xb2[k, j] = _key(x[start + k, j], bits[start + k, j])
    xb2[m, :] = 0
