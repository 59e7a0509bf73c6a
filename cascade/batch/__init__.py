"""Headless batch prediction: options, one plan per input, run-wide checks, and the run.

Read in this order: :mod:`.options` (what the command line asks), :mod:`.sources` (ilastik's export
sources), :mod:`.plan` (one input: open, check, build the lazy graph, write), :mod:`.checks`
(across inputs: distinct outputs, nothing overwritten, fingerprints), :mod:`.run` (:func:`run_batch`).
"""

from .options import ILASTIK_BLOCK_ROI, BatchOptions, block_chunks, parse_block_shape, with_project_settings
from .run import run_batch
from .sources import ExportSource, resolve_sources, source_array, source_names

__all__ = [
    "ILASTIK_BLOCK_ROI",
    "BatchOptions",
    "ExportSource",
    "block_chunks",
    "parse_block_shape",
    "resolve_sources",
    "run_batch",
    "source_array",
    "source_names",
    "with_project_settings",
]
