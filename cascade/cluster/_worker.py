"""Set up each dask worker process the way the ``cascade`` command sets up its own, and warm it.

The command tunes glibc's allocator before computing (:mod:`cascade._malloc`); worker
processes of a local cluster or of SLURM jobs start without it, and spent 1.3-1.4x as long
on the same feature blocks. A fresh worker also imports the engine and loads its numba kernels
on its first blocks (:mod:`._warm`). :class:`WorkerSetup` is registered as a worker plugin, so
every worker, including those that connect later (queued SLURM jobs, adaptive scaling), runs it
once when it starts: the allocator is tuned, the exit made quick, and the engine warmed before any
task is deserialised (a worker forked from a warm forkserver, see :mod:`._preload`, finds it
done). The warm-up runs in the worker's event loop on purpose: importing dask.array in a thread
while the loop unpickles a task that imports it too failed with a circular import.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from .._malloc import quick_exit, tune_malloc
from ._warm import warm_up

__all__ = ["LIGHT_PERIODS", "HeartbeatQuiet", "WorkerSetup", "lighten", "quiet_heartbeats"]


class WorkerSetup(WorkerPlugin):
    """A worker plugin: the allocator tuned like the CLI's own process, the kernels warmed.

    Parameters
    ----------
    warm : bool
        Warm the worker up (:func:`~cascade.cluster._warm.warm_up`) before it takes tasks.
    light : bool
        Sample the worker less (``cascade.cluster.light-monitoring``): a SLURM job's worker does
        not get the submitting process's ``dask.config``, so its periodic callbacks are set here.
    """

    name = "cascade-worker-setup"
    idempotent = True

    def __init__(self, warm: bool = True, light: bool = False) -> None:
        self.warm = warm
        self.light = light

    def setup(self, worker: Any) -> None:
        """Run once in each worker process."""
        tune_malloc()
        quick_exit()
        quiet_heartbeats()
        if self.light:
            lighten(worker)
        if self.warm:
            try:
                warm_up()
            except Exception as err:  # not fatal: the first task then loads what it needs
                logging.getLogger(__name__).warning("cascade could not warm this worker up: %s", err)


#: Worker states (``distributed.core.Status`` names) in which a failed heartbeat is expected.
_ENDING = frozenset({"closing", "closing_gracefully", "closed", "stopping", "stopped", "failed"})


class HeartbeatQuiet(logging.Filter):
    """No traceback for a worker's failed heartbeat: none at all while a worker closes.

    distributed logs ``Failed to communicate with scheduler during heartbeat.`` with the whole
    traceback when a heartbeat meets a closed connection, which happens when a cluster is torn
    down while a heartbeat is in flight (the scheduler already dropped the worker): a traceback
    on the command's stderr after a complete run. While a worker of the process closes the record
    is dropped; otherwise it is kept as one line with the error's text. One filter per process
    (:func:`quiet_heartbeats`); the record does not say which worker logged it.

    Parameters
    ----------
    workers : callable
        Returns the process's workers (default: every live ``distributed.Worker``).
    """

    def __init__(self, workers: Callable[[], Iterable[Any]] | None = None) -> None:
        super().__init__()
        self.workers = workers or _live_workers

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a heartbeat failure while closing; the traceback folded into the message."""
        if not str(record.msg).startswith("Failed to communicate with scheduler during heartbeat"):
            return True
        states = [getattr(w.status, "name", w.status) for w in self.workers()]
        if any(state in _ENDING for state in states):
            return False
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            record.msg = f"{record.msg} ({type(error).__name__}: {error})"
        record.exc_info = None
        record.exc_text = None
        return True


def _live_workers() -> list[Any]:
    from distributed import Worker

    return list(Worker._instances)


def quiet_heartbeats() -> None:
    """Install :class:`HeartbeatQuiet` on distributed's worker logger, once per process."""
    logger = logging.getLogger("distributed.worker")
    if not any(isinstance(f, HeartbeatQuiet) for f in logger.filters):
        logger.addFilter(HeartbeatQuiet())


#: Milliseconds between calls of a worker's periodic callbacks with light monitoring (None: stopped).
LIGHT_PERIODS: dict[str, int | None] = {
    "profile": None,
    "profile-cycle": None,
    "monitor": 2000,
    "tick": 500,
    "memory_monitor": 500,
}


def lighten(worker: Any) -> None:
    """Stop the worker's statistical profiler and slow its system, tick and memory monitors.

    Parameters
    ----------
    worker : distributed.Worker
        The worker (callbacks it does not have are skipped).
    """
    callbacks = getattr(worker, "periodic_callbacks", {})
    for name, period in LIGHT_PERIODS.items():
        callback = callbacks.get(name)
        if callback is None:
            continue
        if period is None:
            callback.stop()
        else:
            callback.callback_time = max(callback.callback_time, period)
