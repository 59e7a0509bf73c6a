"""Object features, computed chunk by chunk and merged exactly (ilastik's ``OpRegionFeatures``).

ilastik computes vigra's region features on the whole volume of a time point. Here every chunk of
the label image (with the matching raw chunk) yields partial sums for the objects it holds; the
partials are merged by object id in a dask tree reduction, so only per-object tables are ever
global (``docs/objects.md``):

1. pass 1: counts, sums, extrema, coordinate sums and extrema, and the channel range over all
   object pixels of the time point;
2. pass 2 (only when a selected feature needs it): central moments around the merged means,
   64-bin histograms over the global range; the quantiles come from the merged histograms
   (``reference/ilastik-objects.md`` 4.4);
3. per-object windows (``_windows``), batched per label chunk: the "in neighborhood" features,
   the convex-hull / skeleton plugins, and vigra's incremental coordinate scatter matrix of
   RegionRadii / RegionAxes (its rounding decides eigenvector signs of degenerate objects).

All values are float32 as ilastik stores them, row ``i`` for object ``i`` and row 0 all zeros;
coordinates in x, y[, z] order; ``Coord<Maximum>`` exclusive (current ilastik).
"""

from __future__ import annotations

from functools import partial

import dask.array as da
import numpy as np
from dask.base import compute
from dask.delayed import delayed

from ..errors import ObjectsError
from ._accumulate import Partial, finish_fold, fold, merge, pass1, pass2
from ._eigen import scatter_batch
from ._finish import finish, means
from ._groups import FAN_IN, compute_groups, group_size
from ._neighborhood import local_batch, shape_batch
from ._selection import DEFAULTS, STANDARD, FeatureColumns, Plan, feature_names, make_plan
from ._windows import BatchKernel, batched, windows
from .model import DEFAULT_FEATURES, FeatureTable, ObjectFeatureSelection, Objects

__all__ = ["FeatureColumns", "feature_names", "object_features"]

#: How many partials one merge task combines.
_FAN_IN = FAN_IN


def _check(raw: da.Array, raw_axes: str, objects: Objects) -> None:
    """Raw and objects must describe the same image: axes ``objects.axes + "c"``, same shape."""
    if raw_axes != objects.axes + "c":
        raise ObjectsError(f"raw axes {raw_axes!r} do not match the objects' axes {objects.axes!r} plus 'c'")
    if tuple(raw.shape[:-1]) != tuple(objects.labels.shape):
        raise ObjectsError(
            f"raw image shape {tuple(raw.shape)} does not match the object label image {objects.labels.shape}"
        )
    if len(objects.spatial_axes) not in (2, 3):
        raise ObjectsError(f"objects need 2 or 3 spatial axes, got {objects.spatial_axes!r}")


def object_features(
    raw: da.Array, raw_axes: str, objects: Objects, selection: ObjectFeatureSelection
) -> list[FeatureTable]:
    """Compute ilastik's object features of every time point, chunk by chunk.

    Parameters
    ----------
    raw : dask.array.Array
        The raw image in internal order with a channel axis (``[t][z]yxc``); any dtype (cast to
        float32 as ilastik does).
    raw_axes : str
        Its axes: ``objects.axes + "c"``.
    objects : Objects
        The object label image (ids ``1..counts[t]`` per time point).
    selection : mapping
        ilastik's feature selection: plugin name -> feature name -> parameters (``margin`` of
        the "in neighborhood" features, x, y[, z]).

    Returns
    -------
    list of FeatureTable
        One per time point: plugin name -> feature name -> float32 ``(counts[t] + 1, k)``
        (objects with a z axis of extent 1 are 2D, as in ilastik),
        including ``Default features`` (Coord<Minimum>, Coord<Maximum> (exclusive), RegionCenter,
        Count) and, for each selected "<F> in neighborhood", also "<F> in object and
        neighborhood" (both stored by ilastik).

    Raises
    ------
    ObjectsError
        If the raw image does not match the objects or the selection is not valid
        (checked before anything is computed).
    """
    _check(raw, raw_axes, objects)
    flat = objects.spatial_axes == "zyx" and objects.labels.shape[-3] == 1
    ndim = 2 if flat else len(objects.spatial_axes)
    plan = make_plan(selection, ndim)
    widths = feature_names(selection, int(raw.shape[-1]), ndim)
    tables = []
    for step, count in enumerate(objects.counts):
        labels = objects.labels[step] if objects.axes.startswith("t") else objects.labels
        image = raw[step] if objects.axes.startswith("t") else raw
        if flat:  # a z of extent 1 is 2D for ilastik (x, y coordinates only)
            labels, image = labels[0], image[0]
        image = image.rechunk((*labels.chunks, image.shape[-1]))
        if count == 0:
            tables.append(_empty(widths))
        else:
            tables.append(_time_point(image, labels, count, plan))
    return tables


def _empty(widths: dict[str, dict[str, FeatureColumns]]) -> FeatureTable:
    """The table of a time point without objects: one zero row per feature."""
    return {
        plugin: {name: np.zeros((1, info.width), dtype=np.float32) for name, info in names.items()}
        for plugin, names in widths.items()
    }


def _tree(parts: list[object]) -> object:
    """Merge delayed partials in a tree of fan-in :data:`_FAN_IN`."""
    while len(parts) > 1:
        parts = [delayed(merge)(parts[i : i + _FAN_IN]) for i in range(0, len(parts), _FAN_IN)]
    return parts[0]


def _blockwise(image: da.Array, labels: da.Array, count: int, kernel: object, *extra: object) -> Partial:
    """Run a pass kernel on every chunk; dense tables of the merged partials (row = object id).

    A group of chunks per compute (bounded memory) is merged in a tree of fan-in
    :data:`_FAN_IN`, and the groups are folded into the dense tables one after the other, so
    only the tables and one group's partial are held on the client.
    """
    starts = [np.cumsum((0, *sizes[:-1])) for sizes in labels.chunks]
    label_blocks = labels.to_delayed()
    raw_blocks = image.to_delayed()
    parts = []
    for index in np.ndindex(*labels.numblocks):
        offset = tuple(int(starts[axis][i]) for axis, i in enumerate(index))
        block = delayed(kernel)(raw_blocks[(*index, 0)], label_blocks[index], offset, *extra)
        parts.append(block)
    size = group_size()
    dense: Partial = {}
    for begin in range(0, len(parts), size):
        (merged,) = compute(_tree(parts[begin : begin + size]))
        fold(dense, merged, count)
    return finish_fold(dense)


def _time_point(image: da.Array, labels: da.Array, count: int, plan: Plan) -> FeatureTable:
    """Every selected feature of one time point (``image``: spatial + c, ``labels``: spatial)."""
    first = _blockwise(image, labels, count, pass1)
    second = None
    if plan.needs_pass2 and np.isnan(np.concatenate([first["g_lo"], first["g_hi"]])).any():
        # vigra's histogram range (setMinMax: min <= max) refuses NaN, so ilastik stops here too
        raise ObjectsError("the raw data holds NaN inside objects; intensity histogram features need numbers")
    if plan.needs_pass2:
        shared = [delayed(a) for a in (means(first), first["g_lo"], first["g_hi"])]
        second = _blockwise(image, labels, count, pass2, *shared)
    if plan.needs_scatter:
        first |= _per_object(None, labels, first, count, (0,) * labels.ndim, scatter_batch)
    values = finish(tuple(dict.fromkeys(plan.standard + DEFAULTS)), first, second)
    del second  # the pass-2 tables (64 histogram bins per object) are done with
    table: FeatureTable = {DEFAULT_FEATURES: {name: values[name] for name in DEFAULTS}}
    if plan.standard or plan.local:
        table[STANDARD] = {name: values[name] for name in plan.standard}
    if plan.local:
        kernel = partial(local_batch, names=plan.local, margin=plan.margin)
        table[STANDARD].update(_per_object(image, labels, first, count, plan.margin, kernel, beyond=1))
    for plugin, names in plan.shapes.items():
        kernel = partial(shape_batch, plugin=plugin, names=names, image_shape=labels.shape)
        table[plugin] = _per_object(None, labels, first, count, (0,) * labels.ndim, kernel)
    return table


def _per_object(
    image: da.Array | None,
    labels: da.Array,
    first: Partial,
    count: int,
    margin: tuple[int, ...],
    kernel: BatchKernel,
    beyond: int = 0,
) -> dict[str, np.ndarray]:
    """Features computed on each object's window, batched per label chunk, as dense tables.

    The window is the bounding box +- ``margin``, its upper end ``beyond`` pixels further:
    ilastik's ``compute_extent`` adds 1 to ``Coord<Maximum>``, which its plugin already made
    exclusive, so neighbourhood windows reach one pixel further on the upper side.
    """
    ids = np.arange(1, count + 1, dtype=np.uint32)
    cmin, cmax = first["cmin"][1:].astype(np.int64), first["cmax"][1:].astype(np.int64) + 1 + beyond
    bounds = windows(cmin, cmax, margin, labels.shape)
    parts = compute_groups(batched(image, labels, ids, bounds, cmin[:, ::-1], kernel))
    out: dict[str, np.ndarray] = {}
    for part in parts:
        rows = part["ids"].astype(np.int64)
        for name, values in part.items():
            if name != "ids":
                table = out.setdefault(name, np.zeros((count + 1, values.shape[1]), dtype=values.dtype))
                table[rows] = values
    return out
