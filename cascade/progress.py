"""One progress line for a run made of many computes (one per slab, per stage, per output).

Library code reports where it is with :func:`report_progress` and wraps each compute in
:func:`task_counter`; both do nothing unless a front end opened a :func:`progress_line`
(the command line does so on a terminal). Task counting uses dask's local-scheduler
callbacks; under a distributed client the line moves slab by slab and the dashboard shows
the tasks.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, TextIO

__all__ = ["progress_label", "progress_line", "report_progress", "task_counter"]


class _Line:
    def __init__(self, out: TextIO, minimum: float, width: int = 30) -> None:
        self.out = out
        self.minimum = minimum
        self.width = width
        self.start = time.perf_counter()
        self.shown = False
        self.last = 0.0
        self.text_length = 0

    def update(self, label: str, fraction: float, *, force: bool = False) -> None:
        now = time.perf_counter()
        elapsed = now - self.start
        if elapsed < self.minimum or (not force and now - self.last < 0.2):
            return
        self.last = now
        filled = int(round(self.width * min(max(fraction, 0.0), 1.0)))
        bar = "#" * filled + " " * (self.width - filled)
        text = f"[{bar}] {fraction:4.0%} {label}  {elapsed:.1f} s"
        self.out.write("\r" + text.ljust(self.text_length))
        self.out.flush()
        self.text_length = len(text)
        self.shown = True

    def finish(self) -> None:
        """End the current line (the next report starts a new one)."""
        if self.shown:
            self.out.write("\n")
            self.out.flush()
        self.shown = False
        self.text_length = 0


_LINE: ContextVar[_Line | None] = ContextVar("cascade_progress_line", default=None)
_LABEL: ContextVar[str] = ContextVar("cascade_progress_label", default="")


@contextlib.contextmanager
def progress_label(label: str) -> Iterator[None]:
    """Name what the computes inside produce, for reports that give no label of their own.

    Parameters
    ----------
    label : str
        The name, e.g. an output file's.

    Yields
    ------
    None
        While the computes run.
    """
    token = _LABEL.set(label)
    try:
        yield
    finally:
        _LABEL.reset(token)


@contextlib.contextmanager
def progress_line(out: TextIO, *, minimum: float = 2.0) -> Iterator[None]:
    """Show progress reports on ``out`` (one line, redrawn) once a run is ``minimum`` s old.

    Parameters
    ----------
    out : TextIO
        Where the line is drawn (a terminal).
    minimum : float
        Seconds before the line first appears.

    Yields
    ------
    None
        While the run computes.
    """
    line = _Line(out, minimum)
    token = _LINE.set(line)
    try:
        yield
    finally:
        _LINE.reset(token)
        line.finish()


def report_progress(label: str, done: int, total: int) -> None:
    """Report that ``done`` of ``total`` steps of ``label`` are finished.

    Parameters
    ----------
    label : str
        What is being computed.
    done, total : int
        Finished and all steps.
    """
    line = _LINE.get()
    if line is not None and total:
        line.update(label or _LABEL.get(), done / total, force=done == total)
        if done == total:  # one line per stage or output, finished before any summary is printed
            line.finish()


@contextlib.contextmanager
def task_counter(label: str, step: int, steps: int) -> Iterator[None]:
    """Count finished tasks of the computes inside, as step ``step`` of ``steps`` of ``label``.

    Parameters
    ----------
    label : str
        What is being computed.
    step, steps : int
        This step's number and the step count.

    Yields
    ------
    None
        While the computes run.
    """
    line = _LINE.get()
    if line is None:
        yield
        return
    from dask.callbacks import Callback

    counts = {"tasks": 0, "done": 0}
    label = label or _LABEL.get()

    def start(dsk: Any) -> None:
        counts["tasks"] += len(dsk)

    def posttask(key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        counts["done"] += 1
        fraction = counts["done"] / max(counts["tasks"], 1)
        line.update(label, (step + fraction) / steps)

    with Callback(start=start, posttask=posttask):
        yield
