"""Plain helpers shared by several test files (fixtures live in ``conftest.py``)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def blobs(seed: int, size: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """A noisy image of bright disks and its two-class truth (1 = disk, 2 = background)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    truth = np.full((size, size), 2, np.uint8)
    for _ in range(6):
        cy, cx, r = rng.integers(10, size - 10, 2).tolist() + [int(rng.integers(4, 9))]
        truth[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1
    image = np.where(truth == 1, 170, 70) + rng.normal(0, 30, truth.shape)
    return np.clip(image, 0, 255).astype(np.uint8), truth


def sparse(truth: np.ndarray, seed: int, every: int = 17) -> np.ndarray:
    """Keep about one label in ``every`` of ``truth`` (0 elsewhere), seeded."""
    rng = np.random.default_rng(seed)
    keep = rng.random(truth.shape) < 1.0 / every
    return np.where(keep, truth, 0).astype(np.uint8)


def cascade(
    *args: object, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the ``cascade`` command in a subprocess (this interpreter), capturing its output.

    ``env`` holds variables set over this process's environment.
    """
    return subprocess.run(
        [sys.executable, "-m", "cascade", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def slurm_node_idle() -> bool:
    """Whether a SLURM node is idle (or partly used) to take test jobs."""
    if shutil.which("sinfo") is None:
        return False
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and bool({"idle", "mix"} & set(done.stdout.split()))


def stop_when_done(proc: subprocess.Popen[str], done: Path, blocks: int, seconds: float) -> None:
    """Step a running command in 50 ms slices between SIGSTOPs until ``blocks`` output blocks are done.

    Its progress (the files in ``done``) is read while it is stopped, so it cannot finish between
    the check and what the caller sends next; it is left stopped (or finished, or past ``seconds``).
    """
    deadline = time.time() + seconds
    while proc.poll() is None and time.time() < deadline:
        proc.send_signal(signal.SIGCONT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGSTOP)
        if done.is_dir() and len(list(done.iterdir())) >= blocks:
            break


#: A ``python -c`` prefix that runs ``python -m cascade ARGS`` with SIGINT unblocked and at its default
#: disposition, as a terminal's Ctrl-C finds it; a test runner's worker may pass on a blocked or ignored
#: SIGINT (both survive ``exec``), and Python then never raises KeyboardInterrupt.
CTRL_C_READY = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
    "signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, '-m', 'cascade', *sys.argv[1:]])",
]


def sigint_state(pid: int) -> str:
    """The blocked / ignored / caught signal masks of a process (Linux), for an assertion message."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return "(no /proc status)"
    return " ".join(
        line.replace("\t", "") for line in lines if line.startswith(("SigBlk", "SigIgn", "SigCgt"))
    )
