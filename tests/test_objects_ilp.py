"""ilastik Object Classification projects: reading, the code-free unpickler, object probabilities, the table.

The references are what ilastik stored in its own test projects (``reference/ilastik-objects.md`` 9):
``CachedProbabilities`` from the stored ``RegionFeatures`` and the stored object forest, bit for bit.
"""

from __future__ import annotations

import csv
import pickle
import shutil
from pathlib import Path

import dask.array as da
import h5py
import numpy as np
import pytest

from cascade.errors import ObjectsError, ProjectError
from cascade.objects import (
    feature_matrix,
    object_features,
    object_predictions,
    object_probabilities,
    objects_from_label_image,
    paint,
    table_path,
    write_table,
)
from cascade.project import (
    is_object_project,
    open_object_project,
    open_project,
    read_ilp,
    read_object_ilp,
    stored_probabilities,
    stored_region_features,
)

OC = "ilp/ilastik__ilastik/object_classification"
PCOC = "ilp/ilastik__ilastik/tests/test_ilastik/data/inputdata/pc-oc-133.ilp"


def _project(data_dir: Path, name: str) -> Path:
    return data_dir / OC / f"ObjectClassification{name}.ilp"


def _copy(data_dir: Path, name: str, folder: Path) -> Path:
    """A writable copy of a project beside a link to its inputs."""
    (folder / "inputdata").symlink_to(data_dir / OC / "inputdata")
    return Path(shutil.copy(_project(data_dir, name), folder / f"{name}.ilp"))


@pytest.mark.parametrize(
    ("name", "source", "second", "channels", "classes"),
    [
        ("2d_wPred", "probabilities", "Prediction Maps", 1, 2),
        ("5t2d1c_wPred", "probabilities", "Prediction Maps", 1, 2),
        ("2d_wSeg", "segmentation", "Segmentation Image", 1, 2),
        ("2d3c_wLabels", "label image", "Label Image", 3, 2),
    ],
)
def test_read_object_projects(
    data_dir: Path, name: str, source: str, second: str, channels: int, classes: int
) -> None:
    project = read_object_ilp(_project(data_dir, name))
    assert project.stage.source == source
    assert project.second_role == second
    assert project.stage.raw_channels == channels
    assert project.stage.spatial_axes == "yx"
    assert project.stage.n_classes == classes
    assert project.stage.block_shape == (512, 512, 512) and project.stage.halo == (64, 64, 64)
    assert project.stage.table_settings == {}  # ExportSettings = (None, None): never configured
    # the Windows path of the label-image project resolves to the file
    assert all(lane.exists for lane in project.lanes + project.second_lanes)
    assert is_object_project(_project(data_dir, name))


def test_threshold_settings_as_stored(data_dir: Path) -> None:
    stage = read_object_ilp(_project(data_dir, "2d_wPred")).stage
    assert stage.threshold is not None
    # a SIMPLE project: LowThreshold and Channel run, High/CoreChannel are stale
    assert (stage.threshold.method, stage.threshold.channel, stage.threshold.low) == ("simple", 1, 0.5)
    assert (stage.threshold.min_size, stage.threshold.max_size) == (50, 1_000_000)
    assert stage.threshold.sigmas == (1.0, 1.0, 1.0)
    margins = {f["margin"] for f in stage.features["Standard Object Features"].values() if "margin" in f}
    assert margins == {(30, 30)}


def test_pc_oc_project_has_a_pixel_stage(data_dir: Path) -> None:
    project = open_object_project(data_dir / PCOC)
    assert project.pixels is not None and len(project.pixels.stages) == 1
    assert project.pixels.stages[0].forest is not None
    assert project.stage.source == "pixel classification"
    assert project.stage.forest is None and project.stage.class_names == ()  # never trained


def test_pixel_and_object_paths_refuse_each_other(data_dir: Path) -> None:
    with pytest.raises(ProjectError, match="Object Classification project, not a pixel classifier"):
        open_project(_project(data_dir, "2d_wPred"))
    with pytest.raises(ProjectError, match="Object Classification project"):
        read_ilp(data_dir / PCOC)
    pixel = data_dir / "ilp/ilastik__ilastik/api_projects/PixelClass.ilp"
    with pytest.raises(ProjectError, match="is not Object Classification"):
        read_object_ilp(pixel)
    assert not is_object_project(pixel)


class _Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (pickle.dumps((_Boom(), None), protocol=0), "refers to (__builtin__|builtins).print"),
        (pickle.dumps(({"file path": {1, 2}}, None), protocol=4), "holds a set"),
        (b"\x80\x04garbage", "not a readable pickle"),
    ],
)
def test_hostile_export_settings_are_refused(
    data_dir: Path, tmp_path: Path, payload: bytes, match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _copy(data_dir, "5t2d1c_wPred", tmp_path)
    with h5py.File(path, "r+") as f:
        del f["ObjectClassification/ExportSettings"]
        f["ObjectClassification/ExportSettings"] = np.void(payload)
    with pytest.raises(ProjectError, match=match) as err:
        read_object_ilp(path)
    assert "\n" not in str(err.value)
    assert "pwned" not in capsys.readouterr().out


def test_configured_export_settings_are_read(data_dir: Path, tmp_path: Path) -> None:
    path = _copy(data_dir, "5t2d1c_wPred", tmp_path)
    settings = {"file path": "out.csv", "file type": "csv", "margin": 0, "include raw": False}
    with h5py.File(path, "r+") as f:
        del f["ObjectClassification/ExportSettings"]
        f["ObjectClassification/ExportSettings"] = pickle.dumps((settings, ["Mean Intensity"]), protocol=0)
    stage = read_object_ilp(path).stage
    assert stage.table_settings == {**settings, "selected features": ["Mean Intensity"]}


@pytest.mark.parametrize("name", ["2d_wPred", "5t2d1c_wPred"])
def test_probabilities_equal_ilastik_bit_for_bit(data_dir: Path, name: str) -> None:
    path = _project(data_dir, name)
    stage = read_object_ilp(path).stage
    features, stored = stored_region_features(path), stored_probabilities(path)
    steps = sorted(set(features) & set(stored))
    assert steps  # 2d: t=0; 5t: every t
    got = object_probabilities(stage, [features[t] for t in steps])
    for t, probabilities in zip(steps, got, strict=True):
        assert probabilities.dtype == np.float32
        assert np.array_equal(probabilities, stored[t]), (name, t)
        assert not probabilities[0].any()


def test_feature_matrix_order_and_missing_values(data_dir: Path) -> None:
    path = _project(data_dir, "2d_wPred")
    stage = read_object_ilp(path).stage
    table = stored_region_features(path)[0]
    (x,) = feature_matrix([table], stage.features)
    assert x.shape == (110, 179) and x.dtype == np.float32  # 15 hull + 8 skeleton + 156 standard
    assert np.isfinite(x).all()
    # first columns: "2D Convex Hull Features" sorted: Convexity, DefectCenter (2), ...
    assert np.array_equal(x[:, 0], np.nan_to_num(table["2D Convex Hull Features"]["Convexity"][:, 0], nan=0))
    bad = {"Standard Object Features": {"Mean": np.array([[0.0], [np.nan], [np.inf]], np.float32)}}
    (y,) = feature_matrix([bad], {"Standard Object Features": {"Mean": {}}})
    assert y.tolist() == [[0.0], [0.0], [0.0]]


def test_background_only_time_point_and_predictions(data_dir: Path) -> None:
    stage = read_object_ilp(_project(data_dir, "2d_wPred")).stage
    empty = {"Default features": {"Count": np.zeros((1, 1), np.float32)}}
    (p,) = object_probabilities(stage, [empty])
    assert p.shape == (1, 2) and not p.any()
    ties = np.array([[0, 0], [0.5, 0.5], [0.2, 0.8], [0.9, 0.1]], np.float32)
    assert object_predictions([ties])[0].tolist() == [0, 1, 2, 1]  # first maximum wins


def test_untrained_stage_refuses_probabilities(data_dir: Path) -> None:
    stage = read_object_ilp(_project(data_dir, "2d_wSeg")).stage
    with pytest.raises(ObjectsError, match="no trained classifier"):
        object_probabilities(stage, [stored_region_features(_project(data_dir, "2d_wSeg"))[0]])


@pytest.mark.parametrize("chunks", [(1, 5, 7), (2, 33, 77), (5, 11, 20)])
def test_paint_chunked_equals_whole(chunks: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, (5, 33, 77)).astype(np.uint32)
    luts = [rng.random((6 - t % 2, 2)).astype(np.float32) for t in range(5)]  # id 5 beyond some tables
    painted = paint(da.from_array(labels, chunks=chunks), "tyx", luts).compute()
    expected = np.zeros((5, 33, 77, 2), np.float32)
    for t in range(5):
        inside = labels[t] < len(luts[t])
        expected[t][inside] = luts[t][labels[t][inside]]
    assert np.array_equal(painted, expected)
    ids = paint(da.from_array(labels, chunks=chunks), "tyx", [np.arange(6, dtype=np.uint32)] * 5).compute()
    assert ids.shape == (5, 33, 77, 1) and np.array_equal(ids[..., 0], labels)


def test_table_csv_columns_like_ilastik(data_dir: Path, tmp_path: Path) -> None:
    path = _project(data_dir, "5t2d1c_wPred")
    project = read_object_ilp(path)
    features = stored_region_features(path)
    tables = [features[t] for t in sorted(features)]
    probabilities = object_probabilities(project.stage, tables)
    written = write_table(
        str(tmp_path / "objects.csv"),
        tables,
        selection=project.stage.features,
        class_names=project.stage.class_names,
        probabilities=probabilities,
        user_labels=project.labels[0],
    )
    assert written == table_path(str(tmp_path / "objects.csv")) == str(tmp_path / "objects_table.csv")
    with open(written, newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    assert header[:7] == [
        "object_id",
        "timestep",
        "labelimage_oid",
        "User Label",
        "Predicted Class",
        "Probability of Label 1",
        "Probability of Label 2",
    ]
    assert "Bounding Box Minimum_0" in header and "Center of the object_1" in header
    assert header.count("Size in pixels") == 1 and "Mean Intensity" in header
    counts = [len(t["Default features"]["Count"]) - 1 for t in tables]
    assert len(rows) == sum(counts)
    assert [int(r["object_id"]) for r in rows] == list(range(sum(counts)))
    first = rows[: counts[0]]
    # LabelInputs t=0 is [0, 2, 0, 1]: object 1 is class 2, object 3 class 1
    assert [r["User Label"] for r in first] == ["Label 2", "0", "Label 1", "0", "0"]
    # float32 values written as their shortest repr read back exactly
    written_p = np.array([r["Probability of Label 2"] for r in first], dtype=np.float32)
    assert np.array_equal(written_p, probabilities[0][1:, 1])
    mean = tables[0]["Standard Object Features"]["Mean"][3, 0]
    assert np.float32(first[2]["Mean Intensity"]) == mean


def test_table_hdf5_streamed(data_dir: Path, tmp_path: Path) -> None:
    path = _project(data_dir, "5t2d1c_wPred")
    project = read_object_ilp(path)
    features = stored_region_features(path)
    tables = [features[t] for t in sorted(features)]
    target = write_table(str(tmp_path / "objects.h5"), tables, selection=project.stage.features)
    with h5py.File(target, "r") as f:
        table = f["table"][()]
    assert table.shape == (sum(len(t["Default features"]["Count"]) - 1 for t in tables),)
    assert table.dtype.names[:3] == ("object_id", "timestep", "labelimage_oid")
    assert "Predicted Class" not in table.dtype.names  # no classifier given: no class columns
    assert list(tmp_path.iterdir()) == [tmp_path / "objects.h5"]  # no temporary left


def test_retrain_from_stored_labels(data_dir: Path) -> None:
    path = _project(data_dir, "5t2d1c_wPred")
    stored = read_object_ilp(path).stage.forest
    project = open_object_project(path, retrain=True, trees=50)
    forest = project.stage.forest
    assert forest is not None and stored is not None
    assert forest.n_trees == 50 and forest.n_features == stored.n_features == 179
    features = stored_region_features(path)
    (p,) = object_probabilities(project.stage, [features[0]])
    # the two labelled objects of t=0 (LabelInputs [0, 2, 0, 1]) are fitted by their own forest
    assert object_predictions([p])[0][[1, 3]].tolist() == [2, 1]


def test_retrain_without_labels_is_refused(data_dir: Path) -> None:
    with pytest.raises(ProjectError, match="no labelled objects"):
        open_object_project(_project(data_dir, "2d_wSeg"), retrain=True)
    # without --retrain an unlabelled, untrained project opens (only Object Identities can run)
    assert open_object_project(_project(data_dir, "2d_wSeg")).stage.forest is None


def test_retrain_computes_features_ilastik_did_not_store(data_dir: Path) -> None:
    """2d3c_wLabels stores labels but no object features: they are computed from its training images."""
    project = open_object_project(_project(data_dir, "2d3c_wLabels"), retrain=True, trees=20)
    assert project.stage.forest is not None and project.stage.forest.n_trees == 20
    assert project.stage.forest.n_features == 82


def test_label_image_features_are_the_forest_training_features(data_dir: Path) -> None:
    """2d3c_wLabels stores no features, but its forest does: every split threshold of a vigra tree is
    the midpoint of two training rows. All 73 thresholds (Covariance, RegionAxes, RegionRadii,
    neighbourhood, hull and skeleton columns) are midpoints of cascade's features of the 4 labelled objects."""
    path = _project(data_dir, "2d3c_wLabels")
    project = read_object_ilp(path)
    forest = project.stage.forest
    assert forest is not None
    inputs = data_dir / OC / "inputdata"
    with h5py.File(inputs / "2d3c.h5", "r") as f:
        raw = f["data"][()]
    with h5py.File(inputs / "2d3c_Object Identities.h5", "r") as f:
        labels = f["exported_data"][..., 0]
    objects = objects_from_label_image(da.from_array(labels[..., None], chunks=(40, 90, 1)), "yxc")
    (table,) = object_features(da.from_array(raw, chunks=(40, 90, 3)), "yxc", objects, project.stage.features)
    (x,) = feature_matrix([table], project.stage.features)
    trained = np.flatnonzero(project.labels[0][0])
    assert trained.tolist() == [2, 7, 9, 12] and x.shape[1] == forest.n_features == 82
    checked = 0
    for column in np.unique(forest.feature[forest.feature >= 0]):
        values = x[trained, column].astype(np.float64)
        midpoints = (values[:, None] + values[None, :])[values[:, None] < values[None, :]] / 2
        for threshold in np.unique(forest.threshold[forest.feature == column]):
            assert np.isclose(midpoints, threshold, rtol=1e-6, atol=0).any(), (column, threshold, values)
            checked += 1
    assert checked == 73
