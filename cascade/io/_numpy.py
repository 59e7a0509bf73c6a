"""NumPy ``.npy`` (memory-mapped, lazy) and ``.npz`` input; ``.npy`` output written chunk-wise."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from ..errors import DataError
from ._hdf5 import pick_single
from ._sources import LazySource, store, to_dask

__all__ = ["NpySource", "NpyTarget", "read_npy", "read_npz", "store_npy"]


class NpySource(LazySource):
    """Lazy reader of an ``.npy`` file through a read-only memory map."""

    def _open(self) -> Any:
        return np.load(self.path, mmap_mode="r", allow_pickle=False)

    def _read(self, handle: Any, index: tuple[slice, ...]) -> np.ndarray:
        return np.array(handle[index])

    def _close(self, handle: Any) -> None:
        return None


class NpzSource(LazySource):
    """Reader of one array of an ``.npz`` archive (read whole: npz cannot be memory-mapped)."""

    def _open(self) -> Any:
        with np.load(self.path, allow_pickle=False) as archive:
            return archive[self.key]

    def _read(self, handle: Any, index: tuple[slice, ...]) -> np.ndarray:
        return np.asarray(handle[index])

    def _close(self, handle: Any) -> None:
        return None


def read_npy(path: str) -> tuple[da.Array, None]:
    """Open an ``.npy`` file lazily (dask's automatic chunks)."""
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path} has unsupported dtype {array.dtype}")
    source = NpySource(path, None, array.shape, array.dtype)
    del array
    return to_dask(source, "auto"), None


def read_npz(path: str, key: str | None) -> tuple[da.Array, None, str]:
    """Open one array of an ``.npz`` archive (the only one if ``key`` is None)."""
    with np.load(path, allow_pickle=False) as archive:
        names = sorted(archive.files)
        if key is None:
            key = pick_single([n for n in names if archive[n].ndim in range(2, 6)], path)
        if key not in names:
            raise DataError(f"{path} has no array {key!r}; arrays: {', '.join(names) or 'none'}")
        shape, dtype = archive[key].shape, archive[key].dtype
    source = NpzSource(path, key, shape, dtype)
    return to_dask(source, shape), None, key


class NpyTarget:
    """A ``dask.array.store`` target writing into an existing ``.npy`` file through a memory map."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __setitem__(self, index: tuple[slice, ...], value: np.ndarray) -> None:
        array = np.load(self.path, mmap_mode="r+", allow_pickle=False)
        array[index] = value
        array.flush()
        del array


def store_npy(data: da.Array, path: str) -> None:
    """Write ``data`` to a new ``.npy`` file at ``path``, one dask chunk at a time."""
    header = np.lib.format.open_memmap(path, mode="w+", dtype=data.dtype, shape=data.shape)
    del header
    store(data, NpyTarget(path), lock=False)
