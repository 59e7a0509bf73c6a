"""``cascade train``: train a cascade from label images and save it as a project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import MAX_SEED, MAX_TREES, app, handle_errors, one_of, whole
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


@app.command()
@handle_errors
def train(
    spec: Annotated[
        Path | None, typer.Argument(help="Training spec YAML (see configs/train-example.yaml).")
    ] = None,
    project: Annotated[Path, typer.Option("--project", help="Output project file (.cascade).")] = Path(
        "project.cascade"
    ),
    raw_data: Annotated[
        list[str] | None, typer.Option("--raw_data", "--raw-data", help="Raw image(s) (simple form).")
    ] = None,
    labels: Annotated[
        list[str] | None,
        typer.Option("--labels", help="Label image(s), one per raw image, used by every stage."),
    ] = None,
    stages: Annotated[
        int, typer.Option("--stages", parser=whole(1), metavar="N", help="Number of stages (simple form).")
    ] = 2,
    features: Annotated[str, typer.Option("--features", help="Feature set name or YAML (simple form).")] = (
        "ilastik-default"
    ),
    classes: Annotated[
        str | None, typer.Option("--classes", help="Comma-separated class names (default: Label 1..N).")
    ] = None,
    input_axes: Annotated[str | None, typer.Option("--input_axes", "--input-axes")] = None,
    trees: Annotated[
        int, typer.Option("--trees", parser=whole(1, MAX_TREES), metavar="N", help="Trees per stage.")
    ] = 100,
    seed: Annotated[int, typer.Option("--seed", parser=whole(0, MAX_SEED), metavar="N")] = 0,
    training: Annotated[
        str,
        typer.Option(
            "--training",
            parser=one_of("cross-fit", "oob", "in-sample"),
            help="How stage k+1 sees stage k in training: cross-fit (default), oob, in-sample (ilastik's).",
        ),
    ] = "cross-fit",
    prior: Annotated[
        str,
        typer.Option(
            "--prior",
            parser=one_of("images", "labels"),
            help="Class shares the exported probabilities follow: images (default: estimated on the "
            "training images) or labels (the forest's own, as ilastik's).",
        ),
    ] = "images",
    object_labels: Annotated[
        list[str] | None,
        typer.Option(
            "--object_labels",
            "--object-labels",
            help="Object label image(s), one per raw image: pixels of value k mark their object as class k. "
            "Adds an object stage (objects from the last pixel stage, or from the input below).",
        ),
    ] = None,
    prediction_maps: Annotated[
        list[str] | None,
        typer.Option("--prediction_maps", "--prediction-maps", help="Objects from thresholding these."),
    ] = None,
    segmentation_image: Annotated[
        list[str] | None,
        typer.Option(
            "--segmentation_image", "--segmentation-image", help="Objects of a binary segmentation."
        ),
    ] = None,
    label_image: Annotated[
        list[str] | None, typer.Option("--label_image", "--label-image", help="Objects of a label image.")
    ] = None,
    object_features: Annotated[
        str,
        typer.Option(
            "--object_features", "--object-features", help="ilastik-default, standard, or a YAML selection."
        ),
    ] = "ilastik-default",
    object_classes: Annotated[
        str | None,
        typer.Option("--object_classes", "--object-classes", help="Comma-separated object class names."),
    ] = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Object pixels: probability >= this (channel below).")
    ] = 0.5,
    threshold_channel: Annotated[
        int, typer.Option("--threshold_channel", "--threshold-channel", parser=whole(0), metavar="N")
    ] = 0,
    smoothing: Annotated[
        float, typer.Option("--smoothing", help="Gaussian sigma before thresholding (all axes).")
    ] = 1.0,
    min_size: Annotated[int, typer.Option("--min_size", "--min-size", parser=whole(0), metavar="N")] = 10,
    max_size: Annotated[int, typer.Option("--max_size", "--max-size", parser=whole(0), metavar="N")] = (
        1_000_000
    ),
    scheduler: SchedulerOpt = None,
    profile: ProfileOpt = None,
    threads: ThreadsOpt = None,
    memory: MemoryOpt = None,
    cluster_option: ClusterOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Train every stage from sparse labels and write a project file."""
    from ..errors import CascadeError
    from ..objects import ThresholdSettings
    from ..training import load_spec, run_training, simple_spec, with_simple_objects

    if dry_run:
        print_job_script(scheduler, profile, cluster_option)
        return

    if spec is not None and raw_data:
        raise CascadeError("give either a training spec file or --raw_data/--labels, not both")
    second = prediction_maps or segmentation_image or label_image
    if spec is not None and (object_labels or second):
        raise CascadeError("give the object stage in the training spec file, or use --raw_data, not both")
    if second and not object_labels:
        raise CascadeError(
            "objects are trained from --object_labels: give one object label image per raw image"
        )
    if spec is not None:
        parsed = load_spec(spec)
    elif raw_data and (labels or object_labels):
        n = stages if labels else 0
        parsed = simple_spec(
            raw_data, labels or [], n, features, classes, input_axes, trees, seed, training, prior
        )
    else:
        raise CascadeError(
            "nothing to train on: give a spec YAML or --raw_data IMG with --labels and/or --object_labels"
        )
    if object_labels:
        inputs = {
            "probabilities": prediction_maps or [],
            "segmentation": segmentation_image or [],
            "label image": label_image or [],
        }
        settings = ThresholdSettings(
            channel=threshold_channel,
            low=threshold,
            sigmas=(smoothing,) * 3,
            min_size=min_size,
            max_size=max_size,
        )
        parsed = with_simple_objects(parsed, object_labels, inputs, object_features, object_classes, settings)
    # feature computation around the labels runs on the chosen scheduler; forests train locally
    with computing(scheduler, profile, threads, memory, cluster_option):
        summary = run_training(parsed, project)
    typer.echo(summary)
