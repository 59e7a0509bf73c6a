"""A stage as one task per block: the block gathered with its halo, features, forest, in one call.

The features' own graph is one task per block that gathers its halo from the neighbouring
blocks (:mod:`cascade.features`' ``halo_tasks``); a stage's probabilities are the same tasks
with the forest run on the features inside them, so a block's features never leave the task
that computes them. A 2-stage prediction of 3x3x3 blocks was 1750 tasks through
``map_overlap`` and a separate forest step, 443 after this (54 block computations). The forest
is one key of the graph, shipped once to each worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.delayed import delayed
from dask.highlevelgraph import HighLevelGraph

from ..errors import DataError
from ..features import FeatureSelection, HaloPlace, gathered_features, halo_tasks, overlap_depths
from ..forest import PackedForest

__all__ = ["stage_probabilities"]

#: ``predict(features, forest)``: class probabilities of a feature block.
Predict = Callable[[np.ndarray, Any], np.ndarray]


def _run_block(blocks: list[np.ndarray], place: HaloPlace, forest: Any, predict: Predict) -> np.ndarray:
    """The probabilities of one block's core from its neighbours."""
    return predict(gathered_features(blocks, place), forest)


def stage_probabilities(
    stage_input: da.Array,
    features: da.Array,
    selection: FeatureSelection,
    forest: PackedForest,
    *,
    axes: str,
    predict: Predict,
    dtype: Any = np.float32,
) -> da.Array:
    """A stage's class probabilities, one task per block: halo, features and forest fused.

    Parameters
    ----------
    stage_input : dask array
        The stage's input in internal axis order.
    features : dask array
        :func:`~cascade.features.compute_features` of ``stage_input``, lazy (it is not computed
        here): its blocks are the ones computed, its channels what the forest reads.
    selection : FeatureSelection
        The stage's features.
    forest : PackedForest
        The stage's forest: one key of the graph, shipped once to each worker.
    axes : str
        Axes of ``stage_input``.
    predict : callable
        ``predict(features, forest)`` -> probabilities of a block (channels last).
    dtype : numpy dtype, default float32
        What ``predict`` returns (e.g. probabilities already converted for the next stage).

    Returns
    -------
    dask array of ``dtype``
        One channel per class, chunked as ``features``.

    Raises
    ------
    DataError
        When the forest reads another number of feature channels than ``selection`` makes.
    """
    if features.shape[-1] != forest.n_features:
        raise DataError(
            f"the forest expects {forest.n_features} feature channels but the stack has {features.shape[-1]}"
        )
    # the input in the blocks compute_features makes of it (in one step: no channel split first)
    blocks = stage_input.rechunk(features.chunks[:-1] + ((stage_input.shape[-1],),))
    depth = overlap_depths(selection, axes, blocks.shape)
    depth = {i: d if len(blocks.chunks[i]) > 1 else 0 for i, d in depth.items()}
    shared = delayed(forest, pure=True, traverse=False)
    name = "stage-blocks-" + tokenize(blocks, selection, shared, depth, predict)
    layer = halo_tasks(name, blocks, selection, axes, depth, _run_block, shared.key, predict)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[blocks, shared])
    meta = np.empty((0,) * blocks.ndim, dtype)
    return da.Array(graph, name, blocks.chunks[:-1] + ((forest.n_outputs,),), dtype=dtype, meta=meta)
