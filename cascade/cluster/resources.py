"""How many threads and how much memory cascade may use here.

Precedence: ``CASCADE_THREADS`` / ``CASCADE_MEMORY``, then ilastik's ``LAZYFLOW_THREADS`` /
``LAZYFLOW_TOTAL_RAM_MB``, then the smallest of the cgroup, SLURM and CPU-affinity limits, then the
whole machine.
"""

from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from dask.utils import parse_bytes

from ..errors import CascadeError

if TYPE_CHECKING:
    pass

__all__ = ["available_cores", "available_memory"]

_CGROUP_ROOT = Path("/sys/fs/cgroup")
_PROC_SELF_CGROUP = Path("/proc/self/cgroup")


def available_cores() -> int:
    """Return how many threads cascade may use on this machine.

    ``CASCADE_THREADS``, then ``LAZYFLOW_THREADS`` (0, ilastik's "no worker threads", counts as 1),
    then the smallest of the cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``, on this process's
    cgroup and its ancestors), ``SLURM_CPUS_PER_TASK`` or ``SLURM_CPUS_ON_NODE``, the CPU affinity mask
    and ``os.cpu_count()``.

    Returns
    -------
    int
        At least 1.
    """
    for name in ("CASCADE_THREADS", "LAZYFLOW_THREADS"):
        text = os.environ.get(name, "").strip()
        if text:
            return max(1, _env_int(name, text, minimum=1 if name == "CASCADE_THREADS" else 0))
    limits = [os.cpu_count() or 1]
    quota = _cgroup_cpus()
    slurm = _env_positive("SLURM_CPUS_PER_TASK") or _env_positive("SLURM_CPUS_ON_NODE")
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    limits += [n for n in (quota, slurm, affinity) if n]
    return max(1, min(limits))


def available_memory() -> int:
    """Return how many bytes of memory cascade may use on this machine.

    ``CASCADE_MEMORY`` (bytes or a size like ``"8GiB"``), then ``LAZYFLOW_TOTAL_RAM_MB`` (MiB), then the
    smallest of the cgroup limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``, on this process's
    cgroup and its ancestors), the SLURM allocation (``SLURM_MEM_PER_NODE``, or ``SLURM_MEM_PER_CPU``
    times the CPUs; MiB) and the physical memory. Using the whole machine inside a smaller allocation is
    how ilastik jobs got OOM-killed (ilastik issue #2427).

    Returns
    -------
    int
        Bytes, at least 1.
    """
    text = os.environ.get("CASCADE_MEMORY", "").strip()
    if text:
        return _parse_memory(text, "CASCADE_MEMORY")
    text = os.environ.get("LAZYFLOW_TOTAL_RAM_MB", "").strip()
    if text:
        return _env_int("LAZYFLOW_TOTAL_RAM_MB", text, minimum=500) * 2**20  # ilastik refuses < 500
    import psutil

    limits = [int(psutil.virtual_memory().total)]
    per_cpu = _env_positive("SLURM_MEM_PER_CPU")
    cpus = _env_positive("SLURM_CPUS_ON_NODE") or _env_positive("SLURM_CPUS_PER_TASK") or 1
    slurm_mib = _env_positive("SLURM_MEM_PER_NODE") or (per_cpu * cpus if per_cpu else None)
    limits += [n for n in (_cgroup_memory(), slurm_mib and slurm_mib * 2**20) if n]
    return max(1, min(limits))


def _env_int(name: str, text: str, *, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise CascadeError(f"environment variable {name}={text!r} must be a whole number >= {minimum}")
    return value


def _env_positive(name: str) -> int | None:
    """A positive integer set by SLURM, or None when unset or malformed (SLURM owns these variables)."""
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return None
    return value if value > 0 else None


def _parse_memory(value: object, what: str) -> int:
    try:
        size = int(parse_bytes(value)) if isinstance(value, str) else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError) as err:
        raise CascadeError(f"{what}={value!r} is not a memory size like '8GiB'") from err
    if size <= 0:
        raise CascadeError(f"{what}={value!r} must be positive")
    return size


def _cgroup_dirs(controller: str) -> tuple[bool, list[Path]]:
    """Whether cgroup v2 is mounted, and the folders whose limits bind this process (own cgroup first)."""
    unified = (_CGROUP_ROOT / "cgroup.controllers").is_file()
    base = _CGROUP_ROOT if unified else _CGROUP_ROOT / controller
    own = "/"
    try:
        lines = _PROC_SELF_CGROUP.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) == 3 and (fields[1] == "" if unified else controller in fields[1].split(",")):
            own = fields[2]
    parts = PurePosixPath(own).parts[1:]
    return unified, [base.joinpath(*parts[:i]) for i in range(len(parts), -1, -1)]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _cgroup_cpus() -> int | None:
    unified, folders = _cgroup_dirs("cpu")
    quotas = []
    for folder in folders:
        if unified:
            quota, _, period = (_read(folder / "cpu.max") or "max").partition(" ")
        else:
            quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        try:
            ratio = float(quota) / float(period or 100000)
        except (ValueError, ZeroDivisionError):
            continue
        if ratio > 0:
            quotas.append(ratio)
    return math.ceil(min(quotas)) if quotas else None


def _cgroup_memory() -> int | None:
    unified, folders = _cgroup_dirs("memory")
    name = "memory.max" if unified else "memory.limit_in_bytes"
    limits = [int(text) for folder in folders if (text := _read(folder / name)).isdigit()]
    return min(limits) if limits else None
