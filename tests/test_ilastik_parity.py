"""ilastik's own outputs, reproduced bit for bit by running its projects through ``cascade predict``.

Every reference output ilastik ships (``res-*.npy``) must be ``numpy.array_equal`` to cascade's,
at the default block shape and at small blocks that cut the image into many haloed pieces. The
feature stacks ilastik's forests saw (``features_reference``) are checked the same way, so a
departure is caught at the pass that causes it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

CASES = [
    # project, input, input axes, export source, reference output
    ("PixelClass.ilp", "Data_1channel.png", None, "Probabilities", "res-Data_1channel_pc1xyc.npy"),
    (
        "2464_PixelClassification_xy_input.ilp",
        "Data_1channel.png",
        None,
        "Probabilities",
        "res-Data_1channel_pc1xy.npy",
    ),
    (
        "Autocontext_2D.ilp",
        "Data_1channel.png",
        None,
        "Probabilities Stage 1",
        "res-Data_1channel_ac2ds1.npy",
    ),
    (
        "Autocontext_2D.ilp",
        "Data_1channel.png",
        None,
        "Probabilities Stage 2",
        "res-Data_1channel_ac2ds2.npy",
    ),
    ("PixelClass3D.ilp", "Data_3D.npy", "zyxc", "Probabilities", "res-Data_3D_pc3d.npy"),
]


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cascade", *args], capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("block", [None, "24"], ids=["default-blocks", "24px-blocks"])
@pytest.mark.parametrize(
    ("project", "image", "axes", "source", "reference"), CASES, ids=[c[0] + ":" + c[3] for c in CASES]
)
def test_reference_outputs(
    data_dir: Path,
    tmp_path: Path,
    project: str,
    image: str,
    axes: str | None,
    source: str,
    reference: str,
    block: str | None,
) -> None:
    folder = data_dir / "ilp" / "ilastik__ilastik" / "api_projects"
    args = [
        "predict",
        f"--project={folder / project}",
        f"--export_source={source}",
        "--output_format=numpy",
        f"--output_filename_format={tmp_path}/out",
    ]
    if axes:
        args.append(f"--input_axes={axes}")
    if block:
        args.append(f"--block-shape={block}")
    done = run([*args, str(folder / image)])
    assert done.returncode == 0, done.stderr
    ours = np.load(tmp_path / "out.npy")
    ref = np.load(folder / reference)
    assert ours.shape == ref.shape
    diff = np.abs(ours.astype(np.float64) - ref)
    print(
        f"{project} {source}: exact={np.array_equal(ours, ref)} max={diff.max():.4f} "
        f"p99.9={np.percentile(diff, 99.9):.4f} share>=0.015={np.mean(diff >= 0.015):.5f}"
    )
    assert ours.dtype == ref.dtype
    assert np.array_equal(ours, ref), f"max abs difference {diff.max()}"


def test_channel_and_dimension_mismatch_is_rejected(data_dir: Path, tmp_path: Path) -> None:
    folder = data_dir / "ilp" / "ilastik__ilastik" / "api_projects"
    three = run(["predict", f"--project={folder / 'Autocontext_2D.ilp'}", str(folder / "Data_3channel.png")])
    assert three.returncode == 2 and "expects 1 channel" in three.stderr
    volume = run(
        [
            "predict",
            f"--project={folder / 'Autocontext_2D.ilp'}",
            "--input_axes=zyxc",
            str(folder / "Data_3D.npy"),
        ]
    )
    assert volume.returncode == 2 and "'yx'" in volume.stderr
    flat = run(["predict", f"--project={folder / 'PixelClass3D.ilp'}", str(folder / "Data_1channel.png")])
    assert flat.returncode == 2 and "'zyx'" in flat.stderr
    rgb = run(
        ["predict", f"--project={folder / 'PixelClass3Channel.ilp'}", str(folder / "Data_1channel.png")]
    )
    assert rgb.returncode == 2 and "expects 3 channel" in rgb.stderr
    assert not list(tmp_path.iterdir())


def test_retrain_from_stored_labels(data_dir: Path, tmp_path: Path) -> None:
    """--retrain trains from the project's own labels and images; the result agrees with ilastik's."""
    folder = data_dir / "ilp" / "ilastik__ilastik" / "api_projects"
    done = run(
        [
            "predict",
            f"--project={folder / 'Autocontext_2D.ilp'}",
            "--retrain",
            "--output_format=numpy",
            "--export_source=Probabilities Stage 2",
            f"--output_filename_format={tmp_path}/out",
            str(folder / "Data_1channel.png"),
        ]
    )
    assert done.returncode == 0, done.stderr
    ours = np.argmax(np.load(tmp_path / "out.npy"), axis=-1)
    ref = np.argmax(np.load(folder / "res-Data_1channel_ac2ds2.npy"), axis=-1)
    assert np.mean(ours == ref) > 0.9


def test_projects_that_cannot_run_say_why(data_dir: Path) -> None:
    folder = data_dir / "ilp" / "ilastik__ilastik"
    no_labels = run(
        ["predict", f"--project={folder / 'api_projects' / 'PixelClassNoClassifier.ilp'}", "x.png"]
    )
    assert no_labels.returncode == 2 and "stores no labels to train from" in no_labels.stderr
    objects = run(["info", str(folder / "tests" / "test_ilastik" / "data" / "inputdata" / "pc-oc-133.ilp")])
    assert objects.returncode == 0, objects.stderr  # object classification projects run now (issue 12)
    assert "Object Classification (from pixel classification)" in objects.stdout
    assert (
        "threshold  simple, channel 0, low 0.5, smoothing 1.0, 1.0, 1.0 (x, y, z), sizes 10..1000000"
        in objects.stdout
    )
    info = run(["info", str(folder / "api_projects" / "Autocontext_3D.ilp")])
    assert info.returncode == 0 and "AutocontextTwoStage" in info.stdout


FEATURE_CASES = [
    # reference stack, project, stage, chunkings (internal axes: yxc or zyxc)
    ("Data_1channel__PixelClass", "PixelClass.ilp", 0, [None, (40, 33, 1), (128, 17, 1)]),
    ("Data_1channel__Autocontext_2D_stage1", "Autocontext_2D.ilp", 0, [None, (50, 50, 1)]),
    ("Data_1channel__Autocontext_2D_stage2", "Autocontext_2D.ilp", 1, [None, (37, 64, 3)]),
    ("Data_3D__PixelClass3D", "PixelClass3D.ilp", 0, [None, (24, 40, 64, 1)]),
]


@pytest.mark.parametrize(
    ("name", "project", "stage", "chunkings"), FEATURE_CASES, ids=[c[0] for c in FEATURE_CASES]
)
def test_feature_stacks_bit_for_bit(
    data_dir: Path, name: str, project: str, stage: int, chunkings: list[tuple[int, ...] | None]
) -> None:
    """The features of every channel equal ilastik's to the last bit, whole and in blocks."""
    import imageio.v3 as iio

    from cascade.features import compute_features
    from cascade.project.ilp import read_ilp

    folder = data_dir / "ilp" / "ilastik__ilastik" / "api_projects"
    reference = np.load(data_dir / "ilp" / "ilastik__ilastik" / "features_reference" / f"{name}.npy")
    if name.startswith("Data_3D"):
        image, axes = np.load(folder / "Data_3D.npy"), "zyxc"
    else:
        image, axes = iio.imread(folder / "Data_1channel.png")[..., None], "yxc"
    if stage == 1:  # raw plus ilastik's stage-1 probabilities converted to the raw dtype: floor(255 p)
        stage1 = np.load(folder / "res-Data_1channel_ac2ds1.npy")
        image = np.concatenate([image, (stage1 * 255).astype(np.uint8)], axis=-1)
    selection = read_ilp(folder / project).stages[stage].selection
    assert selection is not None
    for chunks in chunkings:
        source = image if chunks is None else da.from_array(image, chunks=chunks)
        ours = np.asarray(compute_features(source, selection, axes=axes))
        differs = [
            c for c in range(reference.shape[-1]) if not np.array_equal(ours[..., c], reference[..., c])
        ]
        assert ours.shape == reference.shape
        assert not differs, f"chunks {chunks}: channels {differs} differ from ilastik's"
