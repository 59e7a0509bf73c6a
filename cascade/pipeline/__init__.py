"""Stages and cascades: ilastik's Autocontext as dask graphs.

A :class:`Stage` is a feature selection, class names and a trained forest. A
:class:`Cascade` chains stages: stage 1 sees the raw channels, stage k+1 sees the raw
channels followed by stage k's probabilities converted to the raw dtype (ilastik's rule:
``floor(255 * p)`` for uint8 raw, ``p`` itself for float raw). One stage is plain pixel
classification.

Everything here is lazy: :func:`predict` returns dask arrays, one set per stage.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import dask.array as da
import numpy as np

from ..errors import CascadeError, DataError
from ..features import FeatureSelection, compute_features, overlap_depths
from ..forest import PackedForest, predict_proba
from ..io import keep_once
from ._blocks import stage_probabilities
from ._outputs import convert_probabilities, reweighted, segmentation, uncertainty

__all__ = [
    "Cascade",
    "Stage",
    "StageResult",
    "convert_probabilities",
    "predict",
    "reweighted",
    "segmentation",
    "uncertainty",
]


@dataclass(frozen=True, eq=False)
class Stage:
    """One pixel classification stage.

    Attributes
    ----------
    selection : FeatureSelection
        Features computed on every input channel of this stage.
    class_names : tuple of str
        One name per class; class k (label value k) is output channel k-1.
    forest : PackedForest or None
        The trained forest (None until trained).
    class_weights : tuple of float or None
        Per class, the training images' share of the class over its share of the labels
        (``cascade train --prior images``): the stage's probabilities are multiplied by them and
        normalised before they are exported, so a class labelled more than it occurs (scribbles
        on thin structures) is not over-called. The next stage reads the forest's own
        probabilities. None (ilastik projects): the forest's probabilities as they are.
    """

    selection: FeatureSelection
    class_names: tuple[str, ...]
    forest: PackedForest | None = None
    class_weights: tuple[float, ...] | None = None

    @property
    def n_classes(self) -> int:
        """Number of classes (output channels)."""
        return len(self.class_names)


@dataclass(frozen=True, eq=False)
class Cascade:
    """A trained (or to-be-trained) chain of stages and what its raw input looks like.

    Attributes
    ----------
    stages : tuple of Stage
        Stage 1 first.
    raw_channels : int
        Channel count of the raw data.
    raw_dtype : str
        dtype of the training data (informative: at prediction time the probabilities fed to
        the next stage are converted to the dtype of the image being predicted, as in ilastik).
    spatial_axes : str
        ``"yx"`` or ``"zyx"``: the spatial axes of the training data.
    provenance : dict
        Free-form record of how the cascade was made (inputs, versions, seed).
    export_settings : dict
        Export settings a project stores (ilastik's ``Prediction Export`` group: ``OutputFormat``,
        ``OutputFilenameFormat``, ``ExportDtype``, ``RegionStart``...); command-line options win.
    input_axes : str or None
        Axes of the (last) training image as its file names them; batch inputs without
        ``--input_axes`` use them when they fit, as ilastik reuses its last training lane's axes.
    """

    stages: tuple[Stage, ...]
    raw_channels: int
    raw_dtype: str
    spatial_axes: str
    provenance: Mapping[str, Any] = field(default_factory=dict)
    export_settings: Mapping[str, Any] = field(default_factory=dict)
    input_axes: str | None = None

    def input_channels(self, stage_index: int) -> int:
        """Input channels of a stage: raw, plus the previous stage's classes.

        Parameters
        ----------
        stage_index : int
            0-based stage index.

        Returns
        -------
        int
            Channels of the stage's input.
        """
        if stage_index == 0:
            return self.raw_channels
        return self.raw_channels + self.stages[stage_index - 1].n_classes


@dataclass(frozen=True)
class StageResult:
    """Lazy outputs of one stage, all in internal axis order (``...yxc``)."""

    features: da.Array
    probabilities: da.Array
    stage_input: da.Array

    @property
    def segmentation(self) -> da.Array:
        """ilastik's Simple Segmentation: uint8 argmax + 1, one channel."""
        return segmentation(self.probabilities)

    @property
    def uncertainty(self) -> da.Array:
        """ilastik's Uncertainty: 1 - (p_first - p_second), float32, one channel."""
        return uncertainty(self.probabilities)


def _predict_block(block: np.ndarray, forest: PackedForest) -> np.ndarray:
    flat = block.reshape(-1, block.shape[-1])
    return predict_proba(forest, flat).reshape(*block.shape[:-1], forest.n_outputs)


def predict(
    cascade: Cascade,
    raw: da.Array | np.ndarray,
    *,
    axes: str,
    chunks: tuple[int, ...] | None = None,
    stages: int | None = None,
    scratch: str | None = None,
    region: tuple[slice, ...] | None = None,
    keep: Collection[int] = (),
) -> list[StageResult]:
    """Lazy outputs of every stage for one image.

    Parameters
    ----------
    cascade : Cascade
        A trained cascade.
    raw : dask or numpy array
        The image in internal axis order (see :mod:`cascade.axes`).
    axes : str
        Axes of ``raw`` (``yxc``, ``zyxc``, ``tyxc`` or ``tzyxc``).
    chunks : tuple of int, optional
        Block shape for the features and everything after them.
    stages : int, optional
        Compute only the first ``stages`` stages (default: all).
    scratch : str, optional
        A folder for intermediate results. With it, every stage but the last (and the stages
        in ``keep``) is computed *now*, slab by slab, into a zarr array there, and later
        stages read it back lazily: a large volume's earlier stages are computed once and
        never held in memory. What is stored is the next stage's input, the probabilities
        converted to the raw dtype (a uint8 image's stage: a quarter of the float32 bytes);
        the probabilities themselves only for the stages in ``keep`` (reading the
        ``probabilities`` of another stored stage computes that stage again). Blocks stored
        by an interrupted call with the same inputs are reused. Stage results under 64 MiB
        are kept in memory instead (``cascade.in-memory-stage`` in ``dask.config``). Without
        ``scratch`` everything stays lazy.
    region : tuple of slice, optional
        With ``scratch``: the part of the image the caller will read from the last stage (a
        cutout). Earlier stages are computed only over it plus the halos later stages need;
        outputs outside it are then not valid.
    keep : collection of int
        With ``scratch``: 0-based indices of stages whose probabilities are stored (the
        caller reads them, e.g. several exports, or one export and a later stage).

    Returns
    -------
    list of StageResult
        One per computed stage, stage 1 first.
    """
    check_compatible(cascade, raw.shape, axes, raw.dtype)
    lazy: da.Array = raw if isinstance(raw, da.Array) else da.from_array(raw, chunks=chunks or raw.shape)
    chain = cascade.stages[: stages or len(cascade.stages)]
    forests = [stage.forest for stage in chain]
    for k, forest in enumerate(forests):
        if forest is None:
            raise CascadeError(f"stage {k + 1} has no trained forest; train the project first")
    regions = _needed_regions(chain, raw.shape, axes, region)
    results: list[StageResult] = []
    stage_input = lazy
    for k, (stage, forest) in enumerate(zip(chain, forests, strict=True)):
        if forest is None:  # refused above; this narrows the type
            continue
        features = compute_features(stage_input, stage.selection, axes=axes, chunks=chunks)
        blockwise = partial(stage_probabilities, stage_input, features, stage.selection, forest, axes=axes)
        probabilities = blockwise(predict=_predict_block)
        label = f"stage {k + 1}"
        if scratch is not None and k in keep:
            probabilities = keep_once(probabilities, scratch, region=regions[k], label=label)
        weights = stage.class_weights
        shown = probabilities if weights is None else reweighted(probabilities, weights)
        results.append(StageResult(features, shown, stage_input))  # the next stage reads ``probabilities``
        # ilastik converts to the dtype of the image being processed (the lane's raw data)
        read = probabilities
        if scratch is not None and k not in keep and k + 1 < len(chain):  # store what stage k+1 reads
            converted = blockwise(
                predict=partial(_predict_converted, dtype=np.dtype(raw.dtype)), dtype=raw.dtype
            )
            read = keep_once(converted, scratch, region=regions[k], label=label)
        aligned_raw = lazy.rechunk(read.chunks[:-1] + ((raw.shape[-1],),))
        stage_input = da.map_blocks(
            _next_input,
            aligned_raw,
            read,
            chunks=read.chunks[:-1] + ((raw.shape[-1] + read.shape[-1],),),
            dtype=raw.dtype,
        )
    return results


def _predict_converted(block: np.ndarray, forest: PackedForest, dtype: np.dtype[Any]) -> np.ndarray:
    """A block's probabilities converted to the raw dtype, as the next stage reads them."""
    return convert_probabilities(_predict_block(block, forest), dtype)


def _next_input(raw: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """One block of stage k+1's input: the raw channels, then stage k's converted probabilities.

    A stored stage is read already converted (of the raw dtype).
    """
    if probabilities.dtype != raw.dtype:
        probabilities = convert_probabilities(probabilities, raw.dtype)
    return np.concatenate([raw, probabilities], axis=-1)


def check_compatible(cascade: Cascade, shape: tuple[int, ...], axes: str, dtype: Any) -> None:
    """Reject images the cascade cannot classify: channel count, 2D/3D mismatch, dtype.

    Parameters
    ----------
    cascade : Cascade
        The trained stages.
    shape : tuple of int
        The image's shape in internal axis order.
    axes : str
        Its axis keys.
    dtype : numpy dtype
        Its dtype.

    Raises
    ------
    DataError
        Naming the expected and actual channels or spatial axes.
    """
    spatial = "".join(k for k in axes if k in "zyx")
    if spatial != cascade.spatial_axes:
        raise DataError(
            f"the project was trained on {cascade.spatial_axes!r} data but the input has spatial axes "
            f"{spatial!r} (shape {tuple(shape)}, axes {axes!r})"
        )
    channels = shape[axes.index("c")]
    if channels != cascade.raw_channels:
        raise DataError(
            f"the project expects {cascade.raw_channels} channel(s) but the input has {channels} "
            f"(shape {tuple(shape)}, axes {axes!r})"
        )
    if not np.can_cast(np.dtype(dtype), np.float64) and np.dtype(dtype).kind not in "iuf":
        raise DataError(f"input dtype {np.dtype(dtype)} is not a numeric image type")


def _needed_regions(
    chain: Sequence[Stage], shape: tuple[int, ...], axes: str, region: tuple[slice, ...] | None
) -> list[tuple[slice, ...] | None]:
    """Per stage, the region of its output that later stages and the caller read.

    The last stage's is ``region``; each earlier one is the next one grown by the halo of
    the next stage's features (clipped to the image).
    """
    if region is None:
        return [None] * len(chain)
    bounds = [part.indices(n)[:2] for part, n in zip(region, shape, strict=True)]
    regions: list[tuple[slice, ...] | None] = [None] * len(chain)
    for k in range(len(chain) - 1, -1, -1):
        regions[k] = tuple(slice(a, b) for a, b in bounds)
        depths = overlap_depths(chain[k].selection, axes, shape)
        bounds = [
            (max(0, a - depths[i]), min(n, b + depths[i])) for i, ((a, b), n) in enumerate(zip(bounds, shape))
        ]
    return regions
