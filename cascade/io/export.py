"""ilastik's export step: cutout, normalisation, dtype, axis order and file names.

Pure steps on dask arrays in internal axis order; the export sources are in :mod:`cascade.batch`.
"""

from __future__ import annotations

import json
import os
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np

from ..axes import from_internal, parse_axes
from ..errors import ExportError

__all__ = [
    "EXPORT_DTYPES",
    "PreparedExport",
    "apply_cutout",
    "format_filename",
    "format_placeholders",
    "normalize",
    "parse_cutout",
    "parse_range",
    "prepare_export",
]

EXPORT_DTYPES = ("uint8", "uint16", "uint32", "int8", "int16", "int32", "float32", "float64")


def _literal(text: str, what: str) -> Any:
    cleaned = text.replace("(", "[").replace(")", "]").replace("None", "null")
    try:
        return json.loads(cleaned)
    except json.JSONDecodeError as err:
        raise ExportError(f"{what} {text!r} is not a valid value ({err.msg})") from err


def parse_cutout(text: str) -> tuple[tuple[int | None, ...], tuple[int | None, ...]]:
    """``--cutout_subregion`` text like ``"[(0,0,None),(100,200,None)]"`` -> (starts, stops).

    Parameters
    ----------
    text : str
        The option's value: two equally long lists of integers or None.

    Returns
    -------
    starts, stops : tuple of (int or None)
        One value per axis of the export source.

    Raises
    ------
    ExportError
        For any other text.
    """
    value = _literal(text, "cutout subregion")
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, list) for v in value)
        or len(value[0]) != len(value[1])
        or not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in value[0] + value[1])
    ):
        raise ExportError(
            f"cutout subregion {text!r} must be two equally long lists of integers or None: "
            "[(start...), (stop...)]"
        )
    return tuple(value[0]), tuple(value[1])


def parse_range(text: str, what: str) -> tuple[float, float]:
    """A ``(low, high)`` data range such as ``"(0.0, 1.0)"``.

    Parameters
    ----------
    text : str
        The option's value.
    what : str
        The option's name, for the error message.

    Returns
    -------
    (float, float)
        ``(low, high)``.

    Raises
    ------
    ExportError
        For anything but two numbers.
    """
    value = _literal(text, what)
    if not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, (int, float)) for v in value):
        raise ExportError(f"{what} {text!r} must be a pair of numbers like (0, 255)")
    return float(value[0]), float(value[1])


def apply_cutout(
    array: da.Array, axes: str, cutout: tuple[tuple[int | None, ...], tuple[int | None, ...]] | None
) -> tuple[da.Array, tuple[int, ...], tuple[int, ...]]:
    """Crop to ilastik's cutout (axes of the export source, including c).

    ``None`` start means 0; ``None`` or 0 stop means the full extent; values are clipped.
    Returns the cropped array and the absolute start and stop per axis.

    Parameters
    ----------
    array : dask array
        The export source in internal axis order.
    axes : str
        Its axis keys.
    cutout : (starts, stops) or None
        One start and one stop per key of ``axes`` (None: no cutout).

    Returns
    -------
    array : dask array
        The cropped array.
    lo, hi : tuple of int
        The absolute start and stop per axis.
    """
    if cutout is None:
        return array, (0,) * array.ndim, tuple(array.shape)
    starts, stops = cutout
    if len(starts) != array.ndim:
        raise ExportError(
            f"cutout subregion has {len(starts)} entries per corner but the export source has axes "
            f"{axes!r} ({array.ndim} entries needed)"
        )
    lo = tuple(min(max(s or 0, 0), n) for s, n in zip(starts, array.shape))
    hi = tuple(min(max(e or n, 0), n) for e, n in zip(stops, array.shape))
    if any(b <= a for a, b in zip(lo, hi)):
        raise ExportError(f"cutout subregion {list(starts)}..{list(stops)} is empty for shape {array.shape}")
    return array[tuple(slice(a, b) for a, b in zip(lo, hi))], lo, hi


def normalize(
    array: da.Array,
    dtype: str | None,
    pipeline_range: tuple[float, float] | None,
    export_range: tuple[float, float] | None,
) -> da.Array:
    """ilastik's normalisation and dtype conversion.

    Normalisation happens only when both ranges are given:
    ``out = min_out + (a - min_in) * float32((max_out - min_out) / (max_in - min_in))``, then
    ``rint`` when converting float to int, no clipping. Otherwise a plain (truncating) cast.

    Parameters
    ----------
    array : dask array
        The data.
    dtype : str or None
        The export dtype (None: keep the data's).
    pipeline_range, export_range : (float, float) or None
        ilastik's ``--pipeline_result_drange`` and ``--export_drange``.

    Returns
    -------
    dask array
        The converted data.

    Raises
    ------
    ExportError
        An export range without a pipeline range.
    """
    if export_range is not None and pipeline_range is None:
        raise ExportError(
            "--export_drange needs --pipeline_result_drange (ilastik normalises only with both)"
        )
    target = np.dtype(dtype) if dtype else array.dtype
    if pipeline_range is None or export_range is None:
        cast: da.Array = array.astype(target)
        return cast
    (min_in, max_in), (min_out, max_out) = pipeline_range, export_range
    span = max_in - min_in
    ratio = np.float32((max_out - min_out) / span) if abs(span) > 1e-12 else np.float32(0)
    scaled = np.float32(min_out) + (array.astype(np.float32) - np.float32(min_in)) * ratio
    if np.issubdtype(target, np.integer):
        scaled = da.rint(scaled)
    out: da.Array = scaled.astype(target)
    return out


class _KeepUnknown(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def format_placeholders(template: str, values: Mapping[str, Any]) -> str:
    """Fill ilastik's placeholders; unknown ``{keys}`` stay as they are (like ilastik).

    Parameters
    ----------
    template : str
        Text with ``{key}`` placeholders.
    values : mapping
        Values by key (:func:`placeholders`).

    Returns
    -------
    str
        The filled-in text.
    """
    try:
        return string.Formatter().vformat(template, (), _KeepUnknown(values))
    except (ValueError, IndexError, AttributeError, TypeError) as err:
        raise ExportError(f"output name format {template!r} is malformed: {err}") from err


def format_filename(template: str, values: Mapping[str, Any]) -> str:
    """Fill ilastik's placeholders in an output file name (``~`` expanded).

    Parameters
    ----------
    template : str
        ilastik's ``--output_filename_format``.
    values : mapping
        Values by key (:func:`placeholders`).

    Returns
    -------
    str
        The output path.
    """
    return format_placeholders(os.path.expanduser(template), values)


def placeholders(
    *, dataset_dir: str, nickname: str, result_type: str, axes: str, lo: Sequence[int], hi: Sequence[int]
) -> dict[str, Any]:
    """Values of ``{dataset_dir}``, ``{nickname}``, ``{result_type}``, ``{roi}``, ``{x_start}``...

    Parameters
    ----------
    dataset_dir, nickname : str
        The input's folder and nickname (see :class:`cascade.io.Image`).
    result_type : str
        The export source's name.
    axes : str
        The export source's axis keys.
    lo, hi : sequence of int
        The cutout's start and stop per axis.

    Returns
    -------
    dict
        Placeholder values by key.
    """
    values: dict[str, Any] = {
        "dataset_dir": dataset_dir,
        "nickname": nickname,
        "result_type": result_type,
        "roi": str([tuple(lo), tuple(hi)]),
    }
    for key, a, b in zip(axes, lo, hi):
        values[f"{key}_start"] = a
        values[f"{key}_stop"] = b
    return values


@dataclass(frozen=True)
class PreparedExport:
    """An export ready to write: the final array, its axes and the cutout it covers."""

    data: da.Array
    axes: str
    lo: tuple[int, ...]
    hi: tuple[int, ...]
    source_axes: str


def prepare_export(
    array: da.Array,
    internal_axes: str,
    *,
    original_axes: str,
    cutout: tuple[tuple[int | None, ...], tuple[int | None, ...]] | None = None,
    dtype: str | None = None,
    pipeline_range: tuple[float, float] | None = None,
    export_range: tuple[float, float] | None = None,
    axis_order: str | None = None,
) -> PreparedExport:
    """Cutout (in the source's internal axes), normalisation/dtype, then the output axis order.

    The output axis order defaults to the input's original order with ``c`` appended if it
    was absent, as ilastik exports.

    Parameters
    ----------
    array : dask array
        The export source, in internal axis order.
    internal_axes : str
        Its axis keys.
    original_axes : str
        The input's axis keys as read (the default output order).
    cutout : (starts, stops), optional
        ilastik's cutout, per axis of ``internal_axes``.
    dtype : str, optional
        The export dtype (one of :data:`EXPORT_DTYPES`).
    pipeline_range, export_range : (float, float), optional
        The normalisation ranges (:func:`normalize`).
    axis_order : str, optional
        The output axis order (ilastik's ``--output_axis_order``).

    Returns
    -------
    PreparedExport
        The lazy output array, its axes and the cutout's bounds.

    Raises
    ------
    ExportError
        An unknown dtype, an invalid axis order or a cutout outside the data.
    """
    if dtype is not None and dtype not in EXPORT_DTYPES:
        raise ExportError(f"export dtype {dtype!r} is not one of {', '.join(EXPORT_DTYPES)}")
    cropped, lo, hi = apply_cutout(array, internal_axes, cutout)
    converted = normalize(cropped, dtype, pipeline_range, export_range)
    if axis_order:
        target = _parse_order(axis_order)
    else:
        target = original_axes if "c" in original_axes else original_axes + "c"
    missing = [k for k, n in zip(internal_axes, converted.shape) if k not in target and n != 1]
    if missing:
        raise ExportError(f"output axis order {target!r} lacks axis {missing[0]!r} of the export source")
    return PreparedExport(from_internal(converted, internal_axes, target), target, lo, hi, internal_axes)


def _parse_order(text: str) -> str:
    order = text.strip().lower()
    if not re.fullmatch(r"[txyzc]+", order):
        raise ExportError(f"output axis order {text!r} may only use the letters t, x, y, z, c")
    return parse_axes(order)
