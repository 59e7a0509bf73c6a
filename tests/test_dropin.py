"""Drop-in for real pipelines: ilastik's own projects, driven by the command lines real clients use.

Every run is a real ``cascade`` subprocess on files, with ilastik's projects from ``../shared/data``:

- the Fiji plugin ilastik4ij (its exact argument list, its project and image), and the OMERO guide's
  Fiji script that drives it with the OMERO project;
- the OMERO guide's "Batch processing" (several h5 files per call, the project's stored export
  settings, default output names beside the inputs);
- MCMICRO's ilastik module (``run_ilastik.sh --headless --export_dtype uint8 --project M *.hdf5``);
- glob stacks along t, z and c (2D grey and RGB PNGs, 3D TIFFs), an LZW TIFF, and output folders
  that do not exist yet.

All command lines run once, two at a time (the ``runs`` fixture); each test checks one of them
against predictions computed in this process with the library on the same pixels.
"""

from __future__ import annotations

import os
import shlex
import string
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from codec_probe import require_codec

from cascade.io._meta import keys_from_axistags
from cascade.pipeline import predict
from cascade.project import open_project

Runs = dict[str, subprocess.CompletedProcess[str]]

API = "ilp/ilastik__ilastik/api_projects"
IJ = "ilp/ilastik__ilastik4ij/src/test/resources"
OMERO = "ilp/ome__omero-guide-ilastik/notebooks/pipelines/pixel-class-133.ilp"
MCMICRO = "ilp/labsyspharm__mcmicro-ilastik/classifiers/exemplar_001_nuclei.ilp"

#: ilastik4ij's ``WorkflowCommand`` arguments for a pixel classification run (the input file is
#: written by the plugin as dataset ``data`` in t, z, c, y, x order; relative paths, plugin's cwd)
IJ_ARGS = (
    "--headless --project=$PROJECT --output_format=hdf5 --output_axis_order=tzcyx --input_axes=tzcyx "
    "--readonly=1 --output_internal_path=exported_data --export_source=$SOURCE "
    "--raw_data=inputs/raw_data.h5 --output_filename_format=outputs/$OUT"
)


def _balls(seed: int, shape: tuple[int, int, int]) -> np.ndarray:
    """A seeded two-channel ``zyxc`` uint8 volume of bright balls (channel 0) on a dark ground."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape)
    inside = np.zeros(shape, bool)
    for _ in range(5):
        centre = [int(rng.integers(4, n - 4)) for n in shape]
        inside |= sum((g - c) ** 2 for g, c in zip(grid, centre)) < int(rng.integers(4, 8)) ** 2
    bright = np.where(inside, 180, 60) + rng.normal(0, 25, shape)
    dark = np.where(inside, 50, 150) + rng.normal(0, 25, shape)
    return np.clip(np.stack([bright, dark], -1), 0, 255).astype(np.uint8)


def _nuclei(seed: int, size: int) -> np.ndarray:
    """A seeded ``yx`` uint16 image of bright disks, like a DAPI channel."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    image = np.full((size, size), 800.0)
    for _ in range(25):
        cy, cx, r = (*rng.integers(8, size - 8, 2).tolist(), int(rng.integers(4, 9)))
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 6000
    return np.clip(image + rng.normal(0, 300, image.shape), 0, 65535).astype(np.uint16)


def _write_stacks(root: Path, data: Path) -> None:
    gray = iio.imread(data / API / "Data_1channel.png")
    rgb = iio.imread(data / API / "Data_3channel.png")[:64, :64]
    volume = np.load(data / API / "Data_3D.npy")[..., 0]
    for name in ("gt", "rgb", "gz", "v3", "gc"):
        (root / name).mkdir()
    for t in range(3):
        iio.imwrite(root / "gt" / f"s_{t}.png", np.roll(gray, 9 * t, axis=0))
        iio.imwrite(root / "rgb" / f"c_{t}.png", np.roll(rgb, 5 * t, axis=1))
        iio.imwrite(root / "gc" / f"ch_{t}.png", np.roll(rgb[..., t], 3, axis=0))
    for z in range(40):
        iio.imwrite(root / "gz" / f"z_{z:02d}.png", volume[z])
    for t in range(2):
        tifffile.imwrite(root / "v3" / f"v_{t}.tif", volume[32 * t : 32 * t + 32], metadata={"axes": "ZYX"})
    tifffile.imwrite(root / "lzw.tif", gray, compression="lzw", predictor=True, tile=(64, 64))


def _write_clients(root: Path, data: Path) -> None:
    with h5py.File(data / IJ / "2d_cells_apoptotic_1channel.h5", "r") as f:
        cells = f["data"][()]  # t, z, y, x, c
    (root / "ij" / "inputs").mkdir(parents=True)
    with h5py.File(root / "ij" / "inputs" / "raw_data.h5", "w") as f:
        f.create_dataset("data", data=cells.transpose(0, 1, 4, 2, 3))  # as the plugin writes it
    (root / "omero-fiji" / "inputs").mkdir(parents=True)
    with h5py.File(root / "omero-fiji" / "inputs" / "raw_data.h5", "w") as f:
        f.create_dataset("data", data=_balls(3, (36, 40, 44))[None].transpose(0, 1, 4, 2, 3))
    (root / "omero").mkdir()
    for k in range(2):  # Fiji's "Export HDF5" of an OMERO image: dataset "data", t z y x c, no axistags
        with h5py.File(root / "omero" / f"blastocyst-{k}.h5", "w") as f:
            f.create_dataset("data", data=_balls(10 + k, (36, 40, 40))[None])
    (root / "mcmicro").mkdir()
    for k in range(2):  # CommandIlastikPrepOME.py: <stem>.hdf5 holding dataset <stem>, (1, y, x, c) as zyxc
        stem = f"exemplar-00{k + 1}"
        with h5py.File(root / "mcmicro" / f"{stem}.hdf5", "w") as f:
            f.create_dataset(stem, data=_nuclei(k, 200)[None, :, :, None], chunks=True)


@pytest.fixture(scope="module")
def ws(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dropin")
    _write_stacks(root, data_dir)
    _write_clients(root, data_dir)
    return root


#: name -> (working directory under the workspace, command line); $D is the shared data folder,
#: $WS the workspace
COMMANDS: dict[str, tuple[str, str]] = {
    "ij-probabilities": (
        "ij",
        string.Template(IJ_ARGS).safe_substitute(
            PROJECT=f"$D/{IJ}/pixel_class_2d_cells_apoptotic.ilp",
            SOURCE="Probabilities",
            OUT="predictions.h5",
        ),
    ),
    "ij-segmentation": (
        "ij",
        string.Template(IJ_ARGS).safe_substitute(
            PROJECT=f"$D/{IJ}/pixel_class_2d_cells_apoptotic.ilp",
            SOURCE="'Simple Segmentation'",
            OUT="segmentation.h5",
        ),
    ),
    "omero-fiji": (
        "omero-fiji",
        string.Template(IJ_ARGS).safe_substitute(
            PROJECT=f"$D/{OMERO}", SOURCE="Probabilities", OUT="blastocyst_Probabilities.h5"
        ),
    ),
    "omero-batch-segmentation": (
        "omero",
        f"--headless --project=$D/{OMERO} '--export_source=Simple Segmentation' "
        "blastocyst-0.h5 blastocyst-1.h5",
    ),
    "omero-batch-probabilities": (
        "omero",
        f"--headless --project=$D/{OMERO} --export_source=Probabilities $WS/omero/blastocyst-1.h5",
    ),
    "mcmicro": (
        "mcmicro",
        f"--headless --export_dtype uint8 --project $D/{MCMICRO} exemplar-001.hdf5 exemplar-002.hdf5",
    ),
    "stack-t": (
        ".",
        f"--headless --project=$D/{API}/PixelClass.ilp --stack_along=t --output_format=hdf5 "
        "--output_filename_format=$WS/out/stack-t/{nickname}_results.h5 'gt/s_*.png'",
    ),
    "stack-z": (
        ".",
        f"--headless --project=$D/{API}/PixelClass3D.ilp --output_format=numpy "
        "--output_filename_format=$WS/out/stack-z/{nickname}_results 'gz/z_*.png'",
    ),
    "stack-c": (
        ".",
        f"--headless --project=$D/{API}/PixelClass3Channel.ilp --stack_along=c --output_format=numpy "
        "--output_filename_format=$WS/out/stack-c/{nickname}_results 'gc/ch_*.png'",
    ),
    "stack-rgb-t": (
        ".",
        f"--headless --project=$D/{API}/PixelClass3Channel.ilp --stack_along=t --output_format=numpy "
        "--output_filename_format=$WS/out/stack-rgb-t/{nickname}_results 'rgb/c_*.png'",
    ),
    "stack-rgb-z": (
        ".",
        f"--headless --project=$D/{API}/PixelClass3Channel.ilp --stack_along=z --output_format=numpy "
        "--output_filename_format=$WS/out/stack-rgb-z/{nickname}_results 'rgb/c_*.png'",
    ),
    "stack-3d-t": (
        ".",
        f"--headless --project=$D/{API}/PixelClass3D.ilp --stack_along=t --output_format=numpy "
        "--output_filename_format=$WS/out/stack-3d-t/{nickname}_results 'v3/v_*.tif'",
    ),
    "lzw-missing-folder": (
        ".",
        f"--headless --project=$D/{API}/PixelClass.ilp --output_format=tiff "
        "--output_filename_format=$WS/results/a/{nickname}_results.tiff lzw.tif",
    ),
    "refused-leaves-no-folder": (
        ".",
        f"--headless --project=$D/{API}/PixelClass.ilp --export_source=Probabilities --export_source=Nope "
        "--output_filename_format=$WS/refused/a/{nickname}_results.tiff lzw.tif",
    ),
}


@pytest.fixture(scope="module")
def runs(ws: Path, data_dir: Path) -> Runs:
    env = {**os.environ, "LAZYFLOW_THREADS": "2", "LAZYFLOW_TOTAL_RAM_MB": "1500"}  # as ilastik4ij sets them

    def run(item: tuple[str, str]) -> subprocess.CompletedProcess[str]:
        where, text = item
        args = shlex.split(string.Template(text).substitute(D=data_dir, WS=ws))
        return subprocess.run(
            [sys.executable, "-m", "cascade", *args],
            capture_output=True,
            text=True,
            cwd=ws / where,
            env=env,
            timeout=600,
        )

    assert not any(ch.isspace() or ch in "'\"$" for ch in f"{ws}{data_dir}")
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(COMMANDS, pool.map(run, COMMANDS.values())))


def _ok(runs: Runs, name: str) -> None:
    done = runs[name]
    assert done.returncode == 0, f"{name}: {done.stderr}"
    assert done.stderr == "", done.stderr


def _probabilities(data_dir: Path, project: str, raw: np.ndarray, axes: str) -> np.ndarray:
    if "c" not in axes:
        raw, axes = raw[..., None], axes + "c"
    (result,) = predict(open_project(data_dir / project), raw, axes=axes)
    return np.asarray(result.probabilities.compute())


# --- real clients ------------------------------------------------------------------------------


def test_ilastik4ij_fiji_plugin(ws: Path, data_dir: Path, runs: Runs) -> None:
    """The plugin's exact call: tzcyx in and out, ``outputs/`` created, the project's float32 dtype."""
    _ok(runs, "ij-probabilities")
    _ok(runs, "ij-segmentation")
    assert sorted(os.listdir(ws / "ij" / "outputs")) == ["predictions.h5", "segmentation.h5"]
    cells = tifffile.imread(data_dir / IJ / "2d_cells_apoptotic.tif")  # the same pixels, another file
    want = _probabilities(data_dir, f"{IJ}/pixel_class_2d_cells_apoptotic.ilp", cells, "yx")
    assert want.shape == (1024, 1344, 2)
    with h5py.File(ws / "ij" / "outputs" / "predictions.h5", "r") as f:
        assert list(f) == ["exported_data"]
        probs = f["exported_data"]
        assert keys_from_axistags(probs.attrs["axistags"]) == "tzcyx"
        assert probs.dtype == np.float32 and probs.shape == (1, 1, 2, 1024, 1344)
        np.testing.assert_array_equal(probs[0, 0], want.transpose(2, 0, 1))
    with h5py.File(ws / "ij" / "outputs" / "segmentation.h5", "r") as f:
        seg = f["exported_data"]
        assert seg.dtype == np.float32 and seg.shape == (1, 1, 1, 1024, 1344)  # ExportDtype stored: float32
        np.testing.assert_array_equal(seg[0, 0, 0], np.argmax(want, axis=-1) + 1)


def test_omero_guide_fiji_script(ws: Path, data_dir: Path, runs: Runs) -> None:
    """The OMERO guide's Groovy script drives ilastik4ij with the guide's 3D two-channel project."""
    _ok(runs, "omero-fiji")
    with h5py.File(ws / "omero-fiji" / "inputs" / "raw_data.h5", "r") as f:
        raw = f["data"][0].transpose(0, 2, 3, 1)  # z, y, x, c
    want = _probabilities(data_dir, OMERO, raw, "zyxc")
    with h5py.File(ws / "omero-fiji" / "outputs" / "blastocyst_Probabilities.h5", "r") as f:
        probs = f["exported_data"]
        assert keys_from_axistags(probs.attrs["axistags"]) == "tzcyx"
        assert probs.shape == (1, 36, 2, 40, 44)
        np.testing.assert_array_equal(probs[0], want.transpose(0, 3, 1, 2))


def test_omero_guide_batch_processing(ws: Path, data_dir: Path, runs: Runs) -> None:
    """Several h5 files per call (and one by absolute path), named and typed by the project's settings."""
    _ok(runs, "omero-batch-segmentation")
    _ok(runs, "omero-batch-probabilities")
    assert runs["omero-batch-segmentation"].stdout.count("(") == 2  # one line per input
    assert sorted(os.listdir(ws / "omero")) == [
        "blastocyst-0.h5",
        "blastocyst-0_Simple Segmentation.h5",
        "blastocyst-1.h5",
        "blastocyst-1_Probabilities.h5",
        "blastocyst-1_Simple Segmentation.h5",
    ]
    for k in range(2):
        with h5py.File(ws / "omero" / f"blastocyst-{k}.h5", "r") as f:
            raw = f["data"][0]
        want = _probabilities(data_dir, OMERO, raw, "zyxc")
        with h5py.File(ws / "omero" / f"blastocyst-{k}_Simple Segmentation.h5", "r") as f:
            seg = f["exported_data"]
            assert keys_from_axistags(seg.attrs["axistags"]) == "tzyxc"  # the input's axes
            assert seg.dtype == np.float32  # the project's stored export dtype
            np.testing.assert_array_equal(seg[0, ..., 0], np.argmax(want, axis=-1) + 1)
        if k == 1:
            with h5py.File(ws / "omero" / "blastocyst-1_Probabilities.h5", "r") as f:
                np.testing.assert_array_equal(f["exported_data"][0], want)


def test_mcmicro_module(ws: Path, data_dir: Path, runs: Runs) -> None:
    """``run_ilastik.sh --headless --export_dtype uint8 --project M *.hdf5``: the project's tif export,
    normalised 0..1 -> 0..255, beside each input, named ``<stem>_Probabilities.tif``."""
    _ok(runs, "mcmicro")
    names = sorted(os.listdir(ws / "mcmicro"))
    assert names == [
        "exemplar-001.hdf5",
        "exemplar-001_Probabilities.tif",  # no internal path given: none in the nickname
        "exemplar-002.hdf5",
        "exemplar-002_Probabilities.tif",
    ]
    for k in range(2):
        stem = f"exemplar-00{k + 1}"
        raw = _nuclei(k, 200)
        want = _probabilities(data_dir, MCMICRO, raw, "yx")
        got = tifffile.imread(ws / "mcmicro" / f"{stem}_Probabilities.tif")
        assert got.dtype == np.uint8 and got.shape == (200, 200, 3)
        np.testing.assert_array_equal(got, np.rint(want * np.float32(255)).astype(np.uint8))


# --- glob stacks -------------------------------------------------------------------------------


def test_grey_pngs_stacked_along_t(ws: Path, data_dir: Path, runs: Runs) -> None:
    """The project's training axes are ``yxc``; each 128 x 128 PNG is ``yx``, the stack ``tyx``."""
    _ok(runs, "stack-t")
    with h5py.File(ws / "out" / "stack-t" / "s__results.h5", "r") as f:
        probs = f["exported_data"]
        assert keys_from_axistags(probs.attrs["axistags"]) == "tyxc"
        assert probs.shape == (3, 128, 128, 2)
        for t in range(3):
            frame = iio.imread(ws / "gt" / f"s_{t}.png")
            np.testing.assert_array_equal(
                probs[t], _probabilities(data_dir, f"{API}/PixelClass.ilp", frame, "yx"), err_msg=str(t)
            )


def test_grey_pngs_stacked_along_z_by_default(ws: Path, data_dir: Path, runs: Runs) -> None:
    _ok(runs, "stack-z")
    got = np.load(ws / "out" / "stack-z" / "z__results.npy")
    volume = np.load(data_dir / API / "Data_3D.npy")[:40]
    assert got.shape == (40, 64, 64, 2)
    np.testing.assert_array_equal(got, _probabilities(data_dir, f"{API}/PixelClass3D.ilp", volume, "zyxc"))


def test_grey_pngs_stacked_along_c_make_channels(ws: Path, data_dir: Path, runs: Runs) -> None:
    _ok(runs, "stack-c")
    got = np.load(ws / "out" / "stack-c" / "ch__results.npy")
    raw = np.stack([iio.imread(ws / "gc" / f"ch_{c}.png") for c in range(3)], axis=-1)
    assert got.shape == (3, 64, 64)  # the stack's own order, c prepended (3 classes here)
    want = _probabilities(data_dir, f"{API}/PixelClass3Channel.ilp", raw, "yxc")
    np.testing.assert_array_equal(got, want.transpose(2, 0, 1))


def test_rgb_pngs_stacked_along_t_and_z(ws: Path, data_dir: Path, runs: Runs) -> None:
    """RGB files keep their channels; t and z are new axes (a 2D project accepts t, not z)."""
    _ok(runs, "stack-rgb-t")
    got = np.load(ws / "out" / "stack-rgb-t" / "c__results.npy")
    assert got.shape == (3, 64, 64, 3)
    for t in range(3):
        frame = iio.imread(ws / "rgb" / f"c_{t}.png")
        want = _probabilities(data_dir, f"{API}/PixelClass3Channel.ilp", frame, "yxc")
        np.testing.assert_array_equal(got[t], want, err_msg=str(t))
    refused = runs["stack-rgb-z"]
    assert refused.returncode == 2
    assert "expects 3 channel(s) of 'yx' data but the input has shape (3, 64, 64, 3) with axes 'zyxc'" in (
        refused.stderr
    )
    assert not (ws / "out" / "stack-rgb-z").exists()


def test_3d_tiffs_stacked_along_t(ws: Path, data_dir: Path, runs: Runs) -> None:
    _ok(runs, "stack-3d-t")
    got = np.load(ws / "out" / "stack-3d-t" / "v__results.npy")
    assert got.shape == (2, 32, 64, 64, 2)
    volume = np.load(data_dir / API / "Data_3D.npy")
    for t in range(2):
        want = _probabilities(data_dir, f"{API}/PixelClass3D.ilp", volume[32 * t : 32 * t + 32], "zyxc")
        np.testing.assert_array_equal(got[t], want, err_msg=str(t))


# --- compressed input, missing folders ----------------------------------------------------------


def test_lzw_tiff_into_a_missing_folder(ws: Path, data_dir: Path, runs: Runs) -> None:
    """The seed doc's example: ``--output_filename_format=/.../results/{nickname}_results.tiff``, the
    folder absent; the input an LZW-compressed tiled TIFF."""
    require_codec("lzw")
    _ok(runs, "lzw-missing-folder")
    assert sorted(os.listdir(ws / "results" / "a")) == ["lzw_results.tiff"]
    got = tifffile.imread(ws / "results" / "a" / "lzw_results.tiff")
    gray = iio.imread(data_dir / API / "Data_1channel.png")
    np.testing.assert_array_equal(got, _probabilities(data_dir, f"{API}/PixelClass.ilp", gray, "yx"))


def test_a_refused_run_creates_no_folder(ws: Path, runs: Runs) -> None:
    done = runs["refused-leaves-no-folder"]
    assert done.returncode == 2 and "unknown export source" in done.stderr
    assert not (ws / "refused").exists()
