"""One door for every project kind: ``.cascade`` files and ilastik ``.ilp`` projects.

An ilastik project becomes a :class:`~cascade.pipeline.Cascade` whose stages carry the
project's feature selections, class names and stored vigra forests (converted to
:class:`~cascade.forest.PackedForest`), so both kinds run through the same engine.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ProjectError
from ..pipeline import Cascade, Stage
from .ilp import IlpProject, read_ilp
from .native import load_cascade

__all__ = ["cascade_from_ilp", "open_project"]


def _training_geometry(project: IlpProject) -> tuple[str, str, int]:
    """(spatial axes, raw dtype, raw channels) of the project's training data."""
    for lane in project.lanes:
        if lane.axes is None or lane.shape is None or lane.dtype is None:
            continue
        z = lane.size("z")
        spatial = "zyx" if z is not None and z > 1 else "yx"
        return spatial, lane.dtype, lane.size("c") or 1
    raise ProjectError(
        f"{project.path}: the project records no training image shape, so its input cannot be checked"
    )


def cascade_from_ilp(project: IlpProject) -> Cascade:
    """Convert a read ilastik project into a cascade (stages with or without forests).

    Raises
    ------
    ProjectError
        If a stage has no usable feature selection or the training geometry is unknown.
    """
    spatial, dtype, channels = _training_geometry(project)
    z_size = project.z_size() if spatial == "zyx" else None
    stages = []
    for k, stage in enumerate(project.stages):
        selection = stage.selection_for(z_size)
        if selection is None:
            raise ProjectError(f"{project.path}: stage {k + 1} stores no usable feature selection")
        if not stage.label_names:
            raise ProjectError(f"{project.path}: stage {k + 1} defines no classes")
        stages.append(Stage(selection=selection, class_names=stage.label_names, forest=stage.forest))
    return Cascade(
        stages=tuple(stages),
        raw_channels=channels,
        raw_dtype=dtype,
        spatial_axes=spatial,
        provenance={
            "source": str(project.path),
            "workflow": project.workflow,
            "ilastik_version": project.ilastik_version,
        },
    )


def open_project(path: str | Path) -> Cascade:
    """Open a ``.cascade`` or ``.ilp`` project as a :class:`Cascade`.

    ``.ilp`` files are recognised by their extension; anything else is read as a cascade
    project. Forests absent from an ``.ilp`` stay None (train them with :mod:`cascade.retrain`).
    """
    path = Path(path)
    if path.suffix.lower() == ".ilp":
        return cascade_from_ilp(read_ilp(path))
    return load_cascade(path)
