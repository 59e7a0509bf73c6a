"""Object features (issue 12 part B): ilastik's stored numbers, chunked == whole, independent recomputation.

The stored references are ``ObjectExtraction/RegionFeatures/0000`` of ilastik's own test projects,
computed by ilastik 1.2.2rc4 on the stored object label image ``LabelImage_v2`` (used here as the
objects, so these tests do not depend on connected components). That ilastik stored
``Coord<Maximum>`` inclusive; cascade stores it exclusive like current ilastik (compared as ours - 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask.array as da
import h5py
import numpy as np
import pytest
from scipy import ndimage

from cascade.objects import DEFAULT_FEATURES, Objects, object_features

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
    mask = smooth > np.quantile(smooth, 0.7)
    line = (slice(None),) * (len(shape) - 2) + (shape[-2] // 2, slice(2, shape[-1] - 2))
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
    """Neighbourhood features by brute-force distances inside each object's window (ilastik 4.5)."""
    top = max(margin)
    pitch = np.array([top // m for m in margin], dtype=np.float64)  # x, y[, z]
    shape = np.array(labels.shape[::-1])
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in labels.shape], indexing="ij")[::-1], axis=-1)
    rows: dict[str, list[np.ndarray]] = {}
    for i in range(1, labels.max() + 1):
        inside = labels == i
        points = grid[inside]
        lo = np.maximum(points.min(axis=0) - margin, 0)
        hi = np.minimum(points.max(axis=0) + 1 + np.array(margin), shape)
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
