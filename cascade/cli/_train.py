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
    scheduler: SchedulerOpt = None,
    profile: ProfileOpt = None,
    threads: ThreadsOpt = None,
    memory: MemoryOpt = None,
    cluster_option: ClusterOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Train every stage from sparse labels and write a project file."""
    from ..errors import CascadeError
    from ..training import load_spec, run_training, simple_spec

    if dry_run:
        print_job_script(scheduler, profile, cluster_option)
        return

    if spec is not None and raw_data:
        raise CascadeError("give either a training spec file or --raw_data/--labels, not both")
    if spec is not None:
        parsed = load_spec(spec)
    elif raw_data and labels:
        parsed = simple_spec(raw_data, labels, stages, features, classes, input_axes, trees, seed, training)
    else:
        raise CascadeError("nothing to train on: give a spec YAML or --raw_data IMG --labels LABELS")
    # feature computation around the labels runs on the chosen scheduler; forests train locally
    with computing(scheduler, profile, threads, memory, cluster_option):
        summary = run_training(parsed, project)
    typer.echo(summary)
