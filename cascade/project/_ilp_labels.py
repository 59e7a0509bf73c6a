"""Label blocks of an ilastik project: ``PixelClassification/LabelSets/labelsNNN/blockNNNN``.

Each block is a uint8 array (0 = unlabelled, k = class k) cropped to the bounding box of its
labels; its ``blockSlice`` attribute places it in the lane's label image. Newer projects also
store the block's ``axistags``; for older ones the axes are inferred from the lane (see
:func:`guess_block_axes`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import h5py
import numpy as np

from ..axes import INTERNAL_ORDER
from ..errors import ProjectError
from ..io import read_hdf5_checked
from ._h5 import numbered, text
from ._ilp_lanes import IlpLane, parse_axistags

__all__ = ["LabelBlock", "guess_block_axes", "parse_block_slice", "read_label_sets", "version_key"]

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?(?:(a|b|rc|post|\.post)(\d+))?")
_PHASE = {"a": -3, "b": -2, "rc": -1, "": 0, "post": 1, ".post": 1}
# ilastik 1.3.3post2 .. 1.4.0b7 wrote label blocks in the input file's own axis order.
_ORIGINAL_ORDER_ERA = ((1, 3, 3, 1, 2), (1, 4, 0, -2, 7))


@dataclass(frozen=True, eq=False)
class LabelBlock:
    """One stored block of user labels.

    Attributes
    ----------
    slices : tuple of slice
        Where the block lies in the lane's label image, one slice per axis of ``axes``
        (``c`` included, always ``0:1``).
    axes : str
        Axis keys of ``slices`` and ``data``, e.g. ``"yxc"`` or ``"zyxc"``.
    data : ndarray of uint8
        Label values, 0 = unlabelled, k = class k (1-based, channel k-1 of the prediction).
    """

    slices: tuple[slice, ...]
    axes: str
    data: np.ndarray

    def counts(self, n_classes: int) -> np.ndarray:
        """Number of pixels labelled with each class 1..n_classes, shape (n_classes,).

        Parameters
        ----------
        n_classes : int
            The stage's class count.

        Returns
        -------
        numpy.ndarray
            The counts, int64.
        """
        return np.bincount(self.data.ravel(), minlength=n_classes + 1)[1 : n_classes + 1]


def version_key(version: str) -> tuple[int, int, int, int, int] | None:
    """A sortable key for ilastik versions such as ``1.3.3post2``, ``1.4.0b7``, ``1.4.1b16.dev34``.

    Returns None when ``version`` does not start with ``major.minor``.
    """
    m = _VERSION.match(version.strip())
    if m is None:
        return None
    major, minor, patch, phase, n = m.groups()
    return int(major), int(minor), int(patch or 0), _PHASE[phase or ""], int(n or 0)


def parse_block_slice(raw: str) -> tuple[slice, ...]:
    """``"[a0:b0,a1:b1,...]"`` -> ``(slice(a0, b0), slice(a1, b1), ...)``."""
    try:
        pairs = [part.split(":") for part in raw.strip().strip("[]").split(",")]
        return tuple(slice(int(a), int(b)) for a, b in pairs)
    except ValueError as err:
        raise ValueError(f"bad blockSlice {raw!r}") from err


def guess_block_axes(n_axes: int, lane: IlpLane | None, version: str) -> str | None:
    """Axes of a label block saved without ``axistags``.

    Candidates, in order: ilastik's internal order for the lane (``yxc``, ``zyxc``, ``tyxc``...),
    then the lane file's own order with ``c`` appended, then the 5-D ``txyzc`` of old projects.
    Projects saved by ilastik 1.3.3post2 to 1.4.0b7 wrote the file's own order, so that is
    tried first for them. The first candidate with ``n_axes`` keys wins.
    """
    if lane is None or lane.axes is None:
        return "txyzc" if n_axes == 5 else None
    original = lane.axes if "c" in lane.axes else lane.axes + "c"
    internal = None
    if lane.shape is not None and len(lane.shape) == len(lane.axes):
        sizes = dict(zip(lane.axes, lane.shape, strict=True))
        internal = "".join(k for k in INTERNAL_ORDER if k == "c" or sizes.get(k, 1) > 1)
    key = version_key(version)
    in_era = key is not None and _ORIGINAL_ORDER_ERA[0] <= key <= _ORIGINAL_ORDER_ERA[1]
    candidates = [original, internal] if in_era else [internal, original]
    for axes in [*candidates, "txyzc"]:
        if axes is not None and len(axes) == n_axes:
            return axes
    return None


def _check_place(slices: tuple[slice, ...], axes: str, lane: IlpLane | None, where: str) -> None:
    """Refuse a blockSlice that is empty, negative or reaches past the lane's image."""
    sizes = dict(zip(lane.axes, lane.shape, strict=True)) if lane and lane.axes and lane.shape else {}
    if len(sizes) != len(lane.shape if lane and lane.shape else ()):
        sizes = {}
    for key, part in zip(axes, slices, strict=True):
        size = sizes.get(key) if key != "c" else None
        if part.start < 0 or part.stop <= part.start or (size is not None and part.stop > size):
            raise ProjectError(
                f"{where}: label block at {key}={part.start}:{part.stop} lies outside the image "
                f"({', '.join(f'{k}={n}' for k, n in sizes.items()) or 'size unknown'})"
            )


def _read_block(ds: h5py.Dataset, lane: IlpLane | None, version: str, where: str) -> LabelBlock:
    """One label block, checked against its blockSlice and the lane's image before it is read."""
    try:
        slices = parse_block_slice(text(ds.attrs["blockSlice"]))
    except (KeyError, ValueError) as err:
        raise ProjectError(f"{where}: label block without a readable 'blockSlice' ({err})") from err
    axes = parse_axistags(ds.attrs["axistags"]) if "axistags" in ds.attrs else None
    axes = axes or guess_block_axes(len(slices), lane, version)
    extents = tuple(s.stop - s.start for s in slices)
    if axes is None or len(axes) != len(slices) or ds.shape != extents:
        raise ProjectError(
            f"{where}: label block of shape {ds.shape} does not fit its blockSlice {extents} / axes {axes!r}"
        )
    _check_place(slices, axes, lane, where)
    if ds.dtype.kind not in "iub":
        raise ProjectError(f"{where}: label block of dtype {ds.dtype}; labels are integers (ilastik's uint8)")
    data = read_hdf5_checked(ds, where)
    if data.size and (int(data.min()) < 0 or int(data.max()) > 255):
        raise ProjectError(
            f"{where}: label values {int(data.min())}..{int(data.max())} outside ilastik's 0..255"
        )
    return LabelBlock(slices=slices, axes=axes, data=data.astype(np.uint8, copy=False))


def read_label_sets(
    group: h5py.Group | None, lanes: tuple[IlpLane, ...], version: str, where: str
) -> tuple[tuple[LabelBlock, ...], ...]:
    """Label blocks per lane (``labelsNNN`` pairs with ``laneNNNN``); lanes without labels get ()."""
    per_lane: dict[int, tuple[LabelBlock, ...]] = {}
    if isinstance(group, h5py.Group):
        for key in numbered(list(group.keys()), "labels"):
            index = int(key[len("labels") :])
            lane = lanes[index] if index < len(lanes) else None
            blocks = group[key]
            per_lane[index] = tuple(
                _read_block(blocks[b], lane, version, f"{where}/{key}/{b}")
                for b in numbered(list(blocks.keys()), "block")
            )
    count = max([len(lanes), *(i + 1 for i in per_lane)])
    return tuple(per_lane.get(i, ()) for i in range(count))
