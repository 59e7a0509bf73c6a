"""The presmoothing of every 3D scale column of a block in one compiled call, plane by plane.

ilastik presmooths each column's crop of the block with a Gaussian of window 3.5 along x, then
y, then z (fastfilters' order, one float32 rounding per pass). The unfused passes
(:meth:`~cascade.features._frame.Frame.smoothed`) write two whole intermediate volumes per column
(the x pass, then the y pass) and run one Python-driven pass per axis. Here one call does every
column, output plane by output plane:

- each frame plane ``m`` is passed along x eight rows at a time, interleaved (``src[j*8 + t]``
  holds column ``j`` of row ``t``, so one flat loop with step 8 passes all eight: a pass along one
  row of a few dozen values vectorises poorly), rows beyond a true border along y are copies of
  the mirrored rows, and the y pass is one flat loop over the plane; the result goes to slot
  ``m % R`` of a ring of ``R = min(2r + 1, planes)`` planes, each computed once (a mirrored plane
  is read from the slot of the plane it mirrors: within one output plane's window no two planes
  share a slot);
- the z pass reads its ``2r + 1`` planes from the ring and writes the output plane of ``P``.

Taps are applied four at a time (``s = fma(x[i+k] + x[i-k], c_k, s)`` for four ``k`` in one
sweep, the same operations in the same order as one sweep per tap), so a pass with radius ``r``
loads and stores its output ``r/4`` times instead of ``r`` times. Every value is bit for bit the
unfused one (:func:`~cascade.features._filters.pass_along`).

The structure tensor's gradients (:func:`gradients_3d`, radius 1 at ilastik's scales) run the
same way: x rows, flat y passes into three rings, z passes into three C-contiguous volumes.

Measured (CPU time, best of 5-7, one 64^3 block of ilastik's 3D default set with its halo of
38, 2-core Xeon shared with other jobs, load 1.5-3): presmoothing of the 7 columns 29.4-31.7 ->
20-21 ms (s=10: 15-17 -> 9.6 ms; with one row per x pass it was 12.5, of it the x pass 6.7 ms,
the y pass ~3 ms, the z pass ~1.1 ms), gradients of the 6 tensor columns 18.5 -> 8.5-11.6 ms
(2.4 -> 1.4 ms per 70^3 column), the whole block 174-190 -> 157-172 ms.
``benchmarks/results/features-3d.md`` has the details.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from ._filters import _fma32 as fma32
from ._filters import _mirror as mirror_index
from ._lines import FILL_COPY, _short, fill_line, shifted
from ._typed import array_list

__all__ = ["gradients_3d", "smooth_columns"]


@njit(nogil=True, cache=True, inline="always")
def _four(h1, l1, h2, l2, h3, l3, h4, l4, taps, k, out):  # type: ignore[no-untyped-def]
    """Taps ``k..k+3`` of a symmetric kernel in one sweep: ``s = fma(h_q + l_q, c_q, s)``, q in order."""
    c1, c2, c3, c4 = taps[k], taps[k + 1], taps[k + 2], taps[k + 3]
    for j in range(out.shape[0]):
        # numba intrinsics (typed by numba, not mypy): one rounding each, in this order
        s = fma32(h1[j] + l1[j], c1, out[j])  # type: ignore[call-arg, var-annotated]
        s = fma32(h2[j] + l2[j], c2, s)
        s = fma32(h3[j] + l3[j], c3, s)
        out[j] = fma32(h4[j] + l4[j], c4, s)


@njit(nogil=True, cache=True, inline="always")
def _one(hi, lo, ck, out):  # type: ignore[no-untyped-def]
    for j in range(out.shape[0]):
        out[j] = fma32(hi[j] + lo[j], ck, out[j])  # type: ignore[call-arg]  # numba intrinsic


@njit(nogil=True, cache=True, inline="always")
def _smooth_flat(flat, start, step, n, r, taps, out):  # type: ignore[no-untyped-def]
    """``out[j] = c0*flat[s+j]``, then ``fma(flat[s+j+k*step] + flat[s+j-k*step], c_k, .)`` for
    ``k = 1..r`` (four taps per sweep, the rest one per sweep)."""
    c0 = taps[0]
    mid = flat[start : start + n]
    for j in range(n):
        out[j] = c0 * mid[j]
    k = 1
    while k + 3 <= r:
        a, b = start + k * step, start - k * step
        _four(
            flat[a : a + n],
            flat[b : b + n],
            flat[a + step : a + step + n],
            flat[b - step : b - step + n],
            flat[a + 2 * step : a + 2 * step + n],
            flat[b - 2 * step : b - 2 * step + n],
            flat[a + 3 * step : a + 3 * step + n],
            flat[b - 3 * step : b - 3 * step + n],
            taps,
            k,
            out,
        )
        k += 4
    while k <= r:
        _one(
            flat[start + k * step : start + k * step + n],
            flat[start - k * step : start - k * step + n],
            taps[k],
            out,
        )
        k += 1


@njit(nogil=True, cache=True, inline="always")
def _z_pass(ring, vc, n_planes, r, taps, out):  # type: ignore[no-untyped-def]
    """The z pass of output plane ``vc`` (a frame plane): slot ``mirror(v) % R`` holds plane ``v``."""
    size, n = ring.shape[0], out.shape[0]
    mid = ring[mirror_index(vc, n_planes) % size]
    c0 = taps[0]
    for j in range(n):
        out[j] = c0 * mid[j]
    k = 1
    while k + 3 <= r:
        _four(
            ring[mirror_index(vc + k, n_planes) % size, :n],
            ring[mirror_index(vc - k, n_planes) % size, :n],
            ring[mirror_index(vc + k + 1, n_planes) % size, :n],
            ring[mirror_index(vc - k - 1, n_planes) % size, :n],
            ring[mirror_index(vc + k + 2, n_planes) % size, :n],
            ring[mirror_index(vc - k - 2, n_planes) % size, :n],
            ring[mirror_index(vc + k + 3, n_planes) % size, :n],
            ring[mirror_index(vc - k - 3, n_planes) % size, :n],
            taps,
            k,
            out,
        )
        k += 4
    while k <= r:
        hi = ring[mirror_index(vc + k, n_planes) % size, :n]
        _one(hi, ring[mirror_index(vc - k, n_planes) % size, :n], taps[k], out)
        k += 1


@njit(nogil=True, cache=True)
def _x_tiles(plane, v, n_rows, x0, ox, r, taps, rows):  # type: ignore[no-untyped-def]
    """x passes of rows ``v..v+n_rows-1`` (mirrored from column ``x0``) into ``rows``, 8 at a time.

    Not inlined, and its two buffers are its own: with buffers from the caller LLVM could not
    tell them apart and left the sweep scalar (2.5-4x slower); allocated here it vectorises.
    """
    width = ox + 2 * r
    src = np.zeros(width * 8, np.float32)
    res = np.empty(ox * 8, np.float32)
    n_x = plane.shape[1]
    j0 = min(max(0, -x0), width)
    j1 = max(j0, min(width, n_x - x0))
    for t0 in range(0, n_rows, 8):
        n = min(8, n_rows - t0)
        for t in range(n):
            row = plane[v + t0 + t]
            for j in range(j0, j1):
                src[j * 8 + t] = row[x0 + j]
            for j in range(j0):
                src[j * 8 + t] = row[mirror_index(x0 + j, n_x)]
            for j in range(j1, width):
                src[j * 8 + t] = row[mirror_index(x0 + j, n_x)]
        _smooth_flat(src, r * 8, 8, ox * 8, r, taps, res)
        for t in range(n):
            dst = rows[(t0 + t) * ox : (t0 + t + 1) * ox]
            for j in range(ox):
                dst[j] = res[j * 8 + t]


@njit(nogil=True, cache=True, inline="always")
def _xy_plane(plane, offs, out_shape, r, taps, rows, dst):  # type: ignore[no-untyped-def]
    """x then y pass of one frame plane ``(rows, columns)`` into ``dst`` (``oy * ox`` values)."""
    off_y, off_x = offs[1], offs[2]
    oy, ox = out_shape[1], out_shape[2]
    ny = plane.shape[0]
    v0 = off_y - r  # first (virtual) row the y pass reads
    n_rows = oy + 2 * r
    q0 = max(0, -v0)
    _x_tiles(plane, v0 + q0, min(n_rows, ny - v0) - q0, off_x - r, ox, r, taps, rows[q0 * ox :])
    for q in range(n_rows):  # rows beyond a true border: copies of the rows they mirror
        v = v0 + q
        if 0 <= v < ny:
            continue
        m = mirror_index(v, ny) - v0
        for j in range(ox):
            rows[q * ox + j] = rows[m * ox + j]
    _smooth_flat(rows, r * ox, ox, oy * ox, r, taps, dst)


@njit(nogil=True, cache=True)
def _columns(src, boxes, offs, radii, taps, outs):  # type: ignore[no-untyped-def]
    """Kernel of :func:`smooth_columns`."""
    big_rows, big_ring = 1, 1
    for i in range(len(outs)):
        r, (_, _, oy, ox) = radii[i], outs[i].shape[:4]
        n_planes = boxes[i, 0, 1] - boxes[i, 0, 0]
        big_rows = max(big_rows, (oy + 2 * r) * ox)
        big_ring = max(big_ring, min(2 * r + 1, n_planes) * oy * ox)
    rows = np.empty(big_rows, np.float32)
    ring_buf = np.empty(big_ring, np.float32)
    for i in range(len(outs)):
        out, r, box, off = outs[i], radii[i], boxes[i], offs[i]
        n_planes = box[0, 1] - box[0, 0]
        size = min(2 * r + 1, n_planes)
        oz, oy, ox = out.shape[1], out.shape[2], out.shape[3]
        ring = ring_buf[: size * oy * ox].reshape((size, oy * ox))
        for p in range(out.shape[0]):
            frame = src[p, box[0, 0] : box[0, 1], box[1, 0] : box[1, 1], box[2, 0] : box[2, 1]]
            done = 0  # frame planes passed along x and y so far
            for z in range(oz):
                vc = z + off[0]
                while done <= min(vc + r, n_planes - 1):
                    _xy_plane(frame[done], off, out.shape[1:], r, taps[i], rows, ring[done % size])
                    done += 1
                _z_pass(ring, vc, n_planes, r, taps[i], out[p, z].reshape(-1))


def smooth_columns(
    src: np.ndarray,
    boxes: np.ndarray,
    offsets: np.ndarray,
    kernels: Sequence[np.ndarray],
    outs: Sequence[np.ndarray],
) -> None:
    """Gaussian smoothing (x, then y, then z) of several crops of one volume, in one call.

    Parameters
    ----------
    src : ndarray of float32, shape (batch, z, y, x)
        The block, C-contiguous.
    boxes : ndarray of int64, shape (n, 3, 2)
        Per crop (a column's frame), its ``[start, stop)`` in ``src`` along z, y and x.
    offsets : ndarray of int64, shape (n, 3)
        Per crop and axis, where output index 0 is centred in the crop: 0 at a true image
        border (mirrored within the crop, as :func:`~cascade.features._filters.pass_along`),
        else the radius (the halo is consumed).
    kernels : sequence of ndarray of float32
        Per crop, the order-0 half kernel ``c[0..r]``.
    outs : sequence of ndarray of float32, shape (batch, oz, oy, ox)
        C-contiguous outputs; each output extent is what the crop leaves after its three passes.
    """
    radii = np.array([k.shape[0] - 1 for k in kernels], np.int64)
    width = int(radii.max()) + 1 if len(kernels) else 1
    taps = np.zeros((len(kernels), width + 3), np.float32)
    for i, k in enumerate(kernels):
        taps[i, : k.shape[0]] = k
    _columns(src, boxes, offsets, radii, taps, array_list(outs))


@njit(nogil=True, cache=True, inline="always")
def _z_short(ring, vc, n_planes, r, taps, odd, out):  # type: ignore[no-untyped-def]
    """A z pass of radius <= 2 across the ring (slot ``mirror(v) % R`` holds plane ``v``)."""
    size = ring.shape[0]
    d1, d2 = min(r, 1), min(r, 2)
    mid = ring[mirror_index(vc, n_planes) % size]
    h1, l1 = ring[mirror_index(vc + d1, n_planes) % size], ring[mirror_index(vc - d1, n_planes) % size]
    h2, l2 = ring[mirror_index(vc + d2, n_planes) % size], ring[mirror_index(vc - d2, n_planes) % size]
    _short(mid, h1, l1, h2, l2, taps, r, odd, out)


@njit(nogil=True, cache=True, inline="always")
def _gradient_plane(plane, off, shape, r, t0, t1, bufs, dst):  # type: ignore[no-untyped-def]
    """``y0(x1(.))``, ``y1(x0(.))`` and ``y0(x0(.))`` of one plane into ``dst[0..2]``."""
    oy, ox = shape[1], shape[2]
    ny = plane.shape[0]
    row_buf, x1, x0 = bufs
    v0, n_rows = off[1] - r, oy + 2 * r
    for q in range(n_rows):
        v = v0 + q
        if 0 <= v < ny:
            fill_line(plane[v], plane[v], FILL_COPY, off[2] - r, ox + 2 * r, row_buf, 0)
            shifted(row_buf[0], r, ox, 1, r, t1, True, x1[q * ox : (q + 1) * ox])
            shifted(row_buf[0], r, ox, 1, r, t0, False, x0[q * ox : (q + 1) * ox])
    for q in range(n_rows):  # rows beyond a true border: copies of the rows they mirror
        v = v0 + q
        if not 0 <= v < ny:
            m = mirror_index(v, ny) - v0
            x1[q * ox : (q + 1) * ox] = x1[m * ox : (m + 1) * ox]
            x0[q * ox : (q + 1) * ox] = x0[m * ox : (m + 1) * ox]
    n = oy * ox
    shifted(x1, r * ox, n, ox, r, t0, False, dst[0])
    shifted(x0, r * ox, n, ox, r, t1, True, dst[1])
    shifted(x0, r * ox, n, ox, r, t0, False, dst[2])


@njit(nogil=True, cache=True)
def _gradients(src, off, t0, t1, gx, gy, gz):  # type: ignore[no-untyped-def]
    """Kernel of :func:`gradients_3d`."""
    r = t0.shape[0] - 1
    n_planes = src.shape[1]
    oz, oy, ox = gx.shape[1], gx.shape[2], gx.shape[3]
    size = min(2 * r + 1, n_planes)
    ring = np.empty((3, size, oy * ox), np.float32)
    bufs = (
        np.empty((1, ox + 2 * r), np.float32),
        np.empty((oy + 2 * r) * ox, np.float32),
        np.empty((oy + 2 * r) * ox, np.float32),
    )
    for p in range(src.shape[0]):
        done = 0
        for z in range(oz):
            vc = z + off[0]
            while done <= min(vc + r, n_planes - 1):
                _gradient_plane(src[p, done], off, gx.shape[1:], r, t0, t1, bufs, ring[:, done % size])
                done += 1
            _z_short(ring[0], vc, n_planes, r, t0, False, gx[p, z].reshape(-1))
            _z_short(ring[1], vc, n_planes, r, t0, False, gy[p, z].reshape(-1))
            _z_short(ring[2], vc, n_planes, r, t1, True, gz[p, z].reshape(-1))


def gradients_3d(
    src: np.ndarray, offsets: tuple[int, int, int], t0: np.ndarray, t1: np.ndarray, out_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian gradients ``z0(y0(x1))``, ``z0(y1(x0))``, ``z1(y0(x0))`` of a volume, x pass first.

    Parameters
    ----------
    src : ndarray of float32, shape (batch, z, y, x)
        C-contiguous volume.
    offsets : (int, int, int)
        Per axis, where output index 0 is centred: 0 at a true image border (mirrored within
        ``src``), else the radius (the halo is consumed).
    t0, t1 : ndarray of float32
        Order-0 and order-1 half kernels of one radius, at most 2.
    out_shape : tuple of int
        ``(batch, oz, oy, ox)``.

    Returns
    -------
    (ndarray, ndarray, ndarray) of float32, shape ``out_shape``
        The x, y and z derivative, each C-contiguous.
    """
    if t0.shape[0] != t1.shape[0] or t0.shape[0] > 3:
        raise ValueError(
            f"gradient kernels of radius {t0.shape[0] - 1} and {t1.shape[0] - 1}: one radius <= 2"
        )
    grads = tuple(np.empty(out_shape, np.float32) for _ in range(3))
    _gradients(src, np.array(offsets, np.int64), t0, t1, *grads)
    return grads  # type: ignore[return-value]
