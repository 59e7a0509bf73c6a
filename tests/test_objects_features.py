"""Object features (issue 12 part B): ilastik's stored numbers, chunked == whole, independent recomputation.

The stored references are ``ObjectExtraction/RegionFeatures/0000`` of ilastik's own test projects,
computed by ilastik 1.2.2rc4 on the stored object label image ``LabelImage_v2`` (used here as the
objects, so these tests do not depend on connected components). That ilastik stored
``Coord<Maximum>`` inclusive; cascade stores it exclusive like current ilastik (compared as ours - 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask
import dask.array as da
import h5py
import numpy as np
import pytest
from scipy import ndimage

from cascade.errors import ObjectsError
from cascade.objects import DEFAULT_FEATURES, Objects, feature_names, object_features

OC = "ilp/ilastik__ilastik/object_classification"
STANDARD = "Standard Object Features"
ALL_STANDARD = (
    "Count", "Sum", "Mean", "Variance", "Skewness", "Kurtosis", "Minimum", "Maximum", "Quantiles",
    "Histogram", "Covariance", "RegionCenter", "RegionRadii", "RegionAxes", "Coord<Minimum>", "Coord<Maximum>",
)  # fmt: skip
LOCAL = ("Mean", "Variance", "Skewness", "Kurtosis", "Histogram", "Covariance", "Minimum", "Maximum", "Sum")


def _objects(labels: np.ndarray, axes: str, chunks: Any) -> Objects:
    """Objects from a numpy label image, counts from ``np.unique`` (no connected components)."""
    steps = [labels[t] for t in range(labels.shape[0])] if axes.startswith("t") else [labels]
    counts = tuple(int(np.unique(step[step > 0]).size) for step in steps)
    return Objects(da.from_array(labels.astype(np.uint32), chunks=chunks), axes, counts)


def _selection(stored: h5py.Group) -> dict[str, dict[str, dict[str, Any]]]:
    """ilastik's ``ObjectExtraction/Features`` as a selection (standard plugin only)."""
    out: dict[str, dict[str, Any]] = {}
    for feature, group in stored[STANDARD].items():
        out[feature] = {"margin": group["margin"][()]} if "margin" in group else {}
    return {STANDARD: out}


def _stored_project(data_dir: Path, name: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any], h5py.Group]:
    """The t=0 label image (yx), raw (yxc), selection and stored RegionFeatures of a project."""
    project = h5py.File(data_dir / OC / f"ObjectClassification{name}.ilp", "r")
    blocks = project["ObjectExtraction/LabelImage_v2/labelimage000"]
    (block,) = [b for b in blocks.values() if b.attrs["blockSlice"].startswith("[0:1,")]
    labels = block[0, :, :, 0, 0].T
    path = project["Input Data/infos/lane0000/Raw Data/filePath"][()].decode()
    file_name, dataset = path.split(".h5/")
    raw = h5py.File(data_dir / OC / f"{file_name}.h5", "r")[dataset][()]
    raw = raw[0] if raw.ndim == 4 else raw[..., None]
    stored = project["ObjectExtraction/RegionFeatures/0000/[[0], [1]]"]
    return labels, raw, _selection(project["ObjectExtraction/Features"]), stored


def _equal(ours: np.ndarray, theirs: np.ndarray) -> bool:
    return ours.shape == theirs.shape and bool(np.array_equal(ours, theirs, equal_nan=True))


@pytest.mark.parametrize(
    ("project", "chunks"),
    [("2d_wPred", (1024, 1344)), ("2d_wPred", (97, 131)), ("2d_wSeg", (300, 211)), ("5t2d1c_wPred", (7, 10))],
)
def test_stored_features_bit_for_bit(data_dir: Path, project: str, chunks: tuple[int, int]) -> None:
    """Every stored standard, neighbourhood and default feature, bit for bit, at any chunking."""
    labels, raw, selection, stored = _stored_project(data_dir, project)
    objects = _objects(labels, "yx", chunks)
    (table,) = object_features(da.from_array(raw, chunks=(*chunks, 1)), "yxc", objects, selection)
    for plugin in (STANDARD, DEFAULT_FEATURES):
        assert sorted(table[plugin]) == sorted(stored[plugin])
        for feature, ours in table[plugin].items():
            theirs = stored[plugin][feature][()]
            if feature == "Coord<Maximum>":
                ours = np.where(np.arange(len(ours))[:, None] > 0, ours - 1, 0)
            assert _equal(ours, theirs), (project, plugin, feature)


def test_stored_nan_for_constant_objects(data_dir: Path) -> None:
    """2d_wSeg has constant objects: Skewness/Kurtosis 0/0 = NaN, stored so by ilastik too."""
    labels, raw, selection, stored = _stored_project(data_dir, "2d_wSeg")
    (table,) = object_features(da.from_array(raw), "yxc", _objects(labels, "yx", 512), selection)
    nan = np.isnan(table[STANDARD]["Skewness"][:, 0])
    assert nan.sum() >= 1
    assert np.array_equal(nan, np.isnan(stored[STANDARD]["Skewness"][:, 0]))


# --- synthetic images, an independent whole-image recomputation ------------------------------------


def _blobs(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Random blobs (face-connected labels) plus a long thin object crossing every chunk."""
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.normal(size=shape), 2.0)
    mask = smooth > np.quantile(smooth, 0.7 if len(shape) == 2 else 0.9)
    line = tuple(size // 2 for size in shape[:-1]) + (slice(2, shape[-1] - 2),)
    mask[line] = True
    labels, _ = ndimage.label(mask)
    return labels.astype(np.uint32)


def _reference_quantiles(values: np.ndarray, lo: float, hi: float) -> list[float]:
    """Quantiles by walking the key points of ilastik-objects.md 4.4 (a loop, one object)."""
    scale = 64.0 / (hi - lo)
    mapped = scale * (values - lo)
    hist = np.bincount(np.minimum(np.floor(mapped).astype(int), 63), minlength=64)
    points, cums, cum = [scale * (values.min() - lo)], [0.0], 0.0
    for k in range(64):
        if hist[k]:
            if points[-1] <= k:
                points.append(k)
                cums.append(cum)
            cum += hist[k]
            points.append(k + 1)
            cums.append(cum)
    points[-1], cums[-1] = scale * (values.max() - lo), float(values.size)
    out = [values.min()]
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        target = values.size * q
        i = next(i for i in range(len(cums) - 1) if cums[i] < target <= cums[i + 1])
        t = (target - cums[i]) / (cums[i + 1] - cums[i]) * (points[i + 1] - points[i])
        out.append((t + points[i]) / scale + lo)
    return [*out, values.max()]


def _reference_object(
    values: np.ndarray, coords: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> dict[str, Any]:
    """Every standard feature of one object with plain numpy (values (n, C) float64, coords (n, d) x-first)."""
    n = len(values)
    mean = values.mean(axis=0)
    centred = values - mean
    m2 = (centred**2).sum(axis=0)
    spread = coords - coords.mean(axis=0)
    radii = np.sqrt(np.linalg.eigvalsh(spread.T @ spread / n)[::-1])
    hist = [np.histogram(values[:, c], bins=64, range=(lo[c], hi[c]))[0] for c in range(values.shape[1])]
    quant = [_reference_quantiles(values[:, c], lo[c], hi[c]) for c in range(values.shape[1])]
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "Count": [n], "Sum": values.sum(axis=0), "Mean": mean, "Variance": m2 / n,
            "Skewness": np.sqrt(n) * (centred**3).sum(axis=0) / m2**1.5,
            "Kurtosis": n * (centred**4).sum(axis=0) / m2**2 - 3, "Minimum": values.min(axis=0),
            "Maximum": values.max(axis=0), "Covariance": (centred.T @ centred / n).ravel(),
            "RegionCenter": coords.mean(axis=0), "RegionRadii": radii, "Coord<Minimum>": coords.min(axis=0),
            "Coord<Maximum>": coords.max(axis=0) + 1, "Histogram": np.concatenate(hist),
            "Quantiles": np.concatenate(quant),
        }  # fmt: skip


def _reference(raw: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The standard features of every object of one image (internal axes), independently."""
    values = raw.reshape(-1, raw.shape[-1]).astype(np.float32).astype(np.float64)
    flat = labels.ravel()
    lo, hi = values[flat > 0].min(axis=0), values[flat > 0].max(axis=0)
    grid = np.stack(np.unravel_index(np.arange(flat.size), labels.shape)[::-1], axis=1)
    rows = [_reference_object(values[flat == i], grid[flat == i], lo, hi) for i in range(1, flat.max() + 1)]
    return {name: np.array([np.ravel(r[name]) for r in rows]) for name in rows[0]}


def _close(ours: np.ndarray, theirs: np.ndarray) -> None:
    """Equal as float32, but for one float32 rounding step (independent summation order)."""
    theirs32 = theirs.astype(np.float32)
    assert np.array_equal(np.isnan(ours), np.isnan(theirs32))
    assert np.allclose(ours, theirs32, rtol=2e-7, atol=0, equal_nan=True)


@pytest.mark.parametrize("chunks", [(17, 23), (40, 9), (64, 96)])
def test_2d_two_channels_chunked_equals_whole_and_reference(chunks: tuple[int, int]) -> None:
    """2D, 2 channels: chunked == whole bit for bit; both equal a plain-numpy recomputation."""
    labels = _blobs((64, 96), seed=1)
    raw = np.random.default_rng(2).integers(0, 200, size=(64, 96, 2)).astype(np.uint16)
    selection = {STANDARD: {name: {} for name in ALL_STANDARD}}
    (whole,) = object_features(da.from_array(raw), "yxc", _objects(labels, "yx", -1), selection)
    (chunked,) = object_features(
        da.from_array(raw, chunks=(*chunks, 1)), "yxc", _objects(labels, "yx", chunks), selection
    )
    reference = _reference(raw, labels)
    for name in ALL_STANDARD:
        assert np.array_equal(whole[STANDARD][name], chunked[STANDARD][name], equal_nan=True), name
        if name in reference:
            exact = name in (
                "Count",
                "Minimum",
                "Maximum",
                "Coord<Minimum>",
                "Coord<Maximum>",
                "Histogram",
                "Sum",
            )
            compare = np.testing.assert_array_equal if exact else _close
            compare(whole[STANDARD][name][1:], reference[name].astype(np.float32))
    assert whole[STANDARD]["RegionAxes"].shape == (labels.max() + 1, 4)
    assert not whole[STANDARD]["Count"][0].any()


def _reference_local(raw: np.ndarray, labels: np.ndarray, margin: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Neighbourhood features by brute-force distances inside each object's window (ilastik 4.5).

    The window is ilastik's ``compute_extent``: ``[min - margin, max_inclusive + 2 + margin)``
    (``Coord<Maximum>`` is exclusive and ilastik adds 1 more), clipped to the image.
    """
    top = max(margin)
    pitch = np.array([top // m for m in margin], dtype=np.float64)  # x, y[, z]
    shape = np.array(labels.shape[::-1])
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in labels.shape], indexing="ij")[::-1], axis=-1)
    rows: dict[str, list[np.ndarray]] = {}
    for i in range(1, labels.max() + 1):
        inside = labels == i
        points = grid[inside]
        lo = np.maximum(points.min(axis=0) - margin, 0)
        hi = np.minimum(points.max(axis=0) + 2 + np.array(margin), shape)  # current ilastik: +1 beyond
        window = tuple(slice(a, b) for a, b in zip(lo[::-1], hi[::-1], strict=True))
        cells = grid[window].reshape(-1, len(margin))
        gaps = (cells[:, None, :] - points[None, :, :]) * pitch
        passed = (np.sqrt((gaps**2).sum(axis=-1)).min(axis=1) < top).reshape(inside[window].shape)
        for suffix, mask in (
            (" in neighborhood", passed & ~inside[window]),
            (" in object and neighborhood", passed),
        ):
            values = raw[window][mask].astype(np.float32).astype(np.float64)
            found = _reference_object(values, cells[mask.ravel()], values.min(axis=0), values.max(axis=0))
            for name in LOCAL:
                rows.setdefault(name + suffix, []).append(np.ravel(found[name]))
    return {name: np.array(value) for name, value in rows.items()}


@pytest.mark.parametrize("chunks", [(13, 29), (64, 8)])
def test_2d_neighborhood_chunked_equals_whole_and_reference(chunks: tuple[int, int]) -> None:
    """ "in neighborhood" features with an anisotropic margin (window clipping matters) == brute force."""
    labels = _blobs((48, 70), seed=3)
    raw = np.random.default_rng(4).normal(10, 3, size=(48, 70, 2)).astype(np.float32)
    margin = (5, 3)
    selection = {STANDARD: {f"{name} in neighborhood": {"margin": list(margin)} for name in LOCAL}}
    (whole,) = object_features(da.from_array(raw), "yxc", _objects(labels, "yx", -1), selection)
    (chunked,) = object_features(
        da.from_array(raw, chunks=(*chunks, 2)), "yxc", _objects(labels, "yx", chunks), selection
    )
    reference = _reference_local(raw, labels, margin)
    assert sorted(whole[STANDARD]) == sorted(reference)
    for name, expected in reference.items():
        assert np.array_equal(whole[STANDARD][name], chunked[STANDARD][name], equal_nan=True), name
        exact = name.split(" ")[0] in ("Minimum", "Maximum", "Histogram")
        compare = np.testing.assert_array_equal if exact else _close
        compare(whole[STANDARD][name][1:], expected.astype(np.float32))


@pytest.mark.parametrize("chunks", [(5, 17, 13), (12, 9, 50), (3, 40, 7)])
def test_3d_chunked_equals_whole_and_reference(chunks: tuple[int, int, int]) -> None:
    """3D (zyx), coordinates x, y, z: chunked == whole bit for bit, == numpy recomputation."""
    labels = _blobs((12, 40, 50), seed=5)
    raw = np.random.default_rng(6).integers(0, 4000, size=(12, 40, 50, 1)).astype(np.uint16)
    names = (*ALL_STANDARD, "Mean in neighborhood", "Variance in neighborhood")
    selection = {STANDARD: {name: ({"margin": [3, 2, 1]} if "neigh" in name else {}) for name in names}}
    (whole,) = object_features(da.from_array(raw), "zyxc", _objects(labels, "zyx", -1), selection)
    (chunked,) = object_features(
        da.from_array(raw, chunks=(*chunks, 1)), "zyxc", _objects(labels, "zyx", chunks), selection
    )
    reference = _reference(raw, labels) | _reference_local(raw[..., 0:1], labels, (3, 2, 1))
    for name, ours in whole[STANDARD].items():
        assert np.array_equal(ours, chunked[STANDARD][name], equal_nan=True), name
        if name in reference:
            _close(ours[1:], reference[name])
    assert whole[STANDARD]["RegionAxes"].shape[1] == 9
    assert np.array_equal(whole[DEFAULT_FEATURES]["Count"], whole[STANDARD]["Count"])


def test_time_points_chunked_equals_whole_and_single_frames() -> None:
    """tyx: one table per time point, each equal to that frame alone, at any chunking."""
    labels = np.stack([_blobs((40, 52), seed=s) for s in (7, 8, 9)])
    labels[1] = 0  # a time point without objects
    raw = np.random.default_rng(10).integers(0, 255, size=(3, 40, 52, 1)).astype(np.uint8)
    selection = {STANDARD: {"Mean": {}, "Quantiles": {}, "Sum in neighborhood": {"margin": 4}}}
    tables = object_features(
        da.from_array(raw, chunks=(1, 11, 19, 1)), "tyxc", _objects(labels, "tyx", (2, 11, 19)), selection
    )
    assert len(tables) == 3
    assert tables[1][STANDARD]["Mean"].shape == (1, 1)
    assert tables[1][STANDARD]["Sum in neighborhood"].shape == (1, 1)
    for t in (0, 2):
        (alone,) = object_features(da.from_array(raw[t]), "yxc", _objects(labels[t], "yx", -1), selection)
        for plugin, features in alone.items():
            for name, values in features.items():
                assert np.array_equal(tables[t][plugin][name], values, equal_nan=True), (t, name)


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ({"Nonsense Plugin": {"Mean": {}}}, "unknown object feature plugin"),
        ({STANDARD: {"Median": {}}}, "unknown or unsupported standard object feature 'Median'"),
        ({STANDARD: {"Mean in neighborhood": {"margin": [3, -1]}}}, "margin"),
        ({STANDARD: {"Mean in neighborhood": {"margin": [3, 3, 3, 3]}}}, "margin"),
        ({STANDARD: {"Mean in neighborhood": {}}}, "need a margin > 0"),
        ({"3D Convex Hull Features": {"HullVolume": {}}}, "needs 3D objects"),
    ],
)
def test_bad_selection_raises_before_computing(selection: dict[str, Any], message: str) -> None:
    """A bad selection is an ObjectsError naming the problem, raised before any chunk is computed."""
    calls = []
    labels = da.from_array(np.ones((8, 8), np.uint32)).map_blocks(
        lambda b: calls.append(1) or b, meta=np.empty((0, 0), np.uint32)
    )
    with pytest.raises(ObjectsError, match=message):
        object_features(da.ones((8, 8, 1)), "yxc", Objects(labels, "yx", (1,)), selection)
    assert calls == []


def test_raw_must_match_objects() -> None:
    """Raw axes and shape are checked against the objects."""
    objects = _objects(np.ones((8, 9), np.uint32), "yx", -1)
    with pytest.raises(ObjectsError, match="raw axes 'xyc'"):
        object_features(da.ones((9, 8, 1)), "xyc", objects, {})
    with pytest.raises(ObjectsError, match="does not match the object label image"):
        object_features(da.ones((8, 8, 1)), "yxc", objects, {})


def test_default_features_always_and_row_zero() -> None:
    """With nothing selected only ilastik's Default features, row 0 zeros, Coord<Maximum> exclusive."""
    labels = np.zeros((6, 7), np.uint32)
    labels[1:3, 2:6] = 1
    (table,) = object_features(da.ones((6, 7, 1)), "yxc", _objects(labels, "yx", (4, 3)), {})
    assert list(table) == [DEFAULT_FEATURES]
    default = table[DEFAULT_FEATURES]
    assert default["Coord<Minimum>"].tolist() == [[0, 0], [2, 1]]
    assert default["Coord<Maximum>"].tolist() == [[0, 0], [6, 3]]
    assert default["RegionCenter"].tolist() == [[0, 0], [3.5, 1.5]]
    assert default["Count"].tolist() == [[0], [8]]
    assert all(v.dtype == np.float32 for v in default.values())


def test_feature_names_widths_and_ilastik_display_names() -> None:
    """Column counts and ilastik's display names (vigra_objfeats.py) for the table exporter."""
    selection = {STANDARD: {"Mean": {}, "Histogram in neighborhood": {"margin": [3, 3, 3]}, "RegionAxes": {}}}
    names = feature_names(selection, raw_channels=2, ndim=3)
    standard = names[STANDARD]
    assert standard["Mean"].display == "Mean Intensity"
    assert standard["Mean"].columns == ("Mean Intensity_0", "Mean Intensity_1")
    assert standard["Histogram in neighborhood"] == ("Histogram of Intensity in neighborhood", 128)
    assert standard["Histogram in object and neighborhood"].width == 128
    assert standard["RegionAxes"] == ("Principal components of the object", 9)
    assert names[DEFAULT_FEATURES]["Count"].columns == ("Size in pixels",)
    assert names[DEFAULT_FEATURES]["Coord<Maximum>"] == ("Bounding Box Maximum", 3)


def test_feature_names_match_computed_widths() -> None:
    """Every computed array has the width feature_names announces."""
    labels = _blobs((30, 40), seed=11)
    selection = {
        STANDARD: {name: {} for name in ALL_STANDARD} | {"Covariance in neighborhood": {"margin": 2}}
    }
    (table,) = object_features(da.zeros((30, 40, 3)) + 1, "yxc", _objects(labels, "yx", 16), selection)
    names = feature_names(selection, raw_channels=3, ndim=2)
    assert {p: sorted(f) for p, f in names.items()} == {p: sorted(f) for p, f in table.items()}
    for plugin, features in names.items():
        for name, info in features.items():
            assert table[plugin][name].shape == (labels.max() + 1, info.width), name


def test_objects_batched_per_label_chunk() -> None:
    """Neighbourhood windows are read in one task per label chunk holding objects, not per object."""
    labels = _blobs((60, 60), seed=12)
    objects = _objects(labels, "yx", 30)
    selection = {STANDARD: {"Mean in neighborhood": {"margin": 3}}}
    with dask.config.set(scheduler="sync"):
        (table,) = object_features(da.from_array(np.ones((60, 60, 1))), "yxc", objects, selection)
    assert np.all(table[STANDARD]["Mean in neighborhood"][1:] == 1)
    from cascade.objects import _windows

    first = np.array(
        [[x.min(), y.min()] for y, x in (np.nonzero(labels == i) for i in range(1, labels.max() + 1))]
    )
    bounds = _windows.windows(first, first + 1, (3, 3), labels.shape)
    tasks = _windows.batched(
        None, objects.labels, np.arange(1, labels.max() + 1), bounds, first[:, ::-1], print
    )
    assert len(tasks) <= 4 < labels.max()


def test_shape_plugins_get_each_object_crop_and_origin() -> None:
    """The hull / skeleton plugins see each object's bounding-box crop and its global origin."""
    from cascade.objects import _hull, _skeleton

    labels = _blobs((50, 60), seed=13)
    selection = {
        "2D Convex Hull Features": {"HullVolume": {}, "HullCenter": {}},
        "2D Skeleton Features": {"Diameter": {}},
    }
    (table,) = object_features(da.ones((50, 60, 1)), "yxc", _objects(labels, "yx", (17, 23)), selection)
    for i, box in enumerate(ndimage.find_objects(labels), start=1):
        origin = tuple(s.start for s in box)
        hull = _hull.convex_hull_features_2d(labels[box] == i, origin)
        skeleton = _skeleton.skeleton_features_2d(labels[box] == i, origin, image_shape=labels.shape)
        assert np.array_equal(
            table["2D Convex Hull Features"]["HullCenter"][i], np.float32(hull["HullCenter"])
        )
        assert table["2D Convex Hull Features"]["HullVolume"][i] == np.float32(hull["HullVolume"][0])
        assert table["2D Skeleton Features"]["Diameter"][i] == np.float32(skeleton["Diameter"][0])


def _fake_plugin(
    monkeypatch: pytest.MonkeyPatch, module: str, function: str
) -> list[tuple[np.ndarray, tuple[int, ...]]]:
    """Install a stand-in for a shape-plugin module that records its calls."""
    import importlib.machinery
    import sys
    import types

    calls: list[tuple[np.ndarray, tuple[int, ...]]] = []

    def compute(mask: np.ndarray, origin: tuple[int, ...], **options: Any) -> dict[str, np.ndarray]:
        calls.append((mask.copy(), origin))
        ys, xs = np.nonzero(mask)
        centre = np.array([xs.mean() + origin[1], ys.mean() + origin[0]])
        return {
            "HullVolume": np.array([mask.sum()]),
            "HullCenter": centre,
            "Diameter": np.array([mask.shape[1]]),
        }

    fake = types.ModuleType(module)
    fake.__spec__ = importlib.machinery.ModuleSpec(module, None)
    setattr(fake, function, compute)
    monkeypatch.setitem(sys.modules, module, fake)
    return calls


def test_shape_plugin_wiring_with_stand_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each object's bounding-box mask and global origin reach the plugin; its values land in its row."""
    hull = _fake_plugin(monkeypatch, "cascade.objects._hull", "convex_hull_features_2d")
    skeleton = _fake_plugin(monkeypatch, "cascade.objects._skeleton", "skeleton_features_2d")
    labels = _blobs((50, 60), seed=13)
    selection = {
        "2D Convex Hull Features": {"HullVolume": {}, "HullCenter": {}},
        "2D Skeleton Features": {"Diameter": {}},
    }
    (table,) = object_features(da.ones((50, 60, 1)), "yxc", _objects(labels, "yx", (17, 23)), selection)
    assert len(hull) == len(skeleton) == labels.max()
    (default,) = object_features(da.ones((50, 60, 1)), "yxc", _objects(labels, "yx", -1), {})
    for i, box in enumerate(ndimage.find_objects(labels), start=1):
        assert table["2D Convex Hull Features"]["HullVolume"][i, 0] == np.count_nonzero(labels == i)
        assert np.array_equal(
            table["2D Convex Hull Features"]["HullCenter"][i], default[DEFAULT_FEATURES]["RegionCenter"][i]
        )
        assert table["2D Skeleton Features"]["Diameter"][i, 0] == box[1].stop - box[1].start
    assert {origin for _, origin in hull} == {
        tuple(s.start for s in box) for box in ndimage.find_objects(labels)
    }


def test_z_of_extent_one_is_2d() -> None:
    """Objects with a z axis of extent 1 give ilastik's 2D features (x, y columns only)."""
    labels = _blobs((30, 40), seed=14)
    raw = np.random.default_rng(15).integers(0, 99, size=(30, 40, 1)).astype(np.uint8)
    selection = {STANDARD: {"RegionRadii": {}, "Mean in neighborhood": {"margin": [4, 4]}}}
    (flat,) = object_features(da.from_array(raw), "yxc", _objects(labels, "yx", 16), selection)
    (deep,) = object_features(
        da.from_array(raw[None]), "zyxc", _objects(labels[None], "zyx", (1, 16, 16)), selection
    )
    for name, values in flat[STANDARD].items():
        assert np.array_equal(values, deep[STANDARD][name], equal_nan=True), name
    assert deep[DEFAULT_FEATURES]["Coord<Minimum>"].shape[1] == 2


def test_local_cluster_equals_threads() -> None:
    """On a local distributed cluster (two worker processes) the tables equal the threaded ones."""
    from distributed import Client, LocalCluster

    labels = _blobs((40, 60), seed=16)
    raw = np.random.default_rng(17).integers(0, 255, size=(40, 60, 1)).astype(np.uint8)
    names = ("Mean", "Quantiles", "RegionAxes", "Kurtosis in neighborhood")
    selection = {STANDARD: {name: ({"margin": 3} if "neigh" in name else {}) for name in names}}

    def run() -> dict[str, np.ndarray]:
        (table,) = object_features(
            da.from_array(raw, chunks=(13, 17, 1)), "yxc", _objects(labels, "yx", (13, 17)), selection
        )
        return table[STANDARD]

    threaded = run()
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    )
    with cluster, Client(cluster):
        distributed = run()
    for name, values in threaded.items():
        assert np.array_equal(values, distributed[name], equal_nan=True), name


@pytest.mark.parametrize("chunks", [(1024, 1344), (203, 256)])
def test_stored_shape_plugins_through_object_features(data_dir: Path, chunks: tuple[int, int]) -> None:
    """Convex hull and skeleton tables of 2d_wPred through ``object_features``, bit for bit, chunked.

    The skeleton depends on the image border (not on the crop): objects cut by a chunk border
    and objects touching the image border must both come out as ilastik stored them.
    """
    labels, raw, _, stored = _stored_project(data_dir, "2d_wPred")
    plugins = [p for p in stored if p not in (STANDARD, DEFAULT_FEATURES)]
    assert sorted(plugins) == ["2D Convex Hull Features", "2D Skeleton Features"]
    selection = {p: {f: {} for f in stored[p]} for p in plugins}
    (table,) = object_features(
        da.from_array(raw, chunks=(*chunks, 1)), "yxc", _objects(labels, "yx", chunks), selection
    )
    for plugin in plugins:
        assert sorted(table[plugin]) == sorted(stored[plugin])
        for feature, ours in table[plugin].items():
            assert _equal(ours, stored[plugin][feature][()]), (plugin, feature)


def test_stored_features_every_time_point_on_components(data_dir: Path) -> None:
    """5t2d1c_wSeg stores features of all 5 time points: objects from cascade's own connected
    components of the shipped segmentation (its stored label cache is stale), every feature bit for
    bit, incl. RegionAxes of tiny degenerate objects (vigra's incremental scatter matrix)."""
    from cascade.objects import objects_from_segmentation

    project = h5py.File(data_dir / OC / "ObjectClassification5t2d1c_wSeg.ilp", "r")
    inputs = data_dir / OC / "inputdata"
    segmentation = h5py.File(inputs / "5t2d1c_Binary_Segmentation.h5", "r")["exported_data"][()]
    raw = h5py.File(inputs / "5t2d1c.h5", "r")["data"][()]
    objects = objects_from_segmentation(da.from_array(segmentation, chunks=(2, 16, 20, 1)), "tyxc")
    selection = _selection(project["ObjectExtraction/Features"])
    tables = object_features(da.from_array(raw, chunks=(1, 11, 30, 1)), "tyxc", objects, selection)
    for t, table in enumerate(tables):
        stored = project[f"ObjectExtraction/RegionFeatures/0000/[[{t}], [{t + 1}]]"]
        for plugin in (STANDARD, DEFAULT_FEATURES):
            assert sorted(table[plugin]) == sorted(stored[plugin])
            for feature, ours in table[plugin].items():
                if feature == "Coord<Maximum>":
                    ours = np.where(np.arange(len(ours))[:, None] > 0, ours - 1, 0)
                assert _equal(ours, stored[plugin][feature][()]), (t, plugin, feature)


def test_fold_of_groups_equals_merge_then_densify() -> None:
    """Folding group partials into dense tables == one merge of them then densify, exactly."""
    from cascade.objects._accumulate import densify, finish_fold, fold, merge, pass1, pass2

    labels = _blobs((60, 90), seed=4)
    count = int(labels.max())
    raw = np.random.default_rng(5).normal(size=(60, 90, 2)).astype(np.float32)
    for kernel in ("pass1", "pass2"):
        parts = []
        for y in range(0, 60, 20):
            for x in range(0, 90, 30):
                window = (slice(y, y + 20), slice(x, x + 30))
                if kernel == "pass1":
                    parts.append(pass1(raw[window], labels[window], (y, x)))
                else:
                    first = densify(merge([pass1(raw, labels, (0, 0))]), count)
                    means = first["sum"] / np.maximum(first["count"], 1)[:, None]
                    lo, hi = first["g_lo"], first["g_hi"]
                    parts.append(pass2(raw[window], labels[window], (y, x), means, lo, hi))
        groups = [merge(parts[:4]), merge(parts[4:])]  # two groups of chunks, as _blockwise computes them
        expected = densify(merge(groups), count)
        dense: dict[str, np.ndarray] = {}
        for group in groups:
            fold(dense, group, count)
        folded = finish_fold(dense)
        assert sorted(folded) == sorted(expected)
        for name, table in expected.items():
            assert folded[name].dtype == table.dtype, name
            assert np.array_equal(folded[name], table, equal_nan=True), name


def test_quantiles_in_row_batches_equal_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quantiles are computed a batch of objects at a time (bounded temporaries): same values."""
    import cascade.objects._finish as finish_module

    labels = _blobs((64, 96), seed=7)
    raw = np.random.default_rng(8).normal(size=(64, 96, 2)).astype(np.float32)
    selection = {STANDARD: {"Quantiles": {}}}
    objects = _objects(labels, "yx", (32, 48))
    (whole,) = object_features(da.from_array(raw, chunks=(32, 48, 1)), "yxc", objects, selection)
    monkeypatch.setattr(finish_module, "_ROWS", 3)
    (batched,) = object_features(da.from_array(raw, chunks=(32, 48, 1)), "yxc", objects, selection)
    assert labels.max() > 3 * 3  # several batches
    assert np.array_equal(whole[STANDARD]["Quantiles"], batched[STANDARD]["Quantiles"], equal_nan=True)
    assert np.isfinite(whole[STANDARD]["Quantiles"][1:]).all()
