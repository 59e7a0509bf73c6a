"""From merged per-object sums to vigra's feature values (``reference/ilastik-objects.md`` 4.3, 4.4).

Every function takes the dense tables of :mod:`._accumulate` (row = object id) and returns float64
arrays ``(rows, k)``; the caller rounds to float32 and zeroes row 0 as ilastik stores them.
"""

from __future__ import annotations

import numpy as np

from ..errors import ObjectsError
from ._accumulate import BINS, Partial
from ._eigen import eigensystems

#: vigra's ``StandardQuantiles``: 0, 10, 25, 50, 75, 90, 100 %.
QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)

#: Objects per batch of the quantile computation (bounds its float64 temporaries).
_ROWS = 1 << 14


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with vigra's IEEE results (0/0 is NaN), without warnings."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(num / den, dtype=np.float64)


def intensity(name: str, first: Partial, second: Partial | None) -> np.ndarray:
    """Count, Sum, Mean, Variance, Skewness, Kurtosis, Minimum, Maximum, Covariance (one row per id).

    Parameters
    ----------
    name : str
        The feature.
    first, second : dict
        Dense pass-1 and pass-2 tables (``second`` may be None for pass-1 features).

    Returns
    -------
    numpy.ndarray
        float64 ``(rows, k)``.
    """
    n = first["count"].astype(np.float64)[:, None]
    if name == "Count":
        return n
    if name in ("Sum", "Minimum", "Maximum"):
        key = {"Sum": "sum", "Minimum": "min", "Maximum": "max"}[name]
        return first[key].astype(np.float64)
    if name == "Mean":
        return _divide(first["sum"], n)
    if second is None:
        raise ObjectsError(f"{name} needs the second pass")
    m2 = second["m2"]
    if name == "Variance":
        return _divide(m2, n)
    if name == "Skewness":
        return _divide(np.sqrt(n) * second["m3"], m2**1.5)
    if name == "Kurtosis":
        return _divide(n * second["m4"], m2 * m2) - 3.0
    return _divide(_covariance(second["m2"], second["cross"]), n)


def _covariance(m2: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """Full channel scatter matrices, flattened row-major, from diagonal and upper sums."""
    channels = m2.shape[1]
    out = np.empty((m2.shape[0], channels, channels), dtype=np.float64)
    pair = 0
    for a in range(channels):
        out[:, a, a] = m2[:, a]
        for b in range(a + 1, channels):
            out[:, a, b] = out[:, b, a] = cross[:, pair]
            pair += 1
    return out.reshape(m2.shape[0], channels * channels)


def _scatter_matrices(flat: np.ndarray) -> np.ndarray:
    """Per object the full coordinate scatter matrix from vigra's flat one (j, then i >= j)."""
    ndim = int(round((np.sqrt(8 * flat.shape[1] + 1) - 1) / 2))
    out = np.empty((flat.shape[0], ndim, ndim), dtype=np.float64)
    pair = 0
    for i in range(ndim):
        for j in range(i, ndim):
            out[:, i, j] = out[:, j, i] = flat[:, pair]
            pair += 1
    return out


def geometry(name: str, first: Partial, second: Partial | None) -> np.ndarray:
    """RegionCenter, Coord<Minimum>, Coord<Maximum> (exclusive), RegionRadii, RegionAxes.

    Parameters
    ----------
    name : str
        The feature.
    first, second : dict
        Dense pass-1 and pass-2 tables; ``first["wscatter"]`` the flat scatter matrices
        (``_eigen.scatter_batch``) for RegionRadii / RegionAxes.

    Returns
    -------
    numpy.ndarray
        float64 ``(rows, k)``, coordinates in x, y[, z] order; RegionRadii descending and
        RegionAxes the matching eigenvectors as columns of a d x d matrix, flattened row-major.
    """
    if name == "RegionCenter":
        return _divide(first["csum"], first["count"].astype(np.float64)[:, None])
    if name == "Coord<Minimum>":
        return first["cmin"].astype(np.float64)
    if name == "Coord<Maximum>":
        return first["cmax"].astype(np.float64) + 1.0
    if "wscatter" not in first:
        raise ObjectsError(f"{name} needs the coordinate scatter matrices")
    values, vectors = eigensystems(_scatter_matrices(first["wscatter"]))
    if name == "RegionRadii":
        with np.errstate(invalid="ignore"):
            return np.asarray(
                np.sqrt(_divide(values, first["count"].astype(np.float64)[:, None])), np.float64
            )
    return vectors.reshape(vectors.shape[0], -1)


def _segment(
    hist: np.ndarray, cumulative: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the first bin whose cumulative count reaches ``target``, and the counts around it."""
    k = np.argmax(cumulative >= target[:, None], axis=1)
    rows = np.arange(hist.shape[0])
    after = cumulative[rows, k]
    return k, after - hist[rows, k], after


def quantiles(hist: np.ndarray, vmin: np.ndarray, vmax: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """vigra's ``StandardQuantiles`` of one channel from 64-bin histograms (4.4).

    Parameters
    ----------
    hist : numpy.ndarray
        ``(rows, 64)`` bin counts over the range ``lo..hi``.
    vmin, vmax : numpy.ndarray
        ``(rows,)`` the exact minimum and maximum of each row's values.
    lo, hi : float
        The histogram range.

    Returns
    -------
    numpy.ndarray
        float64 ``(rows, 7)``: 0 % = ``vmin``, 100 % = ``vmax``, the others interpolated
        linearly inside the bin that reaches the quantile's count; NaN for empty rows.
    """
    vmin, vmax = np.asarray(vmin, dtype=np.float64), np.asarray(vmax, dtype=np.float64)
    top = hi if hi != lo else hi + BINS * np.finfo(np.float64).eps
    scale = BINS / (float(top) - float(lo))
    inverse = 1.0 / scale
    counts = hist.sum(axis=1).astype(np.float64)
    nonzero = hist > 0
    first_bin = np.argmax(nonzero, axis=1)
    last_bin = hist.shape[1] - 1 - np.argmax(nonzero[:, ::-1], axis=1)
    out = np.full((hist.shape[0], len(QUANTILES)), np.nan)
    filled = counts > 0
    out[filled, 0] = vmin[filled]
    out[filled, -1] = vmax[filled]
    cumulative = np.cumsum(hist, axis=1, dtype=np.float64)
    for column, q in enumerate(QUANTILES[1:-1], start=1):
        target = counts * q
        k, before, after = _segment(hist, cumulative, target)
        start = np.where(k == first_bin, scale * (vmin - lo), k.astype(np.float64))
        end = np.where(k == last_bin, scale * (vmax - lo), (k + 1).astype(np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (target - before) / (after - before) * (end - start)
        value = inverse * (t + start) + lo
        out[filled, column] = value[filled]
    return out


def finish(names: tuple[str, ...], first: Partial, second: Partial | None) -> dict[str, np.ndarray]:
    """Every named standard feature from dense pass-1 / pass-2 tables, float32, row 0 zero.

    Parameters
    ----------
    names : tuple of str
        Standard feature names (no neighbourhood suffix).
    first, second : dict
        Dense pass-1 and pass-2 tables; ``first`` holds the histogram range ``g_lo``/``g_hi``.

    Returns
    -------
    dict of str to numpy.ndarray
        Feature name -> float32 ``(rows, k)``.
    """
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name == "Histogram" and second is not None:
            # integer counts round to float32 once either way: no float64 copy of every bin
            values = second["hist"]
        elif name == "Quantiles" and second is not None:
            values = _all_quantiles(first, second)
        elif name.startswith(("Region", "Coord<")):
            values = geometry(name, first, second)
        else:
            values = intensity(name, first, second)
        table = values.astype(np.float32)
        table[0] = 0
        out[name] = table
    return out


def _all_quantiles(first: Partial, second: Partial) -> np.ndarray:
    """Quantiles of every channel (7 columns per channel) from the merged histograms.

    Rows are independent: they are done :data:`_ROWS` at a time, so the float64 cumulative
    histograms stay small whatever the number of objects.
    """
    rows, channels = first["min"].shape
    width = len(QUANTILES)
    out = np.empty((rows, channels * width), dtype=np.float64)
    for c in range(channels):
        lo, hi = float(first["g_lo"][c]), float(first["g_hi"][c])
        for begin in range(0, rows, _ROWS):
            part = slice(begin, begin + _ROWS)
            hist = second["hist"][part, c * BINS : (c + 1) * BINS]
            out[part, c * width : (c + 1) * width] = quantiles(
                hist, first["min"][part, c], first["max"][part, c], lo, hi
            )
    return out


def means(first: Partial) -> np.ndarray:
    """The per-object means (``(rows, C)``) pass 2 centres on."""
    return _divide(first["sum"], first["count"].astype(np.float64)[:, None])
