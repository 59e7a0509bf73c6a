"""Session 3 of the accuracy study (issue 15): mechanisms on top of cross-fitting by blocks.

Every run here is ``xfit-block`` (cascade's default: 64-pixel blocks, 4 folds) with one or more
options, joined with ``+`` (e.g. ``pseudo+bal``):

- ``pseudo``: stage k+1 also trains on pseudo-labels: unlabelled pixels of the training slices
  whose cross-fitted stage-k probability is confident (max > ``--pseudo-p``), class-balanced,
  ``--pseudo-mult`` times the label count, weight ``--pseudo-w``; ``pseudoR`` (e.g.
  ``pseudo8``) only takes pixels within R px of a labelled pixel.
- ``bal``: stage 2+ trains on a class-balanced subsample of its labels (majority class cut).
- ``large``: features on the probabilities only at scales >= 3.5 (plus the probability itself).
- ``dist``: extra context features: distance to the nearest predicted membrane (argmax), inside
  and outside it, and Gaussians of the thresholded membrane probability (sigmas 1.6, 3.5, 5, 10).
- ``cc``: extra context features: the size of the pixel's connected component of each class's
  probability thresholded at 0.3, 0.5, 0.7 (log2, capped at 256 pixels), so isolated specks of
  false membrane and small holes in thick membrane can be told from the membrane network and cells.
- ``line``: extra context features: grey openings of the membrane probability by straight lines of
  9, 17 and 33 px in 8 orientations, the largest over the orientations per length (a pixel on a long
  membrane keeps its probability, a speck shorter than the line loses it), and the closings by the
  same lines, the smallest over the orientations (a gap in a membrane shorter than the line is filled).
- ``mfX`` (e.g. ``mf30``): stage 2+ forests use max_features = X % of the features (not sqrt).
- ``treesN``: stage 2+ forests have N trees.
- ``dense``: an oracle, not a protocol: stage 2+ trains on the dense ground truth of the
  training slices (a random subsample of ``--dense-rows`` pixels); ``dense1``: stage 1 too.
- ``prior``: the test probabilities re-weighted from the labels' class shares to the test
  images' own, estimated by EM (Saerens et al. 2002); the decision only, not stage k+1's input.
- ``priortrain``: as ``prior``, but the images' class shares are estimated (EM) on the training
  slices' own stage-k probabilities (the final forest of each stage predicting them), so a library
  could store them at training time; the test probabilities are re-weighted per pixel (no second pass).
- ``hgb``: stage 2+ is scikit-learn's ``HistGradientBoostingClassifier`` (200 iterations), not a
  random forest: whether the ceiling is the model or the features (not a cascade mode).
- ``base``: nothing added (the default).

Metrics per stage: membrane F1 at argmax (the study's), and at the best membrane threshold.

    nice -n 19 python benchmarks/autocontext_explore.py --crop 256 --trees 30 --variants base pseudo bal
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from autocontext_variants import block_folds, slice_features  # noqa: E402
from isbi_autocontext import DATA, append, draw_labels, load  # noqa: E402

from cascade.features import FeatureSelection  # noqa: E402
from cascade.forest import PackedForest, pack_sklearn, predict_proba  # noqa: E402
from cascade.pipeline import reweighted  # noqa: E402
from cascade.training.prior import em_shares  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "accuracy-explore.md"


def option(opts: set[str], name: str) -> int | None:
    """Numeric option ``<name><N>`` from the variant, None if absent."""
    for o in opts:
        m = re.fullmatch(rf"{name}(\d+)", o)
        if m:
            return int(m.group(1))
    return None


def large_selection() -> FeatureSelection:
    """The default feature ids, on scales >= 3.5 only, plus Gaussian 0.3 (the probability itself)."""
    default = FeatureSelection.ilastik_default()
    matrix = [
        [on and (s >= 3.5 or (fid == "GaussianSmoothing" and s == 0.3)) for s, on in zip(default.scales, row)]
        for fid, row in zip(default.feature_ids, default.matrix)
    ]
    return FeatureSelection.from_matrix(default.feature_ids, default.scales, matrix)


def distance_maps(probs: np.ndarray) -> np.ndarray:
    """Distances to the predicted membrane (in and out) and Gaussians of the thresholded membrane."""
    membrane = probs[..., 0] >= probs[..., 1]
    parts = [
        ndimage.distance_transform_edt(~membrane) if membrane.any() else np.full(membrane.shape, 99.0),
        ndimage.distance_transform_edt(membrane),
    ]
    mask = membrane.astype(np.float32)
    parts += [ndimage.gaussian_filter(mask, s, mode="mirror") for s in (1.6, 3.5, 5.0, 10.0)]
    return np.stack(parts, axis=-1).astype(np.float32)


def component_sizes(probs: np.ndarray, cap: int = 256) -> np.ndarray:
    """``cc``: per class and threshold, log2(1 + size) of the pixel's connected component, capped.

    For thresholds 0.3, 0.5, 0.7 on each class's probability, the pixels at or above it are
    grouped into 8-connected components; a pixel gets log2(1 + min(size, cap)) of its component
    (0 below the threshold). min(size, cap) is local: a block with a halo of ``cap`` pixels gives
    the same number as the whole image.
    """
    parts = []
    for c in range(probs.shape[-1]):
        for t in (0.3, 0.5, 0.7):
            mask = probs[..., c] >= t
            labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
            sizes = np.minimum(np.bincount(labels.ravel(), minlength=n + 1), cap).astype(np.float32)
            sizes[0] = 0
            parts.append(np.log2(1 + sizes[labels]))
    return np.stack(parts, axis=-1).astype(np.float32)


def line_footprint(length: int, angle: float) -> np.ndarray:
    """A straight line of ``length`` pixels through the centre of a square footprint."""
    half = length // 2
    fp = np.zeros((length, length), bool)
    t = np.linspace(-half, half, 4 * length)
    fp[np.rint(half + t * np.sin(angle)).astype(int), np.rint(half + t * np.cos(angle)).astype(int)] = True
    return fp


def line_openings(probs: np.ndarray, lengths: tuple[int, ...] = (9, 17, 33)) -> np.ndarray:
    """``line``: per length, the max over 8 orientations of the opening of p(membrane) by a line,
    and the min over them of its closing."""
    p = probs[..., 0].astype(np.float32)
    parts = []
    for length in lengths:
        fps = [line_footprint(length, np.pi * a / 8) for a in range(8)]
        parts.append(np.max([ndimage.grey_opening(p, footprint=fp, mode="mirror") for fp in fps], axis=0))
        parts.append(np.min([ndimage.grey_closing(p, footprint=fp, mode="mirror") for fp in fps], axis=0))
    return np.stack(parts, axis=-1).astype(np.float32)


def context(probs: np.ndarray, opts: set[str]) -> np.ndarray:
    """Stage k+1's extra features from stage k's probabilities (y, x, 2) of one slice."""
    as_uint8 = np.floor(np.float32(255) * probs).astype(np.uint8)
    sel = large_selection() if "large" in opts else FeatureSelection.ilastik_default()
    parts = [slice_features(as_uint8, sel)]
    if "dist" in opts:
        parts.append(distance_maps(probs))
    if "cc" in opts:
        parts.append(component_sizes(probs))
    if "line" in opts:
        parts.append(line_openings(probs))
    return np.concatenate(parts, axis=-1)


def train(
    x: np.ndarray,
    y: np.ndarray,
    *,
    trees: int,
    seed: int,
    max_features: str | float = "sqrt",
    weight: np.ndarray | None = None,
) -> PackedForest:
    """cascade's forest settings (scikit-learn), packed."""
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=trees, max_features=max_features, random_state=seed, n_jobs=1)
    model.fit(np.ascontiguousarray(x, np.float32), y, sample_weight=weight)
    return pack_sklearn(model, 2)


class Boosted:
    """``hgb``: a gradient-boosted classifier standing in for stage k's forest."""

    def __init__(self, x: np.ndarray, y: np.ndarray, seed: int, weight: np.ndarray | None) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier

        self.model = HistGradientBoostingClassifier(max_iter=200, random_state=seed, early_stopping=False)
        self.model.fit(x, y, sample_weight=weight)

    def proba(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(x).astype(np.float32)


def _proba(forest: PackedForest | Boosted, x: np.ndarray) -> np.ndarray:
    return forest.proba(x) if isinstance(forest, Boosted) else predict_proba(forest, x)


def predict(forest: PackedForest | Boosted, feats: np.ndarray) -> np.ndarray:
    """Probabilities (y, x, 2) of one slice's features (y, x, n)."""
    return _proba(forest, feats.reshape(-1, feats.shape[-1])).reshape(*feats.shape[:2], -1)


def rows_at(feats: list[np.ndarray], where: list[np.ndarray]) -> np.ndarray:
    """Feature rows at the given pixels of each slice, stacked."""
    return np.concatenate([f[w[:, 0], w[:, 1]] for f, w in zip(feats, where)])


def pseudo_rows(
    fed: list[np.ndarray],
    labels: list[np.ndarray],
    opts: set[str],
    args: argparse.Namespace,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Where and what the pseudo-labels are, per training slice: coordinates, classes."""
    radius = option(opts, "pseudo")
    n_labels = sum(int((lab > 0).sum()) for lab in labels)
    per_class = int(args.pseudo_mult * n_labels / 2)
    cands: dict[int, list[tuple[int, np.ndarray]]] = {1: [], 2: []}
    for i, (p, lab) in enumerate(zip(fed, labels)):
        free = lab == 0
        if radius is not None:
            free &= ndimage.distance_transform_edt(lab == 0) <= radius
        for c in (1, 2):
            cands[c].append((i, np.argwhere(free & (p[..., c - 1] > args.pseudo_p))))
    where: list[list[np.ndarray]] = [[] for _ in labels]
    cls: list[list[int]] = [[] for _ in labels]
    for c in (1, 2):
        allc = [(i, w) for i, ws in cands[c] for w in ws]
        if not allc:
            continue
        pick = rng.choice(len(allc), min(per_class, len(allc)), replace=False)
        for j in pick:
            i, w = allc[j]
            where[i].append(w)
            cls[i].append(c)
    return [np.asarray(w, np.int64).reshape(-1, 2) for w in where], [np.asarray(c, np.int64) for c in cls]


def stage_training(
    k: int,
    feats: list[np.ndarray],
    labels: list[np.ndarray],
    truth: list[np.ndarray],
    fed: list[np.ndarray],
    opts: set[str],
    args: argparse.Namespace,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Training rows of stage k (0-based): features, classes, weights."""
    if ("dense" in opts and k > 0) or "dense1" in opts:
        where = [np.argwhere(np.ones(t.shape, bool)) for t in truth]
        cut = [w[rng.choice(len(w), args.dense_rows // len(truth), replace=False)] for w in where]
        return rows_at(feats, cut), np.concatenate([t[w[:, 0], w[:, 1]] for t, w in zip(truth, cut)]), None
    where = [np.argwhere(lab > 0) for lab in labels]
    x = rows_at(feats, where)
    y = np.concatenate([lab[w[:, 0], w[:, 1]] for lab, w in zip(labels, where)]).astype(np.int64)
    w = np.ones(len(y))
    if k > 0 and "bal" in opts:
        counts = np.bincount(y, minlength=3)[1:]
        keep = np.concatenate(
            [rng.choice(np.flatnonzero(y == c), counts.min(), replace=False) for c in (1, 2)]
        )
        x, y, w = x[keep], y[keep], w[keep]
    if k > 0 and any(o.startswith("pseudo") for o in opts):
        pw, pc = pseudo_rows(fed, labels, opts, args, rng)
        x = np.concatenate([x, rows_at(feats, pw)])
        y = np.concatenate([y, *pc])
        w = np.concatenate([w, np.full(sum(len(c) for c in pc), args.pseudo_w)])
    return x, y, w


def run(
    variant: str,
    data: Any,
    raw_feats: dict[int, np.ndarray],
    labels: dict[int, np.ndarray],
    args: argparse.Namespace,
    seed: int,
) -> list[dict[int, np.ndarray]]:
    """Train the stages, return the test probabilities per stage."""
    opts = set(variant.split("+"))
    rng = np.random.default_rng(seed + 12345)
    train_ids, test = data.train, data.test
    truth = [data.truth[i] for i in train_ids]
    labs = [labels[i] for i in train_ids]
    ctx: dict[int, np.ndarray | None] = dict.fromkeys([*train_ids, *test])
    fed: list[np.ndarray] = []
    out: list[dict[int, np.ndarray]] = []
    shown: list[dict[int, np.ndarray]] = []  # priortrain: the re-weighted test probabilities
    for k in range(args.stages):

        def feats(i: int) -> np.ndarray:
            c = ctx[i]
            return raw_feats[i] if c is None else np.concatenate([raw_feats[i], c], axis=-1)

        tf = [feats(i) for i in train_ids]
        x, y, w = stage_training(k, tf, labs, truth, fed, opts, args, rng)
        mf_pct = option(opts, "mf") if k > 0 else None
        mf = "sqrt" if mf_pct is None else mf_pct / 100
        n_trees = option(opts, "trees") if k > 0 and option(opts, "trees") else args.trees
        s = seed * 1000 + 100 * k
        boosted = "hgb" in opts and k > 0
        fit: Any = (lambda x_, y_, seed_, w_=None: Boosted(x_, y_, seed_, w_)) if boosted else None
        forest = fit(x, y, s, w) if fit else train(x, y, trees=n_trees, seed=s, max_features=mf, weight=w)
        out.append({i: predict(forest, feats(i)) for i in test})
        if "priortrain" in opts:
            shares = np.bincount(np.concatenate([lab[lab > 0] for lab in labs]), minlength=3)[1:]
            seen = np.concatenate([predict(forest, f).reshape(-1, 2) for f in tf])
            label_shares = shares / shares.sum()
            weights = em_shares(seen, label_shares) / label_shares  # the library's EM, not clipped
            shown.append({i: reweighted(q, weights) for i, q in out[-1].items()})  # the feed stays as is
        if k == args.stages - 1:
            break
        # cross-fitted feed of the training slices (xfit-block, labels only decide the folds' rows)
        folds = block_folds(tf[0].shape[:2], len(tf), s)
        where = [np.argwhere(lab > 0) for lab in labs]
        if ("dense" in opts and k > 0) or "dense1" in opts:
            step = max(1, sum(t.size for t in truth) // args.dense_rows)
            where = [np.argwhere(np.ones(t.shape, bool))[::step] for t in truth]
        rx = rows_at(tf, where)
        ry = np.concatenate([t[w_[:, 0], w_[:, 1]] for t, w_ in zip(truth, where)]).astype(np.int64)
        rf = np.concatenate([folds[i][w_[:, 0], w_[:, 1]] for i, w_ in enumerate(where)])
        fed = [np.zeros((*f.shape[:2], 2), np.float32) for f in tf]
        for fold in range(4):
            hx, hy = rx[rf != fold], ry[rf != fold]
            held = (
                fit(hx, hy, s + 1 + fold)
                if fit
                else train(hx, hy, trees=n_trees, seed=s + 1 + fold, max_features=mf)
            )
            for i, f in enumerate(tf):
                m = folds[i] == fold
                fed[i][m] = _proba(held, f[m])
        for i, p in zip(train_ids, fed):
            ctx[i] = context(p, opts)
        for i in test:
            ctx[i] = context(out[-1][i], opts)
    return shown or out


def prior_shift(probs: dict[int, np.ndarray], label_share: float, rounds: int = 50) -> dict[int, np.ndarray]:
    """Saerens et al. (2002) EM: re-weight p(membrane) from the labels' share to the images' own."""
    p = np.concatenate([probs[i][..., 0].ravel() for i in probs]).astype(np.float64)
    prior = label_share
    for _ in range(rounds):
        a = p * prior / label_share
        b = (1 - p) * (1 - prior) / (1 - label_share)
        prior = float(np.mean(a / np.maximum(a + b, 1e-12)))
    out = {}
    for i, q in probs.items():
        a = q[..., 0] * prior / label_share
        b = q[..., 1] * (1 - prior) / (1 - label_share)
        m = a / np.maximum(a + b, 1e-12)
        out[i] = np.stack([m, 1 - m], axis=-1).astype(np.float32)
    return out


def f1_scores(probs: dict[int, np.ndarray], truth: np.ndarray) -> tuple[float, float]:
    """Membrane F1 at argmax (ties to membrane) and at the best threshold on p(membrane)."""
    p = np.concatenate([probs[i][..., 0].ravel() for i in probs])
    t = np.concatenate([(truth[i] == 1).ravel() for i in probs])
    pred = p >= np.concatenate([probs[i][..., 1].ravel() for i in probs])
    tp, fp, fn = np.sum(pred & t), np.sum(pred & ~t), np.sum(~pred & t)
    at_argmax = 2 * tp / (2 * tp + fp + fn)
    order = np.argsort(-p, kind="stable")
    tps = np.cumsum(t[order])
    k = np.arange(1, len(p) + 1)
    best = np.max(2 * tps / (k + t.sum()))
    return float(at_argmax), float(best)


def boundary_errors(probs: dict[int, np.ndarray], truth: np.ndarray) -> tuple[float, float]:
    """Share of wrong pixels (argmax) within 1 px of a ground-truth class boundary, and error rate."""
    near = wrong = total = 0
    for i, p in probs.items():
        pred = p[..., 0] >= p[..., 1]
        actual = truth[i] == 1
        edge = ndimage.binary_dilation(actual) & ndimage.binary_dilation(~actual)
        bad = pred != actual
        near += int((bad & edge).sum())
        wrong += int(bad.sum())
        total += bad.size
    return near / max(wrong, 1), wrong / total


def main() -> None:
    """Run the variants, print and append a row per run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", nargs="+", default=["isbi"])
    parser.add_argument("--budget", type=float, nargs="+", default=[0.02])
    parser.add_argument("--labels", nargs="+", default=["random"])
    parser.add_argument("--variants", nargs="+", default=["base"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--stages", type=int, default=3)
    parser.add_argument("--trees", type=int, default=30)
    parser.add_argument("--crop", type=int, default=None)
    parser.add_argument("--pseudo-p", type=float, default=0.95)
    parser.add_argument("--pseudo-mult", type=float, default=3.0)
    parser.add_argument("--pseudo-w", type=float, default=0.5)
    parser.add_argument("--dense-rows", type=int, default=40_000, help="oracle rows (dense variants)")
    parser.add_argument("--errors", action="store_true", help="print where the errors are")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    append(
        args.results,
        f"\n## run {time.strftime('%Y-%m-%d %H:%M:%S')} UTC: trees {args.trees}, crop {args.crop or 'none'}, "
        f"pseudo p {args.pseudo_p} x{args.pseudo_mult} w {args.pseudo_w}, dense rows {args.dense_rows} {args.note}\n\n"
        "| dataset | budget | labels | variant | seed | F1 1/2/3 (argmax) | F1 1/2/3 (best threshold) | s |\n"
        "|---|---|---|---|---|---|---|---|\n",
    )
    for name in args.dataset:
        data = load(name, DATA, 4, args.crop)
        sel = FeatureSelection.ilastik_default()
        raw_feats = {i: slice_features(data.raw[i][..., None], sel) for i in [*data.train, *data.test]}
        for budget in args.budget:
            for mode in args.labels:
                for seed in args.seeds:
                    labels = {i: draw_labels(data.truth[i], mode, budget, seed * 100 + i) for i in data.train}
                    for variant in args.variants:
                        start = time.perf_counter()
                        probs = run(variant, data, raw_feats, labels, args, seed)
                        if "prior" in variant.split("+"):
                            share = np.mean(
                                [float((lab == 1).sum()) / (lab > 0).sum() for lab in labels.values()]
                            )
                            probs = [prior_shift(p, float(share)) for p in probs]
                        scores = [f1_scores(p, data.truth) for p in probs]
                        a = " / ".join(f"{s[0]:.4f}" for s in scores)
                        b = " / ".join(f"{s[1]:.4f}" for s in scores)
                        if args.errors:
                            errs = [boundary_errors(p, data.truth) for p in probs]
                            print("errors within 1 px of a boundary / error rate per stage:", errs)
                        row = (
                            f"| {name} | {100 * budget:g} % | {mode} | {variant} | {seed} | {a} | {b} | "
                            f"{time.perf_counter() - start:.0f} |"
                        )
                        print(row, flush=True)
                        append(args.results, row + "\n")


if __name__ == "__main__":
    main()
