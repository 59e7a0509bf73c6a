"""NumPy ``.npy`` input (memory-mapped, lazy) and output (chunk-wise plain writes); ``.npz`` is ``_npz``."""

from __future__ import annotations

import os
from typing import Any

import dask.array as da
import numpy as np

from ..errors import DataError
from ._sources import LazySource, store, to_dask

__all__ = ["NpySource", "NpyTarget", "read_npy", "store_npy"]


class NpySource(LazySource):
    """Lazy reader of an ``.npy`` file through a read-only memory map."""

    def _open(self) -> Any:
        return np.load(self.path, mmap_mode="r", allow_pickle=False)

    def _read(self, handle: Any, index: tuple[slice, ...]) -> np.ndarray:
        return np.array(handle[index])

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


class NpyTarget:
    """A ``dask.array.store`` target writing blocks into an ``.npy`` file with plain writes.

    No memory map: a full disk then fails a write with ``OSError`` rather than killing the
    process with ``SIGBUS``.

    Parameters
    ----------
    path : str
        The file, already holding its header.
    shape : tuple of int
        Shape of the stored array (C order).
    dtype : numpy.dtype
        Its element type.
    offset : int
        Size of the header: where the data starts.
    """

    def __init__(self, path: str, shape: tuple[int, ...], dtype: Any, offset: int) -> None:
        self.path = path
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.offset = offset

    def __setitem__(self, index: tuple[slice, ...], value: np.ndarray) -> None:
        bounds = [s.indices(n)[:2] for s, n in zip(index, self.shape, strict=True)]
        block = np.ascontiguousarray(value, dtype=self.dtype)
        # the trailing axes the block spans whole are contiguous on disk with the last partial one
        split = len(self.shape)
        while split > 0 and bounds[split - 1] == (0, self.shape[split - 1]):
            split -= 1
        lead = max(split - 1, 0)
        runs = block.reshape(*block.shape[:lead], -1) if block.ndim else block.reshape(1)
        strides = np.cumprod((1, *self.shape[::-1]))[::-1][1:]  # elements per step of each axis
        fd = os.open(self.path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            for position in np.ndindex(*block.shape[:lead]):
                start = sum((a + i) * int(st) for (a, _), i, st in zip(bounds, position, strides))
                start += sum(a * int(st) for (a, _), st in zip(bounds[lead:], strides[lead:]))
                where = self.offset + start * self.dtype.itemsize
                _write_all(fd, memoryview(np.ascontiguousarray(runs[position]).data).cast("B"), where)
        finally:
            os.close(fd)


def _write_all(fd: int, data: memoryview, offset: int) -> None:
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)


def store_npy(data: da.Array, path: str) -> None:
    """Write ``data`` to the (new or empty) ``.npy`` file at ``path``, one dask chunk at a time.

    The header is written, the file sized (sparse), and each block written in place with
    ``pwrite``: a full disk or a file size limit raises ``OSError``.
    """
    dtype = np.dtype(data.dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": data.shape}
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        offset = fh.tell()
        fh.truncate(offset + int(np.prod(data.shape)) * dtype.itemsize)
    store(data, NpyTarget(path, data.shape, dtype, offset), lock=False)
