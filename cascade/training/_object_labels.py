"""Object labels from a label image: each labelled object takes the class most of its labelled pixels have.

The user paints (or saves) a label image over the raw data: pixel value ``k`` (1..K) marks the
object under it as class ``k``, 0 is unlabelled. This is ilastik's ``LabelInputs`` (one class per
object id, per time point), computed chunk by chunk: every block of the object label image and
the label image gives the (time point, object id, class) triples of its labelled pixels with their
counts, and only those small tables are merged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dask.array as da
import numpy as np
from dask.base import compute
from dask.delayed import delayed

from ..errors import ObjectsError
from ..objects import Objects

__all__ = ["ObjectLabels", "object_classes"]


@dataclass(frozen=True)
class ObjectLabels:
    """The classes of the labelled objects of one image and what was ambiguous about them.

    Attributes
    ----------
    classes : tuple of numpy.ndarray
        Per time point, int64 ``(N + 1,)``: class 1..K of object id ``i``, 0 unlabelled (row 0,
        the background, is always 0), as ilastik's ``LabelInputs``.
    mixed : tuple of (int, int, numpy.ndarray)
        ``(t, id, pixel counts per class 1..K)`` of the objects whose labelled pixels hold more
        than one class (the majority won).
    on_background : int
        Labelled pixels on no object (ignored).
    """

    classes: tuple[np.ndarray, ...]
    mixed: tuple[tuple[int, int, np.ndarray], ...]
    on_background: int

    @property
    def labelled(self) -> int:
        """Number of labelled objects over all time points."""
        return int(sum(np.count_nonzero(c) for c in self.classes))


def _block_triples(ids: np.ndarray, labels: np.ndarray, t0: int, has_t: bool) -> np.ndarray:
    """``(t, id, class, count)`` rows (int64) of one block's labelled pixels; id 0 = background."""
    labels = np.asarray(labels)
    mask = labels != 0
    if not mask.any():
        return np.zeros((0, 4), np.int64)
    where = np.nonzero(mask)
    t = where[0].astype(np.int64) + t0 if has_t else np.zeros(len(where[0]), np.int64)
    values = labels[where]
    if values.dtype.kind == "f" and not np.array_equal(values, np.floor(values)):
        raise ObjectsError(
            f"the object labels hold the value {values[values != np.floor(values)][0]}; "
            "label values must be whole numbers"
        )
    rows = np.stack([t, ids[where].astype(np.int64), values.astype(np.int64)], axis=1)
    keys, counts = np.unique(rows, axis=0, return_counts=True)
    return np.concatenate([keys, counts[:, None]], axis=1)


def object_classes(objects: Objects, labels: da.Array, n_classes: int) -> ObjectLabels:
    """The class of every labelled object: the most frequent label value among its pixels.

    Parameters
    ----------
    objects : Objects
        The object label image (ids 1..N per time point).
    labels : dask.array.Array
        The label image, the same shape and axes as ``objects.labels``: 0 unlabelled, 1..K a class.
    n_classes : int
        K.

    Returns
    -------
    ObjectLabels
        Per time point the class of each object id, the objects with mixed labels, and the
        labelled pixels on the background.

    Raises
    ------
    ObjectsError
        A shape mismatch, a label value outside 0..K or not whole, or an object whose labelled
        pixels hold two classes equally often (the class cannot be decided).
    """
    if tuple(labels.shape) != tuple(objects.labels.shape):
        raise ObjectsError(
            f"the object labels have shape {tuple(labels.shape)} but the objects "
            f"{tuple(objects.labels.shape)} (axes {objects.axes}); they must cover the same image"
        )
    has_t = objects.axes.startswith("t")
    labels = labels.rechunk(objects.labels.chunks)
    t_starts = np.cumsum((0, *objects.labels.chunks[0])) if has_t else np.zeros(1, np.int64)
    id_blocks = objects.labels.to_delayed()
    label_blocks = labels.to_delayed()
    parts = [
        delayed(_block_triples)(
            id_blocks[index], label_blocks[index], int(t_starts[index[0]]) if has_t else 0, has_t
        )
        for index in np.ndindex(*id_blocks.shape)
    ]
    triples = np.concatenate([np.zeros((0, 4), np.int64), *compute(*parts)])
    return _decide(triples, objects.counts, n_classes)


def _decide(triples: np.ndarray, counts: Sequence[int], n_classes: int) -> ObjectLabels:
    """Merge the blocks' ``(t, id, class, count)`` rows into one class per object."""
    bad = triples[(triples[:, 2] < 0) | (triples[:, 2] > n_classes)]
    if len(bad):
        raise ObjectsError(
            f"the object labels hold the value {int(bad[0, 2])}; label values must be 0 (unlabelled) "
            f"to {n_classes} (the number of object classes)"
        )
    background = triples[:, 1] == 0
    on_background = int(triples[background, 3].sum())
    triples = triples[~background]
    classes = [np.zeros(n + 1, np.int64) for n in counts]
    mixed = []
    keys, inverse = np.unique(triples[:, :2], axis=0, return_inverse=True)
    tally = np.zeros((len(keys), n_classes + 1), np.int64)
    np.add.at(tally, (inverse.ravel(), triples[:, 2]), triples[:, 3])
    for (t, oid), row in zip(keys.tolist(), tally):
        best = np.flatnonzero(row == row.max())
        if len(best) > 1:
            raise ObjectsError(
                f"object {oid} (time point {t}) has as many labelled pixels of class {best[0]} as of "
                f"class {best[1]} ({int(row.max())} each); label it with one class"
            )
        classes[t][oid] = int(best[0])
        if np.count_nonzero(row) > 1:
            mixed.append((int(t), int(oid), row[1:].copy()))
    return ObjectLabels(tuple(classes), tuple(mixed), on_background)
