"""Training an object stage natively: object labels from a label image, the spec, ``cascade train``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import tifffile
import yaml
from helpers import cascade
from scipy import ndimage

from cascade.errors import CascadeError, ObjectsError, ProjectError
from cascade.io import open_image, write_image
from cascade.objects import (
    Objects,
    ObjectStage,
    ThresholdSettings,
    object_features,
    object_predictions,
    object_probabilities,
    objects_from_probabilities,
    objects_from_segmentation,
)
from cascade.pipeline import predict
from cascade.project import load_cascade, load_object_stage, read_object_ilp
from cascade.training import (
    load_spec,
    object_classes,
    object_feature_selection,
    parse_spec,
    run_training,
    simple_spec,
    train_object_stage,
    with_simple_objects,
)

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
            "method .otsu.",
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


# --- training end to end ------------------------------------------------------------------------------
OC = Path("ilp") / "ilastik__ilastik" / "object_classification"


def _cells(seed: int, shape: tuple[int, int] = (96, 128)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw (small bright disks = class 1, large dim disks = class 2), the segmentation, the class image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    truth = np.zeros(shape, np.uint8)
    for cy in range(10, shape[0] - 8, 19):
        for cx in range(10, shape[1] - 8, 19):
            kind = int(rng.integers(1, 3))
            radius = 3 if kind == 1 else 6
            disk = (yy - cy - rng.integers(-1, 2)) ** 2 + (xx - cx - rng.integers(-1, 2)) ** 2 <= radius**2
            truth[disk] = kind
    raw = np.where(truth == 1, 200, np.where(truth == 2, 140, 40)) + rng.integers(0, 30, shape)
    return raw.astype(np.uint8), (truth > 0).astype(np.uint8), truth


def _centre_labels(truth: np.ndarray, every: int = 2) -> np.ndarray:
    """Object labels: one pixel at the centre of every ``every``-th object, its class."""
    ids, n = ndimage.label(truth > 0)
    labels = np.zeros(truth.shape, np.uint8)
    for k, centre in enumerate(ndimage.center_of_mass(truth > 0, ids, range(1, n + 1))):
        if k % every == 0:
            y, x = np.round(centre).astype(int)
            labels[y, x] = truth[y, x]
    return labels


def _predicted(
    stage: ObjectStage, raw: np.ndarray, segmentation: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The stage's class per object of a segmentation, and the true class per object."""
    objects = objects_from_segmentation(da.from_array(segmentation, chunks=32), "yx")
    tables = object_features(
        da.from_array(raw[..., None], chunks=(40, 40, 1)), "yxc", objects, stage.features
    )
    predicted = object_predictions(object_probabilities(stage, tables))[0]
    truth = object_classes(objects, da.from_array(_truth_image(raw, segmentation)), 2).classes[0]
    return predicted[1:], truth[1:]


def _truth_image(raw: np.ndarray, segmentation: np.ndarray) -> np.ndarray:
    return np.where(segmentation > 0, np.where(raw >= 170, 1, 2), 0).astype(np.uint8)


def test_cli_trains_an_object_stage_alone_from_a_segmentation(tmp_path: Path) -> None:
    raw, segmentation, truth = _cells(0)
    tifffile.imwrite(tmp_path / "raw.tif", raw)
    tifffile.imwrite(tmp_path / "seg.tif", segmentation)
    tifffile.imwrite(tmp_path / "ol.tif", _centre_labels(truth))
    args = ["--raw_data", "raw.tif", "--segmentation_image", "seg.tif", "--object_labels", "ol.tif"]
    args += ["--object_features", "standard", "--object_classes", "small,large", "--trees", "20"]
    done = cascade("train", "--project", "objects.cascade", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("trained an object stage on 1 image(s) (object stage (segmentation): ")
    assert "15 labelled objects (small: 5, large: 10))" in done.stdout
    stage = load_object_stage(tmp_path / "objects.cascade")
    assert stage is not None and stage.source == "segmentation" and stage.threshold is None
    assert stage.class_names == ("small", "large") and stage.spatial_axes == "yx" and stage.raw_channels == 1
    assert stage.forest is not None and stage.forest.n_trees == 20
    assert stage.forest.n_features == 1 + 1 + 6 + 7 + 64 + 2 + 4  # 'standard' in 2D, one channel
    test_raw, test_segmentation, _ = _cells(5)
    predicted, expected = _predicted(stage, test_raw, test_segmentation)
    assert len(predicted) == 30 and np.mean(predicted == expected) >= 0.9
    with pytest.raises(ProjectError, match="object stage only"):
        load_cascade(tmp_path / "objects.cascade")


def _volume(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """3D: the cells of :func:`_cells` as short cylinders (z 1..5 of 7), as raw, label image, class image."""
    raw, segmentation, truth = _cells(seed, (48, 64))
    stack = np.zeros((7, 48, 64), bool)
    stack[1:6] = segmentation > 0
    ids = ndimage.label(stack)[0].astype(np.uint16) * 3  # label values need not be consecutive
    classes = np.where(stack, truth[None], 0).astype(np.uint8)
    labels = np.zeros_like(classes)
    labels[3] = _centre_labels(truth, 1)
    return np.where(stack, raw[None], 30).astype(np.uint8), ids, labels


@pytest.mark.parametrize(
    ("dims", "chunkings"), [("yx", ((96, 128), (17, 23))), ("zyx", ((7, 48, 64), (3, 11, 20)))]
)
def test_training_does_not_depend_on_the_chunking(
    tmp_path: Path, dims: str, chunkings: tuple[tuple[int, ...], ...]
) -> None:
    if dims == "yx":
        raw, segmentation, truth = _cells(1)
        images, source = (raw, segmentation, _centre_labels(truth, 1)), "segmentation"
    else:
        images, source = _volume(1), "label image"
    forests, counts = [], []
    for chunks in chunkings:
        folder = tmp_path / "x".join(map(str, chunks))
        folder.mkdir()
        for name, data in zip(("raw", "input", "ol"), images):
            write_image(
                da.from_array(data, chunks=chunks), str(folder / f"{name}.zarr"), format="zarr", axes=dims
            )
        spec = {
            "images": [{"raw": "raw.zarr", "object_input": "input.zarr", "object_labels": "ol.zarr"}],
            "objects": {"source": source, "classes": ["a", "b"], "features": ["Mean", "Count", "Variance"]},
            "forest": {"trees": 5, "seed": 3},
        }
        trained = train_object_stage(parse_spec(spec, folder), None, seed=3)
        assert trained.stage.spatial_axes == dims and trained.stage.source == source
        forests.append(trained.stage.forest)
        counts.append(trained.labels[0].classes[0])
    assert np.array_equal(counts[0], counts[1]) and np.count_nonzero(counts[0]) == (30 if dims == "yx" else 6)
    for name in ("feature", "threshold", "left", "right", "value", "roots"):
        assert np.array_equal(getattr(forests[0], name), getattr(forests[1], name)), name


def test_spec_trains_pixel_stages_then_objects_of_their_probabilities(tmp_path: Path) -> None:
    raw, segmentation, truth = _cells(2)
    pixel_labels = np.zeros(raw.shape, np.uint8)
    pixel_labels[::5, ::5] = np.where(segmentation[::5, ::5] > 0, 1, 2)
    for name, data in (("raw", raw), ("pixels", pixel_labels), ("ol", _centre_labels(truth, 1))):
        tifffile.imwrite(tmp_path / f"{name}.tif", data)
    spec = """
images: [{raw: raw.tif, labels: pixels.tif, object_labels: ol.tif}]
stages: [{classes: [cell, background], features: {features: {GaussianSmoothing: [0.7, 1.6]}}}]
objects:
  source: pixel classification
  threshold: {low: 0.5, sigmas: 0.0, min_size: 5}
  features: standard
  classes: [small, large]
forest: {trees: 10}
"""
    (tmp_path / "spec.yaml").write_text(spec)
    summary = run_training(load_spec(tmp_path / "spec.yaml"), tmp_path / "p.cascade")
    assert "trained 1 stage(s) and an object stage" in summary and "30 labelled objects" in summary
    stage = load_object_stage(tmp_path / "p.cascade")
    assert stage is not None and stage.source == "pixel classification"
    assert stage.threshold == ThresholdSettings(low=0.5, sigmas=(0.0, 0.0, 0.0), min_size=5)
    pixels = load_cascade(tmp_path / "p.cascade")
    assert len(pixels.stages) == 1
    # headless, as ilastik's PC+OC: raw data only; the objects of the project's own probabilities
    done = cascade("--headless", "--project=p.cascade", "--raw_data=raw.tif", "--export_source=Object Identities",
                   "--output_filename_format={dataset_dir}/{nickname}_{result_type}.h5", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    probabilities = predict(pixels, raw[..., None], axes="yxc")[-1].probabilities
    expected = objects_from_probabilities(probabilities, "yxc", stage.threshold).labels.compute()
    assert np.array_equal(_read_export(tmp_path / "raw_Object Identities.h5")[..., 0], expected)
    assert expected.max() >= 25


def test_mixed_labels_are_named_in_the_summary(tmp_path: Path) -> None:
    raw, segmentation, truth = _cells(3)
    labels = _centre_labels(truth, 1)
    ids = ndimage.label(segmentation)[0]
    ys, xs = np.nonzero(ids == 1)
    labels[ys[:3], xs[:3]] = 3 - truth[ys[0], xs[0]]  # three pixels of the other class: the majority
    labels[0, 0] = 1  # on the background
    for name, data in (("raw", raw), ("seg", segmentation), ("ol", labels)):
        tifffile.imwrite(tmp_path / f"{name}.tif", data)
    spec = {
        "images": [{"raw": "raw.tif", "object_input": "seg.tif", "object_labels": "ol.tif"}],
        "objects": {"source": "segmentation", "classes": ["a", "b"], "features": "standard"},
        "forest": {"trees": 3},
    }
    summary = run_training(parse_spec(spec, tmp_path), tmp_path / "p.cascade")
    centre = ", ".join(f"{v:.0f}" for v in (xs.mean(), ys.mean()))
    assert (
        f"object 1 at ({centre}) in {tmp_path / 'ol.tif'} has labelled pixels of several classes" in summary
    )
    assert f"it takes class {3 - truth[ys[0], xs[0]]}" in summary
    assert "1 labelled pixel(s) of" in summary and "lie on no object and are ignored" in summary


def test_object_labels_reproduce_ilastiks_label_inputs_on_2d_wpred(tmp_path: Path, data_dir: Path) -> None:
    """Labelling one pixel of each object ilastik's 2d_wPred labels gives its LabelInputs and its 179 columns."""
    oc = data_dir / OC
    project = read_object_ilp(oc / "ObjectClassification2d_wPred.ilp")
    stored, threshold = project.labels[0][0], project.stage.threshold
    assert threshold is not None and project.stage.forest is not None
    probabilities = open_image(str(oc / "inputdata" / "2d_Probabilities.h5") + "/exported_data")
    ids = objects_from_probabilities(probabilities.data, "yxc", threshold).labels.compute()
    labels = np.zeros(ids.shape, np.uint8)
    for oid in np.flatnonzero(stored):
        ys, xs = np.nonzero(ids == oid)
        labels[ys[0], xs[0]] = stored[oid]
    tifffile.imwrite(tmp_path / "ol.tif", labels)
    spec = {
        "images": [
            {
                "raw": str(oc / "inputdata" / "2d.h5") + "/data",
                "object_input": str(oc / "inputdata" / "2d_Probabilities.h5") + "/exported_data",
                "object_labels": "ol.tif",
            }
        ],
        "objects": {
            "source": "probabilities",
            "threshold": dataclasses.asdict(threshold),
            "features": {p: dict(f) for p, f in project.stage.features.items()},
            "classes": list(project.stage.class_names),
        },
        "forest": {"trees": 10},
    }
    trained = train_object_stage(parse_spec(spec, tmp_path), None, seed=0)
    classes = trained.labels[0].classes[0]
    assert np.array_equal(classes[: len(stored)], stored) and not classes[len(stored) :].any()
    assert trained.labels[0].mixed == () and trained.labels[0].on_background == 0
    assert trained.stage.forest is not None
    assert trained.stage.forest.n_features == project.stage.forest.n_features == 179
    assert trained.stage.features == project.stage.features


def _read_export(path: Path) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as f:
        return np.asarray(f["exported_data"][()])


def test_headless_predicts_objects_with_a_trained_project(tmp_path: Path) -> None:
    """``cascade train`` then ``cascade --headless --project trained.cascade``, as with an ilastik OC project."""
    raw, segmentation, truth = _cells(0)
    test_raw, test_segmentation, _ = _cells(5)
    for name, data in (("raw", raw), ("seg", segmentation), ("ol", _centre_labels(truth))):
        tifffile.imwrite(tmp_path / f"{name}.tif", data)
    tifffile.imwrite(tmp_path / "test.tif", test_raw)
    tifffile.imwrite(tmp_path / "test_seg.tif", test_segmentation)
    args = ["--raw_data", "raw.tif", "--segmentation_image", "seg.tif", "--object_labels", "ol.tif"]
    train = cascade("train", "--project", "p.cascade", *args, "--object_features", "standard", "--trees", "20",
                    cwd=tmp_path)  # fmt: skip
    assert train.returncode == 0, train.stderr
    headless = [
        "--headless",
        "--project=p.cascade",
        "--raw_data=test.tif",
        "--segmentation_image=test_seg.tif",
    ]
    headless += ["--output_filename_format={dataset_dir}/{nickname}_{result_type}.h5"]
    for source in ("Object Predictions", "Object Identities"):
        done = cascade(*headless, f"--export_source={source}", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    stage = load_object_stage(tmp_path / "p.cascade")
    assert stage is not None
    objects = objects_from_segmentation(da.from_array(test_segmentation), "yx")
    tables = object_features(da.from_array(test_raw[..., None]), "yxc", objects, stage.features)
    ids = objects.labels.compute()
    expected = object_predictions(object_probabilities(stage, tables))[0][ids]
    predictions = _read_export(tmp_path / "test_Object Predictions.h5")
    identities = _read_export(tmp_path / "test_Object Identities.h5")
    assert np.array_equal(predictions[..., 0], expected)
    assert np.array_equal(identities[..., 0], ids)
    assert set(np.unique(predictions)) == {0, 1, 2}
    wrong = cascade(*headless[:3], "--prediction_maps=test_seg.tif", cwd=tmp_path)
    assert wrong.returncode == 2 and "--prediction_maps does not apply" in wrong.stderr


def test_simple_form_with_prediction_maps(tmp_path: Path) -> None:
    """``--prediction_maps`` with ``--threshold``/``--threshold_channel``/``--smoothing``/sizes, in process."""
    raw, segmentation, truth = _cells(4)
    maps = np.stack([1 - segmentation, segmentation], axis=-1).astype(np.float32)
    tifffile.imwrite(tmp_path / "raw.tif", raw)
    write_image(da.from_array(maps), str(tmp_path / "maps.h5"), format="hdf5", axes="yxc")
    tifffile.imwrite(tmp_path / "ol.tif", _centre_labels(truth, 1))
    settings = ThresholdSettings(channel=1, low=0.6, sigmas=(0.0, 0.0, 0.0), min_size=4, max_size=500)
    spec = simple_spec([str(tmp_path / "raw.tif")], [], 0, "ilastik-default", None, None, 7, 1, "oob")
    spec = with_simple_objects(
        spec, [str(tmp_path / "ol.tif")], {"probabilities": [str(tmp_path / "maps.h5/exported_data")]},
        "standard", None, settings,
    )  # fmt: skip
    assert spec.stages == () and spec.objects is not None and spec.objects.classes == ("Label 1", "Label 2")
    summary = run_training(spec, tmp_path / "p.cascade")
    assert "object stage (probabilities): 30 labelled objects" in summary
    stage = load_object_stage(tmp_path / "p.cascade")
    assert stage is not None and stage.threshold == settings and stage.forest is not None
    assert stage.forest.n_trees == 7
    with pytest.raises(CascadeError, match="3 object label image"):
        with_simple_objects(spec, ["a", "b", "c"], {}, "standard", None, settings)
    with pytest.raises(CascadeError, match="unknown object feature set 'nope'"):
        with_simple_objects(spec, ["ol.tif"], {"segmentation": ["s.tif"]}, "nope", "a,b", settings)
    with pytest.raises(CascadeError, match="at least two classes"):
        with_simple_objects(spec, ["ol.tif"], {"segmentation": ["s.tif"]}, "standard", "a", settings)
