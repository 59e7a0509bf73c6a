"""Internal (dataset) paths of hdf5, n5 and zarr outputs: names inside one container.

An internal path is checked once, for every format, before anything is computed or
written: its parts are joined to the container's folder by the n5 and zarr writers, so a
``..``, an empty part or a backslash could otherwise reach outside the output.
"""

from __future__ import annotations

import os

from ..errors import ExportError

__all__ = ["check_inside", "dataset_parts"]


def dataset_parts(internal: str, container: str, what: str = "HDF5") -> list[str]:
    """The parts of the internal path ``internal`` of an output ``container``, checked.

    One leading ``/`` (the container's root, as in ``/exported_data``) is allowed.

    Parameters
    ----------
    internal : str
        The dataset path, e.g. ``exported_data`` or ``predictions/stage2``.
    container : str
        The output file or folder (for messages).
    what : str
        The format (for messages).

    Returns
    -------
    list of str
        The non-empty parts, none of them ``.`` or ``..``.

    Raises
    ------
    ExportError
        If the path is empty, or has an empty, ``.`` or ``..`` part, a backslash or a NUL.
    """
    text = str(internal)
    if not text.strip("/"):
        raise ExportError(f"cannot write {container}: {what} output needs an internal path")
    body = text[1:] if text.startswith("/") else text
    parts = body.split("/")
    bad = next(
        (p for p in parts if p in ("", ".", "..") or "\\" in p or "\0" in p),
        None,
    )
    if bad is not None:
        shown = "an empty part" if bad == "" else f"the part {bad!r}"
        raise ExportError(
            f"output internal path {text!r} has {shown}; it must name a dataset inside {container} "
            "with parts separated by single '/' (no '..', '.', empty parts or backslashes)"
        )
    return parts


def check_inside(path: str, container: str) -> None:
    """Raise :class:`ExportError` unless ``path`` resolves (symlinks followed) inside ``container``."""
    root = os.path.realpath(container)
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root:
        raise ExportError(f"cannot write {path}: it resolves to {real}, outside the output {container}")
