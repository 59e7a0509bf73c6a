"""Project files: cascade's own project file (no pickle), and ilastik ``.ilp`` import (read-only).

:func:`open_project` opens either kind as a :class:`~cascade.pipeline.Cascade`; retraining an
``.ilp`` from its stored labels (:func:`cascade.training.retrain_ilp`) is imported only when asked for.
ilastik Object Classification projects open with :func:`open_object_project` (an
:class:`ObjectProject`); ``open_project`` refuses them in one line, and vice versa.
"""

from __future__ import annotations

from ._describe import describe_cascade
from ._ilp_describe import describe_object_ilp
from ._ilp_object_cache import stored_label_image, stored_probabilities, stored_region_features
from ._ilp_objects import IlpObjectProject, read_object_ilp
from ._object_project import ObjectProject, is_object_project, open_object_project
from .convert import cascade_from_ilp, open_project
from .ilp import IlpLane, IlpProject, IlpStage, LabelBlock, describe_ilp, read_ilp, read_lane_data
from .native import (
    MAX_LABEL,
    SparseLabels,
    has_object_stage,
    is_cascade_project,
    load_cascade,
    load_object_stage,
    read_labels,
    save_cascade,
)

__all__ = [
    "MAX_LABEL",
    "IlpLane",
    "IlpObjectProject",
    "IlpProject",
    "IlpStage",
    "LabelBlock",
    "ObjectProject",
    "SparseLabels",
    "cascade_from_ilp",
    "describe_cascade",
    "describe_ilp",
    "describe_object_ilp",
    "has_object_stage",
    "is_cascade_project",
    "is_object_project",
    "load_cascade",
    "load_object_stage",
    "open_object_project",
    "open_project",
    "read_ilp",
    "read_labels",
    "read_lane_data",
    "read_object_ilp",
    "save_cascade",
    "stored_label_image",
    "stored_probabilities",
    "stored_region_features",
]
