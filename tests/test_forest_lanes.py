"""cascade.forest's prediction kernel: integer keys, branch-free lanes, votes and float sums.

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
from cascade.forest._lanes import LANES, MAX_VOTES, float_keys, forest_votes_or_sums, threshold_keys
from cascade.forest._layout import compact_layout
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


def test_votes_and_float_sums_agree_on_one_hot_forests() -> None:
    x, y = make_data(500, 5, 4, seed=3)
    forest = pack_sklearn(RandomForestClassifier(n_estimators=9, random_state=0).fit(x, y), 4)
    compact = compact_layout(forest)
    assert compact.one_hot
    pixels, _ = make_data(1000, 5, 4, seed=4)
    outs = []
    for use_votes in (True, False):
        out = np.empty((pixels.shape[0], 4), dtype=np.float32)
        forest_votes_or_sums(
            pixels, compact.keys, compact.key_roots, compact.sink, compact.leaves, use_votes, out, 64
        )
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], reference(forest, pixels))


@pytest.mark.parametrize("n_pixels", [0, 1, LANES - 1, LANES, LANES + 1, 64, 65, 129])
def test_block_edges(n_pixels: int) -> None:
    """Fewer pixels than lanes, exactly a block, one past it; blocks of 64 rows."""
    x, y = make_data(300, 4, 3, seed=5)
    forest = pack_sklearn(RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y), 3)
    compact = compact_layout(forest)
    pixels, _ = make_data(n_pixels, 4, 3, seed=6)
    out = np.empty((n_pixels, 3), dtype=np.float32)
    forest_votes_or_sums(pixels, compact.keys, compact.key_roots, compact.sink, compact.leaves, True, out, 64)
    np.testing.assert_array_equal(out, reference(forest, pixels))


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
