"""Imported by the forkserver a local cluster forks its workers from: everything loaded once.

With ``cascade.cluster.local.start-method: forkserver`` (the default), :mod:`.execution` lists
this module in the forkserver's preload. The forkserver imports it once, before it forks the
first worker, so every worker process starts with distributed and the engine imported, its
numba kernels loaded and its allocator tuned (forked processes inherit all three), instead of
each spawned worker paying for them on its first tasks. Importing this module is what it does;
nothing else imports it.
"""

from __future__ import annotations

import logging

import distributed  # noqa: F401  (what every worker needs first)

from .._malloc import tune_malloc
from ._warm import warm_up

tune_malloc()
try:
    warm_up()
except Exception as err:  # the forkserver must start anyway: each worker then loads what it needs
    logging.getLogger(__name__).warning("cascade could not warm the worker forkserver up: %s", err)
