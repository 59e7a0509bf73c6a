"""OME-Zarr output, single- and multi-scale, as ilastik writes it.

Like ilastik, the image is stored with all five OME axes ``tczyx`` (missing ones have
length 1), chunks of about 1 MB with ``t = c = 1``, and scale paths ``s0, s1, ...``. The
multi-scale pyramid halves ``z``, ``y`` and ``x`` (those longer than 1) per level until a
level fits in one chunk. Each level is stored slab by slab, then read back to compute the
next, so the pipeline behind ``s0`` runs once and memory stays bounded. A level is the mean of
2 x 2 (x 2) blocks for floating point data, every second pixel (nearest) otherwise, with
odd remainders dropped (floor). OME-Zarr v0.4 uses zarr format 2, v0.5 zarr format 3.

An ``s3://`` output is written in place (object stores cannot rename): each level's array
metadata after its chunks, the ``multiscales`` metadata last, and everything removed if the
write fails, so an interrupted output is never an OME-Zarr image that looks complete.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np
import zarr

from ..axes import from_internal
from ..errors import ExportError
from ._atomic import atomic_dir
from ._meta import block_shape
from ._remote import is_url, join, metadata_last, remote_dir, remote_exists, zarr_options
from ._sources import rechunk, store, to_dask
from ._store import aligned_block
from ._zarr import ZarrSource, create_zarr_array

__all__ = ["OME_AXES", "check_ome_target", "pyramid", "write_ome_zarr"]

OME_AXES = "tczyx"
OME_BLOCK_BYTES = 1_024_000
_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}


def check_ome_target(path: str) -> None:
    """Raise :class:`ExportError` if ``path`` exists (ilastik does not overwrite OME-Zarr)."""
    if remote_exists(path) if is_url(path) else os.path.lexists(path):
        raise ExportError(
            f"cannot write {path}: it exists; OME-Zarr outputs are not overwritten, delete it first"
        )


def _halve(array: da.Array, axes: list[int]) -> da.Array:
    even = tuple(slice(0, n - n % 2) if i in axes else slice(None) for i, n in enumerate(array.shape))
    array = array[even]
    if array.dtype.kind != "f":
        nearest: da.Array = array[
            tuple(slice(None, None, 2) if i in axes else slice(None) for i in range(array.ndim))
        ]
        return nearest
    chunks = {i: max(2, array.chunksize[i] - array.chunksize[i] % 2) for i in axes}
    mean: da.Array = da.coarsen(np.mean, rechunk(array, chunks), dict.fromkeys(axes, 2)).astype(array.dtype)
    return mean


def pyramid(shape: tuple[int, ...], chunks: tuple[int, ...], multiscale: bool) -> list[list[float]]:
    """Scale factors of the levels of a ``tczyx`` image: halve y, x (and z) until one chunk holds it."""
    levels = [[1.0] * 5]
    spatial = [i for i in (2, 3, 4) if shape[i] > 1]
    current = list(shape)
    while multiscale and not all(current[i] <= chunks[i] for i in spatial):
        axes = [i for i in spatial if current[i] >= 2]
        levels.append([f * 2 if i in axes else f for i, f in enumerate(levels[-1])])
        current = [n // 2 if i in axes else n for i, n in enumerate(current)]
    return levels


def _multiscales(name: str, factors: list[list[float]], version: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "axes": [{"name": k, "type": _AXIS_TYPES[k]} for k in OME_AXES],
        "datasets": [
            {"path": f"s{i}", "coordinateTransformations": [{"type": "scale", "scale": f}]}
            for i, f in enumerate(factors)
        ],
    }
    if len(factors) > 1:
        entry["metadata"] = {"description": "2x downsampling: mean for floats, nearest otherwise"}
    if version == "0.4":
        return {"multiscales": [{"version": "0.4", **entry}]}
    return {"ome": {"version": "0.5", "multiscales": [entry]}}


def write_ome_zarr(
    data: da.Array,
    path: str,
    axes: str,
    *,
    multiscale: bool,
    zarr_format: int,
    compression: bool | None,
    attrs: Mapping[str, Any],
) -> list[str]:
    """Write ``data`` (with ``axes``) as an OME-Zarr image at ``path``.

    Parameters
    ----------
    data : dask.array.Array
        The image, in any axis order.
    path : str
        The ``.zarr`` directory to create; it must not exist.
    axes : str
        Axis keys of ``data``.
    multiscale : bool
        Write the downsampled pyramid too, or only ``s0``.
    zarr_format : {2, 3}
        2 writes OME-Zarr v0.4, 3 writes v0.5.
    compression : bool or None
        False stores chunks uncompressed; otherwise zarr's default codec.
    attrs : mapping
        Extra attributes of every scale array.
    """
    image = from_internal(data, axes, OME_AXES)
    chunks = aligned_block(
        block_shape(image.shape, OME_AXES, OME_BLOCK_BYTES, image.dtype.itemsize), image.chunks
    )
    factors = pyramid(image.shape, chunks, multiscale)
    version = "0.4" if zarr_format == 2 else "0.5"
    remote = is_url(path)
    name = path.rstrip("/").rsplit("/", 1)[-1] if remote else os.path.basename(os.path.normpath(path))
    with remote_dir(path) if remote else atomic_dir(path) as temp:
        group = zarr.open_group(store=temp, mode="w", zarr_format=zarr_format, **zarr_options(temp))  # type: ignore[arg-type]
        group.attrs.update({"_creator": {"name": "cascade"}})
        # each level is stored slab by slab, then read back to make the next one: the
        # pipeline runs once and memory stays bounded whatever the number of levels
        level = image
        for i in range(len(factors)):
            if i:
                stored = ZarrSource(temp, f"s{i - 1}", level.shape, level.dtype)
                halve = [k for k in range(5) if factors[i][k] != factors[i - 1][k]]
                level = _halve(to_dask(stored, chunks), halve)
            target = create_zarr_array(
                group,
                f"s{i}",
                level.shape,
                chunks,
                level.dtype,
                OME_AXES,
                zarr_format=zarr_format,
                compression=compression,
                attrs=attrs,
            )
            with metadata_last(join(temp, f"s{i}")) if remote else contextlib.nullcontext():
                store(rechunk(level, target.chunks), target, compute_chunks=level.chunks if i == 0 else None)
        # the image is an OME-Zarr image only once its multiscales are there: written last
        group.attrs.update(_multiscales(name, factors, version))
    return [path]
