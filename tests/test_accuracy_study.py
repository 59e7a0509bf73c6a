"""The accuracy study's training variants (benchmarks/autocontext_variants.py) do what they claim.

Cross-fitting must never let a pixel's own labels shape the prediction it carries into the next
stage; out-of-bag feeding changes the labelled pixels only; the metric is the pooled membrane F1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from autocontext_variants import (
    BLOCK,
    FOLDS,
    block_folds,
    labelled_rows,
    membrane_f1,
    parse_variant,
    run_cascade,
    run_library,
    slice_features,
    train,
    training_feed,
)
from helpers import blobs, sparse

from cascade.features import FeatureSelection


def _images(n: int = 3, size: int = 2 * BLOCK) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Seeded feature stacks (y, x, 4) and random sparse labels whose class follows feature 0."""
    rng = np.random.default_rng(0)
    features, labels = [], []
    for _ in range(n):
        f = rng.normal(size=(size, size, 4)).astype(np.float32)
        lab = np.where(f[..., 0] > 0.5, 1, 2).astype(np.uint8)
        lab[rng.random((size, size)) > 0.05] = 0
        features.append(f)
        labels.append(lab)
    return features, labels


def _feed(spec: str, features: list[np.ndarray], labels: list[np.ndarray]) -> list[np.ndarray]:
    rows = labelled_rows(features, labels)
    forest = train(rows.x, rows.y, n_classes=2, trees=5, seed=3, balanced=False, oob=True)
    return training_feed(parse_variant(spec), forest, rows, features, n_classes=2, trees=5, seed=3)


def test_block_folds_deal_whole_blocks_evenly() -> None:
    folds = block_folds((3 * BLOCK, 2 * BLOCK + 5), 2, seed=1)
    assert folds.shape == (2, 3 * BLOCK, 2 * BLOCK + 5)
    blocks = folds[:, ::BLOCK, ::BLOCK]
    for i, by, bx in np.ndindex(*blocks.shape):
        tile = folds[i, by * BLOCK : (by + 1) * BLOCK, bx * BLOCK : (bx + 1) * BLOCK]
        assert np.all(tile == blocks[i, by, bx])
    counts = np.bincount(blocks.ravel(), minlength=FOLDS)
    assert counts.max() - counts.min() <= 1


def test_block_cross_fitting_ignores_the_folds_own_labels() -> None:
    features, labels = _images()
    before = _feed("xfit-block", features, labels)
    folds = block_folds(labels[0].shape, len(labels), seed=3)
    flipped = [np.where((f == 0) & (lab > 0), 3 - lab, lab).astype(np.uint8) for f, lab in zip(folds, labels)]
    after = _feed("xfit-block", features, flipped)
    for f, a, b in zip(folds, before, after):
        np.testing.assert_array_equal(a[f == 0], b[f == 0])
    assert any(not np.array_equal(a[f != 0], b[f != 0]) for f, a, b in zip(folds, before, after))


def test_image_cross_fitting_ignores_the_images_own_labels() -> None:
    features, labels = _images()
    before = _feed("xfit-image", features, labels)
    flipped = [np.where(labels[0] > 0, 3 - labels[0], 0).astype(np.uint8), *labels[1:]]
    after = _feed("xfit-image", features, flipped)
    np.testing.assert_array_equal(before[0], after[0])
    assert not np.array_equal(before[1], after[1])


def test_oob_feed_differs_from_in_sample_only_at_labelled_pixels() -> None:
    features, labels = _images()
    in_sample = _feed("ilastik", features, labels)
    oob = _feed("default", features, labels)
    for lab, a, b in zip(labels, in_sample, oob):
        np.testing.assert_array_equal(a[lab == 0], b[lab == 0])
        assert not np.array_equal(a[lab > 0], b[lab > 0])


def test_membrane_f1_is_pooled_over_slices() -> None:
    truth = np.array([[[1, 1, 2, 2]], [[1, 2, 2, 2]]], np.uint8)
    membrane = np.array([[[1, 0, 1, 0]], [[1, 1, 0, 0]]], np.float32)
    probs = {i: np.stack([membrane[i], 1 - membrane[i]], axis=-1) for i in range(2)}
    # tp 2 (one per slice), fp 2, fn 1 -> 2 * 2 / (4 + 2 + 1)
    assert membrane_f1(probs, truth) == pytest.approx(4 / 7)


def test_cascade_runs_every_stage_with_every_modifier() -> None:
    rng = np.random.default_rng(5)
    features, labels = _images(n=2)
    raw = dict(enumerate(features))
    raw[2] = rng.normal(size=features[0].shape).astype(np.float32)
    spec = "xfit-image+wide+all+offsets+balanced+lean"
    probs = run_cascade(
        parse_variant(spec), raw, dict(enumerate(labels)), [2], n_classes=2, stages=3, trees=3, seed=0
    )
    assert len(probs) == 3
    for stage in probs:
        assert stage[2].shape == (*features[0].shape[:2], 2)
        np.testing.assert_allclose(stage[2].sum(axis=-1), 1, rtol=1e-5)


def test_numeric_modifiers_set_block_folds_and_leaf() -> None:
    variant = parse_variant("xfit-block+block32+folds8+leaf5")
    assert (variant.number("block", BLOCK), variant.number("folds", FOLDS), variant.number("leaf", 1)) == (
        32,
        8,
        5,
    )
    assert parse_variant("xfit-block").number("block", BLOCK) == BLOCK
    folds = block_folds((64, 64), 1, seed=0, block=32, folds=8)
    assert sorted(np.unique(folds[0, ::32, ::32])) == [int(v) for v in np.unique(folds)]
    assert parse_variant("lib-cross-fit").feed == "lib-cross-fit"


def test_library_runs_agree_with_the_study_at_stage_one() -> None:
    """The study's stage 1 is the library's: same features, same forest, same test probabilities."""
    slices = {i: blobs(i, size=64) for i in range(3)}
    raw = {i: image for i, (image, _) in slices.items()}
    labels = {i: sparse(slices[i][1], 7 + i, every=6) for i in (0, 1)}
    selection = FeatureSelection.ilastik_default()
    features = {i: slice_features(raw[i][..., None], selection) for i in raw}
    ours = run_cascade(
        parse_variant("xfit-block"), features, labels, [2], n_classes=2, stages=2, trees=3, seed=0
    )
    lib = run_library("cross-fit", raw, labels, [2], class_names=("a", "b"), stages=2, trees=3, seed=0)
    np.testing.assert_array_equal(ours[0][2], lib[0][2])
    assert lib[1][2].shape == (64, 64, 2)


@pytest.mark.parametrize("spec", ["xfit", "oob+wider", "default+balanced+nope", "lib-xfit"])
def test_unknown_variants_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="variant"):
        parse_variant(spec)
