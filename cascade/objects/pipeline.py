"""One object stage end to end on lazy arrays: objects, features, probabilities, and the export images.

:func:`classify_objects` runs ilastik's Object Classification on one input: the objects (global
connected components, or the relabelled label image), their features per time point, and, with
a trained forest, their class probabilities. Only these per-object tables are computed here;
every image (:func:`object_image`) is a lazy dask array painted chunk by chunk from them, so the
tables are computed once per input and shared by every export source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import dask.array as da
import numpy as np

from ..errors import ObjectsError
from ..io import keep_once
from .classify import object_predictions, object_probabilities, paint
from .components import objects_from_label_image, objects_from_segmentation
from .features import object_features
from .model import DEFAULT_FEATURES, FeatureTable, Objects, ObjectStage, ThresholdSettings
from .threshold import objects_from_probabilities

__all__ = [
    "OBJECT_IMAGES",
    "ObjectResult",
    "atlas_mapping",
    "classify_objects",
    "find_objects",
    "object_image",
]

#: The export images of an object stage (ilastik's export source names), and their dtype.
OBJECT_IMAGES = {
    "Object Predictions": np.dtype(np.uint8),
    "Object Probabilities": np.dtype(np.float32),
    "Object Identities": np.dtype(np.uint32),
}


@dataclass(frozen=True, eq=False)
class ObjectResult:
    """The object stage's result for one input: objects and per-object tables.

    Attributes
    ----------
    objects : Objects
        The object label image (lazy) and the object counts per time point.
    tables : list of FeatureTable
        The object features of each time point.
    probabilities : list of numpy.ndarray or None
        Per time point ``(N + 1, K)`` float32; None without a trained forest.
    """

    objects: Objects
    tables: list[FeatureTable]
    probabilities: list[np.ndarray] | None

    @property
    def predictions(self) -> list[np.ndarray] | None:
        """Per time point the predicted class (uint8) of each object id; None without probabilities."""
        return None if self.probabilities is None else object_predictions(self.probabilities)


def find_objects(image: da.Array, axes: str, *, source: str, threshold: ThresholdSettings | None) -> Objects:
    """The objects of one input, as ilastik's workflow for ``source`` finds them.

    Parameters
    ----------
    image : dask.array.Array
        Pixel probabilities (``"probabilities"``, ``"pixel classification"``), a segmentation or
        a label image, in internal axis order with a ``c`` axis.
    axes : str
        Axes of ``image``.
    source : str
        One of :data:`~cascade.objects.model.OBJECT_SOURCES`.
    threshold : ThresholdSettings or None
        The thresholding of probabilities; None for a segmentation or a label image.

    Returns
    -------
    Objects
        Globally consistent object ids.

    Raises
    ------
    ObjectsError
        Probabilities without threshold settings, or too few probability channels for them.
    """
    if source in ("probabilities", "pixel classification"):
        if threshold is None:
            raise ObjectsError(f"objects from {source} need threshold settings")
        channels = image.shape[axes.index("c")] if "c" in axes else 1
        if channels < threshold.channels_needed:
            raise ObjectsError(
                f"thresholding reads channel {threshold.channels_needed - 1} but the prediction "
                f"map has {channels} channel(s)"
            )
        return objects_from_probabilities(image, axes, threshold)
    if source == "segmentation":
        return objects_from_segmentation(image, axes)
    return objects_from_label_image(image, axes)


def atlas_mapping(table: FeatureTable, atlas: da.Array, axes: str, t: int = 0) -> np.ndarray:
    """ilastik's ``AtlasMapping``: the atlas value at each object's rounded ``RegionCenter``.

    As ilastik's ``_createAtlasMapping``: the centre (x, y[, z]) rounded with ``numpy.round``
    (halves to even), every atlas channel read there; only the atlas blocks holding centres are read.

    Parameters
    ----------
    table : FeatureTable
        The time point's features (its default ``RegionCenter``, row ``i`` = object id ``i``).
    atlas : dask.array.Array
        The atlas, internal axes ``axes`` (with ``c``).
    axes : str
        Axes of ``atlas``.
    t : int
        The time point (ignored without a ``t`` axis).

    Returns
    -------
    numpy.ndarray
        ``(N + 1, C)`` in the atlas dtype; row 0 (background) is 0.
    """
    centers = np.asarray(table[DEFAULT_FEATURES]["RegionCenter"], dtype=np.float64)[1:]
    out = np.zeros((len(centers) + 1, atlas.shape[-1]), dtype=atlas.dtype)
    if len(centers) == 0:
        return out
    points = np.round(centers).astype(np.int64)
    index: list[np.ndarray] = []
    for axis, size in zip(axes[:-1], atlas.shape[:-1], strict=True):
        column = np.full(len(points), t) if axis == "t" else points[:, "xyz".index(axis)]
        index.append(np.clip(column, 0, size - 1))
    out[1:] = np.asarray(atlas.vindex[tuple(index)].compute())
    return out


def classify_objects(
    stage: ObjectStage,
    raw: da.Array,
    raw_axes: str,
    image: da.Array,
    axes: str,
    *,
    features: bool = True,
    scratch: str | None = None,
    atlas: da.Array | None = None,
) -> ObjectResult:
    """Objects, features and (with a forest) probabilities of one input.

    Parameters
    ----------
    stage : ObjectStage
        The object stage.
    raw : dask.array.Array
        The raw image, internal axis order with ``c``.
    raw_axes : str
        Its axes.
    image : dask.array.Array
        What the objects come from (see :func:`find_objects`), same t/z/y/x as ``raw``.
    axes : str
        Its axes.
    features : bool
        Compute the features and probabilities (False: the objects only, e.g. for Object Identities).
    scratch : str, optional
        A scratch folder: the object label image is then computed once now (held in memory when
        small, else stored there, :func:`cascade.io.keep_once`) and read back by every later
        pass and export, instead of thresholding and labelling again for each of them.
    atlas : dask.array.Array, optional
        An atlas image (axes ``raw_axes``): adds ilastik's ``AtlasMapping`` default feature
        (:func:`atlas_mapping`).

    Returns
    -------
    ObjectResult
        The objects and their tables (computed now); images stay lazy.
    """
    objects = find_objects(image, axes, source=stage.source, threshold=stage.threshold)
    if scratch is not None:
        objects = replace(objects, labels=keep_once(objects.labels, scratch, label="object labels"))
    if not features:
        return ObjectResult(objects, [], None)
    tables = object_features(raw, raw_axes, objects, stage.features)
    if atlas is not None:
        for t, table in enumerate(tables):
            table[DEFAULT_FEATURES]["AtlasMapping"] = atlas_mapping(table, atlas, raw_axes, t)
    probabilities = object_probabilities(stage, tables) if stage.forest is not None else None
    return ObjectResult(objects, list(tables), probabilities)


def object_image(result: ObjectResult, name: str) -> tuple[da.Array, str]:
    """One export image (``name`` one of :data:`OBJECT_IMAGES`), lazy, with a channel axis.

    Parameters
    ----------
    result : ObjectResult
        The input's objects and tables.
    name : str
        ``"Object Predictions"``, ``"Object Probabilities"`` or ``"Object Identities"``.

    Returns
    -------
    dask.array.Array, str
        The image and its axes (the objects' axes + ``"c"``).

    Raises
    ------
    ObjectsError
        Predictions or probabilities without a trained classifier, or an unknown name.
    """
    objects = result.objects
    axes = objects.axes + "c"
    if name == "Object Identities":
        identities: da.Array = objects.labels.astype(np.uint32)[..., None]
        return identities, axes
    if name not in OBJECT_IMAGES:
        raise ObjectsError(f"unknown object image {name!r}; choose from {', '.join(OBJECT_IMAGES)}")
    if result.probabilities is None:
        raise ObjectsError(f"{name} need a trained object classifier, and the project has none")
    luts: Sequence[np.ndarray] = result.probabilities
    if name == "Object Predictions":
        luts = object_predictions(result.probabilities)
    return paint(objects.labels, objects.axes, luts), axes
