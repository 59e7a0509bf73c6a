"""Interrupted exports resume: only the missing blocks are computed, the result is identical."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from dask.array.core import normalize_chunks
from helpers import CTRL_C_READY, blobs, sigint_state, sparse, stop_when_done

from cascade.io import open_image, write_image
from cascade.io._meta import block_shape


class Interrupt(KeyboardInterrupt):
    pass


SHAPE = (64, 64, 64)
CHUNKS = block_shape(SHAPE, "zyx", 512_000, 4)  # the zarr/n5 writers' block: one store per block


def _volume(calls: list[tuple[int, ...]], stop_after: int | None) -> da.Array:
    def block(block_info: dict | None = None) -> np.ndarray:
        assert block_info is not None
        if stop_after is not None and len(calls) >= stop_after:
            raise Interrupt
        (z0, z1), (y0, y1), (x0, x1) = block_info[None]["array-location"]
        calls.append((z0, y0, x0))
        z, y, x = np.mgrid[z0:z1, y0:y1, x0:x1]
        return (z * 10000 + y * 100 + x).astype(np.float32)

    return da.map_blocks(block, chunks=normalize_chunks(CHUNKS, SHAPE), dtype=np.float32)


@pytest.mark.parametrize("fmt", ["zarr", "n5"])
def test_resume_computes_only_missing_blocks(tmp_path: Path, fmt: str) -> None:
    target = str(tmp_path / f"out.{fmt}")
    first: list[tuple[int, ...]] = []
    with dask.config.set(scheduler="synchronous"), pytest.raises(Interrupt):
        write_image(_volume(first, stop_after=5), target, format=fmt, axes="zyx", resume="job-1")
    assert not os.path.exists(target)  # nothing under the final name
    hidden = [p.name for p in tmp_path.iterdir()]
    assert hidden == [f".out.{fmt}.resume"]
    marked = len(list((tmp_path / hidden[0] / ".cascade-resume" / "done").iterdir()))
    assert 0 < marked <= 5
    second: list[tuple[int, ...]] = []
    with dask.config.set(scheduler="synchronous"):
        write_image(_volume(second, stop_after=None), target, format=fmt, axes="zyx", resume="job-1")
    total = int(np.prod([len(c) for c in normalize_chunks(CHUNKS, SHAPE)]))
    assert len(first) == 5
    # only the blocks without a marker were computed, each once
    assert len(second) == len(set(second)) == total - marked, (marked, first, second)
    whole = _volume([], None).compute()
    assert np.array_equal(
        open_image(target + ("/exported_data" if fmt == "n5" else "")).data.compute(), whole
    )
    assert [p.name for p in tmp_path.iterdir()] == [f"out.{fmt}"]
    # a different job does not reuse another job's blocks
    again: list[tuple[int, ...]] = []
    with dask.config.set(scheduler="synchronous"), pytest.raises(Interrupt):
        write_image(
            _volume(again, stop_after=3), str(tmp_path / "b.zarr"), format="zarr", axes="zyx", resume="x"
        )
    fresh: list[tuple[int, ...]] = []
    with dask.config.set(scheduler="synchronous"):
        write_image(_volume(fresh, None), str(tmp_path / "b.zarr"), format="zarr", axes="zyx", resume="y")
    assert len(fresh) == total


def test_interrupted_cli_run_resumes(tmp_path: Path) -> None:
    """Ctrl-C a real `cascade predict`, run the same command again: it finishes, identical output."""
    raw, truth = blobs(3, size=96)
    tifffile.imwrite(tmp_path / "train.tif", raw)
    tifffile.imwrite(tmp_path / "labels.tif", sparse(truth, 1))
    run = [sys.executable, "-m", "cascade"]
    trained = subprocess.run(
        [
            *run,
            "train",
            "--project",
            tmp_path / "p.cascade",
            "--raw_data",
            tmp_path / "train.tif",
            "--labels",
            tmp_path / "labels.tif",
            "--stages",
            "2",
            "--trees",
            "10",
            "--features",
            "ilastik-default",
        ],
        capture_output=True,
        text=True,
    )
    assert trained.returncode == 0, trained.stderr
    volume = np.stack([blobs(s, size=128)[0] for s in range(64)])
    tifffile.imwrite(tmp_path / "volume.tif", volume)
    predict = [
        *run,
        "predict",
        "--project",
        str(tmp_path / "p.cascade"),
        "--output_format",
        "zarr",
        "--input_axes",
        "tyx",
        "--block-shape",
        "{'x': 64, 'y': 64}",
        "--threads",
        "1",
        f"--output_filename_format={tmp_path}/out",
        str(tmp_path / "volume.tif"),
    ]
    # stage 1 goes through the scratch folder even for this small volume (as for a large one)
    env = {**os.environ, "DASK_CASCADE__IN_MEMORY_STAGE": "0"}
    # a 2D project predicts a stack of slices given as time points
    reference = subprocess.run(
        [*predict[:-2], f"--output_filename_format={tmp_path}/ref", predict[-1]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert reference.returncode == 0, reference.stderr
    assert not list(tmp_path.glob(".cascade-scratch-*"))  # removed after a complete run
    proc = subprocess.Popen(
        [*CTRL_C_READY, *predict[len(run) :]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    done = tmp_path / ".out.zarr.resume" / ".cascade-resume" / "done"
    # once two output blocks are done it is interrupted from the stopped state, so it cannot
    # finish between the check and the Ctrl-C
    stop_when_done(proc, done, 2, 120)
    assert proc.poll() is None, "the run finished within one 50 ms slice"
    signals = sigint_state(proc.pid)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, f"{err} | {out} | {signals}"
    assert not (tmp_path / "out.zarr").exists()
    # stage 1 was complete in the scratch folder, kept for the next run
    (scratch,) = tmp_path.glob(".cascade-scratch-*")
    (stage1,) = scratch.glob("*.zarr")
    assert len(list((stage1 / ".cascade-resume" / "done").iterdir())) == 64 * 2 * 2
    resumed = subprocess.run(predict, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    assert not scratch.exists()
    a = open_image(str(tmp_path / "out.zarr")).data.compute()
    b = open_image(str(tmp_path / "ref.zarr")).data.compute()
    assert np.array_equal(a, b)


def _channels(calls: list[tuple[int, ...]], stop_after: int | None) -> da.Array:
    """Two channels per 64^3 block: each block holds two per-channel zarr chunks."""

    def block(block_info: dict | None = None) -> np.ndarray:
        assert block_info is not None
        if stop_after is not None and len(calls) >= stop_after:
            raise Interrupt
        (z0, z1), (y0, y1), (x0, x1), _ = block_info[None]["array-location"]
        calls.append((z0, y0, x0))
        z, y, x, c = np.mgrid[z0:z1, y0:y1, x0:x1, 0:2]
        return (z * 10000 + y * 100 + x + c * 0.5).astype(np.float32)

    return da.map_blocks(block, chunks=((64, 64), (64, 64), (64,), (2,)), dtype=np.float32)


def test_resume_with_several_zarr_chunks_per_block(tmp_path: Path) -> None:
    """A block writes its per-channel chunks in one task (no rechunk); markers stay per chunk, and a
    block is computed again unless every chunk of it is marked (a run interrupted between two)."""
    from cascade.io._sources import for_target

    whole = _channels([], None).compute()
    target = str(tmp_path / "out.zarr")
    first: list[tuple[int, ...]] = []
    with dask.config.set(scheduler="synchronous"), pytest.raises(Interrupt):
        write_image(_channels(first, 2), target, format="zarr", axes="zyxc", resume="job-1")
    done = tmp_path / ".out.zarr.resume" / ".cascade-resume" / "done"
    markers = sorted(p.name for p in done.iterdir())
    assert len(markers) == 2 * 2  # two chunks per written block
    assert {m.rsplit(".", 1)[1] for m in markers} == {"0", "1"}
    (done / markers[0]).unlink()  # that block is half marked: it must be computed again
    second: list[tuple[int, ...]] = []
    with dask.config.set(scheduler="synchronous"):
        write_image(_channels(second, None), target, format="zarr", axes="zyxc", resume="job-1")
    assert len(second) == len(set(second)) == 4 - 1, (first, second)
    stored = zarr.open_array(store=target, path="exported_data", mode="r")
    assert stored.chunks == (64, 64, 64, 1)
    assert np.array_equal(stored[:], whole)
    blocks = _channels([], None)
    assert for_target(blocks, (64, 64, 64, 1)) is blocks  # block edges on chunk edges: as it is
    assert for_target(blocks, (32, 16, 64, 2)) is blocks
    assert for_target(blocks, (128, 64, 64, 1)).chunks == ((128,), (64, 64), (64,), (1, 1))
    assert for_target(blocks, (48, 64, 64, 2)).chunks[0] == (48, 48, 32)


@pytest.mark.parametrize("resume", ["job-1", None])
def test_failed_zarr_store_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resume: str | None
) -> None:
    """One chunk of a block fails (disk full) while its sibling chunk is still being written: zarr
    raises at once and lets the sibling finish later, which must not recreate the removed output."""
    import asyncio
    import errno

    from zarr.storage import LocalStore

    from cascade.errors import ExportError

    original = LocalStore.set

    async def set_slowly(self: LocalStore, key: str, value: object) -> None:
        if key.startswith("exported_data/") and not key.endswith("zarr.json"):
            if key.endswith("/1") or key.endswith(".1"):  # channel 1 of a block: the disk is full
                raise OSError(errno.ENOSPC, "No space left on device")
            await asyncio.sleep(0.8)  # channel 0: still writing when the error is raised
        await original(self, key, value)  # type: ignore[arg-type]

    monkeypatch.setattr(LocalStore, "set", set_slowly)
    target = tmp_path / "out.zarr"
    with dask.config.set(scheduler="synchronous"), pytest.raises(ExportError, match="disk is full"):
        write_image(_channels([], None), str(target), format="zarr", axes="zyxc", resume=resume)
    assert list(tmp_path.iterdir()) == []
    import time

    time.sleep(1.0)  # the sibling writes are over by now: still nothing
    assert list(tmp_path.iterdir()) == []
