"""Writers that cut the image into files: 2D images, sequences of them, and multipage TIFFs.

A sequence steps along the first axis (other than ``y`` and ``x``) longer than 1, as
ilastik's stack writer does, and names the files by ``{slice_index}`` (zero-padded to the
width of the largest index unless the placeholder has its own format spec). Multipage
TIFFs are staged in a temporary ``.npy`` file written chunk-wise by dask (every block is
computed once, in parallel) and then copied into the TIFF one page at a time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import dask.array as da
import numpy as np

from ..axes import from_internal
from ..errors import ExportError
from ._atomic import atomic_files, check_name, make_temp_file, remove
from ._flat import check_flat, write_flat
from ._numpy import store_npy
from ._sources import rechunk, store
from ._tiff import write_tiff_2d, write_tiff_pages

__all__ = [
    "SLICE_INDEX",
    "check_image_2d",
    "check_multipage",
    "check_sequence",
    "step_axis",
    "write_image_2d",
    "write_multipage",
    "write_sequence",
]

SLICE_INDEX = re.compile(r"\{slice_index(?::([^{}]*))?\}")
_PAGE_AXES = "tzcyx"


def step_axis(axes: str, shape: tuple[int, ...]) -> str | None:
    """The axis a sequence steps along: the first one longer than 1 other than y and x."""
    return next((k for k, n in zip(axes, shape, strict=True) if n > 1 and k not in "yx"), None)


def _require_2d(axes: str, shape: tuple[int, ...], allowed: str, path: str, fmt: str) -> None:
    extra = [f"{k}={n}" for k, n in zip(axes, shape, strict=True) if n > 1 and k not in allowed]
    if extra:
        raise ExportError(
            f"cannot write {path}: {fmt} holds 2D images but the data also has {', '.join(extra)}; "
            f"use '{fmt} sequence', 'multipage tiff' or a volume format such as hdf5"
        )


def slice_paths(pattern: str, count: int, offset: int) -> list[str]:
    """File names for ``count`` slices: ``{slice_index}`` replaced by ``offset + i``."""
    if not SLICE_INDEX.search(pattern):
        raise ExportError(f"cannot write {pattern}: a sequence file name must contain {{slice_index}}")
    width = len(str(offset + count - 1))

    def name(index: int) -> str:
        return SLICE_INDEX.sub(lambda m: format(index, m.group(1) or f"0{width}d"), pattern)

    paths = [name(offset + i) for i in range(count)]
    if len(set(paths)) != len(paths):
        raise ExportError(f"cannot write {pattern}: the slice file names are not unique")
    return paths


def _write_plane(image: np.ndarray, path: str, fmt: str, compression: bool | None) -> None:
    if fmt in ("tif", "tiff"):
        write_tiff_2d(image, path, compression=compression)
    else:
        write_flat(image, path, fmt)


class _SliceTarget:
    """A ``dask.array.store`` target writing each slice along axis 0 as its own image file."""

    def __init__(self, paths: list[str], fmt: str, compression: bool | None) -> None:
        self.paths = paths
        self.fmt = fmt
        self.compression = compression

    def __setitem__(self, index: tuple[slice, ...], value: np.ndarray) -> None:
        start = index[0].start or 0
        for i, image in enumerate(value):
            _write_plane(np.ascontiguousarray(image), self.paths[start + i], self.fmt, self.compression)


def _planes(data: da.Array, axes: str, fmt: str, path: str) -> tuple[da.Array, str]:
    """Reorder to (step, y, x[, c]) for 2D files; the step axis is inserted if there is none."""
    step = step_axis(axes, data.shape) or "z"
    _require_2d(
        axes.replace(step, ""),
        tuple(n for k, n in zip(axes, data.shape, strict=True) if k != step),
        "yxc",
        path,
        fmt,
    )
    target = step + ("yx" if step == "c" else "yxc")
    planes = from_internal(data, axes, target)
    if fmt not in ("tif", "tiff"):
        check_flat(fmt, np.dtype(data.dtype), 1 if step == "c" else planes.shape[3], path)
    return planes, target


def _check_files(paths: list[str]) -> list[str]:
    for path in paths:
        check_name(path)
        if os.path.isdir(path):
            raise ExportError(f"cannot write {path}: a directory of that name exists")
    return paths


def check_image_2d(data: da.Array, path: str, axes: str, fmt: str) -> da.Array:
    """Check that ``data`` fits one 2D file of ``fmt`` at ``path``; return it as ``yxc``."""
    _require_2d(axes, data.shape, "yxc", path, fmt)
    image = from_internal(data, axes, "yxc")
    if fmt not in ("tif", "tiff"):
        check_flat(fmt, np.dtype(data.dtype), image.shape[2], path)
    _check_files([path])
    return image


def check_sequence(data: da.Array, pattern: str, axes: str, fmt: str, offset: int) -> list[str]:
    """Check a 2D-file sequence without writing; return its file names."""
    planes, _ = _planes(data, axes, fmt, pattern)
    return _check_files(slice_paths(pattern, planes.shape[0], offset))


def _multipage_layout(
    data: da.Array, path: str, axes: str, sequence: bool, offset: int
) -> tuple[da.Array, str, list[str]]:
    if sequence:
        step = step_axis(axes, data.shape) or "t"
        rest = "".join(k for k in _PAGE_AXES if k != step)
        stepped = from_internal(data, axes, step + rest)
        return stepped, step + rest, slice_paths(path, stepped.shape[0], offset)
    return from_internal(data, axes, _PAGE_AXES), _PAGE_AXES, [path]


def check_multipage(data: da.Array, path: str, axes: str, *, sequence: bool, offset: int = 0) -> list[str]:
    """Check a multipage TIFF (or a sequence of them) without writing; return its file names."""
    return _check_files(_multipage_layout(data, path, axes, sequence, offset)[2])


def write_image_2d(data: da.Array, path: str, axes: str, fmt: str, *, compression: bool | None) -> list[str]:
    """Write a 2D image (all axes but y, x and c of length 1) as one file."""
    image = check_image_2d(data, path, axes, fmt)
    with atomic_files([path]) as (temp,):
        _write_plane(np.asarray(image.compute()), temp, fmt, compression)
    return [path]


def write_sequence(
    data: da.Array, pattern: str, axes: str, fmt: str, *, compression: bool | None, offset: int
) -> list[str]:
    """Write one 2D file per slice along the step axis, in parallel."""
    planes, _ = _planes(data, axes, fmt, pattern)
    paths = _check_files(slice_paths(pattern, planes.shape[0], offset))
    planes = rechunk(planes, (1, *planes.shape[1:]))
    with atomic_files(paths) as temps:
        store(planes, _SliceTarget(temps, fmt, compression), lock=False)
    return paths


def _pages(volume: np.ndarray, axes: str) -> Iterator[np.ndarray]:
    pages = from_internal(volume, axes, _PAGE_AXES)
    for t, z, c in np.ndindex(*pages.shape[:3]):
        yield np.ascontiguousarray(pages[t, z, c])


def _page_shape(axes: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    sizes = dict(zip(axes, shape, strict=True))
    return tuple(sizes.get(k, 1) for k in _PAGE_AXES)


def write_multipage(
    data: da.Array, path: str, axes: str, *, compression: bool | None, sequence: bool, offset: int = 0
) -> list[str]:
    """Write an OME-TIFF (``tzcyx``), or one per slice along the step axis if ``sequence``."""
    data, axes, finals = _multipage_layout(data, path, axes, sequence, offset)
    _check_files(finals)
    stage = make_temp_file(finals[0], "stage")
    try:
        with atomic_files(finals) as temps:
            store_npy(data, stage)
            staged: Any = np.load(stage, mmap_mode="r", allow_pickle=False)
            volumes = [(staged[i], axes[1:]) for i in range(len(temps))] if sequence else [(staged, axes)]
            for temp, (volume, vol_axes) in zip(temps, volumes, strict=True):
                shape = _page_shape(vol_axes, volume.shape)
                write_tiff_pages(_pages(volume, vol_axes), temp, shape, volume.dtype, compression=compression)
            del staged, volumes
    finally:
        remove(stage)
    return finals
