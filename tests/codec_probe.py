"""Guard for tests that decode compressed TIFFs: try each imagecodecs codec in a subprocess first.

imagecodecs builds have died by a signal on some CPUs. A codec that crashes in the probe is
skipped with the reason, so a third-party crash never takes the test run down; a codec that
fails in any other way is a real failure.
"""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

_PROBE = """
import sys, numpy as np, tifffile, imagecodecs
codec = sys.argv[1]
if codec == "lzma" and not imagecodecs.LZMA.available:
    sys.exit(3)
a = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
tifffile.imwrite(sys.argv[2], a, compression=codec, tile=(32, 32))
b = tifffile.imread(sys.argv[2])
assert b.shape == a.shape
"""


@functools.cache
def codec_problem(codec: str) -> str | None:
    """None if tifffile writes and reads ``codec`` here, else why the tests of it are skipped."""
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, codec, str(Path(folder) / "probe.tif")],
            capture_output=True,
            text=True,
            timeout=120,
        )
    if done.returncode < 0:
        return f"imagecodecs' {codec} codec died by {signal.Signals(-done.returncode).name} on this CPU"
    if done.returncode == 3:
        return f"this imagecodecs build has no {codec} codec"
    assert done.returncode == 0, done.stderr  # a plain failure is a real failure
    return None


def require_codec(codec: str) -> None:
    """Skip the calling test if ``codec`` crashes here (see :func:`codec_problem`)."""
    reason = codec_problem(codec)
    if reason is not None:
        pytest.skip(reason)
