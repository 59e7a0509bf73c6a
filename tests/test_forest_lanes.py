"""cascade.forest's prediction kernel: integer keys, branch-free lanes, bit masks, votes and float sums.

Every prediction is compared with a plain numpy evaluation of the :class:`PackedForest` rule
(``x < threshold`` goes left, NaN goes right; the mean over trees of the float64 leaf rows, added
tree after tree, divided by the number of trees and rounded to float32): the kernel's output must
be equal to it, not close.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from cascade.forest import PackedForest, pack_sklearn, predict_proba
from cascade.forest._evaluate import forest_votes_or_sums
from cascade.forest._lanes import LANES, MAX_VOTES, float_keys, threshold_keys
from cascade.forest._layout import CompactForest, compact_layout
from cascade.forest._masks import MAX_LEAVES, mask_layout
from cascade.forest._predict import block_rows, row_parts

SPECIAL = np.array(
    [0.0, -0.0, 1.0, -1.0, 1e-45, -1e-45, 1.1754944e-38, -1.1754944e-38, 3.4028235e38, -3.4028235e38]
    + [np.inf, -np.inf, np.nan, 0.5, -0.5, 2.0, -2.0],
    dtype=np.float32,
)


def reference(forest: PackedForest, x: np.ndarray) -> np.ndarray:
    """The forest's probabilities computed node by node with numpy (the specification)."""
    x = np.asarray(x, dtype=np.float32)
    rows = np.arange(x.shape[0])
    sums = np.zeros((x.shape[0], forest.n_outputs), dtype=np.float64)
    for root in forest.roots:
        node = np.full(x.shape[0], root, dtype=np.int64)
        while True:
            split = forest.left[node] >= 0
            if not split.any():
                break
            at = node[split]
            go_left = x[rows[split], forest.feature[at]] < forest.threshold[at]
            node[split] = np.where(go_left, forest.left[at], forest.right[at])
        sums += forest.value[node].astype(np.float64)
    return (sums / forest.roots.shape[0]).astype(np.float32)


def run_kernel(
    compact: CompactForest, pixels: np.ndarray, use_votes: bool, masks: bool, block: int = 64
) -> np.ndarray:
    """The block loop on ``pixels``; ``masks=False`` walks every tree with the lanes."""
    layout = compact.masks
    if not masks:  # a layout for a forest without split nodes: no tree is a mask tree
        layout = mask_layout(np.zeros(0, np.int32), np.full(compact.key_roots.shape, 0), 0, compact.n_outputs)
        assert layout.n_trees == 0
    out = np.empty((pixels.shape[0], compact.n_outputs), dtype=np.float32)
    args = (compact.keys, compact.key_roots, compact.sink, compact.leaves, layout.arrays(), use_votes)
    forest_votes_or_sums(pixels, *args, out, block)
    return out


def make_data(rows: int, features: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features), dtype=np.float32)
    y = 1 + np.argmax(x[:, :classes] + rng.standard_normal((rows, classes)), axis=1)
    return x, y.astype(np.uint8)


@pytest.mark.parametrize(
    ("classes", "trees", "leaf", "one_hot"),
    [
        pytest.param(2, 10, 1, True, id="two-classes-fully-grown"),
        pytest.param(9, 7, 1, True, id="nine-classes-fully-grown"),
        pytest.param(3, 6, 8, False, id="impure-leaves"),
        pytest.param(2, 4, 1, True, id="even-trees-ties"),
    ],
)
def test_predictions_equal_the_numpy_rule(classes: int, trees: int, leaf: int, one_hot: bool) -> None:
    x, y = make_data(600, 9, classes, seed=classes)
    model = RandomForestClassifier(n_estimators=trees, min_samples_leaf=leaf, random_state=1).fit(x, y)
    forest = pack_sklearn(model, classes)
    assert compact_layout(forest).one_hot is one_hot
    pixels, _ = make_data(3 * block_rows(9) + 5, 9, classes, seed=7)
    expected = reference(forest, pixels)
    result = predict_proba(forest, pixels)
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_allclose(result, model.predict_proba(pixels), rtol=0, atol=1e-6)
    if trees % 2 == 0 and classes == 2:
        assert np.any(result[:, 0] == 0.5)  # ties survive exactly


@pytest.mark.parametrize("masks", [True, False])
def test_votes_and_float_sums_agree_on_one_hot_forests(masks: bool) -> None:
    x, y = make_data(500, 5, 4, seed=3)
    forest = pack_sklearn(RandomForestClassifier(n_estimators=9, random_state=0).fit(x, y), 4)
    compact = compact_layout(forest)
    assert compact.one_hot
    pixels, _ = make_data(1000, 5, 4, seed=4)
    outs = [run_kernel(compact, pixels, use_votes, masks) for use_votes in (True, False)]
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], reference(forest, pixels))


@pytest.mark.parametrize("masks", [True, False])
@pytest.mark.parametrize("n_pixels", [0, 1, LANES - 1, LANES, LANES + 1, 64, 65, 129])
def test_block_edges(n_pixels: int, masks: bool) -> None:
    """Fewer pixels than lanes, exactly a block, one past it; blocks of 64 rows."""
    x, y = make_data(300, 4, 3, seed=5)
    forest = pack_sklearn(RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y), 3)
    compact = compact_layout(forest)
    pixels, _ = make_data(n_pixels, 4, 3, seed=6)
    np.testing.assert_array_equal(run_kernel(compact, pixels, True, masks), reference(forest, pixels))


@pytest.mark.parametrize("leaves", [2, 3, 31, 32, 33, MAX_LEAVES - 1, MAX_LEAVES, MAX_LEAVES + 1])
def test_mask_trees_up_to_the_largest(leaves: int) -> None:
    """Trees of exactly ``leaves`` leaves (impure leaves: float sums): masks up to MAX_LEAVES, lanes above."""
    x, y = make_data(3000, 8, 3, seed=leaves)
    model = RandomForestClassifier(n_estimators=6, max_leaf_nodes=leaves, random_state=0).fit(x, y)
    assert all(tree.tree_.n_leaves == leaves for tree in model.estimators_)
    forest = pack_sklearn(model, 3)
    compact = compact_layout(forest)
    assert not compact.one_hot
    assert compact.masks.n_trees == (6 if leaves <= MAX_LEAVES else 0)
    pixels, _ = make_data(700, 8, 3, seed=99)
    pixels[::7, 2] = np.nan
    expected = reference(forest, pixels)
    np.testing.assert_array_equal(run_kernel(compact, pixels, False, True, block=128), expected)
    np.testing.assert_array_equal(run_kernel(compact, pixels, False, False, block=128), expected)
    np.testing.assert_array_equal(predict_proba(forest, pixels), expected)


def test_forest_of_mask_trees_lane_trees_and_lone_leaves() -> None:
    """One-hot votes from both paths in one forest, with single-leaf trees among them."""
    x, y = make_data(120, 6, 3, seed=11)
    small = pack_sklearn(RandomForestClassifier(n_estimators=4, random_state=0).fit(x[:40], y[:40]), 3)
    x_big, y_big = make_data(4000, 6, 3, seed=12)
    big = pack_sklearn(RandomForestClassifier(n_estimators=3, random_state=0).fit(x_big, y_big), 3)
    forest = _joined(big, small)
    compact = compact_layout(forest)
    assert compact.one_hot and 0 < compact.masks.n_trees < forest.n_trees - 1
    pixels, _ = make_data(3 * 64 + 5, 6, 3, seed=13)
    expected = reference(forest, pixels)
    for use_votes in (True, False):
        np.testing.assert_array_equal(run_kernel(compact, pixels, use_votes, True), expected)
    np.testing.assert_array_equal(predict_proba(forest, pixels), expected)


def _joined(big: PackedForest, small: PackedForest) -> PackedForest:
    """``big``'s trees, a lone class-2 leaf, then ``small``'s trees interleaved in one forest."""
    offset = big.feature.shape[0]
    shift = np.where(small.left >= 0, offset + 1, 0).astype(np.int32)
    leaf = np.zeros((1, big.n_outputs), np.float32)
    leaf[0, 1] = 1
    return PackedForest(
        np.concatenate([big.feature, [-1], small.feature]).astype(np.int32),
        np.concatenate([big.threshold, [0], small.threshold]).astype(np.float32),
        np.concatenate([big.left, [-1], small.left + shift]).astype(np.int32),
        np.concatenate([big.right, [-1], small.right + shift]).astype(np.int32),
        np.concatenate([big.value, leaf, small.value]).astype(np.float32),
        np.concatenate(
            [
                big.roots[:1],
                small.roots[:2] + offset + 1,
                [offset],
                big.roots[1:],
                small.roots[2:] + offset + 1,
            ]
        ),
        big.n_features,
    )


def test_float_keys_keep_the_order() -> None:
    rng = np.random.default_rng(8)
    values = np.concatenate([SPECIAL, rng.standard_normal(300).astype(np.float32) * 1e-3])
    with np.errstate(over="ignore"):  # the float32 maximum steps to inf
        values = np.concatenate([values, np.nextafter(values, np.float32(np.inf))])
    keys = float_keys(values).astype(np.int64)
    t_keys = threshold_keys(values).astype(np.int64)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(keys[:, None] < t_keys[None, :], values[:, None] < values[None, :])


def test_special_values_and_nan_thresholds() -> None:
    """One stump per special threshold (NaN included), every special value as a pixel."""
    n = SPECIAL.shape[0]
    feature = np.tile(np.array([0, -1, -1], dtype=np.int32), n)
    threshold = np.zeros(3 * n, dtype=np.float32)
    threshold[0::3] = SPECIAL
    base = 3 * np.arange(n, dtype=np.int32)
    left = np.full(3 * n, -1, dtype=np.int32)
    right = np.full(3 * n, -1, dtype=np.int32)
    left[0::3], right[0::3] = base + 1, base + 2
    value = np.zeros((3 * n, 2), dtype=np.float32)
    value[1::3, 0] = 1
    value[2::3, 1] = 1
    forest = PackedForest(feature, threshold, left, right, value, base.astype(np.int64), 1)
    pixels = SPECIAL[:, None].copy()
    np.testing.assert_array_equal(predict_proba(forest, pixels), reference(forest, pixels))
    single = PackedForest(
        feature[:3], threshold[:3], left[:3], right[:3], value[:3], base[:1].astype(np.int64), 1
    )
    assert predict_proba(single, np.array([[np.nan]], dtype=np.float32))[0, 1] == 1  # NaN goes right


def test_more_trees_than_vote_counters_hold() -> None:
    """Single-leaf trees: above MAX_VOTES trees the float sums are used, with the same result."""
    n_trees = MAX_VOTES + 2
    value = np.zeros((n_trees, 2), dtype=np.float32)
    value[::3, 0] = 1
    value[value[:, 0] == 0, 1] = 1
    minus = np.full(n_trees, -1, dtype=np.int32)
    forest = PackedForest(minus, np.zeros(n_trees, np.float32), minus, minus, value, np.arange(n_trees), 3)
    assert compact_layout(forest).one_hot
    pixels = np.zeros((LANES + 3, 3), dtype=np.float32)
    np.testing.assert_array_equal(predict_proba(forest, pixels), reference(forest, pixels))


@pytest.mark.parametrize(
    ("n_rows", "n_threads", "block"),
    [(0, 2, 64), (1, 2, 64), (64, 3, 64), (1000, 2, 64), (10**6, 2, 1024), (999, 7, 100)],
)
def test_row_parts_cover_the_rows_in_whole_blocks(n_rows: int, n_threads: int, block: int) -> None:
    parts = row_parts(n_rows, n_threads, block)
    starts = [a for a, _ in parts]
    stops = [b for _, b in parts]
    assert starts[0] == 0 and stops[-1] == n_rows
    assert starts[1:] == stops[:-1]
    assert all((b - a) % block == 0 for a, b in parts[:-1])
    assert len(parts) <= max(1, 8 * n_threads)
    if n_rows >= 8 * n_threads * block:
        assert len(parts) >= 8 * n_threads - 1  # enough ranges to even out slow threads


@pytest.mark.parametrize("n_threads", [2, 3])
def test_threads_take_row_ranges_with_the_same_result(n_threads: int) -> None:
    """Many ranges over a few threads (C order and a strided view) give the one-thread result."""
    x, y = make_data(400, 6, 3, seed=9)
    forest = pack_sklearn(RandomForestClassifier(n_estimators=6, random_state=2).fit(x, y), 3)
    block = block_rows(6)
    pixels, _ = make_data(20 * block + 7, 6, 3, seed=10)
    assert len(row_parts(pixels.shape[0], n_threads, block)) > n_threads
    expected = reference(forest, pixels)
    np.testing.assert_array_equal(predict_proba(forest, pixels, n_threads=n_threads), expected)
    wide = np.zeros((pixels.shape[0], 8), dtype=np.float32)
    wide[:, 1:7] = pixels
    np.testing.assert_array_equal(predict_proba(forest, wide[:, 1:7], n_threads=n_threads), expected)
