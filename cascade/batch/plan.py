"""One input's plan: open and check it, build its lazy stage graph and exports, then write them."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..axes import to_internal
from ..errors import DataError, FeatureSelectionError
from ..io import (
    Image,
    PreparedExport,
    export_error,
    is_url,
    open_image,
    output_path,
    prepare_export,
    resumable_blocks,
    write_image,
)
from ..pipeline import Cascade, StageResult, predict
from ..progress import progress_label
from .checks import _export_target, _slice_offset
from .options import ILASTIK_BLOCK_ROI, BatchOptions, block_chunks, check_block_count
from .sources import ExportSource, source_array

#: ilastik's input roles of Pixel Classification and Autocontext: Raw Data, Prediction Mask.
_PIXEL_ROLES = 2


@dataclass(frozen=True)
class _Export:
    source: str
    prepared: PreparedExport
    target: str
    internal_path: str
    outputs: tuple[str, ...]
    fingerprint: str


@dataclass(frozen=True)
class _Input:
    """One opened input in internal axis order, with the block shape chosen for it."""

    path: str
    image: Image
    raw: Any
    axes: str
    chunks: tuple[int, ...]
    mask_path: str | None


@dataclass(frozen=True)
class _Job:
    """The checked exports of one input, ready to compute and write."""

    cascade: Cascade
    input: _Input
    options: BatchOptions
    sources: tuple[ExportSource, ...]
    exports: tuple[_Export, ...]

    @property
    def path(self) -> str:
        return self.input.path

    @property
    def stages(self) -> int:
        """How many stages the exports need."""
        n = len(self.cascade.stages)
        # "Input" is the raw image and batch "Labels" are empty: no stage needs computing
        return max(
            (s.stage if s.stage > 0 else n) if s.kind not in ("Input", "Labels") else 1 for s in self.sources
        )

    @property
    def kept_stages(self) -> set[int]:
        """0-based stages whose probabilities are stored for the exports (computed once).

        Those two or more exports read, and those an export reads that a later stage reads too
        (the later stage alone would store only its input, the converted probabilities).
        """
        readers = [0] * len(self.cascade.stages)
        for source in self.sources:
            if source.stage == 0:
                readers = [r + 1 for r in readers]
            elif source.kind in ("Probabilities", "Simple Segmentation", "Uncertainty"):
                readers[source.stage - 1] += 1
        return {k for k, r in enumerate(readers) if r > 1 or (r == 1 and k + 1 < self.stages)}

    @property
    def needs_scratch(self) -> bool:
        return self.stages > 1 or bool(self.kept_stages)

    def write(self, scratch: str | None, echo: Callable[[str], None] = print) -> list[str]:
        """Compute the stages (stored ones into ``scratch``) and stream every export to disk."""
        exports = self.exports
        if scratch is not None:
            region = _region(exports[0].prepared) if self.options.cutout else None
            try:
                results = _results(
                    self.cascade, self.input, self.options, scratch, region, self.kept_stages, self.stages
                )
            except OSError as err:
                raise export_error(err, scratch) from err
            # same sources, names and checks as planned: only the arrays now read stored stages
            exports = tuple(
                replace(export, prepared=_prepare(source, results, self.input, self.options))
                for source, export in zip(self.sources, self.exports, strict=True)
            )
        written = []
        for export in exports:
            container = output_path(export.target, self.options.output_format or "")
            done = resumable_blocks(container, export.fingerprint)
            if done:
                echo(f"resuming {container}: {done} block(s) were written by an interrupted run")
            with progress_label(os.path.basename(container)):
                written.extend(
                    write_image(
                        export.prepared.data,
                        export.target,
                        format=str(self.options.output_format),
                        axes=export.prepared.axes,
                        internal_path=export.internal_path,
                        slice_offset=_slice_offset(export.prepared),
                        resume=export.fingerprint,
                        blocks=_stored_blocks(export.prepared, self.options),
                    )
                )
        return written


def _stored_blocks(prepared: PreparedExport, options: BatchOptions) -> tuple[int, ...] | None:
    """ilastik's ``--distributed`` n5 blocks: its block roi (x, y, z default 256, t 1, c all), clamped."""
    if not options.distributed:
        return None
    roi = dict(options.block_shape or {})
    default = {"t": 1, "x": ILASTIK_BLOCK_ROI, "y": ILASTIK_BLOCK_ROI, "z": ILASTIK_BLOCK_ROI}
    return tuple(
        size if key == "c" else min(size, (roi[key] or size) if key in roi else default[key])
        for key, size in zip(prepared.axes, prepared.data.shape, strict=True)
    )


def _region(prepared: PreparedExport) -> tuple[slice, ...]:
    """The cutout of an export as a region of the stage outputs (every channel)."""
    return tuple(
        slice(None) if key == "c" else slice(lo, hi)
        for key, lo, hi in zip(prepared.source_axes, prepared.lo, prepared.hi, strict=True)
    )


def _open_input(cascade: Cascade, path: str, mask_path: str | None, options: BatchOptions) -> _Input:
    """Open one input lazily, in internal axes, and check it against the project."""
    # ilastik reuses the training image's axes for batch files; for a stack, for each file
    trained = None if options.ignore_training_axes else cascade.input_axes
    axes = options.axes_of_role(0, _PIXEL_ROLES)
    image = open_image(path, axes=axes, stack_along=options.stack_along, file_axes=trained)
    raw, axes = to_internal(image.data, image.axes)
    if (
        raw.shape[axes.index("c")] != cascade.raw_channels
        or "".join(k for k in axes if k in "zyx") != cascade.spatial_axes
    ):
        raise DataError(
            f"{path}: the project expects {cascade.raw_channels} channel(s) of {cascade.spatial_axes!r} data "
            f"but the input has shape {image.shape} with axes {image.axes!r}"
            + (" (axes guessed; set --input_axes)" if image.axes_guessed else "")
        )
    chunks = options.chunks or block_chunks(
        axes, raw.shape, options.block_shape, _widest_stage(cascade, raw.shape, axes), options.memory_per_task
    )
    check_block_count(path, raw.shape, chunks)
    return _Input(path, image, raw, axes, chunks, mask_path)


def _results(
    cascade: Cascade,
    item: _Input,
    options: BatchOptions,
    scratch: str | None = None,
    region: tuple[slice, ...] | None = None,
    keep: set[int] | None = None,
    stages: int | None = None,
) -> list[StageResult]:
    """The stage outputs of one input: lazy, or with stored stages when ``scratch`` is given."""
    results = predict(
        cascade,
        item.raw,
        axes=item.axes,
        chunks=item.chunks,
        stages=stages,
        scratch=scratch,
        region=region,
        keep=keep or (),
    )
    if item.mask_path is not None:
        results = [_masked(results[0], item.mask_path, options, item.raw.shape, item.axes)]
    return results


def _prepare(
    source: ExportSource, results: Sequence[StageResult], item: _Input, options: BatchOptions
) -> PreparedExport:
    """One export source's array: cutout, normalisation, dtype and axis order applied."""
    return prepare_export(
        source_array(source, results),
        item.axes,
        original_axes=item.image.axes,
        **options.export_steps(),
    )


def _exports(
    results: Sequence[StageResult],
    item: _Input,
    options: BatchOptions,
    sources: Sequence[ExportSource],
    base: str,
) -> tuple[_Export, ...]:
    """Prepare every requested export of one input and check its output (nothing is written)."""
    exports = []
    for source in sources:
        prepared = _prepare(source, results, item, options)
        target, internal, outputs, fingerprint = _export_target(
            prepared, item.image, source.name, options, base, item.image.files
        )
        exports.append(_Export(source.name, prepared, target, internal, outputs, fingerprint))
    return tuple(exports)


def _plan(
    cascade: Cascade,
    path: str,
    mask_path: str | None,
    options: BatchOptions,
    sources: Sequence[ExportSource],
    base: str = "",
    project_dir: str | None = None,
) -> _Job:
    """Open and check one input and prepare and check its exports (nothing is computed or written).

    ``{dataset_dir}`` of an input read from a URL is ``project_dir``: ilastik gives remote
    datasets the project's folder as their default output folder.
    """
    item = _open_input(cascade, path, mask_path, options)
    if project_dir is not None and is_url(item.image.path):
        item = replace(item, image=replace(item.image, dataset_dir=project_dir))
    try:
        results = _results(cascade, item, options)
    except FeatureSelectionError as err:  # a scale too large for this input (ilastik's size rule)
        raise FeatureSelectionError(f"{path}: {err}") from err
    exports = _exports(results, item, options, sources, base)
    return _Job(cascade, item, options, tuple(sources), exports)


def _widest_stage(cascade: Cascade, shape: tuple[int, ...], axes: str) -> int:
    """The largest feature channel count of any stage for this input."""
    z = shape[axes.index("z")] if "z" in axes else None
    return max(
        stage.selection.n_channels(cascade.input_channels(k), z) for k, stage in enumerate(cascade.stages)
    )


def _masked(
    result: StageResult, mask_path: str, options: BatchOptions, shape: tuple[int, ...], axes: str
) -> StageResult:
    """ilastik's prediction mask: probabilities are zero wherever every mask channel is 0."""
    given = options.axes_of_role(1, _PIXEL_ROLES)
    mask_image = open_image(mask_path, axes=given, stack_along=options.stack_along)
    mask, mask_axes = to_internal(mask_image.data, mask_image.axes)
    if mask_axes != axes or mask.shape[:-1] != shape[:-1]:
        raise DataError(
            f"prediction mask {mask_path} has shape {mask_image.shape} (axes {mask_image.axes!r}) "
            f"but the input has shape {shape} (axes {axes!r})"
        )
    keep = (mask > 0).any(axis=-1, keepdims=True).rechunk(result.probabilities.chunks[:-1] + ((1,),))
    probabilities = (result.probabilities * keep).astype("float32")
    return replace(result, probabilities=probabilities)
