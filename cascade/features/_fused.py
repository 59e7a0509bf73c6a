"""Fused float32 kernels for 2D feature columns, writing ilastik's channels-last stack directly.

A 2D feature is an x pass and then a y pass (fastfilters' order), followed by a per-pixel
combination (difference, sum, magnitude, eigenvalues). :func:`fused_block` runs them for a
whole block in one compiled call, strip by strip of ``_STRIP`` output rows:

- the x passes of the strip's rows plus ``pad`` above and below, for every *source* plane (a
  column's presmoothed image, or the three products of a column's structure-tensor gradients)
  with every kernel any feature needs; each source row is read and mirror-padded once into a
  row of ``width + 2*rmax`` (rows beyond a true image border are the mirrored rows, which is
  what a mirrored y pass reads), and each pass is one flat loop over the whole strip;
- per scale column, every y pass of the strip (one flat loop each) into lines, each feature's
  combination into channel-major rows, and finally the strip transposed into the channels-last
  output with contiguous stores.

The working set of a strip stays in the L2 cache and the output is written once. Every value
goes through exactly the operations of :mod:`cascade.features._filters` (``s = c0*x[i]``, then
``s = fma(x[i+k] +/- x[i-k], c_k, s)`` for ``k = 1..r``; the combinations as numpy computes
them in float32), so the results are bit for bit those of the unfused passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from ._filters import _ev2d
from ._lines import shifted, x_rows
from ._typed import array_list

__all__ = [
    "OP_ADD",
    "OP_COPY",
    "OP_EIG2",
    "OP_MAG",
    "OP_SUB",
    "KernelTable",
    "fused_block",
    "kernel_table",
    "transpose_rows",
]

#: Combinations of y-pass lines: ``ops[o] = (kind, first channel, n_out, line a, line b, line c)``.
OP_COPY, OP_SUB, OP_ADD, OP_MAG, OP_EIG2 = 0, 1, 2, 3, 4
#: Output rows per strip: the strip's x-passed rows (plus ``2*pad``), one column's y-pass lines
#: and the channel-major rows stay within the L2 cache, and each pass is one long flat loop.
_STRIP = 16


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


@njit(nogil=True, cache=True)
def _combine(kind, a, b, c, out, out2):  # type: ignore[no-untyped-def]
    """One feature's combination of lines into ``out`` (and ``out2``: the smaller eigenvalue).

    Pass 1D slices of rows of C-contiguous arrays: numba compiles the loops for contiguous
    data then (on strided views they run up to twice as slow).
    """
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
    else:  # eigenvalues of [[a, b], [b, c]], descending
        _ev2d(a, b, c, out, out2)


@njit(nogil=True, cache=True, inline="always")
def _y_group(planes, group, yk, passes, ops, c, n, start, wp, lines, rows):  # type: ignore[no-untyped-def]
    """One column's y passes over a strip (flat, ``n`` values from ``start``) and its combinations."""
    taps, radii, odd, _ = yk
    l0 = group[0]
    for y in range(group[0], group[1]):
        tap = passes[y, 1]
        plane = planes[passes[y, 0] - group[6]]
        shifted(plane, start, n, wp, radii[tap], taps[tap], odd[tap], lines[y - l0, :n])
    for o in range(group[2], group[3]):
        first = ops[o, 1] + c * ops[o, 2]
        a, b, d = lines[ops[o, 3] - l0, :n], lines[ops[o, 4] - l0, :n], lines[ops[o, 5] - l0, :n]
        _combine(ops[o, 0], a, b, d, rows[first, :n], rows[first + ops[o, 2] - 1, :n])


@njit(nogil=True, cache=True)
def transpose_rows(rows, n_rows, wp, rmax, out):  # type: ignore[no-untyped-def]
    """``out[i, w, c] = rows[c, i*wp + rmax + w]``: contiguous stores (strided loads are cheaper)."""
    n_c, width = rows.shape[0], out.shape[1]
    for i in range(n_rows):
        for w in range(width):
            pixel = out[i, w]
            at = i * wp + rmax + w
            for c in range(n_c):
                pixel[c] = rows[c, at]


@njit(nogil=True, cache=True)
def _block(sources, origins, jobs, xk, pad, yk, passes, groups, ops, out, strip):  # type: ignore[no-untyped-def]
    """Kernel of :func:`fused_block`; ``xk`` and ``yk`` are (taps, radii, odd, slots)."""
    n_t, height, width, n_ch = out.shape
    n_c = sources[0].shape[0] // n_t
    rmax = 0
    for r in xk[1]:
        rmax = max(rmax, r)
    wp = width + 2 * rmax
    n_lines, n_slots = 1, 1
    for g in range(groups.shape[0]):
        n_lines = max(n_lines, groups[g, 1] - groups[g, 0])
        n_slots = max(n_slots, groups[g, 7] - groups[g, 6])
    planes = np.empty((n_slots, (strip + 2 * pad) * wp), np.float32)
    sbufs = np.empty((3, (strip + 2 * pad) * wp), np.float32)
    lines = np.empty((n_lines, strip * wp), np.float32)
    rows = np.empty((n_ch, strip * wp), np.float32)
    for t in range(n_t):
        for i0 in range(0, height, strip):
            n_rows = min(strip, height - i0)
            for c in range(n_c):
                p = t * n_c + c
                for g in range(groups.shape[0]):  # column by column: its slots stay in cache
                    for j in range(groups[g, 4], groups[g, 5]):
                        job = jobs[j]
                        a, b = sources[job[0]][p], sources[job[1]][p]
                        row0, col0 = origins[job[0], 0] + i0 - pad, origins[job[0], 1]
                        x_rows(
                            a, b, job, row0, col0, xk, n_rows + 2 * pad, wp, rmax, sbufs, planes, groups[g, 6]
                        )
                    _y_group(planes, groups[g], yk, passes, ops, c, n_rows * wp, pad * wp, wp, lines, rows)
            transpose_rows(rows, n_rows, wp, rmax, out[t, i0 : i0 + n_rows])


def fused_block(
    sources: Sequence[np.ndarray],
    origins: np.ndarray,
    jobs: np.ndarray,
    x_kernels: KernelTable,
    pad: int,
    y_kernels: KernelTable,
    passes: np.ndarray,
    groups: np.ndarray,
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
        ``(source, second source, tensor?, first kernel, end kernel)``: x passes of a source
        with ``x_kernels[first:end]``, or, for a tensor job, of the structure tensor's products
        ``a*a``, ``a*b``, ``b*b`` of two gradient sources, one kernel each.
    x_kernels : KernelTable
        The x kernels and the slot each one's pass is written to.
    pad : int
        The largest y radius.
    y_kernels : KernelTable
        The y kernels, indexed by ``passes[:, 1]``.
    passes : ndarray of int64, shape (n_lines, 2)
        Per y-pass line: the slot it filters and its kernel.
    groups : ndarray of int64, shape (n_groups, 8)
        ``(first line, end line, first op, end op, first job, end job, first slot, end slot)``:
        a scale column's y-pass lines, the ops that use them, its x jobs and its slots, computed
        together (only one column's slots are held at a time).
    ops : ndarray of int64, shape (n_ops, 6)
        ``(kind, first channel, outputs per input channel, line a, line b, line c)``, kind one
        of ``OP_COPY`` (a), ``OP_SUB`` (a - b), ``OP_ADD`` (a + b), ``OP_MAG`` (sqrt(a*a + b*b)),
        ``OP_EIG2`` (eigenvalues of [[a, b], [b, c]], descending; two channels).
    out : ndarray of float32, shape (t, height, width, channels)
        The feature stack; input channel ``c`` of an op goes to ``first + c * n_out (+ k)``.
    """
    xk = (x_kernels.taps, x_kernels.radii, x_kernels.odd, x_kernels.slots)
    yk = (y_kernels.taps, y_kernels.radii, y_kernels.odd, y_kernels.slots)
    _block(array_list(sources), origins, jobs, xk, pad, yk, passes, groups, ops, out, _STRIP)
