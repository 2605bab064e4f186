"""The compiled kernels' common parts: numba's `njit` as every cell kernel uses it, the scalar
nonlinearities they inline, and the recurrent product for small batches.

A cell's kernels (beside its numpy-level methods, in its own file) are one compiled pass
over a step's elementwise work; at a small batch, the whole chunk's recurrence is one call
and its products are the loops below. Compiled once per dtype, then cached on disk: numba
writes next to the package's sources when it may, else to the user's cache folder
(~/.cache/numba, or NUMBA_CACHE_DIR), each file written whole and renamed into place, so
runs launched together share it. numba's cache checks only the source file of the function
it caches: after editing this file, remove the cells' `__pycache__/*.nb*` (`make clean`).

Inside a kernel a literal such as `1.0` is float64 and would lift float32 arithmetic to
float64: a kernel writes `one = x.dtype.type(1)` instead.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.extending import overload

# what a kernel may do that numpy's ufuncs do not: fuse a multiply-add (contract) and sum in
# any order (reassoc), so LLVM can use FMA and SIMD reductions. Not `fast`'s nnan/ninf: a
# diverging run must still see its NaNs. error_model="numpy": x/0 is inf, not a Python
# exception, so the loops need no branch per division and vectorize.
FLAGS = {"contract", "reassoc", "nsz"}


def kernel(fn):
    """numba.njit, cached on disk, with the house's float semantics (FLAGS)."""
    return numba.njit(cache=True, fastmath=FLAGS, error_model="numpy", nogil=True)(fn)


# below this, a chunk's recurrence is one call, its products the loop below: from batch 2 on
# OpenBLAS computes them faster (benchmarks/kernels.py)
SMALL_BATCH = 2


def tanh(x):
    """tanh of a scalar, in the kernels: float32 by a rational approximation that vectorizes
    (Eigen's, max error 2.4e-7, within float32's rounding), float64 by the C library."""
    return math.tanh(x)


_CLAMP = 7.90531110763549805  # beyond it the rational is 1 to float32 precision


@overload(tanh)
def _tanh(x):
    if x == numba.types.float32:
        f = np.float32

        def tanh32(x):
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
            return x * p / q

        return tanh32
    return lambda x: math.tanh(x)


def sigmoid(x):
    """1 / (1 + exp(-x)) as (1 + tanh(x/2)) / 2: no overflow in exp."""
    return 0.5 + 0.5 * math.tanh(0.5 * x)


@overload(sigmoid)
def _sigmoid(x):
    f = np.float32 if x == numba.types.float32 else np.float64  # a literal 0.5 is float64
    return lambda x: f(0.5) + f(0.5) * tanh(f(0.5) * x)


@kernel
def add_product(h, W, out):
    """out += h W for h (B, H), W (H, G), out (B, G), a small B. Four rows of W at a time:
    each pass over a row of out then does four multiply-adds a load, not one (as fast as
    OpenBLAS's sgemv at batch 1, 1.4x a loop over single rows)."""
    B, H = h.shape
    i = 0
    while i + 4 <= H:
        w0, w1, w2, w3 = W[i], W[i + 1], W[i + 2], W[i + 3]
        for b in range(B):
            h0, h1, h2, h3 = h[b, i], h[b, i + 1], h[b, i + 2], h[b, i + 3]
            o = out[b]  # 1-D views: LLVM vectorizes loops over them, not over 2-D indexing
            for j in range(o.shape[0]):
                o[j] += h0 * w0[j] + h1 * w1[j] + h2 * w2[j] + h3 * w3[j]
        i += 4
    for k in range(i, H):  # the last H % 4 rows
        w = W[k]
        for b in range(B):
            hi, o = h[b, k], out[b]
            for j in range(o.shape[0]):
                o[j] += hi * w[j]


@kernel
def product_t(d, W, out):
    """out = d W.T for d (B, G), W (H, G), out (B, H), a small B, without transposing W (a
    copy of W.T costs more than the product: 0.86 ms for H 256, G 1024): a dot product per
    row of W, four rows at a time, so each load of d serves four multiply-adds (1.4x one
    row at a time; as fast as OpenBLAS's sgemv)."""
    B = d.shape[0]
    H, G = W.shape
    zero = d.dtype.type(0)
    i = 0
    while i + 4 <= H:
        w0, w1, w2, w3 = W[i], W[i + 1], W[i + 2], W[i + 3]
        for b in range(B):
            db = d[b]
            s0 = s1 = s2 = s3 = zero
            for j in range(G):
                x = db[j]
                s0 += x * w0[j]
                s1 += x * w1[j]
                s2 += x * w2[j]
                s3 += x * w3[j]
            out[b, i], out[b, i + 1], out[b, i + 2], out[b, i + 3] = s0, s1, s2, s3
        i += 4
    for k in range(i, H):  # the last H % 4 rows
        w = W[k]
        for b in range(B):
            db = d[b]
            s = zero
            for j in range(G):
                s += db[j] * w[j]
            out[b, k] = s
