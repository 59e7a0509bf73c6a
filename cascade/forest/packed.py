"""A random forest as plain numeric arrays: the one forest format cascade evaluates.

Both scikit-learn forests (trained by cascade) and ilastik's stored vigra forests are
converted to a :class:`PackedForest`. It holds no Python objects, so it is saved in a
project file as arrays and loaded without unpickling anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PackedForest"]


@dataclass(frozen=True, eq=False)
class PackedForest:
    """All trees of a forest, concatenated node by node.

    Attributes
    ----------
    feature : ndarray of int32, shape (n_nodes,)
        Feature column tested at a split node; -1 at leaves.
    threshold : ndarray of float32, shape (n_nodes,)
        Split rule: go to ``left`` if ``x[feature] < threshold`` (strictly less), else ``right``.
        Thresholds are float32 so that float32 features compare exactly; converters round
        their source thresholds so that the rule gives the same decisions as the source forest.
    left, right : ndarray of int32, shape (n_nodes,)
        Global node index of the children; -1 at leaves.
    value : ndarray of float32, shape (n_nodes, n_outputs)
        At leaves, the tree's class distribution over the output channels (rows sum to 1;
        channel k is class k+1). Rows of split nodes are ignored.
    roots : ndarray of int64, shape (n_trees,)
        Node index of each tree's root.
    n_features : int
        Number of feature columns the forest expects.

    Notes
    -----
    The forest's probability for a pixel is the mean over trees of ``value`` at the leaf the
    pixel reaches, i.e. every tree has the same weight (ilastik's and scikit-learn's rule).
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    n_features: int

    @property
    def n_trees(self) -> int:
        """Number of trees."""
        return int(self.roots.shape[0])

    @property
    def n_outputs(self) -> int:
        """Number of output channels (classes)."""
        return int(self.value.shape[1])
