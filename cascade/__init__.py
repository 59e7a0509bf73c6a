"""cascade: ilastik's Autocontext (cascaded pixel classification) and headless mode on Dask.

The public API, imported on first use (``import cascade`` alone imports neither dask nor numpy)::

    import cascade

    model = cascade.fit([cascade.TrainingImage(raw, "yxc", (labels, labels))], stages)
    results = cascade.predict(model, new_raw, axes="yxc")  # lazy dask arrays, one result per stage
    with cascade.execution("local"):
        cascade.run_batch("project.ilp", ["a.h5", "b.h5"], cascade.BatchOptions())

Each name is documented where it lives: :mod:`cascade.pipeline` (``Cascade``, ``Stage``,
``predict``), :mod:`cascade.training` (``fit``, ``TrainingImage``), :mod:`cascade.features`
(``FeatureSelection``, ``parse_feature_selection``), :mod:`cascade.project` (``open_project``,
``save_cascade``), :mod:`cascade.io` (``open_image``, ``write_image``), :mod:`cascade.batch`
(``run_batch``, ``BatchOptions``), :mod:`cascade.cluster` (``execution``) and :mod:`cascade.errors`
(``CascadeError``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import CascadeError

__version__ = "0.1.0"

#: Public name -> the subpackage or module that defines it.
_WHERE = {
    "BatchOptions": "batch",
    "Cascade": "pipeline",
    "FeatureSelection": "features",
    "Stage": "pipeline",
    "TrainingImage": "training",
    "execution": "cluster",
    "fit": "training",
    "open_image": "io",
    "open_project": "project",
    "parse_feature_selection": "features",
    "predict": "pipeline",
    "run_batch": "batch",
    "save_cascade": "project",
    "write_image": "io",
}

__all__ = [
    "BatchOptions",
    "Cascade",
    "CascadeError",
    "FeatureSelection",
    "Stage",
    "TrainingImage",
    "__version__",
    "execution",
    "fit",
    "open_image",
    "open_project",
    "parse_feature_selection",
    "predict",
    "run_batch",
    "save_cascade",
    "write_image",
]

if TYPE_CHECKING:
    from .batch import BatchOptions, run_batch
    from .cluster import execution
    from .features import FeatureSelection, parse_feature_selection
    from .io import open_image, write_image
    from .pipeline import Cascade, Stage, predict
    from .project import open_project, save_cascade
    from .training import TrainingImage, fit


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (module ``__getattr__``, PEP 562).

    Parameters
    ----------
    name : str
        An attribute of ``cascade``.

    Returns
    -------
    object
        The public object of that name.

    Raises
    ------
    AttributeError
        For a name that is not part of the public API.
    """
    if name not in _WHERE:
        raise AttributeError(f"module 'cascade' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    """The module's names, public ones included before their first use.

    Returns
    -------
    list of str
        Sorted attribute names.
    """
    return sorted(set(globals()) | set(__all__))
