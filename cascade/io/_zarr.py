"""Zarr (v2 and v3) and OME-Zarr (v0.4 and v0.5) input, and plain zarr output.

Axes of a zarr array come from, in this order: the OME ``multiscales`` metadata of its
parent group, its v3 ``dimension_names``, the v2 ``_ARRAY_DIMENSIONS`` attribute, or a vigra
``axistags`` attribute.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Callable, Mapping
from typing import Any

import dask.array as da
import numpy as np
import zarr
from zarr.storage import LocalStore

from ..errors import DataError, ExportError
from ._atomic import atomic_dir, remove_stale
from ._hdf5 import pick_single
from ._internal import check_inside, dataset_parts
from ._meta import axistags_json, block_shape, keys_from_axistags, valid_axes
from ._omemeta import multiscales_of, ome_axes, ome_scales, parent_ome_axes, pick_scale
from ._remote import (
    filesystem,
    is_url,
    join,
    metadata_last,
    read_bytes,
    remote_dir,
    remote_exists,
    zarr_options,
)
from ._resume import ResumeState, resumable_dir, store_resumable
from ._sources import LazySource, for_target, read_chunks, store, to_dask
from ._store import aligned_block
from ._zarrguard import GuardedStore, chunk_guard

__all__ = [
    "ZarrSource",
    "check_zarr_target",
    "create_zarr_array",
    "multiscales_of",
    "ome_scales",
    "read_zarr",
    "write_zarr",
]

ZARR_BLOCK_BYTES = 512_000


class ZarrSource(LazySource):
    """Lazy reader of one zarr array (the array object itself holds no file handle)."""

    def _open(self) -> Any:
        array = zarr.open_array(store=self.path, path=self.key or "", mode="r", **zarr_options(self.path))
        if is_url(self.path):
            return array
        guarded = GuardedStore(LocalStore(self.path, read_only=True), chunk_guard(array))
        return zarr.open_array(store=guarded, path=self.key or "", mode="r")

    def _read(self, handle: Any, index: tuple[slice, ...]) -> np.ndarray:
        return np.asarray(handle[index])

    def _close(self, handle: Any) -> None:
        return None


def _array_axes(array: Any) -> str | None:
    attrs = array.attrs.asdict()
    candidates = [
        getattr(array.metadata, "dimension_names", None),
        attrs.get("_ARRAY_DIMENSIONS"),
        keys_from_axistags(attrs.get("axistags")),
    ]
    for keys in candidates:
        if keys is not None and all(isinstance(k, str) for k in keys):
            axes = valid_axes([k.lower() for k in keys], array.ndim)
            if axes is not None:
                return axes
    return None


def _member_arrays(group: Any, where: str) -> list[str]:
    try:
        return [n for n, m in group.members(max_depth=None) if isinstance(m, zarr.Array) and 2 <= m.ndim <= 5]
    except Exception as err:
        if not where.lower().startswith("http"):
            raise
        raise DataError(
            f"{where}: the arrays of a zarr group cannot be listed over http; give the array's path, "
            f"e.g. {where}/<array>"
        ) from err


def read_zarr(
    external: str, internal: str | None, scale: str | int | None
) -> tuple[da.Array, str | None, str | None]:
    """Open a zarr array, a group holding one array, or an OME-Zarr image (one of its scales).

    Returns
    -------
    data, axes, internal
        The dask array (chunked by zarr shards or chunks), its axes or None, and the
        internal path of the array used.
    """
    where = external + ("/" + internal if internal else "")
    node = zarr.open(store=external, mode="r", path=internal or "", **zarr_options(external))
    axes: str | None = None
    if isinstance(node, zarr.Group):
        multiscales = multiscales_of(node.attrs.asdict())
        if multiscales:
            name = pick_scale(node, multiscales[0], scale, where)
            array = node[name]
            axes = valid_axes(ome_axes(multiscales[0]), getattr(array, "ndim", 0))
        else:
            if scale is not None:
                raise DataError(
                    f"{where}: scale={scale!r} needs an OME-Zarr image, this group has no multiscales"
                )
            arrays = _member_arrays(node, where)
            name = pick_single(sorted(arrays), where)
            array = node[name]
        internal = posixpath.join(internal, name) if internal else name
    else:
        if scale is not None:
            raise DataError(f"{where}: scale={scale!r} needs an OME-Zarr image root, this is one array")
        array = node
        axes = valid_axes(parent_ome_axes(external, internal), array.ndim)
    if not isinstance(array, zarr.Array):
        raise DataError(f"{where}: {internal!r} is not a zarr array")
    if np.dtype(array.dtype).kind not in "biuf":
        raise DataError(f"{where} has unsupported dtype {array.dtype}")
    if axes is None:
        axes = _array_axes(array)
    source = ZarrSource(external, internal, array.shape, array.dtype)
    stored = array.shards or array.chunks
    if any(int(edge) < 1 for edge in array.chunks):
        raise DataError(
            f"{where}: damaged zarr metadata: chunk shape {tuple(array.chunks)} has an empty edge"
        )
    # a remote store is read one stored chunk per task (a block fetches only its own chunks)
    chunks = stored if is_url(external) else read_chunks(stored, array.shape, array.dtype)
    return to_dask(source, chunks), axes, internal


def create_zarr_array(
    parent: Any,
    name: str | None,
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    dtype: Any,
    axes: str,
    *,
    zarr_format: int,
    compression: bool | None,
    attrs: Mapping[str, Any] | None = None,
) -> Any:
    """Create an empty zarr array with axis metadata (``dimension_names`` or ``_ARRAY_DIMENSIONS``).

    ``parent`` is a zarr group (the array is created as its member ``name``) or a directory
    path (the array is the root of a new store there).
    """
    attributes: dict[str, Any] = {"axistags": axistags_json(axes), **(attrs or {})}
    options: dict[str, Any] = {}
    if zarr_format == 2:
        attributes["_ARRAY_DIMENSIONS"] = list(axes)
        options["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
    else:
        options["dimension_names"] = list(axes)
    if compression is False:
        options["compressors"] = None
    options.update(
        shape=shape,
        chunks=tuple(min(c, max(1, n)) for c, n in zip(chunks, shape, strict=True)),
        dtype=dtype,
        fill_value=0,
        attributes=attributes,
    )
    if isinstance(parent, zarr.Group):
        return parent.create_array(name or "", **options)
    return zarr.create_array(parent, zarr_format=zarr_format, **options)  # type: ignore[arg-type]


def _remote_group_format(url: str) -> int | None:
    if read_bytes(join(url, ".zgroup")) is not None:
        return 2
    raw = read_bytes(join(url, "zarr.json"))
    if raw is None:
        return None
    return 3 if json.loads(raw.decode("utf-8")).get("node_type") == "group" else None


def _zarr_group_format(path: str) -> int | None:
    if is_url(path):
        return _remote_group_format(path)
    if os.path.isfile(os.path.join(path, ".zgroup")):
        return 2
    if os.path.isfile(os.path.join(path, "zarr.json")):
        group = zarr.open(store=path, mode="r")
        return 3 if isinstance(group, zarr.Group) else None
    return None


def check_zarr_target(path: str, internal: str = "exported_data") -> None:
    """Raise :class:`ExportError` unless array ``internal`` can be written to the zarr group ``path``.

    An existing ``path`` must be a zarr group, and what is at ``internal`` in it (if
    anything) a zarr array inside it. (An ``s3://`` group's array is replaced in place.)
    """
    parts = dataset_parts(internal, path, "zarr")
    if not (remote_exists(path) if is_url(path) else os.path.lexists(path)):
        return
    if _zarr_group_format(path) is None:
        raise ExportError(f"cannot write {path}: it exists and is not a zarr group")
    if is_url(path):
        return
    final = os.path.join(path, *parts)
    check_inside(os.path.dirname(final), path)
    _check_replaceable(final)


def _check_replaceable(final: str) -> None:
    """Refuse to replace anything at ``final`` but a zarr array (a group, a file, a symlink)."""
    if not os.path.lexists(final):
        return
    is_array = os.path.isfile(os.path.join(final, ".zarray"))
    metadata = os.path.join(final, "zarr.json")
    if not is_array and os.path.isfile(metadata):
        try:
            with open(metadata, encoding="utf-8") as fh:
                is_array = json.load(fh).get("node_type") == "array"
        except (OSError, ValueError, AttributeError):
            is_array = False
    if os.path.islink(final) or not is_array:
        raise ExportError(f"cannot write {final}: it exists and is not a zarr array; it is not replaced")


def _write_remote(
    data: da.Array,
    path: str,
    internal: str,
    existing: int | None,
    create: Callable[[Any, str | None, int], Any],
    zarr_format: int,
) -> list[str]:
    """Write in place at an ``s3://`` URL: the array's metadata last, everything new removed on failure."""
    parent, name = posixpath.split(internal)
    location = join(path, internal)
    if existing is None:
        cleanup = remote_dir(path)
    else:
        if remote_exists(location):  # replaced, as a local output of that name is
            fs, key = filesystem(location)
            fs.rm(key, recursive=True)
        cleanup = remote_dir(location)
    with cleanup:
        if existing is None:
            group = zarr.open_group(store=path, mode="w", zarr_format=zarr_format, **zarr_options(path))  # type: ignore[arg-type]
        else:
            group = zarr.open_group(store=path, mode="r+", **zarr_options(path))
        target = create(group.require_group(parent) if parent else group, name, existing or zarr_format)
        with metadata_last(location):
            store(for_target(data, target.chunks), target, compute_chunks=data.chunks)
    return [path]


def write_zarr(
    data: da.Array,
    path: str,
    internal: str,
    axes: str,
    *,
    zarr_format: int,
    compression: bool | None,
    attrs: Mapping[str, Any],
    resume: str | None = None,
) -> list[str]:
    """Write ``data`` as the array ``internal`` of the zarr group ``path`` (created if missing).

    With ``resume`` (a job fingerprint) a new container is written resumably (see ``_resume``).
    ``path`` may be an ``s3://`` URL: the array is then written in place, its metadata last,
    and removed again if the write fails (no resuming).
    """
    parts = dataset_parts(internal, path, "zarr")
    internal = "/".join(parts)
    check_zarr_target(path, internal)  # again here: nothing but a zarr array is ever replaced
    chunks = aligned_block(block_shape(data.shape, axes, ZARR_BLOCK_BYTES, data.dtype.itemsize), data.chunks)
    existing = _zarr_group_format(path)

    def create(parent: Any, name: str | None, fmt: int) -> Any:
        return create_zarr_array(
            parent,
            name,
            data.shape,
            chunks,
            data.dtype,
            axes,
            zarr_format=fmt,
            compression=compression,
            attrs=attrs,
        )

    if is_url(path):
        return _write_remote(data, path, internal, existing, create, zarr_format)
    if existing is None and resume is not None:
        with resumable_dir(path, resume) as (work, resuming):
            parent, name = posixpath.split(internal)
            if resuming:
                target = zarr.open_array(store=os.path.join(work, *internal.split("/")), mode="r+")
            else:  # mode "a": "w" would wipe the resume state kept in the same folder
                group = zarr.open_group(store=work, mode="a", zarr_format=zarr_format)  # type: ignore[arg-type]
                target = create(group.require_group(parent) if parent else group, name, zarr_format)
            store_resumable(
                for_target(data, target.chunks),
                target,
                ResumeState(work),
                compute_chunks=data.chunks,
                block=tuple(target.chunks),
            )
        return [path]
    if existing is None:
        with atomic_dir(path) as temp:
            group = zarr.open_group(store=temp, mode="w", zarr_format=zarr_format)  # type: ignore[arg-type]
            parent, name = posixpath.split(internal)
            target = create(group.require_group(parent) if parent else group, name, zarr_format)
            store(for_target(data, target.chunks), target, compute_chunks=data.chunks)
        return [path]
    parent, name = posixpath.split(internal)
    final = os.path.join(path, *parts)
    check_inside(os.path.dirname(final), path)
    _check_replaceable(final)
    if parent:
        zarr.open_group(store=path, mode="r+").require_group(parent)
        check_inside(os.path.dirname(final), path)
    remove_stale(final)
    with atomic_dir(final) as temp:
        target = create(temp, None, existing)
        store(for_target(data, target.chunks), target, compute_chunks=data.chunks)
    return [path]
