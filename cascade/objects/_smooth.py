"""vigra's ``gaussianSmoothing(window_size=2.0)`` on one block, exactly as ilastik's thresholding calls it.

Read from vigra (``gaussians.hxx``, ``separableconvolution.hxx``, ``multi_convolution.hxx``):

- the kernel is a ``Kernel1D<double>``: taps ``g(x) = norm * exp(x * x * (-0.5 / s / s))`` with
  ``norm = 1 / sqrt(2 pi) / s`` for ``x = -r..r``, ``r = int(2 s + 0.5)`` (at least 1), then
  normalised in double: summed left to right, each tap multiplied by ``1 / sum``;
- each line is convolved with ``BORDER_TREATMENT_REFLECT`` (mirror, the edge not repeated),
  summing ``tap * pixel`` in double from the leftmost pixel to the rightmost and rounding the sum
  to float32 (the line buffer between axes is float32);
- the axes are convolved in vigra's order, x first, then y, then z.

A block arrives with a halo of ``r`` on every side that is not a true image border; true borders
are mirrored here, so every block gives exactly the whole image's values.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["smooth_block", "vigra_gaussian_taps", "vigra_radius"]


def vigra_radius(sigma: float) -> int:
    """vigra's kernel radius for window 2.0: ``int(2 sigma + 0.5)``, at least 1 (0 for sigma 0).

    Parameters
    ----------
    sigma : float
        The Gaussian's standard deviation in pixels.

    Returns
    -------
    int
    """
    if sigma <= 0:
        return 0
    return max(1, int(2.0 * sigma + 0.5))


def vigra_gaussian_taps(sigma: float) -> np.ndarray:
    """The taps of vigra's ``Kernel1D<double>::initGaussian(sigma, 1.0, 2.0)``, left to right.

    Parameters
    ----------
    sigma : float
        The Gaussian's standard deviation in pixels (0 gives the identity ``[1.0]``).

    Returns
    -------
    ndarray of float64, shape (2 r + 1,)
    """
    r = vigra_radius(sigma)
    if r == 0:
        return np.ones(1, np.float64)
    norm = 1.0 / math.sqrt(2.0 * math.pi) / sigma
    exponent = -0.5 / sigma / sigma
    taps = [norm * math.exp(float(x) * float(x) * exponent) for x in range(-r, r + 1)]
    total = 0.0
    for tap in taps:
        total += tap
    scale = 1.0 / total
    return np.array([tap * scale for tap in taps], np.float64)


@njit(nogil=True, cache=True)
def _correlate_rows(src, taps, out):  # type: ignore[no-untyped-def]
    """``out[k, i] = sum_j taps[j] * src[k, i + j]``, summed in double for ascending j, rounded to float32."""
    width = taps.shape[0]
    for k in range(src.shape[0]):
        for i in range(out.shape[1]):
            acc = 0.0
            for j in range(width):
                acc += taps[j] * np.float64(src[k, i + j])
            out[k, i] = np.float32(acc)


def _convolve(data: np.ndarray, axis: int, taps: np.ndarray, pad: tuple[int, int]) -> np.ndarray:
    """One float32 pass along ``axis``: mirror ``pad`` pixels, sum in double, keep the valid part."""
    if pad != (0, 0):
        widths = [(0, 0)] * data.ndim
        widths[axis] = pad
        data = np.pad(data, widths, mode="reflect")
    lines = np.ascontiguousarray(np.moveaxis(data, axis, -1))
    rows = lines.reshape(-1, lines.shape[-1])
    out = np.empty((rows.shape[0], rows.shape[1] - taps.shape[0] + 1), np.float32)
    _correlate_rows(rows, taps, out)
    result: np.ndarray = np.moveaxis(out.reshape(lines.shape[:-1] + (out.shape[1],)), -1, axis)
    return result


def smooth_block(
    block: np.ndarray,
    taps: dict[int, np.ndarray],
    blocks: tuple[int, ...],
    block_id: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Smooth one block (with halos) along the axes in ``taps``, last axis first.

    Parameters
    ----------
    block : ndarray of float32
        The block with a halo of the kernel radius on each side that is not a true border.
    taps : dict of int to ndarray
        Axis -> vigra taps (2 r + 1); axes missing here are not smoothed and carry no halo.
    blocks : tuple of int
        Blocks per axis of the whole array (to tell true borders).
    block_id : tuple of int
        The block's index (given by dask).

    Returns
    -------
    ndarray of float32
        The block without its halos.
    """
    index = block_id if block_id is not None else (0,) * block.ndim
    out = block.astype(np.float32, copy=False)
    for axis in sorted(taps, reverse=True):
        r = taps[axis].shape[0] // 2
        pad = (r if index[axis] == 0 else 0, r if index[axis] == blocks[axis] - 1 else 0)
        out = _convolve(out, axis, taps[axis], pad)
    return out
