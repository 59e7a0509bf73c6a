"""Process tuning for block-wise numeric work: glibc's allocator, and a quick exit.

Large temporary arrays (feature blocks of tens of MB) are by default served by fresh
``mmap`` calls, and every page is faulted in again each time, which costs more than the
filtering itself on our machines. Raising glibc's mmap and trim thresholds keeps freed
blocks in the heap for the next block of the same size: measured 1.3x faster for the
3D feature stack. Peak memory is unchanged (the same blocks are reused), but freed
memory is returned to the system only when the process ends.

The same call turns off numpy's ``madvise(MADV_HUGEPAGE)`` on new arrays (unless the user chose
with ``NUMPY_MADVISE_HUGEPAGE``). Freed blocks are reused, so what huge pages cost is paid at the
first touch of a thread's memory: where the kernel compacts memory for madvised regions at fault
time (``/sys/kernel/mm/transparent_hugepage/defrag`` ``madvise``, a common default), each dask
thread's first 64^3 block of ilastik's 3D default features cost +100-220 ms CPU (a block takes
~160 ms) with huge pages, +35-60 ms with 4 KiB pages. What they save is TLB misses: the blocks
after the first cost ~2-3 % more with 4 KiB pages, which a long run pays on every block. Measured
in ``benchmarks/results/features-3d.md``; for long runs the balance is not settled.

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
import os
import sys

__all__ = ["quick_exit", "tune_malloc"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False
_quick = False


def tune_malloc(threshold: int = 1 << 30) -> bool:
    """Raise glibc's mmap/trim thresholds once per process (and stop numpy's huge-page advice);
    False where not glibc."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    _no_huge_page_advice()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    _done = bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, threshold))
    return _done


def _no_huge_page_advice() -> None:
    """numpy's ``madvise(MADV_HUGEPAGE)`` off, unless ``NUMPY_MADVISE_HUGEPAGE`` says otherwise."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    import importlib

    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):  # numpy 2, numpy 1.26
        try:
            setter = importlib.import_module(name)._set_madvise_hugepage
        except (ImportError, AttributeError):
            continue
        setter(False)
        return


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
