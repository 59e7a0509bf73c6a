"""cascade's own project file (``.cascade``): a versioned HDF5 layout with no pickles.

Layout (schema version 1)::

    /                      attrs: format="cascade-project", schema_version=1, raw_channels,
                                  raw_dtype, spatial_axes, provenance (JSON text)
    /stages/stage00        attrs: class_names (JSON), feature_ids (JSON), scales, compute_in_2d
                           selection_matrix (bool, features x scales)
    /stages/stage00/forest feature, threshold, left, right, value, roots; attr n_features
    /stages/stage00/labels/image000   coords (n, ndim) int32, values (n,) uint8;
                                      attrs shape, source

Everything is read back as plain numbers and strings: loading never unpickles or runs
anything stored in the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import CascadeError, ProjectError
from ..features import FeatureSelection
from ..forest import PackedForest
from ..io import DISK_FULL, h5_file, make_temp_file
from ..pipeline import Cascade, Stage

__all__ = [
    "FORMAT",
    "MAX_LABEL",
    "SCHEMA_VERSION",
    "SparseLabels",
    "describe_cascade",
    "is_cascade_project",
    "load_cascade",
    "read_labels",
    "save_cascade",
]

#: Largest label value (class number) a project stores: labels are uint8, as in ilastik.
MAX_LABEL = 255
FORMAT = "cascade-project"
SCHEMA_VERSION = 1
_FOREST_ARRAYS = {
    "feature": np.int32,
    "threshold": np.float32,
    "left": np.int32,
    "right": np.int32,
    "value": np.float32,
    "roots": np.int64,
}

#: Per stage, per image: (coords (n, ndim), values (n,), image shape, source description).
SparseLabels = tuple[np.ndarray, np.ndarray, tuple[int, ...], str]


def save_cascade(
    cascade: Cascade,
    path: str | Path,
    *,
    labels: Sequence[Sequence[SparseLabels | None]] | None = None,
) -> Path:
    """Write a cascade (and optionally its sparse training labels) to ``path``.

    The file is written under a temporary name and renamed when complete.

    Parameters
    ----------
    cascade : Cascade
        The cascade to save (trained or not).
    path : str or Path
        Output file, conventionally ending in ``.cascade``.
    labels : sequence, optional
        ``labels[stage][image]``: the sparse labels the stage was trained on.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ProjectError
        A missing folder, labels outside 0..``MAX_LABEL``, or a file that cannot be written.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ProjectError(f"cannot write project {path}: directory {path.parent} does not exist")
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
                schema_version=SCHEMA_VERSION,
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
        partial.replace(path)
    except BaseException as err:
        if partial is not None:
            partial.unlink(missing_ok=True)
        if isinstance(err, OSError):
            reason = "the disk is full" if err.errno in DISK_FULL else _one_line(err)
            raise ProjectError(f"cannot write project {path}: {reason}") from err
        raise
    return path


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
    try:
        if not h5py.is_hdf5(path):
            return False
        with h5py.File(path, "r", locking=False) as f:
            return bool(f.attrs.get("format") == FORMAT)
    except OSError:
        return False


def _write_stage(group: h5py.Group, stage: Stage) -> None:
    sel = stage.selection
    group.attrs.update(
        class_names=json.dumps(list(stage.class_names)),
        feature_ids=json.dumps(list(sel.feature_ids)),
        scales=np.asarray(sel.scales, np.float64),
        compute_in_2d=np.asarray(sel.compute_in_2d, bool),
    )
    group.create_dataset("selection_matrix", data=np.asarray(sel.matrix, bool))
    if stage.forest is not None:
        forest = group.create_group("forest")
        forest.attrs["n_features"] = stage.forest.n_features
        for name, dtype in _FOREST_ARRAYS.items():
            forest.create_dataset(
                name, data=np.asarray(getattr(stage.forest, name), dtype), compression="gzip"
            )


def _write_labels(group: h5py.Group, entry: SparseLabels) -> None:
    coords, values, shape, source = entry
    group.create_dataset("coords", data=np.asarray(coords, np.int32), compression="gzip")
    group.create_dataset("values", data=np.asarray(values, np.uint8), compression="gzip")
    group.attrs.update(shape=np.asarray(shape, np.int64), source=source)


def load_cascade(path: str | Path) -> Cascade:
    """Read a ``.cascade`` project.

    Parameters
    ----------
    path : str or Path
        The project file.

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
    path = Path(path)
    if not path.is_file():
        raise ProjectError(f"project file not found: {path}")
    try:
        with h5py.File(path, "r", locking=False) as f:
            return _read(f, path)
    except ProjectError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise ProjectError(f"{path}: the project file is damaged or incomplete ({_one_line(err)})") from err


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _read(f: h5py.File, path: Path) -> Cascade:
    if f.attrs.get("format") != FORMAT:
        raise ProjectError(f"{path}: not a cascade project (no format={FORMAT!r} attribute)")
    version = int(f.attrs["schema_version"])
    if version > SCHEMA_VERSION:
        raise ProjectError(
            f"{path}: project schema version {version} is newer than this cascade understands "
            f"({SCHEMA_VERSION}); upgrade cascade"
        )
    names = sorted(f["stages"])
    if not names:
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
        forest = _read_forest(group["forest"], len(class_names))
    return Stage(selection=selection, class_names=class_names, forest=forest)


def _read_forest(group: h5py.Group, n_classes: int) -> PackedForest:
    arrays = {}
    for name, dtype in _FOREST_ARRAYS.items():
        data = group[name][()]
        if data.dtype != np.dtype(dtype):
            raise ProjectError(f"forest array {name!r} has dtype {data.dtype}, expected {np.dtype(dtype)}")
        arrays[name] = data
    n_nodes = arrays["feature"].shape[0]
    n_features = int(group.attrs["n_features"])
    consistent = (
        all(arrays[k].shape == (n_nodes,) for k in ("threshold", "left", "right"))
        and arrays["value"].shape == (n_nodes, n_classes)
        and arrays["roots"].ndim == 1
        and np.all((arrays["roots"] >= 0) & (arrays["roots"] < n_nodes))
        and np.all((arrays["left"] >= -1) & (arrays["left"] < n_nodes))
        and np.all((arrays["right"] >= -1) & (arrays["right"] < n_nodes))
        and np.all(arrays["feature"] < n_features)
    )
    if not consistent:
        raise ProjectError("forest arrays are inconsistent (node counts, class count or child indices)")
    _check_leaves(arrays["left"], arrays["right"], arrays["value"])
    return PackedForest(n_features=n_features, **arrays)


def _check_leaves(left: np.ndarray, right: np.ndarray, value: np.ndarray) -> None:
    """Every leaf must hold a class distribution (finite, >= 0, summing to 1), as the .ilp reader requires."""
    leaf = left < 0
    if np.any(leaf != (right < 0)):
        raise ProjectError("forest arrays are inconsistent (a node has one child)")
    rows = value[leaf].astype(np.float64)
    valid = np.isfinite(rows).all(axis=1) & (rows >= 0).all(axis=1)
    valid &= np.abs(rows.sum(axis=1) - 1.0) <= 1e-3
    if not valid.all():
        bad = int(np.flatnonzero(leaf)[np.flatnonzero(~valid)[0]])
        raise ProjectError(
            f"a forest leaf (node {bad}) holds {rows[~valid][0].tolist()}, not a class distribution "
            "(finite values >= 0 summing to 1)"
        )


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
        for name in sorted(f["stages"]):
            stage: Mapping[str, Any] = f["stages"][name].get("labels", {})
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


def describe_cascade(cascade: Cascade, path: str | Path | None = None) -> str:
    """A human-readable summary of a cascade project for ``cascade info``.

    Parameters
    ----------
    cascade : Cascade
        The project's cascade.
    path : str or Path, optional
        The file, named in the summary.

    Returns
    -------
    str
        Several lines: stages, classes, features, forests.
    """
    lines = []
    if path is not None:
        lines.append(f"project: {path}")
    n = len(cascade.stages)
    lines.append(f"workflow: {'Pixel Classification' if n == 1 else f'Autocontext ({n} stages)'}")
    lines.append(
        f"raw data: {cascade.raw_channels} channel(s), {cascade.raw_dtype}, "
        f"spatial axes {cascade.spatial_axes}"
    )
    z = 2 if cascade.spatial_axes == "zyx" else None
    labels = read_labels(path) if path is not None and Path(path).suffix != ".ilp" else []
    for k, stage in enumerate(cascade.stages):
        sel = stage.selection
        lines.append(f"stage {k + 1}: classes {', '.join(stage.class_names)}")
        for fid, row in zip(sel.feature_ids, sel.matrix):
            scales = [
                f"{s}{' (2D)' if sel.compute_in_2d[j] else ''}"
                for j, (s, on) in enumerate(zip(sel.scales, row))
                if on
            ]
            if scales:
                lines.append(f"  {fid}: {', '.join(scales)}")
        lines.append(f"  feature channels: {sel.n_channels(cascade.input_channels(k), 64 if z else None)}")
        if k < len(labels) and labels[k]:
            counts = np.zeros(stage.n_classes, np.int64)
            for _, values, _, _ in labels[k]:
                counts += np.bincount(values, minlength=stage.n_classes + 1)[1 : stage.n_classes + 1]
            lines.append("  labels: " + ", ".join(f"{c}={int(v)}" for c, v in zip(stage.class_names, counts)))
        if stage.forest is None:
            lines.append("  forest: not trained")
        else:
            lines.append(
                f"  forest: {stage.forest.n_trees} trees, {stage.forest.n_features} features, "
                f"{stage.forest.feature.shape[0]} nodes"
            )
    for key, value in sorted(cascade.provenance.items()):
        lines.append(f"{key}: {value}")
    return "\n".join(lines)
