"""Slab-wise ``dask.array.store``: memory bounded by the slab, not by the volume.

One ``da.store`` over a whole volume lets dask's scheduler keep the halo pieces of every
block it has started until all their neighbours are done; in 3D that frontier grows with
the volume. Storing in slabs (a few layers of blocks along the slowest axis, or a tile of
one layer when a layer alone is too big) makes each compute small and independent: peak
memory depends on the slab, and the only cost is re-reading the input halo at slab edges.

Slab edges are chosen on block edges shared by the stored array and by the array the work
was chunked in (``compute_chunks``), so no block of features is computed twice.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import math
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.base import compute

from .._config import SLAB_BLOCKS, config_count
from ..progress import report_progress, task_counter

__all__ = ["active_client", "aligned_block", "parallelism", "slab_boxes", "store_slabs"]

#: Slabs hold at least this many blocks (more when many threads compute them).
MIN_SLAB_BLOCKS = 16
#: On a distributed cluster, slabs queued while one runs: its last blocks and the next slab's first
#: ones overlap, and the graph of the next slab reaches the scheduler before the workers need it.
SLABS_AHEAD = 1


def active_client() -> Any:
    """The distributed client computations go to, or None (without importing distributed)."""
    if "distributed" not in sys.modules:  # no client can exist without it
        return None
    from distributed import default_client

    try:
        return default_client()  # type: ignore[no-untyped-call]
    except ValueError:
        return None


def parallelism() -> int:
    """Threads computing tasks: the distributed client's workers, else the local scheduler's."""
    client = active_client()
    if client is not None:
        return max(1, int(sum(client.nthreads().values())))
    workers = dask.config.get("num_workers", None)
    return int(workers) if workers else os.cpu_count() or 1


def aligned_block(block: Sequence[int], chunks: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """A storage block shape snapped to the computed chunks: each side becomes the divisor or
    multiple of the chunk's side nearest to it (by ratio), so that every computed block writes
    whole storage blocks and slabs can end on shared edges.

    Examples
    --------
    >>> aligned_block((50, 50, 50, 1), ((64, 64), (64, 64), (64, 64), (2,)))
    (64, 64, 64, 1)
    >>> aligned_block((16, 300), ((100, 100), (64, 64, 64, 64, 64)))
    (20, 320)
    """
    out = []
    for want, axis_chunks in zip(block, chunks, strict=True):
        side = int(axis_chunks[0]) if len(axis_chunks) else 1
        if want <= 0 or side <= 0:
            out.append(max(want, 1))
            continue
        divisors = [side // k for k in range(1, side + 1) if side % k == 0]
        multiples = [side * k for k in range(1, max(2, 2 * want // side + 2))]
        best = min(divisors + multiples, key=lambda n: abs(math.log(n / want)))
        out.append(min(best, sum(axis_chunks)))
    return tuple(out)


def _slab_blocks() -> int:
    configured = config_count(SLAB_BLOCKS)
    if configured is not None:
        return configured
    return max(MIN_SLAB_BLOCKS, 4 * parallelism())


def _edges(chunks: Sequence[int]) -> list[int]:
    return [int(e) for e in np.cumsum((0, *chunks))]


def _common_edges(stored: Sequence[int], computed: Sequence[int] | None) -> list[int]:
    """Block edges along one axis that both chunkings share (always the two ends)."""
    edges = _edges(stored)
    if computed is None:
        return edges
    shared = set(_edges(computed))
    return [e for e in edges if e in shared]


def slab_boxes(numblocks: Sequence[int], max_blocks: int) -> list[tuple[range, ...]]:
    """Split a block grid into boxes of at most ``max_blocks`` blocks, slowest axis first.

    A box spans whole trailing axes when it can (several layers of blocks along axis 0);
    when one layer alone has more than ``max_blocks`` blocks it is split along the next axis.

    Examples
    --------
    >>> [tuple((r.start, r.stop) for r in box) for box in slab_boxes((4, 2, 2), 8)]
    [((0, 2), (0, 2), (0, 2)), ((2, 4), (0, 2), (0, 2))]
    """
    boxes: list[tuple[range, ...]] = []

    def split(prefix: tuple[range, ...], axis: int) -> None:
        size = numblocks[axis]
        rest = math.prod(numblocks[axis + 1 :])
        if rest > max_blocks and axis + 1 < len(numblocks):
            for i in range(size):
                split((*prefix, range(i, i + 1)), axis + 1)
            return
        step = max(1, max_blocks // max(rest, 1))
        trailing = tuple(range(n) for n in numblocks[axis + 1 :])
        for i in range(0, size, step):
            boxes.append((*prefix, range(i, min(i + step, size)), *trailing))

    if not numblocks or 0 in numblocks:
        return []
    split((), 0)
    return boxes


def store_slabs(
    source: da.Array,
    target: Any,
    *,
    lock: Any = False,
    compute_chunks: tuple[tuple[int, ...], ...] | None = None,
    skip: Callable[[tuple[int, ...]], bool] | None = None,
    label: str = "",
) -> tuple[int, int]:
    """Store ``source`` into ``target`` slab by slab; return (blocks written, blocks in all).

    Parameters
    ----------
    source : dask.array.Array
        What to store; each of its chunks is written with one ``target[region] = block``.
    target : array-like with ``__setitem__``
        Where to store it (zarr array, h5py-backed target, N5 target ...).
    lock : bool or lock
        Passed to ``dask.array.store``.
    compute_chunks : tuple of tuples, optional
        The chunks the work was done in, if ``source`` was rechunked for the target: slab
        edges are kept on edges of both.
    skip : callable, optional
        ``skip(block_index)`` true for blocks of ``source`` already stored (resumed runs).
    label : str
        What is being stored, for the progress display.
    """
    computed = compute_chunks or (None,) * source.ndim
    grid = [_common_edges(c, k) for c, k in zip(source.chunks, computed, strict=True)]
    edges = [_edges(c) for c in source.chunks]
    # a slab is limited in computed blocks: count how many fall in one cell of the shared grid
    per_cell = math.prod(
        max(1.0, len(k or c) / (len(g) - 1)) for c, k, g in zip(source.chunks, computed, grid, strict=True)
    )
    boxes = slab_boxes([len(g) - 1 for g in grid], max(1, int(_slab_blocks() / per_cell)))
    total = math.prod(source.numblocks)
    gate = _Gate(target)
    try:
        written = _store_boxes(source, gate, boxes, grid, edges, lock, skip, label)
    except BaseException:
        gate.close()  # no write after the failure: the caller removes the partial output next
        settle_zarr_writes()
        raise
    return written, total


def settle_zarr_writes(timeout: float = 60.0) -> None:
    """Wait for the chunk writes zarr still runs after a failed store (at most ``timeout`` s).

    zarr 3 writes the chunks of one region concurrently on its own IO thread
    (``asyncio.gather``): when one chunk fails, the call raises at once while its siblings keep
    writing, and a late write recreates the folders of an output just removed. Nothing to do
    when zarr is not loaded or its loop is not running.
    """
    sync = sys.modules.get("zarr.core.sync")
    loops = getattr(sync, "loop", None)
    loop = loops[0] if isinstance(loops, list) and loops else None
    if not isinstance(loop, asyncio.AbstractEventLoop) or not loop.is_running():
        return

    async def others() -> None:
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    try:
        asyncio.run_coroutine_threadsafe(others(), loop).result(timeout + 1.0)
    except Exception:  # a loop closing meanwhile: the caller's removal still retries
        return


class _Gate:
    """A store target that stops writing once closed, and whose closing waits for running writes.

    dask's local schedulers raise the first error while other threads still run their
    tasks; without the gate those would write into (and recreate) an output just removed.
    """

    def __init__(self, target: Any) -> None:
        self.target = target
        self._setup()

    def _setup(self) -> None:
        self.closed = False
        self.active = 0
        self.cond = threading.Condition()

    def __setitem__(self, index: Any, value: Any) -> None:
        with self.cond:
            if self.closed:
                raise _Closed
            self.active += 1
        try:
            self.target[index] = value
        finally:
            with self.cond:
                self.active -= 1
                self.cond.notify_all()

    def close(self, timeout: float = 120.0) -> None:
        """Refuse further writes and wait (up to ``timeout`` s) for those under way."""
        with self.cond:
            self.closed = True
            self.cond.wait_for(lambda: self.active == 0, timeout=timeout)

    def __getstate__(self) -> dict[str, Any]:
        return {"target": self.target}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.target = state["target"]
        self._setup()


class _Closed(Exception):
    """A write after the store failed (never seen by callers: the first error is raised)."""


def _store_boxes(
    source: da.Array,
    target: Any,
    boxes: Sequence[Sequence[range]],
    grid: Sequence[Sequence[int]],
    edges: Sequence[Sequence[int]],
    lock: Any,
    skip: Callable[[tuple[int, ...]], bool] | None,
    label: str,
) -> int:
    client = active_client()
    written = 0
    pending: collections.deque[tuple[int, list[Any]]] = collections.deque()
    try:
        for number, box in enumerate(boxes):
            stored, count = _box_store(source, target, box, grid, edges, lock, skip)
            written += count
            if stored is None:
                pass
            elif client is None:
                with task_counter(label, number, len(boxes)):
                    compute(*stored)
            else:  # the next slab is queued while this one runs: no worker waits between slabs
                pending.append((number, client.compute(stored)))
                if len(pending) <= SLABS_AHEAD:
                    continue
                number, futures = pending.popleft()
                client.gather(futures)
            report_progress(label, number + 1, len(boxes))
        while pending:
            number, futures = pending.popleft()
            client.gather(futures)
            report_progress(label, number + 1, len(boxes))
    except BaseException:
        if pending:  # no slab keeps writing after the failure
            client.cancel([future for _, futures in pending for future in futures])
        raise
    return written


def _box_store(
    source: da.Array,
    target: Any,
    box: Sequence[range],
    grid: Sequence[Sequence[int]],
    edges: Sequence[Sequence[int]],
    lock: Any,
    skip: Callable[[tuple[int, ...]], bool] | None,
) -> tuple[Any, int]:
    """The lazy stores of one slab's blocks that are not stored yet (None if none), and their count."""
    lo = [g[r.start] for g, r in zip(grid, box, strict=True)]
    hi = [g[r.stop] for g, r in zip(grid, box, strict=True)]
    blocks = [range(e.index(a), e.index(b)) for e, a, b in zip(edges, lo, hi, strict=True)]
    keys = list(itertools.product(*blocks))
    todo = [k for k in keys if skip is None or not skip(k)]
    if not todo:
        return None, 0
    if len(todo) == len(keys):
        region = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        stored = da.store(source[region], target, regions=region, lock=lock, compute=False)
        return _delayed_list(stored), len(todo)
    regions = [tuple(slice(e[i], e[i + 1]) for e, i in zip(edges, key, strict=True)) for key in todo]
    parts = [source.blocks[key] for key in todo]
    stored = da.store(parts, [target] * len(parts), regions=regions, lock=lock, compute=False)
    return _delayed_list(stored), len(todo)


def _delayed_list(stored: Any) -> list[Any]:
    """``da.store(..., compute=False)``'s result (one delayed, or a tuple of them) as a list."""
    return list(stored) if isinstance(stored, tuple | list) else [stored]
