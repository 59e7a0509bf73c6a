"""cascade.forest: packing scikit-learn forests, the numba evaluator, training and out-of-bag output."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from cascade.errors import DataError, ProjectError
from cascade.forest import PackedForest, TrainedForest, pack_sklearn, predict_proba, train_forest
from cascade.forest._layout import compact_layout
from cascade.forest._sklearn import strict_float32_thresholds

ATOL = 1e-6


def make_data(
    rows: int, features: int, labels: tuple[int, ...], seed: int, noise: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Float32 features and labels drawn from ``labels`` with a learnable, noisy rule."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features), dtype=np.float32)
    score = x[:, : len(labels)] + noise * rng.standard_normal((rows, len(labels)))
    y = np.asarray(labels, dtype=np.uint8)[np.argmax(score, axis=1)]
    return x, y


def sklearn_forest(x: np.ndarray, y: np.ndarray, n_trees: int, seed: int = 0) -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=n_trees, random_state=seed).fit(x, y)


def assert_matches_sklearn(model: RandomForestClassifier, n_outputs: int, pixels: np.ndarray) -> np.ndarray:
    """Packed prediction equals sklearn's in the seen classes' channels and is 0 elsewhere."""
    proba = predict_proba(pack_sklearn(model, n_outputs), pixels)
    assert proba.dtype == np.float32
    assert proba.shape == (pixels.shape[0], n_outputs)
    channels = model.classes_.astype(int) - 1
    np.testing.assert_allclose(proba[:, channels], model.predict_proba(pixels), rtol=0, atol=ATOL)
    unseen = np.setdiff1d(np.arange(n_outputs), channels)
    assert not proba[:, unseen].any()
    return proba


def test_strict_thresholds_give_the_same_decisions() -> None:
    rng = np.random.default_rng(1)
    special = [0.0, -0.0, 0.5, 1.0, -1.5, 1e-45, 3.4028234663852886e38, 1e39, -1e39, 1.0 + 1e-12]
    t = np.concatenate([special, rng.standard_normal(2000) * 10.0 ** rng.integers(-8, 8, 2000)])
    t32 = strict_float32_thresholds(t)
    assert t32.dtype == np.float32
    with np.errstate(over="ignore"):  # float32 neighbours of thresholds near float32's range end
        base = t.astype(np.float32)
        candidates = [base]
        for direction in (np.inf, -np.inf):
            step = base
            for _ in range(2):
                step = np.nextafter(step, np.float32(direction))
                candidates.append(step)
    for x in candidates:
        np.testing.assert_array_equal(x.astype(np.float64) <= t, x < t32)


@pytest.mark.parametrize(
    ("labels", "n_outputs", "n_trees", "noise"),
    [
        pytest.param((1, 2, 3), 3, 20, 0.5, id="three-classes"),
        pytest.param((1, 3), 4, 10, 0.5, id="missing-classes"),
        pytest.param((2,), 3, 5, 0.5, id="single-class"),
        pytest.param((1, 2), 2, 1, 0.5, id="one-tree"),
        pytest.param((1, 2, 3, 4, 5), 6, 8, 50.0, id="deep-noise-labels"),
    ],
)
def test_pack_and_predict_match_sklearn(
    labels: tuple[int, ...], n_outputs: int, n_trees: int, noise: float
) -> None:
    x, y = make_data(400, 7, labels, seed=2, noise=noise)
    model = sklearn_forest(x, y, n_trees)
    pixels, _ = make_data(3000, 7, labels, seed=3)
    proba = assert_matches_sklearn(model, n_outputs, pixels)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=ATOL)
    if noise > 1:
        assert max(tree.get_depth() for tree in model.estimators_) >= 12


def test_pixels_exactly_on_thresholds() -> None:
    """Discrete features: pixels at, just below and just above every split threshold."""
    rng = np.random.default_rng(4)
    x = rng.integers(0, 5, size=(300, 4)).astype(np.float32) / np.float32(3.0)
    y = (1 + (x.sum(axis=1) > 2.6) + (x[:, 0] > 0.5)).astype(np.uint8)
    model = sklearn_forest(x, y, 10)
    thresholds = np.unique(
        np.concatenate([e.tree_.threshold[e.tree_.feature >= 0] for e in model.estimators_])
    )
    assert thresholds.size > 3
    near = [thresholds.astype(np.float32)]
    near += [np.nextafter(near[0], np.float32(d)) for d in (np.inf, -np.inf)]
    values = np.concatenate(near + [np.unique(x)])
    pixels = rng.choice(values, size=(5000, 4)).astype(np.float32)
    assert_matches_sklearn(model, 3, pixels)


def test_hand_made_forest_uses_strict_less_than() -> None:
    """Tree 0 splits feature 1 at 0.5 into one-hot leaves; tree 1 is a single impure leaf."""
    forest = PackedForest(
        feature=np.array([1, -1, -1, -1], dtype=np.int32),
        threshold=np.array([0.5, 0, 0, 0], dtype=np.float32),
        left=np.array([1, -1, -1, -1], dtype=np.int32),
        right=np.array([2, -1, -1, -1], dtype=np.int32),
        value=np.array([[0, 0], [1, 0], [0, 1], [0.25, 0.75]], dtype=np.float32),
        roots=np.array([0, 3], dtype=np.int64),
        n_features=2,
    )
    pixels = np.array([[9, 0.4999], [9, 0.5], [9, np.nan], [9, -np.inf]], dtype=np.float32)
    expected = np.array([[0.625, 0.375], [0.125, 0.875], [0.125, 0.875], [0.625, 0.375]], dtype=np.float32)
    np.testing.assert_array_equal(predict_proba(forest, pixels), expected)


SmallForest = tuple[RandomForestClassifier, PackedForest, np.ndarray]


@pytest.fixture(scope="module")
def small_forest() -> SmallForest:
    x, y = make_data(300, 6, (1, 2, 3), seed=5)
    model = sklearn_forest(x, y, 12)
    pixels, _ = make_data(2500, 6, (1, 2, 3), seed=6)
    return model, pack_sklearn(model, 3), pixels


def test_memory_orders_dtypes_threads_and_out(small_forest: SmallForest) -> None:
    _, forest, pixels = small_forest
    expected = predict_proba(forest, pixels)
    wide = np.zeros((pixels.shape[0], 9), dtype=np.float32)
    wide[:, 2:8] = pixels
    variants = {
        "fortran": np.asfortranarray(pixels),
        "strided": wide[:, 2:8],
        "float64": pixels.astype(np.float64),
    }
    for name, variant in variants.items():
        np.testing.assert_array_equal(predict_proba(forest, variant), expected, err_msg=name)
    np.testing.assert_array_equal(predict_proba(forest, pixels[::-1]), expected[::-1])
    out = np.full_like(expected, -1.0)
    assert predict_proba(forest, pixels, out=out, n_threads=3) is out
    np.testing.assert_array_equal(out, expected)
    assert predict_proba(forest, pixels[:0]).shape == (0, 3)
    np.testing.assert_array_equal(predict_proba(forest, pixels[:5]), expected[:5])


def test_concurrent_first_calls_share_one_layout(small_forest: SmallForest) -> None:
    """Like dask chunks: many threads predicting with a forest that has no layout yet."""
    model, _, pixels = small_forest
    forest = pack_sklearn(model, 3)
    chunks = np.array_split(pixels, 8)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda chunk: predict_proba(forest, chunk), chunks))
    np.testing.assert_array_equal(np.concatenate(results), predict_proba(forest, pixels))
    assert compact_layout(forest) is compact_layout(forest)


def test_predict_rejects_bad_input(small_forest: SmallForest) -> None:
    _, forest, pixels = small_forest
    with pytest.raises(DataError, match="5 feature columns, the forest expects 6"):
        predict_proba(forest, pixels[:, :5])
    with pytest.raises(DataError, match="2-D"):
        predict_proba(forest, pixels[0])
    with pytest.raises(DataError, match="n_threads"):
        predict_proba(forest, pixels, n_threads=0)
    with pytest.raises(DataError, match="out must be"):
        predict_proba(forest, pixels, out=np.empty((pixels.shape[0], 2), np.float32))


def test_invalid_packed_forest_is_a_project_error(small_forest: SmallForest) -> None:
    _, forest, _ = small_forest
    fields = {
        name: getattr(forest, name) for name in ("feature", "threshold", "left", "right", "value", "roots")
    }
    cycle = dict(fields, left=np.where(np.arange(forest.left.size) == 1, 0, forest.left).astype(np.int32))
    cycle["right"] = np.where(np.arange(forest.left.size) == 1, 0, forest.right).astype(np.int32)
    cycle["feature"] = np.where(np.arange(forest.left.size) == 1, 0, forest.feature).astype(np.int32)
    with pytest.raises(ProjectError, match="reached twice"):
        compact_layout(PackedForest(**cycle, n_features=6))
    with pytest.raises(ProjectError, match="outside"):
        compact_layout(PackedForest(**fields, n_features=2))
    with pytest.raises(ProjectError, match="expected a PackedForest"):
        compact_layout(fields)  # type: ignore[arg-type]
    with pytest.raises(ProjectError, match="float32"):
        compact_layout(
            PackedForest(**dict(fields, threshold=forest.threshold.astype(np.float64)), n_features=6)
        )


def test_pack_sklearn_rejects_bad_labels(small_forest: SmallForest) -> None:
    model, _, _ = small_forest
    with pytest.raises(DataError, match=r"1\.\.n_outputs=2"):
        pack_sklearn(model, 2)
    with pytest.raises(DataError, match="one label per model class"):
        pack_sklearn(model, 3, class_values=[1, 2])
    with pytest.raises(DataError, match="distinct"):
        pack_sklearn(model, 3, class_values=[1, 1, 2])
    relabelled = pack_sklearn(model, 5, class_values=[5, 4, 3])
    np.testing.assert_array_equal(relabelled.value[:, [4, 3, 2]], pack_sklearn(model, 3).value)


def test_train_forest_is_deterministic_and_matches_sklearn() -> None:
    x, y = make_data(500, 8, (1, 2, 4), seed=7)
    first = train_forest(x, y, n_outputs=4, n_trees=10, seed=3)
    second = train_forest(x, y, n_outputs=4, n_trees=10, seed=3, n_jobs=2)
    for name in ("feature", "threshold", "left", "right", "value", "roots"):
        a, b = getattr(first, name), getattr(second, name)
        assert a.dtype == b.dtype
        assert a.tobytes() == b.tobytes(), name
    other_seed = train_forest(x, y, n_outputs=4, n_trees=10, seed=4)
    assert other_seed.feature.tobytes() != first.feature.tobytes()
    reference = RandomForestClassifier(n_estimators=10, max_features="sqrt", random_state=3).fit(x, y)
    assert_matches_sklearn(reference, 4, x)
    np.testing.assert_array_equal(predict_proba(first, x), predict_proba(pack_sklearn(reference, 4), x))


def test_out_of_bag_probabilities() -> None:
    x, y = make_data(60, 5, (1, 2), seed=8)
    result = train_forest(x, y, n_outputs=3, n_trees=4, seed=1, oob=True)
    assert isinstance(result, TrainedForest)
    proba, counts = result.oob_proba, result.oob_counts
    assert proba.dtype == np.float32
    assert proba.shape == (60, 3)
    assert counts.shape == (60,)
    assert (proba >= 0).all() and (proba <= 1).all()
    assert not proba[:, 2].any()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=ATOL)
    never, seen = counts == 0, counts > 0
    assert never.any() and seen.any()
    np.testing.assert_array_equal(proba[never], predict_proba(result.forest, x[never]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Some inputs do not have OOB scores"
        reference = RandomForestClassifier(n_estimators=4, random_state=1, oob_score=True).fit(x, y)
    np.testing.assert_allclose(proba[seen, :2], reference.oob_decision_function_[seen], rtol=0, atol=ATOL)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        pytest.param(np.zeros((0, 3)), np.zeros(0, np.uint8), "no labelled rows", id="empty"),
        pytest.param(np.zeros((2, 3)), np.array([1, 0], np.uint8), r"1..n_outputs=2; found \[0\]", id="zero"),
        pytest.param(np.zeros((2, 3)), np.array([1, 3], np.uint32), r"found \[3\]", id="too-big"),
        pytest.param(np.zeros((2, 3)), np.array([1], np.uint8), "one label per row", id="length"),
        pytest.param(np.zeros((2, 3)), np.array([1.0, 2.0]), "integer labels", id="float-labels"),
        pytest.param(np.array([[0, np.nan, 0], [0, 0, 0]]), np.array([1, 2], np.uint8), "row 0", id="nan"),
    ],
)
def test_train_forest_rejects_bad_training_sets(x: np.ndarray, y: np.ndarray, message: str) -> None:
    with pytest.raises(DataError, match=message):
        train_forest(x, y, n_outputs=2, n_trees=2)


def test_train_forest_single_row_and_bad_options() -> None:
    forest = train_forest(np.ones((1, 2), np.float32), np.array([2], np.uint8), n_outputs=2, n_trees=3)
    np.testing.assert_array_equal(predict_proba(forest, np.zeros((4, 2), np.float32)), [[0, 1]] * 4)
    with pytest.raises(DataError, match="n_outputs"):
        train_forest(np.ones((1, 2)), np.array([1], np.uint8), n_outputs=0)
    with pytest.raises(DataError, match="n_trees"):
        train_forest(np.ones((1, 2)), np.array([1], np.uint8), n_outputs=1, n_trees=0)
