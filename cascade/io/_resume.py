"""Resumable chunk-wise writes: an interrupted export picks up where it stopped.

A resumable output is written into a stable hidden sibling ``.<name>.resume`` holding a
``.cascade-resume`` folder with the job's fingerprint and one marker file per finished
block. Run the same export again and only the blocks without a marker are computed and
written; when all are there the state folder is removed and the output renamed into place.
An interrupted run (Ctrl-C, a killed job, lost workers) leaves only the hidden folder, never
anything under the final name; a run that fails on bad input or output removes it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import stat
from collections.abc import Iterator
from typing import Any

import dask.array as da
import numpy as np

from ..errors import CascadeError, ExportError
from ._atomic import DISK_FULL, export_error, remove, remove_settled, replace_dir, stem, umask
from ._store import store_slabs

__all__ = [
    "MarkingTarget",
    "ResumeState",
    "block_name",
    "resumable_blocks",
    "resumable_dir",
    "store_resumable",
]

_STATE = ".cascade-resume"


class ResumeState:
    """The markers of one resumable output directory."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.done_dir = os.path.join(directory, _STATE, "done")
        os.makedirs(self.done_dir, exist_ok=True)

    def done(self) -> set[str]:
        """Names of the finished blocks."""
        return set(os.listdir(self.done_dir))

    def mark(self, name: str) -> None:
        """Record a finished block (after its data is on disk)."""
        with open(os.path.join(self.done_dir, name), "w", encoding="utf-8"):
            pass


def _matches(directory: str, fingerprint: str) -> bool:
    try:
        with open(os.path.join(directory, _STATE, "job.json"), encoding="utf-8") as fh:
            return bool(json.load(fh).get("fingerprint") == fingerprint)
    except (OSError, ValueError):
        return False


def _work_dir(final: str) -> str:
    parent, name = os.path.split(os.path.abspath(final))
    return os.path.join(parent, f".{stem(name)}.resume")


def _own_dir(path: str) -> bool:
    """Whether ``path`` is a real directory (not a symlink) of this user."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()


def resumable_blocks(final: str, fingerprint: str) -> int:
    """How many blocks an interrupted run of the same job left for ``final`` (0 if none).

    Parameters
    ----------
    final : str
        The output path.
    fingerprint : str
        The job's fingerprint (same project, inputs, options and export).

    Returns
    -------
    int
        The number of blocks already written.
    """
    work = _work_dir(final)
    if not (_own_dir(work) and _matches(work, fingerprint)):
        return 0
    return len(ResumeState(work).done())


@contextlib.contextmanager
def resumable_dir(final: str, fingerprint: str) -> Iterator[tuple[str, bool]]:
    """Yield (working directory, resuming?) for a directory output such as zarr or n5.

    The working directory is reused when it was left by an interrupted run with the same
    fingerprint; otherwise it is created afresh. On success the resume state is removed and
    the directory renamed to ``final`` (replacing an older output of that name).
    """
    work = _work_dir(final)
    resuming = _own_dir(work) and _matches(work, fingerprint)
    if os.path.lexists(work) and not os.path.islink(work) and not _own_dir(work):
        raise ExportError(f"cannot write {final}: {work} is in the way (not a folder of yours); remove it")
    try:
        if not resuming:
            remove(work)  # another job's, or anything planted there (a symlink is not followed)
            os.mkdir(work, 0o777 & ~umask())  # exclusive: fails if something reappeared
            os.mkdir(os.path.join(work, _STATE))
            with open(os.path.join(work, _STATE, "job.json"), "x", encoding="utf-8") as fh:
                json.dump({"fingerprint": fingerprint}, fh)
        yield work, resuming
        remove(os.path.join(work, _STATE))
        replace_dir(work, final)
    except CascadeError:
        remove_settled(work)  # bad input or output: nothing worth resuming
        raise
    except OSError as err:
        if err.errno in DISK_FULL:  # a full disk keeps nothing; other errors keep the blocks
            remove_settled(work)
        raise export_error(err, final) from err


class MarkingTarget:
    """A store target that records each finished block after writing it.

    Blocks are cells of the grid ``chunks``; a write of a region spanning several (whole) cells
    marks each of them.
    """

    def __init__(self, target: Any, state: ResumeState, chunks: tuple[int, ...]) -> None:
        self.target = target
        self.state = state
        self.chunks = chunks

    def __setitem__(self, index: tuple[slice, ...], value: np.ndarray) -> None:
        self.target[index] = value
        for key in _cells(index, self.chunks):
            self.state.mark(block_name(key))


def _cells(index: tuple[slice, ...], chunks: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Grid indices of the cells of ``chunks`` that the region ``index`` meets."""
    ranges = [range(s.start // c, -(-s.stop // c)) for s, c in zip(index, chunks, strict=True)]
    return list(itertools.product(*ranges))


def block_name(key: tuple[int, ...]) -> str:
    """The marker name of the block with grid index ``key``."""
    return ".".join(map(str, key)) or "0"


def store_resumable(
    source: da.Array,
    target: Any,
    state: ResumeState,
    *,
    compute_chunks: tuple[tuple[int, ...], ...] | None = None,
    block: tuple[int, ...] | None = None,
    label: str = "",
) -> tuple[int, int]:
    """Store the blocks of ``source`` that ``state`` has no marker for; return (written, total).

    Markers are kept per ``block`` (the target's chunk shape; default: the first chunk of
    each axis of ``source``). Every edge between two chunks of ``source`` must fall on a block
    edge, so that every store writes whole blocks (a chunk of ``source`` may hold several).
    Chunks are stored slab by slab (see ``_store``), each block marked done once it is on disk;
    a chunk is skipped when all of its blocks are marked.
    """
    done = state.done()
    grid = block or tuple(c[0] for c in source.chunks)
    edges = [np.cumsum((0, *c)) for c in source.chunks]

    def stored(key: tuple[int, ...]) -> bool:
        region = tuple(slice(int(e[i]), int(e[i + 1])) for e, i in zip(edges, key, strict=True))
        return all(block_name(cell) in done for cell in _cells(region, grid))

    marking = MarkingTarget(target, state, grid)
    return store_slabs(source, marking, compute_chunks=compute_chunks, skip=stored, label=label)
