"""Compiled float32 line kernels of the fused features: mirror-padded rows and short passes.

Passes use fastfilters' operation order, ``s = c0*x[i]`` then ``s = fma(x[i+k] +/- x[i-k], c_k, s)``
for ``k = 1..r`` (radius 2 or less in a single sweep, the same operations), on *flat* lines: a
pass along x over a run of mirror-padded rows (:func:`x_rows`), along y over a run of rows
``step`` apart (:func:`shifted`), or along z across planes held in a ring (:func:`across`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._filters import _fma32 as fma32
from ._filters import _mirror as mirror_index

__all__ = [
    "FILL_COPY",
    "FILL_PRODUCT",
    "FILL_TENSOR",
    "across",
    "fill_line",
    "gradients_2d",
    "shifted",
    "x_rows",
]

#: How :func:`fill_line` fills its buffers: a copy of ``a``; the structure tensor's three products
#: ``a*a``, ``a*b``, ``b*b`` of two gradient rows; or the single product ``a*b``.
FILL_COPY, FILL_TENSOR, FILL_PRODUCT = 0, 1, 2


@njit(nogil=True, cache=True, inline="always")
def fill_line(a, b, mode, x0, width, bufs, at):  # type: ignore[no-untyped-def]
    """A mirror-padded row: ``bufs[0][at + j] = a[mirror(x0 + j)]`` for ``j < width``.

    With ``mode`` ``FILL_TENSOR``, the structure tensor's float32 products of the gradient rows
    ``a`` and ``b`` instead: ``a*a``, ``a*b`` and ``b*b`` into ``bufs[0]``, ``bufs[1]`` and
    ``bufs[2]``; with ``FILL_PRODUCT`` the one product ``a*b`` into ``bufs[0]``.
    """
    n = a.shape[0]
    j0 = min(max(0, -x0), width)
    j1 = max(j0, min(width, n - x0))
    for j in range(j0):
        _put(a, b, mode, mirror_index(x0 + j, n), bufs, at + j)
    for j in range(j1, width):
        _put(a, b, mode, mirror_index(x0 + j, n), bufs, at + j)
    if mode == FILL_TENSOR:
        b0, b1, b2 = bufs[0], bufs[1], bufs[2]
        for j in range(j0, j1):
            u, v = a[x0 + j], b[x0 + j]
            b0[at + j] = u * u
            b1[at + j] = u * v
            b2[at + j] = v * v
    elif mode == FILL_PRODUCT:
        b0 = bufs[0]
        for j in range(j0, j1):
            b0[at + j] = a[x0 + j] * b[x0 + j]
    else:
        b0 = bufs[0]
        for j in range(j0, j1):  # a loop: numba's slice assignment is several times slower
            b0[at + j] = a[x0 + j]


@njit(nogil=True, cache=True, inline="always")
def _put(a, b, mode, m, bufs, at):  # type: ignore[no-untyped-def]
    """One mirrored position of :func:`fill_line` (true image borders only)."""
    if mode == FILL_TENSOR:
        bufs[0, at] = a[m] * a[m]
        bufs[1, at] = a[m] * b[m]
        bufs[2, at] = b[m] * b[m]
    elif mode == FILL_PRODUCT:
        bufs[0, at] = a[m] * b[m]
    else:
        bufs[0, at] = a[m]


@njit(nogil=True, cache=True, inline="always")
def _short(mid, h1, l1, h2, l2, taps, r, odd, out):  # type: ignore[no-untyped-def]
    """Radius <= 2 in one sweep: ``out = fma(h2 +/- l2, c2, fma(h1 +/- l1, c1, c0*mid))``.

    The same float32 operations in the same order as ``s = c0*x``, then one fused multiply-add
    per k (the unfused code stores ``s`` between them, which rounds nothing).
    """
    c0 = taps[0]
    if r == 0:
        for i in range(out.shape[0]):
            out[i] = c0 * mid[i]
    elif r == 1:
        c1 = taps[1]
        if odd:
            for i in range(out.shape[0]):
                out[i] = fma32(h1[i] - l1[i], c1, c0 * mid[i])  # type: ignore[call-arg]  # numba intrinsic
        else:
            for i in range(out.shape[0]):
                out[i] = fma32(h1[i] + l1[i], c1, c0 * mid[i])  # type: ignore[call-arg]  # numba intrinsic
    else:
        c1, c2 = taps[1], taps[2]
        if odd:
            for i in range(out.shape[0]):
                out[i] = fma32(h2[i] - l2[i], c2, fma32(h1[i] - l1[i], c1, c0 * mid[i]))  # type: ignore[call-arg]  # numba intrinsic
        else:
            for i in range(out.shape[0]):
                out[i] = fma32(h2[i] + l2[i], c2, fma32(h1[i] + l1[i], c1, c0 * mid[i]))  # type: ignore[call-arg]  # numba intrinsic


@njit(nogil=True, cache=True, inline="always")
def _accumulate(hi, lo, ck, odd, out):  # type: ignore[no-untyped-def]
    if odd:
        for i in range(out.shape[0]):
            out[i] = fma32(hi[i] - lo[i], ck, out[i])  # type: ignore[call-arg]  # numba intrinsic
    else:
        for i in range(out.shape[0]):
            out[i] = fma32(hi[i] + lo[i], ck, out[i])  # type: ignore[call-arg]  # numba intrinsic


@njit(nogil=True, cache=True, inline="always")
def shifted(flat, start, n, step, r, taps, odd, out):  # type: ignore[no-untyped-def]
    """``out[j] = c0*flat[s+j]``, then ``fma(flat[s+j+k*step] +/- flat[s+j-k*step], c_k, .)``."""
    if r <= 2:
        d1, d2 = min(r, 1) * step, min(r, 2) * step
        mid = flat[start : start + n]
        h1, l1 = flat[start + d1 : start + d1 + n], flat[start - d1 : start - d1 + n]
        h2, l2 = flat[start + d2 : start + d2 + n], flat[start - d2 : start - d2 + n]
        _short(mid, h1, l1, h2, l2, taps, r, odd, out)
        return
    for j in range(n):
        out[j] = taps[0] * flat[start + j]
    for k in range(1, r + 1):
        hi = flat[start + k * step : start + k * step + n]
        lo = flat[start - k * step : start - k * step + n]
        _accumulate(hi, lo, taps[k], odd, out)


@njit(nogil=True, cache=True, inline="always")
def across(ring, centre, n, r, taps, odd, out):  # type: ignore[no-untyped-def]
    """A pass across planes: ``ring[q % R]`` holds plane ``q``; output plane ``centre``, ``n`` values."""
    size = ring.shape[0]
    mid = ring[centre % size, :n]
    if r <= 2:
        d1, d2 = min(r, 1), min(r, 2)
        h1, l1 = ring[(centre + d1) % size, :n], ring[(centre - d1) % size, :n]
        h2, l2 = ring[(centre + d2) % size, :n], ring[(centre - d2) % size, :n]
        _short(mid, h1, l1, h2, l2, taps, r, odd, out)
        return
    for j in range(n):
        out[j] = taps[0] * mid[j]
    for k in range(1, r + 1):
        _accumulate(ring[(centre + k) % size, :n], ring[(centre - k) % size, :n], taps[k], odd, out)


@njit(nogil=True, cache=True, inline="always")
def x_rows(a, b, job, row0, col0, xk, n_rows, wp, rmax, sbufs, planes, slot0):  # type: ignore[no-untyped-def]
    """x passes of one job over ``n_rows`` rows of the planes ``a`` (and ``b``) from row ``row0``.

    ``job`` is ``(source, second source, fill mode, first kernel, end kernel)``; rows outside
    ``a`` are mirrored, and each is read and mirror-padded once from column ``col0 - rmax`` into
    a row of ``wp = width + 2*rmax`` in ``sbufs``. Then one flat pass per kernel over the run
    into ``planes[slot - slot0]``: exact on every row's ``width`` core columns (the pad columns
    between rows hold junk that no core column reads).
    """
    taps, radii, odd, slots = xk
    for r in range(n_rows):
        row = mirror_index(row0 + r, a.shape[0])
        fill_line(a[row], b[row], job[2], col0 - rmax, wp, sbufs, r * wp)
    n = n_rows * wp - 2 * rmax
    for kern in range(job[3], job[4]):
        src = sbufs[kern - job[3] if job[2] == FILL_TENSOR else 0]
        dst = planes[slots[kern] - slot0]
        shifted(src, rmax, n, 1, radii[kern], taps[kern], odd[kern], dst[rmax : rmax + n])


@njit(nogil=True, cache=True)
def _gradients(src, off_r, off_c, t0, t1, gx, gy):  # type: ignore[no-untyped-def]
    """Kernel of :func:`gradients_2d`: x passes row by row, then flat y passes."""
    n_b, n_rows = src.shape[0], src.shape[1]
    out_r, out_c = gx.shape[1], gx.shape[2]
    r = t0.shape[0] - 1
    x1 = np.empty((out_r + 2 * r) * out_c, np.float32)
    x0 = np.empty((out_r + 2 * r) * out_c, np.float32)
    buf = np.empty((1, out_c + 2 * r), np.float32)
    for p in range(n_b):
        for q in range(out_r + 2 * r):
            row = src[p, mirror_index(off_r - r + q, n_rows)]
            fill_line(row, row, FILL_COPY, off_c - r, out_c + 2 * r, buf, 0)
            shifted(buf[0], r, out_c, 1, r, t1, True, x1[q * out_c : (q + 1) * out_c])
            shifted(buf[0], r, out_c, 1, r, t0, False, x0[q * out_c : (q + 1) * out_c])
        shifted(x1, r * out_c, out_r * out_c, out_c, r, t0, False, gx[p].reshape(-1))
        shifted(x0, r * out_c, out_r * out_c, out_c, r, t1, True, gy[p].reshape(-1))


def gradients_2d(
    src: np.ndarray, origin: tuple[int, int], t0: np.ndarray, t1: np.ndarray, out_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian gradients ``(y0(x1(src)), y1(x0(src)))`` of a 2D plane, x pass first.

    Parameters
    ----------
    src : ndarray of float32, shape (batch, rows, columns)
        C-contiguous planes.
    origin : (int, int)
        Row and column of ``src`` at the first output pixel; positions outside ``src`` are
        mirrored (true image borders only), as :func:`cascade.features._filters.pass_along` does.
    t0, t1 : ndarray of float32
        Order-0 and order-1 half kernels of the same radius.
    out_shape : (int, int)
        Output rows and columns.

    Returns
    -------
    (ndarray, ndarray) of float32, shape (batch, *out_shape)
        The x and the y derivative.
    """
    gx = np.empty((src.shape[0], *out_shape), np.float32)
    gy = np.empty_like(gx)
    _gradients(src, origin[0], origin[1], t0, t1, gx, gy)
    return gx, gy
