"""A block's data with its place in the image, and the Gaussian derivatives of it.

A :class:`Frame` knows which of its sides are true image borders (mirror there) and which
carry halo (consumed by each pass), so a block computed with enough halo equals the
whole-image result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._filters import pass_along
from .kernels import gaussian_half_kernel
from .selection import FEATURE_WINDOW

__all__ = ["Derivatives", "Frame"]


@dataclass(frozen=True)
class Frame:
    """Data of shape ``(batch, *spatial)`` covering ``[lo, lo + shape)`` of an image of extent ``full``."""

    data: np.ndarray
    lo: tuple[int, ...]
    full: tuple[int, ...]

    @property
    def hi(self) -> tuple[int, ...]:
        return tuple(a + n for a, n in zip(self.lo, self.data.shape[1:]))

    def crop(self, lo: tuple[int, ...], hi: tuple[int, ...]) -> Frame:
        index = (slice(None),) + tuple(slice(a - b, c - b) for a, c, b in zip(lo, hi, self.lo))
        return Frame(self.data[index], lo, self.full)

    def filtered(self, spatial_axis: int, sigma: float, order: int, window: float = FEATURE_WINDOW) -> Frame:
        """One Gaussian (derivative) pass along a spatial axis (ilastik's feature window 2 by default)."""
        taps = gaussian_half_kernel(sigma, order, window)
        return self._pass(spatial_axis, taps, order == 1)

    def smoothed(self, sigma: float, window: float) -> Frame:
        """Gaussian smoothing along every spatial axis, last axis (x) first."""
        taps = gaussian_half_kernel(sigma, 0, window)
        frame = self
        for axis in reversed(range(len(self.lo))):
            frame = frame._pass(axis, taps, False)
        return frame

    def _pass(self, axis: int, taps: np.ndarray, odd: bool) -> Frame:
        r = taps.shape[0] - 1
        at_lo = self.lo[axis] == 0
        at_hi = self.hi[axis] == self.full[axis]
        data = pass_along(np.ascontiguousarray(self.data), axis + 1, taps, odd, at_lo, at_hi)
        lo = list(self.lo)
        lo[axis] += 0 if at_lo else r
        return Frame(data, tuple(lo), self.full)


class Derivatives:
    """Gaussian derivatives of one frame, sharing the passes they have in common.

    ``get(sigma, orders)`` filters along x, then y, then z (fastfilters' order); ``orders``
    lists the derivative order per axis in that same x, y, z order. Prefixes are cached.
    """

    def __init__(self, frame: Frame, window: float) -> None:
        self.frame = frame
        self.window = window
        self.ndim = len(frame.lo)
        self._cache: dict[tuple[float, tuple[int, ...]], Frame] = {}

    def get(self, sigma: float, orders: tuple[int, ...]) -> Frame:
        key = (sigma, orders)
        if key not in self._cache:
            prev = self.frame if len(orders) == 1 else self.get(sigma, orders[:-1])
            axis = self.ndim - len(orders)
            self._cache[key] = prev.filtered(axis, sigma, orders[-1], self.window)
        return self._cache[key]

    def unit(self, sigma: float, axis_xyz: int, order: int) -> Frame:
        orders = tuple(order if a == axis_xyz else 0 for a in range(self.ndim))
        return self.get(sigma, orders)

    def mixed(self, sigma: float, a: int, b: int) -> Frame:
        """Second derivative along axes ``a`` and ``b`` (x=0, y=1, z=2)."""
        if a == b:
            return self.unit(sigma, a, 2)
        orders = tuple(1 if i in (a, b) else 0 for i in range(self.ndim))
        return self.get(sigma, orders)
