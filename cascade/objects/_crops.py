"""The per-object image crops of an HDF5 object table (ilastik's ``ExportFile.add_rois`` / ``add_image``).

For every row ``i`` of the table (all time points, in table order) ilastik writes
``/images/<i>/labeling`` (uint8, 1 where the label image equals the object's id, else 0) and
``/images/<i>/raw`` (the raw image's values), both the object's bounding box
``[Coord<Minimum> - margin, Coord<Maximum> + margin)`` clipped to the image; with the table
setting ``include raw`` the whole raw image goes to ``/images/raw`` instead of the raw crops.
Each crop is in ilastik's ``txyzc`` order with its singleton axes dropped (``numpy.squeeze``) and
carries the attributes ``type`` (``"labeling"``/``"image"``) and ``axistags`` (vigra JSON of the
axes that are longer than 1, before squeezing).

The crops are read from the lazy label and raw images a batch of objects at a time (objects in
table order are near each other in raster order), and ``/images/raw`` block by block: nothing
larger than a batch of bounding boxes or one block is held.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
from dask.base import compute

from ..io import axistags_json
from .model import DEFAULT_FEATURES, FeatureTable

__all__ = ["TableImages", "write_crops"]

_ILASTIK_ORDER = "txyzc"
#: Objects whose crops are computed together.
_BATCH = 64
#: HDF5 dataset options ilastik passes on from the table settings' ``compression``.
_H5_OPTIONS = ("compression", "compression_opts", "shuffle", "fletcher32", "scaleoffset")


@dataclass(frozen=True, eq=False)
class TableImages:
    """What an HDF5 object table crops its images from, and the table settings that shape them.

    Attributes
    ----------
    labels : dask.array.Array
        The object label image, internal axes ``label_axes`` (no channel axis).
    label_axes : str
        Its axes, e.g. ``"yx"``, ``"tzyx"``.
    raw : dask.array.Array
        The raw image, internal axes ``label_axes + "c"``.
    margin : int
        Pixels added on every side of each bounding box (table setting ``margin``).
    include_raw : bool
        Write the whole raw image to ``/images/raw`` instead of one raw crop per object.
    compression : mapping
        HDF5 dataset options (table setting ``compression``, e.g. ``{"compression": "gzip"}``).
    """

    labels: da.Array
    label_axes: str
    raw: da.Array
    margin: int = 0
    include_raw: bool = False
    compression: Mapping[str, Any] = field(default_factory=dict)


def _to_ilastik(block: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """A block in internal axes as ilastik's ``txyzc`` crop: reordered, singleton axes dropped."""
    full = block.reshape([block.shape[axes.index(k)] if k in axes else 1 for k in "tzyxc"])
    ordered = full.transpose([("tzyxc").index(k) for k in _ILASTIK_ORDER])
    kept = "".join(k for k, n in zip(_ILASTIK_ORDER, ordered.shape, strict=True) if n > 1)
    return ordered.squeeze(), kept


def _windows(
    tables: Sequence[FeatureTable], axes: str, shape: Sequence[int], margin: int
) -> Iterator[tuple[tuple[slice, ...], int]]:
    """Every object's window (internal axes) and id, in table order (t, then id)."""
    for t, table in enumerate(tables):
        default = table.get(DEFAULT_FEATURES, {})
        if "Coord<Minimum>" not in default:
            continue
        lows = np.asarray(default["Coord<Minimum>"]).astype(np.int64)
        highs = np.asarray(default["Coord<Maximum>"]).astype(np.int64)
        for oid in range(1, len(lows)):
            window = []
            for axis, size in zip(axes, shape, strict=True):
                if axis == "t":
                    window.append(slice(t, t + 1))
                    continue
                k = "xyz".index(axis)
                lo, hi = lows[oid, k] - margin, highs[oid, k] + margin
                window.append(slice(max(0, int(lo)), min(int(hi), size)))
            yield tuple(window), oid


def _dataset(
    group: Any, name: str, data: np.ndarray, kind: str, axes: str, options: Mapping[str, Any]
) -> None:
    chunked = {k: v for k, v in options.items() if k in _H5_OPTIONS} if data.ndim else {}
    ds = group.create_dataset(name, data=data, **chunked)
    ds.attrs["type"] = kind
    ds.attrs["axistags"] = axistags_json(axes)


def _write_rois(f: Any, tables: Sequence[FeatureTable], images: TableImages) -> None:
    axes = images.label_axes
    windows = list(_windows(tables, axes, images.labels.shape, images.margin))
    for start in range(0, len(windows), _BATCH):
        batch = windows[start : start + _BATCH]
        lazy: list[da.Array] = [images.labels[w] for w, _ in batch]
        if not images.include_raw:
            lazy += [images.raw[w] for w, _ in batch]
        blocks = compute(*lazy)
        for j, (_, oid) in enumerate(batch):
            i = start + j
            labeling, kept = _to_ilastik((blocks[j] == oid).astype(np.uint8), axes)
            _dataset(f, f"images/{i}/labeling", labeling, "labeling", kept, images.compression)
            if not images.include_raw:
                raw, kept = _to_ilastik(blocks[len(batch) + j], axes + "c")
                _dataset(f, f"images/{i}/raw", raw, "image", kept, images.compression)


def _write_whole_raw(f: Any, images: TableImages) -> None:
    axes = images.label_axes + "c"
    raw = images.raw
    kept = "".join(k for k in _ILASTIK_ORDER if k in axes and raw.shape[axes.index(k)] > 1)
    shape = tuple(raw.shape[axes.index(k)] for k in kept)
    ds = f.create_dataset("images/raw", shape=shape, dtype=raw.dtype)
    ds.attrs["type"] = "image"
    ds.attrs["axistags"] = axistags_json(kept)
    slices = list(da.core.slices_from_chunks(raw.chunks))
    for start in range(0, len(slices), _BATCH):
        batch = slices[start : start + _BATCH]
        for where, block in zip(batch, compute(*(raw[s] for s in batch)), strict=True):
            position = dict(zip(axes, where, strict=True))
            target = tuple(position[k] for k in kept)
            ds[target] = _to_ilastik(block, axes)[0].reshape([s.stop - s.start for s in target])


def write_crops(f: Any, tables: Sequence[FeatureTable], images: TableImages) -> None:
    """Write ilastik's ``/images`` group of an HDF5 object table into the open file ``f``.

    Parameters
    ----------
    f : h5py.File
        The table file, open for writing.
    tables : sequence of FeatureTable
        The object features of each time point (bounding boxes from the default features).
    images : TableImages
        The label and raw images and the table settings.
    """
    _write_rois(f, tables, images)
    if images.include_raw:
        _write_whole_raw(f, images)
