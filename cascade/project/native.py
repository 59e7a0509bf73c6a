"""cascade's own project file (``.cascade``): a versioned HDF5 layout with no pickles.

Layout (schema version 1; version 2 adds the object stage ``/objects``, see ``_native_objects``;
version 3 the stages' ``class_weights``)::

    /                      attrs: format="cascade-project", schema_version, raw_channels,
                                  raw_dtype, spatial_axes, provenance (JSON text)
    /stages/stage00        attrs: class_names (JSON), feature_ids (JSON), scales, compute_in_2d,
                                  class_weights (float64, one per class; optional)
                           selection_matrix (bool, features x scales)
    /stages/stage00/forest feature, threshold, left, right, value, roots; attr n_features
    /stages/stage00/labels/image000   coords (n, ndim) int32, values (n,) uint8;
                                      attrs shape, source

Everything is read back as plain numbers and strings: loading never unpickles or runs
anything stored in the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import h5py
import numpy as np

from ..errors import CascadeError, ProjectError
from ..features import FeatureSelection
from ..io import DISK_FULL, h5_file, make_temp_file
from ..objects import ObjectStage
from ..pipeline import Cascade, Stage
from ._forest_h5 import read_forest, write_forest
from ._native_objects import OBJECT_GROUP, check_stages, read_object_stage, write_object_stage

__all__ = [
    "FORMAT",
    "MAX_LABEL",
    "SCHEMA_VERSION",
    "SparseLabels",
    "has_object_stage",
    "is_cascade_project",
    "load_cascade",
    "load_object_stage",
    "read_labels",
    "save_cascade",
]

#: Largest label value (class number) a project stores: labels are uint8, as in ilastik.
MAX_LABEL = 255
FORMAT = "cascade-project"
#: Version 2 adds the object stage (``/objects``), version 3 the stages' class weights; a project
#: is written with the oldest version that holds it (an older cascade then refuses what it would
#: compute differently).
SCHEMA_VERSION = 3
_T = TypeVar("_T")

#: Per stage, per image: (coords (n, ndim), values (n,), image shape, source description).
SparseLabels = tuple[np.ndarray, np.ndarray, tuple[int, ...], str]


def save_cascade(
    cascade: Cascade,
    path: str | Path,
    *,
    labels: Sequence[Sequence[SparseLabels | None]] | None = None,
    objects: ObjectStage | None = None,
) -> Path:
    """Write a cascade (and optionally its sparse training labels and an object stage) to ``path``.

    The file is written under a temporary name and renamed when complete.

    Parameters
    ----------
    cascade : Cascade
        The cascade to save (trained or not). With an object stage, its ``stages`` may be empty
        (an object stage alone); its raw channels, dtype, axes and provenance are still saved.
    path : str or Path
        Output file, conventionally ending in ``.cascade``.
    labels : sequence, optional
        ``labels[stage][image]``: the sparse labels the stage was trained on.
    objects : ObjectStage, optional
        An object classification stage after the pixel stages (schema version 2).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ProjectError
        A missing folder, labels outside 0..``MAX_LABEL``, no stage at all, an object stage that
        does not fit the cascade, or a file that cannot be written.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ProjectError(f"cannot write project {path}: directory {path.parent} does not exist")
    check_stages(cascade, objects, path)
    for stored in (e for stage in labels or () for e in stage if e is not None):
        values = np.asarray(stored[1])
        if values.size and (values.min() < 0 or values.max() > MAX_LABEL):
            raise ProjectError(
                f"cannot write project {path}: the labels of {stored[3]} hold values outside "
                f"0..{MAX_LABEL} (labels are stored as uint8)"
            )
    partial: Path | None = None
    try:
        # a private temporary (O_EXCL, unpredictable name): nothing planted there is written through
        partial = Path(make_temp_file(str(path)))
        with h5_file(str(partial), "w") as f:
            f.attrs.update(
                format=FORMAT,
                schema_version=_schema_version(cascade, objects),
                raw_channels=cascade.raw_channels,
                raw_dtype=cascade.raw_dtype,
                spatial_axes=cascade.spatial_axes,
                provenance=json.dumps(dict(cascade.provenance), sort_keys=True, default=str),
                input_axes=cascade.input_axes or "",
            )
            for k, stage in enumerate(cascade.stages):
                group = f.create_group(f"stages/stage{k:02d}")
                _write_stage(group, stage)
                for i, entry in enumerate(labels[k] if labels and k < len(labels) else []):
                    if entry is not None:
                        _write_labels(group.require_group("labels").create_group(f"image{i:03d}"), entry)
            if objects is not None:
                write_object_stage(f.create_group(OBJECT_GROUP), objects)
        partial.replace(path)
    except BaseException as err:
        if partial is not None:
            partial.unlink(missing_ok=True)
        if isinstance(err, OSError):
            reason = "the disk is full" if err.errno in DISK_FULL else _one_line(err)
            raise ProjectError(f"cannot write project {path}: {reason}") from err
        raise
    return path


def _peek(path: str | Path, test: Callable[[h5py.File], bool]) -> bool:
    """Whether ``path`` is a cascade project (HDF5 with our ``format``) that passes ``test``."""
    try:
        if not h5py.is_hdf5(path):
            return False
        with h5py.File(path, "r", locking=False) as f:
            return bool(f.attrs.get("format") == FORMAT and test(f))
    except OSError:
        return False


def is_cascade_project(path: str | Path) -> bool:
    """Whether ``path`` is an HDF5 file with cascade's project ``format`` attribute.

    Parameters
    ----------
    path : str or Path
        A file.

    Returns
    -------
    bool
        False for a missing file or any other file.
    """
    return _peek(path, lambda f: True)


def _schema_version(cascade: Cascade, objects: ObjectStage | None) -> int:
    if any(stage.class_weights is not None for stage in cascade.stages):
        return 3
    return 2 if objects is not None else 1


def _write_stage(group: h5py.Group, stage: Stage) -> None:
    sel = stage.selection
    group.attrs.update(
        class_names=json.dumps(list(stage.class_names)),
        feature_ids=json.dumps(list(sel.feature_ids)),
        scales=np.asarray(sel.scales, np.float64),
        compute_in_2d=np.asarray(sel.compute_in_2d, bool),
    )
    group.create_dataset("selection_matrix", data=np.asarray(sel.matrix, bool))
    if stage.class_weights is not None:
        group.attrs["class_weights"] = np.asarray(stage.class_weights, np.float64)
    if stage.forest is not None:
        write_forest(group.create_group("forest"), stage.forest)


def _write_labels(group: h5py.Group, entry: SparseLabels) -> None:
    coords, values, shape, source = entry
    group.create_dataset("coords", data=np.asarray(coords, np.int32), compression="gzip")
    group.create_dataset("values", data=np.asarray(values, np.uint8), compression="gzip")
    group.attrs.update(shape=np.asarray(shape, np.int64), source=source)


def load_cascade(path: str | Path, *, allow_no_stages: bool = False) -> Cascade:
    """Read a ``.cascade`` project.

    Parameters
    ----------
    path : str or Path
        The project file.
    allow_no_stages : bool
        Return a cascade without stages (its raw data's description) for a project that holds
        an object stage only, instead of refusing it.

    Returns
    -------
    Cascade
        Its stages, forests, axes and export settings.

    Raises
    ------
    ProjectError
        One line naming the file and the problem: missing, not HDF5, not a cascade project,
        a newer schema, or inconsistent contents.
    """
    return _open(path, lambda f, p: _read(f, p, allow_no_stages))


def has_object_stage(path: str | Path) -> bool:
    """Whether ``path`` is a cascade project holding an object stage (nothing else is read).

    Parameters
    ----------
    path : str or Path
        A file.

    Returns
    -------
    bool
        False for a missing file, another file, or a pixel-only project.
    """
    return _peek(path, lambda f: OBJECT_GROUP in f)


def load_object_stage(path: str | Path) -> ObjectStage | None:
    """Read the object stage of a ``.cascade`` project.

    Parameters
    ----------
    path : str or Path
        The project file.

    Returns
    -------
    ObjectStage or None
        The object stage; None when the project holds pixel stages only. Its pixel stages
        (needed for the ``"pixel classification"`` source) are read by :func:`load_cascade`.

    Raises
    ------
    ProjectError
        As :func:`load_cascade`, or a missing or malformed object stage field.
    """

    def read(f: h5py.File, path: Path) -> ObjectStage | None:
        _check_format(f, path)
        if OBJECT_GROUP not in f:
            return None
        try:
            return read_object_stage(f[OBJECT_GROUP])
        except CascadeError as err:
            raise ProjectError(f"{path}: {err}") from err

    return _open(path, read)


def _open(path: str | Path, read: Callable[[h5py.File, Path], _T]) -> _T:
    """``read(file, path)`` on the open project; any damage becomes one ProjectError line."""
    path = Path(path)
    if path.is_dir():
        raise ProjectError(f"{path}: is a directory, not a project file (.ilp or .cascade)")
    if path.exists() and not path.is_file():
        raise ProjectError(f"{path}: is not a regular file, not a project file (.ilp or .cascade)")
    if not path.is_file():
        raise ProjectError(f"project file not found: {path}")
    try:
        with h5py.File(path, "r", locking=False) as f:
            return read(f, path)
    except ProjectError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise ProjectError(f"{path}: the project file is damaged or incomplete ({_one_line(err)})") from err


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _check_format(f: h5py.File, path: Path) -> None:
    if f.attrs.get("format") != FORMAT:
        raise ProjectError(f"{path}: not a cascade project (no format={FORMAT!r} attribute)")
    version = int(f.attrs["schema_version"])
    if version > SCHEMA_VERSION:
        raise ProjectError(
            f"{path}: project schema version {version} is newer than this cascade understands "
            f"({SCHEMA_VERSION}); upgrade cascade"
        )


def _read(f: h5py.File, path: Path, allow_no_stages: bool = False) -> Cascade:
    _check_format(f, path)
    names = sorted(f["stages"]) if "stages" in f else []
    if not names and OBJECT_GROUP in f and not allow_no_stages:
        raise ProjectError(
            f"{path}: the project holds an object stage only (no pixel stages); run it as object "
            "classification (export sources such as 'Object Predictions')"
        )
    if not names and OBJECT_GROUP not in f:
        raise ProjectError(f"{path}: the project holds no stages")
    try:
        stages = tuple(_read_stage(f["stages"][name]) for name in names)
    except CascadeError as err:
        raise ProjectError(f"{path}: {err}") from err
    return Cascade(
        stages=stages,
        raw_channels=int(f.attrs["raw_channels"]),
        raw_dtype=str(np.dtype(str(f.attrs["raw_dtype"]))),
        spatial_axes=str(f.attrs["spatial_axes"]),
        provenance=json.loads(str(f.attrs["provenance"])),
        input_axes=str(f.attrs.get("input_axes", "")) or None,
    )


def _read_stage(group: h5py.Group) -> Stage:
    selection = FeatureSelection.from_matrix(
        json.loads(str(group.attrs["feature_ids"])),
        np.asarray(group.attrs["scales"], np.float64),
        np.asarray(group["selection_matrix"][()], bool),
        np.asarray(group.attrs["compute_in_2d"], bool),
    )
    class_names = tuple(str(n) for n in json.loads(str(group.attrs["class_names"])))
    forest = None
    if "forest" in group:
        forest = read_forest(group["forest"], len(class_names))
    weights = None
    if "class_weights" in group.attrs:
        stored = np.asarray(group.attrs["class_weights"], np.float64).ravel()
        if stored.shape != (len(class_names),) or not np.all(np.isfinite(stored) & (stored > 0)):
            raise ProjectError(
                f"{group.name}: class_weights must be {len(class_names)} positive numbers, one per class"
            )
        weights = tuple(float(w) for w in stored)
    return Stage(selection=selection, class_names=class_names, forest=forest, class_weights=weights)


def read_labels(path: str | Path) -> list[list[SparseLabels]]:
    """The sparse training labels stored in a ``.cascade`` project, ``[stage][image]``.

    Parameters
    ----------
    path : str or Path
        The project file.

    Returns
    -------
    list of list of SparseLabels
        ``labels[stage][image]`` (empty when the project stores none).
    """
    out: list[list[SparseLabels]] = []
    with h5py.File(path, "r", locking=False) as f:
        stages: Mapping[str, Any] = f.get("stages", {})
        for name in sorted(stages):
            stage: Mapping[str, Any] = stages[name].get("labels", {})
            out.append(
                [
                    (
                        stage[i]["coords"][()],
                        stage[i]["values"][()],
                        tuple(int(v) for v in stage[i].attrs["shape"]),
                        str(stage[i].attrs["source"]),
                    )
                    for i in sorted(stage)
                ]
            )
    return out
