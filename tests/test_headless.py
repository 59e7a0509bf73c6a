"""Headless batch mode end to end: every option, input and output format through real subprocesses.

Two small projects are trained once per module: ``p2`` (2D, two stages, one channel) and ``p1``
(3D, one stage, two channels). Every command line below runs once, all of them in parallel
(the ``runs`` fixture); each test then checks one run's exit code, file names, shapes, dtypes,
axis orders and values. Values are compared with a reference computed in this process with
the library (``load_cascade`` + ``predict``) and numpy: derived sources, cutouts, axis orders
and normalisation are all recomputed here with numpy.
"""

from __future__ import annotations

import json
import os
import shlex
import string
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import zarr
from helpers import blobs, cascade, sparse

from cascade.io import write_image
from cascade.io._meta import axistags_json, keys_from_axistags
from cascade.io._n5 import create_n5_dataset, write_n5_group
from cascade.pipeline import predict
from cascade.project.native import load_cascade

FEATURES = """
features:
  GaussianSmoothing: [0.7, 1.6]
  GaussianGradientMagnitude: [1.0]
"""
STAGED = ("Probabilities", "Simple Segmentation", "Uncertainty", "Features", "Labels", "Input")
Ref = dict[str, np.ndarray]
Runs = dict[str, subprocess.CompletedProcess[str]]


_cascade = cascade  # the subprocess runner shared with test_cli


def _volume(seed: int, shape: tuple[int, int, int] = (16, 32, 32)) -> tuple[np.ndarray, np.ndarray]:
    """A two-channel ``zyxc`` uint8 volume of balls (bright in channel 0, dark in 1) and its truth."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]]
    truth = np.full(shape, 2, np.uint8)
    for _ in range(4):
        cz, cy, cx = (int(rng.integers(3, n - 3)) for n in shape)
        truth[(zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 < int(rng.integers(3, 6)) ** 2] = 1
    bright = np.where(truth == 1, 170, 70) + rng.normal(0, 30, shape)
    dark = np.where(truth == 1, 60, 160) + rng.normal(0, 30, shape)
    return np.clip(np.stack([bright, dark], -1), 0, 255).astype(np.uint8), truth


# --- workspace: projects and inputs in every format ----------------------------------------


def _train(root: Path, name: str, raw: str, labels: str, stages: int) -> subprocess.Popen[str]:
    args = ["train", "--project", root / name, "--raw_data", root / raw, "--labels", root / labels]
    args += ["--stages", stages, "--features", root / "features.yaml", "--classes", "a,b", "--trees", 6]
    return subprocess.Popen(
        [sys.executable, "-m", "cascade", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _write_inputs_2d(root: Path, image: np.ndarray) -> None:
    tifffile.imwrite(root / "new.tif", image)
    (root / "dflt").mkdir()
    tifffile.imwrite(root / "dflt" / "new.tif", image)
    with h5py.File(root / "new.h5", "w") as f:  # stored transposed, with vigra axistags "xy"
        f.create_dataset("data/raw", data=image.T.copy()).attrs["axistags"] = axistags_json("xy")
    iio.imwrite(root / "new.png", image)
    np.save(root / "new_xy.npy", image.T.copy())
    write_image(image, str(root / "new.n5"), format="n5", axes="yx", internal_path="vol/raw")
    write_image(image, str(root / "new.zarr"), format="zarr", axes="yx", internal_path="raw")
    (root / "stack").mkdir()
    (root / "bad").mkdir()
    for t in range(6):
        if t < 3:
            iio.imwrite(root / "stack" / f"img_{t:02d}.png", _frame(image, t))
        iio.imwrite(root / "bad" / f"f_{t}.png", _frame(image, t))
    first = root / "bad" / "f_0.png"  # truncated: its header reads, its pixels do not
    first.write_bytes(first.read_bytes()[:200])
    _write_corrupt_n5(root / "bad.n5", image)


def _frame(image: np.ndarray, t: int) -> np.ndarray:
    return np.roll(image, 7 * t, axis=0)


def _write_corrupt_n5(path: Path, image: np.ndarray) -> None:
    """An N5 dataset of 16 x 16 blocks whose last block file is truncated (reading it raises)."""
    write_n5_group(str(path), root=True)
    target = create_n5_dataset(str(path / "raw"), image.shape, (16, 16), image.dtype, "yx", gzip_level=None)
    for y in range(0, 64, 16):
        for x in range(0, 64, 16):
            target[slice(y, y + 16), slice(x, x + 16)] = image[y : y + 16, x : x + 16]
    block = path / "raw" / "3" / "3"
    block.write_bytes(block.read_bytes()[:40])


def _write_inputs_3d(root: Path, volume: np.ndarray) -> None:
    tifffile.imwrite(root / "vol.tif", volume, metadata={"axes": "ZYXC"})
    (root / "zs").mkdir()
    for z, plane in enumerate(volume):  # two-channel (grey + alpha) PNG slices
        iio.imwrite(root / "zs" / f"sl_{z:02d}.png", plane)
    (root / "cs").mkdir()
    for c in range(volume.shape[-1]):
        tifffile.imwrite(root / "cs" / f"ch_{c}.tif", volume[..., c], metadata={"axes": "ZYX"})
    mask = np.ones(volume.shape[:-1], np.uint8)
    mask[:, :, :12] = 0
    tifffile.imwrite(root / "mask.tif", mask, metadata={"axes": "ZYX"})


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two trained projects (p2: 2D two-stage; p1: 3D one-stage, two channels) and inputs."""
    root = tmp_path_factory.mktemp("headless")
    (root / "features.yaml").write_text(FEATURES)
    raw, truth = blobs(1, size=64)
    tifffile.imwrite(root / "train2.tif", raw)
    tifffile.imwrite(root / "train2_labels.tif", sparse(truth, 2))
    vol, vol_truth = _volume(1)
    tifffile.imwrite(root / "train1.tif", vol, metadata={"axes": "ZYXC"})
    keep = np.random.default_rng(2).random(vol_truth.shape) < 0.05
    tifffile.imwrite(root / "train1_labels.tif", np.where(keep, vol_truth, 0).astype(np.uint8))
    jobs = [
        _train(root, "p2.cascade", "train2.tif", "train2_labels.tif", 2),
        _train(root, "p1.cascade", "train1.tif", "train1_labels.tif", 1),
    ]
    _write_inputs_2d(root, blobs(5, size=64)[0])
    _write_inputs_3d(root, _volume(5)[0])
    for job in jobs:
        out, err = job.communicate(timeout=300)
        assert job.returncode == 0, err
        assert "trained" in out
    return root


# --- the reference, computed in this process -----------------------------------------------


def _sources(probs: list[np.ndarray], feats: list[np.ndarray], raw: np.ndarray) -> Ref:
    """Every export source by name, derived from the stage outputs with numpy."""
    n = len(probs)
    out: Ref = {}
    for k in range(n, 0, -1):
        suffix = f" Stage {k}" if n > 1 else ""
        p = probs[k - 1]
        top = np.sort(p, axis=-1)
        out["Probabilities" + suffix] = p
        out["Simple Segmentation" + suffix] = (np.argmax(p, axis=-1)[..., None] + 1).astype(np.uint8)
        out["Uncertainty" + suffix] = 1 - (top[..., -1:] - top[..., -2:-1])
        out["Features" + suffix] = feats[k - 1]
        out["Labels" + suffix] = np.zeros(p.shape[:-1] + (1,), np.uint8)
        out["Input" + suffix] = raw
    if n > 1:
        out["Probabilities All Stages"] = np.concatenate(probs, axis=-1)
    return out


def _reference(project: Path, raw: np.ndarray, axes: str, mask: np.ndarray | None = None) -> Ref:
    results = predict(load_cascade(project), raw, axes=axes)
    probs = [np.asarray(r.probabilities.compute()) for r in results]
    if mask is not None:  # ilastik: masked pixels get all-zero probabilities
        probs = [p * (mask[..., None] > 0) for p in probs]
    return _sources(probs, [np.asarray(r.features.compute()) for r in results], raw)


@pytest.fixture(scope="module")
def ref(ws: Path) -> dict[str, Ref]:
    """Reference exports: 2D (``yxc``), 2D time stack (``tyxc``), 3D (``zyxc``), 3D masked."""
    image = tifffile.imread(ws / "new.tif")[..., None]
    frames = np.stack([_frame(image, t) for t in range(3)])
    volume = tifffile.imread(ws / "vol.tif")
    return {
        "2d": _reference(ws / "p2.cascade", image, "yxc"),
        "t": _reference(ws / "p2.cascade", frames, "tyxc"),
        "3d": _reference(ws / "p1.cascade", volume, "zyxc"),
        "masked": _reference(ws / "p1.cascade", volume, "zyxc", tifffile.imread(ws / "mask.tif")),
    }


# --- every command line, run once, in parallel ---------------------------------------------
# Command lines are shell-like strings ($WS is the workspace); each run exports into out/<name>/.

NORMALISE = "--export_dtype uint8 --pipeline_result_drange '(0.0, 1.0)' --export_drange '(0,255)'"
FLAT_FORMATS = ("jpg", "bmp", "gif", "pgm", "pnm")


def _run(name: str, project: str, fmt: str, args: str, pattern: str = "{nickname}_{result_type}") -> str:
    return (
        f"predict --project $WS/{project}.cascade --output_format '{fmt}' "
        f"--output_filename_format '$WS/out/{name}/{pattern}' {args}"
    )


def _staged_names(n_stages: int) -> list[str]:
    return [f"{kind} Stage {k}" for k in range(n_stages, 0, -1) for kind in STAGED]


def _every_source_spelled_differently() -> str:
    """All 13 sources: upper or lower case, ``--export_source=X`` or ``--export-source X``."""
    names = [n.upper() if k % 3 == 0 else n.lower() for k, n in enumerate(_staged_names(2))]
    names.append("propabilities all stages")  # the misspelling of ilastik's documentation
    return " ".join(
        f"'--export_source={n}'" if k % 2 else f"--export-source '{n}'" for k, n in enumerate(names)
    )


HAPPY: dict[str, str] = {
    "sources": _run("sources", "p2", "numpy", "--readonly --raw_data $WS/new.tif")
    + " "
    + _every_source_spelled_differently(),
    "hdf5": "predict --project=$WS/p2.cascade --output_format=hdf5 "
    "'--output_filename_format={dataset_dir}/out/hdf5/{nickname}.tif' "
    "--input_axes xy --output_internal_path '{result_type}/data' --export_source 'Probabilities Stage 2' "
    "--export_source 'Simple Segmentation Stage 1' $WS/new.h5/data/raw",
    "default": "--headless --project=$WS/p2.cascade --readonly=1 $WS/dflt/new.tif",
    "n5": _run(
        "n5",
        "p2",
        "n5",
        "--cutout_subregion '[(None,8,1),(40,0,None)]' --export_source 'probabilities stage 2' "
        "$WS/new.n5/vol/raw",
        "{nickname}_{roi}_x{x_start}-{x_stop}_y{y_start}-{y_stop}_c{c_start}-{c_stop}",
    ),
    "compressed-n5": _run(
        "compressed-n5",
        "p2",
        "compressed n5",
        "--input_axes xy --output_axis_order CXY --export_dtype float64 "
        "--export_source 'Probabilities Stage 2' $WS/new_xy.npy",
    ),
    "zarr": "predict --project $WS/p2.cascade --output-format zarr "
    "--output-filename-format '$WS/out/zarr/{nickname}' --output-internal-path a/b "
    "--export_source 'Uncertainty Stage 1' $WS/new.png",
    "ome-single": _run("ome-single", "p1", "single-scale OME-Zarr", "$WS/vol.tif"),
    "ome-multi": _run(
        "ome-multi",
        "p2",
        "multi-scale OME-Zarr",
        "--export_source 'Simple Segmentation Stage 2' $WS/new.zarr/raw",
    ),
    "tif": _run("tif", "p2", "tif", "$WS/new.tif"),
    "tiff": _run(
        "tiff",
        "p2",
        "tiff",
        "--export_source 'Features Stage 1' --cutout_subregion '[(None,None,1),(None,None,3)]' $WS/new.tif",
    ),
    "multipage": _run(
        "multipage", "p1", "multipage tiff", "--export_source 'Simple Segmentation' $WS/vol.tif"
    ),
    "multipage-seq": _run(
        "multipage-seq",
        "p2",
        "multipage tiff sequence",
        "--stack_along t --cutout_subregion '[(1,None,None,None),(None,None,None,None)]' "
        "'$WS/stack/img_*.png'",
        "{nickname}_{slice_index}",
    ),
    "png": _run(
        "png", "p2", "png", "--export_source 'Simple Segmentation Stage 2' $WS/new.tif $WS/stack/img_01.png"
    ),
    "png-seq": _run(
        "png-seq",
        "p1",
        "png sequence",
        f"--stack_along=z {NORMALISE} --cutout_subregion '[(2,None,None,1),(6,None,None,2)]' "
        "'$WS/zs/sl_*.png'",
        "{nickname}{slice_index}",
    ),
    "tiff-seq": _run(
        "tiff-seq",
        "p1",
        "tiff sequence",
        "--stack-along c --input_axes czyx --export_source 'simple segmentation' '$WS/cs/ch_*.tif'",
        "{nickname}_{slice_index}",
    ),
    "masked": _run(
        "masked",
        "p1",
        "numpy",
        "--prediction_mask $WS/mask.tif --raw-data $WS/vol.tif "
        + " ".join(f"--export_source '{name}'" for name in STAGED),
    ),
    "ppm": _run(
        "ppm",
        "p2",
        "ppm",
        f"--export_source 'Probabilities All Stages' {NORMALISE} "
        "--cutout_subregion '[(None,None,0),(None,None,3)]' $WS/new.tif",
    ),
    **{
        fmt: _run(fmt, "p2", fmt, "--export_source 'Simple Segmentation Stage 1' $WS/new.tif")
        for fmt in FLAT_FORMATS
    },
}

_TWO_SOURCES = "--export_source 'Simple Segmentation Stage 2' --export_source 'Probabilities Stage 2'"

#: name -> (command line, expected message); every run exports into its own empty directory.
ERRORS: dict[str, tuple[str, str]] = {
    "missing-file": ("$WS/nothing.tif", "input not found"),
    "export-drange-alone": ("--export_drange '(0,255)' $WS/new.tif", "--export_drange needs"),
    "bad-axis-order": ("--output_axis_order yxq $WS/new.tif", "output axis order"),
    "bad-readonly": ("--readonly=maybe $WS/new.tif", "--readonly 'maybe' is not a boolean"),
    "mask-two-stages": (
        "--prediction_mask=$WS/new.tif $WS/new.tif",  # "=": one mask (a bare one takes both, as ilastik's)
        "prediction masks apply to Pixel Classification projects only",
    ),
    "unknown-source": ("--export_source 'Probabilities Stage 3' $WS/new.tif", "unknown export source"),
    "cutout-syntax": ("--cutout_subregion '[(0,0),(10,' $WS/new.tif", "cutout subregion"),
    "cutout-length": (
        "--cutout_subregion '[(0,0),(10,10)]' $WS/new.tif",
        "cutout subregion has 2 entries per corner but the export source has axes 'yxc'",
    ),
    "axes-length": ("--input_axes zyx $WS/new.tif", "axes 'zyx' name 3 dimensions"),
    "second-input-3d": ("$WS/new.tif $WS/vol.tif", "the project expects 1 channel(s) of 'yx' data"),
    "file-in-the-path": (
        "--output_filename_format '$WS/new.tif/{nickname}' $WS/new.tif",
        "is not a directory",
    ),
    "directory-in-the-way": (
        f"--output_format numpy {_TWO_SOURCES} $WS/new.tif",
        "new_Probabilities Stage 2.npy: a directory of that name exists",
    ),
    "format-cannot-hold": (
        f"--output_format png {_TWO_SOURCES} $WS/new.tif",
        "png stores uint8 or uint16, not float32",
    ),
    "same-output-twice": (
        f"--output_format numpy --output_filename_format '$OUT/{{nickname}}' {_TWO_SOURCES} $WS/new.tif",
        "would both be written to",
    ),
    # one thread: dask writes frames 5..1 before it reads the truncated frame 0
    "read-fails-midway-hdf5": (
        "--output_format hdf5 --threads 1 --stack_along t '$WS/bad/f_*.png'",
        "f_0.png: image file is truncated",
    ),
    "read-fails-midway-png-sequence": (
        "--output_format 'png sequence' --output_filename_format '$OUT/{nickname}{slice_index}' "
        "--threads 1 --stack_along t --export_source 'Simple Segmentation Stage 2' '$WS/bad/f_*.png'",
        "f_0.png: image file is truncated",
    ),
    "read-fails-midway-n5": (
        "--output_format 'compressed n5' --block-shape 16 "
        "--export_source 'Simple Segmentation Stage 1' $WS/bad.n5/raw",
        "bad.n5/raw/3/3: damaged N5 block: it holds 28 bytes, not the 256 bytes its header says",
    ),
}


def _command(text: str, ws: Path, out: Path) -> list[str]:
    return shlex.split(string.Template(text).substitute(WS=ws, OUT=out))


def _error_command(name: str, ws: Path) -> list[str]:
    out = ws / "out" / f"err-{name}"
    args = ERRORS[name][0]
    if "--output_filename_format" not in args:
        args = f"--output_filename_format '$OUT/{{nickname}}_{{result_type}}' {args}"
    return _command(f"predict --project $WS/p2.cascade {args}", ws, out)


@pytest.fixture(scope="module")
def runs(ws: Path) -> Runs:
    """Every command line of this module, run in parallel, each into its own new directory."""
    assert not any(ch.isspace() or ch in "'\"$" for ch in str(ws))
    commands = {name: _command(text, ws, ws) for name, text in HAPPY.items()}
    commands |= {f"err-{name}": _error_command(name, ws) for name in ERRORS}
    for name in commands:
        if name != "default":
            (ws / "out" / name).mkdir(parents=True)
    (ws / "out" / "err-directory-in-the-way" / "new_Probabilities Stage 2.npy").mkdir()
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(commands, pool.map(lambda args: _cascade(*args), commands.values())))


def _ok(runs: Runs, name: str) -> None:
    done = runs[name]
    assert done.returncode == 0, f"{name}: {done.stderr}"
    assert done.stderr == "", done.stderr


def _files(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


# --- sources, names and the default output -------------------------------------------------


def test_every_source_of_a_two_stage_project(ws: Path, ref: dict[str, Ref], runs: Runs) -> None:
    """13 sources in one run, names in any case, both option spellings, ilastik's misspelling."""
    _ok(runs, "sources")
    expected = {f"new_{name}.npy" for name in ref["2d"]}
    assert set(_files(ws / "out" / "sources")) == expected
    for name, want in ref["2d"].items():
        got = np.load(ws / "out" / "sources" / f"new_{name}.npy")
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert got.shape[:2] == (64, 64)
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert ref["2d"]["Probabilities All Stages"].shape[-1] == 4
    assert ref["2d"]["Features Stage 2"].shape[-1] == 3 * 3  # 3 features of raw + 2 probability channels


def test_default_output_is_compressed_hdf5_beside_the_input(
    ws: Path, ref: dict[str, Ref], runs: Runs
) -> None:
    _ok(runs, "default")
    assert _files(ws / "dflt") == ["new.tif", "new_Probabilities Stage 2.h5"]
    with h5py.File(ws / "dflt" / "new_Probabilities Stage 2.h5", "r") as f:
        assert list(f) == ["exported_data"]
        ds = f["exported_data"]
        assert ds.compression == "gzip" and ds.compression_opts == 1
        assert keys_from_axistags(ds.attrs["axistags"]) == "yxc"
        np.testing.assert_array_equal(ds[()], ref["2d"]["Probabilities Stage 2"])


def test_hdf5_placeholders_internal_path_and_input_axis_order(
    ws: Path, ref: dict[str, Ref], runs: Runs
) -> None:
    """h5 input ``file.h5/data/raw`` read as ``xy``: exported as ``xyc``; the name's .tif becomes .h5."""
    _ok(runs, "hdf5")
    assert _files(ws / "out" / "hdf5") == ["new-data-raw.h5"]
    with h5py.File(ws / "out" / "hdf5" / "new-data-raw.h5", "r") as f:
        assert sorted(f) == ["Probabilities Stage 2", "Simple Segmentation Stage 1"]
        probs = f["Probabilities Stage 2/data"]
        assert probs.compression is None and probs.dtype == np.float32
        assert keys_from_axistags(probs.attrs["axistags"]) == "xyc"
        assert [d.label for d in probs.dims] == ["x", "y", "c"]
        np.testing.assert_array_equal(probs[()], ref["2d"]["Probabilities Stage 2"].transpose(1, 0, 2))
        seg = f["Simple Segmentation Stage 1/data"][()]
        np.testing.assert_array_equal(seg, ref["2d"]["Simple Segmentation Stage 1"].transpose(1, 0, 2))


# --- cutout, axis order, dtype, normalisation ----------------------------------------------


def _n5(path: Path) -> tuple[dict[str, Any], np.ndarray]:
    from cascade.io import open_image

    attrs = json.loads((path / "attributes.json").read_text())
    return attrs, np.asarray(open_image(str(path)).data.compute())


def test_cutout_with_none_and_zero_stop_and_roi_placeholders(
    ws: Path, ref: dict[str, Ref], runs: Runs
) -> None:
    """``[(None,8,1),(40,0,None)]`` on ``yxc`` is ``[0:40, 8:64, 1:2]``; n5 input by internal path."""
    _ok(runs, "n5")
    name = "new-vol-raw_[(0, 8, 1), (40, 64, 2)]_x8-64_y0-40_c1-2.n5"
    assert _files(ws / "out" / "n5") == [name]
    attrs, got = _n5(ws / "out" / "n5" / name / "exported_data")
    assert attrs["axes"] == ["c", "x", "y"] and attrs["compression"] == {"type": "raw"}
    assert attrs["dimensions"] == [1, 56, 40] and attrs["dataType"] == "float32"
    np.testing.assert_array_equal(got, ref["2d"]["Probabilities Stage 2"][:40, 8:, 1:2])


def test_axis_order_dtype_and_input_axes(ws: Path, ref: dict[str, Ref], runs: Runs) -> None:
    """``--input_axes xy`` on a transposed npy, ``--output_axis_order CXY``, float64, compressed n5."""
    _ok(runs, "compressed-n5")
    assert _files(ws / "out" / "compressed-n5") == ["new_xy_Probabilities Stage 2.n5"]
    attrs, got = _n5(ws / "out" / "compressed-n5" / "new_xy_Probabilities Stage 2.n5" / "exported_data")
    assert attrs["compression"]["type"] == "gzip" and attrs["axes"] == ["y", "x", "c"]
    assert got.dtype == np.float64
    want = ref["2d"]["Probabilities Stage 2"].transpose(2, 1, 0).astype(np.float64)
    np.testing.assert_array_equal(got, want)


def _normalised(p: np.ndarray) -> np.ndarray:
    """ilastik's normalisation (0, 1) -> (0, 255) into uint8, with numpy."""
    ratio = np.float32((255.0 - 0.0) / (1.0 - 0.0))
    return np.rint(np.float32(0) + (p - np.float32(0)) * ratio).astype(np.uint8)


def test_png_sequence_of_a_z_stack_normalised_with_cutout(ws: Path, ref: dict[str, Ref], runs: Runs) -> None:
    """Glob of two-channel PNG slices stacked along z; cutout z 2..5 and class 2; uint8 via drange."""
    _ok(runs, "png-seq")
    assert _files(ws / "out" / "png-seq") == [f"sl_{z}.png" for z in range(2, 6)]
    probs = ref["3d"]["Probabilities"]
    for z in range(2, 6):
        got = iio.imread(ws / "out" / "png-seq" / f"sl_{z}.png")
        assert got.dtype == np.uint8 and got.shape == (32, 32)
        np.testing.assert_array_equal(got, _normalised(probs[z, :, :, 1]))


def test_ppm_of_three_probability_channels(ws: Path, ref: dict[str, Ref], runs: Runs) -> None:
    """All stages' probabilities (4 channels) cut to channels 0..2, normalised to uint8: an RGB ppm."""
    _ok(runs, "ppm")
    assert _files(ws / "out" / "ppm") == ["new_Probabilities All Stages.ppm"]
    got = iio.imread(ws / "out" / "ppm" / "new_Probabilities All Stages.ppm")
    np.testing.assert_array_equal(got, _normalised(ref["2d"]["Probabilities All Stages"][..., :3]))


def test_tiff_with_channel_cutout(ws: Path, ref: dict[str, Ref], runs: Runs) -> None:
    _ok(runs, "tiff")
    got = tifffile.imread(ws / "out" / "tiff" / "new_Features Stage 1.tiff")
    np.testing.assert_array_equal(got, ref["2d"]["Features Stage 1"][..., 1:3])


# --- formats --------------------------------------------------------------------------------


def test_zarr_with_dash_spellings_and_png_input(ws: Path, ref: dict[str, Ref], runs: Runs) -> None:
    _ok(runs, "zarr")
    assert _files(ws / "out" / "zarr") == ["new.zarr"]
    array = zarr.open_array(ws / "out" / "zarr" / "new.zarr", path="a/b", mode="r")
    assert array.metadata.dimension_names == ("y", "x", "c")
    np.testing.assert_array_equal(array[...], ref["2d"]["Uncertainty Stage 1"])


def test_single_scale_ome_zarr_of_a_volume(ws: Path, ref: dict[str, Ref], runs: Runs) -> None:
    _ok(runs, "ome-single")
    group = zarr.open_group(ws / "out" / "ome-single" / "vol_Probabilities.zarr", mode="r")
    (multiscale,) = group.attrs["multiscales"]
    assert [a["name"] for a in multiscale["axes"]] == list("tczyx")
    assert [d["path"] for d in multiscale["datasets"]] == ["s0"]
    want = ref["3d"]["Probabilities"].transpose(3, 0, 1, 2)[None]
    np.testing.assert_array_equal(group["s0"][...], want)


def test_multi_scale_ome_zarr_from_zarr_input(ws: Path, ref: dict[str, Ref], runs: Runs) -> None:
    _ok(runs, "ome-multi")
    group = zarr.open_group(ws / "out" / "ome-multi" / "new-raw_Simple Segmentation Stage 2.zarr", mode="r")
    seg = ref["2d"]["Simple Segmentation Stage 2"][..., 0]
    np.testing.assert_array_equal(group["s0"][...], seg[None, None, None])
    (multiscale,) = group.attrs["multiscales"]
    # the pyramid stops at the first level that fits one ~1 MB chunk: a 64 x 64 image is one level
    assert [d["path"] for d in multiscale["datasets"]] == ["s0"]
    assert group["s0"].chunks == (1, 1, 1, 64, 64)


def test_tif_holds_a_multichannel_2d_image(ws: Path, ref: dict[str, Ref], runs: Runs) -> None:
    _ok(runs, "tif")
    got = tifffile.imread(ws / "out" / "tif" / "new_Probabilities Stage 2.tif")
    np.testing.assert_array_equal(got, ref["2d"]["Probabilities Stage 2"])


def test_multipage_tiff_of_a_volume(ws: Path, ref: dict[str, Ref], runs: Runs) -> None:
    _ok(runs, "multipage")
    with tifffile.TiffFile(ws / "out" / "multipage" / "vol_Simple Segmentation.tiff") as tif:
        got = tif.series[0].asarray()
        assert len(tif.pages) == 16
    np.testing.assert_array_equal(got.reshape(16, 32, 32), ref["3d"]["Simple Segmentation"][..., 0])


def test_multipage_tiff_sequence_of_a_time_stack(ws: Path, ref: dict[str, Ref], runs: Runs) -> None:
    """PNG glob stacked along t, cutout t >= 1: one multipage TIFF per frame, named by frame index."""
    _ok(runs, "multipage-seq")
    assert _files(ws / "out" / "multipage-seq") == ["img_0_1.tiff", "img_0_2.tiff"]
    for t in (1, 2):
        got = tifffile.imread(ws / "out" / "multipage-seq" / f"img_0_{t}.tiff")
        np.testing.assert_array_equal(got, ref["t"]["Probabilities Stage 2"][t].transpose(2, 0, 1))


def test_tiff_sequence_of_a_channel_stack(ws: Path, ref: dict[str, Ref], runs: Runs) -> None:
    """Two zyx TIFFs stacked along c (axes czyx): the segmentation is written one file per z."""
    _ok(runs, "tiff-seq")
    assert _files(ws / "out" / "tiff-seq") == [f"ch__{z:02d}.tiff" for z in range(16)]
    seg = ref["3d"]["Simple Segmentation"][..., 0]
    for z in (0, 7, 15):
        np.testing.assert_array_equal(tifffile.imread(ws / "out" / "tiff-seq" / f"ch__{z:02d}.tiff"), seg[z])


def test_png_of_two_inputs(ws: Path, ref: dict[str, Ref], runs: Runs) -> None:
    _ok(runs, "png")
    assert runs["png"].stdout.count("Simple Segmentation Stage 2.png") == 2
    got = iio.imread(ws / "out" / "png" / "new_Simple Segmentation Stage 2.png")
    np.testing.assert_array_equal(got, ref["2d"]["Simple Segmentation Stage 2"][..., 0])
    got = iio.imread(ws / "out" / "png" / "img_01_Simple Segmentation Stage 2.png")
    np.testing.assert_array_equal(got, ref["t"]["Simple Segmentation Stage 2"][1, ..., 0])


@pytest.mark.parametrize("fmt", FLAT_FORMATS)
def test_other_2d_formats(ws: Path, ref: dict[str, Ref], runs: Runs, fmt: str) -> None:
    _ok(runs, fmt)
    assert _files(ws / "out" / fmt) == [f"new_Simple Segmentation Stage 1.{fmt}"]
    got = iio.imread(ws / "out" / fmt / f"new_Simple Segmentation Stage 1.{fmt}", index=0)
    got = got[..., 0] if got.ndim == 3 else got  # pillow reads GIF as RGB
    want = ref["2d"]["Simple Segmentation Stage 1"][..., 0]
    assert got.shape == want.shape and got.dtype == np.uint8
    if fmt == "jpg":  # lossy
        assert np.mean(np.abs(got.astype(int) - want)) < 0.1
    else:
        np.testing.assert_array_equal(got, want)


def test_prediction_mask_on_a_one_stage_project(ws: Path, ref: dict[str, Ref], runs: Runs) -> None:
    """Every source of a Pixel Classification project; masked pixels: probabilities 0, segmentation 1."""
    _ok(runs, "masked")
    assert _files(ws / "out" / "masked") == sorted(f"vol_{name}.npy" for name in STAGED)
    for name, want in ref["masked"].items():
        got = np.load(ws / "out" / "masked" / f"vol_{name}.npy")
        assert got.dtype == want.dtype and got.shape == want.shape == (16, 32, 32, got.shape[-1]), name
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert not ref["masked"]["Probabilities"][:, :, :12].any()
    assert (ref["masked"]["Simple Segmentation"][:, :, :12] == 1).all()


# --- failures: one line, exit code 2, nothing written ---------------------------------------


@pytest.mark.parametrize("name", ERRORS)
def test_bad_input_fails_in_one_line_without_output(ws: Path, runs: Runs, name: str) -> None:
    done = runs[f"err-{name}"]
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("cascade: error: "), done.stderr
    out = ws / "out" / f"err-{name}"
    expected = ["new_Probabilities Stage 2.npy"] if name == "directory-in-the-way" else []
    assert ERRORS[name][1] in lines[0], lines[0]
    assert _files(out) == expected, "no output (and no partial file) may be left"
    assert done.stdout == ""


def test_nothing_written_beside_the_inputs(ws: Path, runs: Runs) -> None:
    """Only the run without --output_filename_format writes beside its input (in dflt/)."""
    assert [p.name for p in ws.iterdir() if any(kind in p.name for kind in STAGED)] == []


def test_check_target_checks_every_format_without_computing(tmp_path: Path) -> None:
    """What the batch loop checks before computing: a graph that would raise is never run."""
    import dask.array as da

    from cascade.errors import ExportError
    from cascade.io import FORMATS, check_target

    def boom(block: np.ndarray) -> np.ndarray:
        raise AssertionError("check_target computed the data")

    seg = da.zeros((4, 8, 8, 1), np.uint8, chunks=4).map_blocks(boom, dtype=np.uint8)
    pattern = str(tmp_path / "out_{slice_index}")
    for fmt in FORMATS:
        if fmt == "ppm sequence":
            with pytest.raises(ExportError, match=r"ppm \(uint8\) stores 3 channel"):
                check_target(seg, pattern, format=fmt, axes="zyxc")
        elif fmt.endswith("sequence"):
            assert len(check_target(seg, pattern, format=fmt, axes="zyxc")) == 4, fmt
        elif fmt in (*FLAT_FORMATS, "png", "jpeg", "ppm", "tif", "tiff"):
            with pytest.raises(ExportError, match="holds 2D images"):
                check_target(seg, pattern, format=fmt, axes="zyxc")
        else:
            assert len(check_target(seg, pattern, format=fmt, axes="zyxc")) == 1, fmt
    assert check_target(seg, str(tmp_path / "x.tif"), format="hdf5", axes="zyxc", internal_path="a/b") == [
        f"{tmp_path}/x.h5/a/b"
    ]
    assert os.listdir(tmp_path) == []
