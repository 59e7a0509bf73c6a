"""OME-Zarr metadata of an image being read: its multiscales, scales and axes (v0.4 and v0.5)."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from typing import Any

import zarr

from ..errors import DataError
from ._remote import is_url, zarr_options

__all__ = ["multiscales_of", "ome_axes", "ome_scales", "parent_ome_axes", "pick_scale"]


def multiscales_of(attrs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The OME ``multiscales`` list of group attributes (v0.4 top level, v0.5 under ``ome``)."""
    ome = attrs.get("ome")
    found = ome.get("multiscales") if isinstance(ome, Mapping) else attrs.get("multiscales")
    return [m for m in found or [] if isinstance(m, Mapping)]


def ome_scales(location: str) -> list[str]:
    """The scale paths of the OME-Zarr image at ``location`` (empty if it is none or unreadable)."""
    try:
        group = zarr.open_group(store=location, mode="r", **zarr_options(location))
        multiscales = multiscales_of(group.attrs.asdict())
    except Exception:  # not an OME-Zarr image: no scales to suggest
        return []
    datasets = multiscales[0].get("datasets", []) if multiscales else []
    return [str(d.get("path", "")).strip("/") for d in datasets if isinstance(d, Mapping)]


def ome_axes(multiscale: Mapping[str, Any]) -> list[str]:
    """The axis names of one ``multiscales`` entry, lower case."""
    return [
        str(a.get("name", "") if isinstance(a, Mapping) else a).lower() for a in multiscale.get("axes", [])
    ]


def parent_ome_axes(external: str, internal: str | None) -> list[str] | None:
    """The OME axes of the image whose scale is the array at ``external``/``internal``, or None."""
    if internal:  # the parent group is in the same store
        store_root = external
        path, name = posixpath.split(internal.strip("/"))
    elif is_url(external):
        store_root, name = external.rstrip("/").rsplit("/", 1)
        path = ""
    else:
        (store_root, name), path = os.path.split(os.path.normpath(external)), ""
    try:
        group = zarr.open_group(store=store_root, path=path, mode="r", **zarr_options(store_root))
    except Exception:  # not a zarr group: no OME metadata
        return None
    for multiscale in multiscales_of(group.attrs.asdict()):
        if any(str(d.get("path", "")).strip("/") == name for d in multiscale.get("datasets", [])):
            return ome_axes(multiscale)
    return None


def pick_scale(group: Any, multiscale: Mapping[str, Any], scale: str | int | None, where: str) -> str:
    """The path of the scale ``scale`` (default the first) of an OME-Zarr image, checked to be an array."""
    paths = [str(d.get("path", "")).strip("/") for d in multiscale.get("datasets", [])]
    if not paths:
        raise DataError(f"{where}: the OME-Zarr multiscales metadata lists no datasets")
    if scale is None or str(scale) in paths:
        chosen = paths[0] if scale is None else str(scale)
    elif isinstance(scale, int) and not isinstance(scale, bool):
        if not -len(paths) <= scale < len(paths):
            raise DataError(
                f"{where}: scale {scale} out of range; it has {len(paths)} scales: {', '.join(paths)}"
            )
        chosen = paths[scale]
    elif str(scale).isdigit() and int(scale) < len(paths):
        chosen = paths[int(scale)]
    else:
        raise DataError(f"{where}: no scale {scale!r}; scales are {', '.join(paths)}")
    if not chosen or not isinstance(group.get(chosen), zarr.Array):
        raise DataError(
            f"{where}: its OME-Zarr multiscales metadata names {chosen!r}, which is no array of it"
        )
    return chosen
