"""ilastik Object Classification projects through the CLI (``cascade --headless --project OC.ilp ...``).

Every project of ilastik's own OC tests (``shared/data/ilp/ilastik__ilastik/object_classification``)
and ``pc-oc-133.ilp`` run end to end on their own inputs; the written images are compared with what
ilastik stored in the projects: ``LabelImage_v2`` (object ids; not for the stale ``5t*_wSeg`` caches)
and ``CachedProbabilities`` (object probabilities, per object).
"""

from __future__ import annotations

import csv
import pickle
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import cascade, slurm_node_idle

from cascade.project import (
    read_object_ilp,
    stored_label_image,
    stored_probabilities,
    stored_region_features,
)

OC = "ilp/ilastik__ilastik/object_classification"
PCOC = "ilp/ilastik__ilastik/tests/test_ilastik/data/inputdata/pc-oc-133.ilp"
#: project -> (second role option, its input) ; raw input
INPUTS = {
    "2d_wPred": ("--prediction_maps", "2d_Probabilities.h5/exported_data", "2d.h5/data"),
    "5t2d1c_wPred": ("--prediction_maps", "5t2d1c_Probabilities.h5/exported_data", "5t2d1c.h5/data"),
    "2d_wSeg": ("--segmentation_image", "2d_Binary_Segmentation.h5/exported_data", "2d.h5/data"),
    "5t2d1c_wSeg": ("--segmentation_image", "5t2d1c_Binary_Segmentation.h5/exported_data", "5t2d1c.h5/data"),
    "2d3c_wLabels": ("--label_image", "2d3c_Object Identities.h5/exported_data", "2d3c.h5/data"),
}


def ok(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def refused(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cascade: error: "), done.stderr
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    return lines[0]


def run(
    data_dir: Path, name: str, out: Path, *options: str, dashes: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run a project on its own inputs (``dashes``: ilastik's ``--raw-data`` spelling of the options)."""
    role, second, raw = INPUTS[name]
    raw_option = "--raw_data"
    if dashes:
        role, raw_option = role.replace("_", "-"), "--raw-data"
    inputs = data_dir / OC / "inputdata"
    return cascade(
        "--headless",
        f"--project={data_dir / OC / f'ObjectClassification{name}.ilp'}",
        f"{raw_option}={inputs / raw}",
        f"{role}={inputs / second}",
        f"--output_filename_format={out}/{{nickname}}_{{result_type}}.h5",
        *options,
        cwd=out,
    )


def read(out: Path, nickname: str, source: str) -> np.ndarray:
    with h5py.File(out / f"{nickname}_{source}.h5", "r") as f:
        return np.asarray(f["exported_data"][()])


def _as_steps(image: np.ndarray, has_t: bool) -> list[np.ndarray]:
    return list(image) if has_t else [image]


def per_object(image: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The value of every object (the value at its first pixel), row i = id i (row 0 zeros)."""
    flat_ids = ids.ravel()
    values = image.reshape(flat_ids.size, -1)
    found, first = np.unique(flat_ids, return_index=True)
    out = np.zeros((int(flat_ids.max()) + 1, values.shape[1]), image.dtype)
    out[found] = values[first]
    out[0] = 0
    return out


def assert_objects_equal(got: np.ndarray, stored: np.ndarray, what: str) -> None:
    """Per-object values equal the stored table; the message lists the objects that differ."""
    assert got.shape == stored.shape, (what, got.shape, stored.shape)
    differ = np.flatnonzero((got != stored).any(axis=1))
    assert differ.size == 0, (
        f"{what}: {differ.size} of {len(stored) - 1} objects differ, ids {differ[:10].tolist()}"
    )


@pytest.mark.parametrize(("name", "has_t"), [("2d_wPred", False), ("5t2d1c_wPred", True)])
def test_prediction_map_projects_match_ilastik(
    data_dir: Path, tmp_path: Path, name: str, has_t: bool
) -> None:
    sources = ["Object Identities", "Object Probabilities", "Object Predictions"]
    ok(run(data_dir, name, tmp_path, *(f"--export_source={s}" for s in sources)))
    nickname = INPUTS[name][2].split(".")[0] + "-data"
    path = data_dir / OC / f"ObjectClassification{name}.ilp"
    ids = read(tmp_path, nickname, "Object Identities")
    probabilities = read(tmp_path, nickname, "Object Probabilities")
    predictions = read(tmp_path, nickname, "Object Predictions")
    assert ids.dtype == np.uint32 and probabilities.dtype == np.float32 and predictions.dtype == np.uint8
    assert ids.shape[-1] == predictions.shape[-1] == 1 and probabilities.shape[-1] == 2
    stored_ids, stored_p = stored_label_image(path), stored_probabilities(path)
    for t, (ids_t, p_t, pred_t) in enumerate(
        zip(
            _as_steps(ids[..., 0], has_t),
            _as_steps(probabilities, has_t),
            _as_steps(predictions[..., 0], has_t),
        )
    ):
        assert np.array_equal(ids_t, stored_ids[t]), t
        assert_objects_equal(per_object(p_t, ids_t), stored_p[t], f"{name} t={t} probabilities")
        assert np.array_equal(p_t, stored_p[t][ids_t]), t  # every pixel: its object's stored probabilities
        classes = np.r_[0, 1 + np.argmax(stored_p[t][1:], axis=1)].astype(np.uint8)
        assert np.array_equal(pred_t, classes[ids_t]), t


def test_segmentation_project_without_classifier(data_dir: Path, tmp_path: Path) -> None:
    """2d_wSeg stores neither an object forest nor object labels: identities only."""
    ok(run(data_dir, "2d_wSeg", tmp_path, "--export_source=Object Identities"))
    ids = read(tmp_path, "2d-data", "Object Identities")[..., 0]
    assert np.array_equal(ids, stored_label_image(data_dir / OC / "ObjectClassification2d_wSeg.ilp")[0])
    line = refused(
        run(data_dir, "2d_wSeg", tmp_path), "Object Predictions", "classifier", "Object Identities"
    )
    assert "Traceback" not in line


def test_stale_segmentation_project_runs(data_dir: Path, tmp_path: Path) -> None:
    """5t2d1c_wSeg's stored label image is stale; the object counts equal its stored features' rows."""
    ok(run(data_dir, "5t2d1c_wSeg", tmp_path, "--export-source=object identities", dashes=True))
    ids = read(tmp_path, "5t2d1c-data", "Object Identities")[..., 0]
    path = data_dir / OC / "ObjectClassification5t2d1c_wSeg.ilp"
    # its CachedProbabilities are stale too; the stored features are not
    features = stored_region_features(path)
    counts = [len(features[t]["Default features"]["Count"]) - 1 for t in sorted(features)]
    assert [int(i.max()) for i in ids] == counts
    for step in ids:  # consecutive ids 1..N in every time point
        assert np.array_equal(np.unique(step), np.arange(step.max() + 1))


def test_label_image_project(data_dir: Path, tmp_path: Path) -> None:
    ok(
        run(
            data_dir,
            "2d3c_wLabels",
            tmp_path,
            "--export_source=Object Identities",
            "--export_source=Object Probabilities",
        )
    )
    with h5py.File(data_dir / OC / "inputdata/2d3c_Object Identities.h5", "r") as f:
        given = f["exported_data"][()][..., 0]
    ids = read(tmp_path, "2d3c-data", "Object Identities")[..., 0]
    values = np.unique(given[given > 0])
    lut = np.zeros(int(given.max()) + 1, np.uint32)
    lut[values] = np.arange(1, len(values) + 1)
    assert np.array_equal(ids, lut[given])  # ascending original value -> 1..N
    probabilities = read(tmp_path, "2d3c-data", "Object Probabilities")
    assert np.array_equal(probabilities, per_object(probabilities, ids)[ids])  # one value per object
    assert np.allclose(probabilities.sum(axis=-1), ids > 0, atol=1e-5)


@pytest.mark.xfail(
    strict=True,
    reason="9 of 12 objects differ by 0.01-0.06 from the stored CachedProbabilities, the labelled objects 2, 7, 12 "
    "too, although cascade's features of the labelled objects are the stored forest's training rows (all 73 "
    "split thresholds are their midpoints, test_label_image_features_are_the_forest_training_features): the "
    "stored probabilities do not come from the stored forest on those rows; see docs/objects.md",
)
def test_label_image_project_probabilities_match_ilastik(data_dir: Path, tmp_path: Path) -> None:
    ok(
        run(
            data_dir,
            "2d3c_wLabels",
            tmp_path,
            "--export_source=Object Identities",
            "--export_source=Object Probabilities",
        )
    )
    ids = read(tmp_path, "2d3c-data", "Object Identities")[..., 0]
    stored = stored_probabilities(data_dir / OC / "ObjectClassification2d3c_wLabels.ilp")[0]
    probabilities = read(tmp_path, "2d3c-data", "Object Probabilities")
    assert_objects_equal(per_object(probabilities, ids), stored, "2d3c_wLabels probabilities")


def test_pixel_and_object_classification_project(data_dir: Path, tmp_path: Path) -> None:
    """pc-oc-133: pixel probabilities by cascade's engine, then objects; its object stage is untrained."""
    raw = data_dir / PCOC.replace("pc-oc-133.ilp", "5t2d1c.h5")
    common = (f"--project={data_dir / PCOC}", f"--raw_data={raw}/data")
    fmt = f"--output_filename_format={tmp_path}/{{nickname}}_{{result_type}}.h5"
    done = cascade(
        "--headless",
        *common,
        fmt,
        "--export_source=Pixel Probabilities",
        "--export_source=Object Identities",
        cwd=tmp_path,
    )
    ok(done)
    pixels = read(tmp_path, "5t2d1c-data", "Pixel Probabilities")
    ids = read(tmp_path, "5t2d1c-data", "Object Identities")[..., 0]
    assert pixels.shape == (5, 33, 77, 2) and ids.shape == (5, 33, 77)
    assert np.allclose(pixels.sum(axis=-1), 1, atol=1e-5)
    for step, p in zip(ids, pixels, strict=True):
        assert np.array_equal(np.unique(step), np.arange(step.max() + 1))
        assert step.max() > 0 and (p[step > 0, 0] > 0.2).all()  # objects lie where channel 0 is high
    refused(cascade("--headless", *common, fmt, cwd=tmp_path), "Object Predictions", "classifier")


def test_chunked_equals_whole_and_table(data_dir: Path, tmp_path: Path) -> None:
    whole, chunked = tmp_path / "whole", tmp_path / "chunked"
    whole.mkdir()
    chunked.mkdir()
    ok(
        run(
            data_dir,
            "5t2d1c_wPred",
            whole,
            "--export_source=Object Probabilities",
            f"--table_filename={whole}/t.csv",
        )
    )
    ok(run(data_dir, "5t2d1c_wPred", chunked, "--export_source=Object Probabilities", "--block-shape=16"))
    assert np.array_equal(
        read(whole, "5t2d1c-data", "Object Probabilities"),
        read(chunked, "5t2d1c-data", "Object Probabilities"),
    )
    with open(whole / "t_table.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    stored = stored_probabilities(data_dir / OC / "ObjectClassification5t2d1c_wPred.ilp")
    assert len(rows) == sum(len(p) - 1 for p in stored.values())
    assert {r["User Label"] for r in rows} == {"0"}  # batch inputs carry no labels
    got = np.array(
        [[r["Probability of Label 1"], r["Probability of Label 2"]] for r in rows], dtype=np.float32
    )
    expected = np.concatenate([p[1:] for _, p in sorted(stored.items())])
    assert_objects_equal(np.vstack([[0, 0], got]), np.vstack([[0, 0], expected]), "table probabilities")
    assert [int(r["timestep"]) for r in rows] == sorted(int(r["timestep"]) for r in rows)


def test_table_only_hdf5(data_dir: Path, tmp_path: Path) -> None:
    ok(run(data_dir, "2d_wPred", tmp_path, "--table_only", "--table_filename={nickname}_objects.h5"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2d-data_objects.h5"]
    with h5py.File(tmp_path / "2d-data_objects.h5", "r") as f:
        table = f["table"][()]
    assert len(table) == 109 and table["labelimage_oid"].tolist() == list(range(1, 110))
    assert set(table["Predicted Class"]) <= {b"Label 1", b"Label 2"}


def test_table_file_that_is_the_image_export_is_refused(data_dir: Path, tmp_path: Path) -> None:
    """``--table_filename=out/x.h5`` with the image exported to ``out/x.h5/exported_data``: the HDF5
    table is written whole, so the image export vanished while the run reported success."""
    done = run(
        data_dir,
        "5t2d1c_wPred",
        tmp_path,
        f"--output_filename_format={tmp_path}/same",
        f"--table_filename={tmp_path}/same.h5",
    )
    refused(done, "same.h5", "--table_filename")
    assert list(tmp_path.iterdir()) == []


def test_blockwise_with_one_block_equals_whole(data_dir: Path, tmp_path: Path) -> None:
    """With a block larger than the image, ilastik's blockwise approximation is the whole-image result."""
    project = tmp_path / "ObjectClassification5t2d1c_wPred.ilp"
    (tmp_path / "inputdata").symlink_to(data_dir / OC / "inputdata")
    shutil.copy(data_dir / OC / project.name, project)
    with h5py.File(project, "r+") as f:
        for key in "xyz":
            f[f"Blockwise Object Classification/BlockShape3dDict/{key}"][()] = 1000
    role, second, raw = INPUTS["5t2d1c_wPred"]
    done = cascade(
        "--headless",
        f"--project={project}",
        f"--raw_data=inputdata/{raw}",
        f"{role}=inputdata/{second}",
        "--export_source=Blockwise Object Predictions",
        "--export_source=Object Predictions",
        f"--output_filename_format={tmp_path}/{{nickname}}_{{result_type}}.h5",
        cwd=tmp_path,
    )
    ok(done)
    blockwise = read(tmp_path, "5t2d1c-data", "Blockwise Object Predictions")
    whole = read(tmp_path, "5t2d1c-data", "Object Predictions")
    assert np.array_equal(blockwise, whole)


def test_blockwise_with_small_blocks(data_dir: Path, tmp_path: Path) -> None:
    """Blocks of 24 with a halo of 6: the same objects, each block classified on its own (uint8 classes)."""
    project = tmp_path / "ObjectClassification5t2d1c_wPred.ilp"
    (tmp_path / "inputdata").symlink_to(data_dir / OC / "inputdata")
    shutil.copy(data_dir / OC / project.name, project)
    with h5py.File(project, "r+") as f:
        for key in "xyz":
            f[f"Blockwise Object Classification/BlockShape3dDict/{key}"][()] = 24
            f[f"Blockwise Object Classification/HaloPadding3dDict/{key}"][()] = 6
    role, second, raw = INPUTS["5t2d1c_wPred"]
    done = cascade(
        "--headless",
        f"--project={project}",
        f"--raw_data=inputdata/{raw}",
        f"{role}=inputdata/{second}",
        "--export_source=Blockwise Object Probabilities",
        "--export_source=Object Identities",
        f"--output_filename_format={tmp_path}/{{nickname}}_{{result_type}}.h5",
        cwd=tmp_path,
    )
    ok(done)
    blockwise = read(tmp_path, "5t2d1c-data", "Blockwise Object Probabilities")
    ids = read(tmp_path, "5t2d1c-data", "Object Identities")[..., 0]
    assert blockwise.dtype == np.float32 and blockwise.shape == ids.shape + (2,)
    assert np.array_equal(blockwise.sum(axis=-1) > 0, ids > 0)  # every object pixel classified, background 0
    assert np.allclose(blockwise.sum(axis=-1)[ids > 0], 1, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "change", "words"),
    [
        ("2d_wPred", {"drop_second": True}, ["--prediction_maps", "one per --raw_data"]),
        ("2d_wPred", {"role": "--segmentation_image"}, ["--segmentation_image", "does not apply"]),
        ("2d_wPred", {"raw": "2d3c.h5/data"}, ["1 channel", "2d3c.h5"]),
        ("5t2d1c_wPred", {"second": "2d_Probabilities.h5/exported_data"}, ["t, z, y and x"]),
        ("2d_wPred", {"source": "Object Fantasies"}, ["Object Fantasies", "Object Identities"]),
        ("2d_wPred", {"extra_second": True}, ["1 --raw_data", "2 --prediction_maps"]),
        ("2d_wPred", {"mask": True}, ["prediction masks", "Pixel Classification"]),
    ],
)
def test_bad_input_in_one_line(
    data_dir: Path, tmp_path: Path, name: str, change: dict[str, object], words: list[str]
) -> None:
    role, second, raw = INPUTS[name]
    inputs = data_dir / OC / "inputdata"
    args = [
        "--headless",
        f"--project={data_dir / OC / f'ObjectClassification{name}.ilp'}",
        f"--raw_data={inputs / str(change.get('raw', raw))}",
        f"--export_source={change.get('source', 'Object Predictions')}",
        f"--output_filename_format={tmp_path}/{{nickname}}_{{result_type}}.h5",
    ]
    if not change.get("drop_second"):
        args.append(f"{change.get('role', role)}={inputs / str(change.get('second', second))}")
    if change.get("extra_second"):
        args.append(f"{role}={inputs / second}")
    if change.get("mask"):
        args.append(f"--prediction_mask={inputs / raw}")
    refused(cascade(*args, cwd=tmp_path), *words)
    assert list(tmp_path.iterdir()) == []  # nothing written, no folder created


def test_hostile_project_pickle_refused(data_dir: Path, tmp_path: Path) -> None:
    class Boom:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (shutil.rmtree, (str(tmp_path / "victim"),))

    (tmp_path / "victim").mkdir()
    (tmp_path / "inputdata").symlink_to(data_dir / OC / "inputdata")
    project = Path(shutil.copy(data_dir / OC / "ObjectClassification2d_wPred.ilp", tmp_path / "p.ilp"))
    with h5py.File(project, "r+") as f:
        del f["ObjectClassification/ExportSettings"]
        f["ObjectClassification/ExportSettings"] = np.void(pickle.dumps(({"file path": Boom()}, None)))
    role, second, raw = INPUTS["2d_wPred"]
    done = cascade(
        "--headless",
        f"--project={project}",
        f"--raw_data=inputdata/{raw}",
        f"{role}=inputdata/{second}",
        cwd=tmp_path,
    )
    refused(done, "ExportSettings", "refused", "shutil.rmtree")
    assert (tmp_path / "victim").is_dir()
    assert read_object_ilp(data_dir / OC / "ObjectClassification2d_wPred.ilp").stage.table_settings == {}


def test_info_describes_object_projects(data_dir: Path) -> None:
    done = cascade("info", data_dir / OC / "ObjectClassification2d_wPred.ilp")
    ok(done)
    assert "Prediction Maps" in done.stdout and "100 trees, 179 features" in done.stdout
    done = cascade("info", data_dir / PCOC)
    ok(done)
    assert "Pixel Classification stage, 2 classes" in done.stdout and "forest     none stored" in done.stdout


@pytest.mark.parametrize(
    ("fmt", "suffix"), [("numpy", ".npy"), ("zarr", ".zarr"), ("multipage tiff", ".tiff")]
)
def test_object_exports_in_other_formats(data_dir: Path, tmp_path: Path, fmt: str, suffix: str) -> None:
    """Every pixel-export format and option applies: here a format, a cutout and the axis order."""
    ok(
        run(
            data_dir,
            "5t2d1c_wSeg",
            tmp_path,
            "--export_source=Object Identities",
            f"--output_format={fmt}",
            "--cutout_subregion=[(1, 0, 10, None), (4, None, 60, None)]",
            "--output_axis_order=txyc",
        )
    )
    (written,) = [p for p in tmp_path.iterdir() if p.name.endswith(suffix)]
    if fmt == "numpy":
        got = np.load(written)
    elif fmt == "zarr":
        import zarr

        got = np.asarray(zarr.open_array(str(written / "exported_data"), mode="r"))
    else:
        import tifffile

        # the tiff writer stores y, x pages (axes TYX) whatever the output axis order
        got = tifffile.imread(written)[..., None].transpose(0, 2, 1, 3)
    reference = tmp_path / "reference"
    reference.mkdir()
    ok(run(data_dir, "5t2d1c_wSeg", reference, "--export_source=Object Identities"))
    whole = read(reference, "5t2d1c-data", "Object Identities")  # t, y, x, c
    assert got.shape == (3, 50, 33, 1) and got.dtype == np.uint32
    assert np.array_equal(got, whole[1:4, :, 10:60].transpose(0, 2, 1, 3))


def test_deprecated_export_flag(data_dir: Path, tmp_path: Path) -> None:
    ok(run(data_dir, "5t2d1c_wPred", tmp_path, "--export_object_probability_img"))
    assert [p.name for p in tmp_path.iterdir()] == ["5t2d1c-data_Object Probabilities.h5"]


def test_local_cluster_equals_threads(data_dir: Path, tmp_path: Path) -> None:
    """Objects, tables and painting on a local dask cluster give the threaded result, bit for bit."""
    threads, local = tmp_path / "threads", tmp_path / "local"
    threads.mkdir()
    local.mkdir()
    sources = ("--export_source=Object Probabilities", "--export_source=Object Identities")
    ok(run(data_dir, "5t2d1c_wPred", threads, *sources))
    ok(run(data_dir, "5t2d1c_wPred", local, *sources, "--scheduler", "local", "--threads", "2"))
    for source in ("Object Probabilities", "Object Identities"):
        assert np.array_equal(read(threads, "5t2d1c-data", source), read(local, "5t2d1c-data", source))


def test_configured_table_settings_are_used(data_dir: Path, tmp_path: Path) -> None:
    """A project whose table export was configured writes its table (its path, its features) by itself."""
    (tmp_path / "inputdata").symlink_to(data_dir / OC / "inputdata")
    project = Path(shutil.copy(data_dir / OC / "ObjectClassification5t2d1c_wPred.ilp", tmp_path / "p.ilp"))
    settings = {"file path": f"{tmp_path}/{{nickname}}_objects.csv", "file type": "csv", "margin": 0}
    with h5py.File(project, "r+") as f:
        del f["ObjectClassification/ExportSettings"]
        f["ObjectClassification/ExportSettings"] = np.void(
            pickle.dumps((settings, ["Mean Intensity"]), protocol=0)
        )
    role, second, raw = INPUTS["5t2d1c_wPred"]
    args = (f"--project={project}", f"--raw_data=inputdata/{raw}", f"{role}=inputdata/{second}")
    ok(cascade("--headless", *args, "--table_only", cwd=tmp_path))
    with open(tmp_path / "5t2d1c-data_objects_table.csv", newline="") as f:
        header = next(csv.reader(f))
    features = header[header.index("Probability of Label 2") + 1 :]
    assert features[0] == "Mean Intensity" and "Variance of Intensity" not in features
    assert "Bounding Box Minimum_0" in features and features.count("Size in pixels") == 1


@pytest.mark.slurm
def test_slurm_equals_threads(data_dir: Path, tmp_path: Path) -> None:
    """Objects, features, the table and painting in two SLURM worker jobs: the threaded result, bit for bit."""
    if not slurm_node_idle():
        pytest.skip("no SLURM node is idle (start one with .ci/slurm-setup.sh)")
    threads, slurm, logs = tmp_path / "threads", tmp_path / "slurm", tmp_path / "logs"
    for folder in (threads, slurm, logs):
        folder.mkdir()
    sources = ("--export_source=Object Probabilities", "--export_source=Object Identities")
    ok(run(data_dir, "5t2d1c_wPred", threads, *sources, f"--table_filename={threads}/objects.csv"))
    cluster = (
        "--scheduler",
        "slurm",
        "--profile",
        "slurm-local",
        "--cluster-option",
        f"slurm.log-directory={logs}",
    )
    jobs = ("--cluster-option", "slurm.jobs=2", "--cluster-option", "slurm.wait-for-workers=2")
    ok(
        run(
            data_dir,
            "5t2d1c_wPred",
            slurm,
            *sources,
            f"--table_filename={slurm}/objects.csv",
            *cluster,
            *jobs,
        )
    )
    for source in ("Object Probabilities", "Object Identities"):
        assert np.array_equal(read(threads, "5t2d1c-data", source), read(slurm, "5t2d1c-data", source))
    assert (threads / "objects_table.csv").read_bytes() == (slurm / "objects_table.csv").read_bytes()
    assert len(list(logs.glob("*.err"))) == 2  # two sbatch worker jobs ran
