"""A minimal N5 reader and writer (zarr 3 has no N5 store).

An N5 dataset is a directory with ``attributes.json`` (``dimensions``, ``blockSize``,
``dataType``, ``compression``) and one file per block at ``<i0>/<i1>/...``. N5 lists
dimensions fastest-first (Java/Fortran order), so cascade reverses them to C order; a
block file holds a big-endian header (mode, ndim, block dims) and big-endian data in that
order, which read as C order with reversed dims is the C-order block. Missing blocks read
as 0. N5 stores at ``http(s)://`` and ``s3://`` URLs are read block by block through fsspec.
"""

from __future__ import annotations

import itertools
import json
import lzma
import os
import zlib
from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np

from ..errors import DataError, ExportError
from ._atomic import atomic_dir, make_temp_file, remove, remove_stale
from ._internal import check_inside, dataset_parts
from ._meta import axistags_json, block_shape
from ._n5block import decode_block, encode_block
from ._remote import filesystem, is_url, join, read_bytes
from ._resume import ResumeState, resumable_dir, store_resumable
from ._sources import LazySource, one_line, rechunk, store
from ._store import aligned_block

__all__ = [
    "N5_DTYPES",
    "N5Source",
    "N5Target",
    "check_n5_target",
    "create_n5_dataset",
    "list_n5_datasets",
    "n5_attributes",
    "write_n5",
    "write_n5_group",
]

N5_VERSION = "4.0.0"
N5_BLOCK_BYTES = 512_000
#: The element types N5 stores.
N5_DTYPES = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float32", "float64")


def _read_file(path: str) -> bytes | None:
    """The bytes of a local file or URL, or None if it does not exist."""
    if is_url(path):
        return read_bytes(path)
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def n5_attributes(directory: str) -> dict[str, Any]:
    """The ``attributes.json`` of an N5 group or dataset, local or at a URL (empty if none)."""
    path = join(directory, "attributes.json")
    raw = _read_file(path)
    if raw is None:
        return {}
    attrs = json.loads(raw.decode("utf-8"))
    if not isinstance(attrs, dict):
        raise DataError(f"cannot read {path}: attributes are not a JSON object")
    return attrs


def _is_dataset(attrs: Mapping[str, Any]) -> bool:
    return "dimensions" in attrs and "dataType" in attrs


def _list_remote(root: str) -> list[str]:
    if not root.lower().startswith("s3://"):
        raise DataError(f"{root}: N5 datasets cannot be listed over http; give the dataset's path")
    fs, path = filesystem(root)
    prefix = path.rstrip("/") + "/"
    found = [
        key[len(prefix) : -len("/attributes.json")]
        for key in fs.find(path)
        if key.startswith(prefix) and key.endswith("/attributes.json")
    ]
    return sorted(f for f in found if _is_dataset(n5_attributes(join(root, f))))


def list_n5_datasets(root: str) -> list[str]:
    """Internal paths of all N5 datasets below ``root`` (a folder or an ``s3://`` URL), sorted."""
    if is_url(root):
        return _list_remote(root)
    found = []
    for directory, subdirs, _ in os.walk(root):
        if _is_dataset(n5_attributes(directory)):
            found.append(os.path.relpath(directory, root).replace(os.sep, "/"))
            subdirs.clear()
        else:
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
    return sorted(f for f in found if f != ".")


def _compression(attrs: Mapping[str, Any]) -> dict[str, Any]:
    if "compression" in attrs:
        return dict(attrs["compression"])
    return {"type": attrs.get("compressionType", "raw")}


class N5Source(LazySource):
    """Lazy reader of one N5 dataset directory, in C axis order."""

    def __init__(self, root: str, internal: str | None, attrs: Mapping[str, Any]) -> None:
        if attrs["dataType"] not in N5_DTYPES:
            raise DataError(f"unsupported N5 dataType {attrs['dataType']!r}")
        shape = tuple(int(n) for n in reversed(attrs["dimensions"]))
        super().__init__(root, internal, shape, np.dtype(attrs["dataType"]))
        self.directory = join(root, internal) if internal else root
        self.block = tuple(int(n) for n in reversed(attrs["blockSize"]))
        self.compression = _compression(attrs)
        self.big_endian = self.dtype.newbyteorder(">")

    def _open(self) -> Any:
        return True

    def _close(self, handle: Any) -> None:
        return None

    def _block(self, grid: tuple[int, ...]) -> np.ndarray | None:
        path = join(self.directory, *(str(i) for i in reversed(grid)))
        raw = _read_file(path)
        if raw is None:
            return None
        try:
            return decode_block(raw, self.big_endian, self.compression, self.block)
        except DataError as err:
            raise DataError(f"cannot read {path}: {err}") from None
        except (OSError, ValueError, EOFError, zlib.error, lzma.LZMAError) as err:
            raise DataError(f"cannot read {path}: damaged N5 block ({one_line(err)})") from None

    def _read(self, handle: Any, index: tuple[slice, ...]) -> np.ndarray:
        bounds = [s.indices(n)[:2] for s, n in zip(index, self.shape, strict=True)]
        out = np.zeros([b - a for a, b in bounds], dtype=self.dtype)
        ranges = [
            range(a // bs, (b - 1) // bs + 1) for (a, b), bs in zip(bounds, self.block, strict=True) if b > a
        ]
        if len(ranges) < len(bounds):
            return out
        for grid in itertools.product(*ranges):
            block = self._block(grid)
            if block is None:
                continue
            origin = [g * bs for g, bs in zip(grid, self.block, strict=True)]
            src, dst = [], []
            for (a, b), o, n in zip(bounds, origin, block.shape, strict=True):
                lo, hi = max(a, o), min(b, o + n)
                src.append(slice(lo - o, hi - o))
                dst.append(slice(lo - a, hi - a))
            out[tuple(dst)] = block[tuple(src)]
        return out


def write_n5_group(directory: str, *, root: bool = False) -> None:
    """Create an N5 group directory with its ``attributes.json`` (the root also gets the version).

    The attributes file is replaced by a rename, never written through a symlink.
    """
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "attributes.json")
    attrs = n5_attributes(directory) if not os.path.islink(path) else {}
    if root:
        attrs.setdefault("n5", N5_VERSION)
    temp = make_temp_file(path)
    try:
        with open(temp, "w", encoding="utf-8") as fh:
            json.dump(attrs, fh)
        os.replace(temp, path)
    except BaseException:
        remove(temp)
        raise


class N5Target:
    """A ``__setitem__`` target for ``dask.array.store`` writing whole N5 blocks."""

    def __init__(
        self,
        directory: str,
        shape: tuple[int, ...],
        block: tuple[int, ...],
        dtype: Any,
        gzip_level: int | None,
    ):
        self.directory = directory
        self.shape = shape
        self.block = block
        self.dtype = np.dtype(dtype).newbyteorder(">")
        self.gzip_level = gzip_level

    def __setitem__(self, index: tuple[slice, ...], value: np.ndarray) -> None:
        starts = [s.indices(n)[0] for s, n in zip(index, self.shape, strict=True)]
        if any(a % bs for a, bs in zip(starts, self.block, strict=True)):
            raise ExportError(f"cannot write {self.directory}: a write is not aligned to the N5 blocks")
        grid = [a // bs for a, bs in zip(starts, self.block, strict=True)]
        path = os.path.join(self.directory, *(str(i) for i in reversed(grid)))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(encode_block(value, self.dtype, self.gzip_level))


def create_n5_dataset(
    directory: str,
    shape: tuple[int, ...],
    block: tuple[int, ...],
    dtype: Any,
    axes: str,
    *,
    gzip_level: int | None,
    attrs: Mapping[str, Any] | None = None,
) -> N5Target:
    """Create an N5 dataset directory (C-order ``shape`` and ``block``) and return its target.

    ``axes`` is stored reversed in the ``axes`` attribute (N5's Java convention) and as
    vigra ``axistags`` in C order, as ilastik does.
    """
    name = np.dtype(dtype).name
    if name not in N5_DTYPES:
        raise ExportError(
            f"cannot write {directory}: N5 cannot store dtype {name}; supported are {', '.join(N5_DTYPES)}"
        )
    compression: dict[str, Any] = {"type": "raw"}
    if gzip_level is not None:
        compression = {"type": "gzip", "level": gzip_level, "useZlib": False}
    meta: dict[str, Any] = dict(attrs or {})
    meta.update(
        dimensions=list(shape[::-1]),
        blockSize=list(block[::-1]),
        dataType=name,
        compression=compression,
        axes=list(axes[::-1]),
        axistags=axistags_json(axes),
    )
    os.makedirs(directory, exist_ok=True)  # new, or an empty private temporary directory
    with open(os.path.join(directory, "attributes.json"), "x", encoding="utf-8") as fh:
        json.dump(meta, fh)
    return N5Target(directory, tuple(shape), tuple(block), dtype, gzip_level)


def _is_n5_container(path: str) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, "attributes.json"))


def check_n5_target(path: str, internal: str = "exported_data") -> None:
    """Raise :class:`ExportError` unless dataset ``internal`` can be written to the N5 container ``path``.

    An existing ``path`` must be an N5 container, and what is at ``internal`` in it (if
    anything) an N5 dataset inside it.
    """
    parts = dataset_parts(internal, path, "N5")
    if not os.path.lexists(path):
        return
    if not _is_n5_container(path):
        raise ExportError(f"cannot write {path}: it exists and is not an N5 container")
    final = os.path.join(path, *parts)
    check_inside(os.path.dirname(final), path)
    _check_replaceable(final)


def write_n5(
    data: da.Array,
    path: str,
    internal: str,
    axes: str,
    *,
    gzip_level: int | None,
    attrs: Mapping[str, Any],
    resume: str | None = None,
    block: tuple[int, ...] | None = None,
) -> list[str]:
    """Write ``data`` as dataset ``internal`` of the N5 container ``path`` (created if missing).

    Blocks are about 512 KB with ``t = c = 1``, as ilastik's writer chooses them; each dask
    chunk is one N5 block, so blocks are written in parallel. ``block`` sets the block shape instead
    (ilastik's ``--distributed`` export stores its block roi).
    """
    parts = dataset_parts(internal, path, "N5")
    check_n5_target(path, internal)  # again here: nothing but an N5 dataset is ever replaced
    if block is None:
        block = aligned_block(block_shape(data.shape, axes, N5_BLOCK_BYTES, data.dtype.itemsize), data.chunks)
    block = tuple(min(b, n) for b, n in zip(block, data.shape, strict=True))
    computed = data.chunks
    data = rechunk(data, block)

    def create(directory: str) -> N5Target:
        return create_n5_dataset(
            directory, data.shape, block, data.dtype, axes, gzip_level=gzip_level, attrs=attrs
        )

    def groups(root: str) -> None:
        for depth in range(1, len(parts)):
            group = os.path.join(root, *parts[:depth])
            check_inside(group, root)
            write_n5_group(group)

    if resume is not None and not _is_n5_container(path):
        with resumable_dir(path, resume) as (work, resuming):
            directory = os.path.join(work, *parts)
            if not resuming:
                write_n5_group(work, root=True)
                groups(work)
                create(directory)
            target = N5Target(directory, data.shape, block, data.dtype, gzip_level)
            store_resumable(data, target, ResumeState(work), compute_chunks=computed)
        return [path]
    if _is_n5_container(path):
        final = os.path.join(path, *parts)
        groups(path)
        check_inside(os.path.dirname(final), path)
        _check_replaceable(final)
        remove_stale(final)
        with atomic_dir(final) as temp:
            store(data, create(temp), compute_chunks=computed)
    else:
        with atomic_dir(path) as temp:
            write_n5_group(temp, root=True)
            groups(temp)
            store(data, create(os.path.join(temp, *parts)), compute_chunks=computed)
    return [path]


def _check_replaceable(final: str) -> None:
    """Refuse to replace anything at ``final`` but an N5 dataset (a group, a file, a symlink)."""
    if not os.path.lexists(final):
        return
    if os.path.islink(final) or not _is_dataset(n5_attributes(final)):
        raise ExportError(f"cannot write {final}: it exists and is not an N5 dataset; it is not replaced")
