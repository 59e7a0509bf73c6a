"""``cascade info``: what a project holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, handle_errors


@app.command()
@handle_errors
def info(project: Annotated[Path, typer.Argument(help="A .cascade or ilastik .ilp project.")]) -> None:
    """Print a project's workflow, stages, classes, features, labels, forests and training data."""
    from ..project import is_object_project

    if project.suffix.lower() == ".ilp" and is_object_project(project):
        from ..project import describe_object_ilp, read_object_ilp

        typer.echo(describe_object_ilp(read_object_ilp(project)))
    elif project.suffix.lower() == ".ilp":
        from ..project import describe_ilp, read_ilp

        typer.echo(describe_ilp(read_ilp(project)))
    else:
        from ..project import describe_cascade, load_cascade, load_object_stage

        objects = load_object_stage(project)
        cascade = load_cascade(project, allow_no_stages=objects is not None)
        typer.echo(describe_cascade(cascade, project, objects=objects))
