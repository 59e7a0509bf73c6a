"""Cross-fitting: stage k's training-time predictions from forests that never saw the pixel's block.

Every training image is cut into cubes of ``block`` pixels per spatial axis, dealt to ``folds``
folds: a seeded, balanced deal per image (block counts differ by at most one between folds),
a pure function of (seed, image index, block index) and the image's shape. For each fold f a
held-out forest is trained on the labelled pixels outside fold f; during training, stage k's
probabilities at every pixel of fold f (labelled or not: stage k+1's features around a
labelled pixel read its neighbours' probabilities too) come from that forest. So a labelled
pixel's own label, and its neighbours' labels within the block, never shape the context
stage k+1 learns from, just as at prediction time. A fold with no labels needs no forest of
its own (the stage's forest never saw labels there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..forest import MAX_SEED, PackedForest, predict_proba, train_forest

__all__ = ["BLOCK", "FOLDS", "HeldOut", "fold_grid", "pixel_folds", "row_folds", "train_held_out"]

#: edge of the cross-fitting blocks in pixels, per spatial axis
BLOCK = 64
#: number of cross-fitting folds
FOLDS = 4


def fold_grid(
    shape: tuple[int, ...], image: int, *, seed: int, block: int = BLOCK, folds: int = FOLDS
) -> np.ndarray:
    """Fold of every block of one image.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape of the image (``(y, x)`` or ``(z, y, x)``).
    image : int
        Index of the image among the training images (time points count as images).
    seed : int
        Seed of the deal.
    block, folds : int
        Block edge in pixels and number of folds.

    Returns
    -------
    ndarray of int64, shape ``ceil(shape / block)``
        Fold ``0 .. folds-1`` of each block; each fold holds ``n_blocks // folds`` or one more block.
    """
    grid = tuple(-(-int(n) // block) for n in shape)
    rng = np.random.default_rng([seed, image])
    deal: np.ndarray = rng.permutation(np.arange(int(np.prod(grid))) % folds).reshape(grid)
    return deal


def pixel_folds(
    grid: np.ndarray, lo: tuple[int, ...], hi: tuple[int, ...], *, block: int = BLOCK
) -> np.ndarray:
    """Fold of every pixel of the box ``[lo, hi)`` of an image whose blocks are dealt as ``grid``.

    Parameters
    ----------
    grid : ndarray of int
        The image's :func:`fold_grid`.
    lo, hi : tuple of int
        The box, in the image's spatial coordinates.
    block : int
        Block edge in pixels.

    Returns
    -------
    ndarray of int, shape ``hi - lo``
    """
    index = np.ix_(*[np.arange(a, b) // block for a, b in zip(lo, hi)])
    folds: np.ndarray = grid[index]
    return folds


def _held_seed(seed: int, fold: int) -> int:
    """Seed of fold ``fold``'s held-out forest, derived from the stage's seed."""
    state = np.random.SeedSequence([seed, fold + 1]).generate_state(1, dtype=np.uint32)
    return int(state[0]) % (MAX_SEED + 1)


@dataclass(frozen=True, eq=False)
class HeldOut:
    """One stage's held-out forests and the block deal of every training image.

    Attributes
    ----------
    forests : tuple of PackedForest
        Per fold, the forest whose training rows lie outside that fold.
    grids : dict of int to ndarray
        Per training image, :func:`fold_grid`.
    block : int
        Block edge in pixels.
    """

    forests: tuple[PackedForest, ...]
    grids: dict[int, np.ndarray]
    block: int

    def predict(
        self, features: np.ndarray, image: int, lo: tuple[int, ...], hi: tuple[int, ...]
    ) -> np.ndarray:
        """Probabilities over ``[lo, hi)`` of one image, each pixel from its fold's forest.

        Parameters
        ----------
        features : ndarray, shape (*box, n_features)
            Features of the box ``[lo, hi)``.
        image : int
            Index of the training image.
        lo, hi : tuple of int
            The box, in the image's spatial coordinates.

        Returns
        -------
        ndarray of float32, shape (*box, n_classes)
        """
        folds = pixel_folds(self.grids[image], lo, hi, block=self.block)
        n_out = self.forests[0].n_outputs
        probs = np.zeros((*features.shape[:-1], n_out), np.float32)
        for fold in np.unique(folds):
            mask = folds == fold
            probs[mask] = predict_proba(self.forests[int(fold)], features[mask])
        return probs


def train_held_out(
    x: np.ndarray,
    y: np.ndarray,
    row_folds: np.ndarray,
    main: PackedForest,
    *,
    n_outputs: int,
    trees: int,
    seed: int,
    n_jobs: int | None,
    folds: int = FOLDS,
) -> tuple[list[PackedForest | None], np.ndarray]:
    """Per fold, a forest trained on the rows outside it.

    Parameters
    ----------
    x : ndarray, shape (n_rows, n_features)
        Training features of one stage.
    y : ndarray of int, shape (n_rows,)
        Their labels, ``1 .. n_outputs``.
    row_folds : ndarray of int, shape (n_rows,)
        Fold of each row's pixel.
    main : PackedForest
        The stage's forest (trained on every row): the forest of folds without labels.
    n_outputs, trees, seed, n_jobs : int
        As :func:`cascade.forest.train_forest` (each fold's seed is derived from ``seed``).
    folds : int
        Number of folds.

    Returns
    -------
    forests : list of PackedForest or None
        Per fold; None where the rows outside the fold hold fewer than two classes, so no
        held-out forest can be trained (the caller falls back to out-of-bag values there).
    bad_rows : ndarray of bool, shape (n_rows,)
        Rows in the folds that got None.
    """
    forests: list[PackedForest | None] = []
    bad_rows = np.zeros(len(y), bool)
    for fold in range(folds):
        inside = row_folds == fold
        if not inside.any():
            forests.append(main)
            continue
        if len(np.unique(y[~inside])) < 2:
            forests.append(None)
            bad_rows |= inside
            continue
        forest = train_forest(
            x[~inside],
            y[~inside],
            n_outputs=n_outputs,
            n_trees=trees,
            seed=_held_seed(seed, fold),
            n_jobs=n_jobs,
        )
        forests.append(forest)
    return forests, bad_rows


def row_folds(
    grids: dict[int, np.ndarray], owners: list[tuple[int, np.ndarray, Any]], block: int
) -> np.ndarray:
    """Fold of every training row.

    Parameters
    ----------
    grids : dict of int to ndarray
        Per training image, its :func:`fold_grid`.
    owners : list of (int, ndarray, ndarray)
        The rows in order, in groups: image, pixel coordinates (n, ndim), label values (n,).
    block : int
        Block edge in pixels.

    Returns
    -------
    ndarray of int, shape (n_rows,)
    """
    parts = [grids[image][tuple((coords // block).T)] for image, coords, _ in owners]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)
