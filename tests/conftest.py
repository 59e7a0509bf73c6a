"""Shared fixtures and paths for the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest
import tifffile
from helpers import blobs, cascade, sparse

#: Real data shared beside the checkout (``../shared/data``); CI has it too.
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder, or skip when this checkout has none beside it."""
    if not DATA.is_dir():
        pytest.skip(f"shared data not found at {DATA}")
    return DATA


SMALL_FEATURES = """
features:
  GaussianSmoothing: [0.7, 1.6]
  GaussianGradientMagnitude: [1.0]
  HessianOfGaussianEigenvalues: [1.6]
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Training data, a trained 2-stage project and a second image to predict."""
    root = tmp_path_factory.mktemp("cli")
    raw, truth = blobs(1, size=96)
    tifffile.imwrite(root / "train.tif", raw)
    tifffile.imwrite(root / "train_labels.tif", sparse(truth, 2))
    tifffile.imwrite(root / "new.tif", blobs(5, size=96)[0])
    (root / "features.yaml").write_text(SMALL_FEATURES)
    done = cascade(
        "train",
        "--project",
        root / "p.cascade",
        "--raw_data",
        root / "train.tif",
        "--labels",
        root / "train_labels.tif",
        "--stages",
        "2",
        "--features",
        root / "features.yaml",
        "--classes",
        "disk,background",
        "--trees",
        "10",
    )
    assert done.returncode == 0, done.stderr
    assert "trained 2 stage(s)" in done.stdout
    return root
