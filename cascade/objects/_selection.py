"""Which object features to compute: ilastik's feature selection checked into a plan, and the names.

ilastik's selection is ``{plugin: {feature: {param: value}}}``; only ``margin`` (of the "in
neighborhood" features) changes results. Plugin and feature names, column counts and display
names are ilastik's (``plugins_default/vigra_objfeats*.py``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..errors import ObjectsError
from .model import DEFAULT_FEATURES, ObjectFeatureSelection

STANDARD = "Standard Object Features"
HULL_2D = "2D Convex Hull Features"
HULL_3D = "3D Convex Hull Features"
SKELETON_2D = "2D Skeleton Features"

#: Standard features computed from pass 1 only.
PASS1 = ("Count", "Sum", "Mean", "Minimum", "Maximum", "RegionCenter", "Coord<Minimum>", "Coord<Maximum>")
#: Standard features that need pass 2 (central moments, histograms).
PASS2 = ("Variance", "Skewness", "Kurtosis", "Covariance", "Quantiles", "Histogram")
#: Standard features from vigra's coordinate scatter matrix (replayed per object).
SCATTER = ("RegionRadii", "RegionAxes")
#: Features that have "in neighborhood" variants.
LOCAL = ("Mean", "Variance", "Skewness", "Kurtosis", "Histogram", "Covariance", "Minimum", "Maximum", "Sum")
NEIGHBORHOOD = " in neighborhood"
OBJECT_AND_NEIGHBORHOOD = " in object and neighborhood"
#: ilastik's always-computed features (the ``Default features`` group).
DEFAULTS = ("Coord<Minimum>", "Coord<Maximum>", "RegionCenter", "Count")

_HULL_ONE = (
    "InputVolume", "HullVolume", "Convexity", "DefectCount", "DefectVolumeMean",
    "DefectVolumeVariance", "DefectVolumeSkewness", "DefectVolumeKurtosis", "DefectDisplacementMean",
)  # fmt: skip
_HULL_CENTRES = ("InputCenter", "HullCenter", "DefectCenter")
_SKELETON_ONE = (
    "Diameter",
    "Euclidean Diameter",
    "Total Length",
    "Average Length",
    "Branch Count",
    "Hole Count",
)
_SKELETON_POINTS = ("Skeleton Center", "Terminal 1", "Terminal 2")

_DISPLAY = {
    "Count": "Size in pixels", "Maximum": "Maximum intensity", "Minimum": "Minimum intensity",
    "Coord<Minimum>": "Bounding Box Minimum", "Coord<Maximum>": "Bounding Box Maximum",
    "Mean": "Mean Intensity", "Variance": "Variance of Intensity", "Skewness": "Skewness of Intensity",
    "Kurtosis": "Kurtosis of Intensity", "RegionCenter": "Center of the object",
    "RegionRadii": "Radii of the object", "RegionAxes": "Principal components of the object",
    "Quantiles": "Quantiles of Intensity", "Histogram": "Histogram of Intensity",
    "Covariance": "Covariance of Channel Intensity", "Sum": "Total Intensity",
    "InputVolume": "Object Area", "HullVolume": "Convex Hull Area", "Convexity": "Convexity",
    "DefectVolumeMean": "Mean Defect Area", "DefectVolumeVariance": "Variance of Defect Area",
    "DefectVolumeSkewness": "Skewness of Defect Area", "DefectVolumeKurtosis": "Kurtosis of Defect Area",
    "DefectCount": "Number of Defects", "DefectDisplacementMean": "Mean Defect Displacement",
    "InputCenter": "Object Center", "HullCenter": "Convex Hull Center", "DefectCenter": "Defect Center",
    "Branch Count": "Number of Branches", "Hole Count": "Number of Holes",
    "Skeleton Center": "Center of the Skeleton", "Total Length": "Length of the Skeleton",
    "Average Length": "Average Branch Length",
}  # fmt: skip


class FeatureColumns(NamedTuple):
    """One feature's place in ilastik's object table.

    Attributes
    ----------
    display : str
        ilastik's display name (``displaytext``), e.g. ``"Mean Intensity"``.
    width : int
        Number of columns.
    """

    display: str
    width: int

    @property
    def columns(self) -> tuple[str, ...]:
        """ilastik's table column names: the display name, ``"<display>_<i>"`` when wider than 1."""
        if self.width == 1:
            return (self.display,)
        return tuple(f"{self.display}_{i}" for i in range(self.width))


@dataclass(frozen=True)
class Plan:
    """The checked selection: what to compute for one image.

    Attributes
    ----------
    standard : tuple of str
        Standard features over the object (without the neighbourhood ones).
    local : tuple of str
        Base names of the selected "in neighborhood" features.
    margin : tuple of int
        The neighbourhood margin, x, y[, z] order (all zero when no local feature).
    shapes : dict
        Convex-hull / skeleton plugin name -> selected feature names.
    """

    standard: tuple[str, ...]
    local: tuple[str, ...]
    margin: tuple[int, ...]
    shapes: dict[str, tuple[str, ...]]

    @property
    def needs_pass2(self) -> bool:
        """Whether any feature over the objects needs the second pass."""
        return any(name in PASS2 for name in self.standard)

    @property
    def needs_scatter(self) -> bool:
        """Whether RegionRadii or RegionAxes (vigra's coordinate scatter per object) are selected."""
        return any(name in SCATTER for name in self.standard)


def _margin(values: Any, ndim: int) -> tuple[int, ...]:
    """One ``margin`` parameter as ``ndim`` ints (x, y[, z])."""
    items = [values] if np.ndim(values) == 0 else list(np.ravel(values))
    if len(items) == 1:
        items = items * ndim
    if ndim == 2 and len(items) == 3:
        items = items[:2]
    if len(items) != ndim or not all(float(v).is_integer() and float(v) >= 0 for v in items):
        raise ObjectsError(f"neighbourhood margin must be {ndim} integers >= 0 (x, y[, z]), got {values!r}")
    return tuple(int(v) for v in items)


def _max_margin(selection: ObjectFeatureSelection, ndim: int) -> tuple[int, ...]:
    """ilastik's ``max_margin``: the element-wise maximum over every ``margin`` parameter."""
    margin = (0,) * ndim
    for features in selection.values():
        for params in features.values():
            if params is not None and "margin" in params:
                margin = tuple(
                    max(a, b) for a, b in zip(margin, _margin(params["margin"], ndim), strict=True)
                )
    return margin


def _standard(names: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split standard feature names into features over the object and local base names."""
    over: list[str] = []
    local: list[str] = []
    for name in names:
        base = name.removesuffix(NEIGHBORHOOD).removesuffix(OBJECT_AND_NEIGHBORHOOD)
        if base != name and base in LOCAL:
            local.append(base)
        elif name in PASS1 or name in PASS2 or name in SCATTER:
            over.append(name)
        else:
            raise ObjectsError(f"unknown or unsupported standard object feature {name!r}")
    return tuple(dict.fromkeys(over)), tuple(dict.fromkeys(local))


def _shape_features(plugin: str, names: Iterable[str], ndim: int) -> tuple[str, ...]:
    """Check a convex-hull / skeleton plugin's features and that its implementation is installed."""
    need = {HULL_2D: 2, HULL_3D: 3, SKELETON_2D: 2}[plugin]
    if ndim != need:
        raise ObjectsError(f"{plugin!r} needs {need}D objects, the objects are {ndim}D")
    known = (_SKELETON_ONE + _SKELETON_POINTS) if plugin == SKELETON_2D else (_HULL_ONE + _HULL_CENTRES)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ObjectsError(f"unknown {plugin} feature(s): {', '.join(unknown)}")
    module = "._skeleton" if plugin == SKELETON_2D else "._hull"
    if importlib.util.find_spec(module, __package__) is None:
        raise ObjectsError(f"{plugin!r} are not available in this version of cascade")
    return tuple(names)


def make_plan(selection: ObjectFeatureSelection, ndim: int) -> Plan:
    """Check ilastik's feature selection and turn it into a :class:`Plan`.

    Parameters
    ----------
    selection : mapping
        plugin name -> feature name -> parameters (``Default features`` is ignored).
    ndim : int
        2 or 3 spatial dimensions of the objects.

    Returns
    -------
    Plan

    Raises
    ------
    ObjectsError
        For an unknown plugin or feature, a bad margin, or a plugin that does not fit ``ndim``.
    """
    standard: tuple[str, ...] = ()
    local: tuple[str, ...] = ()
    shapes: dict[str, tuple[str, ...]] = {}
    for plugin, features in selection.items():
        if plugin == STANDARD:
            standard, local = _standard(features)
        elif plugin in (HULL_2D, HULL_3D, SKELETON_2D):
            shapes[plugin] = _shape_features(plugin, features, ndim)
        elif plugin != DEFAULT_FEATURES:
            raise ObjectsError(f"unknown object feature plugin {plugin!r}")
    margin = _max_margin(selection, ndim)
    if local and not any(margin):
        raise ObjectsError("'in neighborhood' features need a margin > 0")
    return Plan(standard=standard, local=local, margin=margin, shapes=shapes)


def _width(plugin: str, name: str, channels: int, ndim: int) -> int:
    """Columns of one feature (4.3 / 4.6)."""
    base = name.removesuffix(NEIGHBORHOOD).removesuffix(OBJECT_AND_NEIGHBORHOOD)
    if plugin in (HULL_2D, HULL_3D, SKELETON_2D):
        return ndim if base in _HULL_CENTRES + _SKELETON_POINTS else 1
    widths = {"Count": 1, "Quantiles": 7 * channels, "Histogram": 64 * channels}
    widths |= {"Covariance": channels * channels, "RegionAxes": ndim * ndim}
    if base in widths:
        return widths[base]
    return ndim if base.startswith(("Region", "Coord<")) else channels


def _display(name: str) -> str:
    """ilastik's display name of a feature (its own name when ilastik has none)."""
    if name.endswith(NEIGHBORHOOD):
        base = name.removesuffix(NEIGHBORHOOD)
        return _DISPLAY.get(base, base) + NEIGHBORHOOD
    return _DISPLAY.get(name, name)


def output_names(plan: Plan) -> dict[str, tuple[str, ...]]:
    """Per plugin the feature names :func:`object_features` stores (ilastik's stored keys)."""
    local = tuple(base + suffix for base in plan.local for suffix in (NEIGHBORHOOD, OBJECT_AND_NEIGHBORHOOD))
    names: dict[str, tuple[str, ...]] = dict(plan.shapes)
    if plan.standard or plan.local:
        names[STANDARD] = plan.standard + local
    names[DEFAULT_FEATURES] = DEFAULTS
    return names


def feature_names(
    selection: ObjectFeatureSelection, raw_channels: int, ndim: int
) -> dict[str, dict[str, FeatureColumns]]:
    """Column counts and ilastik's display names of every feature :func:`object_features` returns.

    Parameters
    ----------
    selection : mapping
        plugin name -> feature name -> parameters, as for :func:`object_features`.
    raw_channels : int
        Channels of the raw image.
    ndim : int
        2 or 3 spatial dimensions of the objects.

    Returns
    -------
    dict
        plugin name -> feature name -> :class:`FeatureColumns` (display name, width; its
        ``columns`` are ilastik's table column names), including ``Default features`` and both
        neighbourhood variants of every selected "in neighborhood" feature.

    Raises
    ------
    ObjectsError
        As :func:`make_plan`.
    """
    if raw_channels < 1 or ndim not in (2, 3):
        raise ObjectsError(f"need raw_channels >= 1 and ndim 2 or 3, got {raw_channels}, {ndim}")
    plan = make_plan(selection, ndim)
    return {
        plugin: {
            name: FeatureColumns(_display(name), _width(plugin, name, raw_channels, ndim)) for name in names
        }
        for plugin, names in output_names(plan).items()
    }
