"""ilastik's Object Classification, blockwise: objects, object features, object classes.

See ``docs/objects.md`` for the design and ``cascade/objects/model.py`` for the data handed
between the steps.
"""

from .blockwise import blockwise_image
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
from .pipeline import OBJECT_IMAGES, ObjectResult, classify_objects, find_objects, object_image
from .table import table_path, write_table

__all__ = [
    "DEFAULT_FEATURES",
    "OBJECT_IMAGES",
    "OBJECT_SOURCES",
    "FeatureTable",
    "ObjectFeatureSelection",
    "ObjectResult",
    "ObjectStage",
    "Objects",
    "ThresholdSettings",
    "blockwise_image",
    "classify_objects",
    "feature_matrix",
    "find_objects",
    "object_image",
    "object_predictions",
    "object_probabilities",
    "paint",
    "table_path",
    "train_object_forest",
    "write_table",
]
