"""vigra's ``ShortestPathDijkstra`` with its ``ChangeablePriorityQueue``, as numba kernels.

Ties between equal path lengths decide vigra's skeleton diameter, centre and loops, so the heap is
vigra's indexed binary heap (same sift rules), neighbours are visited in vigra's ``GridGraph``
order and a search is confined to a box exactly as vigra's ``run(start, stop, ...)``. Pixels are
linear indices ``y * width + x`` of the object's padded crop; ``weights[i, k]`` is the weight of
the edge from pixel ``i`` to its neighbour ``k`` (kept symmetric: ``weights[j, 7 - k]``), 0 where
vigra never set one.
"""

from __future__ import annotations

import sys

import numpy as np
from numba import njit

from ._skeleton_grid import NX, NY

#: vigra's "infinite" edge weight.
INFINITE = 0.5 * sys.float_info.max
#: vigra's default ``maxDistance`` of a search.
NO_LIMIT = sys.float_info.max


@njit(cache=True, nogil=True)
def _swap(heap: np.ndarray, index: np.ndarray, i: int, j: int) -> None:  # pragma: no cover
    a = heap[i]
    heap[i] = heap[j]
    heap[j] = a
    index[heap[i]] = i
    index[heap[j]] = j


@njit(cache=True, nogil=True)
def _up(heap: np.ndarray, index: np.ndarray, priority: np.ndarray, k: int) -> None:  # pragma: no cover
    while k > 1 and priority[heap[k // 2]] > priority[heap[k]]:
        _swap(heap, index, k, k // 2)
        k //= 2


@njit(cache=True, nogil=True)
def _down(
    heap: np.ndarray, index: np.ndarray, priority: np.ndarray, k: int, size: int
) -> None:  # pragma: no cover
    while 2 * k <= size:
        j = 2 * k
        if j < size and priority[heap[j]] > priority[heap[j + 1]]:
            j += 1
        if priority[heap[k]] <= priority[heap[j]]:
            break
        _swap(heap, index, k, j)
        k = j


@njit(cache=True, nogil=True)
def _push(heap, index, priority, size, item, value):  # type: ignore[no-untyped-def]  # pragma: no cover
    """vigra's ``push``: insert, or change the priority of an item already queued; the new size."""
    if index[item] < 0:
        size += 1
        index[item] = size
        heap[size] = item
        priority[item] = value
        _up(heap, index, priority, size)
    elif value > priority[item]:
        priority[item] = value
        _down(heap, index, priority, index[item], size)
    elif value < priority[item]:
        priority[item] = value
        _up(heap, index, priority, index[item])
    return size


@njit(cache=True, nogil=True)
def _pop(heap: np.ndarray, index: np.ndarray, priority: np.ndarray, size: int) -> int:  # pragma: no cover
    top = heap[1]
    _swap(heap, index, 1, size)
    _down(heap, index, priority, 1, size - 1)
    index[top] = -1
    return int(top)


@njit(cache=True, nogil=True)
def search(weights, box, width, source, target, limit, pred, order):  # type: ignore[no-untyped-def]  # pragma: no cover
    """One vigra Dijkstra search from ``source`` inside ``box`` = (x0, y0, x1, y1), crop-local.

    Fills ``pred`` (-1 = not reached; the source is its own predecessor) and ``order`` (the
    settled pixels); returns ``(settled count, vigra's target() or -1)``. ``target`` -1: none.
    """
    n = pred.shape[0]
    height = n // width
    heap = np.zeros(n + 1, np.int64)
    index = np.full(n, -1, np.int64)
    distance = np.zeros(n)
    pred[:] = -1
    pred[source] = source
    size = _push(heap, index, distance, 0, source, 0.0)
    settled = 0
    while size > 0:
        top = heap[1]
        if distance[top] > limit:
            break
        _pop(heap, index, distance, size)
        size -= 1
        order[settled] = top
        settled += 1
        if top == target:
            break
        x, y = top % width, top // width
        for k in range(8):
            qx, qy = x + NX[k], y + NY[k]
            if qx < 0 or qy < 0 or qx >= width or qy >= height:
                continue
            other = qy * width + qx
            step = distance[top] + weights[top, k] + 0.0
            if index[other] >= 0:
                if step < distance[other]:
                    size = _push(heap, index, distance, size, other, step)
                    pred[other] = top
            elif pred[other] == -1 and box[0] <= qx < box[2] and box[1] <= qy < box[3] and step <= limit:
                size = _push(heap, index, distance, size, other, step)
                pred[other] = top
    for k in range(1, size + 1):
        pred[heap[k]] = -1
    last = order[settled - 1]
    return settled, (last if target < 0 or last == target else -1)
