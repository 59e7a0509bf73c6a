"""Headless batch prediction: ilastik's ``--headless`` export loop on the dask engine.

For every input: open it lazily, put it in internal axis order, check it against the
project, build the lazy stage graph, and stream each requested export source to its
file chunk by chunk. Several export sources share one graph, so shared stages are
computed once (ilastik needs one run per source).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .axes import to_internal
from .errors import DataError, ExportError
from .export import (
    ExportSource,
    format_filename,
    parse_cutout,
    parse_range,
    placeholders,
    prepare_export,
    resolve_sources,
    source_array,
)
from .io import FORMATS, open_image, output_path, write_image
from .pipeline import Cascade, predict
from .project.convert import open_project

__all__ = ["BatchOptions", "run_batch"]

DEFAULT_FILENAME_FORMAT = "{dataset_dir}/{nickname}_{result_type}"


@dataclass(frozen=True)
class BatchOptions:
    """ilastik's headless export options (text values as given on the command line)."""

    export_sources: tuple[str, ...] = ()
    output_format: str = "compressed hdf5"
    output_filename_format: str = DEFAULT_FILENAME_FORMAT
    output_internal_path: str = "exported_data"
    cutout_subregion: str | None = None
    export_dtype: str | None = None
    output_axis_order: str | None = None
    pipeline_result_drange: str | None = None
    export_drange: str | None = None
    input_axes: str | None = None
    stack_along: str = "z"
    chunks: tuple[int, ...] | None = None
    retrain: bool = False


@dataclass(frozen=True)
class _Parsed:
    sources: list[ExportSource]
    cutout: tuple[tuple[int | None, ...], tuple[int | None, ...]] | None
    pipeline_range: tuple[float, float] | None
    export_range: tuple[float, float] | None


def _parse(options: BatchOptions, cascade: Cascade) -> _Parsed:
    if options.output_format.lower() not in {f.lower() for f in FORMATS}:
        raise ExportError(f"unknown output format {options.output_format!r}; choose from: {', '.join(FORMATS)}")
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
    cascade = open_project(project, retrain=options.retrain)
    parsed = _parse(options, cascade)
    jobs = [_plan(cascade, path, options, parsed) for path in inputs]
    written: list[str] = []
    for job in jobs:
        start = time.perf_counter()
        paths = job()
        written.extend(paths)
        echo(f"{paths[0] if len(paths) == 1 else ', '.join(paths)}  ({time.perf_counter() - start:.1f} s)")
    return written


def _plan(cascade: Cascade, path: str, options: BatchOptions, parsed: _Parsed) -> Callable[[], list[str]]:
    """Open and check one input and prepare its exports; return the function that writes them."""
    image = open_image(path, axes=options.input_axes, stack_along=options.stack_along)
    raw, axes = to_internal(image.data, image.axes)
    if raw.shape[axes.index("c")] != cascade.raw_channels or "".join(
        k for k in axes if k in "zyx"
    ) != cascade.spatial_axes:
        raise DataError(
            f"{path}: the project expects {cascade.raw_channels} channel(s) of {cascade.spatial_axes!r} data "
            f"but the input has shape {image.shape} with axes {image.axes!r}"
            + (" (axes guessed; set --input_axes)" if image.axes_guessed else "")
        )
    results = predict(cascade, raw, axes=axes, chunks=options.chunks)
    exports = []
    for source in parsed.sources:
        prepared = prepare_export(
            source_array(source, results),
            axes,
            original_axes=image.axes,
            cutout=parsed.cutout,
            dtype=options.export_dtype,
            pipeline_range=parsed.pipeline_range,
            export_range=parsed.export_range,
            axis_order=options.output_axis_order,
        )
        values = placeholders(
            dataset_dir=image.dataset_dir,
            nickname=image.nickname,
            result_type=source.name,
            axes=prepared.source_axes,
            lo=prepared.lo,
            hi=prepared.hi,
        )
        target = format_filename(options.output_filename_format, values)
        final = output_path(target, options.output_format)
        if not Path(final).parent.is_dir():
            raise ExportError(f"output directory does not exist: {Path(final).parent}")
        exports.append((prepared, target))

    def write() -> list[str]:
        written = []
        for prepared, target in exports:
            written.extend(
                write_image(
                    prepared.data,
                    target,
                    format=options.output_format,
                    axes=prepared.axes,
                    internal_path=options.output_internal_path,
                )
            )
        return written

    return write
