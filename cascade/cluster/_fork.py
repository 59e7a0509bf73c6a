"""How a local cluster starts its workers: forked from one warm process, started early.

A spawned worker starts a fresh interpreter, imports distributed and the engine, and loads the
numba kernels on its first blocks, each worker for itself. With the ``forkserver`` start method a
single server process does that once (:mod:`._preload`) and every worker is forked from it with
everything loaded; forked workers also leave without Python's shutdown (``os._exit``).
:func:`prepare_workers` starts that server while the command still imports and plans, so that the
two overlap.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import dask
import dask.config

from ..errors import CascadeError
from .profiles import _settings

__all__ = ["prepare_workers"]

_PRELOAD = ["cascade.cluster._preload"]


def _start_method(stack: ExitStack, method: object, warm: object) -> None:
    """Set how a local cluster starts its worker processes, for the cluster's lifetime (restarts too).

    ``forkserver`` (warm: forked from a server that ran :mod:`._preload`) or ``spawn``; spawn where
    forkserver does not exist.
    """
    if method not in ("forkserver", "spawn"):
        raise CascadeError(f"local.start-method must be forkserver or spawn, not {method!r}")
    if method not in multiprocessing.get_all_start_methods():
        method = "spawn"
    from distributed.utils import get_mp_context  # first: importing distributed adds its config

    stack.enter_context(dask.config.set({"distributed.worker.multiprocessing-method": method}))
    if method == "forkserver" and warm is True:
        # distributed names its own preload on its first call; ours (which imports distributed) wins.
        # A forkserver this process already runs keeps its own: the worker plugin warms up instead.
        get_mp_context().set_forkserver_preload(_PRELOAD)  # type: ignore[no-untyped-call]


def prepare_workers(
    scheduler: str | None = None,
    *,
    profile: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> bool:
    """Start, in the background, the process a local cluster's workers will be forked from.

    Call it as early as possible with the arguments :func:`execution` will get: the server imports
    the engine and loads its kernels while this process goes on. Anything but a local cluster with
    the ``forkserver`` start method and warm-up on is left alone, and so are settings
    :func:`execution` will refuse (it says why).

    Parameters
    ----------
    scheduler : str, optional
        As for :func:`execution`.
    profile : str or Path, optional
        As for :func:`execution`.
    overrides : mapping, optional
        As for :func:`execution`.

    Returns
    -------
    bool
        True when the server was started (or already ran).
    """
    try:
        settings = _settings(profile, overrides)
    except CascadeError:
        return False
    name = str(scheduler if scheduler is not None else settings["scheduler"]).strip()
    method, warm = settings["local"]["start-method"], settings["warm-up"]
    if name != "local" or method != "forkserver" or warm is not True:
        return False
    if method not in multiprocessing.get_all_start_methods():
        return False
    from multiprocessing import forkserver

    forkserver.set_forkserver_preload(_PRELOAD)
    forkserver.ensure_running()
    return True
