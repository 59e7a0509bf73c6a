"""Training: fit a cascade's forests (:mod:`.fitting`, cross-fitted by default: :mod:`.crossfit`),
read a training spec (:mod:`.spec`), and the ``cascade train`` run that saves a project
(:mod:`.run`), an ``.ilp``'s forests from its stored labels (:mod:`.retrain`);
:mod:`.scribbles` makes sparse labels."""

from __future__ import annotations

from .fitting import TrainingImage, fit
from .retrain import ilp_training_images, retrain_ilp
from .run import check_project_target, run_training, simple_spec
from .scribbles import scribble_labels
from .spec import TrainingSpec, load_spec, load_training_images, parse_spec

__all__ = [
    "TrainingImage",
    "TrainingSpec",
    "check_project_target",
    "fit",
    "ilp_training_images",
    "load_spec",
    "load_training_images",
    "parse_spec",
    "retrain_ilp",
    "run_training",
    "scribble_labels",
    "simple_spec",
]
