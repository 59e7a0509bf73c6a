"""vigra's convex-hull and skeleton object features against what ilastik stored (issue 12, part C).

The references are the ``RegionFeatures`` ilastik stored in ``ObjectClassification2d_wPred.ilp`` and
``ObjectClassification2d_wSeg.ilp`` (t = 0), computed on the stored object label image
``ObjectExtraction/LabelImage_v2`` (txyzc blocks, transposed here to yx).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy import ndimage

from cascade.errors import ObjectsError
from cascade.objects._hull import convex_hull_features_2d, convex_hull_features_3d
from cascade.objects._shape_table import shape_feature_table
from cascade.objects._skeleton import SKELETON_FEATURES, skeleton_features_2d

PROJECTS = ("ObjectClassification2d_wPred.ilp", "ObjectClassification2d_wSeg.ilp")
ROI = "ObjectExtraction/RegionFeatures/0000/[[0], [1]]"
#: Objects of 2d_wSeg without defects: vigra's DefectCenter is a stale heap value there.
NO_DEFECT_OBJECTS = 15


def _stored(data_dir: Path, project: str) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """The stored label image (y, x) and feature groups of one project."""
    path = data_dir / "ilp" / "ilastik__ilastik" / "object_classification" / project
    with h5py.File(path, "r") as f:
        group = f["ObjectExtraction/LabelImage_v2"]
        group = group[next(iter(group))]
        block = group[next(iter(group))]
        assert block.attrs["blockSlice"].startswith("[0:1,0:")
        labels = np.ascontiguousarray(block[0, :, :, 0, 0].T)
        stored = {
            plugin: {name: data[()] for name, data in f[ROI][plugin].items()}
            for plugin in ("2D Convex Hull Features", "2D Skeleton Features", "Default features")
        }
    return labels, stored


def _objects(labels: np.ndarray) -> list[tuple[int, np.ndarray, tuple[int, int]]]:
    boxes = ndimage.find_objects(labels)
    return [
        (i, labels[box] == i, (box[0].start, box[1].start))
        for i, box in enumerate(boxes, start=1)
        if box is not None
    ]


@pytest.mark.parametrize("project", PROJECTS)
def test_hull_2d_matches_ilastik(data_dir: Path, project: str) -> None:
    labels, stored = _stored(data_dir, project)
    reference = stored["2D Convex Hull Features"]
    objects = _objects(labels)
    assert len(objects) == reference["InputVolume"].shape[0] - 1
    mismatches: dict[str, list[int]] = {}
    for i, mask, origin in objects:
        for name, values in convex_hull_features_2d(mask, origin).items():
            if not np.array_equal(values.astype(np.float32), reference[name][i], equal_nan=True):
                mismatches.setdefault(name, []).append(i)
    no_defects = [i for i, *_ in objects if reference["DefectCount"][i, 0] == 0]
    # Everything bit for bit as float32, except vigra's out-of-bounds DefectCenter of objects
    # without defects (2d_wSeg has 15 box-shaped objects).
    assert set(mismatches) <= {"DefectCenter"}
    assert mismatches.get("DefectCenter", []) == no_defects
    expected = NO_DEFECT_OBJECTS if "wSeg" in project else 0
    assert len(no_defects) == expected


def _time_series(data_dir: Path, project: str) -> list[tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]]:
    """Per t: the objects ((y, x) labels) and the stored hull/skeleton features of a 5t2d1c project.

    5t2d1c_wSeg's stored label image is stale (reference section 9): its objects are the
    4-connected components of the segmentation input, which its RegionFeatures were computed on.
    """
    folder = data_dir / "ilp" / "ilastik__ilastik" / "object_classification"
    series = []
    with h5py.File(folder / project, "r") as f:
        if "wSeg" in project:
            with h5py.File(folder / "inputdata" / "5t2d1c_Binary_Segmentation.h5", "r") as seg:
                images = [ndimage.label(seg["exported_data"][t, :, :, 0] > 0)[0] for t in range(5)]
        else:
            blocks = f["ObjectExtraction/LabelImage_v2/labelimage000"]
            images = [np.ascontiguousarray(blocks[f"block{t:04d}"][0, :, :, 0, 0].T) for t in range(5)]
        for t, labels in enumerate(images):
            group = f[f"ObjectExtraction/RegionFeatures/0000/[[{t}], [{t + 1}]]"]
            plugins = ("2D Convex Hull Features", "2D Skeleton Features", "Default features")
            series.append((labels, {p: {k: v[()] for k, v in group[p].items()} for p in plugins}))
    return series


@pytest.mark.parametrize(
    ("project", "stale"),
    [("ObjectClassification5t2d1c_wPred.ilp", 0), ("ObjectClassification5t2d1c_wSeg.ilp", 2)],
)
def test_hull_and_skeleton_5t_match_ilastik(data_dir: Path, project: str, stale: int) -> None:
    """Every t of the 5t2d1c projects; DefectCenter of defect-free objects is the box corner
    except where ilastik's memory held another object's value (2 objects of 5t2d1c_wSeg)."""
    objects = 0
    corners = []
    for labels, stored in _time_series(data_dir, project):
        assert len(_objects(labels)) == stored["Default features"]["Count"].shape[0] - 1
        for i, mask, origin in _objects(labels):
            objects += 1
            features = convex_hull_features_2d(mask, origin)
            features.update(skeleton_features_2d(mask, origin, image_shape=labels.shape))
            for plugin in ("2D Convex Hull Features", "2D Skeleton Features"):
                for name, values in stored[plugin].items():
                    same = np.array_equal(features[name].astype(np.float32), values[i], equal_nan=True)
                    if name == "DefectCenter" and features["DefectCount"][0] == 0:
                        corners.append(same)
                    else:
                        assert same, (i, name, features[name], values[i])
    assert objects == (24 if "wPred" in project else 29)
    assert corners.count(False) == stale


def test_hull_is_the_bounding_box() -> None:
    """vigra's hull is the bounding box: a disk is not convex, an L's defect is a rectangle."""
    yy, xx = np.mgrid[:21, :21]
    disk = (yy - 10) ** 2 + (xx - 10) ** 2 <= 100
    features = convex_hull_features_2d(disk, (5, 7))
    assert features["HullVolume"][0] == 21 * 21
    assert features["InputVolume"][0] == disk.sum()
    assert features["Convexity"][0] == disk.sum() / 441
    assert features["DefectCount"][0] == 4
    np.testing.assert_array_equal(features["HullCenter"], [17.0, 15.0])
    np.testing.assert_array_equal(features["InputCenter"], [17.0, 15.0])
    np.testing.assert_array_equal(features["DefectCenter"], [17.0, 15.0])
    assert features["DefectVolumeVariance"][0] == 0.0
    assert np.isnan(features["DefectVolumeSkewness"][0])  # 0/0 in vigra too

    ell = np.zeros((6, 4), bool)
    ell[:, :2] = True
    ell[4:, :] = True
    features = convex_hull_features_2d(ell, (0, 0))
    assert features["DefectCount"][0] == 1
    assert features["DefectVolumeMean"][0] == 8.0
    np.testing.assert_array_equal(features["DefectCenter"], [2.5, 1.5])
    center = np.array([ell.nonzero()[1].mean(), ell.nonzero()[0].mean()])
    assert features["DefectDisplacementMean"][0] == pytest.approx(np.hypot(*(center - [2.5, 1.5])))


def test_hull_of_a_box_is_convex_without_defects() -> None:
    box = np.ones((3, 4, 5), bool)
    features = convex_hull_features_3d(np.pad(box, 2), (10, 20, 30))
    assert features["InputVolume"][0] == features["HullVolume"][0] == 60
    assert features["Convexity"][0] == 1.0
    assert features["DefectCount"][0] == 0
    for name in ("DefectVolumeMean", "DefectVolumeVariance", "DefectDisplacementMean"):
        assert features[name][0] == 0.0
    # vigra's out-of-bounds DefectCenter on zeroed memory: the bounding box's corner (x, y, z).
    np.testing.assert_array_equal(features["DefectCenter"], [32.0, 22.0, 12.0])
    np.testing.assert_array_equal(features["InputCenter"], [34.0, 23.5, 13.0])
    np.testing.assert_array_equal(features["HullCenter"], [34.0, 23.5, 13.0])


def test_hull_3d_of_a_ball_is_its_bounding_box() -> None:
    """vigra's 3D hull is the bounding box too: a ball is not convex, its 8 corners are defects."""
    zz, yy, xx = np.mgrid[:15, :15, :15]
    ball = (zz - 7) ** 2 + (yy - 7) ** 2 + (xx - 7) ** 2 <= 49
    features = convex_hull_features_3d(ball, (0, 0, 0))
    assert features["HullVolume"][0] == 15**3
    assert features["Convexity"][0] == ball.sum() / 15**3 < 0.53
    assert features["DefectCount"][0] == 1  # the corners meet along the box's edges
    np.testing.assert_array_equal(features["DefectCenter"], [7.0, 7.0, 7.0])
    assert features["DefectDisplacementMean"][0] == 0.0


def test_hull_3d_defects_are_6_connected() -> None:
    """Two corners of a cube cut away diagonally: two defects in 3D (6-neighbourhood)."""
    cube = np.ones((4, 4, 4), bool)
    cube[:2, :2, :2] = False
    cube[2:, 2:, 2:] = False
    features = convex_hull_features_3d(cube, (0, 0, 0))
    assert features["DefectCount"][0] == 2
    assert features["DefectVolumeMean"][0] == 8.0
    assert features["DefectVolumeVariance"][0] == 0.0
    assert features["HullVolume"][0] == 64
    np.testing.assert_array_equal(features["DefectCenter"], [1.5, 1.5, 1.5])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hull_3d_on_one_slice_equals_2d(seed: int) -> None:
    """vigra's algorithm has no dimension-specific step: one z slice gives the 2D numbers."""
    rng = np.random.default_rng(seed)
    image = ndimage.binary_opening(rng.random((30, 40)) < 0.6)
    labels, _ = ndimage.label(image)
    mask = labels == np.bincount(labels.ravel())[1:].argmax() + 1
    flat = convex_hull_features_2d(mask, (3, 4))
    solid = convex_hull_features_3d(mask[None], (7, 3, 4))
    assert flat.keys() == solid.keys()
    for name, values in flat.items():
        expected = np.append(values, 7.0) if name.endswith("Center") else values
        np.testing.assert_array_equal(solid[name], expected, err_msg=name)


@pytest.mark.parametrize(
    ("mask", "origin"),
    [
        (np.zeros((3, 3), bool), (0, 0)),
        (np.ones((3, 3), np.uint8), (0, 0)),
        (np.ones((3, 3, 3), bool), (0, 0)),
        (np.ones((3, 3), bool), (0,)),
    ],
)
def test_hull_rejects_bad_masks(mask: np.ndarray, origin: tuple[int, ...]) -> None:
    with pytest.raises(ObjectsError, match="object"):
        convex_hull_features_2d(mask, origin)


@pytest.mark.parametrize("project", PROJECTS)
def test_skeleton_2d_matches_ilastik(data_dir: Path, project: str) -> None:
    """Every stored skeleton feature of every object, bit for bit as float32 (incl. 4 holes)."""
    labels, stored = _stored(data_dir, project)
    reference = stored["2D Skeleton Features"]
    objects = _objects(labels)
    assert len(objects) == reference["Diameter"].shape[0] - 1
    mismatches = []
    for i, mask, origin in objects:
        features = skeleton_features_2d(mask, origin, image_shape=labels.shape)
        assert features.keys() == set(SKELETON_FEATURES)
        for name, values in reference.items():
            if not np.array_equal(features[name].astype(np.float32), values[i]):
                mismatches.append((i, name))
    assert mismatches == []
    holes = reference["Hole Count"][1:, 0]
    assert holes.sum() == (4 if "wSeg" in project else 0)


def test_skeleton_depends_on_the_image_border(data_dir: Path) -> None:
    """vigra's image border is not object boundary: the same pixels inside the image differ."""
    labels, stored = _stored(data_dir, PROJECTS[0])
    changed = 0
    touching = 0
    for i, mask, origin in _objects(labels):
        if 0 not in origin and all(o + n < s for o, n, s in zip(origin, mask.shape, labels.shape)):
            continue
        touching += 1
        at_border = skeleton_features_2d(mask, origin, image_shape=labels.shape)
        inside = skeleton_features_2d(np.pad(mask, 1), (origin[0] - 1, origin[1] - 1))
        changed += any(not np.array_equal(at_border[k], inside[k]) for k in at_border)
        # Without image_shape the crop is the image: the tight crop reproduces the border case
        # only where the object spans it, so the stored values need image_shape.
        assert stored["2D Skeleton Features"]["Diameter"][i, 0] == np.float32(at_border["Diameter"][0])
    assert touching == changed == 22


def test_skeleton_does_not_depend_on_the_crop() -> None:
    """A loose crop, another position: the same numbers (points shifted)."""
    yy, xx = np.mgrid[:40, :60]
    shape = ((yy - 20) / 15.0) ** 2 + ((xx - 30) / 25.0) ** 2 <= 1.0
    shape[18:23, 5:55] = True
    tight = skeleton_features_2d(shape[5:36, 5:56], (105, 205), image_shape=(300, 400))
    loose = skeleton_features_2d(shape, (100, 200), image_shape=(300, 400))
    moved = skeleton_features_2d(shape, (7, 11), image_shape=(300, 400))
    for name in SKELETON_FEATURES:
        np.testing.assert_array_equal(tight[name], loose[name], err_msg=name)
        shift = [189.0, 93.0] if name in ("Skeleton Center", "Terminal 1", "Terminal 2") else 0.0
        np.testing.assert_array_equal(moved[name], loose[name] - shift, err_msg=name)


def test_skeleton_of_a_ring_has_one_hole() -> None:
    yy, xx = np.mgrid[:41, :41]
    radius = np.hypot(yy - 20, xx - 20)
    ring = (radius <= 18) & (radius >= 9)
    features = skeleton_features_2d(ring, (50, 50), image_shape=(200, 200))
    assert features["Hole Count"][0] == 1
    disk = skeleton_features_2d(radius <= 18, (50, 50), image_shape=(200, 200))
    assert disk["Hole Count"][0] == 0
    for values in (features, disk):
        ends = values["Terminal 2"] - values["Terminal 1"]
        assert values["Euclidean Diameter"][0] == np.sqrt(ends @ ends)
        assert values["Diameter"][0] >= values["Euclidean Diameter"][0]


def test_skeleton_of_a_bar_is_its_centre_line() -> None:
    bar = np.ones((5, 31), bool)
    features = skeleton_features_2d(bar, (10, 20), image_shape=(100, 100))
    assert features["Branch Count"][0] == 2
    assert features["Hole Count"][0] == 0
    np.testing.assert_array_equal(features["Skeleton Center"], [35.0, 12.0])
    # The ends run into the bar's corners: (50, 14) and (20, 14), two diagonal steps each.
    assert sorted([features["Terminal 1"][0], features["Terminal 2"][0]]) == [20.0, 50.0]
    assert features["Diameter"][0] == pytest.approx(26 + 4 * np.sqrt(2), rel=1e-14)
    assert features["Total Length"][0] == pytest.approx(features["Diameter"][0], rel=1e-14)


def test_skeleton_rejects_a_crop_outside_the_image() -> None:
    with pytest.raises(ObjectsError, match="not inside the image"):
        skeleton_features_2d(np.ones((5, 5), bool), (98, 0), image_shape=(100, 100))


def test_shape_feature_table_is_ilastiks_table(data_dir: Path) -> None:
    """The driver over a whole label image gives ilastik's stored tables (row 0 included)."""
    labels, stored = _stored(data_dir, PROJECTS[0])
    plugins = ("2D Convex Hull Features", "2D Skeleton Features")
    table = shape_feature_table(labels, plugins)
    for plugin in plugins:
        for name, values in stored[plugin].items():
            np.testing.assert_array_equal(table[plugin][name], values, err_msg=name)
    assert table["2D Skeleton Features"]["Terminal 1"].shape == (110, 2)
    # A crop of the image that holds object 5 whole, placed with origin and image_shape.
    box = ndimage.find_objects(labels)[4]
    crop = np.where(labels[box] == 5, labels[box], 0)
    part = shape_feature_table(
        crop, plugins, origin=(box[0].start, box[1].start), image_shape=labels.shape, count=5
    )
    for plugin in plugins:
        for name, values in part[plugin].items():
            np.testing.assert_array_equal(values[5], table[plugin][name][5], err_msg=name)
            assert not values[:5].any()


@pytest.mark.parametrize(
    ("labels", "plugins", "match"),
    [
        (np.ones((3, 3), np.uint32), ["3D Convex Hull Features"], "needs a 3-D"),
        (np.ones((3, 3), np.uint32), ["Convex Hull"], "unknown plugin"),
        (np.ones((3, 3), np.float32), ["2D Skeleton Features"], "integer"),
    ],
)
def test_shape_feature_table_rejects(labels: np.ndarray, plugins: list[str], match: str) -> None:
    with pytest.raises(ObjectsError, match=match):
        shape_feature_table(labels, plugins)
