"""The tree part of vigra's ``skeletonizeImage`` for one object (see ``_skeleton.py``).

From the thinned skeleton: the longest path (two Dijkstra sweeps), its arc-length middle as the
root, the skeleton tree with branch lengths and saliences, loops that enclose holes, and the
branches that survive vigra's relative salience pruning (threshold 0.2, topology preserved).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._skeleton_grid import INFINITE, Point, inspect_polygon, neighbours, norm
from ._skeleton_paths import ShortestPaths, edge

#: vigra's ``pruneSalienceRelative`` threshold as ilastik calls it.
PRUNING_THRESHOLD = 0.2
#: Branches shorter than this get no salience (vigra: staircase noise of the boundary).
MIN_LENGTH = 4.0
#: The four causal 8-neighbours (vigra's ``OutBackArcIt``).
BACK_8 = ((-1, -1), (0, -1), (1, -1), (-1, 0))


@dataclass
class _Node:
    """vigra's ``SkeletonNode``."""

    parent: Point | None = None
    child: Point | None = None
    length: float = 0.0
    salience: float = 1.0
    area: int = 0
    loop: bool = False


def skeleton_tree_features(
    points: list[Point], paths: ShortestPaths, squared: np.ndarray, crop: np.ndarray, corner: Point
) -> dict[str, object]:
    """vigra's per-region skeleton analysis and its ``SkeletonFeatures``.

    Parameters
    ----------
    points : list of (x, y)
        The thinned skeleton's pixels in raster order (absolute coordinates).
    paths : ShortestPaths
        The searcher over the skeleton's edge weights (which this function changes).
    squared : numpy.ndarray
        Squared distance to the boundary per crop pixel.
    crop : numpy.ndarray
        The object's bool crop (for the hole test).
    corner : (x, y)
        Absolute position of the crop's first pixel.

    Returns
    -------
    dict
        Feature name -> value (points as (x, y)).
    """
    nodes = {p: _Node(parent=p) for p in points}
    lower = (min(p[0] for p in points), min(p[1] for p in points))
    upper = (max(p[0] for p in points) + 1, max(p[1] for p in points) + 1)
    limit = _max_weight(paths.image)
    paths.run((lower, upper), points[-1], limit)
    anchor = paths.target
    paths.rerun(anchor, None, limit)
    line = [paths.target]
    while paths.predecessors[line[-1]] != line[-1]:
        line.append(paths.predecessors[line[-1]])
    center = line[_round(_arc_length_middle(line))]
    paths.rerun(center, None, limit)
    order = list(paths.order)
    distance = {p: math.sqrt(float(squared[p[1] - corner[1], p[0] - corner[0]])) for p in order}
    _grow(order, nodes, paths, distance)
    _propagate(order, nodes)
    nodes[center].loop = True
    holes, loop_length = _loops(order, nodes, paths, squared, crop, corner)
    threshold = PRUNING_THRESHOLD * nodes[center].salience
    branches = [nodes[p] for p in order if nodes[p].child is None and nodes[p].salience >= threshold]
    branches = [n for n in branches if not n.loop]
    total = loop_length
    average = 0.0
    for n in branches:
        average += n.length
        total += n.length
    if branches:
        average /= len(branches)
    diameter = 0.0
    for k in range(1, len(line)):
        diameter += norm(line[k], line[k - 1])
    return {
        "Diameter": diameter,
        "Euclidean Diameter": norm(line[-1], line[0]),
        "Total Length": total,
        "Average Length": average,
        "Branch Count": float(len(branches)),
        "Hole Count": float(holes),
        "Skeleton Center": center,
        "Terminal 1": line[0],
        "Terminal 2": line[-1],
    }


def _max_weight(image: tuple[Point, Point]) -> float:
    """vigra's search limit: the number of edges of the image's 8-connected grid times sqrt(2)."""
    w, h = image[1][0] - image[0][0], image[1][1] - image[0][1]
    edges = (w - 1) * h + w * (h - 1) + 2 * (w - 1) * (h - 1)
    return edges * math.sqrt(2.0)


def _round(value: float) -> int:
    """vigra's ``roundi``."""
    return int(value + 0.5) if value >= 0.0 else int(value - 0.5)


def _arc_length_middle(line: list[Point]) -> float:
    """vigra's ``Polygon::arcLengthQuantile(0.5)``."""
    if len(line) == 1:
        return 0.0
    arc = [0.0]
    for k in range(1, len(line)):
        arc.append(arc[-1] + norm(line[k], line[k - 1]))
    half = 0.5 * arc[-1]
    k = 0
    while k < len(line) and arc[k] < half:
        k += 1
    k -= 1
    return k + (half - arc[k]) / (arc[k + 1] - arc[k])


def _grow(order: list[Point], nodes: dict[Point, _Node], paths: ShortestPaths, distance: dict) -> None:
    """From the periphery to the centre: the tree, non-tree edges cut, lengths and saliences."""
    pred = paths.predecessors
    for p1 in reversed(order):
        p2 = pred[p1]
        n1, n2 = nodes[p1], nodes[p2]
        n1.parent = p2
        for p in neighbours(p1, *paths.image, BACK_8):
            key = edge(p1, p)
            if paths.weights.get(key, 0.0) == INFINITE or p == p2 or pred.get(p) == p1:
                continue
            if n1.child is None or nodes[p].child is None:
                continue
            paths.weights[key] = INFINITE
        length = n1.length + norm(p1, p2)
        if n2.length < length:
            n2.length = length
            n2.child = p1
        if n1.length >= MIN_LENGTH:
            n1.salience = max(n1.salience, (n1.length + 0.5) / distance[p1])
            if n2.salience < n1.salience:
                n2.salience = n1.salience


def _propagate(order: list[Point], nodes: dict[Point, _Node]) -> None:
    """From the centre to the periphery: lengths and saliences down the main branches, areas."""
    for p1 in order:
        n1 = nodes[p1]
        p2 = n1.parent
        assert p2 is not None
        n2 = nodes[p2]
        if p1 == n2.child:
            n1.length = n2.length
            n1.salience = n2.salience
        else:
            n1.length += norm(p2, p1)
        n1.area = n2.area + (p1[0] * p2[1] - p1[1] * p2[0])


def _loops(
    order: list[Point],
    nodes: dict[Point, _Node],
    paths: ShortestPaths,
    squared: np.ndarray,
    crop: np.ndarray,
    corner: Point,
) -> tuple[int, float]:
    """From the periphery to the centre: loops around holes; branches ending inside are cut."""
    holes = 0
    length = 0.0
    for p1 in reversed(order):
        n1 = nodes[p1]
        if n1.child is None:
            for p2 in neighbours(p1, *paths.image):
                n2 = nodes.setdefault(p2, _Node())
                key = edge(p1, p2)
                if n1.parent == p2 or paths.weights.get(key, 0.0) == INFINITE:
                    continue
                if abs(n1.area - (p1[0] * p2[1] - p1[1] * p2[0]) - n2.area) <= 3:
                    continue
                paths.weights[key] = INFINITE
                poly = _loop(paths, p1, p2)
                if not inspect_polygon(poly, crop, corner):
                    holes += 1
                    length += n1.length + n2.length
                    most = max(n1.salience, n2.salience)
                    for q in poly[1:]:
                        n = nodes.setdefault(q, _Node())
                        n.loop = True
                        n.salience = max(n.salience, most)
            if not n1.loop and squared[p1[1] - corner[1], p1[0] - corner[0]] >= 4:
                _cut(p1, nodes, paths)
        if n1.loop:
            assert n1.parent is not None
            nodes[n1.parent].loop = True
    return holes, length


def _loop(paths: ShortestPaths, p1: Point, p2: Point) -> list[Point]:
    paths.rerun(p1, p2)
    poly = [p1, p2]
    p = p2
    while True:
        p = paths.predecessors[p]
        poly.append(p)
        if p == paths.predecessors[p]:
            return poly


def _cut(p1: Point, nodes: dict[Point, _Node], paths: ShortestPaths) -> None:
    """Remove a branch that ends inside the object (vigra: a discretisation artefact)."""
    n = nodes[p1]
    while True:
        n.salience = 0.0
        for q in neighbours(p1, *paths.image):
            paths.weights[edge(p1, q)] = INFINITE
        assert n.parent is not None
        if nodes[n.parent].child != p1:
            return
        p1 = n.parent
        n = nodes[p1]
