"""Workers ready before their first task: the warm forkserver, the warm-up, the quick exit (issue 14)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import psutil
import pytest
from helpers import slurm_node_idle

from cascade.cluster import execution, prepare_workers
from cascade.errors import CascadeError

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (nothing loaded yet); return its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_warm_up_loads_every_kernel_a_prediction_uses() -> None:
    """After warm_up, features (2D, 3D, 2D columns of 3D) and both forest paths load no new kernel."""
    out = _python(
        """
        import sys
        import numba
        import numpy as np
        from sklearn.ensemble import RandomForestClassifier
        from cascade.cluster._warm import warm_up
        from cascade.features import compute_features, parse_feature_selection
        from cascade.forest import pack_sklearn, predict_proba

        def signatures():
            return {
                f"{name}.{key}": len(value.signatures)
                for name, module in list(sys.modules.items()) if name.startswith("cascade.")
                for key, value in vars(module).items() if isinstance(value, numba.core.registry.CPUDispatcher)
            }

        assert warm_up() and warm_up()
        before = signatures()
        rng = np.random.default_rng(1)
        ids = ["GaussianSmoothing", "LaplacianOfGaussian", "GaussianGradientMagnitude",
               "DifferenceOfGaussians", "StructureTensorEigenvalues", "HessianOfGaussianEigenvalues"]
        spec = {"features": {f: [1.0, 1.6, 3.5] for f in ids}, "compute_in_2d": [False, True, False]}
        selection = parse_feature_selection(spec)
        volume = rng.integers(0, 255, (30, 40, 36, 2), dtype=np.uint16)
        stack = compute_features(volume, selection, axes="zyxc", chunks=(16, 20, 36, 2)).compute()
        plain = parse_feature_selection({"features": {f: [0.7, 5.0] for f in ids}})
        image = rng.random((50, 60, 1), dtype=np.float32)
        compute_features(image, plain, axes="yxc", chunks=(25, 30, 1)).compute()
        x = stack.reshape(-1, stack.shape[-1])[:3000]
        y = (x[:, 0] > np.median(x[:, 0])).astype(int) + 1
        for depth in (None, 3):  # one-hot leaves (votes) and mixed leaves (sums)
            forest = RandomForestClassifier(n_estimators=4, max_depth=depth, random_state=0).fit(x, y)
            predict_proba(pack_sklearn(forest, 2), x)
        after = signatures()
        new = {k: v for k, v in after.items() if k in before and v != before[k]}
        print(sum(before.values()), new)
        """
    )
    loaded, new = out.split(maxsplit=1)
    assert int(loaded) >= 5, out  # the feature and forest kernels were loaded by warm_up (9 today)
    assert new.strip() == "{}", f"kernels loaded after warm_up: {new}"


def test_quick_exit_freezes_the_collector_after_later_exit_handlers() -> None:
    out = _python(
        """
        import atexit, gc
        atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))  # runs last
        from cascade._malloc import quick_exit
        quick_exit()
        quick_exit()  # once per process
        atexit.register(lambda: print("handler after it:", gc.get_freeze_count() == 0))  # runs first
        """
    )
    assert out.split("\n")[:2] == ["handler after it: True", "frozen at exit: True"], out


def _worker_state() -> dict[str, object]:
    import cascade._malloc
    import cascade.cluster._warm

    return {
        "preloaded": "cascade.cluster._preload" in sys.modules,
        "warm": cascade.cluster._warm._warm,
        "malloc": cascade._malloc._done,
        "quick": cascade._malloc._quick,
        "parent": os.getppid(),
        "imported": {"cascade.pipeline", "zarr"} <= set(sys.modules),  # before any task unpickled them
    }


def _monitoring(dask_worker: object) -> dict[str, object]:
    """Which of distributed's periodic samplers run in a worker, and how often (ms)."""
    callbacks = dask_worker.periodic_callbacks  # type: ignore[attr-defined]
    return {
        "profiler": "profile" in callbacks and callbacks["profile"].is_running(),
        "tick": callbacks["tick"].callback_time,
        "monitor": callbacks["monitor"].callback_time,
        "memory": callbacks["memory_monitor"].callback_time,
    }


def _warm_now() -> bool:
    from cascade.cluster._warm import warm_up

    return warm_up()


def test_local_workers_fork_from_a_warm_server() -> None:
    """Workers start with the engine loaded: forked from the forkserver that ran cascade's preload."""
    assert prepare_workers("local")  # started early, as the CLI does
    assert not prepare_workers("threads")
    with execution("local", threads=2, memory_limit="2GiB") as info:
        assert info.client is not None
        states = list(info.client.run(_worker_state).values())
        array = np.arange(4000.0).reshape(40, 100)
        import dask.array as da

        total = float(da.from_array(array, chunks=(10, 100)).sum().compute())
    assert total == float(array.sum())
    assert len(states) == 2
    for state in states:
        assert state["preloaded"] and state["warm"] and state["malloc"] and state["quick"], state
        assert state["imported"], state
        server = psutil.Process(int(state["parent"]))  # type: ignore[call-overload]
        assert server.pid != os.getpid() and server.ppid() == os.getpid()  # the forkserver, our child
        assert "forkserver" in " ".join(server.cmdline())


def test_spawned_local_workers_are_warmed_by_the_plugin() -> None:
    overrides = {"local.start-method": "spawn"}
    with execution("local", threads=2, memory_limit="2GiB", overrides=overrides) as info:
        assert info.client is not None
        assert set(info.client.run(_warm_now).values()) == {True}
        states = list(info.client.run(_worker_state).values())
    for state in states:
        assert not state["preloaded"] and state["warm"] and state["malloc"] and state["quick"], state
        assert state["parent"] == os.getpid()  # spawned by the nannies in this process, not by a server


@pytest.mark.parametrize("light", [True, False])
def test_local_clusters_sample_themselves_lightly(light: bool) -> None:
    """light-monitoring: no statistical profiler and slower monitors in the workers (and back when off)."""
    with execution("local", threads=2, memory_limit="2GiB", overrides={"light-monitoring": light}) as info:
        assert info.client is not None
        states = list(info.client.run(_monitoring).values())
        scheduler_tick = info.client.run_on_scheduler(
            lambda dask_scheduler: dask_scheduler.periodic_callbacks["tick"].callback_time
        )
    assert len(states) == 2
    if light:
        assert states == [{"profiler": False, "tick": 500, "monitor": 2000, "memory": 500}] * 2
        assert scheduler_tick == 500
    else:  # distributed's defaults
        assert states == [{"profiler": True, "tick": 20, "monitor": 500, "memory": 100}] * 2
        assert scheduler_tick == 20


def test_the_plugin_lightens_a_worker_that_kept_the_defaults() -> None:
    """A SLURM job's worker does not get this process's dask.config: the setup plugin slows its samplers."""
    from cascade.cluster._worker import LIGHT_PERIODS, lighten

    class Callback:
        def __init__(self, ms: float) -> None:
            self.callback_time, self.running = ms, True

        def stop(self) -> None:
            self.running = False

    callbacks = {name: Callback(10) for name in LIGHT_PERIODS} | {"heartbeat": Callback(1000)}
    lighten(type("Worker", (), {"periodic_callbacks": callbacks})())
    assert not callbacks["profile"].running and not callbacks["profile-cycle"].running
    assert [callbacks[n].callback_time for n in ("monitor", "tick", "memory_monitor")] == [2000, 500, 500]
    assert callbacks["heartbeat"].callback_time == 1000 and callbacks["heartbeat"].running


@pytest.mark.parametrize("status", ["running", "closing", "closed"])
def test_a_failed_heartbeat_logs_no_traceback(status: str) -> None:
    """distributed logs a heartbeat that meets a closed connection with its traceback (at teardown,
    on the command's stderr): dropped while a worker of the process closes, one line otherwise."""
    import io
    import logging

    from distributed.comm.core import CommClosedError
    from distributed.core import Status

    from cascade.cluster._worker import HeartbeatQuiet, quiet_heartbeats

    quiet_heartbeats()
    quiet_heartbeats()
    installed = logging.getLogger("distributed.worker").filters
    assert sum(isinstance(f, HeartbeatQuiet) for f in installed) == 1
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("cascade.tests.heartbeat")  # this process's own workers stay out of it
    others = [type("Worker", (), {"status": Status.running})()]
    quiet = HeartbeatQuiet(lambda: [*others, type("Worker", (), {"status": Status[status]})()])
    logger.addHandler(handler)
    logger.addFilter(quiet)
    try:
        try:
            raise CommClosedError("in <TCP (closed) ConnectionPool.heartbeat_worker local=tcp://127.0.0.1:1>")
        except CommClosedError:
            logger.exception("Failed to communicate with scheduler during heartbeat.")
        logger.warning("Unmanaged memory use is high.")
    finally:
        logger.removeFilter(quiet)
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    if status == "running":
        assert lines[0].startswith("Failed to communicate with scheduler during heartbeat. (CommClosedError:")
        assert lines[1:] == ["Unmanaged memory use is high."]
    else:
        assert lines == ["Unmanaged memory use is high."]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"local.start-method": "fork"}, "local.start-method must be forkserver or spawn, not 'fork'"),
        ({"warm-up": "yes"}, "cascade.cluster.warm-up must be true or false, not 'yes'"),
        ({"light-monitoring": 1}, "cascade.cluster.light-monitoring must be true or false, not 1"),
    ],
)
def test_bad_start_settings_are_named(overrides: dict[str, object], message: str) -> None:
    if "light-monitoring" not in overrides:  # a setting the workers' start does not read
        assert not prepare_workers("local", overrides=overrides)  # left for execution to report
    with pytest.raises(CascadeError, match=message), execution("local", threads=1, overrides=overrides):
        pass


@pytest.mark.slurm
def test_slurm_workers_are_set_up_and_warmed(tmp_path: Path) -> None:
    if not slurm_node_idle():
        pytest.skip("no SLURM node is idle (start one with .ci/slurm-setup.sh)")
    import cloudpickle

    # the probes travel by value: the worker jobs do not have tests/ on their path
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    overrides = {"slurm.log-directory": str(tmp_path / "logs"), "slurm.jobs": 1, "slurm.wait-for-workers": 1}
    try:
        with execution("slurm", profile="slurm-local", overrides=overrides) as info:
            assert info.client is not None
            assert set(info.client.run(_warm_now).values()) == {True}
            states = list(info.client.run(_worker_state).values())
            sampling = list(info.client.run(_monitoring).values())
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert states
    for state in states:
        assert state["warm"] and state["malloc"] and state["quick"] and not state["preloaded"], state
    assert sampling == [{"profiler": False, "tick": 500, "monitor": 2000, "memory": 500}] * len(states)


@pytest.mark.parametrize(
    ("args", "started"),
    [
        (["predict", "--project=p.ilp", "--scheduler", "local", "in.h5"], True),
        (["predict", "--scheduler=local", "in.h5"], True),
        (
            ["predict", "--distributed", "in.h5"],
            True,
        ),  # ilastik's flag: a local cluster unless told otherwise
        (["predict", "--distributed", "--scheduler=threads", "in.h5"], False),
        (["predict", "--scheduler", "slurm", "in.h5"], False),
        (["predict", "in.h5"], False),
        (["predict", "--scheduler"], False),  # typer reports the missing value
    ],
)
def test_the_cli_starts_the_worker_server_before_parsing(
    args: list[str], started: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server local workers fork from starts before typer parses (and before cascade.cluster loads)."""
    from multiprocessing import forkserver

    from cascade.cli import start_worker_server
    from cascade.cluster._fork import _PRELOAD

    calls: list[list[str]] = []
    monkeypatch.setattr(forkserver, "set_forkserver_preload", lambda names: calls.append(list(names)))
    monkeypatch.setattr(forkserver, "ensure_running", lambda: None)
    assert start_worker_server(args) is started
    assert calls == ([_PRELOAD] if started else [])
