"""Axis metadata (vigra axistags, guesses from ndim) and ilastik's storage block shape."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from ..axes import parse_axes
from ..errors import AxesError, DataError

__all__ = ["axistags_json", "block_shape", "guess_axes", "keys_from_axistags", "valid_axes"]

# vigra AxisInfo type flags: Channels = 1, Space = 2, Time = 8.
_TYPE_FLAGS = {"c": 1, "t": 8, "x": 2, "y": 2, "z": 2}


def guess_axes(shape: Sequence[int]) -> str:
    """ilastik's default axis order for data without axis metadata.

    2 dims: ``yx``; 3: ``yxc`` if the last dim is at most 4, else ``zyx``; 4: ``zyxc``;
    5: ``tzyxc`` (lazyflow ``get_default_axisordering``).

    Raises
    ------
    DataError
        If the data has fewer than 2 or more than 5 dimensions.
    """
    ndim = len(shape)
    if ndim == 3:
        return "yxc" if shape[2] <= 4 else "zyx"
    guesses = {2: "yx", 4: "zyxc", 5: "tzyxc"}
    if ndim not in guesses:
        raise DataError(f"an image needs 2 to 5 dimensions, this data has {ndim} (shape {tuple(shape)})")
    return guesses[ndim]


def valid_axes(keys: Iterable[Any] | str | None, ndim: int) -> str | None:
    """Return ``keys`` as validated axes for ``ndim`` dimensions, or None if they are not valid."""
    if keys is None:
        return None
    try:
        text = keys if isinstance(keys, str) else "".join(str(k) for k in keys)
        axes: str = parse_axes(text, ndim)
    except AxesError:
        return None
    return axes


def axistags_json(axes: str) -> str:
    """Encode ``axes`` as vigra's axistags JSON, as ilastik stores it in h5/n5/zarr attributes.

    Parameters
    ----------
    axes : str
        Axis keys, e.g. ``"tzyxc"``.

    Returns
    -------
    str
        The JSON text of ``vigra.AxisTags.toJSON`` (resolution 0, no descriptions).
    """
    entries = [{"key": k, "typeFlags": _TYPE_FLAGS[k], "resolution": 0, "description": ""} for k in axes]
    return json.dumps({"axes": entries}, indent=2)


def keys_from_axistags(value: Any) -> str | None:
    """Decode the axis keys of a vigra axistags JSON attribute; None if it cannot be parsed."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    try:
        entries = json.loads(value)["axes"]
        return "".join(str(entry["key"]) for entry in entries) if isinstance(entries, list) else None
    except (ValueError, KeyError, TypeError):
        return None


def block_shape(shape: Sequence[int], axes: str, target_bytes: float, itemsize: int) -> tuple[int, ...]:
    """A storage block shape of about ``target_bytes``, as isotropic as the data allows.

    Like lazyflow's ``determineBlockShape`` as ilastik's h5/n5 writer uses it: ``t`` and
    ``c`` get 1, the other axes share the volume evenly, and an axis shorter than its share
    is taken whole and its share redistributed.

    Parameters
    ----------
    shape : sequence of int
        Array shape.
    axes : str
        Axis keys of ``shape``.
    target_bytes : float
        Wanted uncompressed block size in bytes.
    itemsize : int
        Bytes per element.
    """
    limits = [1 if k in "tc" else max(1, n) for k, n in zip(axes, shape, strict=True)]
    block = [1] * len(limits)
    free = [i for i, n in enumerate(limits) if n > 1]
    volume = max(1.0, target_bytes / itemsize)
    while free:
        side = volume ** (1.0 / len(free))
        small = [i for i in free if limits[i] <= side]
        if not small:
            for i in free:
                block[i] = max(1, min(limits[i], math.floor(side + 0.5)))
            break
        for i in small:
            block[i] = limits[i]
            volume /= limits[i]
        free = [i for i in free if i not in small]
    return tuple(block)
