"""Command lines from ilastik's headless documentation and argparse, run end to end on files.

Each test runs a real ``cascade`` subprocess, spelled as a client would spell ``run_ilastik.sh
--headless``, on ilastik's own projects and images from ``../shared/data``:

- role options with several files each (``--raw_data a b --prediction_maps c d``, argparse
  ``nargs="+"``), as the Object Classification section of ilastik's headless docs shows;
- ``--input_axes`` with one value per input role (``xy,yx``; ``None`` for a default);
- ``--ignore_training_axistags``, ``--preconvert_stacks``, ``--tree-count`` and ``--version``;
- inputs and options ilastik would turn into a hidden file, a traceback or a silent surprise,
  each refused in one line before anything is written.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from helpers import cascade as run

from cascade.io import open_image

API = "ilp/ilastik__ilastik/api_projects"
OC = "ilp/ilastik__ilastik/object_classification"


def _axistags(keys: str) -> str:
    """vigra's axistags JSON for ``keys``, as ilastik writes it into HDF5 attributes."""
    flags = {"t": 8, "z": 2, "y": 2, "x": 2, "c": 1}
    return json.dumps(
        {"axes": [{"key": k, "typeFlags": flags[k], "resolution": 0, "description": ""} for k in keys]}
    )


def _ok(done: object) -> None:
    assert getattr(done, "returncode", None) == 0, getattr(done, "stderr", "")
    assert getattr(done, "stderr", "") == ""


def _refused(done: object, *words: str) -> str:
    """The one error line of a refused run (exit 2, no traceback), which names ``words``."""
    stderr = str(getattr(done, "stderr", ""))
    lines = stderr.strip().splitlines()
    assert getattr(done, "returncode", None) == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("cascade: error: "), stderr
    for word in words:
        assert word in lines[0], stderr
    return lines[0]


@pytest.fixture
def pc(data_dir: Path) -> Path:
    return data_dir / API / "PixelClass.ilp"


@pytest.fixture
def reference(data_dir: Path) -> np.ndarray:
    """ilastik's probabilities of ``Data_1channel.png`` with ``PixelClass.ilp`` (y, x, class)."""
    return np.load(data_dir / API / "res-Data_1channel_pc1xyc.npy")


@pytest.fixture
def image(data_dir: Path) -> np.ndarray:
    return iio.imread(data_dir / API / "Data_1channel.png")


def test_raw_data_and_masks_take_several_files_each(
    tmp_path: Path, pc: Path, image: np.ndarray, reference: np.ndarray
) -> None:
    """``--raw_data a b --prediction_mask ma mb``: each input is paired with its own mask."""
    halves = np.zeros(image.shape, np.uint8)
    halves[:, :64] = 1
    for name, data in [("a.png", image), ("b.png", image), ("ma.png", halves), ("mb.png", 1 - halves)]:
        iio.imwrite(tmp_path / name, data)
    done = run(
        "--headless",
        f"--project={pc}",
        "--output_format=numpy",
        "--output_filename_format=out/{nickname}",
        "--raw_data",
        "a.png",
        "b.png",
        "--prediction_mask",
        "ma.png",
        "mb.png",
        cwd=tmp_path,
    )
    _ok(done)
    assert np.array_equal(np.load(tmp_path / "out" / "a.npy"), reference * halves[..., None])
    assert np.array_equal(np.load(tmp_path / "out" / "b.npy"), reference * (1 - halves)[..., None])


def test_object_inputs_take_several_files_each(data_dir: Path, tmp_path: Path) -> None:
    """ilastik's documented ``--raw_data a b --prediction_maps pa pb``: the second raw image is a
    crop of the first (a crossed pairing could not run), and its result is the crop's own run."""
    inputs = data_dir / OC / "inputdata"
    with h5py.File(inputs / "2d.h5", "r") as f:
        raw = f["data"][()]
    with h5py.File(inputs / "2d_Probabilities.h5", "r") as f:
        maps = f["exported_data"][()]
    crop = (slice(100, 612), slice(200, 904))
    for name, data in [("a.h5", raw), ("b.h5", raw[crop]), ("pa.h5", maps), ("pb.h5", maps[crop])]:
        with h5py.File(tmp_path / name, "w") as f:
            f.create_dataset("data", data=data)
    common = (
        "--headless",
        f"--project={data_dir / OC / 'ObjectClassification2d_wPred.ilp'}",
        "--export_source=Object Predictions",
    )
    both = ("--raw_data", "a.h5", "b.h5", "--prediction_maps", "pa.h5/data", "pb.h5/data")
    _ok(run(*common, "--output_filename_format=out/{nickname}.h5", *both, cwd=tmp_path))
    one = ("--raw_data=b.h5", "--prediction_maps=pb.h5/data")
    _ok(run(*common, "--output_filename_format=alone/{nickname}.h5", *one, cwd=tmp_path))
    with (
        h5py.File(tmp_path / "out" / "a.h5", "r") as a,
        h5py.File(tmp_path / "out" / "b.h5", "r") as b,
        h5py.File(tmp_path / "alone" / "b.h5", "r") as alone,
    ):
        assert a["exported_data"].shape[:2] == raw.shape
        assert np.array_equal(b["exported_data"][()], alone["exported_data"][()])
        assert b["exported_data"][()].max() > 0


def test_a_cluster_script_passing_a_table_file_to_a_pixel_project(
    tmp_path: Path, pc: Path, image: np.ndarray, reference: np.ndarray
) -> None:
    """A published SLURM script runs every project with ``--table_filename`` and a shell-expanded
    ``--raw_data`` list; ilastik's pixel workflow ignores the table option, so does cascade."""
    for name in ("a.png", "b.png"):
        iio.imwrite(tmp_path / name, image)
    done = run(
        "--headless",
        f"--project={pc}",
        "--table_filename=out/exported_object_features.csv",
        "--output_filename_format=out/{nickname}_seg.tif",
        "--output_format=tif",
        "--export_source=probabilities",
        "--raw_data",
        "a.png",
        "b.png",
        cwd=tmp_path,
    )
    _ok(done)
    assert "--table_filename is ignored" in done.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_seg.tif", "b_seg.tif"]
    for name in ("a_seg.tif", "b_seg.tif"):
        assert np.array_equal(tifffile.imread(tmp_path / "out" / name), reference)


def test_cellprofiler_runilastik_reserves_its_output_file(
    tmp_path: Path, pc: Path, image: np.ndarray
) -> None:
    """CellProfiler's RunIlastik module writes its float64 image to a ``NamedTemporaryFile`` and
    passes a second, still empty one as the output; ilastik's ``h5py.File(path, "a")`` fills it."""
    with (
        tempfile.NamedTemporaryFile(suffix=".h5", dir=tmp_path, delete=False) as raw,
        tempfile.NamedTemporaryFile(suffix=".h5", dir=tmp_path, delete=False) as out,
    ):
        pass  # both names now exist as empty files, as the module leaves them
    with h5py.File(raw.name, "w") as f:
        f.create_dataset("data", image.shape, data=image / 255.0)
    args = ["--headless", "--project", str(pc), "--output_format", "hdf5", "--export_source", "Probabilities"]
    _ok(run(*args, "--output_filename_format", out.name, raw.name, cwd=tmp_path))
    _ok(run(*args, "--output_filename_format", "fresh.h5", raw.name, cwd=tmp_path))
    with h5py.File(out.name, "r") as reserved, h5py.File(tmp_path / "fresh.h5", "r") as fresh:
        assert list(reserved) == ["exported_data"]
        assert np.array_equal(reserved["exported_data"][()], fresh["exported_data"][()])
    (tmp_path / "text.h5").write_text("not hdf5")  # a file with content is still never replaced
    _refused(run(*args, "--output_filename_format", "text.h5", raw.name, cwd=tmp_path), "not an HDF5 file")


def test_nan_raw_data_in_objects_is_refused_in_one_line(data_dir: Path, tmp_path: Path) -> None:
    """vigra's histogram range refuses NaN (``setMinMax``: min <= max), so ilastik's object features
    fail on it; cascade says so in one line instead of a numpy warning and made-up histograms."""
    inputs = data_dir / OC / "inputdata"
    with h5py.File(inputs / "2d.h5", "r") as f:
        raw = f["data"][()].astype(np.float32)
    raw[::7, ::5] = np.nan
    np.save(tmp_path / "raw.npy", raw)
    done = run(
        "--headless",
        f"--project={data_dir / OC / 'ObjectClassification2d_wPred.ilp'}",
        "--raw_data=raw.npy",
        f"--prediction_maps={inputs / '2d_Probabilities.h5'}",
        "--output_filename_format=out/{nickname}",
        cwd=tmp_path,
    )
    _refused(done, "NaN")
    assert not (tmp_path / "out").exists()


def test_a_role_given_with_equals_takes_one_file(tmp_path: Path, pc: Path, image: np.ndarray) -> None:
    """``--raw_data=a b`` leaves ``b`` a trailing file, which ilastik refuses beside a named role."""
    for name in ("a.png", "b.png"):
        iio.imwrite(tmp_path / name, image)
    done = run("--headless", f"--project={pc}", "--raw_data=a.png", "b.png", cwd=tmp_path)
    _refused(done, "--raw_data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]


def test_input_axes_per_role(tmp_path: Path, pc: Path, image: np.ndarray, reference: np.ndarray) -> None:
    """``--input_axes="xy, yx"``: the raw data is stored x-major, its mask y-major."""
    mask = np.zeros(image.shape, np.uint8)
    mask[20:90, 10:70] = 1
    np.save(tmp_path / "raw.npy", np.ascontiguousarray(image.T))
    np.save(tmp_path / "mask.npy", mask)
    common = ("--headless", f"--project={pc}", "--output_format=numpy", "--prediction_mask=mask.npy")
    done = run(
        *common, "--input_axes=xy, yx", "--output_filename_format=out", "--raw_data=raw.npy", cwd=tmp_path
    )
    _ok(done)
    expected = (reference * mask[..., None]).transpose(1, 0, 2)  # written in the input's axis order
    assert np.array_equal(np.load(tmp_path / "out.npy"), expected)
    # one value applies to every role (ilastik): the mask is read x-major too, so it lands transposed
    done = run(*common, "--input_axes=xy", "--output_filename_format=one", "--raw_data=raw.npy", cwd=tmp_path)
    _ok(done)
    assert np.array_equal(np.load(tmp_path / "one.npy"), reference.transpose(1, 0, 2) * mask[..., None])
    # "None" keeps a role's default; three values are more roles than Pixel Classification has
    done = run(
        *common, "--input_axes=None", "--output_filename_format=none", "--raw_data=raw.npy", cwd=tmp_path
    )
    _ok(done)
    refused = run(
        *common, "--input_axes=xy,yx,yx", "--output_filename_format=x", "--raw_data=raw.npy", cwd=tmp_path
    )
    _refused(refused, "--input_axes", "2 input roles")
    assert not (tmp_path / "x.npy").exists()


def test_ignore_training_axistags_reads_the_files_axes(
    tmp_path: Path, pc: Path, image: np.ndarray, reference: np.ndarray
) -> None:
    """An HDF5 file tagged ``xy``: ilastik reuses the training image's ``yx`` for it unless told
    ``--ignore_training_axistags``; then the file's own axes hold and the result is exact."""
    with h5py.File(tmp_path / "xy.h5", "w") as f:
        f.create_dataset("data", data=np.ascontiguousarray(image.T)).attrs["axistags"] = _axistags("xy")
    common = ("--headless", f"--project={pc}", "--output_format=hdf5", "xy.h5/data")
    _ok(run(*common, "--ignore_training_axistags", "--output_filename_format=own.h5", cwd=tmp_path))
    _ok(run(*common, "--output_filename_format=trained.h5", cwd=tmp_path))
    with h5py.File(tmp_path / "own.h5", "r") as own, h5py.File(tmp_path / "trained.h5", "r") as trained:
        assert np.array_equal(own["exported_data"][()], reference.transpose(1, 0, 2))
        assert [a["key"] for a in json.loads(own["exported_data"].attrs["axistags"])["axes"]] == list("xyc")
        assert [a["key"] for a in json.loads(trained["exported_data"].attrs["axistags"])["axes"]] == list(
            "yxc"
        )


def test_preconvert_stacks_changes_nothing(data_dir: Path, tmp_path: Path) -> None:
    """``--preconvert_stacks`` (a temporary HDF5 copy in ilastik) gives the stack's own result."""
    volume = np.load(data_dir / API / "Data_3D.npy")[..., 0]
    (tmp_path / "slices").mkdir()
    for z, plane in enumerate(volume):
        iio.imwrite(tmp_path / "slices" / f"z_{z:02d}.png", plane)
    done = run(
        "--headless",
        f"--project={data_dir / API / 'PixelClass3D.ilp'}",
        "--preconvert_stacks",
        "--stack_along=z",
        "--output_format=numpy",
        "--output_filename_format=out",
        "slices/z_*.png",
        cwd=tmp_path,
    )
    _ok(done)
    assert np.array_equal(np.load(tmp_path / "out.npy"), np.load(data_dir / API / "res-Data_3D_pc3d.npy"))


def test_tree_count_retrains_like_ilastik(data_dir: Path, tmp_path: Path) -> None:
    """ilastik's ``--tree-count N`` dirties the classifier: the project is retrained with N trees."""
    done = run(
        "--headless",
        f"--project={data_dir / API / 'Autocontext_2D.ilp'}",
        "--tree-count",
        "5",
        "--export_source=Probabilities Stage 1",
        "--output_format=numpy",
        "--output_filename_format=out",
        data_dir / API / "Data_1channel.png",
        cwd=tmp_path,
    )
    _ok(done)
    votes = np.load(tmp_path / "out.npy") * 5  # every probability is a share of 5 trees' votes
    assert np.allclose(votes, np.round(votes), atol=1e-5)
    stored = np.load(data_dir / API / "res-Data_1channel_ac2ds1.npy") * 5
    assert not np.allclose(stored, np.round(stored), atol=1e-5)  # the stored forests have 100 trees


def _project_storing(tmp_path: Path, pc: Path, **settings: str) -> Path:
    """A copy of ``pc`` in ``tmp_path/project`` whose stored export settings are ``settings``."""
    project = tmp_path / "project" / "stored.ilp"
    project.parent.mkdir()
    shutil.copyfile(pc, project)
    with h5py.File(project, "r+") as f:
        group = f["Prediction Export"]
        for key, value in settings.items():
            del group[key]
            group[key] = value.encode()
    return project


def test_a_stored_relative_file_name_is_taken_from_the_projects_folder(
    tmp_path: Path, pc: Path, image: np.ndarray, reference: np.ndarray
) -> None:
    """ilastik resolves a relative file name stored in the project against the project's folder
    (its ``WorkingDirectory``); only a name given on the command line is relative to the cwd."""
    project = _project_storing(tmp_path, pc, OutputFilenameFormat="results/{nickname}_{result_type}")
    (tmp_path / "work").mkdir()
    iio.imwrite(tmp_path / "work" / "img.png", image)
    _ok(run("--headless", f"--project={project}", "img.png", cwd=tmp_path / "work"))
    with h5py.File(tmp_path / "project" / "results" / "img_Probabilities.h5", "r") as f:
        assert np.array_equal(f["exported_data"][()], reference)
    _ok(
        run(
            "--headless",
            f"--project={project}",
            "--output_filename_format=here",
            "img.png",
            cwd=tmp_path / "work",
        )
    )
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["here.h5", "img.png"]


def test_the_projects_stored_format_wins_over_the_config_file(
    tmp_path: Path, pc: Path, image: np.ndarray
) -> None:
    """ilastik's precedence: command line, project, ``[ilastik]`` config file, built-in default."""
    project = _project_storing(tmp_path, pc, OutputFormat="hdf5")
    iio.imwrite(tmp_path / "img.png", image)
    (tmp_path / "ilastik.ini").write_text("[ilastik]\noutput_format: numpy\n")
    common = ("--headless", f"--project={project}", "--configfile=ilastik.ini", "img.png")
    _ok(run(*common, "--output_filename_format=stored", cwd=tmp_path))
    _ok(run(*common, "--output_filename_format=given", "--output_format=tiff", cwd=tmp_path))
    assert (tmp_path / "stored.h5").is_file() and (tmp_path / "given.tiff").is_file()


def test_distributed_writes_n5_whatever_the_format(tmp_path: Path, pc: Path, image: np.ndarray) -> None:
    """ilastik's docs: with ``--distributed`` only n5 is written, ``--output_format`` is ignored."""
    iio.imwrite(tmp_path / "img.png", image)
    done = run(
        "--headless",
        f"--project={pc}",
        "--distributed",
        "--output_format=hdf5",
        "--threads=1",
        "--output_filename_format=out.h5",
        "img.png",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "--output_format hdf5 ignored" in done.stderr
    assert (tmp_path / "out.n5").is_dir() and not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize(("roi", "block"), [(None, [2, 128, 128]), ("{'x': 64, 'y': 32}", [2, 64, 32])])
def test_distributed_n5_blocks_are_the_block_roi(
    tmp_path: Path, pc: Path, image: np.ndarray, reference: np.ndarray, roi: str | None, block: list[int]
) -> None:
    """ilastik's MPI export creates its n5 with chunks = the block roi (default x=y=z=256, clamped
    to the image; c: all channels); cascade stored its own ~512 KB blocks, one channel each."""
    iio.imwrite(tmp_path / "img.png", image)
    roi_args = [f"--distributed_block_roi={roi}"] if roi else []
    args = ("--headless", f"--project={pc}", "--distributed", "--threads=1", *roi_args)
    done = run(*args, "--output_filename_format=out", "img.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    attrs = json.loads((tmp_path / "out.n5" / "exported_data" / "attributes.json").read_text())
    assert attrs["blockSize"] == block  # N5 order: the reverse of y, x, c
    np.testing.assert_array_equal(open_image(str(tmp_path / "out.n5")).data.compute(), reference)


@pytest.mark.parametrize("args", [["--version"], ["--headless", "--project=p.ilp", "--version", "x.png"]])
def test_version(tmp_path: Path, args: list[str]) -> None:
    from cascade import __version__

    done = run(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"cascade {__version__}"
    assert list(tmp_path.iterdir()) == []


def test_bool_raw_data_is_coerced_as_in_ilastik(tmp_path: Path, pc: Path, image: np.ndarray) -> None:
    """A bool image is classified as its 0/1 values (ilastik casts the input to float32)."""
    np.save(tmp_path / "bool.npy", image > 100)
    np.save(tmp_path / "u8.npy", (image > 100).astype(np.uint8))
    for name in ("bool", "u8"):
        common = ("--headless", f"--project={pc}", "--output_format=numpy")
        _ok(run(*common, f"--output_filename_format=out_{name}", f"{name}.npy", cwd=tmp_path))
    assert np.array_equal(np.load(tmp_path / "out_bool.npy"), np.load(tmp_path / "out_u8.npy"))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        # ilastik would write a hidden "results/.h5"; the folder's sibling "results.h5" neither
        (["--output_filename_format=results/"], ["ends with a folder", "results/{nickname}_{result_type}"]),
        (["--output_format=dvid"], ["'dvid'", "DVID"]),
        (["--output_format=blockwise hdf5"], ["not implemented in ilastik"]),
        (["--project=."], ["is a directory"]),
        (["--input_axes=yx,,"], ["--input_axes"]),
    ],
)
def test_refused_in_one_line_before_anything_is_written(
    tmp_path: Path, pc: Path, image: np.ndarray, args: list[str], words: list[str]
) -> None:
    (tmp_path / "results").mkdir()
    iio.imwrite(tmp_path / "img.png", image)
    done = run("--headless", f"--project={pc}", *args, "img.png", cwd=tmp_path)
    _refused(done, *words)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["img.png", "results"]


def test_role_options_are_split_only_up_to_the_next_option() -> None:
    from cascade.cli import normalize_argv

    args = ["--headless", "--project=p", "--raw-data", "a", "b", "--readonly", "0", "--", "-c.png"]
    expected = ["predict", "--project=p", "--raw-data=a", "--raw-data=b", "--readonly=0", "--", "-c.png"]
    assert normalize_argv(args) == expected
    assert normalize_argv(["--headless", "--atlas", "x", "y"]) == ["predict", "--atlas=x", "--atlas=y"]


def test_abbreviated_options_as_argparse_takes_them(
    tmp_path: Path, pc: Path, image: np.ndarray, reference: np.ndarray
) -> None:
    """ilastik's argparse takes an unambiguous prefix (``--output_filename=``, ``--raw a b``);
    an ambiguous one is refused in one line naming the candidates, and a misspelt one as unknown,
    before anything is written."""
    for name in ("a.png", "b.png"):
        iio.imwrite(tmp_path / name, image)
    done = run(
        "--headless",
        f"--proj={pc}",
        "--output_form=numpy",
        "--output_filename=out/{nickname}",
        "--export-so",
        "Probabilities",
        "--raw",
        "a.png",
        "b.png",
        cwd=tmp_path,
    )
    _ok(done)
    for name in ("a", "b"):
        assert np.array_equal(np.load(tmp_path / "out" / f"{name}.npy"), reference)
    refused = run("--headless", f"--project={pc}", "--export=Probabilities", "a.png", cwd=tmp_path / "out")
    _refused(refused, "ambiguous option --export", "--export_source", "--export_dtype")
    unknown = run("--headless", f"--project={pc}", "--output_filenam_formt=x", "a.png", cwd=tmp_path / "out")
    _refused(unknown, "unknown option --output_filenam_formt")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.npy", "b.npy"]
