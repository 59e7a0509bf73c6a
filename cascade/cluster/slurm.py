"""SLURM through dask-jobqueue: the cluster, its job script, and what its queue says on a timeout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import dask.config

from ..errors import CascadeError
from .profiles import PROFILES_DIR, _folder, _http_address, _reason, _settings, _whole

if TYPE_CHECKING:
    from dask_jobqueue.slurm import SLURMCluster
    from distributed import Client

__all__ = ["slurm_job_script"]

_SLURM_KEYS = (
    "cores", "processes", "memory", "walltime", "queue", "account", "interface", "job-extra-directives",
    "job-directives-skip", "job-script-prologue", "death-timeout", "local-directory", "log-directory",
    "shared-temp-directory", "python",
)  # fmt: skip


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
        from ..io import MIN_SLAB_BLOCKS

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
