"""2D image files through imageio (png, jpeg, bmp, gif, pgm, ppm, pnm).

These hold one ``yx`` or ``yxc`` image each; a reader opens the header only and reads the
pixels when dask asks for them.
"""

from __future__ import annotations

import io
import os
from types import ModuleType

import dask.array as da
import numpy as np

from ..errors import DataError, ExportError
from ._sources import FunctionSource, to_dask

__all__ = ["FLAT_FORMATS", "check_flat", "read_flat", "read_flat_url", "write_flat"]

#: format -> {dtype name: allowed channel counts}
FLAT_FORMATS: dict[str, dict[str, frozenset[int]]] = {
    "png": {"uint8": frozenset({1, 2, 3, 4}), "uint16": frozenset({1})},
    "jpg": {"uint8": frozenset({1, 3})},
    "jpeg": {"uint8": frozenset({1, 3})},
    "bmp": {"uint8": frozenset({1, 3})},
    "gif": {"uint8": frozenset({1, 3})},
    "pgm": {"uint8": frozenset({1})},
    "ppm": {"uint8": frozenset({3})},
    "pnm": {"uint8": frozenset({1, 3})},
}


def _iio() -> ModuleType:
    """imageio's v3 API, imported on first use: only runs that read or write these files need it."""
    import imageio.v3

    return imageio.v3


def _too_large(err: BaseException, path: str) -> None:
    """Raise :class:`DataError` if ``err`` is Pillow refusing a decompression bomb (imageio hides it
    behind "an unknown error occurred while initializing plugin")."""
    cause = err.__cause__ or err
    if type(cause).__name__ == "DecompressionBombError":
        raise DataError(
            f"cannot read {path}: {cause} These files are decoded whole, in memory: store an image "
            "this large as TIFF, HDF5, N5 or zarr"
        ) from None


def _imread(path: str) -> np.ndarray:
    # an open file and one plugin: imageio leaks handles when it tries every plugin on a bad file
    with open(path, "rb") as fh:
        try:
            image = _iio().imread(fh, index=0, extension=os.path.splitext(path)[1], plugin="pillow")
        except Exception as err:
            _too_large(err, path)
            raise
    return np.asarray(image)


def read_flat(path: str) -> tuple[da.Array, str]:
    """Open a 2D image file lazily as one dask chunk; axes ``yx`` or ``yxc``.

    Pillow's limit on pixels (``PIL.Image.MAX_IMAGE_PIXELS``, 89 million, refused past twice that)
    holds: a few MB of PNG can declare billions of pixels.
    """
    with open(path, "rb") as fh:
        try:
            props = _iio().improps(fh, index=0, extension=os.path.splitext(path)[1], plugin="pillow")
        except Exception as err:
            _too_large(err, path)
            raise
    shape = tuple(int(n) for n in props.shape)
    source = FunctionSource(path, _imread, shape, props.dtype)
    return to_dask(source, shape), "yx" if len(shape) == 2 else "yxc"


def check_flat(fmt: str, dtype: np.dtype, channels: int, path: str) -> None:
    """Raise :class:`ExportError` if ``fmt`` cannot store ``channels`` channels of ``dtype``."""
    allowed = FLAT_FORMATS[fmt]
    if dtype.name not in allowed:
        kinds = " or ".join(allowed)
        raise ExportError(
            f"cannot write {path}: {fmt} stores {kinds}, not {dtype.name}; choose an export dtype or use tiff"
        )
    if channels not in allowed[dtype.name]:
        counts = ", ".join(str(n) for n in sorted(allowed[dtype.name]))
        raise ExportError(
            f"cannot write {path}: {fmt} ({dtype.name}) stores {counts} channel(s), not {channels}"
        )


def write_flat(image: np.ndarray, path: str, fmt: str) -> None:
    """Write a ``yx`` or ``yxc`` image with imageio (the format is given, not taken from ``path``)."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    _iio().imwrite(path, image, extension="." + fmt)
    if not os.path.isfile(path):
        raise ExportError(f"cannot write {path}: imageio wrote nothing")


def _imread_url(url: str) -> np.ndarray:
    from ._remote import read_bytes

    raw = read_bytes(url)
    if raw is None:
        raise FileNotFoundError(url)
    extension = os.path.splitext(url)[1]
    try:
        image = _iio().imread(io.BytesIO(raw), index=0, extension=extension, plugin="pillow")
    except Exception as err:
        _too_large(err, url)
        raise
    return np.asarray(image)


def read_flat_url(url: str) -> tuple[da.Array, str]:
    """Open a 2D image file at an ``http(s)://`` or ``s3://`` URL as one dask chunk (a 2D file
    is read whole in any case); axes ``yx`` or ``yxc``."""
    first = _imread_url(url)
    source = FunctionSource(url, _imread_url, first.shape, first.dtype)
    return to_dask(source, first.shape), "yx" if first.ndim == 2 else "yxc"
