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

from ..axes import ArrayT
from ..errors import CascadeError, DataError
from ..features import FeatureSelection, compute_features, overlap_depths
from ..forest import PackedForest, predict_proba
from ..io import keep_once
from ._blocks import stage_probabilities

__all__ = [
    "Cascade",
    "Stage",
    "StageResult",
    "convert_probabilities",
    "predict",
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
    """

    selection: FeatureSelection
    class_names: tuple[str, ...]
    forest: PackedForest | None = None

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


def convert_probabilities(probabilities: ArrayT, dtype: np.dtype[Any] | str) -> ArrayT:
    """Probabilities converted to the raw dtype, as ilastik stacks them for the next stage.

    ilastik computes ``((max - min) * p - min).astype(dtype)`` under numpy 1 (its conda package
    pins numpy < 1.27), whose value-based casting computes it in float32 for 8- and 16-bit types
    and in float64 for 32- and 64-bit ones, cast as numpy casts on x86. Unsigned: uint8
    ``floor(255 p)``, uint32 ``floor((2^32 - 1) p)`` in float64, uint64 0 at p = 1 (2^64 wraps).
    Signed: the result overflows the type: int8 and int16 wrap (int8: ``floor(255 p) - 128``),
    int32 and int64 are all the type's minimum. Any other dtype (float, bool): ``p`` cast to it,
    as ilastik's ``DtypeConvertFunction`` does.

    Parameters
    ----------
    probabilities : numpy or dask array
        Probabilities in [0, 1], float32.
    dtype : numpy dtype or str
        The raw image's dtype.

    Returns
    -------
    numpy or dask array
        The converted probabilities (same kind as given).
    """
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer):  # ilastik coerces every other dtype (float, bool)
        coerced: ArrayT = probabilities.astype(dtype)
        return coerced
    info = np.iinfo(dtype)
    if info.min == 0 and dtype.itemsize >= 4:  # numpy 1 promotes uint32(max) * float32 to float64
        wide = probabilities.astype(np.float64) * float(info.max)
        if dtype.itemsize == 8:  # float64(2^64 - 1) is 2^64: p = 1 wraps to 0, as the x86 cast gives
            wide = wide * (wide < 2.0**64)
        unsigned_wide: ArrayT = wide.astype(dtype)
        return unsigned_wide
    scaled = probabilities * np.float32(float(info.max) - float(info.min))
    if info.min == 0:
        unsigned: ArrayT = scaled.astype(dtype)
        return unsigned
    shifted = scaled + np.float32(-float(info.min))  # in [2^(bits-1), 3 * 2^(bits-1)): out of range
    if dtype.itemsize <= 2:  # x86 truncates to int32, keeping the low bits: a wrap
        wrapped: ArrayT = shifted.astype(np.int32).astype(dtype)
        return wrapped
    lowest: ArrayT = (probabilities * 0).astype(dtype) + dtype.type(info.min)  # x86's "integer indefinite"
    return lowest


def segmentation(probabilities: da.Array) -> da.Array:
    """uint8 argmax + 1 over the channel axis (ties go to the first class), keeping a c axis of 1.

    Parameters
    ----------
    probabilities : dask array
        Probabilities with classes on the last axis.

    Returns
    -------
    dask array
        The labels, uint8.
    """
    labels: da.Array = (da.argmax(probabilities, axis=-1)[..., None] + 1).astype(np.uint8)
    return labels


def uncertainty(probabilities: da.Array) -> da.Array:
    """1 - (largest - second largest probability), float32, with a c axis of 1.

    Parameters
    ----------
    probabilities : dask array
        Probabilities with classes on the last axis.

    Returns
    -------
    dask array
        The uncertainty, float32.
    """

    def margin(block: np.ndarray) -> np.ndarray:
        if block.shape[-1] < 2:
            return np.zeros(block.shape[:-1] + (1,), np.float32)
        top = np.partition(block, block.shape[-1] - 2, axis=-1)[..., -2:]
        return (np.float32(1) - (top[..., 1:] - top[..., :1])).astype(np.float32)

    margins: da.Array = da.map_blocks(
        margin, probabilities, chunks=probabilities.chunks[:-1] + ((1,),), dtype=np.float32
    )
    return margins


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
        results.append(StageResult(features, probabilities, stage_input))
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
