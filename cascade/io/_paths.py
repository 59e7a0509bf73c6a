"""Path conventions: ``file.h5/internal/path`` splitting, glob expansion and nicknames.

These follow ilastik's ``PathComponents`` and ``DatasetInfo.create_nickname``: the split
happens at the first container extension in the path, globs are expanded and sorted, and
a nickname is the common prefix of the expanded paths without extension, plus ``-`` and
the internal path with ``/`` replaced by ``-``.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from pathlib import Path

from ..errors import DataError
from ._remote import is_url

__all__ = ["CONTAINER_EXTENSIONS", "Member", "expand_path", "make_nickname", "split_path"]

#: Extensions after which the rest of a path is an internal (dataset) path.
CONTAINER_EXTENSIONS: tuple[str, ...] = (".h5", ".hdf5", ".ilp", ".n5", ".npz", ".zarr")
_SPLIT = re.compile(r"\.(?:h5|hdf5|ilp|n5|npz|zarr)(?=/|$)", re.IGNORECASE)
_GLOB_CHARS = frozenset("*?[")

#: One file of an input: the external (filesystem) path and the internal path or None.
Member = tuple[str, "str | None"]


def split_path(path: str) -> tuple[str, str | None]:
    """Split ``/dir/file.h5/volume/data`` into ``("/dir/file.h5", "volume/data")``.

    The split is at the first ``.h5``, ``.hdf5``, ``.ilp``, ``.n5``, ``.npz`` or ``.zarr``
    that ends a path component. Backslashes are treated as ``/``.

    Parameters
    ----------
    path : str
        A filesystem path, optionally followed by an internal path.

    Returns
    -------
    external : str
        The path of the file or directory on disk.
    internal : str or None
        The internal path without leading or trailing ``/``, or None if there is none.
    """
    path = path.replace("\\", "/")
    match = _SPLIT.search(path)
    if match is None:
        return path, None
    external, internal = path[: match.end()], path[match.end() :].strip("/")
    return external, internal or None


def _has_glob(text: str) -> bool:
    return any(ch in _GLOB_CHARS for ch in text)


def expand_path(path: str) -> tuple[list[Member], bool]:
    """Expand ``os.pathsep``-separated lists and globs into sorted input members.

    Parameters
    ----------
    path : str
        One path, a glob such as ``"dir/img_*.png"`` or ``"dir/*.h5/data"``, or several
        of those joined by ``os.pathsep``.

    Returns
    -------
    members : list of (external, internal)
        Sorted members; internal globs are left for the container reader to expand.
    is_stack : bool
        True if ``path`` named a glob or a list (even if it matched one file).

    Raises
    ------
    DataError
        If a file or glob matches nothing.
    """
    if is_url(path):  # checked when opened: a URL is one store, never a glob or a list
        return [split_path(path)], False
    external, internal = split_path(os.path.expanduser(path))
    if os.path.exists(external):
        return [(external, internal)], False
    parts = [p for p in path.split(os.pathsep) if p] if os.pathsep in path else [path]
    members: list[Member] = []
    for part in parts:
        external, internal = split_path(os.path.expanduser(part))
        if _has_glob(external):
            found = sorted(glob.glob(external))
            if not found:
                raise DataError(f"input not found: no file matches {part}")
            members.extend((f, internal) for f in found)
        elif os.path.exists(external):
            members.append((external, internal))
        else:
            raise DataError(f"input not found: {part}")
    return sorted(members, key=lambda m: (m[0], m[1] or "")), len(parts) > 1 or _has_glob(path)


def _strip_extension(external: str) -> str:
    match = _SPLIT.search(external)
    if match is not None and match.end() == len(external):
        base = external[: match.start()]
        # a URL's ".ome.zarr" goes whole: a dot left in a nickname would cut the output name
        return base[:-4] if is_url(external) and base.lower().endswith(".ome") else base
    return os.path.splitext(external)[0]


def make_nickname(members: Sequence[Member]) -> str:
    """ilastik's nickname for the expanded input ``members``.

    The common prefix of the absolute external paths without extension gives the base
    name (``stack_at-<first name>`` if there is none); the common prefix of the internal
    paths, with ``/`` replaced by ``-``, is appended after a ``-``.

    Parameters
    ----------
    members : sequence of (str, str or None)
        (external path, internal path) of every file of the input.

    Returns
    -------
    str
        The nickname.

    Examples
    --------
    >>> make_nickname([("/d/file.h5", "volume/data")])
    'file-volume-data'
    >>> make_nickname([("/d/img_001.png", None), ("/d/img_002.png", None)])
    'img_00'

    A URL is named as the same path on disk would be, except that ``.ome.zarr`` is removed
    whole: the output name ``{nickname}_{result_type}.h5`` has its extension replaced, so a
    dot left in the nickname (``platy-raw.ome-s6``) would cut it to ``platy-raw.h5``. (ilastik
    names a URL after its last component only, ``s6`` here, so that every scale of every
    image gets the same name.)

    >>> make_nickname([("https://host/i2k/platy-raw.ome.zarr", "s6")])
    'platy-raw-s6'
    """
    bases = [_strip_extension(ext if is_url(ext) else os.path.abspath(ext)) for ext, _ in members]
    prefix = os.path.commonprefix(bases)  # noqa: RUF071 - character-wise, as ilastik does
    name = Path(prefix).name if prefix else ""
    if not name:
        name = "stack_at-" + Path(bases[0]).name
    internal = os.path.commonprefix([(i or "") for _, i in members]).strip("/")  # noqa: RUF071
    return name + ("-" + internal.replace("/", "-") if internal else "")
