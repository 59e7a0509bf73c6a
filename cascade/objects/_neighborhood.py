"""ilastik's "in neighborhood" features and the per-object shape plugins, on one batch of windows.

For each object (``reference/ilastik-objects.md`` 4.5): in its window, the exact Euclidean distance
of every pixel to the object with pixel pitch ``max(margin) // margin`` per axis; ``passed`` =
distance < ``max(margin)``; the neighbourhood = ``passed`` minus the object (pixels of other
objects count). Each selected feature is computed over the neighbourhood (``"<F> in
neighborhood"``) and over ``passed`` (``"<F> in object and neighborhood"``), with the definitions
of the features over objects; a histogram's range is that pixel set's own minimum and maximum.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from functools import partial

import numpy as np
from scipy import ndimage

from ..errors import ObjectsError
from ._accumulate import Partial, densify, pass1, pass2
from ._finish import finish, means
from ._selection import NEIGHBORHOOD, OBJECT_AND_NEIGHBORHOOD, SKELETON_2D
from ._selection import PASS2 as _PASS2


def pitch(margin: Sequence[int]) -> tuple[float, ...]:
    """ilastik's pixel pitch ``max(margin) // margin`` per axis, internal (``[z]yx``) order.

    An axis with margin 0 gets a pitch above ``max(margin)``: no pixel off the object's own
    lines along it is within the neighbourhood.
    """
    top = max(margin)
    return tuple(float(top // m) if m > 0 else float(top + 1) for m in margin[::-1])


def sets_features(values: list[np.ndarray], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Standard features of several pixel sets at once (each as the features of one object).

    Parameters
    ----------
    values : list of numpy.ndarray
        Per set its pixels' values, float32 ``(n_i, C)``.
    names : tuple of str
        Standard feature names (no quantiles: a set's histogram range is its own minimum and
        maximum).

    Returns
    -------
    dict of str to numpy.ndarray
        Feature name -> float32 ``(sets, k)``; rows of empty sets NaN.
    """
    sizes = np.array([len(v) for v in values], dtype=np.int64)
    channels = values[0].shape[1]
    pixels = np.concatenate(values) if sizes.sum() else np.zeros((0, channels), np.float32)
    labels = np.repeat(np.arange(1, len(values) + 1, dtype=np.uint32), sizes)
    origin = (0,)
    first = densify(pass1(pixels, labels, origin), len(values))
    second = None
    if any(name in _PASS2 for name in names) and pixels.size:
        lo, hi = first["min"].astype(np.float32), first["max"].astype(np.float32)
        second = densify(pass2(pixels, labels, origin, means(first), lo, hi), len(values))
    out = {}
    for name, table in finish(names, first, second).items():
        rows = table[1:]
        rows[sizes == 0] = np.nan
        out[name] = rows
    return out


def local_batch(
    raw: np.ndarray | None,
    labels: np.ndarray,
    ids: np.ndarray,
    relative: np.ndarray,
    origin: tuple[int, ...],
    *,
    names: tuple[str, ...],
    margin: tuple[int, ...],
) -> Partial:
    """The neighbourhood features of a batch of objects (a kernel for ``_windows.batched``).

    Parameters
    ----------
    raw : numpy.ndarray
        The batch's raw region (spatial axes + channel).
    labels : numpy.ndarray
        The batch's object ids.
    ids : numpy.ndarray
        The objects of the batch.
    relative : numpy.ndarray
        ``(n, 2, d)`` each object's window (starts, stops) in the region, internal order.
    origin : tuple of int
        The region's position in the image (unused here).
    names : tuple of str
        Base names of the selected local features.
    margin : tuple of int
        x, y[, z].

    Returns
    -------
    dict of str to numpy.ndarray
        ``ids`` and, per feature and suffix, float32 ``(n, k)``.
    """
    if raw is None:
        raise ObjectsError("neighbourhood features need the raw image")
    sampling = pitch(margin)
    limit = float(max(margin))
    sets: dict[str, list[np.ndarray]] = {NEIGHBORHOOD: [], OBJECT_AND_NEIGHBORHOOD: []}
    for object_id, (start, stop) in zip(ids, relative, strict=True):
        window = tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))
        inside = labels[window] == object_id
        passed = ndimage.distance_transform_edt(~inside, sampling=sampling) < limit
        values = raw[window]
        sets[NEIGHBORHOOD].append(values[passed & ~inside].astype(np.float32))
        sets[OBJECT_AND_NEIGHBORHOOD].append(values[passed].astype(np.float32))
    out: Partial = {"ids": ids}
    for suffix, pixel_sets in sets.items():
        for name, rows in sets_features(pixel_sets, names).items():
            out[name + suffix] = rows
    return out


def shape_batch(
    raw: np.ndarray | None,
    labels: np.ndarray,
    ids: np.ndarray,
    relative: np.ndarray,
    origin: tuple[int, ...],
    *,
    plugin: str,
    names: tuple[str, ...],
    image_shape: tuple[int, ...],
) -> Partial:
    """Convex-hull or skeleton features of a batch of objects (windows = bounding boxes).

    Parameters
    ----------
    raw : None
        Unused (these plugins read only the labels).
    labels, ids, relative
        As for :func:`local_batch`.
    origin : tuple of int
        The region's position in the image (internal order), for the crops' origins.
    plugin : str
        ``"2D Convex Hull Features"``, ``"3D Convex Hull Features"`` or ``"2D Skeleton Features"``.
    names : tuple of str
        The selected features of the plugin.
    image_shape : tuple of int
        The spatial shape of the whole image (internal order): vigra's skeleton depends on which
        sides of an object touch the image border.

    Returns
    -------
    dict of str to numpy.ndarray
        ``ids`` and per feature float32 ``(n, k)``.
    """
    module = importlib.import_module("._skeleton" if plugin == SKELETON_2D else "._hull", __package__)
    function = {
        "2D Convex Hull Features": "convex_hull_features_2d",
        "3D Convex Hull Features": "convex_hull_features_3d",
        SKELETON_2D: "skeleton_features_2d",
    }[plugin]
    compute = getattr(module, function)
    if plugin == SKELETON_2D:
        compute = partial(compute, image_shape=tuple(image_shape))
    rows: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for object_id, (start, stop) in zip(ids, relative, strict=True):
        window = tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))
        corner = tuple(int(o + a) for o, a in zip(origin, start, strict=True))
        values = compute(labels[window] == object_id, corner)
        for name in names:
            rows[name].append(np.asarray(values[name], dtype=np.float32).ravel())
    return {"ids": ids, **{key: np.stack(value) for key, value in rows.items()}}
