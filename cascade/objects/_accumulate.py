"""Per-chunk partial sums of object features, and their exact merge.

A *partial* is a dict of arrays for the objects present in one chunk: ``"ids"`` (sorted, unique,
uint32) and one row per id in every other per-object field; fields starting with ``"g_"`` are
per-chunk global values (the object-pixel range of each channel), not per object. Partials of
different chunks are merged by id (sums add, extrema reduce); the merged partial of a whole time
point is scattered into dense tables indexed by object id (:func:`densify`).

Pass 1 (:func:`pass1`) collects counts, sums, extrema and coordinate sums / extrema; pass 2
(:func:`pass2`) the central moments around the *global* means of pass 1 and the histograms over
the global object-pixel range, so the merged result equals a whole-image two-pass computation
(the coordinate scatter of RegionRadii/RegionAxes is vigra's incremental one, replayed per object
in ``_eigen.scatter_batch``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Partial = dict[str, np.ndarray]

#: Bins of ilastik's (vigra's) object histograms.
BINS = 64

_ADD = ("count", "sum", "csum", "m2", "m3", "m4", "cross", "hist")
_MIN = ("min", "cmin", "g_lo")
_MAX = ("max", "cmax", "g_hi")


def _group(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Object pixels of a chunk: flat positions, sorted unique ids and each pixel's id index."""
    flat = labels.ravel()
    where = np.flatnonzero(flat)
    ids, inverse = np.unique(flat[where], return_inverse=True)
    return where, ids.astype(np.uint32), inverse.ravel()


def _coords(where: np.ndarray, shape: tuple[int, ...], offset: Sequence[int]) -> np.ndarray:
    """Global coordinates (x, y[, z] order, int64) of flat positions in a chunk at ``offset``."""
    index = np.unravel_index(where, shape)
    cols = [index[axis].astype(np.int64) + offset[axis] for axis in range(len(shape))]
    return np.stack(cols[::-1], axis=1)


def _sums(inverse: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Per-id sums (float64) of each column of ``values`` (pixels x k), in pixel order."""
    out = np.empty((size, values.shape[1]), dtype=np.float64)
    for col in range(values.shape[1]):
        out[:, col] = np.bincount(inverse, weights=values[:, col], minlength=size)
    return out


def _extrema(inverse: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-id minimum and maximum of each column of ``values`` (ids are 0..size-1, all present)."""
    order = np.argsort(inverse, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(inverse[order]) != 0])
    ordered = values[order]
    return np.minimum.reduceat(ordered, starts, axis=0), np.maximum.reduceat(ordered, starts, axis=0)


def pass1(raw: np.ndarray, labels: np.ndarray, offset: Sequence[int]) -> Partial:
    """First pass over one chunk: counts, sums, extrema and coordinate sums / extrema.

    Parameters
    ----------
    raw : numpy.ndarray
        The chunk's raw values, spatial axes of ``labels`` plus a trailing channel axis.
    labels : numpy.ndarray
        The chunk's object ids (``[z]yx``), 0 the background.
    offset : sequence of int
        The chunk's position in the image, same axes as ``labels``.

    Returns
    -------
    dict of str to numpy.ndarray
        The partial (see the module docstring); ``g_lo``/``g_hi`` are the channel range over the
        chunk's object pixels (+inf/-inf when it has none).
    """
    where, ids, inverse = _group(labels)
    channels = raw.shape[-1]
    if ids.size == 0:
        return empty(channels, labels.ndim)
    values = raw.reshape(-1, channels)[where].astype(np.float32)
    coords = _coords(where, labels.shape, offset)
    vmin, vmax = _extrema(inverse, values)
    cmin, cmax = _extrema(inverse, coords)
    return {
        "ids": ids,
        "count": np.bincount(inverse, minlength=ids.size).astype(np.int64),
        "sum": _sums(inverse, values, ids.size),
        "min": vmin,
        "max": vmax,
        "csum": _sums(inverse, coords, ids.size),
        "cmin": cmin,
        "cmax": cmax,
        "g_lo": values.min(axis=0),
        "g_hi": values.max(axis=0),
    }


def empty(channels: int, ndim: int) -> Partial:
    """The partial of a chunk without object pixels."""
    values = np.zeros((0, channels), dtype=np.float32)
    coords = np.zeros((0, ndim), dtype=np.int64)
    return {
        "ids": np.zeros(0, dtype=np.uint32),
        "count": np.zeros(0, dtype=np.int64),
        "sum": values.astype(np.float64),
        "min": values,
        "max": values,
        "csum": coords.astype(np.float64),
        "cmin": coords,
        "cmax": coords,
        "g_lo": np.full(channels, np.inf, dtype=np.float32),
        "g_hi": np.full(channels, -np.inf, dtype=np.float32),
    }


def bin_index(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """vigra's histogram bin of each value (pixels x channels) for the range ``lo..hi`` per channel.

    ``scale = 64 / (hi - lo)`` (``hi`` widened by 64 machine epsilons when equal), ``m = scale *
    (v - lo)`` in double, bin ``floor(m)``, and 63 for ``m == 64``.
    """
    lo64 = lo.astype(np.float64)
    hi64 = np.where(hi == lo, hi + BINS * np.finfo(np.float64).eps, hi).astype(np.float64)
    scale = BINS / (hi64 - lo64)
    mapped = scale * (values.astype(np.float64) - lo64)
    index = np.floor(mapped).astype(np.int64)
    return np.clip(np.where(mapped == BINS, BINS - 1, index), 0, BINS - 1)


def _central(inverse: np.ndarray, centred: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Per-id sums of the 2nd, 3rd and 4th powers of centred values, and the channel cross products."""
    squared = centred * centred
    channels = centred.shape[1]
    upper = [(a, b) for a in range(channels) for b in range(a + 1, channels)]
    cross = np.stack([centred[:, a] * centred[:, b] for a, b in upper], axis=1) if upper else centred[:, :0]
    return {
        "m2": _sums(inverse, squared, size),
        "m3": _sums(inverse, squared * centred, size),
        "m4": _sums(inverse, squared * squared, size),
        "cross": _sums(inverse, cross, size),
    }


def pass2(
    raw: np.ndarray,
    labels: np.ndarray,
    offset: Sequence[int],
    means: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> Partial:
    """Second pass over one chunk: central moments around the global means, histograms.

    Parameters
    ----------
    raw, labels, offset
        As for :func:`pass1`.
    means : numpy.ndarray
        float64 ``(N + 1, C)``: every object's mean value per channel (from the merged pass 1).
    lo, hi : numpy.ndarray
        float32 ``(C,)``: the channel range over all object pixels of the time point; or
        ``(N + 1, C)``: one range per object (the neighbourhood pixel sets).

    Returns
    -------
    dict of str to numpy.ndarray
        ``ids``, ``m2``/``m3``/``m4`` (per channel), ``cross`` (channel pairs a < b),
        ``hist`` ``(ids, C * 64)`` (channel, then bin).
    """
    where, ids, inverse = _group(labels)
    channels = raw.shape[-1]
    if ids.size == 0:
        return {"ids": ids}
    values = raw.reshape(-1, channels)[where].astype(np.float32)
    centred = values.astype(np.float64) - means[ids][inverse]
    if lo.ndim == 2:
        lo, hi = lo[ids][inverse], hi[ids][inverse]
    bins = bin_index(values, lo, hi)
    keys = (inverse[:, None] * channels + np.arange(channels)) * BINS + bins
    hist = np.bincount(keys.ravel(), minlength=ids.size * channels * BINS)
    return {
        "ids": ids,
        **_central(inverse, centred, ids.size),
        "hist": hist.reshape(ids.size, channels * BINS).astype(np.int64),
    }


def _reducer(name: str) -> Callable[..., Any] | None:
    if name in _ADD:
        return np.add.at
    if name in _MIN:
        return np.minimum.at
    if name in _MAX:
        return np.maximum.at
    return None


def merge(parts: Sequence[Partial]) -> Partial:
    """Merge partials of several chunks: union of the ids, sums added, extrema reduced.

    Parameters
    ----------
    parts : sequence of dict
        Partials from :func:`pass1` or :func:`pass2` (all of the same pass).

    Returns
    -------
    dict of str to numpy.ndarray
        One partial over the union of the chunks.
    """
    ids, inverse = np.unique(np.concatenate([p["ids"] for p in parts]), return_inverse=True)
    merged: Partial = {"ids": ids.astype(np.uint32)}
    fields = {name for p in parts for name in p if name != "ids"}
    for name in sorted(fields):
        reduce = _reducer(name)
        present = [p for p in parts if name in p]
        if name.startswith("g_"):
            stacked = np.stack([p[name] for p in present])
            merged[name] = stacked.min(axis=0) if name in _MIN else stacked.max(axis=0)
            continue
        sample = present[0][name]
        start = 0 if name in _ADD else (np.inf if name in _MIN else -np.inf)
        out = np.full((ids.size, *sample.shape[1:]), start, dtype=np.result_type(sample, np.float64))
        position = 0
        for part in parts:
            size = part["ids"].size
            if name in part and reduce is not None:
                reduce(out, inverse[position : position + size], part[name])
            position += size
        merged[name] = out.astype(sample.dtype) if name in _ADD and sample.dtype.kind == "i" else out
    return merged


def fold(dense: Partial, partial: Partial, count: int) -> None:
    """Add a merged partial into dense tables of ``count + 1`` rows (row = object id), in place.

    Folding the partials of consecutive groups of chunks one after the other gives what
    :func:`merge` of those partials followed by :func:`densify` gives (the same additions and
    comparisons in the same order, row by row), without holding the partials of every group and
    their merged copy at once: the dense tables are the only O(objects) arrays. Call
    :func:`finish_fold` after the last partial.

    Parameters
    ----------
    dense : dict of str to numpy.ndarray
        The tables so far, updated in place (empty before the first partial: the tables are
        created from its fields).
    partial : dict of str to numpy.ndarray
        A merged partial (ids unique) of the next group of chunks.
    count : int
        Highest object id.
    """
    ids = partial["ids"].astype(np.int64)
    seen = dense.setdefault("seen", np.zeros(count + 1, np.bool_))
    seen[ids] = True
    for name, values in partial.items():
        if name == "ids":
            continue
        if name.startswith("g_"):
            reduce = np.minimum if name in _MIN else np.maximum
            dense[name] = values if name not in dense else reduce(dense[name], values)
            continue
        if name not in dense:
            integer = name in _ADD and values.dtype.kind in "iu"
            start = 0 if name in _ADD else (np.inf if name in _MIN else -np.inf)
            dtype = values.dtype if integer else np.result_type(values, np.float64)
            dense[name] = np.full((count + 1, *values.shape[1:]), start, dtype=dtype)
        table = dense[name]
        if name in _ADD:
            table[ids] += values
        else:
            table[ids] = (np.minimum if name in _MIN else np.maximum)(table[ids], values)


def finish_fold(dense: Partial) -> Partial:
    """The folded tables as :func:`densify` leaves them: rows of absent ids 0, ``ids`` present.

    Parameters
    ----------
    dense : dict of str to numpy.ndarray
        The tables after the last :func:`fold`.

    Returns
    -------
    dict of str to numpy.ndarray
        The same tables (changed in place), ``"seen"`` replaced by ``"ids"``.
    """
    seen = dense.pop("seen")
    for name, table in dense.items():
        if not name.startswith("g_"):
            table[~seen] = 0
    dense["ids"] = np.flatnonzero(seen).astype(np.uint32)
    return dense


def densify(partial: Partial, count: int) -> Partial:
    """Scatter a merged partial into dense tables of ``count + 1`` rows (row = object id)."""
    dense: Partial = {}
    ids = partial["ids"].astype(np.int64)
    for name, values in partial.items():
        if name == "ids" or name.startswith("g_"):
            dense[name] = values
            continue
        table = np.zeros((count + 1, *values.shape[1:]), dtype=values.dtype)
        table[ids] = values
        dense[name] = table
    return dense
