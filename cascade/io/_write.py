"""``write_image``: stream a dask array into any of ilastik's export formats.

Nothing is computed before the format, the axes, the output directory and the format's
constraints (2D-ness, dtype, ``{slice_index}``) are checked. Chunked formats (hdf5, n5,
zarr, OME-Zarr, numpy, sequences) are written block by block with ``dask.array.store``,
so the whole array is never in memory; every output appears under its final name only
once it is complete. ``check_target`` runs the same checks alone, so that a batch can check
all of its outputs before it computes any.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import dask.array as da

from ..axes import parse_axes
from ..errors import ExportError
from ._atomic import atomic_files, check_parent, make_parents, remove_if_empty, remove_stale
from ._formats import _CHECKS, FORMATS, _Format, _Job, _lookup, _zarr_format, output_path
from ._hdf5 import write_hdf5
from ._lock import output_lock
from ._n5 import write_n5
from ._numpy import store_npy
from ._remote import check_remote_parent, is_url, remote_error
from ._sequence import (
    write_image_2d,
    write_multipage,
    write_sequence,
)

__all__ = ["FORMATS", "check_target", "output_path", "write_image"]


def _hdf5(job: _Job, spec: _Format) -> list[str]:
    gzip = spec.compressed if job.compression is None else bool(job.compression)
    return write_hdf5(job.data, job.path, job.internal_path, job.axes, gzip=gzip, attrs=job.attrs)


def _n5(job: _Job, spec: _Format) -> list[str]:
    gzip = spec.compressed if job.compression is None else bool(job.compression)
    level = 1 if gzip else None
    return write_n5(
        job.data,
        job.path,
        job.internal_path,
        job.axes,
        gzip_level=level,
        attrs=job.attrs,
        resume=job.resume,
        block=job.blocks,
    )


def _zarr(job: _Job, spec: _Format) -> list[str]:
    from ._zarr import write_zarr

    fmt = _zarr_format(job, 3)
    return write_zarr(
        job.data,
        job.path,
        job.internal_path,
        job.axes,
        zarr_format=fmt,
        compression=job.compression,
        attrs=job.attrs,
        resume=job.resume,
    )


def _ome(job: _Job, spec: _Format) -> list[str]:
    from ._omezarr import write_ome_zarr

    fmt = _zarr_format(job, 2)
    return write_ome_zarr(
        job.data,
        job.path,
        job.axes,
        multiscale=spec.kind == "ome-multi",
        zarr_format=fmt,
        compression=job.compression,
        attrs=job.attrs,
    )


def _numpy(job: _Job, spec: _Format) -> list[str]:
    with atomic_files([job.path]) as (temp,):
        store_npy(job.data, temp)
    return [job.path]


def _image_2d(job: _Job, spec: _Format) -> list[str]:
    return write_image_2d(job.data, job.path, job.axes, spec.extension, compression=job.compression)


def _sequence_2d(job: _Job, spec: _Format) -> list[str]:
    return write_sequence(
        job.data, job.path, job.axes, spec.extension, compression=job.compression, offset=job.slice_offset
    )


def _multipage(job: _Job, spec: _Format) -> list[str]:
    sequence = spec.kind == "multipage-seq"
    return write_multipage(
        job.data, job.path, job.axes, compression=job.compression, sequence=sequence, offset=job.slice_offset
    )


_WRITERS: dict[str, Callable[[_Job, _Format], list[str]]] = {
    "hdf5": _hdf5,
    "n5": _n5,
    "zarr": _zarr,
    "ome": _ome,
    "ome-multi": _ome,
    "numpy": _numpy,
    "2d": _image_2d,
    "2d-seq": _sequence_2d,
    "multipage": _multipage,
    "multipage-seq": _multipage,
}


def write_image(
    data: Any,
    path: str,
    *,
    format: str,
    axes: str,
    internal_path: str = "exported_data",
    compression: bool | None = None,
    attrs: Mapping[str, Any] | None = None,
    zarr_format: int | None = None,
    slice_offset: int = 0,
    resume: str | None = None,
    blocks: tuple[int, ...] | None = None,
) -> list[str]:
    """Write ``data`` to ``path`` in an ilastik export format, chunk by chunk.

    Parameters
    ----------
    data : dask.array.Array or array_like
        The image; its dask chunks are the unit of computation and of writing.
    path : str
        Output file name; its extension is replaced by the format's (``.h5``, ``.n5``,
        ``.zarr``, ``.npy``, ``.tiff``, ``.png`` ...). For sequences it must contain
        ``{slice_index}``. Missing directories are created (after every check passed),
        and removed again if the export fails. zarr and OME-Zarr outputs may go to an
        ``s3://`` URL (in a bucket that exists).
    format : str
        One of :data:`FORMATS`, e.g. ``"compressed hdf5"``, ``"multi-scale OME-Zarr"``,
        ``"png sequence"`` (case-insensitive).
    axes : str
        Axis keys of ``data``; stored as ``axistags`` (hdf5, n5, zarr), reversed as the N5
        ``axes`` attribute, as zarr dimension names; images are transposed to ``yx(c)``,
        multipage TIFF and OME-Zarr to ``tzcyx`` as ilastik does.
    internal_path : str
        Dataset path inside hdf5, n5 and zarr outputs (other datasets there are kept).
    compression : bool, optional
        None: the format's default (gzip level 1 for the "compressed" formats, zarr's
        default codec for zarr, none otherwise). True or False forces it on or off.
    attrs : mapping, optional
        Extra dataset attributes (e.g. ``drange``, ``display_mode``) for hdf5, n5 and zarr.
    zarr_format : {2, 3}, optional
        Zarr format: default 3 for ``zarr``; for OME-Zarr 2 writes v0.4 (the default), 3
        writes v0.5.
    slice_offset : int
        Added to the slice index in sequence file names (the cutout start).
    resume : str, optional
        A fingerprint of the job (same command, same inputs). For a new n5 or zarr container
        the export then becomes resumable: an interrupted run leaves a hidden
        ``.<name>.resume`` folder, and running the same job again writes only the blocks that
        are missing. Other formats ignore it.
    blocks : tuple of int, optional
        n5 only: the block shape stored (one edge per axis of ``data``), as ilastik's
        ``--distributed`` export stores its block roi; default: blocks of about 512 KB with
        ``t = c = 1``, as ilastik's writer chooses them. Other formats ignore it.

    Returns
    -------
    list of str
        The files (or directories for n5/zarr) written.

    Raises
    ------
    ExportError
        If the format is unknown, cannot hold the data, or the output cannot be written.
    AxesError
        If ``axes`` does not fit ``data``.
    """
    job, spec = _job(data, path, format, axes, internal_path, compression, attrs, zarr_format, slice_offset)
    job = dataclasses.replace(job, resume=resume, blocks=blocks)
    outputs = _run_check(job, spec)
    if is_url(job.path):  # an object store has no folders to create and no file locks
        return _WRITERS[spec.kind](job, spec)
    # sequences name one file per slice (possibly in several folders); the rest write job.path
    created = make_parents(outputs if spec.kind.endswith("-seq") else [job.path])
    try:
        with output_lock(job.path):
            if spec.kind in ("2d-seq", "multipage-seq"):
                for output in outputs:  # the slice files' temporaries left by a killed run
                    remove_stale(output)
            return _WRITERS[spec.kind](job, spec)
    except BaseException:
        remove_if_empty(created)
        raise


def _job(
    data: Any,
    path: str,
    format: str,
    axes: str,
    internal_path: str,
    compression: bool | None,
    attrs: Mapping[str, Any] | None,
    zarr_format: int | None,
    slice_offset: int,
) -> tuple[_Job, _Format]:
    spec = _lookup(format)
    data = da.asarray(data)
    keys = parse_axes(axes, data.ndim)
    final = output_path(path, format)
    if is_url(final):
        _check_remote(final, spec)
    else:
        check_parent(final)
    job = _Job(
        data, final, keys, internal_path, compression, dict(attrs or {}), zarr_format, int(slice_offset)
    )
    return job, spec


#: Output kinds that can be written to an ``s3://`` URL.
REMOTE_KINDS = ("zarr", "ome", "ome-multi")


def _check_remote(final: str, spec: _Format) -> None:
    if final.lower().startswith("s3://") and spec.kind not in REMOTE_KINDS:
        raise ExportError(
            f"cannot write {final}: only zarr and OME-Zarr outputs can be written to s3:// "
            f"(--output_format zarr, single-scale OME-Zarr or multi-scale OME-Zarr), not {spec.name}"
        )
    check_remote_parent(final)


def _run_check(job: _Job, spec: _Format) -> list[str]:
    if not is_url(job.path):
        return _CHECKS[spec.kind](job, spec)
    try:
        return _CHECKS[spec.kind](job, spec)
    except Exception as err:
        raise remote_error(job.path, err, write=True) from err


def check_target(
    data: Any,
    path: str,
    *,
    format: str,
    axes: str,
    internal_path: str = "exported_data",
    zarr_format: int | None = None,
    slice_offset: int = 0,
) -> list[str]:
    """Check everything :func:`write_image` checks, without computing or writing anything.

    ``data`` may be lazy: only its shape and dtype are used.

    Parameters
    ----------
    data : array
        The data to write (lazy is fine).
    path : str
        The output path.
    format : str
        The output format (one of :data:`FORMATS`).
    axes : str
        The data's axis keys.
    internal_path : str
        Dataset path inside hdf5, n5 and zarr containers.
    zarr_format : int, optional
        2 or 3 for zarr outputs.
    slice_offset : int
        Index of the first slice, for ``{slice_index}`` in sequence names.

    Returns
    -------
    list of str
        What would be written: file paths, with ``/<internal path>`` appended for hdf5, n5
        and zarr (as ilastik's export path shows them); one per file for sequences.

    Raises
    ------
    ExportError
        If the format is unknown, cannot hold the data, or the output cannot be written
        (a read-only directory, a conflicting file or directory in the way). A missing
        directory is not an error: :func:`write_image` creates it.
    AxesError
        If ``axes`` does not fit ``data``.
    """
    job, spec = _job(data, path, format, axes, internal_path, None, None, zarr_format, slice_offset)
    return _run_check(job, spec)
