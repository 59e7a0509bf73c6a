"""A stage as one task per block: the block gathered with its halo, features, forest, in one call.

``map_overlap`` builds each halo from slices of the neighbouring blocks: many small tasks per
block (a 2-stage prediction of 3x3x3 blocks was 1750 tasks, mostly getitem, rechunk and
concatenate, for 54 block computations). On the threaded scheduler they cost little; on a
distributed cluster every task is a round trip through the scheduler and the workers' event
loops (measured ~3 ms of CPU per task on the 2-core benchmark machine). Here each output block
is one task whose inputs are its neighbouring blocks, whole: it cuts the halo from them,
computes the features of its core with :func:`~cascade.features.block_features` (what
``map_overlap``'s function calls, with the same block, origin and core, so the numbers are the
same bit for bit) and runs the forest on them. The same prediction is 443 tasks. A worker
fetches a neighbour at most once (a stage's input is the raw image and the previous stage's
probabilities converted to the raw dtype: a few hundred kB per block).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.delayed import delayed
from dask.highlevelgraph import HighLevelGraph

from ..errors import DataError
from ..features import FeatureSelection, block_features, overlap_depths
from ..forest import PackedForest

__all__ = ["stage_probabilities"]

#: ``predict(features, forest)``: class probabilities of a feature block.
Predict = Callable[[np.ndarray, Any], np.ndarray]


def _cuts(index: int, count: int, depth: int) -> tuple[range, list[slice]]:
    """The neighbours of block ``index`` along one axis and the part of each that the halo takes."""
    if depth == 0:
        return range(index, index + 1), [slice(None)]
    near = range(max(0, index - 1), min(count, index + 2))
    cuts = [slice(-depth, None) if b < index else slice(0, depth) if b > index else slice(None) for b in near]
    return near, cuts


def _gathered(blocks: list[np.ndarray], grid: tuple[int, ...], cuts: tuple[list[slice], ...]) -> np.ndarray:
    """One array of the halo pieces of ``blocks`` (row-major over ``grid``)."""
    if len(blocks) == 1:
        return blocks[0]
    pieces = np.empty(grid, dtype=object)
    for flat, position in enumerate(itertools.product(*(range(n) for n in grid))):
        pieces[position] = blocks[flat][tuple(axis[p] for axis, p in zip(cuts, position, strict=True))]
    gathered: np.ndarray = np.block(pieces.tolist())
    return gathered


def _run_block(
    blocks: list[np.ndarray],
    grid: tuple[int, ...],
    cuts: tuple[list[slice], ...],
    where: Mapping[str, Any],
    forest: Any,
    predict: Predict,
) -> np.ndarray:
    """The probabilities of one block's core from its neighbours."""
    features = block_features(_gathered(blocks, grid, cuts), **where)
    return predict(features, forest)


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
    layer = _layer(name, blocks, selection, shared.key, axes, depth, predict)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[blocks, shared])
    meta = np.empty((0,) * blocks.ndim, dtype)
    return da.Array(graph, name, blocks.chunks[:-1] + ((forest.n_outputs,),), dtype=dtype, meta=meta)


def _layer(
    name: str,
    blocks: da.Array,
    selection: FeatureSelection,
    forest: Any,
    axes: str,
    depth: Mapping[int, int],
    predict: Predict,
) -> dict[Any, Any]:
    """The tasks: each block's neighbours, halo cuts, place in the image (as ``map_overlap`` has it)."""
    spatial = [i for i, k in enumerate(axes) if k in "zyx"]
    bounds = [np.cumsum((0, *c)) for c in blocks.chunks]
    full = tuple(int(bounds[i][-1]) for i in spatial)
    layer: dict[Any, Any] = {}
    for index in itertools.product(*(range(n) for n in blocks.numblocks)):
        per_axis = [_cuts(i, n, depth.get(a, 0)) for a, (i, n) in enumerate(zip(index, blocks.numblocks))]
        keys = [(blocks.name, *b) for b in itertools.product(*(near for near, _ in per_axis))]
        where = {
            "selection": selection,
            "has_t": "t" in axes,
            "lo": tuple(int(bounds[i][index[i]]) - (depth.get(i, 0) if index[i] > 0 else 0) for i in spatial),
            "full": full,
            "core_lo": tuple(int(bounds[i][index[i]]) for i in spatial),
            "core_hi": tuple(int(bounds[i][index[i] + 1]) for i in spatial),
        }
        grid = tuple(len(near) for near, _ in per_axis)
        cuts = tuple(cut for _, cut in per_axis)
        layer[(name, *index)] = (_run_block, keys, grid, cuts, where, forest, predict)
    return layer
