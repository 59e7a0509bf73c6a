"""Run a training spec end to end: open images, fit, save the project."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import cast

import numpy as np

from .. import __version__
from ..errors import CascadeError, ProjectError
from ..io import output_lock, split_path
from ..objects import ThresholdSettings
from ..pipeline import Cascade, Stage
from ..project import MAX_LABEL, SparseLabels, is_cascade_project, save_cascade
from ._object_spec import ObjectSpec, object_feature_selection, object_features_file
from .fitting import TrainingMode, fit
from .prior import Prior
from .spec import ImageSpec, TrainingSpec, _selection, load_training_images

__all__ = ["check_project_target", "run_training", "simple_spec", "with_simple_objects"]


def simple_spec(
    raw_data: list[str],
    labels: list[str],
    stages: int,
    features: str,
    classes: str | None,
    input_axes: str | None,
    trees: int,
    seed: int,
    training: str,
    prior: str = "images",
) -> TrainingSpec:
    """The spec of ``cascade train --raw_data ... --labels ...``: same labels for every stage.

    Parameters
    ----------
    raw_data : list of str
        Raw images.
    labels : list of str
        Label images, one per raw image (none when ``stages`` is 0).
    stages : int
        Stage count; 0 for an object stage alone (:func:`with_simple_objects`).
    features : str
        A named feature set or a YAML file of one.
    classes : str or None
        Comma-separated class names (None: ``class 1`` .. up to the largest label).
    input_axes : str or None
        Axes of the raw images (None: guessed).
    trees : int
        Trees per stage.
    seed : int
        Seed of the forests.
    training : str
        ``"cross-fit"``, ``"oob"`` or ``"in-sample"`` (see :func:`cascade.training.fit`).
    prior : str
        ``"images"`` or ``"labels"`` (see :func:`cascade.training.fit`).

    Returns
    -------
    TrainingSpec
        The checked spec.

    Raises
    ------
    CascadeError
        A label value out of range, an unreadable image or an invalid option.
    """
    if stages and len(raw_data) != len(labels):
        raise CascadeError(
            f"{len(raw_data)} raw image(s) but {len(labels)} label image(s); give one per image"
        )
    names = _class_names(classes, labels, "label images") if stages else ()
    selection = _selection(features, Path.cwd())
    return TrainingSpec(
        images=tuple(
            ImageSpec(r, input_axes, (lab,) * stages)
            for r, lab in zip(raw_data, labels if stages else [None] * len(raw_data))
        ),
        stages=tuple(Stage(selection, names) for _ in range(stages)),
        trees=trees,
        seed=seed,
        training=training,
        prior=prior,
    )


def _class_names(classes: str | None, labels: list[str], what: str) -> tuple[str, ...]:
    """The given comma-separated class names, or ``Label 1`` .. up to the largest label value."""
    from ..io import open_image

    if classes:
        return tuple(c.strip() for c in classes.split(",") if c.strip())
    highest = 0
    for path in labels:
        top = int(np.asarray(open_image(path).data.max().compute()))
        if top > MAX_LABEL:
            raise CascadeError(
                f"labels {path} hold the value {top}; label values must be 1 to {MAX_LABEL} "
                "(0 = unlabelled; a project stores labels as uint8, as ilastik does)"
            )
        highest = max(highest, top)
    if highest < 1:
        raise CascadeError(f"the {what} contain no labels (all zero)")
    if highest < 2:
        raise CascadeError(
            f"the {what} hold one class only (value 1); label at least two classes "
            "(ilastik cannot train on one)"
        )
    return tuple(f"Label {k}" for k in range(1, highest + 1))


def with_simple_objects(
    spec: TrainingSpec,
    object_labels: list[str],
    inputs: dict[str, list[str]],
    features: str,
    classes: str | None,
    threshold: ThresholdSettings,
) -> TrainingSpec:
    """``spec`` with the object stage of ``cascade train ... --object_labels ...``.

    Parameters
    ----------
    spec : TrainingSpec
        The simple form's spec (pixel stages, or none).
    object_labels : list of str
        Object label images, one per raw image.
    inputs : dict
        Source (``"probabilities"``, ``"segmentation"``, ``"label image"``) -> images, one per
        raw image; at most one source. None given: objects from the last pixel stage.
    features : str
        An object feature set name or a YAML file of a selection.
    classes : str or None
        Comma-separated object class names (None: ``Label 1`` .. up to the largest label).
    threshold : ThresholdSettings
        Thresholding of probabilities (ignored for segmentations and label images).

    Returns
    -------
    TrainingSpec
        The spec with its ``objects`` stage.

    Raises
    ------
    CascadeError
        More than one object source, counts that do not match the raw images, or an invalid
        feature set or class list.
    """
    given = {source: paths for source, paths in inputs.items() if paths}
    if len(given) > 1:
        raise CascadeError("give one object source: --prediction_maps, --segmentation_image or --label_image")
    source, paths = next(iter(given.items()), ("pixel classification", []))
    for what, given_paths in (("object label", object_labels), (source, paths)):
        if given_paths and len(given_paths) != len(spec.images):
            raise CascadeError(
                f"{len(spec.images)} raw image(s) but {len(given_paths)} {what} image(s); give one per image"
            )
    if source == "pixel classification" and not spec.stages:
        raise CascadeError(
            "objects from the pixel stages need --labels; or give --prediction_maps, "
            "--segmentation_image or --label_image"
        )
    names = _class_names(classes, object_labels, "object label images")
    if len(names) < 2:
        raise CascadeError(f"the object stage needs at least two classes, got {', '.join(names) or 'none'}")
    selection = object_features_file(features, Path.cwd())
    object_feature_selection(selection, 2, 1)  # an unknown set name fails now
    objects = ObjectSpec(
        source=source,
        threshold=threshold if source in ("probabilities", "pixel classification") else None,
        features=selection,
        classes=names,
    )
    images = tuple(
        dataclasses.replace(image, object_labels=lab, object_input=paths[i] if paths else None)
        for i, (image, lab) in enumerate(zip(spec.images, object_labels))
    )
    return dataclasses.replace(spec, images=images, objects=objects)


def check_project_target(spec: TrainingSpec, project: str | Path) -> None:
    """Refuse a project path that is a training image, or an existing file that is not a project.

    Parameters
    ----------
    spec : TrainingSpec
        The images and labels the project will be trained on.
    project : str or Path
        The project file to write.

    Raises
    ------
    ProjectError
        If ``project`` resolves to a raw or label image of ``spec``, is a folder, or exists
        and is not a cascade project (it would be replaced).
    """
    path = os.fspath(project)
    reads = [image.raw for image in spec.images]
    reads += [lab for image in spec.images for lab in image.labels if lab]
    reads += [p for image in spec.images for p in (image.object_input, image.object_labels) if p]
    for name in dict.fromkeys(reads):
        external = split_path(str(name))[0]
        if os.path.exists(external) and os.path.exists(path) and os.path.samefile(external, path):
            raise ProjectError(f"the project {path} is the training image {name}; choose another --project")
        if os.path.realpath(external) == os.path.realpath(path):
            raise ProjectError(f"the project {path} is the training image {name}; choose another --project")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ProjectError(f"cannot write project {path}: directory {parent} does not exist")
    if os.path.isdir(path):
        raise ProjectError(f"cannot write project {path}: it is a folder")
    if os.path.lexists(path) and not is_cascade_project(path):
        raise ProjectError(
            f"cannot write project {path}: it exists and is not a cascade project; it is not replaced"
        )


def run_training(spec: TrainingSpec, project: str | Path) -> str:
    """Train and save; returns a one-paragraph summary.

    Parameters
    ----------
    spec : TrainingSpec
        What to train.
    project : str or Path
        The ``.cascade`` file to write.

    Returns
    -------
    str
        The summary printed by ``cascade train``.

    Raises
    ------
    CascadeError
        An input or output problem, named in one line; the project is then not written.
    """
    _check_project_path(Path(project))
    check_project_target(spec, project)
    with output_lock(os.fspath(project)):  # a second run training the same project refuses
        return _train(spec, project)


def _train(spec: TrainingSpec, project: str | Path) -> str:
    start = time.perf_counter()
    provenance = {
        "cascade_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "inputs": [img.raw for img in spec.images],
        "seed": spec.seed,
        "trees": spec.trees,
        "training": spec.training,
        "prior": spec.prior,
    }
    sparse: list[list[SparseLabels | None]] = []
    cascade = None
    if spec.stages:
        images, sparse = load_training_images(spec)
        mode = cast("TrainingMode", spec.training)  # both validated with the spec
        prior = cast("Prior", spec.prior)
        cascade = fit(
            images,
            spec.stages,
            trees=spec.trees,
            seed=spec.seed,
            mode=mode,
            prior=prior,
            provenance=provenance,
        )
    trained = None
    if spec.objects is not None:
        from .objects import train_object_stage

        trained = train_object_stage(spec, cascade, seed=spec.seed + len(spec.stages))
    if cascade is None:
        if trained is None:
            raise CascadeError("the training spec has neither pixel stages nor an object stage")
        cascade = Cascade(
            (), trained.stage.raw_channels, trained.raw_dtype, trained.stage.spatial_axes, provenance
        )
    from ..io import open_image

    last = spec.images[-1]
    cascade = dataclasses.replace(cascade, input_axes=open_image(last.raw, axes=last.input_axes).axes)
    save_cascade(cascade, project, labels=sparse, objects=trained.stage if trained else None)
    counts = [sum(len(e[1]) for e in stage if e is not None) for stage in sparse]
    parts = [f"stage {k + 1}: {n} labelled pixels" for k, n in enumerate(counts)]
    return (
        f"trained {_what(len(cascade.stages), trained is not None)} on "
        f"{len(spec.images)} image(s) ({'; '.join([*parts, *([trained.summary] if trained else [])])}) "
        f"in {time.perf_counter() - start:.1f} s -> {project}"
    )


def _what(stages: int, objects: bool) -> str:
    """``2 stage(s)``, ``1 stage(s) and an object stage`` or ``an object stage``."""
    if not stages:
        return "an object stage"
    return f"{stages} stage(s)" + (" and an object stage" if objects else "")


def _check_project_path(project: Path) -> None:
    """Refuse a project path that cannot be written, before anything is trained."""
    from ..io import check_name

    check_name(str(project))
    if not project.parent.is_dir():
        raise CascadeError(f"cannot write project {project}: directory {project.parent} does not exist")
