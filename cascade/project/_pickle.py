"""Plain values from a pickle stored in an ilastik project, without running any code.

ilastik pickles a few settings into its projects (e.g. the object table export settings,
``ObjectClassification/ExportSettings``). ``pickle.loads`` on project data would run whatever a
hostile file asks for, so these are read with an unpickler that resolves **no** global name (no
class, no function: nothing to call) and no persistent id; the result must then consist of
dict, list, tuple, str, int, float, bool and None only (bytes from Python 2 ``str`` pickles are
decoded as UTF-8). Anything else is refused with one line naming what was found.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from ..errors import ProjectError

__all__ = ["plain_unpickle"]

#: Largest pickle read (the settings are a few hundred bytes).
MAX_PICKLE_BYTES = 1 << 20
_MAX_DEPTH = 32
_SCALARS = (str, int, float, bool, type(None))


class _NoGlobals(pickle.Unpickler):
    """An unpickler that refuses every global (class or function) and persistent id."""

    def find_class(self, module: str, name: str) -> Any:
        raise ProjectError(f"it refers to {module}.{name}; cascade reads only plain values from pickles")

    def persistent_load(self, pid: Any) -> Any:
        raise ProjectError("it holds a persistent id; cascade reads only plain values from pickles")


def _check_plain(value: Any, depth: int = 0) -> Any:
    """``value`` itself if it is made of plain values only; bytes decoded; else ProjectError."""
    if depth > _MAX_DEPTH:
        raise ProjectError(f"it is nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, dict):
        return {_check_plain(k, depth + 1): _check_plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_check_plain(v, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    raise ProjectError(f"it holds a {type(value).__name__}; cascade reads only plain values from pickles")


def plain_unpickle(data: bytes, where: str) -> Any:
    """Unpickle ``data`` into dict/list/tuple/str/int/float/bool/None values, calling no code.

    Parameters
    ----------
    data : bytes
        The pickle (any protocol).
    where : str
        What the pickle is (file and dataset), for the error message.

    Returns
    -------
    object
        The plain value.

    Raises
    ------
    ProjectError
        A pickle that names a class or function, holds any other type, or is damaged.
    """
    if len(data) > MAX_PICKLE_BYTES:
        raise ProjectError(f"{where}: refused: the pickle has {len(data)} bytes (at most {MAX_PICKLE_BYTES})")
    try:
        value = _NoGlobals(io.BytesIO(data), encoding="utf-8", errors="replace").load()
        return _check_plain(value)
    except ProjectError as err:
        raise ProjectError(f"{where}: refused: {err}") from err
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as err:
        raise ProjectError(f"{where}: not a readable pickle ({type(err).__name__}: {err})") from err
    except RecursionError as err:
        raise ProjectError(f"{where}: refused: the pickle is nested too deeply") from err
