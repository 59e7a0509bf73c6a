"""ilastik's output formats: their names and extensions, and the checks each one makes before writing."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import dask.array as da

from ..errors import ExportError
from ._flat import FLAT_FORMATS
from ._hdf5 import check_hdf5_target
from ._internal import dataset_parts
from ._n5 import N5_DTYPES, check_n5_target
from ._sequence import (
    check_image_2d,
    check_multipage,
    check_sequence,
)


@dataclass(frozen=True)
class _Job:
    data: da.Array
    path: str
    axes: str
    internal_path: str
    compression: bool | None
    attrs: Mapping[str, Any]
    zarr_format: int | None
    slice_offset: int
    resume: str | None = None
    blocks: tuple[int, ...] | None = None


@dataclass(frozen=True)
class _Format:
    name: str
    extension: str
    kind: str
    compressed: bool = False


def _formats() -> dict[str, _Format]:
    table = [
        _Format("hdf5", "h5", "hdf5"),
        _Format("compressed hdf5", "h5", "hdf5", True),
        _Format("n5", "n5", "n5"),
        _Format("compressed n5", "n5", "n5", True),
        _Format("zarr", "zarr", "zarr"),
        _Format("single-scale OME-Zarr", "zarr", "ome"),
        _Format("multi-scale OME-Zarr", "zarr", "ome-multi"),
        _Format("numpy", "npy", "numpy"),
        _Format("multipage tiff", "tiff", "multipage"),
        _Format("multipage tiff sequence", "tiff", "multipage-seq"),
    ]
    for ext in ("tif", "tiff", *FLAT_FORMATS):
        table += [_Format(ext, ext, "2d"), _Format(f"{ext} sequence", ext, "2d-seq")]
    return {f.name.lower(): f for f in table}


_FORMATS = _formats()
#: The output format names, spelled as ilastik's ``--output_format`` spells them.
FORMATS: tuple[str, ...] = tuple(f.name for f in _FORMATS.values())


def _lookup(name: str) -> _Format:
    spec = _FORMATS.get(str(name).strip().lower())
    if spec is None:
        raise ExportError(f"unknown output format {name!r}; supported: {', '.join(FORMATS)}")
    return spec


def output_path(path: str, format: str) -> str:
    """The file ``write_image`` writes: ``path`` with its extension replaced by the format's.

    Parameters
    ----------
    path : str
        The output path as formatted.
    format : str
        The output format (one of :data:`FORMATS`).

    Returns
    -------
    str
        The file path.

    Examples
    --------
    >>> output_path("/d/img_Probabilities.png", "compressed hdf5")
    '/d/img_Probabilities.h5'
    """
    return os.path.splitext(path.rstrip("/"))[0] + "." + _lookup(format).extension


def _internal(job: _Job, what: str) -> str:
    return job.path + "/" + "/".join(dataset_parts(job.internal_path, job.path, what))


def _check_hdf5(job: _Job, spec: _Format) -> list[str]:
    target = _internal(job, "HDF5")
    check_hdf5_target(job.path, target[len(job.path) + 1 :])
    return [target]


def _check_n5(job: _Job, spec: _Format) -> list[str]:
    check_n5_target(job.path, job.internal_path)
    if job.data.dtype.name not in N5_DTYPES:
        raise ExportError(
            f"cannot write {job.path}: N5 cannot store dtype {job.data.dtype.name}; "
            f"supported are {', '.join(N5_DTYPES)}"
        )
    return [_internal(job, "N5")]


def _check_zarr(job: _Job, spec: _Format) -> list[str]:
    from ._zarr import check_zarr_target  # the zarr modules import zarr: only zarr outputs need it

    check_zarr_target(job.path, job.internal_path)
    _zarr_format(job, 3)
    return [_internal(job, "zarr")]


def _check_ome(job: _Job, spec: _Format) -> list[str]:
    from ._omezarr import check_ome_target

    _zarr_format(job, 2)
    check_ome_target(job.path)
    return [job.path]


def _check_numpy(job: _Job, spec: _Format) -> list[str]:
    if os.path.isdir(job.path):
        raise ExportError(f"cannot write {job.path}: a directory of that name exists")
    return [job.path]


def _check_2d(job: _Job, spec: _Format) -> list[str]:
    check_image_2d(job.data, job.path, job.axes, spec.extension)
    return [job.path]


def _check_sequence(job: _Job, spec: _Format) -> list[str]:
    return check_sequence(job.data, job.path, job.axes, spec.extension, job.slice_offset)


def _check_multipage(job: _Job, spec: _Format) -> list[str]:
    sequence = spec.kind == "multipage-seq"
    return check_multipage(job.data, job.path, job.axes, sequence=sequence, offset=job.slice_offset)


_CHECKS: dict[str, Callable[[_Job, _Format], list[str]]] = {
    "hdf5": _check_hdf5,
    "n5": _check_n5,
    "zarr": _check_zarr,
    "ome": _check_ome,
    "ome-multi": _check_ome,
    "numpy": _check_numpy,
    "2d": _check_2d,
    "2d-seq": _check_sequence,
    "multipage": _check_multipage,
    "multipage-seq": _check_multipage,
}


def _zarr_format(job: _Job, default: int) -> int:
    fmt = default if job.zarr_format is None else job.zarr_format
    if fmt not in (2, 3):
        raise ExportError(f"zarr_format {job.zarr_format!r}: must be 2 or 3")
    return fmt
