"""ilastik's Object Classification, blockwise: objects, object features, object classes.

See ``docs/objects.md`` for the design and ``cascade/objects/model.py`` for the data handed
between the steps.
"""

from .features import FeatureColumns, feature_names, object_features
from .model import (
    DEFAULT_FEATURES,
    OBJECT_SOURCES,
    FeatureTable,
    ObjectFeatureSelection,
    Objects,
    ObjectStage,
    ThresholdSettings,
)

__all__ = [
    "DEFAULT_FEATURES",
    "OBJECT_SOURCES",
    "FeatureColumns",
    "FeatureTable",
    "ObjectFeatureSelection",
    "ObjectStage",
    "Objects",
    "ThresholdSettings",
    "feature_names",
    "object_features",
]
