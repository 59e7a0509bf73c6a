"""Per-object windows read in batches: one enlarged region per chunk of the label image.

Features computed on one object's window (ilastik's "in neighborhood" features, the convex-hull and
skeleton plugins) need the pixels around each object. Every object is assigned to the label chunk
that holds its bounding-box minimum; the objects of one chunk read one region, the union of their
windows, so a task reads O(chunk + margin) pixels (more only for objects larger than a chunk).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np
from dask.delayed import delayed

from ._accumulate import Partial

#: A function of (raw region or None, label region, ids, windows relative to the region, region start).
BatchKernel = Callable[[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]], Partial]


def windows(
    cmin: np.ndarray, cmax: np.ndarray, margin: Sequence[int], shape: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Each object's window, ilastik's ``compute_extent``: bounding box +- margin, clipped.

    Parameters
    ----------
    cmin, cmax : numpy.ndarray
        ``(N, d)`` bounding boxes in x, y[, z] order; ``cmax`` exclusive.
    margin : sequence of int
        x, y[, z].
    shape : sequence of int
        The image's spatial shape, internal (``[z]yx``) order.

    Returns
    -------
    tuple of numpy.ndarray
        Window starts and stops, ``(N, d)`` int64, internal order.
    """
    lo = cmin[:, ::-1].astype(np.int64) - np.asarray(margin[::-1], dtype=np.int64)
    hi = cmax[:, ::-1].astype(np.int64) + np.asarray(margin[::-1], dtype=np.int64)
    return np.maximum(lo, 0), np.minimum(hi, np.asarray(shape, dtype=np.int64))


def _chunk_of(starts: np.ndarray, chunks: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """Flat index of the chunk that holds each point (points ``(N, d)``, internal order)."""
    index = []
    for axis, sizes in enumerate(chunks):
        bounds = np.cumsum(sizes)
        index.append(np.searchsorted(bounds, starts[:, axis], side="right"))
    return np.ravel_multi_index(tuple(index), tuple(len(c) for c in chunks))


def batched(
    raw: da.Array | None,
    labels: da.Array,
    ids: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray],
    anchors: np.ndarray,
    kernel: BatchKernel,
) -> list[Any]:
    """One delayed task per label chunk holding objects: ``kernel`` on the union of their windows.

    Parameters
    ----------
    raw : dask.array.Array or None
        The time point's raw image (spatial axes + channel), or None when only labels are needed.
    labels : dask.array.Array
        The time point's object ids (spatial axes).
    ids : numpy.ndarray
        The object ids to process.
    bounds : tuple of numpy.ndarray
        Window starts and stops of those objects (:func:`windows`), internal order.
    anchors : numpy.ndarray
        ``(N, d)`` a point of each object (internal order) choosing its chunk.
    kernel : callable
        ``kernel(raw_region, label_region, ids, relative_windows, region_start)`` with relative
        windows ``(n, 2, d)`` (starts, stops), returning a partial.

    Returns
    -------
    list of dask.delayed.Delayed
        The partials of the batches.
    """
    starts, stops = bounds
    groups = _chunk_of(anchors, labels.chunks)
    order = np.argsort(groups, kind="stable")
    cuts = np.flatnonzero(np.diff(groups[order])) + 1
    tasks = []
    for members in np.split(order, cuts):
        if members.size == 0:
            continue
        lo, hi = starts[members].min(axis=0), stops[members].max(axis=0)
        region = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
        relative = np.stack([starts[members] - lo, stops[members] - lo], axis=1)
        raw_part = None if raw is None else raw[region]
        origin = tuple(int(a) for a in lo)
        tasks.append(delayed(kernel)(raw_part, labels[region], ids[members], relative, origin))
    return tasks
