"""The YAML/JSON form of a feature selection (``configs/features/*.yaml``) and its named sets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import FeatureSelectionError
from .selection import FEATURE_IDS, FeatureSelection

__all__ = ["parse_feature_selection"]

_SELECTION_KEYS = ("features", "scales", "compute_in_2d")


def parse_feature_selection(spec: Mapping[str, Any] | str) -> FeatureSelection:
    """Build a :class:`FeatureSelection` from its YAML form or a named set.

    Parameters
    ----------
    spec : mapping or str
        ``"ilastik-default"`` (or ``"ilastik-default-2d"``), or a mapping with ``features``
        (feature id -> list of scales), optional ``scales`` (column order; defaults to the
        sorted union of the listed scales) and optional ``compute_in_2d`` (bool, or list of
        bools per scale, or list of the scales to compute in 2D).

    Returns
    -------
    FeatureSelection
        The checked selection.

    Raises
    ------
    FeatureSelectionError
        An unknown feature or set name, or invalid scales.

    Examples
    --------
    >>> sel = parse_feature_selection({"features": {"GaussianSmoothing": [1.0, 3.5]}})
    >>> sel.n_channels(1)
    2
    """
    if isinstance(spec, str):
        named = {
            "ilastik-default": lambda: FeatureSelection.ilastik_default(False),
            "ilastik-default-2d": lambda: FeatureSelection.ilastik_default(True),
        }
        if spec not in named:
            raise FeatureSelectionError(f"unknown feature set {spec!r}; named sets are {', '.join(named)}")
        return named[spec]()
    if not isinstance(spec, Mapping) or not isinstance(spec.get("features"), Mapping):
        raise FeatureSelectionError("a feature selection needs a 'features' mapping: feature id -> scales")
    unknown = [str(k) for k in spec if k not in _SELECTION_KEYS]
    if unknown:
        raise FeatureSelectionError(
            f"unknown key {unknown[0]!r} in a feature selection; valid keys are {', '.join(_SELECTION_KEYS)}"
        )
    features: Mapping[str, Sequence[float]] = spec["features"]
    try:
        listed = {fid: [float(s) for s in scales] for fid, scales in features.items()}
        scales = [float(s) for s in spec.get("scales") or sorted({s for v in listed.values() for s in v})]
    except (TypeError, ValueError) as err:
        raise FeatureSelectionError(f"feature scales must be numbers: {err}") from err
    for fid, wanted in listed.items():
        missing = [s for s in wanted if s not in scales]
        if missing:
            raise FeatureSelectionError(f"{fid}: scale(s) {missing} are not among the scales {scales}")
    ids = [f for f in FEATURE_IDS if f in listed] + [f for f in listed if f not in FEATURE_IDS]
    matrix = [[s in listed[fid] for s in scales] for fid in ids]
    in2d_spec = spec.get("compute_in_2d", False)
    if isinstance(in2d_spec, bool):
        in2d: list[bool] | bool = in2d_spec
    elif (
        isinstance(in2d_spec, Sequence)
        and len(in2d_spec) == len(scales)
        and all(isinstance(v, bool) for v in in2d_spec)
    ):
        in2d = list(in2d_spec)
    elif isinstance(in2d_spec, Sequence):
        in2d = [s in [float(v) for v in in2d_spec] for s in scales]
    else:
        raise FeatureSelectionError("compute_in_2d must be true/false, a list of flags, or a list of scales")
    return FeatureSelection.from_matrix(ids, scales, matrix, in2d)
