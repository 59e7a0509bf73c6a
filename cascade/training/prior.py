"""Class shares of the training images, against the shares of their labels.

A forest learns the class shares of its training rows: the labels. Sparse labels rarely have
the images' shares (scribbles along a thin membrane label it as often as the cells around it),
so the forest over-calls the over-labelled class. With ``prior="images"`` (the default of
``cascade train``) each stage estimates the classes' shares in its training images from its
own probabilities there, by the EM of Saerens, Latinne and Decaestecker (2002): re-weight the
probabilities by share / label share, take the mean as the new shares, repeat. The stage stores
share / label share per class (:attr:`cascade.pipeline.Stage.class_weights`) and its exported
probabilities are re-weighted by them; the next stage still reads the forest's own.

Measured (``benchmarks/results/accuracy.md``, session 9): ISBI 2012 scribbles, membrane F1 at
argmax +0.05 to +0.06 at every stage; random labels (which have the images' shares) unchanged.

The shares are estimated on up to :data:`TILES` tiles per training image (the training tiles'
shape, at seeded random places of the tile grid), where stage k's probabilities are those its
training fed forward (cross-fitted), so the estimate costs a few tiles of prediction per stage.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["MAX_WEIGHT", "PRIORS", "TILES", "Prior", "class_weights", "em_shares", "pick_tiles"]

Prior = Literal["images", "labels"]
#: the ways to set a stage's class prior, the default first
PRIORS: tuple[str, ...] = ("images", "labels")
#: Tiles per training image on which the images' class shares are estimated.
TILES = 4
#: Weights are kept within [1 / MAX_WEIGHT, MAX_WEIGHT]: a class labelled far more than it
#: occurs is damped, never erased.
MAX_WEIGHT = 5.0


def em_shares(
    probabilities: np.ndarray, label_shares: np.ndarray, *, rounds: int = 500, tol: float = 1e-8
) -> np.ndarray:
    """The class shares of the pixels behind ``probabilities`` (EM of Saerens et al. 2002).

    Parameters
    ----------
    probabilities : numpy.ndarray
        (n, classes) probabilities of a classifier trained with class shares ``label_shares``.
    label_shares : numpy.ndarray
        (classes,) the training rows' class shares, all positive, summing to 1.
    rounds : int
        At most this many EM steps.
    tol : float
        Stop when no share moves by more than this.

    Returns
    -------
    numpy.ndarray
        (classes,) the estimated shares, summing to 1.

    Examples
    --------
    >>> p = np.array([[0.9, 0.1]] * 3 + [[0.2, 0.8]] * 7)
    >>> em_shares(p, np.array([0.5, 0.5])).round(2)
    array([0.31, 0.69])
    """
    p = np.asarray(probabilities, np.float64)
    base = np.asarray(label_shares, np.float64)
    shares = base.copy()
    for _ in range(rounds):
        q = p * (shares / base)
        q /= np.maximum(q.sum(axis=1, keepdims=True), 1e-300)
        new = q.mean(axis=0)
        done = float(np.max(np.abs(new - shares))) <= tol
        shares = new
        if done:
            break
    out: np.ndarray = shares / shares.sum()
    return out


def class_weights(probabilities: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[float, ...]:
    """Per class, the images' share over the labels' share, within [1/MAX_WEIGHT, MAX_WEIGHT].

    Parameters
    ----------
    probabilities : numpy.ndarray
        (n, n_classes) the stage's probabilities at pixels of the training images.
    labels : numpy.ndarray
        The stage's training labels (values 1..n_classes).
    n_classes : int
        The stage's classes; a class without labels keeps weight 1 (the forest never predicts it).

    Returns
    -------
    tuple of float
        One weight per class.
    """
    counts = np.bincount(np.asarray(labels, np.int64), minlength=n_classes + 1)[1 : n_classes + 1]
    present = counts > 0
    weights = np.ones(n_classes)
    if present.sum() < 2 or len(probabilities) == 0:
        return tuple(float(w) for w in weights)
    label_shares = counts[present] / counts[present].sum()
    p = np.asarray(probabilities, np.float64)[:, present]
    p /= np.maximum(p.sum(axis=1, keepdims=True), 1e-300)
    shares = em_shares(p, label_shares)
    weights[present] = np.clip(shares / label_shares, 1 / MAX_WEIGHT, MAX_WEIGHT)
    return tuple(float(w) for w in weights)


def pick_tiles(shape: tuple[int, ...], tile: tuple[int, ...], seed: int) -> list[tuple[tuple[int, ...], ...]]:
    """Up to :data:`TILES` distinct cells of the ``tile`` grid over ``shape``, at seeded random.

    Parameters
    ----------
    shape : tuple of int
        The image's spatial shape.
    tile : tuple of int
        The tile shape (clipped at the image's edges).
    seed : int
        Random seed.

    Returns
    -------
    list of ((lo...), (hi...))
        The tiles' corners.
    """
    grid = [range(0, n, t) for n, t in zip(shape, tile, strict=True)]
    cells = [tuple(axis[i] for axis, i in zip(grid, idx, strict=True)) for idx in np.ndindex(*map(len, grid))]
    order = np.random.default_rng(seed).permutation(len(cells))[:TILES]
    picked = [cells[int(i)] for i in sorted(order)]
    return [(lo, tuple(min(a + t, n) for a, t, n in zip(lo, tile, shape, strict=True))) for lo in picked]
