"""ilastik's thresholding, blockwise: vigra smoothing, simple / hysteresis, size filter.

References: the ``CachedThresholdLabels`` and ``LabelImage_v2`` that ilastik stored in its own test
projects (``object_classification/*.ilp``, blocks in ``txyzc`` order), an independent
line-by-line transcription of vigra's reflect convolution, and whole-image numpy/scipy
recomputations of the hysteresis rules.
"""

from __future__ import annotations

import math
from pathlib import Path

import dask.array as da
import h5py
import numpy as np
import pytest
from scipy import ndimage as ndi

from cascade.errors import ObjectsError
from cascade.objects import (
    ThresholdSettings,
    label_components,
    objects_from_probabilities,
    smooth_probabilities,
    threshold_labels,
)

CROSS_2D = ndi.generate_binary_structure(2, 1)


@pytest.fixture(scope="module")
def oc_dir(data_dir: Path) -> Path:
    return data_dir / "ilp" / "ilastik__ilastik" / "object_classification"


def stored_labels(project: Path, group: str) -> np.ndarray:
    """A label cache of an .ilp as ``tyx`` (its blocks are ``(1, X, Y, 1, 1)`` in txyzc order)."""
    with h5py.File(project, "r") as f:
        (cache,) = f[group].values()
        blocks = [cache[name] for name in sorted(cache)]
        starts = [int(b.attrs["blockSlice"].split(",")[0].strip("[").split(":")[0]) for b in blocks]
        assert starts == list(range(len(blocks)))  # one block per t, in order
        return np.stack([b[0, :, :, 0, 0].T for b in blocks])


def stored_settings(project: Path) -> ThresholdSettings:
    with h5py.File(project, "r") as f:
        g = f["ThresholdTwoLevels"]
        assert int(g["CurOperator"][()]) == 0
        return ThresholdSettings(
            method="simple",
            channel=int(g["Channel"][()]),
            core_channel=int(g["CoreChannel"][()]),
            low=float(g["LowThreshold"][()]),
            high=float(g["HighThreshold"][()]),
            sigmas=tuple(float(g["SmootherSigma"][k][()]) for k in "xyz"),  # type: ignore[arg-type]
            min_size=int(g["MinSize"][()]),
            max_size=int(g["MaxSize"][()]),
        )


PROJECTS = {
    # project, probabilities, axes, odd chunkings
    "2d_wPred": ("2d_Probabilities.h5", "yxc", [(333, 129, 1), (257, 500, 2), (1024, 97, 2)]),
    "5t2d1c_wPred": ("5t2d1c_Probabilities.h5", "tyxc", [(2, 10, 9, 2), (1, 7, 31, 1), (5, 33, 3, 2)]),
}


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_stored_threshold_labels_and_objects(oc_dir: Path, name: str) -> None:
    file, axes, chunkings = PROJECTS[name]
    project = oc_dir / f"ObjectClassification{name}.ilp"
    settings = stored_settings(project)
    with h5py.File(oc_dir / "inputdata" / file, "r") as f:
        probabilities = f["exported_data"][...]
    cached = stored_labels(project, "ThresholdTwoLevels/CachedThresholdLabels")
    objects = stored_labels(project, "ObjectExtraction/LabelImage_v2")
    # ilastik's cache has gaps (the size filter does not renumber)
    assert any(len(np.unique(c)) - 1 < c.max() for c in cached)
    if "t" not in axes:
        cached, objects = cached[0], objects[0]
    for chunks in [probabilities.shape, *chunkings]:
        image = da.from_array(probabilities, chunks=chunks)
        labels = threshold_labels(image, axes, settings)
        assert labels.dtype == np.uint32
        assert np.array_equal(labels.compute(), cached), chunks
        found = objects_from_probabilities(image, axes, settings)
        assert found.axes == axes[:-1]
        assert np.array_equal(found.labels.compute(), objects), chunks
        per_t = objects if "t" in axes else objects[None]
        assert found.counts == tuple(int(o.max()) for o in per_t)


# --------------------------------------------------------------------------- smoothing


def vigra_line(line: np.ndarray, sigma: float) -> np.ndarray:
    """vigra's Kernel1D<double>::initGaussian(sigma, 1, 2.0) + convolveLine(BORDER_TREATMENT_REFLECT), by hand."""
    r = max(1, int(2.0 * sigma + 0.5))
    taps = [
        1.0 / math.sqrt(2 * math.pi) / sigma * math.exp(x * x * (-0.5 / sigma / sigma))
        for x in range(-r, r + 1)
    ]
    total = 0.0
    for tap in taps:
        total += tap
    taps = [tap * (1.0 / total) for tap in taps]
    n = len(line)
    out = np.empty(n, np.float32)
    for i in range(n):
        acc = 0.0
        for p in range(i - r, i + r + 1):
            q = -p if p < 0 else 2 * (n - 1) - p if p >= n else p
            acc += taps[p - i + r] * float(line[q])
        out[i] = acc
    return out


def vigra_smooth(image: np.ndarray, sigmas: dict[int, float]) -> np.ndarray:
    """Separable, the last axis (x) first, float32 between the passes (vigra's axis order)."""
    out = image.astype(np.float32)
    for axis in sorted(sigmas, reverse=True):
        out = np.apply_along_axis(vigra_line, axis, out, sigmas[axis])
    return out


def test_smoothing_is_vigra_line_by_line() -> None:
    rng = np.random.default_rng(3)
    image = rng.random((2, 9, 13, 11, 2), dtype=np.float32)  # t z y x c
    got = smooth_probabilities(
        da.from_array(image, chunks=(1, 4, 5, 3, 1)), "tzyxc", (1.0, 1.7, 0.6)
    ).compute()
    expected = np.stack(
        [
            np.stack([vigra_smooth(image[t, ..., c], {0: 0.6, 1: 1.7, 2: 1.0}) for c in range(2)], -1)
            for t in range(2)
        ]
    )
    assert got.dtype == np.float32
    assert np.array_equal(got, expected)
    # close to scipy's mirror convolution (which sums in another order)
    scipy = ndi.gaussian_filter(image.astype(np.float64), (0, 0.6, 1.7, 1.0, 0), mode="mirror", truncate=2.0)
    np.testing.assert_allclose(got, scipy, atol=2e-6)


@pytest.mark.parametrize(
    ("shape", "axes", "sigmas", "chunks"),
    [
        ((40, 37, 2), "yxc", (1.0, 1.0, 1.0), (7, 5, 1)),
        ((40, 37, 2), "yxc", (3.0, 2.2, 1.0), (2, 3, 2)),  # chunks smaller than the radii (6 and 4)
        ((40, 37, 2), "yxc", (3.0, 2.2, 1.0), (39, 1, 2)),
        ((11, 20, 17, 1), "zyxc", (1.3, 0.8, 2.5), (3, 6, 4, 1)),
        ((3, 25, 19, 1), "tyxc", (1.5, 1.5, 1.5), (2, 4, 19, 1)),
    ],
)
def test_smoothing_chunked_equals_whole(
    shape: tuple[int, ...], axes: str, sigmas: tuple[float, float, float], chunks: tuple[int, ...]
) -> None:
    image = np.random.default_rng(len(shape)).random(shape, dtype=np.float32)
    whole = smooth_probabilities(da.from_array(image), axes, sigmas).compute()
    array = da.from_array(image, chunks=chunks)
    chunked = smooth_probabilities(array, axes, sigmas)
    assert chunked.chunks == array.chunks
    assert np.array_equal(chunked.compute(), whole)
    assert not np.array_equal(whole, image)


def test_no_smoothing_below_sigma_0_1_and_along_singleton_axes() -> None:
    image = np.random.default_rng(0).random((1, 12, 14, 1), dtype=np.float32)
    assert np.array_equal(
        smooth_probabilities(da.from_array(image), "zyxc", (1.0, 0.09, 1.0)).compute(), image
    )
    # z has extent 1: its sigma is ignored (not even the < 0.1 rule applies to it)
    flat = smooth_probabilities(da.from_array(image), "zyxc", (1.0, 1.0, 0.0)).compute()
    assert np.array_equal(flat[0, ..., 0], vigra_smooth(image[0, ..., 0], {0: 1.0, 1: 1.0}))
    # a tiny sigma still gets vigra's minimal radius 1
    small = smooth_probabilities(da.from_array(image), "zyxc", (0.2, 0.2, 0.2)).compute()
    assert np.array_equal(small[0, ..., 0], vigra_smooth(image[0, ..., 0], {0: 0.2, 1: 0.2}))
    ints = (image * 255).astype(np.uint8)
    assert smooth_probabilities(da.from_array(ints), "zyxc", (0, 0, 0)).dtype == np.float32


def test_smoothing_refuses_an_axis_shorter_than_its_kernel() -> None:
    image = da.zeros((3, 50, 1), dtype=np.float32)
    with pytest.raises(ObjectsError, match=r"sigma 2.0 along y needs more than 4 pixels, the image has 3"):
        smooth_probabilities(image, "yxc", (1.0, 2.0, 1.0))


# --------------------------------------------------------------------------- thresholding rules


def _probabilities(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """Two smooth-ish channels of blobs, the second (cores) brighter inside some of them."""
    rng = np.random.default_rng(seed)
    base = ndi.gaussian_filter(rng.random(shape), 2.0)
    base = (base - base.min()) / (base.max() - base.min())
    core = base * rng.random() + 0.4 * (ndi.gaussian_filter(rng.random(shape), 3.0) > 0.5)
    return np.stack([base, np.clip(core, 0, 1)], -1).astype(np.float32)


def _reference_hysteresis(smoothed: np.ndarray, settings: ThresholdSettings) -> np.ndarray:
    """ilastik's hysteresis on one whole time point (``yx``), written with scipy."""

    def sized(labels: np.ndarray) -> np.ndarray:
        sizes = np.bincount(labels.ravel())
        bad = (sizes < settings.min_size) | (sizes > settings.max_size)
        return np.where(bad[labels], 0, labels)

    cores = sized(ndi.label(smoothed[..., settings.core_channel] >= np.float32(settings.high), CROSS_2D)[0])
    final = smoothed[..., settings.channel]
    if settings.channel != settings.core_channel:
        final = final + smoothed[..., settings.core_channel]
    labels = ndi.label(final >= np.float32(settings.low), CROSS_2D)[0]
    touching = np.unique(labels[cores != 0])
    return sized(np.where(np.isin(labels, touching[touching != 0]), labels, 0))


@pytest.mark.parametrize("channels", [(0, 1), (1, 1)])
def test_hysteresis_matches_the_whole_image_rules(channels: tuple[int, int]) -> None:
    settings = ThresholdSettings(
        method="hysteresis", channel=channels[0], core_channel=channels[1], low=0.55, high=0.75, min_size=15
    )
    image = _probabilities(7, (3, 61, 47))
    smoothed = smooth_probabilities(da.from_array(image), "tyxc", settings.sigmas).compute()
    expected = np.stack([_reference_hysteresis(s, settings) for s in smoothed])
    assert expected.max() > 0
    simple = ThresholdSettings(channel=channels[0], low=settings.low, min_size=15)
    assert not np.array_equal(
        expected > 0, threshold_labels(da.from_array(image), "tyxc", simple).compute() > 0
    )
    for chunks in [image.shape, (2, 9, 8, 2), (1, 61, 5, 1)]:
        array = da.from_array(image, chunks=chunks)
        assert np.array_equal(threshold_labels(array, "tyxc", settings).compute(), expected), chunks
        objects = objects_from_probabilities(array, "tyxc", settings)
        relabelled = label_components(da.from_array(expected), "tyx")
        assert objects.counts == relabelled.counts
        assert np.array_equal(objects.labels.compute(), relabelled.labels.compute()), chunks


def test_size_filter_bounds_are_inclusive_and_count_the_whole_object() -> None:
    image = np.zeros((30, 40, 1), np.float32)
    image[2:5, 1:39, 0] = 1.0  # 3 x 38 = 114 pixels, across every x chunk
    image[10:12, 5:10, 0] = 1.0  # 10 pixels
    image[20:29, 30:31, 0] = 1.0  # 9 pixels, one column
    array = da.from_array(image, chunks=(4, 3, 1))

    def kept(min_size: int, max_size: int) -> list[int]:
        settings = ThresholdSettings(sigmas=(0.0, 0.0, 0.0), min_size=min_size, max_size=max_size)
        labels = threshold_labels(array, "yxc", settings).compute()
        return sorted(int(np.count_nonzero(labels == v)) for v in np.unique(labels) if v)

    assert kept(9, 114) == [9, 10, 114]
    assert kept(10, 113) == [10]
    assert kept(11, 114) == [114]
    assert kept(0, 9) == [9]
    # the ids are the component ids before the filter (raster order), not renumbered
    labels = threshold_labels(array, "yxc", ThresholdSettings(sigmas=(0.0, 0.0, 0.0), min_size=10)).compute()
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2]
    labels = threshold_labels(array, "yxc", ThresholdSettings(sigmas=(0.0, 0.0, 0.0), min_size=11)).compute()
    assert sorted(np.unique(labels).tolist()) == [0, 1]
    objects = objects_from_probabilities(
        array, "yxc", ThresholdSettings(sigmas=(0.0, 0.0, 0.0), min_size=0, max_size=10)
    )
    assert objects.counts == (2,)
    assert np.array_equal(np.unique(objects.labels.compute()), [0, 1, 2])


def test_threshold_is_greater_or_equal_in_float32() -> None:
    image = np.full((6, 6, 1), np.float32(0.7), np.float32)
    settings = ThresholdSettings(low=0.7, sigmas=(0.0, 0.0, 0.0), min_size=1)
    assert threshold_labels(da.from_array(image), "yxc", settings).compute().min() == 1


def test_bad_threshold_inputs_are_refused_before_computing() -> None:
    image = da.zeros((10, 10, 2), dtype=np.float32)
    with pytest.raises(ObjectsError, match=r"need 3 probability channels, the image has 2"):
        threshold_labels(image, "yxc", ThresholdSettings(channel=2))
    with pytest.raises(ObjectsError, match=r"need 4 probability channels"):
        objects_from_probabilities(image, "yxc", ThresholdSettings(method="hysteresis", core_channel=3))
    with pytest.raises(ObjectsError, match=r"axes 'xyc'"):
        threshold_labels(image, "xyc", ThresholdSettings())
    with pytest.raises(ObjectsError, match=r"axes 'yx'"):
        threshold_labels(image[..., 0], "yx", ThresholdSettings())
    for method in ("ipht", "graphcut"):
        with pytest.raises(ObjectsError, match=rf"threshold method '{method}' is not supported"):
            ThresholdSettings(method=method)


@pytest.mark.parametrize(
    ("shape", "axes", "chunks"),
    [
        ((9, 25, 23, 2), "zyxc", [(2, 6, 23, 2), (9, 3, 5, 1)]),
        ((2, 7, 20, 22, 2), "tzyxc", [(1, 3, 7, 8, 2), (2, 7, 2, 22, 2)]),
    ],
)
@pytest.mark.parametrize(
    "settings",
    [
        ThresholdSettings(low=0.6, sigmas=(1.0, 1.4, 0.7), min_size=4),
        ThresholdSettings(method="hysteresis", low=0.6, high=0.63, sigmas=(1.0, 1.4, 0.7), min_size=4),
        ThresholdSettings(
            method="hysteresis", core_channel=1, low=1.1, high=0.6, sigmas=(1.0, 1.0, 0.5), min_size=4
        ),
    ],
)
def test_3d_and_time_thresholding_chunked_equals_whole(
    shape: tuple[int, ...], axes: str, chunks: list[tuple[int, ...]], settings: ThresholdSettings
) -> None:
    rng = np.random.default_rng(len(shape))
    image = ndi.gaussian_filter(rng.random(shape), (1.0,) * (len(shape) - 1) + (0,))
    image = ((image - image.min()) / (image.max() - image.min())).astype(np.float32)
    whole = threshold_labels(da.from_array(image), axes, settings).compute()
    objects = objects_from_probabilities(da.from_array(image), axes, settings)
    expected = objects.labels.compute()
    assert expected.max() > 1
    assert np.array_equal(expected, label_components(da.from_array(whole), axes[:-1]).labels.compute())
    for chunking in chunks:
        array = da.from_array(image, chunks=chunking)
        assert np.array_equal(threshold_labels(array, axes, settings).compute(), whole), chunking
        found = objects_from_probabilities(array, axes, settings)
        assert found.counts == objects.counts
        assert np.array_equal(found.labels.compute(), expected), chunking
