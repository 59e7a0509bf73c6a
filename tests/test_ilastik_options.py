"""ilastik's launcher options and config file on a headless command line (drop-in pipelines).

Real pipelines pass ``--debug``, ``--logfile``, ``--redirect_output`` and the like to
``run_ilastik.sh --headless``; cascade accepts them, honours those that matter for an export
and refuses in one line those that would edit the project.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import cascade as run

API = "ilp/ilastik__ilastik/api_projects"


@pytest.fixture
def headless(data_dir: Path, tmp_path: Path) -> list[str]:
    folder = data_dir / API
    return ["--headless", f"--project={folder / 'PixelClass.ilp'}", str(folder / "Data_1channel.png")]


@pytest.fixture
def unset(data_dir: Path, tmp_path: Path) -> list[str]:
    """``headless`` with a copy of the project that stores no output format: ilastik's config
    file settings apply only below the project's stored ones."""
    folder = data_dir / API
    project = tmp_path / "project" / "PixelClass.ilp"
    project.parent.mkdir()
    shutil.copyfile(folder / "PixelClass.ilp", project)
    with h5py.File(project, "r+") as f:
        del f["Prediction Export/OutputFormat"]
    return ["--headless", f"--project={project}", str(folder / "Data_1channel.png")]


def test_no_effect_options_are_accepted(data_dir: Path, tmp_path: Path, headless: list[str]) -> None:
    reference = np.load(data_dir / API / "res-Data_1channel_pc1xyc.npy")
    done = run(
        *headless,
        "--debug",
        "--clean_paths",
        "--exit_on_failure",
        "--process_name",
        "worker-3",
        "--nn_device=cpu",
        "--output_format=numpy",
        "--output_filename_format=out",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert np.array_equal(np.load(tmp_path / "out.npy"), reference)


def test_logfile_and_redirect_output(tmp_path: Path, headless: list[str]) -> None:
    done = run(
        *headless,
        "--logfile=run.log",
        "--redirect_output",
        "stdout.txt",
        "--output_format=numpy",
        "--output_filename_format=out",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "out.npy" in (tmp_path / "stdout.txt").read_text()
    assert "out.npy" in (tmp_path / "run.log").read_text()


def test_configfile_sets_default_format_name_and_threads(tmp_path: Path, unset: list[str]) -> None:
    (tmp_path / "ilastik.ini").write_text(
        "[ilastik]\noutput_format: numpy\noutput_filename_format: {dataset_dir}/../x/{nickname}_cfg\n"
        "[lazyflow]\nthreads: 1\ntotal_ram_mb: 2000\n"
    )
    out = tmp_path / "out"
    done = run(
        *unset, "--configfile=ilastik.ini", f"--output_filename_format={out}/{{nickname}}", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert (out / "Data_1channel.npy").is_file()  # the command line wins over the file's name


def test_default_config_file_is_read(tmp_path: Path, unset: list[str]) -> None:
    """ilastik reads ``$XDG_CONFIG_HOME/ilastik/ilastik.ini`` without --configfile; so does cascade."""
    (tmp_path / "cfg" / "ilastik").mkdir(parents=True)
    (tmp_path / "cfg" / "ilastik" / "ilastik.ini").write_text("[ilastik]\noutput_format: numpy\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "HOME": str(tmp_path)}
    done = run(*unset, f"--output_filename_format={tmp_path}/o", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o.npy").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--configfile=missing.ini"], "ilastik config file missing.ini does not exist"),
        (["--generate-random-labels"], "--generate-random-labels is not supported by cascade"),
        (["--label-proportion=0.5"], "--label-proportion is not supported by cascade"),
        (["--new_project=x.ilp", "--workflow=Pixel Classification"], "cascade train"),
        (["--tree-count=0"], "--tree-count"),
    ],
)
def test_refused_options_say_why_in_one_line(
    tmp_path: Path, headless: list[str], args: list[str], message: str
) -> None:
    done = run(*headless, *args, "--output_filename_format=out", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_config_value_is_named(tmp_path: Path, headless: list[str]) -> None:
    (tmp_path / "bad.ini").write_text("[lazyflow]\nthreads: many\n")
    done = run(*headless, "--configfile=bad.ini", cwd=tmp_path)
    assert done.returncode == 2
    assert "[lazyflow] threads must be an integer, not 'many'" in done.stderr


@pytest.mark.parametrize("project", [["--project=P.ilp"], ["--project", "P.ilp"], ["--proj=P.ilp"]])
def test_a_gui_command_line_says_to_add_headless(tmp_path: Path, project: list[str]) -> None:
    """``run_ilastik.sh --project=P.ilp img.png`` (no ``--headless``) opens ilastik's GUI; cascade has
    none, and said "unknown option --project for 'cascade'"."""
    done = run(*project, "img.png", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--headless" in lines[0] and "GUI" in lines[0], done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("project", [["--project="], ["--project", ""], ["--proj="]])
def test_an_empty_project_is_named(tmp_path: Path, project: list[str]) -> None:
    """``--project=$PROJECT`` with the variable unset: it said ".: is a directory, not a project file"."""
    done = run("--headless", *project, "img.png", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--project is empty" in lines[0], done.stderr
    assert list(tmp_path.iterdir()) == []
