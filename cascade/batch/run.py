"""Headless batch prediction: ilastik's ``--headless`` export loop on the dask engine.

For every input: open it lazily, put it in internal axis order, check it against the
project, build the lazy stage graph, and stream each requested export source to its
file chunk by chunk. Several export sources can be written in one run (ilastik needs one
run per source). Every input and every output is checked before the first one is computed.

Each stage is computed once per input: an autocontext's earlier stages, and any stage that
several export sources read, go into a scratch folder (``.cascade-scratch-*`` in the working
directory, so cluster workers share it) as zarr, slab by slab, and the exports read them
from there. Only the cutout and the halo later stages need are computed. The scratch folder
is removed when the run ends, except after an interruption: running the same command again
reuses the blocks it holds.

Before anything is computed, the run refuses outputs that would overwrite an input, a mask,
the project or another output, and locks every output and its scratch folder (see
``io._lock``): a second run on the same output refuses in one line instead of sharing (and
deleting) the first one's scratch folder.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from .._config import check_config
from ..errors import CascadeError, DataError
from ..io import (
    hold_locks,
    is_url,
    lock_path,
    make_parents,
    make_scratch,
    output_path,
    remove_if_empty,
)
from ..project import is_object_project, open_project
from .checks import _check_distinct, _check_overwrites, _fingerprint_base, _scratch_dir
from .options import BatchOptions, export_sources, refuse_object_options, with_project_settings
from .plan import _Job, _plan

__all__ = ["run_batch"]


def run_batch(
    project: str | Path,
    inputs: Sequence[str],
    options: BatchOptions,
    *,
    echo: Callable[[str], None] = print,
    start: Callable[[], AbstractContextManager[Any]] | None = None,
) -> list[str]:
    """Predict and export every input; returns the written paths.

    Everything that can be checked up front (project, options, inputs, axes, channel
    counts, output directories) is checked before anything is computed or written.

    Parameters
    ----------
    project : str or Path
        A ``.cascade`` project or an ilastik ``.ilp``; an Object Classification ``.ilp`` runs
        through :func:`cascade.batch.object_run.run_object_batch`.
    inputs : sequence of str
        Input images, in ilastik's path conventions.
    options : BatchOptions
        The export options (:meth:`BatchOptions.from_text` parses a command line's).
    echo : callable
        Called with one line per written output and per resumed one.
    start : callable, optional
        Called once every input and output is checked and locked, just before the first
        computation: the context manager it returns is held while computing (the CLI starts its
        scheduler there, so that a local cluster's workers start while the inputs are checked).

    Returns
    -------
    list of str
        The written files, in input order.

    Raises
    ------
    CascadeError
        A problem with the project, an input, an option or an output, named in one line; nothing
        is written then.
    """
    start = start or nullcontext
    if is_object_project(project):
        from .object_run import run_object_batch

        with start():
            return run_object_batch(project, inputs, options, echo=echo)
    ignored = refuse_object_options(options)
    if ignored:
        echo(ignored)
    if not inputs:
        raise DataError("no input files given")
    check_config()
    retrain = options.retrain or options.tree_count is not None  # ilastik's --tree-count retrains
    cascade = open_project(project, retrain=retrain, trees=options.retrain_trees)
    options = with_project_settings(options, cascade, os.path.dirname(os.path.abspath(project)))
    sources = export_sources(options, cascade)
    if options.prediction_masks and len(options.prediction_masks) != len(inputs):
        raise DataError(f"{len(inputs)} input(s) but {len(options.prediction_masks)} prediction mask(s)")
    masks: list[str | None] = list(options.prediction_masks) or [None] * len(inputs)
    base = _fingerprint_base(project, options)
    home = os.path.dirname(os.path.abspath(project))  # {dataset_dir} of URL inputs, as in ilastik
    jobs = [_plan(cascade, path, mask, options, sources, base, home) for path, mask in zip(inputs, masks)]
    _check_distinct(jobs)
    _check_overwrites(jobs, project, str(options.output_format))
    scratch = _scratch_dir(base, inputs) if any(job.needs_scratch for job in jobs) else None
    containers = [output_path(e.target, str(options.output_format)) for job in jobs for e in job.exports]
    local = [c for c in containers if not is_url(c)]  # an object store has no file locks
    # every check passed: create the output folders (as ilastik does), which hold the locks
    created = make_parents([lock_path(c) for c in local])
    try:
        # one run per output (and per scratch folder) at a time: a second run refuses here
        with hold_locks(local), hold_locks([scratch] if scratch else [], what="using"), start():
            return _write_all(jobs, scratch, echo)
    except BaseException:
        remove_if_empty(created)
        raise


def _write_all(jobs: Sequence[_Job], scratch: str | None, echo: Callable[[str], None]) -> list[str]:
    """Compute and write every job, with the locks held; the scratch folder is removed at the end."""
    if scratch is not None:
        scratch = make_scratch(scratch)
    try:
        written: list[str] = []
        for job in jobs:
            start = time.perf_counter()
            paths = job.write(scratch, echo)
            written.extend(paths)
            shown = ", ".join(dict.fromkeys(paths))  # several datasets of one file: name it once
            echo(f"{shown}  ({time.perf_counter() - start:.1f} s)")
    except CascadeError:
        if scratch is not None:  # bad input or output: nothing worth resuming
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    # kept after an interruption or a crash, so that the same command resumes from it
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    return written
