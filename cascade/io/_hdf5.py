"""HDF5 input and output.

Reading keeps the file open read-only (``locking=False``) in each process that reads; h5py
serialises access with its global lock, so dask may read chunks from several threads.
Writing opens the file for every block under a lock (a ``distributed.Lock`` when a
distributed client is active), so worker processes never hold the file open together.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

import dask.array as da
import h5py
import numpy as np
from dask.utils import SerializableLock

from ..errors import DataError, ExportError
from ._atomic import atomic_files
from ._h5guard import check_chunks, deflate_chunk_bytes
from ._internal import dataset_parts
from ._meta import axistags_json, block_shape, keys_from_axistags, valid_axes
from ._sources import LazySource, read_chunks, store, to_dask
from ._store import active_client, aligned_block

__all__ = [
    "H5Source",
    "check_hdf5_target",
    "h5_file",
    "list_h5_datasets",
    "read_hdf5",
    "write_hdf5",
    "write_lock",
]

H5_BLOCK_BYTES = 512_000


def list_h5_datasets(group: h5py.Group) -> list[str]:
    """Paths of the datasets with 2 to 5 dimensions in ``group``, sorted."""
    names: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and 2 <= obj.ndim <= 5:
            names.append(name)

    group.visititems(visit)
    return sorted(names)


def pick_single(datasets: list[str], path: str) -> str:
    """The one dataset of a container, or :class:`DataError` listing them."""
    if len(datasets) == 1:
        return datasets[0]
    if not datasets:
        raise DataError(f"{path} holds no dataset with 2 to 5 dimensions")
    listed = ", ".join(datasets[:20]) + (", ..." if len(datasets) > 20 else "")
    raise DataError(f"{path} holds {len(datasets)} datasets, name one as {path}/<dataset>: {listed}")


class H5Source(LazySource):
    """Lazy reader of one HDF5 dataset."""

    def _open(self) -> Any:
        return h5py.File(self.path, "r", locking=False)

    def _read(self, handle: Any, index: tuple[slice, ...]) -> np.ndarray:
        ds = handle[self.key]
        size = deflate_chunk_bytes(ds)
        if size is not None:  # HDF5 would inflate a chunk whole, however large, and keep its start
            check_chunks(ds, index, size, f"{self.path}/{self.key}")
        return np.asarray(ds[index])


def _axes_of(ds: h5py.Dataset) -> str | None:
    axes = valid_axes(keys_from_axistags(ds.attrs.get("axistags")), ds.ndim)
    if axes is None:
        labels = [dim.label for dim in ds.dims]
        axes = valid_axes(labels, ds.ndim) if all(labels) else None
    return axes


def _check_link(f: h5py.File, internal: str, external: str) -> None:
    """Name a dangling soft or external link at ``internal`` (HDF5 just reports nothing there)."""
    try:
        link = f.get(internal, getlink=True)
    except (KeyError, ValueError, OSError):  # a parent group is missing: nothing to name
        return
    if isinstance(link, h5py.ExternalLink):
        raise DataError(
            f"cannot read {external}/{internal}: it is an external link to {link.filename}:{link.path}, "
            "which cannot be opened"
        )
    if isinstance(link, h5py.SoftLink):
        raise DataError(
            f"cannot read {external}/{internal}: it is a link to {link.path}, which does not exist"
        )


def _check_filters(ds: h5py.Dataset, where: str) -> None:
    """Refuse a dataset compressed with an HDF5 filter that is not available (a plugin not installed).

    Its chunks would fail to read one by one, with HDF5's "can't open directory" of its plugin folder.
    """
    plist = ds.id.get_create_plist()
    for i in range(plist.get_nfilters()):
        code, _, _, name = plist.get_filter(i)
        if not h5py.h5z.filter_avail(code):
            label = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
            raise DataError(
                f"cannot read {where}: it is compressed with HDF5 filter {code} ({label or 'unnamed'}), "
                "which is not available; install its plugin and set HDF5_PLUGIN_PATH"
            )


def read_hdf5(external: str, internal: str | None) -> tuple[da.Array, str | None, str]:
    """Open one dataset of an HDF5 file lazily.

    Returns
    -------
    data, axes, internal
        The dask array (native chunks), its axes from ``axistags`` or dimension labels (or
        None), and the internal path used.
    """
    with h5py.File(external, "r", locking=False) as f:
        if internal is None:
            internal = pick_single(list_h5_datasets(f), external)
        ds = f.get(internal)
        if ds is None:
            _check_link(f, internal, external)
        if not isinstance(ds, h5py.Dataset):
            found = ", ".join(list_h5_datasets(f)) or "none"
            raise DataError(f"{external} has no dataset {internal!r}; datasets: {found}")
        if ds.dtype.kind not in "biuf":
            raise DataError(f"{external}/{internal} has unsupported dtype {ds.dtype}")
        _check_filters(ds, f"{external}/{internal}")
        source = H5Source(external, internal, ds.shape, ds.dtype)
        chunks = read_chunks(ds.chunks, ds.shape, ds.dtype) if ds.chunks else "auto"
        axes = _axes_of(ds)
    return to_dask(source, chunks), axes, internal


def write_lock(name: str) -> Any:
    """A lock that serialises writers: cluster-wide under a distributed client, else in-process."""
    if active_client() is None:
        return SerializableLock()
    from distributed import Lock

    return Lock(f"cascade-write-{name}")  # type: ignore[no-untyped-call]


class _GuardedFile:
    """A file object for h5py's ``fileobj`` driver that never lets a failed write reach HDF5.

    HDF5 cannot recover from a failed write (a full disk): it keeps the dirty metadata,
    fails again when the file is closed and crashes the process at exit. Here a failed
    write is recorded and reported as done; :func:`h5_file` raises it once HDF5 has closed
    the file, and the caller discards the file.
    """

    def __init__(self, path: str) -> None:
        flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        self.fd = os.open(path, flags)
        self.pos = 0
        self.size = os.fstat(self.fd).st_size
        self.error: OSError | None = None

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self.pos, self.size)[whence]
        self.pos = base + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(self.size - self.pos, 0)
        data = os.pread(self.fd, size, self.pos)
        self.pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        if hasattr(os, "preadv"):
            count = os.preadv(self.fd, [buffer], self.pos)
        else:  # no preadv (macOS before 11): read, then copy
            view = memoryview(buffer).cast("B")
            data = os.pread(self.fd, len(view), self.pos)
            count = len(data)
            view[:count] = data
        self.pos += count
        return count

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if self.error is None:
            try:
                done = 0
                while done < len(view):
                    done += os.pwrite(self.fd, view[done:], self.pos + done)
            except OSError as err:
                self.error = err
        self.pos += len(view)
        self.size = max(self.size, self.pos)
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        size = self.pos if size is None else size
        if self.error is None:
            try:
                os.ftruncate(self.fd, size)
            except OSError as err:
                self.error = err
        self.size = size
        return size

    def flush(self) -> None:
        return None

    def close(self) -> None:
        os.close(self.fd)


@contextlib.contextmanager
def h5_file(path: str, mode: str) -> Iterator[h5py.File]:
    """Open an existing file at ``path`` for writing with HDF5 (``mode`` ``"w"`` or ``"r+"``).

    A write that fails (a full disk, a file size limit) raises its ``OSError`` once HDF5
    has closed the file; the file is then incomplete and must be discarded.

    Parameters
    ----------
    path : str
        The file.
    mode : str
        ``"w"`` (truncate) or ``"r+"``.

    Yields
    ------
    h5py.File
        The open file.
    """
    guarded = _GuardedFile(path)
    try:
        with h5py.File(guarded, mode, locking=False) as f:
            yield f
    except BaseException as err:
        guarded.close()
        if guarded.error is not None:
            raise guarded.error from err
        raise
    guarded.close()
    if guarded.error is not None:
        raise guarded.error


class H5Target:
    """A ``dask.array.store`` target that opens the file for each block it writes."""

    def __init__(self, path: str, internal: str) -> None:
        self.path = path
        self.internal = internal

    def __setitem__(self, index: tuple[slice, ...], value: np.ndarray) -> None:
        with h5_file(self.path, "r+") as f:
            f[self.internal][index] = value


def _create(f: h5py.File, name: str, data: da.Array, axes: str, gzip: bool, attrs: Mapping[str, Any]) -> None:
    chunks = aligned_block(block_shape(data.shape, axes, H5_BLOCK_BYTES, data.dtype.itemsize), data.chunks)
    options: dict[str, Any] = {"compression": "gzip", "compression_opts": 1} if gzip else {}
    ds = f.create_dataset(name, shape=data.shape, dtype=data.dtype, chunks=chunks, **options)
    ds.attrs["axistags"] = axistags_json(axes)
    for dim, key in zip(ds.dims, axes, strict=True):
        dim.label = key
    for key, value in attrs.items():
        ds.attrs[key] = value


def check_hdf5_target(path: str, internal: str) -> None:
    """Raise :class:`ExportError` unless ``internal`` can be written into the file ``path``.

    An existing file must be HDF5; the internal path must not pass through a dataset or
    name a group (replacing a group would delete the datasets in it).
    """
    if not os.path.lexists(path) or _placeholder(path):
        return
    if not h5py.is_hdf5(path):
        raise ExportError(f"cannot write {path}: it exists and is not an HDF5 file")
    try:
        with h5py.File(path, "r", locking=False) as f:
            node: Any = f
            for depth, part in enumerate(internal.split("/")):
                node = node.get(part)
                where = "/".join(internal.split("/")[: depth + 1])
                if node is None:
                    return
                if isinstance(node, h5py.Dataset) and where != internal:
                    raise ExportError(f"cannot write {path}/{internal}: {where} is a dataset, not a group")
            if isinstance(node, h5py.Group):
                raise ExportError(
                    f"cannot write {path}/{internal}: it is a group; name a dataset (groups are not replaced)"
                )
    except OSError as err:
        raise ExportError(f"cannot write {path}: {' '.join(str(err).split())}") from err


def _placeholder(path: str) -> bool:
    """An empty regular file: a caller's reserved name (CellProfiler's RunIlastik creates its output
    with ``NamedTemporaryFile``), which ilastik's ``h5py.File(path, "a")`` fills like a new file."""
    return os.path.isfile(path) and not os.path.islink(path) and os.path.getsize(path) == 0


def _copy_others(src: h5py.Group, dst: h5py.Group, skip: str) -> None:
    """Copy everything in ``src`` into ``dst`` except the object at the relative path ``skip``."""
    for key, value in src.attrs.items():
        dst.attrs[key] = value
    head, _, rest = skip.partition("/")
    for name in src:
        link = src.get(name, getlink=True)
        if isinstance(link, h5py.SoftLink | h5py.ExternalLink):
            dst[name] = link
        elif name != head:
            src.copy(name, dst, name=name)
        elif rest and isinstance(src[name], h5py.Group):
            _copy_others(src[name], dst.create_group(name), rest)


def write_hdf5(
    data: da.Array, path: str, internal: str, axes: str, *, gzip: bool, attrs: Mapping[str, Any]
) -> list[str]:
    """Write ``data`` to ``path/internal`` block by block; other datasets in an existing file stay.

    A new file is always written under a temporary name and renamed when complete; the other
    objects of an existing file are copied into it, so a replaced dataset leaves no unused
    space behind and an interrupted run leaves the old file as it was.
    """
    internal = "/".join(dataset_parts(internal, path, "HDF5"))
    check_hdf5_target(path, internal)
    existing = os.path.lexists(path) and not _placeholder(path)
    with atomic_files([path]) as (temp,):
        with h5_file(temp, "w") as f:
            if existing:
                with h5py.File(path, "r", locking=False) as old:
                    _copy_others(old, f, internal)
            _create(f, internal, data, axes, gzip, attrs)
        store(data, H5Target(temp, internal), lock=write_lock(temp))
    return [path]
