"""Compiled float32 kernels: separable Gaussian passes and per-pixel eigenvalues.

Arithmetic follows fastfilters, the library ilastik computes its features with, so
that results match ilastik to the last bit where possible:

- one pass per axis, in float32, ``s = c0*x[i]`` then ``s = fma(x[i+k] +/- x[i-k], c_k, s)``
  for ``k = 1..r`` with a true fused multiply-add;
- mirror borders that do not repeat the edge pixel (index -k reads k);
- eigenvalues of symmetric 2x2 and 3x3 matrices in float32 closed form, sorted descending.

Every pass is *valid* on sides that have a halo and *mirrored* on sides that are true
image borders, so a block computed with enough halo equals the whole-image result.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["eigenvalues_2d", "eigenvalues_3d", "pass_along"]


@intrinsic
def _fma32(typingctx, a, b, c):  # type: ignore[no-untyped-def]
    """Fused multiply-add ``a*b + c`` in float32 with a single rounding (``llvm.fma.f32``)."""
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        f32 = ir.FloatType()
        fn = builder.module.declare_intrinsic("llvm.fma", [f32], ir.FunctionType(f32, [f32, f32, f32]))
        return builder.call(fn, args)

    return sig, codegen


@njit(inline="always")
def _mirror(m: int, n: int) -> int:
    if n == 1:
        return 0
    period = 2 * (n - 1)
    m = abs(m) % period
    if m >= n:
        m = period - m
    return m


@njit(nogil=True, cache=True)
def _pass_last(src, taps, odd, off, dst):  # type: ignore[no-untyped-def]
    """Correlate along the last axis. src (R, n_in), dst (R, n_out); output i is centred at i+off.

    Each row is copied into a mirror-padded line buffer; the tap loop runs outside the pixel
    loop so that the pixel loop vectorises, accumulating in the destination row.
    """
    rows, n_in = src.shape
    n_out = dst.shape[1]
    r = taps.shape[0] - 1
    n_buf = n_out + 2 * r
    buf = np.empty(n_buf, np.float32)
    c0 = taps[0]
    j0 = max(0, r - off)
    j1 = min(n_buf, r - off + n_in)
    for row in range(rows):
        line = src[row]
        acc = dst[row]
        for j in range(j0, j1):  # loops: numba's slice assignment is several times slower
            buf[j] = line[j - r + off]
        for j in range(j0):
            buf[j] = line[_mirror(j - r + off, n_in)]
        for j in range(j1, n_buf):
            buf[j] = line[_mirror(j - r + off, n_in)]
        centre = buf[r : r + n_out]
        for i in range(n_out):
            acc[i] = c0 * centre[i]
        for k in range(1, r + 1):
            ck = taps[k]
            lo = buf[r - k : r - k + n_out]
            hi = buf[r + k : r + k + n_out]
            if odd:
                for i in range(n_out):
                    acc[i] = _fma32(hi[i] - lo[i], ck, acc[i])  # type: ignore[call-arg]  # numba intrinsic: typed by numba, not mypy
            else:
                for i in range(n_out):
                    acc[i] = _fma32(hi[i] + lo[i], ck, acc[i])  # type: ignore[call-arg]  # numba intrinsic: typed by numba, not mypy


@njit(nogil=True, cache=True)
def _pass_middle(src, taps, odd, off, dst):  # type: ignore[no-untyped-def]
    """Correlate along the middle axis. src (A, n_in, W), dst (A, n_out, W)."""
    outer, n_in, width = src.shape
    n_out = dst.shape[1]
    r = taps.shape[0] - 1
    c0 = taps[0]
    for a in range(outer):
        for i in range(n_out):
            c = i + off
            out = dst[a, i]
            centre = src[a, _mirror(c, n_in)]
            for w in range(width):
                out[w] = c0 * centre[w]
            for k in range(1, r + 1):
                ck = taps[k]
                p = src[a, _mirror(c + k, n_in)]
                q = src[a, _mirror(c - k, n_in)]
                if odd:
                    for w in range(width):
                        out[w] = _fma32(p[w] - q[w], ck, out[w])  # type: ignore[call-arg]  # numba intrinsic: typed by numba, not mypy
                else:
                    for w in range(width):
                        out[w] = _fma32(p[w] + q[w], ck, out[w])  # type: ignore[call-arg]  # numba intrinsic: typed by numba, not mypy


def pass_along(
    src: np.ndarray, axis: int, taps: np.ndarray, odd: bool, mirror_lo: bool, mirror_hi: bool
) -> np.ndarray:
    """One separable filter pass along ``axis`` of a C-contiguous float32 array.

    Parameters
    ----------
    src : ndarray of float32
        Input, C-contiguous.
    axis : int
        Axis to filter along.
    taps : ndarray of float32, shape (r + 1,)
        Half kernel from :func:`cascade.features.kernels.gaussian_half_kernel`.
    odd : bool
        True for antisymmetric (first derivative) kernels.
    mirror_lo, mirror_hi : bool
        Whether the low/high side of ``src`` is a true image border (mirror there) or has
        a halo of at least ``r`` pixels (consume it: the output is ``r`` shorter on that side).

    Returns
    -------
    ndarray of float32
        The filtered array, C-contiguous.
    """
    r = taps.shape[0] - 1
    n_in = src.shape[axis]
    off = 0 if mirror_lo else r
    n_out = n_in - (0 if mirror_lo else r) - (0 if mirror_hi else r)
    if n_out <= 0:
        raise ValueError(f"pass of radius {r} along axis {axis} leaves no output from {n_in} pixels")
    shape = list(src.shape)
    shape[axis] = n_out
    dst = np.empty(shape, np.float32)
    outer = math.prod(src.shape[:axis])
    if axis == src.ndim - 1:
        _pass_last(src.reshape(outer, n_in), taps, odd, off, dst.reshape(outer, n_out))
    else:
        width = math.prod(src.shape[axis + 1 :])
        _pass_middle(src.reshape(outer, n_in, width), taps, odd, off, dst.reshape(outer, n_out, width))
    return dst


@njit(nogil=True, cache=True)
def _ev2d(xx, xy, yy, big, small):  # type: ignore[no-untyped-def]
    half = np.float32(0.5)
    for i in range(xx.shape[0]):
        a = xx[i]
        b = xy[i]
        c = yy[i]
        mean = (a + c) * half
        d = (a - c) * half
        d = d * d
        root = np.sqrt(d + b * b)
        e0 = mean + root
        e1 = mean - root
        if e0 > e1:
            big[i] = e0
            small[i] = e1
        else:
            big[i] = e1
            small[i] = e0


def eigenvalues_2d(xx: np.ndarray, xy: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Eigenvalues of symmetric 2x2 matrices, descending: returns shape ``(2, *xx.shape)``."""
    out = np.empty((2, *xx.shape), np.float32)
    _ev2d(xx.reshape(-1), xy.reshape(-1), yy.reshape(-1), out[0].reshape(-1), out[1].reshape(-1))
    return out


_F = np.float32
_INV3 = _F(1.0 / 3.0)
_ROOT3 = _F(math.sqrt(3.0))
#: Series in double (Taylor; truncation below 1e-15 relative on the ranges used: atan on
#: ``|u| <= tan(pi/8)``, cosine and sine on ``[0, pi/3]``), and the relative margin within which a
#: float32 rounding counts as certain: far above the series' error and libm's (one double ulp).
_ATAN = np.array([(-1.0) ** k / (2 * k + 1) for k in range(18)])
_COS = np.array([(-1.0) ** k / math.factorial(2 * k) for k in range(11)])
_SIN = np.array([(-1.0) ** k / math.factorial(2 * k + 1) for k in range(11)])
_TAN_PI_8 = math.tan(math.pi / 8)
_MARGIN = 2.0**-40


@njit(inline="always")
def _ev3d_setup(a00, a01, a02, a11, a12, a22, m):  # type: ignore[no-untyped-def]
    """Eberly's closed form up to the angle, in float32: ``(c2/3, magnitude, -b/2, sqrt(-q))``."""
    two = _F(2.0)
    half = _F(0.5)
    zero = _F(0.0)
    b00 = a00 / m
    b01 = a01 / m
    b02 = a02 / m
    b11 = a11 / m
    b12 = a12 / m
    b22 = a22 / m
    c0 = b00 * b11 * b22 + two * b01 * b02 * b12 - b00 * b12 * b12 - b11 * b02 * b02 - b22 * b01 * b01
    c1 = b00 * b11 - b01 * b01 + b00 * b22 - b02 * b02 + b11 * b22 - b12 * b12
    c2 = b00 + b11 + b22
    c2_3 = c2 * _INV3
    a_3 = (c1 - c2 * c2_3) * _INV3
    a_3 = zero if a_3 > zero else a_3
    mb_2 = half * (c0 + c2_3 * (two * c2_3 * c2_3 - c1))
    q = mb_2 * mb_2 + a_3 * a_3 * a_3
    q = zero if q > zero else q
    return c2_3, np.sqrt(-a_3), mb_2, np.sqrt(-q)


@njit(inline="always")
def _ev3d_roots(c2_3, magnitude, cs, sn, m):  # type: ignore[no-untyped-def]
    """The three roots from the angle's cosine and sine, sorted descending, scaled back by ``m``."""
    two = _F(2.0)
    r0 = c2_3 + two * magnitude * cs
    r1 = c2_3 - magnitude * (cs + _ROOT3 * sn)
    r2 = c2_3 - magnitude * (cs - _ROOT3 * sn)
    # three compare-and-swaps (if r0 < r1: swap them, ...) as selects: the loop vectorises
    s0, s1 = (r1, r0) if r0 < r1 else (r0, r1)
    t0, t2 = (r2, s0) if s0 < r2 else (s0, r2)
    u1, u2 = (t2, s1) if s1 < t2 else (s1, t2)
    return t0 * m, u1 * m, u2 * m


@njit(inline="always")
def _ev3d_libm(a00, a01, a02, a11, a12, a22, m):  # type: ignore[no-untyped-def]
    """One matrix with the angle's atan2, cosine and sine from libm in double, rounded to float32."""
    zero = _F(0.0)
    if m == zero:
        return zero, zero, zero
    c2_3, magnitude, mb_2, root_q = _ev3d_setup(a00, a01, a02, a11, a12, a22, m)
    angle = _F(math.atan2(np.float64(root_q), np.float64(mb_2))) * _INV3
    cs = _F(math.cos(np.float64(angle)))
    sn = _F(math.sin(np.float64(angle)))
    return _ev3d_roots(c2_3, magnitude, cs, sn, m)


@njit(nogil=True, cache=True)
def _ev3d_reference(a00, a01, a02, a11, a12, a22, e0, e1, e2):  # type: ignore[no-untyped-def]
    """:func:`_ev3d` with libm for every matrix (the tests' reference)."""
    for i in range(a00.shape[0]):
        e0[i], e1[i], e2[i] = _ev3d_libm(
            a00[i], a01[i], a02[i], a11[i], a12[i], a22[i], _max_abs(a00, a01, a02, a11, a12, a22, i)
        )


@njit(inline="always")
def _max_abs(a00, a01, a02, a11, a12, a22, i):  # type: ignore[no-untyped-def]
    return max(
        max(max(abs(a00[i]), abs(a01[i])), max(abs(a02[i]), abs(a11[i]))), max(abs(a12[i]), abs(a22[i]))
    )


@njit(inline="always")
def _series(c, x2):  # type: ignore[no-untyped-def]
    """``sum c[k] x2^k`` in double (Horner)."""
    s = c[c.shape[0] - 1]
    for k in range(c.shape[0] - 2, -1, -1):
        s = s * x2 + c[k]
    return s


@njit(inline="always")
def _to_f32(v):  # type: ignore[no-untyped-def]
    """``float32(v)`` and whether it may differ from libm's value rounded to float32 (or is NaN)."""
    e = abs(v) * _MARGIN
    return _F(v), _F(v - e) != _F(v + e)


@njit(inline="always")
def _atan2_f32(y, x):  # type: ignore[no-untyped-def]
    """``float32(atan2(y, x))`` for ``y > 0`` by a series in double, with :func:`_to_f32`'s flag."""
    ax = abs(x)
    t = min(ax, y) / max(ax, y)
    reduce = t > _TAN_PI_8
    u = (t - 1.0) / (t + 1.0) if reduce else t
    r = (0.25 * math.pi if reduce else 0.0) + u * _series(_ATAN, u * u)
    r = 0.5 * math.pi - r if y > ax else r
    return _to_f32(math.pi - r if x < 0.0 else r)


@njit(nogil=True, cache=True, error_model="numpy")
def _ev3d_series(a00, a01, a02, a11, a12, a22, e0, e1, e2):  # type: ignore[no-untyped-def]
    """:func:`_ev3d` without libm (a loop that vectorises); NaN marks the matrices it leaves to libm."""
    zero = _F(0.0)
    one = _F(1.0)
    nan = _F(np.nan)
    for i in range(a00.shape[0]):
        m0 = _max_abs(a00, a01, a02, a11, a12, a22, i)
        m = one if m0 == zero else m0
        c2_3, magnitude, mb_2, root_q = _ev3d_setup(a00[i], a01[i], a02[i], a11[i], a12[i], a22[i], m)
        y, x = np.float64(root_q), np.float64(mb_2)
        theta, close_a = _atan2_f32(y, x)
        angle = np.float64(theta * _INV3)
        cs, close_c = _to_f32(_series(_COS, angle * angle))
        sn, close_s = _to_f32(angle * _series(_SIN, angle * angle))
        r0, r1, r2 = _ev3d_roots(c2_3, magnitude, cs, sn, m)
        libm = close_a | close_c | close_s | (y == 0.0) | (x == 0.0)
        e0[i] = nan if libm else zero if m0 == zero else r0
        e1[i] = zero if m0 == zero else r1
        e2[i] = zero if m0 == zero else r2


@njit(nogil=True, cache=True)
def _ev3d(a00, a01, a02, a11, a12, a22, e0, e1, e2):  # type: ignore[no-untyped-def]
    """Eberly's closed form for symmetric 3x3 matrices, in float32, sorted descending.

    Every product and sum is a float32 operation; the angle's atan2, cosine and sine are
    evaluated in double and rounded to float32 (the rounding of each step is what makes the
    result equal ilastik's to the last bit). A vectorised loop takes them from series in double
    where their float32 rounding is certain (the series' error is below ``_MARGIN`` relative,
    libm's below one double ulp); the rest (about 1 in 10^4, and zeros, NaN) call libm.
    """
    _ev3d_series(a00, a01, a02, a11, a12, a22, e0, e1, e2)
    for i in range(a00.shape[0]):
        if e0[i] != e0[i]:
            m = _max_abs(a00, a01, a02, a11, a12, a22, i)
            e0[i], e1[i], e2[i] = _ev3d_libm(a00[i], a01[i], a02[i], a11[i], a12[i], a22[i], m)


def eigenvalues_3d(
    a00: np.ndarray, a01: np.ndarray, a02: np.ndarray, a11: np.ndarray, a12: np.ndarray, a22: np.ndarray
) -> np.ndarray:
    """Eigenvalues of symmetric 3x3 matrices, descending: returns shape ``(3, *a00.shape)``.

    Arguments follow fastfilters' call, which passes the Hessian or tensor entries z-first:
    ``a00 = zz, a01 = yz, a02 = xz, a11 = yy, a12 = xy, a22 = xx``. The rounding of the
    float32 closed form depends on that order.
    """
    out = np.empty((3, *a00.shape), np.float32)
    flat = [a.reshape(-1) for a in (a00, a01, a02, a11, a12, a22)]
    _ev3d(*flat, out[0].reshape(-1), out[1].reshape(-1), out[2].reshape(-1))  # type: ignore[call-arg]
    return out
