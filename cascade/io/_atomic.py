"""Atomic outputs: write under a private temporary sibling, rename into place when done.

Temporaries are created exclusively (``O_EXCL``, through :mod:`tempfile`) under
unpredictable names ``.<name>.<random>.<tag>`` in the output's own folder, so a file or
symlink planted there can never be written through. A failed export never leaves anything
that looks complete: the temporaries are removed and the exception re-raised (``OSError``
as :class:`ExportError` naming the output). Temporaries that a killed run left behind are
removed by :func:`remove_stale` once the output is locked (see ``_lock``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Sequence

from ..errors import CascadeError, ExportError
from ._sources import one_line

__all__ = [
    "DISK_FULL",
    "NAME_MAX",
    "atomic_dir",
    "atomic_files",
    "check_name",
    "check_parent",
    "export_error",
    "make_parents",
    "make_temp_dir",
    "make_temp_file",
    "remove",
    "remove_if_empty",
    "remove_stale",
    "replace_dir",
    "stem",
    "umask",
]

#: Longest file name (bytes) that Linux, macOS and Windows file systems accept.
NAME_MAX = 255

#: errno values of a full disk, a quota or a file size limit: nothing of the output is kept.
DISK_FULL = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
_STEM_BYTES = 160
_TAGS = ("partial", "stage", "old")


def stem(name: str) -> str:
    """``name``, or its start and a hash of it, short enough for a temporary's prefix and suffix.

    The hash keeps the hidden siblings (temporaries, ``.resume`` folder, lock) of two long
    names that share their first bytes apart.
    """
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= _STEM_BYTES:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return raw[: _STEM_BYTES - len(digest) - 1].decode("utf-8", "ignore") + "~" + digest


def _temp_parts(final: str, tag: str) -> tuple[str, str, str]:
    parent, name = os.path.split(os.path.abspath(final))
    return parent, f".{stem(name)}.", f".{tag}"


def umask() -> int:
    """The process's umask, read without changing it."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def make_temp_file(final: str, tag: str = "partial") -> str:
    """Create an empty private temporary file beside ``final`` and return its path.

    The file is created with ``O_EXCL`` under an unpredictable name, with the permissions
    a new file of the user would get (``0o666`` less the umask).

    Parameters
    ----------
    final : str
        The final path.
    tag : str
        The temporary's suffix (``.<name>.<random>.<tag>``).

    Returns
    -------
    str
        The temporary's path.
    """
    parent, prefix, suffix = _temp_parts(final, tag)
    fd, path = tempfile.mkstemp(suffix=suffix, prefix=prefix, dir=parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())
    finally:
        os.close(fd)
    return path


def make_temp_dir(final: str, tag: str = "partial") -> str:
    """Create an empty private temporary directory beside ``final`` and return its path."""
    parent, prefix, suffix = _temp_parts(final, tag)
    path = tempfile.mkdtemp(suffix=suffix, prefix=prefix, dir=parent)
    os.chmod(path, 0o777 & ~umask())
    return path


def _stale_pattern(name: str) -> re.Pattern[str]:
    tags = "|".join(_TAGS)
    legacy = rf"\.{re.escape(name)}\.(?:{tags})-\d+"  # cascade 0.1's pid-named temporaries
    fresh = rf"\.{re.escape(stem(name))}\.[A-Za-z0-9_]{{8}}\.(?:{tags})"
    return re.compile(rf"(?:{legacy}|{fresh})")


def remove_stale(final: str) -> list[str]:
    """Remove the temporaries that interrupted runs left for ``final``; return their paths.

    Call it only while holding the output's lock: then no other run is writing them.
    """
    parent, name = os.path.split(os.path.abspath(final))
    pattern = _stale_pattern(name)
    try:
        entries = os.listdir(parent)
    except OSError:
        return []
    removed = [os.path.join(parent, e) for e in entries if pattern.fullmatch(e)]
    removed = [path for path in removed if _owned(path)]  # never another user's files
    for path in removed:
        remove(path)
    return removed


def _owned(path: str) -> bool:
    try:
        return os.lstat(path).st_uid == os.getuid()
    except OSError:
        return False


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

    Parameters
    ----------
    finals : sequence of str
        Output paths.

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
    """Remove ``directories`` (as returned by :func:`make_parents`) that are still empty.

    Parameters
    ----------
    directories : sequence of str
        Directories, outermost first.
    """
    for directory in reversed(directories):
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def check_name(final: str) -> None:
    """Raise :class:`ExportError` if the file name of ``final`` is longer than :data:`NAME_MAX` bytes.

    Parameters
    ----------
    final : str
        The output path.
    """
    size = len(os.fsencode(os.path.basename(os.path.abspath(final))))
    if size > NAME_MAX:
        raise ExportError(
            f"cannot write {final}: the file name is {size} bytes long, more than the {NAME_MAX} "
            "a file system allows; use a shorter name"
        )


def remove_settled(path: str, quiet: float = 0.3, most: float = 3.0) -> None:
    """Remove ``path`` and keep removing it until it has stayed absent for ``quiet`` seconds.

    After a failed write, a store may still finish writes it had started concurrently (zarr
    writes the chunks of one region at once, and the first error does not stop the others);
    such a late write recreates the folder just removed. Bounded by ``most`` seconds.
    """
    start = last_seen = time.monotonic()
    while True:
        if os.path.lexists(path):
            remove(path)
            last_seen = time.monotonic()
        now = time.monotonic()
        if now - last_seen >= quiet or now - start >= most:
            return
        time.sleep(0.05)


def remove(path: str) -> None:
    """Remove a file or directory tree (a symlink itself, never what it points to); missing is fine."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def replace_dir(temp: str, final: str) -> None:
    """Move the directory ``temp`` to ``final``, replacing (then removing) what was there."""
    old = None
    if os.path.lexists(final):
        parent, name = os.path.split(os.path.abspath(final))
        old = os.path.join(parent, f".{stem(name)}.{secrets.token_hex(4)}.old")
        os.replace(final, old)
    os.replace(temp, final)
    if old is not None:
        remove(old)


def _disk_full(folder: str) -> bool:
    """Whether the file system of ``folder`` has (almost) no space left for this user."""
    try:
        info = os.statvfs(folder)
    except (OSError, AttributeError):
        return False
    return info.f_bavail * info.f_frsize < 64 * 1024


def export_error(err: OSError, final: str) -> ExportError:
    """An :class:`ExportError` naming ``final`` for an ``OSError`` (a full disk said plainly).

    Some writers (tifffile) report a short write without an errno: the file system then says
    whether it is full.

    Parameters
    ----------
    err : OSError
        The error.
    final : str
        The output being written.

    Returns
    -------
    ExportError
        The error to raise (``from err``).
    """
    short = err.errno is None and _disk_full(os.path.dirname(os.path.abspath(final)))
    if err.errno in DISK_FULL or short:
        reason = "the disk is full" if err.errno in (errno.ENOSPC, None) else one_line(err)
        return ExportError(f"cannot write {final}: {reason}; nothing was written")
    return ExportError(f"cannot write {final}: {one_line(err)}")


@contextlib.contextmanager
def _cleanup_on_error(temps: Sequence[str], final: str) -> Iterator[None]:
    try:
        yield
    except BaseException as err:
        for temp in temps:
            remove_settled(temp)
        if isinstance(err, OSError) and not isinstance(err, CascadeError):
            raise export_error(err, final) from err
        raise


@contextlib.contextmanager
def atomic_files(finals: Sequence[str]) -> Iterator[list[str]]:
    """Yield temporary paths (created, empty) for ``finals``; move each into place on success.

    On an exception every temporary file is removed and the exception re-raised.

    Parameters
    ----------
    finals : sequence of str
        The final paths.

    Yields
    ------
    list of str
        One temporary path per final path, in the same order.
    """
    temps: list[str] = []
    with _cleanup_on_error(temps, finals[0] if finals else ""):
        for final in finals:
            temps.append(make_temp_file(final))
        yield list(temps)
        for temp, final in zip(temps, finals, strict=True):
            if os.path.isdir(final) and not os.path.islink(final):
                raise ExportError(f"cannot write {final}: a directory of that name exists")
            _keep_mode(final, temp)
            os.replace(temp, final)


def _keep_mode(final: str, temp: str) -> None:
    """Give ``temp`` the permissions of the file ``final`` it replaces (not of a symlink's target)."""
    try:
        info = os.lstat(final)
    except FileNotFoundError:
        return
    if stat.S_ISREG(info.st_mode):
        os.chmod(temp, stat.S_IMODE(info.st_mode))


@contextlib.contextmanager
def atomic_dir(final: str) -> Iterator[str]:
    """Yield a new empty private directory that replaces ``final`` on success."""
    temps: list[str] = []
    with _cleanup_on_error(temps, final):
        temps.append(make_temp_dir(final))
        yield temps[0]
        replace_dir(temps[0], final)
