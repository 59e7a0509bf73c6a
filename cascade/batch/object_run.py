"""Headless batch export of ilastik Object Classification projects (``cascade --headless --project OC.ilp``).

For every ``--raw_data`` input (with its ``--prediction_maps`` / ``--segmentation_image`` /
``--label_image``): everything is checked first (:mod:`.object_plan`); then the objects, their
features and probabilities are computed once per input (the per-object tables are the only
global data) and every requested export source is painted from them chunk by chunk and
written like a pixel export (formats, cutout, dtype, axis order, placeholders, resume, locks);
``--table_filename`` writes ilastik's object table. The PC+OC workflow computes its pixel
probabilities with cascade's own engine first.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dask.array as da

from .._config import check_config
from ..errors import CascadeError, DataError, ExportError
from ..io import (
    check_overwrites,
    export_error,
    hold_locks,
    is_url,
    lock_path,
    make_parents,
    make_scratch,
    output_path,
    remove_if_empty,
    resumable_blocks,
    write_image,
)
from ..objects import (
    ObjectResult,
    TableImages,
    blockwise_image,
    classify_objects,
    object_image,
    table_path,
    write_table,
)
from ..pipeline import StageResult, predict
from ..progress import progress_label
from ..project import ObjectProject, open_object_project
from .checks import _check_distinct, _fingerprint_base, _scratch_dir, _slice_offset
from .object_plan import (
    NEEDS_CLASSIFIER,
    ObjectExport,
    ObjectInput,
    atlas_inputs,
    open_object_input,
    plan_exports,
    prepare_object_export,
    second_inputs,
    table_target,
)
from .options import BatchOptions, with_project_settings
from .sources import resolve_object_sources

__all__ = ["run_object_batch"]

_PIXEL_SOURCES = ("Pixel Probabilities", "Simple Segmentation")
#: Sources painted from the whole-image object tables.
_WHOLE_CLASSES = ("Object Predictions", "Object Probabilities")
#: Sources that read the object label image.
_OBJECT_CLASSES = (*_WHOLE_CLASSES, "Object Identities")


@dataclass(frozen=True)
class _ObjectJob:
    """The checked exports (and table) of one input, ready to compute and write."""

    project: ObjectProject
    input: ObjectInput
    options: BatchOptions
    exports: tuple[ObjectExport, ...]
    table: str | None

    @property
    def path(self) -> str:
        return self.input.path

    @property
    def _wants_objects(self) -> bool:
        return self.table is not None or any(e.source in _OBJECT_CLASSES for e in self.exports)

    @property
    def _label_readers(self) -> int:
        """How often the object label image is read: feature passes, exports, table crops."""
        tables = self.table is not None or any(e.source in _WHOLE_CLASSES for e in self.exports)
        crops = self.table is not None and table_path(self.table) == self.table  # HDF5
        return 2 * tables + int(crops) + sum(e.source in _OBJECT_CLASSES for e in self.exports)

    def _pixels(self, scratch: str) -> list[StageResult] | None:
        if self.project.pixels is None:
            return None
        item = self.input
        last = len(self.project.pixels.stages) - 1
        # the objects read the pixel stage twice (the labelling scan, then the labels), exports again
        readers = 2 * self._wants_objects + sum(not e.source.startswith("Object") for e in self.exports)
        keep = {last} if readers > 1 else set()
        return predict(
            self.project.pixels, item.raw, axes=item.axes, chunks=item.chunks, scratch=scratch, keep=keep
        )

    def _objects(self, pixels: list[StageResult] | None, scratch: str) -> ObjectResult:
        item = self.input
        source = pixels[-1].probabilities if pixels is not None else item.second_data
        if source is None:
            raise DataError(f"{item.path}: no input to find objects in")
        tables = self.table is not None or any(e.source in _WHOLE_CLASSES for e in self.exports)
        keep = scratch if self._label_readers > 1 else None
        return classify_objects(
            self.project.stage,
            item.raw,
            item.axes,
            source,
            item.axes,
            features=tables,
            scratch=keep,
            atlas=item.atlas_data,
        )

    def _image(self, name: str, result: ObjectResult | None, pixels: list[StageResult] | None) -> da.Array:
        if name == "Pixel Probabilities" and pixels is not None:
            return pixels[-1].probabilities
        if name == "Simple Segmentation" and pixels is not None:
            return pixels[-1].segmentation
        if name.startswith("Blockwise "):
            source = pixels[-1].probabilities if pixels is not None else self.input.second_data
            if source is None:
                raise DataError(f"{self.path}: no input to find objects in")
            return blockwise_image(self.project.stage, self.input.raw, source, self.input.axes, name)
        if result is None:
            raise DataError(f"{self.path}: the objects were not computed")
        return object_image(result, name)[0]

    def write(self, scratch: str, echo: Callable[[str], None]) -> list[str]:
        """Compute the objects once, then stream every export (and the table) to disk.

        The pixel stage (PC+OC) and the object label image are computed once into ``scratch``
        (or memory) when several passes or exports read them.
        """
        try:
            pixels = self._pixels(scratch)
            result = self._objects(pixels, scratch) if self._wants_objects else None
        except OSError as err:
            raise export_error(err, scratch) from err
        written: list[str] = []
        fmt = str(self.options.output_format)
        for export in self.exports:
            prepared = prepare_object_export(
                self._image(export.source, result, pixels), self.input, self.options
            )
            container = output_path(export.target, fmt)
            done = resumable_blocks(container, export.fingerprint)
            if done:
                echo(f"resuming {container}: {done} block(s) were written by an interrupted run")
            with progress_label(os.path.basename(container)):
                written += write_image(
                    prepared.data,
                    export.target,
                    format=fmt,
                    axes=prepared.axes,
                    internal_path=export.internal_path,
                    slice_offset=_slice_offset(prepared),
                    resume=export.fingerprint,
                )
        if self.table is not None and result is not None:
            written.append(self._write_table(result))
        return written

    def _write_table(self, result: ObjectResult) -> str:
        stage = self.project.stage
        settings = stage.table_settings
        wanted = settings.get("selected features")
        images = TableImages(
            result.objects.labels,
            result.objects.axes,
            self.input.raw,
            margin=int(settings.get("margin") or 0),
            include_raw=bool(settings.get("include raw", False)),
            compression=dict(settings.get("compression") or {}),
        )
        # batch inputs carry no object labels (as in ilastik): every "User Label" is "0"
        return write_table(
            str(self.table),
            result.tables,
            selection=stage.features,
            class_names=stage.class_names,
            probabilities=result.probabilities,
            wanted=list(wanted) if wanted else None,
            images=images,
        )


def _check_classifier(project: ObjectProject, names: Sequence[str]) -> None:
    if project.stage.forest is not None:
        return
    needing = [n for n in names if n in NEEDS_CLASSIFIER]
    if needing:
        raise ExportError(
            f"{needing[0]} need a trained object classifier, and {project.path.name} has neither an object "
            "forest nor object labels; train it in ilastik, or export Object Identities"
        )


def _plan_all(
    project: ObjectProject, inputs: Sequence[str], options: BatchOptions, base: str
) -> list[_ObjectJob]:
    """Open and check every input and plan its exports and table (nothing computed or written)."""
    if options.prediction_masks:
        raise ExportError("prediction masks apply to Pixel Classification projects only (as in ilastik)")
    names = [] if options.table_only else list(options.export_sources)
    sources = [] if options.table_only else resolve_object_sources(names, project.pixels is not None)
    _check_classifier(project, [s.name for s in sources])
    jobs = []
    pairs = zip(inputs, second_inputs(project, options, len(inputs)), strict=True)
    for (raw, second), atlas in zip(pairs, atlas_inputs(options, len(inputs)), strict=True):
        item = open_object_input(project, raw, second, options, atlas)
        exports = plan_exports(project, item, options, sources, base)
        jobs.append(_ObjectJob(project, item, options, exports, table_target(project, item, options)))
    return jobs


def _check_outputs(jobs: Sequence[_ObjectJob], project: str | Path, fmt: str) -> list[str]:
    """Distinct outputs and tables, none overwriting an input or the project; the files to lock."""
    _check_distinct(jobs)
    images = {os.path.realpath(o) for job in jobs for e in job.exports for o in e.outputs}
    images |= {os.path.realpath(output_path(e.target, fmt)) for job in jobs for e in job.exports}
    tables: dict[str, str] = {}
    for job in jobs:
        if job.table is None:
            continue
        final = os.path.realpath(table_path(job.table))
        if final in tables:
            raise ExportError(
                f"the tables of {tables[final]} and {job.path} would both be written to {final}; "
                "put {nickname} in --table_filename"
            )
        if final in images:  # a table file is written whole: it would replace the image export
            raise ExportError(
                f"the table of {job.path} would replace the image export {final}; "
                "give --table_filename another name"
            )
        tables[final] = job.path
    reads = [(str(project), f"the project {project}")]
    reads += [(name, f"the input {name}") for job in jobs for name in job.input.files]
    outputs = [(o, output_path(e.target, fmt)) for job in jobs for e in job.exports for o in e.outputs]
    outputs += [(t, t) for t in tables]
    check_overwrites(outputs, reads)
    return [output_path(e.target, fmt) for job in jobs for e in job.exports] + list(tables)


def run_object_batch(
    project: str | Path,
    inputs: Sequence[str],
    options: BatchOptions,
    *,
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Classify the objects of every input with an ilastik OC project and export the chosen results.

    Parameters
    ----------
    project : str or Path
        An ilastik Object Classification ``.ilp`` (any of its four workflows).
    inputs : sequence of str
        The ``--raw_data`` images; their second inputs are in ``options.object_inputs``.
    options : BatchOptions
        The export options.
    echo : callable
        Called with one line per written input.

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
    if not inputs:
        raise DataError("no input files given (--raw_data)")
    check_config()
    opened = open_object_project(project, retrain=options.retrain, trees=options.retrain_trees)
    options = with_project_settings(options, opened, os.path.dirname(os.path.abspath(project)))
    base = _fingerprint_base(project, options)
    jobs = _plan_all(opened, inputs, options, base)
    containers = _check_outputs(jobs, project, str(options.output_format))
    local = [c for c in containers if not is_url(c)]
    scratch = _scratch_dir(base, inputs)
    created = make_parents([lock_path(c) for c in local])
    try:
        with hold_locks(local), hold_locks([scratch], what="using"):
            return _write_jobs(jobs, make_scratch(scratch), echo)
    except BaseException:
        remove_if_empty(created)
        raise


def _write_jobs(jobs: Sequence[_ObjectJob], scratch: str, echo: Callable[[str], None]) -> list[str]:
    """Write every job with the locks held; the scratch folder is kept only after an interruption."""
    written: list[str] = []
    try:
        for job in jobs:
            start = time.perf_counter()
            paths = job.write(scratch, echo)
            written.extend(paths)
            echo(f"{', '.join(dict.fromkeys(paths))}  ({time.perf_counter() - start:.1f} s)")
    except CascadeError:
        shutil.rmtree(scratch, ignore_errors=True)  # bad input or output: nothing worth resuming
        raise
    shutil.rmtree(scratch, ignore_errors=True)
    return written
