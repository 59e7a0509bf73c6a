"""Random forests: training with scikit-learn, a packed array format, and a fast evaluator.

- :func:`train_forest` trains ilastik's default classifier (100 fully grown Gini trees),
  seeded and reproducible, optionally with out-of-bag probabilities for Autocontext.
- :func:`pack_sklearn` converts a fitted scikit-learn forest to a :class:`PackedForest`,
  the plain-array format cascade stores and evaluates.
- :func:`predict_proba` evaluates a :class:`PackedForest` on a (n_pixels, n_features) chunk
  with a numba kernel that releases the GIL, so dask can run chunks in parallel threads.

The training modules are imported on first use of their names: predicting needs neither.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._predict import predict_proba
from .packed import PackedForest

if TYPE_CHECKING:
    from ._sklearn import pack_sklearn
    from ._train import TrainedForest, train_forest

__all__ = [
    "MAX_SEED",
    "MAX_TREES",
    "PackedForest",
    "TrainedForest",
    "pack_sklearn",
    "predict_proba",
    "train_forest",
]

#: Largest random seed (scikit-learn's ``random_state`` is a 32-bit unsigned integer).
MAX_SEED = 2**32 - 1
#: Largest number of trees per forest (node and tree indices are stored as 32-bit integers).
MAX_TREES = 2**31 - 1

#: name -> module, for the names imported on first use
_LAZY = {"TrainedForest": "._train", "train_forest": "._train", "pack_sklearn": "._sklearn"}


def __getattr__(name: str) -> Any:
    """Import a training name from its module on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value
