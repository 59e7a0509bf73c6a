"""``cascade info`` for a ``.cascade`` project: its pixel stages, object stage, labels and forests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..forest import PackedForest
from ..objects import ObjectStage
from ..pipeline import Cascade
from .native import read_labels

__all__ = ["describe_cascade"]


def describe_cascade(
    cascade: Cascade, path: str | Path | None = None, *, objects: ObjectStage | None = None
) -> str:
    """A human-readable summary of a cascade project for ``cascade info``.

    Parameters
    ----------
    cascade : Cascade
        The project's cascade (its ``stages`` may be empty when ``objects`` is given).
    path : str or Path, optional
        The file, named in the summary.
    objects : ObjectStage, optional
        The project's object stage (:func:`load_object_stage`).

    Returns
    -------
    str
        Several lines: stages, classes, features, forests.
    """
    lines = []
    if path is not None:
        lines.append(f"project: {path}")
    n = len(cascade.stages)
    workflow = "Pixel Classification" if n == 1 else f"Autocontext ({n} stages)"
    if objects is not None:
        workflow = f"Object Classification (from {objects.source})" + (f" after {workflow}" if n else "")
    lines.append(f"workflow: {workflow}")
    lines.append(
        f"raw data: {cascade.raw_channels} channel(s), {cascade.raw_dtype}, "
        f"spatial axes {cascade.spatial_axes}"
    )
    z = 2 if cascade.spatial_axes == "zyx" else None
    labels = read_labels(path) if path is not None and Path(path).suffix != ".ilp" else []
    for k, stage in enumerate(cascade.stages):
        sel = stage.selection
        lines.append(f"stage {k + 1}: classes {', '.join(stage.class_names)}")
        for fid, row in zip(sel.feature_ids, sel.matrix):
            scales = [
                f"{s}{' (2D)' if sel.compute_in_2d[j] else ''}"
                for j, (s, on) in enumerate(zip(sel.scales, row))
                if on
            ]
            if scales:
                lines.append(f"  {fid}: {', '.join(scales)}")
        lines.append(f"  feature channels: {sel.n_channels(cascade.input_channels(k), 64 if z else None)}")
        if k < len(labels) and labels[k]:
            counts = np.zeros(stage.n_classes, np.int64)
            for _, values, _, _ in labels[k]:
                counts += np.bincount(values, minlength=stage.n_classes + 1)[1 : stage.n_classes + 1]
            lines.append("  labels: " + ", ".join(f"{c}={int(v)}" for c, v in zip(stage.class_names, counts)))
        if stage.forest is None:
            lines.append("  forest: not trained")
        else:
            lines.append(_forest_line(stage.forest))
        if stage.class_weights is not None:
            weights = ", ".join(f"{c}={w:.3g}" for c, w in zip(stage.class_names, stage.class_weights))
            lines.append(f"  class weights (images' share / labels' share): {weights}")
    if objects is not None:
        lines += _object_lines(objects)
    for key, value in sorted(cascade.provenance.items()):
        lines.append(f"{key}: {value}")
    return "\n".join(lines)


def _forest_line(forest: PackedForest) -> str:
    """A stage's trained forest in one line."""
    return f"  forest: {forest.n_trees} trees, {forest.n_features} features, {forest.feature.shape[0]} nodes"


def _object_lines(stage: ObjectStage) -> list[str]:
    """The object stage's lines of :func:`describe_cascade`."""
    lines = [f"object stage: classes {', '.join(stage.class_names)}"]
    if stage.threshold is not None:
        lines.append(f"  threshold: {stage.threshold.describe()}")
    for plugin in sorted(stage.features):
        lines.append(f"  {plugin}: {', '.join(sorted(stage.features[plugin]))}")
    if stage.forest is None:
        lines.append("  forest: not trained")
    else:
        lines.append(_forest_line(stage.forest))
    return lines
