"""Shared command-line plumbing: where to compute, how much memory, progress display."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer

from ._app import byte_size, whole

SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="threads (default), processes, local (a local Dask cluster with dashboard), slurm, "
        "or a scheduler address tcp://host:port.",
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile", help="Cluster profile: local, slurm-example, slurm-local, or a YAML file of your own."
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        parser=whole(1),
        metavar="N",
        help="Threads (default: cores allowed; env LAZYFLOW_THREADS).",
    ),
]
MemoryOpt = Annotated[
    str | None,
    typer.Option(
        "--memory",
        parser=byte_size,
        metavar="SIZE",
        help="Memory budget, e.g. 8GB (default: memory allowed; env LAZYFLOW_TOTAL_RAM_MB).",
    ),
]
ClusterOpt = Annotated[
    list[str] | None,
    typer.Option("--cluster-option", help="Override a cluster setting: key=value (repeatable)."),
]

DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="With --scheduler slurm or a SLURM --profile: print the job script dask-jobqueue would "
        "submit for each worker job, and stop (nothing is submitted or computed).",
    ),
]


def print_job_script(scheduler: str | None, profile: str | None, cluster_options: list[str] | None) -> None:
    """``--dry-run``: print the SLURM worker job script the settings give, submitting nothing."""
    from ..cluster import parse_overrides, slurm_job_script

    overrides = parse_overrides(cluster_options or [])
    typer.echo(slurm_job_script(scheduler, profile=profile, overrides=overrides), nl=False)


def prepare_workers(scheduler: str | None, profile: str | None, cluster_options: list[str] | None) -> None:
    """Start what a local cluster forks its workers from, while the command imports and plans.

    Bad settings are left for :func:`computing` to report.
    """
    from ..cluster import parse_overrides
    from ..cluster import prepare_workers as prepare
    from ..errors import CascadeError

    try:
        overrides = parse_overrides(cluster_options or [])
    except CascadeError:
        return
    prepare(scheduler, profile=profile, overrides=overrides)


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

    from ..cluster import execution, parse_overrides

    overrides = parse_overrides(cluster_options or [])
    local = scheduler in (None, "threads", "processes", "local")
    with (
        plain_rechunks(scheduler),
        execution(
            scheduler,
            profile=profile,
            threads=threads if local else None,
            memory_limit=memory if scheduler == "local" else None,
            overrides=overrides,
        ) as info,
        _by_function(info.scheduler),
    ):
        if info.dashboard_link:
            typer.echo(f"dask dashboard: {info.dashboard_link}", err=True)
        known = local_resources(scheduler, threads, memory)
        resources = known or {"threads": threads or info.n_workers, "memory": _memory(memory)}
        with _progress():
            yield resources


def plain_rechunks(scheduler: str | None) -> AbstractContextManager[Any]:
    """Plain task rechunking for threads and processes, while graphs are built and computed.

    dask would otherwise import distributed (a third of a second) just to rule out P2P.
    """
    if scheduler not in (None, "threads", "processes"):
        return nullcontext()
    import dask

    return dask.config.set({"array.rechunk.method": "tasks"})


def local_resources(scheduler: str | None, threads: int | None, memory: str | None) -> dict[str, int] | None:
    """The threads and memory (bytes) a run on this machine has, known before its scheduler starts.

    None for SLURM or a running scheduler: their threads are the workers' (:func:`computing`).
    """
    if scheduler not in (None, "threads", "processes", "local"):
        return None
    from ..cluster import available_cores

    return {"threads": threads or available_cores(), "memory": _memory(memory)}


def _memory(memory: str | None) -> int:
    from ..cluster import available_memory

    return _bytes(memory) if memory else available_memory()


def _by_function(scheduler: str) -> AbstractContextManager[Any]:
    """Set dask's local scheduler by its function rather than its name.

    dask resolves a scheduler *name* by first looking for a distributed client, which imports
    distributed (a third of a second) even when none can exist; a function is used as it is.

    Parameters
    ----------
    scheduler : str
        The scheduler :func:`~cascade.cluster.execution` chose.

    Returns
    -------
    contextlib.AbstractContextManager
        A ``dask.config.set`` for ``threads`` and ``processes``, else a no-op.
    """
    import dask

    if scheduler == "threads":
        from dask.threaded import get as threaded

        return dask.config.set(scheduler=threaded)
    if scheduler == "processes":
        from dask.multiprocessing import get as processes

        return dask.config.set(scheduler=processes)
    return nullcontext()


def _bytes(text: str) -> int:
    from dask.utils import parse_bytes

    from ..errors import CascadeError

    try:
        size = int(parse_bytes(text))
    except (ValueError, TypeError) as err:
        raise CascadeError(f"--memory must be a memory size like 8GB or 500MiB (got {text})") from err
    if size <= 0:
        raise CascadeError(f"--memory must be a memory size above 0 like 8GB or 500MiB (got {text})")
    return size


def _progress() -> Any:
    if not sys.stderr.isatty():
        return nullcontext()
    # one line for the whole run (it is made of many computes: stages, slabs, outputs); under
    # a distributed client it moves slab by slab and the dashboard shows the tasks
    from ..progress import progress_line

    return progress_line(sys.stderr, minimum=2.0)


def existing(path: Path) -> Path:
    """Expand ``~`` in a path option."""
    return path.expanduser()
