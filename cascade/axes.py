"""Axis keys: validation, and conversion to and from cascade's internal order.

cascade, like ilastik's Pixel Classification, computes in one internal order: the
non-singleton axes of ``t z y x`` in that order, followed by ``c`` (so ``yxc``, ``zyxc``,
``tyxc`` or ``tzyxc``). Axes are always named explicitly; nothing here guesses.
"""

from __future__ import annotations

from typing import Any, TypeVar

from .errors import AxesError

__all__ = ["INTERNAL_ORDER", "fitting_axes", "from_internal", "internal_axes", "parse_axes", "to_internal"]

INTERNAL_ORDER = "tzyxc"

ArrayT = TypeVar("ArrayT", bound=Any)


def parse_axes(axes: str, ndim: int | None = None) -> str:
    """Validate axis keys such as ``"zyx"`` or ``"tczyx"``.

    Parameters
    ----------
    axes : str
        Axis keys, case-insensitive, each one of ``t z y x c``.
    ndim : int, optional
        The number of dimensions the axes must describe.

    Returns
    -------
    str
        The lower-cased keys.

    Raises
    ------
    AxesError
        If a key is unknown or repeated, x or y is missing, or the count is not ``ndim``.
    """
    keys = axes.strip().lower()
    unknown = sorted(set(keys) - set(INTERNAL_ORDER))
    if unknown:
        raise AxesError(f"axes {axes!r}: unknown key(s) {', '.join(unknown)}; allowed are t, z, y, x, c")
    if len(set(keys)) != len(keys):
        raise AxesError(f"axes {axes!r}: a key is repeated")
    if "x" not in keys or "y" not in keys:
        raise AxesError(f"axes {axes!r}: both x and y are required")
    if ndim is not None and len(keys) != ndim:
        raise AxesError(f"axes {axes!r} name {len(keys)} dimensions but the data has {ndim}")
    return keys


def internal_axes(axes: str, shape: tuple[int, ...]) -> str:
    """Return the internal axis order for data with ``axes`` and ``shape``.

    Singleton ``t`` and ``z`` axes are dropped; ``y``, ``x`` and ``c`` are always present
    (a 1 x N image stays 2D with ``y`` of length 1, as in ilastik).

    Parameters
    ----------
    axes : str
        The data's axis keys, e.g. ``"tzyxc"``.
    shape : tuple of int
        The data's shape, one length per key of ``axes``.

    Returns
    -------
    str
        The internal order, e.g. ``"zyxc"``.
    """
    keys = parse_axes(axes, len(shape))
    sizes = dict(zip(keys, shape))
    return "".join(k for k in INTERNAL_ORDER if k in "yxc" or sizes.get(k, 1) > 1)


def to_internal(array: ArrayT, axes: str) -> tuple[ArrayT, str]:
    """Reorder ``array`` (numpy or dask) from ``axes`` to the internal order.

    Parameters
    ----------
    array : numpy or dask array
        The data, with one dimension per key of ``axes``.
    axes : str
        Its axis keys.

    Returns
    -------
    array, str
        The reordered array (singleton t/z dropped, c added if absent) and its axes.
    """
    keys = parse_axes(axes, array.ndim)
    target = internal_axes(keys, tuple(array.shape))
    index = tuple(0 if (k in "tz" and k not in target) else slice(None) for k in keys)
    array = array[index]
    kept = "".join(k for k in keys if k in target)
    if "c" not in kept:
        array = _with_last_axis(array)
        kept += "c"
    array = array.transpose([kept.index(k) for k in target])
    return array, target


def _with_last_axis(array: ArrayT) -> ArrayT:
    """``array[..., None]``; for a dask array one task per block that fuses with its neighbours.

    dask's ``x[..., None]`` is a layer of its own, which dask does not fuse with the reads before
    it or the step after it: on a cluster, two small tasks more per block (read, getitem) between
    the file and the block that uses it.
    """
    if not hasattr(array, "map_blocks"):  # numpy
        plain: ArrayT = array[..., None]
        return plain
    grown: ArrayT = array.map_blocks(
        _add_last_axis,
        new_axis=array.ndim,
        chunks=(*array.chunks, (1,)),
        dtype=array.dtype,
        meta=array._meta[..., None],
    )
    return grown


def _add_last_axis(block: Any) -> Any:
    return block[..., None]


def from_internal(array: ArrayT, axes: str, target: str) -> ArrayT:
    """Reorder ``array`` from internal ``axes`` to the ``target`` order.

    Axes of ``target`` that ``array`` lacks are inserted with length 1. Axes of
    ``array`` that ``target`` lacks must have length 1 and are dropped.

    Parameters
    ----------
    array : numpy or dask array
        Data in internal axis order.
    axes : str
        Its (internal) axis keys.
    target : str
        The wanted axis keys.

    Returns
    -------
    numpy or dask array
        The data in ``target`` order (same kind as ``array``).
    """
    target = parse_axes(target)
    for k, n in zip(axes, array.shape):
        if k not in target and n != 1:
            raise AxesError(f"axis {k!r} has length {n} and cannot be dropped for output axes {target!r}")
    index = tuple(slice(None) if k in target else 0 for k in axes)
    array = array[index]
    kept = "".join(k for k in axes if k in target)
    for k in target:
        if k not in kept:
            array = _with_last_axis(array)
            kept += k
    moved: ArrayT = array.transpose([kept.index(k) for k in target])
    return moved


def fitting_axes(axes: str, ndim: int) -> str | None:
    """``axes`` adapted to data of ``ndim`` dimensions, or None if they cannot fit.

    Used to reuse a training image's axes for another file (ilastik's rule): equal length
    fits; one more key fits by dropping ``c`` (a single-channel image stored without one).

    Parameters
    ----------
    axes : str
        The axis keys of the other image.
    ndim : int
        Dimensions of the data to read.

    Returns
    -------
    str or None
        Axis keys of length ``ndim``, or None.
    """
    if len(axes) == ndim:
        return axes
    if len(axes) == ndim + 1 and "c" in axes:
        return axes.replace("c", "")
    return None
