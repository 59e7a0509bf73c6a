"""Autocontext training and prediction: round trips, determinism, chunking, stage counts."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
from helpers import blobs, sparse

from cascade.errors import CascadeError, DataError, ProjectError
from cascade.features import parse_feature_selection
from cascade.pipeline import Stage, convert_probabilities, predict
from cascade.project.native import load_cascade, save_cascade
from cascade.training import TrainingImage, fit

SELECTION = parse_feature_selection(
    {
        "features": {
            "GaussianSmoothing": [0.7, 1.6],
            "GaussianGradientMagnitude": [1.0],
            "HessianOfGaussianEigenvalues": [1.6],
        }
    }
)


@pytest.fixture(scope="module")
def trained() -> tuple:
    raw, truth = blobs(1)
    labels = sparse(truth, 2)
    stages = [Stage(SELECTION, ("disk", "background")), Stage(SELECTION, ("disk", "background"))]
    cascade = fit([TrainingImage(raw[..., None], "yxc", (labels, labels))], stages, trees=20, seed=3)
    return cascade, raw, truth, labels


def test_two_stages_learn_the_blobs(trained: tuple) -> None:
    cascade, _, _, _ = trained
    test_raw, test_truth = blobs(9)
    results = predict(cascade, test_raw[..., None], axes="yxc")
    for result in results:
        probs = result.probabilities.compute()
        assert probs.dtype == np.float32 and probs.shape == (80, 80, 2)
        assert np.allclose(probs.sum(-1), 1, atol=1e-5)
        seg = result.segmentation.compute()[..., 0]
        assert seg.dtype == np.uint8
        assert np.mean(seg == test_truth) > 0.9
        unc = result.uncertainty.compute()
        assert np.allclose(unc[..., 0], 1 - np.abs(probs[..., 0] - probs[..., 1]), atol=1e-6)


def test_project_round_trip_and_determinism(trained: tuple, tmp_path: Path) -> None:
    cascade, raw, _, labels = trained
    path = save_cascade(cascade, tmp_path / "p.cascade")
    loaded = load_cascade(path)
    assert [s.class_names for s in loaded.stages] == [s.class_names for s in cascade.stages]
    assert loaded.stages[1].selection == cascade.stages[1].selection
    before = [r.probabilities.compute() for r in predict(cascade, raw[..., None], axes="yxc")]
    after = [r.probabilities.compute() for r in predict(loaded, raw[..., None], axes="yxc")]
    for a, b in zip(before, after):
        assert np.array_equal(a, b)
    stages = [Stage(SELECTION, ("disk", "background")), Stage(SELECTION, ("disk", "background"))]
    again = fit([TrainingImage(raw[..., None], "yxc", (labels, labels))], stages, trees=20, seed=3)
    for s1, s2 in zip(cascade.stages, again.stages):
        for name in ("feature", "threshold", "left", "right", "value", "roots"):
            assert np.array_equal(getattr(s1.forest, name), getattr(s2.forest, name))


def test_chunked_prediction_equals_unchunked(trained: tuple) -> None:
    cascade, raw, _, _ = trained
    whole = [r.probabilities.compute() for r in predict(cascade, raw[..., None], axes="yxc")]
    blocked = [
        r.probabilities.compute()
        for r in predict(cascade, da.from_array(raw[..., None], chunks=(23, 31, 1)), axes="yxc")
    ]
    for a, b in zip(whole, blocked):
        assert np.array_equal(a, b)


def test_three_stages_missing_classes_and_in_sample_mode() -> None:
    raw, truth = blobs(4)
    labels = sparse(truth, 5)
    three = ("disk", "background", "never labelled")
    stages = [Stage(SELECTION, three), Stage(SELECTION, ("disk", "background")), Stage(SELECTION, ("a", "b"))]
    cascade = fit(
        [TrainingImage(raw[..., None], "yxc", (labels, labels, labels))], stages, trees=10, mode="in-sample"
    )
    results = predict(cascade, raw[..., None], axes="yxc")
    assert len(results) == 3
    first = results[0].probabilities.compute()
    assert first.shape[-1] == 3 and np.all(first[..., 2] == 0)
    assert results[1].stage_input.shape[-1] == 1 + 3
    assert results[2].stage_input.dtype == np.uint8


def test_stage_without_labels_is_an_error() -> None:
    raw, truth = blobs(4)
    stages = [Stage(SELECTION, ("disk", "background")), Stage(SELECTION, ("disk", "background"))]
    with pytest.raises(CascadeError, match="stage 2 has no labels in any image"):
        fit([TrainingImage(raw[..., None], "yxc", (sparse(truth, 1), None))], stages, trees=5)
    with pytest.raises(DataError, match="class 3"):
        fit([TrainingImage(raw[..., None], "yxc", (np.full_like(truth, 3),))], stages[:1], trees=5)


def test_3d_cascade_blockwise() -> None:
    rng = np.random.default_rng(0)
    truth = np.where(rng.random((24, 40, 40)) > 0.5, 1, 2).astype(np.uint8)
    from scipy import ndimage

    truth = np.where(ndimage.uniform_filter(truth.astype(float), 5) > 1.5, 2, 1).astype(np.uint8)
    raw = np.clip(np.where(truth == 1, 90, 160) + rng.normal(0, 25, truth.shape), 0, 255).astype(np.uint8)
    labels = sparse(truth, 1, every=40)
    stages = [Stage(SELECTION, ("a", "b")), Stage(SELECTION, ("a", "b"))]
    cascade = fit([TrainingImage(raw[..., None], "zyxc", (labels, labels))], stages, trees=10)
    whole = predict(cascade, raw[..., None], axes="zyxc")[1].probabilities.compute()
    blocked = predict(cascade, da.from_array(raw[..., None], chunks=(10, 17, 19, 1)), axes="zyxc")
    assert np.array_equal(blocked[1].probabilities.compute(), whole)
    with pytest.raises(DataError, match="trained on 'zyx' data"):
        predict(cascade, raw[0][..., None], axes="yxc")


def test_probability_conversion_matches_ilastik() -> None:
    p = np.array([0.0, 0.5, 0.999, 1.0], np.float32)
    assert convert_probabilities(p, np.uint8).tolist() == [0, 127, 254, 255]
    assert convert_probabilities(p, np.uint16).tolist() == [0, 32767, 65469, 65535]
    assert convert_probabilities(p, np.float32).dtype == np.float32


def test_probability_conversion_for_signed_raw_is_ilastiks_overflowing_one() -> None:
    """ilastik stacks ``((max - min) * p - min).astype(dtype)``: past the signed type's range, and
    numpy's cast (x86) wraps int8/int16 and gives int32/int64 their minimum. cascade mapped p
    onto the range instead (int8 p=0.5: 0, ilastik -1; int32: a ramp, ilastik a constant)."""
    p = np.array([0.0, 0.1, 0.3, 0.5, 0.7, 0.999, 1.0], np.float32)
    assert convert_probabilities(p, np.int8).tolist() == [-128, -103, -52, -1, 50, 126, 127]
    assert convert_probabilities(p, np.int16).tolist() == [-32768, -26215, -13108, -1, 13106, 32701, 32767]
    for dtype in (np.int32, np.int64):
        converted = convert_probabilities(p, dtype)
        assert converted.dtype == dtype and converted.tolist() == [np.iinfo(dtype).min] * 7
    lazy = convert_probabilities(da.from_array(p, chunks=3), np.int16)
    assert np.array_equal(lazy.compute(), convert_probabilities(p, np.int16))


def test_probability_conversion_for_wide_unsigned_raw_is_ilastiks_float64_one() -> None:
    """ilastik's numpy 1 computes ``(2^32 - 1) * p`` in float64 (value-based casting); cascade's
    float32 gave 2147483648 for p = 0.5 (ilastik 2147483647) and 0 for p = 1, with a RuntimeWarning
    on stderr. Values from numpy 1.26.4 running ilastik's expression."""
    p = np.array([0.0, 0.1, 0.3, 0.5, 0.7, 0.999, 1.0], np.float32)
    expected32 = [0, 429496735, 1288490239, 2147483647, 3006477055, 4290672383, 4294967295]
    assert convert_probabilities(p, np.uint32).tolist() == expected32
    expected64 = [0, 1844674434858745856, 5534023442015191040, 9223372036854775808]
    expected64 += [12912720631694360576, 18428297567130353664, 0]
    assert convert_probabilities(p, np.uint64).tolist() == expected64
    assert convert_probabilities(p, np.uint16).tolist() == [0, 6553, 19660, 32767, 45874, 65469, 65535]
    lazy = convert_probabilities(da.from_array(p, chunks=3), np.uint32)
    assert np.array_equal(lazy.compute(), expected32)


def test_corrupt_and_foreign_projects(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cascade"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(ProjectError, match=r"bad\.cascade"):
        load_cascade(bad)
    import h5py

    with h5py.File(tmp_path / "other.cascade", "w") as f:
        f["x"] = 1
    with pytest.raises(ProjectError, match="not a cascade project"):
        load_cascade(tmp_path / "other.cascade")
    with pytest.raises(ProjectError, match="not found"):
        load_cascade(tmp_path / "missing.cascade")
