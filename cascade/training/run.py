"""Run a training spec end to end: open images, fit, save the project."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import CascadeError, ProjectError
from ..io import output_lock, split_path
from ..pipeline import Stage
from ..project import MAX_LABEL, is_cascade_project, save_cascade
from .fitting import fit
from .spec import ImageSpec, TrainingSpec, _selection, load_training_images

__all__ = ["check_project_target", "run_training", "simple_spec"]


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
) -> TrainingSpec:
    """The spec of ``cascade train --raw_data ... --labels ...``: same labels for every stage.

    Parameters
    ----------
    raw_data : list of str
        Raw images.
    labels : list of str
        Label images, one per raw image.
    stages : int
        Stage count.
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

    Returns
    -------
    TrainingSpec
        The checked spec.

    Raises
    ------
    CascadeError
        A label value out of range, an unreadable image or an invalid option.
    """
    if len(raw_data) != len(labels):
        raise CascadeError(
            f"{len(raw_data)} raw image(s) but {len(labels)} label image(s); give one per image"
        )
    from ..io import open_image

    if classes:
        names = tuple(c.strip() for c in classes.split(",") if c.strip())
    else:
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
            raise CascadeError("the label images contain no labels (all zero)")
        if highest < 2:
            raise CascadeError(
                "the label images hold one class only (value 1); label at least two classes "
                "(ilastik cannot train on one)"
            )
        names = tuple(f"Label {k}" for k in range(1, highest + 1))
    selection = _selection(features, Path.cwd())
    return TrainingSpec(
        images=tuple(ImageSpec(r, input_axes, (lab,) * stages) for r, lab in zip(raw_data, labels)),
        stages=tuple(Stage(selection, names) for _ in range(stages)),
        trees=trees,
        seed=seed,
        training=training,
    )


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
    images, sparse = load_training_images(spec)
    cascade = fit(
        images,
        spec.stages,
        trees=spec.trees,
        seed=spec.seed,
        mode=spec.training,  # type: ignore[arg-type]
        provenance={
            "cascade_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "inputs": [img.raw for img in spec.images],
            "seed": spec.seed,
            "trees": spec.trees,
            "training": spec.training,
        },
    )
    from ..io import open_image

    last = spec.images[-1]
    cascade = dataclasses.replace(cascade, input_axes=open_image(last.raw, axes=last.input_axes).axes)
    save_cascade(cascade, project, labels=sparse)
    counts = [sum(len(e[1]) for e in stage if e is not None) for stage in sparse]
    return (
        f"trained {len(cascade.stages)} stage(s) on {len(images)} image(s) "
        f"({', '.join(f'stage {k + 1}: {n} labelled pixels' for k, n in enumerate(counts))}) "
        f"in {time.perf_counter() - start:.1f} s -> {project}"
    )


def _check_project_path(project: Path) -> None:
    """Refuse a project path that cannot be written, before anything is trained."""
    from ..io import check_name

    check_name(str(project))
    if not project.parent.is_dir():
        raise CascadeError(f"cannot write project {project}: directory {project.parent} does not exist")
