"""HDF5 input and output.

Reading keeps the file open read-only (``locking=False``) in each process that reads; h5py
serialises access with its global lock, so dask may read chunks from several threads.
Writing opens the file for every block under a lock (a ``distributed.Lock`` when a
distributed client is active), so worker processes never hold the file open together.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

import dask.array as da
import h5py
import numpy as np
from dask.utils import SerializableLock

from ..errors import DataError, ExportError
from ._atomic import atomic_files, partial_name
from ._meta import axistags_json, block_shape, keys_from_axistags, valid_axes
from ._sources import LazySource, store, to_dask
from ._store import active_client, aligned_block

__all__ = ["H5Source", "list_h5_datasets", "read_hdf5", "write_hdf5", "write_lock"]

H5_BLOCK_BYTES = 512_000


def list_h5_datasets(group: h5py.Group) -> list[str]:
    """Paths of the datasets with 2 to 5 dimensions in ``group``, sorted."""
    names: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and 2 <= obj.ndim <= 5:
            names.append(name)

    group.visititems(visit)
    return sorted(names)


def pick_single(datasets: list[str], path: str) -> str:
    """The one dataset of a container, or :class:`DataError` listing them."""
    if len(datasets) == 1:
        return datasets[0]
    if not datasets:
        raise DataError(f"{path} holds no dataset with 2 to 5 dimensions")
    listed = ", ".join(datasets[:20]) + (", ..." if len(datasets) > 20 else "")
    raise DataError(f"{path} holds {len(datasets)} datasets, name one as {path}/<dataset>: {listed}")


class H5Source(LazySource):
    """Lazy reader of one HDF5 dataset."""

    def _open(self) -> Any:
        return h5py.File(self.path, "r", locking=False)

    def _read(self, handle: Any, index: tuple[slice, ...]) -> np.ndarray:
        return np.asarray(handle[self.key][index])


def _axes_of(ds: h5py.Dataset) -> str | None:
    axes = valid_axes(keys_from_axistags(ds.attrs.get("axistags")), ds.ndim)
    if axes is None:
        labels = [dim.label for dim in ds.dims]
        axes = valid_axes(labels, ds.ndim) if all(labels) else None
    return axes


def read_hdf5(external: str, internal: str | None) -> tuple[da.Array, str | None, str]:
    """Open one dataset of an HDF5 file lazily.

    Returns
    -------
    data, axes, internal
        The dask array (native chunks), its axes from ``axistags`` or dimension labels (or
        None), and the internal path used.
    """
    with h5py.File(external, "r", locking=False) as f:
        if internal is None:
            internal = pick_single(list_h5_datasets(f), external)
        ds = f.get(internal)
        if not isinstance(ds, h5py.Dataset):
            found = ", ".join(list_h5_datasets(f)) or "none"
            raise DataError(f"{external} has no dataset {internal!r}; datasets: {found}")
        if ds.dtype.kind not in "biuf":
            raise DataError(f"{external}/{internal} has unsupported dtype {ds.dtype}")
        source = H5Source(external, internal, ds.shape, ds.dtype)
        chunks = ds.chunks or "auto"
        axes = _axes_of(ds)
    return to_dask(source, chunks), axes, internal


def write_lock(name: str) -> Any:
    """A lock that serialises writers: cluster-wide under a distributed client, else in-process."""
    if active_client() is None:
        return SerializableLock()
    from distributed import Lock

    return Lock(f"cascade-write-{name}")  # type: ignore[no-untyped-call]


class H5Target:
    """A ``dask.array.store`` target that opens the file for each block it writes."""

    def __init__(self, path: str, internal: str) -> None:
        self.path = path
        self.internal = internal

    def __setitem__(self, index: tuple[slice, ...], value: np.ndarray) -> None:
        with h5py.File(self.path, "r+", locking=False) as f:
            f[self.internal][index] = value


def _create(f: h5py.File, name: str, data: da.Array, axes: str, gzip: bool, attrs: Mapping[str, Any]) -> None:
    chunks = aligned_block(block_shape(data.shape, axes, H5_BLOCK_BYTES, data.dtype.itemsize), data.chunks)
    options: dict[str, Any] = {"compression": "gzip", "compression_opts": 1} if gzip else {}
    ds = f.create_dataset(name, shape=data.shape, dtype=data.dtype, chunks=chunks, **options)
    ds.attrs["axistags"] = axistags_json(axes)
    for dim, key in zip(ds.dims, axes, strict=True):
        dim.label = key
    for key, value in attrs.items():
        ds.attrs[key] = value


def write_hdf5(
    data: da.Array, path: str, internal: str, axes: str, *, gzip: bool, attrs: Mapping[str, Any]
) -> list[str]:
    """Write ``data`` to ``path/internal`` block by block; other datasets in an existing file stay.

    A new file is written under a temporary name and renamed when complete; in an existing
    file the dataset is written under a temporary name and moved over the old one.
    """
    internal = internal.strip("/")
    if not internal:
        raise ExportError(f"cannot write {path}: HDF5 output needs an internal path")
    if h5py.is_hdf5(path):
        return _write_into_existing(data, path, internal, axes, gzip, attrs)
    with atomic_files([path]) as (temp,):
        with h5py.File(temp, "w", locking=False) as f:
            _create(f, internal, data, axes, gzip, attrs)
        store(data, H5Target(temp, internal), lock=write_lock(temp))
    return [path]


def _write_into_existing(
    data: da.Array, path: str, internal: str, axes: str, gzip: bool, attrs: Mapping[str, Any]
) -> list[str]:
    parent, name = posixpath.split(internal)
    temp = posixpath.join(parent, posixpath.basename(partial_name(name)))
    try:
        with h5py.File(path, "r+", locking=False) as f:
            if temp in f:
                del f[temp]
            _create(f, temp, data, axes, gzip, attrs)
        store(data, H5Target(path, temp), lock=write_lock(path))
        with h5py.File(path, "r+", locking=False) as f:
            if internal in f:
                del f[internal]
            f.move(temp, internal)
    except BaseException as err:
        try:
            with h5py.File(path, "r+", locking=False) as f:
                if temp in f:
                    del f[temp]
        except OSError:
            pass
        if isinstance(err, OSError):
            raise ExportError(f"cannot write {path}/{internal}: {' '.join(str(err).split())}") from err
        raise
    return [path]
