"""Global connected components, blockwise: ilastik's ids at any chunking.

References: ``scipy.ndimage.label`` with the cross structure on the whole C-ordered array (what
vigra's ``labelMultiArrayWithBackground`` gives, reference section 3.1), the ``LabelImage_v2``
and ``RelabelData`` ilastik stored in its test projects, and hand-made shapes whose answer is
known (spirals, U-shapes, diagonal contacts, touching regions of different values).
"""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import h5py
import numpy as np
import pytest
from scipy import ndimage as ndi

from cascade.errors import ObjectsError
from cascade.objects import (
    Objects,
    ThresholdSettings,
    label_components,
    objects_from_label_image,
    objects_from_segmentation,
    threshold_labels,
)


def scipy_labels(image: np.ndarray, axes: str) -> np.ndarray:
    """ilastik's numbering on the whole array: scipy's cross-structure label per time point."""
    steps = image if axes.startswith("t") else image[None]
    out = np.stack([ndi.label(s, ndi.generate_binary_structure(s.ndim, 1))[0] for s in steps]).astype(
        np.uint32
    )
    return out if axes.startswith("t") else out[0]


def check(image: np.ndarray, axes: str, chunkings: list[tuple[int, ...] | int]) -> Objects:
    """Every chunking gives the whole-image answer (and, for a binary image, scipy's)."""
    whole = label_components(da.from_array(image), axes)
    expected = whole.labels.compute()
    if image.dtype == np.bool_:
        assert np.array_equal(expected, scipy_labels(image, axes))
    steps = expected if axes.startswith("t") else expected[None]
    assert whole.counts == tuple(int(s.max()) for s in steps)
    for chunks in chunkings:
        found = label_components(da.from_array(image, chunks=chunks), axes)
        assert found.labels.dtype == np.uint32
        assert found.counts == whole.counts, chunks
        assert np.array_equal(found.labels.compute(), expected), chunks
    return whole


@pytest.mark.parametrize(
    ("shape", "axes", "chunkings"),
    [
        ((64, 71), "yx", [7, (64, 5), (3, 71), (2, 9)]),
        ((9, 23, 31), "zyx", [(1, 23, 31), (4, 6, 5), 2]),
        ((3, 40, 45), "tyx", [(1, 9, 45), (2, 13, 7)]),
        ((2, 6, 17, 19), "tzyx", [(1, 2, 5, 19), (2, 6, 3, 4)]),
        ((1, 30, 33), "zyx", [(1, 4, 9)]),  # a z of extent 1 is 2D
    ],
)
def test_random_masks_chunked_equal_whole_and_scipy(
    shape: tuple[int, ...], axes: str, chunkings: list[tuple[int, ...] | int]
) -> None:
    image = np.random.default_rng(len(axes) + shape[0]).random(shape) > 0.55
    objects = check(image, axes, chunkings)
    assert objects.axes == axes
    assert max(objects.counts) > 20


def spiral(size: int) -> np.ndarray:
    """A one-pixel square spiral path (rings one pixel apart) from the top-left corner inwards."""
    image = np.zeros((size, size), bool)
    lengths = [size - 1] * 3 + [n for n in range(size - 3, 0, -2) for _ in range(2)]
    y = x = 0
    image[0, 0] = True
    for k, length in enumerate(lengths):
        dy, dx = ((0, 1), (1, 0), (0, -1), (-1, 0))[k % 4]
        for _ in range(length):
            y, x = y + dy, x + dx
            image[y, x] = True
    return image


def test_a_spiral_spanning_every_chunk_is_one_object() -> None:
    image = spiral(61)
    assert scipy_labels(image, "yx").max() == 1
    objects = check(image, "yx", [4, (61, 3), (5, 61)])
    assert objects.counts == (1,)
    # a 3D helix-like stack: the spiral repeated and joined through z at one pixel per slice
    volume = np.zeros((6, 61, 61), bool)
    volume[::2] = image
    volume[1::2, 0, 0] = True
    assert check(volume, "zyx", [(1, 9, 9), (2, 7, 13)]).counts == (1,)


def test_u_shapes_merge_far_from_their_first_pixels() -> None:
    image = np.zeros((40, 30), bool)
    image[0:39, 2] = image[0:39, 20] = True  # two arms starting in the first row...
    image[38, 2:21] = True  # ...joined only at the bottom
    image[0:30, 10] = True  # an arm between them that never joins
    image[5, 25:29] = True
    objects = check(image, "yx", [(4, 3), (1, 30), (40, 1)])
    labels = objects.labels.compute()
    assert objects.counts == (3,)
    assert labels[0, 2] == labels[0, 20] == labels[38, 10] == 1  # first pixel (0, 2)
    assert labels[0, 10] == 2
    assert labels[5, 25] == 3


def test_diagonal_contacts_stay_separate() -> None:
    image = np.zeros((6, 6), bool)
    image[1, 1] = image[2, 2] = image[3, 1] = image[2, 0] = True
    objects = check(image, "yx", [1, 2, 3])
    assert objects.counts == (4,)
    volume = np.zeros((2, 3, 3), bool)
    volume[0, 0, 0] = volume[1, 1, 1] = volume[1, 0, 1] = True  # (1,0,1) touches (1,1,1), not (0,0,0)
    assert check(volume, "zyx", [1]).counts == (2,)
    volume[0, 0, 1] = True  # now a face contact through z joins everything
    assert check(volume, "zyx", [1]).counts == (1,)


def test_touching_regions_of_different_values_are_different_objects() -> None:
    image = np.zeros((10, 12), np.uint16)
    image[1:5, 1:6] = 3
    image[1:5, 6:11] = 7  # touches the 3s along a whole column
    image[5:9, 1:11] = 3  # touches both from below: joins the first 3s, not the 7s
    image[8, 11] = 7
    for dtype in (np.uint16, np.int32, np.float32, np.uint64):
        objects = check(image.astype(dtype), "yx", [(3, 4), 1, (10, 6)])
        labels = objects.labels.compute()
        assert objects.counts == (3,)
        assert labels[1, 1] == labels[8, 1] == 1
        assert labels[1, 6] == 2
        assert labels[8, 11] == 3


def test_segmentation_uses_channel_0_and_binary_values() -> None:
    rng = np.random.default_rng(5)
    image = np.zeros((2, 30, 40, 2), np.uint8)
    image[..., 0] = (rng.random((2, 30, 40)) > 0.6) * 255
    image[..., 1] = 1
    objects = objects_from_segmentation(da.from_array(image, chunks=(1, 7, 9, 2)), "tyxc")
    assert objects.axes == "tyx"
    assert np.array_equal(objects.labels.compute(), scipy_labels(image[..., 0] > 0, "tyx"))


def _stored_labels(project: Path, group: str) -> np.ndarray:
    with h5py.File(project, "r") as f:
        (cache,) = f[group].values()
        return np.stack([cache[name][0, :, :, 0, 0].T for name in sorted(cache)])  # txyzc -> tyx


def test_stored_object_image_of_a_binary_segmentation(data_dir: Path) -> None:
    root = data_dir / "ilp" / "ilastik__ilastik" / "object_classification"
    expected = _stored_labels(root / "ObjectClassification2d_wSeg.ilp", "ObjectExtraction/LabelImage_v2")[0]
    with h5py.File(root / "inputdata" / "2d_Binary_Segmentation.h5", "r") as f:
        segmentation = f["exported_data"][...]
    for chunks in [segmentation.shape, (101, 99, 1), (1024, 37, 1), (7, 1344, 1)]:
        objects = objects_from_segmentation(da.from_array(segmentation, chunks=chunks), "yxc")
        assert objects.counts == (126,)
        assert np.array_equal(objects.labels.compute(), expected), chunks


def test_stored_relabelling_of_a_label_image(data_dir: Path) -> None:
    root = data_dir / "ilp" / "ilastik__ilastik" / "object_classification"
    with h5py.File(root / "ObjectClassification2d3c_wLabels.ilp", "r") as f:
        block = f["ObjectExtraction/RelabelData/ImageLane000/block0000"]
        expected = block["array"][0, 0, :, :, 0]  # stored tzyxc
        mapping = block["dict"][...]
    with h5py.File(root / "inputdata" / "2d3c_Object Identities.h5", "r") as f:
        image = f["exported_data"][...]
    for chunks in [image.shape, (10, 20, 1)]:
        objects = objects_from_label_image(da.from_array(image, chunks=chunks), "yxc")
        assert np.array_equal(objects.labels.compute(), expected)
        assert objects.original_ids is not None
        assert np.array_equal(objects.original_ids[0], mapping[:, 0])
        assert np.array_equal(np.arange(len(mapping)), mapping[:, 1])


def test_label_image_ids_follow_ascending_values_per_time_point() -> None:
    image = np.zeros((2, 12, 14), np.uint32)
    image[0, 0:3, 0:3] = 90
    image[0, 8:10, 10:13] = 90  # disconnected, same value: one object
    image[0, 5:7, 5:7] = 7
    image[0, 0:2, 12:14] = 4000
    image[1, 3:6, 3:6] = 5
    for chunks in [image.shape, (1, 5, 4), (2, 1, 14)]:
        objects = objects_from_label_image(da.from_array(image, chunks=chunks), "tyx")
        labels = objects.labels.compute()
        assert objects.counts == (3, 1)
        assert objects.original_ids is not None
        assert [o.tolist() for o in objects.original_ids] == [[0, 7, 90, 4000], [0, 5]]
        expected = np.zeros_like(image)
        for t, originals in enumerate(objects.original_ids):
            for new, old in enumerate(originals[1:], start=1):
                expected[t][image[t] == old] = new
        assert np.array_equal(labels, expected)
        assert labels.dtype == np.uint32


def test_empty_images_have_no_objects() -> None:
    empty = da.zeros((2, 9, 8), dtype=np.uint8, chunks=(1, 4, 4))
    objects = label_components(empty, "tyx")
    assert objects.counts == (0, 0)
    assert not objects.labels.compute().any()
    assert objects_from_label_image(empty, "tyx").counts == (0, 0)


def test_distributed_equals_threads() -> None:
    from distributed import Client, LocalCluster

    image = np.random.default_rng(11).random((2, 5, 30, 33), dtype=np.float32)
    settings = ThresholdSettings(low=0.5, sigmas=(1.0, 1.0, 1.0), min_size=3)
    probabilities = da.from_array(image[..., None], chunks=(1, 3, 15, 17, 1))
    threaded = threshold_labels(probabilities, "tzyxc", settings).compute(scheduler="threads")
    segmentation = da.from_array(image > 0.7, chunks=(1, 3, 11, 17))
    threaded_objects = label_components(segmentation, "tzyx")
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=False,
            protocol="tcp://",
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster),
    ):
        distributed = threshold_labels(probabilities, "tzyxc", settings).compute()
        objects = label_components(segmentation, "tzyx")
        assert objects.counts == threaded_objects.counts
        assert np.array_equal(objects.labels.compute(), threaded_objects.labels.compute(scheduler="threads"))
    assert np.array_equal(distributed, threaded)
    assert threaded.max() > 1


def test_bad_axes_are_refused() -> None:
    image = da.zeros((4, 5), dtype=bool)
    with pytest.raises(ObjectsError, match=r"axes 'xy'"):
        label_components(image, "xy")
    with pytest.raises(ObjectsError, match=r"name 3 dimensions but the image has 2"):
        label_components(image, "zyx")
    with pytest.raises(ObjectsError, match=r"axes 'yxc'"):
        label_components(image[..., None], "yxc")
    with pytest.raises(ObjectsError, match=r"axes 'cyx'"):
        objects_from_segmentation(image[None], "cyx")
    with pytest.raises(ObjectsError, match=r"an image to label must hold bool, integer or float values"):
        label_components(image.astype(np.complex64), "yx")
    with pytest.raises(ObjectsError, match=r"a label image must hold .* got dtype <U1"):
        objects_from_label_image(da.from_array(np.array([["a"]])), "yx")
