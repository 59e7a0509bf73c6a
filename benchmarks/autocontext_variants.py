"""Autocontext training variants for the accuracy study (issue 15), over whole 2D slices in numpy.

Every variant trains a cascade of random forests on sparse labels of a few training slices and
predicts held-out test slices. Stage 1 is ilastik's: the default feature grid on raw, one
forest. Stage k+1 sees the raw features plus features computed on stage k's probabilities
(converted to uint8 as ilastik stacks them). The variants differ in

- ``feed``: which stage-k probabilities the training slices carry into stage k+1's training
  features (test slices always get the final stage-k forest's predictions):

  * ``in-sample``: the stage-k forest's prediction everywhere (ilastik's way; cascade's
    ``fit(mode="in-sample")``);
  * ``oob``: the same, but out-of-bag probabilities at the labelled pixels (cascade's default
    today, ``fit(mode="oob")``);
  * ``xfit-image``: cross-fitting by image: slice i is predicted by a forest trained on the
    labels of the other training slices only;
  * ``xfit-block``: cross-fitting by spatial blocks: the slices are cut into square blocks
    assigned at random to K folds; the pixels of fold f are predicted by a forest trained on
    the labels outside fold f.
  * ``lib-cross-fit``, ``lib-oob``, ``lib-in-sample``: not this module's re-implementation but
    the library itself, ``cascade.training.fit(mode=...)`` and ``cascade.pipeline.predict``
    (:func:`run_library`; modifiers are ignored).

- modifiers, joined with ``+``: ``wide`` (features on the probabilities at scales up to 20,
  not only up to 10), ``all`` (the probabilities of all earlier stages, not only the last),
  ``offsets`` (Tu and Bai: the probabilities sampled at 32 offsets around each pixel, 8
  directions x radii 4, 8, 16, 32), ``balanced`` (class weights inversely proportional to the
  class frequencies of the labels), ``lean`` (features on the first C-1 probability channels
  only: with two classes the second is 1 - the first, a duplicate).

The forest, the feature kernels and the forest evaluator are cascade's own
(``train_forest`` / ``pack_sklearn``, ``block_features``, ``predict_proba``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cascade.features import DEFAULT_SCALES, FeatureSelection
from cascade.features._block import block_features
from cascade.forest import PackedForest, pack_sklearn, predict_proba

FEEDS = (
    "in-sample",
    "oob",
    "xfit-image",
    "xfit-block",
    *(f"lib-{m}" for m in ("cross-fit", "oob", "in-sample")),
)
MODIFIERS = ("wide", "all", "offsets", "balanced", "lean")
#: short names for the variants a user asks for most
PRESETS = {"ilastik": "in-sample", "default": "oob"}
WIDE_SCALES = (*DEFAULT_SCALES, 15.0, 20.0)
OFFSET_RADII = (4, 8, 16, 32)
BLOCK = 64
FOLDS = 4
#: numeric modifiers: block size, number of folds, forest min_samples_leaf
NUMERIC = r"(block|folds|leaf)\d+"


@dataclass(frozen=True)
class Variant:
    """How stage k+1 is trained from stage k (see the module docstring)."""

    name: str
    feed: str
    modifiers: frozenset[str] = field(default_factory=frozenset)

    def has(self, modifier: str) -> bool:
        """Whether ``modifier`` is switched on."""
        return modifier in self.modifiers

    def number(self, name: str, default: int) -> int:
        """The value of a numeric modifier ``<name><N>`` (e.g. ``block32``), or ``default``."""
        for m in self.modifiers:
            found = re.fullmatch(rf"{name}(\d+)", m)
            if found:
                return int(found.group(1))
        return default


def parse_variant(spec: str) -> Variant:
    """``feed[+modifier...]`` or a preset name, e.g. ``xfit-block+wide+all``.

    Raises
    ------
    ValueError
        If the feed or a modifier is unknown.
    """
    parts = spec.split("+")
    parts[0] = PRESETS.get(parts[0], parts[0])
    if parts[0] not in FEEDS:
        raise ValueError(
            f"variant {spec!r}: feed must be one of {', '.join(FEEDS)} (or {', '.join(PRESETS)})"
        )
    unknown = [m for m in parts[1:] if m not in MODIFIERS and not re.fullmatch(NUMERIC, m)]
    if unknown:
        raise ValueError(f"variant {spec!r}: unknown modifier(s) {unknown}; known: {', '.join(MODIFIERS)}")
    return Variant(spec, parts[0], frozenset(parts[1:]))


def slice_features(image: np.ndarray, selection: FeatureSelection) -> np.ndarray:
    """Features of a whole 2D image, shape (y, x, c) -> (y, x, n_features), float32."""
    shape = tuple(image.shape[:2])
    return block_features(image, selection, has_t=False, lo=(0, 0), full=shape, core_lo=(0, 0), core_hi=shape)


def wide_selection() -> FeatureSelection:
    """ilastik's default grid plus scales 15 and 20 (context features on probabilities)."""
    default = FeatureSelection.ilastik_default()
    matrix = [[row[min(j, len(row) - 1)] for j in range(len(WIDE_SCALES))] for row in default.matrix]
    return FeatureSelection.from_matrix(default.feature_ids, WIDE_SCALES, matrix)


def offset_samples(probabilities: np.ndarray) -> np.ndarray:
    """Probabilities at 8 directions x OFFSET_RADII around each pixel (clamped at borders)."""
    ny, nx = probabilities.shape[:2]
    yy, xx = np.mgrid[0:ny, 0:nx]
    out = []
    for r in OFFSET_RADII:
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)):
            ys = np.clip(yy + dy * r, 0, ny - 1)
            xs = np.clip(xx + dx * r, 0, nx - 1)
            out.append(probabilities[ys, xs])
    return np.concatenate(out, axis=-1).astype(np.float32)


def context_features(history: list[np.ndarray], variant: Variant) -> np.ndarray:
    """Stage k+1's extra features from the probabilities of stages 1..k of one slice."""
    stages = history if variant.has("all") else history[-1:]
    if variant.has("lean"):
        stages = [p[..., :-1] for p in stages]
    probs = np.concatenate(stages, axis=-1)
    as_uint8 = np.floor(np.float32(255) * probs).astype(np.uint8)  # ilastik's conversion for uint8 raw
    selection = wide_selection() if variant.has("wide") else FeatureSelection.ilastik_default()
    parts = [slice_features(as_uint8, selection)]
    if variant.has("offsets"):
        parts.append(offset_samples(probs))
    return np.concatenate(parts, axis=-1)


@dataclass
class Forest:
    """A packed forest and, when asked for, out-of-bag probabilities of its training rows."""

    packed: PackedForest
    oob: np.ndarray | None = None


def train(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_classes: int,
    trees: int,
    seed: int,
    balanced: bool,
    oob: bool,
    leaf: int = 1,
) -> Forest:
    """cascade's forest (scikit-learn, as ``cascade.forest.train_forest``), optionally class-balanced."""
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(
        n_estimators=trees,
        criterion="gini",
        max_features="sqrt",
        bootstrap=True,
        min_samples_leaf=leaf,
        random_state=seed,
        n_jobs=1,
        class_weight="balanced" if balanced else None,
    )
    x = np.ascontiguousarray(x, dtype=np.float32)
    model.fit(x, y)
    packed = pack_sklearn(model, n_classes)
    if not oob:
        return Forest(packed)
    columns = np.asarray(model.classes_, dtype=np.int64) - 1
    sums = np.zeros((len(y), n_classes))
    counts = np.zeros(len(y), np.int64)
    for tree, in_bag in zip(model.estimators_, model.estimators_samples_):
        rows = np.setdiff1d(np.arange(len(y)), in_bag)
        sums[rows[:, None], columns] += tree.predict_proba(x[rows])
        counts[rows] += 1
    proba = sums / np.maximum(counts, 1)[:, None]
    never = counts == 0
    if never.any():
        proba[never] = predict_proba(packed, x[never])
    return Forest(packed, proba.astype(np.float32))


def predict_slice(forest: Forest, features: np.ndarray) -> np.ndarray:
    """Probabilities (y, x, n_classes) of one slice's features (y, x, n_features)."""
    flat = features.reshape(-1, features.shape[-1])
    return predict_proba(forest.packed, flat).reshape(*features.shape[:2], -1)


@dataclass
class StageInput:
    """Training features at the labelled pixels, with where they come from."""

    x: np.ndarray
    y: np.ndarray
    image: np.ndarray
    coords: np.ndarray


def labelled_rows(features: list[np.ndarray], labels: list[np.ndarray]) -> StageInput:
    """Stack the features of the labelled pixels of every training slice."""
    xs, ys, images, coords = [], [], [], []
    for i, (feats, lab) in enumerate(zip(features, labels)):
        where = np.argwhere(lab > 0)
        xs.append(feats[where[:, 0], where[:, 1]])
        ys.append(lab[where[:, 0], where[:, 1]].astype(np.int64))
        images.append(np.full(len(where), i))
        coords.append(where)
    return StageInput(np.concatenate(xs), np.concatenate(ys), np.concatenate(images), np.concatenate(coords))


def block_folds(
    shape: tuple[int, int], n_images: int, seed: int, *, block: int = BLOCK, folds: int = FOLDS
) -> np.ndarray:
    """Fold of every pixel, (n_images, y, x): block x block squares dealt at random to ``folds`` folds."""
    rng = np.random.default_rng(seed)
    by, bx = -(-shape[0] // block), -(-shape[1] // block)
    n_blocks = n_images * by * bx
    deal = rng.permutation(np.arange(n_blocks) % folds).reshape(n_images, by, bx)
    return np.repeat(np.repeat(deal, block, axis=1), block, axis=2)[:, : shape[0], : shape[1]]


def training_feed(
    variant: Variant,
    forest: Forest,
    rows: StageInput,
    features: list[np.ndarray],
    *,
    n_classes: int,
    trees: int,
    seed: int,
) -> list[np.ndarray]:
    """Stage-k probabilities of every training slice, as stage k+1's training will see them."""
    balanced = variant.has("balanced")
    leaf = variant.number("leaf", 1)
    n_folds = variant.number("folds", FOLDS)
    if variant.feed in ("in-sample", "oob"):
        out = [predict_slice(forest, f) for f in features]
        if variant.feed == "oob":
            if forest.oob is None:
                raise ValueError("the oob feed needs a forest trained with oob=True")
            for i, probs in enumerate(out):
                mine = rows.image == i
                probs[rows.coords[mine, 0], rows.coords[mine, 1]] = forest.oob[mine]
        return out
    if variant.feed == "xfit-image":
        if len(features) < 2:
            raise ValueError("cross-fitting by image needs at least two training slices")
        out = []
        for i, f in enumerate(features):
            keep = rows.image != i
            held = train(
                rows.x[keep],
                rows.y[keep],
                n_classes=n_classes,
                trees=trees,
                seed=seed + 1 + i,
                balanced=balanced,
                oob=False,
                leaf=leaf,
            )
            out.append(predict_slice(held, f))
        return out
    folds = block_folds(
        features[0].shape[:2], len(features), seed, block=variant.number("block", BLOCK), folds=n_folds
    )
    row_fold = folds[rows.image, rows.coords[:, 0], rows.coords[:, 1]]
    out = [np.zeros((*f.shape[:2], n_classes), np.float32) for f in features]
    for fold in range(n_folds):
        keep = row_fold != fold
        held = train(
            rows.x[keep],
            rows.y[keep],
            n_classes=n_classes,
            trees=trees,
            seed=seed + 1 + fold,
            balanced=balanced,
            oob=False,
            leaf=leaf,
        )
        for i, f in enumerate(features):
            mask = folds[i] == fold
            out[i][mask] = predict_proba(held.packed, f[mask])
    return out


def run_cascade(
    variant: Variant,
    raw_features: dict[int, np.ndarray],
    labels: dict[int, np.ndarray],
    test: list[int],
    *,
    n_classes: int,
    stages: int,
    trees: int,
    seed: int,
) -> list[dict[int, np.ndarray]]:
    """Train ``stages`` stages on the labelled training slices, return test probabilities per stage.

    Parameters
    ----------
    variant : Variant
        How stage k+1 is trained.
    raw_features : dict slice -> ndarray (y, x, n_features)
        Stage-1 features of every training and test slice.
    labels : dict slice -> ndarray of uint8 (y, x)
        Sparse labels (0 = unlabelled) of the training slices.
    test : list of int
        Test slices.
    n_classes, stages, trees, seed : int
        Problem and forest settings.

    Returns
    -------
    list of dict slice -> ndarray (y, x, n_classes)
        Per stage, the test slices' probabilities.
    """
    train_ids = sorted(labels)
    history: dict[int, list[np.ndarray]] = {i: [] for i in [*train_ids, *test]}
    results: list[dict[int, np.ndarray]] = []
    for k in range(stages):

        def feats(i: int) -> np.ndarray:
            if k == 0:
                return raw_features[i]
            return np.concatenate([raw_features[i], context_features(history[i], variant)], axis=-1)

        train_feats = [feats(i) for i in train_ids]
        rows = labelled_rows(train_feats, [labels[i] for i in train_ids])
        stage_seed = seed * 1000 + 100 * k
        need_oob = variant.feed == "oob" and k < stages - 1
        forest = train(
            rows.x,
            rows.y,
            n_classes=n_classes,
            trees=trees,
            seed=stage_seed,
            balanced=variant.has("balanced"),
            oob=need_oob,
            leaf=variant.number("leaf", 1),
        )
        results.append({i: predict_slice(forest, feats(i)) for i in test})
        if k < stages - 1:
            fed = training_feed(
                variant, forest, rows, train_feats, n_classes=n_classes, trees=trees, seed=stage_seed
            )
            for i, probs in zip(train_ids, fed):
                history[i].append(probs)
            for i in test:
                history[i].append(results[-1][i])
    return results


def membrane_f1(probabilities: dict[int, np.ndarray], truth: np.ndarray) -> float:
    """Membrane (class 1) F1 pooled over the test slices: prediction = argmax, ties to class 1."""
    tp = fp = fn = 0
    for i, probs in probabilities.items():
        predicted = np.argmax(probs, axis=-1) == 0
        actual = truth[i] == 1
        tp += int(np.sum(predicted & actual))
        fp += int(np.sum(predicted & ~actual))
        fn += int(np.sum(~predicted & actual))
    return 2 * tp / max(2 * tp + fp + fn, 1)


def summary(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def describe(variant: Variant) -> dict[str, Any]:
    """A variant as a plain dict (for the results file)."""
    return {"name": variant.name, "feed": variant.feed, "modifiers": sorted(variant.modifiers)}


def run_library(
    mode: str,
    raw: dict[int, np.ndarray],
    labels: dict[int, np.ndarray],
    test: list[int],
    *,
    class_names: tuple[str, ...],
    stages: int,
    trees: int,
    seed: int,
) -> list[dict[int, np.ndarray]]:
    """Like :func:`run_cascade`, with the library: ``fit(mode=mode)`` on 2D slices, then ``predict``
    (the forests' own probabilities: ``prior="labels"``, as the study's re-implementation)."""
    import dask

    from cascade.pipeline import Stage, predict
    from cascade.training import TrainingImage, fit

    images = [TrainingImage(raw[i][..., None], "yxc", (labels[i],) * stages) for i in sorted(labels)]
    plan = [Stage(FeatureSelection.ilastik_default(), class_names)] * stages
    with dask.config.set(scheduler="synchronous"):
        model = fit(images, plan, trees=trees, seed=seed, mode=mode, prior="labels", n_jobs=1)  # type: ignore[arg-type]
        out: list[dict[int, np.ndarray]] = [{} for _ in range(stages)]
        for i in test:
            for k, result in enumerate(predict(model, raw[i][..., None], axes="yxc")):
                out[k][i] = np.asarray(result.probabilities.compute())
    return out
