"""Process tuning for block-wise numeric work: glibc's allocator, and a quick exit.

Large temporary arrays (feature blocks of tens of MB) are by default served by fresh
``mmap`` calls, and every page is faulted in again each time, which costs more than the
filtering itself on our machines. Raising glibc's mmap and trim thresholds keeps freed
blocks in the heap for the next block of the same size: measured 1.3x faster for the
3D feature stack. Peak memory is unchanged (the same blocks are reused), but freed
memory is returned to the system only when the process ends.

:func:`quick_exit` skips the garbage collection of a process's last moments: when Python shuts
down after a run it clears every module, and the collections that follow (numba's, dask's and
distributed's many objects) took 2-6 s of CPU on the benchmark machine, in the ``cascade``
command and in every worker process, after the results were written.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import gc
import sys

__all__ = ["quick_exit", "tune_malloc"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False
_quick = False


def tune_malloc(threshold: int = 1 << 30) -> bool:
    """Raise glibc's mmap/trim thresholds once per process; False where not glibc."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    _done = bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, threshold))
    return _done


def quick_exit() -> None:
    """At interpreter exit, freeze the garbage collector instead of collecting (once per process).

    Registered with :mod:`atexit` as early as possible, so that it runs after the handlers of the
    libraries imported later (h5py, zarr and the like still close their files); objects are still
    freed by reference counting, only the collections of cycles that nobody will use are skipped.
    """
    global _quick
    if not _quick:
        atexit.register(gc.freeze)
        _quick = True
