"""Read ilastik Object Classification projects (the four OC workflows) into an :class:`ObjectStage`.

Layout (``reference/ilastik-objects.md`` sections 1, 2.1, 4.2, 5, 6 and 9.1): ``ThresholdTwoLevels``
(prediction-map and pixel-classification variants), ``ObjectClassification/SelectedFeatures``,
``LabelNames``, ``ClassifierForests`` (vigra layout, as in Pixel Classification), ``LabelInputs``,
``ExportSettings`` (a pickle: read by :func:`._pickle.plain_unpickle`, which runs no code),
``Blockwise Object Classification`` and ``Object Information Export``. The PC+OC workflow's
pixel part (``FeatureSelections``/``PixelClassification``) is read as a one-stage Pixel
Classification project.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import CascadeError, ObjectsError, ProjectError
from ..objects import ObjectStage, ThresholdSettings
from ._h5 import text, texts
from ._ilp_lanes import IlpLane, read_lanes, read_role_lanes
from ._ilp_settings import _read_export
from ._pickle import plain_unpickle
from .ilp import IlpProject, _one_line, _read_classifier, _read_stage

__all__ = ["OBJECT_WORKFLOWS", "IlpObjectProject", "ilp_workflow", "read_object_ilp"]

#: ``workflowName`` (lower case) -> :data:`cascade.objects.OBJECT_SOURCES` entry.
OBJECT_WORKFLOWS: dict[str, str] = {
    "object classification (from prediction image)": "probabilities",
    "object classification (from binary image)": "segmentation",
    "object classification (from label image)": "label image",
    "object classification (from pixel classification)": "pixel classification",
}
#: The input role an object stage reads besides ``Raw Data``, per source (None: raw only).
SECOND_ROLE: dict[str, str | None] = {
    "probabilities": "Prediction Maps",
    "segmentation": "Segmentation Image",
    "label image": "Label Image",
    "pixel classification": None,
}
_METHODS = {0: "simple", 1: "hysteresis", 2: "graph cut", 3: "IPHT (identity-preserving hysteresis)"}


@dataclass(frozen=True)
class IlpObjectProject:
    """What cascade reads from an ilastik Object Classification project.

    Attributes
    ----------
    path : Path
        The ``.ilp`` file (absolute).
    ilastik_version : str
        ``ilastikVersion`` as stored.
    workflow : str
        The stored ``workflowName``.
    stage : ObjectStage
        The object stage (forest None when the project stores none).
    pixels : IlpProject or None
        The pixel classification part of the PC+OC workflow; None for the other three.
    lanes : tuple of IlpLane
        The ``Raw Data`` of each training lane.
    second_lanes : tuple of IlpLane
        The second input of each lane (prediction maps, segmentation or label image); empty for PC+OC.
    labels : tuple of tuple of numpy.ndarray
        ``LabelInputs``: per lane, per time point, the class (1..K, 0 unlabelled) of each object id.
    export : dict
        The ``Object Information Export`` settings (same keys as :attr:`IlpProject.export`).
    """

    path: Path
    ilastik_version: str
    workflow: str
    stage: ObjectStage
    pixels: IlpProject | None
    lanes: tuple[IlpLane, ...]
    second_lanes: tuple[IlpLane, ...]
    labels: tuple[tuple[np.ndarray, ...], ...]
    export: dict[str, Any]

    @property
    def second_role(self) -> str | None:
        """ilastik's name of the second input role (``"Prediction Maps"``...), None for PC+OC."""
        return SECOND_ROLE[self.stage.source]

    @property
    def has_labels(self) -> bool:
        """Whether any object of any lane carries a class label."""
        return any(bool(np.any(per_t > 0)) for lane in self.labels for per_t in lane)


def ilp_workflow(path: str | Path) -> str | None:
    """The ``workflowName`` an ``.ilp`` stores, or None if the file cannot be read as a project.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    str or None
        The workflow name as stored.
    """
    try:
        with h5py.File(path, "r", locking=False) as f:
            return text(f["workflowName"][()]) if "workflowName" in f else None
    except (OSError, KeyError, ValueError, TypeError):
        return None


def read_object_ilp(path: str | Path) -> IlpObjectProject:
    """Read an ilastik Object Classification project (any of its four workflows).

    Parameters
    ----------
    path : str or Path
        The ``.ilp`` file.

    Returns
    -------
    IlpObjectProject
        The project.

    Raises
    ------
    ProjectError
        A missing or damaged file, a project of another workflow, graph-cut or IPHT thresholding,
        or a hostile ``ExportSettings`` pickle.
    """
    path = Path(path).absolute()
    if not path.is_file():
        raise ProjectError(f"project file not found: {path}")
    try:
        handle = h5py.File(path, "r", locking=False)
    except OSError as err:
        raise ProjectError(f"{path}: not an ilastik project (not a readable HDF5 file)") from err
    try:
        with handle as f:
            return _read(f, path)
    except CascadeError as err:
        if isinstance(err, ProjectError):
            raise
        raise ProjectError(f"{path}: {err}") from err
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError) as err:
        raise ProjectError(f"{path}: the project file is damaged or incomplete ({_one_line(err)})") from err


def _read(f: h5py.File, path: Path) -> IlpObjectProject:
    name = text(f["workflowName"][()]) if "workflowName" in f else ""
    source = OBJECT_WORKFLOWS.get(name.strip().lower())
    if source is None:
        raise ProjectError(
            f"{path}: workflow '{name or 'none'}' is not Object Classification; "
            "run Pixel Classification and Autocontext projects with cascade predict as usual"
        )
    oc = f.get("ObjectClassification")
    if not isinstance(oc, h5py.Group):
        raise ProjectError(f"{path}: an Object Classification project needs the group ObjectClassification")
    version = text(f["ilastikVersion"][()]) if "ilastikVersion" in f else "unknown"
    lanes = read_lanes(f, path.parent)
    role = SECOND_ROLE[source]
    second = read_role_lanes(f, path.parent, role) if role else ()
    pixels = _read_pixels(f, path, version, lanes) if source == "pixel classification" else None
    stage = _object_stage(f, oc, source, lanes, path)
    return IlpObjectProject(
        path=path,
        ilastik_version=version,
        workflow=name,
        stage=stage,
        pixels=pixels,
        lanes=lanes,
        second_lanes=second,
        labels=_label_inputs(oc.get("LabelInputs")),
        export=_read_export(f.get("Object Information Export")),
    )


def _object_stage(
    f: h5py.File, oc: h5py.Group, source: str, lanes: tuple[IlpLane, ...], path: Path
) -> ObjectStage:
    names = _class_names(oc)
    forest = None
    forests = oc.get("ClassifierForests")
    if isinstance(forests, h5py.Group) and names:
        forest, _, _ = _read_classifier(forests, len(names), f"{path}:ObjectClassification", [], 1)
    threshold = (
        _threshold(f.get("ThresholdTwoLevels"), path)
        if source in ("probabilities", "pixel classification")
        else None
    )
    channels, spatial = _raw_geometry(lanes, path)
    block, halo = _blockwise(f.get("Blockwise Object Classification"))
    return ObjectStage(
        source=source,
        threshold=threshold,
        features=read_feature_selection(oc.get("SelectedFeatures")),
        class_names=names,
        forest=forest,
        raw_channels=channels,
        spatial_axes=spatial,
        block_shape=block,
        halo=halo,
        table_settings=_table_settings(oc.get("ExportSettings"), path),
    )


def _read_pixels(f: h5py.File, path: Path, version: str, lanes: tuple[IlpLane, ...]) -> IlpProject:
    """The pixel classification part of a PC+OC project, as a one-stage Pixel Classification project."""
    missing = [
        g for g in ("FeatureSelections", "PixelClassification") if not isinstance(f.get(g), h5py.Group)
    ]
    if missing:
        raise ProjectError(f"{path}: a PC+OC project needs the group(s) {', '.join(missing)}")
    issues: list[str] = []
    stage = _read_stage(f, 0, "", lanes, version, f"{path}:PixelClassification", issues)
    return IlpProject(
        path=path,
        ilastik_version=version,
        workflow="Pixel Classification",
        stages=(stage,),
        lanes=lanes,
        export={},
        saved=text(f["time"][()]) if "time" in f else None,
        issues=tuple(issues),
    )


def _class_names(oc: h5py.Group) -> tuple[str, ...]:
    """``LabelNames`` (an untrained project may store a placeholder number instead: no names)."""
    ds = oc.get("LabelNames")
    if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "SOU" or ds.size == 0:
        return ()
    return texts(ds[()])


def _scalar(group: h5py.Group, key: str, default: Any) -> Any:
    return np.ravel(group[key][()])[0].item() if key in group else default


def _threshold(group: Any, path: Path) -> ThresholdSettings:
    """ilastik's ``ThresholdTwoLevels`` settings (defaults of section 2.1 for absent keys)."""
    if not isinstance(group, h5py.Group):
        return ThresholdSettings()
    method = int(_scalar(group, "CurOperator", 0))
    if method not in (0, 1):
        label = _METHODS.get(method, f"number {method}")
        raise ProjectError(
            f"{path}: thresholding method {label} (CurOperator {method}) is not supported; "
            "cascade runs simple and hysteresis thresholding"
        )
    sigma = group.get("SmootherSigma")
    sigmas = tuple(float(_scalar(sigma, k, 1.0)) if isinstance(sigma, h5py.Group) else 1.0 for k in "xyz")
    try:
        return ThresholdSettings(
            method=_METHODS[method],
            channel=int(_scalar(group, "Channel", 0)),
            core_channel=int(_scalar(group, "CoreChannel", 0)),
            low=float(_scalar(group, "LowThreshold", 0.5)),
            high=float(_scalar(group, "HighThreshold", 0.8)),
            sigmas=(sigmas[0], sigmas[1], sigmas[2]),
            min_size=int(_scalar(group, "MinSize", 10)),
            max_size=int(_scalar(group, "MaxSize", 1_000_000)),
        )
    except ObjectsError as err:
        raise ProjectError(f"{path}: ThresholdTwoLevels: {err}") from err


def _param(value: Any) -> Any:
    """One stored feature parameter as a plain value (``margin`` arrays become tuples of int)."""
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return tuple(v.item() for v in value.ravel())
    return text(value) if isinstance(value, (bytes, np.bytes_)) else np.asarray(value).item()


def read_feature_selection(group: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """``SelectedFeatures`` (or ``Features``): plugin -> feature -> parameters (``margin``...).

    Parameters
    ----------
    group : h5py.Group or None
        The group; None or empty gives an empty selection.

    Returns
    -------
    dict
        The selection; plugins without features are left out.
    """
    selection: dict[str, dict[str, dict[str, Any]]] = {}
    if not isinstance(group, h5py.Group):
        return selection
    for plugin, features in group.items():
        if not isinstance(features, h5py.Group) or not len(features):
            continue
        selection[plugin] = {
            name: {k: _param(v[()]) for k, v in params.items() if isinstance(v, h5py.Dataset)}
            for name, params in features.items()
            if isinstance(params, h5py.Group)
        }
    return selection


def _raw_geometry(lanes: tuple[IlpLane, ...], path: Path) -> tuple[int, str]:
    """(raw channels, spatial axes) of the first training lane whose shape is known."""
    for lane in lanes:
        channels, z = lane.size("c"), lane.size("z")
        if channels is not None and z is not None:
            return channels, "zyx" if z > 1 else "yx"
    raise ProjectError(
        f"{path}: the project records no raw data shape (and its raw data is not found), "
        "so the input's channels cannot be checked"
    )


def _blockwise(group: Any) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """ilastik's blockwise block shape and halo (x, y, z), defaults 512 and 64."""
    out = []
    for key, default in (("BlockShape3dDict", 512), ("HaloPadding3dDict", 64)):
        sub = group.get(key) if isinstance(group, h5py.Group) else None
        values = [int(_scalar(sub, k, default)) if isinstance(sub, h5py.Group) else default for k in "xyz"]
        out.append((values[0], values[1], values[2]))
    return out[0], out[1]


def _table_settings(ds: Any, path: Path) -> dict[str, Any]:
    """The table export settings (``ExportSettings`` pickle); empty if never configured."""
    if not isinstance(ds, h5py.Dataset):
        return {}
    raw = ds[()]
    data = raw.tobytes() if isinstance(raw, np.void) else raw
    if isinstance(data, str):
        data = data.encode("latin-1")
    if not isinstance(data, (bytes, np.bytes_)):
        raise ProjectError(f"{path}:ObjectClassification/ExportSettings: not a pickle ({type(raw).__name__})")
    value = plain_unpickle(bytes(data), f"{path}:ObjectClassification/ExportSettings")
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ProjectError(f"{path}:ObjectClassification/ExportSettings: expected (settings, features)")
    settings, selected = value
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise ProjectError(f"{path}:ObjectClassification/ExportSettings: the settings are not a dict")
    return {**settings, "selected features": list(selected or [])}


def _label_inputs(group: Any) -> tuple[tuple[np.ndarray, ...], ...]:
    """``LabelInputs/<lane>/<t>``: per lane, per t, float64 class per object id as int64."""
    if not isinstance(group, h5py.Group):
        return ()
    lanes = []
    for lane_key in sorted(k for k in group if k.isdigit()):
        lane = group[lane_key]
        steps = sorted((int(k), k) for k in lane if k.isdigit())
        lanes.append(tuple(np.asarray(lane[k][()], dtype=np.float64).astype(np.int64) for _, k in steps))
    return tuple(lanes)
