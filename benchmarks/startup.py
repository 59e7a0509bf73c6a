"""Start-up wall time of the command line: ``--help`` and headless runs on a 64 x 64 image.

Each command runs as its own process in a temporary folder, once untimed (numba's cache, the
OS file cache) and then ``--runs`` times; the table shows the median and the fastest run.
Headless runs read a 64 x 64 uint8 TIFF and write ilastik's default output (compressed HDF5,
``{nickname}_Probabilities.h5``, removed before every run) with ilastik's ``PixelClass.ilp``
and with ``.cascade`` projects of one and two stages trained here. The ``import floor`` row
times a bare interpreter importing what any headless run must import (dask.array, numba ...).

    python benchmarks/startup.py                       # this checkout
    python benchmarks/startup.py --tree /tmp/old .     # compare checkouts, interleaved runs

``--tree`` puts a checkout's folder first on ``PYTHONPATH``, so the same interpreter runs that
checkout's ``cascade``. The issue's target is under 2 s for each command.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ILP = REPO.parent / "shared" / "data" / "ilp" / "ilastik__ilastik" / "api_projects" / "PixelClass.ilp"
OUTPUT = "img_Probabilities.h5"
#: What every headless run has to import: its time is the floor of a run's time.
FLOOR = "import dask.array, h5py, numba, tifffile, typer"


@dataclass(frozen=True)
class Command:
    """One timed command line: its label and its arguments after ``cascade`` (or ``python``)."""

    label: str
    args: tuple[str, ...]
    python: bool = False

    def argv(self) -> list[str]:
        """The full command line."""
        return [sys.executable, *self.args] if self.python else [*cascade_command(), *self.args]


def cascade_command() -> list[str]:
    """The ``cascade`` console script beside this interpreter, else ``python -m cascade``."""
    script = Path(sys.executable).with_name("cascade")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "cascade"]


def image(seed: int = 5, size: int = 64) -> np.ndarray:
    """A noisy uint8 image of bright disks on a dark background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    disks = np.zeros((size, size), bool)
    for _ in range(6):
        cy, cx = rng.integers(8, size - 8, 2)
        disks |= (yy - cy) ** 2 + (xx - cx) ** 2 < int(rng.integers(3, 7)) ** 2
    noisy = np.where(disks, 170, 70) + rng.normal(0, 30, disks.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def train(path: Path, stages: int) -> None:
    """Train a ``.cascade`` project of ``stages`` stages on :func:`image` with sparse labels."""
    from cascade.features import parse_feature_selection
    from cascade.pipeline import Stage
    from cascade.project.native import save_cascade
    from cascade.training import TrainingImage, fit

    raw = image(seed=1)
    truth = np.where(raw > 120, 1, 2).astype(np.uint8)
    labels = np.where(np.random.default_rng(2).random(truth.shape) < 0.06, truth, 0).astype(np.uint8)
    features = {"GaussianSmoothing": [0.7, 1.6], "GaussianGradientMagnitude": [1.0]}
    selection = parse_feature_selection({"features": features})
    model = fit(
        [TrainingImage(raw[..., None], "yxc", (labels,) * stages)],
        [Stage(selection, ("a", "b")) for _ in range(stages)],
        trees=10,
    )
    save_cascade(model, path)


def workspace(folder: Path, ilp: Path) -> list[Command]:
    """Write the input and projects into ``folder``; the commands to time."""
    import tifffile

    tifffile.imwrite(folder / "img.tif", image())
    commands = [
        Command("import floor", ("-c", FLOOR), python=True),
        Command("cascade --help", ("--help",)),
        Command("cascade --version", ("--version",)),
    ]
    if ilp.is_file():
        commands.append(Command("headless PixelClass.ilp", ("--headless", f"--project={ilp}", "img.tif")))
    else:
        print(f"{ilp} not found: skipping the .ilp run", file=sys.stderr)
    for stages in (1, 2):
        train(folder / f"p{stages}.cascade", stages)
        args = ("--headless", f"--project=p{stages}.cascade", "img.tif")
        commands.append(Command(f"headless {stages}-stage .cascade", args))
    return commands


def environment(tree: Path | None) -> dict[str, str]:
    """The environment of a run: ``tree`` first on ``PYTHONPATH``."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree.resolve()), env.get("PYTHONPATH")]))
    return env


def run_once(command: Command, folder: Path, env: dict[str, str]) -> tuple[float, int, str]:
    """Run ``command`` in ``folder``: wall seconds, exit code and the end of its stderr."""
    (folder / OUTPUT).unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run(command.argv(), cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    return seconds, done.returncode, done.stderr.strip()[-400:]


def measure(
    commands: list[Command], trees: list[Path | None], folder: Path, runs: int
) -> dict[tuple[str, int], list[float] | None]:
    """Wall times per (command, tree index): a warm-up, then ``runs`` timed runs, trees interleaved.

    A command that fails in its warm-up (like ``--version`` where there is none) maps to None.
    """
    envs = [environment(tree) for tree in trees]
    times: dict[tuple[str, int], list[float] | None] = {}
    for command in commands:
        for i, env in enumerate(envs):
            _, code, stderr = run_once(command, folder, env)
            times[command.label, i] = [] if code == 0 else None
            if code != 0 and command.args != ("--version",):
                print(f"{command.label} failed (tree {trees[i]}): {stderr}", file=sys.stderr)
    for _ in range(runs):
        for command in commands:
            for i, env in enumerate(envs):
                timed = times[command.label, i]
                if timed is not None:
                    timed.append(run_once(command, folder, env)[0])
    return times


def table(
    commands: list[Command], trees: list[Path | None], times: dict[tuple[str, int], list[float] | None]
) -> str:
    """The results as a plain-text table: median and minimum seconds per tree."""
    width = max(len(c.label) for c in commands)
    names = [str(tree) if tree is not None else "installed" for tree in trees]
    head = f"{'command':<{width}}" + "".join(f" | {name[-18:]:>18}" for name in names)
    sub = f"{'':<{width}}" + " | median s     min s" * len(trees)
    lines = [head, sub, "-" * len(sub)]
    for command in commands:
        cells = ""
        for i in range(len(trees)):
            timed = times[command.label, i]
            cells += " | " + (
                f"{statistics.median(timed):8.2f}  {min(timed):8.2f}" if timed else f"{'n/a':>8}  {'n/a':>8}"
            )
        lines.append(f"{command.label:<{width}}{cells}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (default 5)")
    parser.add_argument("--ilp", type=Path, default=ILP, help="ilastik project (default: PixelClass.ilp)")
    parser.add_argument(
        "--tree", type=Path, action="append", help="checkout to run (repeatable; default: the installed one)"
    )
    options = parser.parse_args()
    trees: list[Path | None] = list(options.tree or [None])
    folder = Path(tempfile.mkdtemp(prefix="cascade-startup-"))
    try:
        commands = workspace(folder, options.ilp.resolve())
        times = measure(commands, trees, folder, options.runs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(table(commands, trees, times))
    print(f"{options.runs} runs each, 64 x 64 uint8 TIFF -> compressed HDF5; {os.cpu_count()} CPUs")
    if sys.flags.dont_write_bytecode:
        print("PYTHONDONTWRITEBYTECODE is set: modules without cached bytecode compile on every start")


if __name__ == "__main__":
    main()
