"""Where cascade computes: threads, processes, a local cluster, SLURM, or a running scheduler.

Execution is a choice made around the computation, never inside it::

    with execution("local") as info:      # or "threads", "processes", "slurm", "tcp://host:8786"
        print(info.dashboard_link)        # callers print; this module never does
        da.store(...)                     # plain dask calls run on the chosen scheduler

Settings: :mod:`.profiles`; sizes: :mod:`.resources`; SLURM: :mod:`.slurm`.

Safe by default: a local cluster, its workers and its dashboard listen on 127.0.0.1; a SLURM scheduler
listens on the profile's ``interface`` (the one compute nodes reach), its dashboard on loopback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import dask.config

from ..errors import CascadeError
from ._dashboard import LazyDashboard
from ._fork import _start_method
from .profiles import _folder, _http_address, _reason, _settings, _whole
from .resources import _parse_memory, available_cores, available_memory
from .slurm import _start_slurm

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["SCHEDULERS", "ExecutionInfo", "execution"]

#: Scheduler names; any other accepted value is the address of a running scheduler.
SCHEDULERS = ("threads", "processes", "local", "slurm")
_ADDRESS = re.compile(r"[A-Za-z0-9_.\-]+:\d+|\[[0-9A-Fa-f:]+\]:\d+")
#: ``cascade.cluster.light-monitoring``: distributed's own sampling in the scheduler, nannies and
#: workers of a cluster cascade starts (an idle 2-worker local cluster: 0.12 CPU s/s -> 0.03).
LIGHT_MONITORING = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.tick.interval": "500ms",
    "distributed.worker.memory.monitor-interval": "500ms",
}


@dataclass(frozen=True)
class ExecutionInfo:
    """What :func:`execution` set up.

    Attributes
    ----------
    scheduler : str
        ``"threads"``, ``"processes"``, ``"local"``, ``"slurm"`` or the scheduler address.
    dashboard_link : str or None
        URL of the dask dashboard's status page; None for threads and processes, or when switched off.
    n_workers : int
        Threads (threads), processes (processes), or workers connected when the block starts.
    client : distributed.Client or None
        The client of a distributed scheduler, None for threads and processes.
    """

    scheduler: str
    dashboard_link: str | None
    n_workers: int
    client: Client | None


@contextmanager
def execution(
    scheduler: str | None = None,
    *,
    profile: str | Path | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Iterator[ExecutionInfo]:
    """Run the dask computations of a ``with`` block on the chosen scheduler, then tear it down.

    Parameters
    ----------
    scheduler : str, optional
        ``"threads"``, ``"processes"``, ``"local"`` (a ``distributed.LocalCluster`` with a dashboard),
        ``"slurm"`` (a ``dask_jobqueue.SLURMCluster``), or the address of a running scheduler such as
        ``"tcp://10.0.0.5:8786"``. None: the profile's ``scheduler``, else ``cascade.cluster.scheduler``
        (``"threads"``).
    profile : str or Path, optional
        A cluster profile (see :func:`load_profile`) layered over ``dask.config``'s ``cascade.cluster``.
    threads : int, optional
        Total threads of threads, processes and local (default :func:`available_cores`).
    memory_limit : str, optional
        Total memory of a local cluster, split between its workers (default :func:`available_memory`).
    overrides : mapping, optional
        Settings that win over the profile, with dotted keys (``{"slurm.jobs": 4}``) or nested.

    Yields
    ------
    ExecutionInfo
        The scheduler, dashboard link, worker count and client.

    Raises
    ------
    CascadeError
        Unknown scheduler or setting, a size option the scheduler cannot honour, a cluster that cannot
        start, or SLURM workers that did not connect in time (the message names their queue state).
    """
    settings = _settings(profile, overrides)
    name = str(scheduler if scheduler is not None else settings["scheduler"]).strip()
    if name not in SCHEDULERS and not ("://" in name or _ADDRESS.fullmatch(name)):
        raise CascadeError(
            f"unknown scheduler {name!r}; choose {', '.join(SCHEDULERS)} or an address like tcp://host:8786"
        )
    if threads is not None and name not in ("threads", "processes", "local"):
        raise CascadeError(f"threads sizes threads, processes and local runs, not {name!r}; use slurm.cores")
    if memory_limit is not None and name != "local":
        raise CascadeError(f"memory_limit sizes a local cluster, not {name!r}; use slurm.memory for SLURM")
    n_threads = _whole(threads, "threads") if threads is not None else None
    if name in ("threads", "processes"):
        n = n_threads or available_cores()
        with dask.config.set(scheduler=name, num_workers=n):
            yield ExecutionInfo(name, None, n, None)
        return
    light = settings["light-monitoring"]
    if not isinstance(light, bool):
        raise CascadeError(f"cascade.cluster.light-monitoring must be true or false, not {light!r}")
    with ExitStack() as stack:
        light = light and name in ("local", "slurm")  # a running scheduler's workers are not ours
        if light:
            import distributed  # noqa: F401  (first: its defaults must exist before they are changed)

            stack.enter_context(dask.config.set(LIGHT_MONITORING))
        if name == "local":
            _start_method(stack, settings["local"]["start-method"], settings["warm-up"])
            client = _start_local(stack, settings["local"], n_threads, memory_limit)
            dashboard = settings["local"]["dashboard-address"]
        elif name == "slurm":
            client = _start_slurm(stack, settings["slurm"])
            dashboard = settings["slurm"]["dashboard-address"]
        else:
            client, dashboard = _connect(stack, name, settings["connect-timeout"]), ""
        _set_up_workers(client, settings["warm-up"], light)
        n_workers = len(client.scheduler_info()["workers"])
        yield ExecutionInfo(name, _dashboard_link(client, dashboard), n_workers, client)


def _set_up_workers(client: Client, warm: object, light: bool) -> None:
    """Tune (and warm) every worker process, present and future, like the CLI's own; see :mod:`._worker`."""
    from ._worker import WorkerSetup

    if not isinstance(warm, bool):
        raise CascadeError(f"cascade.cluster.warm-up must be true or false, not {warm!r}")
    try:
        client.register_plugin(WorkerSetup(warm=warm, light=light))
    except (OSError, TimeoutError) as err:
        raise CascadeError(f"cannot set up the dask workers: {_reason(err)}") from err


def _start_local(stack: ExitStack, s: Mapping[str, Any], threads: int | None, memory: str | None) -> Client:
    from distributed import Client, LocalCluster

    if threads is None:
        threads = available_cores() if s["threads"] is None else _whole(s["threads"], "local.threads")
    per_worker = min(_whole(s["threads-per-worker"], "local.threads-per-worker"), threads)
    n_workers = threads // per_worker
    if memory is not None:
        budget = _parse_memory(memory, "memory_limit")
    elif s["memory-limit"] is not None:
        budget = _parse_memory(s["memory-limit"], "local.memory-limit")
    else:
        budget = available_memory()
    try:
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=n_workers,
            threads_per_worker=per_worker,
            memory_limit=budget // n_workers,
            processes=True,
            host=s["host"],
            dashboard_address=_http_address(s["dashboard-address"]),
            scheduler_kwargs={"dashboard": False},
            local_directory=_folder(s["local-directory"]),
        )
    except (OSError, ValueError, RuntimeError) as err:
        raise CascadeError(f"cannot start the local cluster: {_reason(err)}") from err
    stack.enter_context(cluster)
    if s["dashboard-address"] is not None:  # bokeh is loaded when the dashboard is first opened
        LazyDashboard(cluster.scheduler)
    client: Client = stack.enter_context(Client(cluster))  # type: ignore[no-untyped-call]
    return client


def _connect(stack: ExitStack, address: str, timeout: object) -> Client:
    from distributed import Client

    try:
        client: Client = Client(address, timeout=timeout)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as err:
        raise CascadeError(f"cannot reach the dask scheduler at {address}: {_reason(err)}") from err
    stack.enter_context(client)
    return client


def _dashboard_link(client: Client, configured: object) -> str | None:
    """The dashboard's URL on the host it listens on (the scheduler's for a wildcard or ""); None if off."""
    from distributed.comm.addressing import get_address_host
    from distributed.utils import format_dashboard_link

    info = client.scheduler_info()
    port = info.get("services", {}).get("dashboard")
    if configured is None or port is None:
        return None
    host = str(configured or "").rpartition(":")[0].strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = get_address_host(info["address"])
    return str(format_dashboard_link(host, port))  # type: ignore[no-untyped-call]
