"""Training: fit a cascade's forests (:mod:`.fitting`, cross-fitted by default: :mod:`.crossfit`),
read a training spec (:mod:`.spec`), and the ``cascade train`` run that saves a project
(:mod:`.run`), an ``.ilp``'s forests from its stored labels (:mod:`.retrain`);
:mod:`.scribbles` makes sparse labels. An object stage is trained by :mod:`.objects` (its spec
entry in :mod:`._object_spec`, its labels in :mod:`._object_labels`)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._object_labels import ObjectLabels, object_classes
from ._object_spec import OBJECT_FEATURE_SETS, ObjectSpec, object_feature_selection
from .fitting import TrainingImage, fit
from .retrain import ilp_training_images, retrain_ilp
from .run import check_project_target, run_training, simple_spec, with_simple_objects
from .scribbles import scribble_labels
from .spec import TrainingSpec, load_spec, load_training_images, parse_spec

if TYPE_CHECKING:
    from .objects import ObjectTraining, train_object_stage

__all__ = [
    "OBJECT_FEATURE_SETS",
    "ObjectLabels",
    "ObjectSpec",
    "ObjectTraining",
    "TrainingImage",
    "TrainingSpec",
    "check_project_target",
    "fit",
    "ilp_training_images",
    "load_spec",
    "load_training_images",
    "object_classes",
    "object_feature_selection",
    "parse_spec",
    "retrain_ilp",
    "run_training",
    "scribble_labels",
    "simple_spec",
    "train_object_stage",
    "with_simple_objects",
]

#: name -> module, for the names imported on first use (object training needs all of cascade.objects)
_LAZY = {"ObjectTraining": ".objects", "train_object_stage": ".objects"}


def __getattr__(name: str) -> Any:
    """Import an object-training name from its module on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value
