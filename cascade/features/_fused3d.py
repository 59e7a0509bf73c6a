"""Fused float32 kernels for 3D feature columns, writing ilastik's channels-last stack directly.

A 3D feature is an x pass, a y pass and a z pass (fastfilters' order), followed by a per-voxel
combination. :func:`fused_volume` runs them for a whole block in one compiled call, strip by
strip of ``strip`` output rows, and within a strip plane by plane along z:

- for each new z plane of every column (``2*rz`` planes ahead of the output plane): the x
  passes of the strip's rows plus ``pad`` above and below (:func:`~cascade.features._lines.x_rows`,
  each source row read and mirror-padded once), then every y pass the column needs, each one
  flat loop, into a *ring* of the last ``2*rz + 1`` planes of that (x, y) pass;
- for the output plane: every z pass across the ring (:func:`~cascade.features._lines.across`),
  each feature's combination into channel-major rows, and the strip of the plane transposed
  into the channels-last output with contiguous stores (written once).

Every value goes through exactly the float32 operations of :mod:`cascade.features._block`'s
unfused passes (``s = c0*x[i]``, then ``s = fma(x[i+k] +/- x[i-k], c_k, s)`` for ``k = 1..r``;
the combinations as numpy computes them in float32, eigenvalues with the same closed form), so
the stack is bit for bit the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from ._filters import _ev3d
from ._filters import _mirror as mirror_index
from ._fused import KernelTable, _combine, transpose_rows
from ._lines import across, shifted, x_rows
from ._typed import array_list

__all__ = ["OP_EIG3", "OP_MAG3", "OP_SUM3", "fused_volume"]

#: 3D combinations (after the 2D module's ``OP_COPY`` and ``OP_SUB``): ``(a + b) + c``,
#: ``sqrt((a*a + b*b) + c*c)`` and the eigenvalues of ``a..f`` passed to ``_ev3d`` as they are.
OP_SUM3, OP_MAG3, OP_EIG3 = 5, 6, 7
#: Output rows per strip: a strip's rings of (x, y)-passed planes stay within the L2 cache.
_STRIP = 16


@njit(nogil=True, cache=True)
def _combine3(op, lines, l0, at, n, rows, first):  # type: ignore[no-untyped-def]
    """One op's combination of the z-pass lines ``op[3:6] - l0`` over ``[at, at + n)`` into ``rows``.

    Any kind but ``OP_EIG3`` (:func:`_eig3`). Every slice is a 1D run of a row of a C-contiguous
    array (contiguous loops, see ``_combine``).
    """
    kind = op[0]
    a = lines[op[3] - l0, at : at + n]
    b = lines[op[4] - l0, at : at + n]
    c = lines[op[5] - l0, at : at + n]
    out = rows[first, at : at + n]
    if kind < OP_SUM3:
        _combine(kind, a, b, c, out, rows[first + op[2] - 1, at : at + n])
    elif kind == OP_SUM3:
        for i in range(n):
            out[i] = a[i] + b[i] + c[i]
    elif kind == OP_MAG3:
        for i in range(n):
            out[i] = np.sqrt(a[i] * a[i] + b[i] * b[i] + c[i] * c[i])


@njit(nogil=True, cache=True, inline="always")
def _eig3(op, lines, l0, n_rows, geometry, width, rows, first, packed):  # type: ignore[no-untyped-def]
    """``OP_EIG3`` over a strip: the core columns of its six lines packed, one solver call, unpacked.

    The solver's vectorised loop pays off on long runs (and the pad columns would only cost time).
    """
    _, wp, rmax, _ = geometry
    for i in range(n_rows):
        core, at = i * wp + rmax, i * width
        for k in range(6):
            line, dst = lines[op[3 + k] - l0], packed[k]
            for w in range(width):
                dst[at + w] = line[core + w]
    m, p = n_rows * width, packed
    _ev3d(p[0, :m], p[1, :m], p[2, :m], p[3, :m], p[4, :m], p[5, :m], p[6, :m], p[7, :m], p[8, :m])
    for i in range(n_rows):
        core, at = i * wp + rmax, i * width
        for k in range(3):
            src, row = packed[6 + k], rows[first + k]
            for w in range(width):
                row[core + w] = src[at + w]


@njit(nogil=True, cache=True, inline="always")
def _xy_plane(sources, origins, tables, group, where, geometry, bufs, ring):  # type: ignore[no-untyped-def]
    """x and y passes of one column's plane ``z`` (output-relative) into ``ring[:, z + rz]``.

    ``where`` is (batch index ``p``, ``z``, first row ``i0``, ``n_rows``).
    """
    jobs, xk, yk, xy, _, _ = tables
    p, z, i0, n_rows = where
    pad, wp, rmax, rz = geometry
    sbufs, planes = bufs
    for j in range(group[0], group[1]):
        job = jobs[j]
        src_a, src_b = sources[job[0]], sources[job[1]]
        a = src_a[p, mirror_index(origins[job[0], 0] + z, src_a.shape[1])]
        b = src_b[p, mirror_index(origins[job[1], 0] + z, src_b.shape[1])]
        row0, col0 = origins[job[0], 1] + i0 - pad, origins[job[0], 2]
        x_rows(a, b, job, row0, col0, xk, n_rows + 2 * pad, wp, rmax, sbufs, planes, group[2])
    taps, radii, odd, _ = yk
    n, at = n_rows * wp, (z + rz) % ring.shape[1]
    for e in range(group[4], group[5]):
        k = xy[e, 1]
        shifted(planes[xy[e, 0] - group[2]], pad * wp, n, wp, radii[k], taps[k], odd[k], ring[e, at, :n])


@njit(nogil=True, cache=True, inline="always")
def _z_plane(tables, group, c, z, n_rows, width, geometry, ring, work):  # type: ignore[no-untyped-def]
    """One column's z passes for output plane ``z`` and its combinations into ``rows``."""
    _, _, yk, _, zl, ops = tables
    lines, rows, packed = work
    _, wp, _, rz = geometry
    taps, radii, odd, _ = yk
    n, l0 = n_rows * wp, group[6]
    for line in range(group[6], group[7]):
        e, k = zl[line, 0], zl[line, 1]
        across(ring[e], z + rz, n, radii[k], taps[k], odd[k], lines[line - l0, :n])
    for o in range(group[8], group[9]):
        op = ops[o]
        first = op[1] + c * op[2]
        if op[0] == OP_EIG3:
            _eig3(op, lines, l0, n_rows, geometry, width, rows, first, packed)
        else:
            _combine3(op, lines, l0, 0, n, rows, first)


@njit(nogil=True, cache=True)
def _volume(sources, origins, tables, groups, out, strip):  # type: ignore[no-untyped-def]
    """Kernel of :func:`fused_volume`: ``tables`` are (jobs, xk, yk, xy, zl, ops), ``xk`` and
    ``yk`` (taps, radii, odd, slots)."""
    _, xk, yk, xy, zl, _ = tables
    n_t, depth, height, width, n_ch = out.shape
    n_c = sources[0].shape[0] // n_t
    rmax, pad, rz, n_slots, n_lines = 0, 0, 0, 1, 1
    for r in xk[1]:
        rmax = max(rmax, r)
    for e in range(xy.shape[0]):
        pad = max(pad, yk[1][xy[e, 1]])
    for line in range(zl.shape[0]):
        rz = max(rz, yk[1][zl[line, 1]])
    for g in range(groups.shape[0]):
        n_slots = max(n_slots, groups[g, 3] - groups[g, 2])
        n_lines = max(n_lines, groups[g, 7] - groups[g, 6])
    wp = width + 2 * rmax
    geometry = (pad, wp, rmax, rz)
    bufs = (
        np.empty((3, (strip + 2 * pad) * wp), np.float32),
        np.empty((n_slots, (strip + 2 * pad) * wp), np.float32),
    )
    rings = np.empty((n_c, xy.shape[0], 2 * rz + 1, strip * wp), np.float32)
    work = (
        np.empty((n_lines, strip * wp), np.float32),
        np.empty((n_ch, strip * wp), np.float32),
        np.empty((9, strip * width), np.float32),
    )
    for t in range(n_t):
        for i0 in range(0, height, strip):
            n_rows = min(strip, height - i0)
            for z in range(-rz, depth + rz):  # z: the newest plane; z - rz: the output plane
                for c in range(n_c):
                    for g in range(groups.shape[0]):
                        p = t * n_c + c
                        where = (p, z, i0, n_rows)
                        _xy_plane(sources, origins, tables, groups[g], where, geometry, bufs, rings[c])
                if z < rz:
                    continue
                for c in range(n_c):
                    for g in range(groups.shape[0]):
                        _z_plane(tables, groups[g], c, z - rz, n_rows, width, geometry, rings[c], work)
                transpose_rows(work[1], n_rows, wp, rmax, out[t, z - rz, i0 : i0 + n_rows])


def fused_volume(
    sources: Sequence[np.ndarray],
    origins: np.ndarray,
    jobs: np.ndarray,
    x_kernels: KernelTable,
    yz_kernels: KernelTable,
    xy: np.ndarray,
    zl: np.ndarray,
    groups: np.ndarray,
    ops: np.ndarray,
    out: np.ndarray,
    strip: int = _STRIP,
) -> None:
    """Every feature of a 3D block, plane by plane, into its channels-last stack ``out``.

    Parameters
    ----------
    sources : sequence of ndarray of float32, shape (batch, z, y, x)
        C-contiguous volumes the x passes read; batch index ``t * n_inputs + input channel``.
    origins : ndarray of int64, shape (n_sources, 3)
        z, y and x of each source at the block's first output voxel; positions outside a source
        are mirrored (needed only at true image borders).
    jobs : ndarray of int64, shape (n_jobs, 5)
        ``(source, second source, fill mode, first kernel, end kernel)``: x passes with
        ``x_kernels[first:end]`` of a source (``FILL_COPY``) or of the product of two sources
        (``FILL_PRODUCT``), see :func:`cascade.features._lines.fill_line`.
    x_kernels : KernelTable
        The x kernels and the slot each one's pass is written to.
    yz_kernels : KernelTable
        The y and z kernels (slots unused), indexed by ``xy[:, 1]`` and ``zl[:, 1]``.
    xy : ndarray of int64, shape (n_xy, 2)
        Per (x, y)-passed plane: its x slot and its y kernel.
    zl : ndarray of int64, shape (n_lines, 2)
        Per z-pass line: its (x, y)-passed plane and its z kernel.
    groups : ndarray of int64, shape (n_groups, 10)
        Per scale column: first and end job, slot, (x, y) plane, z line and op.
    ops : ndarray of int64, shape (n_ops, 9)
        ``(kind, first channel, outputs per input channel, lines a..f)``, kind one of
        ``OP_COPY`` (a), ``OP_SUB`` (a - b), ``OP_SUM3`` ((a + b) + c), ``OP_MAG3``
        (sqrt((a*a + b*b) + c*c)) or ``OP_EIG3`` (eigenvalues of a..f in ``_ev3d``'s argument
        order, descending; three channels).
    out : ndarray of float32, shape (t, z, y, x, channels)
        The feature stack (need not be contiguous); input channel ``c`` of an op goes to
        ``first + c * n_out (+ k)``.
    strip : int
        Output rows per strip.
    """
    xk = (x_kernels.taps, x_kernels.radii, x_kernels.odd, x_kernels.slots)
    yk = (yz_kernels.taps, yz_kernels.radii, yz_kernels.odd, yz_kernels.slots)
    _volume(array_list(sources), origins, (jobs, xk, yk, xy, zl, ops), groups, out, strip)
