"""Where cascade computes: threads, processes, a local cluster, SLURM, or a running scheduler.

Execution is a choice made around the computation, never inside it::

    with execution("local") as info:      # or "threads", "processes", "slurm", "tcp://host:8786"
        print(info.dashboard_link)        # callers print; this module never does
        da.store(...)                     # plain dask calls run on the chosen scheduler

Settings live in ``dask.config`` under ``cascade.cluster`` (packaged defaults in ``cluster.yaml``, merged
when this module is imported). Later layers win: those defaults, the user's dask config (files and
``DASK_CASCADE__CLUSTER__...`` variables), a profile (``<name>.yaml`` from a folder of
``cascade.cluster.profile-dirs`` or the packaged ``cluster_profiles``, or a path), then ``overrides`` (the
command line). ``slurm.*`` keys left ``null`` fall back to ``jobqueue.slurm.*``.

Sizes that nothing sets come from :func:`available_cores` and :func:`available_memory`. Precedence: an
explicit argument, then a profile or override, then ``CASCADE_THREADS`` / ``CASCADE_MEMORY``, then
ilastik's ``LAZYFLOW_THREADS`` / ``LAZYFLOW_TOTAL_RAM_MB``, then the smallest of the cgroup, SLURM and
CPU-affinity limits, then the whole machine.

Safe by default: a local cluster, its workers and its dashboard listen on 127.0.0.1; a SLURM scheduler
listens on the profile's ``interface`` (the one compute nodes reach), its dashboard on loopback.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import dask
import dask.config
import yaml
from dask.utils import parse_bytes

from .errors import CascadeError

if TYPE_CHECKING:
    from dask_jobqueue.slurm import SLURMCluster
    from distributed import Client

__all__ = [
    "PROFILES_DIR",
    "SCHEDULERS",
    "ExecutionInfo",
    "available_cores",
    "available_memory",
    "execution",
    "load_profile",
    "parse_overrides",
    "slurm_job_script",
]

#: Scheduler names; any other accepted value is the address of a running scheduler.
SCHEDULERS = ("threads", "processes", "local", "slurm")

_DEFAULTS_FILE = Path(__file__).with_name("cluster.yaml")
#: Profiles shipped with the package (``configs/cluster`` in a checkout links here).
PROFILES_DIR = Path(__file__).with_name("cluster_profiles")
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_PROC_SELF_CGROUP = Path("/proc/self/cgroup")
_FREE_FORM = frozenset({"scheduler-options"})  # mappings whose keys are passed on unchecked
_SLURM_KEYS = (
    "cores", "processes", "memory", "walltime", "queue", "account", "interface", "job-extra-directives",
    "job-directives-skip", "job-script-prologue", "death-timeout", "local-directory", "log-directory",
    "shared-temp-directory", "python",
)  # fmt: skip
_ADDRESS = re.compile(r"[A-Za-z0-9_.\-]+:\d+|\[[0-9A-Fa-f:]+\]:\d+")

# libyaml's loader when PyYAML has one: every run imports this module, and it parses 10x faster
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
with _DEFAULTS_FILE.open(encoding="utf-8") as _file:
    _PACKAGED: dict[str, Any] = yaml.load(_file, Loader=_SafeLoader)
dask.config.update_defaults(_PACKAGED)
_KNOWN: dict[str, Any] = _PACKAGED["cascade"]["cluster"]


@dataclass(frozen=True)
class ExecutionInfo:
    """What :func:`execution` set up.

    Attributes
    ----------
    scheduler : str
        ``"threads"``, ``"processes"``, ``"local"``, ``"slurm"`` or the scheduler address.
    dashboard_link : str or None
        URL of the dask dashboard's status page; None for threads and processes, or when switched off.
    n_workers : int
        Threads (threads), processes (processes), or workers connected when the block starts.
    client : distributed.Client or None
        The client of a distributed scheduler, None for threads and processes.
    """

    scheduler: str
    dashboard_link: str | None
    n_workers: int
    client: Client | None


# --------------------------------------------------------------------------- resources


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


# --------------------------------------------------------------------------- settings


def load_profile(name_or_path: str | Path) -> dict[str, Any]:
    """Read a cluster profile: the settings of ``cascade.cluster`` that it changes.

    Parameters
    ----------
    name_or_path : str or Path
        A profile name, looked up as ``<name>.yaml`` in ``cascade.cluster.profile-dirs`` and then among
        the packaged profiles (:data:`PROFILES_DIR`: ``local``, ``slurm-example``, ``slurm-local``); or
        the path of a YAML file.

    Returns
    -------
    dict
        Nested settings with kebab-case keys, e.g. ``{"slurm": {"cores": 8, "memory": "32GiB"}}``.

    Raises
    ------
    CascadeError
        The profile is unknown, unreadable, or names a setting that does not exist.
    """
    path = _find_profile(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise CascadeError(f"cannot read cluster profile {path}: {_reason(err)}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CascadeError(f"cluster profile {path} must be a mapping of settings, not {type(data).__name__}")
    return _normalise(data, _KNOWN, f"cluster profile {path}")


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Turn command-line ``key=value`` strings into ``overrides`` for :func:`execution`.

    Parameters
    ----------
    items : iterable of str
        Like ``"slurm.jobs=4"``, ``"slurm.walltime=02:00:00"``, ``"slurm.job-extra-directives=[--qos=long]"``.
        Values are YAML; times with colons stay strings.

    Returns
    -------
    dict
        Dotted keys and their values.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise CascadeError(f"cluster option {item!r} is not key=value, like slurm.jobs=4")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        if isinstance(value, (int, float)) and not isinstance(value, bool) and ":" in text:
            value = text  # YAML 1.1 would read 01:00:00 as 3600
        out[key.strip()] = value
    return out


def _profile_dirs() -> list[Path]:
    extra = dask.config.get("cascade.cluster.profile-dirs", None) or []
    return [Path(os.path.expandvars(str(p))).expanduser() for p in extra] + [PROFILES_DIR]


def _find_profile(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith((".yaml", ".yml")) or "/" in text or os.sep in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise CascadeError(f"cluster profile file {path} not found")
        return path
    folders = _profile_dirs()
    for folder in folders:
        for suffix in (".yaml", ".yml"):
            if (folder / f"{text}{suffix}").is_file():
                return folder / f"{text}{suffix}"
    known = sorted({p.stem for f in folders if f.is_dir() for p in f.glob("*.y*ml")})
    raise CascadeError(
        f"unknown cluster profile {text!r}; known: {', '.join(known) or 'none'} "
        f"(searched {', '.join(map(str, folders))})"
    )


def _normalise(
    tree: Mapping[str, Any], known: Mapping[str, Any], where: str, prefix: str = ""
) -> dict[str, Any]:
    """Kebab-case the keys of ``tree`` and check them against the packaged settings."""
    out: dict[str, Any] = {}
    for raw, value in tree.items():
        key = str(raw).replace("_", "-")
        if key not in known:
            known_keys = ", ".join(sorted(known))
            raise CascadeError(f"unknown setting {prefix + key!r} in {where}; known: {known_keys}")
        if isinstance(known[key], dict):
            if not isinstance(value, Mapping):
                raise CascadeError(f"setting {prefix + key!r} in {where} must be a mapping, not {value!r}")
            if key not in _FREE_FORM:
                value = _normalise(value, known[key], where, f"{prefix}{key}.")
        out[key] = value
    return out


def _nest(dotted: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in dotted.items():
        *parents, leaf = str(key).split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def _settings(profile: str | Path | None, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    layers = [_normalise(dask.config.get("cascade.cluster"), _KNOWN, "dask config cascade.cluster")]
    if profile is not None:
        layers.append(load_profile(profile))
    if overrides:
        layers.append(_normalise(_nest(overrides), _KNOWN, "cluster overrides"))
    merged: dict[str, Any] = dask.config.merge(*layers)
    return merged


def _whole(value: object, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CascadeError(f"{what} must be a whole number >= {minimum}, not {value!r}")
    return value


def _reason(err: BaseException) -> str:
    """The innermost cause of a third-party error, on one line."""
    while err.__cause__ is not None:
        err = err.__cause__
    return " ".join(str(err).split()) or type(err).__name__


def _folder(value: object) -> str | None:
    return None if value is None else os.path.expanduser(os.path.expandvars(str(value)))


# --------------------------------------------------------------------------- execution


@contextmanager
def execution(
    scheduler: str | None = None,
    *,
    profile: str | Path | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Iterator[ExecutionInfo]:
    """Run the dask computations of a ``with`` block on the chosen scheduler, then tear it down.

    Parameters
    ----------
    scheduler : str, optional
        ``"threads"``, ``"processes"``, ``"local"`` (a ``distributed.LocalCluster`` with a dashboard),
        ``"slurm"`` (a ``dask_jobqueue.SLURMCluster``), or the address of a running scheduler such as
        ``"tcp://10.0.0.5:8786"``. None: the profile's ``scheduler``, else ``cascade.cluster.scheduler``
        (``"threads"``).
    profile : str or Path, optional
        A cluster profile (see :func:`load_profile`) layered over ``dask.config``'s ``cascade.cluster``.
    threads : int, optional
        Total threads of threads, processes and local (default :func:`available_cores`).
    memory_limit : str, optional
        Total memory of a local cluster, split between its workers (default :func:`available_memory`).
    overrides : mapping, optional
        Settings that win over the profile, with dotted keys (``{"slurm.jobs": 4}``) or nested.

    Yields
    ------
    ExecutionInfo
        The scheduler, dashboard link, worker count and client.

    Raises
    ------
    CascadeError
        Unknown scheduler or setting, a size option the scheduler cannot honour, a cluster that cannot
        start, or SLURM workers that did not connect in time (the message names their queue state).
    """
    settings = _settings(profile, overrides)
    name = str(scheduler if scheduler is not None else settings["scheduler"]).strip()
    if name not in SCHEDULERS and not ("://" in name or _ADDRESS.fullmatch(name)):
        raise CascadeError(
            f"unknown scheduler {name!r}; choose {', '.join(SCHEDULERS)} or an address like tcp://host:8786"
        )
    if threads is not None and name not in ("threads", "processes", "local"):
        raise CascadeError(f"threads sizes threads, processes and local runs, not {name!r}; use slurm.cores")
    if memory_limit is not None and name != "local":
        raise CascadeError(f"memory_limit sizes a local cluster, not {name!r}; use slurm.memory for SLURM")
    n_threads = _whole(threads, "threads") if threads is not None else None
    if name in ("threads", "processes"):
        n = n_threads or available_cores()
        with dask.config.set(scheduler=name, num_workers=n):
            yield ExecutionInfo(name, None, n, None)
        return
    with ExitStack() as stack:
        if name == "local":
            client = _start_local(stack, settings["local"], n_threads, memory_limit)
            dashboard = settings["local"]["dashboard-address"]
        elif name == "slurm":
            client = _start_slurm(stack, settings["slurm"])
            dashboard = settings["slurm"]["dashboard-address"]
        else:
            client, dashboard = _connect(stack, name, settings["connect-timeout"]), ""
        _set_up_workers(client)
        n_workers = len(client.scheduler_info()["workers"])
        yield ExecutionInfo(name, _dashboard_link(client, dashboard), n_workers, client)


def _set_up_workers(client: Client) -> None:
    """Tune every worker process (present and future) like the CLI's own; see :mod:`cascade._worker`."""
    from ._worker import WorkerSetup

    try:
        client.register_plugin(WorkerSetup())
    except (OSError, TimeoutError) as err:
        raise CascadeError(f"cannot set up the dask workers: {_reason(err)}") from err


def _start_local(stack: ExitStack, s: Mapping[str, Any], threads: int | None, memory: str | None) -> Client:
    from distributed import Client, LocalCluster

    if threads is None:
        threads = available_cores() if s["threads"] is None else _whole(s["threads"], "local.threads")
    per_worker = min(_whole(s["threads-per-worker"], "local.threads-per-worker"), threads)
    n_workers = threads // per_worker
    if memory is not None:
        budget = _parse_memory(memory, "memory_limit")
    elif s["memory-limit"] is not None:
        budget = _parse_memory(s["memory-limit"], "local.memory-limit")
    else:
        budget = available_memory()
    try:
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=n_workers,
            threads_per_worker=per_worker,
            memory_limit=budget // n_workers,
            processes=True,
            host=s["host"],
            dashboard_address=_http_address(s["dashboard-address"]),
            scheduler_kwargs={"dashboard": s["dashboard-address"] is not None},
            local_directory=_folder(s["local-directory"]),
        )
    except (OSError, ValueError, RuntimeError) as err:
        raise CascadeError(f"cannot start the local cluster: {_reason(err)}") from err
    stack.enter_context(cluster)
    client: Client = stack.enter_context(Client(cluster))  # type: ignore[no-untyped-call]
    return client


def _start_slurm(stack: ExitStack, s: Mapping[str, Any]) -> Client:
    from dask_jobqueue.slurm import SLURMCluster
    from distributed import Client

    kwargs = _slurm_kwargs(s)
    if shutil.which("sbatch") is None:
        raise CascadeError("scheduler 'slurm' needs SLURM's sbatch on PATH: run on a submit node")
    jobs = _whole(s["jobs"], "slurm.jobs")
    low = _whole(s["minimum-jobs"], "slurm.minimum-jobs", 0)
    high = _whole(s["maximum-jobs"], "slurm.maximum-jobs")
    wait = _whole(s["wait-for-workers"], "slurm.wait-for-workers", 0)
    timeout = s["worker-timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise CascadeError(f"slurm.worker-timeout must be a positive number of seconds, not {timeout!r}")
    if not isinstance(s["adaptive"], bool):
        raise CascadeError(f"slurm.adaptive must be true or false, not {s['adaptive']!r}")
    try:
        cluster = SLURMCluster(**kwargs)
    except (ValueError, TypeError, OSError, RuntimeError) as err:
        raise CascadeError(f"cannot set up the SLURM cluster: {_reason(err)}") from err
    stack.enter_context(cluster)
    _test_submit(cluster)
    client: Client = stack.enter_context(Client(cluster))  # type: ignore[no-untyped-call]
    if s["adaptive"]:
        cluster.adapt(minimum_jobs=low, maximum_jobs=max(low, high))
        wait = wait if low else 0  # an adaptive cluster may start empty: nothing to wait for
    else:
        cluster.scale(jobs=jobs)  # type: ignore[no-untyped-call]
    if dask.config.get("cascade.slab-blocks", None) is None:
        # workers may still be queued when the first slab is cut: size slabs for the cluster
        # the profile asks for (4 blocks per thread), not for the workers connected so far
        cores = s["cores"] or dask.config.get("jobqueue.slurm.cores", None) or 1
        most = max(low, high) if s["adaptive"] else jobs
        from .io._store import MIN_SLAB_BLOCKS

        slab = max(MIN_SLAB_BLOCKS, 4 * int(cores) * most)
        stack.enter_context(dask.config.set({"cascade.slab-blocks": slab}))
    if wait:
        try:
            client.wait_for_workers(wait, timeout=timeout)
        except TimeoutError as err:
            raise CascadeError(
                f"fewer than {wait} SLURM worker(s) connected within {timeout:g} s; "
                f"{_queue_state(cluster, s['log-directory'])}"
            ) from err
    return client


def _slurm_kwargs(s: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of SLURMCluster; unset ones are left to dask-jobqueue's jobqueue.slurm config."""
    kwargs = {key.replace("-", "_"): s[key] for key in _SLURM_KEYS if s[key] is not None}
    _require_job_size(kwargs)
    for key in ("log_directory", "shared_temp_directory"):  # local_directory: the job's shell expands it
        if key in kwargs:
            kwargs[key] = _folder(kwargs[key])
    kwargs.setdefault("python", dask.config.get("jobqueue.slurm.python", None) or sys.executable)
    options = {**(dask.config.get("jobqueue.slurm.scheduler-options", None) or {}), **s["scheduler-options"]}
    interface = kwargs.get("interface") or dask.config.get("jobqueue.slurm.interface", None)
    if not interface and not {"host", "interface"} & set(options):  # else the scheduler binds everywhere
        raise CascadeError(
            "set slurm.interface to the network interface the compute nodes reach the scheduler on, "
            "like --cluster-option slurm.interface=ib0 (or eth0; `ip addr` lists them), "
            "or slurm.scheduler-options.host"
        )
    extra = s["worker-extra-args"]
    if extra is None:
        extra = dask.config.get("jobqueue.slurm.worker-extra-args", None) or []
    extra = list(extra)
    if s["worker-dashboard-address"] is not None:
        extra += ["--dashboard-address", str(s["worker-dashboard-address"])]
    options.update(
        dashboard=s["dashboard-address"] is not None, dashboard_address=_http_address(s["dashboard-address"])
    )
    return {**kwargs, "worker_extra_args": extra, "scheduler_options": options}


def _require_job_size(kwargs: Mapping[str, Any]) -> None:
    """Cores and memory of a worker job must be set (dask-jobqueue's own advice is Python code)."""
    missing = [
        key
        for key in ("cores", "memory")
        if kwargs.get(key) is None and dask.config.get(f"jobqueue.slurm.{key}", None) is None
    ]
    if missing:
        example = {"cores": "slurm.cores=8", "memory": "slurm.memory=32GiB"}
        options = " ".join(f"--cluster-option {example[key]}" for key in missing)
        needed = " and ".join("slurm." + key for key in missing)
        raise CascadeError(
            f"SLURM worker jobs need {needed} (per job): pass {options}, or --profile with a copy "
            f"of {PROFILES_DIR / 'slurm-example.yaml'} filled in for your site"
        )


def slurm_job_script(
    scheduler: str | None = None,
    *,
    profile: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> str:
    """The batch script dask-jobqueue submits for each SLURM worker job, built without starting anything.

    The settings are checked as :func:`execution` checks them; no scheduler is started, no job is
    submitted, and ``sbatch`` need not exist (so a profile can be checked anywhere). The scheduler's
    address, known only once it runs, appears as ``tcp://<insert-scheduler-address-here>:8786``.

    Parameters
    ----------
    scheduler : str, optional
        Must be ``"slurm"``, or None for the profile's (or dask config's) scheduler.
    profile : str or Path, optional
        A cluster profile (see :func:`load_profile`).
    overrides : mapping, optional
        Settings that win over the profile (see :func:`execution`).

    Returns
    -------
    str
        The script, ``#!/usr/bin/env bash`` and ``#SBATCH`` lines first.

    Raises
    ------
    CascadeError
        The scheduler is not SLURM, or a setting is missing or invalid.
    """
    from dask_jobqueue.slurm import SLURMJob

    settings = _settings(profile, overrides)
    name = str(scheduler if scheduler is not None else settings["scheduler"]).strip()
    if name != "slurm":
        raise CascadeError(
            f"a job script exists for the slurm scheduler only, not {name!r}: add --scheduler slurm "
            "or a SLURM --profile"
        )
    kwargs = _slurm_kwargs(settings["slurm"])
    kwargs.pop("scheduler_options")
    kwargs.pop("shared_temp_directory", None)
    logs = kwargs.get("log_directory") or _folder(dask.config.get("jobqueue.slurm.log-directory", None))
    made = _missing_folders(logs)  # dask-jobqueue creates the log folder: a dry run leaves nothing behind
    try:
        address = "tcp://<insert-scheduler-address-here>:8786"  # known only once a scheduler runs
        job = SLURMJob(address, name="dummy-name", **kwargs)  # type: ignore[no-untyped-call]
        script: str = job.job_script()  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, OSError) as err:
        raise CascadeError(f"cannot build the SLURM job script: {_reason(err)}") from err
    finally:
        for folder in made:
            with suppress(OSError):
                os.rmdir(folder)
    return script


def _missing_folders(folder: str | None) -> list[str]:
    """``folder`` and its missing ancestors, innermost first (empty if it exists or is None)."""
    missing = []
    path = os.path.abspath(folder) if folder else None
    while path and not os.path.lexists(path) and os.path.dirname(path) != path:
        missing.append(path)
        path = os.path.dirname(path)
    return missing


def _http_address(dashboard: object) -> str:
    """Where the scheduler's HTTP server listens: the dashboard's address, or loopback without one."""
    return "127.0.0.1:0" if dashboard is None else str(dashboard)


def _test_submit(cluster: SLURMCluster) -> None:
    """Let ``sbatch --test-only`` vet the job script (partition, account, limits) before any job runs."""
    script: str = cluster.job_script()  # type: ignore[no-untyped-call]
    try:
        done = subprocess.run(
            ["sbatch", "--test-only"], input=script, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CascadeError(f"sbatch --test-only failed: {err}") from err
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()] or [f"exit {done.returncode}"]
        raise CascadeError(f"SLURM rejects the worker job: {lines[-1].strip()}")


def _queue_state(cluster: SLURMCluster, log_directory: object) -> str:
    """One line on the cluster's jobs from squeue, for a timeout message."""
    ids = [str(job.job_id) for job in cluster.workers.values() if getattr(job, "job_id", None)]
    if not ids:
        return "no job was submitted (see the sbatch error logged above)"
    try:
        done = subprocess.run(
            ["squeue", "-h", "-j", ",".join(ids), "-o", "%i %T %r"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"squeue failed: {err}"
    rows = [line.split(maxsplit=2) for line in done.stdout.splitlines() if line.strip()]
    states = [f"job {r[0]} {r[1]}" + (f" ({r[2]})" if len(r) > 2 and r[2] != "None" else "") for r in rows]
    gone = sorted(set(ids) - {r[0] for r in rows})
    if gone:
        logs = _folder(log_directory or dask.config.get("jobqueue.slurm.log-directory", None))
        logs = logs or "the submit directory"
        states.append(f"job(s) {', '.join(gone)} no longer queued (see their output in {logs})")
    return "squeue: " + "; ".join(states)


def _connect(stack: ExitStack, address: str, timeout: object) -> Client:
    from distributed import Client

    try:
        client: Client = Client(address, timeout=timeout)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as err:
        raise CascadeError(f"cannot reach the dask scheduler at {address}: {_reason(err)}") from err
    stack.enter_context(client)
    return client


def _dashboard_link(client: Client, configured: object) -> str | None:
    """The dashboard's URL on the host it listens on (the scheduler's for a wildcard or ""); None if off."""
    from distributed.comm.addressing import get_address_host
    from distributed.utils import format_dashboard_link

    info = client.scheduler_info()
    port = info.get("services", {}).get("dashboard")
    if configured is None or port is None:
        return None
    host = str(configured or "").rpartition(":")[0].strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = get_address_host(info["address"])
    return str(format_dashboard_link(host, port))  # type: ignore[no-untyped-call]
