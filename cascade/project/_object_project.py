"""An Object Classification project ready to run: its object stage (trained), and the pixel stage of PC+OC.

:func:`open_object_project` is the object counterpart of :func:`cascade.project.open_project`: it
reads an OC ``.ilp`` (:func:`read_object_ilp`), converts the PC+OC workflow's pixel part into a
:class:`~cascade.pipeline.Cascade`, and trains what must be trained (``--retrain``, or a stored
forest missing while object labels exist) with cascade's own forest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ObjectsError, ProjectError
from ..objects import ObjectStage, feature_matrix, train_object_forest
from ..pipeline import Cascade
from ._ilp_object_cache import stored_region_features
from ._ilp_objects import OBJECT_WORKFLOWS, IlpObjectProject, ilp_workflow, read_object_ilp
from .convert import cascade_from_ilp

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
    """Whether ``path`` is an ilastik ``.ilp`` of one of the four Object Classification workflows.

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
    if path.suffix.lower() != ".ilp" or not path.is_file():
        return False
    name = ilp_workflow(path)
    return name is not None and name.strip().lower() in OBJECT_WORKFLOWS


def open_object_project(path: str | Path, *, retrain: bool = False, trees: int = 100) -> ObjectProject:
    """Open an ilastik Object Classification project for a headless run.

    The object forest is trained with cascade's forest from the stored object labels when
    ``retrain`` is given, or when the project stores labels but no forest; a project with neither
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
    project = read_object_ilp(path)
    stage = project.stage
    if retrain or (stage.forest is None and project.has_labels):
        stage = _retrained(project, trees)
    pixels = None
    if project.pixels is not None:
        pixel_project = project.pixels
        if retrain or any(s.forest is None for s in pixel_project.stages):
            from ..training import retrain_ilp  # training sits above projects: only a retrain needs it

            pixels = retrain_ilp(pixel_project, trees=trees)
        else:
            pixels = cascade_from_ilp(pixel_project)
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


def _retrained(project: IlpObjectProject, trees: int) -> ObjectStage:
    """The object stage trained on its labelled objects, with the object features ilastik stored."""
    stage = project.stage
    if not stage.class_names:
        raise ProjectError(f"{project.path}: the project defines no object classes to train")
    matrices, labels = [], []
    for lane, per_t in enumerate(project.labels):
        labelled = [t for t, y in enumerate(per_t) if np.any(y > 0)]
        if not labelled:
            continue
        stored = stored_region_features(project.path, lane)
        missing = [t for t in labelled if t not in stored]
        if missing:
            raise ProjectError(
                f"{project.path}: cannot retrain: the project stores no object features for lane {lane} "
                f"time point(s) {missing}, where objects are labelled"
            )
        matrices += feature_matrix([stored[t] for t in labelled], stage.features)
        labels += [per_t[t] for t in labelled]
    try:
        forest = train_object_forest(matrices, labels, stage.n_classes, n_trees=trees)
    except ObjectsError as err:
        raise ProjectError(f"{project.path}: {err}") from err
    return dataclasses.replace(stage, forest=forest)
