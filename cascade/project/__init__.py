"""Project files: cascade's own project file (no pickle), and ilastik ``.ilp`` import (read-only).

:func:`open_project` opens either kind as a :class:`~cascade.pipeline.Cascade`; retraining an
``.ilp`` from its stored labels (:func:`cascade.training.retrain_ilp`) is imported only when asked for.
"""

from __future__ import annotations

from ._describe import describe_cascade
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
    "IlpProject",
    "IlpStage",
    "LabelBlock",
    "SparseLabels",
    "cascade_from_ilp",
    "describe_cascade",
    "describe_ilp",
    "has_object_stage",
    "is_cascade_project",
    "load_cascade",
    "load_object_stage",
    "open_project",
    "read_ilp",
    "read_labels",
    "read_lane_data",
    "save_cascade",
]
