"""An Object Classification project ready to run: its object stage (trained), and the pixel stage of PC+OC.

:func:`open_object_project` is the object counterpart of :func:`cascade.project.open_project`: it
reads an OC ``.ilp`` (:func:`read_object_ilp`), converts the PC+OC workflow's pixel part into a
:class:`~cascade.pipeline.Cascade`, and trains what must be trained (``--retrain``, or a stored
forest missing while object labels exist) with cascade's own forest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from ..axes import to_internal
from ..errors import ObjectsError, ProjectError
from ..io import open_image
from ..objects import (
    FeatureTable,
    ObjectStage,
    feature_matrix,
    find_objects,
    object_features,
    train_object_forest,
)
from ..pipeline import Cascade, predict
from ._ilp_lanes import IlpLane
from ._ilp_object_cache import stored_region_features
from ._ilp_objects import OBJECT_WORKFLOWS, SECOND_ROLE, IlpObjectProject, ilp_workflow, read_object_ilp
from .convert import cascade_from_ilp
from .native import has_object_stage, load_cascade, load_object_stage

__all__ = ["ObjectProject", "is_object_project", "open_object_project"]


@dataclass(frozen=True, eq=False)
class ObjectProject:
    """An object classification project, opened for a headless run.

    Attributes
    ----------
    path : Path
        The project file.
    workflow : str
        ilastik's ``workflowName``.
    stage : ObjectStage
        The object stage; its forest is None only when the project has neither a forest nor labels.
    pixels : Cascade or None
        The pixel classification stage of the PC+OC workflow (None for the other three).
    second_role : str or None
        ilastik's name of the second input (``"Prediction Maps"``, ``"Segmentation Image"``,
        ``"Label Image"``); None for PC+OC.
    raw_axes, second_axes : str or None
        Axes of the training lane's raw data and second input (used for batch files without axes).
    export_settings : dict
        ``Object Information Export`` settings, as :attr:`cascade.pipeline.Cascade.export_settings`.
    labels : tuple
        ``LabelInputs``: per lane, per time point, class per object id.
    provenance : dict
        Where the project came from.
    """

    path: Path
    workflow: str
    stage: ObjectStage
    pixels: Cascade | None
    second_role: str | None
    raw_axes: str | None
    second_axes: str | None
    export_settings: dict[str, Any]
    labels: tuple[tuple[np.ndarray, ...], ...] = ()
    provenance: dict[str, str] = field(default_factory=dict)


def is_object_project(path: str | Path) -> bool:
    """Whether ``path`` is an Object Classification project: an ilastik ``.ilp`` of one of the four
    workflows, or a ``.cascade`` project with an object stage (``cascade train``).

    Parameters
    ----------
    path : str or Path
        The project file.

    Returns
    -------
    bool
        True for an OC project.
    """
    path = Path(path)
    if path.suffix.lower() != ".ilp":
        return has_object_stage(path)
    if not path.is_file():
        return False
    name = ilp_workflow(path)
    return name is not None and name.strip().lower() in OBJECT_WORKFLOWS


def open_object_project(path: str | Path, *, retrain: bool = False, trees: int = 100) -> ObjectProject:
    """Open an ilastik Object Classification project (or a ``.cascade`` one) for a headless run.

    The object forest is trained with cascade's forest from the stored object labels when
    ``retrain`` is given, or when the project stores labels but no forest (on the object features
    ilastik stored for them, else on features computed from the training images); a project with neither
    keeps no forest (only exports that need no classifier can run). The PC+OC workflow's pixel
    stage is trained likewise (:func:`cascade.training.retrain_ilp`).

    Parameters
    ----------
    path : str or Path
        The ``.ilp`` file.
    retrain : bool
        Train the forests from the stored labels even when the project stores forests.
    trees : int
        Trees of each trained forest (ilastik: 100).

    Returns
    -------
    ObjectProject
        The project.

    Raises
    ------
    ProjectError
        A project that cannot be read, or labels that cannot be trained on.
    """
    if Path(path).suffix.lower() != ".ilp" and has_object_stage(path):
        return _cascade_objects(Path(path), retrain)
    project = read_object_ilp(path)
    pixels = None
    if project.pixels is not None:
        pixel_project = project.pixels
        if retrain or any(s.forest is None for s in pixel_project.stages):
            from ..training import retrain_ilp  # training sits above projects: only a retrain needs it

            pixels = retrain_ilp(pixel_project, trees=trees)
        else:
            pixels = cascade_from_ilp(pixel_project)
    stage = project.stage
    if retrain or (stage.forest is None and project.has_labels):
        stage = _retrained(project, trees, pixels)
    return ObjectProject(
        path=project.path,
        workflow=project.workflow,
        stage=stage,
        pixels=pixels,
        second_role=project.second_role,
        raw_axes=next((lane.axes for lane in project.lanes if lane.axes), None),
        second_axes=next((lane.axes for lane in project.second_lanes if lane.axes), None),
        export_settings=dict(project.export),
        labels=project.labels,
        provenance={
            "source": str(project.path),
            "workflow": project.workflow,
            "ilastik_version": project.ilastik_version,
        },
    )


def _lane_image(lane: IlpLane, project: IlpObjectProject) -> tuple[da.Array, str]:
    """A training lane's image, lazily, in internal axis order."""
    if not lane.exists or lane.resolved_path is None:
        raise ProjectError(
            f"{project.path}: cannot retrain: training image {lane.file_path!r} of lane {lane.index} "
            "is not found"
        )
    image = open_image(lane.resolved_path + (lane.internal_path or ""), file_axes=lane.axes)
    data, axes = to_internal(image.data, image.axes)
    return data, axes


def _lane_features(project: IlpObjectProject, lane: int, pixels: Cascade | None) -> list[FeatureTable]:
    """Object features of a training lane, computed by cascade (when ilastik stored none)."""
    raw, axes = _lane_image(project.lanes[lane], project)
    if pixels is not None:
        source = predict(pixels, raw, axes=axes)[-1].probabilities
    elif lane < len(project.second_lanes):
        source, _ = _lane_image(project.second_lanes[lane], project)
    else:
        raise ProjectError(f"{project.path}: cannot retrain: lane {lane} has no {project.second_role}")
    objects = find_objects(source, axes, source=project.stage.source, threshold=project.stage.threshold)
    return object_features(raw, axes, objects, project.stage.features)


def _retrained(project: IlpObjectProject, trees: int, pixels: Cascade | None) -> ObjectStage:
    """The object stage trained on its labelled objects: with the object features ilastik stored for
    them, or else the features cascade computes on the training images."""
    stage = project.stage
    if not stage.class_names:
        raise ProjectError(f"{project.path}: the project defines no object classes to train")
    matrices, labels = [], []
    for lane, per_t in enumerate(project.labels):
        labelled = [t for t, y in enumerate(per_t) if np.any(y > 0)]
        if not labelled:
            continue
        tables: Mapping[int, FeatureTable] = stored_region_features(project.path, lane)
        if any(t not in tables for t in labelled):
            tables = dict(enumerate(_lane_features(project, lane, pixels)))
        matrices += feature_matrix([tables[t] for t in labelled], stage.features)
        labels += [per_t[t] for t in labelled]
    try:
        forest = train_object_forest(matrices, labels, stage.n_classes, n_trees=trees)
    except ObjectsError as err:
        raise ProjectError(f"{project.path}: {err}") from err
    return dataclasses.replace(stage, forest=forest)


def _cascade_objects(path: Path, retrain: bool) -> ObjectProject:
    """The object stage of a ``.cascade`` project (``cascade train``) and, for PC+OC, its pixel stages."""
    if retrain:
        raise ProjectError(
            f"{path}: --retrain retrains an ilastik project from its stored labels; a .cascade "
            "project is retrained with cascade train"
        )
    stage = load_object_stage(path)
    if stage is None:
        raise ProjectError(f"{path}: the project holds no object stage")
    cascade = load_cascade(path, allow_no_stages=True)
    workflow = next(name for name, source in OBJECT_WORKFLOWS.items() if source == stage.source)
    return ObjectProject(
        path=path,
        workflow=workflow.replace("object classification", "Object Classification"),
        stage=stage,
        pixels=cascade if stage.source == "pixel classification" else None,
        second_role=SECOND_ROLE[stage.source],
        raw_axes=cascade.input_axes,
        second_axes=None,
        export_settings=dict(cascade.export_settings),
        provenance={str(k): str(v) for k, v in cascade.provenance.items()},
    )
