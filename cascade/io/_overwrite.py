"""Outputs that would destroy what a run reads: refused before anything is computed.

An output is compared with every input, mask and project by file identity (device and
inode, so symlinks and hard links are seen through) and, inside hdf5, n5 and zarr
containers, by dataset path: writing a new dataset beside an input's dataset is allowed
(ilastik keeps the other datasets of a file), writing over it or around it is not.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..errors import ExportError
from ._paths import split_path

__all__ = ["check_overwrites"]


def check_overwrites(outputs: Sequence[tuple[str, str]], reads: Sequence[tuple[str, str]]) -> None:
    """Raise :class:`ExportError` if an output overlaps something the run reads.

    Parameters
    ----------
    outputs : sequence of (str, str)
        ``(output, container)``: what ``check_target`` lists (a file, or
        ``container/internal/path``) and the file or folder it is written in.
    reads : sequence of (str, str)
        ``(path, description)``: inputs in ilastik's path convention (``file.h5/data``),
        masks, the project.
    """
    located = [(_location(path), what) for path, what in reads]
    for output, container in outputs:
        where = _location(output, container)
        for read, what in located:
            if _overlaps(where, read):
                raise ExportError(
                    f"the output {output} would overwrite {what}; choose another "
                    "--output_filename_format (or --output_internal_path)"
                )


#: A file's identity (device and inode, or its resolved path if it does not exist) and the
#: dataset path inside it.
Location = tuple[Any, tuple[str, ...]]


def _location(path: str, container: str | None = None) -> Location:
    """Where ``path`` (``file`` or ``file.h5/internal``) lives; ``container`` overrides the split."""
    internal: str | None
    if container is not None and path.startswith(container + "/"):
        external, internal = container, path[len(container) + 1 :]
    elif container is not None:
        external, internal = path, None
    else:
        external, internal = split_path(path)
    try:
        info = os.stat(external)
        identity: Any = (info.st_dev, info.st_ino)
    except OSError:
        identity = os.path.realpath(external)
    return identity, tuple(p for p in (internal or "").split("/") if p)


def _overlaps(a: Location, b: Location) -> bool:
    """Same file, and one dataset path is the other or contains it (the whole file contains all)."""
    shorter = min(len(a[1]), len(b[1]))
    return bool(a[0] == b[0] and a[1][:shorter] == b[1][:shorter])
