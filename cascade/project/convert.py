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

__all__ = ["cascade_from_ilp", "open_project"]


def _training_geometry(project: IlpProject) -> tuple[str, str, int]:
    """(spatial axes, raw dtype or "unknown", raw channels) of the project's training data.

    The dtype is what the project records; the training image is not opened for it, since it
    is informative only (the next stage's input is converted to the dtype of the image being
    predicted, as in ilastik).
    """
    for lane in project.lanes:
        if lane.axes is None or lane.shape is None:
            continue
        z = lane.size("z")
        spatial = "zyx" if z is not None and z > 1 else "yx"
        return spatial, lane.dtype or "unknown", lane.size("c") or 1
    raise ProjectError(
        f"{project.path}: the project records no training image shape, so its input cannot be checked"
    )


def cascade_from_ilp(project: IlpProject) -> Cascade:
    """Convert a read ilastik project into a cascade (stages with or without forests).

    Parameters
    ----------
    project : IlpProject
        The project, as :func:`read_ilp` read it.

    Returns
    -------
    Cascade
        One stage per ilastik stage, with its forest if the project stores one.

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
        export_settings=dict(project.export),
        input_axes=next((lane.axes for lane in reversed(project.lanes) if lane.axes), None),
        provenance={
            "source": str(project.path),
            "workflow": project.workflow,
            "ilastik_version": project.ilastik_version,
        },
    )


def open_project(path: str | Path, *, retrain: bool = False, trees: int = 100) -> Cascade:
    """Open a ``.cascade`` or ``.ilp`` project as a :class:`Cascade`.

    ``.ilp`` files are recognised by their extension; anything else is read as a cascade
    project. An ilastik project without stored forests (or with ``retrain=True``) is trained
    from its stored labels and training images first, as ilastik's headless mode does.

    Parameters
    ----------
    path : str or Path
        The project file.
    retrain : bool
        Train an ``.ilp`` project's forests from its labels even when it stores forests.
    trees : int
        Trees per stage when an ``.ilp`` project is trained (ilastik's ``--tree-count``, 100).

    Returns
    -------
    Cascade
        The stages with their forests.

    Raises
    ------
    ProjectError
        A project that cannot be read or run, or ``retrain`` of a cascade project.
    """
    path = Path(path)
    if path.suffix.lower() == ".ilp":
        project = read_ilp(path)
        if retrain or any(stage.forest is None for stage in project.stages):
            from ..training import retrain_ilp  # training sits above projects: only a retrain needs it

            return retrain_ilp(project, trees=trees)
        return cascade_from_ilp(project)
    if retrain:
        raise ProjectError(
            f"{path}: --retrain and --tree-count apply to ilastik projects; "
            "retrain cascade projects with cascade train"
        )
    from .native import load_cascade  # imported here: an .ilp run has no use for it

    return load_cascade(path)
