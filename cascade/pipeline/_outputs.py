"""Per-pixel functions of a stage's probabilities: the next stage's input, ilastik's export sources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np

from ..axes import ArrayT

__all__ = ["convert_probabilities", "reweighted", "segmentation", "uncertainty"]


def convert_probabilities(probabilities: ArrayT, dtype: np.dtype[Any] | str) -> ArrayT:
    """Probabilities converted to the raw dtype, as ilastik stacks them for the next stage.

    Unsigned integers: ``floor((max - min) * p) + min`` (uint8: ``floor(255 p)``). Signed
    integers map [0, 1] onto the type's full range the same way (ilastik's own formula
    overflows there). Any other dtype (float, bool): ``p`` cast to it, as ilastik's
    ``DtypeConvertFunction`` does.

    Parameters
    ----------
    probabilities : numpy or dask array
        Probabilities in [0, 1], float32.
    dtype : numpy dtype or str
        The raw image's dtype.

    Returns
    -------
    numpy or dask array
        The converted probabilities (same kind as given).
    """
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer):  # ilastik coerces every other dtype (float, bool)
        coerced: ArrayT = probabilities.astype(dtype)
        return coerced
    info = np.iinfo(dtype)
    span = np.float32(float(info.max) - float(info.min))
    scaled = probabilities * span
    if info.min != 0:
        scaled = scaled + np.float32(info.min)
    integers: ArrayT = scaled.astype(dtype)
    return integers


def reweighted(probabilities: ArrayT, weights: Sequence[float]) -> ArrayT:
    """Probabilities multiplied by per-class ``weights`` and normalised to sum 1 per pixel.

    Parameters
    ----------
    probabilities : numpy or dask array
        float32 probabilities, classes on the last axis.
    weights : sequence of float
        One positive weight per class.

    Returns
    -------
    numpy or dask array
        The re-weighted probabilities, float32 (same kind as given).

    Examples
    --------
    >>> reweighted(np.array([[0.6, 0.4]], np.float32), (0.5, 1.5)).round(3)
    array([[0.333, 0.667]], dtype=float32)
    """
    scaled = probabilities * np.asarray(weights, np.float32)
    total = scaled.sum(axis=-1, keepdims=True)
    out: ArrayT = (scaled / total).astype(np.float32)
    return out


def segmentation(probabilities: da.Array) -> da.Array:
    """uint8 argmax + 1 over the channel axis (ties go to the first class), keeping a c axis of 1.

    Parameters
    ----------
    probabilities : dask array
        Probabilities with classes on the last axis.

    Returns
    -------
    dask array
        The labels, uint8.
    """
    labels: da.Array = (da.argmax(probabilities, axis=-1)[..., None] + 1).astype(np.uint8)
    return labels


def uncertainty(probabilities: da.Array) -> da.Array:
    """1 - (largest - second largest probability), float32, with a c axis of 1.

    Parameters
    ----------
    probabilities : dask array
        Probabilities with classes on the last axis.

    Returns
    -------
    dask array
        The uncertainty, float32.
    """

    def margin(block: np.ndarray) -> np.ndarray:
        if block.shape[-1] < 2:
            return np.zeros(block.shape[:-1] + (1,), np.float32)
        top = np.partition(block, block.shape[-1] - 2, axis=-1)[..., -2:]
        return (np.float32(1) - (top[..., 1:] - top[..., :1])).astype(np.float32)

    margins: da.Array = da.map_blocks(
        margin, probabilities, chunks=probabilities.chunks[:-1] + ((1,),), dtype=np.float32
    )
    return margins
