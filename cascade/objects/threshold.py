"""ilastik's thresholding (``ThresholdTwoLevels``), blockwise: smoothing, threshold, size filter.

Per time point, as ``OpThresholdTwoLevels`` (``reference/ilastik-objects.md`` section 2):
probabilities as float32, every needed channel smoothed with vigra's ``gaussianSmoothing``
(window 2.0, mirror border) over the spatial axes of extent > 1 (not at all when one of their
sigmas is below 0.1), then

- simple: ``smoothed[channel] >= low`` -> connected components -> size filter;
- hysteresis: cores ``smoothed[core_channel] >= high`` -> components -> size filter; the final
  image ``smoothed[channel]`` (plus ``smoothed[core_channel]`` when the channels differ)
  ``>= low`` -> components, only those overlapping a kept core pixel stay -> size filter.

The size filter keeps ``min_size <= pixels <= max_size`` (pixels of the whole time point).

Cost: one eager scan (component tables; for hysteresis the final components, the cores and
which of them share pixels, all in the same pass). The returned labels are lazy: each chunk is
smoothed, thresholded and labelled again when computed.
"""

from __future__ import annotations

import dask.array as da
import numpy as np

from ..errors import ObjectsError
from ._cc import relabel_block
from ._merge import Components, relabel, scan
from ._smooth import smooth_block, vigra_gaussian_taps, vigra_radius
from .components import as_tzyx, check_axes, from_tzyx, objects_from_components
from .model import Objects, ThresholdSettings

__all__ = ["objects_from_probabilities", "smooth_probabilities", "threshold_labels"]

#: ilastik smooths nothing when any sigma of an axis with extent > 1 is below this.
MIN_SIGMA = 0.1


def _smoothing_taps(
    shape: tuple[int, ...], axes: str, sigmas: tuple[float, float, float]
) -> dict[int, np.ndarray]:
    """Axis -> vigra taps for the spatial axes of extent > 1; empty when no smoothing applies."""
    by_key = dict(zip("xyz", sigmas))
    smoothed = {axes.index(k): by_key[k] for k in "zyx" if k in axes and shape[axes.index(k)] > 1}
    if any(s < MIN_SIGMA for s in smoothed.values()):
        return {}
    taps = {}
    for axis, sigma in smoothed.items():
        r = vigra_radius(sigma)
        if shape[axis] <= r:
            raise ObjectsError(
                f"smoothing sigma {sigma} along {axes[axis]} needs more than {r} pixels, the image has "
                f"{shape[axis]} (vigra: kernel longer than line); lower the sigma"
            )
        taps[axis] = vigra_gaussian_taps(sigma)
    return taps


def _at_least(chunks: tuple[int, ...], size: int) -> tuple[int, ...]:
    """Merge neighbouring chunks until each is at least ``size`` (the last group joins its left one)."""
    merged: list[int] = []
    for c in chunks:
        if merged and merged[-1] < size:
            merged[-1] += c
        else:
            merged.append(c)
    if len(merged) > 1 and merged[-1] < size:
        last = merged.pop()
        merged[-1] += last
    return tuple(merged)


def smooth_probabilities(probabilities: da.Array, axes: str, sigmas: tuple[float, float, float]) -> da.Array:
    """Smooth every channel as ilastik's thresholding does (vigra ``gaussianSmoothing``, window 2.0).

    Parameters
    ----------
    probabilities : dask.array.Array
        Axes ``[t][z]yxc`` (internal order); converted to float32.
    axes : str
        The array's axes.
    sigmas : tuple of float
        Sigma per spatial axis in **x, y, z** order. Only axes of extent > 1 are smoothed; none
        is when any of their sigmas is below 0.1.

    Returns
    -------
    dask.array.Array
        float32, same shape and chunks, per time point and channel; mirror border; equal to the
        whole image's result at any chunking.

    Raises
    ------
    ObjectsError
        If the axes do not fit or an axis is not longer than its kernel radius.
    """
    axes = check_axes(axes, probabilities.ndim, channel=True)
    if len(sigmas) != 3 or not all(np.isfinite(s) and s >= 0 for s in sigmas):
        raise ObjectsError(f"smoothing sigmas must be three numbers >= 0 (x, y, z), got {sigmas}")
    data: da.Array = probabilities.astype(np.float32)
    taps = _smoothing_taps(data.shape, axes, sigmas)
    if not taps:
        return data
    depth = {axis: (taps[axis].shape[0] // 2 if axis in taps else 0) for axis in range(data.ndim)}
    work = data.rechunk({axis: _at_least(data.chunks[axis], depth[axis]) for axis in taps})
    smoothed: da.Array = work.map_overlap(
        smooth_block,
        depth=depth,
        boundary="none",
        trim=False,
        chunks=work.chunks,
        dtype=np.float32,
        meta=np.empty((0,) * data.ndim, np.float32),
        taps=taps,
        blocks=work.numblocks,
    )
    if smoothed.chunks != data.chunks:
        smoothed = smoothed.rechunk(data.chunks)
    return smoothed


def _check(probabilities: da.Array, axes: str, settings: ThresholdSettings) -> str:
    axes = check_axes(axes, probabilities.ndim, channel=True)
    channels = probabilities.shape[-1]
    if settings.channels_needed > channels:
        used = "channel and core_channel" if settings.method == "hysteresis" else "channel"
        raise ObjectsError(
            f"threshold {used} ({settings.channel}, {settings.core_channel}) need {settings.channels_needed} "
            f"probability channels, the image has {channels}"
        )
    return axes


def _sized(components: Components, settings: ThresholdSettings) -> np.ndarray:
    return (components.size >= settings.min_size) & (components.size <= settings.max_size)


def _masks(
    probabilities: da.Array, axes: str, settings: ThresholdSettings
) -> tuple[da.Array, da.Array | None]:
    """The final mask and (hysteresis) the core mask, both ``tzyx``."""
    channels = sorted(
        {settings.channel, settings.core_channel} if settings.method == "hysteresis" else {settings.channel}
    )
    picked = probabilities[..., channels]
    smoothed = smooth_probabilities(picked, axes, settings.sigmas)
    spatial = axes[:-1]
    final = smoothed[..., channels.index(settings.channel)]
    if settings.method != "hysteresis":
        return as_tzyx(final >= np.float32(settings.low), spatial), None
    core = smoothed[..., channels.index(settings.core_channel)]
    if settings.channel != settings.core_channel:
        final = final + core
    return as_tzyx(final >= np.float32(settings.low), spatial), as_tzyx(
        core >= np.float32(settings.high), spatial
    )


def _components(
    probabilities: da.Array, axes: str, settings: ThresholdSettings
) -> tuple[da.Array, Components, np.ndarray]:
    """The ``tzyx`` final mask, its global components and which of them survive."""
    final, cores = _masks(probabilities, axes, settings)
    components, core_components, contacts = scan(final, cores)
    keep = _sized(components, settings)
    if core_components is not None:
        kept_cores = _sized(core_components, settings)
        touches = np.zeros(keep.shape, np.bool_)
        touches[contacts[kept_cores[contacts[:, 1]], 0]] = True
        keep &= touches
    return final, components, keep


def threshold_labels(probabilities: da.Array, axes: str, settings: ThresholdSettings) -> da.Array:
    """ilastik's ``CachedThresholdLabels``: the thresholded components before renumbering.

    Parameters
    ----------
    probabilities : dask.array.Array
        Axes ``[t][z]yxc`` (internal order), at least :attr:`ThresholdSettings.channels_needed`
        channels.
    axes : str
        The array's axes.
    settings : ThresholdSettings
        Method, channels, thresholds, sigmas and size filter.

    Returns
    -------
    dask.array.Array
        uint32, the axes without ``c`` (t chunks of 1): per time point the connected-component
        ids of the thresholded image in raster order, *before* the size filter, 0 where a
        component was removed (so the ids have gaps, as ilastik's).

    Raises
    ------
    ObjectsError
        If the axes or channels do not fit the settings.
    """
    axes = _check(probabilities, axes, settings)
    final, components, keep = _components(probabilities, axes, settings)
    ids = np.where(keep, components.ids(), 0).astype(np.uint32)
    labels = relabel(final, components.luts(ids), relabel_block, "threshold-labels")
    return from_tzyx(labels, axes[:-1])


def objects_from_probabilities(probabilities: da.Array, axes: str, settings: ThresholdSettings) -> Objects:
    """Objects of thresholded probabilities: the surviving components numbered 1..N per time point.

    Parameters
    ----------
    probabilities : dask.array.Array
        Axes ``[t][z]yxc`` (internal order).
    axes : str
        The array's axes.
    settings : ThresholdSettings
        The thresholding.

    Returns
    -------
    Objects
        Equal to ``label_components(threshold_labels(...) > 0)``, computed from the same single
        scan: consecutive ids in raster order, eager counts, lazy labels.

    Raises
    ------
    ObjectsError
        If the axes or channels do not fit the settings.
    """
    axes = _check(probabilities, axes, settings)
    final, components, keep = _components(probabilities, axes, settings)
    return objects_from_components(final, components, axes[:-1], keep)
