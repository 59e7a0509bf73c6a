"""Set up each dask worker process the way the ``cascade`` command sets up its own.

The command tunes glibc's allocator before computing (:mod:`cascade._malloc`); worker
processes of a local cluster or of SLURM jobs start without it, and spent 1.3-1.4x as long
on the same feature blocks. :class:`WorkerSetup` is registered as a worker plugin, so every
worker, including those that connect later (queued SLURM jobs, adaptive scaling), runs it
once when it starts.
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from .._malloc import tune_malloc

__all__ = ["WorkerSetup"]


class WorkerSetup(WorkerPlugin):
    """A worker plugin that tunes the worker process's allocator like the CLI's own process."""

    name = "cascade-worker-setup"
    idempotent = True

    def setup(self, worker: Any) -> None:
        """Run once in each worker process."""
        tune_malloc()
