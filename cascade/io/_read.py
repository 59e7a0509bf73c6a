"""``open_image``: any supported input as a lazy dask array with axes and ilastik's names."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass

import dask.array as da
import h5py
import numpy as np

from ..axes import fitting_axes, parse_axes
from ..errors import AxesError, CascadeError, DataError
from ._flat import FLAT_FORMATS, read_flat, read_flat_url
from ._hdf5 import list_h5_datasets, pick_single, read_hdf5
from ._meta import guess_axes, keys_from_axistags, valid_axes
from ._n5 import N5Source, list_n5_datasets, n5_attributes
from ._npz import read_npz
from ._numpy import read_npy
from ._paths import Member, expand_path, make_nickname
from ._remote import is_url, join, probe, remote_error, remote_exists
from ._sources import one_line, read_chunks, to_dask
from ._tiff import read_tiff

__all__ = ["READ_FORMATS", "Image", "open_image"]

#: file extension -> reader format name
READ_FORMATS: dict[str, str] = {
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".hdf": "hdf5",
    ".ilp": "hdf5",
    ".n5": "n5",
    ".zarr": "zarr",
    ".npy": "numpy",
    ".npz": "npz",
    ".tif": "tiff",
    ".tiff": "tiff",
    **{"." + ext: ext for ext in FLAT_FORMATS},
}


@dataclass(frozen=True, eq=False)
class Image:
    """An input image: lazy data plus the names ilastik derives from its path.

    Attributes
    ----------
    data : dask.array.Array
        The pixels, in the file's axis order, chunked by the file's own chunks (pages or
        tiles for TIFF, one chunk per file in a stack of 2D files).
    axes : str
        Axis keys of ``data`` (from ``t z y x c``), one per dimension.
    axes_guessed : bool
        True if no axes were given and the file had none, so ilastik's guess from the number
        of dimensions was used.
    nickname : str
        ilastik's ``{nickname}``: base name without extension, ``-<internal-path>`` appended
        with ``/`` as ``-``; for stacks, the common prefix of the file names.
    dataset_dir : str
        ilastik's ``{dataset_dir}``: absolute directory of the (first) file; for a URL, the
        URL of the folder holding the store (a batch run uses the project's folder instead,
        as ilastik does for remote datasets).
    path : str
        The path as given to :func:`open_image`.
    format : str
        Reader format: ``hdf5``, ``n5``, ``zarr``, ``numpy``, ``npz``, ``tiff``, ``png``, ...
    files : tuple of str
        The files read (with internal paths), more than one for a stack.
    """

    data: da.Array
    axes: str
    axes_guessed: bool
    nickname: str
    dataset_dir: str
    path: str
    format: str
    files: tuple[str, ...]

    @property
    def dtype(self) -> np.dtype:
        """Element type of :attr:`data`."""
        dtype: np.dtype = np.dtype(self.data.dtype.str)
        return dtype

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of :attr:`data`."""
        return tuple(int(n) for n in self.data.shape)

    @property
    def ndim(self) -> int:
        """Number of dimensions of :attr:`data`."""
        return int(self.data.ndim)


#: What can be read from a URL: stores read chunk by chunk, and 2D image files.
REMOTE_FORMATS = ("zarr", "n5", *FLAT_FORMATS)


def _remote_format(external: str) -> str:
    ext = os.path.splitext(external.rstrip("/"))[1].lower()
    fmt = READ_FORMATS.get(ext) or probe(external)
    if fmt is None:
        raise DataError(f"input not found: {external} (no zarr or N5 metadata there)")
    if fmt not in REMOTE_FORMATS:
        raise DataError(
            f"cannot read {external}: only zarr, OME-Zarr and N5 stores and 2D images (png, jpeg ...) "
            f"can be read from a URL, not {fmt}"
        )
    return fmt


def _format_of(external: str) -> str:
    if is_url(external):
        return _remote_format(external)
    ext = os.path.splitext(external.rstrip("/"))[1].lower()
    if ext in READ_FORMATS:
        return READ_FORMATS[ext]
    if os.path.isdir(external):
        if any(os.path.isfile(os.path.join(external, m)) for m in ("zarr.json", ".zarray", ".zgroup")):
            return "zarr"
        if os.path.isfile(os.path.join(external, "attributes.json")):
            return "n5"
    supported = " ".join(sorted(READ_FORMATS))
    raise DataError(
        f"cannot read {external}: unsupported format {ext or '(no extension)'!r}; supported: {supported}"
    )


def _read_n5(external: str, internal: str | None) -> tuple[da.Array, str | None, str | None]:
    if internal is None and not n5_attributes(external).get("dimensions"):
        internal = pick_single(list_n5_datasets(external), external)
    directory = join(external, internal) if internal else external
    attrs = n5_attributes(directory)
    if "dimensions" not in attrs:
        found = ", ".join(list_n5_datasets(external)) or "none"
        raise DataError(f"{external} has no N5 dataset {internal!r}; datasets: {found}")
    source = N5Source(external, internal, attrs)
    axes = attrs.get("axes")
    keys = valid_axes(list(reversed(axes)), source.ndim) if isinstance(axes, list) else None
    if keys is None:
        keys = valid_axes(keys_from_axistags(attrs.get("axistags")), source.ndim)
    chunks = source.block if is_url(external) else read_chunks(source.block, source.shape, source.dtype)
    return to_dask(source, chunks), keys, internal


def _read_one(member: Member, scale: str | int | None, *, in_stack: bool) -> tuple[da.Array, str | None, str]:
    """Read one file: (data, axes from metadata or None, format name)."""
    external, internal = member
    fmt = _format_of(external)
    if is_url(external):
        _check_remote_node(external, internal, fmt)
    if scale is not None and fmt != "zarr":
        raise DataError(f"cannot read {external}: scale={scale!r} applies only to OME-Zarr input")
    if internal is not None and fmt not in ("hdf5", "n5", "zarr", "npz"):
        raise DataError(f"cannot read {external}/{internal}: {fmt} files have no internal paths")
    if fmt == "hdf5":
        data, axes, _ = read_hdf5(external, internal)
    elif fmt == "n5":
        data, axes, _ = _read_n5(external, internal)
    elif fmt == "zarr":
        from ._zarr import read_zarr  # zarr takes a quarter of a second to import: only for zarr input

        data, axes, _ = read_zarr(external, internal, scale)
    elif fmt == "npz":
        data, axes, _ = read_npz(external, internal)
    elif fmt == "numpy":
        data, axes = read_npy(external)
    elif fmt == "tiff":
        data, axes = read_tiff(external, keep_open=not in_stack)
    else:
        data, axes = read_flat_url(external) if is_url(external) else read_flat(external)
    return data, axes, fmt


def _check_remote_node(external: str, internal: str | None, fmt: str) -> None:
    """Fail with one line naming the URL when nothing is stored at the node asked for."""
    url = join(external, internal) if internal else external
    if fmt in FLAT_FORMATS:
        try:
            found = remote_exists(url)
        except Exception as err:
            raise remote_error(url, err) from err
        if not found:
            raise DataError(f"input not found: {url}")
        return
    if probe(url) is None:
        kind = "zarr" if fmt == "zarr" else "N5"
        scales = ""
        if fmt == "zarr" and internal and "/" not in internal:
            from ._zarr import ome_scales

            scales = ", ".join(ome_scales(external))
        raise DataError(
            f"input not found: {url} (no {kind} array or group there"
            + (f"; the image's scales are {scales})" if scales else ")")
        )


def _read_guarded(
    member: Member, scale: str | int | None, *, in_stack: bool
) -> tuple[da.Array, str | None, str]:
    try:
        return _read_one(member, scale, in_stack=in_stack)
    except CascadeError:
        raise
    except Exception as err:
        name = member[0] + ("/" + member[1] if member[1] else "")
        if is_url(name):
            raise remote_error(name, err) from err
        raise DataError(f"cannot read {name}: {one_line(err)}") from err


def _expand_internal(members: list[Member]) -> list[Member]:
    expanded: list[Member] = []
    for external, internal in members:
        if internal is None or not any(ch in internal for ch in "*?["):
            expanded.append((external, internal))
            continue
        fmt = _format_of(external)
        if fmt == "hdf5":
            with h5py.File(external, "r", locking=False) as f:
                names = list_h5_datasets(f)
        elif fmt == "n5":
            names = list_n5_datasets(external)
        else:
            raise DataError(f"cannot read {external}/{internal}: internal globs need an hdf5 or n5 file")
        matched = [n for n in names if fnmatch.fnmatch(n, internal.strip("/"))]
        if not matched:
            raise DataError(f"input not found: no dataset of {external} matches {internal}")
        expanded.extend((external, n) for n in matched)
    return expanded


def _stack(parts: list[tuple[da.Array, str]], names: list[str], along: str) -> tuple[da.Array, str]:
    first, axes = parts[0]
    for (data, member_axes), name in zip(parts[1:], names[1:], strict=True):
        if data.shape != first.shape or data.dtype != first.dtype or member_axes != axes:
            raise DataError(
                f"cannot stack {name}: shape {data.shape} {data.dtype} ({member_axes}) differs from "
                f"{names[0]}: {first.shape} {first.dtype} ({axes})"
            )
    arrays = [data for data, _ in parts]
    if along in axes:
        joined: da.Array = da.concatenate(arrays, axis=axes.index(along))
        return joined, axes
    stacked: da.Array = da.stack(arrays, axis=0)
    return stacked, along + axes


def _dataset_dir(external: str) -> str:
    if is_url(external):
        return external.rstrip("/").rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(external))


def _reuse_axes(
    file_axes: str,
    parts: list[tuple[da.Array, str]],
    names: list[str],
    along: str,
    stacked: tuple[da.Array, str] | None,
) -> tuple[da.Array, str] | None:
    """The data with ``file_axes`` (a training image's) reused, or None where they fit nothing.

    A single file takes them if they fit. A stack takes them as a whole if they fit and put the
    stacking axis where stacking put it (``zyxc`` for a z stack of 2-channel slices); otherwise
    each file takes them (``yxc`` fits each ``yx`` file of a t stack, which stays ``tyx``).
    """
    if stacked is None:
        whole = fitting_axes(file_axes, parts[0][0].ndim)
        return None if whole is None else (parts[0][0], whole)
    data, axes = stacked
    whole = fitting_axes(file_axes, data.ndim)
    if whole is not None and along in whole and whole.index(along) == axes.index(along):
        return data, whole
    fitted = [(part, f) for part, _ in parts if (f := fitting_axes(file_axes, part.ndim)) is not None]
    return _stack(fitted, names, along) if len(fitted) == len(parts) else None


def open_image(
    path: str,
    *,
    axes: str | None = None,
    stack_along: str = "z",
    scale: str | int | None = None,
    file_axes: str | None = None,
) -> Image:
    """Open an image file, a dataset in a container, or a stack of files, lazily.

    Parameters
    ----------
    path : str
        A file (``img.tif``, ``img.png``, ``a.npy``), a container with an optional internal
        path (``file.h5/volume/data``, ``vol.n5/raw``, ``img.zarr``, ``img.ome.zarr/s0``),
        a glob (``"dir/img_*.png"``, ``"dir/*.h5/data"``) or paths joined by ``os.pathsep``.
        A container without internal path must hold exactly one dataset.
    axes : str, optional
        Axis keys of the data (of the stacked data for a stack), overriding the file's.
    stack_along : {"z", "t", "c"}
        Axis along which the files of a glob are stacked: prepended as a new axis, or
        concatenated if the files already have it.
    scale : int or str, optional
        For an OME-Zarr image root: the scale index or dataset path (default the first,
        full resolution).
    file_axes : str, optional
        Axes to use in place of the file's own where they fit, as ilastik reuses the
        training image's axes for batch inputs: equal length fits, or one more key if it is
        ``c``. A stack takes them as a whole only if they place the stacking axis as stacking
        did, else file by file: a stack of ``yx`` files along ``t`` stays ``tyx`` when
        ``file_axes`` is ``yxc``. Ignored when ``axes`` is given.

    Returns
    -------
    Image
        Lazy data, axes and ilastik's nickname and dataset directory.

    Raises
    ------
    DataError
        If the input is missing, unreadable, of an unknown format, ambiguous, or a stack
        of files that differ in shape or dtype.
    AxesError
        If ``axes`` does not fit the data, or ``stack_along`` is not z, t or c.
    """
    if stack_along not in ("z", "t", "c"):
        raise AxesError(f"stack_along {stack_along!r}: must be one of z, t, c")
    members, is_stack = expand_path(path)
    try:
        members = _expand_internal(members)
    except CascadeError:
        raise
    except Exception as err:
        raise DataError(f"cannot read {path}: {one_line(err)}") from err
    is_stack = is_stack or len(members) > 1
    if len({os.path.splitext(e)[1].lower() for e, _ in members}) > 1:
        raise DataError(f"cannot stack {path}: the files have different extensions")
    names = [e + ("/" + i if i else "") for e, i in members]
    parts: list[tuple[da.Array, str]] = []
    guessed = False
    fmt = ""
    for member, name in zip(members, names, strict=True):
        data, member_axes, fmt = _read_guarded(member, scale, in_stack=is_stack)
        if member_axes is None:
            try:
                member_axes, guessed = guess_axes(data.shape), True
            except DataError as err:
                raise DataError(f"cannot read {name}: {err}") from err
        parts.append((data, member_axes))
    data, found_axes = _stack(parts, names, stack_along) if is_stack else parts[0]
    if axes is not None:
        found_axes, guessed = parse_axes(axes, data.ndim), False
    elif file_axes:
        reused = _reuse_axes(file_axes, parts, names, stack_along, (data, found_axes) if is_stack else None)
        if reused is not None:
            (data, found_axes), guessed = reused, False
    if 0 in data.shape:
        raise DataError(f"cannot read {path}: the image is empty (shape {tuple(data.shape)})")
    return Image(
        data=data,
        axes=found_axes,
        axes_guessed=guessed,
        nickname=make_nickname(members),
        dataset_dir=_dataset_dir(members[0][0]),
        path=path,
        format=fmt,
        files=tuple(names),
    )
