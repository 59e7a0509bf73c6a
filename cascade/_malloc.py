"""glibc allocator tuning for block-wise numeric work.

Large temporary arrays (feature blocks of tens of MB) are by default served by fresh
``mmap`` calls, and every page is faulted in again each time, which costs more than the
filtering itself on our machines. Raising glibc's mmap and trim thresholds keeps freed
blocks in the heap for the next block of the same size: measured 1.3x faster for the
3D feature stack. Peak memory is unchanged (the same blocks are reused), but freed
memory is returned to the system only when the process ends.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["tune_malloc"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


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
