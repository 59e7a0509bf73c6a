"""The input images ("lanes") an ilastik project was trained on: ``Input Data/infos/laneNNNN``.

Only the ``Raw Data`` role is read. Paths are kept as stored and also resolved against the
project's directory, the way ilastik does for relative dataset infos.
"""

from __future__ import annotations

import glob
import json
import ntpath
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ._h5 import numbered, text

__all__ = ["IlpLane", "parse_axistags", "read_lanes", "read_role_lanes", "split_internal_path"]

_CONTAINER = re.compile(r"\.(h5|hdf5|ilp|n5|npz)(?=/|$)", re.IGNORECASE)


@dataclass(frozen=True)
class IlpLane:
    """One training image of the project, as its ``Raw Data`` info describes it.

    Attributes
    ----------
    index : int
        Lane number (``laneNNNN``); label sets ``labelsNNN`` use the same number.
    nickname : str
        ilastik's display name of the dataset.
    file_path : str
        ``filePath`` exactly as stored (may be relative, absolute, or point into the project).
    resolved_path : str or None
        Absolute path of the file on disk (without the internal dataset path); relative paths
        are taken relative to the project's directory. None for project-internal data.
    internal_path : str or None
        Dataset inside an HDF5/N5/npz container, e.g. ``"/data"`` for ``inputdata/2d.h5/data``.
        For project-internal data, the dataset inside the ``.ilp``.
    location : str
        ``"FileSystem"`` or ``"ProjectInternal"`` (``""`` for an empty lane).
    axes : str or None
        The file's own axis keys from the stored vigra ``axistags``, e.g. ``"yxc"``.
    shape : tuple of int or None
        Shape in ``axes`` order: stored in the project, or read from an HDF5/npy file or the
        project-internal dataset when the project does not store it.
    dtype : str or None
        Pixel type when it could be read cheaply (HDF5, npy, project-internal), else None.
    exists : bool
        Whether the file is on disk, or the project-internal dataset is in the ``.ilp``.
    """

    index: int
    nickname: str
    file_path: str
    resolved_path: str | None
    internal_path: str | None
    location: str
    axes: str | None
    shape: tuple[int, ...] | None
    dtype: str | None
    exists: bool

    def size(self, key: str) -> int | None:
        """Length of axis ``key`` (1 if the data lacks that axis), or None if the shape is unknown.

        Parameters
        ----------
        key : str
            An axis key.

        Returns
        -------
        int or None
            The length.
        """
        if self.axes is None or self.shape is None or len(self.axes) != len(self.shape):
            return None
        return self.shape[self.axes.index(key)] if key in self.axes else 1


def split_internal_path(file_path: str) -> tuple[str, str | None]:
    """Split ``dir/file.h5/inner/path`` at the first ``.h5``, ``.hdf5``, ``.ilp``, ``.n5`` or ``.npz``.

    Returns
    -------
    str, str or None
        The file part and the internal path (with a leading ``/``), or None when there is none.

    Examples
    --------
    >>> split_internal_path("inputdata/2d.h5/data")
    ('inputdata/2d.h5', '/data')
    >>> split_internal_path("image.png")
    ('image.png', None)
    """
    match = _CONTAINER.search(file_path)
    if match is None or match.end() == len(file_path):
        return file_path, None
    inner = file_path[match.end() :].strip("/")
    return file_path[: match.end()], ("/" + inner) if inner else None


def parse_axistags(raw: Any) -> str | None:
    """Axis keys from vigra's axistags JSON (``{"axes": [{"key": "y", ...}, ...]}``)."""
    try:
        axes = json.loads(text(raw))["axes"]
        return "".join(str(a["key"]) for a in axes).lower()
    except (ValueError, KeyError, TypeError):
        return None


def _resolve(file_part: str, ilp_dir: Path) -> str:
    if ntpath.isabs(file_part) and not os.path.isabs(file_part):
        return file_part  # a Windows path saved on another machine: keep as is
    return os.path.normpath(os.path.join(ilp_dir, os.path.expanduser(file_part)))


def _on_disk(resolved: str) -> bool:
    if any(ch in resolved for ch in "*?["):
        return bool(glob.glob(resolved))
    return os.path.exists(resolved)


def _probe(resolved: str, internal: str | None) -> tuple[tuple[int, ...] | None, str | None]:
    """Shape and dtype of an HDF5 dataset or ``.npy`` file without reading its pixels."""
    try:
        if internal is not None and h5py.is_hdf5(resolved):
            with h5py.File(resolved, "r", locking=False) as f:
                ds = f[internal]
                return tuple(int(n) for n in ds.shape), str(ds.dtype)
        if resolved.lower().endswith(".npy"):
            arr = np.load(resolved, mmap_mode="r")
            return tuple(int(n) for n in arr.shape), str(arr.dtype)
    except (OSError, KeyError, ValueError, TypeError):
        pass
    return None, None


def _read_lane(f: h5py.File, index: int, info: h5py.Group | None, ilp_dir: Path) -> IlpLane:
    if info is None or "filePath" not in info:
        return IlpLane(index, "", "", None, None, "", None, None, None, False)
    file_path = text(info["filePath"][()])
    if "\\" in file_path and not ntpath.isabs(file_path):
        file_path = file_path.replace("\\", "/")  # a relative path saved on Windows
    location = text(info["location"][()]) if "location" in info else "FileSystem"
    axes = parse_axistags(info["axistags"][()]) if "axistags" in info else None
    shape = tuple(int(n) for n in np.ravel(info["shape"][()])) if "shape" in info else None
    dtype: str | None = None
    resolved: str | None = None
    internal: str | None
    if location == "ProjectInternal":
        dataset_id = text(info["datasetId"][()]) if "datasetId" in info else ""
        inner = (
            text(info["inner_path"][()]) if "inner_path" in info else f"/Input Data/local_data/{dataset_id}"
        )
        ds = f.get(inner)
        exists = isinstance(ds, h5py.Dataset)
        if isinstance(ds, h5py.Dataset):
            shape, dtype = shape or tuple(int(n) for n in ds.shape), str(ds.dtype)
        internal = inner
    else:
        file_part, internal = split_internal_path(file_path)
        resolved = _resolve(file_part, ilp_dir)
        exists = _on_disk(resolved)
        if exists:
            probed_shape, dtype = _probe(resolved, internal)
            shape = shape or probed_shape
    default_name = Path(split_internal_path(file_path)[0]).stem
    nickname = text(info["nickname"][()]) if "nickname" in info else default_name
    return IlpLane(index, nickname, file_path, resolved, internal, location, axes, shape, dtype, exists)


def read_lanes(f: h5py.File, ilp_dir: Path) -> tuple[IlpLane, ...]:
    """All lanes of ``Input Data/infos`` in lane order (none if the project has no data)."""
    return read_role_lanes(f, ilp_dir, "Raw Data")


def read_role_lanes(f: h5py.File, ilp_dir: Path, role: str) -> tuple[IlpLane, ...]:
    """The dataset infos of one input role (e.g. ``"Prediction Maps"``) of every lane, in lane order."""
    infos = f.get("Input Data/infos")
    if not isinstance(infos, h5py.Group):
        return ()
    lanes = []
    for key in numbered(list(infos.keys()), "lane"):
        raw = infos[key].get(role)
        info = raw if isinstance(raw, h5py.Group) else None
        lanes.append(_read_lane(f, int(key[len("lane") :]), info, ilp_dir))
    return tuple(lanes)
