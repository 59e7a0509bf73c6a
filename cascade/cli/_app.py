"""The typer application and its error handling."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer

from ..errors import CascadeError

F = TypeVar("F", bound=Callable[..., Any])

#: cascade.forest.MAX_SEED and MAX_TREES, repeated so that ``cascade --help`` need not import numba.
MAX_SEED = 2**32 - 1
MAX_TREES = 2**31 - 1

app = typer.Typer(
    name="cascade",
    help="ilastik's Autocontext (cascaded pixel classification) and headless batch mode on Dask.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def fail(message: str, code: int = 2) -> None:
    """Print ``cascade: error: message`` on one line to stderr and exit."""
    text = " ".join(str(message).split())
    print(f"cascade: error: {text}", file=sys.stderr)
    raise typer.Exit(code)


def handle_errors(func: F) -> F:
    """Turn CascadeError (and a few OS errors) into one-line messages with exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CascadeError as err:
            fail(str(err))
        except FileNotFoundError as err:
            fail(f"file not found: {err.filename or err}")
        except PermissionError as err:
            fail(f"permission denied: {err.filename or err}")
        except OSError as err:  # e.g. a full disk while writing something not yet named
            where = f": {err.filename}" if err.filename else ""
            fail(f"{err.strerror or err}{where}")
        except MemoryError:
            fail("out of memory; use fewer --threads (or, for predict, smaller blocks with --block-shape)")
        except KeyboardInterrupt:
            fail("interrupted", code=130)
        return None

    return wrapper  # type: ignore[return-value]


def usage_message(err: Exception) -> str:
    """One line for a command-line usage error (bad value, unknown option, missing argument).

    Works on typer's and click's usage errors alike: only their common attributes are read.
    """
    param = getattr(err, "param", None)
    name = _param_name(param) if param is not None else None
    message = " ".join(str(getattr(err, "message", "") or "").split())
    ctx = getattr(err, "ctx", None)
    command = getattr(ctx, "command_path", None) or "cascade"
    if type(err).__name__ == "NoSuchOption":
        option = getattr(err, "option_name", "")
        close = _spellings(getattr(err, "possibilities", None) or [], str(option))
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        return f"unknown option {option} for '{command}'{hint}; '{command} --help' lists the options"
    if type(err).__name__ == "MissingParameter" and name:
        return f"'{command}' needs {name}; see '{command} --help'"
    if name and message.startswith("must "):
        return f"{name} {message}"
    if name:
        return f"{name}: {message}"
    return f"{' '.join(_format(err).split()).rstrip('.')}; see '{command} --help'"


def _spellings(options: Any, typed: str) -> list[str]:
    """Suggested options, one spelling each (``--raw_data`` or ``--raw-data``, as the user typed)."""
    chosen: dict[str, str] = {}
    for candidate in sorted(options):
        key = candidate.replace("_", "-")
        if key not in chosen or (("_" in typed) == ("_" in candidate)):
            chosen[key] = candidate
    return sorted(chosen.values())


def _param_name(param: Any) -> str:
    opts = [o for o in getattr(param, "opts", None) or [] if o.startswith("--")]
    if opts:
        return str(opts[0])
    return str(getattr(param, "human_readable_name", None) or getattr(param, "name", "argument")).upper()


def _format(err: Exception) -> str:
    formatter = getattr(err, "format_message", None)
    return str(formatter() if callable(formatter) else err)


def whole(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """A typer ``parser`` for an integer option in ``[minimum, maximum]``.

    Its error reads ``must be an integer >= 1 (got 0)``; :func:`usage_message` puts the
    option's name in front.
    """
    allowed = f"an integer >= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum}"

    def parse(text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            shown = str(text) if str(text).strip() else repr(text)
            raise typer.BadParameter(f"must be {allowed} (got {shown})")
        return value

    return parse


def one_of(*choices: str) -> Callable[[str], str]:
    """A typer ``parser`` for an option that takes one of ``choices``."""

    def parse(text: str) -> str:
        if str(text).strip() not in choices:
            raise typer.BadParameter(f"must be one of {', '.join(choices)} (got {text})")
        return str(text).strip()

    return parse


def byte_size(text: str) -> str:
    """A typer ``parser`` for a memory size such as ``8GB`` or ``500MiB`` (more than 0 bytes)."""
    from dask.utils import parse_bytes

    try:
        size = int(parse_bytes(str(text).strip()))
    except (ValueError, TypeError, OverflowError):
        size = 0
    if size <= 0:
        raise typer.BadParameter(f"must be a memory size above 0 like 8GB or 500MiB (got {text})")
    return str(text).strip()


def register() -> None:
    """Import the command modules so that they add themselves to ``app``."""
    from . import _demo, _info, _predict, _train  # noqa: F401


register()
