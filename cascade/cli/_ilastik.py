"""ilastik's own command-line options and config file, for drop-in headless runs.

``run_ilastik.sh --headless`` accepts options of ilastik's launcher (``ilastik/app.py``)
and of the Pixel Classification workflow besides the export options. Pipelines pass them
along, so cascade accepts them too:

- options that change nothing in a headless export are dropped (``--debug``, ``--clean_paths``,
  ``--process_name NAME``, ``--preconvert_stacks`` ...);
- ilastik's input role options take several files each (argparse ``nargs="+"``):
  ``--raw_data a.h5 b.h5 --prediction_maps a_pm.h5 b_pm.h5`` is rewritten into one
  ``--raw_data=a.h5 --raw_data=b.h5 ...`` per file (:func:`expand_role_lists`);
- ``--configfile``, ``--logfile``, ``--redirect_output`` and ``--tree-count`` are kept for the
  ``predict`` command, which honours them (:func:`read_ilastik_config` reads the config file);
- options that would edit the project or write other files than the export
  (``--generate-random-labels``, ``--variable-importance-path`` ...) are refused in one line.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import CascadeError

__all__ = [
    "IlastikConfig",
    "drop_ilastik_options",
    "expand_abbreviations",
    "expand_role_lists",
    "read_ilastik_config",
]

#: ilastik flags without a value that have no effect on a headless export (the data selection
#: applet's ``--preconvert_stacks`` copies a stack into a temporary HDF5 file first: same pixels).
_NO_EFFECT_FLAGS = frozenset(
    {
        "--debug",
        "--clean_paths",
        "--fullscreen",
        "--exit_on_failure",
        "--hbp",
        "--preconvert_stacks",
        "--preconvert-stacks",
    }
)
#: ilastik's input role options (``DataSelectionApplet.get_arg_parser``, ``nargs="+"``): the role
#: name lowercased with ``_`` (or ``-``) for spaces, for every role of the workflows cascade runs.
_ROLES = ("raw_data", "prediction_mask", "prediction_maps", "segmentation_image", "label_image", "atlas")
_ROLE_OPTIONS = frozenset(f"--{role.replace('_', sep)}" for role in _ROLES for sep in "_-")
#: ilastik launcher options with a value that have no effect on a headless export.
_NO_EFFECT_VALUED = frozenset({"--process_name", "--tiktorch_executable", "--nn_device"})
#: ilastik options cascade does not run, and why.
_REFUSED = {
    "--new_project": "creates a project; train one with 'cascade train'",
    "--workflow": "belongs to --new_project; train a project with 'cascade train'",
    "--generate-random-labels": "edits the project's labels",
    "--random-label-value": "belongs to --generate-random-labels, which edits the project's labels",
    "--random-label-count": "belongs to --generate-random-labels, which edits the project's labels",
    "--print-labels-by-slice": "reports labels interactively; 'cascade info' shows what a project holds",
    "--label-search-value": "belongs to --print-labels-by-slice",
    "--variable-importance-path": "writes a variable-importance table, which cascade does not compute",
    "--label-proportion": "subsamples labels at random, which makes retraining unrepeatable",
}


def drop_ilastik_options(args: list[str]) -> list[str]:
    """Remove ilastik's no-effect options from ``args``; refuse the ones cascade does not run.

    Both ``--opt value`` and ``--opt=value`` spellings are understood.

    Parameters
    ----------
    args : list of str
        The arguments of a ``predict`` run, without the command name.

    Returns
    -------
    list of str
        ``args`` without the no-effect options.

    Raises
    ------
    CascadeError
        For an option in the refused table, naming it and why.
    """
    out: list[str] = []
    skip_value = False
    for arg in args:
        if skip_value:
            skip_value = False
            continue
        name, has_value, _ = arg.partition("=")
        if name in _REFUSED:
            raise CascadeError(f"ilastik's {name} is not supported by cascade: it {_REFUSED[name]}")
        if name in _NO_EFFECT_FLAGS and not has_value:
            continue
        if name in _NO_EFFECT_VALUED:
            skip_value = not has_value
            continue
        out.append(arg)
    return out


def expand_abbreviations(args: list[str], options: Iterable[str]) -> list[str]:
    """Complete abbreviated option names, as ilastik's argparse parsers do.

    argparse accepts any unambiguous prefix of a long option (``--output_filename=out.h5`` for
    ``--output_filename_format``); pipelines written against ilastik may rely on it. ``-`` and
    ``_`` count as the same character, since cascade accepts both spellings.

    Parameters
    ----------
    args : list of str
        The arguments of a ``predict`` run, without the command name.
    options : iterable of str
        The command's long option names.

    Returns
    -------
    list of str
        ``args`` with every abbreviation replaced by its option's full name; names that match
        no option are left for the parser to report.

    Raises
    ------
    CascadeError
        An abbreviation that several options start with.

    Examples
    --------
    >>> expand_abbreviations(["--output_file=o", "--proj", "p"], ["--output_filename_format", "--project"])
    ['--output_filename_format=o', '--project', 'p']
    """
    known = sorted(set(options))
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        name, eq, value = arg.partition("=")
        if not name.startswith("--") or len(name) < 4 or name in known:
            out.append(arg)
            continue
        prefix = _underscored(name)
        hits = sorted((o for o in known if _underscored(o).startswith(prefix)), key=_dashes_last)
        distinct = sorted({_underscored(o) for o in hits})
        if len(distinct) > 1:
            raise CascadeError(f"ambiguous option {name}: could match {', '.join(distinct)}")
        if hits:
            same_spelling = [o for o in hits if o.startswith(name)]
            name = (same_spelling or hits)[0]
        out.append(f"{name}{eq}{value}")
    return out


def _dashes_last(option: str) -> tuple[bool, str]:
    """Sort key: ilastik's ``_`` spelling of an option before the ``-`` one."""
    return option != _underscored(option), option


def _underscored(option: str) -> str:
    """``--output-format`` -> ``--output_format``."""
    return "--" + option[2:].replace("-", "_")


def expand_role_lists(args: list[str]) -> list[str]:
    """Split ilastik's multi-file role options into one option per file.

    ilastik's ``--raw_data a.h5 b.h5`` (argparse ``nargs="+"``) takes every following argument
    up to the next option (or ``--``); each becomes ``--raw_data=a.h5``, ``--raw_data=b.h5``. The
    ``--raw_data=a.h5`` spelling takes that one value only, as in argparse.

    Parameters
    ----------
    args : list of str
        The arguments of a ``predict`` run, without the command name.

    Returns
    -------
    list of str
        ``args`` with every role option followed by exactly one value.

    Examples
    --------
    >>> expand_role_lists(["--raw_data", "a.h5", "b.h5", "--prediction_maps", "p.h5", "q.h5"])
    ['--raw_data=a.h5', '--raw_data=b.h5', '--prediction_maps=p.h5', '--prediction_maps=q.h5']
    """
    out: list[str] = []
    role: str | None = None
    for i, arg in enumerate(args):
        if arg == "--":
            out.extend(args[i:])
            return out
        if arg in _ROLE_OPTIONS:
            role = arg
            if i + 1 == len(args) or _is_option(args[i + 1]):
                out.append(arg)  # no value: the parser's "requires an argument" message
            continue
        if role is not None and not _is_option(arg):
            out.append(f"{role}={arg}")
            continue
        role = None
        out.append(arg)
    return out


def _is_option(arg: str) -> bool:
    return arg.startswith("-") and arg != "-"


@dataclass(frozen=True)
class IlastikConfig:
    """The settings of an ilastik config file that a headless export uses.

    Attributes
    ----------
    path : Path or None
        The file read (None: no file, ilastik's defaults).
    output_format, output_filename_format : str or None
        ``[ilastik]`` defaults for ``--output_format`` and ``--output_filename_format``.
    threads : int or None
        ``[lazyflow] threads`` (None for ilastik's -1, "as many as cores").
    total_ram_mb : int or None
        ``[lazyflow] total_ram_mb`` (None for 0, "not limited").
    """

    path: Path | None
    output_format: str | None = None
    output_filename_format: str | None = None
    threads: int | None = None
    total_ram_mb: int | None = None

    def defaults(self) -> dict[str, str]:
        """The export settings of the file, keyed as an ``.ilp`` stores them (``OutputFormat`` ...).

        Returns
        -------
        dict
            ``OutputFormat`` and ``OutputFilenameFormat`` where the file sets them.
        """
        given = {"OutputFormat": self.output_format, "OutputFilenameFormat": self.output_filename_format}
        return {key: value for key, value in given.items() if value}


def _default_config_path() -> Path | None:
    """ilastik's own search: ``~/.ilastikrc`` (deprecated), then the user config dir's ilastik.ini."""
    home = Path.home()
    old = home / ".ilastikrc"
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    new = config_home / "ilastik" / "ilastik.ini"
    for path in (old, new):
        if path.is_file():
            return path
    return None


def read_ilastik_config(path: str | None) -> IlastikConfig:
    """Read ``path`` (``--configfile``), or ilastik's default config file when it exists.

    Parameters
    ----------
    path : str or None
        An explicit config file; it must exist.

    Returns
    -------
    IlastikConfig
        The settings found; absent ones are None.

    Raises
    ------
    CascadeError
        A missing explicit file, a file that is not an INI file, or a value of the wrong type.
    """
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise CascadeError(f"--configfile: ilastik config file {path} does not exist or is not a file")
        chosen: Path | None = explicit
    else:
        chosen = _default_config_path()
    if chosen is None:
        return IlastikConfig(None)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(chosen, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError, OSError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CascadeError(f"cannot read the ilastik config file {chosen}: {message}") from err
    threads = _integer(parser, chosen, "lazyflow", "threads")
    ram = _integer(parser, chosen, "lazyflow", "total_ram_mb")
    return IlastikConfig(
        chosen,
        output_format=parser.get("ilastik", "output_format", fallback=None),
        output_filename_format=parser.get("ilastik", "output_filename_format", fallback=None),
        threads=threads if threads is not None and threads > 0 else None,
        total_ram_mb=ram if ram is not None and ram > 0 else None,
    )


def _integer(parser: configparser.ConfigParser, path: Path, section: str, key: str) -> int | None:
    try:
        return parser.getint(section, key, fallback=None)
    except ValueError as err:
        raise CascadeError(
            f"ilastik config file {path}: [{section}] {key} must be an integer, "
            f"not {parser.get(section, key)!r}"
        ) from err
