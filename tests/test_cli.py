"""The command line end to end, through real subprocesses on files."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
from helpers import cascade


def test_help_lists_commands() -> None:
    done = cascade("--help")
    assert done.returncode == 0
    for command in ("train", "predict", "demo", "info"):
        assert command in done.stdout


def test_predict_several_sources_and_headless_spelling(workspace: Path) -> None:
    out = workspace / "out"
    out.mkdir()
    done = cascade(
        "predict",
        "--project",
        workspace / "p.cascade",
        "--export_source",
        "Probabilities Stage 2",
        "--export-source",
        "simple segmentation stage 1",
        "--output_format",
        "hdf5",
        f"--output_filename_format={out}/{{nickname}}_{{result_type}}",
        workspace / "new.tif",
    )
    assert done.returncode == 0, done.stderr
    with h5py.File(out / "new_Probabilities Stage 2.h5", "r") as f:
        probs = f["exported_data"][()]
    assert probs.shape == (96, 96, 2) and probs.dtype == np.float32
    assert np.allclose(probs.sum(-1), 1, atol=1e-5)
    with h5py.File(out / "new_Simple Segmentation Stage 1.h5", "r") as f:
        seg = f["exported_data"][()]
    assert seg.dtype == np.uint8 and set(np.unique(seg)) <= {1, 2}
    # ilastik's spelling: --headless, --opt=value, default source and default file name
    done = cascade(
        "--headless", f"--project={workspace / 'p.cascade'}", "--output_format=numpy", workspace / "new.tif"
    )
    assert done.returncode == 0, done.stderr
    default = np.load(workspace / "new_Probabilities Stage 2.npy")
    assert np.array_equal(default, probs)


def test_info_describes_project(workspace: Path) -> None:
    done = cascade("info", workspace / "p.cascade")
    assert done.returncode == 0, done.stderr
    assert "Autocontext (2 stages)" in done.stdout
    assert "stage 2: classes disk, background" in done.stdout
    assert "forest: 10 trees" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--export_source", "Probabilities Stage 3"], "unknown export source"),
        (["--cutout_subregion", "[(0,0),(10,"], "cutout subregion"),
        (["--output_format", "jpeg2000"], "unknown output format"),
        (["--export_dtype", "complex64"], "export dtype"),
        (["--output_filename_format", "{dataset_dir}/new.tif/{nickname}"], "new.tif is not a directory"),
    ],
)
def test_bad_options_fail_in_one_line_without_output(workspace: Path, args: list[str], message: str) -> None:
    before = set(workspace.iterdir())
    done = cascade("predict", "--project", workspace / "p.cascade", *args, workspace / "new.tif")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cascade: error:") and message in lines[0], done.stderr
    assert set(workspace.iterdir()) == before


def test_bad_inputs_fail_in_one_line(workspace: Path, tmp_path: Path) -> None:
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((64, 64, 3), np.uint8), photometric="rgb")
    corrupt = tmp_path / "corrupt.cascade"
    corrupt.write_bytes(b"not a project")
    cases = [
        (["--project", workspace / "p.cascade", tmp_path / "missing.tif"], "not found"),
        (["--project", workspace / "p.cascade", rgb], "expects 1 channel"),
        (["--project", tmp_path / "nope.cascade", workspace / "new.tif"], "not found"),
        (["--project", corrupt, workspace / "new.tif"], "corrupt.cascade"),
        (["--project", workspace / "p.cascade", "--input_axes", "zyx", workspace / "new.tif"], "axes"),
    ]
    for args, message in cases:
        done = cascade("predict", *args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (args, done.stderr)
        assert len(lines) == 1 and message in lines[0], (args, done.stderr)
    assert list(tmp_path.glob("*_Probabilities*")) == []


def test_ilastik_argument_spellings_are_normalised() -> None:
    from cascade.cli import normalize_argv

    assert normalize_argv(["--headless", "--project=p.ilp", "a.tif"]) == [
        "predict",
        "--project=p.ilp",
        "a.tif",
    ]
    assert normalize_argv(["--headless", "--readonly", "1", "a.tif"]) == ["predict", "--readonly=1", "a.tif"]
    assert normalize_argv(["predict", "--readonly", "a.tif"]) == ["predict", "--readonly=true", "a.tif"]
    assert normalize_argv(["info", "p.ilp"]) == ["info", "p.ilp"]
