"""A batch run's options: ilastik's headless export options, filled in from the project and parsed."""

from __future__ import annotations

import os
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
from ._parse import (
    ILASTIK_BLOCK_ROI,
    block_chunks,
    check_block_count,
    input_axes_fields,
    parse_block_shape,
    parse_input_axes,
)
from .sources import ExportSource, resolve_sources

__all__ = [
    "DEFAULT_FILENAME_FORMAT",
    "ILASTIK_BLOCK_ROI",
    "BatchOptions",
    "block_chunks",
    "check_block_count",
    "export_sources",
    "parse_block_shape",
    "parse_input_axes",
    "refuse_object_options",
    "with_project_settings",
]

DEFAULT_FILENAME_FORMAT = "{dataset_dir}/{nickname}_{result_type}"
#: ilastik's output formats that cascade does not write, and why.
_NOT_RUN = {
    "dvid": "is ilastik's DVID server export, which cascade does not write",
    "blockwise hdf5": "is not implemented in ilastik either",
    "xv": "(ilastik's xv images) is not written by cascade",
}


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
    config_defaults : mapping
        ilastik's config file settings ``OutputFormat`` and ``OutputFilenameFormat`` (from
        ``[ilastik] output_format`` and ``output_filename_format``): below the command line and
        the project's stored settings, above ilastik's built-in defaults, as in ilastik.
    output_dir : str or None
        The folder a relative output file name is taken relative to: None for the working
        directory (a name given on the command line); the project's folder for a name stored in
        the project or the config file (ilastik's ``WorkingDirectory``).
    cutout : (starts, stops) or None
        ``--cutout_subregion``, per axis of the export source (None: from 0 / to the end).
    export_dtype, output_axis_order : str or None
        ``--export_dtype`` and ``--output_axis_order``.
    pipeline_range, export_range : (float, float) or None
        ``--pipeline_result_drange`` and ``--export_drange``.
    input_axes : str or None
        ``--input_axes`` of the raw data (default: the training image's axes where they fit, else
        the file's).
    role_axes : tuple of (str or None) or None
        ilastik's per-role ``--input_axes`` (``"yxc,yx"``: raw data, then the workflow's other roles
        in ilastik's order); None when one value applies to every role (:meth:`axes_of_role`).
    ignore_training_axes : bool
        ``--ignore_training_axistags``: take axes from the files, never from the training images.
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
    tree_count : int or None
        ilastik's ``--tree-count``: a Pixel Classification or Autocontext ``.ilp`` is retrained with
        this many trees, as ilastik's workflow does (Object Classification ignores it, as ilastik).
    object_inputs : mapping
        Object Classification projects: the second input of each ``--raw_data`` by ilastik's role
        option, e.g. ``{"prediction_maps": ("a_Probabilities.h5/exported_data", ...)}``.
    table_filename : str or None
        ``--table_filename``: the object table of each input (CSV, or HDF5 by extension).
    table_only : bool
        ``--table_only``: write the object table and no image.
    distributed : bool
        ilastik's ``--distributed``: n5 blocks are the processing blocks (its block roi).
    """

    export_sources: tuple[str, ...] = ()
    output_format: str | None = None
    output_filename_format: str | None = None
    output_internal_path: str | None = None
    config_defaults: Mapping[str, str] = field(default_factory=dict)
    output_dir: str | None = None
    cutout: Cutout | None = None
    export_dtype: str | None = None
    output_axis_order: str | None = None
    pipeline_range: Range | None = None
    export_range: Range | None = None
    input_axes: str | None = None
    role_axes: tuple[str | None, ...] | None = None
    ignore_training_axes: bool = False
    stack_along: str = "z"
    prediction_masks: tuple[str, ...] = ()
    chunks: tuple[int, ...] | None = None
    block_shape: Mapping[str, int | None] | None = None
    memory_per_task: int | None = None
    retrain: bool = False
    retrain_trees: int = 100
    tree_count: int | None = None
    object_inputs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    table_filename: str | None = None
    table_only: bool = False
    distributed: bool = False

    def __post_init__(self) -> None:
        """Refuse an unknown output format or a file name template that names a folder."""
        name = self.output_format
        if name is not None and name.lower() not in {f.lower() for f in FORMATS}:
            why = _NOT_RUN.get(name.strip().lower())
            what = f"output format {name!r} {why}" if why else f"unknown output format {name!r}"
            raise ExportError(f"{what}; choose from: {', '.join(FORMATS)}")
        template = self.output_filename_format
        if template and template.endswith(("/", "\\")) and not os.path.splitext(template.rstrip("/\\"))[1]:
            # ilastik would write a hidden "<folder>/.h5"; the folder's sibling would be worse
            raise ExportError(
                f"--output_filename_format {template!r} ends with a folder; add a file name, "
                f"e.g. {template}{{nickname}}_{{result_type}}"
            )

    def axes_of_role(self, role: int, n_roles: int) -> str | None:
        """The ``--input_axes`` of ilastik's input role ``role`` (0: raw data).

        One value applies to every role; with several, a role without a value (or ``None``) gets
        its default axes, as in ilastik's ``DataSelectionApplet``.

        Parameters
        ----------
        role : int
            Index of the role in the workflow's role list (ilastik's order).
        n_roles : int
            How many roles the workflow has.

        Returns
        -------
        str or None
            The axes, or None for the default.

        Raises
        ------
        ExportError
            More per-role values than the workflow has roles.
        """
        if self.role_axes is None:
            return self.input_axes
        if len(self.role_axes) > n_roles:
            raise ExportError(
                f"--input_axes gives {len(self.role_axes)} comma-separated values but this project's "
                f"workflow has {n_roles} input roles"
            )
        return self.role_axes[role] if role < len(self.role_axes) else None

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
        input_axes: str | None = None,
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
        input_axes : str, optional
            ilastik's ``--input_axes``: one axis string, or one per role separated by commas
            (:func:`parse_input_axes`).
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
            **input_axes_fields(input_axes),
            **options,
        )


class _Settings(Protocol):
    """Anything that stores ilastik's export settings (a :class:`Cascade`, an object project)."""

    @property
    def export_settings(self) -> Mapping[str, Any]: ...


def with_project_settings(
    options: BatchOptions, cascade: _Settings, project_dir: str | None = None
) -> BatchOptions:
    """Fill the export settings not given from the project's stored ones, then from ilastik's defaults.

    The precedence is ilastik's: command line, project, config file (``config_defaults``),
    built-in default.

    Parameters
    ----------
    options : BatchOptions
        The options of the run.
    cascade : Cascade or ObjectProject
        The project; its ``export_settings`` are those an ``.ilp`` stores.
    project_dir : str, optional
        The project's folder: a relative file name template that did not come from the command
        line is taken relative to it, as ilastik does (``output_dir``).

    Returns
    -------
    BatchOptions
        ``options`` with format (default compressed hdf5), file name template
        (``{dataset_dir}/{nickname}_{result_type}``) and internal path (``exported_data``) set.
    """
    stored = cascade.export_settings

    def pick(value: Any, key: str, default: Any = None) -> Any:
        fallback = options.config_defaults.get(key, default)
        return value if value is not None else stored.get(key, fallback)

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
        output_dir=project_dir if options.output_filename_format is None else None,
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


def refuse_object_options(options: BatchOptions) -> str | None:
    """Refuse Object Classification options (second inputs, ``--table_only``) for a pixel project.

    ``--table_filename`` alone is ignored, as ilastik's pixel workflows ignore it ("Unused
    command-line args"): scripts that pass it to every project keep running.

    Parameters
    ----------
    options : BatchOptions
        The run's options.

    Returns
    -------
    str or None
        A note to show when ``--table_filename`` is ignored.

    Raises
    ------
    ExportError
        Naming the options given.
    """
    flags = [f"--{k}" for k in options.object_inputs]
    flags += ["--table_only"] if options.table_only else []
    if flags:
        raise ExportError(
            f"{', '.join(flags)} apply to ilastik Object Classification projects; "
            "this project is a pixel classifier"
        )
    if options.table_filename:
        return (
            "note: --table_filename is ignored: this project is a pixel classifier, and object "
            "tables come from Object Classification projects (ilastik ignores it too)"
        )
    return None
