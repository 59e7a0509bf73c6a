"""vigra's ``ShortestPathDijkstra`` with its ``ChangeablePriorityQueue``, for ``_skeleton.py``.

Ties between equal path lengths decide vigra's skeleton diameter, centre and loops, so the heap is
vigra's indexed binary heap (same sift rules), the neighbours are visited in vigra's ``GridGraph``
order and a search is confined to a region of interest exactly as vigra's ``run(start, stop, ...)``.
"""

from __future__ import annotations

import sys

from ._skeleton_grid import INFINITE, Point, neighbours

#: vigra's default ``maxDistance`` of a search.
NO_LIMIT = sys.float_info.max

Edge = tuple[Point, Point]


def edge(a: Point, b: Point) -> Edge:
    """The key of the undirected edge between two neighbouring pixels."""
    return (a, b) if a < b else (b, a)


class _Heap:
    """vigra's ``ChangeablePriorityQueue`` (a min-heap, 1-based, with priority changes)."""

    def __init__(self) -> None:
        self.heap: list[Point] = [(0, 0)]
        self.index: dict[Point, int] = {}
        self.priority: dict[Point, float] = {}

    def push(self, item: Point, priority: float) -> None:
        if item not in self.index:
            self.heap.append(item)
            self.index[item] = len(self.heap) - 1
            self.priority[item] = priority
            self._up(len(self.heap) - 1)
        elif priority > self.priority[item]:
            self.priority[item] = priority
            self._down(self.index[item])
        elif priority < self.priority[item]:
            self.priority[item] = priority
            self._up(self.index[item])

    def pop(self) -> Point:
        top = self.heap[1]
        self._swap(1, len(self.heap) - 1)
        self.heap.pop()
        self._down(1)
        del self.index[top]
        return top

    def _swap(self, i: int, j: int) -> None:
        heap = self.heap
        heap[i], heap[j] = heap[j], heap[i]
        self.index[heap[i]] = i
        self.index[heap[j]] = j

    def _up(self, k: int) -> None:
        p = self.priority
        while k > 1 and p[self.heap[k // 2]] > p[self.heap[k]]:
            self._swap(k, k // 2)
            k //= 2

    def _down(self, k: int) -> None:
        p = self.priority
        size = len(self.heap) - 1
        while 2 * k <= size:
            j = 2 * k
            if j < size and p[self.heap[j]] > p[self.heap[j + 1]]:
                j += 1
            if p[self.heap[k]] <= p[self.heap[j]]:
                break
            self._swap(k, j)
            k = j


class ShortestPaths:
    """vigra's ``ShortestPathDijkstra`` on the 8-connected grid, restricted to one box.

    Parameters
    ----------
    weights : dict
        Edge weights by :func:`edge` key; an edge not in it weighs 0 (vigra's zero-initialised map).
    image : tuple of two points
        The image box ``[lo, hi)`` in (x, y): which neighbours exist.
    """

    def __init__(self, weights: dict[Edge, float], image: tuple[Point, Point]) -> None:
        self.weights = weights
        self.image = image
        self.box = image
        self.predecessors: dict[Point, Point] = {}
        self.order: list[Point] = []
        self.target: Point | None = None

    def run(self, box: tuple[Point, Point], source: Point, limit: float = NO_LIMIT) -> None:
        """A search from ``source`` inside ``box`` (vigra's ``run(start, stop, ...)``)."""
        self.box = box
        self.rerun(source, None, limit)

    def rerun(self, source: Point, target: Point | None = None, limit: float = NO_LIMIT) -> None:
        """A new search in the same box (vigra's ``reRun``)."""
        self.predecessors = {source: source}
        self.order = []
        heap = _Heap()
        heap.push(source, 0.0)
        distance = {source: 0.0}
        lo, hi = self.box
        while len(heap.heap) > 1:
            top = heap.heap[1]
            if distance[top] > limit:
                break
            heap.pop()
            self.order.append(top)
            if top == target:
                break
            for other in neighbours(top, *self.image):
                step = distance[top] + self.weights.get(edge(top, other), 0.0) + 0.0
                if other in heap.index:
                    if step < distance[other]:
                        heap.push(other, step)
                        distance[other] = step
                        self.predecessors[other] = top
                elif other not in self.predecessors and _inside(other, lo, hi) and step <= limit:
                    heap.push(other, step)
                    distance[other] = step
                    self.predecessors[other] = top
        for left in heap.index:
            del self.predecessors[left]
        last = self.order[-1]
        self.target = last if target is None or last == target else None


def _inside(p: Point, lo: Point, hi: Point) -> bool:
    return lo[0] <= p[0] < hi[0] and lo[1] <= p[1] < hi[1]


__all__ = ["INFINITE", "NO_LIMIT", "ShortestPaths", "edge"]
