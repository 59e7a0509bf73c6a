"""The object stage of a ``.cascade`` project: round trips (after pixel stages or alone) and damage."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import cascade

from cascade.errors import ProjectError
from cascade.features import parse_feature_selection
from cascade.forest import PackedForest, train_forest
from cascade.objects import ObjectStage, ThresholdSettings
from cascade.pipeline import Cascade, Stage
from cascade.project import has_object_stage, load_cascade, load_object_stage, save_cascade

SELECTION = parse_feature_selection({"features": {"GaussianSmoothing": [0.7, 1.6]}})
FEATURES = {
    "Standard Object Features": {
        "Count": {},
        "Mean": {"displaytext": "Mean Intensity"},
        "Mean in neighborhood": {"margin": (30, 30, 1)},
    },
    "2D Convex Hull Features": {"Convexity": {}},
}


def _forest(n_features: int, n_classes: int, seed: int) -> PackedForest:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, n_features)).astype(np.float32)
    y = 1 + np.arange(60) % n_classes
    return train_forest(x, y, n_outputs=n_classes, n_trees=5, seed=seed)


def _pixels(stages: int = 1) -> Cascade:
    stage = Stage(SELECTION, ("cell", "background"), _forest(2, 2, 1))
    return Cascade(
        stages=(stage,) * stages,
        raw_channels=1,
        raw_dtype="uint8",
        spatial_axes="zyx",
        provenance={"seed": 0},
        input_axes="zyx",
    )


def _objects(**changes: object) -> ObjectStage:
    stage = ObjectStage(
        source="pixel classification",
        threshold=ThresholdSettings(
            method="hysteresis",
            channel=1,
            core_channel=0,
            low=0.4,
            high=0.9,
            sigmas=(1.5, 1.0, 0.0),
            min_size=3,
            max_size=5000,
        ),
        features=FEATURES,
        class_names=("small", "large", "odd"),
        forest=_forest(4, 3, 2),
        raw_channels=1,
        spatial_axes="zyx",
        block_shape=(256, 128, 64),
        halo=(32, 16, 8),
        table_settings={"file type": "csv", "margin": [10, 10, 2], "include raw": False},
    )
    return dataclasses.replace(stage, **changes)  # type: ignore[arg-type]


def _same_forest(a: PackedForest | None, b: PackedForest | None) -> None:
    assert a is not None and b is not None
    assert a.n_features == b.n_features
    for name in ("feature", "threshold", "left", "right", "value", "roots"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def _same_stage(a: ObjectStage, b: ObjectStage) -> None:
    fields = ("source", "threshold", "features", "class_names", "raw_channels", "spatial_axes")
    for name in (*fields, "block_shape", "halo"):
        assert getattr(a, name) == getattr(b, name), name
    assert json.loads(json.dumps(a.table_settings)) == b.table_settings
    if a.forest is None:
        assert b.forest is None
    else:
        _same_forest(a.forest, b.forest)


def test_object_stage_after_pixel_stages_round_trips(tmp_path: Path) -> None:
    pixels, objects = _pixels(2), _objects()
    path = save_cascade(pixels, tmp_path / "p.cascade", objects=objects)
    _same_stage(objects, load_object_stage(path))  # type: ignore[arg-type]
    loaded = load_cascade(path)
    assert len(loaded.stages) == 2 and loaded.input_axes == "zyx"
    _same_forest(pixels.stages[1].forest, loaded.stages[1].forest)
    with h5py.File(path, "r") as f:
        assert f.attrs["schema_version"] == 2


@pytest.mark.parametrize(
    ("source", "forest"), [("segmentation", True), ("label image", True), ("probabilities", False)]
)
def test_object_stage_alone_round_trips(tmp_path: Path, source: str, forest: bool) -> None:
    threshold = ThresholdSettings() if source == "probabilities" else None
    objects = _objects(source=source, threshold=threshold, forest=_forest(4, 3, 5) if forest else None)
    pixels = dataclasses.replace(_pixels(), stages=())
    path = save_cascade(pixels, tmp_path / "alone.cascade", objects=objects)
    _same_stage(objects, load_object_stage(path))  # type: ignore[arg-type]
    with pytest.raises(ProjectError, match="object stage only"):
        load_cascade(path)


def test_pixel_project_has_no_object_stage_and_stays_version_1(tmp_path: Path) -> None:
    path = save_cascade(_pixels(), tmp_path / "pixels.cascade")
    assert load_object_stage(path) is None
    with h5py.File(path, "r") as f:
        assert f.attrs["schema_version"] == 1 and "objects" not in f


@pytest.mark.parametrize(
    ("objects", "stages", "message"),
    [
        (None, 0, "would hold no stage"),
        (_objects(), 0, "has no pixel stage"),
        (_objects(raw_channels=2), 1, "trained on 2 channel"),
        (_objects(threshold=ThresholdSettings(channel=2)), 1, "probability channel 2"),
        (_objects(table_settings={"path": Path("x")}), 1, "not plain data"),
    ],
)
def test_save_refuses_what_cannot_be_used(
    tmp_path: Path, objects: ObjectStage | None, stages: int, message: str
) -> None:
    pixels = _pixels(stages) if stages else dataclasses.replace(_pixels(), stages=())
    target = tmp_path / "p.cascade"
    with pytest.raises(ProjectError, match=message):
        save_cascade(pixels, target, objects=objects)
    assert not target.exists() and not list(tmp_path.iterdir())


def _damage(path: Path, how: str) -> None:
    with h5py.File(path, "r+") as f:
        group = f["objects"]
        if how == "drop features":
            del group.attrs["features"]
        elif how == "threshold text":
            group.attrs["threshold"] = json.dumps({"method": "simple"})
        elif how == "bad method":
            settings = json.loads(group.attrs["threshold"])
            group.attrs["threshold"] = json.dumps({**settings, "method": "otsu"})
        elif how == "class names":
            group.attrs["class_names"] = "[1, 2]"
        elif how == "forest classes":
            group.attrs["class_names"] = json.dumps(["a", "b"])
        elif how == "block shape":
            group.attrs["block_shape"] = np.array([1.5, 2.0, 3.0])
        elif how == "forest array":
            del group["forest/left"]
        elif how == "newer":
            f.attrs["schema_version"] = 4


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("drop features", "no 'features' field"),
        ("threshold text", "'threshold' field is malformed"),
        ("bad method", "'threshold' field is malformed .*method"),
        ("class names", "'class_names' field is malformed"),
        ("forest classes", "forest arrays are inconsistent"),
        ("block shape", "'block_shape' field is malformed"),
        ("forest array", "damaged or incomplete"),
        ("newer", "schema version 4 is newer"),
    ],
)
def test_damaged_object_stage_is_one_project_error(tmp_path: Path, how: str, message: str) -> None:
    path = save_cascade(_pixels(), tmp_path / "p.cascade", objects=_objects())
    _damage(path, how)
    with pytest.raises(ProjectError, match=message) as info:
        load_object_stage(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_info_and_has_object_stage(tmp_path: Path) -> None:
    alone = save_cascade(dataclasses.replace(_pixels(), stages=()), tmp_path / "alone.cascade",
                         objects=_objects(source="segmentation", threshold=None))  # fmt: skip
    both = save_cascade(_pixels(), tmp_path / "both.cascade", objects=_objects())
    pixels = save_cascade(_pixels(), tmp_path / "pixels.cascade")
    assert has_object_stage(alone) and has_object_stage(both) and not has_object_stage(pixels)
    assert not has_object_stage(tmp_path / "missing.cascade")
    described = load_cascade(alone, allow_no_stages=True)
    assert described.stages == () and described.input_axes == "zyx" and described.raw_channels == 1
    done = cascade("info", str(alone))
    assert done.returncode == 0, done.stderr
    assert "workflow: Object Classification (from segmentation)\n" in done.stdout
    assert "object stage: classes small, large, odd" in done.stdout
    assert "  Standard Object Features: Count, Mean, Mean in neighborhood" in done.stdout
    assert "  forest: 5 trees, 4 features" in done.stdout
    done = cascade("info", str(both))
    assert (
        "workflow: Object Classification (from pixel classification) after Pixel Classification"
        in done.stdout
    )
    assert (
        "  threshold: hysteresis, channel 1, low 0.4, high 0.9 (core channel 0), smoothing 1.5, 1.0, 0.0"
        in (done.stdout)
    )
