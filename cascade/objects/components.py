"""Objects from a segmentation or a label image: global connected components, blockwise.

ilastik labels a whole time point at once (vigra ``labelMultiArrayWithBackground``); here every
chunk is labelled on its own and the components are joined across chunk faces
(``_merge.py``), with the same result: regions of equal non-zero value, 4-connected in 2D and
6-connected in 3D (a z of extent 1 is 2D), numbered 1..N per time point in raster order of
their first pixel (x fastest, then y, then z), uint32.

Cost: one eager pass over the image (labels every chunk, keeps O(objects) tables); the
returned labels are lazy and label every chunk again when computed (one lookup per pixel).
"""

from __future__ import annotations

import dask.array as da
import numpy as np

from ..errors import ObjectsError
from ._cc import relabel_block, value_block
from ._merge import Components, block_results, relabel, scan
from .model import Objects

__all__ = ["label_components", "objects_from_label_image", "objects_from_segmentation"]


def check_axes(axes: str, ndim: int, channel: bool) -> str:
    """Check that ``axes`` are cascade's internal order ``[t][z]yx[c]`` for ``ndim`` dimensions.

    Parameters
    ----------
    axes : str
        Axis keys of the image.
    ndim : int
        The image's number of dimensions.
    channel : bool
        Whether the image must end with a ``c`` axis (True) or have none (False).

    Returns
    -------
    str
        The checked axes, lower case.

    Raises
    ------
    ObjectsError
        If the axes are not ``[t][z]yx`` (+ ``c``) or do not match ``ndim``.
    """
    keys = axes.strip().lower()
    allowed = ("tzyxc", "zyxc", "tyxc", "yxc") if channel else ("tzyx", "zyx", "tyx", "yx")
    if keys not in allowed:
        raise ObjectsError(
            f"axes {axes!r}: objects need one of {', '.join(allowed)} (cascade's internal order)"
        )
    if len(keys) != ndim:
        raise ObjectsError(f"axes {axes!r} name {len(keys)} dimensions but the image has {ndim}")
    return keys


def _check_dtype(image: da.Array, what: str) -> None:
    """Objects come from bool, integer or float values only."""
    if image.dtype.kind not in "biuf":
        raise ObjectsError(f"{what} must hold bool, integer or float values, got dtype {image.dtype}")


def as_tzyx(image: da.Array, axes: str) -> da.Array:
    """``image`` (axes without ``c``) as ``tzyx``: missing t and z inserted, t chunks of 1.

    Parameters
    ----------
    image : dask.array.Array
        An image with axes ``[t][z]yx``.
    axes : str
        Its axes.

    Returns
    -------
    dask.array.Array
        Four-dimensional, one time point per chunk.
    """
    index = tuple(None if key not in axes else slice(None) for key in "tzyx")
    volume: da.Array = image[index].rechunk({0: 1})
    return volume


def from_tzyx(labels: da.Array, axes: str) -> da.Array:
    """Drop the axes :func:`as_tzyx` inserted, back to ``axes``.

    Parameters
    ----------
    labels : dask.array.Array
        A ``tzyx`` array.
    axes : str
        The axes to return (``[t][z]yx``).

    Returns
    -------
    dask.array.Array
    """
    out: da.Array = labels[tuple(slice(None) if key in axes else 0 for key in "tzyx")]
    return out


def objects_from_components(
    image: da.Array, components: Components, axes: str, keep: np.ndarray | None
) -> Objects:
    """The :class:`Objects` of ``components`` of a ``tzyx`` image: kept ones numbered 1..N per t.

    Parameters
    ----------
    image : dask.array.Array
        The ``tzyx`` image the components were scanned from.
    components : Components
        Its global components.
    axes : str
        Axes of the returned labels (``[t][z]yx``).
    keep : ndarray of bool, optional
        Which components become objects (all when None).

    Returns
    -------
    Objects
    """
    ids = components.ids(keep)
    labels = relabel(image, components.luts(ids), relabel_block, "objects-labels")
    return Objects(from_tzyx(labels, axes), axes, components.counts(ids))


def label_components(image: da.Array, axes: str) -> Objects:
    """Connected components of equal non-zero values, numbered as ilastik numbers them.

    Parameters
    ----------
    image : dask.array.Array
        Axes ``[t][z]yx`` (internal order, no channel); bool, integer or float values, 0 the
        background. Any chunking.
    axes : str
        The image's axes.

    Returns
    -------
    Objects
        uint32 labels chunked like ``image`` (t chunks of 1), ids 1..N per time point in raster
        order of each object's first pixel (x fastest); 4-neighbourhood in 2D, 6 in 3D. The
        counts are computed now (one pass over ``image``); the labels are lazy.

    Raises
    ------
    ObjectsError
        If the axes do not fit or the values are not bool, integer or float.
    """
    axes = check_axes(axes, image.ndim, channel=False)
    _check_dtype(image, "an image to label")
    volume = as_tzyx(image, axes)
    components, _, _ = scan(volume)
    return objects_from_components(volume, components, axes, None)


def objects_from_segmentation(segmentation: da.Array, axes: str) -> Objects:
    """Objects of a segmentation (ilastik's "from binary image"): components of channel 0.

    Parameters
    ----------
    segmentation : dask.array.Array
        Axes ``[t][z]yx[c]``; with a ``c`` axis only channel 0 is used. Regions of equal non-zero
        value are objects (a binary image gives its foreground components).
    axes : str
        The segmentation's axes.

    Returns
    -------
    Objects
        As :func:`label_components`.

    Raises
    ------
    ObjectsError
        If the axes do not fit.
    """
    keys = axes.strip().lower()
    if keys.endswith("c"):
        check_axes(keys, segmentation.ndim, channel=True)
        segmentation, keys = segmentation[..., 0], keys[:-1]
    return label_components(segmentation, keys)


def _value_lut(block: np.ndarray, lut: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Label-image block -> ids: ``lut`` holds the block's sorted distinct values and their ids."""
    values, ids = lut
    out: np.ndarray = ids[np.searchsorted(values, block[0])][None]
    return out


def objects_from_label_image(label_image: da.Array, axes: str) -> Objects:
    """Objects of a label image (ilastik's "from label image"): no connectivity, consecutive ids.

    The distinct non-zero values of each time point become ids 1..N in ascending order of
    value; two disconnected pieces with one value stay one object (ilastik's
    ``OpRelabelConsecutive``).

    Parameters
    ----------
    label_image : dask.array.Array
        Axes ``[t][z]yx[c]`` (channel 0 when there is a ``c`` axis); integer or float values.
    axes : str
        The label image's axes.

    Returns
    -------
    Objects
        Lazy uint32 labels (t chunks of 1), eager counts and ``original_ids`` (per time point the
        original value of each id, entry 0 is 0, in the image's dtype).

    Raises
    ------
    ObjectsError
        If the axes do not fit.
    """
    keys = axes.strip().lower()
    if keys.endswith("c"):
        check_axes(keys, label_image.ndim, channel=True)
        label_image, keys = label_image[..., 0], keys[:-1]
    keys = check_axes(keys, label_image.ndim, channel=False)
    _check_dtype(label_image, "a label image")
    volume = as_tzyx(label_image, keys)
    per_block = block_results(volume, value_block)
    originals = []
    for t in range(volume.shape[0]):
        values = np.unique(np.concatenate([v for index, v in per_block.items() if index[0] == t]))
        originals.append(np.concatenate([np.zeros(1, volume.dtype), values[values != 0]]))
    luts = {}
    for index, local in per_block.items():
        ids = np.searchsorted(originals[index[0]][1:], local).astype(np.uint32) + 1
        luts[index] = (local, np.where(local == 0, 0, ids).astype(np.uint32))
    labels = relabel(volume, luts, _value_lut, "objects-relabelled")
    counts = tuple(len(o) - 1 for o in originals)
    return Objects(from_tzyx(labels, keys), keys, counts, tuple(originals))
