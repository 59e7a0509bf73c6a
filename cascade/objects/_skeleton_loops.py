"""Loops around holes in vigra's skeleton tree, and the cut of inner branches (``_skeleton.py``).

vigra walks the tree from the periphery to the centre; at each leaf, a non-tree edge closing a
cycle of area > 3/2 is followed by a Dijkstra search back to the leaf, and the cycle counts as a
hole when the polygon (vigra's ``inspectPolygon`` scan conversion) holds a non-object pixel.
Leaves that are not on a loop and lie >= 2 pixels inside the object are cut with their branch.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._skeleton_grid import NX, NY
from ._skeleton_paths import INFINITE, NO_LIMIT, search


@njit(cache=True, nogil=True)
def _clockwise(ox: int, oy: int, ax: int, ay: int, bx: int, by: int) -> bool:  # pragma: no cover
    return (ax - ox) * (by - oy) - (ay - oy) * (bx - ox) <= 0


@njit(cache=True, nogil=True)
def _c_divide(a: int, b: int) -> int:  # pragma: no cover
    """C++ integer division (truncation toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@njit(cache=True, nogil=True)
def _scan_intervals(xs: np.ndarray, ys: np.ndarray, width: int) -> np.ndarray:  # pragma: no cover
    """vigra's ``createScanIntervals`` of a closed integer polygon, as sorted keys ``y * width + x``."""
    n = xs.shape[0]
    result = [np.int64(0)]
    result.pop()
    drop = False
    for k in range(n - 1):
        x1, y1, x2, y2 = xs[k], ys[k], xs[k + 1], ys[k + 1]
        if y1 == y2:
            continue
        dy = 1 if y1 < y2 else -1
        t = _c_divide(x2 - x1, y2 - y1)
        y = y1 + dy if drop else y1
        drop = False
        while (y - y2) * dy < 0:
            result.append(y * width + x1 + (y - y1) * t)
            y += dy
        j = (k + 2) % n
        convex = _clockwise(x1, y1, x2, y2, xs[j], ys[j])
        if convex:
            result.append(y2 * width + x2)
        while j != k + 1:
            bend = dy * (ys[j] - y2)
            if bend != 0:
                drop = (convex and bend > 0) or (not convex and bend < 0)
                break
            j = (j + 1) % n
    if drop:
        result.pop(0)
    return np.sort(np.array(result, dtype=np.int64))


@njit(cache=True, nogil=True)
def has_no_hole(poly: np.ndarray, crop: np.ndarray) -> bool:  # pragma: no cover
    """vigra's ``inspectPolygon(poly, hasNoHole)``: every pixel in the polygon is the object."""
    width = crop.shape[1]
    keys = _scan_intervals(poly % width, poly // width, width)
    flat = crop.ravel()
    for k in range(0, keys.shape[0], 2):
        for key in range(keys[k], keys[k + 1] + 1):
            if not flat[key]:
                return False
    return True


@njit(cache=True, nogil=True)
def loops(order, nodes, weights, squared, crop, box, x0, y0):  # type: ignore[no-untyped-def]  # pragma: no cover
    """The hole count and loop length; marks loops (``nodes.loop``) and cuts inner branches."""
    parent, child, length, salience, area, loop = nodes
    height, width = crop.shape
    pred = np.full(width * height, -1, np.int64)
    seen = np.zeros(width * height, np.int64)
    holes = 0
    total = 0.0
    for i in range(order.shape[0] - 1, -1, -1):
        p1 = order[i]
        if child[p1] < 0:
            x1, y1 = p1 % width + x0, p1 // width + y0
            for k in range(8):
                qx, qy = p1 % width + NX[k], p1 // width + NY[k]
                if qx < 0 or qy < 0 or qx >= width or qy >= height:
                    continue
                p2 = qy * width + qx
                if parent[p1] == p2 or weights[p1, k] == INFINITE:
                    continue
                if abs(area[p1] - (x1 * (qy + y0) - y1 * (qx + x0)) - area[p2]) <= 3:
                    continue
                weights[p1, k] = INFINITE
                weights[p2, 7 - k] = INFINITE
                poly = _loop_in_box(weights, p1, p2, width, box, pred, seen)
                if not has_no_hole(poly, crop):
                    holes += 1
                    total += length[p1] + length[p2]
                    most = max(salience[p1], salience[p2])
                    for q in poly[1:]:
                        loop[q] = True
                        salience[q] = max(salience[q], most)
            if not loop[p1] and squared[p1] >= 4:
                _cut(p1, parent, child, salience, weights, width, height)
        if loop[p1]:
            loop[parent[p1]] = True
    return holes, total


@njit(cache=True, nogil=True)
def _loop_in_box(weights, p1, p2, width, box, pred, order):  # type: ignore[no-untyped-def]  # pragma: no cover
    """vigra's ``reRun(weights, p1, p2)`` (no distance limit, still inside the first run's box)."""
    search(weights, box, width, p1, p2, NO_LIMIT, pred, order)
    steps = [p1, p2]
    p = p2
    while True:
        p = pred[p]
        steps.append(p)
        if p == pred[p]:
            return np.array(steps, dtype=np.int64)


@njit(cache=True, nogil=True)
def _cut(p1, parent, child, salience, weights, width, height):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Remove a branch that ends inside the object (vigra: a discretisation artefact)."""
    while True:
        salience[p1] = 0.0
        for k in range(8):
            qx, qy = p1 % width + NX[k], p1 // width + NY[k]
            if 0 <= qx < width and 0 <= qy < height:
                weights[p1, k] = INFINITE
                weights[qy * width + qx, 7 - k] = INFINITE
        if child[parent[p1]] != p1:
            return
        p1 = parent[p1]
