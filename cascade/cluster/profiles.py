"""Cluster settings: the packaged defaults in ``dask.config``, profiles and command-line overrides.

Settings live in ``dask.config`` under ``cascade.cluster`` (packaged defaults in ``cluster.yaml``, merged
when this module is imported). Later layers win: those defaults, the user's dask config (files and
``DASK_CASCADE__CLUSTER__...`` variables), a profile (``<name>.yaml`` from a folder of
``cascade.cluster.profile-dirs`` or the packaged ``profiles``, or a path), then ``overrides`` (the
command line). ``slurm.*`` keys left ``null`` fall back to ``jobqueue.slurm.*``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import dask.config
import yaml

from ..errors import CascadeError

if TYPE_CHECKING:
    pass

__all__ = ["PROFILES_DIR", "load_profile", "parse_overrides"]

_DEFAULTS_FILE = Path(__file__).with_name("cluster.yaml")
#: Profiles shipped with the package (``configs/cluster`` in a checkout links here).
PROFILES_DIR = Path(__file__).with_name("profiles")
_FREE_FORM = frozenset({"scheduler-options"})  # mappings whose keys are passed on unchecked

# libyaml's loader when PyYAML has one: every run imports this module, and it parses 10x faster
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
with _DEFAULTS_FILE.open(encoding="utf-8") as _file:
    _PACKAGED: dict[str, Any] = yaml.load(_file, Loader=_SafeLoader)
dask.config.update_defaults(_PACKAGED)
_KNOWN: dict[str, Any] = _PACKAGED["cascade"]["cluster"]


def load_profile(name_or_path: str | Path) -> dict[str, Any]:
    """Read a cluster profile: the settings of ``cascade.cluster`` that it changes.

    Parameters
    ----------
    name_or_path : str or Path
        A profile name, looked up as ``<name>.yaml`` in ``cascade.cluster.profile-dirs`` and then among
        the packaged profiles (:data:`PROFILES_DIR`: ``local``, ``slurm-example``, ``slurm-local``); or
        the path of a YAML file.

    Returns
    -------
    dict
        Nested settings with kebab-case keys, e.g. ``{"slurm": {"cores": 8, "memory": "32GiB"}}``.

    Raises
    ------
    CascadeError
        The profile is unknown, unreadable, or names a setting that does not exist.
    """
    path = _find_profile(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise CascadeError(f"cannot read cluster profile {path}: {_reason(err)}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CascadeError(f"cluster profile {path} must be a mapping of settings, not {type(data).__name__}")
    return _normalise(data, _KNOWN, f"cluster profile {path}")


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Turn command-line ``key=value`` strings into ``overrides`` for :func:`execution`.

    Parameters
    ----------
    items : iterable of str
        Like ``"slurm.jobs=4"``, ``"slurm.walltime=02:00:00"``, ``"slurm.job-extra-directives=[--qos=long]"``.
        Values are YAML; times with colons stay strings.

    Returns
    -------
    dict
        Dotted keys and their values.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise CascadeError(f"cluster option {item!r} is not key=value, like slurm.jobs=4")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        if isinstance(value, (int, float)) and not isinstance(value, bool) and ":" in text:
            value = text  # YAML 1.1 would read 01:00:00 as 3600
        out[key.strip()] = value
    return out


def _profile_dirs() -> list[Path]:
    extra = dask.config.get("cascade.cluster.profile-dirs", None) or []
    return [Path(os.path.expandvars(str(p))).expanduser() for p in extra] + [PROFILES_DIR]


def _find_profile(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith((".yaml", ".yml")) or "/" in text or os.sep in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise CascadeError(f"cluster profile file {path} not found")
        return path
    folders = _profile_dirs()
    for folder in folders:
        for suffix in (".yaml", ".yml"):
            if (folder / f"{text}{suffix}").is_file():
                return folder / f"{text}{suffix}"
    known = sorted({p.stem for f in folders if f.is_dir() for p in f.glob("*.y*ml")})
    raise CascadeError(
        f"unknown cluster profile {text!r}; known: {', '.join(known) or 'none'} "
        f"(searched {', '.join(map(str, folders))})"
    )


def _normalise(
    tree: Mapping[str, Any], known: Mapping[str, Any], where: str, prefix: str = ""
) -> dict[str, Any]:
    """Kebab-case the keys of ``tree`` and check them against the packaged settings."""
    out: dict[str, Any] = {}
    for raw, value in tree.items():
        key = str(raw).replace("_", "-")
        if key not in known:
            known_keys = ", ".join(sorted(known))
            raise CascadeError(f"unknown setting {prefix + key!r} in {where}; known: {known_keys}")
        if isinstance(known[key], dict):
            if not isinstance(value, Mapping):
                raise CascadeError(f"setting {prefix + key!r} in {where} must be a mapping, not {value!r}")
            if key not in _FREE_FORM:
                value = _normalise(value, known[key], where, f"{prefix}{key}.")
        out[key] = value
    return out


def _nest(dotted: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in dotted.items():
        *parents, leaf = str(key).split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def _settings(profile: str | Path | None, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    layers = [_normalise(dask.config.get("cascade.cluster"), _KNOWN, "dask config cascade.cluster")]
    if profile is not None:
        layers.append(load_profile(profile))
    if overrides:
        layers.append(_normalise(_nest(overrides), _KNOWN, "cluster overrides"))
    merged: dict[str, Any] = dask.config.merge(*layers)
    return merged


def _whole(value: object, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CascadeError(f"{what} must be a whole number >= {minimum}, not {value!r}")
    return value


def _reason(err: BaseException) -> str:
    """The innermost cause of a third-party error, on one line."""
    while err.__cause__ is not None:
        err = err.__cause__
    return " ".join(str(err).split()) or type(err).__name__


def _folder(value: object) -> str | None:
    return None if value is None else os.path.expanduser(os.path.expandvars(str(value)))


def _http_address(dashboard: object) -> str:
    """Where the scheduler's HTTP server listens: the dashboard's address, or loopback without one."""
    return "127.0.0.1:0" if dashboard is None else str(dashboard)
