"""HDF5 gzip chunks checked before HDF5 decodes them: none may inflate past its chunk's size.

HDF5's deflate filter grows its buffer until the stream ends and then keeps the chunk's first
bytes: a 1 MB chunk inflating to 1 GiB took 2.3 GB and was read without an error. A dataset
stored with deflate (and shuffle, which keeps the size) has each chunk a read touches inflated
here first, with a limit, and refused unless it is exactly one chunk's bytes.
"""

from __future__ import annotations

import itertools
import zlib
from typing import Any

import h5py
import numpy as np

from ..errors import DataError

__all__ = ["check_chunks", "deflate_chunk_bytes", "read_checked"]

_DEFLATE = h5py.h5z.FILTER_DEFLATE
_SHUFFLE = h5py.h5z.FILTER_SHUFFLE


def deflate_chunk_bytes(ds: h5py.Dataset) -> int | None:
    """A chunk's bytes if ``ds`` is chunked with deflate (and at most shuffle) and checkable, else None."""
    if ds.chunks is None or ds.dtype.hasobject:
        return None
    plist = ds.id.get_create_plist()
    codes = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    if _DEFLATE not in codes or not set(codes) <= {_DEFLATE, _SHUFFLE}:
        return None
    return int(np.prod(ds.chunks, dtype=np.int64)) * int(ds.dtype.itemsize)


def _inflated(payload: bytes, limit: int) -> int:
    """Bytes of zlib ``payload``, counted up to ``limit`` (never further); -1 if it is damaged."""
    unzip = zlib.decompressobj()
    try:
        return len(unzip.decompress(payload, limit))
    except zlib.error:
        return -1


def check_chunks(ds: h5py.Dataset, index: tuple[slice, ...], size: int, where: str) -> None:
    """Refuse any stored chunk under ``index`` whose deflate stream is not exactly ``size`` bytes.

    Parameters
    ----------
    ds : h5py.Dataset
        The dataset (deflate-compressed: :func:`deflate_chunk_bytes` gave ``size``).
    index : tuple of slice
        The region about to be read.
    size : int
        A chunk's bytes.
    where : str
        The file and dataset, for the message.
    """
    ranges = []
    for part, edge, extent in zip(index, ds.chunks, ds.shape, strict=False):
        start, stop, _ = part.indices(extent)
        ranges.append(range(start - start % edge, stop, edge))
    deflate_bit = 1 << _deflate_position(ds)
    for corner in itertools.product(*ranges):
        info: Any = ds.id.get_chunk_info_by_coord(corner)
        if info.byte_offset is None or info.filter_mask & deflate_bit:  # not stored, or stored raw
            continue
        _, payload = ds.id.read_direct_chunk(corner)
        found = _inflated(payload, size + 1)
        if found == size:
            continue
        what = "its gzip data is damaged" if found < 0 else f"it inflates to {found} bytes"
        if found > size:
            what = "it inflates to more than that (a decompression bomb?)"
        raise DataError(f"damaged HDF5 chunk at {corner} of {where}: a chunk is {size} bytes; {what}")


def _deflate_position(ds: h5py.Dataset) -> int:
    plist = ds.id.get_create_plist()
    codes = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    return codes.index(_DEFLATE)


def read_checked(ds: h5py.Dataset, where: str) -> np.ndarray:
    """The whole of ``ds``, its gzip chunks checked first (see :func:`check_chunks`).

    Parameters
    ----------
    ds : h5py.Dataset
        A dataset read whole (a label block, a tree array of a project).
    where : str
        Its name in messages.

    Returns
    -------
    numpy.ndarray
        Its data.

    Raises
    ------
    DataError
        A chunk inflating past or short of its size, or damaged.
    """
    size = deflate_chunk_bytes(ds)
    if size is not None:
        check_chunks(ds, tuple(slice(None) for _ in ds.shape), size, where)
    return np.asarray(ds[()])
