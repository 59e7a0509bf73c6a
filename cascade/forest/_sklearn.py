"""Convert a fitted scikit-learn random forest to a :class:`PackedForest`, decision for decision."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import DataError
from .packed import PackedForest

__all__ = ["pack_sklearn", "strict_float32_thresholds"]

_LEAF = -1  # scikit-learn's TREE_LEAF marker in children_left / children_right


def strict_float32_thresholds(threshold: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Turn ``x <= t`` (float64 ``t``) into ``x < t32`` (float32 ``t32``) for every float32 ``x``.

    With ``f`` the largest float32 ``<= t``, a float32 ``x`` satisfies ``x <= t`` exactly when
    ``x <= f``, that is when ``x < nextafter32(f, +inf)``.

    Parameters
    ----------
    threshold : array_like of float64
        scikit-learn split thresholds.

    Returns
    -------
    ndarray of float32
        Thresholds for the strict rule, same shape.

    Examples
    --------
    >>> float(strict_float32_thresholds([0.5])[0]) == float(np.nextafter(np.float32(0.5), np.float32(1)))
    True
    """
    t = np.asarray(threshold, dtype=np.float64)
    with np.errstate(over="ignore"):  # |t| beyond float32's range rounds to +-inf, as intended
        f = t.astype(np.float32)
        too_big = f.astype(np.float64) > t
        f[too_big] = np.nextafter(f[too_big], np.float32(-np.inf))
        return np.nextafter(f, np.float32(np.inf))


def _parse_class_values(
    model: Any, n_outputs: int, class_values: Sequence[int] | None
) -> npt.NDArray[np.int64]:
    """Output channel (label - 1) of each entry of ``model.classes_``."""
    values = np.asarray(model.classes_ if class_values is None else class_values)
    n_classes = len(model.classes_)
    if values.ndim != 1 or values.shape[0] != n_classes:
        raise DataError(
            f"class_values must list one label per model class ({n_classes}), got shape {values.shape}"
        )
    if (
        values.dtype.kind not in "iuf"
        or not np.all(np.isfinite(values))
        or np.any(values != np.round(values))
    ):
        raise DataError(f"class labels must be integers 1..{n_outputs}, got {values.tolist()}")
    labels = values.astype(np.int64)
    if np.any(labels < 1) or np.any(labels > n_outputs):
        raise DataError(f"class labels must lie in 1..n_outputs={n_outputs}, got {labels.tolist()}")
    if np.unique(labels).shape[0] != labels.shape[0]:
        raise DataError(f"class labels must be distinct, got {labels.tolist()}")
    return labels - 1


def _check_model(model: Any, n_outputs: int) -> None:
    if isinstance(n_outputs, bool) or not isinstance(n_outputs, (int, np.integer)) or n_outputs < 1:
        raise DataError(f"n_outputs must be an int >= 1, got {n_outputs!r}")
    if not hasattr(model, "estimators_") or not hasattr(model, "classes_"):
        raise DataError(f"expected a fitted sklearn RandomForestClassifier, got {type(model).__name__}")
    if getattr(model, "n_outputs_", 1) != 1:
        raise DataError(f"only single-output forests can be packed, this one has {model.n_outputs_} outputs")


def _pack_tree(tree: Any, channels: npt.NDArray[np.int64], n_outputs: int) -> dict[str, np.ndarray]:
    """Node arrays of one ``sklearn.tree._tree.Tree``, with tree-local child indices."""
    left = tree.children_left.astype(np.int32)
    is_leaf = left == _LEAF
    feature = np.where(is_leaf, -1, tree.feature).astype(np.int32)
    threshold = np.where(is_leaf, np.float32(0), strict_float32_thresholds(tree.threshold))
    counts = tree.value[:, 0, :].astype(np.float64)
    total = counts.sum(axis=1, keepdims=True)
    fractions = counts / np.where(total == 0.0, 1.0, total)
    value = np.zeros((left.shape[0], n_outputs), dtype=np.float32)
    value[:, channels] = np.where(is_leaf[:, None], fractions, 0.0)
    return {
        "feature": feature,
        "threshold": threshold.astype(np.float32),
        "left": left,
        "right": tree.children_right.astype(np.int32),
        "value": value,
    }


def pack_sklearn(model: Any, n_outputs: int, class_values: Sequence[int] | None = None) -> PackedForest:
    """Convert a fitted ``sklearn.ensemble.RandomForestClassifier`` to a :class:`PackedForest`.

    The packed forest makes the same decisions as the model for every float32 input (the
    model's float64 ``x <= t`` becomes the exact float32 ``x < t32``, see
    :func:`strict_float32_thresholds`), and its probabilities equal the model's
    ``predict_proba`` to float32 precision.

    Parameters
    ----------
    model : sklearn.ensemble.RandomForestClassifier
        A fitted single-output classifier.
    n_outputs : int
        Number of classes of the project (output channels); may exceed the classes the model saw.
    class_values : sequence of int, optional
        The label (1..n_outputs) of each entry of ``model.classes_``, in that order. By default
        ``model.classes_`` itself holds the labels.

    Returns
    -------
    PackedForest
        Channel ``label - 1`` holds class ``label``; classes the model never saw get 0.

    Raises
    ------
    DataError
        If the model is not a fitted single-output forest, or a label is outside 1..n_outputs.

    Notes
    -----
    Leaf values are the per-leaf class fractions (scikit-learn >= 1.4 stores fractions, older
    versions counts; both are normalised), rounded to float32. NaN inputs always go right in a
    packed forest, whereas a model trained on data with missing values may send them left.
    """
    _check_model(model, n_outputs)
    channels = _parse_class_values(model, n_outputs, class_values)
    trees = [_pack_tree(estimator.tree_, channels, int(n_outputs)) for estimator in model.estimators_]
    sizes = np.array([tree["left"].shape[0] for tree in trees], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    if sizes.sum() >= 2**31:
        raise DataError(f"the forest has {sizes.sum()} nodes, more than int32 indices can address")
    for tree, offset in zip(trees, offsets):
        for side in ("left", "right"):
            tree[side] = np.where(tree[side] == _LEAF, _LEAF, tree[side] + np.int32(offset))
    return PackedForest(
        feature=np.concatenate([tree["feature"] for tree in trees]),
        threshold=np.concatenate([tree["threshold"] for tree in trees]),
        left=np.concatenate([tree["left"] for tree in trees]),
        right=np.concatenate([tree["right"] for tree in trees]),
        value=np.concatenate([tree["value"] for tree in trees]),
        roots=offsets,
        n_features=int(model.n_features_in_),
    )
