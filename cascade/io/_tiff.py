"""TIFF input (lazy, one dask chunk per page or tile) and output (2D and OME multipage).

Axes come from the first series of the file as tifffile reports them (OME, ImageJ or
tifffile's own metadata), mapped like ilastik's ``OpTiffReader``: ``S`` (samples) is the
channel axis, ``I`` (an image sequence) is time, and ``Q`` (unknown) means no axes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import dask.array as da
import numpy as np
import tifffile
import zarr

from ._meta import valid_axes
from ._sources import LazySource, to_dask

__all__ = ["TiffSource", "read_tiff", "write_tiff_2d", "write_tiff_pages"]

_BIGTIFF_BYTES = 2**32 - 2**25


class TiffSource(LazySource):
    """Lazy reader of the first series of a TIFF file, through tifffile's zarr store."""

    def _open(self) -> Any:
        tif = tifffile.TiffFile(self.path)
        try:
            store = tif.aszarr(series=0, level=0, lock=threading.RLock())
            return tif, store, zarr.open_array(store, mode="r")
        except BaseException:
            tif.close()
            raise

    def _read(self, handle: Any, index: tuple[slice, ...]) -> np.ndarray:
        return np.asarray(handle[2][index])

    def _close(self, handle: Any) -> None:
        tif, store, _ = handle
        store.close()
        tif.close()


def tiff_axes(series_axes: str, ndim: int) -> str | None:
    """Map tifffile's series axes to cascade's keys; None where they do not name real axes."""
    axes = series_axes.lower()
    if "q" in axes:
        return None
    return valid_axes(axes.replace("s", "c").replace("i", "t"), ndim)


def read_tiff(path: str, *, keep_open: bool = True) -> tuple[da.Array, str | None]:
    """Open the first series of a TIFF lazily: a dask array with one chunk per page or tile."""
    source = TiffSource(path, None, (), np.uint8, keep_open=keep_open)
    handle = source._open()
    try:
        tif, _, array = handle
        axes = tiff_axes(tif.series[0].axes, array.ndim)
        shape, dtype, chunks = array.shape, array.dtype, array.chunks
    finally:
        source._close(handle)
    source = TiffSource(path, None, shape, dtype, keep_open=keep_open)
    return to_dask(source, chunks), axes


def write_tiff_2d(image: np.ndarray, path: str, *, compression: bool | None) -> None:
    """Write one ``yx`` or ``yxc`` image as a TIFF (channels as samples)."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    options: dict[str, Any] = {"compression": "zlib" if compression else None}
    if image.ndim == 3 and image.shape[2] == 3:
        options["photometric"] = "rgb"
    else:
        options["photometric"] = "minisblack"
        if image.ndim == 3:
            options["planarconfig"] = "contig"
    tifffile.imwrite(path, image, **options)


def write_tiff_pages(
    pages: Iterator[np.ndarray], path: str, shape: tuple[int, ...], dtype: Any, *, compression: bool | None
) -> None:
    """Write an OME-TIFF of ``tzcyx`` ``shape`` from ``pages`` (``yx`` planes in C order).

    tifffile consumes the iterator one page at a time, so only one page is in memory.
    """
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    with tifffile.TiffWriter(path, ome=True, bigtiff=nbytes > _BIGTIFF_BYTES) as writer:
        writer.write(
            data=pages,
            shape=shape,
            dtype=dtype,
            photometric="minisblack",
            metadata={"axes": "TZCYX"},
            compression="zlib" if compression else None,
            software="cascade",
        )
