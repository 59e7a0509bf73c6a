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

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ._config import check_config
from .axes import to_internal
from .errors import CascadeError, DataError, ExportError, FeatureSelectionError
from .export import (
    ExportSource,
    PreparedExport,
    format_filename,
    format_placeholders,
    parse_cutout,
    parse_range,
    placeholders,
    prepare_export,
    resolve_sources,
    source_array,
)
from .io import FORMATS, Image, check_target, open_image, output_path, write_image
from .io._atomic import export_error, make_parents, remove_if_empty
from .io._internal import dataset_parts
from .io._lock import hold_locks, lock_path
from .io._overwrite import check_overwrites
from .io._remote import is_url
from .io._resume import resumable_blocks
from .pipeline import Cascade, StageResult, predict
from .progress import progress_label
from .project.convert import open_project
from .scratch import make_scratch

__all__ = ["BatchOptions", "run_batch"]

DEFAULT_FILENAME_FORMAT = "{dataset_dir}/{nickname}_{result_type}"


@dataclass(frozen=True)
class BatchOptions:
    """ilastik's headless export options (text values as given on the command line)."""

    export_sources: tuple[str, ...] = ()
    output_format: str | None = None
    output_filename_format: str | None = None
    output_internal_path: str | None = None
    cutout_subregion: str | None = None
    export_dtype: str | None = None
    output_axis_order: str | None = None
    pipeline_result_drange: str | None = None
    export_drange: str | None = None
    input_axes: str | None = None
    stack_along: str = "z"
    prediction_masks: tuple[str, ...] = ()
    chunks: tuple[int, ...] | None = None
    block_shape: str | None = None
    memory_per_task: int | None = None
    retrain: bool = False
    retrain_trees: int = 100


@dataclass(frozen=True)
class _Parsed:
    sources: list[ExportSource]
    cutout: tuple[tuple[int | None, ...], tuple[int | None, ...]] | None
    pipeline_range: tuple[float, float] | None
    export_range: tuple[float, float] | None


def with_project_settings(options: BatchOptions, cascade: Cascade) -> BatchOptions:
    """Fill options not given on the command line from the project's stored export settings,
    then from ilastik's defaults (compressed hdf5, ``{dataset_dir}/{nickname}_{result_type}``)."""
    stored = cascade.export_settings

    def pick(value: Any, key: str, default: Any = None) -> Any:
        return value if value is not None else stored.get(key, default)

    cutout = options.cutout_subregion
    if cutout is None and ("RegionStart" in stored or "RegionStop" in stored):
        starts, stops = stored.get("RegionStart"), stored.get("RegionStop")
        if starts and stops:
            cutout = str([tuple(starts), tuple(stops)])
    pipeline_range, export_range = options.pipeline_result_drange, options.export_drange
    if pipeline_range is None and "InputMin" in stored and "InputMax" in stored:
        pipeline_range = f"({stored['InputMin']}, {stored['InputMax']})"
    if export_range is None and "ExportMin" in stored and "ExportMax" in stored:
        export_range = f"({stored['ExportMin']}, {stored['ExportMax']})"
    return replace(
        options,
        output_format=pick(options.output_format, "OutputFormat", "compressed hdf5"),
        output_filename_format=pick(
            options.output_filename_format, "OutputFilenameFormat", DEFAULT_FILENAME_FORMAT
        ),
        output_internal_path=pick(options.output_internal_path, "OutputInternalPath", "exported_data"),
        export_dtype=pick(options.export_dtype, "ExportDtype"),
        output_axis_order=pick(options.output_axis_order, "OutputAxisOrder"),
        cutout_subregion=cutout,
        pipeline_result_drange=pipeline_range,
        export_drange=export_range,
    )


def _parse(options: BatchOptions, cascade: Cascade) -> _Parsed:
    if str(options.output_format).lower() not in {f.lower() for f in FORMATS}:
        raise ExportError(
            f"unknown output format {options.output_format!r}; choose from: {', '.join(FORMATS)}"
        )
    if options.prediction_masks and len(cascade.stages) > 1:
        raise ExportError("prediction masks apply to Pixel Classification projects only (as in ilastik)")
    fmt = str(options.output_format).lower()
    internal = str(options.output_internal_path)
    if (fmt.endswith(("hdf5", "n5")) or fmt == "zarr") and "{" not in internal:
        # with placeholders it is checked once they are filled in (still before anything is computed)
        dataset_parts(internal, "the output", fmt)
    return _Parsed(
        sources=resolve_sources(options.export_sources, len(cascade.stages)),
        cutout=parse_cutout(options.cutout_subregion) if options.cutout_subregion else None,
        pipeline_range=(
            parse_range(options.pipeline_result_drange, "pipeline result range")
            if options.pipeline_result_drange
            else None
        ),
        export_range=parse_range(options.export_drange, "export range") if options.export_drange else None,
    )


def run_batch(
    project: str | Path,
    inputs: Sequence[str],
    options: BatchOptions,
    *,
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Predict and export every input; returns the written paths.

    Everything that can be checked up front (project, options, inputs, axes, channel
    counts, output directories) is checked before anything is computed or written.
    """
    if not inputs:
        raise DataError("no input files given")
    check_config()
    cascade = open_project(project, retrain=options.retrain, trees=options.retrain_trees)
    options = with_project_settings(options, cascade)
    parsed = _parse(options, cascade)
    if options.prediction_masks and len(options.prediction_masks) != len(inputs):
        raise DataError(f"{len(inputs)} input(s) but {len(options.prediction_masks)} prediction mask(s)")
    masks: list[str | None] = list(options.prediction_masks) or [None] * len(inputs)
    base = _fingerprint_base(project, options)
    home = os.path.dirname(os.path.abspath(project))  # {dataset_dir} of URL inputs, as in ilastik
    jobs = [_plan(cascade, path, mask, options, parsed, base, home) for path, mask in zip(inputs, masks)]
    _check_distinct(jobs)
    _check_overwrites(jobs, project, str(options.output_format))
    scratch = _scratch_dir(base, inputs) if any(job.needs_scratch for job in jobs) else None
    containers = [output_path(e.target, str(options.output_format)) for job in jobs for e in job.exports]
    local = [c for c in containers if not is_url(c)]  # an object store has no file locks
    # every check passed: create the output folders (as ilastik does), which hold the locks
    created = make_parents([lock_path(c) for c in local])
    try:
        # one run per output (and per scratch folder) at a time: a second run refuses here
        with hold_locks(local), hold_locks([scratch] if scratch else [], what="using"):
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


@dataclass(frozen=True)
class _Export:
    source: str
    prepared: PreparedExport
    target: str
    internal_path: str
    outputs: tuple[str, ...]
    fingerprint: str


@dataclass(frozen=True)
class _Input:
    """One opened input in internal axis order, with the block shape chosen for it."""

    path: str
    image: Image
    raw: Any
    axes: str
    chunks: tuple[int, ...]
    mask_path: str | None


@dataclass(frozen=True)
class _Job:
    """The checked exports of one input, ready to compute and write."""

    cascade: Cascade
    input: _Input
    options: BatchOptions
    parsed: _Parsed
    exports: tuple[_Export, ...]

    @property
    def path(self) -> str:
        return self.input.path

    @property
    def stages(self) -> int:
        """How many stages the exports need."""
        n = len(self.cascade.stages)
        # "Input" is the raw image and batch "Labels" are empty: no stage needs computing
        return max(
            (s.stage if s.stage > 0 else n) if s.kind not in ("Input", "Labels") else 1
            for s in self.parsed.sources
        )

    @property
    def shared_stages(self) -> set[int]:
        """0-based stages whose probabilities two or more exports read (computed once, stored)."""
        readers = [0] * len(self.cascade.stages)
        for source in self.parsed.sources:
            if source.stage == 0:
                readers = [r + 1 for r in readers]
            elif source.kind in ("Probabilities", "Simple Segmentation", "Uncertainty"):
                readers[source.stage - 1] += 1
        return {k for k, r in enumerate(readers) if r > 1}

    @property
    def needs_scratch(self) -> bool:
        return self.stages > 1 or bool(self.shared_stages)

    def write(self, scratch: str | None, echo: Callable[[str], None] = print) -> list[str]:
        """Compute the stages (stored ones into ``scratch``) and stream every export to disk."""
        exports = self.exports
        if scratch is not None:
            region = _region(exports[0].prepared) if self.parsed.cutout else None
            try:
                results = _results(
                    self.cascade, self.input, self.options, scratch, region, self.shared_stages, self.stages
                )
            except OSError as err:
                raise export_error(err, scratch) from err
            # same sources, names and checks as planned: only the arrays now read stored stages
            exports = tuple(
                replace(export, prepared=_prepare(source, results, self.input, self.options, self.parsed))
                for source, export in zip(self.parsed.sources, self.exports, strict=True)
            )
        written = []
        for export in exports:
            container = output_path(export.target, self.options.output_format or "")
            done = resumable_blocks(container, export.fingerprint)
            if done:
                echo(f"resuming {container}: {done} block(s) were written by an interrupted run")
            with progress_label(os.path.basename(container)):
                written.extend(
                    write_image(
                        export.prepared.data,
                        export.target,
                        format=str(self.options.output_format),
                        axes=export.prepared.axes,
                        internal_path=export.internal_path,
                        slice_offset=_slice_offset(export.prepared),
                        resume=export.fingerprint,
                    )
                )
        return written


def _region(prepared: PreparedExport) -> tuple[slice, ...]:
    """The cutout of an export as a region of the stage outputs (every channel)."""
    return tuple(
        slice(None) if key == "c" else slice(lo, hi)
        for key, lo, hi in zip(prepared.source_axes, prepared.lo, prepared.hi, strict=True)
    )


def _check_distinct(jobs: Sequence[_Job]) -> None:
    """Refuse to run when two exports would write the same output (the second would replace the first)."""
    seen: dict[str, str] = {}
    for job in jobs:
        for export in job.exports:
            what = f"{export.source!r} of {job.path}"
            for output in map(os.path.realpath, export.outputs):
                if output in seen:
                    raise ExportError(
                        f"{what} and {seen[output]} would both be written to {output}; put {{nickname}} "
                        "and {result_type} in --output_filename_format"
                    )
                seen[output] = what


def _open_input(cascade: Cascade, path: str, mask_path: str | None, options: BatchOptions) -> _Input:
    """Open one input lazily, in internal axes, and check it against the project."""
    # ilastik reuses the training image's axes for batch files; for a stack, for each file
    image = open_image(
        path, axes=options.input_axes, stack_along=options.stack_along, file_axes=cascade.input_axes
    )
    raw, axes = to_internal(image.data, image.axes)
    if (
        raw.shape[axes.index("c")] != cascade.raw_channels
        or "".join(k for k in axes if k in "zyx") != cascade.spatial_axes
    ):
        raise DataError(
            f"{path}: the project expects {cascade.raw_channels} channel(s) of {cascade.spatial_axes!r} data "
            f"but the input has shape {image.shape} with axes {image.axes!r}"
            + (" (axes guessed; set --input_axes)" if image.axes_guessed else "")
        )
    chunks = options.chunks or block_chunks(
        axes, raw.shape, options.block_shape, _widest_stage(cascade, raw.shape, axes), options.memory_per_task
    )
    return _Input(path, image, raw, axes, chunks, mask_path)


def _results(
    cascade: Cascade,
    item: _Input,
    options: BatchOptions,
    scratch: str | None = None,
    region: tuple[slice, ...] | None = None,
    keep: set[int] | None = None,
    stages: int | None = None,
) -> list[StageResult]:
    """The stage outputs of one input: lazy, or with stored stages when ``scratch`` is given."""
    results = predict(
        cascade,
        item.raw,
        axes=item.axes,
        chunks=item.chunks,
        stages=stages,
        scratch=scratch,
        region=region,
        keep=keep or (),
    )
    if item.mask_path is not None:
        results = [_masked(results[0], item.mask_path, options, item.raw.shape, item.axes)]
    return results


def _prepare(
    source: ExportSource, results: Sequence[StageResult], item: _Input, options: BatchOptions, parsed: _Parsed
) -> PreparedExport:
    """One export source's array: cutout, normalisation, dtype and axis order applied."""
    return prepare_export(
        source_array(source, results),
        item.axes,
        original_axes=item.image.axes,
        cutout=parsed.cutout,
        dtype=options.export_dtype,
        pipeline_range=parsed.pipeline_range,
        export_range=parsed.export_range,
        axis_order=options.output_axis_order,
    )


def _exports(
    results: Sequence[StageResult], item: _Input, options: BatchOptions, parsed: _Parsed, base: str
) -> tuple[_Export, ...]:
    """Prepare every requested export of one input and check its output (nothing is written)."""
    exports = []
    for source in parsed.sources:
        prepared = _prepare(source, results, item, options, parsed)
        values = placeholders(
            dataset_dir=item.image.dataset_dir,
            nickname=item.image.nickname,
            result_type=source.name,
            axes=prepared.source_axes,
            lo=prepared.lo,
            hi=prepared.hi,
        )
        target = format_filename(str(options.output_filename_format), values)
        internal = format_placeholders(str(options.output_internal_path), values)
        outputs = check_target(
            prepared.data,
            target,
            format=str(options.output_format),
            axes=prepared.axes,
            internal_path=internal,
            slice_offset=_slice_offset(prepared),
        )
        fingerprint = _fingerprint(base, item.image.files, source.name, target, internal)
        exports.append(_Export(source.name, prepared, target, internal, tuple(outputs), fingerprint))
    return tuple(exports)


def _plan(
    cascade: Cascade,
    path: str,
    mask_path: str | None,
    options: BatchOptions,
    parsed: _Parsed,
    base: str = "",
    project_dir: str | None = None,
) -> _Job:
    """Open and check one input and prepare and check its exports (nothing is computed or written).

    ``{dataset_dir}`` of an input read from a URL is ``project_dir``: ilastik gives remote
    datasets the project's folder as their default output folder.
    """
    item = _open_input(cascade, path, mask_path, options)
    if project_dir is not None and is_url(item.image.path):
        item = replace(item, image=replace(item.image, dataset_dir=project_dir))
    try:
        results = _results(cascade, item, options)
    except FeatureSelectionError as err:  # a scale too large for this input (ilastik's size rule)
        raise FeatureSelectionError(f"{path}: {err}") from err
    exports = _exports(results, item, options, parsed, base)
    return _Job(cascade, item, options, parsed, exports)


def _widest_stage(cascade: Cascade, shape: tuple[int, ...], axes: str) -> int:
    """The largest feature channel count of any stage for this input."""
    z = shape[axes.index("z")] if "z" in axes else None
    return max(
        stage.selection.n_channels(cascade.input_channels(k), z) for k, stage in enumerate(cascade.stages)
    )


def parse_block_shape(text: str) -> dict[str, int | None]:
    """ilastik's ``--distributed_block_roi``: an integer (x = y = z) or a dict ``{'x': 256, 'z': 32}``."""
    import ast

    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError) as err:
        raise ExportError(
            f"block shape {text!r} must be an integer or a dict like {{'x': 256, 'y': 256}}"
        ) from err
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return {"x": value, "y": value, "z": value}
    if (
        isinstance(value, dict)
        and all(k in "xyztc" and len(k) == 1 for k in value)
        and all(v is None or (isinstance(v, int) and v > 0) for v in value.values())
    ):
        return dict(value)
    raise ExportError(
        f"block shape {text!r} must be a positive integer or a dict with keys from x, y, z, t, c"
    )


def block_chunks(
    axes: str,
    shape: tuple[int, ...],
    block_shape: str | None,
    n_features: int,
    memory_per_task: int | None,
) -> tuple[int, ...]:
    """Block shape for one input: ilastik's block roi if given, else sized from the memory per task.

    A task holds its feature block and about as much again in temporaries, so the block has
    ``memory_per_task / (8 * n_features)`` pixels, capped at 512^2 in 2D and 64^3 in 3D (larger
    blocks measured slower: the halo is cropped per scale, and smaller blocks stay in cache).
    """
    sizes = dict(zip(axes, shape))
    spatial = [k for k in axes if k in "zyx"]
    if block_shape:
        wanted = parse_block_shape(block_shape)
        edge = {k: (wanted.get(k) or sizes[k]) for k in spatial}
    else:
        budget = memory_per_task or 512 * 2**20
        pixels = max(budget // (8 * max(n_features, 1)), 32 ** len(spatial))
        cap = 512 if len(spatial) == 2 else 64
        side = max(32, min(cap, int(pixels ** (1.0 / len(spatial)))))
        edge = dict.fromkeys(spatial, side)
    return tuple(1 if k == "t" else sizes[k] if k == "c" else min(edge[k], sizes[k]) for k in axes)


def _slice_offset(prepared: PreparedExport) -> int:
    """Cutout start along the axis a sequence format steps over (first non-y/x/c axis longer than 1)."""
    for key, size in zip(prepared.axes, prepared.data.shape):
        if key not in "yxc" and size > 1:
            return prepared.lo[prepared.source_axes.index(key)] if key in prepared.source_axes else 0
    return 0


def _masked(
    result: StageResult, mask_path: str, options: BatchOptions, shape: tuple[int, ...], axes: str
) -> StageResult:
    """ilastik's prediction mask: probabilities are zero wherever every mask channel is 0."""
    mask_image = open_image(mask_path, axes=options.input_axes, stack_along=options.stack_along)
    mask, mask_axes = to_internal(mask_image.data, mask_image.axes)
    if mask_axes != axes or mask.shape[:-1] != shape[:-1]:
        raise DataError(
            f"prediction mask {mask_path} has shape {mask_image.shape} (axes {mask_image.axes!r}) "
            f"but the input has shape {shape} (axes {axes!r})"
        )
    keep = (mask > 0).any(axis=-1, keepdims=True).rechunk(result.probabilities.chunks[:-1] + ((1,),))
    probabilities = (result.probabilities * keep).astype("float32")
    return replace(result, probabilities=probabilities)


def _identity(path: str) -> list[Any]:
    """A file's (or folder's) identity for resume fingerprints: path, size, modification time."""
    real = path
    while real and not os.path.exists(real):  # strip internal paths such as file.h5/data
        real = os.path.dirname(real)
    try:
        info = os.stat(real)
    except OSError:
        return [path]
    return [os.path.abspath(path), info.st_size, info.st_mtime_ns]


def _fingerprint_base(project: str | Path, options: BatchOptions) -> str:
    settings = {k: v for k, v in asdict(options).items() if k != "memory_per_task"}
    return json.dumps([_identity(str(project)), settings], sort_keys=True, default=str)


def _fingerprint(base: str, files: Sequence[str], source: str, target: str, internal: str) -> str:
    """Same project, inputs, options and export: same fingerprint (so an interrupted run resumes)."""
    text = json.dumps([base, [_identity(f) for f in files], source, target, internal], default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_overwrites(jobs: Sequence[_Job], project: str | Path, fmt: str) -> None:
    """Refuse an output that is (or is inside, or holds) an input, a mask or the project."""
    reads = [(str(project), f"the project {project}")]
    for job in jobs:
        names = list(job.input.image.files) + ([job.input.mask_path] if job.input.mask_path else [])
        reads += [(name, f"the input {name}") for name in names]
    outputs = [
        (output, output_path(export.target, fmt))
        for job in jobs
        for export in job.exports
        for output in export.outputs
    ]
    check_overwrites(outputs, reads)


def _scratch_dir(base: str, inputs: Sequence[str]) -> str:
    """The run's scratch folder (created when a stage is first stored there): in the working
    directory, shared with cluster workers, else in the system's temp folder; named after the
    job, so that the same command finds it again."""
    key = hashlib.sha256(json.dumps([base, [_identity(p) for p in inputs]]).encode()).hexdigest()[:16]
    for where in (".", tempfile.gettempdir()):
        if os.access(where, os.W_OK):
            return os.path.join(os.path.abspath(where), f".cascade-scratch-{key}")
    raise ExportError("neither the working directory nor the temp folder is writable for scratch files")
