"""Random forests: training with scikit-learn, a packed array format, and a fast evaluator.

- :func:`train_forest` trains ilastik's default classifier (100 fully grown Gini trees),
  seeded and reproducible, optionally with out-of-bag probabilities for Autocontext.
- :func:`pack_sklearn` converts a fitted scikit-learn forest to a :class:`PackedForest`,
  the plain-array format cascade stores and evaluates.
- :func:`predict_proba` evaluates a :class:`PackedForest` on a (n_pixels, n_features) chunk
  with a numba kernel that releases the GIL, so dask can run chunks in parallel threads.
"""

from __future__ import annotations

from ._predict import predict_proba
from ._sklearn import pack_sklearn
from ._train import TrainedForest, train_forest
from .packed import PackedForest

__all__ = ["PackedForest", "TrainedForest", "pack_sklearn", "predict_proba", "train_forest"]
