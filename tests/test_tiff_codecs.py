"""Compressed TIFF input: every common compression, tiled and striped, multipage, read chunk-wise.

Most microscopy TIFFs are LZW, deflate, zstd or JPEG compressed; tifffile decodes them with
``imagecodecs``. Each codec is first tried in a subprocess: if it crashes there (imagecodecs
builds have died by a signal on some CPUs), its tests are skipped with the reason instead of
taking the test run down. JPEG is lossy, so the expected pixels are what tifffile decodes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from codec_probe import require_codec

from cascade.io import open_image
from cascade.io._tiff import TiffSource

#: tifffile's name -> the TIFF compression tag it writes
CODECS = {
    "lzw": 5,
    "zlib": 8,  # "adobe deflate", what most writers call deflate
    "deflate": 32946,  # the old deflate tag, still written by some software
    "zstd": 50000,
    "jpeg": 7,
    "packbits": 32773,
    "lzma": 34925,
}
LAYOUTS = {"tiled": {"tile": (32, 32)}, "striped": {"rowsperstrip": 16}, "one strip": {}}


def _image(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Smooth, seeded content (JPEG-friendly), every value range of the dtype touched."""
    rng = np.random.default_rng(7)
    grid = np.indices(shape).sum(axis=0).astype(float)
    top = 255 if dtype == "uint8" else 4000
    return np.clip(grid * 2 + rng.normal(0, 3, shape), 0, top).astype(dtype)


def _no_whole_pages(monkeypatch: pytest.MonkeyPatch) -> list[tuple[slice, ...]]:
    """Fail any whole-page decode; record every chunk read."""

    def whole_page(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("a whole page was decoded")

    monkeypatch.setattr(tifffile.TiffPage, "asarray", whole_page)
    reads: list[tuple[slice, ...]] = []
    original = TiffSource._read

    def counting(self: TiffSource, handle: object, index: tuple[slice, ...]) -> np.ndarray:
        reads.append(index)
        return original(self, handle, index)

    monkeypatch.setattr(TiffSource, "_read", counting)
    return reads


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("codec", list(CODECS))
def test_compressed_multipage_tiff(
    tmp_path: Path, codec: str, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_codec(codec)
    monkeypatch.setattr("cascade.io._tiff.MIN_READ_BYTES", 0)  # tile by tile, as for huge pages
    dtype = "uint8" if codec == "jpeg" else "uint16"  # JPEG in TIFF is 8 bit
    a = _image((3, 96, 80), dtype)
    path = tmp_path / "img.tif"
    predictor = codec in ("lzw", "zlib", "deflate", "zstd")  # as microscopes write them
    tifffile.imwrite(
        path,
        a,
        compression=codec,
        predictor=predictor,
        photometric="minisblack",
        metadata={"axes": "ZYX"},
        **LAYOUTS[layout],
    )
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].compression == CODECS[codec]
        expected = tif.asarray()  # the oracle: tifffile's own decoding (JPEG is lossy)
    if codec != "jpeg":
        np.testing.assert_array_equal(expected, a)

    img = open_image(str(path))
    assert (img.axes, img.dtype, img.shape) == ("zyx", np.dtype(dtype), a.shape)
    chunk = {"tiled": (1, 32, 32), "striped": (1, 16, 80), "one strip": (1, 96, 80)}[layout]
    assert tuple(c[0] for c in img.data.chunks) == chunk
    np.testing.assert_array_equal(img.data.compute(), expected)

    if layout != "one strip":  # chunk-wise: one tile or strip is read, and no page as a whole
        reads = _no_whole_pages(monkeypatch)
        block = open_image(str(path)).data[1, 40:48, 40:48].compute()
        np.testing.assert_array_equal(block, expected[1, 40:48, 40:48])
        assert len(reads) == 1
        assert [s.stop - s.start for s in reads[0]] == [1, *chunk[1:]]


@pytest.mark.parametrize("layout", ["tiled", "striped"])
def test_jpeg_rgb_tiff(tmp_path: Path, layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """RGB JPEG (YCbCr-subsampled, the usual slide-scanner layout) reads as ``yxc``, tile by tile."""
    require_codec("jpeg")
    monkeypatch.setattr("cascade.io._tiff.MIN_READ_BYTES", 0)  # tile by tile, as for huge pages
    a = _image((64, 96, 3), "uint8")
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, a, compression="jpeg", photometric="rgb", **LAYOUTS[layout])
    expected = tifffile.imread(path)
    assert np.abs(expected.astype(int) - a).mean() < 8  # lossy, but the same picture
    reads = _no_whole_pages(monkeypatch)
    img = open_image(str(path))
    assert (img.axes, img.shape) == ("yxc", a.shape)
    np.testing.assert_array_equal(img.data.compute(), expected)
    assert len(reads) == (6 if layout == "tiled" else 4)  # 2 x 3 tiles, or 4 strips of 16 rows
