"""Training an object stage natively: object labels from a label image, the spec, ``cascade train``."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import yaml
from helpers import cascade
from scipy import ndimage

from cascade.errors import CascadeError, ObjectsError
from cascade.objects import Objects, ThresholdSettings
from cascade.training import load_spec, object_classes, object_feature_selection, parse_spec

ROOT = Path(__file__).resolve().parents[1]


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


def test_example_spec_has_an_object_stage() -> None:
    spec = load_spec(ROOT / "configs" / "train-example.yaml")
    assert spec.objects is not None and spec.objects.source == "pixel classification"
    assert spec.objects.threshold == ThresholdSettings(sigmas=(1.0, 1.0, 1.0), min_size=10)
    assert spec.objects.classes == ("small", "large")
    assert spec.images[0].object_labels is not None and spec.images[1].object_labels is None
    assert spec.images[0].object_labels.endswith("object-labels.tif")


def test_object_stage_alone_from_a_segmentation(tmp_path: Path) -> None:
    text = """
images:
  - {raw: a.h5/raw, object_input: seg.h5/seg, object_labels: ol.tif}
  - {raw: b.h5/raw, object_input: seg-b.h5/seg}
objects: {source: segmentation, classes: [a, b, c], features: [Mean, Count, Mean in neighborhood]}
forest: {seed: 4294967295}
"""
    spec = parse_spec(yaml.safe_load(text), tmp_path)
    assert spec.stages == () and spec.objects is not None and spec.objects.threshold is None
    assert spec.images[0].object_input == str(tmp_path / "seg.h5/seg")
    assert spec.images[0].labels == () and spec.seed == 4294967295
    assert object_feature_selection(spec.objects.features, 3, 1) == {
        "Standard Object Features": {"Mean": {}, "Count": {}, "Mean in neighborhood": {"margin": (30, 30, 1)}}
    }


@pytest.mark.parametrize(("ndim", "channels", "columns"), [(2, 1, 156), (3, 2, 0)])
def test_ilastik_default_features_are_the_gui_defaults(ndim: int, channels: int, columns: int) -> None:
    selection = object_feature_selection("ilastik-default", ndim, channels)
    plugins = {2: ["2D Convex Hull Features", "2D Skeleton Features"], 3: ["3D Convex Hull Features"]}
    assert sorted(selection) == sorted([*plugins[ndim], "Standard Object Features"])
    standard = selection["Standard Object Features"]
    assert not {"RegionCenter", "Coord<Minimum>", "Coord<Maximum>"} & set(standard)
    assert ("Covariance in neighborhood" in standard) == (channels > 1)
    assert standard["Histogram in neighborhood"] == {"margin": (30, 30) if ndim == 2 else (30, 30, 1)}
    width = {"Histogram": 64, "Quantiles": 7, "RegionRadii": ndim, "RegionAxes": ndim * ndim}
    if columns:  # 2d_wPred's 156 Standard columns (reference 4.7): the same selection
        total = sum(width.get(n.replace(" in neighborhood", ""), 1) for n in standard)
        assert total == columns
    assert "InputCenter" not in selection[plugins[ndim][0]]
    assert "Convexity" in selection[plugins[ndim][0]]


@pytest.mark.parametrize(
    ("objects", "images", "message"),
    [
        ("{classes: [a, b]}", "[{raw: a.tif, object_labels: o.tif}]", "has no stages"),
        ("{source: otsu, classes: [a, b]}", "[{raw: a.tif}]", "source must be one of"),
        ("{source: segmentation, classes: [a]}", "[{raw: a.tif}]", "at least two class names"),
        (
            "{source: segmentation, classes: [a, b], features: nope}",
            "[{raw: a}]",
            "unknown object feature set",
        ),
        ("{source: segmentation, classes: [a, b], threshold: 0.5}", "[{raw: a}]", "take no 'threshold'"),
        ("{source: probabilities, classes: [a, b], threshold: {lo: 1}}", "[{raw: a}]", "unknown key 'lo'"),
        (
            "{source: probabilities, classes: [a, b], threshold: {low: x}}",
            "[{raw: a}]",
            "low must be a number",
        ),
        (
            "{source: probabilities, classes: [a, b], threshold: {method: otsu}}",
            "[{raw: a}]",
            "method must be",
        ),
        ("{source: segmentation, classes: [a, b], colour: red}", "[{raw: a}]", "unknown key 'colour'"),
        (
            "{source: segmentation, classes: [a, b]}",
            "[{raw: a, object_labels: o}]",
            "needs an 'object_input'",
        ),
        ("{source: segmentation, classes: [a, b]}", "[{raw: a, object_input: s}]", "at least one image"),
        (None, "[{raw: a, labels: l, object_labels: o}]", "has no 'objects' stage"),
    ],
)
def test_bad_object_specs(objects: str | None, images: str, message: str) -> None:
    text = f"images: {images}\n" + (f"objects: {objects}\n" if objects else "stages: [{classes: [a, b]}]\n")
    with pytest.raises(CascadeError, match=message):
        parse_spec(yaml.safe_load(text), Path("."))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--raw_data", "r.tif", "--prediction_maps", "p.h5"], ["--object_labels"]),
        (["--raw_data", "r.tif", "--object_labels", "o.tif"], ["--labels", "--segmentation_image"]),
        (
            [
                "--raw_data",
                "r.tif",
                "--object_labels",
                "a.tif",
                "--object_labels",
                "b.tif",
                "--label_image",
                "l",
            ],
            ["1 raw image(s) but 2 object label image(s)"],
        ),
        (
            [
                "--raw_data",
                "r.tif",
                "--object_labels",
                "o",
                "--segmentation_image",
                "s",
                "--label_image",
                "l",
            ],
            ["give one object source"],
        ),
        (["spec.yaml", "--object_labels", "o.tif"], ["in the training spec file", "not both"]),
    ],
)
def test_train_refuses_inconsistent_object_options(tmp_path: Path, args: list[str], words: list[str]) -> None:
    done = cascade("train", "--project", "out.cascade", *args, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    line = done.stderr.strip()
    assert line.startswith("cascade: error: ") and "\n" not in line
    assert all(word in line for word in words), line
    assert list(tmp_path.iterdir()) == []
