"""The object stage of a training spec: where objects come from, their features, their classes.

In the spec YAML (see ``configs/train-example.yaml``)::

    objects:
      source: pixel classification   # threshold the last pixel stage's probabilities, or
                                     # probabilities | segmentation | label image (per image
                                     # ``object_input``), as ilastik's four OC workflows
      threshold: {method: simple, channel: 0, low: 0.5, sigmas: [1.0, 1.0, 1.0], min_size: 10}
      features: ilastik-default      # or standard, a list of Standard Object Features, or
                                     # plugin -> feature -> {margin: ...}, or a YAML file of one
      classes: [small, large]

Object features are named as in ilastik (``reference/ilastik-objects.md`` 4): the named sets
resolve to a selection for the training data's dimensions and channels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CascadeError, ObjectsError
from ..objects import OBJECT_SOURCES, ObjectFeatureSelection, ThresholdSettings

__all__ = [
    "OBJECT_FEATURE_SETS",
    "ObjectSpec",
    "object_feature_selection",
    "object_features_file",
    "parse_object_spec",
]

_STANDARD = "Standard Object Features"
#: ilastik's GUI "All excluding location" on its default plugins: the non-location Standard features...
_STANDARD_SHAPE_INTENSITY = (
    "Count", "Sum", "Mean", "Variance", "Skewness", "Kurtosis", "Minimum", "Maximum", "Quantiles",
    "Histogram", "RegionRadii", "RegionAxes",
)  # fmt: skip
#: ...their "in neighborhood" variants (Covariance ones need more than one channel)...
_LOCAL = ("Mean", "Variance", "Skewness", "Kurtosis", "Histogram", "Minimum", "Maximum", "Sum")
#: ...and the non-location convex hull (2D and 3D) and skeleton (2D) features.
_HULL = (
    "InputVolume", "HullVolume", "Convexity", "DefectCount", "DefectVolumeMean", "DefectVolumeVariance",
    "DefectVolumeSkewness", "DefectVolumeKurtosis", "DefectDisplacementMean",
)  # fmt: skip
_SKELETON = ("Diameter", "Euclidean Diameter", "Total Length", "Average Length", "Branch Count", "Hole Count")
#: The named object feature sets.
OBJECT_FEATURE_SETS = ("ilastik-default", "standard")
_THRESHOLD_KEYS = tuple(f.name for f in dataclasses.fields(ThresholdSettings))
_KEYS = ("source", "threshold", "features", "classes")


@dataclass(frozen=True)
class ObjectSpec:
    """A validated object stage of a training spec.

    Attributes
    ----------
    source : str
        One of :data:`cascade.objects.OBJECT_SOURCES`.
    threshold : ThresholdSettings or None
        For ``"probabilities"`` and ``"pixel classification"``.
    features : str or mapping
        A name of :data:`OBJECT_FEATURE_SETS`, a list of Standard Object Features, or a selection.
    classes : tuple of str
        The object class names (label value k is class k).
    """

    source: str
    threshold: ThresholdSettings | None
    features: str | Sequence[str] | ObjectFeatureSelection
    classes: tuple[str, ...]

    @property
    def needs_input(self) -> bool:
        """Whether each image needs an ``object_input`` (everything but ``"pixel classification"``)."""
        return self.source != "pixel classification"


def _threshold(value: Any, source: str) -> ThresholdSettings | None:
    if source not in ("probabilities", "pixel classification"):
        if value is not None:
            raise CascadeError(f"objects from a {source} take no 'threshold' settings")
        return None
    if not isinstance(value, Mapping):
        value = {} if value is None else {"low": value}  # a bare number is the threshold
    unknown = [str(k) for k in value if k not in _THRESHOLD_KEYS]
    if unknown:
        raise CascadeError(
            f"unknown key {unknown[0]!r} in objects: threshold; valid keys are {', '.join(_THRESHOLD_KEYS)}"
        )
    settings = dict(value)
    for key in ("channel", "core_channel", "min_size", "max_size", "low", "high"):
        number = settings.get(key, 0)
        whole = key not in ("low", "high")
        if isinstance(number, bool) or not isinstance(number, int if whole else (int, float)):
            kind = "a whole number" if whole else "a number"
            raise CascadeError(f"objects: threshold: {key} must be {kind}, not {number!r}")
    if "sigmas" in settings:
        sigmas = settings["sigmas"]
        sigmas = [sigmas] * 3 if isinstance(sigmas, (int, float)) else list(sigmas)
        settings["sigmas"] = tuple(float(s) for s in sigmas)
    try:
        return ThresholdSettings(**settings)
    except (TypeError, ValueError) as err:
        if isinstance(err, ObjectsError):
            raise
        raise CascadeError(f"objects: threshold: {' '.join(str(err).split())}") from err


def parse_object_spec(value: Any, base: Path, n_stages: int) -> ObjectSpec:
    """Validate the ``objects`` entry of a training spec.

    Parameters
    ----------
    value : mapping
        The entry, as read from YAML.
    base : Path
        Folder that a feature YAML file's relative path is relative to.
    n_stages : int
        The spec's pixel stages (``"pixel classification"`` needs at least one).

    Returns
    -------
    ObjectSpec
        The checked object stage.

    Raises
    ------
    CascadeError
        An unknown key, source or feature set, fewer than two classes, invalid threshold
        settings, or ``"pixel classification"`` without pixel stages.
    """
    if not isinstance(value, Mapping):
        raise CascadeError(f"'objects' must be a mapping with keys {', '.join(_KEYS)}, not {value!r}")
    unknown = [str(k) for k in value if k not in _KEYS]
    if unknown:
        raise CascadeError(f"unknown key {unknown[0]!r} in 'objects'; valid keys are {', '.join(_KEYS)}")
    source = str(value.get("source", "pixel classification"))
    if source not in OBJECT_SOURCES:
        raise CascadeError(f"objects: source must be one of {', '.join(OBJECT_SOURCES)}, not {source!r}")
    if source == "pixel classification" and n_stages == 0:
        raise CascadeError(
            "objects from 'pixel classification' threshold the last pixel stage, but the spec has no "
            "stages; give a 'stages' list or another objects source"
        )
    classes = value.get("classes")
    if not isinstance(classes, Sequence) or isinstance(classes, str) or len(classes) < 2:
        raise CascadeError(f"objects need a 'classes' list of at least two class names, got {classes!r}")
    features = object_features_file(value.get("features", "ilastik-default"), base)
    object_feature_selection(features, 2, 1)  # names and structure checked now, not after hours
    return ObjectSpec(source, _threshold(value.get("threshold"), source), features, tuple(map(str, classes)))


def object_features_file(value: Any, base: Path) -> Any:
    """A feature YAML file's contents, or ``value`` itself (a set name, list or mapping).

    Parameters
    ----------
    value : Any
        ``features`` as given: a ``.yaml``/``.yml`` path is read.
    base : Path
        Folder a relative path is relative to.

    Returns
    -------
    Any
        What :func:`object_feature_selection` takes.

    Raises
    ------
    CascadeError
        A feature file that does not exist.
    """
    if isinstance(value, str) and value.endswith((".yaml", ".yml")):
        import yaml

        path = Path(value) if Path(value).is_absolute() else base / value
        if not path.is_file():
            raise CascadeError(f"object feature file not found: {path}")
        return yaml.safe_load(path.read_text())
    return value


def object_feature_selection(
    features: str | Sequence[str] | ObjectFeatureSelection, ndim: int, channels: int
) -> dict[str, dict[str, dict[str, Any]]]:
    """The object feature selection (plugin -> feature -> parameters) a spec's ``features`` names.

    Parameters
    ----------
    features : str, sequence of str or mapping
        ``"ilastik-default"`` (ilastik's GUI "All excluding location" on its default plugins:
        the Standard Object Features that are not coordinates, their "in neighborhood"
        variants with the GUI's margin 30 (x, y; 1 in z), and the convex hull and 2D skeleton
        features that are not coordinates), ``"standard"`` (the Standard Object Features that
        are not coordinates, without neighbourhoods: cheap and exact blockwise), a list of
        Standard Object Features, or an explicit selection.
    ndim : int
        Spatial dimensions of the data (2 or 3).
    channels : int
        Raw channels (``Covariance`` needs two).

    Returns
    -------
    dict
        The selection, as ilastik's ``SelectedFeatures``.

    Raises
    ------
    CascadeError
        An unknown name or a malformed selection.
    """
    if isinstance(features, str):
        if features not in OBJECT_FEATURE_SETS:
            raise CascadeError(
                f"unknown object feature set {features!r}; use one of {', '.join(OBJECT_FEATURE_SETS)}, "
                "a list of Standard Object Features or a plugin -> feature mapping"
            )
        return _named(features, ndim, channels)
    if isinstance(features, Mapping):
        ok = all(
            isinstance(feats, Mapping) and all(isinstance(p, Mapping) or p is None for p in feats.values())
            for feats in features.values()
        )
        if not ok or not features:
            raise CascadeError("an object feature selection maps plugin names to feature -> parameters")
        return {str(p): {str(n): dict(v or {}) for n, v in feats.items()} for p, feats in features.items()}
    if isinstance(features, Sequence) and features and all(isinstance(n, str) for n in features):
        return {_STANDARD: {n: _local_margin(n, ndim) for n in features}}
    raise CascadeError(f"object features must be a set name, a list or a mapping, not {features!r}")


def _local_margin(name: str, ndim: int) -> dict[str, Any]:
    """The GUI's neighbourhood margin for an "in neighborhood" feature, else no parameters."""
    if not name.endswith(" in neighborhood"):
        return {}
    return {"margin": (30, 30) if ndim == 2 else (30, 30, 1)}


def _named(name: str, ndim: int, channels: int) -> dict[str, dict[str, dict[str, Any]]]:
    names = list(_STANDARD_SHAPE_INTENSITY) + (["Covariance"] if channels > 1 else [])
    if name == "standard":
        return {_STANDARD: {n: {} for n in names}}
    local = list(_LOCAL) + (["Covariance"] if channels > 1 else [])
    names += [f"{n} in neighborhood" for n in local]
    selection = {_STANDARD: {n: _local_margin(n, ndim) for n in names}}
    selection[f"{ndim}D Convex Hull Features"] = {n: {} for n in _HULL}
    if ndim == 2:
        selection["2D Skeleton Features"] = {n: {} for n in _SKELETON}
    return selection
