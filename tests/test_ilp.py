"""Reading ilastik projects: every .ilp under shared/data/ilp, synthetic projects, broken files."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from cascade.errors import DataError, ProjectError
from cascade.forest.packed import PackedForest
from cascade.project import IlpProject, describe_ilp, read_ilp, read_lane_data
from cascade.project._ilp_lanes import split_internal_path
from cascade.project._vigra import float32_thresholds

DATA = Path(__file__).parents[1] / ".." / "shared" / "data"
ILP_DIR = DATA / "ilp"
ILPS = sorted(p.relative_to(ILP_DIR).as_posix() for p in ILP_DIR.rglob("*.ilp")) if ILP_DIR.is_dir() else []
needs_data = pytest.mark.skipif(not ILPS, reason=f"no .ilp files under {ILP_DIR}")

PC, AC2 = "Pixel Classification", "AutocontextTwoStage"
L2, L3 = ("Label 1", "Label 2"), ("Label 1", "Label 2", "Label 3")
NUCLEI = ("Nuclei", "Membrane", "Background")
# file -> (workflow, class names per stage, lane count, label blocks per stage), from INVENTORY.md
EXPECTED: dict[str, tuple[str, tuple[tuple[str, ...], ...], int, tuple[int, ...]]] = {
    "fractal-analytics-platform__fractal-ilastik-tasks/tests/data/pixel_classifier_2D.ilp": (
        PC,
        (L2,),
        4,
        (45,),
    ),
    "ilastik__ilastik/api_projects/2464_PixelClassification_xy_input.ilp": (PC, (L2,), 1, (1,)),
    "ilastik__ilastik/api_projects/Autocontext_2D.ilp": (AC2, (L2, L2), 1, (1, 1)),
    "ilastik__ilastik/api_projects/Autocontext_3D.ilp": (AC2, (L3, L2), 1, (4, 4)),
    "ilastik__ilastik/api_projects/PixelClass.ilp": (PC, (L2,), 1, (1,)),
    "ilastik__ilastik/api_projects/PixelClass3Channel.ilp": (PC, (L3,), 1, (2,)),
    "ilastik__ilastik/api_projects/PixelClass3D.ilp": (PC, (L2,), 1, (3,)),
    "ilastik__ilastik/api_projects/PixelClass3D_2D_3D_feature_mix.ilp": (PC, (L2,), 1, (3,)),
    "ilastik__ilastik/api_projects/PixelClassNoClassifier.ilp": (PC, (L2,), 1, (0,)),
    "ilastik__ilastik/api_projects/PixelClassNoData.ilp": (PC, ((),), 0, (0,)),
    "ilastik__ilastik/notebooks/autocontext_api/ac.ilp": (
        AC2,
        (("background", "dim nuclei", "bright nuclei"), ("nuclei", "background")),
        1,
        (8, 8),
    ),
    "ilastik__ilastik/notebooks/pixel_classification_api/pc.ilp": (PC, (L2,), 1, (5,)),
    "ilastik__ilastik/test_projects/Autocontext2d3c.ilp": (AC2, (L3, L2), 1, (1, 1)),
    "ilastik__ilastik/test_projects/Autocontext5t2d1c.ilp": (AC2, (L3, L2), 1, (1, 1)),
    "ilastik__ilastik/test_projects/PixelClassification2d.ilp": (PC, (L2,), 1, (6,)),
    "ilastik__ilastik/test_projects/PixelClassification2d3c.ilp": (PC, (L2,), 1, (1,)),
    "ilastik__ilastik/test_projects/PixelClassification3d.ilp": (PC, (L2,), 1, (1,)),
    "ilastik__ilastik/test_projects/PixelClassification3d1c.ilp": (PC, (L2,), 1, (2,)),
    "ilastik__ilastik/test_projects/PixelClassification3d2c.ilp": (PC, (L2,), 1, (1,)),
    "ilastik__ilastik/test_projects/PixelClassification5t2d1c.ilp": (PC, (L2,), 1, (1,)),
    "ilastik__ilastik/tests/test_ilastik/data/inputdata/mitocheckPixelClassification.ilp": (
        PC,
        (L2,),
        1,
        (2,),
    ),
    "ilastik__ilastik4ij/src/test/resources/pixel_class_2d_cells_apoptotic.ilp": (
        PC,
        (("foreground", "background"),),
        1,
        (8,),
    ),
    "labsyspharm__mcmicro-ilastik/classifiers/exemplar_001.ilp": (PC, (NUCLEI,), 2, (7,)),
    "labsyspharm__mcmicro-ilastik/classifiers/exemplar_001_nuclei.ilp": (PC, (NUCLEI,), 4, (3,)),
    "ome__omero-guide-ilastik/notebooks/pipelines/ilastik14-Nov-2024.ilp": (PC, (L2,), 1, (38,)),
    "ome__omero-guide-ilastik/notebooks/pipelines/pixel-class-133.ilp": (PC, (L2,), 1, (43,)),
}
# workflows cascade does not run yet (object classification, counting): refused in one line
UNSUPPORTED = {
    "ilastik__ilastik/tests/test_ilastik/data/inputdata/pc-oc-133.ilp": "Object Classification",
    **{
        f"ilastik__ilastik/object_classification/{name}.ilp": "Object Classification"
        for name in (
            "ObjectClassification2d3c_wLabels",
            "ObjectClassification2d_wPred",
            "ObjectClassification2d_wSeg",
            "ObjectClassification5t2d1c_wPred",
            "ObjectClassification5t2d1c_wSeg",
        )
    },
    "ilastik__ilastik/object_classification/CellDensityCounting2d3c.ilp": "Cell Density Counting",
}
NO_FEATURES = {"ilastik__ilastik/api_projects/PixelClassNoData.ilp"}
LEAF = 0x40000000


# helpers ------------------------------------------------------------------------------------------
def packed_proba(forest: PackedForest, x: np.ndarray) -> np.ndarray:
    """A plain numpy evaluator of the PackedForest contract (mean over trees of the leaf rows)."""
    rows = np.arange(len(x))
    out = np.zeros((len(x), forest.n_outputs), dtype=np.float64)
    for root in forest.roots:
        node = np.full(len(x), root, dtype=np.int64)
        while (forest.feature[node] >= 0).any():
            split = forest.feature[node] >= 0
            column = np.where(split, forest.feature[node], 0)
            go_left = x[rows, column] < forest.threshold[node]
            step = np.where(go_left, forest.left[node], forest.right[node])
            node = np.where(split, step, node)
        out += forest.value[node]
    return out / forest.n_trees


def raw_trees(group: h5py.Group) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(topology, parameters, labels) of every stored vigra tree, straight from the file."""
    trees = []
    for fkey in sorted(k for k in group if k.startswith("Forest")):
        forest = group[fkey]
        labels = forest["_ext_param/labels"][()]
        for tkey in sorted((k for k in forest if k.startswith("Tree_")), key=lambda k: int(k[5:])):
            trees.append((forest[tkey]["topology"][()], forest[tkey]["parameters"][()], labels))
    return trees


def raw_proba(
    trees: list[tuple[np.ndarray, np.ndarray, np.ndarray]], x: np.ndarray, n_out: int
) -> np.ndarray:
    """Reference: walk vigra's raw topology arrays, comparing in float64 as vigra does."""
    out = np.zeros((len(x), n_out))
    for topo, params, labels in trees:
        n_classes = int(topo[1])
        for i, row in enumerate(x.astype(np.float64)):
            pos = 2
            while topo[pos] == 0:
                threshold = params[topo[pos + 1] + 1]
                pos = topo[pos + 2] if row[topo[pos + 4]] < threshold else topo[pos + 3]
            assert topo[pos] == LEAF
            probs = params[topo[pos + 1] + 1 : topo[pos + 1] + 1 + n_classes]
            out[i, labels.astype(int) - 1] += probs / probs.sum()
    return out / len(trees)


def tricky_inputs(trees: list[Any], n_features: int, n: int, seed: int) -> np.ndarray:
    """float32 samples whose values sit on and next to the float32 roundings of the thresholds."""
    rng = np.random.default_rng(seed)
    per_column: list[list[float]] = [[] for _ in range(n_features)]
    for topo, params, _ in trees:
        pos = np.flatnonzero(topo[2:] == 0) + 2
        for p in pos:
            if p + 4 < len(topo) and 0 <= topo[p + 4] < n_features and topo[p + 1] + 1 < len(params):
                per_column[topo[p + 4]].append(params[topo[p + 1] + 1])
    x = rng.normal(size=(n, n_features)).astype(np.float32)
    for j, values in enumerate(per_column):
        if not values:
            continue
        t = np.asarray(values)
        near = t.astype(np.float32)
        pool = np.concatenate(
            [near, np.nextafter(near, np.float32(-np.inf)), np.nextafter(near, np.float32(np.inf))]
        )
        x[:, j] = rng.choice(pool, size=n)
    return x


# every project of the data set ----------------------------------------------------------------------
@needs_data
def test_inventory_is_complete() -> None:
    assert set(ILPS) == set(EXPECTED) | set(UNSUPPORTED)


@needs_data
@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_read_every_project(rel: str) -> None:
    workflow, classes, n_lanes, n_blocks = EXPECTED[rel]
    project = read_ilp(ILP_DIR / rel)
    assert project.workflow == workflow
    assert tuple(s.label_names for s in project.stages) == classes
    assert len(project.lanes) == n_lanes
    assert tuple(sum(len(b) for b in s.label_blocks) for s in project.stages) == n_blocks
    assert project.ilastik_version[0].isdigit()
    assert project.usable_features == (rel not in NO_FEATURES)
    _check_lanes(project)
    for stage in project.stages:
        _check_label_blocks(project, stage.index)
        if stage.forest is not None:
            _check_forest_matches_features(project, stage.index)
    text = describe_ilp(project)
    assert workflow in text
    assert all(name in text for names in classes for name in names)


def _check_lanes(project: IlpProject) -> None:
    for lane in project.lanes:
        assert lane.axes is not None
        assert lane.shape is not None
        assert len(lane.shape) == len(lane.axes)
        if lane.location == "ProjectInternal":
            assert lane.resolved_path is None
            assert lane.exists
        else:
            assert lane.resolved_path is not None
            assert Path(lane.resolved_path).is_absolute()
            assert lane.exists == Path(lane.resolved_path).exists()


def _check_label_blocks(project: IlpProject, k: int) -> None:
    stage = project.stages[k]
    assert len(stage.label_blocks) >= len(project.lanes)
    for lane, blocks in zip(project.lanes, stage.label_blocks, strict=False):
        for block in blocks:
            assert block.data.dtype == np.uint8
            assert block.data.shape == tuple(s.stop - s.start for s in block.slices)
            assert len(block.axes) == block.data.ndim
            assert "c" in block.axes
            assert block.slices[block.axes.index("c")] == slice(0, 1)
            assert int(block.data.max()) <= stage.n_classes
            for key, sl in zip(block.axes, block.slices, strict=True):
                size = lane.size(key)
                assert size is not None
                assert 0 <= sl.start < sl.stop <= size, (key, sl, lane.axes, lane.shape)
    if any(stage.label_blocks):
        assert stage.label_counts().sum() > 0


def _check_forest_matches_features(project: IlpProject, k: int) -> None:
    stage = project.stages[k]
    forest = stage.forest
    assert forest is not None
    assert stage.selection is not None
    assert stage.feature_names is not None
    n_in = project.input_channels(k)
    z = project.z_size()
    assert n_in is not None
    assert z is not None
    z_arg = z if z > 1 else None
    selection = stage.selection_for(z)
    assert selection is not None
    assert forest.n_features == selection.n_channels(n_in, z_arg) == len(stage.feature_names)
    # ilastik names the columns from the stored flags (old projects: none stored, no "in 2D")
    assert list(stage.feature_names) == stage.selection.channel_names(n_in, z_arg)
    assert forest.n_trees == 100
    assert forest.n_outputs == stage.n_classes
    leaves = forest.feature < 0
    np.testing.assert_array_equal(forest.value[leaves].sum(axis=1), 1.0)
    assert ((forest.left[~leaves] > 0) & (forest.right[~leaves] > 0)).all()
    assert forest.threshold.dtype == np.float32
    assert forest.roots.dtype == np.int64


@needs_data
@pytest.mark.parametrize("rel", sorted(UNSUPPORTED))
def test_other_workflows_are_rejected(rel: str) -> None:
    name = UNSUPPORTED[rel]
    # Object Classification projects run through their own path (cascade.project.open_object_project)
    expected = (
        "is an Object Classification project, not a pixel classifier"
        if name.startswith("Object")
        else (rf"workflow '{name}.*' is not supported")
    )
    with pytest.raises(ProjectError, match=expected):
        read_ilp(ILP_DIR / rel)


@needs_data
def test_project_without_data_or_features() -> None:
    project = read_ilp(ILP_DIR / "ilastik__ilastik/api_projects/PixelClassNoData.ilp")
    (stage,) = project.stages
    assert stage.selection is None
    assert stage.selection_for(1) is None
    assert stage.forest is None
    assert project.lanes == ()
    assert not project.usable_features
    assert any("no feature selection" in issue for issue in project.issues)
    assert "none usable" in describe_ilp(project)


@needs_data
def test_autocontext_stage_inputs_and_internal_lane() -> None:
    project = read_ilp(ILP_DIR / "ilastik__ilastik/notebooks/autocontext_api/ac.ilp")
    assert [project.input_channels(k) for k in range(2)] == [1, 4]
    assert [s.forest.n_features for s in project.stages if s.forest] == [49, 196]
    lane = project.lanes[0]
    assert lane.location == "ProjectInternal"
    assert lane.axes == "yxc"
    image = read_lane_data(project, 0)
    assert image.shape == lane.shape == (1024, 1344, 1)
    assert image.dtype == np.uint8
    assert project.export["OutputFormat"] == "compressed hdf5"


@needs_data
def test_relative_h5_lane_and_old_label_axes() -> None:
    project = read_ilp(ILP_DIR / "ilastik__ilastik/test_projects/PixelClassification3d.ilp")
    lane = project.lanes[0]
    assert lane.file_path == "inputdata/3d.h5/data"
    assert lane.internal_path == "/data"
    assert lane.resolved_path is not None
    assert Path(lane.resolved_path).samefile(ILP_DIR / "ilastik__ilastik/test_projects/inputdata/3d.h5")
    assert lane.exists
    assert lane.shape == (50, 60, 55)
    assert lane.axes == "zyx"
    assert project.stages[0].label_blocks[0][0].axes == "zyxc"  # stored without axistags
    assert not project.stages[0].compute_in_2d_stored
    assert project.stages[0].selection_for(50).compute_in_2d == (False,) * 7  # type: ignore[union-attr]
    with pytest.raises(ProjectError, match="not stored in the project"):
        read_lane_data(project, 0)
    # labels of 1.3.3post2 projects are in the file's own 5-D order
    old = read_ilp(ILP_DIR / "ome__omero-guide-ilastik/notebooks/pipelines/pixel-class-133.ilp")
    assert {b.axes for b in old.stages[0].label_blocks[0]} == {"tzyxc"}


@needs_data
@pytest.mark.parametrize(
    ("rel", "stage"),
    [
        ("ilastik__ilastik/api_projects/Autocontext_2D.ilp", 1),
        ("ilastik__ilastik/api_projects/PixelClass3Channel.ilp", 0),
        ("ilastik__ilastik/test_projects/Autocontext2d3c.ilp", 0),
        ("labsyspharm__mcmicro-ilastik/classifiers/exemplar_001.ilp", 0),
    ],
)
def test_forest_conversion_matches_raw_vigra_trees(rel: str, stage: int) -> None:
    project = read_ilp(ILP_DIR / rel)
    forest = project.stages[stage].forest
    assert forest is not None
    suffix = "" if stage == 0 else f"{stage:02d}"
    with h5py.File(ILP_DIR / rel, "r", locking=False) as f:
        trees = raw_trees(f[f"PixelClassification{suffix}/ClassifierForests"])
    x = tricky_inputs(trees, forest.n_features, n=120, seed=stage)
    expected = raw_proba(trees, x, forest.n_outputs)
    np.testing.assert_allclose(packed_proba(forest, x), expected, rtol=0, atol=1e-6)
    try:
        from cascade.forest import predict_proba  # type: ignore[attr-defined]
    except ImportError:
        return
    np.testing.assert_allclose(np.asarray(predict_proba(forest, x)), expected, rtol=0, atol=1e-6)


# conversion details ---------------------------------------------------------------------------------
def test_float32_thresholds_keep_float32_decisions() -> None:
    rng = np.random.default_rng(0)
    t = np.concatenate([rng.normal(size=2000) * 10.0 ** rng.integers(-5, 5, 2000), [0.7, 1e39, -1e39, 0.5]])
    t32 = float32_thresholds(t)
    with np.errstate(over="ignore"):
        near = t.astype(np.float32)
    for x in (near, np.nextafter(near, np.float32(-np.inf)), np.nextafter(near, np.float32(np.inf))):
        np.testing.assert_array_equal(x.astype(np.float64) < t, x < t32)


def test_split_internal_path() -> None:
    assert split_internal_path("./inputdata/2d.h5/data") == ("./inputdata/2d.h5", "/data")
    assert split_internal_path("a/b.hdf5/x/y") == ("a/b.hdf5", "/x/y")
    assert split_internal_path("a/b.h5") == ("a/b.h5", None)
    assert split_internal_path("dir.h5x/img.png") == ("dir.h5x/img.png", None)


# synthetic projects -----------------------------------------------------------------------------------
def _axistags(keys: str) -> str:
    return json.dumps(
        {"axes": [{"key": k, "typeFlags": 2, "resolution": 0, "description": ""} for k in keys]}
    )


def _write_tree(forest: h5py.Group, name: str, topology: list[int], parameters: list[float]) -> None:
    forest.create_dataset(f"{name}/topology", data=np.asarray(topology, dtype=np.int32))
    forest.create_dataset(f"{name}/parameters", data=np.asarray(parameters, dtype=np.float64))


def _make_project(path: Path, workflow: str = "PixelClassificationWorkflow", leaf_type: int = LEAF) -> None:
    """A tiny Pixel Classification project: one internal lane, one external h5 lane, a 2-tree forest."""
    (path.parent / "sub").mkdir(exist_ok=True)
    with h5py.File(path.parent / "sub" / "img.h5", "w") as f:
        f["vol"] = np.zeros((4, 7, 2), dtype=np.uint16)
    with h5py.File(path, "w") as f:
        f["workflowName"] = workflow.encode()
        f["ilastikVersion"] = b"1.4.1"
        fs = f.create_group("FeatureSelections")
        fs["FeatureIds"] = np.array([b"GaussianSmoothing", b"HessianOfGaussianEigenvalues"])
        fs["Scales"] = np.array([0.3, 1.0])
        fs["SelectionMatrix"] = np.array([[True, True], [False, True]])
        info = f.create_group("Input Data/infos/lane0000/Raw Data")
        info["filePath"] = b"/Input Data/local_data/abc"
        info["location"] = b"ProjectInternal"
        info["datasetId"] = b"abc"
        info["nickname"] = b"internal"
        info["axistags"] = _axistags("yxc").encode()
        f["Input Data/local_data/abc"] = np.arange(30, dtype=np.uint8).reshape(5, 6, 1)
        info = f.create_group("Input Data/infos/lane0001/Raw Data")
        info["filePath"] = b"sub/img.h5/vol"
        info["location"] = b"FileSystem"
        info["axistags"] = _axistags("yxc").encode()
        pc = f.create_group("PixelClassification")
        pc["LabelNames"] = np.array([b"a", b"b", b"c"])
        block = pc.create_dataset(
            "LabelSets/labels000/block0000", data=np.array([[[1], [3]], [[0], [1]]], np.uint8)
        )
        block.attrs["blockSlice"] = "[1:3,2:4,0:1]"
        pc.create_group("LabelSets/labels001")
        cf = pc.create_group("ClassifierForests")
        cf["known_labels"] = np.array([1, 3], dtype=np.uint32)
        cf["feature_names"] = np.array([b"f0", b"f1"])
        forest = cf.create_group("Forest0000")
        forest["_ext_param/labels"] = np.array([1, 3], dtype=np.uint32)
        # x[1] < 0.7 -> leaf (3, 0) = label 1, else leaf (0, 2) = label 3; weights 5 and 7 must be ignored
        _write_tree(
            forest, "Tree_0", [2, 2, 0, 0, 7, 9, 1, leaf_type, 2, LEAF, 5], [1, 0.7, 5, 3, 0, 7, 0, 2]
        )
        _write_tree(forest, "Tree_1", [2, 2, LEAF, 0], [4, 0, 1])
        ex = f.create_group("Prediction Export")
        ex["RegionStart"] = np.array([-1, 2, 0])
        ex["RegionStop"] = np.array([-1, -1, 1])
        ex["InputMax"] = np.float32(1.0)
        ex["ExportDtype"] = b"uint8"


def test_synthetic_project(tmp_path: Path) -> None:
    _make_project(tmp_path / "p.ilp")
    project = read_ilp(tmp_path / "p.ilp")
    assert project.workflow == "Pixel Classification"
    stage = project.stages[0]
    assert not stage.compute_in_2d_stored
    assert stage.selection_for(1).compute_in_2d == (True, True)  # type: ignore[union-attr]
    assert stage.selection_for(9).compute_in_2d == (False, False)  # type: ignore[union-attr]
    internal, external = project.lanes
    assert internal.shape == (5, 6, 1)
    assert internal.dtype == "uint8"
    assert internal.exists
    np.testing.assert_array_equal(read_lane_data(project, 0)[..., 0], np.arange(30).reshape(5, 6))
    assert external.resolved_path == str(tmp_path / "sub" / "img.h5")
    assert external.internal_path == "/vol"
    assert external.exists
    assert external.shape == (4, 7, 2)
    assert external.nickname == "img"
    (block,) = stage.label_blocks[0]
    assert block.axes == "yxc"
    assert block.slices == (slice(1, 3), slice(2, 4), slice(0, 1))
    assert stage.label_blocks[1] == ()
    np.testing.assert_array_equal(stage.label_counts(), [2, 0, 1])
    assert project.export == {
        "RegionStart": (None, 2, 0),
        "RegionStop": (None, None, 1),
        "InputMax": 1.0,
        "ExportDtype": "uint8",
    }
    forest = stage.forest
    assert forest is not None
    assert forest.n_trees == 2
    assert forest.n_outputs == 3
    assert forest.n_features == 2
    t = np.float32(0.7)  # 0.699999988 < 0.7: must go left although it rounds to the threshold
    x = np.array(
        [[5, np.nextafter(t, np.float32(0))], [5, t], [5, np.nextafter(t, np.float32(1))]], np.float32
    )
    np.testing.assert_array_equal(packed_proba(forest, x), [[0.5, 0, 0.5], [0.5, 0, 0.5], [0, 0, 1]])


@pytest.mark.parametrize(
    ("name", "stages"),
    [("AutocontextTwoStage", 2), ("Autocontext (3-stage)", 3), ("Pixel Classification", 1)],
)
def test_workflow_names_need_their_stage_groups(tmp_path: Path, name: str, stages: int) -> None:
    _make_project(tmp_path / "p.ilp", workflow=name)
    if stages == 1:
        assert len(read_ilp(tmp_path / "p.ilp").stages) == 1
        return
    with pytest.raises(ProjectError, match="FeatureSelections01, PixelClassification01"):
        read_ilp(tmp_path / "p.ilp")


# broken and foreign files -----------------------------------------------------------------------------
def _one_line_error(path: Path, match: str) -> None:
    with pytest.raises(ProjectError, match=match) as info:
        read_ilp(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path.name) in message


def test_missing_file(tmp_path: Path) -> None:
    _one_line_error(tmp_path / "nope.ilp", "project file not found")


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.ilp"
    path.write_bytes(np.random.default_rng(1).bytes(5000))
    _one_line_error(path, "not a readable HDF5 file")


@pytest.mark.parametrize("fraction", [0.3, 0.9])
def test_truncated_project(tmp_path: Path, fraction: float) -> None:
    _make_project(tmp_path / "full.ilp")
    raw = (tmp_path / "full.ilp").read_bytes()
    path = tmp_path / "cut.ilp"
    path.write_bytes(raw[: int(len(raw) * fraction)])
    _one_line_error(path, "cut.ilp")


def test_plain_h5_is_not_a_project(tmp_path: Path) -> None:
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f["data"] = np.zeros((3, 3))
    _one_line_error(path, "no 'workflowName'")


def test_project_without_groups(tmp_path: Path) -> None:
    path = tmp_path / "empty.ilp"
    with h5py.File(path, "w") as f:
        f["workflowName"] = b"Pixel Classification"
    _one_line_error(path, "needs the group")


def test_unsupported_node_type(tmp_path: Path) -> None:
    _make_project(tmp_path / "p.ilp", leaf_type=LEAF + 1)
    _one_line_error(tmp_path / "p.ilp", "unsupported vigra node type 0x40000001")


def test_directory(tmp_path: Path) -> None:
    _one_line_error(tmp_path, "is a directory")


# --- hostile label blocks -----------------------------------------------------------------------

_BLOCK = "PixelClassification/LabelSets/labels000/block0000"  # (38, 65, 1) uint8 at [26:64,36:101,0:1]


def _with_block(tmp_path: Path, data_dir: Path, data: Any, block_slice: str, **options: Any) -> Path:
    """PixelClass.ilp (a 128x128 lane) with its label block replaced."""
    path = tmp_path / "p.ilp"
    path.write_bytes((data_dir / "ilp/ilastik__ilastik/api_projects/PixelClass.ilp").read_bytes())
    with h5py.File(path, "r+") as f:
        axistags = f[_BLOCK].attrs["axistags"]
        del f[_BLOCK]
        ds = f.create_dataset(_BLOCK, data=data, **options)
        ds.attrs["axistags"], ds.attrs["blockSlice"] = axistags, block_slice
    return path


def test_label_block_declaring_a_huge_region_is_refused_unread(tmp_path: Path, data_dir: Path) -> None:
    """A 10^5 x 10^5 block (a few KB of empty gzip chunks) in a 128 x 128 lane: refused before it is
    read; reading it took 10 GB on every predict (labels are read when the project is opened)."""
    options = {"shape": (100000, 100000, 1), "dtype": "u1", "chunks": (1000, 1000, 1), "compression": "gzip"}
    path = _with_block(tmp_path, data_dir, None, "[0:100000,0:100000,0:1]", **options)
    with pytest.raises(
        ProjectError, match=r"block0000: label block at y=0:100000 lies outside the image \(y=128"
    ):
        read_ilp(path)


@pytest.mark.parametrize(
    ("block_slice", "named"), [("[126:164,36:101,0:1]", "y=126:164"), ("[-12:26,36:101,0:1]", "y=-12:26")]
)
def test_label_block_outside_the_image_is_refused(
    tmp_path: Path, data_dir: Path, block_slice: str, named: str
) -> None:
    path = _with_block(tmp_path, data_dir, np.ones((38, 65, 1), np.uint8), block_slice)
    with pytest.raises(ProjectError, match=f"label block at {named} lies outside the image"):
        read_ilp(path)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (np.full((38, 65, 1), 258, np.int64), r"label values 258..258 outside ilastik's 0..255"),
        (np.full((38, 65, 1), 1.5, np.float32), r"label block of dtype float32"),
        (np.ones((38, 65), np.uint8), r"label block of shape \(38, 65\) does not fit its blockSlice"),
    ],
)
def test_label_block_of_a_wrong_dtype_or_ndim_is_refused(
    tmp_path: Path, data_dir: Path, data: Any, words: str
) -> None:
    """258 wrapped silently to class 2 and 1.5 was truncated to 1; both are refused now."""
    path = _with_block(tmp_path, data_dir, data, "[26:64,36:101,0:1]")
    with pytest.raises(ProjectError, match=words):
        read_ilp(path)


@pytest.mark.parametrize(("name", "dtype"), [("topology", "i4"), ("parameters", "f8")])
def test_tree_array_declaring_more_than_the_file_stores_is_refused_unread(
    tmp_path: Path, data_dir: Path, name: str, dtype: str
) -> None:
    """A tree array of 10^10 entries whose chunks were never written (a few KB of file) failed as
    "out of memory; use fewer --threads"; it is refused naming the dataset before anything is read."""
    path = tmp_path / "p.ilp"
    path.write_bytes((data_dir / "ilp/ilastik__ilastik/api_projects/PixelClass.ilp").read_bytes())
    key = f"PixelClassification/ClassifierForests/Forest0000/Tree_00/{name}"
    with h5py.File(path, "r+") as f:
        del f[key]
        f.create_dataset(key, shape=(10**10,), dtype=dtype, chunks=(10**6,), compression="gzip")
    with pytest.raises(
        ProjectError, match=f"Tree_00/{name}: damaged dataset: it declares \\(10000000000,\\)"
    ):
        read_ilp(path)


def test_label_block_with_a_gzip_bomb_chunk_is_refused_uninflated(tmp_path: Path, data_dir: Path) -> None:
    """HDF5 inflated a label block's chunk whole, however large, and kept its start without an error."""
    options = {"chunks": (38, 65, 1), "compression": "gzip"}
    path = _with_block(tmp_path, data_dir, np.ones((38, 65, 1), np.uint8), "[26:64,36:101,0:1]", **options)
    with h5py.File(path, "r+") as f:
        f[_BLOCK].id.write_direct_chunk((0, 0, 0), zlib.compress(bytes(8 << 20), 9))
    with pytest.raises(
        DataError, match=r"damaged HDF5 chunk at \(0, 0, 0\) of .*block0000: a chunk is 2470 bytes"
    ):
        read_ilp(path)
