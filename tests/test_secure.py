"""Issue 13, items 1-6: nothing written outside the output, nothing lost, no crash on a full disk.

Each attack or fault is set up for real and run through the command line on ilastik's own
test project and image: a hostile internal path (on the command line and stored in an
``.ilp``), planted symlinks, a full disk (a small tmpfs, mounted when the test may), outputs
that are inputs, a second run on the same output, and reruns into an existing ``.h5``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
from helpers import cascade

from cascade.errors import ExportError
from cascade.io import open_image, write_image
from cascade.io._internal import dataset_parts
from cascade.io._lock import lock_path, output_lock

API = "ilp/ilastik__ilastik/api_projects"


def refused(run: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 2 with one line on stderr (no traceback) that contains ``words``."""
    assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("cascade: error: "), run.stderr
    for word in words:
        assert word in lines[0], run.stderr


@pytest.fixture
def ws(tmp_path: Path, data_dir: Path) -> Path:
    """A folder with ilastik's PixelClass.ilp, its 128x128 image and a victim folder."""
    shutil.copy(data_dir / API / "PixelClass.ilp", tmp_path / "PixelClass.ilp")
    shutil.copy(data_dir / API / "Data_1channel.png", tmp_path / "img.png")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    return tmp_path


def victim_intact(ws: Path) -> None:
    assert sorted(p.name for p in (ws / "victim").iterdir()) == ["keep.txt"]
    assert (ws / "victim" / "keep.txt").read_text() == "precious"


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- 1. internal paths --------------------------------------------------------------------


@pytest.mark.parametrize("text", ["../../victim", "a/../../victim", "a//b", ".", "a\\..\\b", "/"])
def test_internal_path_parts_are_checked(text: str) -> None:
    with pytest.raises(ExportError, match="internal path"):
        dataset_parts(text, "out.n5", "N5")


def test_internal_path_keeps_names_and_the_root_slash() -> None:
    assert dataset_parts("/exported_data", "o.h5") == ["exported_data"]
    assert dataset_parts("predictions/stage 2", "o.h5") == ["predictions", "stage 2"]


@pytest.mark.parametrize("fmt", ["n5", "compressed n5", "zarr", "hdf5"])
def test_traversing_internal_path_is_refused_for_every_format(ws: Path, fmt: str) -> None:
    out = ws / "out"
    out.mkdir()
    # an existing container: the old n5 writer renamed and deleted the target folder
    first = cascade(
        "--headless",
        "--project=PixelClass.ilp",
        f"--output_format={fmt}",
        "--output_filename_format=out/o",
        "img.png",
        cwd=ws,
    )
    assert first.returncode == 0, first.stderr
    before = sorted(str(p.relative_to(ws)) for p in ws.rglob("*"))
    run = cascade(
        "--headless",
        "--project=PixelClass.ilp",
        f"--output_format={fmt}",
        "--output_internal_path=../../victim",
        "--output_filename_format=out/o",
        "img.png",
        cwd=ws,
    )
    refused(run, "'../../victim'", "internal path")
    victim_intact(ws)
    assert sorted(str(p.relative_to(ws)) for p in ws.rglob("*")) == before


def _hostile_project(ws: Path, internal: str, fmt: str = "n5") -> Path:
    evil = ws / "evil.ilp"
    shutil.copy(ws / "PixelClass.ilp", evil)
    with h5py.File(evil, "r+") as f:
        group = f.require_group("Prediction Export")
        for key, value in {
            "OutputFormat": fmt,
            "OutputInternalPath": internal,
            "OutputFilenameFormat": "{dataset_dir}/out/{nickname}",
        }.items():
            if key in group:
                del group[key]
            group[key] = value.encode()
    return evil


def test_hostile_ilp_export_settings_cannot_escape_the_output(ws: Path) -> None:
    """A plain `cascade --headless --project=evil.ilp img.png`, the settings stored in the project."""
    (ws / "out").mkdir()
    evil = _hostile_project(ws, "../../victim")
    run = cascade("--headless", f"--project={evil.name}", "img.png", cwd=ws)
    refused(run, "'../../victim'")
    victim_intact(ws)
    assert list((ws / "out").iterdir()) == []
    # the stored settings are honoured when harmless: the same project with a sane path works
    fine = _hostile_project(ws, "predictions/exported")
    run = cascade("--headless", f"--project={fine.name}", "img.png", cwd=ws)
    assert run.returncode == 0, run.stderr
    assert open_image(str(ws / "out" / "img.n5" / "predictions" / "exported")).data.shape == (128, 128, 2)


def test_symlinked_group_inside_a_container_is_not_followed(ws: Path) -> None:
    out = ws / "o.n5"
    write_image(np.zeros((8, 8), np.float32), str(out), format="n5", axes="yx", internal_path="first")
    (out / "grp").symlink_to(ws / "victim")
    with pytest.raises(ExportError, match="outside the output"):
        write_image(np.ones((8, 8), np.float32), str(out), format="n5", axes="yx", internal_path="grp/data")
    victim_intact(ws)


def test_a_group_is_never_replaced_by_a_dataset(ws: Path) -> None:
    out = ws / "o.n5"
    write_image(np.zeros((8, 8), np.float32), str(out), format="n5", axes="yx", internal_path="grp/a")
    with pytest.raises(ExportError, match="not an N5 dataset"):
        write_image(np.ones((8, 8), np.float32), str(out), format="n5", axes="yx", internal_path="grp")
    assert np.array_equal(open_image(str(out / "grp" / "a")).data.compute(), np.zeros((8, 8), np.float32))
    h5 = str(ws / "o.h5")
    write_image(np.zeros((8, 8), np.float32), h5, format="hdf5", axes="yx", internal_path="grp/a")
    with pytest.raises(ExportError, match="is a group"):
        write_image(np.ones((8, 8), np.float32), h5, format="hdf5", axes="yx", internal_path="grp")
    with h5py.File(h5, "r") as f:
        assert "grp/a" in f


# -- 2. temporaries ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "ext"), [("hdf5", "h5"), ("numpy", "npy"), ("multipage tiff", "tiff"), ("n5", "n5")]
)
def test_planted_symlinks_at_old_temporary_names_are_not_followed(ws: Path, fmt: str, ext: str) -> None:
    """Symlinks at every name cascade 0.1 would have used in this process: none is written through."""
    target = ws / "victim" / "keep.txt"
    for tag in ("partial", "stage", "old"):
        (ws / f".o.{ext}.{tag}-{os.getpid()}").symlink_to(target)
        (ws / f".o.{ext}.{tag}").symlink_to(target)
    data = np.arange(64, dtype=np.float32).reshape(8, 8)
    write_image(data, str(ws / "o"), format=fmt, axes="yx")
    victim_intact(ws)
    found = open_image(str(ws / f"o.{ext}") + ("/exported_data" if ext in ("h5", "n5") else "")).data
    assert np.array_equal(np.squeeze(found.compute()), data)
    # with the output locked, the legacy pid-named leftovers were cleaned up (the links, not the victim)
    assert hidden(ws) == [f".o.{ext}.{tag}" for tag in ("old", "partial", "stage")]


@pytest.mark.parametrize("fmt", ["zarr", "n5"])
def test_planted_symlink_at_the_resume_folder_is_not_followed(ws: Path, fmt: str) -> None:
    """The resume folder has a stable name by design (to be found again); a link there is replaced."""
    (ws / f".o.{fmt}.resume").symlink_to(ws / "victim", target_is_directory=True)
    data = np.arange(64, dtype=np.float32).reshape(8, 8)
    write_image(data, str(ws / "o"), format=fmt, axes="yx", resume="job")
    victim_intact(ws)
    assert np.array_equal(open_image(str(ws / f"o.{fmt}") + "/exported_data").data.compute(), data)
    assert hidden(ws) == []


def test_train_does_not_follow_a_symlink_at_the_project_temporary(ws: Path) -> None:
    image = iio.imread(ws / "img.png")
    labels = np.zeros(image.shape, np.uint8)
    labels[10:20, 10:20], labels[100:110, 100:110] = 1, 2
    iio.imwrite(ws / "labels.png", labels)
    (ws / ".p.cascade.partial").symlink_to(ws / "victim" / "keep.txt")
    run = cascade(
        "train",
        "--project=p.cascade",
        "--raw_data=img.png",
        "--labels=labels.png",
        "--stages=1",
        "--trees=4",
        cwd=ws,
    )
    assert run.returncode == 0, run.stderr
    victim_intact(ws)
    assert h5py.is_hdf5(ws / "p.cascade")
    assert hidden(ws) == [".p.cascade.partial"]  # the planted link itself, untouched


# -- 3. a full disk ----------------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 KB tmpfs (the image's probabilities take 128 KB), or skip where mounting is not allowed."""
    mount = tmp_path / "small"
    mount.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def _full_disk_refused(
    run: subprocess.CompletedProcess[str], folder: Path, reason: str = "the disk is full"
) -> None:
    assert run.returncode not in (-signal.SIGSEGV, -signal.SIGBUS, 139, 135), run.stderr
    refused(run, "cannot write", reason)
    assert "Traceback" not in run.stderr
    assert list(folder.iterdir()) == []  # no output under the final name, no temporary


@pytest.mark.parametrize(
    "fmt",
    [
        "hdf5",
        "compressed hdf5",
        "numpy",
        "multipage tiff",
        "n5",
        "zarr",
        "tiff",
        "tif sequence",
        "multi-scale OME-Zarr",
    ],
)
def test_full_disk_fails_in_one_line_and_leaves_nothing(ws: Path, full_disk: Path, fmt: str) -> None:
    run = cascade(
        "--headless",
        "--project=PixelClass.ilp",
        f"--output_format={fmt}",
        "--export_dtype=float64",  # doubles the size: even compressed it cannot fit
        f"--output_filename_format={full_disk}/o" + ("_{slice_index}" if "sequence" in fmt else ""),
        "img.png",
        cwd=ws,
    )
    _full_disk_refused(run, full_disk)


def test_full_disk_under_the_scratch_folder(ws: Path, full_disk: Path, data_dir: Path) -> None:
    """An autocontext stores stage 1 in the scratch folder of the working directory: that disk is full."""
    shutil.copy(data_dir / API / "Autocontext_2D.ilp", ws / "ac.ilp")
    # stage 1 of noise, stored as stage 2 reads it (uint8, 0.5 MB, hardly compressible): no 16 KB disk holds it
    shape = np.tile(iio.imread(ws / "img.png"), (4, 4)).shape
    iio.imwrite(ws / "big.png", np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "cascade",
            "--headless",
            f"--project={ws / 'ac.ilp'}",
            f"--output_filename_format={ws}/o",
            ws / "big.png",
        ],
        capture_output=True,
        text=True,
        cwd=full_disk,
        env={**os.environ, "DASK_CASCADE__IN_MEMORY_STAGE": "0"},
        timeout=300,
    )
    _full_disk_refused(run, full_disk)
    assert not list(ws.glob("o*"))


def test_full_disk_while_saving_a_trained_project(ws: Path, full_disk: Path) -> None:
    image = np.tile(iio.imread(ws / "img.png"), (2, 2))
    labels = np.zeros(image.shape, np.uint8)
    labels[::3, ::5], labels[1::3, ::5] = 1, 2  # many labels: the stored labels do not fit
    iio.imwrite(ws / "big.png", image)
    iio.imwrite(ws / "labels.png", labels)
    run = cascade(
        "train",
        f"--project={full_disk}/p.cascade",
        "--raw_data=big.png",
        "--labels=labels.png",
        "--stages=1",
        "--trees=20",
        cwd=ws,
    )
    _full_disk_refused(run, full_disk)


def _limit_file_size() -> None:  # in the child: writes past 64 KB fail with EFBIG
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, 64_000))


@pytest.mark.parametrize("fmt", ["hdf5", "numpy", "n5"])
def test_file_size_limit_fails_in_one_line_and_leaves_nothing(ws: Path, fmt: str) -> None:
    """The same fault without root: RLIMIT_FSIZE makes the write fail (EFBIG), as a full disk does."""
    out = ws / "out"
    out.mkdir()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "cascade",
            "--headless",
            "--project=PixelClass.ilp",
            f"--output_format={fmt}",
            "--export_dtype=float64",
            "--output_filename_format=out/o",
            "img.png",
        ],
        capture_output=True,
        text=True,
        cwd=ws,
        timeout=300,
        preexec_fn=_limit_file_size,
    )
    _full_disk_refused(run, out, "File too large")


@pytest.mark.parametrize(
    ("shape", "chunks"),
    [((7, 9, 5), (3, 4, 2)), ((7, 9, 5), (3, 9, 5)), ((10, 11), (10, 3)), ((4, 5, 6, 3), (1, 2, 6, 3))],
)
def test_npy_written_with_plain_writes_equals_the_array(
    tmp_path: Path, shape: tuple[int, ...], chunks: tuple[int, ...]
) -> None:
    """No memory map any more (a full disk gave SIGBUS): every block layout lands in the right place."""
    import dask.array as da

    data = np.random.default_rng(0).random(shape).astype(np.float32)
    write_image(
        da.from_array(data, chunks=chunks),
        str(tmp_path / "o"),
        format="numpy",
        axes={2: "yx", 3: "zyx", 4: "zyxc"}[len(shape)],
    )
    assert np.array_equal(np.load(tmp_path / "o.npy"), data)


# -- 4. outputs that are inputs ----------------------------------------------------------


def test_output_equal_to_the_input_is_refused(ws: Path) -> None:
    before = (ws / "img.png").read_bytes()
    run = cascade(
        "--headless",
        "--project=PixelClass.ilp",
        "--output_format=png",
        "--export_dtype=uint8",
        "--output_filename_format=img",
        "img.png",
        cwd=ws,
    )
    refused(run, "would overwrite the input")
    assert (ws / "img.png").read_bytes() == before
    # through a symlinked folder: the same file
    (ws / "link").symlink_to(ws, target_is_directory=True)
    run = cascade(
        "--headless",
        "--project=PixelClass.ilp",
        "--output_format=png",
        "--export_dtype=uint8",
        "--output_filename_format=link/img",
        "img.png",
        cwd=ws,
    )
    refused(run, "would overwrite the input")
    assert (ws / "img.png").read_bytes() == before


def test_first_output_overwriting_the_second_input_is_refused_before_computing(ws: Path) -> None:
    image = iio.imread(ws / "img.png")
    np.save(ws / "a.npy", image)
    np.save(ws / "a_Probabilities.npy", image)  # the default output name of a.npy in numpy format
    run = cascade(
        "--headless",
        "--project=PixelClass.ilp",
        "--output_format=numpy",
        "a.npy",
        "a_Probabilities.npy",
        cwd=ws,
    )
    refused(run, "a_Probabilities.npy", "would overwrite the input")
    assert np.array_equal(np.load(ws / "a_Probabilities.npy"), image)
    assert not (ws / "a_Probabilities_Probabilities.npy").exists()


def test_output_into_the_project_or_the_input_dataset_is_refused(ws: Path) -> None:
    with h5py.File(ws / "in.h5", "w") as f:
        f["raw"] = iio.imread(ws / "img.png")
    run = cascade(
        "--headless",
        "--project=PixelClass.ilp",
        "--output_format=hdf5",
        "--output_filename_format=in",
        "--output_internal_path=raw",
        "in.h5/raw",
        cwd=ws,
    )
    refused(run, "would overwrite the input")
    # another dataset of the input's file is fine (ilastik keeps the other datasets)
    run = cascade(
        "--headless",
        "--project=PixelClass.ilp",
        "--output_format=hdf5",
        "--output_filename_format=in",
        "in.h5/raw",
        cwd=ws,
    )
    assert run.returncode == 0, run.stderr
    with h5py.File(ws / "in.h5", "r") as f:
        assert sorted(f) == ["exported_data", "raw"]
        assert np.array_equal(f["raw"][()], iio.imread(ws / "img.png"))
    labels = np.zeros((128, 128), np.uint8)
    labels[:5], labels[-5:] = 1, 2
    iio.imwrite(ws / "labels.png", labels)
    trained = cascade(
        "train",
        "--project=p.h5",
        "--raw_data=img.png",
        "--labels=labels.png",
        "--stages=1",
        "--trees=4",
        cwd=ws,
    )
    assert trained.returncode == 0, trained.stderr
    before = (ws / "p.h5").read_bytes()
    run = cascade(
        "--headless",
        "--project=p.h5",
        "--output_format=hdf5",
        "--output_filename_format=p",
        "img.png",
        cwd=ws,
    )
    refused(run, "would overwrite the project")
    assert (ws / "p.h5").read_bytes() == before


def test_train_refuses_to_replace_a_training_image_or_a_foreign_file(ws: Path) -> None:
    before = (ws / "img.png").read_bytes()
    labels = np.zeros((128, 128), np.uint8)
    labels[:5], labels[-5:] = 1, 2
    iio.imwrite(ws / "labels.png", labels)
    train = ("train", "--raw_data=img.png", "--labels=labels.png", "--stages=1", "--trees=4")
    refused(cascade(*train, "--project=img.png", cwd=ws), "is the training image")
    refused(cascade(*train, "--project=labels.png", cwd=ws), "is the training image")
    refused(cascade(*train, "--project=PixelClass.ilp", cwd=ws), "not a cascade project")
    assert (ws / "img.png").read_bytes() == before
    with output_lock(str(ws / "p.cascade")):  # another training run writing the same project
        refused(cascade(*train, "--project=p.cascade", cwd=ws), "another cascade run is writing")
    assert not (ws / "p.cascade").exists()
    assert np.array_equal(iio.imread(ws / "labels.png"), labels)


# -- 5. concurrent runs ------------------------------------------------------------------


def test_a_second_run_on_a_locked_output_refuses(ws: Path) -> None:
    """A run holding the output (here this test process, with a real flock) blocks another one."""
    command = (
        "--headless",
        "--project=PixelClass.ilp",
        "--output_format=zarr",
        "--output_filename_format=o",
        "img.png",
    )
    with output_lock(str(ws / "o.zarr")):
        run = cascade(*command, cwd=ws)
    refused(run, "another cascade run is writing", "o.zarr", f"pid {os.getpid()}")
    assert not (ws / "o.zarr").exists()
    # a lock file left by a killed run (no process holds it) does not block
    Path(lock_path(str(ws / "o.zarr"))).write_text("999999\n")
    run = cascade(*command, cwd=ws)
    assert run.returncode == 0, run.stderr
    assert hidden(ws) == []  # the lock file is removed when the run ends


def test_two_identical_autocontext_runs_at_once(ws: Path, data_dir: Path) -> None:
    """Run A holds its output and scratch folder (paused while it does); run B, identical, refuses;
    A then finishes with the same result as a run alone (they used to share and delete the scratch)."""
    shutil.copy(data_dir / API / "Autocontext_2D.ilp", ws / "ac.ilp")
    env = {**os.environ, "DASK_CASCADE__IN_MEMORY_STAGE": "0"}  # stage 1 goes through the scratch folder

    def command(out: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "cascade",
            "--headless",
            "--project=ac.ilp",
            f"--output_filename_format={out}",
            "img.png",
        ]

    alone = subprocess.run(command("ref"), capture_output=True, text=True, cwd=ws, env=env)
    assert alone.returncode == 0, alone.stderr
    a = subprocess.Popen(
        command("o"), cwd=ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lock = Path(lock_path(str(ws / "o.h5")))
    try:
        # the pid is written once the lock is taken (before anything is computed)
        while a.poll() is None and not (lock.exists() and lock.read_text().strip()):
            time.sleep(0.02)
        assert a.poll() is None, a.communicate()
        a.send_signal(signal.SIGSTOP)
        b = subprocess.run(command("o"), capture_output=True, text=True, cwd=ws, env=env)
    finally:
        a.send_signal(signal.SIGCONT)
        _, a_err = a.communicate(timeout=300)
    refused(b, "another cascade run is writing", f"pid {a.pid}")
    assert a.returncode == 0, a_err
    assert np.array_equal(
        open_image(str(ws / "o.h5")).data.compute(), open_image(str(ws / "ref.h5")).data.compute()
    )
    assert hidden(ws) == []  # scratch folder and lock files gone


def test_planted_symlink_at_the_scratch_folder_is_not_followed(ws: Path, data_dir: Path) -> None:
    from cascade.io import make_scratch

    link = ws / ".cascade-scratch-x"
    link.symlink_to(ws / "victim", target_is_directory=True)
    used = Path(make_scratch(str(link)))
    assert used.parent == ws
    assert used.is_dir()
    assert not used.is_symlink()
    assert used.name.startswith(".cascade-scratch-x-")
    victim_intact(ws)
    assert make_scratch(str(used)) == str(used)  # a folder of ours is reused (resuming)


# -- 6. reruns into an existing .h5 ------------------------------------------------------


def test_rerun_into_an_h5_does_not_grow_it_and_keeps_other_datasets(ws: Path) -> None:
    with h5py.File(ws / "o.h5", "w") as f:
        f["mine/notes"] = np.arange(1000)
        f["mine"].attrs["who"] = "user"
    command = (
        "--headless",
        "--project=PixelClass.ilp",
        "--output_format=hdf5",
        "--output_filename_format=o",
        "img.png",
    )
    sizes = []
    for _ in range(4):
        run = cascade(*command, cwd=ws)
        assert run.returncode == 0, run.stderr
        sizes.append((ws / "o.h5").stat().st_size)
    assert len(set(sizes)) == 1, sizes
    with h5py.File(ws / "o.h5", "r") as f:
        assert np.array_equal(f["mine/notes"][()], np.arange(1000))
        assert f["mine"].attrs["who"] == "user"
        assert f["exported_data"].shape == (128, 128, 2)
    # temporaries a SIGKILLed run left (old pid-named and current names) are removed by the next run
    os.chmod(ws / "o.h5", 0o640)  # the replacing file keeps the permissions of the one it replaces
    (ws / ".o.h5.partial-4242").write_bytes(b"\0" * 100_000)
    (ws / ".o.h5.k1ll3d_x.partial").write_bytes(b"\0" * 100_000)
    run = cascade(*command, cwd=ws)
    assert run.returncode == 0, run.stderr
    assert hidden(ws) == []
    assert (ws / "o.h5").stat().st_mode & 0o777 == 0o640


def test_killed_hdf5_run_leaves_nothing_a_rerun_keeps(ws: Path) -> None:
    """SIGKILL a real run while it writes; the rerun completes and no hidden file stays."""
    big = np.tile(iio.imread(ws / "img.png"), (8, 8))
    iio.imwrite(ws / "big.png", big)
    command = [
        sys.executable,
        "-m",
        "cascade",
        "--headless",
        "--project=PixelClass.ilp",
        "--output_format=hdf5",
        "--output_filename_format=o",
        "--threads=1",
        "big.png",
    ]
    proc = subprocess.Popen(command, cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # the run holds its lock from before computing until the output is in place
        lock = Path(lock_path(str(ws / "o.h5")))
        while proc.poll() is None and not lock.exists():
            time.sleep(0.02)
        proc.kill()
    finally:
        proc.communicate(timeout=60)
    rerun = cascade(*command[3:], cwd=ws)
    assert rerun.returncode == 0, rerun.stderr
    assert hidden(ws) == []
    assert open_image(str(ws / "o.h5")).data.shape == (1024, 1024, 2)
