"""Train an object stage natively: objects, their features, their labels, one forest.

For every spec image that gives ``object_labels``: the objects (thresholded probabilities of the
cascade's own last pixel stage, or the image's ``object_input``: probability maps, a segmentation
or a label image, ilastik's four workflows), their features (:func:`cascade.objects.object_features`,
blockwise), the class of each labelled object (:func:`object_classes`: the majority of its labelled
pixels), and ilastik's feature matrix (:func:`cascade.objects.feature_matrix`). One forest
(:func:`cascade.objects.train_object_forest`, 100 trees by default, as ilastik) is trained on the
labelled rows of all images and time points. Everything per pixel is computed chunk by chunk;
only per-object tables are held.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da
import numpy as np

from ..axes import to_internal
from ..errors import ObjectsError
from ..io import open_image
from ..objects import (
    DEFAULT_FEATURES,
    FeatureTable,
    Objects,
    ObjectStage,
    feature_matrix,
    find_objects,
    object_features,
    train_object_forest,
)
from ..pipeline import Cascade, predict
from ._object_labels import ObjectLabels, object_classes
from ._object_spec import ObjectSpec, object_feature_selection
from .spec import ImageSpec, TrainingSpec

__all__ = ["ObjectTraining", "train_object_stage"]


@dataclass(frozen=True, eq=False)
class ObjectTraining:
    """A trained object stage and what its training saw.

    Attributes
    ----------
    stage : ObjectStage
        The trained stage.
    raw_dtype : str
        dtype of the (first) training image's raw data.
    labels : tuple of ObjectLabels
        Per training image, the classes of its labelled objects.
    summary : str
        One paragraph: labelled objects per class, ambiguous labels.
    """

    stage: ObjectStage
    raw_dtype: str
    labels: tuple[ObjectLabels, ...]
    summary: str


def _second_input(
    path: str, raw_file_axes: str, raw_axes: str, raw_shape: tuple[int, ...], what: str
) -> da.Array:
    """An image over the raw image (object input or object labels) in internal axes (with c), checked.

    The file's axes are the raw file's when the dimensions fit (as for pixel label images),
    without or with a channel axis; otherwise its own.
    """
    found = open_image(path)
    plain = raw_file_axes.replace("c", "")
    fits = {len(plain) + 1: plain + "c", len(plain): plain, len(raw_file_axes): raw_file_axes}  # last wins
    axes = fits.get(found.ndim, found.axes)
    data, internal = to_internal(open_image(path, axes=axes).data, axes)
    if internal[:-1] != raw_axes[:-1] or tuple(data.shape[:-1]) != raw_shape[:-1]:
        raise ObjectsError(
            f"{what} {path} (shape {tuple(data.shape)}, axes {internal}) does not cover the raw image "
            f"(shape {raw_shape}, axes {raw_axes})"
        )
    return data


def _objects(
    image: ImageSpec, spec: ObjectSpec, raw: da.Array, axes: tuple[str, str], pixels: Cascade | None
) -> Objects:
    """The objects of one training image, from the source the spec names (``axes``: file's, internal)."""
    file_axes, internal = axes
    if spec.source == "pixel classification":
        if pixels is None:
            raise ObjectsError("objects from pixel classification need the trained pixel stages")
        data = predict(pixels, raw, axes=internal)[-1].probabilities
    elif image.object_input is None:
        raise ObjectsError(f"{image.raw} needs an object input ({spec.source})")
    else:
        data = _second_input(image.object_input, file_axes, internal, tuple(raw.shape), f"the {spec.source}")
    try:
        return find_objects(data, internal, source=spec.source, threshold=spec.threshold)
    except ObjectsError as err:
        raise ObjectsError(f"{image.object_input or image.raw}: {err}") from None


def _image_rows(
    image: ImageSpec, spec: ObjectSpec, pixels: Cascade | None
) -> tuple[list[np.ndarray], ObjectLabels, list[FeatureTable], tuple[int, str, str]]:
    """One image's feature matrices, object classes, feature tables and (channels, axes, dtype)."""
    if image.object_labels is None:
        raise ObjectsError(f"{image.raw} gives no object labels")
    raw_image = open_image(image.raw, axes=image.input_axes)
    raw, axes = to_internal(raw_image.data, raw_image.axes)
    objects = _objects(image, spec, raw, (raw_image.axes, axes), pixels)
    spatial = "zyx" if "z" in axes else "yx"
    selection = object_feature_selection(spec.features, len(spatial), int(raw.shape[-1]))
    labels = _second_input(image.object_labels, raw_image.axes, axes, tuple(raw.shape), "the object labels")
    found = object_classes(objects, labels[..., 0], len(spec.classes))
    tables = object_features(raw, axes, objects, selection)
    geometry = (int(raw.shape[-1]), spatial, str(raw.dtype))
    return feature_matrix(tables, selection), found, tables, geometry


def train_object_stage(spec: TrainingSpec, pixels: Cascade | None, *, seed: int) -> ObjectTraining:
    """Train the spec's object stage on the images that give object labels.

    Parameters
    ----------
    spec : TrainingSpec
        A spec with an ``objects`` stage.
    pixels : Cascade or None
        The trained pixel stages (needed for objects from ``"pixel classification"``).
    seed : int
        Seed of the object forest (``cascade train`` uses the spec's seed + number of pixel stages).

    Returns
    -------
    ObjectTraining
        The trained stage, the labels found and a summary.

    Raises
    ------
    ObjectsError
        Inputs that do not cover the raw image, training images of different channels or
        dimensions, invalid or undecidable object labels, or no labelled object at all.
    """
    objects = spec.objects
    if objects is None:
        raise ObjectsError("the training spec has no 'objects' stage")
    matrices: list[np.ndarray] = []
    classes: list[np.ndarray] = []
    found: list[ObjectLabels] = []
    notes: list[str] = []
    geometry: tuple[int, str, str] | None = None
    for image in (i for i in spec.images if i.object_labels):
        rows, labels, tables, shape = _image_rows(image, objects, pixels)
        if geometry is not None and shape[:2] != geometry[:2]:
            raise ObjectsError(
                f"{image.raw} has {shape[0]} channel(s), {shape[1]}; the first object training image "
                f"{geometry[0]}, {geometry[1]}: object features need the same channels and dimensions"
            )
        geometry = geometry or shape
        matrices += rows
        classes += labels.classes
        found.append(labels)
        notes += _notes(image.object_labels or "", labels, tables)
    if geometry is None:
        raise ObjectsError("no training image gives object labels")
    forest = train_object_forest(matrices, classes, len(objects.classes), n_trees=spec.trees, seed=seed)
    stage = ObjectStage(
        source=objects.source,
        threshold=objects.threshold,
        features=object_feature_selection(objects.features, len(geometry[1]), geometry[0]),
        class_names=objects.classes,
        forest=forest,
        raw_channels=geometry[0],
        spatial_axes=geometry[1],
    )
    return ObjectTraining(stage, geometry[2], tuple(found), _summary(objects, found, notes))


def _centre(tables: list[FeatureTable], t: int, oid: int) -> str:
    """Where object ``oid`` of time point ``t`` is: its centre (x, y[, z]) from the default features."""
    centre = tables[t].get(DEFAULT_FEATURES, {}).get("RegionCenter")
    if centre is None:
        return ""
    return " at (" + ", ".join(f"{v:.0f}" for v in np.asarray(centre)[oid]) + ")"


def _notes(path: str, labels: ObjectLabels, tables: list[FeatureTable]) -> list[str]:
    """What was ambiguous in one image's object labels, in words."""
    notes = []
    for t, oid, counts in labels.mixed[:5]:
        when = f" time point {t}" if len(tables) > 1 else ""
        per_class = ", ".join(str(int(c)) for c in counts)
        notes.append(
            f"object {oid}{when}{_centre(tables, t, oid)} in {path} has labelled pixels of several classes "
            f"({per_class} per class); it takes class {int(np.argmax(counts)) + 1}"
        )
    if len(labels.mixed) > 5:
        notes.append(f"{len(labels.mixed) - 5} more objects in {path} have labels of several classes")
    if labels.on_background:
        notes.append(f"{labels.on_background} labelled pixel(s) of {path} lie on no object and are ignored")
    return notes


def _summary(spec: ObjectSpec, found: list[ObjectLabels], notes: list[str]) -> str:
    per_class = np.zeros(len(spec.classes) + 1, np.int64)
    for labels in found:
        for classes in labels.classes:
            per_class += np.bincount(classes, minlength=len(per_class))[: len(per_class)]
    counts = ", ".join(f"{name}: {int(n)}" for name, n in zip(spec.classes, per_class[1:]))
    text = f"object stage ({spec.source}): {int(per_class[1:].sum())} labelled objects ({counts})"
    return "; ".join([text, *notes])
