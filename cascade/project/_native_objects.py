"""The object stage of a ``.cascade`` project: :class:`~cascade.objects.ObjectStage` as HDF5, no pickles.

Layout (schema version 2; a project without an object stage stays version 1)::

    /objects          attrs: source, class_names (JSON), features (JSON), raw_channels,
                             spatial_axes, block_shape (x, y, z), halo (x, y, z),
                             table_settings (JSON), threshold (JSON, only for thresholded sources)
    /objects/forest   the packed forest (see ``_forest_h5``), when trained

Every field is required when read back; a missing or malformed one is a one-line
:class:`~cascade.errors.ProjectError` naming it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import ObjectsError, ProjectError
from ..objects import ObjectStage, ThresholdSettings
from ..pipeline import Cascade
from ._forest_h5 import read_forest, write_forest

__all__ = ["OBJECT_GROUP", "check_stages", "read_object_stage", "write_object_stage"]

#: The object stage's group at the root of a project file.
OBJECT_GROUP = "objects"
_THRESHOLD_FIELDS = tuple(f.name for f in dataclasses.fields(ThresholdSettings))


def check_stages(cascade: Cascade, objects: ObjectStage | None, path: Path) -> None:
    """Refuse, before writing, stages a project could not hold or a reader could not use.

    Parameters
    ----------
    cascade : Cascade
        The pixel stages (possibly none) and the raw data's description.
    objects : ObjectStage or None
        The object stage.
    path : Path
        The project file (named in the message).

    Raises
    ------
    ProjectError
        No stage at all, an object stage thresholding pixel stages that are not there, or an
        object stage trained on raw data of other channels or axes than the pixel stages.
    """
    if not cascade.stages and objects is None:
        raise ProjectError(f"cannot write project {path}: it would hold no stage")
    if objects is None:
        return
    if objects.source == "pixel classification" and not cascade.stages:
        raise ProjectError(
            f"cannot write project {path}: its object stage thresholds the pixel stages' "
            "probabilities but the project has no pixel stage"
        )
    needed = objects.threshold.channels_needed if objects.threshold is not None else 0
    if objects.source == "pixel classification" and needed > cascade.stages[-1].n_classes:
        raise ProjectError(
            f"cannot write project {path}: the object stage thresholds probability channel {needed - 1} "
            f"but the last pixel stage has {cascade.stages[-1].n_classes} classes"
        )
    if objects.raw_channels != cascade.raw_channels or objects.spatial_axes != cascade.spatial_axes:
        raise ProjectError(
            f"cannot write project {path}: the object stage was trained on {objects.raw_channels} "
            f"channel(s) {objects.spatial_axes} raw data, the pixel stages on {cascade.raw_channels} "
            f"channel(s) {cascade.spatial_axes}"
        )


def _plain(value: Any) -> Any:
    """``value`` as JSON-able plain data (tuples -> lists, numpy scalars and arrays -> Python)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ProjectError(f"cannot store {type(value).__name__} value {value!r} in a project (not plain data)")


def _json(value: Any) -> str:
    return json.dumps(_plain(value), sort_keys=True, allow_nan=False)


def write_object_stage(group: h5py.Group, stage: ObjectStage) -> None:
    """Store ``stage`` in ``group`` (a new, empty group).

    Parameters
    ----------
    group : h5py.Group
        The object stage's group (conventionally ``/objects``).
    stage : ObjectStage
        The stage, trained or not.

    Raises
    ------
    ProjectError
        Settings that are not plain data (numbers, strings, lists, mappings).
    """
    group.attrs.update(
        source=stage.source,
        class_names=_json(list(stage.class_names)),
        features=_json(stage.features),
        raw_channels=int(stage.raw_channels),
        spatial_axes=stage.spatial_axes,
        block_shape=np.asarray(stage.block_shape, np.int64),
        halo=np.asarray(stage.halo, np.int64),
        table_settings=_json(stage.table_settings),
    )
    if stage.threshold is not None:
        group.attrs["threshold"] = _json(dataclasses.asdict(stage.threshold))
    if stage.forest is not None:
        write_forest(group.create_group("forest"), stage.forest)


def _attr(group: h5py.Group, name: str, parse: Callable[[Any], Any]) -> Any:
    """A required attribute of the object stage, parsed; missing or malformed -> ProjectError."""
    if name not in group.attrs:
        raise ProjectError(f"the object stage has no {name!r} field")
    try:
        return parse(group.attrs[name])
    except (TypeError, ValueError, KeyError, IndexError, ObjectsError) as err:
        reason = " ".join(str(err).split())
        raise ProjectError(f"the object stage's {name!r} field is malformed ({reason})") from err


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _triple(value: Any) -> tuple[int, int, int]:
    array = np.asarray(value)
    if array.shape != (3,) or array.dtype.kind not in "iu" or np.any(array < 0):
        raise ValueError(f"expected three whole numbers >= 0 (x, y, z), got {value!r}")
    return int(array[0]), int(array[1]), int(array[2])


def _class_names(value: Any) -> tuple[str, ...]:
    names = json.loads(_text(value))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("expected a list of class names")
    return tuple(names)


def _param(value: Any) -> Any:
    """A feature parameter as the .ilp reader gives it: lists (margins) become tuples."""
    return tuple(value) if isinstance(value, list) else value


def _features(value: Any) -> dict[str, dict[str, dict[str, Any]]]:
    data = json.loads(_text(value))
    ok = isinstance(data, dict) and all(
        isinstance(feats, dict) and all(isinstance(params, dict) for params in feats.values())
        for feats in data.values()
    )
    if not ok:
        raise ValueError("expected plugin -> feature -> parameters mappings")
    return {
        plugin: {name: {k: _param(v) for k, v in params.items()} for name, params in feats.items()}
        for plugin, feats in data.items()
    }


def _threshold(value: Any) -> ThresholdSettings:
    data = json.loads(_text(value))
    if not isinstance(data, dict) or sorted(data) != sorted(_THRESHOLD_FIELDS):
        raise ValueError(f"expected the fields {', '.join(_THRESHOLD_FIELDS)}")
    sigmas = data.pop("sigmas")
    if not isinstance(sigmas, list) or len(sigmas) != 3:
        raise ValueError("expected three smoothing sigmas")
    kinds = {"method": str, "channel": int, "core_channel": int, "min_size": int, "max_size": int}
    for key, kind in kinds.items():
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise ValueError(f"{key} must be a {kind.__name__}")
    low, high = data.pop("low"), data.pop("high")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high, *sigmas)):
        raise ValueError("thresholds and sigmas must be numbers")
    return ThresholdSettings(
        **data,
        low=float(low),
        high=float(high),
        sigmas=(float(sigmas[0]), float(sigmas[1]), float(sigmas[2])),
    )


def _table_settings(value: Any) -> dict[str, Any]:
    data = json.loads(_text(value))
    if not isinstance(data, dict):
        raise ValueError("expected a mapping")
    return data


def read_object_stage(group: h5py.Group) -> ObjectStage:
    """Read an object stage written by :func:`write_object_stage`.

    Parameters
    ----------
    group : h5py.Group
        The object stage's group.

    Returns
    -------
    ObjectStage
        The stage (its forest None when it was saved untrained).

    Raises
    ------
    ProjectError
        A missing or malformed field, a forest that does not fit the classes, or settings the
        stage refuses (e.g. a thresholded source without threshold settings).
    """
    class_names = _attr(group, "class_names", _class_names)
    source = _attr(group, "source", _text)
    threshold = _attr(group, "threshold", _threshold) if "threshold" in group.attrs else None
    forest = read_forest(group["forest"], len(class_names)) if "forest" in group else None
    try:
        return ObjectStage(
            source=source,
            threshold=threshold,
            features=_attr(group, "features", _features),
            class_names=class_names,
            forest=forest,
            raw_channels=_attr(group, "raw_channels", _count),
            spatial_axes=_attr(group, "spatial_axes", _spatial_axes),
            block_shape=_attr(group, "block_shape", _triple),
            halo=_attr(group, "halo", _triple),
            table_settings=_attr(group, "table_settings", _table_settings),
        )
    except ObjectsError as err:
        raise ProjectError(f"the object stage is invalid: {err}") from err


def _count(value: Any) -> int:
    if np.ndim(value) != 0 or np.asarray(value).dtype.kind not in "iu" or int(value) < 1:
        raise ValueError(f"expected a whole number >= 1, got {value!r}")
    return int(value)


def _spatial_axes(value: Any) -> str:
    if _text(value) not in ("yx", "zyx"):
        raise ValueError(f"expected 'yx' or 'zyx', got {value!r}")
    return str(value)
