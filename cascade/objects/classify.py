"""Object classes: ilastik's feature matrix, object probabilities and predictions, painted back per chunk.

ilastik's ``OpObjectPredict`` (``reference/ilastik-objects.md`` 4.7, 4.8, 5.3): per time point,
the selected features' columns in sorted plugin -> sorted feature -> component order, NaN and
±inf replaced by 0, float32; the stored forest's probabilities with row 0 (the background) set
to 0; a time point holding only the background gives ``zeros((1, K))``; predictions are
``1 + argmax`` (the first maximum wins). The export images are lookups of these per-object tables
on the object label image, computed chunk by chunk (:func:`paint`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
from dask.delayed import delayed

from ..errors import ObjectsError
from ..forest import PackedForest, predict_proba
from .model import DEFAULT_FEATURES, FeatureTable, ObjectFeatureSelection, ObjectStage

__all__ = ["feature_matrix", "object_predictions", "object_probabilities", "paint", "train_object_forest"]


def _rows(table: FeatureTable) -> int:
    """Rows (objects + background) of one time point's table."""
    default = table.get(DEFAULT_FEATURES, {})
    for values in (*default.values(), *(v for p in table.values() for v in p.values())):
        return int(np.shape(values)[0])
    return 1


def _columns(table: FeatureTable, selection: ObjectFeatureSelection) -> list[np.ndarray]:
    """The selected features of one table in ilastik's order (sorted plugin, sorted feature)."""
    out = []
    for plugin in sorted(table):
        if plugin == DEFAULT_FEATURES or plugin not in selection:
            continue
        for name in sorted(table[plugin]):
            if name in selection[plugin]:
                values = np.asarray(table[plugin][name])
                out.append(values.reshape(values.shape[0], -1))
    return out


def feature_matrix(tables: Sequence[FeatureTable], selection: ObjectFeatureSelection) -> list[np.ndarray]:
    """ilastik's classifier input per time point: rows = object ids 0..N, float32, no NaN/inf.

    Parameters
    ----------
    tables : sequence of FeatureTable
        One table per time point (:func:`cascade.objects.object_features`).
    selection : ObjectFeatureSelection
        The classifier's features (plugin -> feature -> parameters); ``Default features`` never count.

    Returns
    -------
    list of numpy.ndarray
        Per time point, float32 ``(N + 1, n_columns)``; NaN and ±inf replaced by 0.

    Raises
    ------
    ObjectsError
        If the time points give different column counts, or no selected feature was computed.
    """
    matrices = []
    for _t, table in enumerate(tables):
        columns = _columns(table, selection)
        rows = _rows(table)
        if not columns:
            matrices.append(np.zeros((rows, 0), dtype=np.float32))
            continue
        x = np.concatenate(columns, axis=1).astype(np.float32)
        x[~np.isfinite(x)] = 0
        matrices.append(x)
    widths = {m.shape[1] for m, table in zip(matrices, tables, strict=True) if _rows(table) > 1}
    if len(widths) > 1:
        raise ObjectsError(f"the time points give different feature column counts {sorted(widths)}")
    if widths == {0}:
        raise ObjectsError("none of the selected object features was computed")
    return matrices


def object_probabilities(stage: ObjectStage, tables: Sequence[FeatureTable]) -> list[np.ndarray]:
    """The object stage's class probabilities per time point (ilastik's ``Probabilities``).

    Parameters
    ----------
    stage : ObjectStage
        A trained stage (its forest is evaluated with :func:`cascade.forest.predict_proba`).
    tables : sequence of FeatureTable
        One table per time point.

    Returns
    -------
    list of numpy.ndarray
        Per time point float32 ``(N + 1, K)``, row 0 all zeros; ``zeros((1, K))`` for a time
        point without objects.

    Raises
    ------
    ObjectsError
        An untrained stage, or features whose column count does not fit the forest.
    """
    forest = _trained(stage)
    out = []
    for x in feature_matrix(tables, stage.features):
        if x.shape[0] <= 1:
            out.append(np.zeros((1, stage.n_classes), dtype=np.float32))
            continue
        if x.shape[1] != forest.n_features:
            raise ObjectsError(
                f"the object features give {x.shape[1]} columns but the object classifier expects "
                f"{forest.n_features}; the raw data's channels or dimensions differ from the training data"
            )
        probabilities = predict_proba(forest, x)
        probabilities[0] = 0
        out.append(probabilities)
    return out


def _trained(stage: ObjectStage) -> PackedForest:
    if stage.forest is None:
        raise ObjectsError(
            "the object stage has no trained classifier; train it in ilastik (or give --retrain "
            "for a project with object labels)"
        )
    if stage.forest.n_outputs != stage.n_classes:
        raise ObjectsError(
            f"the object classifier has {stage.forest.n_outputs} outputs for {stage.n_classes} classes"
        )
    return stage.forest


def object_predictions(probabilities: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Predicted class per object: ``1 + argmax`` (first maximum wins), 0 for the background row.

    Parameters
    ----------
    probabilities : sequence of numpy.ndarray
        Per time point ``(N + 1, K)`` (:func:`object_probabilities`).

    Returns
    -------
    list of numpy.ndarray
        Per time point uint8 ``(N + 1,)``.
    """
    out = []
    for p in probabilities:
        classes = (1 + np.argmax(p, axis=1)).astype(np.uint8)
        classes[0] = 0
        out.append(classes)
    return out


def _paint_block(
    block: np.ndarray, luts: Sequence[np.ndarray], t0: int, has_t: bool, channels: int | None
) -> np.ndarray:
    """Look up every pixel's object id in its time point's table (ids beyond a table map to 0)."""
    steps = block if has_t else block[None]
    first = luts[0]
    shape = steps.shape + ((channels,) if channels is not None else ())
    out = np.zeros(shape, dtype=first.dtype)
    for i, labels in enumerate(steps):
        lut = luts[t0 + i]
        inside = labels < lut.shape[0]
        out[i][inside] = lut[labels[inside]]
    return out if has_t else out[0]


def paint(labels: da.Array, axes: str, luts: Sequence[np.ndarray], *, channel_axis: bool = True) -> da.Array:
    """An export image: every pixel of object ``i`` at time ``t`` gets ``luts[t][i]``, chunk by chunk.

    Parameters
    ----------
    labels : dask.array.Array
        The object label image (uint32 ids, axes ``axes`` without ``c``).
    axes : str
        Axes of ``labels``, e.g. ``"tyx"``.
    luts : sequence of numpy.ndarray
        One lookup table per time point (one when there is no ``t`` axis): shape ``(N + 1,)``
        for one value per object (predictions, identities) or ``(N + 1, K)`` for K channels
        (probabilities). Row 0 is the background's value.
    channel_axis : bool
        Append a channel axis (one channel for 1-D tables, K for 2-D ones), as ilastik's exports have.

    Returns
    -------
    dask.array.Array
        Axes ``axes + "c"`` (or ``axes``), the tables' dtype, chunked like ``labels`` (all
        channels in one chunk).

    Raises
    ------
    ObjectsError
        If the number of tables does not match the time points or the tables disagree in shape.
    """
    has_t = axes.startswith("t")
    steps = labels.shape[0] if has_t else 1
    if len(luts) != steps:
        raise ObjectsError(f"{len(luts)} lookup table(s) for {steps} time point(s)")
    if len({(lut.ndim, lut.shape[1:], lut.dtype) for lut in luts}) != 1:
        raise ObjectsError("the lookup tables of the time points differ in columns or dtype")
    channels = luts[0].shape[1] if luts[0].ndim == 2 else None
    starts = np.cumsum((0, *labels.chunks[0])) if has_t else np.zeros(1, dtype=np.int64)

    def block(
        chunk: np.ndarray, tables: list[np.ndarray], block_info: dict[Any, Any] | None = None
    ) -> np.ndarray:
        t0 = int(block_info[0]["chunk-location"][0]) if has_t and block_info else 0
        return _paint_block(chunk, tables, int(starts[t0]), has_t, channels)

    # the tables are one graph key: a cluster ships them once per worker, not once per block
    shared = delayed(list(luts), pure=True, traverse=False)
    dtype = luts[0].dtype
    meta = np.empty((0,) * (labels.ndim + (channels is not None)), dtype=dtype)
    if channels is not None:
        chunks = (*labels.chunks, (channels,))
        painted: da.Array = da.map_blocks(
            block, labels, shared, dtype=dtype, meta=meta, new_axis=labels.ndim, chunks=chunks
        )
        return painted
    painted = da.map_blocks(block, labels, shared, dtype=dtype, meta=meta)
    if channel_axis:
        painted = painted[..., None]
    return painted


def train_object_forest(
    matrices: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    n_classes: int,
    *,
    n_trees: int = 100,
    seed: int = 0,
) -> PackedForest:
    """Train an object forest on the labelled objects (ilastik's ``LabelInputs``) with cascade's forest.

    Parameters
    ----------
    matrices : sequence of numpy.ndarray
        Feature matrices ``(N + 1, n_columns)`` (:func:`feature_matrix`), one per labelled time point.
    labels : sequence of numpy.ndarray
        Per matrix, the class 1..K of each object id (0 unlabelled); may be shorter than N + 1.
    n_classes : int
        K.
    n_trees, seed : int
        Forest size and random seed (:func:`cascade.forest.train_forest`).

    Returns
    -------
    PackedForest
        The trained forest.

    Raises
    ------
    ObjectsError
        When no object is labelled, or a label is outside 1..K.
    """
    from ..forest import train_forest

    rows, ys = [], []
    for x, y in zip(matrices, labels, strict=True):
        y = np.asarray(y, dtype=np.int64)[: x.shape[0]]
        keep = np.flatnonzero(y > 0)
        keep = keep[keep > 0]  # the background row is never a training example
        rows.append(x[keep])
        ys.append(y[keep])
    y_all = np.concatenate(ys) if ys else np.zeros(0, dtype=np.int64)
    if y_all.size == 0:
        raise ObjectsError("the project has no labelled objects to train the object classifier on")
    if y_all.max() > n_classes:
        raise ObjectsError(f"an object label {int(y_all.max())} exceeds the {n_classes} classes")
    return train_forest(np.concatenate(rows), y_all, n_outputs=n_classes, n_trees=n_trees, seed=seed)
