"""Slab-wise stores, stages stored once in scratch, and every stage computed once per run."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from helpers import blobs, sparse

import cascade.pipeline as pipeline
from cascade.batch import BatchOptions, run_batch
from cascade.errors import CascadeError
from cascade.features import parse_feature_selection
from cascade.io import open_image
from cascade.io._store import slab_boxes, store_slabs
from cascade.pipeline import Stage, predict
from cascade.project.native import save_cascade
from cascade.training import TrainingImage, fit

SMALL = parse_feature_selection(
    {
        "features": {
            "GaussianSmoothing": [0.7, 1.6],
            "LaplacianOfGaussian": [1.0],
            "HessianOfGaussianEigenvalues": [1.6],
        }
    }
)


@pytest.fixture(autouse=True)
def _always_spill() -> Iterator[None]:
    """These images are small: store their stages in scratch anyway (as large ones would be)."""
    with dask.config.set({"cascade.in-memory-stage": 0}):
        yield


def _counted(calls: list, chunks: tuple) -> da.Array:
    lock = threading.Lock()

    def block(block_info: dict | None = None) -> np.ndarray:
        assert block_info is not None
        loc = block_info[None]["array-location"]
        with lock:
            calls.append(tuple(a for a, _ in loc))
        grids = np.meshgrid(*[np.arange(a, b) for a, b in loc], indexing="ij")
        return sum(g * 1000**i for i, g in enumerate(grids)).astype(np.float64)

    return da.map_blocks(block, chunks=chunks, dtype=np.float64)


def test_slab_boxes_cover_the_grid_once() -> None:
    for numblocks, most in [((4, 2, 2), 8), ((3, 5, 7), 6), ((1, 1), 64), ((10,), 3), ((2, 40, 3), 50)]:
        seen: list[tuple[int, ...]] = []
        for box in slab_boxes(numblocks, most):
            blocks = list(np.ndindex(*(len(r) for r in box)))
            assert len(blocks) <= max(most, numblocks[-1])
            seen += [tuple(r[i] for r, i in zip(box, b)) for b in blocks]
        assert sorted(seen) == sorted(np.ndindex(*numblocks))


@pytest.mark.parametrize("slab_blocks", [1, 3, 1000])
def test_slab_store_equals_a_whole_store_and_computes_each_block_once(
    tmp_path: Path, slab_blocks: int
) -> None:
    calls: list = []
    computed = ((8, 8, 8, 6), (10, 10, 10), (7, 7))
    source = _counted(calls, computed)
    target = zarr.create_array(
        store=str(tmp_path / "t.zarr"), shape=source.shape, chunks=(4, 5, 7), dtype="f8"
    )
    with dask.config.set({"cascade.slab-blocks": slab_blocks, "scheduler": "threads"}):
        store_slabs(source.rechunk((4, 5, 7)), target, compute_chunks=computed)
    assert np.array_equal(target[...], _counted([], computed).compute())
    # slab edges fall on edges of the computed blocks too: none of them was computed twice
    assert len(calls) == len(set(calls)) == 4 * 3 * 2


@pytest.fixture(scope="module")
def two_stage(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    raw, truth = blobs(5, size=96)
    stages = [Stage(SMALL, ("fg", "bg")), Stage(SMALL, ("fg", "bg"))]
    model = fit([TrainingImage(raw[..., None], "yxc", (sparse(truth, 1),) * 2)], stages, trees=8, seed=0)
    path = tmp_path_factory.mktemp("proj") / "two.cascade"
    save_cascade(model, path)
    return model, path, raw


def test_scratch_stages_equal_lazy_ones_and_resume(two_stage: tuple, tmp_path: Path) -> None:
    model, _, raw = two_stage
    lazy = [r.probabilities.compute() for r in predict(model, raw[..., None], axes="yxc", chunks=(32, 32, 1))]
    stored = predict(model, raw[..., None], axes="yxc", chunks=(32, 32, 1), scratch=str(tmp_path), keep={1})
    for a, b in zip(lazy, stored):
        assert np.array_equal(a, b.probabilities.compute())
    assert len(os.listdir(tmp_path)) == 2  # both stages stored: stage 1 for stage 2, stage 2 kept
    # stage 1 is stored as stage 2 reads it (converted to the raw dtype), stage 2 as probabilities
    dtypes = sorted(str(zarr.open_array(str(tmp_path / name)).dtype) for name in os.listdir(tmp_path))
    assert dtypes == ["float32", str(raw.dtype)] and raw.dtype == np.uint8
    # a second call with the same inputs reuses every stored block: no forest runs at all
    calls: list = []
    original = pipeline.predict_proba
    try:
        pipeline.predict_proba = lambda forest, x: calls.append(1) or original(forest, x)  # type: ignore[assignment]
        again = predict(
            model, raw[..., None], axes="yxc", chunks=(32, 32, 1), scratch=str(tmp_path), keep={1}
        )
        assert np.array_equal(again[1].probabilities.compute(), lazy[1])
    finally:
        pipeline.predict_proba = original  # type: ignore[assignment]
    assert calls == []


def test_a_cutout_computes_earlier_stages_only_around_it(two_stage: tuple, tmp_path: Path) -> None:
    model, _, raw = two_stage
    lazy = predict(model, raw[..., None], axes="yxc", chunks=(16, 16, 1))[1].probabilities.compute()
    region = (slice(0, 10), slice(70, 90), slice(None))
    stored = predict(
        model, raw[..., None], axes="yxc", chunks=(16, 16, 1), scratch=str(tmp_path), region=region
    )
    assert np.array_equal(stored[1].probabilities[region].compute(), lazy[region])
    (folder,) = os.listdir(tmp_path)
    done = os.listdir(tmp_path / folder / ".cascade-resume" / "done")
    assert 0 < len(done) < 36  # not all 6x6 stage-1 blocks: only those within the halo of the cutout


@pytest.mark.parametrize(
    "sources",
    [
        (
            "Probabilities Stage 1",
            "Simple Segmentation Stage 1",
            "Probabilities Stage 2",
            "Simple Segmentation Stage 2",
            "Uncertainty Stage 2",
            "Probabilities All Stages",
        ),
        ("Probabilities Stage 1", "Probabilities Stage 2"),  # stage 1: one export and stage 2 read it
    ],
)
def test_several_exports_compute_every_stage_once(
    two_stage: tuple, tmp_path: Path, monkeypatch, sources: tuple[str, ...]
) -> None:
    """ilastik #2698: all stages' outputs in one run, each stage's forest evaluated once per block."""
    _, project, raw = two_stage
    tifffile.imwrite(tmp_path / "img.tif", raw)
    calls: list = []
    original = pipeline.predict_proba
    monkeypatch.setattr(pipeline, "predict_proba", lambda f, x: calls.append(x.shape) or original(f, x))
    monkeypatch.chdir(tmp_path)
    options = BatchOptions(export_sources=sources, output_format="zarr", chunks=(48, 48, 1))
    with dask.config.set(scheduler="threads"):
        written = run_batch(project, [str(tmp_path / "img.tif")], options, echo=lambda _: None)
    assert len(written) == len(sources)
    assert len(calls) == 2 * 4  # 2 stages x 4 blocks, nothing twice
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".cascade-scratch")]  # removed after the run
    lazy = predict(two_stage[0], raw[..., None], axes="yxc", chunks=(48, 48, 1))
    for stage, result in enumerate(lazy, 1):
        written_stage = open_image(str(tmp_path / f"img_Probabilities Stage {stage}.zarr")).data.compute()
        expected_stage = result.probabilities.compute()
        channels_first = written_stage.shape[0] == 2
        assert np.array_equal(
            np.moveaxis(written_stage, 0, -1) if channels_first else written_stage, expected_stage
        )
    if "Probabilities All Stages" in sources:
        both = open_image(str(tmp_path / "img_Probabilities All Stages.zarr")).data.compute()
        expected = np.concatenate([r.probabilities.compute() for r in lazy], axis=-1)
        assert np.array_equal(np.moveaxis(both, 0, -1) if both.shape[0] == 4 else both, expected)


def test_small_stages_stay_in_memory(two_stage: tuple, tmp_path: Path) -> None:
    model, _, raw = two_stage
    lazy = predict(model, raw[..., None], axes="yxc", chunks=(32, 32, 1))[1].probabilities.compute()
    with dask.config.set({"cascade.in-memory-stage": "64 MiB"}):
        stored = predict(
            model, raw[..., None], axes="yxc", chunks=(32, 32, 1), scratch=str(tmp_path), keep={1}
        )
    assert np.array_equal(stored[1].probabilities.compute(), lazy)
    assert os.listdir(tmp_path) == []


def test_one_progress_line_per_output(tmp_path: Path) -> None:
    import io

    from cascade.progress import progress_label, progress_line

    out = io.StringIO()
    source = _counted([], ((8, 8, 8, 8), (16, 16)))
    target = zarr.create_array(store=str(tmp_path / "p.zarr"), shape=source.shape, chunks=(8, 16), dtype="f8")
    with progress_line(out, minimum=0.0), dask.config.set({"cascade.slab-blocks": 2, "scheduler": "threads"}):
        with progress_label("out.zarr"):
            store_slabs(source, target)
        store_slabs(source, target, label="stage 1")
    lines = out.getvalue().split("\n")
    assert lines[-1] == ""  # ended
    finals = [line.rsplit("\r", 1)[-1].split("] ", 1)[1] for line in lines[:-1]]
    assert [f.split("  ")[0] for f in finals] == ["100% out.zarr", "100% stage 1"]


def test_run_batch_starts_the_scheduler_after_every_check(two_stage: tuple, tmp_path: Path) -> None:
    """run_batch(start=...): entered once, after the inputs and outputs are checked, around the writes."""
    _, project, raw = two_stage
    tifffile.imwrite(tmp_path / "img.tif", raw)
    events: list[str] = []

    @contextlib.contextmanager
    def start() -> Iterator[None]:
        events.append("start")
        with dask.config.set(scheduler="threads"):
            yield
        events.append("stop")

    options = BatchOptions(
        export_sources=("Probabilities Stage 2",), output_format="zarr", chunks=(48, 48, 1)
    )
    written = run_batch(project, [str(tmp_path / "img.tif")], options, echo=events.append, start=start)
    assert events[0] == "start" and events[-1] == "stop" and len(events) == 3  # one echo line between
    assert written and os.path.isdir(written[0])
    # a missing input is refused before the scheduler starts
    events.clear()
    with pytest.raises(CascadeError, match=r"missing\.tif"):
        run_batch(project, [str(tmp_path / "missing.tif")], options, echo=events.append, start=start)
    assert events == []


def test_the_cli_checks_inputs_before_it_starts_a_local_cluster(
    two_stage: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """predict --scheduler local with a missing input: one error line, no cluster started."""
    from typer.testing import CliRunner

    import cascade.cli._predict as cli_predict
    from cascade.cli import app

    _, project, _ = two_stage
    started: list[object] = []
    monkeypatch.setattr(
        cli_predict, "computing", lambda *args: started.append(args) or contextlib.nullcontext()
    )
    monkeypatch.setattr(cli_predict, "prepare_workers", lambda *args: None)  # no forkserver in this test
    result = CliRunner().invoke(
        app, ["predict", f"--project={project}", "--scheduler=local", str(tmp_path / "missing.tif")]
    )
    assert result.exit_code == 2, result.output
    assert "missing.tif" in result.output
    assert started == []
