"""The ``cascade`` command line: a thin typer shell over the library.

Every command parses its options, calls one library function and maps a
:class:`~cascade.errors.CascadeError` to a one-line message and exit code 2. Heavy
libraries are imported inside the commands so that ``cascade --help`` starts fast.

``cascade --headless --project=P ...`` is ilastik's headless spelling of ``cascade predict``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..errors import CascadeError
from ._app import app, usage_message
from ._ilastik import drop_ilastik_options, expand_abbreviations, expand_role_lists

__all__ = ["app", "main", "normalize_argv", "start_worker_server"]

_PREDICT_ALIASES = {"--headless"}
#: What a local cluster's workers are forked from (:mod:`cascade.cluster._preload`), named here so
#: that starting it does not wait for the import of :mod:`cascade.cluster` (0.4 s).
_WORKER_PRELOAD = "cascade.cluster._preload"
_BOOLEAN_WORDS = {"1", "0", "true", "false", "yes", "no", "on", "off", "t", "f", "y", "n"}


def _refuse_gui(args: list[str]) -> None:
    """ilastik's command line without ``--headless`` (``--project=P.ilp img.png``) opens its GUI."""
    if not args or args[0] in _commands() or any(a in _PREDICT_ALIASES for a in args):
        return
    named = [a.split("=", 1)[0] for a in args if a.startswith("--")]
    if any(len(name) >= len("--proj") and "--project".startswith(name) for name in named):
        from ..errors import CascadeError

        raise CascadeError(
            "without --headless ilastik opens its GUI, which cascade does not have; "
            "add --headless to run the project's batch export"
        )


def _refuse_empty_project(args: list[str]) -> None:
    """``--project=$P`` with ``P`` unset: typer would read the empty name as the folder ``.``."""
    for i, a in enumerate(args):
        if a == "--project=" or (a == "--project" and i + 1 < len(args) and not args[i + 1]):
            from ..errors import CascadeError

            raise CascadeError("--project is empty; name the project file (.ilp or .cascade)")


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """Rewrite ilastik-style argument lists into cascade's.

    - ``--headless`` anywhere (with no command) means ``predict``;
    - abbreviated option names (argparse's unambiguous prefixes, ``--output_filename=``) are
      completed;
    - ilastik's multi-file role options (``--raw_data a.h5 b.h5``) give one option per file;
    - ``--readonly`` without a value means ``--readonly=true`` (ilastik's optional flag);
      ``--readonly 0`` / ``--readonly false`` (a boolean word after it) is its value;
    - ilastik launcher options that change nothing in an export are dropped from ``predict``
      runs, and those cascade cannot honour are refused (:mod:`cascade.cli._ilastik`).

    Parameters
    ----------
    argv : sequence of str
        The arguments, without the program name.

    Returns
    -------
    list of str
        The arguments typer parses.

    Raises
    ------
    CascadeError
        An ilastik option cascade does not run.
    """
    args = list(argv)
    _refuse_gui(args)
    if any(a in _PREDICT_ALIASES for a in args):
        args = [a for a in args if a not in _PREDICT_ALIASES]
        if not args or args[0].startswith("-") or args[0] not in _commands():
            args.insert(0, "predict")
    if args and args[0] == "predict":
        given = expand_abbreviations(drop_ilastik_options(args[1:]), _predict_options())
        args = ["predict", *expand_role_lists(given)]
        _refuse_empty_project(args)
    out: list[str] = []
    for i, a in enumerate(args):
        if a == "--readonly":
            following = args[i + 1] if i + 1 < len(args) else ""
            if following.lower() in _BOOLEAN_WORDS:
                continue  # the value is merged in the next iteration
            out.append("--readonly=true")
        elif i > 0 and args[i - 1] == "--readonly" and a.lower() in _BOOLEAN_WORDS:
            out.append(f"--readonly={a}")
        else:
            out.append(a)
    return out


def _predict_options() -> list[str]:
    """The long option names of ``cascade predict`` (both spellings), and ``--help``."""
    import typer.main

    group = typer.main.get_command(app)
    command = getattr(group, "commands", {})["predict"]
    names = [o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")]
    return [*names, "--help"]


def _commands() -> set[str]:
    return {c.name or c.callback.__name__ for c in app.registered_commands if c.callback is not None}


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``cascade`` console script.

    Usage errors of every command (a bad option value, an unknown option, a missing argument)
    are printed as one ``cascade: error: ...`` line with exit code 2, like every other error.
    ``--version`` anywhere (ilastik's launcher flag) prints ``cascade <version>`` and exits 0.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).
    """
    from .._malloc import quick_exit, tune_malloc

    tune_malloc()
    quick_exit()
    given = list(sys.argv[1:] if argv is None else argv)
    options = given[: given.index("--")] if "--" in given else given
    if "--version" in options:
        from .. import __version__

        print(f"cascade {__version__}")
        sys.exit(0)
    try:
        args = normalize_argv(given)
    except CascadeError as err:
        print(f"cascade: error: {err}", file=sys.stderr)
        sys.exit(2)
    start_worker_server(args)
    try:
        code = app(args=args, prog_name="cascade", standalone_mode=False)
    except _usage_errors() as err:
        if type(err).__name__ == "NoArgsIsHelpError":  # plain "cascade": the help, as before
            text = str(getattr(err, "format_message", lambda: "")())
            if text.strip():
                print(text, file=sys.stderr)
            sys.exit(2)
        print(f"cascade: error: {usage_message(err)}", file=sys.stderr)
        sys.exit(int(getattr(err, "exit_code", 2) or 2))
    except _aborts():
        print("cascade: error: aborted", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def start_worker_server(args: Sequence[str]) -> bool:
    """Start the server a local cluster forks its workers from, if the command line asks for one.

    With ``--scheduler local`` (or ilastik's ``--distributed`` without a ``--scheduler``) the server
    starts before the options are parsed and the engine is imported here, and imports and warms the
    engine meanwhile (about 3 CPU seconds): the workers are forked from it as soon as the cluster
    starts. Whether it is used is decided later, with every setting known
    (:func:`cascade.cluster.execution`): a profile or dask config that asks for ``spawn`` or no
    warm-up leaves it unused.

    Parameters
    ----------
    args : sequence of str
        The normalised arguments (:func:`normalize_argv`).

    Returns
    -------
    bool
        True when the server was started (or already ran).
    """
    scheduler = None
    for i, arg in enumerate(args):
        if arg == "--scheduler" and i + 1 < len(args):
            scheduler = args[i + 1]
        elif arg.startswith("--scheduler="):
            scheduler = arg.partition("=")[2]
    if scheduler is None and "--distributed" in args:
        scheduler = "local"
    if (scheduler or "").strip() != "local":
        return False
    import multiprocessing
    from multiprocessing import forkserver

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    forkserver.set_forkserver_preload([_WORKER_PRELOAD])
    forkserver.ensure_running()
    return True


def _usage_errors() -> tuple[type[Exception], ...]:
    """typer's usage errors (typer >= 0.2x vendors click) and click's (older typer)."""
    import typer

    found: list[type[Exception]] = []
    vendored = getattr(typer, "TyperException", None)
    if vendored is not None:
        found.append(vendored)
    try:
        import click
    except ImportError:
        pass
    else:
        found.append(click.ClickException)
    return tuple(found)


def _aborts() -> tuple[type[BaseException], ...]:
    import typer

    found: list[type[BaseException]] = [typer.Abort]
    try:
        import click
    except ImportError:
        pass
    else:
        found.append(click.exceptions.Abort)
    return tuple(found)
