"""The compiled kernels' common parts: numba's `njit` as every kernel uses it, with its cache,
and the loops they share (copies, the recurrent products for small batches). The scalar
functions they inline are in scalars.py.

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
from pathlib import Path

import numba

# what a kernel may do that numpy's ufuncs do not: fuse a multiply-add (contract) and sum in
# any order (reassoc), so LLVM can use FMA and SIMD reductions. Not `fast`'s nnan/ninf: a
# diverging run must still see its NaNs. error_model="numpy": x/0 is inf, not a Python
# exception, so the loops need no branch per division and vectorize.
FLAGS = {"contract", "reassoc", "nsz"}
# for arithmetic whose order is its point (a compensated sum, products that must not
# overflow on the way): flags are per instruction, so they hold where such code is inlined
IN_ORDER = FLAGS - {"reassoc"}


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


KERNELS: list = []  # every kernel made by `kernel`, for compiled_here()


def compiled_here() -> int:
    """How many kernels (one per signature) this process compiled rather than loaded from
    the cache: a first run's start-up, said to the person waiting for it. (The signatures
    not loaded: numba's cache-miss count also counts numba.literally's first, untyped try.)"""
    return sum(len(k.overloads) - sum(k.stats.cache_hits.values()) for k in KERNELS)


def kernel(fn=None, *, fastmath: set[str] = FLAGS):
    """numba.njit, cached on disk, with the house's float semantics (FLAGS, or `fastmath`
    where a kernel needs fewer); its cache entries are valid for these kernel sources only
    (SOURCES), and a cache that cannot be written costs only itself."""
    if fn is None:  # @kernel(fastmath=...)
        return lambda fn: kernel(fn, fastmath=fastmath)
    options = {"fastmath": fastmath, "error_model": "numpy", "nogil": True}
    try:
        compiled = numba.njit(cache=True, **options)(fn)
    except RuntimeError:  # numba may write no cache anywhere (a read-only install, no home
        compiled = numba.njit(**options)(fn)  # folder): compile in each process instead
    KERNELS.append(compiled)
    # numba's internals (hence the pin < 0.69 in pyproject.toml; without them numba's own
    # behaviour stands; an uncached kernel has no cache file): the stamp it compares with
    # the one in the cache's index, and its save
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
