"""Symmetric eigensystems as vigra computes them (RegionRadii, RegionAxes).

vigra's ``symmetricEigensystem`` is the JAMA algorithm: Householder reduction to tridiagonal form
(``tred2``), then implicit QL iterations (``tql2``), eigenvalues sorted descending with their
vectors. The sign of each eigenvector is whatever these steps produce, so matching ilastik's
``RegionAxes`` needs the same steps, not another solver: this is a numba implementation of the
published (public-domain) JAMA procedure, with vigra's descending sort.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["eigensystems", "scatter_batch"]


@numba.njit(cache=True)
def _householder(a: np.ndarray, d: np.ndarray, e: np.ndarray) -> None:  # pragma: no cover - numba
    """tred2, reduction part: ``a`` becomes the transformations, ``d``/``e`` the tridiagonal form."""
    n = a.shape[0]
    for j in range(n):
        d[j] = a[n - 1, j]
    for i in range(n - 1, 0, -1):
        scale = 0.0
        h = 0.0
        for k in range(i):
            scale += abs(d[k])
        if scale == 0.0:
            e[i] = d[i - 1]
            for j in range(i):
                d[j] = a[i - 1, j]
                a[i, j] = 0.0
                a[j, i] = 0.0
        else:
            for k in range(i):
                d[k] /= scale
                h += d[k] * d[k]
            f = d[i - 1]
            g = np.sqrt(h)
            if f > 0:
                g = -g
            e[i] = scale * g
            h -= f * g
            d[i - 1] = f - g
            for j in range(i):
                e[j] = 0.0
            for j in range(i):
                f = d[j]
                a[j, i] = f
                g = e[j] + a[j, j] * f
                for k in range(j + 1, i):
                    g += a[k, j] * d[k]
                    e[k] += a[k, j] * f
                e[j] = g
            f = 0.0
            for j in range(i):
                e[j] /= h
                f += e[j] * d[j]
            hh = f / (h + h)
            for j in range(i):
                e[j] -= hh * d[j]
            for j in range(i):
                f = d[j]
                g = e[j]
                for k in range(j, i):
                    a[k, j] -= f * e[k] + g * d[k]
                d[j] = a[i - 1, j]
                a[i, j] = 0.0
        d[i] = h


@numba.njit(cache=True)
def _accumulate(a: np.ndarray, d: np.ndarray, e: np.ndarray) -> None:  # pragma: no cover - numba
    """tred2, accumulation part: ``a`` becomes the orthogonal transformation, ``d`` the diagonal."""
    n = a.shape[0]
    for i in range(n - 1):
        a[n - 1, i] = a[i, i]
        a[i, i] = 1.0
        h = d[i + 1]
        if h != 0.0:
            for k in range(i + 1):
                d[k] = a[k, i + 1] / h
            for j in range(i + 1):
                g = 0.0
                for k in range(i + 1):
                    g += a[k, i + 1] * a[k, j]
                for k in range(i + 1):
                    a[k, j] -= g * d[k]
        for k in range(i + 1):
            a[k, i + 1] = 0.0
    for j in range(n):
        d[j] = a[n - 1, j]
        a[n - 1, j] = 0.0
    a[n - 1, n - 1] = 1.0
    e[0] = 0.0


@numba.njit(cache=True)
def _ql_step(d: np.ndarray, e: np.ndarray, z: np.ndarray, low: int, m: int) -> float:  # pragma: no cover
    """One implicit QL iteration on rows ``low..m``; returns the shift applied to ``d``."""
    n = d.shape[0]
    g = d[low]
    p = (d[low + 1] - g) / (2.0 * e[low])
    r = np.hypot(p, 1.0)
    if p < 0:
        r = -r
    d[low] = e[low] / (p + r)
    d[low + 1] = e[low] * (p + r)
    dl1 = d[low + 1]
    h = g - d[low]
    for i in range(low + 2, n):
        d[i] -= h
    p = d[m]
    c = c2 = c3 = 1.0
    el1 = e[low + 1]
    s = s2 = 0.0
    for i in range(m - 1, low - 1, -1):
        c3 = c2
        c2 = c
        s2 = s
        g = c * e[i]
        hp = c * p
        r = np.hypot(p, e[i])
        e[i + 1] = s * r
        s = e[i] / r
        c = p / r
        p = c * d[i] - s * g
        d[i + 1] = hp + s * (c * g + s * d[i])
        for k in range(n):
            zk = z[k, i + 1]
            z[k, i + 1] = s * z[k, i] + c * zk
            z[k, i] = c * z[k, i] - s * zk
    p = -s * s2 * c3 * el1 * e[low] / dl1
    e[low] = s * p
    d[low] = c * p
    return float(h)


@numba.njit(cache=True)
def _tql2(d: np.ndarray, e: np.ndarray, z: np.ndarray) -> bool:  # pragma: no cover - numba
    """tql2: eigenvalues into ``d``, vectors into the columns of ``z``, sorted descending."""
    n = d.shape[0]
    for i in range(1, n):
        e[i - 1] = e[i]
    e[n - 1] = 0.0
    f = 0.0
    tst1 = 0.0
    eps = 2.0**-52
    for low in range(n):
        tst1 = max(tst1, abs(d[low]) + abs(e[low]))
        m = low
        while m < n and abs(e[m]) > eps * tst1:
            m += 1
        if m > low:
            iterations = 0
            while True:
                iterations += 1
                if iterations > 50:
                    return False
                f += _ql_step(d, e, z, low, m)
                if abs(e[low]) <= eps * tst1:
                    break
        d[low] = d[low] + f
        e[low] = 0.0
    for i in range(n - 1):
        k = i
        p = d[i]
        for j in range(i + 1, n):
            if p < d[j]:
                k = j
                p = d[j]
        if k != i:
            d[k], d[i] = d[i], d[k]
            for j in range(n):
                z[j, i], z[j, k] = z[j, k], z[j, i]
    return True


@numba.njit(cache=True)
def _solve_all(matrices: np.ndarray, values: np.ndarray, vectors: np.ndarray) -> None:  # pragma: no cover
    """Eigensystem of every finite matrix; NaN where a matrix is not finite or QL fails."""
    n = matrices.shape[1]
    for index in range(matrices.shape[0]):
        a = matrices[index].copy()
        if not np.all(np.isfinite(a)):
            continue
        d = np.zeros(n)
        e = np.zeros(n)
        _householder(a, d, e)
        _accumulate(a, d, e)
        if _tql2(d, e, a):
            values[index] = d
            vectors[index] = a


def eigensystems(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """vigra's eigenvalues (descending) and eigenvectors (columns) of symmetric matrices.

    Parameters
    ----------
    matrices : numpy.ndarray
        float64 ``(k, n, n)`` symmetric matrices.

    Returns
    -------
    values : numpy.ndarray
        ``(k, n)`` eigenvalues, descending (NaN for a non-finite matrix).
    vectors : numpy.ndarray
        ``(k, n, n)`` the eigenvector of ``values[:, j]`` in column ``j``.
    """
    matrices = np.ascontiguousarray(matrices, dtype=np.float64)
    values = np.full(matrices.shape[:2], np.nan)
    vectors = np.full(matrices.shape, np.nan)
    _solve_all(matrices, values, vectors)
    return values, vectors


@numba.njit(cache=True)
def _welford(  # pragma: no cover - numba
    crop: np.ndarray, object_id: int, origin: np.ndarray, ndim: int, flat: np.ndarray
) -> None:
    """vigra's incremental coordinate scatter of one object, pixels in raster order (x fastest).

    ``crop`` is ``(z, y, x)`` (z of extent 1 in 2D), ``origin`` its corner in x, y, z order;
    ``flat`` receives vigra's flat scatter matrix (for j, for i >= j: ``w * d[i] * d[j]``).
    """
    n = 0.0
    total = np.zeros(3)
    here = np.zeros(3)
    diff = np.zeros(3)
    for z in range(crop.shape[0]):
        for y in range(crop.shape[1]):
            for x in range(crop.shape[2]):
                if crop[z, y, x] != object_id:
                    continue
                here[0] = origin[0] + x
                here[1] = origin[1] + y
                here[2] = origin[2] + z
                n += 1.0
                for i in range(ndim):
                    total[i] += here[i]
                if n > 1.0:
                    weight = n * 1.0 / (n - 1.0)
                    for i in range(ndim):
                        diff[i] = total[i] / n - here[i]
                    k = 0
                    for j in range(ndim):
                        for i in range(j, ndim):
                            flat[k] += weight * diff[i] * diff[j]
                            k += 1


def scatter_batch(
    raw: np.ndarray | None,
    labels: np.ndarray,
    ids: np.ndarray,
    relative: np.ndarray,
    origin: tuple[int, ...],
) -> dict[str, np.ndarray]:
    """vigra's coordinate scatter matrices of a batch of objects (windows = bounding boxes).

    vigra updates the scatter matrix pixel by pixel (Welford, in raster order); its rounding
    decides the eigenvector signs of nearly degenerate objects (RegionAxes), so it is replayed
    per object on its bounding-box crop, which also makes it independent of the chunking.

    Parameters
    ----------
    raw : None
        Unused.
    labels : numpy.ndarray
        The batch's label region (``[z]yx``).
    ids : numpy.ndarray
        The objects of the batch.
    relative : numpy.ndarray
        ``(n, 2, d)`` each object's bounding box in the region, internal order.
    origin : tuple of int
        The region's position in the image, internal order.

    Returns
    -------
    dict of str to numpy.ndarray
        ``ids`` and ``wscatter`` float64 ``(n, d (d + 1) / 2)`` in vigra's flat order.
    """
    ndim = labels.ndim
    out = np.zeros((len(ids), ndim * (ndim + 1) // 2), dtype=np.float64)
    for row, (object_id, (start, stop)) in enumerate(zip(ids, relative, strict=True)):
        window = tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))
        crop = labels[window].reshape((1,) * (3 - ndim) + labels[window].shape)
        corner = np.zeros(3)
        corner[:ndim] = [o + a for o, a in zip(origin[::-1], start[::-1], strict=True)]
        _welford(np.ascontiguousarray(crop), int(object_id), corner, ndim, out[row])
    return {"ids": ids, "wscatter": out}
