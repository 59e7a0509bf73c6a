"""ilastik's export sources: their names, matching ``--export_source``, and the array of each.

Sources are named as in ilastik: for a one-stage project ``Probabilities``, ``Simple
Segmentation``, ``Uncertainty``, ``Features``, ``Labels``, ``Input``; for an N-stage
Autocontext the same names with `` Stage k`` for k = N..1 (last stage first), then
``Probabilities All Stages``. Names match case-insensitively; the misspelling
``Propabilities All Stages`` that ilastik's documentation shows is accepted too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dask.array as da
import numpy as np

from ..errors import ExportError
from ..pipeline import StageResult

__all__ = [
    "OBJECT_SOURCE_NAMES",
    "ExportSource",
    "resolve_object_sources",
    "resolve_sources",
    "source_array",
    "source_names",
]

_KINDS = ("Probabilities", "Simple Segmentation", "Uncertainty", "Features", "Labels", "Input")
#: ilastik's export sources of Object Classification, in its order (index 0 the default); the last
#: two only in the Pixel Classification + Object Classification workflow.
OBJECT_SOURCE_NAMES = (
    "Object Predictions",
    "Object Probabilities",
    "Blockwise Object Predictions",
    "Blockwise Object Probabilities",
    "Object Identities",
    "Pixel Probabilities",
    "Simple Segmentation",
)


@dataclass(frozen=True)
class ExportSource:
    """One exportable result: ``kind`` (e.g. ``"Probabilities"``) of ``stage`` (1-based; 0 = all)."""

    name: str
    kind: str
    stage: int


def source_names(n_stages: int) -> list[str]:
    """ilastik's export source names in its own order (index 0 is the default).

    Parameters
    ----------
    n_stages : int
        Stages of the project.

    Returns
    -------
    list of str
        The names, e.g. ``["Probabilities", "Simple Segmentation", ...]``.
    """
    return [s.name for s in _sources(n_stages)]


def _sources(n_stages: int) -> list[ExportSource]:
    if n_stages == 1:
        return [ExportSource(kind, kind, 1) for kind in _KINDS]
    out = [ExportSource(f"{kind} Stage {k}", kind, k) for k in range(n_stages, 0, -1) for kind in _KINDS]
    out.append(ExportSource("Probabilities All Stages", "Probabilities", 0))
    return out


def resolve_sources(names: Sequence[str] | None, n_stages: int) -> list[ExportSource]:
    """Match ``--export_source`` values (case-insensitive) to sources; default: index 0.

    Parameters
    ----------
    names : sequence of str or None
        The requested names (None or empty: the default).
    n_stages : int
        Stages of the project.

    Returns
    -------
    list of ExportSource
        The requested sources, each once, in the order given.

    Raises
    ------
    ExportError
        For an unknown name, listing the valid ones.
    """
    available = _sources(n_stages)
    if not names:
        return [available[0]]
    lookup = {s.name.lower(): s for s in available}
    if n_stages > 1:
        lookup["propabilities all stages"] = lookup["probabilities all stages"]
    chosen = []
    for name in names:
        key = " ".join(name.split()).lower()
        if key not in lookup:
            raise ExportError(
                f"unknown export source {name!r}; this project offers: {', '.join(s.name for s in available)}"
            )
        if lookup[key] not in chosen:
            chosen.append(lookup[key])
    return chosen


def source_array(
    source: ExportSource, results: Sequence[StageResult], labels: da.Array | None = None
) -> da.Array:
    """The dask array of one source, in internal axis order.

    Parameters
    ----------
    source : ExportSource
        The export source.
    results : sequence of StageResult
        The stage outputs of one input (:func:`cascade.pipeline.predict`).
    labels : dask array, optional
        Label image for the ``Labels`` source (default: all zero, as batch inputs carry none).

    Returns
    -------
    dask array
        The source's data.
    """
    if source.stage == 0:
        every: da.Array = da.concatenate([r.probabilities for r in results], axis=-1)
        return every
    if source.kind == "Input":
        # since ilastik 1.4.1b21 "Input Stage k" is the raw image for every stage
        return results[0].stage_input
    if source.kind == "Labels":
        # batch inputs carry no labels (as in ilastik): an all-zero uint8 image
        shape = results[0].probabilities.shape[:-1] + (1,)
        chunks = results[0].probabilities.chunks[:-1] + ((1,),)
        return labels if labels is not None else da.zeros(shape, dtype=np.uint8, chunks=chunks)
    result = results[source.stage - 1]
    if source.kind == "Probabilities":
        return result.probabilities
    if source.kind == "Simple Segmentation":
        return result.segmentation
    if source.kind == "Uncertainty":
        return result.uncertainty
    return result.features


def resolve_object_sources(names: Sequence[str] | None, pixel_stage: bool) -> list[ExportSource]:
    """Match ``--export_source`` values of an Object Classification project (case-insensitive).

    Parameters
    ----------
    names : sequence of str or None
        The requested names (None or empty: ``Object Predictions``, ilastik's default).
    pixel_stage : bool
        Whether the project has a pixel classification stage (PC+OC), which adds ``Pixel
        Probabilities`` and ``Simple Segmentation``.

    Returns
    -------
    list of ExportSource
        The requested sources (``kind`` = ``name``), each once, in the order given.

    Raises
    ------
    ExportError
        For an unknown name, listing the valid ones.
    """
    offered = OBJECT_SOURCE_NAMES if pixel_stage else OBJECT_SOURCE_NAMES[:5]
    available = [ExportSource(name, name, 0) for name in offered]
    if not names:
        return [available[0]]
    lookup = {s.name.lower(): s for s in available}
    chosen = []
    for name in names:
        key = " ".join(name.split()).lower()
        if key not in lookup:
            raise ExportError(f"unknown export source {name!r}; this project offers: {', '.join(offered)}")
        if lookup[key] not in chosen:
            chosen.append(lookup[key])
    return chosen
