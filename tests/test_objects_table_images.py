"""The per-object image crops of HDF5 object tables (ilastik's ``/images/<i>/labeling`` and ``raw``), and ``--atlas``.

The crops are checked against the written Object Identities and the raw input: for row ``i`` the
object's bounding box ``[Bounding Box Minimum - margin, Bounding Box Maximum + margin)`` clipped to
the image, in ilastik's x, y order, labeling 1 on the object and 0 elsewhere.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import cascade

OC = "ilp/ilastik__ilastik/object_classification"
INPUTS = "inputdata/2d.h5/data", "inputdata/2d_Probabilities.h5/exported_data"


def _project(data_dir: Path, tmp_path: Path, settings: dict[str, object] | None) -> Path:
    (tmp_path / "inputdata").symlink_to(data_dir / OC / "inputdata")
    project = Path(shutil.copy(data_dir / OC / "ObjectClassification2d_wPred.ilp", tmp_path / "p.ilp"))
    if settings is not None:
        with h5py.File(project, "r+") as f:
            del f["ObjectClassification/ExportSettings"]
            f["ObjectClassification/ExportSettings"] = np.void(pickle.dumps((settings, None), protocol=0))
    return project


def _run(project: Path, tmp_path: Path, *options: str) -> None:
    done = cascade(
        "--headless",
        f"--project={project}",
        f"--raw_data={INPUTS[0]}",
        f"--prediction_maps={INPUTS[1]}",
        "--export_source=Object Identities",
        "--output_filename_format={nickname}_{result_type}.h5",
        *options,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr


def _inputs(tmp_path: Path) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(tmp_path / "2d-data_Object Identities.h5", "r") as f:
        ids = np.asarray(f["exported_data"][()])[..., 0]
    with h5py.File(tmp_path / "inputdata/2d.h5", "r") as f:
        raw = np.asarray(f["data"][()])
    return ids, raw.reshape(ids.shape)


def _boxes(table: np.ndarray, margin: int, shape: tuple[int, ...]) -> list[tuple[slice, slice]]:
    boxes = []
    for row in table:
        lo = [int(row[f"Bounding Box Minimum_{k}"]) - margin for k in (0, 1)]
        hi = [int(row[f"Bounding Box Maximum_{k}"]) + margin for k in (0, 1)]
        ys = slice(max(lo[1], 0), min(hi[1], shape[0]))
        xs = slice(max(lo[0], 0), min(hi[0], shape[1]))
        boxes.append((ys, xs))
    return boxes


def _axes(ds: h5py.Dataset) -> str:
    return "".join(a["key"] for a in json.loads(ds.attrs["axistags"])["axes"])


def test_hdf5_table_has_per_object_crops(data_dir: Path, tmp_path: Path) -> None:
    project = _project(data_dir, tmp_path, None)
    _run(project, tmp_path, "--table_filename=t.h5", "--block-shape=256")
    ids, raw = _inputs(tmp_path)
    with h5py.File(tmp_path / "t.h5", "r") as f:
        table = f["table"][()]
        assert sorted(f["images"]) == sorted(str(i) for i in range(len(table)))
        assert "raw" not in f["images"]
        for i, (ys, xs) in enumerate(_boxes(table, 0, ids.shape)):
            oid = int(table["labelimage_oid"][i])
            labeling, crop = f[f"images/{i}/labeling"], f[f"images/{i}/raw"]
            assert labeling.attrs["type"] == "labeling" and crop.attrs["type"] == "image"
            assert _axes(labeling) == _axes(crop) == "xy"
            assert labeling.dtype == np.uint8 and crop.dtype == raw.dtype
            assert np.array_equal(labeling[()], (ids[ys, xs] == oid).astype(np.uint8).T), i
            assert np.array_equal(crop[()], raw[ys, xs].T), i
            assert labeling[()].sum() == table["Size in pixels"][i]


@pytest.mark.parametrize("margin", [3])
def test_table_settings_margin_and_whole_raw(data_dir: Path, tmp_path: Path, margin: int) -> None:
    settings = {"file path": "t.h5", "file type": "h5", "margin": margin, "include raw": True}
    project = _project(data_dir, tmp_path, settings)
    _run(project, tmp_path, "--block-shape=300")
    ids, raw = _inputs(tmp_path)
    with h5py.File(tmp_path / "t.h5", "r") as f:
        table = f["table"][()]
        assert np.array_equal(f["images/raw"][()], raw.T)
        assert _axes(f["images/raw"]) == "xy" and f["images/raw"].attrs["type"] == "image"
        boxes = _boxes(table, margin, ids.shape)
        assert any(ys.start == 0 for ys, _ in boxes)  # clipped at the border
        for i, (ys, xs) in enumerate(boxes):
            assert "raw" not in f[f"images/{i}"]
            oid = int(table["labelimage_oid"][i])
            assert np.array_equal(f[f"images/{i}/labeling"][()], (ids[ys, xs] == oid).astype(np.uint8).T), i


def test_atlas_mapping_column(data_dir: Path, tmp_path: Path) -> None:
    """``--atlas``: ``AtlasMapping`` = the atlas at the rounded ``RegionCenter`` (x, y), a default column."""
    project = _project(data_dir, tmp_path, None)
    with h5py.File(tmp_path / "inputdata/2d.h5", "r") as f:
        shape = f["data"].shape
    ys, xs = np.indices(shape[:2], dtype=np.uint32)
    atlas = (ys * 10000 + xs).reshape(shape)
    with h5py.File(tmp_path / "atlas.h5", "w") as f:
        f["data"] = atlas
    _run(project, tmp_path, "--atlas=atlas.h5/data", "--table_filename=t.h5", "--block-shape=200")
    with h5py.File(tmp_path / "t.h5", "r") as f:
        table = f["table"][()]
    names = list(table.dtype.names)
    assert names[-1] == "AtlasMapping"  # the last default feature, as in ilastik's default features
    x = np.round(table["Center of the object_0"].astype(np.float64)).astype(np.int64)
    y = np.round(table["Center of the object_1"].astype(np.float64)).astype(np.int64)
    assert table["AtlasMapping"].dtype == np.uint32
    assert np.array_equal(table["AtlasMapping"], y * 10000 + x)
    assert len(table) == 109


def test_atlas_count_must_match(data_dir: Path, tmp_path: Path) -> None:
    project = _project(data_dir, tmp_path, None)
    done = cascade(
        "--headless",
        f"--project={project}",
        f"--raw_data={INPUTS[0]}",
        f"--prediction_maps={INPUTS[1]}",
        f"--atlas={INPUTS[0]}",
        f"--atlas={INPUTS[0]}",
        "--table_only",
        "--table_filename=t.csv",
        cwd=tmp_path,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "--atlas" in lines[0], done.stderr
    assert not (tmp_path / "t_table.csv").exists()
