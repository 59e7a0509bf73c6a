"""``cascade demo``: the two-stage autocontext on bundled real EM data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import MAX_SEED, app, handle_errors, whole


@app.command()
@handle_errors
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the outputs.")] = Path(
        "cascade-demo"
    ),
    seed: Annotated[int, typer.Option("--seed", parser=whole(0, MAX_SEED - 1), metavar="N")] = 0,
) -> None:
    """Train a 2-stage cascade on a bundled ISBI 2012 crop, predict a held-out slice, score it."""
    from ..demo import run_demo

    report = run_demo(output, seed=seed)
    typer.echo("cascade demo: 2-stage autocontext on ISBI 2012 EM (slices 0 and 7 trained, slice 15 tested)")
    typer.echo(report.table())
    typer.echo("outputs:\n  " + "\n  ".join(report.outputs))
    typer.echo(f"(raw | stage 1 | stage 2 | ground truth in {report.outputs[-1]}; {report.seconds:.1f} s)")
