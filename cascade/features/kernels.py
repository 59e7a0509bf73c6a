"""Filter taps exactly as ilastik's fastfilters builds them.

Taps are rounded to float32 at every step fastfilters rounds them. Only the half
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

    Parameters
    ----------
    sigma : float
        The Gaussian's scale.
    window : float
        Radius in multiples of sigma.
    order : int
        Derivative order (only for the default window).

    Returns
    -------
    int
        The radius in pixels.
    """
    if abs(sigma) < 1e-6:
        return 0
    if window > 0:
        return int(math.floor(window * sigma + 0.5))
    return int(math.ceil((3.0 + 0.5 * order) * sigma))


@lru_cache(maxsize=256)
def gaussian_half_kernel(sigma: float, order: int, window: float, radius: int | None = None) -> np.ndarray:
    """Half of a Gaussian (derivative) kernel: taps ``c[0..r]`` as float32, rounded as fastfilters rounds.

    fastfilters stores the taps in a float32 array from the start, so every step rounds:
    the sampled (scaled) Gaussian is rounded to float32, the order-2 DC offset is computed
    in double from those float32 taps and subtracted with a float32 result, and the
    normalising sum (taps, or their first/second moment) is accumulated in double over the
    float32 taps, centre first, and divided into each tap with a float32 result. Each of
    these roundings changes taps in the last bit, so all of them are reproduced.

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
    if r == 0:
        return np.array([1.0 if order == 0 else 0.0], np.float32)
    taps = _scaled_gaussian(sigma, order, r)
    if order == 2:
        dc = (float(taps[0]) + sum(2.0 * float(c) for c in taps[1:])) / (2.0 * r + 1.0)
        taps = np.array([float(c) - dc for c in taps], np.float32)
    if order == 0:
        total = float(taps[0])
        for c in taps[1:]:
            total += 2.0 * float(c)
    else:
        # Moment sum over both sides, -k then +k (the odd kernel's -k tap is -c[k]).
        sign = -1.0 if order == 1 else 1.0
        total = 0.0
        for k in range(1, r + 1):
            total += float(taps[k]) * (-float(k)) ** order / math.factorial(order)
            total += sign * float(taps[k]) * float(k) ** order / math.factorial(order)
    taps = np.array([float(c) / total for c in taps], np.float32)
    return -taps if order == 1 else taps


def _scaled_gaussian(sigma: float, order: int, r: int) -> np.ndarray:
    """``norm * exp(-x^2 / (2 sigma^2))`` times the order's polynomial, for x = 0..r, rounded to float32."""
    if order == 0:
        norm = 1.0 / (math.sqrt(2.0 * math.pi) * sigma)
    else:
        norm = -1.0 / (math.sqrt(2.0 * math.pi) * math.pow(sigma, 3))
    exponent = -0.5 / sigma / sigma
    taps = np.empty(r + 1, np.float32)
    for x in range(r + 1):
        g = norm * math.exp(float(x * x) * exponent)
        taps[x] = g if order == 0 else x * g if order == 1 else (1.0 - (x / sigma) * (x / sigma)) * g
    return taps
