"""ilastik's Object Classification, blockwise: objects, object features, object classes.

See ``docs/objects.md`` for the design and ``cascade/objects/model.py`` for the data handed
between the steps.
"""

from .classify import (
    feature_matrix,
    object_predictions,
    object_probabilities,
    paint,
    train_object_forest,
)
from .model import (
    DEFAULT_FEATURES,
    OBJECT_SOURCES,
    FeatureTable,
    ObjectFeatureSelection,
    Objects,
    ObjectStage,
    ThresholdSettings,
)
from .table import table_path, write_table

__all__ = [
    "DEFAULT_FEATURES",
    "OBJECT_SOURCES",
    "FeatureTable",
    "ObjectFeatureSelection",
    "ObjectStage",
    "Objects",
    "ThresholdSettings",
    "feature_matrix",
    "object_predictions",
    "object_probabilities",
    "paint",
    "table_path",
    "train_object_forest",
    "write_table",
]
