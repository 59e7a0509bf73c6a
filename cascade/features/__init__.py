"""ilastik's pixel features, computed exactly and blockwise with dask."""

from .graph import compute_features, feature_chunks
from .kernels import gaussian_half_kernel, kernel_radius
from .selection import (
    DEFAULT_SCALES,
    FEATURE_IDS,
    FeatureSelection,
    parse_feature_selection,
)

__all__ = [
    "DEFAULT_SCALES",
    "FEATURE_IDS",
    "FeatureSelection",
    "compute_features",
    "feature_chunks",
    "gaussian_half_kernel",
    "kernel_radius",
    "parse_feature_selection",
]
