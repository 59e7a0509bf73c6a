"""A human-readable summary of an ilastik project, as ``cascade info`` prints it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._ilp_lanes import IlpLane

if TYPE_CHECKING:
    from ._ilp_objects import IlpObjectProject
    from .ilp import IlpProject, IlpStage

__all__ = ["describe_ilp", "describe_object_ilp"]

_W = 10  # width of the left column


def describe_ilp(project: IlpProject) -> str:
    """Summarise ``project`` in a few aligned lines (no trailing newline).

    Lists the workflow and ilastik version, each stage's classes, labels per class, selected
    features (feature x scales, 2D flags), feature channel count and forest, the training
    lanes with whether their data was found, and the project's issues.

    Parameters
    ----------
    project : IlpProject
        The project, as :func:`read_ilp` read it.

    Returns
    -------
    str
        The summary.
    """
    n = len(project.stages)
    lines = [
        _row("project", str(project.path)),
        _row("workflow", f"{project.workflow} ({n} stage{'s' if n > 1 else ''})"),
        _row("ilastik", project.ilastik_version + (f", saved {project.saved}" if project.saved else "")),
    ]
    for stage in project.stages:
        lines.append(f"stage {stage.index + 1}")
        lines.extend("  " + line for line in _stage_lines(project, stage))
    lines.append(_row("lanes", str(len(project.lanes)) if project.lanes else "none"))
    lines.extend("  " + _lane_line(lane) for lane in project.lanes)
    if project.export:
        settings = ", ".join(f"{k}={v}" for k, v in project.export.items())
        lines.append(_row("export", settings))
    if project.issues:
        lines.append("issues")
        lines.extend(f"  - {issue}" for issue in project.issues)
    return "\n".join(lines)


def _row(key: str, value: str, indent: int = 0) -> str:
    return f"{key:<{_W - indent}} {value}"


def _stage_lines(project: IlpProject, stage: IlpStage) -> list[str]:
    w = 2
    names = ", ".join(stage.label_names) or "none"
    counts = stage.label_counts()
    n_blocks = sum(len(b) for b in stage.label_blocks)
    labelled = ", ".join(f"{name}: {int(c)}" for name, c in zip(stage.label_names, counts, strict=True))
    lines = [
        _row("classes", f"{stage.n_classes}: {names}", w),
        _row("labels", f"{labelled or 'none'} px in {n_blocks} block(s)", w),
    ]
    lines.extend(_feature_lines(project, stage))
    if stage.forest is None:
        lines.append(_row("forest", "none stored (train from the labels)", w))
    else:
        known = ", ".join(str(v) for v in stage.known_labels or ())
        lines.append(
            _row(
                "forest",
                f"{stage.forest.n_trees} trees, {stage.forest.n_features} features, labels {known}",
                w,
            )
        )
    return lines


def _feature_lines(project: IlpProject, stage: IlpStage) -> list[str]:
    w = 2
    z = project.z_size()
    selection = stage.selection_for(z)
    if selection is None:
        return [_row("features", "none usable", w)]
    pad = " " * (_W - w + 1)
    rows = [
        f"{pad}{fid:<29} " + " ".join(str(selection.scales[j]) for j, on in enumerate(row) if on)
        for fid, row in zip(selection.feature_ids, selection.matrix, strict=True)
        if any(row)
    ]
    flags = [s for s, flag in zip(selection.scales, selection.compute_in_2d, strict=True) if flag]
    in_2d = "all" if len(flags) == len(selection.scales) else (", ".join(map(str, flags)) or "none")
    if not stage.compute_in_2d_stored:
        in_2d += " (not stored; ilastik's default)"
    n_in = project.input_channels(stage.index)
    z_arg = z if z is not None and z > 1 else None
    channels = "? channels" if n_in is None else f"{selection.n_channels(n_in, z_arg)} channels"
    head = (
        f"{len(selection.selected())} feature x scale pairs -> {channels} for {n_in or '?'} input channel(s)"
    )
    return [_row("features", head, w), *rows, f"{pad}scales in 2D: {in_2d}"]


def _lane_line(lane: IlpLane) -> str:
    where = (
        "project-internal" if lane.location == "ProjectInternal" else (lane.resolved_path or lane.file_path)
    )
    if lane.internal_path:
        where += f" {lane.internal_path}"
    shape = "x".join(map(str, lane.shape)) if lane.shape is not None else "?"
    found = "found" if lane.exists else "NOT FOUND"
    dtype = f" {lane.dtype}" if lane.dtype else ""
    return (
        f"lane {lane.index}  {lane.nickname}: {where}  axes {lane.axes or '?'} shape {shape}{dtype}  {found}"
    )


def describe_object_ilp(project: IlpObjectProject) -> str:
    """Summarise an Object Classification project in a few lines, as ``cascade info`` prints it.

    Parameters
    ----------
    project : IlpObjectProject
        The project (:func:`read_object_ilp`).

    Returns
    -------
    str
        The summary (no trailing newline).
    """
    stage = project.stage
    role = project.second_role or "none (pixel classification stage inside)"
    n_features = sum(len(f) for f in stage.features.values())
    labelled = sum(int(np.count_nonzero(y)) for lane in project.labels for y in lane)
    forest = stage.forest
    rows = [
        ("project", str(project.path)),
        ("workflow", f"{project.workflow} (ilastik {project.ilastik_version})"),
        ("inputs", f"Raw Data ({stage.raw_channels} channel(s), {stage.spatial_axes}); {role}"),
        ("threshold", stage.threshold.describe() if stage.threshold is not None else "none"),
        (
            "features",
            f"{n_features} in {', '.join(sorted(stage.features))}" if n_features else "none selected",
        ),
        ("classes", ", ".join(stage.class_names) or "none"),
        ("labels", f"{labelled} labelled object(s)"),
        ("forest", f"{forest.n_trees} trees, {forest.n_features} features" if forest else "none stored"),
        ("table", "configured" if stage.table_settings else "not configured (--table_filename writes one)"),
        ("blockwise", f"block {stage.block_shape}, halo {stage.halo} (x, y, z)"),
    ]
    lines = [f"{key:<10} {value}" for key, value in rows]
    if project.pixels is not None:
        lines.append(
            f"{'pixels':<10} Pixel Classification stage, {project.pixels.stages[0].n_classes} classes"
        )
    return "\n".join(lines)
