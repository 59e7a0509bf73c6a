"""Small helpers for reading ilastik's HDF5 values: strings stored as bytes, numbered keys."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["feature_name", "numbered", "text", "texts"]


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
