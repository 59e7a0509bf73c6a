"""The 3D columns of one block in fused passes, written channels-last in place.

Every 3D scale column's presmoothed volume ``P`` (window 3.5) comes from one compiled call
(:func:`~cascade.features._smooth3d.smooth_columns`: plane by plane through a ring, no
intermediate volumes), and, if the column has the structure tensor, its gradients
``z0(y0(x1(P)))``, ``z0(y1(x0(P)))`` and ``z1(y0(x0(P)))`` at ``0.5 s'`` (one compiled call per
column, :func:`~cascade.features._smooth3d.gradients_3d`, the same way). Then one compiled call
(:func:`~cascade.features._fused3d.fused_volume`) runs every feature of every 3D column, plane
by plane:

1. every x pass the features need into a *slot*, every y pass of the slots into a ring of planes;
2. every z pass across the rings, the per-voxel combinations (difference, sums, magnitude,
   eigenvalues), and the channels-last output, written once.

A selection is planned once (:func:`_plan`, cached): shared intermediates are computed once
(``y0(x0(P))`` serves GS, DoG, LoG, GGM and HoGE). Each value goes through exactly the float32
operations of the unfused code (:mod:`cascade.features._block`), so the stack is bit for bit the
same, and that is ilastik's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ._block2d import _channel_offsets
from ._frame import Frame
from ._fused import OP_COPY, OP_SUB, KernelTable, kernel_table
from ._fused3d import OP_EIG3, OP_MAG3, OP_SUM3, fused_volume
from ._lines import FILL_COPY, FILL_PRODUCT
from ._smooth3d import gradients_3d, smooth_columns
from .kernels import gaussian_half_kernel
from .selection import FEATURE_WINDOW, PRESMOOTH_WINDOW, FeatureSelection

__all__ = ["columns_3d", "features_3d"]

#: Derivative orders (x, y, z) of the parts each feature combines, in the order of its op.
_PARTS: dict[str, tuple[int, tuple[tuple[int, int, int], ...]]] = {
    "GaussianSmoothing": (OP_COPY, ((0, 0, 0),)),
    "LaplacianOfGaussian": (OP_SUM3, ((2, 0, 0), (0, 2, 0), (0, 0, 2))),
    "GaussianGradientMagnitude": (OP_MAG3, ((1, 0, 0), (0, 1, 0), (0, 0, 1))),
    # fastfilters passes (zz, yz, xz, yy, xy, xx) to the eigenvalue solver
    "HessianOfGaussianEigenvalues": (
        OP_EIG3,
        ((0, 0, 2), (0, 1, 1), (1, 0, 1), (0, 2, 0), (1, 1, 0), (2, 0, 0)),
    ),
}
#: The structure tensor's products (index 0 is x) in the solver's (zz, yz, xz, yy, xy, xx) order.
_TENSOR = ((2, 2), (1, 2), (0, 2), (1, 1), (0, 1), (0, 0))


def _taps(sigma: float, order: int) -> np.ndarray:
    return gaussian_half_kernel(sigma, order, FEATURE_WINDOW)


@dataclass
class _Builder:
    """Collects x jobs and kernels, (x, y) planes, z lines, ops and groups of a selection."""

    n_slots: int = 0
    x_kernels: list[tuple[np.ndarray, bool, int]] = field(default_factory=list)
    jobs: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    keys: dict[tuple[float, int], int] = field(default_factory=dict)
    xy: dict[tuple[int, int], int] = field(default_factory=dict)
    zl: dict[tuple[int, int], int] = field(default_factory=dict)
    ops: list[tuple[int, ...]] = field(default_factory=list)
    groups: list[tuple[int, ...]] = field(default_factory=list)

    def line(self, slot: int, sigma: float, oy: int, oz: int) -> int:
        """The z line of ``z_oz(y_oy(slot))`` at ``sigma``, shared if already planned."""
        ky = self.keys.setdefault((sigma, oy), len(self.keys))
        plane = self.xy.setdefault((slot, ky), len(self.xy))
        kz = self.keys.setdefault((sigma, oz), len(self.keys))
        return self.zl.setdefault((plane, kz), len(self.zl))

    def job(self, kernels: list[tuple[float, int]], a: int, b: int, mode: int) -> list[int]:
        """x passes of source ``a`` (or the product of ``a`` and ``b``); returns their slots."""
        first = len(self.x_kernels)
        slots = list(range(self.n_slots, self.n_slots + len(kernels)))
        self.n_slots += len(kernels)
        self.x_kernels += [(_taps(s, o), o == 1, t) for (s, o), t in zip(kernels, slots)]
        self.jobs.append((a, b, mode, first, len(self.x_kernels)))
        return slots

    def op(self, kind: int, channel: int, n_out: int, lines: list[int]) -> None:
        self.ops.append((kind, channel, n_out, *lines, *(lines[:1] * (6 - len(lines)))))


def _x_needs(s: float, fids: list[str]) -> list[tuple[float, int]]:
    """The x kernels (sigma, order) the features of a column read ``P`` with."""
    needs = {(s, o[0]) for fid in fids if fid in _PARTS for o in _PARTS[fid][1]}
    if "DifferenceOfGaussians" in fids:
        needs |= {(s, 0), (0.66 * s, 0)}
    return sorted(needs)


def _plan_column(b: _Builder, s: float, offsets: dict[str, int], source: int) -> None:
    """Plan one column at ``s' = s`` reading ``P`` from ``source`` (gradients from the next three)."""
    first = (len(b.jobs), b.n_slots, len(b.xy), len(b.zl), len(b.ops))
    xs = _x_needs(s, list(offsets))
    slot = dict(zip(xs, b.job(xs, source, source, FILL_COPY))) if xs else {}
    for fid, ch in offsets.items():
        if fid == "DifferenceOfGaussians":
            lines = [b.line(slot[sg, 0], sg, 0, 0) for sg in (s, 0.66 * s)]
            b.op(OP_SUB, ch, 1, lines)
        elif fid == "StructureTensorEigenvalues":  # gradient at 0.5 s', tensor smoothed at s'
            grads = source + (1 if xs else 0)
            parts = []
            for u, v in _TENSOR:
                (t,) = b.job([(s, 0)], grads + u, grads + v, FILL_PRODUCT)
                parts.append(b.line(t, s, 0, 0))
            b.op(OP_EIG3, ch, 3, parts)
        else:
            kind, orders = _PARTS[fid]
            lines = [b.line(slot[s, ox], s, oy, oz) for ox, oy, oz in orders]
            b.op(kind, ch, 3 if kind == OP_EIG3 else 1, lines)
    last = (len(b.jobs), b.n_slots, len(b.xy), len(b.zl), len(b.ops))
    b.groups.append(tuple(v for pair in zip(first, last) for v in pair))


@dataclass(frozen=True)
class _Plan:
    """A fused computation: its columns (index, reads ``P``?, gradient sigma) and tables."""

    columns: tuple[tuple[int, bool, float | None], ...]
    jobs: np.ndarray
    x_kernels: KernelTable
    yz_kernels: KernelTable
    xy: np.ndarray
    zl: np.ndarray
    groups: np.ndarray
    ops: np.ndarray


def _tables(b: _Builder) -> dict[str, object]:
    keys = sorted(b.keys.items(), key=lambda item: item[1])
    return {
        "jobs": np.array(b.jobs, np.int64).reshape(-1, 5),
        "x_kernels": kernel_table(b.x_kernels),
        "yz_kernels": kernel_table([(_taps(sig, order), order == 1, 0) for (sig, order), _ in keys]),
        "xy": np.array(list(b.xy), np.int64).reshape(-1, 2),
        "zl": np.array(list(b.zl), np.int64).reshape(-1, 2),
        "groups": np.array(b.groups, np.int64).reshape(-1, 10),
        "ops": np.array(b.ops, np.int64).reshape(-1, 9),
    }


def columns_3d(selection: FeatureSelection, z_size: int) -> list[int]:
    """The scale columns of a selection that run in 3D (not per z-slice) on a z of ``z_size``."""
    return [
        j
        for j in selection.columns()
        if not selection.column_is_2d(j, z_size) and not selection.features_are_2d(j, z_size)
    ]


@lru_cache(maxsize=64)
def _plan(selection: FeatureSelection, n_inputs: int, z_size: int) -> _Plan:
    """The fused computation of a selection's 3D columns on 3D data with ``n_inputs`` channels."""
    offsets = _channel_offsets(selection, n_inputs, z_size)
    b = _Builder()
    columns = []
    n_sources = 0
    for j in columns_3d(selection, z_size):
        _plan_column(b, min(selection.scales[j], 1.0), offsets[j], n_sources)
        reads_p = any(f != "StructureTensorEigenvalues" for f in offsets[j])
        tensor = "StructureTensorEigenvalues" in offsets[j]
        columns.append((j, reads_p, 0.5 * min(selection.scales[j], 1.0) if tensor else None))
        n_sources += int(reads_p) + 3 * int(tensor)
    return _Plan(tuple(columns), **_tables(b))  # type: ignore[arg-type]


def features_3d(
    base: Frame,
    selection: FeatureSelection,
    core_lo: tuple[int, ...],
    core_hi: tuple[int, ...],
    n_t: int,
    out: np.ndarray,
) -> None:
    """Write the 3D columns' channels of a block into its stack ``out``, in place.

    Parameters
    ----------
    base : Frame
        The block with its halo, ``(t * c, z, y, x)`` float32, C-contiguous.
    selection : FeatureSelection
        What to compute; columns run per z-slice (see :func:`columns_3d`) are left alone.
    core_lo, core_hi : tuple of int
        Global region of ``out`` (the block without its halo).
    n_t : int
        Time points in ``base``'s first axis.
    out : ndarray of float32, shape (t, z, y, x, channels)
        The block's whole feature stack (every channel of the selection).
    """
    n_c = base.data.shape[0] // n_t
    plan = _plan(selection, n_c, base.full[0])
    presmoothed = _presmoothed(base, selection, [j for j, _, _ in plan.columns], core_lo, core_hi)
    sources: list[Frame] = []
    for (_, reads_p, gradient_sigma), p in zip(plan.columns, presmoothed):
        if reads_p:
            sources.append(p)
        if gradient_sigma is not None:
            sources += _gradients(p, gradient_sigma)
    _run(plan, sources, core_lo, out)


def _presmoothed(
    base: Frame,
    selection: FeatureSelection,
    columns: list[int],
    core_lo: tuple[int, ...],
    core_hi: tuple[int, ...],
) -> list[Frame]:
    """The columns' presmoothed volumes ``P``, each over its core plus its feature halo (one call)."""
    boxes, offsets, kernels, frames = [], [], [], []
    for j in columns:
        s, halo = selection.scales[j], selection.column_halo(j)
        taps = gaussian_half_kernel(math.sqrt(s * s - 1.0) if s > 1.0 else s, 0, PRESMOOTH_WINDOW)
        r = taps.shape[0] - 1
        lo = tuple(max(c - halo, b) for c, b in zip(core_lo, base.lo))
        hi = tuple(min(c + halo, b) for c, b in zip(core_hi, base.hi))
        off = tuple(0 if a == 0 else r for a in lo)
        shape = tuple(b - a - o - (0 if b == n else r) for a, b, o, n in zip(lo, hi, off, base.full))
        if min(shape) <= 0:
            raise ValueError(f"presmoothing of radius {r} leaves no output from a crop of {hi} - {lo}")
        boxes.append([(a - b, c - b) for a, c, b in zip(lo, hi, base.lo)])
        offsets.append(off)
        kernels.append(taps)
        frames.append(
            Frame(
                np.empty((base.data.shape[0], *shape), np.float32),
                tuple(a + o for a, o in zip(lo, off)),
                base.full,
            )
        )
    box_table = np.array(boxes, np.int64).reshape(-1, 3, 2)
    smooth_columns(
        base.data, box_table, np.array(offsets, np.int64).reshape(-1, 3), kernels, [f.data for f in frames]
    )
    return frames


def _run(plan: _Plan, sources: list[Frame], core_lo: tuple[int, ...], out: np.ndarray) -> None:
    origins = np.array([[c - a for c, a in zip(core_lo, f.lo)] for f in sources], np.int64)
    tables = (plan.jobs, plan.x_kernels, plan.yz_kernels, plan.xy, plan.zl, plan.groups, plan.ops)
    fused_volume([f.data for f in sources], origins, *tables, out)


def _gradients(p: Frame, sigma: float) -> list[Frame]:
    """The structure tensor's gradients (x, y, z) over ``P``'s valid domain, each ``(batch, z, y, x)``."""
    t0, t1 = _taps(sigma, 0), _taps(sigma, 1)
    r = t0.shape[0] - 1
    off = tuple(0 if a == 0 else r for a in p.lo)
    lo = tuple(a + o for a, o in zip(p.lo, off))
    hi = tuple(b - (0 if b == n else r) for b, n in zip(p.hi, p.full))
    shape = (p.data.shape[0], *(b - a for a, b in zip(lo, hi)))
    return [Frame(g, lo, p.full) for g in gradients_3d(p.data, off, t0, t1, shape)]  # type: ignore[arg-type]
