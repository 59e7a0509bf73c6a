"""Issue 12's object classification benchmark: blockwise cascade against the whole-image approach.

A synthetic 3D uint8 volume of ~100k objects per 1024 x 1024 x 256 voxels (x, y, z; small bright
spheres = class 1, larger dimmer ellipsoids = class 2, on a jittered 13-voxel grid, so that many
objects cross chunk borders) is generated chunk by chunk into zarr, deterministically (the same
size gives the same bytes; generated once and reused). Then, end to end, each in its own process
(peak RSS is the kernel's ``ru_maxrss`` of that process):

- **cascade**: probabilities = raw / 255 -> vigra-exact smoothing (sigma 1) and threshold 0.5,
  size filter 10 -> global connected components (ilastik's ids) -> object features (``--features``,
  default ``standard``: the Standard Object Features that are not coordinates, no neighbourhoods),
  merged exactly across chunks -> ilastik's feature matrix -> the object forest (trained beforehand
  on a small volume of the same kind, ``--trees``) -> export of ``Object Identities`` (zarr, chunk
  by chunk) and ilastik's object table (``cascade.objects.write_table``, CSV, one row per object);
- **whole image**: the same steps as a user writes them with SciPy and scikit-image on the whole
  array: ``ndimage.gaussian_filter`` + threshold, ``skimage.measure.label`` (6-connectivity), the
  size filter, ``regionprops_table`` (area, centroid, bbox, intensity mean/min/max, inertia
  eigenvalues), a scikit-learn forest, the label image to zarr and the table to CSV. It runs on
  the sizes where ~20 bytes per voxel fit in half of the available memory.

Printed: per size and approach the seconds of each step, the whole run, throughput (Mvoxel/s) and
peak RSS; the machine (CPU model, SIMD flags, threads) in the header. cascade's peak should stay
flat as the volume grows (only the chunks in flight and per-object tables are in memory); the
whole-image peak grows with the volume.

    python benchmarks/objects.py --sizes small             # quick check (256x256x64, 512x256x64)
    python benchmarks/objects.py                           # 1024x1024x256 and 1024x1024x512 (~100k, ~200k objects)
    python benchmarks/objects.py --sizes 2048x1024x256 --threads 8 --workdir /scratch/me
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: Named size lists, each size x, y, z.
SIZES = {
    "small": [(256, 256, 64), (512, 256, 64)],
    "full": [(1024, 1024, 256), (1024, 1024, 512)],
}
SPACING = 13  # grid of object centres (voxels); one object per cell: ~116k per 1024x1024x256
CHUNK = (64, 256, 256)  # z, y, x of the zarr chunks and cascade's blocks
VERSION = "objects-benchmark-1"


# --- the synthetic volume ---------------------------------------------------------------------------
def object_table(shape_zyx: tuple[int, int, int], seed: int = 0) -> dict[str, np.ndarray]:
    """Every object of the volume: centre (z, y, x), radii (z, y, x), grey value, class. O(objects)."""
    cells = [s // SPACING for s in shape_zyx]
    grid = np.stack(np.meshgrid(*[np.arange(c) for c in cells], indexing="ij"), -1).reshape(-1, 3)
    rng = np.random.default_rng([seed, *shape_zyx])
    n = len(grid)
    cls = rng.integers(1, 3, n)
    centre = (grid + 0.5) * SPACING + rng.uniform(-1.0, 1.0, (n, 3))
    small = rng.uniform(2.5, 3.5, (n, 1)) * np.ones((1, 3))
    large = rng.uniform(3.5, 4.5, (n, 3))
    radii = np.where(cls[:, None] == 1, small, large)
    value = np.where(cls == 1, 205, 160) + rng.integers(-10, 10, n)
    return {"centre": centre, "radii": radii, "value": value.astype(np.int64), "class": cls}


def paint(table: dict[str, np.ndarray], lo: tuple[int, ...], hi: tuple[int, ...], seed: int) -> np.ndarray:
    """The uint8 raw of the box ``[lo, hi)`` (z, y, x): noisy background, the objects that reach it."""
    rng = np.random.default_rng([seed, *lo])
    shape = tuple(h - low for low, h in zip(lo, hi))
    out = (20 + rng.integers(0, 40, shape)).astype(np.uint8)
    c, r = table["centre"], table["radii"]
    near = np.all((c + r + 1 > np.array(lo)) & (c - r - 1 < np.array(hi)), axis=1)
    for i in np.flatnonzero(near):
        a = np.maximum(np.floor(c[i] - r[i]).astype(int), lo)
        b = np.minimum(np.ceil(c[i] + r[i]).astype(int) + 1, hi)
        if np.any(b <= a):
            continue
        zz, yy, xx = np.ogrid[a[0] : b[0], a[1] : b[1], a[2] : b[2]]
        inside = (
            ((zz - c[i, 0]) / r[i, 0]) ** 2
            + ((yy - c[i, 1]) / r[i, 1]) ** 2
            + ((xx - c[i, 2]) / r[i, 2]) ** 2
        )
        box = out[a[0] - lo[0] : b[0] - lo[0], a[1] - lo[1] : b[1] - lo[1], a[2] - lo[2] : b[2] - lo[2]]
        noise = rng.integers(-15, 15, box.shape)
        box[inside <= 1] = np.clip(table["value"][i] + noise[inside <= 1], 0, 255)
    return out


def make_volume(path: Path, shape_zyx: tuple[int, int, int]) -> int:
    """Write the volume chunk by chunk to zarr (reused when already complete); returns its object count."""
    import zarr

    table = object_table(shape_zyx)
    if path.exists():
        existing = zarr.open_array(str(path), mode="r")
        if existing.attrs.get("complete") == VERSION and existing.shape == shape_zyx:
            return len(table["value"])
    array = zarr.create_array(str(path), shape=shape_zyx, chunks=CHUNK, dtype="uint8", overwrite=True)
    for index in np.ndindex(*[-(-s // c) for s, c in zip(shape_zyx, CHUNK)]):
        lo = tuple(i * c for i, c in zip(index, CHUNK))
        hi = tuple(min(low + c, s) for low, c, s in zip(lo, CHUNK, shape_zyx))
        array[tuple(slice(a, b) for a, b in zip(lo, hi))] = paint(table, lo, hi, seed=1)
    array.attrs["complete"] = VERSION
    return len(table["value"])


def training_volume() -> tuple[np.ndarray, np.ndarray]:
    """A small volume of the same kind and its object label image (class at each object's centre)."""
    shape = (64, 128, 128)
    table = object_table(shape, seed=7)
    raw = paint(table, (0, 0, 0), shape, seed=8)
    labels = np.zeros(shape, np.uint8)
    centre = np.round(table["centre"]).astype(int)
    labels[tuple(np.clip(centre, 0, np.array(shape) - 1).T)] = table["class"]
    return raw, labels


# --- cascade, blockwise -----------------------------------------------------------------------------
def _train_cascade(features: str, trees: int) -> object:
    """The object stage, trained with cascade on the training volume (objects, features, labels)."""
    import dask.array as da

    from cascade.objects import (
        ObjectStage,
        ThresholdSettings,
        feature_matrix,
        object_features,
        objects_from_probabilities,
        train_object_forest,
    )
    from cascade.training import object_classes, object_feature_selection

    raw, labels = training_volume()
    settings = ThresholdSettings(low=0.5, sigmas=(1.0, 1.0, 1.0), min_size=10)
    selection = object_feature_selection(features, 3, 1)
    lazy = da.from_array(raw, chunks=CHUNK)
    objects = objects_from_probabilities(
        (lazy.astype(np.float32) / np.float32(255))[..., None], "zyxc", settings
    )
    tables = object_features(lazy[..., None], "zyxc", objects, selection)
    classes = object_classes(objects, da.from_array(labels, chunks=CHUNK), 2).classes
    forest = train_object_forest(feature_matrix(tables, selection), classes, 2, n_trees=trees, seed=0)
    return ObjectStage(
        source="probabilities", threshold=settings, features=selection, class_names=("small", "large"),
        forest=forest, raw_channels=1, spatial_axes="zyx",
    )  # fmt: skip


def _write_csv(path: Path, header: list[str], columns: list[np.ndarray]) -> None:
    """One row per object, streamed from the per-object columns."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for start in range(0, len(columns[0]), 65536):
            writer.writerows(zip(*(c[start : start + 65536].tolist() for c in columns)))


def run_cascade(path: Path, workdir: Path, features: str, trees: int, threads: int) -> dict:
    """The blockwise pipeline on the zarr volume; seconds per step."""
    import dask
    import dask.array as da

    from cascade._malloc import tune_malloc
    from cascade.io import write_image
    from cascade.objects import object_features, object_probabilities, objects_from_probabilities, write_table

    tune_malloc()
    times: dict[str, float] = {}
    with dask.config.set(scheduler="threads", num_workers=threads):
        start = time.perf_counter()
        stage = _train_cascade(features, trees)
        times["train (small volume)"] = time.perf_counter() - start
        start = time.perf_counter()
        raw = da.from_zarr(str(path))
        probabilities = (raw.astype(np.float32) / np.float32(255))[..., None]
        objects = objects_from_probabilities(probabilities, "zyxc", stage.threshold)  # type: ignore[attr-defined]
        times["threshold + objects"] = time.perf_counter() - start
        start = time.perf_counter()
        tables = object_features(raw[..., None], "zyxc", objects, stage.features)  # type: ignore[attr-defined]
        times["features"] = time.perf_counter() - start
        start = time.perf_counter()
        classes = object_probabilities(stage, tables)  # type: ignore[arg-type]
        times["classify"] = time.perf_counter() - start
        start = time.perf_counter()
        write_image(objects.labels, str(workdir / "cascade_identities.zarr"), format="zarr", axes="zyx")
        times["export identities"] = time.perf_counter() - start
        start = time.perf_counter()
        names = stage.class_names  # type: ignore[attr-defined]
        write_table(str(workdir / "cascade.csv"), tables, selection=stage.features, class_names=names,  # type: ignore[attr-defined]
                    probabilities=classes)  # fmt: skip
        times["export table"] = time.perf_counter() - start
    return {"times": times, "objects": int(objects.counts[0])}


# --- the whole-image approach -----------------------------------------------------------------------
PROPS = (
    "label",
    "area",
    "centroid",
    "bbox",
    "intensity_mean",
    "intensity_min",
    "intensity_max",
    "inertia_tensor_eigvals",
)


def _whole_objects(raw: np.ndarray) -> np.ndarray:
    """Smooth, threshold, label (6-connectivity), size filter, consecutive ids: all in memory."""
    from scipy import ndimage
    from skimage import measure, segmentation

    smoothed = ndimage.gaussian_filter(
        raw.astype(np.float32) / np.float32(255), 1.0, mode="mirror", truncate=2.0
    )
    labels = measure.label(smoothed >= 0.5, connectivity=1)
    del smoothed
    sizes = np.bincount(labels.ravel())
    keep = (sizes >= 10) & (sizes <= 1_000_000)
    keep[0] = False
    labels[~keep[labels]] = 0
    return segmentation.relabel_sequential(labels)[0]


def _whole_features(labels: np.ndarray, raw: np.ndarray) -> tuple[list[str], np.ndarray]:
    from skimage import measure

    props = measure.regionprops_table(labels, intensity_image=raw, properties=PROPS)
    names = [k for k in props if k != "label"]
    return names, np.stack([np.asarray(props[k], np.float64) for k in names], axis=1)


def run_whole(path: Path, workdir: Path, trees: int, threads: int) -> dict:
    """SciPy / scikit-image / scikit-learn on the whole array; seconds per step."""
    import zarr
    from skimage import measure
    from sklearn.ensemble import RandomForestClassifier

    times: dict[str, float] = {}
    start = time.perf_counter()
    small, small_labels = training_volume()
    ids = _whole_objects(small)
    names, x = _whole_features(ids, small)
    y = measure.regionprops_table(ids, intensity_image=small_labels, properties=("intensity_max",))[
        "intensity_max"
    ]
    forest = RandomForestClassifier(n_estimators=trees, random_state=0, n_jobs=threads).fit(
        x[y > 0], y[y > 0]
    )
    times["train (small volume)"] = time.perf_counter() - start
    start = time.perf_counter()
    raw = zarr.open_array(str(path), mode="r")[...]
    times["load"] = time.perf_counter() - start
    start = time.perf_counter()
    labels = _whole_objects(raw)
    times["threshold + objects"] = time.perf_counter() - start
    start = time.perf_counter()
    names, x = _whole_features(labels, raw)
    times["features"] = time.perf_counter() - start
    start = time.perf_counter()
    p = forest.predict_proba(x)
    times["classify"] = time.perf_counter() - start
    start = time.perf_counter()
    out = zarr.create_array(str(workdir / "whole_identities.zarr"), shape=labels.shape, chunks=CHUNK, dtype="uint32",
                            overwrite=True)  # fmt: skip
    out[...] = labels.astype(np.uint32)
    times["export identities"] = time.perf_counter() - start
    start = time.perf_counter()
    header = [
        "object_id",
        "labelimage_oid",
        "Predicted Class",
        "Probability of small",
        "Probability of large",
        *names,
    ]
    columns = [np.arange(len(x)), np.arange(1, len(x) + 1), np.argmax(p, axis=1) + 1, *p.T, *x.T]
    _write_csv(workdir / "whole_table.csv", header, columns)
    times["export table"] = time.perf_counter() - start
    return {"times": times, "objects": int(len(x))}


# --- the runs ---------------------------------------------------------------------------------------
def cpu_header(threads: int) -> str:
    """CPU model, SIMD flags and the threads used."""
    from compare import cpu_header as machine

    return f"{machine()}; {threads} thread(s)"


def _available_bytes() -> int:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def _child(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    if args.child == "cascade":
        result = run_cascade(Path(args.volume), workdir, args.features, args.trees, args.threads)
    else:
        result = run_whole(Path(args.volume), workdir, args.trees, args.threads)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result), flush=True)


def _measure(approach: str, volume: Path, workdir: Path, args: argparse.Namespace) -> dict | str:
    cmd = [sys.executable, __file__, "--child", approach, "--volume", str(volume), "--workdir", str(workdir)]
    cmd += ["--features", args.features, "--trees", str(args.trees), "--threads", str(args.threads)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        return f"failed ({(done.stderr.strip().splitlines() or ['exit ' + str(done.returncode)])[-1]})"
    result = json.loads(lines[-1][len("RESULT ") :])
    result["wall"] = wall
    return result


def _row(size: tuple[int, int, int], approach: str, result: dict | str) -> str:
    name = "x".join(map(str, size))
    if isinstance(result, str):
        return f"| {name} | {approach} | {result} |"
    times = result["times"]
    pipeline = sum(v for k, v in times.items() if not k.startswith("train"))
    steps = ", ".join(f"{k} {v:.1f}" for k, v in times.items())
    rate = np.prod(size) / 1e6 / pipeline
    return f"| {name} | {approach} | {result['objects']} | {pipeline:.1f} | {rate:.2f} | {result['peak_mb']:.0f} | {steps} |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="full", help="small, full, or sizes XxYxZ separated by commas")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--features", default="standard", help="an object feature set of cascade train")
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--workdir", default=None, help="where volumes and outputs go (default: a temp dir)")
    parser.add_argument("--whole", choices=("auto", "always", "never"), default="auto")
    parser.add_argument("--child", choices=("cascade", "whole"), help=argparse.SUPPRESS)
    parser.add_argument("--volume", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    if args.sizes in SIZES:
        sizes = SIZES[args.sizes]
    else:
        sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",")]  # type: ignore[misc]
    root = Path(args.workdir or tempfile.mkdtemp(prefix="objects-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"# object classification end to end: {cpu_header(args.threads)}")
    print(f"# cascade blocks {CHUNK[::-1]} (x, y, z), object features '{args.features}', {args.trees} trees; "
          f"workdir {root}\n")  # fmt: skip
    print("| size (x, y, z) | approach | objects | seconds | Mvoxel/s | peak RSS MB | steps (s) |")
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        volume = root / f"volume_{'x'.join(map(str, size))}.zarr"
        start = time.perf_counter()
        generated = make_volume(volume, (size[2], size[1], size[0]))
        print(f"| {'x'.join(map(str, size))} | (generated: {generated} objects placed, {time.perf_counter() - start:.0f} s) "
              "| | | | | |", flush=True)  # fmt: skip
        outputs = root / f"out_{'x'.join(map(str, size))}"
        outputs.mkdir(exist_ok=True)
        print(_row(size, "cascade (blockwise)", _measure("cascade", volume, outputs, args)), flush=True)
        fits = 28 * int(np.prod(size)) < _available_bytes() // 2
        if args.whole == "always" or (args.whole == "auto" and fits):
            print(_row(size, "whole image (skimage)", _measure("whole", volume, outputs, args)), flush=True)
        else:
            print(f"| {'x'.join(map(str, size))} | whole image (skimage) | skipped: ~28 B/voxel does not fit in half "
                  "the available memory | | | | |", flush=True)  # fmt: skip
    print(
        "\nseconds and Mvoxel/s: the pipeline (load/threshold/objects/features/classify/exports), not the training."
    )


if __name__ == "__main__":
    main()
