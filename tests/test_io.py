"""cascade.io: readers, writers, path conventions, atomic outputs and failures."""

from __future__ import annotations

import bz2
import gzip
import json
import os
import pickle
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import dask.array as da
import h5py
import imageio.v3 as iio
import numcodecs
import numpy as np
import pytest
import tifffile
import zarr

from cascade.errors import AxesError, CascadeError, DataError, ExportError
from cascade.io import FORMATS, Image, _npz, make_nickname, open_image, output_path, split_path, write_image
from cascade.io._meta import block_shape, guess_axes
from cascade.io._tiff import TiffSource
from cascade.io._zarr import ZarrSource

RNG = np.random.default_rng(42)


def _volume(shape: tuple[int, ...] = (3, 20, 30, 2), dtype: str = "float32") -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return RNG.random(shape).astype(dtype)
    return RNG.integers(0, 200, shape).astype(dtype)


def _listing(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


def _failing(array: np.ndarray, chunks: tuple[int, ...]) -> da.Array:
    """A dask array whose last chunk raises when computed."""
    data = da.from_array(array, chunks=chunks)
    last = tuple(len(c) - 1 for c in data.chunks)

    def boom(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        if block_info is not None and tuple(block_info[0]["chunk-location"]) == last:
            raise RuntimeError("boom")
        return block

    return data.map_blocks(boom, dtype=data.dtype)


# --- path conventions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/d/file.h5/volume/data", ("/d/file.h5", "volume/data")),
        ("/d/file.h5", ("/d/file.h5", None)),
        ("/d/file.hdf5/data/", ("/d/file.hdf5", "data")),
        ("/d/project.ilp/Input Data/local/x", ("/d/project.ilp", "Input Data/local/x")),
        ("/d/vol.n5/s0", ("/d/vol.n5", "s0")),
        ("/d/a.npz/arr", ("/d/a.npz", "arr")),
        ("/d/img.ome.zarr/0", ("/d/img.ome.zarr", "0")),
        ("/d/x.h5dir/b.h5/c", ("/d/x.h5dir/b.h5", "c")),
        ("/d/image.png", ("/d/image.png", None)),
        ("C:\\d\\f.h5\\data", ("C:/d/f.h5", "data")),
    ],
)
def test_split_path(path: str, expected: tuple[str, str | None]) -> None:
    assert split_path(path) == expected


def test_nickname_rules() -> None:
    assert make_nickname([("/d/file.h5", "volume/data")]) == "file-volume-data"
    assert make_nickname([("/d/file.h5", None)]) == "file"
    assert make_nickname([("/d/img.ome.zarr", "s0")]) == "img.ome-s0"
    assert make_nickname([("/d/img_001.png", None), ("/d/img_002.png", None)]) == "img_00"
    # ilastik: the common prefix "/d/" names the directory
    assert make_nickname([("/d/a.tif", None), ("/d/b.tif", None)]) == "d"
    assert make_nickname([("/a.png", None), ("/b.png", None)]) == "stack_at-a"


def test_output_path_replaces_extension() -> None:
    assert output_path("/d/img_Probabilities.png", "compressed hdf5") == "/d/img_Probabilities.h5"
    assert output_path("/d/out", "multi-scale OME-Zarr") == "/d/out.zarr"
    assert output_path("/d/out.ome.zarr", "single-scale OME-Zarr") == "/d/out.ome.zarr"
    assert output_path("/d/out.h5", "multipage tiff") == "/d/out.tiff"
    assert output_path("/d/s_{slice_index}.h5", "png sequence") == "/d/s_{slice_index}.png"
    assert output_path("/d/x", "NumPy") == "/d/x.npy"


def test_guess_axes_and_block_shape() -> None:
    assert guess_axes((5, 6)) == "yx"
    assert guess_axes((50, 60, 3)) == "yxc"
    assert guess_axes((50, 60, 10)) == "zyx"
    assert guess_axes((5, 50, 60, 2)) == "zyxc"
    assert guess_axes((2, 5, 50, 60, 2)) == "tzyxc"
    with pytest.raises(DataError, match="2 to 5"):
        guess_axes((5,))
    assert block_shape((1000, 1000), "yx", 512_000, 4) == (358, 358)
    assert block_shape((4, 10, 1000, 1000, 3), "tzyxc", 512_000, 1) == (1, 10, 226, 226, 1)


# --- hdf5 --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["hdf5", "compressed hdf5"])
def test_hdf5_round_trip(tmp_path: Path, fmt: str) -> None:
    a = _volume()
    files = write_image(
        da.from_array(a, chunks=(2, 10, 15, 2)), str(tmp_path / "out.png"), format=fmt, axes="zyxc"
    )
    assert files == [str(tmp_path / "out.h5")]
    with h5py.File(files[0], "r") as f:
        ds = f["exported_data"]
        assert json.loads(ds.attrs["axistags"])["axes"][3] == {
            "key": "c",
            "typeFlags": 1,
            "resolution": 0,
            "description": "",
        }
        assert [d.label for d in ds.dims] == list("zyxc")
        assert ds.chunks[-1] == 1
        assert ds.compression == ("gzip" if fmt == "compressed hdf5" else None)
        if fmt == "compressed hdf5":
            assert ds.compression_opts == 1
    img = open_image(files[0] + "/exported_data")
    assert isinstance(img, Image)
    assert (img.axes, img.axes_guessed, img.dtype, img.shape) == ("zyxc", False, np.float32, a.shape)
    assert img.nickname == "out-exported_data"
    assert img.dataset_dir == str(tmp_path)
    assert img.data.chunks[0][0] == ds_chunks(files[0])[0]
    np.testing.assert_array_equal(img.data.compute(), a)


def ds_chunks(path: str) -> tuple[int, ...]:
    with h5py.File(path, "r") as f:
        return tuple(f["exported_data"].chunks)


def test_hdf5_single_dataset_auto_pick_and_listing(tmp_path: Path) -> None:
    a = _volume((10, 12), "uint16")
    with h5py.File(tmp_path / "one.h5", "w") as f:
        f.create_dataset("group/raw", data=a, chunks=(5, 6))
        f.create_dataset("meta", data=np.arange(3))  # 1D: not an image candidate
    img = open_image(str(tmp_path / "one.h5"))
    assert (img.axes, img.axes_guessed, img.nickname) == ("yx", True, "one")
    assert img.data.chunks == ((10,), (12,))  # small stored chunks are read several at a time
    np.testing.assert_array_equal(img.data.compute(), a)
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["a"] = a
        f["b/c"] = a
    with pytest.raises(DataError, match=r"2 datasets.*a, b/c"):
        open_image(str(tmp_path / "two.h5"))
    with pytest.raises(DataError, match="no dataset 'nope'"):
        open_image(str(tmp_path / "two.h5/nope"))


def test_hdf5_dimension_labels_and_user_axes(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "l.h5", "w") as f:
        ds = f.create_dataset("d", data=np.zeros((2, 4, 5)))
        for dim, key in zip(ds.dims, "cyx", strict=True):
            dim.label = key
    assert open_image(str(tmp_path / "l.h5/d")).axes == "cyx"
    assert open_image(str(tmp_path / "l.h5/d"), axes="TYX").axes == "tyx"
    with pytest.raises(AxesError):
        open_image(str(tmp_path / "l.h5/d"), axes="yx")


def test_hdf5_existing_file_keeps_other_datasets(tmp_path: Path) -> None:
    a = _volume((6, 7), "uint8")
    path = str(tmp_path / "out.h5")
    write_image(a, path, format="hdf5", axes="yx", internal_path="first")
    write_image(a + 1, path, format="hdf5", axes="yx", internal_path="grp/second")
    write_image(a + 2, path, format="hdf5", axes="yx", internal_path="first")
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["first"][...], a + 2)
        np.testing.assert_array_equal(f["grp/second"][...], a + 1)
        assert sorted(f) == ["first", "grp"]


def test_hdf5_data_pickles_for_distributed(tmp_path: Path) -> None:
    a = _volume((8, 9), "int16")
    write_image(a, str(tmp_path / "p.h5"), format="hdf5", axes="yx")
    img = open_image(str(tmp_path / "p.h5"))
    np.testing.assert_array_equal(img.data.compute(), a)  # opens the file in this process
    clone = pickle.loads(pickle.dumps(img.data))
    np.testing.assert_array_equal(clone.compute(), a)


def test_hdf5_tiny_storage_chunks_are_read_several_at_a_time(tmp_path: Path) -> None:
    """A file stored in 4x4 chunks is read in aligned multiples of them, not one task per chunk."""
    a = _volume((300, 400), "uint8")
    with h5py.File(tmp_path / "tiny.h5", "w") as f:
        f.create_dataset("d", data=a, chunks=(4, 4))
        f.create_dataset("big", data=np.zeros((2048, 1024), np.uint8), chunks=(1024, 1024))
    img = open_image(str(tmp_path / "tiny.h5/d"))
    assert img.data.npartitions < 10  # 7500 storage chunks
    assert all(edge % 4 == 0 for axis in img.data.chunks for edge in axis[:-1])
    np.testing.assert_array_equal(img.data.compute(), a)
    # storage chunks of a good size are kept as they are
    assert open_image(str(tmp_path / "tiny.h5/big")).data.chunks == ((1024, 1024), (1024,))


def test_zarr_tiny_storage_chunks_are_read_several_at_a_time(tmp_path: Path) -> None:
    """A local zarr stored in 8x8 chunks is read in aligned multiples of them (15.5 s -> 2 s at 1000^2)."""
    a = _volume((300, 400), "uint8")
    zarr.create_array(str(tmp_path / "tiny.zarr"), data=a, chunks=(8, 8))
    img = open_image(str(tmp_path / "tiny.zarr"))
    assert img.data.npartitions < 10  # 1900 storage chunks
    assert all(edge % 8 == 0 for axis in img.data.chunks for edge in axis[:-1])
    np.testing.assert_array_equal(img.data.compute(), a)


# --- n5 ----------------------------------------------------------------------------------


def test_n5_tiny_blocks_are_read_several_at_a_time(tmp_path: Path) -> None:
    """A local N5 stored in 8x8 blocks is read in aligned multiples of them, not one task per block."""
    a = _volume((300, 400), "uint16")
    write_image(
        da.from_array(a, chunks=(8, 8)), str(tmp_path / "tiny"), format="n5", axes="yx", blocks=(8, 8)
    )
    with open(tmp_path / "tiny.n5" / "exported_data" / "attributes.json") as fh:
        assert json.load(fh)["blockSize"] == [8, 8]
    img = open_image(str(tmp_path / "tiny.n5/exported_data"))
    assert img.data.npartitions < 10  # 1900 stored blocks
    assert all(edge % 8 == 0 for axis in img.data.chunks for edge in axis[:-1])
    np.testing.assert_array_equal(img.data.compute(), a)


@pytest.mark.parametrize("fmt", ["n5", "compressed n5"])
def test_n5_round_trip(tmp_path: Path, fmt: str) -> None:
    a = _volume((2, 30, 40), "uint16")
    files = write_image(da.from_array(a, chunks=(1, 16, 16)), str(tmp_path / "out"), format=fmt, axes="tyx")
    assert files == [str(tmp_path / "out.n5")]
    root = json.loads((tmp_path / "out.n5" / "attributes.json").read_text())
    assert "n5" in root
    attrs = json.loads((tmp_path / "out.n5" / "exported_data" / "attributes.json").read_text())
    assert attrs["dimensions"] == [40, 30, 2]
    assert attrs["axes"] == ["x", "y", "t"]
    assert attrs["dataType"] == "uint16"
    assert attrs["compression"]["type"] == ("gzip" if fmt == "compressed n5" else "raw")
    img = open_image(files[0])
    assert (img.axes, img.axes_guessed, img.nickname) == ("tyx", False, "out")
    assert img.data.chunks == ((2,), (30,), (40,))  # small blocks: read together
    np.testing.assert_array_equal(img.data.compute(), a)
    np.testing.assert_array_equal(
        open_image(files[0] + "/exported_data").data[1, 5:25, 3:33].compute(), a[1, 5:25, 3:33]
    )


def _n5_block(data: np.ndarray, *, mode: int = 0, compress: str = "gzip") -> bytes:
    dims = data.shape[::-1]
    header = struct.pack(f">HH{len(dims)}I", mode, len(dims), *dims)
    if mode == 1:
        header += struct.pack(">I", data.size)
    payload = data.astype(data.dtype.newbyteorder(">")).tobytes()
    if compress == "gzip":
        payload = gzip.compress(payload)
    elif compress == "zlib":
        payload = zlib.compress(payload)
    return header + payload


@pytest.mark.parametrize("compress", ["gzip", "zlib", "raw"])
def test_n5_reader_on_hand_made_fixture(
    tmp_path: Path, compress: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 5 x 7 int32 dataset (C order, y x) in blocks of 3 x 4 with one block missing."""
    monkeypatch.setattr("cascade.io._sources.MIN_READ_BYTES", 0)  # block by block, as large blocks are
    a = np.arange(35, dtype=np.int32).reshape(5, 7) - 10
    root = tmp_path / "hand.n5"
    ds = root / "volume" / "raw"
    ds.mkdir(parents=True)
    (root / "attributes.json").write_text(json.dumps({"n5": "2.5.0"}))
    compression = {"type": "raw"}
    if compress != "raw":
        compression = {"type": "gzip", "level": 6, "useZlib": compress == "zlib"}
    attrs = {"dimensions": [7, 5], "blockSize": [4, 3], "dataType": "int32", "compression": compression}
    attrs["axes"] = ["x", "y"]
    (ds / "attributes.json").write_text(json.dumps(attrs))
    expected = a.copy()
    for by in range(2):
        for bx in range(2):
            block = a[by * 3 : by * 3 + 3, bx * 4 : bx * 4 + 4]
            if (by, bx) == (1, 1):
                expected[3:, 4:] = 0  # missing block reads as 0
                continue
            (ds / str(bx)).mkdir(exist_ok=True)
            (ds / str(bx) / str(by)).write_bytes(_n5_block(block, mode=by, compress=compress))
    img = open_image(str(root))  # the only dataset
    assert (img.axes, img.nickname, img.data.chunks) == ("yx", "hand", ((3, 2), (4, 3)))
    np.testing.assert_array_equal(img.data.compute(), expected)
    np.testing.assert_array_equal(
        open_image(str(root / "volume" / "raw")).data[1:4, 2:6].compute(), expected[1:4, 2:6]
    )
    assert open_image(str(root) + "/volume/raw").nickname == "hand-volume-raw"


_HEADER = struct.pack(">HH2I", 0, 2, 4, 3)  # a 3 x 4 block (dims are stored x first)


@pytest.mark.parametrize(
    ("block", "compression", "message"),
    [
        (_HEADER + gzip.compress(bytes(10)), "gzip", "holds 10 bytes, not the 48 bytes its header says"),
        (_HEADER + gzip.compress(bytes(2**26)), "gzip", "holds more than the 48 bytes"),  # 64 MB of zeros
        (_HEADER + zlib.compress(bytes(2**26)), "zlib", "holds more than the 48 bytes"),
        (_HEADER + bytes(49), "raw", "holds more than the 48 bytes"),
        (struct.pack(">HH2I", 0, 2, 100000, 100000) + gzip.compress(bytes(48)), "gzip", "100000x100000, the"),
        (struct.pack(">HH3I", 0, 3, 4, 3, 1) + gzip.compress(bytes(48)), "gzip", "says 1x3x4, the dataset's"),
        (b"\0\0", "gzip", "truncated N5 block (no header)"),
        (struct.pack(">HH", 0, 2) + b"\0", "gzip", "its header is cut short"),
        (_HEADER + b"garbage" * 10, "gzip", "damaged N5 block (Error -3"),
        (_HEADER + b"garbage" * 10, "zlib", "damaged N5 block (Error -3"),
    ],
    ids=[
        "short",
        "gzip-bomb",
        "zlib-bomb",
        "raw-long",
        "huge-dims",
        "3d",
        "no-header",
        "cut-header",
        "gzip",
        "zlib",
    ],
)
def test_n5_damaged_or_hostile_block_is_refused(
    tmp_path: Path, block: bytes, compression: str, message: str
) -> None:
    """A block file that disagrees with its header or the dataset is named in one line; a block that
    decompresses to far more than its header says is never decompressed whole (a gzip bomb)."""
    ds = tmp_path / "bad.n5" / "raw"
    ds.mkdir(parents=True)
    codec = {"type": "raw"} if compression == "raw" else {"type": "gzip", "useZlib": compression == "zlib"}
    attrs = {"dimensions": [4, 3], "blockSize": [4, 3], "dataType": "int32", "compression": codec}
    (ds / "attributes.json").write_text(json.dumps(attrs))
    (ds / "0").mkdir()
    (ds / "0" / "0").write_bytes(block)
    img = open_image(str(ds.parent) + "/raw")
    with pytest.raises(DataError, match=r"cannot read .*bad\.n5/raw/0/0: ") as err:
        img.data.compute()
    assert message in str(err.value)


# --- zarr and OME-Zarr ---------------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_round_trip(tmp_path: Path, zarr_format: int) -> None:
    a = _volume((4, 30, 20), "float64")
    path = str(tmp_path / "out.zarr")
    write_image(
        da.from_array(a, chunks=(2, 15, 20)), path, format="zarr", axes="cyx", zarr_format=zarr_format
    )
    array = zarr.open_array(path + "/exported_data", mode="r")
    assert array.metadata.zarr_format == zarr_format
    img = open_image(path)
    assert (img.axes, img.axes_guessed, img.nickname) == ("cyx", False, "out")
    assert img.data.chunks[1][0] % array.chunks[1] == 0  # whole stored chunks
    np.testing.assert_array_equal(img.data.compute(), a)
    write_image(a[:1], path, format="zarr", axes="cyx", internal_path="second")
    with pytest.raises(DataError, match="2 datasets"):
        open_image(path)
    np.testing.assert_array_equal(open_image(path + "/second").data.compute(), a[:1])
    np.testing.assert_array_equal(open_image(path + "/exported_data").data.compute(), a)


def _hand_ome(path: Path, version: str) -> list[np.ndarray]:
    levels = [_volume((2, 16, 24), "uint8"), _volume((2, 8, 12), "uint8")]
    fmt = 2 if version == "0.4" else 3
    group = zarr.open_group(str(path), mode="w", zarr_format=fmt)
    axes = [{"name": "c", "type": "channel"}, {"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    scales = [("full", [1, 1, 1]), ("half", [1, 2, 2])]
    datasets = [{"path": p, "coordinateTransformations": [{"type": "scale", "scale": s}]} for p, s in scales]
    multiscale = {"axes": axes, "datasets": datasets, "name": "hand"}
    if version == "0.4":
        group.attrs["multiscales"] = [{"version": "0.4", **multiscale}]
    else:
        group.attrs["ome"] = {"version": "0.5", "multiscales": [multiscale]}
    for name, level in zip(["full", "half"], levels, strict=True):
        group.create_array(name, data=level, chunks=(1, 8, 8))
    return levels


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_read_root_and_scale(tmp_path: Path, version: str) -> None:
    path = tmp_path / "hand.ome.zarr"
    levels = _hand_ome(path, version)
    root = open_image(str(path))
    assert (root.axes, root.axes_guessed, root.nickname, root.shape) == (
        "cyx",
        False,
        "hand.ome",
        (2, 16, 24),
    )
    assert root.data.chunks == ((2,), (16,), (24,))  # its small (1, 8, 8) stored chunks, read together
    np.testing.assert_array_equal(root.data.compute(), levels[0])
    for scale in (1, "half", "1"):
        np.testing.assert_array_equal(open_image(str(path), scale=scale).data.compute(), levels[1])
    one = open_image(str(path / "half"))  # a path to one scale: axes from the parent's metadata
    assert (one.axes, one.axes_guessed, one.nickname) == ("cyx", False, "hand.ome-half")
    np.testing.assert_array_equal(one.data.compute(), levels[1])
    with pytest.raises(DataError, match="no scale 'quarter'"):
        open_image(str(path), scale="quarter")
    with pytest.raises(DataError, match="out of range"):
        open_image(str(path), scale=5)
    with pytest.raises(DataError, match="OME-Zarr image root"):
        open_image(str(path / "half"), scale=0)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_multiscale_round_trip(tmp_path: Path, zarr_format: int) -> None:
    a = _volume((600, 520, 2), "float32")  # 1.2 MB per channel: more than one 1 MB chunk
    files = write_image(
        da.from_array(a, chunks=(256, 256, 2)),
        str(tmp_path / "pyr.h5"),
        format="multi-scale OME-Zarr",
        axes="yxc",
        zarr_format=zarr_format,
    )
    assert files == [str(tmp_path / "pyr.zarr")]
    group = zarr.open_group(files[0], mode="r")
    attrs = group.attrs.asdict()
    multiscales = attrs["multiscales"] if zarr_format == 2 else attrs["ome"]["multiscales"]
    assert (attrs.get("multiscales", [{}])[0].get("version") == "0.4") == (zarr_format == 2)
    assert [d["path"] for d in multiscales[0]["datasets"]] == ["s0", "s1"]
    assert multiscales[0]["datasets"][1]["coordinateTransformations"][0]["scale"] == [1, 1, 1, 2, 2]
    img = open_image(files[0])
    assert (img.axes, img.shape) == ("tczyx", (1, 2, 1, 600, 520))
    np.testing.assert_array_equal(img.data[0, :, 0].compute(), a.transpose(2, 0, 1))
    half = open_image(files[0], scale=1).data[0, :, 0].compute()
    expected = a.reshape(300, 2, 260, 2, 2).mean(axis=(1, 3)).transpose(2, 0, 1)
    np.testing.assert_allclose(half, expected, rtol=1e-6)


def test_ome_zarr_single_scale_and_nearest(tmp_path: Path) -> None:
    a = _volume((3, 1100, 1000), "uint8")
    write_image(a, str(tmp_path / "lab"), format="multi-scale OME-Zarr", axes="zyx")
    half = open_image(str(tmp_path / "lab.zarr"), scale="s1").data.compute()
    np.testing.assert_array_equal(half[0, 0], a[::2, ::2, ::2][:1])
    write_image(a[:1, :10, :10], str(tmp_path / "single"), format="single-scale OME-Zarr", axes="zyx")
    assert sorted(zarr.open_group(str(tmp_path / "single.zarr"), mode="r").array_keys()) == ["s0"]
    with pytest.raises(ExportError, match="exists"):
        write_image(a, str(tmp_path / "single"), format="single-scale OME-Zarr", axes="zyx")


# --- tiff ----------------------------------------------------------------------------------


def test_tiff_lazy_one_chunk_per_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _volume((7, 20, 30), "uint16")
    tifffile.imwrite(tmp_path / "stack.tif", a)  # no axes metadata: tifffile reports Q
    img = open_image(str(tmp_path / "stack.tif"))
    assert (img.axes, img.axes_guessed, img.nickname) == ("zyx", True, "stack")
    assert img.data.chunks == ((7,), (20,), (30,))  # small pages are read together
    monkeypatch.setattr("cascade.io._tiff.MIN_READ_BYTES", 0)  # pages of a good size: one each
    img = open_image(str(tmp_path / "stack.tif"))
    assert img.data.chunks == ((1,) * 7, (20,), (30,))
    reads: list[tuple[slice, ...]] = []
    original = TiffSource._read

    def counting(self: TiffSource, handle: object, index: tuple[slice, ...]) -> np.ndarray:
        reads.append(index)
        return original(self, handle, index)

    monkeypatch.setattr(TiffSource, "_read", counting)
    np.testing.assert_array_equal(img.data[3].compute(), a[3])
    assert [r[0] for r in reads] == [slice(3, 4)]  # one page read, not the file
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(img.data)).compute(), a)


def test_tiff_small_strips_are_read_in_whole_pages(tmp_path: Path) -> None:
    """libtiff-style 8 KB strips (2 rows of a 2048-px uint16 page) join into pages, then pages into
    chunks of about 4 MB: not one task per strip (21.6 s -> 4.3 s for 32 such pages, 2 threads)."""
    a = _volume((6, 600, 700), "uint16")
    tifffile.imwrite(tmp_path / "s.tif", a, compression="zlib", rowsperstrip=3, metadata={"axes": "ZYX"})
    img = open_image(str(tmp_path / "s.tif"))
    assert img.data.chunks == ((4, 2), (600,), (700,))  # 4 pages are 3.4 MB: 2 tasks for 1200 strips
    np.testing.assert_array_equal(img.data.compute(), a)
    big = _volume((2, 2048, 1024), "uint16")  # 4 MB pages: strips join into half pages
    tifffile.imwrite(tmp_path / "b.tif", big, compression="zlib", rowsperstrip=4, metadata={"axes": "ZYX"})
    img = open_image(str(tmp_path / "b.tif"))
    assert img.data.chunks == ((1, 1), (2048,), (1024,))
    np.testing.assert_array_equal(img.data[1, 1000:1100].compute(), big[1, 1000:1100])


def test_large_uncompressed_tiff_pages_are_read_in_bands_of_rows(tmp_path: Path) -> None:
    """An uncompressed page of 20 MB (ImageJ's and tifffile's default layout: one strip) is read in
    bands of about 16 MB of rows, not as one chunk: memory follows the chunk, not the page."""
    a = np.random.default_rng(0).integers(0, 255, (2, 5000, 4000), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "big.tif", a, metadata={"axes": "ZYX"})
    img = open_image(str(tmp_path / "big.tif"))
    assert img.data.chunks == ((1, 1), (4194, 806), (4000,))
    np.testing.assert_array_equal(img.data.compute(), a)
    np.testing.assert_array_equal(img.data[1, 4190:4200:3, 7:9].compute(), a[1, 4190:4200:3, 7:9])
    tifffile.imwrite(tmp_path / "ij.tif", a, imagej=True)
    img = open_image(str(tmp_path / "ij.tif"))
    assert img.data.chunks[1] == (4194, 806)
    np.testing.assert_array_equal(img.data[:, 4000:4400].compute(), a[:, 4000:4400])


def test_tiff_axes_from_metadata(tmp_path: Path) -> None:
    a = _volume((2, 3, 2, 8, 9), "uint8")
    tifffile.imwrite(tmp_path / "ij.tif", a, imagej=True, metadata={"axes": "TZCYX"})
    img = open_image(str(tmp_path / "ij.tif"))
    assert (img.axes, img.axes_guessed) == ("tzcyx", False)
    np.testing.assert_array_equal(img.data.compute(), a)
    rgb = _volume((8, 9, 3), "uint8")
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    assert open_image(str(tmp_path / "rgb.tif")).axes == "yxc"


def test_multipage_tiff_round_trip(tmp_path: Path) -> None:
    a = _volume((4, 20, 30, 2), "float32")
    files = write_image(
        da.from_array(a, chunks=(3, 10, 30, 1)), str(tmp_path / "mp"), format="multipage tiff", axes="zyxc"
    )
    assert files == [str(tmp_path / "mp.tiff")]
    assert _listing(tmp_path) == {"mp.tiff"}
    with tifffile.TiffFile(files[0]) as tif:
        assert tif.is_ome
        assert len(tif.pages) == 8
    img = open_image(files[0])
    assert img.axes == "zcyx"
    assert img.data.chunks[:2] == ((4,), (2,))  # 8 small pages: read in one
    np.testing.assert_array_equal(img.data.compute(), a.transpose(0, 3, 1, 2))


def test_multipage_tiff_sequence(tmp_path: Path) -> None:
    a = _volume((3, 4, 10, 12), "uint8")
    files = write_image(a, str(tmp_path / "t{slice_index}.h5"), format="multipage tiff sequence", axes="tzyx")
    assert files == [str(tmp_path / f"t{i}.tiff") for i in range(3)]
    for i, f in enumerate(files):
        np.testing.assert_array_equal(open_image(f).data.compute(), a[i])


# --- 2D images, numpy, sequences ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "shape", "dtype"),
    [
        ("png", (12, 14), "uint8"),
        ("png", (12, 14, 3), "uint8"),
        ("png", (12, 14), "uint16"),
        ("bmp", (12, 14, 3), "uint8"),
        ("pgm", (12, 14), "uint8"),
        ("ppm", (12, 14, 3), "uint8"),
        ("tif", (12, 14, 5), "float32"),
        ("tiff", (12, 14), "int16"),
    ],
)
def test_2d_round_trip(tmp_path: Path, fmt: str, shape: tuple[int, ...], dtype: str) -> None:
    a = _volume(shape, dtype)
    axes = "yx" if len(shape) == 2 else "yxc"
    (path,) = write_image(a, str(tmp_path / "img.h5"), format=fmt, axes=axes)
    assert path == str(tmp_path / f"img.{fmt}")
    img = open_image(path)
    assert (img.axes, img.axes_guessed, img.dtype, img.nickname) == (axes, False, np.dtype(dtype), "img")
    np.testing.assert_array_equal(img.data.compute(), a)


def test_2d_lossy_and_transposed(tmp_path: Path) -> None:
    a = np.tile(np.arange(16, dtype=np.uint8) * 16, (10, 1))
    (path,) = write_image(a.T[None], str(tmp_path / "j"), format="jpg", axes="zxy")  # transposed to yx
    img = open_image(path)
    assert img.shape == (10, 16)
    assert np.abs(img.data.compute().astype(int) - a).max() < 8
    (gif,) = write_image(a, str(tmp_path / "g"), format="gif", axes="yx")
    np.testing.assert_array_equal(open_image(gif).data.compute()[..., 0], a)


def test_2d_format_refuses_nd_and_bad_dtype(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="png sequence"):
        write_image(np.zeros((3, 4, 5), np.uint8), str(tmp_path / "x"), format="png", axes="zyx")
    with pytest.raises(ExportError, match="float32"):
        write_image(np.zeros((4, 5), np.float32), str(tmp_path / "x"), format="png", axes="yx")
    with pytest.raises(ExportError, match="channel"):
        write_image(np.zeros((4, 5, 2), np.uint8), str(tmp_path / "x"), format="jpg", axes="yxc")
    write_image(np.zeros((1, 4, 5, 1), np.uint8), str(tmp_path / "ok"), format="png", axes="zyxc")
    assert _listing(tmp_path) == {"ok.png"}


def test_sequences_names_and_values(tmp_path: Path) -> None:
    a = _volume((11, 6, 7), "uint8")
    files = write_image(
        da.from_array(a, chunks=(4, 6, 7)),
        str(tmp_path / "s_{slice_index}"),
        format="png sequence",
        axes="zyx",
    )
    assert [os.path.basename(f) for f in files] == [f"s_{i:02d}.png" for i in range(11)]
    stack = open_image(str(tmp_path / "s_*.png"))
    assert (stack.axes, stack.nickname, stack.shape) == ("zyx", "s_", a.shape)
    np.testing.assert_array_equal(stack.data.compute(), a)
    files = write_image(
        a[:3], str(tmp_path / "o_{slice_index:03d}"), format="tiff sequence", axes="cyx", slice_offset=7
    )
    assert [os.path.basename(f) for f in files] == ["o_007.tiff", "o_008.tiff", "o_009.tiff"]
    with pytest.raises(ExportError, match="slice_index"):
        write_image(a, str(tmp_path / "nope"), format="png sequence", axes="zyx")


def test_numpy_round_trip(tmp_path: Path) -> None:
    a = _volume((5, 6, 7), "int32")
    (path,) = write_image(
        da.from_array(a, chunks=(2, 3, 7)), str(tmp_path / "a.tif"), format="numpy", axes="zyx"
    )
    assert path == str(tmp_path / "a.npy")
    img = open_image(path)
    assert (img.axes, img.axes_guessed) == ("zyx", True)
    np.testing.assert_array_equal(img.data.compute(), a)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(img.data)).compute(), a)
    np.savez(tmp_path / "b.npz", raw=a[0])
    img = open_image(str(tmp_path / "b.npz"))
    assert (img.axes, img.nickname) == ("yx", "b")
    np.testing.assert_array_equal(open_image(str(tmp_path / "b.npz/raw")).data.compute(), a[0])


# --- stacks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("along", ["z", "t", "c"])
def test_glob_stack_of_gray_images(tmp_path: Path, along: str) -> None:
    images = [_volume((6, 8), "uint8") for _ in range(3)]
    for i, image in enumerate(images):
        iio.imwrite(tmp_path / f"img_{i:03d}.png", image)
    img = open_image(str(tmp_path / "img_*.png"), stack_along=along)
    assert (img.axes, img.shape, img.nickname, img.dataset_dir) == (
        along + "yx",
        (3, 6, 8),
        "img_00",
        str(tmp_path),
    )
    assert img.data.chunks[0] == (1, 1, 1)
    assert len(img.files) == 3
    np.testing.assert_array_equal(img.data.compute(), np.stack(images))


def test_glob_stack_concatenates_existing_axis_and_checks_shapes(tmp_path: Path) -> None:
    images = [_volume((6, 8, 3), "uint8") for _ in range(2)]
    for i, image in enumerate(images):
        iio.imwrite(tmp_path / f"rgb_{i}.png", image)
    img = open_image(str(tmp_path / "rgb_*.png"), stack_along="c")
    assert (img.axes, img.shape) == ("yxc", (6, 8, 6))
    np.testing.assert_array_equal(img.data.compute(), np.concatenate(images, axis=2))
    iio.imwrite(tmp_path / "rgb_2.png", _volume((5, 8, 3), "uint8"))
    with pytest.raises(DataError, match="cannot stack"):
        open_image(str(tmp_path / "rgb_*.png"))
    with pytest.raises(AxesError, match="stack_along"):
        open_image(str(tmp_path / "rgb_*.png"), stack_along="x")


@pytest.mark.parametrize(
    ("files", "file_axes", "along", "axes", "shape"),
    [
        ("gray", "yxc", "t", "tyx", (3, 6, 8)),  # training axes yxc fit each yx file, not the stack
        ("gray", "yxc", "z", "zyx", (3, 6, 8)),
        ("gray", "yxc", "c", "cyx", (3, 6, 8)),
        ("gray", "tzyxc", "t", "tyx", (3, 6, 8)),  # training axes that fit no file: the file's own
        ("rgb", "yxc", "t", "tyxc", (3, 6, 8, 3)),
        ("rgb", "yxc", "z", "zyxc", (3, 6, 8, 3)),
        ("rgb", "yxc", "c", "yxc", (6, 8, 9)),
        ("gray+alpha", "zyxc", "z", "zyxc", (3, 6, 8, 2)),  # they fit the stack as a whole
        ("gray+alpha", "yxc", "c", "yxc", (6, 8, 6)),
        ("tif3d", "zyxc", "t", "tzyx", (3, 4, 6, 8)),
        ("tif3d", "zyx", "z", "zyx", (12, 6, 8)),
    ],
)
def test_glob_stack_reuses_training_axes_per_file(
    tmp_path: Path, files: str, file_axes: str, along: str, axes: str, shape: tuple[int, ...]
) -> None:
    """ilastik reuses the training image's axes for batch files: for a stack, for each of its files."""
    for i in range(3):
        if files == "tif3d":
            tifffile.imwrite(tmp_path / f"f_{i}.tif", _volume((4, 6, 8), "uint8"), photometric="minisblack")
        else:
            channels = {"rgb": (3,), "gray+alpha": (2,), "gray": ()}[files]
            iio.imwrite(tmp_path / f"f_{i}.png", _volume((6, 8, *channels), "uint8"))
    ext = "tif" if files == "tif3d" else "png"
    img = open_image(str(tmp_path / f"f_*.{ext}"), stack_along=along, file_axes=file_axes)
    assert (img.axes, img.shape) == (axes, shape)
    forced = open_image(str(tmp_path / f"f_*.{ext}"), stack_along=along, axes=axes, file_axes="q")
    assert forced.axes == axes  # --input_axes names the stacked data's axes and wins


def test_glob_stack_of_h5_datasets(tmp_path: Path) -> None:
    parts = [_volume((4, 5), "float32") for _ in range(2)]
    for i, part in enumerate(parts):
        with h5py.File(tmp_path / f"vol{i}.h5", "w") as f:
            f["data"] = part
    img = open_image(str(tmp_path / "vol*.h5/data"))
    assert (img.axes, img.nickname) == ("zyx", "vol-data")
    np.testing.assert_array_equal(img.data.compute(), np.stack(parts))
    with h5py.File(tmp_path / "many.h5", "w") as f:
        f["s1"], f["s2"] = parts
    np.testing.assert_array_equal(open_image(str(tmp_path / "many.h5/s*")).data.compute(), np.stack(parts))


# --- failures ---------------------------------------------------------------------------------


def test_read_failures(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"input not found: .*missing.h5"):
        open_image(str(tmp_path / "missing.h5/data"))
    with pytest.raises(DataError, match="no file matches"):
        open_image(str(tmp_path / "none_*.png"))
    (tmp_path / "bad.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(DataError, match=r"cannot read .*bad.h5"):
        open_image(str(tmp_path / "bad.h5"))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match=r"cannot read .*bad.png"):
        open_image(str(tmp_path / "bad.png"))
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(DataError, match=r"bad.tif"):
        open_image(str(tmp_path / "bad.tif"))
    (tmp_path / "x.xyz").write_bytes(b"")
    with pytest.raises(DataError, match=r"unsupported format '\.xyz'.*\.h5"):
        open_image(str(tmp_path / "x.xyz"))
    iio.imwrite(tmp_path / "ok.png", np.zeros((4, 5), np.uint8))
    with pytest.raises(DataError, match="scale=1 applies only to OME-Zarr"):
        open_image(str(tmp_path / "ok.png"), scale=1)
    messages = []
    for path in ("missing.h5", "bad.h5", "x.xyz"):
        with pytest.raises(CascadeError) as info:
            open_image(str(tmp_path / path))
        messages.append(str(info.value))
    assert all("\n" not in m for m in messages)


def test_corrupt_chunk_raises_data_error_at_compute(tmp_path: Path) -> None:
    write_image(np.ones((4, 4), np.uint8), str(tmp_path / "c"), format="n5", axes="yx")
    block = tmp_path / "c.n5" / "exported_data" / "0" / "0"
    block.write_bytes(b"\x00")
    img = open_image(str(tmp_path / "c.n5"))
    with pytest.raises(DataError, match="cannot read"):
        img.data.compute()


def test_write_failures_before_computing(tmp_path: Path) -> None:
    a = np.zeros((4, 5), np.uint8)
    with pytest.raises(ExportError, match=r"unknown output format 'hdf6'.*compressed hdf5"):
        write_image(a, str(tmp_path / "x"), format="hdf6", axes="yx")
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportError, match="file is not a directory"):
        write_image(a, str(tmp_path / "file" / "sub" / "x"), format="hdf5", axes="yx")
    with pytest.raises(AxesError):
        write_image(a, str(tmp_path / "x"), format="hdf5", axes="zyx")
    (tmp_path / "x.h5").write_text("not hdf5")
    with pytest.raises(ExportError, match="not an HDF5 file"):
        write_image(a, str(tmp_path / "x"), format="hdf5", axes="yx")
    assert _listing(tmp_path) == {"x.h5", "file"}
    assert len(FORMATS) == len(set(FORMATS))


def test_unwritable_directory_is_refused_before_computing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "access", lambda *_: False)
    with pytest.raises(ExportError, match="is not writable"):
        write_image(_failing(np.zeros((4, 5), np.uint8), (2, 5)), str(tmp_path / "x"), format="n5", axes="yx")
    assert _listing(tmp_path) == set()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only directories")
def test_unwritable_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ExportError, match="not writable"):
            write_image(np.zeros((4, 5), np.uint8), str(locked / "x"), format="hdf5", axes="yx")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize(
    ("fmt", "axes"),
    [
        ("hdf5", "zyx"),
        ("compressed n5", "zyx"),
        ("zarr", "zyx"),
        ("multi-scale OME-Zarr", "zyx"),
        ("numpy", "zyx"),
        ("multipage tiff", "zyx"),
        ("png sequence", "zyx"),
        ("multipage tiff sequence", "tyx"),
    ],
)
def test_failing_chunk_leaves_no_output(tmp_path: Path, fmt: str, axes: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    data = _failing(_volume((4, 6, 8), "uint8"), (2, 3, 8))
    with pytest.raises(RuntimeError, match="boom"):  # the folders it created are removed too
        write_image(data, str(out / "new" / "dir" / "r_{slice_index}"), format=fmt, axes=axes)
    assert _listing(out) == set()


@pytest.mark.parametrize(
    ("fmt", "axes"),
    [
        ("compressed hdf5", "zyx"),
        ("n5", "zyx"),
        ("zarr", "zyx"),
        ("single-scale OME-Zarr", "zyx"),
        ("numpy", "zyx"),
        ("tiff", "yx"),
        ("multipage tiff", "zyx"),
        ("png sequence", "zyx"),
        ("multipage tiff sequence", "tyx"),
    ],
)
def test_missing_output_folders_are_created(tmp_path: Path, fmt: str, axes: str) -> None:
    """ilastik runs ``mkdir -p`` before every export; a sequence may even put each slice in its own folder."""
    shape = (3, 6, 8) if len(axes) == 3 else (6, 8)
    data = _volume(shape, "uint8")
    pattern = "{slice_index}/r" if fmt.endswith("sequence") else "r"
    paths = write_image(data, str(tmp_path / "a" / "b" / pattern), format=fmt, axes=axes)
    for path in paths:
        assert os.path.exists(split_path(path)[0]), path
    if fmt.endswith("sequence"):
        assert sorted(os.listdir(tmp_path / "a" / "b")) == ["0", "1", "2"]
    if fmt == "png sequence":
        np.testing.assert_array_equal(iio.imread(tmp_path / "a" / "b" / "1" / "r.png"), data[1])
    elif fmt != "multipage tiff sequence":
        stored = np.asarray(open_image(paths[0]).data)  # OME-Zarr and multipage tiff add t, c, z axes
        np.testing.assert_array_equal(stored.reshape(data.shape), data)


@pytest.mark.parametrize("fmt", ["hdf5", "n5", "zarr"])
def test_failing_chunk_keeps_existing_container(tmp_path: Path, fmt: str) -> None:
    a = _volume((4, 6, 8), "uint8")
    (path,) = write_image(a, str(tmp_path / "c"), format=fmt, axes="zyx")
    before = _listing(tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        write_image(_failing(a + 1, (2, 3, 8)), str(tmp_path / "c"), format=fmt, axes="zyx")
    assert _listing(tmp_path) == before
    np.testing.assert_array_equal(open_image(path).data.compute(), a)


# --- hostile zarr chunks ------------------------------------------------------------------------


def _zarr_with_chunk(path: Path, zarr_format: int, compressor: str | None, payload: bytes) -> str:
    """A 128x128 uint8 zarr in 64x64 chunks whose first chunk file holds ``payload``."""
    compressors = None if compressor is None else [zarr.codecs.GzipCodec()]
    if zarr_format == 2 and compressor is not None:
        compressors = [numcodecs.GZip()]
    array = zarr.create_array(
        str(path),
        shape=(128, 128),
        chunks=(64, 64),
        dtype="uint8",
        zarr_format=zarr_format,
        compressors=compressors,
    )
    array[:] = 1
    first = path / ("0.0" if zarr_format == 2 else "c/0/0")
    first.write_bytes(payload)
    return str(path)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_chunk_decompressing_past_its_size_is_refused_unread(tmp_path: Path, zarr_format: int) -> None:
    """A 4 KiB chunk whose 4 KiB file holds 4 MiB of gzip is refused naming the chunk file; nothing
    past a chunk's size is decompressed (a 1 GiB bomb took zarr 2.3 GB before it refused)."""
    bomb = gzip.compress(bytes(4 << 20), compresslevel=9)
    assert len(bomb) < 8192  # no larger than a compressed chunk may be
    path = _zarr_with_chunk(tmp_path / "bomb.zarr", zarr_format, "gzip", bomb)
    with pytest.raises(DataError, match=r"damaged zarr chunk .*bomb.zarr/.*0.*more than the 4096 bytes"):
        open_image(path).data.compute()


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("compressor", [None, "gzip"])
def test_zarr_chunk_shorter_than_a_chunk_is_refused_naming_it(
    tmp_path: Path, zarr_format: int, compressor: str | None
) -> None:
    short = bytes(100) if compressor is None else gzip.compress(bytes(100))
    path = _zarr_with_chunk(tmp_path / "short.zarr", zarr_format, compressor, short)
    with pytest.raises(DataError, match=r"damaged zarr chunk .*short.zarr/.*0.*100 bytes, not the 4096"):
        open_image(path).data.compute()


def test_zarr_chunk_linked_outside_the_store_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(range(256)) * 16)  # exactly one chunk's 4096 bytes
    path = _zarr_with_chunk(tmp_path / "s.zarr", 2, None, bytes(4096))
    (tmp_path / "s.zarr" / "0.0").unlink()
    (tmp_path / "s.zarr" / "0.0").symlink_to(secret)
    with pytest.raises(
        DataError, match=r"refusing zarr chunk .*s.zarr/0.0: it is a link to .*secret.bin, outside"
    ):
        open_image(path).data.compute()
    inside = tmp_path / "s.zarr" / "kept.bin"
    inside.write_bytes(bytes(4096))
    (tmp_path / "s.zarr" / "0.0").unlink()
    (tmp_path / "s.zarr" / "0.0").symlink_to(inside)  # a link within the store is read
    assert int(open_image(path).data.sum().compute()) == 3 * 4096


# --- hostile npz archives -----------------------------------------------------------------------


def test_npz_is_listed_from_member_headers_and_never_unpickled(tmp_path: Path) -> None:
    """A pickled (object) member no longer stops the one image of an archive being picked (it failed
    with "Object arrays cannot be loaded"), and is refused in one line when named."""
    a = np.arange(64 * 48, dtype=np.uint16).reshape(64, 48)
    np.savez(tmp_path / "p.npz", image=a, meta=np.array([[{"x": 1}] * 3] * 3, dtype=object))
    np.testing.assert_array_equal(open_image(str(tmp_path / "p.npz")).data.compute(), a)
    with pytest.raises(DataError, match=r"p.npz/meta: it is an object array, which cascade never unpickles"):
        open_image(str(tmp_path / "p.npz/meta"))


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", ["<u2", ">u2", ">f8"])
def test_npz_stored_members_are_memory_mapped_in_any_layout(tmp_path: Path, order: str, dtype: str) -> None:
    a = np.asarray(np.arange(40 * 30).reshape(40, 30) * 7 % 1000, dtype=dtype, order=order)
    np.savez(tmp_path / "s.npz", a=a)
    np.savez_compressed(tmp_path / "c.npz", a=a)
    stored, compressed = open_image(str(tmp_path / "s.npz/a")), open_image(str(tmp_path / "c.npz/a"))
    np.testing.assert_array_equal(stored.data.compute(), a)
    np.testing.assert_array_equal(compressed.data.compute(), a)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(stored.data)).compute(), a)
    member = _npz._members(str(tmp_path / "s.npz"))["a"]
    assert isinstance(_npz.NpzSource(str(tmp_path / "s.npz"), "a", member)._open(), np.memmap)


def test_compressed_npz_member_too_large_to_inflate_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compressed member is read whole (npz cannot be sliced): past the limit it is refused before
    anything is inflated (a 0.9 MB archive took 2.1 GB: its member was read twice)."""
    monkeypatch.setattr(_npz, "NPZ_INFLATE_BYTES", 4000)
    np.savez_compressed(tmp_path / "z.npz", a=np.zeros((64, 64), np.uint8))
    with pytest.raises(DataError, match=r"z.npz/a: a compressed member of 4096 bytes .* numpy.save"):
        open_image(str(tmp_path / "z.npz"))


def test_npz_member_whose_header_lies_about_its_size_is_refused(tmp_path: Path) -> None:
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (100000, 100000), }".ljust(117) + "\n"
    member = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + bytes(1000)
    with zipfile.ZipFile(tmp_path / "l.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.npy", member)
    with pytest.raises(DataError, match=r"damaged .*l.npz/a: its header declares \(100000, 100000\) uint8"):
        open_image(str(tmp_path / "l.npz"))


@pytest.mark.parametrize(
    ("zarr_format", "dtype"),
    [(2, str), (3, str), (2, "complex64"), (3, "complex64"), (2, [("a", "u1"), ("b", "f4")])],
)
def test_zarr_of_a_non_image_dtype_is_refused_naming_it(
    tmp_path: Path, zarr_format: int, dtype: object
) -> None:
    """Strings failed as dask's "Can not use auto rechunking with object dtype"; each is now named."""
    zarr.create_array(
        str(tmp_path / "s.zarr"), shape=(8, 8), chunks=(8, 8), dtype=dtype, zarr_format=zarr_format
    )
    with pytest.raises(DataError, match=r"s.zarr has unsupported dtype"):
        open_image(str(tmp_path / "s.zarr"))


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("path", ["nothere", "", "/abs/0"])
def test_ome_zarr_naming_a_missing_scale_is_refused_naming_it(
    tmp_path: Path, zarr_format: int, path: str
) -> None:
    """A multiscales entry naming no array of the image failed as "cannot read x.ome.zarr: 'nothere'"."""
    group = zarr.open_group(str(tmp_path / "x.ome.zarr"), mode="w", zarr_format=zarr_format)
    group.create_array("0", shape=(16, 16), chunks=(16, 16), dtype="uint8")
    axes = [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    scale = [{"type": "scale", "scale": [1.0, 1.0]}]
    multiscales = [
        {"version": "0.4", "axes": axes, "datasets": [{"path": path, "coordinateTransformations": scale}]}
    ]
    group.attrs.update(
        {"multiscales": multiscales} if zarr_format == 2 else {"ome": {"multiscales": multiscales}}
    )
    with pytest.raises(
        DataError, match=f"x.ome.zarr: its OME-Zarr multiscales metadata names '{path.strip('/')}', which"
    ):
        open_image(str(tmp_path / "x.ome.zarr"))


def _shard_with_bomb(path: Path) -> str:
    """A 512x512 uint8 zarr of one shard holding four 256x256 gzip chunks, the first a 16 MiB bomb."""
    array = zarr.create_array(
        str(path), shape=(512, 512), chunks=(256, 256), shards=(512, 512), dtype="uint8",
        compressors=[zarr.codecs.GzipCodec()],
    )  # fmt: skip
    array[:] = 1
    shard = path / "c" / "0" / "0"
    data = shard.read_bytes()
    index = np.frombuffer(data[-(4 * 16 + 4) : -4], "<u8").reshape(4, 2)
    chunks = [data[int(o) : int(o) + int(n)] for o, n in index]
    chunks[0] = gzip.compress(bytes(16 << 20), compresslevel=9)
    offsets = np.cumsum([0] + [len(c) for c in chunks[:-1]])
    table = np.array([[o, len(c)] for o, c in zip(offsets, chunks)], "<u8").tobytes()
    shard.write_bytes(b"".join(chunks) + table + bytes(numcodecs.CRC32C().encode(table))[-4:])
    return str(path)


@pytest.mark.parametrize("region", [(slice(None), slice(None)), (slice(10, 20), slice(30, 40))])
def test_sharded_zarr_chunk_bomb_is_refused_unread(tmp_path: Path, region: tuple[slice, slice]) -> None:
    """An inner chunk of a shard inflating past its 64 KiB (16 MiB of gzip) is refused naming the shard,
    read whole or one inner chunk at a time; a 1 GiB one took zarr 2.3 GB before it refused."""
    path = _shard_with_bomb(tmp_path / "s.zarr")
    with pytest.raises(
        DataError, match=r"damaged zarr chunk .*s.zarr/c/0/0 at byte 0: it decompresses to more than"
    ):
        open_image(path).data[region].compute()
    with pytest.raises(DataError, match=r"s.zarr/c/0/0 at byte 0: it decompresses to more than"):
        ZarrSource(path, None, (512, 512), np.uint8)[
            region
        ]  # a part of a shard: its inner chunks fetched alone
    assert ZarrSource(path, None, (512, 512), np.uint8)[300:310, 300:310].tolist() == [[1] * 10] * 10
    a = (np.arange(300 * 200) % 251).reshape(300, 200).astype(np.uint16)
    intact = zarr.create_array(
        str(tmp_path / "ok.zarr"), shape=a.shape, chunks=(32, 32), shards=(128, 64), dtype="u2"
    )
    intact[:] = a  # intact shards read as before, whole or in part
    np.testing.assert_array_equal(open_image(str(tmp_path / "ok.zarr")).data[region].compute(), a[region])


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_declaring_an_empty_chunk_edge_is_refused_naming_it(tmp_path: Path, zarr_format: int) -> None:
    """Chunks of (0, 8) failed as "integer division or modulo by zero"."""
    zarr.create_array(
        str(tmp_path / "e.zarr"), shape=(16, 16), chunks=(8, 8), dtype="uint8", zarr_format=zarr_format
    )
    name = tmp_path / "e.zarr" / (".zarray" if zarr_format == 2 else "zarr.json")
    meta = json.loads(name.read_text())
    if zarr_format == 2:
        meta["chunks"] = [0, 8]
    else:
        meta["chunk_grid"]["configuration"]["chunk_shape"] = [0, 8]
    name.write_text(json.dumps(meta))
    with pytest.raises(
        DataError, match=r"e.zarr: damaged zarr metadata: chunk shape \(0, 8\) has an empty edge"
    ):
        open_image(str(tmp_path / "e.zarr"))


@pytest.mark.parametrize(
    ("codec", "payload"),
    [
        (numcodecs.LZ4(), numcodecs.LZ4().encode(bytes(1 << 20))),
        (numcodecs.BZ2(), bz2.compress(bytes(1 << 20))),
        (numcodecs.Zstd(), numcodecs.Zstd(level=19).encode(bytes(1 << 20))),
        (numcodecs.Blosc(), numcodecs.Blosc().encode(bytes(1 << 20))),
    ],
    ids=["lz4", "bz2", "zstd", "blosc"],
)
def test_zarr_v2_chunk_bomb_of_every_compressor_is_refused(
    tmp_path: Path, codec: Any, payload: bytes
) -> None:
    """Each numcodecs compressor's 1 MiB chunk in a 4 KiB chunk's place is refused before zarr
    allocates it (LZ4 allocates the size its header declares)."""
    assert len(payload) < 8192
    array = zarr.create_array(
        str(tmp_path / "b.zarr"),
        shape=(128, 128),
        chunks=(64, 64),
        dtype="uint8",
        zarr_format=2,
        compressors=[codec],
    )
    array[:] = 1
    (tmp_path / "b.zarr" / "0.0").write_bytes(bytes(payload))
    with pytest.raises(
        DataError, match=r"damaged zarr chunk .*b.zarr/0.0: it decompresses to more than the 4096"
    ):
        open_image(str(tmp_path / "b.zarr")).data.compute()


@pytest.mark.parametrize("shuffle", [False, True])
def test_hdf5_gzip_chunks_are_checked_and_read_unchanged(tmp_path: Path, shuffle: bool) -> None:
    """Intact gzip (and shuffled) chunks read as before, edge and unwritten chunks included; a chunk
    inflating to less than a chunk, or damaged, is refused naming its corner."""
    a = (np.arange(100 * 70) % 1000).reshape(100, 70).astype(np.uint16)
    with h5py.File(tmp_path / "g.h5", "w") as f:
        ds = f.create_dataset(
            "d", shape=a.shape, dtype=a.dtype, chunks=(32, 32), compression="gzip", shuffle=shuffle
        )
        ds[:64] = a[:64]  # the chunks of rows 64.. are never written: the fill value, 0
    expected = np.concatenate([a[:64], np.zeros_like(a[64:])])
    np.testing.assert_array_equal(open_image(str(tmp_path / "g.h5/d")).data.compute(), expected)
    for n, (corner, payload, words) in enumerate(
        [
            ((32, 32), zlib.compress(bytes(100)), "it inflates to 100 bytes"),
            ((0, 64), b"no deflate", "its gzip data is damaged"),
        ]
    ):
        damaged = tmp_path / f"g{n}.h5"
        damaged.write_bytes((tmp_path / "g.h5").read_bytes())
        with h5py.File(damaged, "r+") as f:
            f["d"].id.write_direct_chunk(corner, payload)
        with pytest.raises(
            DataError, match=re.escape(f"chunk at {corner} of {damaged}/d: a chunk is 2048 bytes; {words}")
        ):
            open_image(f"{damaged}/d").data.compute()
