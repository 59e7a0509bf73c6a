"""The one exception family of cascade.

Every error that a user can cause (bad input, bad option, bad project) is a
:class:`CascadeError`; the CLI turns it into a one-line message and exit code 2.
"""

from __future__ import annotations

__all__ = [
    "AxesError",
    "CascadeError",
    "DataError",
    "ExportError",
    "FeatureSelectionError",
    "ObjectsError",
    "ProjectError",
]


class CascadeError(ValueError):
    """Base class of every error cascade raises on purpose."""


class FeatureSelectionError(CascadeError):
    """An invalid feature selection (unknown feature id, bad scale, size too small)."""


class AxesError(CascadeError):
    """Axes that do not match the data (wrong length, repeated or unknown keys)."""


class DataError(CascadeError):
    """Input data that cannot be read or does not fit the project (missing file, channel mismatch)."""


class ProjectError(CascadeError):
    """A project file that is missing, corrupt, foreign or unsupported."""


class ExportError(CascadeError):
    """An export option or output path that cannot be honoured."""


class ObjectsError(CascadeError):
    """Object classification: thresholding settings, object features or an object stage."""
