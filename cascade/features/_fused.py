"""Fused float32 kernels for 2D feature columns, writing ilastik's channels-last stack directly.

A 2D feature is an x pass and then a y pass (fastfilters' order), followed by a per-pixel
combination (difference, sum, magnitude, eigenvalues). :func:`fused_block` runs them for a
whole block in one compiled call, row by row:

- for output row ``i``, the x passes of row ``i + pad`` of every *source* plane (a column's
  presmoothed image, or the product of two structure-tensor gradients) with every kernel that
  any feature needs, each source row read and mirror-padded once, into a ring of ``2*pad + 1``
  rows per *slot* (rows beyond a true image border are the mirrored rows, which is what a
  mirrored y pass reads);
- then every y pass of row ``i`` into short lines, each feature's combination into a
  channel-major row, and that row transposed into the channels-last output.

The working set is a few rows per slot (it stays in the L2 cache), and the output is written
once, with contiguous stores. Every value goes through exactly the operations of
:mod:`cascade.features._filters` (``s = c0*x[i]``, then ``s = fma(x[i+k] +/- x[i-k], c_k, s)``
for ``k = 1..r``; the combinations as numpy computes them in float32), so the results are
bit for bit those of the unfused passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit
from numba.typed import List

from ._filters import _fma32 as fma32
from ._filters import _mirror as mirror_index

__all__ = ["OP_ADD", "OP_COPY", "OP_EIG2", "OP_MAG", "OP_SUB", "KernelTable", "fused_block", "kernel_table"]

#: Combinations of y-pass lines: ``ops[o] = (kind, first channel, n_out, line a, line b, line c)``.
OP_COPY, OP_SUB, OP_ADD, OP_MAG, OP_EIG2 = 0, 1, 2, 3, 4


@njit(nogil=True, cache=True, inline="always")
def _fill_line(a, b, product, x0, buf):  # type: ignore[no-untyped-def]
    """``buf[j] = line[mirror(x0 + j)]`` (times ``b``'s when ``product``): a mirror-padded row."""
    n = a.shape[0]
    j0 = min(max(0, -x0), buf.shape[0])
    j1 = max(j0, min(buf.shape[0], n - x0))
    if product:
        for j in range(j0, j1):
            buf[j] = a[x0 + j] * b[x0 + j]
    else:
        buf[j0:j1] = a[x0 + j0 : x0 + j1]
    _mirrored(a, b, product, x0, buf, 0, j0)
    _mirrored(a, b, product, x0, buf, j1, buf.shape[0])


@njit(nogil=True, cache=True, inline="always")
def _mirrored(a, b, product, x0, buf, start, stop):  # type: ignore[no-untyped-def]
    """``buf[start:stop]`` from the mirrored positions of the row (true image borders only)."""
    for j in range(start, stop):
        m = mirror_index(x0 + j, a.shape[0])
        buf[j] = a[m] * b[m] if product else a[m]


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
                out[i] = fma32(h1[i] - l1[i], c1, c0 * mid[i])
        else:
            for i in range(out.shape[0]):
                out[i] = fma32(h1[i] + l1[i], c1, c0 * mid[i])
    else:
        c1, c2 = taps[1], taps[2]
        if odd:
            for i in range(out.shape[0]):
                out[i] = fma32(h2[i] - l2[i], c2, fma32(h1[i] - l1[i], c1, c0 * mid[i]))
        else:
            for i in range(out.shape[0]):
                out[i] = fma32(h2[i] + l2[i], c2, fma32(h1[i] + l1[i], c1, c0 * mid[i]))


@njit(nogil=True, cache=True, inline="always")
def _correlate(buf, rmax, taps, r, odd, out):  # type: ignore[no-untyped-def]
    """``out[i] = sum_k c_k * buf[rmax + i +/- k]`` in fastfilters' float32 order (an x pass)."""
    w = out.shape[0]
    if r <= 2:
        r1, r2 = min(r, 1), min(r, 2)
        h1, l1 = buf[rmax + r1 : rmax + r1 + w], buf[rmax - r1 : rmax - r1 + w]
        h2, l2 = buf[rmax + r2 : rmax + r2 + w], buf[rmax - r2 : rmax - r2 + w]
        _short(buf[rmax : rmax + w], h1, l1, h2, l2, taps, r, odd, out)
        return
    for i in range(w):
        out[i] = taps[0] * buf[rmax + i]
    for k in range(1, r + 1):
        _accumulate(buf[rmax + k : rmax + k + w], buf[rmax - k : rmax - k + w], taps[k], odd, out)


@njit(nogil=True, cache=True, inline="always")
def _accumulate(hi, lo, ck, odd, out):  # type: ignore[no-untyped-def]
    if odd:
        for i in range(out.shape[0]):
            out[i] = fma32(hi[i] - lo[i], ck, out[i])
    else:
        for i in range(out.shape[0]):
            out[i] = fma32(hi[i] + lo[i], ck, out[i])


@dataclass(frozen=True)
class KernelTable:
    """Half kernels padded into one array, with their radii, symmetry and destination slots."""

    taps: np.ndarray  # (n, rmax + 1) float32
    radii: np.ndarray  # (n,) int64
    odd: np.ndarray  # (n,) bool
    slots: np.ndarray  # (n,) int64


def kernel_table(kernels: Sequence[tuple[np.ndarray, bool, int]]) -> KernelTable:
    """Pack ``(taps, odd, slot)`` triples (taps from ``gaussian_half_kernel``) for the kernels here.

    Parameters
    ----------
    kernels : sequence of (ndarray of float32, bool, int)
        Half kernel ``c[0..r]``, whether it is antisymmetric, and its slot (ignored by
        :func:`y_stage`).

    Returns
    -------
    KernelTable
        The packed kernels.
    """
    width = max(taps.shape[0] for taps, _, _ in kernels)
    table = np.zeros((len(kernels), width), np.float32)
    for i, (taps, _, _) in enumerate(kernels):
        table[i, : taps.shape[0]] = taps
    return KernelTable(
        table,
        np.array([taps.shape[0] - 1 for taps, _, _ in kernels], np.int64),
        np.array([odd for _, odd, _ in kernels], np.bool_),
        np.array([slot for _, _, slot in kernels], np.int64),
    )


@njit(nogil=True, cache=True, inline="always")
def _y_pass(ring, centre, taps, r, odd, out):  # type: ignore[no-untyped-def]
    """One output row of a y pass over ring rows ``(centre +/- k) % len(ring)``."""
    n = ring.shape[0]
    if r <= 2:
        r1, r2 = min(r, 1), min(r, 2)
        h1, l1 = ring[(centre + r1) % n], ring[(centre - r1) % n]
        h2, l2 = ring[(centre + r2) % n], ring[(centre - r2) % n]
        _short(ring[centre % n], h1, l1, h2, l2, taps, r, odd, out)
        return
    mid = ring[centre % n]
    for i in range(out.shape[0]):
        out[i] = taps[0] * mid[i]
    for k in range(1, r + 1):
        _accumulate(ring[(centre + k) % n], ring[(centre - k) % n], taps[k], odd, out)


@njit(nogil=True, cache=True)
def _combine(kind, a, b, c, dst):  # type: ignore[no-untyped-def]
    """One feature's combination of y-pass lines into ``dst[0]`` (and ``dst[1]``: eigenvalues)."""
    out = dst[0]
    if kind == OP_COPY:
        out[:] = a
    elif kind == OP_SUB:
        for i in range(a.shape[0]):
            out[i] = a[i] - b[i]
    elif kind == OP_ADD:
        for i in range(a.shape[0]):
            out[i] = a[i] + b[i]
    elif kind == OP_MAG:
        for i in range(a.shape[0]):
            out[i] = np.sqrt(a[i] * a[i] + b[i] * b[i])
    else:  # eigenvalues of [[a, b], [b, c]], descending, as cascade.features._filters._ev2d
        _eig2(a, b, c, out, dst[1])


@njit(nogil=True, cache=True)
def _eig2(a, b, c, big, small):  # type: ignore[no-untyped-def]
    half = np.float32(0.5)
    for i in range(a.shape[0]):
        mean = (a[i] + c[i]) * half
        d = (a[i] - c[i]) * half
        d = d * d
        root = np.sqrt(d + b[i] * b[i])
        e0 = mean + root
        e1 = mean - root
        if e0 > e1:
            big[i] = e0
            small[i] = e1
        else:
            big[i] = e1
            small[i] = e0


@njit(nogil=True, cache=True)
def _transpose(rows, out):  # type: ignore[no-untyped-def]
    """``out[w, c] = rows[c, w]``: contiguous stores (strided loads are the cheaper side)."""
    n_c, width = rows.shape
    for w in range(width):
        pixel = out[w]
        for c in range(n_c):
            pixel[c] = rows[c, w]


@njit(nogil=True, cache=True)
def _x_rows(sources, origins, jobs, xk, p, d, planes, buf):  # type: ignore[no-untyped-def]
    """Row ``d`` (from the block's first output row) of every x pass, into ring row ``d % ring``."""
    taps, radii, odd, slots = xk
    rmax = (buf.shape[0] - planes.shape[3]) // 2
    ring_row = d % planes.shape[2]
    for j in range(jobs.shape[0]):
        a, b = sources[jobs[j, 0]], sources[jobs[j, 1]]
        row = mirror_index(origins[jobs[j, 0], 0] + d, a.shape[1])
        _fill_line(a[p, row], b[p, row], jobs[j, 2] != 0, origins[jobs[j, 0], 1] - rmax, buf)
        for kern in range(jobs[j, 3], jobs[j, 4]):
            _correlate(buf, rmax, taps[kern], radii[kern], odd[kern], planes[slots[kern], p, ring_row])


@njit(nogil=True, cache=True)
def _y_row(planes, centre, yk, passes, ops, p, c, lines, rows):  # type: ignore[no-untyped-def]
    """Every y pass of one output row and batch plane, combined into the channel-major ``rows``."""
    taps, radii, odd, _ = yk
    for y in range(passes.shape[0]):
        tap = passes[y, 1]
        _y_pass(planes[passes[y, 0], p], centre, taps[tap], radii[tap], odd[tap], lines[y])
    for o in range(ops.shape[0]):
        first = ops[o, 1] + c * ops[o, 2]
        dst = rows[first : first + ops[o, 2]]
        _combine(ops[o, 0], lines[ops[o, 3]], lines[ops[o, 4]], lines[ops[o, 5]], dst)


@njit(nogil=True, cache=True)
def _block(sources, origins, jobs, xk, n_slots, pad, yk, passes, ops, out):  # type: ignore[no-untyped-def]
    """Kernel of :func:`fused_block`; ``xk`` and ``yk`` are (taps, radii, odd, slots)."""
    n_t, height, width, n_ch = out.shape
    n_b = sources[0].shape[0]
    n_c = n_b // n_t
    rmax = 0
    for r in xk[1]:
        rmax = max(rmax, r)
    planes = np.empty((n_slots, n_b, 2 * pad + 1, width), np.float32)
    buf = np.empty(width + 2 * rmax, np.float32)
    lines = np.empty((passes.shape[0], width), np.float32)
    rows = np.empty((n_ch, width), np.float32)
    for t in range(n_t):
        for d in range(-pad, height + pad):
            for p in range(t * n_c, (t + 1) * n_c):
                _x_rows(sources, origins, jobs, xk, p, d, planes, buf)
            if d >= pad:
                for c in range(n_c):
                    _y_row(planes, d - pad, yk, passes, ops, t * n_c + c, c, lines, rows)
                _transpose(rows, out[t, d - pad])


def fused_block(
    sources: Sequence[np.ndarray],
    origins: np.ndarray,
    jobs: np.ndarray,
    x_kernels: KernelTable,
    n_slots: int,
    pad: int,
    y_kernels: KernelTable,
    passes: np.ndarray,
    ops: np.ndarray,
    out: np.ndarray,
) -> None:
    """Every feature of a 2D block, row by row, into its channels-last stack ``out``.

    Parameters
    ----------
    sources : sequence of ndarray of float32, shape (batch, rows, columns)
        C-contiguous planes the x passes read; batch index ``t * n_inputs + input channel``.
    origins : ndarray of int64, shape (n_sources, 2)
        Row and column of each source at the block's first output pixel; rows and columns
        outside a source are mirrored (needed only at true image borders).
    jobs : ndarray of int64, shape (n_jobs, 5)
        ``(source, second source, product?, first kernel, end kernel)``: x passes of a source
        row (or of the float32 product of two sources' rows) with ``x_kernels[first:end]``.
    x_kernels : KernelTable
        The x kernels and the slot each one's pass is written to.
    n_slots : int
        Number of slots.
    pad : int
        The largest y radius.
    y_kernels : KernelTable
        The y kernels, indexed by ``passes[:, 1]``.
    passes : ndarray of int64, shape (n_lines, 2)
        Per y-pass line: the slot it filters and its kernel.
    ops : ndarray of int64, shape (n_ops, 6)
        ``(kind, first channel, outputs per input channel, line a, line b, line c)``, kind one
        of ``OP_COPY`` (a), ``OP_SUB`` (a - b), ``OP_ADD`` (a + b), ``OP_MAG`` (sqrt(a*a + b*b)),
        ``OP_EIG2`` (eigenvalues of [[a, b], [b, c]], descending; two channels).
    out : ndarray of float32, shape (t, height, width, channels)
        The feature stack; input channel ``c`` of an op goes to ``first + c * n_out (+ k)``.
    """
    xk = (x_kernels.taps, x_kernels.radii, x_kernels.odd, x_kernels.slots)
    yk = (y_kernels.taps, y_kernels.radii, y_kernels.odd, y_kernels.slots)
    _block(List(sources), origins, jobs, xk, n_slots, pad, yk, passes, ops, out)
