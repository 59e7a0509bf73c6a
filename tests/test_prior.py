"""Class shares of the training images: each stage's exported probabilities follow the images, not the labels."""

from __future__ import annotations

from pathlib import Path

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
from helpers import blobs, cascade

from cascade.errors import CascadeError, ProjectError
from cascade.features import FeatureSelection
from cascade.pipeline import Stage, predict, reweighted
from cascade.project import load_cascade, save_cascade
from cascade.training import TrainingImage, fit
from cascade.training.prior import MAX_WEIGHT, TILES, class_weights, em_shares, pick_tiles


def _calibrated(
    shares: tuple[float, float], label_shares: tuple[float, float], n: int, seed: int
) -> np.ndarray:
    """Posteriors of a classifier that learned ``label_shares``, on pixels drawn with ``shares``."""
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < shares[0]
    x = np.where(truth, rng.normal(1.0, 1.0, n), rng.normal(-1.0, 1.0, n))
    likelihood = np.stack([np.exp(-((x - 1) ** 2) / 2), np.exp(-((x + 1) ** 2) / 2)], axis=1)
    p = likelihood * np.asarray(label_shares)
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("true_share", [0.15, 0.22, 0.5, 0.8])
def test_em_recovers_the_images_class_shares(true_share: float) -> None:
    p = _calibrated((true_share, 1 - true_share), (0.5, 0.5), 40_000, seed=1)
    shares = em_shares(p, np.array([0.5, 0.5]))
    assert shares.sum() == pytest.approx(1.0)
    assert shares[0] == pytest.approx(true_share, abs=0.015)
    # the weights make the posteriors those of a classifier that learned the true shares
    weights = class_weights(p, np.array([1, 2] * 50), 2)
    assert weights[0] == pytest.approx(shares[0] / 0.5, rel=1e-6)
    exact = _calibrated((true_share, 1 - true_share), (true_share, 1 - true_share), 40_000, seed=1)
    np.testing.assert_allclose(reweighted(p.astype(np.float32), weights), exact, atol=0.02)


def test_class_weights_keep_unlabelled_classes_and_are_bounded() -> None:
    p = np.zeros((1000, 3))
    p[:, 0], p[:, 2] = 0.001, 0.999  # class 1 (labelled half the time) hardly occurs
    labels = np.array([1, 3] * 10)  # class 2 has no labels
    weights = class_weights(p, labels, 3)
    assert weights[1] == 1.0
    assert weights[0] == pytest.approx(1 / MAX_WEIGHT) and weights[2] < MAX_WEIGHT
    assert class_weights(p, np.array([3, 3]), 3) == (1.0, 1.0, 1.0)  # one class labelled: nothing to fit


def test_tiles_are_distinct_cells_inside_the_image_and_repeatable() -> None:
    tiles = pick_tiles((600, 300), (256, 256), seed=3)
    assert len(tiles) == TILES and len(set(tiles)) == TILES
    for lo, hi in tiles:
        assert all(a % 256 == 0 and a < b <= n for a, b, n in zip(lo, hi, (600, 300)))
    assert tiles == pick_tiles((600, 300), (256, 256), seed=3)
    assert pick_tiles((100, 90), (256, 256), seed=0) == [((0, 0), (100, 90))]


def _scribbled(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A blobs image whose labels take every disk pixel of a few rows and a few background pixels:
    the disks (about a fifth of the image) are half of the labels."""
    image, truth = blobs(seed, size=96)
    labels = np.zeros_like(truth)
    rows = np.zeros(truth.shape, bool)
    rows[::3] = True
    disk = np.argwhere(rows & (truth == 1))
    back = np.argwhere(truth == 2)
    pick = np.random.default_rng(seed).choice(len(back), len(disk), replace=False)
    labels[tuple(disk.T)] = 1
    labels[tuple(back[pick].T)] = 2
    return image, labels


def _trained(prior: str) -> tuple[object, list[np.ndarray]]:
    images, raws = [], []
    for seed in (0, 1):
        image, labels = _scribbled(seed)
        raws.append(image[..., None])
        images.append(TrainingImage(image[..., None], "yxc", (labels, labels)))
    stages = [Stage(FeatureSelection.ilastik_default(), ("disk", "background"))] * 2
    return fit(images, stages, trees=10, seed=4, prior=prior, n_jobs=1), raws  # type: ignore[arg-type]


def test_fit_stores_weights_and_predict_applies_them_to_exports_not_to_the_next_stage() -> None:
    with_images, _ = _trained("images")
    as_labels, _ = _trained("labels")
    for stage in with_images.stages:  # type: ignore[attr-defined]
        disk, background = stage.class_weights
        assert disk < 1 < background  # disks are labelled more often than they occur
    assert all(stage.class_weights is None for stage in as_labels.stages)  # type: ignore[attr-defined]
    test = blobs(5, size=96)[0][..., None]
    ours = predict(with_images, test, axes="yxc")  # type: ignore[arg-type]
    theirs = predict(as_labels, test, axes="yxc")  # type: ignore[arg-type]
    for k in range(2):
        expected = reweighted(theirs[k].probabilities.compute(), with_images.stages[k].class_weights)  # type: ignore[attr-defined]
        np.testing.assert_array_equal(ours[k].probabilities.compute(), expected)
    # stage 2 reads stage 1's forest as it is: the same input with or without the weights
    np.testing.assert_array_equal(ours[1].stage_input.compute(), theirs[1].stage_input.compute())
    called = [(r.segmentation.compute() == 1).mean() for r in (ours[0], theirs[0])]
    assert called[0] < called[1]


def test_weights_round_trip_and_bump_the_schema_version(tmp_path: Path) -> None:
    with_images, _ = _trained("images")
    path = save_cascade(with_images, tmp_path / "p.cascade")  # type: ignore[arg-type]
    loaded = load_cascade(path)
    assert [s.class_weights for s in loaded.stages] == [s.class_weights for s in with_images.stages]  # type: ignore[attr-defined]
    with h5py.File(path, "r") as f:
        assert f.attrs["schema_version"] == 3
    as_labels, _ = _trained("labels")
    with h5py.File(save_cascade(as_labels, tmp_path / "l.cascade"), "r") as f:  # type: ignore[arg-type]
        assert f.attrs["schema_version"] == 1 and "class_weights" not in f["stages/stage00"].attrs
    for bad in ([1.0], [1.0, -2.0], [1.0, np.nan]):
        with h5py.File(path, "r+") as f:
            f["stages/stage01"].attrs["class_weights"] = np.asarray(bad)
        with pytest.raises(ProjectError, match="class_weights must be 2 positive numbers"):
            load_cascade(path)


def test_unknown_prior_is_refused() -> None:
    image, labels = _scribbled(0)
    stage = Stage(FeatureSelection.ilastik_default(), ("a", "b"))
    with pytest.raises(CascadeError, match="prior must be one of images, labels"):
        fit([TrainingImage(image[..., None], "yxc", (labels,))], [stage], prior="both")  # type: ignore[arg-type]


def test_cli_train_prior_option_and_spec_key(tmp_path: Path) -> None:
    image, labels = _scribbled(0)
    iio.imwrite(tmp_path / "raw.png", image)
    iio.imwrite(tmp_path / "labels.png", labels)
    common = ("train", "--raw_data=raw.png", "--labels=labels.png", "--stages=1", "--trees=5")
    done = cascade(*common, "--project=i.cascade", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert load_cascade(tmp_path / "i.cascade").stages[0].class_weights is not None
    done = cascade(*common, "--prior=labels", "--project=l.cascade", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert load_cascade(tmp_path / "l.cascade").stages[0].class_weights is None
    done = cascade(*common, "--prior=both", "--project=x.cascade", cwd=tmp_path)
    assert done.returncode != 0 and "--prior" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "spec.yaml").write_text(
        "images: [{raw: raw.png, labels: [labels.png]}]\nstages: [{classes: [a, b]}]\n"
        "forest: {trees: 5}\nprior: sometimes\n"
    )
    done = cascade("train", "spec.yaml", "--project=s.cascade", cwd=tmp_path)
    assert done.returncode != 0 and "prior must be one of images, labels" in done.stderr
    assert not (tmp_path / "s.cascade").exists() and not (tmp_path / "x.cascade").exists()
