"""Training specifications: the YAML that ``cascade train`` reads, validated into plain objects.

Example (see ``configs/train-example.yaml``)::

    images:
      - raw: data/volume.h5/raw        # ilastik path conventions
        input_axes: zyx                # optional; default: the file's own axes
        labels: [stage1.tif, stage2.tif]   # one per stage (or one for every stage)
    stages:
      - classes: [membrane, cytoplasm, mitochondria]
        features: ilastik-default      # a named set or an explicit selection mapping
      - classes: [membrane, cytoplasm]
        features: configs/features/em-membranes.yaml
    forest: {trees: 100, seed: 0}
    training: cross-fit                # or oob, or in-sample (ilastik's behaviour)
    prior: images                      # or labels: the forest's own class shares (ilastik's)

Relative paths are taken relative to the spec file. Unknown keys (a typo such as ``tress:``)
are refused, naming the valid ones; every stage needs at least two classes, as in ilastik.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..axes import parse_axes, to_internal
from ..errors import CascadeError
from ..features import FeatureSelection, parse_feature_selection
from ..forest import MAX_SEED, MAX_TREES
from ..io import open_image
from ..pipeline import Stage
from ..project import MAX_LABEL, SparseLabels
from ._object_spec import ObjectSpec, parse_object_spec
from .fitting import TRAINING_MODES, TrainingImage
from .prior import PRIORS

__all__ = ["TrainingSpec", "load_spec", "load_training_images", "parse_spec"]


@dataclass(frozen=True)
class ImageSpec:
    """One training image: raw path, optional axes, one label path per stage."""

    raw: str
    input_axes: str | None
    labels: tuple[str | None, ...]
    object_input: str | None = None
    object_labels: str | None = None


@dataclass(frozen=True)
class TrainingSpec:
    """A validated training specification."""

    images: tuple[ImageSpec, ...]
    stages: tuple[Stage, ...]
    trees: int = 100
    seed: int = 0
    training: str = "cross-fit"
    objects: ObjectSpec | None = None
    prior: str = "images"


def _selection(value: Any, base: Path) -> FeatureSelection:
    if isinstance(value, str) and value.endswith((".yaml", ".yml")):
        import yaml

        path = (base / value) if not Path(value).is_absolute() else Path(value)
        if not path.is_file():
            raise CascadeError(f"feature set file not found: {path}")
        return parse_feature_selection(yaml.safe_load(path.read_text()))
    return parse_feature_selection(value if value is not None else "ilastik-default")


def _resolve(path: str, base: Path) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else base / p)


_KEYS = {
    "the training spec": ("images", "stages", "objects", "forest", "training", "prior"),
    "stage": ("classes", "features"),
    "image": ("raw", "input_axes", "labels", "object_input", "object_labels"),
    "forest": ("trees", "seed"),
}


def _mapping(value: Any, what: str, where: str) -> Mapping[str, Any]:
    """``value`` as a mapping whose keys are all known for ``what`` (see ``_KEYS``)."""
    if not isinstance(value, Mapping):
        raise CascadeError(f"{where} must be a mapping with keys {', '.join(_KEYS[what])}, not {value!r}")
    unknown = [str(k) for k in value if k not in _KEYS[what]]
    if unknown:
        raise CascadeError(f"unknown key {unknown[0]!r} in {where}; valid keys are {', '.join(_KEYS[what])}")
    return value


def _whole(value: Any, what: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise CascadeError(f"{what} must be a whole number from {minimum} to {maximum}, not {value!r}")
    return value


def _stage(entry: Any, k: int, base: Path) -> Stage:
    entry = _mapping(entry, "stage", f"stage {k + 1}")
    classes = entry.get("classes")
    if not isinstance(classes, Sequence) or isinstance(classes, str) or len(classes) < 2:
        raise CascadeError(
            f"stage {k + 1} needs a 'classes' list of at least two class names (as ilastik needs two "
            f"label classes), got {classes!r}"
        )
    return Stage(_selection(entry.get("features"), base), tuple(str(c) for c in classes))


def _image(entry: Any, i: int, n_stages: int, base: Path) -> ImageSpec:
    entry = _mapping(entry, "image", f"image {i + 1}")
    if "raw" not in entry:
        raise CascadeError(f"image {i + 1} needs a 'raw' path")
    labels = entry.get("labels")
    labels = [labels] if isinstance(labels, str) else list(labels or [])
    if len(labels) == 1:
        labels = labels * n_stages
    if not labels and entry.get("object_labels"):  # an image that trains the object stage only
        labels = [None] * n_stages
    if len(labels) != n_stages:
        raise CascadeError(f"image {i + 1} lists {len(labels)} label images but there are {n_stages} stages")
    axes = entry.get("input_axes")
    second = {k: _resolve(str(entry[k]), base) for k in ("object_input", "object_labels") if entry.get(k)}
    return ImageSpec(
        _resolve(str(entry["raw"]), base),
        parse_axes(axes) if axes else None,
        tuple(None if lab is None else _resolve(str(lab), base) for lab in labels),
        **second,
    )


def parse_spec(spec: Mapping[str, Any], base: Path) -> TrainingSpec:
    """Validate a training spec mapping; paths are resolved against ``base``.

    Parameters
    ----------
    spec : mapping
        The spec, as read from YAML.
    base : Path
        Folder that relative paths are relative to (the spec file's).

    Returns
    -------
    TrainingSpec
        The checked spec.

    Raises
    ------
    CascadeError
        Naming the first problem: an unknown key (and the valid ones), a missing or malformed
        entry, a stage with fewer than two classes, a forest size or seed out of range.
    """
    spec = _mapping(spec, "the training spec", "the training spec")
    stages_in = spec.get("stages", [] if "objects" in spec else None)
    if (
        not isinstance(stages_in, Sequence)
        or isinstance(stages_in, str)
        or not (stages_in or "objects" in spec)
    ):
        raise CascadeError("the training spec needs a non-empty 'stages' list (or an 'objects' stage)")
    stages = [_stage(entry, k, base) for k, entry in enumerate(stages_in)]
    objects = parse_object_spec(spec["objects"], base, len(stages)) if "objects" in spec else None
    images_in = spec.get("images")
    if not isinstance(images_in, Sequence) or isinstance(images_in, str) or not images_in:
        raise CascadeError("the training spec needs a non-empty 'images' list")
    images = [_image(entry, i, len(stages), base) for i, entry in enumerate(images_in)]
    _check_object_images(images, objects)
    forest = _mapping(spec.get("forest") or {}, "forest", "'forest'")
    training = str(spec.get("training", TRAINING_MODES[0]))
    if training not in TRAINING_MODES:
        raise CascadeError(f"training must be one of {', '.join(TRAINING_MODES)}; got {training!r}")
    prior = str(spec.get("prior", PRIORS[0]))
    if prior not in PRIORS:
        raise CascadeError(f"prior must be one of {', '.join(PRIORS)}; got {prior!r}")
    trees = _whole(forest.get("trees", 100), "forest trees", 1, MAX_TREES)
    # stage k trains with seed + k, the object stage with seed + len(stages)
    seed = _whole(forest.get("seed", 0), "forest seed", 0, MAX_SEED - max(len(stages) - (objects is None), 0))
    return TrainingSpec(tuple(images), tuple(stages), trees, seed, training, objects, prior)


def _check_object_images(images: Sequence[ImageSpec], objects: ObjectSpec | None) -> None:
    """Object inputs and labels only with an object stage; labels somewhere, inputs where needed."""
    for i, image in enumerate(images):
        given = [k for k in ("object_input", "object_labels") if getattr(image, k)]
        if objects is None and given:
            raise CascadeError(f"image {i + 1} gives {given[0]!r} but the spec has no 'objects' stage")
        if objects is None:
            continue
        if image.object_labels and objects.needs_input and not image.object_input:
            raise CascadeError(
                f"image {i + 1} needs an 'object_input' (the {objects.source} the objects come from)"
            )
        if image.object_input and not objects.needs_input:
            raise CascadeError(
                f"image {i + 1} gives an 'object_input' but objects come from the pixel stages' probabilities"
            )
    if objects is not None and not any(image.object_labels for image in images):
        raise CascadeError("the 'objects' stage needs 'object_labels' on at least one image")


def load_spec(path: str | Path) -> TrainingSpec:
    """Read and validate a training spec YAML file.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    TrainingSpec
        The checked spec.

    Raises
    ------
    CascadeError
        A missing or unreadable file, or an invalid spec (see :func:`parse_spec`).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise CascadeError(f"training spec not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise CascadeError(f"training spec {path} is not valid YAML: {' '.join(str(err).split())}") from err
    return parse_spec(data, path.parent)


def load_training_images(
    spec: TrainingSpec,
) -> tuple[list[TrainingImage], list[list[SparseLabels | None]]]:
    """Open every raw and label image (lazily) in internal axis order.

    Returns the training images and, per stage and image, the sparse labels to store.

    Parameters
    ----------
    spec : TrainingSpec
        The checked spec.

    Returns
    -------
    images : list of TrainingImage
        One per spec image.
    sparse : list of list of SparseLabels or None
        ``sparse[stage][image]``: the labels to store in the project.

    Raises
    ------
    CascadeError
        Labels whose shape or axes do not match the raw image, or invalid label values.
    """
    images: list[TrainingImage] = []
    sparse: list[list[SparseLabels | None]] = [[] for _ in spec.stages]
    for entry in spec.images:
        raw_image = open_image(entry.raw, axes=entry.input_axes)
        raw, axes = to_internal(raw_image.data, raw_image.axes)
        labels: list[np.ndarray | None] = []
        for k, label_path in enumerate(entry.labels):
            if label_path is None:
                labels.append(None)
                sparse[k].append(None)
                continue
            label_axes = raw_image.axes if raw_image.axes else None
            lab_image = open_image(label_path)
            if lab_image.ndim == len(raw_image.axes):
                label_axes = raw_image.axes
            elif lab_image.ndim == len(raw_image.axes.replace("c", "")):
                label_axes = raw_image.axes.replace("c", "")
            else:
                label_axes = lab_image.axes
            lab, lab_axes = to_internal(open_image(label_path, axes=label_axes).data, label_axes)
            if lab_axes != axes or lab.shape[:-1] != raw.shape[:-1]:
                raise CascadeError(
                    f"labels {label_path} (shape {tuple(lab.shape)}, axes {lab_axes}) do not match raw "
                    f"{entry.raw} (shape {tuple(raw.shape)}, axes {axes})"
                )
            dense = np.asarray(lab[..., 0])
            coords = np.argwhere(dense > 0)
            values = dense[tuple(coords.T)]
            _check_label_values(values, label_path)
            sparse[k].append((coords, values, tuple(dense.shape), label_path))
            labels.append(dense)
        images.append(TrainingImage(raw=raw, axes=axes, labels=tuple(labels)))
    return images, sparse


def _check_label_values(values: np.ndarray, path: str) -> None:
    """Labels are whole numbers 1..255 (0 = unlabelled), as a project stores them (uint8)."""
    if values.size == 0:
        return
    if values.dtype.kind == "f" and not np.array_equal(values, np.floor(values)):
        bad = values[values != np.floor(values)][0]
        raise CascadeError(f"labels {path} hold the value {bad}; label values must be whole numbers")
    top = values.max()
    if top > MAX_LABEL:
        raise CascadeError(
            f"labels {path} hold the value {top}; label values must be 1 to {MAX_LABEL} "
            "(0 = unlabelled; a project stores labels as uint8, as ilastik does)"
        )
