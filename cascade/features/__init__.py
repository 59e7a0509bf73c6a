"""ilastik's pixel features, computed exactly and blockwise with dask."""

from ._block import block_features
from ._halo import HaloPlace, gathered_features, halo_tasks
from ._parse import parse_feature_selection
from .graph import compute_features, feature_chunks, overlap_depths
from .kernels import gaussian_half_kernel, kernel_radius
from .selection import (
    DEFAULT_SCALES,
    FEATURE_IDS,
    FeatureSelection,
)

__all__ = [
    "DEFAULT_SCALES",
    "FEATURE_IDS",
    "FeatureSelection",
    "HaloPlace",
    "block_features",
    "compute_features",
    "feature_chunks",
    "gathered_features",
    "gaussian_half_kernel",
    "halo_tasks",
    "kernel_radius",
    "overlap_depths",
    "parse_feature_selection",
]
