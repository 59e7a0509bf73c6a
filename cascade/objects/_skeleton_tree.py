"""The tree part of vigra's ``skeletonizeImage`` for one object, as numba kernels (``_skeleton.py``).

From the thinned skeleton: the longest path (two Dijkstra sweeps), its arc-length middle as the
root, the skeleton tree with branch lengths and saliences, loops that enclose holes, and the
branches that survive vigra's relative salience pruning (threshold 0.2, topology preserved).
Pixels are linear indices of the padded crop; node attributes are arrays over all crop pixels
with vigra's ``SkeletonNode`` defaults (``parent`` -1, ``child`` -1, ``salience`` 1).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._skeleton_grid import NX, NY
from ._skeleton_loops import loops
from ._skeleton_paths import INFINITE, search

#: vigra's ``pruneSalienceRelative`` threshold as ilastik calls it.
PRUNING_THRESHOLD = 0.2
#: Branches shorter than this get no salience (vigra: staircase noise of the boundary).
MIN_LENGTH = 4.0


@njit(cache=True, nogil=True)
def _norm(a: int, b: int, width: int) -> float:  # pragma: no cover
    dx = a % width - b % width
    dy = a // width - b // width
    return math.sqrt(float(dx * dx + dy * dy))


@njit(cache=True, nogil=True)
def _neighbour(p: int, k: int, width: int, height: int) -> int:  # pragma: no cover
    """Neighbour ``k`` of pixel ``p`` in vigra's order, -1 outside the crop."""
    x, y = p % width + NX[k], p // width + NY[k]
    if x < 0 or y < 0 or x >= width or y >= height:
        return -1
    return int(y * width + x)


@njit(cache=True, nogil=True)
def _cut_edges(weights: np.ndarray, p: int, width: int, height: int) -> None:  # pragma: no cover
    for k in range(8):
        q = _neighbour(p, k, width, height)
        if q >= 0:
            weights[p, k] = INFINITE
            weights[q, 7 - k] = INFINITE


@njit(cache=True, nogil=True)
def edge_weights(dest: np.ndarray) -> np.ndarray:  # pragma: no cover
    """The step length between skeleton pixels, vigra's 'infinite' from a skeleton pixel elsewhere."""
    height, width = dest.shape
    flat = dest.ravel()
    weights = np.zeros((height * width, 8))
    for p in range(height * width):
        if flat[p]:
            for k in range(8):
                q = _neighbour(p, k, width, height)
                if q >= 0:
                    w = _norm(p, q, width) if flat[q] else INFINITE
                    weights[p, k] = w
                    weights[q, 7 - k] = w
    return weights


@njit(cache=True, nogil=True)
def _arc_middle(line: np.ndarray, width: int) -> int:  # pragma: no cover
    """vigra's ``center_line[roundi(center_line.arcLengthQuantile(0.5))]``."""
    if line.shape[0] == 1:
        return int(line[0])
    arc = np.zeros(line.shape[0])
    for k in range(1, line.shape[0]):
        arc[k] = arc[k - 1] + _norm(line[k], line[k - 1], width)
    half = 0.5 * arc[-1]
    k = 0
    while k < line.shape[0] and arc[k] < half:
        k += 1
    k -= 1
    q = k + (half - arc[k]) / (arc[k + 1] - arc[k])
    return int(line[int(q + 0.5)])


@njit(cache=True, nogil=True)
def _path(pred: np.ndarray, start: int) -> np.ndarray:  # pragma: no cover
    steps = [start]
    while pred[steps[-1]] != steps[-1]:
        steps.append(pred[steps[-1]])
    return np.array(steps, dtype=np.int64)


@njit(cache=True, nogil=True)
def _grow(order, pred, weights, parent, child, length, salience, squared, width, height):  # type: ignore[no-untyped-def]  # pragma: no cover
    """From the periphery to the centre: the tree, non-tree edges cut, lengths and saliences."""
    for i in range(order.shape[0] - 1, -1, -1):
        p1 = order[i]
        p2 = pred[p1]
        parent[p1] = p2
        for k in range(4):
            p = _neighbour(p1, k, width, height)
            if p < 0 or weights[p1, k] == INFINITE or p == p2 or pred[p] == p1:
                continue
            if child[p1] < 0 or child[p] < 0:
                continue
            weights[p1, k] = INFINITE
            weights[p, 7 - k] = INFINITE
        step = length[p1] + _norm(p1, p2, width)
        if length[p2] < step:
            length[p2] = step
            child[p2] = p1
        if length[p1] >= MIN_LENGTH:
            salience[p1] = max(salience[p1], (length[p1] + 0.5) / math.sqrt(float(squared[p1])))
            if salience[p2] < salience[p1]:
                salience[p2] = salience[p1]


@njit(cache=True, nogil=True)
def _propagate(order, parent, child, length, salience, area, x0, y0, width):  # type: ignore[no-untyped-def]  # pragma: no cover
    """From the centre to the periphery: lengths and saliences down main branches, twice the areas."""
    for i in range(order.shape[0]):
        p1 = order[i]
        p2 = parent[p1]
        if p1 == child[p2]:
            length[p1] = length[p2]
            salience[p1] = salience[p2]
        else:
            length[p1] += _norm(p2, p1, width)
        x1, y1 = p1 % width + x0, p1 // width + y0
        x2, y2 = p2 % width + x0, p2 // width + y0
        area[p1] = area[p2] + (x1 * y2 - y1 * x2)


@njit(cache=True, nogil=True)
def tree_features(dest, squared, crop, x0, y0, limit):  # type: ignore[no-untyped-def]  # pragma: no cover
    """vigra's per-region skeleton analysis of the thinned skeleton ``dest`` (one object).

    Returns the float64 values (Diameter, Euclidean Diameter, Total Length, Average Length,
    Branch Count, Hole Count, centre x, y, terminal 1 x, y, terminal 2 x, y), points absolute.
    """
    height, width = dest.shape
    n = height * width
    weights = edge_weights(dest)
    points = np.flatnonzero(dest.ravel())
    xs, ys = points % width, points // width
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.int64)
    pred = np.full(n, -1, np.int64)
    order = np.zeros(n, np.int64)
    _, anchor = search(weights, box, width, points[-1], -1, limit, pred, order)
    _, anchor = search(weights, box, width, anchor, -1, limit, pred, order)
    line = _path(pred, anchor)
    center = _arc_middle(line, width)
    settled, _ = search(weights, box, width, center, -1, limit, pred, order)
    order = order[:settled].copy()
    parent = np.full(n, -1, np.int64)
    parent[points] = points
    child = np.full(n, -1, np.int64)
    length = np.zeros(n)
    salience = np.ones(n)
    area = np.zeros(n, np.int64)
    loop = np.zeros(n, np.bool_)
    flat = squared.ravel()
    _grow(order, pred.copy(), weights, parent, child, length, salience, flat, width, height)
    _propagate(order, parent, child, length, salience, area, x0, y0, width)
    loop[center] = True
    nodes = (parent, child, length, salience, area, loop)
    holes, total = loops(order, nodes, weights, flat, crop, box, x0, y0)
    threshold = PRUNING_THRESHOLD * salience[center]
    branches = 0
    average = 0.0
    for p in order:
        if child[p] < 0 and salience[p] >= threshold and not loop[p]:
            branches += 1
            average += length[p]
            total += length[p]
    if branches > 0:
        average /= branches
    diameter = 0.0
    for k in range(1, line.shape[0]):
        diameter += _norm(line[k], line[k - 1], width)
    first, last = line[0], line[-1]
    return np.array(
        [
            diameter,
            _norm(last, first, width),
            total,
            average,
            float(branches),
            float(holes),
            center % width + x0,
            center // width + y0,
            first % width + x0,
            first // width + y0,
            last % width + x0,
            last // width + y0,
        ],
        dtype=np.float64,
    )
