"""The grid algorithms under vigra's 2D skeleton, step for step (see ``_skeleton.py``).

vigra's ``skeletonizeImage`` breaks ties by the order in which it visits pixels, edges and heap
entries, so every routine here keeps vigra's visiting order: pixels in raster order (x fastest),
neighbours in vigra's ``GridGraph`` order, the indexed binary heap of ``ChangeablePriorityQueue``.
Points are ``(x, y)`` tuples in absolute image coordinates; arrays are indexed ``[y, x]`` in the
object's padded crop whose top-left pixel is ``corner``.
"""

from __future__ import annotations

import heapq
import math
import sys

import numpy as np

Point = tuple[int, int]

#: Offsets (dx, dy) of the 8-neighbourhood in vigra's order; the first four are the "back" arcs.
NEIGHBOURS_8 = ((-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1))
#: Offsets (dx, dy) of the causal 4-neighbours an undirected ``EdgeIt`` visits per pixel.
BACK_4 = ((0, -1), (-1, 0))
#: vigra's "infinite" edge weight.
INFINITE = 0.5 * sys.float_info.max
#: ``isSimplePreserveEndPoints`` of vigra's ``skeletonThinning``, as the set of true entries.
SIMPLE_CONFIGURATIONS = frozenset(
    {7, 10, 11, 14, 15, 18, 19, 22, 23, 41, 42, 43, 46, 47, 72, 73, 80, 84, 104, 105, 112, 116}
    | {146, 147, 148, 150, 151, 200, 201, 208, 212, 224, 232, 233, 240, 244}
)


def vector_distance(labels: np.ndarray, corner: Point, max_dist: int) -> np.ndarray:
    """vigra's ``boundaryVectorDistance(labels, v, False, OuterBoundary)`` on a crop.

    Parameters
    ----------
    labels : numpy.ndarray
        bool (y, x) crop: True = the object.
    corner : tuple of int
        Absolute (x, y) of the crop's first pixel (scanline positions are absolute, as in vigra).
    max_dist : int
        vigra's ``maxDist``: twice the sum of the whole image's shape.

    Returns
    -------
    numpy.ndarray
        int64 (y, x, 2): the (dx, dy) from each pixel to its nearest pixel of another label.
    """
    vectors = np.full(labels.shape + (2,), max_dist, dtype=np.int64)
    for y in range(labels.shape[0]):
        _parabola_scan(vectors[y], labels[y], 0, corner[0], max_dist)
    for x in range(labels.shape[1]):
        _parabola_scan(vectors[:, x], labels[:, x], 1, corner[1], max_dist)
    return vectors


def _partial(vec: list[int], dim: int) -> float:
    return float(sum(float(v) * float(v) for v in vec[: dim + 1]))


def _parabola_scan(line: np.ndarray, labels: np.ndarray, dim: int, start: int, max_dist: int) -> None:
    """One scanline of vigra's ``boundaryVectorDistParabola`` (array border inactive)."""
    width = line.shape[0]
    end = float(start + width)
    border = [max_dist, max_dist]
    zero = [0, 0]
    data = [list(map(int, v)) for v in line]
    stack = [[border, _partial(border, dim), 0.0, float(start) - 1.0, end]]
    if start > 0:
        stack = [[zero, 0.0, start - 1.0, start - 1.0, end]]
    current_label = bool(labels[0])
    begin = float(start)
    written = 0
    for i in range(width + 1):
        current = float(start + i)
        point = (data[i] if current_label == bool(labels[i]) else zero) if i < width else border
        apex = _partial(point, dim)
        while True:
            top = stack[-1]
            diff = current - top[3]
            cut = current + (apex - top[1] - diff * diff) / (2.0 * diff)
            if cut < top[2]:
                stack.pop()
                if stack:
                    continue
                cut = begin
            elif cut < top[4]:
                top[4] = cut
            if cut < end:
                stack.append([point, apex, cut, current, end])
            if i < width and current_label == bool(labels[i]):
                break
            written = _write_segment(line, stack, begin, current, written, dim)
            if i == width:
                break
            begin = current
            current_label = bool(labels[i])
            point = data[i]
            apex = _partial(point, dim)
            stack = [[zero, 0.0, begin - 1.0, begin - 1.0, end]]


def _write_segment(
    line: np.ndarray, stack: list[list], begin: float, current: float, index: int, dim: int
) -> int:
    entry = 0
    c = begin
    while c < current:
        while c >= stack[entry][4]:
            entry += 1
        vec = list(stack[entry][0])
        vec[dim] = int(stack[entry][3] - c)
        line[index] = vec
        index += 1
        c += 1.0
    return index


def neighbours(point: Point, lo: Point, hi: Point, offsets: tuple[Point, ...] = NEIGHBOURS_8) -> list[Point]:
    """The neighbours of ``point`` inside the image box ``[lo, hi)``, in vigra's order."""
    x, y = point
    return [(x + dx, y + dy) for dx, dy in offsets if lo[0] <= x + dx < hi[0] and lo[1] <= y + dy < hi[1]]


def thin(dest: np.ndarray, cost: np.ndarray, interior: np.ndarray) -> None:
    """vigra's ``skeletonThinning`` (end points preserved) of the raw skeleton ``dest`` in place.

    ``interior`` marks the pixels with all 8 neighbours inside the image (vigra thins only those).
    vigra orders its queue by ``cost + k * 0.5 / image size`` (k counts the pushes): cost first,
    then first in, first out, which is what this queue does.
    """
    queue: list[tuple[int, int, int, int]] = []
    count = 0
    for y, x in zip(*np.nonzero(dest & interior), strict=True):
        if _simple(dest, y, x):
            heapq.heappush(queue, (int(cost[y, x]), count, y, x))
            count += 1
    while queue:
        _, _, y, x = heapq.heappop(queue)
        if not dest[y, x] or not _simple(dest, y, x):
            continue
        dest[y, x] = False
        for dx, dy in NEIGHBOURS_8:
            qy, qx = y + dy, x + dx
            if interior[qy, qx] and dest[qy, qx] and _simple(dest, qy, qx):
                heapq.heappush(queue, (int(cost[qy, qx]), count, qy, qx))
                count += 1


def _simple(dest: np.ndarray, y: int, x: int) -> bool:
    code = 0
    for dx, dy in NEIGHBOURS_8:
        code = (code << 1) | int(bool(dest[y + dy, x + dx]))
    return code in SIMPLE_CONFIGURATIONS


def inspect_polygon(poly: list[Point], inside: np.ndarray, corner: Point) -> bool:
    """vigra's ``inspectPolygon(poly, hasNoHole)``: True when every pixel in the polygon is the object."""
    for k in range(0, len(poly_points := _scan_intervals(poly)), 2):
        (x0, y), (x1, _) = poly_points[k], poly_points[k + 1]
        for x in range(x0, x1 + 1):
            if not inside[y - corner[1], x - corner[0]]:
                return False
    return True


def _scan_intervals(poly: list[Point]) -> list[Point]:
    """vigra's ``createScanIntervals`` for a closed polygon of integer points."""
    result: list[Point] = []
    drop_next = False
    n = len(poly)
    for k in range(n - 1):
        p1, p2 = poly[k], poly[k + 1]
        if p1[1] == p2[1]:
            continue
        dy = 1 if p1[1] < p2[1] else -1
        t = _c_divide(p2[0] - p1[0], p2[1] - p1[1])
        y = p1[1] + dy if drop_next else p1[1]
        drop_next = False
        while (y - p2[1]) * dy < 0:
            result.append((p1[0] + (y - p1[1]) * t, y))
            y += dy
        j = (k + 2) % n
        convex = _clockwise(p1, p2, poly[j])
        if convex:
            result.append(p2)
        while j != k + 1:
            bend = dy * (poly[j][1] - p2[1])
            if bend != 0:
                drop_next = (convex and bend > 0) or (not convex and bend < 0)
                break
            j = (j + 1) % n
    if drop_next:
        result.pop(0)
    result.sort(key=lambda p: (p[1], p[0]))
    return result


def _c_divide(a: int, b: int) -> int:
    """C++ integer division (truncation toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _clockwise(o: Point, a: Point, b: Point) -> bool:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]) <= 0


def norm(a: Point, b: Point) -> float:
    """vigra's ``norm`` of an integer point difference."""
    dx, dy = a[0] - b[0], a[1] - b[1]
    return math.sqrt(dx * dx + dy * dy)
