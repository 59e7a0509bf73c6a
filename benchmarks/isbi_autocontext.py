"""Does the second stage help? Membrane F1 of autocontext stages 1/2/3 per training variant (issue 15).

Protocol: a few training slices get sparse labels drawn from the dense ground truth (random
pixels, or scribbles: short strokes inside membranes and inside cells, cascade.scribbles), at a
budget given as a share of their pixels; held-out test slices are predicted. Metric: membrane F1
on the test slices, pooled over all their pixels (membrane = class 1 = positive; a pixel is
predicted membrane when its membrane probability is the largest, ties to membrane;
F1 = 2 TP / (2 TP + FP + FN)). Each (dataset, budget, labels, variant) runs once per seed (the
seed draws the labels, the folds and the forests); the table shows mean +- sample std over seeds.

Datasets: ``isbi`` (ISBI 2012, 30 slices, membrane = label 0) and ``drosophila`` (Gerhard et al.
2013 ssTEM stack 1 crop, 20 slices, membrane = stack1_membranes_crop == 1, rest = everything else).

Variants (benchmarks/autocontext_variants.py): ``ilastik`` (= in-sample), ``default`` (= oob,
cascade today), ``xfit-image``, ``xfit-block``, with modifiers ``+wide +all +offsets +balanced +lean``.

    python benchmarks/isbi_autocontext.py --help
    nice -n 10 python benchmarks/isbi_autocontext.py --dataset isbi --budget 0.02 --labels random \\
        --variants ilastik default xfit-block --trees 20 --crop 256
    python benchmarks/isbi_autocontext.py --figure docs/accuracy.png --variants default --seeds 0

Each run's row is appended to ``--results`` (default benchmarks/results/accuracy.md) as soon as it
is done, the summary table at the end.
"""

from __future__ import annotations

import os

# one thread per process unless the caller says otherwise (the machine is shared)
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import tifffile  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from autocontext_variants import (  # noqa: E402
    membrane_f1,
    parse_variant,
    run_cascade,
    run_library,
    slice_features,
    summary,
)

from cascade.features import FeatureSelection  # noqa: E402
from cascade.training import scribble_labels  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results" / "accuracy.md"
#: training slices per dataset (test slices are spread evenly over the others, none adjacent)
TRAIN = {"isbi": [0, 10, 20], "drosophila": [0, 7, 14]}


@dataclass
class Dataset:
    """Raw slices (n, y, x) uint8 and truth (n, y, x): 1 = membrane, 2 = the rest."""

    name: str
    raw: np.ndarray
    truth: np.ndarray
    train: list[int]
    test: list[int]


def load(name: str, root: Path, n_test: int, crop: int | None) -> Dataset:
    """Read a dataset, crop the centre to ``crop`` x ``crop``, pick training and test slices."""
    if name == "isbi":
        raw = tifffile.imread(root / "isbi2012" / "train-volume.tif")
        truth = np.where(tifffile.imread(root / "isbi2012" / "train-labels.tif") == 0, 1, 2)
    elif name == "drosophila":
        folder = root / "sstem_drosophila_vnc_gerhard2013"
        raw = tifffile.imread(folder / "stack1_raw_crop.tif")
        truth = np.where(tifffile.imread(folder / "stack1_membranes_crop.tif") == 1, 1, 2)
    else:
        raise SystemExit(f"unknown dataset {name!r}: isbi or drosophila")
    if crop:
        y0, x0 = (raw.shape[1] - crop) // 2, (raw.shape[2] - crop) // 2
        raw, truth = raw[:, y0 : y0 + crop, x0 : x0 + crop], truth[:, y0 : y0 + crop, x0 : x0 + crop]
    train = TRAIN[name]
    # test slices are never next to a training slice (neighbouring sections look alike)
    others = [i for i in range(raw.shape[0]) if min(abs(i - t) for t in train) > 1]
    pick = np.linspace(0, len(others) - 1, min(n_test, len(others))).round().astype(int)
    return Dataset(name, np.ascontiguousarray(raw), truth.astype(np.uint8), train, [others[j] for j in pick])


def draw_labels(truth: np.ndarray, mode: str, fraction: float, seed: int) -> np.ndarray:
    """Sparse labels of one slice: ``random`` pixels or ``scribbles``, about ``fraction`` of its pixels."""
    if mode == "scribbles":
        return scribble_labels(truth, fraction=fraction, seed=seed)
    rng = np.random.default_rng(seed)
    n = max(int(round(fraction * truth.size)), 2)
    flat = np.zeros(truth.size, np.uint8)
    chosen = rng.choice(truth.size, n, replace=False)
    flat[chosen] = truth.ravel()[chosen]
    return flat.reshape(truth.shape)


def cpu_model() -> str:
    """The CPU model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def append(path: Path, text: str) -> None:
    """Append text to the results file (created with its folder if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(text)


def table(results: dict[tuple[str, ...], list[list[float]]], stages: int) -> str:
    """Markdown: one row per (dataset, budget, labels, variant), stage F1 mean +- std over seeds."""
    head = "| dataset | budget | labels | variant | seeds | " + " | ".join(
        f"stage {k + 1}" for k in range(stages)
    )
    rows = [head + " | 2 - 1 |", "|" + "---|" * (6 + stages)]
    for key, runs in results.items():
        cells = []
        for k in range(stages):
            mean, std = summary([r[k] for r in runs])
            cells.append(f"{mean:.3f} ± {std:.3f}")
        gain = summary([r[1] - r[0] for r in runs]) if stages > 1 else (0.0, 0.0)
        rows.append(
            f"| {' | '.join(key)} | {len(runs)} | {' | '.join(cells)} | {gain[0]:+.3f} ± {gain[1]:.3f} |"
        )
    return "\n".join(rows) + "\n"


def figure(path: Path, data: Dataset, probs: list[dict[int, np.ndarray]], title: str) -> None:
    """Raw, stage 1 and stage 2 membrane probability of the first test slice, with each stage's F1 on it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    i = data.test[0]
    panels = [(data.raw[i], f"raw (test slice {i})")]
    for k, p in enumerate(probs[:2]):
        f1 = membrane_f1({i: p[i]}, data.truth)
        panels.append((p[i][..., 0], f"stage {k + 1}: membrane probability, F1 {f1:.3f}"))
    panels.append((data.truth[i] == 1, "ground truth membrane"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.4))
    for ax, (image, name) in zip(axes, panels):
        ax.imshow(image, cmap="gray" if name.startswith("raw") else "magma", interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=DATA,
        help="folder holding isbi2012/ and sstem_drosophila_vnc_gerhard2013/",
    )
    parser.add_argument("--dataset", nargs="+", default=["isbi"], choices=["isbi", "drosophila"])
    parser.add_argument(
        "--budget", type=float, nargs="+", default=[0.02], help="share of training pixels labelled"
    )
    parser.add_argument("--labels", nargs="+", default=["random"], choices=["random", "scribbles"])
    parser.add_argument(
        "--variants", nargs="+", default=["ilastik", "default"], help="feed[+modifier...] or preset"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--stages", type=int, default=3)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--test", type=int, default=4, help="number of test slices")
    parser.add_argument(
        "--crop", type=int, default=None, help="centre crop size in pixels (default: whole 512x512 slices)"
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="markdown file the rows are appended to"
    )
    parser.add_argument(
        "--figure", type=Path, default=None, help="PNG of raw / stage 1 / stage 2 (first run)"
    )
    args = parser.parse_args()
    try:
        args.variants = [parse_variant(v) for v in args.variants]
    except ValueError as err:
        parser.error(str(err))
    if args.stages < 1 or args.trees < 1 or args.test < 1:
        parser.error("--stages, --trees and --test must be >= 1")
    if not all(0 < b < 1 for b in args.budget):
        parser.error("--budget values are shares of the pixels, between 0 and 1 (0.02 = 2 %)")
    return args


def run_dataset(
    args: argparse.Namespace, name: str, results: dict[tuple[str, ...], list[list[float]]]
) -> None:
    """Every (budget, labels, seed, variant) run of one dataset; rows printed and appended as they come."""
    data = load(name, args.data, args.test, args.crop)
    size = f"{data.raw.shape[1]}x{data.raw.shape[2]} px"
    print(f"{name}: train slices {data.train}, test slices {data.test}, {size}")
    selection = FeatureSelection.ilastik_default()
    raw_features = {i: slice_features(data.raw[i][..., None], selection) for i in [*data.train, *data.test]}
    for budget, mode, seed in itertools.product(args.budget, args.labels, args.seeds):
        labels = {i: draw_labels(data.truth[i], mode, budget, seed * 100 + i) for i in data.train}
        for variant in args.variants:
            start = time.perf_counter()
            if variant.feed.startswith("lib-"):
                slices = {i: data.raw[i] for i in [*data.train, *data.test]}
                probs = run_library(
                    variant.feed[4:],
                    slices,
                    labels,
                    data.test,
                    class_names=("membrane", "rest"),
                    stages=args.stages,
                    trees=args.trees,
                    seed=seed,
                )
            else:
                probs = run_cascade(
                    variant,
                    raw_features,
                    labels,
                    data.test,
                    n_classes=2,
                    stages=args.stages,
                    trees=args.trees,
                    seed=seed,
                )
            f1s = [membrane_f1(p, data.truth) for p in probs]
            key = (name, f"{100 * budget:g} %", mode, variant.name)
            results.setdefault(key, []).append(f1s)
            cells = " | ".join(f"{v:.4f}" for v in f1s)
            row = f"| {' | '.join(key)} | {seed} | {cells} | {time.perf_counter() - start:.0f} |"
            print(row, flush=True)
            append(args.results, row + "\n")
            if args.figure is not None and args.stages >= 2:
                title = f"{name}, {100 * budget:g} % {mode} labels, variant {variant.name}, {args.trees} trees, seed {seed}"
                figure(args.figure, data, probs, title)
                print(f"figure written to {args.figure}")
                args.figure = None


def main() -> None:
    """Run the study, append every row to the results file, print the summary table."""
    args = parse_args()
    cpu = f"{cpu_model()}, {os.cpu_count()} logical cores, 1 thread per process"
    print(f"CPU: {cpu}")
    settings = (
        f"trees {args.trees}, stages {args.stages}, test slices {args.test}, crop {args.crop or 'none'}"
    )
    columns = " | ".join(f"F1 stage {k + 1}" for k in range(args.stages))
    append(
        args.results,
        f"\n## run {time.strftime('%Y-%m-%d %H:%M:%S')} UTC: {settings}\nCPU: {cpu}\n\n"
        f"| dataset | budget | labels | variant | seed | {columns} | s |\n"
        + "|"
        + "---|" * (6 + args.stages)
        + "\n",
    )
    results: dict[tuple[str, ...], list[list[float]]] = {}
    for name in args.dataset:
        run_dataset(args, name, results)
    summary_table = table(results, args.stages)
    print(f"\nCPU: {cpu}; {settings}\n")
    print(summary_table)
    append(args.results, f"\nSummary ({settings}), mean ± std over seeds {args.seeds}:\n\n{summary_table}")


if __name__ == "__main__":
    main()
