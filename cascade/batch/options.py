"""A batch run's options: ilastik's headless export options, filled in from the project and parsed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..errors import ExportError
from ..io import (
    FORMATS,
    dataset_parts,
    parse_cutout,
    parse_range,
)
from ..pipeline import Cascade
from .sources import ExportSource, resolve_sources

__all__ = [
    "DEFAULT_FILENAME_FORMAT",
    "BatchOptions",
    "block_chunks",
    "export_sources",
    "parse_block_shape",
    "refuse_object_options",
    "with_project_settings",
]

DEFAULT_FILENAME_FORMAT = "{dataset_dir}/{nickname}_{result_type}"


Cutout = tuple[tuple[int | None, ...], tuple[int | None, ...]]
Range = tuple[float, float]


@dataclass(frozen=True)
class BatchOptions:
    """ilastik's headless export options, parsed and checked once (see :meth:`from_text`).

    Unset (None) export settings are filled in from the project, then from ilastik's defaults, by
    :func:`with_project_settings`.

    Attributes
    ----------
    export_sources : tuple of str
        ``--export_source`` names, matched to the project's sources when the run starts.
    output_format, output_filename_format, output_internal_path : str or None
        ilastik's ``--output_format`` (one of :data:`cascade.io.FORMATS`, any case), file name
        template and internal dataset path.
    cutout : (starts, stops) or None
        ``--cutout_subregion``, per axis of the export source (None: from 0 / to the end).
    export_dtype, output_axis_order : str or None
        ``--export_dtype`` and ``--output_axis_order``.
    pipeline_range, export_range : (float, float) or None
        ``--pipeline_result_drange`` and ``--export_drange``.
    input_axes : str or None
        ``--input_axes`` (default: the file's or the training image's axes).
    stack_along : str
        Axis a glob stack is stacked along.
    prediction_masks : tuple of str
        One mask per input (Pixel Classification projects only).
    chunks : tuple of int or None
        Block shape in internal axis order; wins over ``block_shape``.
    block_shape : mapping or None
        ``--distributed_block_roi``: block edge per axis (:func:`parse_block_shape`).
    memory_per_task : int or None
        Bytes a task may hold, which sizes the blocks when no block shape is given.
    retrain : bool
        Train an ``.ilp``'s forests from its stored labels even when it stores forests.
    retrain_trees : int
        Trees per stage when an ``.ilp`` is trained.
    object_inputs : mapping
        Object Classification projects: the second input of each ``--raw_data`` by ilastik's role
        option, e.g. ``{"prediction_maps": ("a_Probabilities.h5/exported_data", ...)}``.
    table_filename : str or None
        ``--table_filename``: the object table of each input (CSV, or HDF5 by extension).
    table_only : bool
        ``--table_only``: write the object table and no image.
    """

    export_sources: tuple[str, ...] = ()
    output_format: str | None = None
    output_filename_format: str | None = None
    output_internal_path: str | None = None
    cutout: Cutout | None = None
    export_dtype: str | None = None
    output_axis_order: str | None = None
    pipeline_range: Range | None = None
    export_range: Range | None = None
    input_axes: str | None = None
    stack_along: str = "z"
    prediction_masks: tuple[str, ...] = ()
    chunks: tuple[int, ...] | None = None
    block_shape: Mapping[str, int | None] | None = None
    memory_per_task: int | None = None
    retrain: bool = False
    retrain_trees: int = 100
    object_inputs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    table_filename: str | None = None
    table_only: bool = False

    def __post_init__(self) -> None:
        """Refuse an unknown output format, whether given or taken from the project."""
        name = self.output_format
        if name is not None and name.lower() not in {f.lower() for f in FORMATS}:
            raise ExportError(f"unknown output format {name!r}; choose from: {', '.join(FORMATS)}")

    def export_steps(self) -> dict[str, Any]:
        """The keyword arguments of :func:`cascade.io.prepare_export` these options set.

        Returns
        -------
        dict
            ``cutout``, ``dtype``, ``pipeline_range``, ``export_range`` and ``axis_order``.
        """
        return {
            "cutout": self.cutout,
            "dtype": self.export_dtype,
            "pipeline_range": self.pipeline_range,
            "export_range": self.export_range,
            "axis_order": self.output_axis_order,
        }

    @classmethod
    def from_text(
        cls,
        *,
        cutout_subregion: str | None = None,
        pipeline_result_drange: str | None = None,
        export_drange: str | None = None,
        block_shape: str | None = None,
        **options: Any,
    ) -> BatchOptions:
        """The options of a command line: the text-valued ones parsed, the others as given.

        Parameters
        ----------
        cutout_subregion : str, optional
            ilastik's ``--cutout_subregion``, e.g. ``"[(0, 0, None), (100, 200, None)]"``.
        pipeline_result_drange, export_drange : str, optional
            ilastik's data ranges, e.g. ``"(0.0, 1.0)"``.
        block_shape : str, optional
            ilastik's ``--distributed_block_roi``: an integer or a dict such as ``"{'x': 256}"``.
        **options
            The other fields of :class:`BatchOptions`.

        Returns
        -------
        BatchOptions
            The checked options.

        Raises
        ------
        ExportError
            A value that does not parse, or an unknown output format.
        """
        return cls(
            cutout=parse_cutout(cutout_subregion) if cutout_subregion else None,
            pipeline_range=(
                parse_range(pipeline_result_drange, "pipeline result range")
                if pipeline_result_drange
                else None
            ),
            export_range=parse_range(export_drange, "export range") if export_drange else None,
            block_shape=parse_block_shape(block_shape) if block_shape else None,
            **options,
        )


class _Settings(Protocol):
    """Anything that stores ilastik's export settings (a :class:`Cascade`, an object project)."""

    @property
    def export_settings(self) -> Mapping[str, Any]: ...


def with_project_settings(options: BatchOptions, cascade: _Settings) -> BatchOptions:
    """Fill the export settings not given from the project's stored ones, then from ilastik's defaults.

    Parameters
    ----------
    options : BatchOptions
        The options of the run.
    cascade : Cascade or ObjectProject
        The project; its ``export_settings`` are those an ``.ilp`` stores.

    Returns
    -------
    BatchOptions
        ``options`` with format (default compressed hdf5), file name template
        (``{dataset_dir}/{nickname}_{result_type}``) and internal path (``exported_data``) set.
    """
    stored = cascade.export_settings

    def pick(value: Any, key: str, default: Any = None) -> Any:
        return value if value is not None else stored.get(key, default)

    cutout = options.cutout
    if cutout is None and ("RegionStart" in stored or "RegionStop" in stored):
        starts, stops = stored.get("RegionStart"), stored.get("RegionStop")
        if starts and stops:
            cutout = parse_cutout(str([tuple(starts), tuple(stops)]))
    pipeline_range, export_range = options.pipeline_range, options.export_range
    if pipeline_range is None and "InputMin" in stored and "InputMax" in stored:
        pipeline_range = parse_range(f"({stored['InputMin']}, {stored['InputMax']})", "pipeline result range")
    if export_range is None and "ExportMin" in stored and "ExportMax" in stored:
        export_range = parse_range(f"({stored['ExportMin']}, {stored['ExportMax']})", "export range")
    return replace(
        options,
        output_format=pick(options.output_format, "OutputFormat", "compressed hdf5"),
        output_filename_format=pick(
            options.output_filename_format, "OutputFilenameFormat", DEFAULT_FILENAME_FORMAT
        ),
        output_internal_path=pick(options.output_internal_path, "OutputInternalPath", "exported_data"),
        export_dtype=pick(options.export_dtype, "ExportDtype"),
        output_axis_order=pick(options.output_axis_order, "OutputAxisOrder"),
        cutout=cutout,
        pipeline_range=pipeline_range,
        export_range=export_range,
    )


def export_sources(options: BatchOptions, cascade: Cascade) -> list[ExportSource]:
    """Check the options against the project; the export sources they ask for.

    Parameters
    ----------
    options : BatchOptions
        The options, with the project's settings filled in.
    cascade : Cascade
        The project.

    Returns
    -------
    list of ExportSource
        The requested sources (default: ilastik's first).

    Raises
    ------
    ExportError
        Masks for an autocontext, an invalid internal path, or an unknown export source.
    """
    if options.prediction_masks and len(cascade.stages) > 1:
        raise ExportError("prediction masks apply to Pixel Classification projects only (as in ilastik)")
    fmt = str(options.output_format).lower()
    internal = str(options.output_internal_path)
    if (fmt.endswith(("hdf5", "n5")) or fmt == "zarr") and "{" not in internal:
        # with placeholders it is checked once they are filled in (still before anything is computed)
        dataset_parts(internal, "the output", fmt)
    return resolve_sources(options.export_sources, len(cascade.stages))


def refuse_object_options(options: BatchOptions) -> None:
    """Refuse Object Classification options (second inputs, tables) for a pixel classification project.

    Parameters
    ----------
    options : BatchOptions
        The run's options.

    Raises
    ------
    ExportError
        Naming the options given.
    """
    flags = [f"--{k}" for k in options.object_inputs]
    flags += ["--table_filename"] if options.table_filename else []
    flags += ["--table_only"] if options.table_only else []
    if flags:
        raise ExportError(
            f"{', '.join(flags)} apply to ilastik Object Classification projects; "
            "this project is a pixel classifier"
        )


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
