"""Which features to compute: ilastik's feature-id x scale matrix, with a per-scale 2D flag.

A :class:`FeatureSelection` is what ilastik stores in a project's ``FeatureSelections``
group. It also knows the output channel names and count, and the halo a block needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import FeatureSelectionError
from .kernels import kernel_radius

__all__ = [
    "DEFAULT_SCALES",
    "DISPLAY_NAMES",
    "FEATURE_IDS",
    "MINIMUM_SCALE",
    "FeatureSelection",
]

FEATURE_IDS: tuple[str, ...] = (
    "GaussianSmoothing",
    "LaplacianOfGaussian",
    "GaussianGradientMagnitude",
    "DifferenceOfGaussians",
    "StructureTensorEigenvalues",
    "HessianOfGaussianEigenvalues",
)
DISPLAY_NAMES: dict[str, str] = {
    "GaussianSmoothing": "Gaussian Smoothing",
    "LaplacianOfGaussian": "Laplacian of Gaussian",
    "GaussianGradientMagnitude": "Gaussian Gradient Magnitude",
    "DifferenceOfGaussians": "Difference of Gaussians",
    "StructureTensorEigenvalues": "Structure Tensor Eigenvalues",
    "HessianOfGaussianEigenvalues": "Hessian of Gaussian Eigenvalues",
}
#: ilastik's GUI allows a cell only at ``scale >= MINIMUM_SCALE[feature]``.
MINIMUM_SCALE: dict[str, float] = {fid: (0.3 if fid == "GaussianSmoothing" else 0.7) for fid in FEATURE_IDS}
DEFAULT_SCALES: tuple[float, ...] = (0.3, 0.7, 1.0, 1.6, 3.5, 5.0, 10.0)
_EIGEN_FEATURES = ("StructureTensorEigenvalues", "HessianOfGaussianEigenvalues")
PRESMOOTH_WINDOW = 3.5
FEATURE_WINDOW = 2.0


@dataclass(frozen=True)
class FeatureSelection:
    """ilastik's feature matrix: rows are feature ids, columns are scales.

    Attributes
    ----------
    feature_ids : tuple of str
        Row order (ilastik's ``FeatureIds``); output channels follow it.
    scales : tuple of float
        Column scales (ilastik's ``Scales``), each >= 0.3.
    matrix : tuple of tuple of bool
        ``matrix[row][column]`` is True when that feature is computed at that scale.
    compute_in_2d : tuple of bool
        One flag per scale column: compute that column slice by slice in (y, x).
    """

    feature_ids: tuple[str, ...]
    scales: tuple[float, ...]
    matrix: tuple[tuple[bool, ...], ...]
    compute_in_2d: tuple[bool, ...]

    def __post_init__(self) -> None:
        unknown = [f for f in self.feature_ids if f not in FEATURE_IDS]
        if unknown:
            raise FeatureSelectionError(
                f"unknown feature id(s) {unknown}; known ids are {', '.join(FEATURE_IDS)}"
            )
        if len(set(self.feature_ids)) != len(self.feature_ids):
            raise FeatureSelectionError("a feature id is listed twice")
        bad = [s for s in self.scales if not (isinstance(s, float) and math.isfinite(s) and s >= 0.3)]
        if bad:
            raise FeatureSelectionError(f"scales must be numbers >= 0.3, got {bad}")
        if len(self.matrix) != len(self.feature_ids) or any(len(r) != len(self.scales) for r in self.matrix):
            raise FeatureSelectionError(
                f"selection matrix must be {len(self.feature_ids)} x {len(self.scales)} "
                "(feature ids x scales)"
            )
        if len(self.compute_in_2d) != len(self.scales):
            raise FeatureSelectionError(
                f"compute_in_2d needs one flag per scale ({len(self.scales)}), got {len(self.compute_in_2d)}"
            )
        if not any(any(r) for r in self.matrix):
            raise FeatureSelectionError("the feature selection selects no feature")

    # construction -------------------------------------------------------------------------------
    @classmethod
    def from_matrix(
        cls,
        feature_ids: Iterable[str],
        scales: Iterable[float],
        matrix: Iterable[Iterable[Any]],
        compute_in_2d: Iterable[Any] | bool = False,
    ) -> FeatureSelection:
        """Build a selection from array-likes (as stored in an ilastik project).

        Parameters
        ----------
        feature_ids : iterable of str
            Feature ids, one per matrix row (see :data:`FEATURE_IDS`).
        scales : iterable of float
            Scales, one per matrix column.
        matrix : iterable of iterables
            Truthy where a feature is selected at a scale.
        compute_in_2d : iterable or bool
            One flag per scale, or one for all.

        Returns
        -------
        FeatureSelection
            The checked selection.
        """
        scales_t = tuple(float(s) for s in scales)
        if isinstance(compute_in_2d, bool):
            flags = (compute_in_2d,) * len(scales_t)
        else:
            flags = tuple(bool(v) for v in compute_in_2d)
        return cls(
            feature_ids=tuple(str(f) for f in feature_ids),
            scales=scales_t,
            matrix=tuple(tuple(bool(v) for v in row) for row in matrix),
            compute_in_2d=flags,
        )

    @classmethod
    def ilastik_default(cls, compute_in_2d: bool = False) -> FeatureSelection:
        """ilastik's full default grid: every cell its GUI allows at the default scales.

        That is Gaussian smoothing at all seven scales and the other five features at
        0.7 to 10: 49 channels per input channel in 2D, 61 in 3D.

        Parameters
        ----------
        compute_in_2d : bool
            Compute every scale per z-slice.

        Returns
        -------
        FeatureSelection
            The default selection.
        """
        matrix = [[s >= MINIMUM_SCALE[f] for s in DEFAULT_SCALES] for f in FEATURE_IDS]
        return cls.from_matrix(FEATURE_IDS, DEFAULT_SCALES, matrix, compute_in_2d)

    # queries -------------------------------------------------------------------------------------
    def selected(self) -> list[tuple[str, int]]:
        """(feature id, scale column) pairs in output order: feature row major, then scale.

        Returns
        -------
        list of (str, int)
            The selected cells.
        """
        return [(fid, j) for fid, row in zip(self.feature_ids, self.matrix) for j, on in enumerate(row) if on]

    def columns(self) -> list[int]:
        """Scale columns with at least one selected feature.

        Returns
        -------
        list of int
            Column indices, ascending.
        """
        return sorted({j for _, j in self.selected()})

    def column_is_2d(self, column: int, z_size: int | None) -> bool:
        """Whether the column's presmoothing runs per z-slice (no z axis counts as 2D).

        Parameters
        ----------
        column : int
            Scale column.
        z_size : int or None
            Length of the z axis (None: no z axis).

        Returns
        -------
        bool
            True for per-slice presmoothing.
        """
        return z_size is None or z_size == 1 or self.compute_in_2d[column]

    def features_are_2d(self, column: int, z_size: int | None) -> bool:
        """Whether the column's feature filters run per z-slice.

        ilastik falls back to 2D when the z extent is too small for the filter:
        ``ceil(2 * s') + 1 > z``.

        Parameters
        ----------
        column : int
            Scale column.
        z_size : int or None
            Length of the z axis (None: no z axis).

        Returns
        -------
        bool
            True for per-slice feature filters.
        """
        if z_size is None or self.column_is_2d(column, z_size):
            return True
        return math.ceil(2 * min(self.scales[column], 1.0)) + 1 > z_size

    def channels_per_input(self, fid: str, column: int, z_size: int | None) -> int:
        """Output channels of one feature at one scale for one input channel.

        Parameters
        ----------
        fid : str
            Feature id.
        column : int
            Scale column.
        z_size : int or None
            Length of the z axis (None: no z axis).

        Returns
        -------
        int
            1, or the eigenvalue / gradient count (2 in 2D, 3 in 3D).
        """
        if fid not in _EIGEN_FEATURES:
            return 1
        return 2 if self.features_are_2d(column, z_size) else 3

    def n_channels(self, n_inputs: int, z_size: int | None = None) -> int:
        """Total output channels for ``n_inputs`` input channels.

        Parameters
        ----------
        n_inputs : int
            Input channels.
        z_size : int, optional
            Length of the z axis (None: no z axis).

        Returns
        -------
        int
            Feature channels.
        """
        return n_inputs * sum(self.channels_per_input(f, j, z_size) for f, j in self.selected())

    def channel_names(self, n_inputs: int, z_size: int | None = None) -> list[str]:
        """ilastik's feature channel names, e.g. ``Hessian of Gaussian Eigenvalues (σ=1.6) in 2D [1]``.

        ``in 2D`` appears when the column's ``compute_in_2d`` flag is set (as ilastik names it).

        Parameters
        ----------
        n_inputs : int
            Input channels.
        z_size : int, optional
            Length of the z axis (None: no z axis).

        Returns
        -------
        list of str
            One name per feature channel, in output order.
        """
        names: list[str] = []
        for fid, j in self.selected():
            base = f"{DISPLAY_NAMES[fid]} (σ={self.scales[j]})"
            if self.compute_in_2d[j]:
                base += " in 2D"
            count = n_inputs * self.channels_per_input(fid, j, z_size)
            names.extend([base] if count == 1 else [f"{base} [{k}]" for k in range(count)])
        return names

    def column_halo(self, column: int) -> int:
        """Pixels per side that the column needs around a block to be exact.

        Presmoothing radius (window 3.5) plus the longest feature filter chain (window 2).

        Parameters
        ----------
        column : int
            Scale column.

        Returns
        -------
        int
            The halo in pixels.
        """
        s = self.scales[column]
        s_pre = math.sqrt(s * s - 1.0) if s > 1.0 else s
        s_eff = min(s, 1.0)
        fids = [f for f, row in zip(self.feature_ids, self.matrix) if row[column]]
        chain = 0
        for fid in fids:
            if fid == "StructureTensorEigenvalues":
                chain = max(
                    chain, kernel_radius(0.5 * s_eff, FEATURE_WINDOW) + kernel_radius(s_eff, FEATURE_WINDOW)
                )
            else:
                chain = max(chain, kernel_radius(s_eff, FEATURE_WINDOW))
        return kernel_radius(s_pre, PRESMOOTH_WINDOW) + chain

    def halo(self) -> int:
        """The largest column halo: what the halo of a block must provide.

        Returns
        -------
        int
            The halo in pixels.
        """
        return max(self.column_halo(j) for j in self.columns())

    def check_shape(self, spatial_sizes: Mapping[str, int]) -> None:
        """Reject scales too large for the data, as ilastik does.

        Each selected column needs ``ceil(3.5 * scale) + 1`` pixels along x and y, and along
        z unless the column is computed in 2D.

        Parameters
        ----------
        spatial_sizes : mapping of str to int
            Length of each spatial axis (``z``, ``y``, ``x``) of the data.

        Raises
        ------
        FeatureSelectionError
            Naming the scale and the axis that is too short.
        """
        z = spatial_sizes.get("z")
        for j in self.columns():
            reach = self.scales[j] * PRESMOOTH_WINDOW  # inf for huge scales: compared, never rounded
            axes = "yx" if self.column_is_2d(j, z) else "zyx"
            short = [f"{a}={spatial_sizes[a]}" for a in axes if reach > spatial_sizes[a] - 1]
            if short:
                need = f"at least {math.ceil(reach) + 1}" if math.isfinite(reach) else "more"
                fix = "deselect that scale" + (" or compute it in 2D" if axes == "zyx" else "")
                raise FeatureSelectionError(
                    f"scale {self.scales[j]} needs {need} pixels per axis (ceil(3.5 * scale) + 1) "
                    f"but the data has {', '.join(short)}; {fix}"
                )

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form read by :func:`parse_feature_selection`.

        Returns
        -------
        dict
            ``features``, ``scales`` and ``compute_in_2d``.
        """
        return {
            "scales": list(self.scales),
            "compute_in_2d": list(self.compute_in_2d),
            "features": {
                fid: [self.scales[j] for j, on in enumerate(row) if on]
                for fid, row in zip(self.feature_ids, self.matrix)
                if any(row)
            },
        }
