"""Atomic outputs: write under a hidden temporary sibling name, rename into place when done.

A failed export never leaves anything that looks complete: the partial output is removed
and the exception re-raised (``OSError`` as :class:`ExportError` naming the output).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator, Sequence

from ..errors import CascadeError, ExportError
from ._sources import one_line

__all__ = [
    "NAME_MAX",
    "atomic_dir",
    "atomic_files",
    "check_name",
    "check_parent",
    "hidden_sibling",
    "make_parents",
    "partial_name",
    "remove",
    "remove_if_empty",
]


#: Longest file name (bytes) that Linux, macOS and Windows file systems accept.
NAME_MAX = 255


def hidden_sibling(final: str, suffix: str) -> str:
    """``dir/.<name><suffix>``, with ``<name>`` shortened to fit :data:`NAME_MAX` bytes.

    A name too long for the suffix keeps its start and gets a hash of the whole name, so
    that the sibling stays unique to ``final`` (a legal 250-byte output name still works).
    """
    parent, name = os.path.split(os.path.abspath(final))
    wanted = f".{name}{suffix}"
    if len(os.fsencode(wanted)) <= NAME_MAX:
        return os.path.join(parent, wanted)
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
    room = NAME_MAX - len(os.fsencode(suffix)) - len(digest) - 2
    start = os.fsencode(name)[: max(room, 0)].decode("utf-8", "ignore")
    return os.path.join(parent, f".{start}~{digest}{suffix}")


def partial_name(final: str, tag: str = "partial") -> str:
    """The hidden temporary sibling of ``final``: ``dir/.<name>.<tag>-<pid>`` (see :func:`hidden_sibling`)."""
    return hidden_sibling(final, f".{tag}-{os.getpid()}")


def _nearest_existing(directory: str) -> str:
    """``directory`` itself or its nearest ancestor that exists."""
    while not os.path.lexists(directory) and os.path.dirname(directory) != directory:
        directory = os.path.dirname(directory)
    return directory


def check_parent(final: str) -> None:
    """Raise :class:`ExportError` unless the directory for ``final`` exists or can be created.

    Missing directories are fine (ilastik creates them, as :func:`make_parents` does when the
    export starts); the nearest existing ancestor must be a writable directory.
    """
    check_name(final.replace("{slice_index}", "0"))  # sequences check each file name later
    parent = os.path.dirname(os.path.abspath(final))
    existing = _nearest_existing(parent)
    if not os.path.isdir(existing):
        raise ExportError(f"cannot write {final}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {final}: the directory {existing} is not writable")


def make_parents(finals: Sequence[str]) -> list[str]:
    """Create the missing directories that will hold ``finals`` (``mkdir -p``, as ilastik does).

    Returns
    -------
    list of str
        The directories created, outermost first (for :func:`remove_if_empty`).
    """
    created: list[str] = []
    for parent in dict.fromkeys(os.path.dirname(os.path.abspath(f)) for f in finals):
        missing = []
        while not os.path.lexists(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        for directory in reversed(missing):
            try:
                os.mkdir(directory)
            except FileExistsError:
                continue  # made by a concurrent export meanwhile
            except OSError as err:
                remove_if_empty(created)
                raise ExportError(f"cannot create the directory {directory}: {one_line(err)}") from err
            created.append(directory)
    return created


def remove_if_empty(directories: Sequence[str]) -> None:
    """Remove ``directories`` (as returned by :func:`make_parents`) that are still empty."""
    for directory in reversed(directories):
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def check_name(final: str) -> None:
    """Raise :class:`ExportError` if the file name of ``final`` is longer than :data:`NAME_MAX` bytes."""
    size = len(os.fsencode(os.path.basename(os.path.abspath(final))))
    if size > NAME_MAX:
        raise ExportError(
            f"cannot write {final}: the file name is {size} bytes long, more than the {NAME_MAX} "
            "a file system allows; use a shorter name"
        )


def remove(path: str) -> None:
    """Remove a file or directory tree; missing paths are fine."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _replace_dir(temp: str, final: str) -> None:
    old = None
    if os.path.lexists(final):
        old = partial_name(final, "old")
        os.replace(final, old)
    os.replace(temp, final)
    if old is not None:
        remove(old)


@contextlib.contextmanager
def _cleanup_on_error(temps: Sequence[str], final: str) -> Iterator[None]:
    try:
        yield
    except BaseException as err:
        for temp in temps:
            remove(temp)
        if isinstance(err, OSError) and not isinstance(err, CascadeError):
            raise ExportError(f"cannot write {final}: {one_line(err)}") from err
        raise


@contextlib.contextmanager
def atomic_files(finals: Sequence[str]) -> Iterator[list[str]]:
    """Yield temporary paths for ``finals``; move each into place when the block succeeds.

    On an exception every temporary file is removed and the exception re-raised.
    """
    temps = [partial_name(final) for final in finals]
    with _cleanup_on_error(temps, finals[0] if finals else ""):
        yield temps
        for temp, final in zip(temps, finals, strict=True):
            if os.path.isdir(final):
                raise ExportError(f"cannot write {final}: a directory of that name exists")
            os.replace(temp, final)


@contextlib.contextmanager
def atomic_dir(final: str) -> Iterator[str]:
    """Yield a temporary directory path (not created) that replaces ``final`` on success."""
    temp = partial_name(final)
    with _cleanup_on_error([temp], final):
        yield temp
        _replace_dir(temp, final)
