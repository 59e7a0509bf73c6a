"""Headless autocontext prediction on other schedulers gives the threaded result exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from helpers import cascade, slurm_node_idle


def _predict(workspace: Path, out: Path, *extra: str) -> np.ndarray:
    done = cascade(
        "predict",
        "--project",
        workspace / "p.cascade",
        "--export_source",
        "Probabilities Stage 2",
        "--output_format",
        "zarr",
        f"--output_filename_format={out}",
        "--block-shape",
        "48",
        *extra,
        workspace / "new.tif",
    )
    assert done.returncode == 0, done.stderr
    group = zarr.open_group(str(out) + ".zarr", mode="r")
    return np.asarray(group["exported_data"][...])


@pytest.fixture(scope="module")
def threaded(workspace: Path) -> np.ndarray:
    return _predict(workspace, workspace / "threaded")


def test_local_cluster_equals_threads(workspace: Path, threaded: np.ndarray) -> None:
    result = _predict(workspace, workspace / "local", "--scheduler", "local", "--threads", "2")
    assert np.array_equal(result, threaded)


@pytest.mark.slurm
def test_slurm_two_jobs_equal_threads(workspace: Path, threaded: np.ndarray, tmp_path: Path) -> None:
    if not slurm_node_idle():
        pytest.skip("no SLURM node is idle (start one with .ci/slurm-setup.sh)")
    result = _predict(
        workspace,
        workspace / "slurm",
        "--scheduler",
        "slurm",
        "--profile",
        "slurm-local",
        "--cluster-option",
        f"slurm.log-directory={tmp_path}",
        "--cluster-option",
        "slurm.jobs=2",
        "--cluster-option",
        "slurm.wait-for-workers=2",
    )
    assert np.array_equal(result, threaded)
    assert len(list(tmp_path.glob("*.err"))) == 2  # two sbatch worker jobs ran


def test_distributed_flag_writes_n5(workspace: Path, threaded: np.ndarray) -> None:
    done = cascade(
        "predict",
        "--project",
        workspace / "p.cascade",
        "--distributed",
        "--distributed-block-roi",
        "{'x': 40, 'y': 40}",
        "--threads",
        "2",
        f"--output_filename_format={workspace}/dist",
        workspace / "new.tif",
    )
    assert done.returncode == 0, done.stderr
    from cascade.io import open_image

    result = open_image(f"{workspace}/dist.n5/exported_data").data.compute()
    assert np.array_equal(result, threaded)
    assert "dashboard" in done.stderr


def test_training_on_a_local_cluster_equals_threads(workspace: Path, tmp_path: Path) -> None:
    """`cascade train --scheduler local`: features are computed on the cluster, same project arrays."""
    import h5py

    args = [
        "train",
        "--raw_data",
        workspace / "train.tif",
        "--labels",
        workspace / "train_labels.tif",
        "--stages",
        "2",
        "--features",
        workspace / "features.yaml",
        "--classes",
        "disk,background",
        "--trees",
        "10",
    ]
    local = cascade(*args, "--project", tmp_path / "local.cascade", "--scheduler", "local", "--threads", "2")
    assert local.returncode == 0, local.stderr
    with h5py.File(tmp_path / "local.cascade", "r") as a, h5py.File(workspace / "p.cascade", "r") as b:
        for stage in ("stage00", "stage01"):
            for name in ("feature", "threshold", "left", "right", "value", "roots"):
                key = f"stages/{stage}/forest/{name}"
                assert np.array_equal(a[key][()], b[key][()]), key
