"""The grid steps under vigra's 2D skeleton, step for step, as numba kernels (see ``_skeleton.py``).

vigra's ``skeletonizeImage`` breaks ties by the order in which it visits pixels, edges and queue
entries, so every kernel keeps vigra's visiting order: pixels in raster order (x fastest),
neighbours in vigra's ``GridGraph`` order. Arrays are the object's padded crop, indexed
``[y, x]``; positions that enter floating-point arithmetic are absolute (``x0``, ``y0`` is the
crop's first pixel in the image), as in vigra.
"""

from __future__ import annotations

import heapq

import numpy as np
from numba import njit

#: Offsets of the 8-neighbourhood in vigra's order (the first four are the "back" arcs);
#: the opposite of neighbour ``k`` is ``7 - k``.
NX = np.array([-1, 0, 1, -1, 1, -1, 0, 1], dtype=np.int64)
NY = np.array([-1, -1, -1, 0, 0, 1, 1, 1], dtype=np.int64)
#: ``isSimplePreserveEndPoints`` of vigra's ``skeletonThinning``: the true entries.
_SIMPLE_CODES: tuple[int, ...] = (
    7,
    10,
    11,
    14,
    15,
    18,
    19,
    22,
    23,
    41,
    42,
    43,
    46,
    47,
    72,
    73,
    80,
    84,
    104,
    105,
)
_SIMPLE_CODES += (112, 116, 146, 147, 148, 150, 151, 200, 201, 208, 212, 224, 232, 233, 240, 244)
SIMPLE = np.zeros(256, dtype=np.bool_)
SIMPLE[list(_SIMPLE_CODES)] = True


@njit(cache=True, nogil=True)
def vector_distance(crop: np.ndarray, x0: int, y0: int, max_dist: int) -> np.ndarray:  # pragma: no cover
    """vigra's ``boundaryVectorDistance(labels, v, False, OuterBoundary)`` of a bool crop.

    Returns int64 (y, x, 2): the (dx, dy) from each pixel to the nearest pixel of another label;
    ``max_dist`` is vigra's ``maxDist`` (twice the sum of the whole image's shape).
    """
    height, width = crop.shape
    vectors = np.full((height, width, 2), max_dist, dtype=np.int64)
    for y in range(height):
        _parabola_scan(vectors[y], crop[y], 0, x0, max_dist)
    for x in range(width):
        _parabola_scan(vectors[:, x], crop[:, x], 1, y0, max_dist)
    return vectors


@njit(cache=True, nogil=True)
def _apex(vx: int, vy: int, dim: int) -> float:  # pragma: no cover
    if dim == 0:
        return float(vx) * float(vx)
    return float(vx) * float(vx) + float(vy) * float(vy)


@njit(cache=True, nogil=True)
def _parabola_scan(
    line: np.ndarray, labels: np.ndarray, dim: int, start: int, max_dist: int
) -> None:  # pragma: no cover
    """One scanline of vigra's ``boundaryVectorDistParabola`` (array border inactive)."""
    width = line.shape[0]
    end = float(start + width)
    size = width + 2
    px = np.zeros(size, np.int64)
    py = np.zeros(size, np.int64)
    st = np.zeros((size, 4))  # apex height, left, centre, right
    top = 0
    if start > 0:
        _entry(st, 0, 0.0, start - 1.0, start - 1.0, end)
    else:
        px[0] = max_dist
        py[0] = max_dist
        _entry(st, 0, _apex(max_dist, max_dist, dim), 0.0, start - 1.0, end)
    label = labels[0]
    begin = float(start)
    written = 0
    for i in range(width + 1):
        current = float(start + i)
        if i == width:
            qx, qy = max_dist, max_dist
        elif label == labels[i]:
            qx, qy = line[i, 0], line[i, 1]
        else:
            qx, qy = 0, 0
        apex = _apex(qx, qy, dim)
        while True:
            diff = current - st[top, 2]
            cut = current + (apex - st[top, 0] - diff * diff) / (2.0 * diff)
            if cut < st[top, 1]:
                top -= 1
                if top >= 0:
                    continue
                cut = begin
            elif cut < st[top, 3]:
                st[top, 3] = cut
            if cut < end:
                top += 1
                px[top] = qx
                py[top] = qy
                _entry(st, top, apex, cut, current, end)
            if i < width and label == labels[i]:
                break
            written = _write_segment(line, px, py, st, begin, current, written, dim)
            if i == width:
                break
            begin = current
            label = labels[i]
            qx, qy = line[i, 0], line[i, 1]
            apex = _apex(qx, qy, dim)
            top = 0
            px[0] = 0
            py[0] = 0
            _entry(st, 0, 0.0, begin - 1.0, begin - 1.0, end)


@njit(cache=True, nogil=True)
def _entry(
    st: np.ndarray, k: int, apex: float, left: float, center: float, right: float
) -> None:  # pragma: no cover
    st[k, 0] = apex
    st[k, 1] = left
    st[k, 2] = center
    st[k, 3] = right


@njit(cache=True, nogil=True)
def _write_segment(line, px, py, st, begin, current, index, dim):  # type: ignore[no-untyped-def]  # pragma: no cover
    entry = 0
    c = begin
    while c < current:
        while c >= st[entry, 3]:
            entry += 1
        line[index, 0] = px[entry]
        line[index, 1] = py[entry]
        line[index, dim] = int(st[entry, 2] - c)
        index += 1
        c += 1.0
    return index


@njit(cache=True, nogil=True)
def raw_skeleton(
    crop: np.ndarray, vectors: np.ndarray, squared: np.ndarray
) -> np.ndarray:  # pragma: no cover
    """vigra's skeleton candidates: one pass over the 4-connected edges, then the short ends.

    ``vigra``'s undirected edge iterator visits each pixel in raster order and its two causal
    4-neighbours, above then left; a pixel pair is the edge's (u, v).
    """
    height, width = crop.shape
    dest = np.zeros((height, width), dtype=np.bool_)
    ends = [(np.int64(0), np.int64(0))]
    ends.pop()
    for y in range(height):
        for x in range(width):
            if y > 0:
                _mark(crop, vectors, squared, dest, ends, x, y, x, y - 1)
            if x > 0:
                _mark(crop, vectors, squared, dest, ends, x, y, x - 1, y)
    for k in range(len(ends)):
        ex, ey = ends[k]
        near = 0
        for n in range(8):
            qx, qy = ex + NX[n], ey + NY[n]
            if 0 <= qx < width and 0 <= qy < height and dest[qy, qx] and squared[qy, qx] < 4:
                near += 1
        if near == 0:
            dest[ey + int(vectors[ey, ex, 1] / 2), ex + int(vectors[ey, ex, 0] / 2)] = True
    return dest


@njit(cache=True, nogil=True)
def _mark(crop, vectors, squared, dest, ends, x1, y1, x2, y2):  # type: ignore[no-untyped-def]  # pragma: no cover
    """vigra's test of the edge (p1, p2) of the 4-connected grid."""
    l1 = crop[y1, x1]
    l2 = crop[y2, x2]
    v1x, v1y = vectors[y1, x1, 0], vectors[y1, x1, 1]
    v2x, v2y = vectors[y2, x2, 0], vectors[y2, x2, 1]
    if l1 != l2:
        if l1 and max(abs(v1x + x1 - x2), abs(v1y + y1 - y2)) > 1:
            dest[y1, x1] = True
        if l2 and max(abs(v2x + x2 - x1), abs(v2y + y2 - y1)) > 1:
            dest[y2, x2] = True
        return
    if not l1:
        return
    dpx, dpy = x2 - x1, y2 - y1
    dvx, dvy = v2x - v1x + dpx, v2y - v1y + dpy
    if max(abs(dvx), abs(dvy)) <= 1:
        return
    d1 = dvx * dpx + dvy * dpy
    d2 = dvx * (v1x + v2x) + dvy * (v1y + v2y)
    cx, cy = (x1, y1) if d1 * d2 <= 0 else (x2, y2)
    dest[cy, cx] = True
    if squared[cy, cx] == 4:
        ends.append((np.int64(cx), np.int64(cy)))


@njit(cache=True, nogil=True)
def thin(dest: np.ndarray, cost: np.ndarray, interior: np.ndarray) -> None:  # pragma: no cover
    """vigra's ``skeletonThinning`` (end points preserved) of the raw skeleton ``dest`` in place.

    ``interior`` marks the pixels with all 8 neighbours inside the image (vigra thins only those).
    vigra orders its queue by ``cost + k * 0.5 / image size`` (k counts the pushes): cost first,
    then first in, first out, which is what this queue does.
    """
    height, width = dest.shape
    queue = [(np.int64(0), np.int64(0), np.int64(0), np.int64(0))]
    queue.pop()
    count = 0
    for y in range(height):
        for x in range(width):
            if dest[y, x] and interior[y, x] and _simple(dest, x, y):
                heapq.heappush(queue, (cost[y, x], np.int64(count), np.int64(y), np.int64(x)))
                count += 1
    while len(queue) > 0:
        _, _, py, px = heapq.heappop(queue)
        if not dest[py, px] or not _simple(dest, px, py):
            continue
        dest[py, px] = False
        for n in range(8):
            qx, qy = px + NX[n], py + NY[n]
            if interior[qy, qx] and dest[qy, qx] and _simple(dest, qx, qy):
                heapq.heappush(queue, (cost[qy, qx], np.int64(count), qy, qx))
                count += 1


@njit(cache=True, nogil=True)
def _simple(dest: np.ndarray, x: int | np.int64, y: int | np.int64) -> bool:  # pragma: no cover
    code = 0
    for n in range(8):
        code = (code << 1) | (1 if dest[y + NY[n], x + NX[n]] else 0)
    return bool(SIMPLE[code])
