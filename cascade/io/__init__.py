"""Reading input images lazily and writing results chunk by chunk, in ilastik's formats.

:func:`open_image` turns a path in ilastik's conventions (``file.h5/internal/path``, a
glob stack ``"dir/img_*.png"``, an OME-Zarr scale ``img.ome.zarr/s0``) into an
:class:`Image`: a lazy dask array, its axes, and the ``{nickname}`` and ``{dataset_dir}``
that output file names are built from. :func:`write_image` streams a dask array into one
of the formats of ilastik's ``--output_format`` (:data:`FORMATS`) and never leaves a
partial output under the final name.

:mod:`.export` holds the pure export steps (cutout, normalisation, dtype, axis order, file
names) and :mod:`.scratch` the intermediate stage results stored on disk.

=========================  ======  =====================================================
format                     read    write
=========================  ======  =====================================================
hdf5 (.h5 .hdf5 .ilp)      lazy    ``hdf5``, ``compressed hdf5`` (gzip 1), block-wise
n5                         lazy    ``n5``, ``compressed n5`` (gzip), block-wise
zarr v2/v3                 lazy    ``zarr`` (v3 default), block-wise
OME-Zarr v0.4/v0.5         lazy    ``single-scale OME-Zarr``, ``multi-scale OME-Zarr``
tiff (multipage, OME, IJ)  lazy    ``tif``/``tiff`` (2D), ``multipage tiff`` (page-wise)
png jpg bmp gif pgm ppm    lazy    2D files; ``<ext> sequence``, ``multipage tiff sequence``
npy / npz                  lazy    ``numpy`` (memory map, block-wise)
glob stacks                lazy    -
=========================  ======  =====================================================

Zarr, OME-Zarr and N5 stores and 2D image files can also be read from ``http(s)://`` and
``s3://`` URLs, chunk by chunk, and zarr and OME-Zarr outputs written to ``s3://`` (see
``_remote``: credentials and endpoint from botocore's usual chain).
"""

from __future__ import annotations

from ._atomic import (
    DISK_FULL,
    atomic_files,
    check_name,
    export_error,
    make_parents,
    make_temp_file,
    remove_if_empty,
)
from ._h5guard import read_checked as read_hdf5_checked
from ._hdf5 import h5_file
from ._internal import dataset_parts
from ._lock import hold_locks, lock_path, output_lock
from ._meta import axistags_json
from ._overwrite import check_overwrites
from ._paths import expand_path, make_nickname, split_path
from ._read import READ_FORMATS, Image, open_image
from ._remote import is_url
from ._resume import resumable_blocks
from ._store import MIN_SLAB_BLOCKS
from ._write import FORMATS, check_target, output_path, write_image
from .export import (
    EXPORT_DTYPES,
    PreparedExport,
    apply_cutout,
    format_filename,
    format_placeholders,
    normalize,
    parse_cutout,
    parse_range,
    placeholders,
    prepare_export,
)
from .scratch import IN_MEMORY_BYTES, keep_once, make_scratch, needed_blocks, spill

__all__ = [
    "DISK_FULL",
    "EXPORT_DTYPES",
    "FORMATS",
    "IN_MEMORY_BYTES",
    "MIN_SLAB_BLOCKS",
    "READ_FORMATS",
    "Image",
    "PreparedExport",
    "apply_cutout",
    "atomic_files",
    "axistags_json",
    "check_name",
    "check_overwrites",
    "check_target",
    "dataset_parts",
    "expand_path",
    "export_error",
    "format_filename",
    "format_placeholders",
    "h5_file",
    "hold_locks",
    "is_url",
    "keep_once",
    "lock_path",
    "make_nickname",
    "make_parents",
    "make_scratch",
    "make_temp_file",
    "needed_blocks",
    "normalize",
    "open_image",
    "output_lock",
    "output_path",
    "parse_cutout",
    "parse_range",
    "placeholders",
    "prepare_export",
    "read_hdf5_checked",
    "remove_if_empty",
    "resumable_blocks",
    "spill",
    "split_path",
    "write_image",
]
