"""Intermediate results on disk: a stage's probabilities computed once, read lazily after.

An autocontext's stage k+1 reads stage k's probabilities with a halo, and several export
sources may read the same stage. Rather than keep those results in memory or compute them
twice, :func:`spill` computes them now, slab by slab, into a zarr array in a scratch folder
and returns a lazy reader of it. The array is named by the dask token of what it holds, so
an interrupted run started again finds the blocks it already wrote (one marker per block)
and computes only the rest.
"""

from __future__ import annotations

import itertools
import os
import stat
import tempfile
from typing import Any

import dask.array as da
import numpy as np

from .._config import IN_MEMORY_BYTES, IN_MEMORY_STAGE, config_size
from ._resume import MarkingTarget, ResumeState, block_name

__all__ = ["IN_MEMORY_BYTES", "keep_once", "make_scratch", "needed_blocks", "spill"]

Region = tuple[slice, ...]


def _regular(array: da.Array) -> da.Array:
    """``array`` rechunked if a block edge falls inside a zarr chunk (two blocks would share it)."""
    for chunks in array.chunks:
        edges = np.cumsum((0, *chunks))[1:-1]
        if np.any(edges % chunks[0]):
            result: da.Array = array.rechunk(tuple(c[0] for c in array.chunks))
            return result
    return array


def needed_blocks(chunks: tuple[tuple[int, ...], ...], region: Region | None) -> set[tuple[int, ...]]:
    """Indices of the blocks of a chunking that intersect ``region`` (all if None).

    Parameters
    ----------
    chunks : tuple of tuples of int
        A dask array's chunks.
    region : tuple of slice or None
        The region (None: everything).

    Returns
    -------
    set of tuple of int
        Block indices.
    """
    ranges = []
    for axis_chunks, part in zip(chunks, region or (slice(None),) * len(chunks), strict=True):
        edges = np.cumsum((0, *axis_chunks))
        start, stop, _ = part.indices(int(edges[-1]))
        ranges.append([i for i in range(len(axis_chunks)) if edges[i] < stop and edges[i + 1] > start])
    return set(itertools.product(*ranges))


def keep_once(array: da.Array, folder: str, *, region: Region | None = None, label: str = "") -> da.Array:
    """Compute ``array`` once for several readers: in memory if small, else :func:`spill` it.

    A small result (a few blocks) costs nothing to hold and nothing to recompute after an
    interruption, while a zarr store would cost its import and its files.

    Parameters
    ----------
    array : dask array
        The result.
    folder : str
        The scratch folder.
    region : tuple of slice, optional
        The part later steps read (None: all).
    label : str
        What it is, for progress reports.

    Returns
    -------
    dask array
        The result, computed: persisted, or read back from the scratch folder.
    """
    if array.nbytes <= config_size(IN_MEMORY_STAGE, IN_MEMORY_BYTES):
        persisted: da.Array = array.persist()
        return persisted
    return spill(array, folder, region=region, label=label)


def spill(array: da.Array, folder: str, *, region: Region | None = None, label: str = "") -> da.Array:
    """Compute ``array`` (only the blocks meeting ``region``) into a zarr under ``folder``.

    Returns a dask array reading it back with the same chunks. Blocks outside ``region``
    are not computed and read as zeros: callers pass a region holding everything later
    steps read. Blocks a previous, interrupted call stored are reused.

    Parameters
    ----------
    array : dask array
        The result.
    folder : str
        The scratch folder.
    region : tuple of slice, optional
        The part later steps read (None: all).
    label : str
        What it is, for progress reports.

    Returns
    -------
    dask array
        A lazy reader of the stored blocks.
    """
    import zarr

    from ._sources import to_dask
    from ._store import store_slabs
    from ._zarr import ZarrSource

    array = _regular(array)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{array.name}.zarr")
    chunks = tuple(c[0] for c in array.chunks)
    target: Any = None
    if os.path.isdir(path):
        try:
            target = zarr.open_array(store=path, mode="r+")
        except Exception:  # anything unreadable is simply recomputed
            target = None
        if target is not None and (target.shape, target.chunks, target.dtype) != (
            array.shape,
            chunks,
            array.dtype,
        ):
            target = None
    if target is None:
        target = zarr.create_array(
            store=path, shape=array.shape, chunks=chunks, dtype=array.dtype, overwrite=True
        )
    state = ResumeState(path)
    done = state.done()
    wanted = needed_blocks(array.chunks, region)
    store_slabs(
        array,
        MarkingTarget(target, state, chunks),
        skip=lambda key: key not in wanted or block_name(key) in done,
        label=label,
    )
    source = ZarrSource(path, None, array.shape, array.dtype)
    # named after what it holds, so later stages' tokens do not depend on the file's stamp
    return to_dask(source, array.chunks, name=f"stored-{array.name}")


def make_scratch(path: str) -> str:
    """Create the scratch folder ``path`` (or reuse it, left by an interrupted run); return it.

    Something else under that name (a symlink, a file, another user's folder) is never
    written through: a new private folder beside it is used instead (that run cannot resume).

    Parameters
    ----------
    path : str
        The wanted folder.

    Returns
    -------
    str
        The folder to use.
    """
    try:
        os.mkdir(path, 0o700)
        return path
    except FileExistsError:
        pass
    info = os.lstat(path)
    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
        return path
    parent, name = os.path.split(path)
    return tempfile.mkdtemp(prefix=f"{name}-", dir=parent)
