"""ilastik's convex hull and skeleton feature tables of a whole (in-memory) label image.

A driver over :mod:`._hull` and :mod:`._skeleton` for a label image that holds every pixel of its
objects (one time point, or one block whose objects lie wholly inside it): one row per label, row
0 the background, float32 as ilastik stores them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from scipy import ndimage

from ..errors import ObjectsError
from ._hull import HULL_FEATURES, convex_hull_features_2d, convex_hull_features_3d
from ._skeleton import SKELETON_FEATURES, skeleton_features_2d

__all__ = ["SHAPE_PLUGINS", "shape_feature_table"]

#: ilastik's plugin names -> (spatial dimensions, feature names).
SHAPE_PLUGINS: dict[str, tuple[int, tuple[str, ...]]] = {
    "2D Convex Hull Features": (2, HULL_FEATURES),
    "3D Convex Hull Features": (3, HULL_FEATURES),
    "2D Skeleton Features": (2, SKELETON_FEATURES),
}

Compute = Callable[[np.ndarray, tuple[int, ...]], dict[str, np.ndarray]]


def shape_feature_table(
    labels: np.ndarray,
    plugins: Iterable[str],
    *,
    origin: tuple[int, ...] | None = None,
    image_shape: tuple[int, ...] | None = None,
    count: int | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """The convex hull / skeleton features of every object of a label image, as ilastik stores them.

    Parameters
    ----------
    labels : numpy.ndarray
        Integer label image (y, x) or (z, y, x); 0 is the background, object ``i`` has value ``i``.
    plugins : iterable of str
        ilastik plugin names, keys of :data:`SHAPE_PLUGINS`.
    origin : tuple of int, optional
        Offset of ``labels`` in the image (default zeros).
    image_shape : tuple of int, optional
        The whole image's shape (default: ``labels`` is the image); the skeleton depends on it.
    count : int, optional
        Number of objects N (default ``labels.max()``).

    Returns
    -------
    dict
        plugin -> feature -> float32 array (N + 1, k); row 0 and rows of absent labels are zeros.

    Raises
    ------
    ObjectsError
        For an unknown plugin, a plugin for another dimensionality or a label image that is not
        integer.
    """
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "ui":
        raise ObjectsError("shape features: the label image must be an integer numpy array")
    start = (0,) * labels.ndim if origin is None else tuple(int(o) for o in origin)
    computes = {name: _compute(name, labels.ndim, image_shape or labels.shape) for name in plugins}
    total = int(labels.max()) if count is None else count
    table = {
        name: {f: np.zeros((total + 1, _width(f, labels.ndim)), np.float32) for f in SHAPE_PLUGINS[name][1]}
        for name in computes
    }
    for i, box in enumerate(ndimage.find_objects(labels, max_label=total), start=1):
        if box is None:
            continue
        corner = tuple(s.start + o for s, o in zip(box, start, strict=True))
        mask = labels[box] == i
        for name, compute in computes.items():
            for feature, values in compute(mask, corner).items():
                table[name][feature][i] = values
    return table


def _width(feature: str, ndim: int) -> int:
    """Columns of a feature: a point (x, y[, z]) or one value."""
    return ndim if feature.endswith("Center") or feature.startswith("Terminal") else 1


def _compute(name: str, ndim: int, image_shape: tuple[int, ...]) -> Compute:
    if name not in SHAPE_PLUGINS:
        raise ObjectsError(f"shape features: unknown plugin {name!r}; known: {', '.join(SHAPE_PLUGINS)}")
    if SHAPE_PLUGINS[name][0] != ndim:
        raise ObjectsError(
            f"shape features: {name!r} needs a {SHAPE_PLUGINS[name][0]}-D label image, got {ndim}-D"
        )
    if name == "2D Skeleton Features":
        return lambda mask, corner: skeleton_features_2d(mask, corner, image_shape=image_shape)
    return convex_hull_features_2d if ndim == 2 else convex_hull_features_3d
