"""Training an object stage natively: object labels from a label image, the spec, ``cascade train``."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage

from cascade.errors import ObjectsError
from cascade.objects import Objects
from cascade.training._object_labels import object_classes


def _objects(ids: np.ndarray, axes: str, chunks: tuple[int, ...]) -> Objects:
    steps = ids if axes.startswith("t") else ids[None]
    counts = tuple(int(step.max()) for step in steps)
    return Objects(labels=da.from_array(ids, chunks=chunks), axes=axes, counts=counts)


def _scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Objects (scan-order ids) and a label image marking most of them with 1 or 2, some mixed."""
    rng = np.random.default_rng(seed)
    ids = ndimage.label(rng.random((40, 50)) > 0.6)[0].astype(np.uint32)
    labels = np.zeros(ids.shape, np.uint8)
    for oid in range(1, int(ids.max()) + 1, 2):
        ys, xs = np.nonzero(ids == oid)
        labels[ys[0], xs[0]] = 1 + oid % 4 // 2  # one pixel of every other object
    return ids, labels


@pytest.mark.parametrize("chunks", [(40, 50), (7, 9), (13, 50)])
def test_each_labelled_object_takes_its_labelled_class(chunks: tuple[int, int]) -> None:
    ids, labels = _scene(0)
    result = object_classes(_objects(ids, "yx", chunks), da.from_array(labels, chunks=(11, 6)), 2)
    expected = np.zeros(int(ids.max()) + 1, np.int64)
    expected[ids[labels > 0]] = labels[labels > 0]
    assert len(result.classes) == 1 and np.array_equal(result.classes[0], expected)
    assert result.labelled == np.count_nonzero(expected) > 10
    assert result.mixed == () and result.on_background == 0


def test_majority_wins_and_mixed_objects_are_reported() -> None:
    ids, labels = _scene(1)
    big = int(np.argmax(np.bincount(ids.ravel())[1:])) + 1
    ys, xs = np.nonzero(ids == big)
    labels[ys[:3], xs[:3]] = 2
    labels[ys[3:4], xs[3:4]] = 1
    background = np.argwhere(ids == 0)[:5]
    labels[tuple(background.T)] = 1
    result = object_classes(_objects(ids, "yx", (9, 8)), da.from_array(labels), 2)
    assert result.classes[0][big] == 2
    assert [(t, oid, counts.tolist()) for t, oid, counts in result.mixed] == [(0, big, [1, 3])]
    assert result.on_background == 5


def test_time_points_are_labelled_separately() -> None:
    ids0, labels0 = _scene(2)
    ids1, labels1 = _scene(3)
    ids, labels = np.stack([ids0, ids1]), np.stack([labels0, labels1])
    result = object_classes(_objects(ids, "tyx", (1, 9, 11)), da.from_array(labels, chunks=(2, 5, 50)), 2)
    for t in range(2):
        expected = np.zeros(int(ids[t].max()) + 1, np.int64)
        expected[ids[t][labels[t] > 0]] = labels[t][labels[t] > 0]
        assert np.array_equal(result.classes[t], expected)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("tie", "as many labelled pixels of class 1 as of class 2"),
        ("value", "the value 3; label values must be 0"),
        ("fraction", "the value 1.5; label values must be whole"),
        ("shape", "shape \\(40, 49\\)"),
    ],
)
def test_undecidable_or_invalid_labels_are_refused(change: str, message: str) -> None:
    ids, labels = _scene(4)
    values = labels.astype(np.float32)
    ys, xs = np.nonzero(ids == 1)
    if change == "tie":
        values[ys[:2], xs[:2]] = [1, 2]
    elif change == "value":
        values[ys[0], xs[0]] = 3
    elif change == "fraction":
        values[ys[0], xs[0]] = 1.5
    else:
        values = values[:, :49]
    with pytest.raises(ObjectsError, match=message):
        object_classes(_objects(ids, "yx", (10, 10)), da.from_array(values), 2)
