"""``cascade predict`` (also ``cascade --headless``): ilastik's headless batch export."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from ._app import app, handle_errors
from ._run import (
    ClusterOpt,
    DryRunOpt,
    MemoryOpt,
    ProfileOpt,
    SchedulerOpt,
    ThreadsOpt,
    computing,
    print_job_script,
)

_Opt = typer.Option
# the values configparser (and so ilastik's --readonly) accepts as booleans
_BOOLEANS = frozenset({"1", "yes", "true", "on", "0", "no", "false", "off"})


@app.command(context_settings={"allow_interspersed_args": True})
@handle_errors
def predict(
    files: Annotated[
        list[str] | None, typer.Argument(help="Input images (ilastik path conventions).")
    ] = None,
    project: Annotated[Path, _Opt("--project", help="A .cascade or ilastik .ilp project.")] = Path(),
    raw_data: Annotated[list[str] | None, _Opt("--raw_data", "--raw-data", help="Input images.")] = None,
    export_source: Annotated[
        list[str] | None,
        _Opt("--export_source", "--export-source", help="Result to export; repeat for several."),
    ] = None,
    output_format: Annotated[
        str | None, _Opt("--output_format", "--output-format", help="Default: compressed hdf5.")
    ] = None,
    output_filename_format: Annotated[
        str | None,
        _Opt(
            "--output_filename_format",
            "--output-filename-format",
            help="Default: {dataset_dir}/{nickname}_{result_type}.",
        ),
    ] = None,
    output_internal_path: Annotated[
        str | None, _Opt("--output_internal_path", "--output-internal-path", help="Default: exported_data.")
    ] = None,
    cutout_subregion: Annotated[str | None, _Opt("--cutout_subregion", "--cutout-subregion")] = None,
    export_dtype: Annotated[str | None, _Opt("--export_dtype", "--export-dtype")] = None,
    output_axis_order: Annotated[str | None, _Opt("--output_axis_order", "--output-axis-order")] = None,
    pipeline_result_drange: Annotated[
        str | None, _Opt("--pipeline_result_drange", "--pipeline-result-drange")
    ] = None,
    export_drange: Annotated[str | None, _Opt("--export_drange", "--export-drange")] = None,
    input_axes: Annotated[str | None, _Opt("--input_axes", "--input-axes")] = None,
    stack_along: Annotated[str, _Opt("--stack_along", "--stack-along")] = "z",
    readonly: Annotated[
        str, _Opt("--readonly", help="Accepted for ilastik compatibility; always read-only.")
    ] = ("true"),
    prediction_mask: Annotated[
        list[str] | None,
        _Opt("--prediction_mask", "--prediction-mask", help="Mask per input (Pixel Classification only)."),
    ] = None,
    retrain: Annotated[
        bool, _Opt("--retrain", help="Train an .ilp project from its stored labels first.")
    ] = False,
    scheduler: SchedulerOpt = None,
    profile: ProfileOpt = None,
    threads: ThreadsOpt = None,
    memory: MemoryOpt = None,
    cluster_option: ClusterOpt = None,
    dry_run: DryRunOpt = False,
    distributed: Annotated[
        bool,
        _Opt("--distributed", help="ilastik's cluster mode: run on --scheduler (default local), n5 output."),
    ] = False,
    distributed_block_roi: Annotated[
        str | None,
        _Opt(
            "--distributed_block_roi",
            "--distributed-block-roi",
            help="Block shape: an int or {'x': 256, ...}.",
        ),
    ] = None,
    block_shape: Annotated[
        str | None, _Opt("--block-shape", help="Block shape, as --distributed_block_roi.")
    ] = None,
) -> None:
    """Predict every input with a project and export the chosen results, chunk by chunk."""
    from ..batch import BatchOptions, run_batch
    from ..errors import CascadeError

    if dry_run:
        print_job_script(scheduler, profile, cluster_option)
        return

    if project == Path():
        raise CascadeError("--project is required")
    if readonly.strip().lower() not in _BOOLEANS:
        raise CascadeError(
            f"--readonly {readonly!r} is not a boolean; use true or false (or 1/0, yes/no, on/off)"
        )
    if files and raw_data:
        raise CascadeError("give input files either as arguments or with --raw_data, not both")
    sources = tuple(s.strip() for value in export_source or [] for s in value.split(",") if s.strip())
    options = BatchOptions(
        export_sources=sources,
        output_format=output_format,
        output_filename_format=output_filename_format,
        output_internal_path=output_internal_path,
        cutout_subregion=cutout_subregion,
        export_dtype=export_dtype,
        output_axis_order=output_axis_order,
        pipeline_result_drange=pipeline_result_drange,
        export_drange=export_drange,
        input_axes=input_axes,
        stack_along=stack_along,
        retrain=retrain,
        prediction_masks=tuple(prediction_mask or ()),
        block_shape=block_shape or distributed_block_roi,
    )
    if distributed:
        scheduler = scheduler or "local"
        if output_format is None:  # ilastik's --distributed writes n5
            options = dataclasses.replace(options, output_format="n5")
    with computing(scheduler, profile, threads, memory, cluster_option) as resources:
        per_task = resources["memory"] // max(2 * resources["threads"], 1)
        options = dataclasses.replace(options, memory_per_task=per_task)
        run_batch(project, list(files or raw_data or []), options, echo=typer.echo)
