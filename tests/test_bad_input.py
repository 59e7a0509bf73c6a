"""Bad input through the command line: one line naming the problem, exit 2, nothing written.

Issue 13, items 7-9: images too small for ilastik's size rule (or empty), huge feature
scales, long output names, bad dask config values, malformed training specs, corrupt
native projects, out-of-range labels, single-class training, and usage errors of every
command. Every refusal is checked for its exit code, a single ``cascade: error:`` line on
stderr without a traceback, the words that name the problem, and that no file appeared.
"""

from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import zarr
from helpers import blobs, cascade, sparse

from cascade.axes import internal_axes, to_internal
from cascade.features import parse_feature_selection
from cascade.io._atomic import NAME_MAX, stem
from cascade.pipeline import Stage, predict
from cascade.project.native import load_cascade, save_cascade
from cascade.training import TrainingImage, fit

FEATURES = {"features": {"GaussianSmoothing": [0.7, 1.6], "GaussianGradientMagnitude": [1.0]}}
#: A selection whose only scale (0.3) fits images of 3 pixels: ceil(3.5 * 0.3) + 1 = 3.
TINY_FEATURES = {"features": {"GaussianSmoothing": [0.3]}}


def files(folder: Path) -> set[Path]:
    """Every file and folder under ``folder``, hidden ones included."""
    return set(folder.rglob("*"))


def refused(done: subprocess.CompletedProcess[str], *words: str, code: int = 2) -> str:
    """Assert a one-line refusal naming ``words``; return the line."""
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cascade: error: "), done.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def _save(root: Path, name: str, features: dict[str, object]) -> Path:
    raw, truth = blobs(1, size=64)
    labels = sparse(truth, 2)
    stage = Stage(parse_feature_selection(features), ("disk", "background"))
    trained = fit([TrainingImage(raw[..., None], "yxc", (labels,))], [stage], trees=4, seed=0)
    return save_cascade(trained, root / name)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two small 2D projects (scales up to 1.6, and 0.3 only), training images, an input."""
    root = tmp_path_factory.mktemp("bad")
    _save(root, "p.cascade", FEATURES)
    _save(root, "tiny.cascade", TINY_FEATURES)
    raw, truth = blobs(1, size=64)
    tifffile.imwrite(root / "train.tif", raw)
    tifffile.imwrite(root / "train_labels.tif", sparse(truth, 2))
    tifffile.imwrite(root / "new.tif", blobs(5, size=64)[0])
    (root / "features.yaml").write_text("features:\n  GaussianSmoothing: [0.7, 1.6]\n")
    return root


@pytest.fixture
def run_dir(workspace: Path, tmp_path: Path) -> Path:
    """An empty folder with links to the workspace files (so outputs land in a clean place)."""
    for item in workspace.iterdir():
        (tmp_path / item.name).symlink_to(item)
    return tmp_path


# --- item 7: tiny and empty images -------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "named"),
    [((1, 1), "y=1, x=1"), ((1, 64), "y=1"), ((64, 1), "x=1"), ((3, 64), "y=3")],
)
def test_images_below_ilastiks_size_rule_are_refused(
    run_dir: Path, shape: tuple[int, int], named: str
) -> None:
    tifffile.imwrite(run_dir / "small.tif", np.full(shape, 9, np.uint8))
    before = files(run_dir)
    done = cascade("--headless", "--project=p.cascade", "small.tif", cwd=run_dir)
    # scale 0.7 needs ceil(3.5 * 0.7) + 1 = 4 pixels per axis
    refused(done, "small.tif", "scale 0.7", "at least 4", named)
    assert files(run_dir) == before


def test_empty_image_is_refused(run_dir: Path) -> None:
    np.save(run_dir / "empty.npy", np.zeros((0, 64), np.uint8))
    before = files(run_dir)
    refused(cascade("--headless", "--project=p.cascade", "empty.npy", cwd=run_dir), "empty.npy", "empty")
    assert files(run_dir) == before


def test_huge_declared_shape_is_refused_before_planning(run_dir: Path) -> None:
    """A dataset declaring 10^7 x 10^7 pixels (nothing stored) is refused in one line naming it,
    not with a misleading "out of memory; use fewer --threads" from building its graph."""
    with h5py.File(run_dir / "huge.h5", "w") as f:
        f.create_dataset("d", shape=(10**7, 10**7), dtype="uint8", chunks=(64, 64))
    before = files(run_dir)
    done = cascade("--headless", "--project=p.cascade", "huge.h5/d", cwd=run_dir)
    line = refused(done, "huge.h5", "10000000", "blocks", "--block-shape")
    assert "memory" not in line
    assert files(run_dir) == before


def test_truncated_multipage_tiff_is_refused_in_one_line(run_dir: Path) -> None:
    """A time-series TIFF cut in half: tifffile logs "invalid page offset" on stderr (twice) and the
    read fails later; cascade names the damaged file in its one line, and logs nothing else."""
    stack = (np.random.default_rng(1).random((20, 64, 64)) * 255).astype(np.uint8)
    tifffile.imwrite(run_dir / "whole.tif", stack)
    data = (run_dir / "whole.tif").read_bytes()
    (run_dir / "cut.tif").write_bytes(data[: len(data) // 2])
    before = files(run_dir)
    done = cascade("--headless", "--project=p.cascade", "--input_axes=tyx", "cut.tif", cwd=run_dir)
    refused(done, "cut.tif", "truncated or damaged")
    assert files(run_dir) == before


def _png(width: int, height: int, pixels: bytes) -> bytes:
    """A grayscale 8-bit PNG of ``width`` x ``height`` whose IDAT holds ``pixels`` (compressed)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


def test_png_declaring_billions_of_pixels_is_refused_in_one_line(run_dir: Path) -> None:
    """A 2 KB PNG declaring 40000 x 40000 pixels (a decompression bomb: PNGs are decoded whole) is
    refused by Pillow's pixel limit, in one line naming the file and what to do, not with imageio's
    "an unknown error occurred while initializing plugin"."""
    (run_dir / "bomb.png").write_bytes(_png(40000, 40000, bytes(40001 * 50)))
    before = files(run_dir)
    done = cascade("--headless", "--project=p.cascade", "bomb.png", cwd=run_dir)
    line = refused(done, "bomb.png", "1600000000 pixels", "TIFF, HDF5, N5 or zarr")
    assert "plugin" not in line
    assert files(run_dir) == before


def test_image_just_large_enough_is_computed_with_mirror_borders(run_dir: Path) -> None:
    image = (np.random.default_rng(0).random((3, 40)) * 255).astype(np.uint8)
    tifffile.imwrite(run_dir / "strip.tif", image)
    done = cascade("--headless", "--project=tiny.cascade", "--output_format=numpy", "strip.tif", cwd=run_dir)
    assert done.returncode == 0, done.stderr
    written = np.load(run_dir / "strip_Probabilities.npy")
    expected = predict(load_cascade(run_dir / "tiny.cascade"), image[..., None], axes="yxc")[-1]
    assert written.shape == (3, 40, 2)
    np.testing.assert_allclose(written, np.asarray(expected.probabilities), rtol=0, atol=1e-6)
    np.testing.assert_allclose(written.sum(-1), 1, atol=1e-5)


def test_size_one_axes_keep_the_axes_the_user_gave() -> None:
    assert internal_axes("yx", (1, 1)) == "yxc"
    assert internal_axes("zyx", (1, 1, 64)) == "yxc"
    assert internal_axes("tzyxc", (1, 5, 1, 7, 2)) == "zyxc"
    array, axes = to_internal(np.zeros((1, 64), np.uint8), "yx")
    assert axes == "yxc" and array.shape == (1, 64, 1)


# --- item 7: huge scales -----------------------------------------------------------------------


def test_huge_scale_in_an_ilp_is_refused(run_dir: Path, data_dir: Path) -> None:
    source = data_dir / "ilp" / "ilastik__ilastik" / "api_projects" / "PixelClass.ilp"
    shutil.copy(source, run_dir / "huge.ilp")
    with h5py.File(run_dir / "huge.ilp", "r+") as f:
        scales = f["FeatureSelections/Scales"][()].astype(np.float64)
        scales[2] = 1e308  # a selected column
        del f["FeatureSelections/Scales"]
        f["FeatureSelections/Scales"] = scales
    before = files(run_dir)
    done = cascade("--headless", "--project=huge.ilp", "new.tif", cwd=run_dir)
    refused(done, "new.tif", "scale 1e+308", "y=64, x=64")
    assert files(run_dir) == before


def test_huge_scale_in_a_training_spec_is_refused(run_dir: Path) -> None:
    spec = run_dir / "spec.yaml"
    spec.write_text(
        "images: [{raw: train.tif, labels: train_labels.tif}]\n"
        "stages: [{classes: [a, b], features: {features: {GaussianSmoothing: [1.0e+308]}}}]\n"
    )
    before = files(run_dir)
    refused(
        cascade("train", spec, "--project", "out.cascade", cwd=run_dir), "scale 1e+308", "training image 1"
    )
    assert files(run_dir) == before


# --- item 7: long output names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "ext"), [("hdf5", ".h5"), ("numpy", ".npy"), ("n5", ".n5"), ("tiff", ".tiff")]
)
def test_legal_248_byte_output_name_is_written(run_dir: Path, fmt: str, ext: str) -> None:
    name = "n" * (248 - len(ext))
    out = run_dir / "out"
    out.mkdir()
    done = cascade(
        "--headless", "--project=p.cascade", f"--output_format={fmt}", f"--output_filename_format=out/{name}",
        "new.tif", cwd=run_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [p.name for p in out.iterdir()] == [name + ext]  # and no temporary left beside it
    assert len((name + ext).encode()) == 248


def test_output_name_beyond_name_max_is_refused_before_computing(run_dir: Path) -> None:
    (run_dir / "out").mkdir()
    before = files(run_dir)
    done = cascade(
        "--headless",
        "--project=p.cascade",
        f"--output_filename_format=out/{'n' * 253}",
        "new.tif",
        cwd=run_dir,
    )
    refused(done, "256 bytes", "255")
    assert files(run_dir) == before


def test_project_names_long_and_too_long(run_dir: Path) -> None:
    train = ["--raw_data", "train.tif", "--labels", "train_labels.tif", "--stages", "1", "--trees", "3"]
    train += ["--features", "features.yaml"]
    fits = "q" * 240 + ".cascade"  # 248 bytes: the temporary must stay within NAME_MAX
    done = cascade("train", "--project", fits, *train, cwd=run_dir)
    assert done.returncode == 0, done.stderr
    assert load_cascade(run_dir / fits).stages[0].class_names == ("Label 1", "Label 2")
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]
    before = files(run_dir)
    refused(cascade("train", "--project", "q" * 248 + ".cascade", *train, cwd=run_dir), "256 bytes")
    assert files(run_dir) == before


def test_hidden_siblings_fit_name_max_and_stay_distinct() -> None:
    """Temporaries, .resume folders and locks are named ``.<stem>.<random>.<tag>`` and the like."""
    long_a, long_b = "a" * 250 + "x", "a" * 250 + "y"
    stems = {stem(name) for name in (long_a, long_b)}
    assert len(stems) == 2
    longest = ".{}.{}.partial".format("x", "A" * 8)  # mkstemp's 8 random characters
    assert all(len(f".{s}.".encode()) + len(longest) <= NAME_MAX for s in stems)
    assert stem("short.h5") == "short.h5"


# --- item 7: dask config -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DASK_CASCADE__IN_MEMORY_STAGE", "lots"),
        ("DASK_CASCADE__IN_MEMORY_STAGE", "-1"),
        ("DASK_CASCADE__SLAB_BLOCKS", "many"),
        ("DASK_CASCADE__SLAB_BLOCKS", "0"),
    ],
)
def test_bad_dask_config_values_are_refused(run_dir: Path, variable: str, value: str) -> None:
    before = files(run_dir)
    done = cascade("--headless", "--project=p.cascade", "new.tif", cwd=run_dir, env={variable: value})
    refused(done, variable, value)
    assert files(run_dir) == before


# --- items 7 and 8: training specs ---------------------------------------------------------

SPEC = "images: [{raw: train.tif, labels: train_labels.tif}]\nstages: [{classes: [a, b], features: features.yaml}]\n"


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("forest: [1, 2]", ["'forest' must be a mapping", "[1, 2]"]),
        ("forest: {seed: 99999999999999999999}", ["forest seed", "4294967295", "99999999999999999999"]),
        ("forest: {seed: -1}", ["forest seed", "-1"]),
        ("forest: {trees: 2.5}", ["forest trees", "2.5"]),
        ("tress: 5", ["unknown key 'tress'", "images, stages, objects, forest, training"]),
        ("forest: {tress: 5}", ["unknown key 'tress' in 'forest'", "trees, seed"]),
    ],
)
def test_bad_training_specs_are_refused(run_dir: Path, extra: str, words: list[str]) -> None:
    (run_dir / "spec.yaml").write_text(SPEC + extra + "\n")
    before = files(run_dir)
    refused(cascade("train", "spec.yaml", "--project", "out.cascade", cwd=run_dir), *words)
    assert files(run_dir) == before


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            SPEC.replace("classes: [a, b]", "classes: [a, b], featurs: x"),
            ["unknown key 'featurs' in stage 1"],
        ),
        (
            SPEC.replace("labels: train_labels.tif", "label: train_labels.tif"),
            ["unknown key 'label' in image 1"],
        ),
        (SPEC.replace("classes: [a, b]", "classes: [a]"), ["stage 1", "at least two class names"]),
    ],
)
def test_bad_spec_entries_are_refused(run_dir: Path, text: str, words: list[str]) -> None:
    (run_dir / "spec.yaml").write_text(text)
    before = files(run_dir)
    refused(cascade("train", "spec.yaml", "--project", "out.cascade", cwd=run_dir), *words)
    assert files(run_dir) == before


def test_unknown_key_in_a_feature_selection_is_refused(run_dir: Path) -> None:
    (run_dir / "typo.yaml").write_text("features: {GaussianSmoothing: [1.0]}\ncompute_in2d: true\n")
    before = files(run_dir)
    args = ["--raw_data", "train.tif", "--labels", "train_labels.tif", "--features", "typo.yaml"]
    done = cascade("train", "--project", "out.cascade", *args, cwd=run_dir)
    refused(done, "unknown key 'compute_in2d'", "features, scales, compute_in_2d")
    assert files(run_dir) == before


def _train(run_dir: Path, labels: np.ndarray, *extra: str) -> subprocess.CompletedProcess[str]:
    tifffile.imwrite(run_dir / "labels.tif", labels)
    args = ["train", "--project", "out.cascade", "--raw_data", "train.tif", "--labels", "labels.tif"]
    return cascade(*args, "--stages", "1", "--features", "features.yaml", "--trees", "3", *extra, cwd=run_dir)


@pytest.mark.parametrize("classes", [[], ["--classes", "a,b"]])
def test_label_value_beyond_uint8_is_refused_not_wrapped(run_dir: Path, classes: list[str]) -> None:
    labels = sparse(blobs(1, size=64)[1], 2).astype(np.uint16)
    labels[labels == 2] = 300  # stored as uint8 it would become class 44
    before = files(run_dir)
    refused(_train(run_dir, labels, *classes), "300")
    assert files(run_dir) - before == {run_dir / "labels.tif"}


def test_fractional_label_values_are_refused(run_dir: Path) -> None:
    labels = sparse(blobs(1, size=64)[1], 2).astype(np.float32)
    labels[labels == 2] = 2.5  # would be truncated to class 2
    before = files(run_dir)
    refused(_train(run_dir, labels, "--classes", "a,b,c"), "labels.tif", "2.5", "whole numbers")
    assert files(run_dir) - before == {run_dir / "labels.tif"}


@pytest.mark.parametrize(
    ("classes", "words"),
    [
        ([], ["one class only"]),
        (["--classes", "a,b"], ["one class only", "(a)"]),
        (["--classes", "a"], ["1 class"]),
    ],
)
def test_training_on_one_class_is_refused(run_dir: Path, classes: list[str], words: list[str]) -> None:
    labels = sparse(blobs(1, size=64)[1], 2)
    if classes != ["--classes", "a"]:
        labels[labels == 2] = 0
    before = files(run_dir)
    refused(_train(run_dir, labels, *classes), "two", *words)
    assert files(run_dir) - before == {run_dir / "labels.tif"}


# --- item 8: corrupt native projects ---------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [(np.nan, 1.0), (-0.5, 1.5)])
def test_native_project_with_invalid_leaves_is_refused(run_dir: Path, first: float, second: float) -> None:
    project = run_dir / "bad.cascade"
    shutil.copy(run_dir / "p.cascade", project)
    with h5py.File(project, "r+") as f:
        forest = f["stages/stage00/forest"]
        value = forest["value"][()]
        leaf = int(np.flatnonzero(forest["left"][()] < 0)[0])
        value[leaf] = (first, second)
        forest["value"][...] = value
    before = files(run_dir)
    refused(cascade("--headless", "--project=bad.cascade", "new.tif", cwd=run_dir), "bad.cascade", "leaf")
    refused(cascade("info", "bad.cascade", cwd=run_dir), "leaf")
    assert files(run_dir) == before


# --- items 8 and 9: usage errors of every command --------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["--headless", "--project=p.cascade", "--threads=0", "new.tif"],
            ["--threads", "integer >= 1", "got 0"],
        ),
        (["predict", "--project=p.cascade", "--threads=abc", "new.tif"], ["--threads", "got abc"]),
        (["predict", "--project=p.cascade", "--memory=-5GB", "new.tif"], ["--memory", "-5GB"]),
        (["predict", "--project=p.cascade", "--memory=lots", "new.tif"], ["--memory", "lots"]),
        (["--headless", "--project=p.cascade", "--prediction_maps=m.tif", "new.tif"], ["--prediction_maps"]),
        (["predict", "--project=p.cascade", "--threads"], ["--threads", "requires an argument"]),
        (["train", "--stages", "0", "--raw_data", "train.tif"], ["--stages", "integer >= 1", "got 0"]),
        (["train", "--trees", "many"], ["--trees", "got many"]),
        (["train", "--seed", "99999999999999999999"], ["--seed", "4294967295"]),
        (["train", "--training", "cross"], ["--training", "cross-fit, oob, in-sample"]),
        (["train", "--memory=-5GB", "spec.yaml"], ["--memory", "-5GB"]),
        (["demo", "--seed", "-1"], ["--seed", "got -1"]),
        (["info"], ["PROJECT"]),
        (["info", "p.cascade", "--verbose"], ["--verbose"]),
        (["frobnicate"], ["frobnicate"]),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(run_dir: Path, args: list[str], words: list[str]) -> None:
    before = files(run_dir)
    refused(cascade(*args, cwd=run_dir), *words)
    assert files(run_dir) == before


@pytest.mark.parametrize("command", [[], ["predict"], ["train"], ["info"], ["demo"]])
def test_help_still_works(run_dir: Path, command: list[str]) -> None:
    done = cascade(*command, "--help", cwd=run_dir)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout and done.stderr == ""


def test_zarr_chunk_bomb_is_refused_in_one_line(run_dir: Path) -> None:
    """A zarr chunk of 64x64 whose 4 KB file inflates to 4 MiB is refused naming the chunk file and
    nothing is written (a 1 GiB gzip bomb in one chunk took 2.3 GB of memory before zarr refused)."""
    array = zarr.create_array(
        str(run_dir / "bomb.zarr"),
        shape=(64, 64),
        chunks=(64, 64),
        dtype="uint8",
        compressors=[zarr.codecs.GzipCodec()],
    )
    array[:] = 1
    (run_dir / "bomb.zarr" / "c" / "0" / "0").write_bytes(gzip.compress(bytes(4 << 20), compresslevel=9))
    before = files(run_dir)
    done = cascade("--headless", "--project=p.cascade", "bomb.zarr", cwd=run_dir)
    refused(done, "bomb.zarr/c/0/0", "decompresses to more than the 4096 bytes")
    assert files(run_dir) == before


@pytest.mark.parametrize(("value", "ndim"), [(5, 0), (np.arange(100), 1), (np.zeros((2,) * 6, np.uint8), 6)])
def test_dataset_of_too_few_or_many_dimensions_is_refused_naming_it(
    run_dir: Path, value: object, ndim: int
) -> None:
    with h5py.File(run_dir / "odd.h5", "w") as f:
        f["d"] = value
    before = files(run_dir)
    done = cascade("--headless", "--project=p.cascade", "odd.h5/d", cwd=run_dir)
    refused(done, "cannot read odd.h5/d", f"2 to 5 dimensions, this data has {ndim}")
    assert files(run_dir) == before


def test_hdf5_dataset_needing_a_missing_filter_plugin_is_refused_before_reading(run_dir: Path) -> None:
    """A dataset compressed with a filter whose plugin is not installed (here lzf renumbered to the
    unregistered id 32099) is refused naming the filter; it failed per chunk with HDF5's "can't open
    directory (/usr/local/lib/plugin)"."""
    with h5py.File(run_dir / "f.h5", "w") as f:
        f.create_dataset(
            "d", data=np.tile(np.arange(64, dtype=np.uint8), (64, 1)), chunks=(32, 32), compression="lzf"
        )
    data = bytearray((run_dir / "f.h5").read_bytes())
    at = data.find(b"lzf\0") - 8  # the filter pipeline message: id (2 bytes), name length, flags, ...
    assert data[at : at + 2] == (32000).to_bytes(2, "little")
    data[at : at + 2] = (32099).to_bytes(2, "little")
    (run_dir / "f.h5").write_bytes(bytes(data))
    before = files(run_dir)
    done = cascade("--headless", "--project=p.cascade", "f.h5/d", cwd=run_dir)
    refused(done, "cannot read f.h5/d", "HDF5 filter 32099 (lzf)", "not available", "HDF5_PLUGIN_PATH")
    assert files(run_dir) == before


def test_zarr_declaring_a_trillion_pixels_is_refused_before_planning(run_dir: Path) -> None:
    """10^6 x 10^6 pixels in chunks of 64 (nothing stored: zarr reads the fill value) are 3.8 million
    blocks of 512^2: refused in one line; planning them took 6 GB in 90 s and had not finished."""
    zarr.create_array(str(run_dir / "vast.zarr"), shape=(10**6, 10**6), chunks=(64, 64), dtype="uint8")
    before = files(run_dir)
    done = cascade("--headless", "--project=p.cascade", "vast.zarr", cwd=run_dir)
    refused(done, "vast.zarr", "(1000000, 1000000", "blocks", "--block-shape")
    assert files(run_dir) == before


@pytest.mark.parametrize(
    ("link", "words"),
    [
        (h5py.ExternalLink("/nonexistent/raw.h5", "data"), "external link to /nonexistent/raw.h5:data"),
        (h5py.SoftLink("/gone"), "a link to /gone, which does not exist"),
    ],
)
def test_hdf5_dangling_link_is_refused_naming_its_target(run_dir: Path, link: object, words: str) -> None:
    """A dataset that is a link to a missing file or path was reported as "has no dataset 'd'; datasets: none"."""
    with h5py.File(run_dir / "links.h5", "w") as f:
        f["d"] = link
    before = files(run_dir)
    done = cascade("--headless", "--project=p.cascade", "links.h5/d", cwd=run_dir)
    refused(done, "cannot read links.h5/d", words)
    assert files(run_dir) == before


def test_hdf5_gzip_chunk_bomb_is_refused_in_one_line(run_dir: Path) -> None:
    """A 64x64 chunk whose 4 KB of deflate inflate to 4 MiB: HDF5 inflated all of it and kept the
    chunk's first bytes without an error (a 1 GiB one took 2.3 GB and exited 0); now refused."""
    with h5py.File(run_dir / "bomb.h5", "w") as f:
        ds = f.create_dataset("d", data=np.ones((128, 128), np.uint8), chunks=(64, 64), compression="gzip")
        ds.id.write_direct_chunk((64, 0), zlib.compress(bytes(4 << 20), 9))
    before = files(run_dir)
    done = cascade("--headless", "--project=p.cascade", "bomb.h5/d", cwd=run_dir)
    refused(done, "damaged HDF5 chunk at (64, 0) of bomb.h5/d", "a chunk is 4096 bytes", "more than that")
    assert files(run_dir) == before
