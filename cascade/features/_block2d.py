"""The feature stack of one 2D block in fused passes, written channels-last in place.

Per scale column the presmoothed plane ``P`` is computed as before (whole plane, window
3.5). Then, instead of one array per feature and a final transpose:

1. every x pass the column's features need (order 0 at ``s'`` and ``0.66 s'``, order 1 and 2
   at ``s'``, the structure tensor's products smoothed at ``s'``) is written by
   :func:`x_stage` into a *slot*: core columns only, core rows plus ``pad`` mirrored/halo rows;
2. one :func:`y_stage` call runs, row by row, every y pass of every column and combines them
   into the output row, all 49 (default) channels while that row is in cache.

Shared intermediates are computed once (e.g. ``x0(P)`` serves GS, LoG, GGM and HoGE; the y
pass ``y0(x2(P))`` serves LoG and HoGE). Each value goes through exactly the float32
operations of the unfused code (:mod:`cascade.features._block`), so the stack is bit for bit
the same, and that is ilastik's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ._frame import Derivatives, Frame
from ._fused import OP_ADD, OP_COPY, OP_EIG2, OP_MAG, OP_SUB, KernelTable, kernel_table, x_stage, y_stage
from .kernels import gaussian_half_kernel
from .selection import FEATURE_WINDOW, PRESMOOTH_WINDOW, FeatureSelection

__all__ = ["features_2d"]


@dataclass(frozen=True)
class _Column:
    """What one scale column runs: x passes of ``P`` and the structure tensor's, with their slots."""

    index: int
    x_kernels: KernelTable | None
    tensor: tuple[float, tuple[KernelTable, ...]] | None  # gradient sigma; x-smoothing into xx, xy, yy


@dataclass
class _Builder:
    """Collects slots, y kernels, y-pass lines and ops while a selection is planned."""

    n_slots: int = 0
    y_keys: dict[tuple[float, int], int] = field(default_factory=dict)
    lines: dict[tuple[int, int], int] = field(default_factory=dict)
    ops: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)

    def slot(self) -> int:
        self.n_slots += 1
        return self.n_slots - 1

    def line(self, slot: int, sigma: float, order: int) -> int:
        """The y-pass line of ``slot`` with the (sigma, order) kernel, shared if already planned."""
        kernel = self.y_keys.setdefault((sigma, order), len(self.y_keys))
        return self.lines.setdefault((slot, kernel), len(self.lines))


@dataclass(frozen=True)
class _Plan:
    columns: tuple[_Column, ...]
    n_slots: int
    pad: int
    y_kernels: KernelTable
    passes: np.ndarray
    ops: np.ndarray


def _taps(sigma: float, order: int) -> np.ndarray:
    return gaussian_half_kernel(sigma, order, FEATURE_WINDOW)


def _plan_column(b: _Builder, selection: FeatureSelection, j: int, offsets: dict[str, int]) -> _Column:
    """Plan one column's x passes, y lines and ops (channels from ``offsets``, per feature)."""
    s = min(selection.scales[j], 1.0)
    x_slots: dict[tuple[float, int], int] = {}

    def y(x_sigma: float, x_order: int, y_order: int, y_sigma: float | None = None) -> int:
        slot = x_slots.setdefault((x_sigma, x_order), b.n_slots)
        if slot == b.n_slots:
            b.slot()
        return b.line(slot, x_sigma if y_sigma is None else y_sigma, y_order)

    tensor = None
    for fid, ch in offsets.items():
        if fid == "GaussianSmoothing":
            b.ops.append((OP_COPY, ch, 1, y(s, 0, 0), 0, 0))
        elif fid == "DifferenceOfGaussians":
            b.ops.append((OP_SUB, ch, 1, y(s, 0, 0), y(0.66 * s, 0, 0), 0))
        elif fid == "LaplacianOfGaussian":
            b.ops.append((OP_ADD, ch, 1, y(s, 2, 0), y(s, 0, 2), 0))
        elif fid == "GaussianGradientMagnitude":
            b.ops.append((OP_MAG, ch, 1, y(s, 1, 0), y(s, 0, 1), 0))
        elif fid == "HessianOfGaussianEigenvalues":
            b.ops.append((OP_EIG2, ch, 2, y(s, 2, 0), y(s, 1, 1), y(s, 0, 2)))
        else:  # StructureTensorEigenvalues: gradient at 0.5 s', tensor smoothed at s' (fastfilters)
            slots = (b.slot(), b.slot(), b.slot())
            b.ops.append((OP_EIG2, ch, 2, *(b.line(t, s, 0) for t in slots)))
            tensor = (0.5 * s, tuple(kernel_table([(_taps(s, 0), False, t)]) for t in slots))
    x_kernels = [(_taps(sig, order), order == 1, slot) for (sig, order), slot in x_slots.items()]
    return _Column(j, kernel_table(x_kernels) if x_kernels else None, tensor)


@lru_cache(maxsize=64)
def _plan(selection: FeatureSelection, n_inputs: int) -> _Plan:
    """The fused computation of a selection on 2D data with ``n_inputs`` channels."""
    offsets: dict[int, dict[str, int]] = {}
    channel = 0
    for fid, j in selection.selected():
        offsets.setdefault(j, {})[fid] = channel
        channel += n_inputs * selection.channels_per_input(fid, j, None)
    b = _Builder()
    columns = tuple(_plan_column(b, selection, j, offsets[j]) for j in selection.columns())
    y_kernels = sorted(b.y_keys.items(), key=lambda item: item[1])
    table = kernel_table([(_taps(sig, order), order == 1, 0) for (sig, order), _ in y_kernels])
    passes = np.array(list(b.lines), np.int64).reshape(-1, 2)
    return _Plan(columns, b.n_slots, int(table.radii.max()), table, passes, np.array(b.ops, np.int64))


def features_2d(
    base: Frame,
    selection: FeatureSelection,
    core_lo: tuple[int, ...],
    core_hi: tuple[int, ...],
    n_t: int,
) -> np.ndarray:
    """Feature stack of a 2D block (``base.data``: ``(t * c, y, x)`` float32), shape ``(t, y, x, C)``."""
    n_c = base.data.shape[0] // n_t
    plan = _plan(selection, n_c)
    height, width = core_hi[0] - core_lo[0], core_hi[1] - core_lo[1]
    planes = np.empty((plan.n_slots, base.data.shape[0], height + 2 * plan.pad, width), np.float32)
    top = core_lo[0] - plan.pad
    for column in plan.columns:
        p = _presmoothed(base, selection, column.index, core_lo, core_hi)
        if column.x_kernels is not None:
            x_stage(p.data, (top - p.lo[0], core_lo[1] - p.lo[1]), column.x_kernels, planes)
        if column.tensor is not None:
            grad_sigma, smoothing = column.tensor
            deriv = Derivatives(p, FEATURE_WINDOW)
            gx, gy = deriv.unit(grad_sigma, 0, 1), deriv.unit(grad_sigma, 1, 1)
            origin = (top - gx.lo[0], core_lo[1] - gx.lo[1])
            for (a, b), kernels in zip(((gx, gx), (gx, gy), (gy, gy)), smoothing):
                x_stage(a.data, origin, kernels, planes, times=b.data)
    out = np.empty((n_t, height, width, selection.n_channels(n_c, None)), np.float32)
    y_stage(planes, plan.pad, plan.y_kernels, plan.passes, plan.ops, out)
    return out


def _presmoothed(
    base: Frame, selection: FeatureSelection, j: int, core_lo: tuple[int, ...], core_hi: tuple[int, ...]
) -> Frame:
    """Column ``j``'s presmoothed plane over the core plus the column's feature halo."""
    s = selection.scales[j]
    halo = selection.column_halo(j)
    lo = tuple(max(c - halo, b) for c, b in zip(core_lo, base.lo))
    hi = tuple(min(c + halo, b) for c, b in zip(core_hi, base.hi))
    s_pre = math.sqrt(s * s - 1.0) if s > 1.0 else s
    return base.crop(lo, hi).smoothed(s_pre, PRESMOOTH_WINDOW)
