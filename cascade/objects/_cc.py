"""Connected components of one block, and what a block tells the global merge.

Every function here is pure numpy on one block of a ``tzyx`` image with a t extent of 1.
Components are maximal regions of *equal* non-zero value, 6-connected (a z extent of 1 makes
that ilastik's 4-neighbourhood in 2D); ``cc3d`` labels a block, numbered 1..n locally. The
merge across blocks (``_merge.py``) needs, per block, a small table (first pixel, size, value
of every local component), the labels on the block's faces and, for hysteresis, which local
components share pixels with which local cores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cc3d
import numpy as np
from numba import njit

__all__ = [
    "BlockScan",
    "BlockTable",
    "face_pairs",
    "local_labels",
    "relabel_block",
    "scan_block",
    "value_block",
]


@dataclass(frozen=True)
class BlockTable:
    """What one block contributes to the global merge (arrays of its local ids 1..n, index i = id i+1).

    Attributes
    ----------
    first : ndarray of int64
        Global raster index (``(z * Y + y) * X + x``) of each component's first pixel.
    size : ndarray of int64
        Pixels of each component in this block.
    value : ndarray of uint64
        The image value of each component (equal across a component; the merge joins equal values).
    faces : tuple of (ndarray, ndarray)
        Per spatial axis (z, y, x), the local labels on the block's first and last plane.
    """

    first: np.ndarray
    size: np.ndarray
    value: np.ndarray
    faces: tuple[tuple[np.ndarray, np.ndarray], ...]

    @property
    def count(self) -> int:
        """Number of local components."""
        return int(self.first.shape[0])

    def without_faces(self) -> BlockTable:
        """The table alone (what travels to the merge once the face pairs are known)."""
        return BlockTable(self.first, self.size, self.value, ())


def _comparable(block: np.ndarray) -> np.ndarray:
    """The block as unsigned integers whose equality is the values' equality (0 stays 0)."""
    if block.dtype == np.bool_:
        return block.view(np.uint8)
    if block.dtype.kind == "f":
        clean = np.where(block == 0, np.zeros((), block.dtype), block)
        return clean.view(f"u{block.dtype.itemsize}")
    if block.dtype.kind == "i":
        return block.view(f"u{block.dtype.itemsize}")
    return block


def local_labels(block: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the equal-valued non-zero regions of one ``zyx`` block (6-connected), ids 1..n.

    Parameters
    ----------
    block : ndarray, shape (z, y, x)
        Values (bool, integer or float); 0 is the background.

    Returns
    -------
    labels : ndarray of uint32, shape (z, y, x)
        Local ids in raster order of each component's first pixel (x fastest).
    n : int
        Number of components.
    """
    values = np.ascontiguousarray(_comparable(block))
    labels, n = cc3d.connected_components(values, connectivity=6, return_N=True, out_dtype=np.uint32)
    return labels, int(n)


@njit(nogil=True, cache=True)
def _first_and_sizes(flat, n):  # type: ignore[no-untyped-def]
    """First flat index and pixel count of every label 0..n of a flat label array."""
    first = np.full(n + 1, -1, np.int64)
    sizes = np.zeros(n + 1, np.int64)
    for i in range(flat.shape[0]):
        v = flat[i]
        if sizes[v] == 0:
            first[v] = i
        sizes[v] += 1
    return first, sizes


def _table(
    labels: np.ndarray, n: int, zyx: np.ndarray, origin: tuple[int, ...], extent: tuple[int, ...]
) -> BlockTable:
    first, sizes = _first_and_sizes(labels.ravel(), n)
    first, sizes = first[1:], sizes[1:]
    coords = np.unravel_index(first, labels.shape)
    raster = (coords[0] + origin[0]) * extent[1] + coords[1] + origin[1]
    raster = raster.astype(np.int64) * extent[2] + coords[2] + origin[2]
    value = _comparable(zyx).ravel()[first].astype(np.uint64)
    faces = tuple((labels.take(0, axis), labels.take(-1, axis)) for axis in range(3))
    return BlockTable(raster, sizes, value, faces)


@dataclass(frozen=True)
class BlockScan:
    """One block's tables, one per layer (the image, and for hysteresis its cores), and their contacts.

    Attributes
    ----------
    tables : tuple of BlockTable
        One table per layer.
    contacts : ndarray of int64, shape (k, 2)
        Distinct ``(layer 0 id, layer 1 id)`` pairs of local components sharing a pixel (empty
        with one layer).
    """

    tables: tuple[BlockTable, ...]
    contacts: np.ndarray


def scan_block(
    layers: Sequence[np.ndarray], origin: tuple[int, int, int], extent: tuple[int, int, int]
) -> BlockScan:
    """Label one block of every layer and describe the components for the merge.

    Parameters
    ----------
    layers : sequence of ndarray, each of shape (1, z, y, x)
        The same block of one or two images (one time point).
    origin : tuple of int
        The block's offset in the time point's ``zyx`` volume.
    extent : tuple of int
        The volume's ``zyx`` shape (for the global raster index).

    Returns
    -------
    BlockScan
        The block's components, faces and (two layers) contacts.
    """
    labelled = [local_labels(layer[0]) for layer in layers]
    tables = tuple(
        _table(labels, n, layer[0], origin, extent) for (labels, n), layer in zip(labelled, layers)
    )
    contacts = np.zeros((0, 2), np.int64)
    if len(labelled) == 2:
        (a, _), (b, nb) = labelled
        both = (a > 0) & (b > 0)
        key = np.unique(a[both].astype(np.int64) * (nb + 1) + b[both])
        contacts = np.stack([key // (nb + 1), key % (nb + 1)], axis=1)
    return BlockScan(tables, contacts)


def face_pairs(low: BlockTable, high: BlockTable, axis: int) -> np.ndarray:
    """Pairs of local ids that touch across the face between two neighbouring blocks.

    Parameters
    ----------
    low, high : BlockTable
        The block before and after the face along ``axis``.
    axis : int
        The spatial axis (0 z, 1 y, 2 x).

    Returns
    -------
    ndarray of int64, shape (k, 2)
        Distinct ``(low id, high id)`` pairs of touching pixels with equal values.
    """
    a = low.faces[axis][1].ravel().astype(np.int64)
    b = high.faces[axis][0].ravel().astype(np.int64)
    both = (a > 0) & (b > 0)
    a, b = a[both], b[both]
    same = low.value[a - 1] == high.value[b - 1]
    key = np.unique(a[same] * (high.count + 1) + b[same])
    return np.stack([key // (high.count + 1), key % (high.count + 1)], axis=1)


def relabel_block(block: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Global ids of one block: its local components looked up in ``lut``.

    Parameters
    ----------
    block : ndarray, shape (1, z, y, x)
        The block the lookup table was made for.
    lut : ndarray of uint32, shape (n + 1,)
        Global id of every local id (0 for the background and for removed components).

    Returns
    -------
    ndarray of uint32, shape (1, z, y, x)
    """
    labels, _ = local_labels(block[0])
    out: np.ndarray = lut[labels][None]
    return out


def value_block(block: np.ndarray) -> np.ndarray:
    """The distinct values of one block of a label image, sorted (0 included when present).

    Parameters
    ----------
    block : ndarray
        Any block of a label image.

    Returns
    -------
    ndarray
        Sorted distinct values, in the block's dtype.
    """
    return np.unique(block)
