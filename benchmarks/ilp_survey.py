"""Run every ilastik project under ../shared/data/ilp through ``cascade predict`` on its own data.

For each .ilp: the outcome (predicted, with output shape, time and a sanity check of the
probabilities; or the one-line reason it cannot run). Projects whose training image is stored
inside the project are predicted on the image next to the project if there is one.

    python benchmarks/ilp_survey.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ilp"


def _input_for(path: Path) -> tuple[str | None, str | None, str]:
    """(input path, axes, note) for a project's first lane."""
    from cascade.errors import CascadeError
    from cascade.project.ilp import read_ilp

    try:
        project = read_ilp(path)
    except CascadeError as err:
        return None, None, str(err)
    for lane in project.lanes:
        if lane.location == "ProjectInternal" and lane.internal_path:
            # ilastik's path convention reaches the copy stored inside the project
            return str(path) + lane.internal_path, lane.axes, "training image stored in the project"
        if lane.exists and lane.resolved_path:
            return lane.resolved_path + (lane.internal_path or ""), lane.axes, ""
    missing = ", ".join(lane.file_path for lane in project.lanes) or "no lanes"
    return None, None, f"training data not present here ({missing})"


def main() -> None:
    rows = []
    for path in sorted(DATA.rglob("*.ilp")):
        source, _axes, note = _input_for(path)
        name = str(path.relative_to(DATA))
        if source is None:
            done = subprocess.run(
                [sys.executable, "-m", "cascade", "info", str(path)], capture_output=True, text=True
            )
            reason = done.stderr.strip() or note
            rows.append((name, "not run", note if done.returncode == 0 else reason))
            continue
        with tempfile.TemporaryDirectory() as out:
            cmd = [
                sys.executable,
                "-m",
                "cascade",
                "predict",
                f"--project={path}",
                "--output_format=numpy",
                f"--output_filename_format={out}/result",
                source,
            ]
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                rows.append((name, "error", done.stderr.strip().splitlines()[-1]))
                continue
            result = np.load(Path(out) / "result.npy")
            sums = result.sum(axis=-1)
            sane = bool(
                np.all(result >= 0) and np.all(result <= 1) and np.allclose(sums[sums > 0], 1, atol=1e-4)
            )
            rows.append(
                (
                    name,
                    "predicted",
                    f"{result.shape} {result.dtype} in {seconds:.1f} s, "
                    f"probabilities {'valid' if sane else 'INVALID'}; {note}".rstrip("; "),
                )
            )
    width = max(len(r[0]) for r in rows)
    for name, outcome, detail in rows:
        print(f"{name:<{width}}  {outcome:<9}  {detail}")


if __name__ == "__main__":
    main()
