"""ilastik's object table (``--table_filename``): one row per object over all time points, CSV or HDF5.

Columns, in ilastik's order (``reference/ilastik-objects.md`` 5.5, ``TableExporter.do_export``):
``object_id`` (running index from 0), ``timestep``, ``labelimage_oid`` (the object's id in its time
point), ``User Label`` (class name, ``"0"`` if unlabelled), ``Predicted Class`` (class name),
``Probability of <class>`` per class, then the features by display name (``Mean Intensity``...),
a feature of several columns as ``<name>_<i>``; the ``Default features`` (``Bounding Box
Minimum_0``..., ``Center of the object_*``, ``Size in pixels``) come after the selected ones and a
display name is written once. Coordinates are in ilastik's x, y[, z] order.

ilastik orders the feature plugins by a Python ``set`` (so its column order changes between runs);
cascade writes the selected features in the classifier's order (sorted plugin, sorted feature).
The table is written time point by time point into a private temporary file that replaces the
target only when complete (:func:`cascade.io.atomic_files`). CSV files get ilastik's ``_table``
suffix (``objects.csv`` -> ``objects_table.csv``); ``.h5``/``.hdf5``/``.hd5`` targets get an HDF5
file with the structured dataset ``table`` and, given the images, ilastik's per-object crops
(:mod:`._crops`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from ..errors import ObjectsError
from ..io import atomic_files, h5_file
from ._crops import TableImages, write_crops
from .model import DEFAULT_FEATURES, FeatureTable, ObjectFeatureSelection

__all__ = ["table_path", "write_table"]

_H5_EXTENSIONS = (".h5", ".hdf5", ".hd5")
#: ilastik's display names of the default features (vigra_objfeats ``fill_properties``), in its order.
_DEFAULT_NAMES = {
    "Coord<Minimum>": "Bounding Box Minimum",
    "Coord<Maximum>": "Bounding Box Maximum",
    "RegionCenter": "Center of the object",
    "Count": "Size in pixels",
    "original_oid": "original_oid",
    "AtlasMapping": "AtlasMapping",
}


@dataclass(frozen=True)
class _Column:
    name: str
    plugin: str
    feature: str
    index: int


def table_path(target: str) -> str:
    """The file ilastik writes for ``--table_filename target``: CSV gets ``_table`` before its extension.

    Parameters
    ----------
    target : str
        The table file name as given.

    Returns
    -------
    str
        The path written.

    Examples
    --------
    >>> table_path("out/objects.csv")
    'out/objects_table.csv'
    >>> table_path("out/objects.h5")
    'out/objects.h5'
    """
    if target.lower().endswith(_H5_EXTENSIONS):
        return target
    base, dot, ext = target.rpartition(".")
    if not dot or "/" in ext or os.sep in ext:
        return f"{target}_table."  # ilastik's "{base}_table.{ext}" with an empty extension
    return f"{base}_table.{ext}"


def _display(plugin: str, feature: str, selection: ObjectFeatureSelection) -> str:
    if plugin == DEFAULT_FEATURES:
        return _DEFAULT_NAMES.get(feature, feature)
    params = selection.get(plugin, {}).get(feature, {})
    return str(params.get("displaytext", feature))


def _feature_columns(
    table: FeatureTable, selection: ObjectFeatureSelection, wanted: Sequence[str] | None
) -> list[_Column]:
    """Feature columns: selected plugins and features sorted, then the default features."""
    order = [(p, f) for p in sorted(selection) if p in table for f in sorted(table[p]) if f in selection[p]]
    defaults = table.get(DEFAULT_FEATURES, {})
    order += [(DEFAULT_FEATURES, f) for f in _DEFAULT_NAMES if f in defaults]
    columns: list[_Column] = []
    seen: set[str] = set()
    for plugin, feature in order:
        name = _display(plugin, feature, selection)
        chosen = wanted is None or plugin == DEFAULT_FEATURES or name in wanted or feature in wanted
        if not chosen or name in seen:
            continue
        seen.add(name)
        width = int(np.asarray(table[plugin][feature]).reshape(len(table[plugin][feature]), -1).shape[1])
        columns += [_Column(name if width == 1 else f"{name}_{i}", plugin, feature, i) for i in range(width)]
    return columns


def _rows_of(table: FeatureTable) -> int:
    default = table.get(DEFAULT_FEATURES, {})
    if "Count" in default:
        return int(np.shape(default["Count"])[0])
    return max((int(np.shape(v)[0]) for p in table.values() for v in p.values()), default=1)


def _steps(
    tables: Sequence[FeatureTable],
    columns: Sequence[_Column],
    class_names: Sequence[str],
    probabilities: Sequence[np.ndarray] | None,
    user_labels: Sequence[np.ndarray] | None,
) -> Iterator[dict[str, np.ndarray]]:
    """The table's columns, one time point at a time (only its objects, background row dropped)."""
    names = np.array(["0", *class_names], dtype=object)
    start = 0
    for t, table in enumerate(tables):
        n = _rows_of(table) - 1
        if n <= 0:
            continue
        ids = np.arange(1, n + 1)
        out: dict[str, np.ndarray] = {
            "object_id": np.arange(start, start + n, dtype=np.int64),
            "timestep": np.full(n, t, dtype=np.int64),
            "labelimage_oid": ids.astype(np.int64),
        }
        start += n
        if probabilities is not None:
            labels = np.zeros(n + 1, dtype=np.int64)
            if user_labels is not None and t < len(user_labels):
                given = np.asarray(user_labels[t], dtype=np.int64)[: n + 1]
                labels[: len(given)] = np.where((given >= 0) & (given <= len(class_names)), given, 0)
            p = np.asarray(probabilities[t], dtype=np.float32)
            out["User Label"] = names[labels[1:]]
            out["Predicted Class"] = names[1 + np.argmax(p[1:], axis=1)]
            for k, name in enumerate(class_names):
                out[f"Probability of {name}"] = p[1:, k]
        for col in columns:
            values = np.asarray(table[col.plugin][col.feature])
            out[col.name] = values.reshape(values.shape[0], -1)[1:, col.index]
        yield out


def _write_csv(handle: TextIO, steps: Iterator[dict[str, np.ndarray]], header: Sequence[str]) -> None:
    handle.write(",".join(header) + "\n")
    for step in steps:
        cols = [step[name] for name in header]
        for row in zip(*cols, strict=True):
            handle.write(",".join(map(str, row)) + "\n")


def _h5_dtype(header: Sequence[str], class_names: Sequence[str], first: Mapping[str, np.ndarray]) -> np.dtype:
    width = max((len(n.encode()) for n in ("0", *class_names)), default=1)
    fields: list[tuple[str, Any]] = []
    for name in header:
        kind = first[name].dtype
        fields.append((name, f"S{width}" if kind.kind == "O" else kind))
    return np.dtype(fields)


def _write_h5(
    f: Any, steps: Iterator[dict[str, np.ndarray]], header: Sequence[str], class_names: Sequence[str]
) -> None:
    dataset = None
    for step in steps:
        if dataset is None:
            dtype = _h5_dtype(header, class_names, step)
            dataset = f.create_dataset("table", shape=(0,), maxshape=(None,), dtype=dtype, chunks=True)
        rows = np.zeros(len(step["object_id"]), dtype=dataset.dtype)
        for name in header:
            values = step[name]
            rows[name] = np.char.encode(values.astype(str), "utf-8") if values.dtype == object else values
        dataset.resize((dataset.shape[0] + len(rows),))
        dataset[-len(rows) :] = rows
    if dataset is None:
        f.create_dataset("table", shape=(0,), dtype=np.dtype([("object_id", np.int64)]))


def write_table(
    target: str,
    tables: Sequence[FeatureTable],
    *,
    selection: ObjectFeatureSelection,
    class_names: Sequence[str] = (),
    probabilities: Sequence[np.ndarray] | None = None,
    user_labels: Sequence[np.ndarray] | None = None,
    wanted: Sequence[str] | None = None,
    images: TableImages | None = None,
) -> str:
    """Write ilastik's object table of one input (all time points), atomically.

    Parameters
    ----------
    target : str
        ``--table_filename`` with placeholders already filled in; ``.h5``/``.hdf5``/``.hd5`` gives
        HDF5, anything else CSV (written as :func:`table_path`).
    tables : sequence of FeatureTable
        The object features of each time point (row ``i`` = object id ``i``).
    selection : ObjectFeatureSelection
        The selected features (their display names come from its ``displaytext`` parameters).
    class_names : sequence of str
        The classes; with ``probabilities`` they give the label, prediction and probability columns.
    probabilities : sequence of numpy.ndarray, optional
        Per time point ``(N + 1, K)``; None (no classifier) leaves those columns out.
    user_labels : sequence of numpy.ndarray, optional
        Per time point, the class of each object id that the user labelled (0 none).
    wanted : sequence of str, optional
        The table export settings' feature names (display or short); None: every selected feature.
    images : TableImages, optional
        The label and raw images: an HDF5 table then also gets ilastik's ``/images`` crops.

    Returns
    -------
    str
        The file written.

    Raises
    ------
    ObjectsError
        Probabilities that do not match the tables.
    """
    if probabilities is not None and len(probabilities) != len(tables):
        raise ObjectsError(f"{len(probabilities)} probability tables for {len(tables)} time point(s)")
    first = next((t for t in tables if _rows_of(t) > 1), tables[0] if tables else {})
    columns = _feature_columns(first, selection, wanted)
    header = ["object_id", "timestep", "labelimage_oid"]
    if probabilities is not None:
        header += ["User Label", "Predicted Class", *(f"Probability of {n}" for n in class_names)]
    header += [c.name for c in columns]
    final = table_path(target)
    steps = _steps(tables, columns, class_names, probabilities, user_labels)
    with atomic_files([final]) as (temp,):
        if final.lower().endswith(_H5_EXTENSIONS):
            with h5_file(temp, "w") as f:
                _write_h5(f, steps, header, class_names)
                if images is not None:
                    write_crops(f, tables, images)
        else:
            with open(temp, "w", encoding="utf-8", newline="") as handle:
                _write_csv(handle, steps, header)
    return final
