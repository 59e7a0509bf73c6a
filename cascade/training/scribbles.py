"""Sparse "scribble" labels drawn from a dense ground truth, the way a person labels in ilastik.

Used by the demo, the notebooks and the evaluations: random straight strokes are laid over
the image; each stroke is cut where the ground-truth class changes, pixels next to a class
boundary are left out (annotators stay inside objects), and short pieces are dropped.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["scribble_labels"]


def scribble_labels(
    truth: np.ndarray,
    *,
    fraction: float = 0.03,
    stroke_length: int = 24,
    margin: int = 1,
    seed: int = 0,
) -> np.ndarray:
    """Sparse labels from a dense 2D class image.

    Parameters
    ----------
    truth : ndarray of int, shape (y, x)
        Dense classes 1..N (0 is ignored and never labelled).
    fraction : float
        Target share of labelled pixels.
    stroke_length : int
        Length of each stroke in pixels.
    margin : int
        Pixels closer than this to another class are not labelled.
    seed : int
        Random seed.

    Returns
    -------
    ndarray of uint8, shape (y, x)
        0 = unlabelled, else the class of ``truth``.
    """
    rng = np.random.default_rng(seed)
    truth = np.asarray(truth)
    inside = np.zeros(truth.shape, bool)
    for value in np.unique(truth[truth > 0]):
        inside |= ndimage.binary_erosion(truth == value, iterations=margin) if margin else truth == value
    labels = np.zeros(truth.shape, np.uint8)
    target = fraction * truth.size
    classes = np.unique(truth[truth > 0])
    per_class = {int(c): 0 for c in classes}
    attempts = 0
    while labels.astype(bool).sum() < target and attempts < 100_000:
        attempts += 1
        # start strokes in the least labelled class so thin classes (membranes) get their share
        wanted = min(per_class, key=per_class.__getitem__)
        ys, xs = np.nonzero((truth == wanted) & inside)
        if len(ys) == 0:
            per_class[wanted] = np.iinfo(np.int64).max
            continue
        i = rng.integers(len(ys))
        angle = rng.uniform(0, np.pi)
        steps = np.arange(-(stroke_length // 2), stroke_length // 2 + 1)
        yy = np.clip(np.round(ys[i] + steps * np.sin(angle)).astype(int), 0, truth.shape[0] - 1)
        xx = np.clip(np.round(xs[i] + steps * np.cos(angle)).astype(int), 0, truth.shape[1] - 1)
        # keep the run of the stroke through the start point that stays in the class, inside the margin
        ok = (truth[yy, xx] == wanted) & inside[yy, xx]
        centre = len(steps) // 2
        lo = centre
        while lo > 0 and ok[lo - 1]:
            lo -= 1
        hi = centre
        while hi < len(ok) - 1 and ok[hi + 1]:
            hi += 1
        if hi - lo + 1 < 3:
            continue
        new = labels[yy[lo : hi + 1], xx[lo : hi + 1]] == 0
        labels[yy[lo : hi + 1], xx[lo : hi + 1]] = wanted
        per_class[int(wanted)] += int(new.sum())
    return labels
