"""Forest prediction throughput: cascade's packed-forest kernel against scikit-learn.

For each workload (training rows x features x classes), a 100-tree scikit-learn forest is
trained on synthetic data, packed with :func:`cascade.forest.pack_sklearn`, and both predict
the same float32 pixels. With 2 threads scikit-learn gets ``n_jobs=2`` (its trees handed out to
the threads in turn) and cascade ``n_threads=2`` (ranges of pixels handed out to the threads in
turn, as dask hands out chunks).

Times are the best of ``--repeats`` wall-clock runs, scikit-learn's and cascade's interleaved
(the machines are shared: compare the ratio, not the absolute numbers). Run with ``python benchmarks/forest.py``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from cascade.forest import PackedForest, pack_sklearn, predict_proba
from cascade.forest._layout import compact_layout


def make_workload(
    rows: int, features: int, classes: int, pixels: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training set and pixels from one distribution: noisy, non-linear class boundaries.

    The label noise makes the fully grown trees deep (like real pixel labels), which is the
    expensive case for prediction.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows + pixels, features), dtype=np.float32)
    weights = rng.standard_normal((features, classes)).astype(np.float32)
    score = x @ weights + 0.5 * np.sin(3 * x[:, :classes]) + rng.standard_normal((rows + pixels, classes))
    labels = (np.argmax(score, axis=1) + 1).astype(np.uint8)
    return x[:rows], labels[:rows], np.ascontiguousarray(x[rows:])


def best_times(runs: Sequence[Callable[[], object]], repeats: int) -> list[float]:
    """Smallest wall-clock time of each run over ``repeats`` rounds, the runs interleaved.

    Interleaving (a, b, a, b, ...) gives every run the same share of a shared machine's load.
    """
    times = [float("inf")] * len(runs)
    for _ in range(repeats):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            run()
            times[i] = min(times[i], time.perf_counter() - start)
    return times


def cascade_threads(forest: PackedForest, pixels: np.ndarray, threads: int) -> np.ndarray:
    """Predict ``pixels`` on ``threads`` threads (ranges of rows taken by the next free thread)."""
    return predict_proba(forest, pixels, n_threads=threads)


#: Training sets (rows, features, classes) measured by default.
WORKLOADS = [(10000, 40, 2), (10000, 40, 6), (50000, 60, 2), (50000, 60, 6)]


def parse_workload(text: str) -> tuple[int, int, int]:
    """``"10000x40x2"`` -> (rows, features, classes)."""
    parts = text.lower().split("x")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"workload must look like ROWSxFEATURESxCLASSES, got {text!r}")
    rows, features, classes = (int(p) for p in parts)
    return rows, features, classes


def run_workload(workload: tuple[int, int, int], args: argparse.Namespace) -> tuple[list[str], float]:
    """Table rows for one workload, and the seconds taken to build the compact layout."""
    rows, features, classes = workload
    x, y, pixels = make_workload(rows, features, classes, args.pixels, args.seed)
    model = RandomForestClassifier(n_estimators=args.trees, random_state=args.seed, n_jobs=2).fit(x, y)
    forest = pack_sklearn(model, classes)
    start = time.perf_counter()
    compact_layout(forest)
    layout_s = time.perf_counter() - start
    predict_proba(forest, pixels[:1000])  # numba compiles or loads its cache here, untimed
    depth = np.mean([tree.get_depth() for tree in model.estimators_])
    lines = []
    for threads in args.threads:
        model.n_jobs = threads
        reference = model.predict_proba(pixels)
        result = cascade_threads(forest, pixels, threads)
        diff = float(np.abs(result - reference).max())
        t_sklearn, t_cascade = best_times(
            [partial(model.predict_proba, pixels), partial(cascade_threads, forest, pixels, threads)],
            args.repeats,
        )
        mpx = args.pixels / 1e6
        lines.append(
            f"| {rows}, {features}, {classes}, {args.pixels} | {depth:.1f} | {threads} | "
            f"{mpx / t_sklearn:.3f} | {mpx / t_cascade:.3f} | {t_sklearn / t_cascade:.2f} | {diff:.1e} |"
        )
    return lines, layout_s


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workloads",
        type=parse_workload,
        nargs="+",
        default=WORKLOADS,
        help="ROWSxFEATURESxCLASSES of the training sets (default: %(default)s)",
    )
    parser.add_argument(
        "--pixels", type=int, default=1_000_000, help="pixels to predict (default: %(default)s)"
    )
    parser.add_argument("--trees", type=int, default=100, help="trees per forest (default: %(default)s)")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default: %(default)s)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs, best is kept (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="data and forest seed (default: %(default)s)")
    args = parser.parse_args()

    print(
        "| training rows, features, classes, pixels | tree depth | threads | sklearn Mpx/s "
        "| cascade Mpx/s | ratio | max abs diff |"
    )
    print("|---|---|---|---|---|---|---|")
    layouts = []
    for workload in args.workloads:
        lines, layout_s = run_workload(workload, args)
        layouts.append(f"{'x'.join(map(str, workload))} {layout_s * 1e3:.0f} ms")
        for line in lines:
            print(line, flush=True)
    print("tree depth: mean over trees of each tree's maximum depth")
    print("compact layout build (once per forest; the first also loads numba's cache):", ", ".join(layouts))


if __name__ == "__main__":
    main()
