"""Runtime tunables read from ``dask.config`` under ``cascade.``, validated when read.

They can come from a dask config file or from environment variables such as
``DASK_CASCADE__IN_MEMORY_STAGE=128MiB``; a value that is not what the key expects is a
:class:`~cascade.errors.CascadeError` naming the key and its environment variable, raised by
:func:`check_config` before a run computes or writes anything.
"""

from __future__ import annotations

import dask
from dask.utils import parse_bytes

from .errors import CascadeError

__all__ = ["check_config", "config_count", "config_size"]

#: Results up to this size are kept in memory rather than stored in scratch.
IN_MEMORY_STAGE = "cascade.in-memory-stage"
#: Results up to this size are kept in memory (``persist``) rather than stored in scratch;
#: ``dask.config`` key ``cascade.in-memory-stage`` overrides it (bytes or "64 MiB").
IN_MEMORY_BYTES = 64 * 2**20
#: Blocks per stored slab (default: from the threads; see ``cascade.io._store``).
SLAB_BLOCKS = "cascade.slab-blocks"


def _where(key: str) -> str:
    env = "DASK_" + key.upper().replace(".", "__").replace("-", "_")
    return f"dask config {key} (environment variable {env})"


def config_size(key: str, default: int) -> int:
    """The byte size set for ``key`` (an integer or a size like ``"64 MiB"``), or ``default``.

    Raises
    ------
    CascadeError
        If the value is not a size of at least 0 bytes.
    """
    value = dask.config.get(key, default)
    try:
        if isinstance(value, bool):
            raise TypeError("a boolean is not a size")
        size = int(parse_bytes(value)) if isinstance(value, str) else int(value)
    except (TypeError, ValueError, OverflowError) as err:
        raise CascadeError(f"{_where(key)} is {value!r}, not a size like 64MiB or 0") from err
    if size < 0:
        raise CascadeError(f"{_where(key)} is {value!r}; a size must be at least 0 bytes")
    return size


def config_count(key: str) -> int | None:
    """The whole number >= 1 set for ``key``, or None when it is not set.

    Raises
    ------
    CascadeError
        If the value is not a whole number >= 1.
    """
    value = dask.config.get(key, None)
    if value is None:
        return None
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise TypeError("not a whole number")
        count = int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError, OverflowError) as err:
        raise CascadeError(f"{_where(key)} is {value!r}, not a whole number >= 1") from err
    if count < 1:
        raise CascadeError(f"{_where(key)} is {value!r}, not a whole number >= 1")
    return count


def check_config() -> None:
    """Validate every ``cascade.*`` tunable a run reads (call before computing anything).

    Raises
    ------
    CascadeError
        Naming the first key whose value is invalid and its environment variable.
    """
    config_size(IN_MEMORY_STAGE, IN_MEMORY_BYTES)
    config_count(SLAB_BLOCKS)
