"""Train an ilastik project's stages from the labels stored in it, as ilastik does headless.

Used when a project holds no trained forest (or when asked to retrain). The training
images are the project's lanes (files next to the project, or data stored inside it);
the labels are its stored label blocks. Training uses ilastik's in-sample mode, so the
result follows ilastik's recipe; it cannot reproduce ilastik's own unseeded vigra forests.
"""

from __future__ import annotations

import dataclasses

import dask.array as da
import numpy as np

from ..axes import fitting_axes, to_internal
from ..errors import ProjectError
from ..pipeline import Cascade
from ..project import IlpLane, IlpProject, LabelBlock, cascade_from_ilp, read_lane_data
from .fitting import TrainingImage, fit

__all__ = ["ilp_training_images", "retrain_ilp"]


def _lane_data(project: IlpProject, lane: IlpLane) -> tuple[np.ndarray | da.Array, str]:
    if lane.axes is None:
        raise ProjectError(f"{project.path}: lane {lane.index} records no axes")
    if lane.location == "ProjectInternal":
        return read_lane_data(project, lane.index), lane.axes
    if not lane.exists or lane.resolved_path is None:
        raise ProjectError(
            f"{project.path}: training image {lane.file_path!r} not found (needed to train the project)"
        )
    from ..io import open_image

    path = lane.resolved_path + (lane.internal_path or "")
    image = open_image(path)
    axes = fitting_axes(lane.axes, image.ndim) or image.axes
    return open_image(path, axes=axes).data, axes


def _place(dense: np.ndarray, internal: str, block: LabelBlock) -> None:
    """Write one stored label block into a dense label image in internal axes (without c)."""
    keys = [k for k in internal if k != "c"]
    index, data = [], block.data
    order = []
    for k in keys:
        if k not in block.axes:
            raise ProjectError(f"a label block with axes {block.axes!r} lacks axis {k!r}")
        order.append(block.axes.index(k))
        index.append(block.slices[block.axes.index(k)])
    # drop the block's axes that the lane does not have (singletons, c)
    drop = tuple(i for i, k in enumerate(block.axes) if k not in keys)
    data = data.transpose(order + list(drop)).reshape([data.shape[i] for i in order])
    target = dense[tuple(index)]
    np.copyto(target, data, where=data > 0)


def ilp_training_images(project: IlpProject) -> list[TrainingImage]:
    """One :class:`TrainingImage` per lane that holds labels in any stage.

    Parameters
    ----------
    project : IlpProject
        The project with its lanes and stored labels.

    Returns
    -------
    list of TrainingImage
        The images with dense labels per stage (None where a stage has none).

    Raises
    ------
    ProjectError
        A lane whose data cannot be found or read.
    """
    images = []
    for lane in project.lanes:
        blocks = [
            stage.label_blocks[lane.index] if lane.index < len(stage.label_blocks) else ()
            for stage in project.stages
        ]
        if not any(blocks):
            continue
        data, axes = _lane_data(project, lane)
        raw, internal = to_internal(data, axes)
        labels: list[np.ndarray | None] = []
        for stage_blocks in blocks:
            if not stage_blocks:
                labels.append(None)
                continue
            dense = np.zeros(raw.shape[:-1], np.uint8)
            for block in stage_blocks:
                _place(dense, internal, block)
            labels.append(dense)
        images.append(TrainingImage(raw=raw, axes=internal, labels=tuple(labels)))
    if not images:
        raise ProjectError(f"{project.path}: the project stores no labels to train from")
    return images


def retrain_ilp(project: IlpProject, *, trees: int = 100, seed: int = 0) -> Cascade:
    """Train every stage of an ilastik project from its stored labels (in-sample, like ilastik).

    Parameters
    ----------
    project : IlpProject
        The project.
    trees : int
        Trees per stage (ilastik's ``--tree-count``).
    seed : int
        Seed of the forests.

    Returns
    -------
    Cascade
        The trained stages.

    Raises
    ------
    ProjectError
        A project without labels, or lanes that cannot be read.
    """
    template = cascade_from_ilp(project)
    stages = [dataclasses.replace(stage, forest=None) for stage in template.stages]
    images = ilp_training_images(project)
    trained = fit(  # ilastik's way: in-sample, and the forest's own class shares
        images,
        stages,
        trees=trees,
        seed=seed,
        mode="in-sample",
        prior="labels",
        provenance=dict(template.provenance),
    )
    return dataclasses.replace(trained, provenance={**template.provenance, "retrained": True})
