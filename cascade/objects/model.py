"""The data every step of object classification hands to the next.

ilastik's Object Classification (see ``docs/objects.md``): pixel probabilities, a binary
segmentation or a label image become *objects* (a globally consistent uint32 label image, ids
1..N per time point in ilastik's raster order), objects get *features* (one table row per object,
row 0 the background), a vigra/scikit-learn forest classifies the rows, and the classes or
probabilities are painted back onto the objects. Only the per-object tables are global; every
image in between is a lazy dask array computed chunk by chunk.

Conventions (the same as ilastik's, see ``reference/ilastik-objects.md``):

- images are dask arrays in cascade's internal axis order ``[t][z]yx[c]``; label images have no
  channel axis;
- per-object coordinates (centres, bounding boxes, hull centres...) are in ilastik's **x, y[, z]**
  order;
- a feature table of one time point maps ``plugin name -> feature name -> float32 array (N + 1, k)``,
  row ``i`` for object id ``i``, row 0 all zeros (the background).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np

from ..errors import ObjectsError
from ..forest import PackedForest

__all__ = [
    "DEFAULT_FEATURES",
    "OBJECT_SOURCES",
    "FeatureTable",
    "ObjectFeatureSelection",
    "ObjectStage",
    "Objects",
    "ThresholdSettings",
]

#: The plugin name of the features ilastik always computes (not classifier inputs).
DEFAULT_FEATURES = "Default features"

#: Selected object features: plugin name -> feature name -> parameters (only ``margin`` matters).
ObjectFeatureSelection = Mapping[str, Mapping[str, Mapping[str, Any]]]

#: One time point's features: plugin name -> feature name -> float32 array (N + 1, k).
FeatureTable = dict[str, dict[str, np.ndarray]]

_METHODS = ("simple", "hysteresis")

#: Where an object stage takes its objects from (ilastik's four Object Classification workflows).
OBJECT_SOURCES = ("probabilities", "segmentation", "label image", "pixel classification")


@dataclass(frozen=True)
class ThresholdSettings:
    """ilastik's ``ThresholdTwoLevels`` settings (what turns probabilities into objects).

    Attributes
    ----------
    method : str
        ``"simple"`` (ilastik's CurOperator 0) or ``"hysteresis"`` (1).
    channel : int
        Channel of the probabilities thresholded at ``low`` (the final threshold).
    core_channel : int
        Channel thresholded at ``high`` for the cores (hysteresis only).
    low, high : float
        The final threshold (``p >= low``; the only one of ``"simple"``) and the core threshold.
    sigmas : tuple of float
        Gaussian smoothing sigma per spatial axis in **x, y, z** order (ilastik's ``SmootherSigma``);
        no smoothing when any sigma of an axis with extent > 1 is below 0.1.
    min_size, max_size : int
        Objects keep ``min_size <= pixels <= max_size`` (inclusive), counted per time point.
    """

    method: str = "simple"
    channel: int = 0
    core_channel: int = 0
    low: float = 0.5
    high: float = 0.8
    sigmas: tuple[float, float, float] = (1.0, 1.0, 1.0)
    min_size: int = 10
    max_size: int = 1_000_000

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ObjectsError(
                f"threshold method {self.method!r} is not supported (only {', '.join(_METHODS)}; "
                "ilastik's IPHT and graph cut are not implemented)"
            )
        if self.channel < 0 or self.core_channel < 0:
            raise ObjectsError("threshold channels must be >= 0")
        if not all(np.isfinite(s) and s >= 0 for s in self.sigmas) or len(self.sigmas) != 3:
            raise ObjectsError(f"smoothing sigmas must be three numbers >= 0 (x, y, z), got {self.sigmas}")
        if self.min_size < 0 or self.max_size < self.min_size:
            raise ObjectsError(
                f"size filter needs 0 <= min_size <= max_size, got {self.min_size}, {self.max_size}"
            )

    def describe(self) -> str:
        """One line for ``cascade info``: method, channels, thresholds, smoothing, size filter.

        Returns
        -------
        str
            E.g. ``simple, channel 0, low 0.5, smoothing 1.0, 1.0, 1.0 (x, y, z), sizes 10..1000000``.
        """
        core = f", high {self.high} (core channel {self.core_channel})" if self.method == "hysteresis" else ""
        sigmas = ", ".join(map(str, self.sigmas))
        return (
            f"{self.method}, channel {self.channel}, low {self.low}{core}, smoothing {sigmas} (x, y, z), "
            f"sizes {self.min_size}..{self.max_size}"
        )

    @property
    def channels_needed(self) -> int:
        """How many probability channels the settings read."""
        used = (self.channel, self.core_channel) if self.method == "hysteresis" else (self.channel,)
        return max(used) + 1


@dataclass(frozen=True)
class Objects:
    """A globally consistent object label image.

    Attributes
    ----------
    labels : dask.array.Array
        uint32 object ids, axes :attr:`axes` (internal order, no channel axis): ids ``1..counts[t]``
        in each time point, numbered in ilastik's raster order (first pixel of each object, x
        fastest, then y, then z), 0 the background. Objects crossing chunk borders have one id.
    axes : str
        Axes of :attr:`labels`, e.g. ``"yx"``, ``"zyx"``, ``"tyx"``, ``"tzyx"``.
    counts : tuple of int
        Number of objects per time point (one entry when there is no ``t`` axis).
    original_ids : tuple of numpy.ndarray or None
        "From label image" only: per time point, the user's label value of each id (index = id,
        entry 0 is 0); ilastik's ``original_oid`` column.
    """

    labels: da.Array
    axes: str
    counts: tuple[int, ...]
    original_ids: tuple[np.ndarray, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        if "c" in self.axes or len(self.axes) != self.labels.ndim:
            raise ObjectsError(f"object labels need axes without 'c' matching ndim, got {self.axes!r}")
        steps = self.labels.shape[0] if self.axes.startswith("t") else 1
        if len(self.counts) != steps:
            raise ObjectsError(f"{len(self.counts)} object counts for {steps} time point(s)")

    @property
    def spatial_axes(self) -> str:
        """The spatial axes (``"yx"`` or ``"zyx"``; a z of extent 1 still counts as present)."""
        return self.axes.lstrip("t")


@dataclass(frozen=True, eq=False)
class ObjectStage:
    """A trained object classification stage (what an OC ``.ilp`` or a ``.cascade`` object stage holds).

    Attributes
    ----------
    source : str
        One of :data:`OBJECT_SOURCES`: objects from thresholded pixel probabilities (given as an
        input, or computed by the project's own pixel stages for ``"pixel classification"``), from a
        binary segmentation, or from a label image.
    threshold : ThresholdSettings or None
        The thresholding of ``"probabilities"`` / ``"pixel classification"``; None otherwise.
    features : ObjectFeatureSelection
        The classifier's features (ilastik's ``SelectedFeatures``), without the default features.
    class_names : tuple of str
        One name per object class; class k is prediction value k and probability channel k-1.
        Empty only for a stage that was never trained (no classes defined, no forest).
    forest : PackedForest or None
        The object forest; its columns follow ilastik's feature matrix order (sorted plugin,
        sorted feature, columns). None until trained.
    raw_channels : int
        Channels of the raw image the features were computed on.
    spatial_axes : str
        ``"yx"`` or ``"zyx"``.
    block_shape, halo : tuple of int
        ilastik's "Blockwise Object Classification" block shape and halo, x, y, z order
        (defaults 512 and 64).
    table_settings : dict
        ilastik's table export settings (``file type``, ``file path``, ``margin``, ``include raw``...);
        empty when the project never configured a table.
    """

    source: str
    threshold: ThresholdSettings | None
    features: ObjectFeatureSelection
    class_names: tuple[str, ...]
    forest: PackedForest | None
    raw_channels: int
    spatial_axes: str
    block_shape: tuple[int, int, int] = (512, 512, 512)
    halo: tuple[int, int, int] = (64, 64, 64)
    table_settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in OBJECT_SOURCES:
            raise ObjectsError(
                f"object source must be one of {', '.join(OBJECT_SOURCES)}, got {self.source!r}"
            )
        if (self.threshold is None) == (self.source in ("probabilities", "pixel classification")):
            verb = "need" if self.threshold is None else "take no"
            raise ObjectsError(f"objects from {self.source} {verb} threshold settings")
        if len(self.class_names) == 1 or (self.forest is not None and len(self.class_names) < 2):
            raise ObjectsError("an object classifier needs at least two classes")

    @property
    def n_classes(self) -> int:
        """Number of object classes."""
        return len(self.class_names)
