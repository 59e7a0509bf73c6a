"""The feature stack as a dask graph: one task per block over the whole selection.

Each task gathers its block's halo from the neighbouring blocks (:mod:`cascade.features._halo`,
what ``map_overlap`` does with many small tasks). The halo depth is the largest column halo;
inside each block every column is cropped to its own halo first, so small scales do not pay
for the large ones. Blocks at true image borders get no halo and mirror instead, which makes
the chunked result equal the whole-image result.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from ..errors import AxesError
from ._halo import gathered_features, halo_tasks
from .selection import FeatureSelection

__all__ = ["compute_features", "feature_chunks", "overlap_depths"]

_INTERNAL_AXES = ("yxc", "zyxc", "tyxc", "tzyxc")


def _check_axes(axes: str, ndim: int) -> None:
    if axes not in _INTERNAL_AXES or len(axes) != ndim:
        raise AxesError(
            f"features need an array in internal axis order (one of {', '.join(_INTERNAL_AXES)}), "
            f"got axes {axes!r} for {ndim} dimensions; convert with cascade.axes.to_internal"
        )


def feature_chunks(shape: tuple[int, ...], axes: str, target_pixels: int | None = None) -> tuple[int, ...]:
    """A default block shape for features: t=1, all channels, cubes/squares of the spatial axes.

    ``target_pixels`` defaults to 512**2 in 2D and 64**3 in 3D (about 50-64 MiB of
    features per block with ilastik's full default set).

    Parameters
    ----------
    shape : tuple of int
        The image's shape.
    axes : str
        Its internal axis keys.
    target_pixels : int, optional
        Pixels per block.

    Returns
    -------
    tuple of int
        The block shape.
    """
    spatial = [k for k in axes if k in "zyx"]
    if target_pixels is None:
        target_pixels = 512**2 if len(spatial) == 2 else 64**3
    edge = max(16, int(round(target_pixels ** (1.0 / len(spatial)))))
    sizes = dict(zip(axes, shape))
    return tuple(1 if k == "t" else sizes[k] if k == "c" else min(edge, sizes[k]) for k in axes)


def overlap_depths(selection: FeatureSelection, axes: str, shape: tuple[int, ...]) -> dict[int, int]:
    """Halo per axis index that ``selection`` needs around a block (0 for t, c and 2D-only z).

    Parameters
    ----------
    selection : FeatureSelection
        The features to compute.
    axes : str
        The image's internal axis keys.
    shape : tuple of int
        The image's shape (a short z computes some columns in 2D).

    Returns
    -------
    dict of int to int
        Halo in pixels per axis index.
    """
    sizes = dict(zip(axes, shape))
    z = sizes.get("z")
    columns = selection.columns()
    halo_xy = max(selection.column_halo(j) for j in columns)
    halo_z = max((selection.column_halo(j) for j in columns if not selection.column_is_2d(j, z)), default=0)
    return {i: (halo_z if k == "z" else halo_xy if k in "yx" else 0) for i, k in enumerate(axes)}


def _fit_chunks(chunks: tuple[int, ...], depth: int) -> tuple[int, ...]:
    """Merge chunks so that every chunk is at least ``depth`` long (one chunk if the axis is short)."""
    if depth == 0 or len(chunks) == 1:
        return chunks
    total = sum(chunks)
    if total < 2 * depth:
        return (total,)
    merged: list[int] = []
    for c in chunks:
        if merged and merged[-1] < depth:
            merged[-1] += c
        else:
            merged.append(c)
    if merged[-1] < depth:
        last = merged.pop()
        merged[-1] += last
    return tuple(merged)


def compute_features(
    image: da.Array | np.ndarray,
    selection: FeatureSelection,
    *,
    axes: str,
    chunks: tuple[int, ...] | None = None,
) -> da.Array:
    """ilastik's pixel features of an image, lazily.

    Parameters
    ----------
    image : dask or numpy array
        Image in cascade's internal axis order (``yxc``, ``zyxc``, ``tyxc`` or ``tzyxc``),
        any real dtype; it is cast to float32 as ilastik does.
    selection : FeatureSelection
        Which features at which scales.
    axes : str
        The axes of ``image``.
    chunks : tuple of int, optional
        Block shape (the channel entry is ignored). Defaults to the image's own chunks for a
        dask array, else :func:`feature_chunks`. Chunks shorter than the halo are merged.

    Returns
    -------
    dask.array.Array of float32, shape ``image.shape[:-1] + (n_channels,)``
        Channels in ilastik's order: feature row, scale column, input channel, eigenvalue.

    Raises
    ------
    AxesError
        If ``axes`` is not an internal order.
    FeatureSelectionError
        If a selected scale is too large for the image.
    """
    _check_axes(axes, image.ndim)
    sizes = dict(zip(axes, image.shape))
    selection.check_shape({k: v for k, v in sizes.items() if k in "zyx"})
    array: da.Array
    if not isinstance(image, da.Array):
        array = da.from_array(image, chunks=chunks or feature_chunks(image.shape, axes))
    else:
        array = image.rechunk(chunks) if chunks is not None else image
    depth = overlap_depths(selection, axes, array.shape)
    new_chunks = tuple(
        (sizes["c"],) if k == "c" else _fit_chunks(c, depth[i])
        for i, (k, c) in enumerate(zip(axes, array.chunks))
    )
    array = array.rechunk(new_chunks)
    depth = {i: (d if len(array.chunks[i]) > 1 else 0) for i, d in depth.items()}
    n_out = selection.n_channels(sizes["c"], sizes.get("z"))
    name = "features-" + tokenize(array, selection, axes, depth)
    layer = halo_tasks(name, array, selection, axes, depth, gathered_features)
    inputs: list[Any] = [array]
    graph = HighLevelGraph.from_collections(name, layer, dependencies=inputs)
    meta = np.empty((0,) * array.ndim, np.float32)
    features = da.Array(graph, name, array.chunks[:-1] + ((n_out,),), dtype=np.float32, meta=meta)
    return features
