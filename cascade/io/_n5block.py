"""N5 block files: a big-endian header (mode, ndim, dims fastest-first) and the block's data.

Decoding trusts nothing in the file: the header must fit the dataset's block shape and the
data must be exactly as long as the header says; nothing beyond that is ever decompressed
(a few MB of gzip can expand to gigabytes).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["decode_block", "encode_block"]


def _inflate(payload: bytes, wbits: int, limit: int) -> bytes:
    """zlib/gzip data (gzip members may follow each other), at most ``limit`` bytes of it."""
    out = bytearray()
    while payload and len(out) < limit:
        unzip = zlib.decompressobj(wbits)
        out += unzip.decompress(payload, limit - len(out))
        if unzip.unconsumed_tail or not unzip.eof:  # more than ``limit``, or cut short
            break
        payload = unzip.unused_data
    return bytes(out)


def _decompress(payload: bytes, compression: Mapping[str, Any], limit: int) -> bytes:
    """The decompressed ``payload``, at most ``limit + 1`` bytes (a block larger than its header is
    damaged or hostile: a few MB of gzip can expand to gigabytes)."""
    kind = compression.get("type", "raw")
    if kind == "raw":
        return payload[: limit + 1]
    if kind == "gzip":
        wbits = zlib.MAX_WBITS if compression.get("useZlib") else 16 + zlib.MAX_WBITS  # zlib or gzip
        return _inflate(payload, wbits, limit + 1)
    if kind in ("bzip2", "xz"):
        inflater = bz2.BZ2Decompressor() if kind == "bzip2" else lzma.LZMADecompressor()
        return bytes(inflater.decompress(payload, max_length=limit + 1))
    if kind in ("blosc", "zstd"):
        import numcodecs

        codec = numcodecs.Blosc() if kind == "blosc" else numcodecs.Zstd()
        out = np.empty(limit, np.uint8)
        try:
            codec.decode(payload, out=out)
        except ValueError:  # larger than the header says
            return bytes(limit + 1)
        return out.tobytes()
    raise DataError(f"unsupported N5 compression {kind!r}; supported are raw, gzip, bzip2, xz, blosc, zstd")


def decode_block(
    raw: bytes, dtype: np.dtype, compression: Mapping[str, Any], block: tuple[int, ...] | None = None
) -> np.ndarray:
    """Decode one N5 block file into a C-order array of the big-endian ``dtype``.

    ``block`` is the dataset's block shape (C order): a block whose header claims more
    dimensions or a larger extent is refused, as is one whose data is shorter or longer than its
    header says (nothing beyond the header's size is ever decompressed).
    """
    if len(raw) < 4:
        raise DataError("truncated N5 block (no header)")
    mode, ndim = struct.unpack(">HH", raw[:4])
    if mode not in (0, 1):
        raise DataError(f"unsupported N5 block mode {mode} (object blocks cannot be read)")
    offset = 4 + 4 * ndim + (4 if mode == 1 else 0)
    if len(raw) < offset:
        raise DataError("truncated N5 block (its header is cut short)")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    shape = dims[::-1]
    if block is not None and (ndim != len(block) or any(n > b for n, b in zip(shape, block, strict=True))):
        raise DataError(
            f"damaged N5 block: its header says {'x'.join(map(str, shape))}, "
            f"the dataset's blocks are {'x'.join(map(str, block))}"
        )
    size = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    data = _decompress(raw[offset:], compression, size)
    if len(data) != size:
        what = "more than" if len(data) > size else f"{len(data)} bytes, not"
        raise DataError(f"damaged N5 block: it holds {what} the {size} bytes its header says")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def encode_block(value: np.ndarray, dtype: np.dtype, gzip_level: int | None) -> bytes:
    """One N5 block file (mode 0) of ``value`` in the big-endian ``dtype``, gzipped at ``gzip_level``."""
    dims = value.shape[::-1]
    header = struct.pack(f">HH{len(dims)}I", 0, len(dims), *dims)
    payload = np.ascontiguousarray(value, dtype=dtype).tobytes()
    if gzip_level is not None:
        payload = gzip.compress(payload, compresslevel=gzip_level, mtime=0)
    return header + payload
