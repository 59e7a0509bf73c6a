"""Start-up cost: which libraries a command imports, checked in a fresh interpreter.

``cascade --help`` must not import dask, and a headless prediction of a TIFF into compressed
HDF5 must not import the libraries only other inputs, outputs or schedulers need (zarr,
distributed, imageio, scikit-learn, ...): each costs a tenth of a second or more at start-up.
The TIFF reader skips zarr for files whose pages are single strips or tiles; it must read them
exactly as tifffile's zarr store does. Wall times are measured by ``benchmarks/startup.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dask.array as da
import h5py
import numpy as np
import pytest
import tifffile
from helpers import blobs, sparse

from cascade.features import parse_feature_selection
from cascade.io._tiff import open_tiff
from cascade.pipeline import Stage
from cascade.project.native import save_cascade
from cascade.training import TrainingImage, fit

#: Runs ``cascade.cli.main`` on ``sys.argv[2:]`` and writes the imported modules to ``sys.argv[1]``.
PROBE = """
import json, sys
from cascade.cli import main
try:
    main(sys.argv[2:])
finally:
    with open(sys.argv[1], "w") as out:
        json.dump(sorted(sys.modules), out)
"""

#: Top-level packages a tiff -> compressed hdf5 run on the threads scheduler has no use for.
NOT_FOR_TIFF_TO_HDF5 = frozenset(
    {"zarr", "numcodecs", "distributed", "dask_jobqueue", "bokeh", "imageio", "sklearn", "skimage", "pandas"}
    # remote stores only: http(s):// and s3:// inputs and outputs
    | {"fsspec", "s3fs", "aiohttp", "botocore", "aiobotocore", "requests"}
)


def imported(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the command line in a fresh interpreter; its result and its imported top-level packages."""
    listing = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(listing), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    modules = json.loads(listing.read_text()) if listing.is_file() else []
    return done, {name.partition(".")[0] for name in modules}


def _tiff_layouts() -> dict[str, tuple[np.ndarray, dict[str, object]]]:
    """Arrays and ``tifffile.imwrite`` options: pages of one strip or tile, and of several."""
    rng = np.random.default_rng(0)
    u8, u16 = rng.integers(0, 255, (2, 3, 2, 8, 9), np.uint8), rng.integers(0, 2**16, (7, 20, 30), np.uint16)
    return {
        "2d": (u8[0, 0, 0], {}),
        "stack": (u16, {}),
        "stack zlib": (u16, {"compression": "zlib"}),
        "strips": (u16, {"rowsperstrip": 5}),
        "strips zlib": (u16, {"compression": "zlib", "rowsperstrip": 5}),
        "tiles": (rng.random((3, 64, 80), np.float32), {"tile": (32, 32), "photometric": "minisblack"}),
        "rgb": (np.moveaxis(u8[0, :, 0], 0, -1).copy(), {"photometric": "rgb"}),
        "planar rgb": (u8[0, :, 0], {"photometric": "rgb", "planarconfig": "separate"}),
        "imagej": (u8, {"imagej": True, "metadata": {"axes": "TZCYX"}}),
        "ome": (u16[:6].reshape(2, 3, 20, 30), {"ome": True, "metadata": {"axes": "TZYX"}}),
        "big-endian": (u16, {"byteorder": ">"}),
        "float64": (rng.random((2, 8, 9)), {}),
    }


@pytest.mark.parametrize("layout", sorted(_tiff_layouts()))
def test_tiff_pages_read_without_zarr_as_through_zarr(layout: str, tmp_path: Path) -> None:
    array, options = _tiff_layouts()[layout]
    tifffile.imwrite(tmp_path / "a.tif", array, **options)  # type: ignore[arg-type]
    direct, via_zarr = open_tiff(str(tmp_path / "a.tif")), open_tiff(str(tmp_path / "a.tif"), use_zarr=True)
    try:
        assert (direct.shape, direct.dtype) == (via_zarr.shape, via_zarr.dtype)
        full = tuple(slice(None) for _ in direct.shape)
        np.testing.assert_array_equal(direct[full], via_zarr[full])
        np.testing.assert_array_equal(direct[full].reshape(array.shape), array)
        part = tuple(slice(n // 3, n // 2 + 1, 2) for n in direct.shape)
        np.testing.assert_array_equal(direct[part], via_zarr[part])
        chunks = [da.core.normalize_chunks(r.chunks, r.shape) for r in (direct, via_zarr)]  # type: ignore[no-untyped-call]
        assert chunks[0] == chunks[1]
    finally:
        direct.close()
        via_zarr.close()


@pytest.fixture(scope="module")
def native_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-stage ``.cascade`` project trained on a small 2D image."""
    raw, truth = blobs(1, size=64)
    labels = sparse(truth, 2)
    selection = parse_feature_selection({"features": {"GaussianSmoothing": [0.7, 1.6]}})
    model = fit([TrainingImage(raw[..., None], "yxc", (labels,))], [Stage(selection, ("a", "b"))], trees=5)
    path = tmp_path_factory.mktemp("startup") / "p1.cascade"
    save_cascade(model, path)
    return path


@pytest.fixture(scope="module")
def autocontext_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-stage ``.cascade`` project: small images keep stage 1 in memory, no zarr scratch."""
    raw, truth = blobs(1, size=64)
    labels = sparse(truth, 2)
    selection = parse_feature_selection({"features": {"GaussianSmoothing": [0.7, 1.6]}})
    stages = [Stage(selection, ("a", "b")), Stage(selection, ("a", "b"))]
    model = fit([TrainingImage(raw[..., None], "yxc", (labels, labels))], stages, trees=5)
    path = tmp_path_factory.mktemp("startup") / "p2.cascade"
    save_cascade(model, path)
    return path


def test_help_imports_no_dask(tmp_path: Path) -> None:
    done, packages = imported(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    assert "predict" in done.stdout
    assert "dask" not in packages


@pytest.mark.parametrize("kind", ["ilp", "cascade", "autocontext"])
def test_headless_tiff_to_hdf5_imports_only_what_it_needs(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "ilp":
        project = request.getfixturevalue("data_dir") / "ilp/ilastik__ilastik/api_projects/PixelClass.ilp"
    elif kind == "cascade":
        project = request.getfixturevalue("native_project")
    else:
        project = request.getfixturevalue("autocontext_project")
    tifffile.imwrite(tmp_path / "img.tif", blobs(5, size=64)[0])
    done, packages = imported(tmp_path, "--headless", f"--project={project}", "img.tif")
    assert done.returncode == 0, done.stderr
    (output,) = tmp_path.glob("img_Probabilities*.h5")  # "... Stage 2" for the autocontext
    with h5py.File(output, "r") as f:
        result = f["exported_data"]
        assert (result.shape[:2], result.dtype) == ((64, 64), np.float32)
    assert {"dask", "h5py", "tifffile", "numba"} <= packages  # the probe saw the whole run
    assert not packages & NOT_FOR_TIFF_TO_HDF5, (
        f"needlessly imported: {sorted(packages & NOT_FOR_TIFF_TO_HDF5)}"
    )
