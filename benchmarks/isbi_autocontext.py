"""Does the second stage help? Membrane F1 on ISBI 2012 for stage 1 and stage 2, per training mode.

Trains on a few slices with sparse scribbles drawn from the ground truth (a few percent of
pixels), predicts the remaining slices, and prints per-stage pixel accuracy and membrane F1 for
ilastik's in-sample mode and cascade's out-of-bag mode.

    python benchmarks/isbi_autocontext.py                  # 3 training slices, 27 test slices
    python benchmarks/isbi_autocontext.py --test 5         # faster: 5 test slices
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import dask
import numpy as np
import tifffile

from cascade._malloc import tune_malloc
from cascade.demo import membrane_scores
from cascade.features import FeatureSelection
from cascade.pipeline import Stage, predict
from cascade.scribbles import scribble_labels
from cascade.training import TrainingImage, fit

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "isbi2012"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--train", type=int, nargs="+", default=[0, 10, 20], help="training slices")
    parser.add_argument("--test", type=int, default=27, help="number of test slices (the others)")
    parser.add_argument("--fraction", type=float, default=0.02, help="share of labelled pixels")
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tune_malloc()
    raw = tifffile.imread(args.data / "train-volume.tif")
    truth = np.where(tifffile.imread(args.data / "train-labels.tif") == 0, 1, 2).astype(np.uint8)
    test = [i for i in range(raw.shape[0]) if i not in args.train][: args.test]
    selection = FeatureSelection.ilastik_default()
    names = ("membrane", "cell interior")
    images = []
    for i in args.train:
        labels = scribble_labels(truth[i], fraction=args.fraction, seed=args.seed + i)
        images.append(TrainingImage(raw[i][..., None], "yxc", (labels, labels)))
    labelled = sum(int((im.labels[0] > 0).sum()) for im in images)
    print(
        f"training slices {args.train}: {labelled} labelled pixels "
        f"({100 * labelled / (len(args.train) * raw[0].size):.1f} %), test slices: {len(test)}"
    )
    rows = []
    for mode in ("in-sample", "oob"):
        start = time.perf_counter()
        with dask.config.set(scheduler="threads"):
            model = fit(
                images,
                [Stage(selection, names), Stage(selection, names)],
                trees=args.trees,
                seed=args.seed,
                mode=mode,
            )
            volume = raw[test][..., None]
            results = predict(model, volume, axes="tyxc", chunks=(1, 512, 512, 1))
            segmentations = dask.compute(*[r.segmentation[..., 0] for r in results])
        for k, seg in enumerate(segmentations):
            accuracy, f1 = membrane_scores(seg, truth[test])
            rows.append((mode, k + 1, accuracy, f1))
        print(f"  {mode}: {time.perf_counter() - start:.0f} s")
    print(f"{'training mode':>14} {'stage':>5} {'accuracy':>9} {'membrane F1':>12}")
    for mode, stage, accuracy, f1 in rows:
        print(f"{mode:>14} {stage:>5} {accuracy:9.4f} {f1:12.4f}")


if __name__ == "__main__":
    main()
