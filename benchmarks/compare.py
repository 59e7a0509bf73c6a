"""Issue 14's table in one run: every ratio measured side by side, with the machine in the header.

Rows (each measurement in its own process, so that memory and allocator state are its own):

1. the same 2-stage prediction of a uint8 volume (30 trees, 64^3 blocks, zarr out) through the
   ``cascade`` command, ``--scheduler local`` (2 workers x 1 thread) against ``--scheduler threads``
   (2 threads), whole process (start-up, cluster start, compute, write);
2. ilastik's 2D default features (49 channels) of a 2048^2 image, in the blocks ``compute_features``
   gives by default (512^2; 64^3 in 3D): cascade on 1 thread against
   fastfilters2 with glibc tuned (``MALLOC_MMAP_THRESHOLD_`` raised), in a subprocess that may die
   (fastfilters2 crashes on some AVX-512 machines: the row then says so);
3. the same features: cascade on 2 threads against 1;
4. ilastik's 3D default features (61 channels) of a 128^3 (``--full``: 256^3) volume: cascade 1 thread
   against scikit-image's ``multiscale_basic_features`` (fastfilters2 is 2D only), and 2 threads vs 1;
5. forest prediction, 100 fully grown trees: cascade against scikit-learn ``predict_proba``, same threads,
   with the largest difference of their outputs; and on 1 thread, trees of sparse labels (the size of
   ilastik projects' trees);
6. end to end, ``benchmarks/predict.py``'s 2-stage prediction of a 256^3 volume on 2 threads: Mvox/s
   and the forest's share of task time; its peak RSS against a 320^3 volume's (each in its own
   process: memory bounded by the blocks in flight, not by the volume).

    python benchmarks/compare.py                 # about 10 minutes on 2 cores
    python benchmarks/compare.py --full          # the issue's sizes (192^3 CLI run, 256^3 3D features)
    python benchmarks/compare.py --rows forest end-to-end   # some groups only: cli, features, forest, end-to-end
    python benchmarks/compare.py --rows forest,end-to-end   # the same
    python benchmarks/compare.py --rows cli features --repeat 3   # best of 3 interleaved rounds

Forest times are the best of 3 rounds with scikit-learn and cascade interleaved.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TUNED = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}
#: Rounds of the feature rows (``--repeat``); each measurement keeps its best time.
REPEAT = 1


def cpu_header() -> str:
    """CPU model and the SIMD flags that matter for these kernels."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    model = model or platform.processor() or "unknown CPU"
    wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl")
    return f"{model}; {os.cpu_count()} CPUs; flags: {' '.join(f for f in wanted if f in flags)}"


# --- row 1: local cluster vs threads through the CLI ----------------------------------------------
def cli_runs(size: int, workdir: Path) -> dict[str, float]:
    """Whole-process time of the same CLI prediction on threads and on a local cluster."""
    import scaling

    from cascade.io import write_image
    from cascade.project.native import save_cascade

    project = workdir / "two.cascade"
    save_cascade(scaling.model(), project)
    volume = workdir / "vol.zarr"
    write_image(scaling.volume(size)[..., 0], str(volume), format="zarr", axes="zyx")
    times = {"threads": float("inf"), "local": float("inf")}
    for _ in range(REPEAT):  # rounds alternate the schedulers; each keeps its best time
        for scheduler in times:
            out = workdir / f"out_{scheduler}.zarr"
            shutil.rmtree(out, ignore_errors=True)
            cmd = [
                sys.executable,
                "-m",
                "cascade",
                "predict",
                f"--project={project}",
                f"--scheduler={scheduler}",
            ]
            cmd += [
                "--threads=2",
                "--block-shape=64",
                "--output_format=zarr",
                f"--output_filename_format={out}",
            ]
            cmd += ["--export_source=Probabilities Stage 2", str(volume)]
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
            times[scheduler] = min(times[scheduler], time.perf_counter() - start)
            if done.returncode:
                raise SystemExit(f"cascade --scheduler {scheduler} failed: {done.stderr.strip()}")
    return times


# --- rows 2-4: features -------------------------------------------------------------------------
def features(shape: tuple[int, ...], impl: str, threads: int, env: dict[str, str] | None) -> dict | str:
    """One features measurement in its own process; a crash or failure is returned as text."""
    import features as bench

    try:
        return bench.measure(impl, shape, threads, env)
    except RuntimeError as err:
        return f"failed ({str(err).rsplit(' ', 1)[-1]})"


# --- row 5: forest ------------------------------------------------------------------------------
def forest_row(threads: int, pixels: int, rows: int = 10000, features: int = 40) -> dict[str, float]:
    import forest as bench
    from sklearn.ensemble import RandomForestClassifier

    from cascade.forest import pack_sklearn

    x, y, px = bench.make_workload(rows, features, 2, pixels, seed=0)
    rf = RandomForestClassifier(n_estimators=100, n_jobs=threads, random_state=0).fit(x, y)
    packed = pack_sklearn(rf, 2)
    ours = bench.cascade_threads(packed, px, threads)  # warm: layout built, kernels loaded
    theirs = rf.predict_proba(px)
    t_sk, t_ours = bench.best_times(
        [lambda: rf.predict_proba(px), lambda: bench.cascade_threads(packed, px, threads)], 3
    )
    splits = np.count_nonzero(packed.feature >= 0) / packed.n_trees
    return {"sklearn": t_sk, "cascade": t_ours, "diff": float(np.abs(ours - theirs).max()), "splits": splits}


# --- row 6: end to end --------------------------------------------------------------------------
def end_to_end(sizes: tuple[int, ...]) -> dict[int, dict[str, float]]:
    """predict.py's run of each size in its own process: seconds, time shares, Mvox/s, peak RSS."""
    import predict as bench

    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        project = Path(workdir) / "bench.cascade"
        bench._train(project)
        for size in sizes:
            result = bench.run_size(size, project, workdir)
            result["mvox"] = size**3 / 1e6 / result["seconds"]
            results[size] = result
    return results


def _ratio(a: dict | str, b: dict | str) -> str:
    if isinstance(a, str) or isinstance(b, str):
        return "n/a"
    return f"{b['seconds'] / a['seconds']:.2f}x"


def _time(r: dict | str) -> str:
    return r if isinstance(r, str) else f"{r['seconds']:.2f} s"


Row = tuple[str, str, str, str]


def cli_rows(full: bool) -> list[Row]:
    """Row 1: the local cluster against threads through the CLI."""
    cli_size = 192 if full else 128
    with tempfile.TemporaryDirectory() as workdir:
        t = cli_runs(cli_size, Path(workdir))
    return [
        (
            f"2-stage prediction {cli_size}^3 (30 trees, 64^3 blocks, zarr), local (2x1) vs threads (2), whole process",
            f"{t['local']:.1f} s vs {t['threads']:.1f} s",
            f"{t['local'] / t['threads']:.2f}x slower",
            "<= 1.1x",
        )
    ]


def _better(new: dict | str, old: dict | str) -> bool:
    """Whether a measurement replaces the best so far (a failure only replaces nothing yet)."""
    return isinstance(old, str) or (isinstance(new, dict) and new["seconds"] < old["seconds"])


def feature_rows(full: bool) -> list[Row]:
    """Rows 2-4: 2D features against fastfilters2, 3D features against scikit-image, 2 threads vs 1."""
    edge3 = 256 if full else 128
    runs = [
        ((2048, 2048), "cascade", 1, None),
        ((2048, 2048), "cascade", 2, None),
        ((2048, 2048), "fastfilters2", 1, TUNED),
        ((edge3,) * 3, "cascade", 1, None),
        ((edge3,) * 3, "cascade", 2, None),
        ((edge3,) * 3, "scikit-image", 1, None),
    ]
    best: list[dict | str] = ["not run"] * len(runs)
    for _ in range(REPEAT):  # rounds interleave the implementations; each keeps its best time
        for i, run in enumerate(runs):
            r = features(*run)
            if _better(r, best[i]):
                best[i] = r
    c1, c2, ff, c3, c3x2, s3 = best
    return [
        (
            "2D default features (49 ch) 2048^2, cascade 1 thread vs fastfilters2 (tuned malloc)",
            f"{_time(c1)} vs {_time(ff)}",
            _ratio(c1, ff),
            ">= 1.5x",
        ),
        ("same, cascade 2 threads vs 1", f"{_time(c2)} vs {_time(c1)}", _ratio(c2, c1), ">= 1.8x"),
        (
            f"3D default features {edge3}^3, cascade 1 thread (61 ch) vs scikit-image (30 ch; fastfilters2 is 2D only)",
            f"{_time(c3)} vs {_time(s3)}",
            _ratio(c3, s3),
            "-",
        ),
        ("same, cascade 2 threads vs 1", f"{_time(c3x2)} vs {_time(c3)}", _ratio(c3x2, c3), ">= 1.8x"),
    ]


def forest_rows(full: bool) -> list[Row]:
    """Row 5: forest prediction against scikit-learn, 1 and 2 threads; small trees on 1 thread."""
    rows = []
    for threads in (1, 2):
        f = forest_row(threads, 300_000)
        rows.append(
            (
                f"forest, 100 fully grown trees, cascade vs scikit-learn predict_proba, {threads} thread(s)",
                f"{f['cascade']:.2f} s vs {f['sklearn']:.2f} s (max diff {f['diff']:.1e})",
                f"{f['sklearn'] / f['cascade']:.2f}x",
                ">= 6x, identical output",
            )
        )
    # the trees of sparse labels (ilastik projects: 1-76 split nodes per tree on average)
    f = forest_row(1, 300_000, rows=100, features=49)
    rows.append(
        (
            f"forest, 100 trees of 100 labels ({f['splits']:.0f} split nodes per tree, like ilastik projects'), "
            "1 thread",
            f"{f['cascade']:.3f} s vs {f['sklearn']:.2f} s (max diff {f['diff']:.1e})",
            f"{f['sklearn'] / f['cascade']:.2f}x",
            "-",
        )
    )
    return rows


def end_to_end_rows(full: bool) -> list[Row]:
    """Row 6: benchmarks/predict.py's 2-stage prediction of a 256^3 volume; its peak RSS against 320^3's."""
    e, large = end_to_end((256, 320)).values()
    return [
        (
            "end to end, predict.py 256^3 (2 stages, 100 trees, 2 threads); peak RSS 256^3 -> 320^3",
            f"{e['seconds']:.1f} s; {e['peak_mb']:.0f} MB -> {large['peak_mb']:.0f} MB",
            f"{e['mvox']:.2f} Mvox/s, forest {e['forest']:.0%} of task time; RSS x{large['peak_mb'] / e['peak_mb']:.2f} "
            "for 1.95x the voxels",
            ">= 1.0 Mvox/s, peak RSS flat",
        )
    ]


GROUPS = {"cli": cli_rows, "features": feature_rows, "forest": forest_rows, "end-to-end": end_to_end_rows}


def _groups(text: str) -> list[str]:
    """``"forest,end-to-end"`` -> ``["forest", "end-to-end"]``, each checked."""
    names = [name for name in text.split(",") if name]
    for name in names:
        if name not in GROUPS:
            raise argparse.ArgumentTypeError(f"unknown group {name!r} (choose from {', '.join(GROUPS)})")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="the issue's sizes (slower)")
    parser.add_argument(
        "--rows",
        nargs="+",
        type=_groups,
        default=[list(GROUPS)],
        help=f"the groups of rows to measure, space- or comma-separated: {', '.join(GROUPS)} (default: all)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of the CLI and feature rows, the runs interleaved, best time kept (default 1)",
    )
    args = parser.parse_args()
    global REPEAT
    REPEAT = max(1, args.repeat)
    rows: list[Row] = []
    for name in [name for names in args.rows for name in names]:
        rows += GROUPS[name](args.full)
        print(f"  {name} done", file=sys.stderr)

    print(f"\n{cpu_header()}\n")
    print("| what | measured | ratio | goal |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
