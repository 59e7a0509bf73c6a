"""Fused float32 kernels for 2D feature columns, writing ilastik's channels-last stack directly.

A 2D feature is an x pass and then a y pass (fastfilters' order), followed by a per-pixel
combination (difference, sum, magnitude, eigenvalues). These kernels split that into

- :func:`x_stage`: the x passes of one source plane with several kernels at once, each row
  read (and mirror-padded) once, written into the rows of a *slot* array that covers the
  block's core columns and its core rows plus a pad of ``R`` rows on each side (rows beyond
  a true image border are the mirrored rows, which is what a mirrored y pass reads);
- :func:`y_stage`: for each output row, every y pass that any feature of the block needs,
  into short line buffers, then each feature's combination, written straight into the
  channels-last output row while it is in cache.

Every value is computed with exactly the operations of :mod:`cascade.features._filters`
(``s = c0*x[i]``, then ``s = fma(x[i+k] +/- x[i-k], c_k, s)``; the combinations as numpy
computes them in float32), so the results are bit for bit those of the unfused passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from ._filters import _fma32 as fma32
from ._filters import _mirror as mirror_index

__all__ = [
    "OP_ADD",
    "OP_COPY",
    "OP_EIG2",
    "OP_MAG",
    "OP_SUB",
    "KernelTable",
    "kernel_table",
    "x_stage",
    "y_stage",
]

#: Combinations of y-pass lines: ``ops[o] = (kind, first channel, n_out, line a, line b, line c)``.
OP_COPY, OP_SUB, OP_ADD, OP_MAG, OP_EIG2 = 0, 1, 2, 3, 4


@njit(nogil=True, cache=True)
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


@njit(nogil=True, cache=True)
def _mirrored(a, b, product, x0, buf, start, stop):  # type: ignore[no-untyped-def]
    """``buf[start:stop]`` from the mirrored positions of the row (true image borders only)."""
    for j in range(start, stop):
        m = mirror_index(x0 + j, a.shape[0])
        buf[j] = a[m] * b[m] if product else a[m]


@njit(nogil=True, cache=True)
def _correlate(buf, rmax, taps, r, odd, out):  # type: ignore[no-untyped-def]
    """``out[i] = sum_k c_k * buf[rmax + i +/- k]`` in fastfilters' float32 order."""
    width = out.shape[0]
    c0 = taps[0]
    for i in range(width):
        out[i] = c0 * buf[rmax + i]
    for k in range(1, r + 1):
        ck = taps[k]
        lo = buf[rmax - k : rmax - k + width]
        hi = buf[rmax + k : rmax + k + width]
        if odd:
            for i in range(width):
                out[i] = fma32(hi[i] - lo[i], ck, out[i])
        else:
            for i in range(width):
                out[i] = fma32(hi[i] + lo[i], ck, out[i])


@njit(nogil=True, cache=True)
def _x_stage(a, b, product, origin, taps, radii, odd, slots, planes):  # type: ignore[no-untyped-def]
    """Kernel of :func:`x_stage`; ``origin`` = (row, column) of ``planes``' [0, 0] in ``a``'s frame."""
    n_b, n_rows = a.shape[0], a.shape[1]
    n_dst, width = planes.shape[2], planes.shape[3]
    rmax = 0
    for r in radii:
        rmax = max(rmax, r)
    buf = np.empty(width + 2 * rmax, np.float32)
    for p in range(n_b):
        for d in range(n_dst):
            row = mirror_index(origin[0] + d, n_rows)
            _fill_line(a[p, row], b[p, row], product, origin[1] - rmax, buf)
            for kern in range(slots.shape[0]):
                _correlate(buf, rmax, taps[kern], radii[kern], odd[kern], planes[slots[kern], p, d])


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


def x_stage(
    source: np.ndarray,
    origin: tuple[int, int],
    kernels: KernelTable,
    planes: np.ndarray,
    *,
    times: np.ndarray | None = None,
) -> None:
    """x passes of one plane (or of the product ``source * times``) into slots of ``planes``.

    Parameters
    ----------
    source : ndarray of float32, shape (batch, rows, columns)
        The plane, C-contiguous.
    origin : (int, int)
        Row and column of ``source`` that ``planes[:, :, 0, 0]`` corresponds to; rows and
        columns outside ``source`` are mirrored (needed only at true image borders).
    kernels : KernelTable
        The x kernels and the slot each pass is written to.
    planes : ndarray of float32, shape (slots, batch, rows, width)
        The destination; every slot of ``kernels`` is overwritten.
    times : ndarray of float32, optional
        A second plane of ``source``'s shape: filter the float32 product instead.
    """
    other = source if times is None else times
    k = kernels
    _x_stage(
        source, other, times is not None, np.array(origin, np.int64), k.taps, k.radii, k.odd, k.slots, planes
    )


@njit(nogil=True, cache=True)
def _y_pass(plane, centre, taps, r, odd, out):  # type: ignore[no-untyped-def]
    """One output row of a y pass: rows ``centre +/- k`` of ``plane``, in fastfilters' order."""
    width = out.shape[0]
    c0 = taps[0]
    mid = plane[centre]
    for i in range(width):
        out[i] = c0 * mid[i]
    for k in range(1, r + 1):
        ck = taps[k]
        hi = plane[centre + k]
        lo = plane[centre - k]
        if odd:
            for i in range(width):
                out[i] = fma32(hi[i] - lo[i], ck, out[i])
        else:
            for i in range(width):
                out[i] = fma32(hi[i] + lo[i], ck, out[i])


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
def _y_stage(planes, pad, taps, radii, odd, passes, ops, out):  # type: ignore[no-untyped-def]
    """Kernel of :func:`y_stage`."""
    n_t, height, width, n_ch = out.shape
    n_c = planes.shape[1] // n_t
    lines = np.empty((passes.shape[0], width), np.float32)
    rows = np.empty((n_ch, width), np.float32)
    for t in range(n_t):
        for i in range(height):
            for c in range(n_c):
                p = t * n_c + c
                for y in range(passes.shape[0]):
                    tap = passes[y, 1]
                    _y_pass(planes[passes[y, 0], p], i + pad, taps[tap], radii[tap], odd[tap], lines[y])
                for o in range(ops.shape[0]):
                    first = ops[o, 1] + c * ops[o, 2]
                    dst = rows[first : first + ops[o, 2]]
                    _combine(ops[o, 0], lines[ops[o, 3]], lines[ops[o, 4]], lines[ops[o, 5]], dst)
            _transpose(rows, out[t, i])


def y_stage(
    planes: np.ndarray, pad: int, kernels: KernelTable, passes: np.ndarray, ops: np.ndarray, out: np.ndarray
) -> None:
    """The y passes and combinations of every feature of a block, into its channels-last stack.

    Parameters
    ----------
    planes : ndarray of float32, shape (slots, batch, height + 2 * pad, width)
        x-passed planes from :func:`x_stage`; batch index ``t * n_inputs + input channel``.
    pad : int
        Rows above and below the output rows in ``planes`` (at least every y radius).
    kernels : KernelTable
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
    k = kernels
    _y_stage(planes, pad, k.taps, k.radii, k.odd, passes, ops, out)
