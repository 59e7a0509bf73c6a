"""``cascade predict`` (also ``cascade --headless``): ilastik's headless batch export."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from ._app import MAX_TREES, app, handle_errors, whole
from ._run import (
    ClusterOpt,
    DryRunOpt,
    MemoryOpt,
    ProfileOpt,
    SchedulerOpt,
    ThreadsOpt,
    computing,
    local_resources,
    plain_rechunks,
    prepare_workers,
    print_job_script,
)

if TYPE_CHECKING:
    from ._ilastik import IlastikConfig

_Opt = typer.Option
# the values configparser (and so ilastik's --readonly) accepts as booleans
_BOOLEANS = frozenset({"1", "yes", "true", "on", "0", "no", "false", "off"})


@app.command(context_settings={"allow_interspersed_args": True})
@handle_errors
def predict(
    files: Annotated[
        list[str] | None, typer.Argument(help="Input images (ilastik path conventions).")
    ] = None,
    project: Annotated[Path | None, _Opt("--project", help="A .cascade or ilastik .ilp project.")] = None,
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
    input_axes: Annotated[
        str | None, _Opt("--input_axes", "--input-axes", help="Axes, e.g. zyxc; per role: yxc,yx.")
    ] = None,
    ignore_training_axistags: Annotated[
        bool,
        _Opt(
            "--ignore_training_axistags",
            "--ignore-training-axistags",
            help="Take axes from the files, not from the project's training images.",
        ),
    ] = False,
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
    prediction_maps: Annotated[
        list[str] | None,
        _Opt("--prediction_maps", "--prediction-maps", help="Object Classification: one per --raw_data."),
    ] = None,
    segmentation_image: Annotated[
        list[str] | None,
        _Opt("--segmentation_image", "--segmentation-image", help="Object Classification: one per input."),
    ] = None,
    label_image: Annotated[
        list[str] | None,
        _Opt("--label_image", "--label-image", help="Object Classification: one per --raw_data."),
    ] = None,
    atlas: Annotated[
        list[str] | None,
        _Opt("--atlas", help="Object Classification: an atlas per --raw_data (AtlasMapping table column)."),
    ] = None,
    table_filename: Annotated[
        str | None,
        _Opt("--table_filename", "--table-filename", help="Object table per input: CSV, or HDF5 (.h5)."),
    ] = None,
    table_only: Annotated[
        bool, _Opt("--table_only", "--table-only", help="Write only the object table.")
    ] = False,
    export_object_prediction_img: Annotated[
        bool, _Opt("--export_object_prediction_img", hidden=True, help="Deprecated: Object Predictions.")
    ] = False,
    export_object_probability_img: Annotated[
        bool, _Opt("--export_object_probability_img", hidden=True, help="Deprecated: Object Probabilities.")
    ] = False,
    export_pixel_probability_img: Annotated[
        bool, _Opt("--export_pixel_probability_img", hidden=True, help="Deprecated: Pixel Probabilities.")
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
    tree_count: Annotated[
        int | None,
        _Opt(
            "--tree-count",
            parser=whole(1, MAX_TREES),
            metavar="N",
            help="Train an .ilp from its stored labels with N trees (ilastik's default 100).",
        ),
    ] = None,
    configfile: Annotated[
        str | None, _Opt("--configfile", help="ilastik config file (default: ilastik's own, if any).")
    ] = None,
    logfile: Annotated[str | None, _Opt("--logfile", help="Also append the progress lines here.")] = None,
    redirect_output: Annotated[
        str | None, _Opt("--redirect_output", help="Write standard output to this file instead.")
    ] = None,
) -> None:
    """Predict every input with a project and export the chosen results, chunk by chunk.

    ilastik's launcher options are accepted too: --configfile ([ilastik] output_format and
    output_filename_format, [lazyflow] threads and total_ram_mb), --logfile, --redirect_output,
    --tree-count (retrains a Pixel Classification .ilp), --ignore_training_axistags; --debug,
    --clean_paths, --process_name, --preconvert_stacks and the like change nothing here.
    """
    from ._ilastik import read_ilastik_config

    if dry_run:
        print_job_script(scheduler, profile, cluster_option)
        return

    project = _check_arguments(project, readonly, files, raw_data)
    config = read_ilastik_config(configfile)
    threads, memory = _sizes(config, threads, memory)
    if distributed:
        scheduler = scheduler or "local"
        if output_format and output_format.strip().lower() != "n5":
            note = f"--distributed writes n5 (as ilastik): --output_format {output_format} ignored"
            typer.echo(f"cascade: note: {note}", err=True)
    prepare_workers(scheduler, profile, cluster_option)  # a local cluster's workers warm up meanwhile
    from ..batch import ILASTIK_BLOCK_ROI, BatchOptions, run_batch

    options = BatchOptions.from_text(  # every option parsed and checked before anything starts
        export_sources=_export_sources(
            export_source,
            export_object_prediction_img,
            export_object_probability_img,
            export_pixel_probability_img,
        ),
        # ilastik's --distributed writes n5 whatever --output_format says (its headless docs)
        output_format="n5" if distributed else output_format,
        output_filename_format=output_filename_format or None,
        config_defaults=config.defaults(),
        output_internal_path=output_internal_path,
        cutout_subregion=cutout_subregion,
        export_dtype=export_dtype,
        output_axis_order=output_axis_order,
        pipeline_result_drange=pipeline_result_drange,
        export_drange=export_drange,
        input_axes=input_axes,
        ignore_training_axes=ignore_training_axistags,
        stack_along=stack_along,
        retrain=retrain,
        retrain_trees=tree_count or 100,
        tree_count=tree_count,
        prediction_masks=tuple(prediction_mask or ()),
        block_shape=block_shape or distributed_block_roi or (str(ILASTIK_BLOCK_ROI) if distributed else None),
        object_inputs=_object_inputs(prediction_maps, segmentation_image, label_image, atlas),
        table_filename=table_filename,
        table_only=table_only,
        distributed=distributed,
    )
    inputs = list(files or raw_data or [])
    # retraining computes features while it opens the project: on the chosen scheduler, started first
    known = None if retrain else local_resources(scheduler, threads, memory)
    with _output_to(redirect_output, logfile) as echo:
        if known is not None:  # plan and check (the forkserver warms up meanwhile), then start and compute
            options = dataclasses.replace(options, memory_per_task=_per_task(known))
            start = functools.partial(computing, scheduler, profile, threads, memory, cluster_option)
            with plain_rechunks(scheduler):
                run_batch(project, inputs, options, echo=echo, start=start)
            return
        with computing(scheduler, profile, threads, memory, cluster_option) as resources:
            options = dataclasses.replace(options, memory_per_task=_per_task(resources))
            run_batch(project, inputs, options, echo=echo)


def _per_task(resources: dict[str, int]) -> int:
    """The one setting that depends on the scheduler: the memory a task may hold."""
    return resources["memory"] // max(2 * resources["threads"], 1)


def _object_inputs(
    prediction_maps: list[str] | None,
    segmentation_image: list[str] | None,
    label_image: list[str] | None,
    atlas: list[str] | None,
) -> dict[str, tuple[str, ...]]:
    """The other inputs of an Object Classification run, by ilastik's role option (given ones only)."""
    given = {
        "prediction_maps": prediction_maps,
        "segmentation_image": segmentation_image,
        "label_image": label_image,
        "atlas": atlas,
    }
    return {name: tuple(files) for name, files in given.items() if files}


def _export_sources(given: list[str] | None, *deprecated: bool) -> tuple[str, ...]:
    """``--export_source`` values (comma-separated too) and ilastik's deprecated ``--export_*_img``."""
    names = [s.strip() for value in given or [] for s in value.split(",") if s.strip()]
    aliases = ("Object Predictions", "Object Probabilities", "Pixel Probabilities")
    names += [name for name, on in zip(aliases, deprecated, strict=True) if on]
    return tuple(names)


def _check_arguments(
    project: Path | None, readonly: str, files: list[str] | None, raw_data: list[str] | None
) -> Path:
    """Refuse a missing project, a non-boolean ``--readonly`` and inputs given both ways."""
    from ..errors import CascadeError

    if project is None or not str(project):  # "--project=." names the working directory
        raise CascadeError("--project is required")
    if readonly.strip().lower() not in _BOOLEANS:
        raise CascadeError(
            f"--readonly {readonly!r} is not a boolean; use true or false (or 1/0, yes/no, on/off)"
        )
    if files and raw_data:
        raise CascadeError("give input files either as arguments or with --raw_data, not both")
    return project


def _sizes(config: IlastikConfig, threads: int | None, memory: str | None) -> tuple[int | None, str | None]:
    """Threads and memory: the options, else ilastik's config file (unless its variables are set)."""
    if threads is None and config.threads is not None and not os.environ.get("LAZYFLOW_THREADS"):
        threads = config.threads
    if memory is None and config.total_ram_mb is not None and not os.environ.get("LAZYFLOW_TOTAL_RAM_MB"):
        memory = f"{config.total_ram_mb}MiB"
    return threads, memory


@contextlib.contextmanager
def _output_to(redirect_output: str | None, logfile: str | None) -> Iterator[Callable[[str], None]]:
    """The echo of a run: standard output (or ``--redirect_output``), and ``--logfile`` appended to."""
    from ..errors import CascadeError

    with contextlib.ExitStack() as stack:
        try:
            out = (
                stack.enter_context(open(redirect_output, "a", encoding="utf-8")) if redirect_output else None
            )
            log = stack.enter_context(open(logfile, "a", encoding="utf-8")) if logfile else None
        except OSError as err:
            raise CascadeError(f"cannot open {err.filename}: {err.strerror}") from err

        def echo(line: str) -> None:
            typer.echo(line, file=out)
            if out is not None:
                out.flush()
            if log is not None:
                log.write(line + "\n")
                log.flush()

        yield echo


def _append(stack: contextlib.ExitStack, path: str | None) -> TextIO | None:
    return stack.enter_context(open(path, "a", encoding="utf-8")) if path else None
