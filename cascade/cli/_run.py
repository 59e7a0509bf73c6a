"""Shared command-line plumbing: where to compute, how much memory, progress display."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer

SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="threads (default), processes, local (a local Dask cluster with dashboard), slurm, "
        "or a scheduler address tcp://host:port.",
    ),
]
ProfileOpt = Annotated[
    str | None, typer.Option("--profile", help="Cluster profile name or YAML (configs/cluster).")
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option("--threads", min=1, help="Threads (default: cores allowed; env LAZYFLOW_THREADS)."),
]
MemoryOpt = Annotated[
    str | None,
    typer.Option(
        "--memory", help="Memory budget, e.g. 8GB (default: memory allowed; env LAZYFLOW_TOTAL_RAM_MB)."
    ),
]
ClusterOpt = Annotated[
    list[str] | None,
    typer.Option("--cluster-option", help="Override a cluster setting: key=value (repeatable)."),
]


@contextmanager
def computing(
    scheduler: str | None,
    profile: str | None,
    threads: int | None,
    memory: str | None,
    cluster_options: list[str] | None,
) -> Iterator[dict[str, Any]]:
    """Start the chosen scheduler, print its dashboard, show a progress bar on a terminal.

    Yields the resources a run may size its blocks from: ``threads`` and ``memory`` (bytes).
    """
    import dask

    from ..cluster import available_cores, available_memory, execution, parse_overrides

    overrides = parse_overrides(cluster_options or [])
    local = scheduler in (None, "threads", "processes", "local")
    if scheduler in (None, "threads", "processes"):
        # plain task rechunking: dask would otherwise import distributed just to rule out P2P
        stack_config = dask.config.set({"array.rechunk.method": "tasks"})
    else:
        stack_config = nullcontext()
    with stack_config, execution(
        scheduler,
        profile=profile,
        threads=threads if local else None,
        memory_limit=memory if scheduler == "local" else None,
        overrides=overrides,
    ) as info:
        if info.dashboard_link:
            typer.echo(f"dask dashboard: {info.dashboard_link}", err=True)
        total_threads = threads or (info.n_workers if not local else available_cores())
        budget = _bytes(memory) if memory else available_memory()
        with _progress(info.client is not None):
            yield {"threads": total_threads, "memory": budget}


def _bytes(text: str) -> int:
    from dask.utils import parse_bytes

    from ..errors import CascadeError

    try:
        return int(parse_bytes(text))
    except (ValueError, TypeError) as err:
        raise CascadeError(f"memory {text!r} is not a size like 8GB or 500MiB") from err


def _progress(distributed: bool) -> Any:
    if not sys.stderr.isatty():
        return nullcontext()
    if distributed:
        return nullcontext()  # the dashboard shows progress of a distributed run
    from dask.diagnostics import ProgressBar

    return ProgressBar(out=sys.stderr, minimum=2.0)


def existing(path: Path) -> Path:
    """Expand ``~`` in a path option."""
    return path.expanduser()
