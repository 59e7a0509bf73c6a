"""vigra's 2D skeleton object features (ilastik's "2D Skeleton Features"), per object.

ilastik calls ``vigra.analysis.extractSkeletonFeatures(labels)`` (vigra's ``skeletonizeImage`` with
``pruneSalienceRelative(0.2)``, topology preserved). This module follows vigra's steps on one
object's crop, in vigra's visiting order (ties decide the result):

1. vector distance transform to the nearest pixel of another label (``OuterBoundary``, image
   border inactive);
2. raw skeleton: of each 4-adjacent pixel pair whose nearest boundary points are neither equal nor
   adjacent, the pixel nearer the bisector; plus vigra's fix for lines stopping short of the border;
3. thinning of simple points (end points kept), cheapest squared distance first;
4. the skeleton as a tree rooted at its eccentricity centre (Dijkstra), branch lengths and
   saliences, loops around holes, pruning of branches with salience < 0.2 x the centre's.

Features: ``Diameter`` (length of the longest path), ``Euclidean Diameter`` (distance of its ends),
``Total Length``, ``Average Length`` (per branch), ``Branch Count``, ``Hole Count``, ``Skeleton
Center`` (the middle pixel of the longest path), ``Terminal 1``, ``Terminal 2`` (its ends); points
in global (x, y).

What outside the object's pixels matters: **the image border**. vigra does not treat the image
border as object boundary, and pixels on the image border are never thinned, so an object touching
the border has another skeleton than the same object inside the image: pass ``image_shape``.
Other objects count as background, except in one tie-break: vigra's loop search floods the
skeleton's bounding box through zero-weight edges, and skeleton pixels of *other* objects inside
that box change the flood's (irrelevant, astronomically large) distances and with them the heap
layout, which could pick another of two equally short loops.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ObjectsError
from ._hull import check_object_mask
from ._skeleton_grid import raw_skeleton, thin, vector_distance
from ._skeleton_tree import tree_features

Point = tuple[int, int]

__all__ = ["SKELETON_FEATURES", "skeleton_features_2d"]

#: Feature names in vigra's order.
SKELETON_FEATURES = (
    "Diameter",
    "Euclidean Diameter",
    "Total Length",
    "Average Length",
    "Branch Count",
    "Hole Count",
    "Skeleton Center",
    "Terminal 1",
    "Terminal 2",
)

_POINTS = ("Skeleton Center", "Terminal 1", "Terminal 2")


def skeleton_features_2d(
    mask: np.ndarray, origin: tuple[int, ...], *, image_shape: tuple[int, ...] | None = None
) -> dict[str, np.ndarray]:
    """vigra's 2D skeleton features of one object (ilastik's "2D Skeleton Features").

    Parameters
    ----------
    mask : numpy.ndarray
        bool (y, x) crop holding the object (True); the crop may be larger than the object.
    origin : tuple of int
        The crop's offset in the image, (y, x).
    image_shape : tuple of int, optional
        The whole image's (y, x) shape. vigra's result depends on which sides of the object touch
        the image border (see the module docstring). Default: the crop is the whole image.

    Returns
    -------
    dict of str to numpy.ndarray
        Feature name -> 1-D float64 values: one value for the scalars, (x, y) for ``Skeleton
        Center``, ``Terminal 1`` and ``Terminal 2``.

    Raises
    ------
    ObjectsError
        If the mask is not a 2-D bool array with at least one True pixel, ``origin`` does not
        have two integers or the crop does not lie inside ``image_shape``.
    """
    offset = check_object_mask(mask, origin, 2)
    crop, corner, image = _padded_crop(mask, offset, image_shape)
    width, height = image[1][0] - image[0][0], image[1][1] - image[0][1]
    vectors = vector_distance(crop, corner[0], corner[1], 2 * (width + height))
    squared = vectors[..., 0] ** 2 + vectors[..., 1] ** 2
    dest = raw_skeleton(crop, vectors, squared)
    thin(dest, squared, _interior(crop.shape, corner, image))
    if not dest.any():
        return _empty()
    values = tree_features(dest, squared, crop, corner[0], corner[1], _max_weight(width, height))
    names = SKELETON_FEATURES[:6]
    features = {name: values[k : k + 1].copy() for k, name in enumerate(names)}
    features.update({name: values[6 + 2 * k : 8 + 2 * k].copy() for k, name in enumerate(_POINTS)})
    return features


def _max_weight(width: int, height: int) -> float:
    """vigra's search limit: the edge count of the image's 8-connected grid times sqrt(2)."""
    edges = (width - 1) * height + width * (height - 1) + 2 * (width - 1) * (height - 1)
    return edges * math.sqrt(2.0)


def _empty() -> dict[str, np.ndarray]:
    """vigra's default ``SkeletonFeatures`` (an object without skeleton pixels)."""
    return {name: np.zeros(2 if name in _POINTS else 1) for name in SKELETON_FEATURES}


def _padded_crop(
    mask: np.ndarray, offset: tuple[int, ...], image_shape: tuple[int, ...] | None
) -> tuple[np.ndarray, Point, tuple[Point, Point]]:
    """The object's bounding box plus one background pixel on each side inside the image."""
    if image_shape is None:
        image_shape = (offset[0] + mask.shape[0], offset[1] + mask.shape[1])
        top = (offset[1], offset[0])
    else:
        top = (0, 0)
    if (
        len(image_shape) != 2
        or any(o < t for o, t in zip(offset[::-1], top, strict=True))
        or any(o + n > s for o, n, s in zip(offset, mask.shape, image_shape, strict=True))
    ):
        raise ObjectsError(
            f"object crop at {offset} of shape {mask.shape} is not inside the image {image_shape}"
        )
    ys, xs = np.nonzero(mask)
    y0, y1 = int(ys.min()) + offset[0], int(ys.max()) + offset[0] + 1
    x0, x1 = int(xs.min()) + offset[1], int(xs.max()) + offset[1] + 1
    bottom = (int(image_shape[1]), int(image_shape[0]))
    cx0, cy0 = max(x0 - 1, top[0]), max(y0 - 1, top[1])
    cx1, cy1 = min(x1 + 1, bottom[0]), min(y1 + 1, bottom[1])
    crop = np.zeros((cy1 - cy0, cx1 - cx0), dtype=bool)
    crop[y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0] = mask[
        y0 - offset[0] : y1 - offset[0], x0 - offset[1] : x1 - offset[1]
    ]
    return crop, (cx0, cy0), (top, bottom)


def _interior(shape: tuple[int, ...], corner: Point, image: tuple[Point, Point]) -> np.ndarray:
    """Pixels whose 8 neighbours all lie inside the image (vigra thins only these)."""
    ys = np.arange(shape[0]) + corner[1]
    xs = np.arange(shape[1]) + corner[0]
    inside_y = (ys > image[0][1]) & (ys < image[1][1] - 1)
    inside_x = (xs > image[0][0]) & (xs < image[1][0] - 1)
    return inside_y[:, None] & inside_x[None, :]
