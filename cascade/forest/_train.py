"""Train a forest with scikit-learn (ilastik's default classifier, but seeded) and pack it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

from ..errors import DataError
from . import MAX_SEED, _kernels
from ._layout import compact_layout
from ._predict import predict_proba
from ._sklearn import pack_sklearn
from .packed import PackedForest

__all__ = ["TrainedForest", "train_forest"]


@dataclass(frozen=True, eq=False)
class TrainedForest:
    """A trained forest with out-of-bag probabilities for its training rows.

    Attributes
    ----------
    forest : PackedForest
        The trained forest.
    oob_proba : ndarray of float32, shape (n_rows, n_outputs)
        For each training row, the mean leaf distribution over the trees whose bootstrap
        sample did not contain the row. A row that every tree sampled (``oob_counts == 0``,
        likely only with few trees or few rows) gets the in-bag prediction of the whole forest.
    oob_counts : ndarray of int32, shape (n_rows,)
        Number of trees each row was out of bag for.
    """

    forest: PackedForest
    oob_proba: npt.NDArray[np.float32]
    oob_counts: npt.NDArray[np.int32]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _parse_training_set(
    X: npt.ArrayLike, y: npt.ArrayLike, n_outputs: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    x = np.asarray(X)
    labels = np.asarray(y)
    if x.ndim != 2 or x.shape[1] < 1:
        raise DataError(f"X must be 2-D (n_rows, n_features >= 1), got shape {x.shape}")
    if x.dtype.kind not in "fiub":
        raise DataError(f"X must hold numbers, got dtype {x.dtype}")
    if labels.ndim != 1 or labels.shape[0] != x.shape[0]:
        raise DataError(f"y must be 1-D with one label per row of X ({x.shape[0]}), got shape {labels.shape}")
    if labels.shape[0] < 1:
        raise DataError("no labelled rows: y is empty; label at least one pixel")
    if labels.dtype.kind not in "iu":
        raise DataError(f"y must hold integer labels, got dtype {labels.dtype}")
    bad = (labels < 1) | (labels > n_outputs)
    if np.any(bad):
        raise DataError(
            f"labels must lie in 1..n_outputs={n_outputs}; found {np.unique(labels[bad])[:10].tolist()}"
        )
    features = np.ascontiguousarray(x, dtype=np.float32)
    if not np.all(np.isfinite(features)):
        row = int(np.flatnonzero(~np.isfinite(features).all(axis=1))[0])
        raise DataError(f"X holds NaN or infinite values (first in row {row}); features must be finite")
    return features, labels.astype(np.int64)


def _out_of_bag(
    forest: PackedForest, model: object, x: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """Mean leaf distribution over the trees each row was out of bag for (see TrainedForest)."""
    compact = compact_layout(forest)
    n_rows = x.shape[0]
    sums = np.zeros((n_rows, compact.n_outputs), dtype=np.float64)
    counts = np.zeros(n_rows, dtype=np.int32)
    for t, in_bag in enumerate(model.estimators_samples_):  # type: ignore[attr-defined]
        out_of_bag = np.ones(n_rows, dtype=bool)
        out_of_bag[in_bag] = False
        rows = np.flatnonzero(out_of_bag)
        _kernels.tree_sum_rows(
            x, compact.nodes, compact.nodes_f, compact.roots[t], compact.leaves, rows, sums
        )
        counts[rows] += 1
    proba = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
    never = np.flatnonzero(counts == 0)
    if never.shape[0]:
        proba[never] = predict_proba(forest, x[never])
    return proba, counts


@overload
def train_forest(
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    n_outputs: int,
    n_trees: int = ...,
    seed: int = ...,
    n_jobs: int | None = ...,
    oob: Literal[False] = ...,
) -> PackedForest: ...


@overload
def train_forest(
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    n_outputs: int,
    n_trees: int = ...,
    seed: int = ...,
    n_jobs: int | None = ...,
    oob: Literal[True],
) -> TrainedForest: ...


def train_forest(
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    n_outputs: int,
    n_trees: int = 100,
    seed: int = 0,
    n_jobs: int | None = None,
    oob: bool = False,
) -> PackedForest | TrainedForest:
    """Train a random forest on labelled feature vectors.

    The forest is scikit-learn's ``RandomForestClassifier(n_estimators=n_trees,
    criterion="gini", max_features="sqrt", bootstrap=True, min_samples_leaf=1,
    random_state=seed)``, the closest match to ilastik's vigra forest (trees grown until
    pure). Unlike ilastik it is reproducible: the same ``X``, ``y`` and ``seed`` give a
    byte-identical forest, whatever ``n_jobs``.

    Parameters
    ----------
    X : array_like, shape (n_rows, n_features)
        Feature vectors of the labelled pixels; converted to float32, must be finite.
    y : array_like of int, shape (n_rows,)
        Labels ``1..n_outputs`` (0, ilastik's "unlabelled", is not allowed here).
    n_outputs : int
        Number of classes of the project; classes without rows get probability 0.
    n_trees : int, default 100
        Number of trees.
    seed : int, default 0
        Random seed of the bootstrap samples and feature draws.
    n_jobs : int, optional
        Threads for fitting, passed to scikit-learn (None: one, unless a joblib context says otherwise).
    oob : bool, default False
        Also compute out-of-bag probabilities of the training rows (see :class:`TrainedForest`),
        for example to feed the next Autocontext stage predictions the forest was not trained on.

    Returns
    -------
    PackedForest or TrainedForest
        The forest, or with ``oob=True`` the forest and its out-of-bag probabilities.

    Raises
    ------
    DataError
        If there is no labelled row, a label is outside ``1..n_outputs``, ``X`` is not a finite
        numeric 2-D array matching ``y``, or an option is invalid.
    """
    from sklearn.ensemble import RandomForestClassifier  # slow import, not needed to predict

    n_outputs = _positive_int("n_outputs", n_outputs)
    n_trees = _positive_int("n_trees", n_trees)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise DataError(f"seed must be an int from 0 to {MAX_SEED}, got {seed!r}")
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer))):
        raise DataError(f"n_jobs must be an int or None, got {n_jobs!r}")
    x, labels = _parse_training_set(X, y, n_outputs)
    model = RandomForestClassifier(
        n_estimators=n_trees,
        criterion="gini",
        max_features="sqrt",
        bootstrap=True,
        min_samples_leaf=1,
        random_state=int(seed),
        n_jobs=n_jobs,
    )
    model.fit(x, labels)
    forest = pack_sklearn(model, n_outputs)
    if not oob:
        return forest
    proba, counts = _out_of_bag(forest, model, x)
    return TrainedForest(forest=forest, oob_proba=proba, oob_counts=counts)
