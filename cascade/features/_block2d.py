"""The feature stack of one 2D block in fused passes, written channels-last in place.

Per scale column the presmoothed plane ``P`` is computed as before (whole plane, window 3.5),
and, if the column has the structure tensor, its gradients ``y0(x1(P))``, ``y1(x0(P))`` at
``0.5 s'`` (:func:`~cascade.features._fused.gradients_2d`). Then one compiled call
(:func:`~cascade.features._fused.fused_block`) runs every feature of every column, strip by
strip of output rows:

1. every x pass the features need (order 0 at ``s'`` and ``0.66 s'``, orders 1 and 2 at ``s'``,
   the tensor products smoothed at ``s'``), each into a *slot*;
2. every y pass of the slots, the per-pixel combinations (difference, sum, magnitude,
   eigenvalues), and the channels-last output rows, written once.

A selection is planned once (:func:`_plan`, cached): slots, the y-pass lines and the ops that
combine them, with shared intermediates computed once (``x0(P)`` serves GS, LoG, GGM and HoGE;
the y pass ``y0(x2(P))`` serves LoG and HoGE). Each value goes through exactly the float32
operations of the unfused code (:mod:`cascade.features._block`), so the stack is bit for bit
the same, and that is ilastik's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ._frame import Frame
from ._fused import (
    OP_ADD,
    OP_COPY,
    OP_EIG2,
    OP_MAG,
    OP_SUB,
    KernelTable,
    fused_block,
    kernel_table,
)
from ._lines import gradients_2d
from .kernels import gaussian_half_kernel
from .selection import FEATURE_WINDOW, PRESMOOTH_WINDOW, FeatureSelection

__all__ = ["features_2d"]


@dataclass(frozen=True)
class _Column:
    """One scale column: whether the x passes read ``P``, and the structure tensor's gradient sigma."""

    index: int
    reads_p: bool
    gradient_sigma: float | None


@dataclass
class _Builder:
    """Collects sources, x jobs and kernels, slots, y kernels, y-pass lines and ops of a selection."""

    n_sources: int = 0
    n_slots: int = 0
    x_kernels: list[tuple[np.ndarray, bool, int]] = field(default_factory=list)
    jobs: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    y_keys: dict[tuple[float, int], int] = field(default_factory=dict)
    lines: dict[tuple[int, int], int] = field(default_factory=dict)
    ops: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)
    groups: list[tuple[int, ...]] = field(default_factory=list)

    def slot(self) -> int:
        self.n_slots += 1
        return self.n_slots - 1

    def line(self, slot: int, sigma: float, order: int) -> int:
        """The y-pass line of ``slot`` with the (sigma, order) kernel, shared if already planned."""
        kernel = self.y_keys.setdefault((sigma, order), len(self.y_keys))
        return self.lines.setdefault((slot, kernel), len(self.lines))

    def job(self, kernels: list[tuple[np.ndarray, bool, int]], a: int, b: int | None = None) -> None:
        """x passes of source ``a`` with ``kernels``, or of the tensor products of ``a`` and ``b``."""
        first = len(self.x_kernels)
        self.x_kernels += kernels
        self.jobs.append((a, a if b is None else b, int(b is not None), first, len(self.x_kernels)))


@dataclass(frozen=True)
class _Plan:
    columns: tuple[_Column, ...]
    pad: int
    jobs: np.ndarray
    x_kernels: KernelTable
    y_kernels: KernelTable
    passes: np.ndarray
    groups: np.ndarray
    ops: np.ndarray


def _taps(sigma: float, order: int) -> np.ndarray:
    return gaussian_half_kernel(sigma, order, FEATURE_WINDOW)


def _plan_column(b: _Builder, j: int, s: float, offsets: dict[str, int]) -> _Column:
    """Plan one column at ``s' = s``: its x passes, y lines and ops (channels from ``offsets``)."""
    x_slots: dict[tuple[float, int], int] = {}
    first_line, first_op, first_job, first_slot = len(b.lines), len(b.ops), len(b.jobs), b.n_slots

    def y(x_sigma: float, x_order: int, y_order: int) -> int:
        if (x_sigma, x_order) not in x_slots:
            x_slots[x_sigma, x_order] = b.slot()
        return b.line(x_slots[x_sigma, x_order], x_sigma, y_order)

    tensor: tuple[int, int, int] | None = None
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
            tensor = (b.slot(), b.slot(), b.slot())
            xx, xy, yy = (b.line(t, s, 0) for t in tensor)
            b.ops.append((OP_EIG2, ch, 2, xx, xy, yy))
    if x_slots:
        b.job([(_taps(sg, o), o == 1, t) for (sg, o), t in x_slots.items()], b.n_sources)
        b.n_sources += 1
    if tensor is not None:
        gx, gy = b.n_sources, b.n_sources + 1
        b.job([(_taps(s, 0), False, t) for t in tensor], gx, gy)
        b.n_sources += 2
    b.groups.append(
        (first_line, len(b.lines), first_op, len(b.ops), first_job, len(b.jobs), first_slot, b.n_slots)
    )
    return _Column(j, bool(x_slots), None if tensor is None else 0.5 * s)


def _channel_offsets(
    selection: FeatureSelection, n_inputs: int, z_size: int | None
) -> dict[int, dict[str, int]]:
    """Per scale column ``j``, each selected feature's first output channel."""
    offsets: dict[int, dict[str, int]] = {}
    channel = 0
    for fid, j in selection.selected():
        offsets.setdefault(j, {})[fid] = channel
        channel += n_inputs * selection.channels_per_input(fid, j, z_size)
    return offsets


@lru_cache(maxsize=64)
def _plan(selection: FeatureSelection, n_inputs: int) -> _Plan:
    """The fused computation of a selection on 2D data with ``n_inputs`` channels."""
    offsets = _channel_offsets(selection, n_inputs, None)
    b = _Builder()
    columns = tuple(
        _plan_column(b, j, min(selection.scales[j], 1.0), offsets[j]) for j in selection.columns()
    )
    y_kernels = sorted(b.y_keys.items(), key=lambda item: item[1])
    table = kernel_table([(_taps(sig, order), order == 1, 0) for (sig, order), _ in y_kernels])
    return _Plan(
        columns,
        int(table.radii.max()),
        np.array(b.jobs, np.int64),
        kernel_table(b.x_kernels),
        table,
        np.array(list(b.lines), np.int64).reshape(-1, 2),
        np.array(b.groups, np.int64),
        np.array(b.ops, np.int64),
    )


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
    sources: list[Frame] = []
    for column in plan.columns:
        p = _presmoothed(base, selection, column.index, core_lo, core_hi)
        if column.reads_p:
            sources.append(p)
        if column.gradient_sigma is not None:
            sources += _gradients(p, column.gradient_sigma)
    origins = np.array([[c - a for c, a in zip(core_lo, f.lo)] for f in sources], np.int64)
    height, width = core_hi[0] - core_lo[0], core_hi[1] - core_lo[1]
    out = np.empty((n_t, height, width, selection.n_channels(n_c, None)), np.float32)
    fused_block(
        [f.data for f in sources],
        origins,
        plan.jobs,
        plan.x_kernels,
        plan.pad,
        plan.y_kernels,
        plan.passes,
        plan.groups,
        plan.ops,
        out,
    )
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


def _gradients(p: Frame, sigma: float) -> list[Frame]:
    """The structure tensor's gradients ``y0(x1(P))`` and ``y1(x0(P))`` over ``P``'s valid domain."""
    t0, t1 = _taps(sigma, 0), _taps(sigma, 1)
    r = t0.shape[0] - 1
    lo = tuple(a + (0 if a == 0 else r) for a in p.lo)
    hi = tuple(b - (0 if b == n else r) for b, n in zip(p.hi, p.full))
    origin = (lo[0] - p.lo[0], lo[1] - p.lo[1])
    gx, gy = gradients_2d(p.data, origin, t0, t1, (hi[0] - lo[0], hi[1] - lo[1]))
    return [Frame(gx, lo, p.full), Frame(gy, lo, p.full)]
