"""The results an ilastik Object Classification project caches: object features, label image, probabilities.

ilastik saves what it computed for its training lanes (``reference/ilastik-objects.md`` 9.1):
``ObjectExtraction/RegionFeatures/<lane>/<"[[t], [t+1]]">/<plugin>/<feature>`` (float32 ``(N+1, k)``),
``ObjectExtraction/LabelImage_v2/labelimage<lane>/block*`` (uint32 ``txyzc`` blocks with a
``blockSlice`` attribute) and ``ObjectClassification/CachedProbabilities/<lane>/<t>``. They are the
references cascade's results are tested against, and the stored features let ``--retrain`` train
an object forest without recomputing them.
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np

from ..errors import ProjectError
from ..objects import FeatureTable

__all__ = ["stored_label_image", "stored_probabilities", "stored_region_features"]

_ROI = re.compile(r"\[\[(\d+)\],\s*\[(\d+)\]\]$")
_SLICE = re.compile(r"(\d+):(\d+)")


def _group(path: str | Path, key: str) -> tuple[h5py.File, h5py.Group | None]:
    try:
        f = h5py.File(path, "r", locking=False)
    except OSError as err:
        raise ProjectError(f"{path}: not a readable ilastik project") from err
    group = f.get(key)
    return f, group if isinstance(group, h5py.Group) else None


def stored_region_features(path: str | Path, lane: int = 0) -> dict[int, FeatureTable]:
    """The object features ilastik stored for one training lane, per time point.

    Parameters
    ----------
    path : str or Path
        The ``.ilp`` file.
    lane : int
        The lane.

    Returns
    -------
    dict
        t -> plugin -> feature -> float32 array ``(N + 1, k)``; only the time points ilastik saved.
    """
    f, group = _group(path, f"ObjectExtraction/RegionFeatures/{lane:04d}")
    with f:
        tables: dict[int, FeatureTable] = {}
        for roi, plugins in group.items() if group is not None else ():
            match = _ROI.match(roi)
            if match is None or not isinstance(plugins, h5py.Group):
                continue
            tables[int(match.group(1))] = {
                plugin: {name: np.asarray(ds[()], dtype=np.float32) for name, ds in feats.items()}
                for plugin, feats in plugins.items()
                if isinstance(feats, h5py.Group)
            }
        return dict(sorted(tables.items()))


def stored_probabilities(path: str | Path, lane: int = 0) -> dict[int, np.ndarray]:
    """``CachedProbabilities`` of one lane: t -> float32 ``(N + 1, K)`` (row 0 the background).

    Parameters
    ----------
    path : str or Path
        The ``.ilp`` file.
    lane : int
        The lane.

    Returns
    -------
    dict
        The stored probabilities per time point.
    """
    f, group = _group(path, f"ObjectClassification/CachedProbabilities/{lane:04d}")
    with f:
        if group is None:
            return {}
        steps = sorted((int(k), k) for k in group if k.isdigit())
        return {t: np.asarray(group[k][()], dtype=np.float32) for t, k in steps}


def stored_label_image(path: str | Path, lane: int = 0, key: str = "LabelImage_v2") -> dict[int, np.ndarray]:
    """The cached object label image of one lane, per time point, in cascade's ``[z]yx`` order.

    Parameters
    ----------
    path : str or Path
        The ``.ilp`` file.
    lane : int
        The lane.
    key : str
        ``"LabelImage_v2"`` (object ids) or ``"CachedThresholdLabels"`` (thresholded labels of
        ``ThresholdTwoLevels``, before relabelling).

    Returns
    -------
    dict
        t -> uint32 array ``(y, x)`` in 2D or ``(z, y, x)`` in 3D; only whole-volume blocks.
    """
    where = (
        f"ObjectExtraction/LabelImage_v2/labelimage{lane:03d}"
        if key == "LabelImage_v2"
        else f"ThresholdTwoLevels/CachedThresholdLabels/threshold{lane:03d}"
    )
    f, group = _group(path, where)
    with f:
        images: dict[int, np.ndarray] = {}
        for ds in group.values() if group is not None else ():
            bounds = _SLICE.findall(str(ds.attrs.get("blockSlice", "")))
            if not isinstance(ds, h5py.Dataset) or ds.ndim != 5 or len(bounds) != 5:
                continue
            block = np.asarray(ds[()], dtype=np.uint32)[0, ..., 0]  # x, y, z
            zyx = block.transpose(2, 1, 0)
            images[int(bounds[0][0])] = zyx[0] if zyx.shape[0] == 1 else zyx
        return dict(sorted(images.items()))
