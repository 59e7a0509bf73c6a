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

    ilastik computes ``((max - min) * p - min).astype(dtype)`` under numpy 1 (its conda package
    pins numpy < 1.27), whose value-based casting computes it in float32 for 8- and 16-bit types
    and in float64 for 32- and 64-bit ones, cast as numpy casts on x86. Unsigned: uint8
    ``floor(255 p)``, uint32 ``floor((2^32 - 1) p)`` in float64, uint64 0 at p = 1 (2^64 wraps).
    Signed: the result overflows the type: int8 and int16 wrap (int8: ``floor(255 p) - 128``),
    int32 and int64 are all the type's minimum. Any other dtype (float, bool): ``p`` cast to it,
    as ilastik's ``DtypeConvertFunction`` does.

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
    if info.min == 0 and dtype.itemsize >= 4:  # numpy 1 promotes uint32(max) * float32 to float64
        wide = probabilities.astype(np.float64) * float(info.max)
        if dtype.itemsize == 8:  # float64(2^64 - 1) is 2^64: p = 1 wraps to 0, as the x86 cast gives
            wide = wide * (wide < 2.0**64)
        unsigned_wide: ArrayT = wide.astype(dtype)
        return unsigned_wide
    scaled = probabilities * np.float32(float(info.max) - float(info.min))
    if info.min == 0:
        unsigned: ArrayT = scaled.astype(dtype)
        return unsigned
    shifted = scaled + np.float32(-float(info.min))  # in [2^(bits-1), 3 * 2^(bits-1)): out of range
    if dtype.itemsize <= 2:  # x86 truncates to int32, keeping the low bits: a wrap
        wrapped: ArrayT = shifted.astype(np.int32).astype(dtype)
        return wrapped
    lowest: ArrayT = (probabilities * 0).astype(dtype) + dtype.type(info.min)  # x86's "integer indefinite"
    return lowest


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
