"""Text options of a batch run beyond a lookup: ilastik's ``--input_axes`` (per role) and
``--distributed_block_roi``, and the block shape a run uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import DataError, ExportError

__all__ = [
    "ILASTIK_BLOCK_ROI",
    "block_chunks",
    "check_block_count",
    "input_axes_fields",
    "parse_block_shape",
    "parse_input_axes",
]

#: ilastik's ``--distributed_block_roi`` default: x, y and z blocks of 256 (t 1, all channels).
ILASTIK_BLOCK_ROI = 256

#: More blocks than this cannot be planned: planning holds about 9 KiB of graph per block and
#: takes 140 us per block (measured: 65536 blocks, 755 MB and 9 s), so 2^20 blocks need ~9 GiB
#: and 2.5 minutes before a pixel is computed. A zarr declaring 10^6 x 10^6 pixels (3.8 million
#: blocks of 512^2, under the former limit of 10^8) took 6 GB in 90 s and was still planning.
MAX_BLOCKS = 2**20


def parse_input_axes(text: str) -> tuple[str | None, ...]:
    """ilastik's ``--input_axes``: axis keys per input role, separated by commas; ``None`` for a default.

    Parameters
    ----------
    text : str
        The option's value, e.g. ``"zyxc"``, ``"yxc,yx"`` or ``"tyx, None"``.

    Returns
    -------
    tuple of (str or None)
        One entry per role given (lower-case axis keys), None where the role keeps its default.

    Raises
    ------
    ExportError
        An empty entry.

    Examples
    --------
    >>> parse_input_axes("yxc, None")
    ('yxc', None)
    """
    entries = [part.strip() for part in text.split(",")]
    if any(not part for part in entries):
        raise ExportError(f"--input_axes {text!r}: give axis keys per input role, separated by commas")
    return tuple(None if part == "None" else part.lower() for part in entries)


def input_axes_fields(text: str | None) -> dict[str, Any]:
    """``input_axes`` and ``role_axes`` of a :class:`~cascade.batch.BatchOptions` from ``--input_axes``.

    Parameters
    ----------
    text : str or None
        The option's value.

    Returns
    -------
    dict
        The two fields (empty without the option): one value is the raw data's and every role's.
    """
    if text is None:
        return {}
    entries = parse_input_axes(text)
    return {"input_axes": entries[0], "role_axes": entries if len(entries) > 1 else None}


def parse_block_shape(text: str) -> dict[str, int | None]:
    """ilastik's ``--distributed_block_roi``: an integer (x = y = z) or a dict ``{'x': 256, 'z': 32}``.

    Parameters
    ----------
    text : str
        The option's value.

    Returns
    -------
    dict
        Block edge per axis key (None: the whole axis).

    Raises
    ------
    ExportError
        For anything but a positive integer or such a dict.
    """
    import ast

    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError) as err:
        raise ExportError(
            f"block shape {text!r} must be an integer or a dict like {{'x': 256, 'y': 256}}"
        ) from err
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return {"x": value, "y": value, "z": value}
    if (
        isinstance(value, dict)
        and all(k in "xyztc" and len(k) == 1 for k in value)
        and all(v is None or (isinstance(v, int) and v > 0) for v in value.values())
    ):
        return dict(value)
    raise ExportError(
        f"block shape {text!r} must be a positive integer or a dict with keys from x, y, z, t, c"
    )


def block_chunks(
    axes: str,
    shape: tuple[int, ...],
    block_shape: Mapping[str, int | None] | None,
    n_features: int,
    memory_per_task: int | None,
) -> tuple[int, ...]:
    """Block shape for one input: ilastik's block roi if given, else sized from the memory per task.

    A task holds its feature block and about as much again in temporaries, so the block has
    ``memory_per_task / (8 * n_features)`` pixels, capped at 512^2 in 2D and 64^3 in 3D (larger
    blocks measured slower: the halo is cropped per scale, and smaller blocks stay in cache).

    Parameters
    ----------
    axes : str
        The input's internal axis keys.
    shape : tuple of int
        The input's shape.
    block_shape : mapping, optional
        Block edge per axis key (:func:`parse_block_shape`); None: sized from the memory per task.
    n_features : int
        The largest feature channel count of any stage.
    memory_per_task : int, optional
        Bytes a task may hold (default 512 MiB).

    Returns
    -------
    tuple of int
        The block shape, one edge per axis (t: 1, c: all channels).
    """
    sizes = dict(zip(axes, shape))
    spatial = [k for k in axes if k in "zyx"]
    if block_shape is not None:
        edge = {k: (block_shape.get(k) or sizes[k]) for k in spatial}
    else:
        budget = memory_per_task or 512 * 2**20
        pixels = max(budget // (8 * max(n_features, 1)), 32 ** len(spatial))
        cap = 512 if len(spatial) == 2 else 64
        side = max(32, min(cap, int(pixels ** (1.0 / len(spatial)))))
        edge = dict.fromkeys(spatial, side)
    return tuple(1 if k == "t" else sizes[k] if k == "c" else min(edge[k], sizes[k]) for k in axes)


def check_block_count(path: str, shape: tuple[int, ...], chunks: tuple[int, ...]) -> None:
    """Refuse an input whose blocks are too many to plan (a huge declared shape).

    Parameters
    ----------
    path : str
        The input, for the message.
    shape : tuple of int
        Its shape (internal axes).
    chunks : tuple of int
        Its block shape, one edge per axis.

    Raises
    ------
    DataError
        More than ``MAX_BLOCKS`` blocks.
    """
    count = 1
    for size, edge in zip(shape, chunks, strict=True):
        count *= -(-size // max(edge, 1))
    if count > MAX_BLOCKS:
        raise DataError(
            f"{path}: shape {tuple(shape)} makes {count} blocks of {tuple(chunks)}, more than the "
            f"{MAX_BLOCKS} a run can plan; give larger blocks with --block-shape, or process it in parts"
        )
