"""Reading input images lazily and writing results chunk by chunk, in ilastik's formats.

:func:`open_image` turns a path in ilastik's conventions (``file.h5/internal/path``, a
glob stack ``"dir/img_*.png"``, an OME-Zarr scale ``img.ome.zarr/s0``) into an
:class:`Image`: a lazy dask array, its axes, and the ``{nickname}`` and ``{dataset_dir}``
that output file names are built from. :func:`write_image` streams a dask array into one
of the formats of ilastik's ``--output_format`` (:data:`FORMATS`) and never leaves a
partial output under the final name.

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

from ._paths import expand_path, make_nickname, split_path
from ._read import READ_FORMATS, Image, open_image
from ._write import FORMATS, check_target, output_path, write_image

__all__ = [
    "FORMATS",
    "READ_FORMATS",
    "Image",
    "check_target",
    "expand_path",
    "make_nickname",
    "open_image",
    "output_path",
    "split_path",
    "write_image",
]
