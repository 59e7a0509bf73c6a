"""A stage as one task per block (``pipeline._blocks``) equals its features graph + a blockwise forest, bit for bit.

(The features graph itself is checked against the whole-image computation over many chunkings in
``test_features.py``.)
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from cascade.axes import from_internal, to_internal
from cascade.features import compute_features, parse_feature_selection
from cascade.forest import PackedForest, pack_sklearn, predict_proba
from cascade.pipeline import Cascade, Stage, convert_probabilities, predict

SELECTION = parse_feature_selection(
    {
        "features": {
            "GaussianSmoothing": [0.7, 3.5],
            "GaussianGradientMagnitude": [1.6],
            "HessianOfGaussianEigenvalues": [1.0],
            "StructureTensorEigenvalues": [1.6],
        },
        "compute_in_2d": [False, False, False, True],
    }
)


def _forest(n_features: int, seed: int) -> PackedForest:
    rng = np.random.default_rng(seed)
    x = rng.random((300, n_features), dtype=np.float32) * 255
    y = (x[:, 0] + rng.random(300) * 60 > 150).astype(int) + 1
    model = RandomForestClassifier(n_estimators=4, max_depth=6, random_state=seed).fit(x, y)
    return pack_sklearn(model, 2)


def _cascade(axes: str, shape: tuple[int, ...]) -> Cascade:
    z = shape[axes.index("z")] if "z" in axes else None
    stages = []
    for k in range(2):
        n = SELECTION.n_channels(1 + 2 * k, z)
        stages.append(Stage(SELECTION, ("a", "b"), _forest(n, k)))
    spatial = "".join(a for a in axes if a in "zyx")
    return Cascade(tuple(stages), raw_channels=1, raw_dtype="uint8", spatial_axes=spatial)


def _reference(cascade: Cascade, raw: da.Array, axes: str, chunks: tuple[int, ...]) -> list[np.ndarray]:
    """The previous graph: the features on their own, the forest blockwise, da.concatenate."""
    out, stage_input = [], raw
    for stage in cascade.stages:
        features = compute_features(stage_input, stage.selection, axes=axes, chunks=chunks)
        forest = stage.forest
        assert forest is not None

        def run(block: np.ndarray, forest: PackedForest = forest) -> np.ndarray:
            flat = predict_proba(forest, block.reshape(-1, block.shape[-1]))
            return flat.reshape(*block.shape[:-1], forest.n_outputs)

        probabilities = features.map_blocks(run, chunks=features.chunks[:-1] + ((2,),), dtype=np.float32)
        out.append(probabilities.compute())
        converted = convert_probabilities(probabilities, raw.dtype)
        aligned = raw.rechunk(converted.chunks[:-1] + ((1,),))
        stage_input = da.concatenate([aligned, converted], axis=-1).rechunk({raw.ndim - 1: -1})
    return out


CASES = [
    ("zyxc", (40, 37, 45, 1), (16, 16, 16, 1)),  # 3D, uneven last blocks
    ("zyxc", (40, 37, 45, 1), (7, 20, 9, 1)),  # blocks shorter than the halo: merged
    ("zyxc", (8, 40, 40, 1), (3, 16, 16, 1)),  # short z: the 2D column, z halo from the 3D ones
    ("yxc", (70, 90, 1), (32, 25, 1)),
    ("tyxc", (3, 50, 40, 1), (1, 24, 24, 1)),
]


@pytest.mark.parametrize(("axes", "shape", "chunks"), CASES)
def test_one_task_per_block_equals_map_overlap(
    axes: str, shape: tuple[int, ...], chunks: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(len(shape))
    raw = da.from_array(rng.integers(0, 255, shape, dtype=np.uint8), chunks=chunks)
    cascade = _cascade(axes, shape)
    with dask.config.set(scheduler="threads"):
        expected = _reference(cascade, raw, axes, chunks)
        results = predict(cascade, raw, axes=axes, chunks=chunks)
        for want, result in zip(expected, results, strict=True):
            assert np.array_equal(result.probabilities.compute(), want)


def test_a_stage_is_one_task_per_block() -> None:
    shape, chunks = (48, 48, 48, 1), (16, 16, 16, 1)
    raw = da.from_array(np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8), chunks=chunks)
    cascade = _cascade("zyxc", shape)
    probabilities = predict(cascade, raw, axes="zyxc", chunks=chunks)[1].probabilities
    graph = dict(probabilities.__dask_graph__())
    stages = [key for key in graph if isinstance(key, tuple) and str(key[0]).startswith("stage-blocks-")]
    assert len(stages) == 2 * 27  # 3x3x3 blocks, two stages
    # raw blocks, 27 per stage, the stage-2 inputs, the forests: a few tasks per block, not dozens
    assert len(graph) < 5 * 27


class _File:
    """An array read block by block, like a file (dask keeps one key for it, not one per chunk)."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim

    def __getitem__(self, index: object) -> np.ndarray:
        return self.data[index]  # type: ignore[index]


def test_a_channel_axis_added_to_a_lazy_input_fuses_with_its_read() -> None:
    """``to_internal`` of a zyx dask input: the read, the new channel axis and the next step are
    one task per block (a stage-2 input reads the raw block in its own task, not in two more)."""
    data = np.random.default_rng(1).integers(0, 255, (48, 40, 32), dtype=np.uint8)
    lazy = da.from_array(_File(data), chunks=16, asarray=False, meta=data[:0, :0, :0])
    internal, axes = to_internal(lazy, "zyx")
    assert axes == "zyxc"
    assert internal.chunks == (*lazy.chunks, (1,))
    assert np.array_equal(internal.compute(), to_internal(data, "zyx")[0])
    (optimized,) = dask.optimize(internal + 1)
    assert len(dict(optimized.__dask_graph__())) == internal.npartitions + 1  # + the source array
    back = from_internal(internal[..., 0], "zyx", "czyx")
    assert back.shape == (1, 48, 40, 32)
    assert np.array_equal(back.compute(), data[None])
