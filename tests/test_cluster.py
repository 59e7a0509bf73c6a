"""cascade.cluster: resource detection, profiles, and real runs on local, SLURM and running schedulers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import dask
import dask.array as da
import numpy as np
import psutil
import pytest
from helpers import slurm_node_idle
from scipy import ndimage

from cascade import cluster
from cascade.cluster import (
    available_cores,
    available_memory,
    execution,
    load_profile,
    parse_overrides,
    profiles,
    resources,
    slurm,
)
from cascade.cluster._dashboard import lazy_dashboard
from cascade.errors import CascadeError

PROFILES = cluster.PROFILES_DIR
CHECKOUT = Path(__file__).resolve().parents[1]
MiB = 2**20
_ENV = (
    "CASCADE_THREADS", "CASCADE_MEMORY", "LAZYFLOW_THREADS", "LAZYFLOW_TOTAL_RAM_MB", "SLURM_CPUS_PER_TASK",
    "SLURM_CPUS_ON_NODE", "SLURM_MEM_PER_NODE", "SLURM_MEM_PER_CPU",
)  # fmt: skip


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> SimpleNamespace:
    """A pretend 16-core, 64 GiB machine with no limits: empty env, empty cgroup tree, full affinity."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    root, proc = tmp_path / "cgroup", tmp_path / "proc-self-cgroup"
    root.mkdir()
    proc.write_text("0::/\n")
    monkeypatch.setattr(resources, "_CGROUP_ROOT", root)
    monkeypatch.setattr(resources, "_PROC_SELF_CGROUP", proc)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(total=64 * 2**30))
    return SimpleNamespace(root=root, proc=proc, monkeypatch=monkeypatch)


def _cgroup_v2(machine: SimpleNamespace, files: dict[str, str], own: str = "/") -> None:
    (machine.root / "cgroup.controllers").write_text("cpu memory\n")
    machine.proc.write_text(f"0::{own}\n")
    for rel, text in files.items():
        (machine.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (machine.root / rel).write_text(text)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, 16),
        ({"CASCADE_THREADS": "3", "LAZYFLOW_THREADS": "5", "SLURM_CPUS_PER_TASK": "2"}, 3),
        ({"LAZYFLOW_THREADS": "5", "SLURM_CPUS_PER_TASK": "2"}, 5),
        ({"LAZYFLOW_THREADS": "0"}, 1),
        ({"SLURM_CPUS_PER_TASK": "2", "SLURM_CPUS_ON_NODE": "8"}, 2),
        ({"SLURM_CPUS_ON_NODE": "4"}, 4),
        ({"SLURM_CPUS_ON_NODE": "garbage"}, 16),
    ],
)
def test_cores_from_environment(machine: SimpleNamespace, env: dict[str, str], expected: int) -> None:
    for name, value in env.items():
        machine.monkeypatch.setenv(name, value)
    assert available_cores() == expected


def test_cores_from_affinity_and_cgroups(machine: SimpleNamespace) -> None:
    machine.monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    assert available_cores() == 6
    _cgroup_v2(machine, {"cpu.max": "max 100000\n"})
    assert available_cores() == 6
    # The limit sits on an ancestor of the process's own cgroup (as in a SLURM step); 1.5 CPUs round up.
    _cgroup_v2(
        machine, {"job/cpu.max": "150000 100000\n", "job/step/cpu.max": "max 100000\n"}, own="/job/step"
    )
    assert available_cores() == 2
    machine.monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert available_cores() == 1


def test_cores_from_cgroup_v1(machine: SimpleNamespace) -> None:
    (machine.root / "cpu").mkdir()
    (machine.root / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (machine.root / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cores() == 3
    (machine.root / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert available_cores() == 16


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, 64 * 2**30),
        ({"CASCADE_MEMORY": "2GiB", "LAZYFLOW_TOTAL_RAM_MB": "512", "SLURM_MEM_PER_NODE": "100"}, 2 * 2**30),
        ({"CASCADE_MEMORY": "1000000"}, 1_000_000),
        ({"LAZYFLOW_TOTAL_RAM_MB": "512", "SLURM_MEM_PER_NODE": "100"}, 512 * MiB),
        ({"SLURM_MEM_PER_NODE": "1024"}, 1024 * MiB),
        ({"SLURM_MEM_PER_NODE": "0"}, 64 * 2**30),  # SLURM's "all the node's memory"
        ({"SLURM_MEM_PER_CPU": "100", "SLURM_CPUS_ON_NODE": "4"}, 400 * MiB),
    ],
)
def test_memory_from_environment(machine: SimpleNamespace, env: dict[str, str], expected: int) -> None:
    for name, value in env.items():
        machine.monkeypatch.setenv(name, value)
    assert available_memory() == expected


def test_memory_from_cgroups(machine: SimpleNamespace) -> None:
    _cgroup_v2(machine, {"memory.max": "max\n"})
    assert available_memory() == 64 * 2**30
    _cgroup_v2(machine, {"memory.max": "max\n", "job/memory.max": f"{3 * 2**30}\n"}, own="/job")
    assert available_memory() == 3 * 2**30
    machine.monkeypatch.setenv("SLURM_MEM_PER_NODE", "1024")
    assert available_memory() == 2**30


def test_memory_from_cgroup_v1_unlimited_is_the_machine(machine: SimpleNamespace) -> None:
    (machine.root / "memory").mkdir()
    (machine.root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert available_memory() == 64 * 2**30
    (machine.root / "memory" / "memory.limit_in_bytes").write_text(f"{5 * 2**30}\n")
    assert available_memory() == 5 * 2**30


@pytest.mark.parametrize(
    ("name", "value", "probe"),
    [
        ("CASCADE_THREADS", "many", available_cores),
        ("CASCADE_THREADS", "0", available_cores),
        ("LAZYFLOW_THREADS", "-2", available_cores),
        ("CASCADE_MEMORY", "lots", available_memory),
        ("LAZYFLOW_TOTAL_RAM_MB", "4G", available_memory),
    ],
)
def test_bad_resource_variables_name_the_variable(
    machine: SimpleNamespace, name: str, value: str, probe: object
) -> None:
    machine.monkeypatch.setenv(name, value)
    with pytest.raises(CascadeError, match=name):
        probe()  # type: ignore[operator]


# --------------------------------------------------------------------------- profiles and settings


@pytest.mark.parametrize("path", sorted(PROFILES.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_profiles_load(path: Path) -> None:
    profile = load_profile(path.stem)
    assert profile == load_profile(path)
    assert profile["scheduler"] in cluster.SCHEDULERS


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(CascadeError, match=r"unknown cluster profile 'nope'; known: .*slurm-local") as err:
        load_profile("nope")
    assert "\n" not in str(err.value)
    with pytest.raises(CascadeError, match="not found"):
        load_profile(Path("/no/such/profile.yaml"))


def test_profile_with_a_misspelt_setting_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("slurm:\n  walltme: '01:00:00'\n")
    with pytest.raises(CascadeError, match=r"unknown setting 'slurm\.walltme'"):
        load_profile(path)
    path.write_text("- not\n- a mapping\n")
    with pytest.raises(CascadeError, match="must be a mapping"):
        load_profile(path)


def test_profile_dirs_and_snake_case_keys(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text("slurm:\n  job_extra_directives: ['--qos=long']\n")
    with dask.config.set({"cascade.cluster.profile-dirs": [str(tmp_path)]}):
        assert load_profile("site") == {"slurm": {"job-extra-directives": ["--qos=long"]}}


def test_settings_layers(tmp_path: Path) -> None:
    """Packaged default < dask.config < profile < overrides < explicit argument."""
    assert dask.config.get("cascade.cluster.scheduler") == "threads"
    profile = tmp_path / "p.yaml"
    profile.write_text("scheduler: threads\n")
    with dask.config.set({"cascade.cluster.scheduler": "processes"}):
        with execution() as info:
            assert info.scheduler == "processes"
        with execution(profile=profile) as info:
            assert info.scheduler == "threads"
        with execution(profile=profile, overrides={"scheduler": "processes"}) as info:
            assert info.scheduler == "processes"
        with execution("threads", profile=profile, overrides={"scheduler": "processes"}) as info:
            assert info.scheduler == "threads"


def test_slurm_settings_become_slurmcluster_arguments() -> None:
    settings = profiles._settings("slurm-example", {"slurm.walltime": "00:05:00", "slurm.account": None})
    kwargs = slurm._slurm_kwargs(settings["slurm"])
    assert kwargs["cores"] == 16
    assert kwargs["walltime"] == "00:05:00"
    assert "account" not in kwargs  # unset: dask-jobqueue falls back to jobqueue.slurm.account
    assert kwargs["local_directory"] == "$TMPDIR"  # expanded by the job's shell, not here
    assert kwargs["log_directory"] == os.path.expanduser("~/cascade-slurm-logs")
    assert kwargs["scheduler_options"]["dashboard_address"] == "127.0.0.1:8787"
    assert kwargs["worker_extra_args"][-2:] == ["--dashboard-address", "127.0.0.1:0"]
    assert kwargs["python"]


def test_slurm_needs_an_interface_for_the_scheduler() -> None:
    settings = profiles._settings(None, {"slurm.cores": 1, "slurm.memory": "1GiB"})
    with pytest.raises(CascadeError, match=r"set slurm\.interface"):
        slurm._slurm_kwargs(settings["slurm"])
    settings = profiles._settings(
        None, {"slurm.cores": 1, "slurm.memory": "1GiB", "slurm.scheduler-options": {"host": "10.0.0.1"}}
    )
    assert slurm._slurm_kwargs(settings["slurm"])["scheduler_options"]["host"] == "10.0.0.1"


def test_profiles_ship_with_the_package_and_configs_links_to_them() -> None:
    assert sorted(p.name for p in PROFILES.glob("*.yaml")) == [
        "local.yaml",
        "slurm-example.yaml",
        "slurm-local.yaml",
    ]
    assert PROFILES.parent == Path(cluster.__file__).parent
    assert (CHECKOUT / "configs" / "cluster").resolve() == PROFILES.resolve()  # one copy, no drift


def _cli(
    *args: object, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cascade", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def test_slurm_without_a_job_size_says_what_to_pass(tmp_path: Path) -> None:
    """Not dask-jobqueue's Python advice ("SLURMCluster(cores=8, ..."): the options of this command line."""
    done = _cli("--headless", "--project", tmp_path / "p.ilp", "--scheduler", "slurm", tmp_path / "in.tif")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "SLURMCluster" not in line
    assert "--cluster-option slurm.cores=8 --cluster-option slurm.memory=32GiB" in line, line
    assert "--profile" in line and str(PROFILES / "slurm-example.yaml") in line
    done = _cli("--headless", "--project", tmp_path / "p.ilp", "--scheduler", "slurm", "--cluster-option",
                "slurm.cores=2", "--cluster-option", "slurm.memory=4GiB", tmp_path / "in.tif")  # fmt: skip
    assert "--cluster-option slurm.interface=ib0" in done.stderr, done.stderr


def test_dry_run_prints_the_slurm_job_script_and_submits_nothing(tmp_path: Path) -> None:
    logs = tmp_path / "logs" / "slurm"
    args = ["--headless", "--project", tmp_path / "p.ilp", "--profile", "slurm-example", "--dry-run"]
    args += ["--cluster-option", "slurm.queue=gpu", "--cluster-option", f"slurm.log-directory={logs}"]
    done = _cli(*args, tmp_path / "in.tif", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    script = done.stdout
    assert script.startswith("#!/usr/bin/env bash\n")
    for line in ("#SBATCH -p gpu", "#SBATCH -A my-project", "#SBATCH --cpus-per-task=16", "#SBATCH --mem=64G",
                 "#SBATCH -t 04:00:00", "#SBATCH --qos=normal", f"#SBATCH -o {logs}/dask-worker-%J.out",
                 "module load python/3.11"):  # fmt: skip
        assert line + "\n" in script, line
    worker = script.strip().splitlines()[-1]
    assert "distributed.cli.dask_worker tcp://<insert-scheduler-address-here>:8786" in worker
    assert "--nthreads 4 --memory-limit 16.00GiB --nworkers 4" in worker and "--interface ib0" in worker
    assert sorted(os.listdir(tmp_path)) == []  # no log folder, no output, no scratch: nothing ran
    train = _cli("train", "--profile", "slurm-local", "--dry-run", cwd=tmp_path)
    assert train.returncode == 0 and "#SBATCH --mem=1G\n" in train.stdout, train.stderr
    not_slurm = _cli("--headless", "--project", tmp_path / "p.ilp", "--dry-run", tmp_path / "in.tif")
    assert not_slurm.returncode == 2
    assert "job script exists for the slurm scheduler only, not 'threads'" in not_slurm.stderr


def test_profiles_work_from_a_regular_install(tmp_path: Path) -> None:
    """``pip install`` (not editable) ships the profiles: --profile works far from any checkout."""
    target = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", target, CHECKOUT],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    installed = target / "cascade" / "cluster" / "profiles"
    assert sorted(p.name for p in installed.glob("*.yaml")) == sorted(p.name for p in PROFILES.glob("*.yaml"))
    assert not (target / "configs").exists()
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import cascade.cluster as c; print(c.__file__, c.load_profile('slurm-local')['scheduler'])"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert where.stdout.split() == [str(target / "cascade" / "cluster" / "__init__.py"), "slurm"], (
        where.stderr
    )
    run = _cli(
        "--headless",
        "--project",
        "p.ilp",
        "--profile",
        "slurm-local",
        "--dry-run",
        "in.tif",
        cwd=tmp_path,
        env=env,
    )
    assert run.returncode == 0 and "#SBATCH --cpus-per-task=1\n" in run.stdout, run.stderr


def test_parse_overrides() -> None:
    parsed = parse_overrides(["slurm.jobs=4", "slurm.walltime=01:00:00", "slurm.adaptive=true", "x.y=[a, b]"])
    assert parsed == {
        "slurm.jobs": 4,
        "slurm.walltime": "01:00:00",
        "slurm.adaptive": True,
        "x.y": ["a", "b"],
    }
    with pytest.raises(CascadeError, match="key=value"):
        parse_overrides(["slurm.jobs"])


# --------------------------------------------------------------------------- execution


def _data() -> da.Array:
    """A seeded image and a per-chunk filter with a halo: identical on every scheduler."""
    image = da.random.default_rng(42).random((96, 128), chunks=(32, 32))
    return image.map_overlap(ndimage.gaussian_filter, depth=4, boundary="none", sigma=1.0)


def _threaded(array: da.Array) -> np.ndarray:
    return np.asarray(array.compute(scheduler="threads"))


@pytest.mark.parametrize("name", ["threads", "processes"])
def test_threads_and_processes(name: str) -> None:
    array = da.arange(100, chunks=10) * 2
    with execution(name, threads=2) as info:
        assert (info.scheduler, info.n_workers, info.client, info.dashboard_link) == (name, 2, None, None)
        assert dask.config.get("scheduler") == name
        np.testing.assert_array_equal(array.compute(), np.arange(100) * 2)
    assert dask.config.get("scheduler", None) != name


@pytest.mark.parametrize(
    ("scheduler", "options", "message"),
    [
        ("mpi", {}, "unknown scheduler 'mpi'"),
        ("slurm", {"threads": 4}, "threads sizes"),
        ("threads", {"memory_limit": "1GiB"}, "memory_limit sizes a local cluster"),
        ("threads", {"threads": 0}, "threads must be a whole number"),
        ("threads", {"overrides": {"local.treads": 2}}, r"unknown setting 'local\.treads'"),
    ],
)
def test_execution_rejects_bad_options(scheduler: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(CascadeError, match=message), execution(scheduler, **options):  # type: ignore[arg-type]
        pass


def _listening(pid: int) -> set[str]:
    return {c.laddr.ip for c in psutil.Process(pid).net_connections("inet") if c.status == psutil.CONN_LISTEN}


def _malloc_tuned() -> bool:
    import cascade._malloc

    return cascade._malloc._done


def test_local_cluster_matches_threads_serves_dashboard_on_loopback() -> None:
    array = _data()
    expected = _threaded(array)
    with execution("local", threads=2, memory_limit="2GiB") as info:
        assert info.client is not None
        assert info.n_workers == 2
        assert dask.config.get("scheduler") == "dask.distributed"
        np.testing.assert_array_equal(np.asarray(array.compute()), expected)

        assert info.dashboard_link is not None
        assert info.dashboard_link.startswith("http://127.0.0.1:")
        # loaded on its first request (cluster/_dashboard.py): not by computing
        dashboard = lazy_dashboard(info.client.scheduler.address)
        assert dashboard is not None and not dashboard.attached
        with urllib.request.urlopen(info.dashboard_link, timeout=60) as response:
            assert response.status == 200
            assert response.url == info.dashboard_link  # redirected back to the same page
            page = response.read().decode()
        assert dashboard.attached
        assert "Dask needs bokeh" not in page, "the dashboard needs bokeh installed"
        assert "Bokeh" in page
        root = info.dashboard_link.removesuffix("status")
        with urllib.request.urlopen(root, timeout=30) as response:  # "/" leads to the status page
            assert response.url == info.dashboard_link

        # every worker process tunes its allocator like the CLI's own process
        assert set(info.client.run(_malloc_tuned).values()) == {True}

        workers = info.client.run(os.getpid)
        pids = {os.getpid(), *workers.values(), *(psutil.Process(p).ppid() for p in workers.values())}
        hosts = set().union(*(_listening(pid) for pid in pids))
        assert hosts <= {"127.0.0.1", "::1"}, f"listening beyond loopback: {hosts}"
    assert dask.config.get("scheduler", None) != "dask.distributed"


def test_local_cluster_without_dashboard_attaches_none() -> None:
    overrides = {"local.dashboard-address": None}
    with execution("local", threads=2, memory_limit="2GiB", overrides=overrides) as info:
        assert info.dashboard_link is None
        assert info.client is not None
        assert lazy_dashboard(info.client.scheduler.address) is None


def test_dashboard_that_cannot_load_answers_503_and_the_cluster_computes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "distributed.dashboard.scheduler", None)  # as if bokeh were missing
    array = _data()
    with execution("local", threads=2, memory_limit="2GiB") as info:
        assert info.dashboard_link is not None
        for _ in range(2):  # the second request gets the same answer, without another attempt
            with pytest.raises(urllib.error.HTTPError) as error:
                urllib.request.urlopen(info.dashboard_link, timeout=60)
            assert error.value.code == 503
            assert "the dask dashboard could not start" in error.value.read().decode()
        with urllib.request.urlopen(info.dashboard_link.removesuffix("status") + "health", timeout=30) as ok:
            assert ok.read() == b"ok"  # distributed's own routes never waited for the dashboard
        np.testing.assert_array_equal(np.asarray(array.compute()), _threaded(array))
    assert caplog.text.count("could not start the dask dashboard") == 1


def test_local_cluster_survives_a_killed_worker() -> None:
    """An OOM-killed worker (SIGKILL) loses its results; the scheduler recomputes them elsewhere."""

    def slow_double(block: np.ndarray) -> np.ndarray:
        time.sleep(0.1)
        return block * 2

    array = da.random.default_rng(7).random((40, 64), chunks=(1, 64)).map_blocks(slow_double)
    expected = _threaded(array)
    with execution("local", threads=2, memory_limit="2GiB") as info:
        client = info.client
        assert client is not None
        future = client.compute(array)
        victim = next(iter(client.scheduler_info()["workers"]))
        deadline = time.monotonic() + 30
        while len(client.has_what().get(victim, ())) < 3:  # let the victim hold some finished chunks
            assert time.monotonic() < deadline, "the computation did not progress"
            time.sleep(0.05)
        os.kill(client.run(os.getpid, workers=[victim])[victim], signal.SIGKILL)
        np.testing.assert_array_equal(future.result(timeout=60), expected)
        assert victim not in client.scheduler_info()["workers"]
        client.wait_for_workers(2, timeout=30)  # the nanny started a replacement


def test_running_scheduler_address() -> None:
    from distributed import LocalCluster

    array = _data()
    with LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as local:
        with execution(local.scheduler_address) as info:
            assert (info.scheduler, info.n_workers) == (local.scheduler_address, 1)
            assert info.dashboard_link == local.dashboard_link
            np.testing.assert_array_equal(np.asarray(array.compute()), _threaded(array))
        assert local.scheduler_info["workers"]  # the borrowed scheduler is left running


def test_unreachable_scheduler_address() -> None:
    with (
        pytest.raises(CascadeError, match=r"cannot reach the dask scheduler at tcp://127\.0\.0\.1:9"),
        execution("tcp://127.0.0.1:9", overrides={"connect-timeout": 1}),
    ):
        pass


# --------------------------------------------------------------------------- SLURM


@pytest.fixture
def slurm_logs(tmp_path: Path) -> Path:
    """A folder for the worker jobs' output; skips the test unless a SLURM node is idle."""
    if not slurm_node_idle():
        pytest.skip("no SLURM node is idle (start one with .ci/slurm-setup.sh)")
    return tmp_path / "slurm-logs"


@pytest.mark.slurm
def test_slurm_two_worker_jobs_match_threads(slurm_logs: Path) -> None:
    from distributed import get_task_stream

    array = _data()
    expected = _threaded(array)
    overrides = {"slurm.log-directory": str(slurm_logs), "slurm.jobs": 2, "slurm.wait-for-workers": 2}
    with execution("slurm", profile="slurm-local", overrides=overrides) as info:
        assert info.scheduler == "slurm"
        assert info.n_workers == 2
        with get_task_stream() as stream:
            result = np.asarray(array.compute())
        assert len({task["worker"] for task in stream.data}) == 2, "both worker jobs should compute"
        assert info.dashboard_link is not None
        with urllib.request.urlopen(info.dashboard_link, timeout=30) as response:
            assert response.status == 200
    np.testing.assert_array_equal(result, expected)
    assert len(list(slurm_logs.glob("*.err"))) == 2  # two sbatch jobs ran
