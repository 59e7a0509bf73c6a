"""ilastik's Object Classification, blockwise: objects, object features, object classes.

See ``docs/objects.md`` for the design and ``cascade/objects/model.py`` for the data handed
between the steps.
"""

from .components import label_components, objects_from_label_image, objects_from_segmentation
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
from .threshold import objects_from_probabilities, smooth_probabilities, threshold_labels

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
    "label_components",
    "object_features",
    "objects_from_label_image",
    "objects_from_probabilities",
    "objects_from_segmentation",
    "smooth_probabilities",
    "threshold_labels",
]
