"""NumPy ``.npz`` input: members found from their headers alone, never unpickled.

An archive is listed by reading each member's ``.npy`` header (no member's data is loaded to
learn its shape, and an object member, which only pickle could load, is never read). A member
stored uncompressed (``numpy.savez``) is memory-mapped where it lies in the archive, as an
``.npy`` file is; a compressed one (``numpy.savez_compressed``) can only be read whole, as
ilastik reads it, and is refused past ``NPZ_INFLATE_BYTES`` (a few MB of deflate can declare
gigabytes).
"""

from __future__ import annotations

import os
import struct
import zipfile
from dataclasses import dataclass
from typing import Any, Literal

import dask.array as da
import numpy as np

from ..errors import DataError
from ._hdf5 import pick_single
from ._sources import LazySource, to_dask

__all__ = ["NPZ_INFLATE_BYTES", "NpzSource", "read_npz"]

#: The largest compressed member read (whole, into memory): the default memory per task.
NPZ_INFLATE_BYTES = 512 * 2**20


@dataclass(frozen=True)
class _Member:
    """One ``.npy`` member of an archive: its array header and where its data lies."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    fortran: bool
    offset: int | None  # of the data in the archive file, if stored uncompressed
    compressed: bool

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def _header(fh: Any, where: str) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise DataError(f"cannot read {where}: unsupported .npy format version {version}")
    return tuple(int(n) for n in shape), bool(fortran), np.dtype(dtype)


def _data_offset(fh: Any, info: zipfile.ZipInfo) -> int:
    """Where a stored member's bytes start in the archive (after its local file header)."""
    fh.seek(info.header_offset)
    local = fh.read(30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise DataError(f"damaged zip member {info.filename}: no local header")
    name_length, extra_length = struct.unpack("<HH", local[26:30])
    return int(info.header_offset) + 30 + int(name_length) + int(extra_length)


def _member(path: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Member:
    where = f"{path}/{info.filename.removesuffix('.npy')}"
    if info.flag_bits & 0x1:
        raise DataError(f"cannot read {where}: the member is encrypted")
    with archive.open(info) as fh:
        shape, fortran, dtype = _header(fh, where)
        start = fh.tell()
    member = _Member(shape, dtype, fortran, None, info.compress_type != zipfile.ZIP_STORED)
    if not dtype.hasobject and start + member.nbytes != info.file_size:
        raise DataError(
            f"damaged {where}: its header declares {shape} {dtype} ({member.nbytes} bytes), "
            f"the archive holds {info.file_size - start}"
        )
    if member.compressed:
        return member
    with open(path, "rb") as fh:
        offset = _data_offset(fh, info) + start
    return _Member(shape, dtype, fortran, offset, False)


def _members(path: str) -> dict[str, _Member]:
    """The ``.npy`` members of the archive ``path`` by name, from their headers."""
    with zipfile.ZipFile(path) as archive:
        infos = [i for i in archive.infolist() if i.filename.endswith(".npy")]
        return {i.filename.removesuffix(".npy"): _member(path, archive, i) for i in infos}


class NpzSource(LazySource):
    """Reader of one array of an ``.npz`` archive: memory-mapped if stored, else read whole."""

    def __init__(self, path: str, key: str, member: _Member) -> None:
        super().__init__(path, key, member.shape, member.dtype)
        self.member = member

    def _open(self) -> Any:
        member = self.member
        if member.offset is not None:
            order: Literal["C", "F"] = "F" if member.fortran else "C"
            return np.memmap(
                self.path, dtype=member.dtype, mode="r", offset=member.offset, shape=member.shape, order=order
            )
        with np.load(self.path, allow_pickle=False) as archive:
            array = archive[self.key]
        if array.shape != member.shape or array.dtype != member.dtype:
            raise DataError(f"cannot read {self.path}/{self.key}: it changed while being read")
        return array

    def _read(self, handle: Any, index: tuple[slice, ...]) -> np.ndarray:
        return np.array(handle[index])

    def _close(self, handle: Any) -> None:
        return None


def read_npz(path: str, key: str | None) -> tuple[da.Array, None, str]:
    """Open one array of an ``.npz`` archive (the only one of 2 to 5 dimensions if ``key`` is None).

    Raises
    ------
    DataError
        If the member is missing, an object array (never unpickled), of another unsupported
        dtype, damaged, or compressed and larger than ``NPZ_INFLATE_BYTES``.
    """
    members = _members(path)
    if key is None:
        images = [n for n, m in members.items() if 2 <= len(m.shape) <= 5 and not m.dtype.hasobject]
        key = pick_single(sorted(images), path)
    member = members.get(key)
    if member is None:
        raise DataError(f"{path} has no array {key!r}; arrays: {', '.join(sorted(members)) or 'none'}")
    if member.dtype.hasobject:
        raise DataError(f"cannot read {path}/{key}: it is an object array, which cascade never unpickles")
    if member.dtype.kind not in "biuf":
        raise DataError(f"{path}/{key} has unsupported dtype {member.dtype}")
    if member.compressed and member.nbytes > NPZ_INFLATE_BYTES:
        raise DataError(
            f"cannot read {path}/{key}: a compressed member of {member.nbytes} bytes would be read whole "
            f"into memory (at most {NPZ_INFLATE_BYTES}); save it with numpy.save or numpy.savez, or as zarr"
        )
    if member.offset is not None and member.offset + member.nbytes > os.path.getsize(path):
        raise DataError(f"damaged {path}/{key}: the archive ends before its data")
    source = NpzSource(path, key, member)
    chunks = "auto" if member.offset is not None else member.shape
    return to_dask(source, chunks), None, key
