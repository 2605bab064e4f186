"""Scalar functions the kernels inline, in forms LLVM vectorizes: the C library's, which
numba calls for math.tanh and math.exp, run one element at a time (tanh 24 ns an element
against 1.8 here, exp 4.3 ns against ~1). Each is a plain function too (the math module's),
so it can be called and tested from Python.

float32 takes Eigen's and Cephes' single-precision forms, float64 Cephes' double ones; each
is within a few units in the last place of numpy's, and a NaN stays a NaN (a diverging run
must stay visible).
"""

from __future__ import annotations

import math

import numpy as np

from rnnexp.cells.jit import IN_ORDER, kernel, overload


def tanh(x):
    """tanh of a scalar, in the kernels, in forms that vectorize (the C library's tanh does
    not: 24 ns an element against 1.8): float32 by Eigen's rational approximation (max error
    2.4e-7, within float32's rounding), float64 by Cephes' (max error 2 ulp against numpy's)."""
    return math.tanh(x)


_CLAMP = 7.90531110763549805  # beyond it the float32 rational is 1 to float32 precision
_LOG2E = 1.4426950408889634


@overload(tanh)
def _tanh(x):
    if x == _float32():
        f = np.float32

        def tanh32(x):
            x0 = x  # past 9, tanh rounds to 1 in float32; the rational at its clamp is 1 - 2^-22
            # `if` rather than min/max: a NaN passes through, a diverging run stays visible
            if x > f(_CLAMP):
                x = f(_CLAMP)
            if x < f(-_CLAMP):
                x = f(-_CLAMP)
            x2 = x * x
            p = x2 * f(-2.76076847742355e-16) + f(2.00018790482477e-13)
            p = p * x2 + f(-8.60467152213735e-11)
            p = p * x2 + f(5.12229709037114e-08)
            p = p * x2 + f(1.48572235717979e-05)
            p = p * x2 + f(6.37261928875436e-04)
            p = p * x2 + f(4.89352455891786e-03)
            q = x2 * f(1.19825839466702e-06) + f(1.18534705686654e-04)
            q = q * x2 + f(2.26843463243900e-03)
            q = q * x2 + f(4.89352518554385e-03)
            return math.copysign(f(1), x0) if abs(x0) >= f(9.0) else x * p / q  # as numpy's

        return tanh32
    return lambda x: _tanh64(x)


@kernel
def _tanh64(x):
    """Cephes' tanh: a rational in x^2 below |x| = 0.625, else 1 - 2 / (exp(2|x|) + 1), with
    exp below; both computed, one kept (SIMD)."""
    a = abs(x)
    if a > 22.0:  # 1 - 2 / (e^44 + 1) rounds to 1 (at 19 it was 1 - 2^-53, never 1)
        a = 22.0
    z = a * a
    p = ((-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z
         - 1.61468768441708447952e3)  # fmt: skip
    q = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z
    small = a + a * z * p / (q + 4.84406305325125486048e3)
    e = _exp64(2.0 * a)  # 2a in 1.25 .. 44: a normal number
    t = small if a < 0.625 else 1.0 - 2.0 / (e + 1.0)
    t = math.copysign(t, x)  # tanh(-0.0) is -0.0
    return t if x == x else x  # a NaN stays NaN


def sigmoid(x):
    """1 / (1 + exp(-x)) as (1 + tanh(x/2)) / 2: no overflow in exp."""
    return 0.5 + 0.5 * math.tanh(0.5 * x)


@overload(sigmoid)
def _sigmoid(x):
    f = np.float32 if x == _float32() else np.float64  # a literal 0.5 is float64
    return lambda x: f(0.5) + f(0.5) * tanh(f(0.5) * x)


def exp(x):
    """e^x of a scalar: float64 by Cephes' Pade form, float32 by Cephes' polynomial, each
    times 2^n built from its bits (what ldexp does, vectorized). Results below the smallest
    normal number may be denormal or 0; above the largest finite one, inf."""
    return math.exp(x)


@overload(exp)
def _exp(x):
    return (lambda x: _exp32(x)) if x == _float32() else (lambda x: _exp64(x))


@kernel(fastmath=IN_ORDER)  # (e 2^512) 2^512 is finite, e (2^512 2^512) inf
def _exp64(x):
    """Cephes' exp: x = n ln2 + r, |r| <= ln2 / 2, e^r = 1 + 2 P(r) / (Q(r) - P(r)) (Pade),
    times 2^n as two normal powers of two (n runs to -1075: one alone would not be normal)."""
    # the clamps keep int(n) in range; a NaN goes through them, and its lane is dropped at
    # the end (poison from int(NaN) in a lane a select does not pick is defined in LLVM).
    # (Replacing the NaN up front instead stopped tanh's loop vectorizing: 10 ns, not 1.8)
    c = x
    if c > 709.79:  # e^709.79 is over the largest float64
        c = 709.79
    if c < -745.2:  # and e^-745.2 under half the smallest denormal
        c = -745.2
    n = math.floor(_LOG2E * c + 0.5)
    r = c - n * 6.93145751953125e-1 - n * 1.42860682030941723212e-6  # ln2 in two parts
    rr = r * r
    px = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr
              + 9.99999999999999999910e-1)  # fmt: skip
    qx = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr
          + 2.27265548208155028766e-1) * rr + 2.00000000000000000009  # fmt: skip
    k = np.int64(n)
    half = k >> np.int64(1)  # floor(n / 2): both halves in -538 .. 512, normal
    y = (1.0 + 2.0 * px / (qx - px)) * _pow2_64(half) * _pow2_64(k - half)
    y = y if x <= 709.782712893384 else np.inf
    return y if x == x else x


@kernel
def _pow2_64(k):
    """2.0^k from its bits, for k in -1022 .. 1023."""
    return np.int64((k + np.int64(1023)) << np.int64(52)).view(np.float64)


@kernel(fastmath=IN_ORDER)
def _exp32(x):
    """Cephes' expf: x = n ln2 + r, e^r by a degree-6 polynomial, times 2^n (as _exp64)."""
    f = np.float32
    c = x  # a NaN: as in _exp64
    if c > f(88.8):  # e^88.8 is over the largest float32
        c = f(88.8)
    if c < f(-104.0):  # and e^-104 under half the smallest denormal
        c = f(-104.0)
    n = math.floor(f(_LOG2E) * c + f(0.5))
    r = c - n * f(0.693359375) - n * f(-2.12194440e-4)  # ln2 in two parts
    p = f(1.9875691500e-4) * r + f(1.3981999507e-3)
    p = p * r + f(8.3334519073e-3)
    p = p * r + f(4.1665795894e-2)
    p = p * r + f(1.6666665459e-1)
    p = p * r + f(5.0000001201e-1)
    k = np.int32(n)
    half = k >> np.int32(1)  # both halves in -75 .. 64, normal
    y = (p * (r * r) + r + f(1)) * _pow2_32(half) * _pow2_32(k - half)
    y = y if x <= f(88.72283905206835) else f(np.inf)
    return y if x == x else x


@kernel
def _pow2_32(k):
    """2.0^k in float32 from its bits, for k in -126 .. 127."""
    return np.int32((k + np.int32(127)) << np.int32(23)).view(np.float32)


def _float32():
    """numba's float32 type, which the overloads choose by (numba is imported by then)."""
    from numba import types

    return types.float32
