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
    "lz4": "lz4",
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
        if self.kind == "lz4":  # numcodecs' LZ4 leads with the decoded size, and allocates it
            return int.from_bytes(data[:4], "little") if len(data) >= 4 else 0
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


def _inner_guard(codecs: Any, expected: int) -> ChunkGuard | None:
    """The check of chunks stored with v3 ``codecs`` (``bytes`` then at most one compressor)."""
    names = [type(codec).__name__ for codec in codecs]
    if not names or names[0] != "BytesCodec" or len(names) > 2:
        return None
    kind = "raw" if len(names) == 1 else _codec_kind(names[1].removesuffix("Codec"))
    return None if kind is None else ChunkGuard(kind, expected)


@dataclass(frozen=True)
class ShardGuard:
    """How to check a v3 shard: its inner chunks' check, their count and the index's size and place."""

    inner: ChunkGuard
    count: int
    index_size: int
    index_at_start: bool

    @property
    def max_file(self) -> int:
        """The largest a shard file can be."""
        return self.count * self.inner.max_file + self.index_size

    def inner_ranges(self, data: bytes) -> list[tuple[int, int]]:
        """The (offset, length) of every stored inner chunk of the whole shard ``data``."""
        index = data[: self.index_size] if self.index_at_start else data[len(data) - self.index_size :]
        pairs = np.frombuffer(index[: 16 * self.count], "<u8").reshape(-1, 2)
        empty = np.iinfo(np.uint64).max
        return [(int(o), int(n)) for o, n in pairs if not (o == empty and n == empty)]


def _shard_guard(codec: Any, dtype: np.dtype[Any]) -> ShardGuard | None:
    inner = _inner_guard(codec.codecs, int(np.prod(codec.chunk_shape, dtype=np.int64)) * dtype.itemsize)
    index = [type(c).__name__ for c in codec.index_codecs]
    if inner is None or index not in (["BytesCodec"], ["BytesCodec", "Crc32cCodec"]):
        return None
    return ShardGuard(inner, 0, 4 * len(index) - 4, str(codec.index_location.value) == "start")


def chunk_guard(array: Any) -> ChunkGuard | ShardGuard | None:
    """How the chunks of ``array`` (an opened ``zarr.Array``) are checked, or None if they cannot be.

    Checked are chunks of a fixed-size dtype, stored raw or with one of gzip, zlib, zstd, blosc,
    bz2, lzma or lz4 (v2: no filters; v3: ``bytes`` then at most one of those codecs, or shards of
    such chunks with a ``bytes`` (and ``crc32c``) index).
    """
    dtype = np.dtype(array.dtype)
    if dtype.hasobject or dtype.itemsize == 0:
        return None
    metadata = array.metadata
    expected = int(np.prod(array.chunks, dtype=np.int64)) * dtype.itemsize
    if metadata.zarr_format == 2:
        compressor = metadata.compressor
        kind = "raw" if compressor is None else _codec_kind(str(getattr(compressor, "codec_id", "")))
        return None if kind is None or metadata.filters else ChunkGuard(kind, expected)
    if [type(c).__name__ for c in metadata.codecs] != ["ShardingCodec"]:
        return _inner_guard(metadata.codecs, expected)
    shard = _shard_guard(metadata.codecs[0], dtype)
    if shard is None:
        return None
    count = int(np.prod(array.shards, dtype=np.int64)) // int(np.prod(array.chunks, dtype=np.int64))
    return ShardGuard(shard.inner, count, 16 * count + shard.index_size, shard.index_at_start)


def _check_decoded(guard: ChunkGuard, data: bytes, name: str) -> None:
    size = guard.decoded_size(data)
    if size is not None and size != guard.expected:
        what = "more than" if size > guard.expected else f"{size} bytes, not"
        raise DataError(
            f"damaged zarr chunk {name}: it decompresses to {what} the {guard.expected} bytes of a chunk"
        )


def _check_shard(guard: ShardGuard, data: bytes, byte_range: Any, name: str) -> None:
    """Check what was read of a shard: the whole of it, its index, or one inner chunk."""
    if byte_range is None:
        if len(data) < guard.index_size:
            raise DataError(f"damaged zarr shard {name}: shorter than its index")
        for offset, length in guard.inner_ranges(data):
            if offset + length > len(data):
                raise DataError(f"damaged zarr shard {name}: its index points past its end")
            _check_decoded(guard.inner, data[offset : offset + length], f"{name} at byte {offset}")
        return
    start = getattr(byte_range, "start", None)
    is_index = (
        (start == 0 and len(data) == guard.index_size)
        if guard.index_at_start
        else not hasattr(byte_range, "end")
    )
    if not is_index:
        _check_decoded(guard.inner, data, f"{name} at byte {start}")


class GuardedStore(WrapperStore[LocalStore]):
    """A read-only local zarr store whose chunk files are checked before zarr decodes them.

    Parameters
    ----------
    store : zarr.storage.LocalStore
        The store read.
    guard : ChunkGuard or ShardGuard, optional
        The array's chunk check (:func:`chunk_guard`); None: only where chunk files lead is checked.
    """

    def __init__(self, store: LocalStore, guard: ChunkGuard | ShardGuard | None = None) -> None:
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
            kind = "chunk" if isinstance(self.guard, ChunkGuard) else "shard"
            raise DataError(
                f"damaged zarr {kind} {name}: the file holds {size} bytes, more than a {kind} can"
            )
        return name

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        """The bytes of ``key``, a chunk's only once checked."""
        if os.path.basename(key) in _METADATA:
            return await self._store.get(key, prototype, byte_range)
        name = self._check_file(key)
        found = await self._store.get(key, prototype, byte_range)
        guard = self.guard
        if found is None or name is None or guard is None:
            return found
        if isinstance(guard, ShardGuard):
            _check_shard(guard, found.to_bytes(), byte_range, name)
        elif byte_range is None:
            _check_decoded(guard, found.to_bytes(), name)
        return found
