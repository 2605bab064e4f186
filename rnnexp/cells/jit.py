"""The compiled kernels' common parts: numba's `njit` as every kernel uses it, with its cache,
and the loops they share (copies, the recurrent products for small batches). The scalar
functions they inline are in scalars.py.

A cell's kernels (in its own file) are one compiled pass over a step's elementwise work; at
a small batch, the whole chunk's recurrence is one call (recurrence.py) and its products are
the loops below.

Compiled once per dtype, then cached on disk by numba in a folder of rnnexp's own, named for
a digest of every kernel source (kernel_cache.py sets NUMBA_CACHE_DIR to it before numba is
imported): numba's own check reads only the cached function's file, while a kernel inlines
code from other files; a new folder is numba's documented remedy (a cleared cache).

A kernel called by another is inlined into it at numba's level (`inline="always"`): its
caller's cached code then holds all it runs. Left as a call, a first run would run the
callee's own compiled copy and later runs the copy inside the cached caller, optimized apart:
a first run's bits would differ from every later one's. Kernels whose float flags are their
point (IN_ORDER) stay calls: inlined, they would take their caller's flags.

numba itself is imported at the first call of any kernel, when every kernel is made and every
overload registered (`Kernel`): the package, its config and the command line import none.

Inside a kernel a literal such as `1.0` is float64 and would lift float32 arithmetic to
float64: a kernel writes `one = x.dtype.type(1)` instead.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable

# what a kernel may do that numpy's ufuncs do not: fuse a multiply-add (contract) and sum in
# any order (reassoc), so LLVM can use FMA and SIMD reductions. Not `fast`'s nnan/ninf: a
# diverging run must still see its NaNs. error_model="numpy": x/0 is inf, not a Python
# exception, so the loops need no branch per division and vectorize.
FLAGS = {"contract", "reassoc", "nsz"}
# for arithmetic whose order is its point (a compensated sum, products that must not
# overflow on the way): such a kernel is called, never inlined, so its flags hold
IN_ORDER = FLAGS - {"reassoc"}

KERNELS: list[Kernel] = []  # every kernel made by `kernel`
_OVERLOADS: list[tuple] = []  # (function, implementation, options) for numba's `overload`
_lock = threading.Lock()
_made = threading.Event()  # numba imported, every kernel made and overload registered
CACHE = False  # whether numba may cache here (kernel_cache.usable), known when kernels are made


class Kernel:
    """A kernel as its module holds it: made by numba (`njit`) at the first use of any kernel,
    together with every other, so importing rnnexp imports no numba (0.3 s: the config, the
    command's --help and its refusals need none). Then each rnnexp module that holds a
    kernel holds numba's dispatcher instead, and calls it directly."""

    def __init__(self, fn: Callable, fastmath: set[str]):
        functools.update_wrapper(self, fn)
        self.py_func, self.fastmath, self.compiled = fn, fastmath, None

    def __call__(self, *args):
        return made(self)(*args)

    def __getattr__(self, name: str):  # numba's: overloads, stats, ...
        if name.startswith("__") or name in ("py_func", "fastmath", "compiled"):
            raise AttributeError(name)  # Python's own protocols, and a copy not yet made
        return getattr(made(self), name)

    def __reduce__(self):  # pickled by name, as the module holds it (a kernel, or its dispatcher)
        return _by_name, (self.__module__, self.__qualname__)


def _by_name(module: str, name: str):
    import importlib

    return getattr(importlib.import_module(module), name)


def made(k: Kernel):
    """The kernel's numba dispatcher (every kernel made at the first call)."""
    if not _made.is_set():
        make_all()
    return k.compiled


def compiled_here() -> int:
    """How many kernels (one per signature) this process compiled rather than loaded from
    the cache: a first run's start-up, said to the person waiting for it. (The signatures
    not loaded: numba's cache-miss count also counts numba.literally's first, untyped try.)"""
    if not _made.is_set():
        return 0
    return sum(len(k.compiled.overloads) - sum(k.compiled.stats.cache_hits.values())
               for k in KERNELS)  # fmt: skip


def kernel(fn=None, *, fastmath: set[str] = FLAGS):
    """numba.njit, cached on disk, with the house's float semantics (FLAGS, or `fastmath`
    where a kernel needs fewer); inlined into the kernels that call it, but for IN_ORDER ones."""
    if fn is None:  # @kernel(fastmath=...)
        return lambda fn: kernel(fn, fastmath=fastmath)
    k = Kernel(fn, fastmath)
    with _lock:
        KERNELS.append(k)
        if _made.is_set():  # a kernel defined after the first use
            k.compiled = _njit(k)
    return k


def overload(function: Callable, **options) -> Callable:
    """numba.extending.overload, registered when the kernels are made."""

    def register(implementation: Callable) -> Callable:
        with _lock:
            _OVERLOADS.append((function, implementation, options))
            if _made.is_set():
                _register(function, implementation, options)
        return implementation

    return register


def make_all() -> None:
    """numba imported, every kernel made and every overload registered: done at the first
    call of a kernel; numba code of one's own that calls the scalar functions (scalars.py)
    before any kernel ran calls this first."""
    from numba.extending import typeof_impl

    from rnnexp.kernel_cache import usable

    with _lock:
        if _made.is_set():
            return
        global CACHE
        CACHE = usable()
        for args in _OVERLOADS:
            _register(*args)
        for k in KERNELS:
            k.compiled = _njit(k)
        # a Kernel that compiled code meets as a global (a module outside rnnexp kept one) is
        # typed as its dispatcher; rnnexp's own modules hold the dispatchers from here on
        typeof_impl.register(Kernel)(lambda k, c: typeof_impl(k.compiled, c))
        for name, module in list(sys.modules.items()):
            if name.startswith("rnnexp.") and module is not None:
                _hand_over(module)
                for cls in vars(module).values():  # a cell's class holds its kernels too
                    if isinstance(cls, type) and cls.__module__ == name:
                        _hand_over(cls)
        _made.set()


def _hand_over(holder: object) -> None:
    """The kernels a module or class holds replaced by their dispatchers."""
    for key, value in list(vars(holder).items()):
        if isinstance(value, staticmethod) and isinstance(value.__func__, Kernel):
            setattr(holder, key, staticmethod(value.__func__.compiled))
        elif isinstance(value, Kernel):
            setattr(holder, key, value.compiled)


def _njit(k: Kernel):
    import numba

    inline = "always" if k.fastmath == FLAGS else "never"
    options = {"fastmath": k.fastmath, "error_model": "numpy", "nogil": True, "inline": inline}
    try:
        return numba.njit(cache=CACHE, **options)(k.py_func)
    except RuntimeError:  # the folder usable() accepted failed numba's own check of it since
        return numba.njit(**options)(k.py_func)  # (a disk filled meanwhile): compile per process


def _register(function: Callable, implementation: Callable, options: dict) -> None:
    from numba.extending import overload as numba_overload

    numba_overload(function, **options)(implementation)


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
