"""Global connected components from block tables: one pass over the image, then lazy relabelling.

The scan (one ``dask.compute``) labels every block, keeps per block a table of its local
components (``_cc.BlockTable``) and, per pair of neighbouring blocks, the pairs of local ids
touching across their face. Only these tables reach the client (O(objects)). There, a
union-find over the face pairs (``scipy.sparse.csgraph``) joins the local components into
global ones; their first pixels give ilastik's raster order, their summed pixels the sizes.

The label image itself stays lazy: each block is labelled again and looked up in that block's
lookup table (local id -> global id), one task per block, the tables embedded in the graph.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from dask.base import compute, tokenize
from dask.delayed import delayed
from dask.highlevelgraph import HighLevelGraph
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ._cc import BlockTable, face_pairs, scan_block

__all__ = ["Components", "relabel", "scan"]

Index = tuple[int, ...]


@dataclass(frozen=True)
class Components:
    """The global components of a ``tzyx`` image, ordered as ilastik numbers them.

    Attributes
    ----------
    blocks : tuple of tuple of int
        Block indices (t, z, y, x) in the order of :attr:`offsets`.
    offsets : ndarray of int64
        Where each block's local ids start in the flat list of local components (one more entry).
    component : ndarray of int64
        Global component (in ilastik order: by t, then first pixel) of every local component.
    t : ndarray of int64
        Time point of every global component.
    size : ndarray of int64
        Pixels of every global component.
    touches : ndarray of bool
        Whether a global component overlaps a kept core (hysteresis; True otherwise).
    steps : int
        Number of time points.
    """

    blocks: tuple[Index, ...]
    offsets: np.ndarray
    component: np.ndarray
    t: np.ndarray
    size: np.ndarray
    touches: np.ndarray
    steps: int

    def ids(self, keep: np.ndarray | None = None) -> np.ndarray:
        """Per-time-point ids 1..N of the components (0 where ``keep`` is False).

        Parameters
        ----------
        keep : ndarray of bool, optional
            Components that keep an id. Without it every component does: ids are then
            ilastik's connected-component ids before any filter.

        Returns
        -------
        ndarray of uint32
            The id of every global component.
        """
        keep = np.ones(self.t.shape, np.bool_) if keep is None else keep
        kept = np.cumsum(keep, dtype=np.int64)
        start = np.searchsorted(self.t, np.arange(self.steps))
        before = np.concatenate([[0], kept])[start]
        return np.where(keep, kept - before[self.t], 0).astype(np.uint32)

    def counts(self, ids: np.ndarray) -> tuple[int, ...]:
        """Highest id per time point."""
        top = np.zeros(self.steps, np.int64)
        np.maximum.at(top, self.t, ids.astype(np.int64))
        return tuple(int(c) for c in top)

    def luts(self, ids: np.ndarray) -> dict[Index, np.ndarray]:
        """Per block, the lookup table local id -> ``ids`` of its global component (0 at index 0)."""
        tables = {}
        for k, index in enumerate(self.blocks):
            lut = np.zeros(self.offsets[k + 1] - self.offsets[k] + 1, np.uint32)
            lut[1:] = ids[self.component[self.offsets[k] : self.offsets[k + 1]]]
            tables[index] = lut
        return tables


def _origins(chunks: tuple[tuple[int, ...], ...]) -> list[tuple[int, ...]]:
    return [tuple(np.cumsum((0,) + c[:-1]).tolist()) for c in chunks]


def _link(table: BlockTable, *after: BlockTable | None) -> tuple[BlockTable, list[np.ndarray | None]]:
    """A block's table without its faces, and its face pairs with the next block along z, y and x."""
    pairs = [None if other is None else face_pairs(table, other, axis) for axis, other in enumerate(after)]
    return table.without_faces(), pairs


def _scan_graph(image: da.Array, cores: da.Array | None, core_luts: dict[Index, np.ndarray] | None) -> Any:
    """Per block, a delayed ``(table, [pairs with the next block along z, y, x])`` (two tasks a block)."""
    blocks = image.to_delayed(optimize_graph=False)
    core_blocks = None if cores is None else cores.to_delayed(optimize_graph=False)
    starts = _origins(image.chunks)
    extent = tuple(int(n) for n in image.shape[1:])
    scans: dict[Index, Any] = {}
    for index in itertools.product(*(range(n) for n in image.numblocks)):
        origin = tuple(starts[a][index[a]] for a in (1, 2, 3))
        extra: tuple[Any, ...] = ()
        if core_blocks is not None and core_luts is not None:
            extra = (core_blocks[index], core_luts[index])
        scans[index] = delayed(scan_block, pure=True)(blocks[index], origin, extent, *extra)
    links = {}
    for index, table in scans.items():
        after = [scans.get(index[:axis] + (index[axis] + 1,) + index[axis + 1 :]) for axis in (1, 2, 3)]
        links[index] = delayed(_link, pure=True, nout=2)(table, *after)
    return links


def scan(
    image: da.Array, cores: da.Array | None = None, core_luts: dict[Index, np.ndarray] | None = None
) -> Components:
    """Global components of equal non-zero values of a ``tzyx`` image with t chunks of 1.

    Parameters
    ----------
    image : dask.array.Array, shape (t, z, y, x)
        The values to label (bool, integer or float).
    cores, core_luts : optional
        Hysteresis: the core mask (chunked like ``image``) and, per block, which of its local
        cores survived (bool per local core id, index 0 False).

    Returns
    -------
    Components
        Computed eagerly (one pass over ``image``).
    """
    (links,) = compute(_scan_graph(image, cores, core_luts))
    blocks = tuple(sorted(links))
    counts = np.array([links[b][0].count for b in blocks], np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    where = {b: offsets[k] for k, b in enumerate(blocks)}
    edges = []
    for low in blocks:
        for axis, found in zip((1, 2, 3), links[low][1]):
            if found is not None:
                high = low[:axis] + (low[axis] + 1,) + low[axis + 1 :]
                edges.append(np.stack([found[:, 0] - 1 + where[low], found[:, 1] - 1 + where[high]], axis=1))
    return _merge(blocks, offsets, [links[b][0] for b in blocks], edges, image.shape[0])


def _merge(
    blocks: tuple[Index, ...],
    offsets: np.ndarray,
    tables: list[BlockTable],
    edges: list[np.ndarray],
    steps: int,
) -> Components:
    """Union-find over the face pairs, then order the components by (t, first pixel)."""
    total = int(offsets[-1])
    if total == 0:
        empty = np.zeros(0, np.int64)
        return Components(blocks, offsets, empty, empty, empty, np.zeros(0, np.bool_), steps)
    pairs = np.concatenate(edges) if edges else np.zeros((0, 2), np.int64)
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(total, total))
    n, root = connected_components(graph, directed=False)
    first = np.full(n, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, root, np.concatenate([table.first for table in tables]))
    t = np.zeros(n, np.int64)
    t[root] = np.repeat(np.array([b[0] for b in blocks], np.int64), np.diff(offsets))
    size = np.zeros(n, np.int64)
    np.add.at(size, root, np.concatenate([table.size for table in tables]))
    touches = np.zeros(n, np.bool_)
    touches[root[np.concatenate([table.touches for table in tables])]] = True
    order = np.lexsort((first, t))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    return Components(blocks, offsets, rank[root], t[order], size[order], touches[order], steps)


def relabel(
    image: da.Array,
    luts: dict[Index, Any],
    block_function: Callable[[np.ndarray, Any], np.ndarray],
    name: str,
) -> da.Array:
    """A lazy uint32 array: ``block_function(block, luts[index])`` for every block of ``image``.

    Parameters
    ----------
    image : dask.array.Array
        The array whose blocks are relabelled.
    luts : dict
        Per block index, the block's lookup data (embedded once in that block's task).
    block_function : callable
        ``(block, lut) -> uint32 block``.
    name : str
        Prefix of the graph layer's name.

    Returns
    -------
    dask.array.Array
        Chunked like ``image``.
    """
    layer = f"{name}-{tokenize(image, block_function, sorted((k, tokenize(v)) for k, v in luts.items()))}"
    tasks: dict[Any, Any] = {
        (layer, *index): (block_function, (image.name, *index), luts[index]) for index in luts
    }
    graph = HighLevelGraph.from_collections(layer, tasks, dependencies=[image])  # type: ignore[list-item]
    return da.Array(graph, layer, chunks=image.chunks, dtype=np.uint32)
