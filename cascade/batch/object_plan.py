"""One input of an Object Classification run: open and check its two inputs, plan and check its exports.

Everything here is checked before anything is computed: the second input of each raw image
(``--prediction_maps``, ``--segmentation_image`` or ``--label_image``, one per ``--raw_data``),
the shapes (raw and second input agree in t, z, y, x), the channels (raw = training channels,
a prediction map at least the channels thresholding reads), the export sources and every output
name. The exports are planned on placeholder arrays of the final shape, dtype and chunks; the
objects and their tables are computed only when the job is written (:mod:`.object_run`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dask.array as da
import numpy as np

from ..axes import to_internal
from ..errors import DataError, ExportError
from ..io import (
    Image,
    PreparedExport,
    format_filename,
    open_image,
    placeholders,
    prepare_export,
)
from ..project import ObjectProject
from .checks import _export_target
from .options import BatchOptions, block_chunks, check_block_count
from .sources import ExportSource

#: ilastik's role name -> its command-line option (without ``--``).
ROLE_OPTIONS = {
    "Prediction Maps": "prediction_maps",
    "Segmentation Image": "segmentation_image",
    "Label Image": "label_image",
}
#: Export sources that need the object classifier.
NEEDS_CLASSIFIER = (
    "Object Predictions",
    "Object Probabilities",
    "Blockwise Object Predictions",
    "Blockwise Object Probabilities",
)


@dataclass(frozen=True)
class ObjectInput:
    """One input in internal axis order: the raw image and (except PC+OC) the second input."""

    path: str
    image: Image
    raw: da.Array
    axes: str
    chunks: tuple[int, ...]
    second: Image | None
    second_data: da.Array | None
    atlas: Image | None = None
    atlas_data: da.Array | None = None

    @property
    def files(self) -> tuple[str, ...]:
        """Every file the input reads."""
        others = [i for i in (self.second, self.atlas) if i is not None]
        return self.image.files + tuple(f for i in others for f in i.files)


@dataclass(frozen=True)
class ObjectExport:
    """One planned export: its source, planned array (placeholder), target and fingerprint."""

    source: str
    prepared: PreparedExport
    target: str
    internal_path: str
    outputs: tuple[str, ...]
    fingerprint: str


def second_inputs(project: ObjectProject, options: BatchOptions, n_raw: int) -> list[str | None]:
    """The second input of each raw image, checked against the project's workflow.

    Parameters
    ----------
    project : ObjectProject
        The project.
    options : BatchOptions
        The run's options (``object_inputs``).
    n_raw : int
        Number of ``--raw_data`` inputs.

    Returns
    -------
    list of str or None
        One per raw input (None for PC+OC).

    Raises
    ------
    DataError
        A missing or foreign role, or a different number of files than ``--raw_data``.
    """
    wanted = ROLE_OPTIONS.get(project.second_role or "")
    reads = "--raw_data" + (f" and --{wanted}" if wanted else " only")
    foreign = [k for k in options.object_inputs if k not in (wanted, "atlas")]
    if foreign:
        raise DataError(
            f"--{foreign[0]} does not apply to this project ({project.workflow}); it reads {reads}"
        )
    if wanted is None:
        return [None] * n_raw
    given = options.object_inputs.get(wanted, ())
    if not given:
        raise DataError(f"this project ({project.workflow}) needs --{wanted}, one per --raw_data")
    if len(given) != n_raw:
        raise DataError(f"{n_raw} --raw_data input(s) but {len(given)} --{wanted} input(s); give one each")
    return list(given)


def atlas_inputs(options: BatchOptions, n_raw: int) -> list[str | None]:
    """The ``--atlas`` of each raw image (None without ``--atlas``).

    Parameters
    ----------
    options : BatchOptions
        The run's options (``object_inputs["atlas"]``).
    n_raw : int
        Number of ``--raw_data`` inputs.

    Returns
    -------
    list of str or None
        One per raw input.

    Raises
    ------
    DataError
        A different number of atlases than ``--raw_data``.
    """
    given = options.object_inputs.get("atlas", ())
    if not given:
        return [None] * n_raw
    if len(given) != n_raw:
        raise DataError(f"{n_raw} --raw_data input(s) but {len(given)} --atlas input(s); give one each")
    return list(given)


def _open(
    path: str, options: BatchOptions, file_axes: str | None, role: tuple[int, int]
) -> tuple[Image, da.Array, str]:
    """Open one input of ilastik's role ``role`` = (index, number of roles)."""
    trained = None if options.ignore_training_axes else file_axes
    axes = options.axes_of_role(*role)
    image = open_image(path, axes=axes, stack_along=options.stack_along, file_axes=trained)
    data, axes = to_internal(image.data, image.axes)
    return image, data, axes


def _shape_text(shape: Sequence[int], axes: str) -> str:
    return ", ".join(f"{k}={n}" for k, n in zip(axes, shape, strict=True) if k != "c")


def open_object_input(
    project: ObjectProject,
    path: str,
    second_path: str | None,
    options: BatchOptions,
    atlas_path: str | None = None,
) -> ObjectInput:
    """Open one raw image (and its second input) lazily and check them against the project.

    Parameters
    ----------
    project : ObjectProject
        The project.
    path, second_path : str
        The raw image and its second input (None for PC+OC).
    options : BatchOptions
        The run's options.
    atlas_path : str, optional
        Its ``--atlas`` image.

    Returns
    -------
    ObjectInput
        The opened input.

    Raises
    ------
    DataError
        Wrong raw channel count or dimensions, or a second input or atlas that does not match the raw image.
    """
    stage = project.stage
    # ilastik's roles: Raw Data, the second input (if any), Atlas
    n_roles = 3 if project.second_role else 2
    image, raw, axes = _open(path, options, project.raw_axes, (0, n_roles))
    channels = raw.shape[-1]
    spatial = "".join(k for k in axes if k in "zyx")
    if channels != stage.raw_channels or spatial != stage.spatial_axes:
        raise DataError(
            f"{path}: the project was trained on {stage.raw_channels} channel(s) of {stage.spatial_axes!r} "
            f"data but the input has shape {image.shape} with axes {image.axes!r}"
            + (" (axes guessed; set --input_axes)" if image.axes_guessed else "")
        )
    width = max(8 * channels, 16)
    chunks = options.chunks or block_chunks(
        axes, raw.shape, options.block_shape, width, options.memory_per_task
    )
    check_block_count(path, raw.shape, chunks)
    second, data = None, None
    if second_path is not None:
        second, data, second_axes = _open(second_path, options, project.second_axes, (1, n_roles))
        role = project.second_role or "second input"
        if second_axes != axes or data.shape[:-1] != raw.shape[:-1]:
            raise DataError(
                f"{second_path}: the {role.lower()} has {_shape_text(data.shape, second_axes)} but the raw "
                f"data {path} has {_shape_text(raw.shape, axes)}; they must agree in t, z, y and x"
            )
        needed = stage.threshold.channels_needed if stage.threshold is not None else 1
        if data.shape[-1] < needed:
            raise DataError(
                f"{second_path}: thresholding reads channel {needed - 1} of the prediction map, "
                f"which has {data.shape[-1]} channel(s)"
            )
        data = data.rechunk(chunks[:-1] + (data.shape[-1],))
    atlas, atlas_data = None, None
    if atlas_path is not None:
        atlas, atlas_data, atlas_axes = _open(atlas_path, options, None, (n_roles - 1, n_roles))
        if atlas_axes != axes or atlas_data.shape[:-1] != raw.shape[:-1]:
            raise DataError(
                f"{atlas_path}: the atlas has {_shape_text(atlas_data.shape, atlas_axes)} but the raw "
                f"data {path} has {_shape_text(raw.shape, axes)}; they must agree in t, z, y and x"
            )
    return ObjectInput(path, image, raw.rechunk(chunks), axes, chunks, second, data, atlas, atlas_data)


def source_layout(project: ObjectProject, source: str) -> tuple[int, np.dtype]:
    """(channels, dtype) of an object export source.

    Parameters
    ----------
    project : ObjectProject
        The project.
    source : str
        An export source name.

    Returns
    -------
    int, numpy.dtype
        Its channel count and dtype.
    """
    if source.endswith("Probabilities") and source != "Pixel Probabilities":
        return project.stage.n_classes, np.dtype(np.float32)
    if source == "Pixel Probabilities":
        classes = project.pixels.stages[-1].n_classes if project.pixels is not None else 0
        return classes, np.dtype(np.float32)
    if source == "Object Identities":
        return 1, np.dtype(np.uint32)
    return 1, np.dtype(np.uint8)


def prepare_object_export(array: da.Array, item: ObjectInput, options: BatchOptions) -> PreparedExport:
    """Cutout, normalisation, dtype and axis order of one export image (internal axes of the input).

    Parameters
    ----------
    array : dask.array.Array
        The image, axes ``item.axes``, chunked like the input (all channels in one chunk).
    item : ObjectInput
        The input.
    options : BatchOptions
        The run's options.

    Returns
    -------
    PreparedExport
        Ready to write.
    """
    return prepare_export(
        array.rechunk(item.chunks[:-1] + (array.shape[-1],)),
        item.axes,
        original_axes=item.image.axes,
        **options.export_steps(),
    )


def plan_exports(
    project: ObjectProject,
    item: ObjectInput,
    options: BatchOptions,
    sources: Sequence[ExportSource],
    base: str,
) -> tuple[ObjectExport, ...]:
    """Plan and check every export of one input on placeholder arrays (nothing is computed).

    Parameters
    ----------
    project : ObjectProject
        The project.
    item : ObjectInput
        The input.
    options : BatchOptions
        The run's options.
    sources : sequence of ExportSource
        The export sources.
    base : str
        The run's fingerprint base.

    Returns
    -------
    tuple of ObjectExport
        The checked exports.
    """
    exports = []
    for source in sources:
        channels, dtype = source_layout(project, source.name)
        shape = item.raw.shape[:-1] + (channels,)
        placeholder = da.zeros(shape, dtype=dtype, chunks=item.chunks[:-1] + (channels,))
        prepared = prepare_object_export(placeholder, item, options)
        target, internal, outputs, fingerprint = _export_target(
            prepared, item.image, source.name, options, base, item.files
        )
        exports.append(ObjectExport(source.name, prepared, target, internal, outputs, fingerprint))
    return tuple(exports)


def table_target(project: ObjectProject, item: ObjectInput, options: BatchOptions) -> str | None:
    """The object table file of one input (placeholders filled), or None when no table is asked for.

    ``--table_filename`` wins over the path the project's table settings store; ilastik writes
    the table only for projects whose table export was configured in its GUI, cascade also for
    the others when ``--table_filename`` is given (with every selected feature).

    Parameters
    ----------
    project : ObjectProject
        The project.
    item : ObjectInput
        The input.
    options : BatchOptions
        The run's options.

    Returns
    -------
    str or None
        The table file name as ilastik formats it (before the CSV ``_table`` suffix).

    Raises
    ------
    ExportError
        ``--table_only`` without any table file name.
    """
    stored = project.stage.table_settings.get("file path")
    template = options.table_filename or (str(stored) if stored else None)
    if template is None:
        if options.table_only:
            raise ExportError("--table_only needs --table_filename (the project configures no table export)")
        return None
    values = placeholders(
        dataset_dir=item.image.dataset_dir,
        nickname=item.image.nickname,
        result_type="table",
        axes="",
        lo=(),
        hi=(),
    )
    return format_filename(template, values)
