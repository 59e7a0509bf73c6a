"""The typer application and its error handling."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer

from ..errors import CascadeError

F = TypeVar("F", bound=Callable[..., Any])

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
            fail("out of memory; use smaller chunks (--chunks) or fewer threads")
        except KeyboardInterrupt:
            fail("interrupted", code=130)
        return None

    return wrapper  # type: ignore[return-value]


def register() -> None:
    """Import the command modules so that they add themselves to ``app``."""
    from . import _demo, _info, _predict, _train  # noqa: F401


register()
