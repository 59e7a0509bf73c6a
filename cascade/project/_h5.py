"""Small helpers for reading ilastik's HDF5 values: strings stored as bytes, numbered keys, whole datasets."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from typing import Any

import h5py
import numpy as np

from ..errors import ProjectError
from ..io import read_hdf5_checked

__all__ = ["feature_name", "numbered", "read_stored", "text", "texts"]


def text(value: Any) -> str:
    """A stored scalar as str: utf-8 bytes are decoded, 0-d arrays unwrapped."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def texts(values: Iterable[Any]) -> tuple[str, ...]:
    """A stored 1-d string array as a tuple of str."""
    return tuple(text(v) for v in np.ravel(np.asarray(values, dtype=object)))


def feature_name(name: str) -> str:
    """Repair names that some ilastik 1.3 versions stored as the repr of bytes (``"b'...'"``)."""
    if len(name) > 2 and name[0] == "b" and name[1] in "'\"" and name[-1] == name[1]:
        try:
            raw = ast.literal_eval(name)
        except (ValueError, SyntaxError):
            return name
        if isinstance(raw, bytes):
            return raw.decode("utf-8", errors="replace")
    return name


def numbered(keys: Sequence[str], prefix: str) -> list[str]:
    """Keys ``<prefix><digits>`` sorted by their number (``Tree_2`` before ``Tree_10``)."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    found = [(int(m.group(1)), k) for k in keys if (m := pattern.match(k))]
    return [k for _, k in sorted(found)]


#: HDF5's deflate expands at most ~1032 to 1: a dataset declaring more bytes than this many per
#: byte it stores is damaged or hostile (its chunks were never written, or hold a bomb).
MAX_EXPANSION = 1100


def read_stored(ds: h5py.Dataset, where: str) -> np.ndarray:
    """The whole of ``ds``, refused unread if it declares far more data than the file stores.

    Parameters
    ----------
    ds : h5py.Dataset
        A dataset of a project (tree arrays, labels).
    where : str
        Its name in messages.

    Returns
    -------
    numpy.ndarray
        Its data.

    Raises
    ------
    ProjectError
        If it declares over 1 MiB and more than ``MAX_EXPANSION`` times the bytes stored.
    """
    declared = int(ds.size) * ds.dtype.itemsize
    if declared > 1 << 20:
        stored = int(ds.id.get_storage_size())
        if declared > MAX_EXPANSION * stored:
            raise ProjectError(
                f"{where}: damaged dataset: it declares {ds.shape} {ds.dtype} ({declared} bytes) "
                f"but the file stores {stored} bytes of it"
            )
    return read_hdf5_checked(ds, where)
