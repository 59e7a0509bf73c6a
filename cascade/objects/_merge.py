"""Global connected components from block tables: one pass over the image, then lazy relabelling.

The scan labels every block, a group of blocks per ``dask.compute`` (``_groups``: memory bounded
by the group, not the volume), keeps per block a table of its local components
(``_cc.BlockTable``) and its face planes; on the client, the pairs of local ids touching across
each face between neighbouring blocks are found and the faces dropped as soon as both sides are
linked, so only the tables stay (O(objects)). Then a
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
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ._cc import BlockScan, BlockTable, face_pairs, scan_block
from ._groups import group_size

__all__ = ["Components", "block_results", "relabel", "scan"]

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
    steps : int
        Number of time points.
    """

    blocks: tuple[Index, ...]
    offsets: np.ndarray
    component: np.ndarray
    t: np.ndarray
    size: np.ndarray
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


def _link(scan: BlockScan, *after: BlockScan | None) -> tuple[BlockScan, list[list[np.ndarray | None]]]:
    """A block's scan without faces, and per layer its face pairs with the next block along z, y, x."""
    pairs = [
        [
            None if other is None else face_pairs(table, other.tables[layer], axis)
            for axis, other in enumerate(after)
        ]
        for layer, table in enumerate(scan.tables)
    ]
    tables = tuple(table.without_faces() for table in scan.tables)
    return BlockScan(tables, scan.contacts), pairs


def _gather(*found: Any) -> list[Any]:
    return list(found)


def block_results(image: da.Array, function: Callable[[np.ndarray], Any]) -> dict[Index, Any]:
    """``function(block)`` of every block of ``image``, computed now (small results only).

    Parameters
    ----------
    image : dask.array.Array
        Any array.
    function : callable
        Applied to each block; its results travel to the client.

    Returns
    -------
    dict
        Block index -> result.
    """
    name = f"objects-blocks-{tokenize(image, function)}"
    blocks = list(itertools.product(*(range(n) for n in image.numblocks)))
    tasks: dict[Any, Any] = {(name, *index): (function, (image.name, *index)) for index in blocks}
    tasks[name] = (_gather, *[(name, *index) for index in blocks])
    graph = HighLevelGraph.from_collections(name, tasks, dependencies=[image])  # type: ignore[list-item]
    (done,) = compute(Delayed(name, graph))
    return dict(zip(blocks, done))


def _scan_tasks(layers: tuple[da.Array, ...]) -> tuple[list[Delayed], list[Index]]:
    """One delayed :func:`scan_block` per block (one graph layer), blocks in raster order."""
    scan_name = f"objects-scan-{tokenize(*layers)}"
    starts = _origins(layers[0].chunks)
    extent = tuple(int(n) for n in layers[0].shape[1:])
    blocks = list(itertools.product(*(range(n) for n in layers[0].numblocks)))
    tasks: dict[Any, Any] = {}
    for index in blocks:
        origin = tuple(starts[a][index[a]] for a in (1, 2, 3))
        tasks[(scan_name, *index)] = (scan_block, [(layer.name, *index) for layer in layers], origin, extent)
    graph = HighLevelGraph.from_collections(scan_name, tasks, dependencies=layers)  # type: ignore[arg-type]
    return [Delayed((scan_name, *index), graph, layer=scan_name) for index in blocks], blocks


def _neighbours(index: Index, step: int) -> list[Index]:
    return [index[:axis] + (index[axis] + step,) + index[axis + 1 :] for axis in (1, 2, 3)]


def _scan_links(layers: tuple[da.Array, ...]) -> dict[Index, Any]:
    """Every block's :func:`_link` result, scanned a group of blocks at a time (bounded memory).

    A block is linked as soon as the blocks after it (z, y, x) are scanned, and its faces are
    dropped once the blocks before it are linked too: at most about one layer of blocks keeps
    its faces on the client.
    """
    tasks, blocks = _scan_tasks(layers)
    present, size = set(blocks), group_size()
    scans: dict[Index, BlockScan] = {}
    links: dict[Index, Any] = {}
    for start in range(0, len(blocks), size):
        scans.update(zip(blocks[start : start + size], compute(*tasks[start : start + size])))
        for index in sorted(set(scans) - set(links)):
            after = _neighbours(index, 1)
            if all(a not in present or a in scans for a in after):
                links[index] = _link(scans[index], *(scans.get(a) for a in after))
        for index in [i for i in scans if i in links]:
            if all(b not in present or b in links for b in _neighbours(index, -1)):
                del scans[index]
    return links


def _layer(links: dict[Index, Any], blocks: tuple[Index, ...], layer: int, steps: int) -> Components:
    """The global components of one layer from the computed links."""
    tables = [links[b][0].tables[layer] for b in blocks]
    offsets = np.concatenate([[0], np.cumsum([t.count for t in tables])]).astype(np.int64)
    where = {b: offsets[k] for k, b in enumerate(blocks)}
    edges = []
    for low in blocks:
        for axis, found in zip((1, 2, 3), links[low][1][layer]):
            if found is not None:
                high = low[:axis] + (low[axis] + 1,) + low[axis + 1 :]
                edges.append(np.stack([found[:, 0] - 1 + where[low], found[:, 1] - 1 + where[high]], axis=1))
    return _merge(blocks, offsets, tables, edges, steps)


def scan(image: da.Array, cores: da.Array | None = None) -> tuple[Components, Components | None, np.ndarray]:
    """Global components of equal non-zero values of a ``tzyx`` image with t chunks of 1.

    Parameters
    ----------
    image : dask.array.Array, shape (t, z, y, x)
        The values to label (bool, integer or float).
    cores : dask.array.Array, optional
        Hysteresis: the core mask, chunked like ``image``, labelled in the same pass.

    Returns
    -------
    components : Components
        Those of ``image``.
    core_components : Components or None
        Those of ``cores``.
    contacts : ndarray of int64, shape (k, 2)
        Distinct ``(component, core component)`` pairs sharing a pixel (empty without cores).

    Notes
    -----
    Computed eagerly: one pass over the input(s).
    """
    layers = (image,) if cores is None else (image, cores)
    links = _scan_links(layers)
    blocks = tuple(sorted(links))
    found = [_layer(links, blocks, layer, image.shape[0]) for layer in range(len(layers))]
    if cores is None:
        return found[0], None, np.zeros((0, 2), np.int64)
    pairs = []
    for k, b in enumerate(blocks):
        local = links[b][0].contacts
        pairs.append(
            np.stack(
                [
                    found[0].component[found[0].offsets[k] + local[:, 0] - 1],
                    found[1].component[found[1].offsets[k] + local[:, 1] - 1],
                ],
                axis=1,
            )
        )
    contacts = np.unique(np.concatenate(pairs), axis=0) if pairs else np.zeros((0, 2), np.int64)
    return found[0], found[1], contacts


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
        return Components(blocks, offsets, empty, empty, empty, steps)
    pairs = np.concatenate(edges) if edges else np.zeros((0, 2), np.int64)
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(total, total))
    n, root = connected_components(graph, directed=False)
    first = np.full(n, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, root, np.concatenate([table.first for table in tables]))
    t = np.zeros(n, np.int64)
    t[root] = np.repeat(np.array([b[0] for b in blocks], np.int64), np.diff(offsets))
    size = np.zeros(n, np.int64)
    np.add.at(size, root, np.concatenate([table.size for table in tables]))
    order = np.lexsort((first, t))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    return Components(blocks, offsets, rank[root], t[order], size[order], steps)


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
