"""Cross-fitted training (cascade's default): seeded block folds, and no label leaks through them.

Stage k+1's training must see, at every pixel, stage k's prediction from a forest that never saw
the labels of that pixel's block: flipping the stage-1 labels inside fold 0 must leave stage 2's
training (hence its forest) unchanged when stage 2's labels sit inside fold-0 blocks.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import blobs, sparse

from cascade.features import parse_feature_selection
from cascade.forest import PackedForest
from cascade.pipeline import Stage
from cascade.training import TrainingImage, fit
from cascade.training.crossfit import BLOCK, FOLDS, fold_grid, pixel_folds, row_folds, train_held_out

SELECTION = parse_feature_selection(
    {"features": {"GaussianSmoothing": [0.7, 1.6], "GaussianGradientMagnitude": [1.0]}}
)
#: stage-2 labels keep this far from block edges: more than any feature halo of SELECTION
MARGIN = max(SELECTION.column_halo(j) for j in SELECTION.columns()) + 1
#: test images: at least 2 x 2 blocks in y, x
SIZE = max(2 * BLOCK, 128)


def _same_forest(a: PackedForest | None, b: PackedForest | None) -> bool:
    if a is None or b is None:
        raise AssertionError("untrained stage")
    names = ("feature", "threshold", "left", "right", "value", "roots")
    return all(np.array_equal(getattr(a, n), getattr(b, n)) for n in names)


def test_fold_grid_is_a_seeded_balanced_deal_per_image() -> None:
    grid = fold_grid((5 * BLOCK, 3 * BLOCK + 1), 0, seed=7)
    assert grid.shape == (5, 4)
    counts = np.bincount(grid.ravel(), minlength=FOLDS)
    assert counts.max() - counts.min() <= 1
    assert np.array_equal(grid, fold_grid((5 * BLOCK, 3 * BLOCK + 1), 0, seed=7))
    assert not np.array_equal(grid, fold_grid((5 * BLOCK, 3 * BLOCK + 1), 1, seed=7))
    assert not np.array_equal(grid, fold_grid((5 * BLOCK, 3 * BLOCK + 1), 0, seed=8))
    shape = (40, 2 * BLOCK + 2, BLOCK + 6)
    assert fold_grid(shape, 2, seed=0).shape == (-(-40 // BLOCK), 3, 2)


def test_pixel_folds_follow_the_blocks_of_any_box() -> None:
    grid = fold_grid((3 * BLOCK, 2 * BLOCK), 0, seed=1)
    whole = np.repeat(np.repeat(grid, BLOCK, axis=0), BLOCK, axis=1)
    lo, hi = (BLOCK - 5, 3), (2 * BLOCK + 9, 2 * BLOCK)
    assert np.array_equal(pixel_folds(grid, lo, hi), whole[lo[0] : hi[0], lo[1] : hi[1]])
    coords = np.array([[0, 0], [BLOCK, BLOCK - 1], [3 * BLOCK - 1, 2 * BLOCK - 1]])
    rows = row_folds({0: grid}, [(0, coords, np.ones(3))], BLOCK)
    assert rows.tolist() == [grid[0, 0], grid[1, 0], grid[2, 1]]


def test_a_fold_whose_outside_has_one_class_has_no_forest() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = np.array([1] * 10 + [2] * 30)
    folds = np.array([0] * 10 + [1] * 15 + [2] * 15)  # outside fold 0: class 2 only; fold 3 empty
    main = PackedForest.__new__(PackedForest)  # stands for the stage's forest, only passed through
    forests, bad = train_held_out(x, y, folds, main, n_outputs=2, trees=3, seed=0, n_jobs=1)
    assert forests[0] is None and forests[3] is main
    assert isinstance(forests[1], PackedForest) and isinstance(forests[2], PackedForest)
    assert np.array_equal(bad, folds == 0)


def _interior_of_fold(shape: tuple[int, ...], image: int, fold: int, seed: int) -> np.ndarray:
    """Pixels of fold ``fold`` at least MARGIN from their block's yx edges."""
    folds = pixel_folds(fold_grid(shape, image, seed=seed), (0,) * len(shape), shape)
    inner = np.ones(shape, bool)
    for axis in (-2, -1):
        pos = np.arange(shape[axis]) % BLOCK
        keep = (pos >= MARGIN) & (pos < BLOCK - MARGIN)
        inner &= keep.reshape([-1 if d == len(shape) + axis else 1 for d in range(len(shape))])
    result: np.ndarray = (folds == fold) & inner
    return result


def _images(dims: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Two 2D images, or one 3D image, of SIZE x SIZE pixels in y, x."""
    if dims == 2:
        return [blobs(s, size=SIZE) for s in (1, 2)]
    planes = [blobs(s, size=SIZE) for s in range(8)]
    return [(np.stack([p[0] for p in planes]), np.stack([p[1] for p in planes]))]


def _stage2_forest(dims: int, mode: str, flip: bool, seed: int = 5) -> PackedForest | None:
    axes = "yxc" if dims == 2 else "zyxc"
    images = []
    for i, (raw, truth) in enumerate(_images(dims)):
        first = sparse(truth, 10 + i, every=9)
        if flip:  # stage 1's labels inside fold 0 swap classes
            in_fold0 = pixel_folds(fold_grid(truth.shape, i, seed=seed), (0,) * dims, truth.shape) == 0
            first = np.where(in_fold0 & (first > 0), 3 - first, first).astype(np.uint8)
        second = np.where(_interior_of_fold(truth.shape, i, 0, seed), sparse(truth, 20 + i, every=5), 0)
        images.append(TrainingImage(raw[..., None], axes, (first, second.astype(np.uint8))))
    stages = [Stage(SELECTION, ("disk", "background"))] * 2
    return fit(images, stages, trees=4, seed=seed, mode=mode, n_jobs=1).stages[1].forest  # type: ignore[arg-type]


@pytest.mark.parametrize("dims", [2, 3], ids=["2d-two-images", "3d"])
def test_cross_fitting_never_feeds_a_blocks_own_labels_back(dims: int) -> None:
    assert _same_forest(_stage2_forest(dims, "cross-fit", False), _stage2_forest(dims, "cross-fit", True))
    # the control: with out-of-bag feeding the flipped labels do reach stage 2's training
    assert not _same_forest(_stage2_forest(dims, "oob", False), _stage2_forest(dims, "oob", True))


def test_cross_fitted_training_is_deterministic() -> None:
    assert _same_forest(_stage2_forest(2, "cross-fit", False), _stage2_forest(2, "cross-fit", False))
