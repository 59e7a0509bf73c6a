"""Local zarr chunks read trusting nothing: no chunk may decompress past its declared size.

zarr decompresses a chunk whole before it checks its size: a few MB of gzip, zstd or blosc
in one chunk file expand to gigabytes (a 1 GiB bomb in a 4 KiB chunk took 2.3 GB before zarr
refused to reshape it). :class:`GuardedStore` wraps a local store and, before zarr sees a
chunk, checks that its file stays inside the store, is no larger than a chunk can be, and
decompresses (with a limit) to at most one chunk's bytes. Layouts it cannot check (sharding,
filters, other codecs) are read by zarr as they are.
"""

from __future__ import annotations

import bz2
import lzma
import os
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from zarr.storage import LocalStore, WrapperStore

from ..errors import DataError

__all__ = ["GuardedStore", "chunk_guard"]

#: Metadata documents of zarr v2 and v3 (everything else in an array's folder is a chunk).
_METADATA = frozenset({".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json"})
#: numcodecs / zarr codec names checked here, and how.
_KINDS = {
    "gzip": "inflate",
    "zlib": "inflate",
    "zstd": "zstd",
    "blosc": "blosc",
    "bz2": "bz2",
    "lzma": "lzma",
}


@dataclass(frozen=True)
class ChunkGuard:
    """How to check one array's chunk files: the codec kind and a chunk's decoded bytes."""

    kind: str
    expected: int

    @property
    def max_file(self) -> int:
        """The largest a chunk file can be (compressors may add a little to incompressible data)."""
        return self.expected if self.kind == "raw" else self.expected + self.expected // 64 + 4096

    def decoded_size(self, data: bytes) -> int | None:
        """Bytes ``data`` decompresses to, counted up to ``expected + 1`` (never further).

        None where it is not known without decoding (blosc and zstd data of at most a chunk,
        or damaged: zarr's own decoder then refuses it).
        """
        limit = self.expected + 1
        if self.kind == "raw":
            return len(data)
        if self.kind == "inflate":
            return _inflated(data, limit)
        if self.kind in ("bz2", "lzma"):
            inflater = bz2.BZ2Decompressor() if self.kind == "bz2" else lzma.LZMADecompressor()
            return len(inflater.decompress(data, max_length=limit))
        import numcodecs

        codec = numcodecs.Blosc() if self.kind == "blosc" else numcodecs.Zstd()
        out = np.empty(self.expected, np.uint8)
        try:
            codec.decode(data, out=out)
        except ValueError:  # "destination buffer too small": it declares more than a chunk
            return limit
        except RuntimeError:  # damaged: zarr's own decoder names it
            return None
        return None  # at most ``out``; a short chunk is refused by zarr's reshape


def _inflated(payload: bytes, limit: int) -> int:
    """Bytes of zlib or gzip data (gzip members may follow each other), counted up to ``limit``."""
    total = 0
    while payload and total < limit:
        unzip = zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib or gzip header, detected
        try:
            total += len(unzip.decompress(payload, limit - total))
        except zlib.error:  # damaged: zarr's own decoder names it
            return total
        if unzip.unconsumed_tail or not unzip.eof:
            break
        payload = unzip.unused_data
    return total


def _codec_kind(name: str) -> str | None:
    return _KINDS.get(name.lower())


def chunk_guard(array: Any) -> ChunkGuard | None:
    """How the chunks of ``array`` (an opened ``zarr.Array``) are checked, or None if they cannot be.

    Checked are plain chunks of a fixed-size dtype, stored raw or with one of gzip, zlib, zstd,
    blosc, bz2 or lzma (v2: no filters; v3: ``bytes`` then at most one of those codecs).
    """
    dtype = np.dtype(array.dtype)
    if dtype.hasobject or dtype.itemsize == 0:
        return None
    expected = int(np.prod(array.chunks, dtype=np.int64)) * dtype.itemsize
    metadata = array.metadata
    if metadata.zarr_format == 2:
        if metadata.filters:
            return None
        compressor = metadata.compressor
        kind = "raw" if compressor is None else _codec_kind(str(getattr(compressor, "codec_id", "")))
        return None if kind is None else ChunkGuard(kind, expected)
    names = [type(codec).__name__ for codec in metadata.codecs]
    if not names or names[0] != "BytesCodec" or len(names) > 2:
        return None
    if len(names) == 1:
        return ChunkGuard("raw", expected)
    kind = _codec_kind(names[1].removesuffix("Codec"))
    return None if kind is None else ChunkGuard(kind, expected)


class GuardedStore(WrapperStore[LocalStore]):
    """A read-only local zarr store whose chunk files are checked before zarr decodes them.

    Parameters
    ----------
    store : zarr.storage.LocalStore
        The store read.
    guard : ChunkGuard
        The array's chunk check (:func:`chunk_guard`).
    """

    def __init__(self, store: LocalStore, guard: ChunkGuard | None = None) -> None:
        super().__init__(store)
        self.guard = guard
        self.root = os.path.realpath(str(store.root))

    def _with_store(self, store: LocalStore) -> GuardedStore:
        return GuardedStore(store, self.guard)

    def _check_file(self, key: str) -> str | None:
        """The chunk file of ``key`` (None if missing), refused if it leaves the store or is too large."""
        path = os.path.join(self.root, *key.split("/"))
        try:
            size = os.stat(path).st_size
        except OSError:
            return None
        name = os.path.join(str(self._store.root), *key.split("/"))
        real = os.path.realpath(path)
        if os.path.commonpath([real, self.root]) != self.root:
            raise DataError(f"refusing zarr chunk {name}: it is a link to {real}, outside the store")
        if self.guard is not None and size > self.guard.max_file:
            raise DataError(
                f"damaged zarr chunk {name}: the file holds {size} bytes, more than a chunk "
                f"({self.guard.expected} bytes) can"
            )
        return name

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        """The bytes of ``key``, a chunk's only once checked."""
        if os.path.basename(key) in _METADATA:
            return await self._store.get(key, prototype, byte_range)
        name = self._check_file(key)
        found = await self._store.get(key, prototype, byte_range)
        guard = self.guard
        if found is None or name is None or guard is None or byte_range is not None:
            return found
        size = guard.decoded_size(found.to_bytes())
        if size is not None and size != guard.expected:
            what = "more than" if size > guard.expected else f"{size} bytes, not"
            raise DataError(
                f"damaged zarr chunk {name}: it decompresses to {what} the {guard.expected} bytes of a chunk"
            )
        return found
