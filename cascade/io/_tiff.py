"""TIFF input (lazy, one dask chunk per page or tile) and output (2D and OME multipage).

Axes come from the first series of the file as tifffile reports them (OME, ImageJ or
tifffile's own metadata), mapped like ilastik's ``OpTiffReader``: ``S`` (samples) is the
channel axis, ``I`` (an image sequence) is time, and ``Q`` (unknown) means no axes.

A series that stores every page as one strip or tile (most files, and every small one) is
read page by page with tifffile alone; any other layout goes through tifffile's zarr store,
so zarr is imported only for those. Both give the same chunks: one per page, strip or tile,
or aligned groups of them when they are small.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Iterator
from typing import Any

import dask.array as da
import numpy as np
import tifffile

from ..errors import DataError
from ._meta import valid_axes
from ._sources import MIN_READ_BYTES, READ_BYTES, LazySource, to_dask

#: Uncompressed pages larger than this are read in bands of rows of about this size.
BAND_BYTES = 4 * READ_BYTES

__all__ = ["TiffSource", "read_tiff", "write_tiff_2d", "write_tiff_pages"]

_BIGTIFF_BYTES = 2**32 - 2**25


class _PageReader:
    """Reads a series whose pages are single segments, whole pages at a time, without zarr.

    Parameters
    ----------
    tif : tifffile.TiffFile
        The open file.
    series : tifffile.TiffPageSeries
        Its first series.
    lead : int
        Number of leading dimensions of the series' shape that enumerate its pages; the
        remaining dimensions are those of one page.
    """

    def __init__(self, tif: tifffile.TiffFile, series: Any, lead: int) -> None:
        self.tif = tif
        self.series = series
        self.lead = lead
        self.shape: tuple[int, ...] = tuple(series.shape)
        self.dtype = np.dtype(series.dtype)
        page = self.shape[lead:]
        rows = page[0] if page else 1
        if series.dataoffset is not None and page:  # uncompressed: any rows can be read alone
            row_bytes = math.prod(page[1:]) * self.dtype.itemsize
            rows = min(rows, max(1, BAND_BYTES // max(row_bytes, 1)))
        self.chunks: tuple[int, ...] = (1,) * lead + (rows,) * bool(page) + page[1:]
        self.lock = threading.RLock()

    def __getitem__(self, index: tuple[slice, ...]) -> np.ndarray:
        index = index + (slice(None),) * (len(self.shape) - len(index))
        picked = [range(n)[i] for n, i in zip(self.shape, index, strict=True)]
        out = np.empty(tuple(len(r) for r in picked), self.dtype)
        grid, within = self.shape[: self.lead], index[self.lead :]
        band = slice(None)  # the rows read from each page; ``within`` then picks in them
        if within and within[0].step in (None, 1):
            band, within = within[0], (slice(None), *within[1:])
        for position in np.ndindex(*out.shape[: self.lead]):
            where = tuple(r[i] for r, i in zip(picked[: self.lead], position, strict=True))
            number = int(np.ravel_multi_index(where, grid)) if grid else 0
            out[position] = self._page(number, band)[within]
        return out

    def _page(self, number: int, band: slice = slice(None)) -> np.ndarray:
        """Rows ``band`` of page ``number`` of the series, shaped as the series' trailing dimensions."""
        page_shape = self.shape[self.lead :]
        keyframe = self.series.keyframe
        if self.series.dataoffset is not None:  # contiguous: pages need not have IFDs of their own
            if not page_shape:  # one pixel per page
                page_shape, band = (1,), slice(None)
            start, stop, _ = band.indices(page_shape[0])
            row = math.prod(page_shape[1:])
            first = number * math.prod(page_shape) + start * row
            with self.lock:
                data = self.tif.filehandle.read_array(
                    self.tif.byteorder + self.dtype.char,
                    count=(stop - start) * row,
                    offset=self.series.dataoffset + first * self.dtype.itemsize,
                )
            return data.reshape((stop - start, *page_shape[1:])[: len(self.shape) - self.lead])
        with self.lock:
            page = self.series[number]
        if page is None:  # a missing page reads as the fill value, as in tifffile's zarr store
            return np.full(page_shape, keyframe.nodata, self.dtype)[band]
        image: np.ndarray = page.asarray(lock=self.lock, maxworkers=1)
        return image.reshape(page_shape)[band]

    def close(self) -> None:
        """Close the file."""
        self.tif.close()


class _ZarrReader:
    """Reads any series through tifffile's zarr store (one chunk per strip or tile)."""

    def __init__(self, tif: tifffile.TiffFile) -> None:
        import zarr

        self.tif = tif
        self.store = tif.aszarr(series=0, level=0, lock=threading.RLock())
        try:
            self.array = zarr.open_array(self.store, mode="r")
        except BaseException:
            self.store.close()
            raise
        self.shape: tuple[int, ...] = tuple(self.array.shape)
        self.dtype = np.dtype(self.array.dtype)
        self.chunks: tuple[int, ...] = tuple(self.array.chunks)

    def __getitem__(self, index: tuple[slice, ...]) -> np.ndarray:
        return np.asarray(self.array[index])

    def close(self) -> None:
        """Close the store and the file."""
        self.store.close()
        self.tif.close()


def _page_dims(series: Any) -> int | None:
    """Leading dimensions of ``series`` that enumerate pages, if every page is one segment.

    None when a page has several strips or tiles (or the series is empty or irregular): then
    the chunks are those strips or tiles and only the zarr store reads them.
    """
    keyframe = series.keyframe
    shape = tuple(series.shape)
    if keyframe is None or keyframe.dtype is None or not shape or 0 in shape:
        return None
    if math.prod(keyframe.chunked) != 1 or len(keyframe.chunks) != len(keyframe.shape):
        return None
    if any(c < n for c, n in zip(keyframe.chunks, keyframe.shape, strict=True)):
        return None
    if np.dtype(series.dtype) != np.dtype(keyframe.dtype):
        return None
    if series.dataoffset is not None and not keyframe.is_final:
        return None  # contiguous pages are read as raw bytes, so they must need no decoding
    lead, size = len(shape), 1  # a page is the fewest trailing dimensions holding keyframe.size pixels
    while size < keyframe.size and lead > 0:
        lead -= 1
        size *= shape[lead]
    if size != keyframe.size or math.prod(shape[:lead]) != len(series):
        return None
    return lead


def open_tiff(path: str, *, use_zarr: bool = False) -> _PageReader | _ZarrReader:
    """Open the first series of a TIFF for reading chunk by chunk.

    Parameters
    ----------
    path : str
        The file.
    use_zarr : bool
        Read through tifffile's zarr store even if the pages could be read directly.

    Returns
    -------
    _PageReader or _ZarrReader
        An object with ``shape``, ``dtype``, ``chunks``, ``tif``, ``__getitem__`` and
        ``close``.
    """
    with _logged() as logged:
        tif = tifffile.TiffFile(path)
        try:
            series = tif.series[0]
            lead = None if use_zarr else _page_dims(series)
            damage = [text for text in logged if _DAMAGE in text]
            if damage:
                raise DataError(f"{path}: truncated or damaged TIFF ({damage[0].split('> ')[-1]})")
            return _ZarrReader(tif) if lead is None else _PageReader(tif, series, lead)
        except BaseException:
            tif.close()
            raise


#: What tifffile logs when a page lies beyond the end of the file (a truncated file).
_DAMAGE = "invalid page offset"


class _ThisThread(logging.Filter):
    """Takes tifffile's log records of one thread into ``seen``, off stderr."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()
        self.seen: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if threading.get_ident() != self.thread:
            return True
        self.seen.append(record.getMessage())
        return False


@contextlib.contextmanager
def _logged() -> Iterator[list[str]]:
    """The messages tifffile logs on this thread inside the block (they are not printed)."""
    log = logging.getLogger("tifffile")
    taken = _ThisThread()
    log.addFilter(taken)
    try:
        yield taken.seen
    finally:
        log.removeFilter(taken)


class TiffSource(LazySource):
    """Lazy reader of the first series of a TIFF file (see :func:`open_tiff`)."""

    def _open(self) -> Any:
        return open_tiff(self.path)

    def _read(self, handle: Any, index: tuple[slice, ...]) -> np.ndarray:
        return np.asarray(handle[index])

    def _close(self, handle: Any) -> None:
        handle.close()


def tiff_axes(series_axes: str, ndim: int) -> str | None:
    """Map tifffile's series axes to cascade's keys; None where they do not name real axes."""
    axes = series_axes.lower()
    if "q" in axes:
        return None
    return valid_axes(axes.replace("s", "c").replace("i", "t"), ndim)


def read_tiff(path: str, *, keep_open: bool = True) -> tuple[da.Array, str | None]:
    """Open the first series of a TIFF lazily: a dask array with one chunk per page, strip or tile.

    Pages, strips and tiles under ``MIN_READ_BYTES`` are read several at a time (aligned
    multiples of about ``READ_BYTES``): libtiff's writers store 8 KB strips, two rows of a
    2048-pixel uint16 page, and one task per strip cost ten times the decoding.
    """
    reader = open_tiff(path)
    try:
        axes = tiff_axes(reader.tif.series[0].axes, len(reader.shape))
        shape, dtype, chunks = reader.shape, reader.dtype, reader.chunks
    finally:
        reader.close()
    source = TiffSource(path, None, shape, dtype, keep_open=keep_open)
    return to_dask(source, strips_to_chunks(chunks, shape, dtype.itemsize)), axes


def strips_to_chunks(stored: tuple[int, ...], shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """The chunk to read a TIFF by: ``stored`` (a page, strip or tile), or whole multiples of it.

    A small chunk is grown along the last axis first, then the one before, up to about
    ``READ_BYTES``: strips join into whole pages before pages join, so a read never decodes
    a strip twice and its rows stay together.

    Examples
    --------
    >>> strips_to_chunks((1, 2, 2048), (32, 2048, 2048), 2)
    (1, 1024, 2048)
    >>> strips_to_chunks((1, 512, 512), (100, 512, 512), 1)
    (16, 512, 512)
    """
    if math.prod(stored) * itemsize >= MIN_READ_BYTES:
        return stored
    chunk = list(stored)
    for axis in reversed(range(len(shape))):
        others = math.prod(chunk) // chunk[axis] * itemsize
        times = max(1, READ_BYTES // (others * chunk[axis]))
        chunk[axis] = min(shape[axis], chunk[axis] * times)
        if chunk[axis] < shape[axis]:
            break
    return tuple(chunk)


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
