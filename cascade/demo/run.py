"""``cascade demo``: a two-stage autocontext on a bundled crop of real EM data (ISBI 2012).

Two 256x256 slices are labelled with sparse scribbles drawn from the ground truth, a
two-stage cascade is trained, a third slice is predicted, and the per-stage scores
against the ground truth are reported. Outputs: the project, both stages'
probabilities (hdf5) and a PNG with raw data, stage 1, stage 2 and the ground truth
side by side.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import dask
import numpy as np
from dask.base import compute

from ..errors import CascadeError
from ..features import parse_feature_selection
from ..forest import MAX_SEED
from ..io import write_image
from ..pipeline import Stage, predict
from ..project import save_cascade
from ..training import TrainingImage, fit, scribble_labels

__all__ = ["DemoReport", "load_demo_data", "membrane_scores", "run_demo"]

#: The demo's features: edges and ridges at small and medium scales (20 per channel).
DEMO_FEATURES = {
    "features": {
        "GaussianSmoothing": [0.7, 1.6, 3.5],
        "LaplacianOfGaussian": [1.0, 3.5],
        "GaussianGradientMagnitude": [1.0, 3.5],
        "DifferenceOfGaussians": [1.6, 5.0],
        "StructureTensorEigenvalues": [1.0, 3.5],
        "HessianOfGaussianEigenvalues": [1.0, 1.6, 3.5],
    }
}


@dataclass(frozen=True)
class DemoReport:
    """Scores of each stage on the held-out slice and where the outputs went."""

    accuracy: tuple[float, ...]
    membrane_f1: tuple[float, ...]
    outputs: tuple[str, ...]
    seconds: float

    def table(self) -> str:
        """The scores as a small text table.

        Returns
        -------
        str
            One header line and one line per stage.
        """
        rows = ["stage  accuracy  membrane F1"]
        rows += [
            f"{k + 1:>5}  {a:8.3f}  {f:11.3f}"
            for k, (a, f) in enumerate(zip(self.accuracy, self.membrane_f1))
        ]
        return "\n".join(rows)


def load_demo_data() -> tuple[np.ndarray, np.ndarray]:
    """The bundled crop: raw (3, 256, 256) uint8 and truth (1 = membrane, 2 = cell interior).

    Returns
    -------
    raw, truth : numpy.ndarray
        Both of shape (3, 256, 256), uint8.
    """
    with resources.files("cascade.demo").joinpath("data/isbi2012_crop.npz").open("rb") as fh:
        data = np.load(fh)
        return data["raw"], data["truth"]


def membrane_scores(segmentation: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(pixel accuracy, F1 of class 1 = membrane) of a segmentation against the truth.

    Parameters
    ----------
    segmentation : numpy.ndarray
        Predicted classes (1 = membrane).
    truth : numpy.ndarray
        True classes, same shape.

    Returns
    -------
    accuracy, f1 : float
        The fraction of equal pixels and the membrane class's F1 score.
    """
    predicted, actual = segmentation == 1, truth == 1
    tp = float(np.sum(predicted & actual))
    precision = tp / max(float(predicted.sum()), 1.0)
    recall = tp / max(float(actual.sum()), 1.0)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return float(np.mean(segmentation == truth)), f1


def _panel(images: list[np.ndarray], gap: int = 4) -> np.ndarray:
    height = max(im.shape[0] for im in images)
    parts = []
    for im in images:
        parts += [im, np.full((height, gap), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=1)


def run_demo(output: str | Path = "cascade-demo", *, seed: int = 0, trees: int = 100) -> DemoReport:
    """Train, predict and score the bundled demo; write outputs into ``output``.

    Parameters
    ----------
    output : str or Path
        Folder for the project, the predictions and a comparison image (created if missing).
    seed : int
        Seed of the forests, 0 to ``MAX_SEED - 1``.
    trees : int
        Trees per stage.

    Returns
    -------
    DemoReport
        The scores per stage, the written files and the time taken.

    Raises
    ------
    CascadeError
        An invalid seed or tree count, or an output that cannot be written.
    """
    start = time.perf_counter()
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < MAX_SEED:
        raise CascadeError(f"seed must be a whole number from 0 to {MAX_SEED - 1}, not {seed!r}")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    raw, truth = load_demo_data()
    selection = parse_feature_selection(DEMO_FEATURES)
    names = ("membrane", "cell interior")
    images = []
    for i in (0, 1):
        labels = scribble_labels(truth[i], fraction=0.03, seed=seed + i)
        images.append(TrainingImage(raw[i][..., None], "yxc", (labels, labels)))
    with dask.config.set(scheduler="threads"):
        cascade = fit(images, [Stage(selection, names), Stage(selection, names)], trees=trees, seed=seed)
        project = save_cascade(cascade, out / "demo.cascade")
        results = predict(cascade, raw[2][..., None], axes="yxc", chunks=(128, 128, 1))
        probabilities = compute(*[r.probabilities for r in results])
    scores = [membrane_scores(np.argmax(p, axis=-1) + 1, truth[2]) for p in probabilities]
    written = [str(project)]
    for k, p in enumerate(probabilities):
        written += write_image(
            p, str(out / f"test-slice_Probabilities Stage {k + 1}.h5"), format="compressed hdf5", axes="yxc"
        )
    from imageio.v3 import imwrite

    from ..io import atomic_files

    picture = _panel(
        [raw[2]]
        + [(p[..., 0] * 255).astype(np.uint8) for p in probabilities]
        + [np.where(truth[2] == 1, 255, 0).astype(np.uint8)]
    )
    png = out / "demo.png"
    with atomic_files([str(png)]) as (temp,):  # a private temporary, renamed: no symlink is followed
        imwrite(temp, picture, extension=".png")
    written.append(str(png))
    return DemoReport(
        accuracy=tuple(a for a, _ in scores),
        membrane_f1=tuple(f for _, f in scores),
        outputs=tuple(written),
        seconds=time.perf_counter() - start,
    )
