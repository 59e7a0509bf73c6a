"""ilastik's pixel features: kernels, filters against oracles, blockwise exactness, channel layout."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
from scipy.ndimage import correlate1d

from cascade.errors import AxesError, FeatureSelectionError
from cascade.features import (
    FEATURE_IDS,
    FeatureSelection,
    compute_features,
    gaussian_half_kernel,
    kernel_radius,
    parse_feature_selection,
)
from cascade.features._block import _column, filter_image
from cascade.features._block3d import columns_3d
from cascade.features._frame import Derivatives, Frame
from cascade.features._smooth3d import smooth_columns

RNG = np.random.default_rng(42)


def full_kernel(sigma: float, order: int, window: float) -> np.ndarray:
    half = gaussian_half_kernel(sigma, order, window).astype(np.float64)
    mirrored = -half[:0:-1] if order == 1 else half[:0:-1]
    return np.concatenate([mirrored, half])


# --- kernels ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [0.3, 0.7, 1.0, 1.6, 3.5, 9.95])
@pytest.mark.parametrize("window", [2.0, 3.5])
def test_kernel_moments(sigma: float, window: float) -> None:
    r = kernel_radius(sigma, window)
    assert r == math.floor(window * sigma + 0.5)
    x = np.arange(-r, r + 1, dtype=np.float64)
    k0, k1, k2 = (full_kernel(sigma, o, window) for o in (0, 1, 2))
    assert k0.shape == (2 * r + 1,)
    assert abs(k0.sum() - 1) < 1e-6
    if r > 0:
        assert abs((x * k1).sum() - 1) < 1e-6
        assert abs(k2.sum()) < 1e-6
        assert abs((x * x / 2 * k2).sum() - 1) < 1e-6


def test_kernel_radii_from_reference_table() -> None:
    # ilastik.md 1.5: presmoothing (w=3.5) and feature (w=2) radii at the default scales
    pre = [kernel_radius(math.sqrt(s * s - 1) if s > 1 else s, 3.5) for s in (0.3, 0.7, 1.0, 1.6, 3.5, 5, 10)]
    assert pre == [1, 2, 4, 4, 12, 17, 35]
    assert [kernel_radius(min(s, 1.0), 2.0) for s in (0.3, 0.7, 1.0, 10)] == [1, 1, 2, 2]
    assert kernel_radius(0.66 * 0.3, 2.0) == 0
    assert np.array_equal(gaussian_half_kernel(0.198, 0, 2.0), np.ones(1, np.float32))


# --- filters against oracles -----------------------------------------------------------------------
FF2_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, fastfilters2 as ff
    image = np.load(sys.argv[1])
    scales = [float(s) for s in sys.argv[3].split(",")]
    np.save(sys.argv[2], np.stack([ff.compute_filters(image, s) for s in scales]))
    """
)


def test_filters_match_fastfilters2(tmp_path: Path) -> None:
    """Every 2D filter equals fastfilters2 (same sigma, fastfilters2's kernel radius rule).

    fastfilters2 is only an oracle: it segfaults on AVX-512 CPUs for images whose width is not
    a multiple of 16, and for 64 x 64 ones. So the image is 96 x 128, fastfilters2 runs in its
    own process (it is not thread-safe either), and if it still dies by a signal the test is
    skipped with the reason; ilastik's reference outputs cover exactness as well.
    """
    pytest.importorskip("fastfilters2")
    image = (RNG.random((96, 128)) * 255).astype(np.float32)
    scales = [0.7, 1.0, 1.6, 3.5, 5.0]
    np.save(tmp_path / "in.npy", image)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            FF2_SCRIPT,
            tmp_path / "in.npy",
            tmp_path / "out.npy",
            ",".join(map(str, scales)),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode < 0:
        pytest.skip(f"the fastfilters2 oracle died by {signal.Signals(-done.returncode).name} on this CPU")
    assert done.returncode == 0, done.stderr
    oracle = np.load(tmp_path / "out.npy")  # (scale, 7, y, x)
    worst = {}
    for i, s in enumerate(scales):
        hess = filter_image(image, "HessianOfGaussianEigenvalues", s, window=0)
        ste = filter_image(image, "StructureTensorEigenvalues", s, window=0, structure_sigmas=(s, 0.5 * s))
        ours = [
            filter_image(image, "GaussianSmoothing", s, window=0)[0],
            filter_image(image, "GaussianGradientMagnitude", s, window=0)[0],
            filter_image(image, "LaplacianOfGaussian", s, window=0)[0],
            hess[0],
            hess[1],
            ste[0],
            ste[1],
        ]
        names = ["GS", "GGM", "LoG", "HoGE0", "HoGE1", "STE0", "STE1"]
        for name, mine, ref in zip(names, ours, oracle[i]):
            err = np.abs(mine - ref).max() / max(1.0, np.abs(ref).max())
            worst[name] = max(worst.get(name, 0.0), float(err))
    print("max relative difference to fastfilters2:", json.dumps(worst))
    assert max(worst.values()) < 1e-5, worst


def scipy_filter(image: np.ndarray, sigma: float, orders: tuple[int, ...], window: float = 2.0) -> np.ndarray:
    """Separable correlation in float64, last axis first, mirror borders: the textbook construction."""
    out = image.astype(np.float64)
    for axis, order in zip(reversed(range(image.ndim)), orders):
        out = correlate1d(out, full_kernel(sigma, order, window), axis=axis, mode="mirror")
    return out


def scipy_feature(image: np.ndarray, fid: str, s: float) -> np.ndarray:
    nd = image.ndim
    unit = [tuple(int(a == b) for b in range(nd)) for a in range(nd)]
    if fid == "GaussianSmoothing":
        return scipy_filter(image, s, (0,) * nd)[None]
    if fid == "DifferenceOfGaussians":
        return (scipy_filter(image, s, (0,) * nd) - scipy_filter(image, 0.66 * s, (0,) * nd))[None]
    if fid == "LaplacianOfGaussian":
        return sum(scipy_filter(image, s, tuple(2 * o for o in u)) for u in unit)[None]
    if fid == "GaussianGradientMagnitude":
        return np.sqrt(sum(scipy_filter(image, s, u) ** 2 for u in unit))[None]
    if fid == "HessianOfGaussianEigenvalues":
        parts = lambda a, b: scipy_filter(image, s, tuple(np.add(unit[a], unit[b])))  # noqa: E731
    else:
        grads = [scipy_filter(image, 0.5 * s, u) for u in unit]
        parts = lambda a, b: scipy_filter(grads[a] * grads[b], s, (0,) * nd)  # noqa: E731
    matrix = np.empty((*image.shape, nd, nd))
    for a in range(nd):
        for b in range(nd):
            matrix[..., a, b] = parts(min(a, b), max(a, b))
    return np.moveaxis(np.linalg.eigvalsh(matrix)[..., ::-1], -1, 0)


@pytest.mark.parametrize("fid", FEATURE_IDS)
@pytest.mark.parametrize("sigma", [0.7, 1.0])
def test_3d_filters_match_scipy(fid: str, sigma: float) -> None:
    image = (RNG.random((20, 24, 28)) * 255).astype(np.float32)
    ours = filter_image(image, fid, sigma)
    ref = scipy_feature(image, fid, sigma)
    assert ours.shape == ref.shape
    err = np.abs(ours - ref).max() / np.abs(ref).max()
    # fastfilters' float32 closed-form 3x3 eigen solver loses ~sqrt(eps) near repeated roots
    assert err < (5e-4 if "Eigenvalues" in fid else 2e-5), err


def test_eigen_solvers_against_numpy() -> None:
    from cascade.features._filters import eigenvalues_2d, eigenvalues_3d

    m = np.random.default_rng(7).standard_normal((6, 50_000)).astype(np.float32)
    matrix = np.zeros((50_000, 3, 3))
    for k, (a, b) in enumerate([(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]):
        matrix[:, a, b] = matrix[:, b, a] = m[k]
    ref = np.linalg.eigvalsh(matrix)[:, ::-1].T
    scale = np.abs(matrix).max(axis=(1, 2))
    assert (np.abs(eigenvalues_3d(*m) - ref) / scale).max() < 1e-4
    ref2 = np.linalg.eigvalsh(matrix[:, :2, :2])[:, ::-1].T
    assert np.abs(eigenvalues_2d(m[0], m[1], m[3]) - ref2).max() < 1e-5


def test_eigen_3d_series_path_equals_libm() -> None:
    """The vectorised 3x3 solver (series where float32 rounding is certain) == libm for every matrix.

    Bits compared (NaN only by place): random, badly scaled, diagonal, repeated and integer
    matrices, zeros of both signs, infinities and NaN.
    """
    from cascade.features._filters import _ev3d, _ev3d_reference

    rng = np.random.default_rng(7)
    n = 200_000
    special = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-40, 3e38], np.float32)
    diagonal = rng.integers(-2, 3, n).astype(np.float32)
    zeros = np.zeros(n, np.float32)
    cases = [
        [rng.standard_normal(n).astype(np.float32) for _ in range(6)],
        [(rng.standard_normal(n) * 10.0 ** rng.integers(-20, 20, n)).astype(np.float32) for _ in range(6)],
        [rng.integers(-3, 4, n).astype(np.float32) for _ in range(6)],
        [diagonal, zeros, zeros, diagonal, zeros, rng.integers(-2, 3, n).astype(np.float32)],
        [rng.choice(special, n) for _ in range(6)],
    ]
    for parts in cases:
        fast, libm = np.empty((3, n), np.float32), np.empty((3, n), np.float32)
        _ev3d(*parts, *fast)
        _ev3d_reference(*parts, *libm)
        nan = np.isnan(libm)
        assert np.array_equal(nan, np.isnan(fast))
        assert np.array_equal(fast[~nan].view(np.uint32), libm[~nan].view(np.uint32))


@pytest.mark.parametrize("scale", [0.7, 1.6, 3.5])
def test_presmoothing_scheme(scale: float) -> None:
    """A stack channel is the feature at min(s, 1) on the image presmoothed at sqrt(s^2-1) (or s)."""
    image = (RNG.random((60, 64)) * 255).astype(np.uint8)
    sel = parse_feature_selection(
        {"features": {"GaussianSmoothing": [scale], "LaplacianOfGaussian": [scale]}}
    )
    stack = compute_features(image[..., None], sel, axes="yxc").compute()
    s_pre = math.sqrt(scale**2 - 1) if scale > 1 else scale
    presmoothed = scipy_filter(image.astype(np.float32), s_pre, (0, 0), window=3.5)
    s_eff = min(scale, 1.0)
    expected_gs = scipy_filter(presmoothed, s_eff, (0, 0))
    expected_log = scipy_filter(presmoothed, s_eff, (2, 0)) + scipy_filter(presmoothed, s_eff, (0, 2))
    assert np.abs(stack[..., 0] - expected_gs).max() < 1e-3
    assert np.abs(stack[..., 1] - expected_log).max() < 1e-3


# --- blockwise exactness ---------------------------------------------------------------------------
def _chunked_equals_whole(image: np.ndarray, sel: FeatureSelection, axes: str, chunkings: list) -> None:
    whole = compute_features(image, sel, axes=axes, chunks=image.shape).compute()
    for chunks in chunkings:
        blocked = compute_features(da.from_array(image, chunks=chunks), sel, axes=axes).compute()
        assert np.array_equal(blocked, whole), (chunks, np.abs(blocked - whole).max())


def test_blockwise_equals_whole_2d() -> None:
    image = (RNG.random((150, 170, 1)) * 255).astype(np.uint8)
    sel = FeatureSelection.ilastik_default()
    _chunked_equals_whole(image, sel, "yxc", [(64, 64, 1), (37, 50, 1), (10, 13, 1), (150, 40, 1)])


def test_blockwise_equals_whole_3d() -> None:
    image = (RNG.random((30, 34, 38, 1)) * 255).astype(np.uint8)
    sel = parse_feature_selection(
        {"features": {f: [0.7, 1.6] for f in FEATURE_IDS} | {"GaussianSmoothing": [0.3, 0.7, 1.6, 3.5]}}
    )
    _chunked_equals_whole(image, sel, "zyxc", [(16, 16, 16, 1), (7, 9, 11, 1), (30, 12, 38, 1)])


def test_blockwise_equals_whole_in_2d_and_mixed() -> None:
    image = (RNG.random((6, 40, 44, 1)) * 255).astype(np.float32)
    sel = parse_feature_selection(
        {
            "features": {f: [1.0, 3.5] for f in FEATURE_IDS},
            "compute_in_2d": [3.5],
        }
    )
    assert sel.compute_in_2d == (False, True)
    _chunked_equals_whole(image, sel, "zyxc", [(2, 16, 16, 1), (3, 13, 44, 1)])
    # all-2D stacks need no z halo: each slice equals the 2D computation of that slice
    sel2d = FeatureSelection.ilastik_default(compute_in_2d=True)
    stack = compute_features(image, sel2d, axes="zyxc", chunks=(1, 20, 20, 1)).compute()
    one_slice = compute_features(image[3], sel2d, axes="yxc").compute()
    assert np.array_equal(stack[3], one_slice)


@pytest.mark.parametrize("chunks", [None, (1, 23, 40, 2), (2, 64, 17, 2)])
def test_fused_2d_equals_unfused_slices(chunks: tuple[int, ...] | None) -> None:
    """2D blocks run fused passes (features/_fused.py); 3D columns in 2D run the unfused ones.

    Both must give the same bits: every feature at every default scale, two input channels, a
    time axis, blocks at and away from the image borders (and blocks smaller than the halo).
    """
    image = (RNG.random((2, 64, 70, 2)) * 255).astype(np.float32)
    sel = FeatureSelection.ilastik_default(compute_in_2d=True)
    source = image if chunks is None else da.from_array(image, chunks=chunks)
    fused = compute_features(source, sel, axes="tyxc").compute()
    for t in range(2):  # z of 1 slice per time point: each column computed slice by slice, unfused
        unfused = compute_features(image[t][None], sel, axes="zyxc").compute()[0]
        assert fused.shape[1:] == unfused.shape
        differs = [
            c for c in range(unfused.shape[-1]) if not np.array_equal(fused[t, ..., c], unfused[..., c])
        ]
        assert not differs, f"channels {differs} of t={t} differ"


def _unfused_3d(image: np.ndarray, sel: FeatureSelection) -> np.ndarray:
    """The old (unfused) path on a whole ``(z, y, x, c)`` image: every column's passes, channels-last."""
    n_c, shape = image.shape[-1], image.shape[:3]
    base = Frame(np.ascontiguousarray(np.moveaxis(image, -1, 0), np.float32), (0, 0, 0), shape)
    wanted = {j: [f for f, row in zip(sel.feature_ids, sel.matrix) if row[j]] for j in sel.columns()}
    per = {j: _column(base, sel, j, wanted[j], (0, 0, 0), shape, shape[0]) for j in sel.columns()}
    return np.stack(
        [
            res[k, c]
            for fid, j in sel.selected()
            for res in [per[j][fid]]
            for c in range(n_c)
            for k in range(res.shape[0])
        ],
        -1,
    )


def _differing(a: np.ndarray, b: np.ndarray) -> list[int]:
    """Channels (last axis) that are not bit for bit equal."""
    return [c for c in range(a.shape[-1]) if not np.array_equal(a[..., c], b[..., c])]


_IMAGE_3D = (RNG.random((38, 40, 37, 2)) * 255).astype(np.float32)
_MIXED = parse_feature_selection(
    {
        "features": {f: [0.7, 1.0, 3.5] for f in FEATURE_IDS}
        | {"GaussianSmoothing": [0.3, 0.7, 1.0, 3.5, 10.0]},
        "compute_in_2d": [1.0],
    }
)


@pytest.mark.parametrize("chunks", [None, (38, 40, 37, 2), (13, 17, 11, 2), (38, 9, 37, 1), (20, 40, 5, 2)])
def test_fused_3d_equals_unfused(chunks: tuple[int, ...] | None) -> None:
    """3D blocks run one fused call (features/_fused3d.py); the unfused passes give the same bits.

    Every feature at scales 0.3-10 (one column in 2D, written after the fused columns), two input
    channels, blocks at and away from the image borders, smaller than the halo, split channels.
    """
    assert columns_3d(_MIXED, 38) == [0, 1, 3, 4]
    reference = _unfused_3d(_IMAGE_3D, _MIXED)
    source = _IMAGE_3D if chunks is None else da.from_array(_IMAGE_3D, chunks=chunks)
    fused = compute_features(source, _MIXED, axes="zyxc").compute()
    assert fused.shape == reference.shape == (38, 40, 37, _MIXED.n_channels(2, 38))
    assert not _differing(fused, reference)


@pytest.mark.parametrize("sigma", [0.3, 0.7, math.sqrt(1.6**2 - 1), math.sqrt(3.5**2 - 1), math.sqrt(99.0)])
def test_presmoothing_in_one_call_equals_the_passes(sigma: float) -> None:
    """``smooth_columns`` (every 3D column's presmoothing in one call) gives ``Frame.smoothed``'s bits.

    Crops of one volume: the whole of it, inside it (halo consumed on every side), at one true
    border per axis, fewer planes than the ring (``2r + 1``); and a volume shorter than the radius
    (its mirrors wrap).
    """
    r = kernel_radius(sigma, 3.5)
    volume = (RNG.random((2, 40, 44, 90)) * 255).astype(np.float32)
    crops = [((0, 0, 0), (40, 44, 90)), ((0, 3, 1), (40, 44, 90)), ((1, 0, 5), (40, 2 * r + 3, 2 * r + 9))]
    if 2 * r + 3 <= 40:
        crops.append(((1, 2, 3), (2 * r + 3, 2 * r + 6, 90 - r)))
    _check_presmoothing(volume, crops, sigma)
    tiny = (RNG.random((1, 3, 5, 2)) * 255).astype(np.float32)
    _check_presmoothing(tiny, [((0, 0, 0), (3, 5, 2))], sigma)


def _check_presmoothing(volume: np.ndarray, crops: list, sigma: float) -> None:
    base = Frame(volume, (0, 0, 0), volume.shape[1:])
    boxes, offsets, outs, expected = [], [], [], []
    for lo, hi in crops:
        smoothed = base.crop(lo, hi).smoothed(sigma, 3.5)
        boxes.append(list(zip(lo, hi)))
        offsets.append([a - b for a, b in zip(smoothed.lo, lo)])
        outs.append(np.full_like(smoothed.data, np.nan))
        expected.append(smoothed.data)
    taps = gaussian_half_kernel(sigma, 0, 3.5)
    smooth_columns(volume, np.array(boxes, np.int64), np.array(offsets, np.int64), [taps] * len(outs), outs)
    for (lo, hi), out, reference in zip(crops, outs, expected):
        assert np.array_equal(out, reference), (lo, hi)


def test_fused_3d_time_points_are_independent() -> None:
    """A ``tzyxc`` block runs its time points through the same fused call: each equals its own ``zyxc``."""
    image = (RNG.random((2, 20, 22, 19, 2)) * 255).astype(np.uint8)
    sel = parse_feature_selection({"features": {f: [0.7, 1.6] for f in FEATURE_IDS}, "compute_in_2d": [0.7]})
    stack = compute_features(image, sel, axes="tzyxc", chunks=(2, 11, 22, 10, 2)).compute()
    for t in range(2):
        assert not _differing(stack[t], compute_features(image[t], sel, axes="zyxc").compute())


def test_fused_3d_comparison_sees_one_ulp() -> None:
    """The comparison above is bit for bit, and the image makes float32 rounding order visible."""
    sel = parse_feature_selection({"features": {"LaplacianOfGaussian": [1.0]}})
    fused = compute_features(_IMAGE_3D[..., :1], sel, axes="zyxc", chunks=(19, 20, 37, 1)).compute()
    nudged = fused.copy()
    nudged[5, 6, 7, 0] = np.nextafter(nudged[5, 6, 7, 0], np.float32(np.inf))
    assert _differing(nudged, fused) == [0]
    # LoG = (xx + yy) + zz; another order of the same float32 sum changes some voxels
    base = Frame(np.ascontiguousarray(np.moveaxis(_IMAGE_3D[..., :1], -1, 0)), (0, 0, 0), _IMAGE_3D.shape[:3])
    p = base.smoothed(1.0, 3.5)
    xx, yy, zz = (Derivatives(p, 2.0).unit(1.0, a, 2).data[0] for a in range(3))
    assert np.array_equal((xx + yy) + zz, fused[..., 0])
    assert not np.array_equal((xx + zz) + yy, fused[..., 0])


def test_time_axis_is_independent() -> None:
    image = (RNG.random((3, 40, 42, 2)) * 255).astype(np.uint8)
    sel = parse_feature_selection(
        {"features": {"GaussianGradientMagnitude": [1.6], "GaussianSmoothing": [0.3]}}
    )
    stack = compute_features(image, sel, axes="tyxc", chunks=(2, 16, 16, 2)).compute()
    for t in range(3):
        assert np.array_equal(stack[t], compute_features(image[t], sel, axes="yxc").compute())


# --- channel layout --------------------------------------------------------------------------------
def test_default_channel_counts_and_names() -> None:
    sel = FeatureSelection.ilastik_default()
    assert sel.n_channels(1) == 49
    assert sel.n_channels(1, z_size=64) == 61
    assert sel.n_channels(3) == 147
    names2d = FeatureSelection.ilastik_default(compute_in_2d=True).channel_names(1)
    assert names2d[0] == "Gaussian Smoothing (σ=0.3) in 2D"
    assert names2d[-1] == "Hessian of Gaussian Eigenvalues (σ=10.0) in 2D [1]"
    names3d = sel.channel_names(2, z_size=64)
    assert len(names3d) == 122
    assert names3d[-1] == "Hessian of Gaussian Eigenvalues (σ=10.0) [5]"
    image = (RNG.random((2, 40, 45, 3)) * 255).astype(np.uint8)
    out = compute_features(image[0], sel, axes="yxc")
    assert out.shape == (40, 45, 147)
    assert out.dtype == np.float32


def test_multichannel_order_is_feature_scale_channel_eigenvalue() -> None:
    image = (RNG.random((40, 44, 2)) * 255).astype(np.uint8)
    sel = parse_feature_selection(
        {"features": {"GaussianSmoothing": [1.0, 1.6], "HessianOfGaussianEigenvalues": [1.0]}}
    )
    stack = compute_features(image, sel, axes="yxc").compute()
    per = [compute_features(image[..., c : c + 1], sel, axes="yxc").compute() for c in range(2)]
    # GS(1.0)[c0], GS(1.0)[c1], GS(1.6)[c0], GS(1.6)[c1], HoGE[c0 ev0, c0 ev1, c1 ev0, c1 ev1]
    expected = [
        per[0][..., 0],
        per[1][..., 0],
        per[0][..., 1],
        per[1][..., 1],
        per[0][..., 2],
        per[0][..., 3],
        per[1][..., 2],
        per[1][..., 3],
    ]
    assert np.array_equal(stack, np.stack(expected, axis=-1))
    assert sel.channel_names(2)[4:] == [f"Hessian of Gaussian Eigenvalues (σ=1.0) [{k}]" for k in range(4)]


def test_eigenvalues_descending() -> None:
    image = (RNG.random((24, 26, 28)) * 255).astype(np.float32)
    for fid in ("HessianOfGaussianEigenvalues", "StructureTensorEigenvalues"):
        ev = filter_image(image, fid, 1.0)
        assert ev.shape[0] == 3
        assert np.all(ev[0] >= ev[1]) and np.all(ev[1] >= ev[2])


# --- validation ------------------------------------------------------------------------------------
def test_invalid_selections_and_inputs() -> None:
    with pytest.raises(FeatureSelectionError, match="unknown feature id"):
        parse_feature_selection({"features": {"Sobel": [1.0]}})
    with pytest.raises(FeatureSelectionError, match=r">= 0\.3"):
        parse_feature_selection({"features": {"GaussianSmoothing": [0.1]}})
    with pytest.raises(FeatureSelectionError, match="unknown feature set"):
        parse_feature_selection("everything")
    sel = FeatureSelection.ilastik_default()
    with pytest.raises(FeatureSelectionError, match=r"scale 10\.0 needs at least 36 pixels"):
        compute_features(np.zeros((30, 100, 1), np.uint8), sel, axes="yxc")
    with pytest.raises(AxesError, match="internal axis order"):
        compute_features(np.zeros((100, 100, 1), np.uint8), sel, axes="xyc")


def test_yaml_feature_sets_in_configs() -> None:
    yaml = pytest.importorskip("yaml")
    root = Path(__file__).resolve().parents[1] / "configs" / "features"
    files = sorted(root.glob("*.yaml"))
    assert files
    for path in files:
        sel = parse_feature_selection(yaml.safe_load(path.read_text()))
        assert sel.n_channels(1) > 0
    default = parse_feature_selection(yaml.safe_load((root / "ilastik-default.yaml").read_text()))
    assert default == FeatureSelection.ilastik_default()
