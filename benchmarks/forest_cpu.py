"""Forest prediction on one thread, timed in CPU time: cascade against scikit-learn.

``benchmarks/forest.py`` times wall-clock runs, which on a shared machine swing with the other
work (ratios of 5x to 9x for the same code in one hour on 2 busy cores). Here both predict in the
calling thread (scikit-learn with ``n_jobs=1``, cascade with ``n_threads=1``) and each run is
timed by that thread's CPU time (``time.thread_time``), best of ``--repeats``, interleaved. Other
processes still share the caches and the core, so compare ratios, not absolute numbers.

    python benchmarks/forest_cpu.py
    python benchmarks/forest_cpu.py --pixels 300000 --workloads 10000x40x2
    python benchmarks/forest_cpu.py --workloads 30x49x2 100x49x2 300x49x3   # small trees (sparse labels)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from forest import WORKLOADS, make_workload, parse_workload
from sklearn.ensemble import RandomForestClassifier

from cascade.forest import pack_sklearn, predict_proba


def best_cpu_times(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Smallest CPU time of the calling thread for each run, the runs interleaved."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.thread_time()
            run()
            best[name] = min(best[name], time.thread_time() - start)
    return best


def row(workload: tuple[int, int, int], pixels: int, repeats: int, seed: int) -> str:
    """One table row: CPU seconds of both, their ratio, and the largest output difference."""
    rows, features, classes = workload
    x, y, px = make_workload(rows, features, classes, pixels, seed)
    model = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=2).fit(x, y)
    model.n_jobs = 1
    forest = pack_sklearn(model, classes)
    ours, theirs = predict_proba(forest, px), model.predict_proba(px)  # warm: layout, numba cache
    times = best_cpu_times(
        {"sklearn": lambda: model.predict_proba(px), "cascade": lambda: predict_proba(forest, px)}, repeats
    )
    return (
        f"| {rows}, {features}, {classes}, {pixels} | {np.count_nonzero(forest.feature >= 0) / 100:.0f} "
        f"| {times['sklearn']:.2f} | {times['cascade']:.3f} | "
        f"{times['sklearn'] / times['cascade']:.2f}x | {float(np.abs(ours - theirs).max()):.1e} |"
    )


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
        "--pixels", type=int, default=100_000, help="pixels to predict (default: %(default)s)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs, best kept (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="data and forest seed (default: %(default)s)")
    args = parser.parse_args()
    print(
        "| training rows, features, classes, pixels | split nodes per tree | sklearn CPU s | cascade CPU s "
        "| ratio | max abs diff |"
    )
    print("|---|---|---|---|---|---|")
    for workload in args.workloads:
        print(row(workload, args.pixels, args.repeats, args.seed), flush=True)
    print("100 trees, 1 thread each; CPU time of the predicting thread, best of the repeats")


if __name__ == "__main__":
    main()
