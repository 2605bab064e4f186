"""The compiled kernels' common parts: numba's `njit` as every cell kernel uses it, the scalar
nonlinearities they inline, and the recurrent product for small batches.

A cell's kernels (beside its numpy-level methods, in its own file) are one compiled pass
over a step's elementwise work; at a small batch, the whole chunk's recurrence is one call
and its products are the loops below. Compiled once per dtype, then cached on disk: numba
writes next to the package's sources when it may, else to the user's cache folder
(~/.cache/numba, or NUMBA_CACHE_DIR), each file written whole and renamed into place, so
runs launched together share it.

Inside a kernel a literal such as `1.0` is float64 and would lift float32 arithmetic to
float64: a kernel writes `one = x.dtype.type(1)` instead.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numba
import numpy as np
from numba.extending import overload

# what a kernel may do that numpy's ufuncs do not: fuse a multiply-add (contract) and sum in
# any order (reassoc), so LLVM can use FMA and SIMD reductions. Not `fast`'s nnan/ninf: a
# diverging run must still see its NaNs. error_model="numpy": x/0 is inf, not a Python
# exception, so the loops need no branch per division and vectorize.
FLAGS = {"contract", "reassoc", "nsz"}


def _sources_digest() -> str:
    """A digest of every file that defines kernels. A kernel inlines the kernels it calls
    (this file's tanh into each cell's, a cell's step into stepping.py's loop), but numba's
    cache checks only the file of the function it caches: edit tanh here, and every cell
    would load its stale code."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in [*sorted(package.glob("cells/*.py")), package / "stepping.py"]:
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()


SOURCES = _sources_digest()


def kernel(fn):
    """numba.njit, cached on disk, with the house's float semantics (FLAGS); its cache
    entries are valid for these kernel sources only (SOURCES), and a cache that cannot be
    written costs only itself."""
    options = {"fastmath": FLAGS, "error_model": "numpy", "nogil": True}
    try:
        compiled = numba.njit(cache=True, **options)(fn)
    except RuntimeError:  # numba may write no cache anywhere (a read-only install, no home
        return numba.njit(**options)(fn)  # folder): compile in each process instead
    # numba's internals (hence the pin < 0.69 in pyproject.toml; without them numba's own
    # behaviour stands): the stamp it compares with the one in the cache's index, and its save
    cache = getattr(compiled, "_cache", None)
    cache_file = getattr(cache, "_cache_file", None)
    if cache_file is not None and hasattr(cache_file, "_source_stamp"):
        cache_file._source_stamp = (cache_file._source_stamp, SOURCES)
    if cache is not None and hasattr(cache, "save_overload") and cache_file is not None:
        cache.load_overload = _loading_if_it_can(cache.load_overload, cache_file)
        cache.save_overload = _saving_if_it_can(cache.save_overload)
    return compiled


def _loading_if_it_can(load, cache_file):
    """numba's load of a cached kernel, but a damaged cache (a file cut short by a kill or a
    full disk) is compiled again and rewritten, not raised out of the run: its index is
    emptied so that the compile's save starts it afresh."""

    def load_overload(sig, target_context):
        try:
            return load(sig, target_context)
        except Exception:  # noqa: BLE001 - pickle's errors, EOFError, OSError: all mean "damaged"
            try:
                cache_file.flush()
            except OSError:
                pass
            return None

    return load_overload


def _saving_if_it_can(save):
    """numba's save of a compiled kernel, but a full or failing disk costs only the cache:
    numba raises its OSError out of the compile, which would end the run (its temporary
    file is removed either way)."""

    def save_overload(sig, data) -> None:
        try:
            save(sig, data)
        except OSError:
            pass

    return save_overload


# below this, a chunk's recurrence is one call, its products the loop below: from batch 2 on
# OpenBLAS computes them faster (benchmarks/kernels.py)
SMALL_BATCH = 2


def tanh(x):
    """tanh of a scalar, in the kernels, in forms that vectorize (the C library's tanh does
    not: 24 ns an element against 1.8): float32 by Eigen's rational approximation (max error
    2.4e-7, within float32's rounding), float64 by Cephes' (max error 2 ulp against numpy's)."""
    return math.tanh(x)


_CLAMP = 7.90531110763549805  # beyond it the float32 rational is 1 to float32 precision
_LOG2E = 1.4426950408889634


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
    return lambda x: _tanh64(x)


@kernel
def _tanh64(x):
    """Cephes' tanh: a rational in x^2 below |x| = 0.625, else 1 - 2 / (exp(2|x|) + 1), with
    exp by Cephes' Pade form times an exact power of two; both computed, one kept (SIMD)."""
    a = abs(x)
    if a > 19.0:  # tanh(19) is 1 in float64
        a = 19.0
    z = a * a
    p = ((-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z
         - 1.61468768441708447952e3)  # fmt: skip
    q = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z
    small = a + a * z * p / (q + 4.84406305325125486048e3)
    y = 2.0 * a
    n = math.floor(_LOG2E * y + 0.5)  # exp(y) = 2^n exp(r), |r| <= ln(2) / 2
    r = y - n * 6.93145751953125e-1 - n * 1.42860682030941723212e-6
    rr = r * r
    px = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr
              + 9.99999999999999999910e-1)  # fmt: skip
    qx = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr
          + 2.27265548208155028766e-1) * rr + 2.00000000000000000009  # fmt: skip
    e = (1.0 + 2.0 * px / (qx - px)) * np.float64(np.int64(1) << np.int64(n))  # n in 0..55
    t = small if a < 0.625 else 1.0 - 2.0 / (e + 1.0)
    t = t if x >= 0.0 else -t
    return t if x == x else x  # a NaN stays NaN


def sigmoid(x):
    """1 / (1 + exp(-x)) as (1 + tanh(x/2)) / 2: no overflow in exp."""
    return 0.5 + 0.5 * math.tanh(0.5 * x)


@overload(sigmoid)
def _sigmoid(x):
    f = np.float32 if x == numba.types.float32 else np.float64  # a literal 0.5 is float64
    return lambda x: f(0.5) + f(0.5) * tanh(f(0.5) * x)


@kernel
def copy(src, out):
    """out[...] = src for 2-D arrays, as loops: numba's slice assignment (`out[:] = src`)
    takes ~4 s longer to compile, in every kernel that has one."""
    for b in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[b, j] = src[b, j]


@kernel
def zero(out):
    """out[...] = 0 for a 2-D out (loops, as copy)."""
    nought = out.dtype.type(0)
    for b in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[b, j] = nought


@kernel
def fill_rows(out, row):
    """out[b] = row for every row b of a 2-D out (loops, as copy)."""
    for b in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[b, j] = row[j]


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
