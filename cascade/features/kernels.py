"""Filter taps exactly as ilastik's fastfilters builds them.

Taps are computed in double precision and rounded to float32 once. Only the half
kernel ``c[0..r]`` is returned: order 0 and 2 kernels are symmetric, order 1 is
antisymmetric, and the convolution code uses ``c0*x[i] + sum_k c_k*(x[i+k] +/- x[i-k])``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = ["gaussian_half_kernel", "kernel_radius"]


def kernel_radius(sigma: float, window: float, order: int = 0) -> int:
    """Kernel radius ``floor(window * sigma + 0.5)`` (fastfilters' rule; 0 for sigma < 1e-6).

    A ``window`` of 0 or less gives fastfilters' default ``ceil((3 + 0.5 * order) * sigma)``.
    """
    if abs(sigma) < 1e-6:
        return 0
    if window > 0:
        return int(math.floor(window * sigma + 0.5))
    return int(math.ceil((3.0 + 0.5 * order) * sigma))


@lru_cache(maxsize=256)
def gaussian_half_kernel(sigma: float, order: int, window: float, radius: int | None = None) -> np.ndarray:
    """Half of a Gaussian (derivative) kernel: taps ``c[0..r]`` as float32.

    Parameters
    ----------
    sigma : float
        Standard deviation in pixels.
    order : {0, 1, 2}
        Derivative order.
    window : float
        Truncation window ratio (radius ``floor(window*sigma + 0.5)``).
    radius : int, optional
        Override the radius (e.g. fastfilters2's ``ceil((3 + 0.5*order)*sigma)``).

    Returns
    -------
    ndarray of float32, shape (r + 1,)
        ``c[k]`` is the tap at offset +k. For order 1 the tap at -k is ``-c[k]``
        (a derivative: a ramp of slope 1 gives 1); orders 0 and 2 are symmetric.
        Order 0 sums to 1; order 2 has zero mean and second moment ``sum x^2/2 k(x) = 1``.
    """
    if order not in (0, 1, 2):
        raise ValueError(f"order must be 0, 1 or 2, got {order}")
    r = kernel_radius(sigma, window, order) if radius is None else radius
    x = np.arange(-r, r + 1, dtype=np.float64)
    if r == 0:
        full = np.array([1.0 if order == 0 else 0.0])
        return full.astype(np.float32)
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    if order == 0:
        full = g / g.sum()
    elif order == 1:
        k = x * g
        full = k / np.sum(x * k)
    else:
        k = (x * x / (sigma * sigma) - 1.0) * g
        k = k - k.mean()
        full = k / np.sum(k * x * x / 2.0)
    return np.ascontiguousarray(full[r:]).astype(np.float32)
