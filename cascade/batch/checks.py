"""Checks across a run's jobs (distinct outputs, no overwritten input) and its fingerprints."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ExportError
from ..io import (
    Image,
    PreparedExport,
    check_overwrites,
    check_target,
    format_filename,
    format_placeholders,
    is_url,
    output_path,
    placeholders,
)

if TYPE_CHECKING:
    from .options import BatchOptions
    from .plan import _Job


class _Output(Protocol):
    @property
    def source(self) -> str: ...
    @property
    def outputs(self) -> tuple[str, ...]: ...


class _Planned(Protocol):
    """A planned job of any project kind: its input path and its exports."""

    @property
    def path(self) -> str: ...
    @property
    def exports(self) -> Sequence[_Output]: ...


def _identity(path: str) -> list[Any]:
    """A file's (or folder's) identity for resume fingerprints: path, size, modification time."""
    real = path
    while real and not os.path.exists(real):  # strip internal paths such as file.h5/data
        real = os.path.dirname(real)
    try:
        info = os.stat(real)
    except OSError:
        return [path]
    return [os.path.abspath(path), info.st_size, info.st_mtime_ns]


def _fingerprint_base(project: str | Path, options: BatchOptions) -> str:
    settings = {k: v for k, v in asdict(options).items() if k != "memory_per_task"}
    return json.dumps([_identity(str(project)), settings], sort_keys=True, default=str)


def _fingerprint(base: str, files: Sequence[str], source: str, target: str, internal: str) -> str:
    """Same project, inputs, options and export: same fingerprint (so an interrupted run resumes)."""
    text = json.dumps([base, [_identity(f) for f in files], source, target, internal], default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_overwrites(jobs: Sequence[_Job], project: str | Path, fmt: str) -> None:
    """Refuse an output that is (or is inside, or holds) an input, a mask or the project."""
    reads = [(str(project), f"the project {project}")]
    for job in jobs:
        names = list(job.input.image.files) + ([job.input.mask_path] if job.input.mask_path else [])
        reads += [(name, f"the input {name}") for name in names]
    outputs = [
        (output, output_path(export.target, fmt))
        for job in jobs
        for export in job.exports
        for output in export.outputs
    ]
    check_overwrites(outputs, reads)


def _scratch_dir(base: str, inputs: Sequence[str]) -> str:
    """The run's scratch folder (created when a stage is first stored there): in the working
    directory, shared with cluster workers, else in the system's temp folder; named after the
    job, so that the same command finds it again."""
    key = hashlib.sha256(json.dumps([base, [_identity(p) for p in inputs]]).encode()).hexdigest()[:16]
    for where in (".", tempfile.gettempdir()):
        if os.access(where, os.W_OK):
            return os.path.join(os.path.abspath(where), f".cascade-scratch-{key}")
    raise ExportError("neither the working directory nor the temp folder is writable for scratch files")


def _check_distinct(jobs: Sequence[_Job] | Sequence[_Planned]) -> None:
    """Refuse to run when two exports would write the same output (the second would replace the first)."""
    seen: dict[str, str] = {}
    for job in jobs:
        for export in job.exports:
            what = f"{export.source!r} of {job.path}"
            for output in map(os.path.realpath, export.outputs):
                if output in seen:
                    raise ExportError(
                        f"{what} and {seen[output]} would both be written to {output}; put {{nickname}} "
                        "and {result_type} in --output_filename_format"
                    )
                seen[output] = what


def _slice_offset(prepared: PreparedExport) -> int:
    """Cutout start along the axis a sequence format steps over (first non-y/x/c axis longer than 1)."""
    for key, size in zip(prepared.axes, prepared.data.shape):
        if key not in "yxc" and size > 1:
            return prepared.lo[prepared.source_axes.index(key)] if key in prepared.source_axes else 0
    return 0


def _export_target(
    prepared: PreparedExport,
    image: Image,
    source: str,
    options: BatchOptions,
    base: str,
    files: Sequence[str],
) -> tuple[str, str, tuple[str, ...], str]:
    """Output file, internal path, checked output paths and resume fingerprint of one export."""
    values = placeholders(
        dataset_dir=image.dataset_dir,
        nickname=image.nickname,
        result_type=source,
        axes=prepared.source_axes,
        lo=prepared.lo,
        hi=prepared.hi,
    )
    target = format_filename(str(options.output_filename_format), values)
    if options.output_dir and not is_url(target):  # a stored relative name: the project's folder
        target = os.path.join(options.output_dir, target)
    internal = format_placeholders(str(options.output_internal_path), values)
    outputs = check_target(
        prepared.data,
        target,
        format=str(options.output_format),
        axes=prepared.axes,
        internal_path=internal,
        slice_offset=_slice_offset(prepared),
    )
    return target, internal, tuple(outputs), _fingerprint(base, files, source, target, internal)
