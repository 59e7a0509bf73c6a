"""An interrupted Object Classification export resumes like a pixel export (``tests/test_resume.py``).

A real ``cascade --headless`` OC run is stopped with Ctrl-C after some output blocks are written:
no output looks complete, the scratch folder (the object label image) is kept, and the same command
then finishes with output identical to an uninterrupted run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from helpers import CTRL_C_READY, sigint_state, stop_when_done

from cascade.io import open_image

OC = "ilp/ilastik__ilastik/object_classification"


def _command(data_dir: Path, out: str) -> list[str]:
    inputs = data_dir / OC / "inputdata"
    return [
        sys.executable,
        "-m",
        "cascade",
        "--headless",
        f"--project={data_dir / OC / 'ObjectClassification2d_wPred.ilp'}",
        f"--raw_data={inputs / '2d.h5/data'}",
        f"--prediction_maps={inputs / '2d_Probabilities.h5/exported_data'}",
        "--export_source=Object Probabilities",
        "--output_format=zarr",
        "--block-shape={'x': 32, 'y': 32}",
        "--threads=1",
        f"--output_filename_format={out}",
    ]


def test_interrupted_object_run_resumes(data_dir: Path, tmp_path: Path) -> None:
    # the object labels go through the scratch folder even for this small image (as for a large one)
    env = {**os.environ, "DASK_CASCADE__IN_MEMORY_STAGE": "0"}
    reference = subprocess.run(
        _command(data_dir, f"{tmp_path}/ref"), capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert reference.returncode == 0, reference.stderr
    assert not list(tmp_path.glob(".cascade-scratch-*"))  # removed after a complete run
    command = _command(data_dir, f"{tmp_path}/out")
    proc = subprocess.Popen(
        [*CTRL_C_READY, *command[3:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    done = tmp_path / ".out.zarr.resume" / ".cascade-resume" / "done"
    # the small blocks make the writing long enough (1344 blocks) to be interrupted in the middle
    stop_when_done(proc, done, 2, 300)
    assert proc.poll() is None, "the run finished within one 50 ms slice"
    written = len(list(done.iterdir()))
    signals = sigint_state(proc.pid)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, f"{err} | {out} | {signals}"
    assert not (tmp_path / "out.zarr").exists()  # nothing looks complete
    (scratch,) = tmp_path.glob(".cascade-scratch-*")
    assert list(scratch.glob("*.zarr"))  # the object labels, kept for the next run
    resumed = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr
    reused = re.search(r"resuming .*out\.zarr: (\d+) block\(s\)", resumed.stdout)
    assert reused is not None and int(reused.group(1)) >= written, resumed.stdout
    assert not scratch.exists()
    a = open_image(str(tmp_path / "out.zarr")).data.compute()
    b = open_image(str(tmp_path / "ref.zarr")).data.compute()
    assert a.shape == b.shape and np.array_equal(a, b)
    assert a.shape[-1] == 2 and np.unique(a).size > 3  # two classes, many objects
