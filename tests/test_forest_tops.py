"""The tops of the lane trees: their first levels evaluated as bit masks, the lanes starting below.

Every tree of more than ``MAX_LEAVES`` leaves gets a top of ``TOP_DEPTH`` levels; a pixel's start
is the node its walk reaches after ``TOP_DEPTH`` steps, or the leaf it reaches before. The
forest's output must stay the node-by-node rule's, whatever the block size and pixel count.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from test_forest_lanes import make_data, reference, run_kernel

from cascade.forest import PackedForest, pack_sklearn, predict_proba
from cascade.forest._lanes import LANES, float_keys
from cascade.forest._layout import CompactForest, compact_layout
from cascade.forest._masks import MAX_LEAVES, TOP_DEPTH, top_starts


def walked_starts(compact: CompactForest, keys_x: np.ndarray, root: int) -> np.ndarray:
    """Each pixel's reference after ``TOP_DEPTH`` steps from ``root`` (or its leaf), in Python."""
    keys, sink = compact.keys, compact.sink
    starts = np.empty(keys_x.shape[0], dtype=np.int64)
    for k, row in enumerate(keys_x):
        ref = root
        for _ in range(TOP_DEPTH):
            if ref >= sink:
                break
            ref = keys[ref + 2] if row[keys[ref]] < keys[ref + 1] else keys[ref + 3]
        starts[k] = ref
    return starts


def deep_forest(trees: int, seed: int) -> tuple[PackedForest, CompactForest]:
    x, y = make_data(3000, 8, 3, seed=seed)
    forest = pack_sklearn(RandomForestClassifier(n_estimators=trees, random_state=0).fit(x, y), 3)
    return forest, compact_layout(forest)


def test_top_starts_are_the_nodes_the_walk_reaches() -> None:
    _, compact = deep_forest(4, seed=21)
    masks = compact.masks
    assert masks.n_trees == 0  # every tree is larger than a mask tree: each has a top
    assert np.all(masks.top_span[:, 0] >= 0)
    pixels, _ = make_data(500, 8, 3, seed=22)
    pixels[::5, 3] = np.nan
    keys_x = float_keys(pixels.reshape(-1)).reshape(pixels.shape)
    xt = np.ascontiguousarray(keys_x.T)
    tops = masks.arrays()[7:]
    bv = np.empty(pixels.shape[0], np.uint16)
    starts = np.empty(pixels.shape[0], np.int32)
    reached_leaf = False
    for t, root in enumerate(compact.key_roots):
        top_starts(xt, pixels.shape[0], tops, t, root, bv, starts)
        expected = walked_starts(compact, keys_x, int(root))
        np.testing.assert_array_equal(starts, expected)
        assert np.count_nonzero(expected < compact.sink) > pixels.shape[0] // 2  # most go on below
        reached_leaf |= bool(np.any(expected >= compact.sink))
    assert reached_leaf  # some leaves are above the top's last level


def test_trees_without_a_top_start_at_the_root() -> None:
    _, compact = deep_forest(2, seed=23)
    tops = list(compact.masks.arrays()[7:])
    tops[3] = np.full_like(tops[3], -1)  # no tree has a top
    starts = np.zeros(7, np.int32)
    top_starts(np.zeros((8, 7), np.int32), 7, tuple(tops), 1, 12, np.empty(7, np.uint16), starts)
    np.testing.assert_array_equal(starts, 12)


@pytest.mark.parametrize("use_votes", [True, False])
@pytest.mark.parametrize("n_pixels", [1, LANES - 1, LANES, LANES + 1, 2 * LANES + 3, 64, 65, 300])
def test_lanes_from_the_tops_in_blocks_of_every_size(n_pixels: int, use_votes: bool) -> None:
    """Fewer pixels than lanes, exactly the lanes, blocks of 64 rows and a short last block."""
    forest, compact = deep_forest(5, seed=24)
    assert compact.masks.top_feature.shape[0] > 0
    pixels, _ = make_data(n_pixels, 8, 3, seed=25)
    pixels[::3, 0] = np.nan
    expected = reference(forest, pixels)
    np.testing.assert_array_equal(run_kernel(compact, pixels, use_votes, True), expected)
    np.testing.assert_array_equal(run_kernel(compact, pixels, use_votes, False), expected)


def test_tops_agree_with_scikit_learn_on_fully_grown_trees() -> None:
    """The default workload's kind of trees (much larger than a top) through ``predict_proba``."""
    x, y = make_data(8000, 12, 2, seed=26)
    model = RandomForestClassifier(n_estimators=8, random_state=3).fit(x, y)
    assert all(tree.tree_.n_leaves > 8 * MAX_LEAVES for tree in model.estimators_)
    forest = pack_sklearn(model, 2)
    pixels, _ = make_data(2500, 12, 2, seed=27)
    result = predict_proba(forest, pixels)
    np.testing.assert_array_equal(result, reference(forest, pixels))
    np.testing.assert_allclose(result, model.predict_proba(pixels), rtol=0, atol=1e-6)


@pytest.mark.parametrize("classes", [2, 9, 10, 12])
def test_votes_of_lane_trees_counted_or_scattered(classes: int) -> None:
    """Up to 9 classes the lane trees' votes are counted by compare passes, above by increments."""
    x, y = make_data(4000, 12, classes, seed=classes)
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    forest = pack_sklearn(model, classes)
    compact = compact_layout(forest)
    assert compact.one_hot and compact.masks.n_trees == 0
    pixels, _ = make_data(333, 12, classes, seed=31)
    expected = reference(forest, pixels)
    for use_votes in (True, False):
        np.testing.assert_array_equal(run_kernel(compact, pixels, use_votes, True), expected)
    np.testing.assert_allclose(predict_proba(forest, pixels), model.predict_proba(pixels), rtol=0, atol=1e-6)
