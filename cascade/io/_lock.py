"""One writer per output: an advisory lock file held for the whole run.

``.<name>.lock`` beside the output is locked with ``fcntl.flock`` (released by the kernel
when the process dies, so a killed run never blocks the next one) and holds the pid of its
holder. A second run that wants the same output refuses at once, in one line, before it
computes anything. Locks are re-entrant within a process, so a batch can lock all its
outputs up front and the writers lock them again. While the lock is held, the temporaries
that killed runs left for the output are removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from collections.abc import Iterator, Sequence

from ..errors import ExportError
from ._atomic import remove_stale, stem
from ._sources import one_line

__all__ = ["LockedError", "hold_locks", "lock_path", "output_lock"]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock: outputs are not locked there
    fcntl = None  # type: ignore[assignment]


class LockedError(ExportError):
    """Another process is writing the same output."""


_held: dict[str, tuple[int, int]] = {}  # lock file -> (fd, depth)
_guard = threading.Lock()


def lock_path(final: str) -> str:
    """The lock file of the output ``final``: ``.<name>.lock`` in its folder.

    A sequence whose folders are per slice (``out/{slice_index}/img.png``) is locked in the
    folder above the first templated part, under the rest of its name (``._slice_index__img.png.lock``
    style), so the lock never names a folder ``{slice_index}``.

    Parameters
    ----------
    final : str
        The output path.

    Returns
    -------
    str
        The lock file's path.
    """
    parts = os.path.abspath(final).split(os.sep)
    first = next((i for i, part in enumerate(parts[:-1]) if "{" in part), len(parts) - 1)
    parent = os.sep.join(parts[:first]) or os.sep
    name = "_".join(parts[first:])
    return os.path.join(os.path.realpath(parent), f".{stem(name)}.lock")


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "ignore").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


def _open_locked(path: str, final: str, what: str) -> int:
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as err:
            raise ExportError(f"cannot lock {final}: {one_line(err)}") from err
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_uid != os.getuid():
            os.close(fd)  # a hard link or a foreign file planted there: never truncate it
            raise ExportError(f"cannot lock {final}: {path} is not a lock file of yours; remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            raise LockedError(f"another cascade run is {what} {final} (pid {pid})") from None
        except OSError as err:  # a file system without locks: run unlocked
            os.close(fd)
            if err.errno in (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK):
                return -1
            raise ExportError(f"cannot lock {final}: {one_line(err)}") from err
        try:
            same = os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file its last holder removed after we opened it
            with contextlib.suppress(OSError):  # the pid is for messages only (a full disk is fine)
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)


def _acquire(final: str, what: str) -> str:
    path = lock_path(final)
    with _guard:
        if path in _held:
            fd, depth = _held[path]
            _held[path] = (fd, depth + 1)
            return path
        fd = _open_locked(path, final, what) if fcntl is not None else -1
        _held[path] = (fd, 1)
    remove_stale(final)
    return path


def _release(path: str) -> None:
    with _guard:
        fd, depth = _held[path]
        if depth > 1:
            _held[path] = (fd, depth - 1)
            return
        del _held[path]
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.unlink(path)  # still locked: no other run can hold this file now
            os.close(fd)


@contextlib.contextmanager
def output_lock(final: str, *, what: str = "writing") -> Iterator[None]:
    """Hold the lock of ``final`` for the block; raise :class:`LockedError` if another run holds it.

    Parameters
    ----------
    final : str
        The output path.
    what : str
        What the run does with it, for the message.

    Yields
    ------
    None
        While the lock is held.
    """
    path = _acquire(final, what)
    try:
        yield
    finally:
        _release(path)


@contextlib.contextmanager
def hold_locks(finals: Sequence[str], *, what: str = "writing") -> Iterator[None]:
    """Hold the locks of all ``finals`` (each once) for the block, or none if one is taken.

    Parameters
    ----------
    finals : sequence of str
        Output paths (or folders).
    what : str
        What the run does with them, for the message.

    Yields
    ------
    None
        While the locks are held.
    """
    with contextlib.ExitStack() as stack:
        for final in sorted(dict.fromkeys(os.path.abspath(f) for f in finals)):
            stack.enter_context(output_lock(final, what=what))
        yield
