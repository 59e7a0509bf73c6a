"""ilastik's "Blockwise Object Classification": independent blocks with a halo -- an approximation.

``OpBlockwiseObjectClassification`` (``reference/ilastik-objects.md`` section 6) cuts the image
into blocks (default 512 per axis) and classifies each block on its own: the block plus a halo
(default 64 per side, clipped at the image border) gets its own connected components (of the
whole image's thresholded labels, or of the segmentation, or its own relabelling of the label
image), its own object features and predictions, and only the block's part is kept. Objects
crossing block borders are therefore classified once per block, from the part inside that
block's halo window, and may get different classes in different blocks; histogram ranges are
per block. This is what ilastik's "Blockwise Object Predictions/Probabilities" export; the
whole-image sources ("Object Predictions"...) are exact and also blockwise in cascade.

Each block is one dask task (``map_overlap`` with ``boundary="none"``): memory is bounded by
the block and its halo.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import dask.array as da
import numpy as np

from ..errors import ObjectsError
from .classify import object_predictions, object_probabilities, paint
from .features import object_features
from .model import ObjectStage
from .pipeline import find_objects
from .threshold import threshold_labels

__all__ = ["blockwise_image"]


def _block_chunks(shape: tuple[int, ...], axes: str, block: dict[str, int]) -> tuple[tuple[int, ...], ...]:
    out = []
    for key, size in zip(axes, shape, strict=True):
        step = size if key == "c" else 1 if key == "t" else max(1, min(block[key], size))
        out.append(tuple(min(step, size - s) for s in range(0, size, step)))
    return tuple(out)


def _depth(axes: str, chunks: tuple[tuple[int, ...], ...], halo: dict[str, int]) -> dict[int, int]:
    """The halo per axis: ilastik's, capped at the axis's smallest block (dask's overlap needs that)."""
    return {
        i: min(halo[key], min(sizes)) if key in "zyx" and len(sizes) > 1 else 0
        for i, (key, sizes) in enumerate(zip(axes, chunks, strict=True))
    }


def _segmentation(stage: ObjectStage, source: da.Array, axes: str) -> tuple[da.Array, ObjectStage]:
    """The whole image's segmentation the blocks label, and the stage that labels a crop of it."""
    if stage.threshold is None:
        return source[..., :1], stage
    labels = threshold_labels(source, axes, stage.threshold)[..., None]
    return labels, dataclasses.replace(stage, source="segmentation", threshold=None)


def _classify_crop(stage: ObjectStage, raw: np.ndarray, seg: np.ndarray, axes: str, name: str) -> np.ndarray:
    """One halo window classified on its own (numpy in, numpy out)."""
    objects = find_objects(
        da.from_array(seg, chunks=-1), axes, source=stage.source, threshold=stage.threshold
    )
    tables = object_features(da.from_array(raw, chunks=-1), axes, objects, stage.features)
    probabilities = object_probabilities(stage, tables)
    luts = object_predictions(probabilities) if name.endswith("Predictions") else probabilities
    painted: np.ndarray = paint(objects.labels, objects.axes, luts).compute(scheduler="synchronous")
    return painted


def blockwise_image(stage: ObjectStage, raw: da.Array, source: da.Array, axes: str, name: str) -> da.Array:
    """ilastik's blockwise object predictions or probabilities of one input.

    Parameters
    ----------
    stage : ObjectStage
        A trained object stage (its ``block_shape`` and ``halo``, x, y, z).
    raw : dask.array.Array
        The raw image, internal axes with ``c``.
    source : dask.array.Array
        What the objects come from (probabilities, segmentation or label image), same axes.
    axes : str
        The axes of both.
    name : str
        ``"Blockwise Object Predictions"`` (uint8, 1 channel) or ``"Blockwise Object
        Probabilities"`` (float32, K channels).

    Returns
    -------
    dask.array.Array
        The image, axes ``axes``, chunked in ilastik's blocks.

    Raises
    ------
    ObjectsError
        An untrained stage or an unknown name.
    """
    if stage.forest is None:
        raise ObjectsError(f"{name} need a trained object classifier, and the project has none")
    if name not in ("Blockwise Object Predictions", "Blockwise Object Probabilities"):
        raise ObjectsError(f"unknown blockwise export {name!r}")
    block = dict(zip("xyz", stage.block_shape, strict=True))
    halo = dict(zip("xyz", stage.halo, strict=True))
    seg, crop_stage = _segmentation(stage, source, axes)
    chunks = _block_chunks(raw.shape, axes, block)
    raw = raw.rechunk(chunks)
    seg = seg.rechunk(chunks[:-1] + ((1,),))
    depth = _depth(axes, chunks, halo)
    channels = stage.n_classes if name.endswith("Probabilities") else 1
    dtype = np.float32 if channels > 1 or name.endswith("Probabilities") else np.uint8

    def run(
        raw_block: np.ndarray, seg_block: np.ndarray, block_info: dict[Any, Any] | None = None
    ) -> np.ndarray:
        location = block_info[None]["chunk-location"] if block_info else (0,) * len(axes)
        counts = block_info[None]["num-chunks"] if block_info else (1,) * len(axes)
        painted = _classify_crop(crop_stage, raw_block, seg_block, axes, name)
        keep = tuple(
            slice(depth[i] if location[i] > 0 else 0, n - (depth[i] if location[i] < counts[i] - 1 else 0))
            for i, n in enumerate(painted.shape)
        )
        return painted[keep].astype(dtype)

    out: da.Array = da.map_overlap(
        run,
        raw,
        seg,
        depth=depth,
        boundary="none",
        trim=False,
        dtype=dtype,
        chunks=chunks[:-1] + ((channels,),),
        align_arrays=False,
    )
    return out
