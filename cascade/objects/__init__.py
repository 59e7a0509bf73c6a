"""ilastik's Object Classification, blockwise: objects, object features, object classes.

See ``docs/objects.md`` for the design and ``cascade/objects/model.py`` for the data handed
between the steps.
"""

from ._crops import TableImages
from .blockwise import blockwise_image
from .classify import (
    feature_matrix,
    object_predictions,
    object_probabilities,
    paint,
    train_object_forest,
)
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
from .pipeline import (
    OBJECT_IMAGES,
    ObjectResult,
    atlas_mapping,
    classify_objects,
    find_objects,
    object_image,
)
from .table import table_path, write_table
from .threshold import objects_from_probabilities, smooth_probabilities, threshold_labels

__all__ = [
    "DEFAULT_FEATURES",
    "OBJECT_IMAGES",
    "OBJECT_SOURCES",
    "FeatureColumns",
    "FeatureTable",
    "ObjectFeatureSelection",
    "ObjectResult",
    "ObjectStage",
    "Objects",
    "TableImages",
    "ThresholdSettings",
    "atlas_mapping",
    "blockwise_image",
    "classify_objects",
    "feature_matrix",
    "feature_names",
    "find_objects",
    "label_components",
    "object_features",
    "object_image",
    "object_predictions",
    "object_probabilities",
    "objects_from_label_image",
    "objects_from_probabilities",
    "objects_from_segmentation",
    "paint",
    "smooth_probabilities",
    "table_path",
    "threshold_labels",
    "train_object_forest",
    "write_table",
]
