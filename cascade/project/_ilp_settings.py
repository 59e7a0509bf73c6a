"""The settings an ilastik project stores beside its stages: feature selections, label names and
export settings."""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from ..errors import FeatureSelectionError
from ..features import FeatureSelection
from ._h5 import text, texts

_EXPORT_TEXT = (
    "ExportDtype",
    "OutputAxisOrder",
    "OutputFilenameFormat",
    "OutputInternalPath",
    "OutputFormat",
)
_EXPORT_NUMBER = ("InputMin", "InputMax", "ExportMin", "ExportMax")
_EXPORT_REGION = ("RegionStart", "RegionStop")


def _read_selection(group: h5py.Group) -> tuple[FeatureSelection | None, bool, str | None]:
    """(selection, ComputeIn2d stored?, problem) of a ``FeatureSelections`` group."""
    if "FeatureListFilename" in group and text(group["FeatureListFilename"][()]).strip():
        return None, False, "pre-computed features (FeatureListFilename) are not supported"
    if not all(key in group for key in ("FeatureIds", "Scales", "SelectionMatrix")):
        return None, False, "no feature selection stored"
    flags = np.ravel(group["ComputeIn2d"][()]) if "ComputeIn2d" in group else np.zeros(0, dtype=bool)
    stored = flags.size > 0
    try:
        selection = FeatureSelection.from_matrix(
            texts(group["FeatureIds"][()]),
            np.ravel(group["Scales"][()]).tolist(),
            np.asarray(group["SelectionMatrix"][()], dtype=bool).tolist(),
            flags.tolist() if stored else False,
        )
    except FeatureSelectionError as err:
        return None, stored, f"unusable feature selection ({err})"
    return selection, stored, None


def _label_names(group: h5py.Group) -> tuple[str, ...]:
    ds = group.get("LabelNames")
    if not isinstance(ds, h5py.Dataset) or bool(ds.attrs.get("isEmpty", False)):
        return ()
    return texts(ds[()])


def _read_export(group: h5py.Group | None) -> dict[str, Any]:
    if not isinstance(group, h5py.Group):
        return {}
    settings: dict[str, Any] = {}
    for key in _EXPORT_REGION:
        if key in group:
            settings[key] = tuple(None if int(v) == -1 else int(v) for v in np.ravel(group[key][()]))
    for key in _EXPORT_NUMBER:
        if key in group:
            settings[key] = np.ravel(group[key][()])[0].item()
    for key in _EXPORT_TEXT:
        if key in group:
            settings[key] = text(group[key][()])
    return settings
