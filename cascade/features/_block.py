"""The feature stack of one block, computed exactly as ilastik does.

A block arrives with a halo (or without one at true image borders). Each scale column
is computed on the block plus that column's own halo only:

1. presmoothing ``P = G(sigma_pre)`` with window 3.5, ``sigma_pre = sqrt(s^2 - 1)`` for
   ``s > 1`` and ``s`` otherwise;
2. every selected feature of the column on ``P`` at ``s' = min(s, 1)`` with window 2.

A :class:`~cascade.features._frame.Frame` tracks where its data lies in the whole image, so every pass knows
which of its sides are true borders (mirror) and which carry halo (consumed).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ._block2d import features_2d
from ._block3d import columns_3d, features_3d
from ._filters import eigenvalues_2d, eigenvalues_3d
from ._frame import Derivatives, Frame
from .selection import FEATURE_WINDOW, PRESMOOTH_WINDOW, FeatureSelection

__all__ = ["block_features", "filter_image"]


def _eigenvalues(parts: dict[tuple[int, int], np.ndarray], ndim: int) -> np.ndarray:
    if ndim == 2:
        return eigenvalues_2d(parts[0, 0], parts[0, 1], parts[1, 1])
    # fastfilters passes (zz, yz, xz, yy, xy, xx); index 0 is x here.
    return eigenvalues_3d(parts[2, 2], parts[1, 2], parts[0, 2], parts[1, 1], parts[0, 1], parts[0, 0])


def _pairs(ndim: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(ndim) for b in range(a, ndim)]


def _column_features(
    frame: Frame,
    s_eff: float,
    wanted: list[str],
    core_lo: tuple[int, ...],
    core_hi: tuple[int, ...],
    *,
    window: float = FEATURE_WINDOW,
    structure_sigmas: tuple[float, float] | None = None,
) -> dict[str, np.ndarray]:
    """Wanted features of one (presmoothed) frame at ``s_eff``; each ``(n_out, batch, *core)``.

    ``structure_sigmas`` is (gradient sigma, tensor smoothing sigma); ilastik's fastfilters
    call gives ``(0.5 * s_eff, s_eff)``.
    """
    ndim = len(frame.lo)
    deriv = Derivatives(frame, window)
    grad_sigma, tensor_sigma = structure_sigmas or (0.5 * s_eff, s_eff)

    def core(f: Frame) -> np.ndarray:
        return f.crop(core_lo, core_hi).data

    results: dict[str, np.ndarray] = {}
    computers: dict[str, Callable[[], np.ndarray]] = {
        "GaussianSmoothing": lambda: core(deriv.get(s_eff, (0,) * ndim))[None],
        "LaplacianOfGaussian": lambda: _sum([core(deriv.unit(s_eff, a, 2)) for a in range(ndim)])[None],
        "GaussianGradientMagnitude": lambda: np.sqrt(
            _sum([np.square(core(deriv.unit(s_eff, a, 1))) for a in range(ndim)])
        )[None],
        "DifferenceOfGaussians": lambda: (
            core(deriv.get(s_eff, (0,) * ndim)) - core(deriv.get(0.66 * s_eff, (0,) * ndim))
        )[None],
        "HessianOfGaussianEigenvalues": lambda: _eigenvalues(
            {p: core(deriv.mixed(s_eff, *p)) for p in _pairs(ndim)}, ndim
        ),
        "StructureTensorEigenvalues": lambda: _structure_tensor(deriv, grad_sigma, tensor_sigma, core),
    }
    for fid in wanted:
        results[fid] = computers[fid]()
    return results


def _sum(arrays: list[np.ndarray]) -> np.ndarray:
    total = arrays[0]
    for a in arrays[1:]:
        total = total + a
    return total


def _structure_tensor(
    deriv: Derivatives, grad_sigma: float, tensor_sigma: float, core: Callable[[Frame], np.ndarray]
) -> np.ndarray:
    """Structure tensor eigenvalues: gradient at ``grad_sigma``, tensor smoothed at ``tensor_sigma``."""
    ndim = deriv.ndim
    grads = [deriv.unit(grad_sigma, a, 1) for a in range(ndim)]
    parts = {}
    for a, b in _pairs(ndim):
        product = Frame(grads[a].data * grads[b].data, grads[a].lo, grads[a].full)
        smooth = product
        for axis in reversed(range(ndim)):
            smooth = smooth.filtered(axis, tensor_sigma, 0, deriv.window)
        parts[a, b] = core(smooth)
    return _eigenvalues(parts, ndim)


def block_features(
    block: np.ndarray,
    selection: FeatureSelection,
    *,
    has_t: bool,
    lo: tuple[int, ...],
    full: tuple[int, ...],
    core_lo: tuple[int, ...],
    core_hi: tuple[int, ...],
) -> np.ndarray:
    """Feature stack of one (haloed) block.

    Parameters
    ----------
    block : ndarray, shape ([t,] [z,] y, x, c)
        Input over ``[lo, lo + spatial shape)`` of an image whose spatial extent is ``full``.
    selection : FeatureSelection
        What to compute.
    has_t : bool
        Whether the block's first axis is t.
    lo, full : tuple of int
        Global start of the block and full image extent, per spatial axis (z, y, x or y, x).
    core_lo, core_hi : tuple of int
        Global region to return (the block without its halo).

    Returns
    -------
    ndarray of float32, shape ([t,] [z,] y, x, n_channels)
        ilastik's channel order: feature row, scale column, input channel, eigenvalue.
    """
    n_t = block.shape[0] if has_t else 1
    n_c = block.shape[-1]
    spatial = block.shape[1:-1] if has_t else block.shape[:-1]
    ndim = len(spatial)
    z_size = full[0] if ndim == 3 else None
    stacked = np.moveaxis(block.reshape(n_t, *spatial, n_c), -1, 1).reshape(n_t * n_c, *spatial)
    base = Frame(np.ascontiguousarray(stacked, dtype=np.float32), lo, full)
    if ndim == 2:
        out = features_2d(base, selection, core_lo, core_hi, n_t)
        return out if has_t else out[0]
    core_shape = tuple(b - a for a, b in zip(core_lo, core_hi))
    out = np.empty((n_t, *core_shape, selection.n_channels(n_c, z_size)), np.float32)
    fused = columns_3d(selection, full[0])
    if fused:  # first: the fused call writes junk into the other columns' channels
        features_3d(base, selection, core_lo, core_hi, n_t, out)

    offsets: dict[tuple[str, int], int] = {}
    channel = 0
    for fid, j in selection.selected():
        offsets[fid, j] = channel
        channel += n_c * selection.channels_per_input(fid, j, z_size)

    for j in selection.columns():
        if j in fused:
            continue
        wanted = [f for f, row in zip(selection.feature_ids, selection.matrix) if row[j]]
        for fid, res in _column(base, selection, j, wanted, core_lo, core_hi, z_size).items():
            n_ev = res.shape[0]  # res: (n_ev, n_t * n_c, *core)
            res = res.reshape(n_ev, n_t, n_c, *core_shape)
            first = offsets[fid, j]
            for c in range(n_c):
                for k in range(n_ev):
                    out[..., first + c * n_ev + k] = res[k, :, c]
    return out if has_t else out[0]


def _column(
    base: Frame,
    selection: FeatureSelection,
    j: int,
    wanted: list[str],
    core_lo: tuple[int, ...],
    core_hi: tuple[int, ...],
    z_size: int | None,
) -> dict[str, np.ndarray]:
    """Column ``j`` unfused: per z-slice for "in 2D" columns of 3D data (3D columns run fused in
    :func:`block_features`; this path computes them too, as the tests' reference)."""
    s = selection.scales[j]
    halo = selection.column_halo(j)
    lo = tuple(max(c - halo, b) for c, b in zip(core_lo, base.lo))
    hi = tuple(min(c + halo, b) for c, b in zip(core_hi, base.hi))
    if z_size is not None and selection.column_is_2d(j, z_size):
        lo, hi = (core_lo[0], *lo[1:]), (core_hi[0], *hi[1:])
    frame = base.crop(lo, hi)
    s_pre = math.sqrt(s * s - 1.0) if s > 1.0 else s
    if z_size is not None and selection.column_is_2d(j, z_size):
        return _per_slice(frame, s, s_pre, wanted, core_lo, core_hi, presmooth_2d=True)
    if z_size is not None and selection.features_are_2d(j, z_size):
        return _per_slice(frame, s, s_pre, wanted, core_lo, core_hi, presmooth_2d=False)
    presmoothed = frame.smoothed(s_pre, PRESMOOTH_WINDOW)
    return _column_features(presmoothed, min(s, 1.0), wanted, core_lo, core_hi)


def _per_slice(
    frame: Frame,
    s: float,
    s_pre: float,
    wanted: list[str],
    core_lo: tuple[int, ...],
    core_hi: tuple[int, ...],
    *,
    presmooth_2d: bool,
) -> dict[str, np.ndarray]:
    """A column of a 3D image computed slice by slice in (y, x) (after 2D or 3D presmoothing)."""
    if not presmooth_2d:
        smoothed = frame.smoothed(s_pre, PRESMOOTH_WINDOW)
        frame = smoothed.crop((core_lo[0], *smoothed.lo[1:]), (core_hi[0], *smoothed.hi[1:]))
    batch, nz = frame.data.shape[:2]
    flat = Frame(frame.data.reshape(batch * nz, *frame.data.shape[2:]), frame.lo[1:], frame.full[1:])
    if presmooth_2d:
        flat = flat.smoothed(s_pre, PRESMOOTH_WINDOW)
    results = _column_features(flat, min(s, 1.0), wanted, core_lo[1:], core_hi[1:])
    return {k: v.reshape(v.shape[0], batch, nz, *v.shape[2:]) for k, v in results.items()}


def filter_image(
    image: np.ndarray,
    feature_id: str,
    sigma: float,
    *,
    window: float = FEATURE_WINDOW,
    structure_sigmas: tuple[float, float] | None = None,
) -> np.ndarray:
    """One feature filter applied directly to a whole single-channel image (no presmoothing).

    Parameters
    ----------
    image : ndarray, shape (y, x) or (z, y, x)
        The image; cast to float32.
    feature_id : str
        An ilastik feature id.
    sigma : float
        Filter scale (DoG subtracts the smoothing at ``0.66 * sigma``).
    window : float
        Truncation window: radius ``floor(window*sigma + 0.5)``; 0 or less gives
        ``ceil((3 + 0.5*order) * sigma)`` (fastfilters2's rule).
    structure_sigmas : (float, float), optional
        Structure tensor (gradient sigma, smoothing sigma); default ``(0.5*sigma, sigma)``.

    Returns
    -------
    ndarray of float32, shape (n_out, *image.shape)
        Eigenvalue features have 2 or 3 outputs (descending), the others 1.
    """
    shape = tuple(image.shape)
    frame = Frame(np.ascontiguousarray(image, dtype=np.float32)[None], (0,) * len(shape), shape)
    zeros = (0,) * len(shape)
    result = _column_features(
        frame, sigma, [feature_id], zeros, shape, window=window, structure_sigmas=structure_sigmas
    )
    return result[feature_id][:, 0]
