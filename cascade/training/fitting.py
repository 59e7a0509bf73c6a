"""Training a cascade from sparse label images.

Features are computed only around labelled pixels: the label image is cut into tiles,
and for each tile holding labels the features are computed over the bounding box of
its labels (plus the halo the features need), never over whole images. Stage k+1's
training features need stage k's probabilities around its labels; those are computed
the same way, recursively, over the box grown by stage k+1's halo.

Three ways to feed stage k's predictions to stage k+1 during training:

- ``"in-sample"``: what ilastik does. At stage k's own training pixels the forest
  predicts its training data, nearly perfectly, so stage k+1 learns to over-trust it.
- ``"oob"``: at stage k's training pixels, use each tree-ensemble's out-of-bag
  prediction instead, i.e. what stage k predicts for pixels it did not see. Their
  labelled neighbours still shaped those trees, so the context stays too good.
- ``"cross-fit"`` (default): every pixel's stage-k probabilities come from a forest
  trained without the labels of its spatial block (:mod:`.crossfit`: 64-pixel blocks
  dealt to 4 folds), what stage k predicts on unseen data; the best in the accuracy
  study (``benchmarks/results/accuracy.md``).

The forests the cascade keeps are the same in every mode (one per stage, trained on
all its labels); only the training features of stages 2 and later differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import dask.array as da
import numpy as np
from dask.base import compute
from dask.delayed import delayed

from ..errors import CascadeError, DataError, FeatureSelectionError
from ..features import block_features
from ..forest import MAX_SEED, MAX_TREES, predict_proba, train_forest
from ..pipeline import Cascade, Stage, convert_probabilities
from ..project import MAX_LABEL
from .crossfit import BLOCK, HeldOut, fold_grid, row_folds, train_held_out
from .prior import PRIORS, Prior, class_weights, pick_tiles

__all__ = ["TrainingImage", "fit"]

TrainingMode = Literal["cross-fit", "oob", "in-sample"]
#: the training modes, the default first
TRAINING_MODES: tuple[str, ...] = ("cross-fit", "oob", "in-sample")


@dataclass(frozen=True, eq=False)
class TrainingImage:
    """One raw image and its label images, in internal axis order.

    Attributes
    ----------
    raw : numpy or dask array, axes ``[t,] [z,] y, x, c``
        The raw image.
    axes : str
        Internal axes of ``raw`` (``yxc``, ``zyxc``, ``tyxc``, ``tzyxc``).
    labels : tuple
        One label array per stage (or None: no labels for that stage in this image), with
        the raw image's axes and a channel axis of length 1 (or no channel axis);
        0 = unlabelled, k = class k.
    """

    raw: Any
    axes: str
    labels: tuple[Any, ...]


@dataclass
class _Context:
    """Everything the recursive region computations share during one fit."""

    raws: list[Any]
    stages: list[Stage]
    raw_dtype: np.dtype[Any]
    mode: TrainingMode
    seed: int = 0
    prior: Prior = "images"
    oob: list[dict[int, tuple[np.ndarray, np.ndarray]]] = field(default_factory=list)
    held: list[HeldOut | None] = field(default_factory=list)

    def halo(self, k: int, ndim: int) -> tuple[int, ...]:
        sel = self.stages[k].selection
        columns = sel.columns()
        xy = max(sel.column_halo(j) for j in columns)
        if ndim == 2:
            return (xy, xy)
        z = max((sel.column_halo(j) for j in columns if not sel.compute_in_2d[j]), default=0)
        return (z, xy, xy)


def _split_time(images: Sequence[TrainingImage], n_stages: int) -> list[tuple[Any, list[Any]]]:
    """(raw, labels per stage) pairs with no t axis and labels without a c axis."""
    out = []
    for image in images:
        if len(image.labels) != n_stages:
            raise DataError(
                f"each image needs one label entry per stage ({n_stages}), got {len(image.labels)}"
            )
        labels = []
        for lab in image.labels:
            if lab is not None:
                if lab.ndim == image.raw.ndim:
                    lab = lab[..., 0]
                if tuple(lab.shape) != tuple(image.raw.shape[:-1]):
                    raise DataError(
                        f"label image shape {tuple(lab.shape)} does not match the raw image "
                        f"{tuple(image.raw.shape[:-1])} (axes {image.axes!r} without c)"
                    )
            labels.append(lab)
        if image.axes.startswith("t"):
            for t in range(image.raw.shape[0]):
                out.append((image.raw[t], [None if lab is None else lab[t] for lab in labels]))
        else:
            out.append((image.raw, labels))
    return out


def _tile_shape(ndim: int) -> tuple[int, ...]:
    return (256, 256) if ndim == 2 else (64, 64, 64)


def _label_tiles(labels: Any) -> list[tuple[tuple[int, ...], np.ndarray, np.ndarray]]:
    """Labelled pixels grouped by tile: (tile start, coordinates (n, ndim), values (n,))."""
    arr = da.asarray(labels).rechunk(_tile_shape(labels.ndim))
    starts = [np.cumsum((0, *c))[:-1] for c in arr.chunks]

    def find(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        coords = np.argwhere(block > 0)
        return coords, block[tuple(coords.T)].astype(np.int64)

    keys = list(np.ndindex(*arr.numblocks))
    found = compute(*[delayed(find)(arr.blocks[key]) for key in keys])
    tiles = []
    for key, (coords, values) in zip(keys, found):
        if len(values):
            offset = tuple(int(starts[d][i]) for d, i in enumerate(key))
            tiles.append((offset, coords + np.asarray(offset), values))
    return tiles


def _region_input(ctx: _Context, image: int, k: int, lo: tuple[int, ...], hi: tuple[int, ...]) -> np.ndarray:
    """Input of stage ``k`` (0-based) over ``[lo, hi)`` of one image, as numpy."""
    raw = ctx.raws[image]
    region = tuple(slice(a, b) for a, b in zip(lo, hi))
    raw_part = np.asarray(raw[region])
    if k == 0:
        return raw_part
    probabilities = _region_probabilities(ctx, image, k - 1, lo, hi)
    return np.concatenate([raw_part, convert_probabilities(probabilities, ctx.raw_dtype)], axis=-1)


def _region_features(
    ctx: _Context, image: int, k: int, lo: tuple[int, ...], hi: tuple[int, ...]
) -> np.ndarray:
    """Stage ``k``'s features over ``[lo, hi)`` of one image, from its input over the box plus halo."""
    full = tuple(ctx.raws[image].shape[:-1])
    halo = ctx.halo(k, len(full))
    outer_lo = tuple(max(a - h, 0) for a, h in zip(lo, halo))
    outer_hi = tuple(min(b + h, n) for b, h, n in zip(hi, halo, full))
    stage_input = _region_input(ctx, image, k, outer_lo, outer_hi)
    return block_features(
        stage_input, ctx.stages[k].selection, has_t=False, lo=outer_lo, full=full, core_lo=lo, core_hi=hi
    )


def _region_probabilities(
    ctx: _Context, image: int, k: int, lo: tuple[int, ...], hi: tuple[int, ...]
) -> np.ndarray:
    """Stage ``k``'s probabilities over ``[lo, hi)`` as stage k+1's training sees them (module docs)."""
    feats = _region_features(ctx, image, k, lo, hi)
    forest = ctx.stages[k].forest
    if forest is None:  # fit trains stage k before it asks for stage k's probabilities
        raise CascadeError(f"stage {k + 1} has no trained forest yet")
    held = ctx.held[k]
    if held is not None:
        probs = held.predict(feats, image, lo, hi)
    else:
        probs = predict_proba(forest, feats.reshape(-1, feats.shape[-1])).reshape(*feats.shape[:-1], -1)
    if image in ctx.oob[k]:
        coords, values = ctx.oob[k][image]
        inside = np.all((coords >= np.asarray(lo)) & (coords < np.asarray(hi)), axis=1)
        local = tuple((coords[inside] - np.asarray(lo)).T)
        probs[local] = values[inside]
    return probs


def _tile_samples(ctx: _Context, image: int, k: int, coords: np.ndarray) -> np.ndarray:
    """Stage ``k`` features at labelled pixels ``coords`` (computed over their bounding box)."""
    lo = tuple(int(v) for v in coords.min(axis=0))
    hi = tuple(int(v) + 1 for v in coords.max(axis=0))
    samples: np.ndarray = _region_features(ctx, image, k, lo, hi)[tuple((coords - np.asarray(lo)).T)]
    return samples


def fit(
    images: Sequence[TrainingImage],
    stages: Sequence[Stage],
    *,
    trees: int = 100,
    seed: int = 0,
    mode: TrainingMode = "cross-fit",
    prior: Prior = "images",
    n_jobs: int | None = None,
    provenance: dict[str, Any] | None = None,
) -> Cascade:
    """Train every stage of a cascade from sparse labels.

    Parameters
    ----------
    images : sequence of TrainingImage
        Training images (same spatial dimensionality, channel count and dtype).
    stages : sequence of Stage
        Untrained stages: feature selection and class names each.
    trees : int
        Trees per forest.
    seed : int
        Random seed; the same inputs and seed give the same forests.
    mode : {"cross-fit", "oob", "in-sample"}
        How stage k's predictions at its own training pixels reach stage k+1 (module docs);
        ``"in-sample"`` is ilastik's.
    prior : {"images", "labels"}
        ``"images"``: each stage's exported probabilities are corrected from its labels' class
        shares to those of the training images (:mod:`.prior`); ``"labels"``: the forest's
        own, as ilastik's.
    n_jobs : int, optional
        Threads for forest training (default: all cores).
    provenance : dict, optional
        Stored in the cascade as is.

    Returns
    -------
    Cascade
        The trained cascade.

    Raises
    ------
    CascadeError
        If a stage has no labels in any image, or the images disagree.
    """
    if not images:
        raise CascadeError("no training images given")
    if mode not in TRAINING_MODES:
        raise CascadeError(f"training mode must be one of {', '.join(TRAINING_MODES)}; got {mode!r}")
    if prior not in PRIORS:
        raise CascadeError(f"prior must be one of {', '.join(PRIORS)}; got {prior!r}")
    _check_options(stages, trees, seed)
    first = images[0]
    spatial = "".join(k for k in first.axes if k in "zyx")
    for im in images:
        if "".join(k for k in im.axes if k in "zyx") != spatial:
            raise DataError(f"training images mix spatial axes {spatial!r} and {im.axes!r}")
        if im.raw.shape[-1] != first.raw.shape[-1] or np.dtype(im.raw.dtype) != np.dtype(first.raw.dtype):
            raise DataError("training images must share channel count and dtype")
    pairs = _split_time(images, len(stages))
    _check_sizes(stages, images)
    ctx = _Context([raw for raw, _ in pairs], list(stages), np.dtype(first.raw.dtype), mode, seed, prior)
    for k in range(len(stages)):
        _fit_stage(ctx, k, [labels[k] for _, labels in pairs], trees, seed + k, n_jobs)
    return Cascade(
        stages=tuple(ctx.stages),
        raw_channels=int(first.raw.shape[-1]),
        raw_dtype=str(np.dtype(first.raw.dtype)),
        spatial_axes=spatial,
        provenance=dict(provenance or {}),
    )


def _check_options(stages: Sequence[Stage], trees: int, seed: int) -> None:
    """Class counts, tree count and seed, checked before anything is computed."""
    for k, stage in enumerate(stages):
        if not 2 <= stage.n_classes <= MAX_LABEL:
            raise CascadeError(
                f"stage {k + 1} has {stage.n_classes} class(es); a stage needs 2 to {MAX_LABEL} "
                "(ilastik trains on at least two label classes and stores labels as uint8)"
            )
    if isinstance(trees, bool) or not isinstance(trees, (int, np.integer)) or not 1 <= trees <= MAX_TREES:
        raise CascadeError(f"trees must be a whole number from 1 to {MAX_TREES}, not {trees!r}")
    top = MAX_SEED - (len(stages) - 1)  # stage k trains with seed + k
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= top:
        raise CascadeError(
            f"seed must be a whole number from 0 to {top} for {len(stages)} stage(s), not {seed!r}"
        )


def _check_sizes(stages: Sequence[Stage], images: Sequence[TrainingImage]) -> None:
    """ilastik's size rule for every stage and training image (scales too large are refused)."""
    for k, stage in enumerate(stages):
        for i, image in enumerate(images):
            sizes = {key: int(n) for key, n in zip(image.axes, image.raw.shape) if key in "zyx"}
            try:
                stage.selection.check_shape(sizes)
            except FeatureSelectionError as err:
                raise FeatureSelectionError(f"stage {k + 1}, training image {i + 1}: {err}") from err


_Owner = tuple[int, np.ndarray, np.ndarray]  # (image, coordinates (n, ndim), label values (n,))


def _stage_rows(ctx: _Context, k: int, labels: list[Any]) -> tuple[np.ndarray, np.ndarray, list[_Owner]]:
    """Stage ``k``'s training rows: features (n, n_features), labels (n,), and where they come from."""
    stage = ctx.stages[k]
    tasks, owners = [], []
    for image, lab in enumerate(labels):
        if lab is None:
            continue
        for _, coords, values in _label_tiles(lab):
            if values.max() > stage.n_classes:
                raise DataError(
                    f"stage {k + 1} labels contain class {int(values.max())} but the stage has "
                    f"{stage.n_classes} classes ({', '.join(stage.class_names)})"
                )
            tasks.append(delayed(_tile_samples)(ctx, image, k, coords))
            owners.append((image, coords, values))
    if not tasks:
        raise CascadeError(f"stage {k + 1} has no labels in any image; label at least one pixel per class")
    found = np.unique(np.concatenate([values for _, _, values in owners]))
    if len(found) < 2:
        raise CascadeError(
            f"stage {k + 1} has labels of one class only ({stage.class_names[int(found[0]) - 1]}); "
            "label at least two classes (ilastik cannot train on one)"
        )
    features = compute(*tasks)
    x = np.concatenate(features).astype(np.float32)
    y = np.concatenate([v for _, _, v in owners])
    return x, y, owners


def _oob_by_image(
    owners: list[_Owner], proba: np.ndarray, keep: np.ndarray
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Out-of-bag probabilities of the rows in ``keep``, grouped by image: coordinates and values."""
    parts: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    row = 0
    for image, coords, values in owners:
        end = row + len(values)
        mine = keep[row:end]
        if mine.any():
            parts.setdefault(image, []).append((coords[mine], proba[row:end][mine]))
        row = end
    return {
        i: (np.concatenate([c for c, _ in p]), np.concatenate([v for _, v in p])) for i, p in parts.items()
    }


def _fit_stage(ctx: _Context, k: int, labels: list[Any], trees: int, seed: int, n_jobs: int | None) -> None:
    """Train stage ``k``; unless it is the last, keep what stage k+1's training needs of it."""
    stage = ctx.stages[k]
    x, y, owners = _stage_rows(ctx, k, labels)
    last = k == len(ctx.stages) - 1
    options: dict[str, Any] = {"n_outputs": stage.n_classes, "n_trees": trees, "seed": seed, "n_jobs": n_jobs}
    held: HeldOut | None = None
    oob: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if last or ctx.mode == "in-sample":
        forest = train_forest(x, y, **options)
    elif ctx.mode == "oob":
        result = train_forest(x, y, **options, oob=True)
        forest, oob = result.forest, _oob_by_image(owners, result.oob_proba, np.ones(len(y), bool))
    else:
        forest = train_forest(x, y, **options)
        grids = {i: fold_grid(tuple(r.shape[:-1]), i, seed=ctx.seed) for i, r in enumerate(ctx.raws)}
        folds = row_folds(grids, owners, BLOCK)
        forests, bad = train_held_out(
            x, y, folds, forest, n_outputs=stage.n_classes, trees=trees, seed=seed, n_jobs=n_jobs
        )
        if bad.any():  # folds whose outside holds one class: out-of-bag values there instead
            result = train_forest(x, y, **options, oob=True)
            oob = _oob_by_image(owners, result.oob_proba, bad)
        held = HeldOut(tuple(f if f is not None else forest for f in forests), grids, BLOCK)
    ctx.stages[k] = replace(stage, forest=forest)
    ctx.oob.append(oob)
    ctx.held.append(held)
    if ctx.prior == "images":
        ctx.stages[k] = replace(ctx.stages[k], class_weights=_image_weights(ctx, k, y))


def _image_weights(ctx: _Context, k: int, y: np.ndarray) -> tuple[float, ...]:
    """Stage ``k``'s class weights: the training images' class shares over its labels' (:mod:`.prior`)."""
    tasks = []
    for image, raw in enumerate(ctx.raws):
        spatial = tuple(raw.shape[:-1])
        tile = tuple(min(t, n) for t, n in zip(_tile_shape(len(spatial)), spatial))
        for lo, hi in pick_tiles(spatial, tile, ctx.seed + 7919 * image + k):
            tasks.append(delayed(_region_probabilities)(ctx, image, k, lo, hi))
    found = compute(*tasks)
    n_classes = ctx.stages[k].n_classes
    return class_weights(np.concatenate([p.reshape(-1, n_classes) for p in found]), y, n_classes)
