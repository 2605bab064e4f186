"""Where the compiled whole-chunk recurrence stops paying: a cell's chunk, forward and
backward, as one compiled call with its own products (the small-batch regime) against a
compiled pass per step around OpenBLAS's products, per cell, H and B, 1 BLAS thread, in one
process. The crossover sets rnnexp/cells/recurrence.py's SMALL_BATCH. Then the chunk's GEMMs at
min-char-rnn's shapes (T25 H100 V65 float64): as compiled loops (what compiling the whole
B1 step would make of them) against np.matmul called from Python.

    .venv/bin/python benchmarks/kernels.py
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads

import numpy as np  # noqa: E402

from rnnexp.cells import CELLS, recurrence  # noqa: E402
from rnnexp.cells.jit import add_product, kernel, zero  # noqa: E402


def chunk_us_per_char(name: str, H: int, B: int, T: int, dtype: str, small: bool,
                      window: float) -> float:  # fmt: skip
    """Best of 5 windows: microseconds a character of forward + backward."""
    recurrence.SMALL_BATCH = B + 1 if small else 1  # the regime chosen for this batch
    rng = np.random.default_rng(0)
    cell = CELLS[name](H)
    shapes = cell.param_shapes(H)
    p = {k: (rng.standard_normal(s) * 0.05).astype(dtype) for k, s in shapes.items()}
    a = rng.standard_normal((T, B, cell.gates * H)).astype(dtype)
    dh = rng.standard_normal((T, B, H)).astype(dtype)
    ws, g = cell.workspace(B, T, dtype), {k: np.empty(s, dtype) for k, s in shapes.items()}
    state = [np.zeros((B, H), dtype) for _ in cell.parts]

    def chunk():
        cell.forward(p, a, state, ws)
        cell.backward(p, dh, ws, g)

    return _best_us(chunk, window) / (T * B)


def _best_us(f, window: float) -> float:
    """Microseconds a call of f, best of 5 windows of `window` seconds."""
    f()  # compiles, or loads the cache
    best = float("inf")
    for _ in range(5):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < window:
            f()
            n += 1
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


@kernel
def _readout_loops(hs, Why, out):
    """out = hs Why, a row at a time: the products a compiled step would run."""
    zero(out)
    for t in range(hs.shape[0]):
        add_product(hs[t : t + 1], Why, out[t : t + 1])


@kernel
def _outer_loops(hs, dy, g):
    """g = hs.T dy as T outer products accumulated (dWhy in a compiled step)."""
    zero(g)
    for t in range(hs.shape[0]):
        h, d = hs[t], dy[t]
        for i in range(h.shape[0]):
            gi, hi = g[i], h[i]
            for j in range(d.shape[0]):
                gi[j] += hi * d[j]


def gemms_as_loops(window: float) -> None:
    rng = np.random.default_rng(0)
    hs, Why = rng.standard_normal((25, 100)), rng.standard_normal((100, 65))
    dy, out, g = rng.standard_normal((25, 65)), np.empty((25, 65)), np.empty((100, 65))
    pairs = {"readout hs Why": (lambda: _readout_loops(hs, Why, out),
                                lambda: np.matmul(hs, Why, out=out)),
             "dWhy hs.T dy": (lambda: _outer_loops(hs, dy, g),
                              lambda: np.matmul(hs.T, dy, out=g))}  # fmt: skip
    print("us a chunk (T25 H100 V65 float64), best of 5: compiled loops | np.matmul")
    for what, (loops, blas) in pairs.items():
        print(f"{what:15} {_best_us(loops, window):8.2f} {_best_us(blas, window):8.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dtype", default="float32")
    p.add_argument("--T", type=int, default=64)
    p.add_argument("--cells", default="rnn,lstm,gru")
    p.add_argument("--hidden", default="100,256")
    p.add_argument("--batches", default="1,2,4")
    p.add_argument("--window", type=float, default=0.2, help="seconds of one timed window")
    args = p.parse_args()
    print(f"us a character, chunk forward + backward, T{args.T} {args.dtype}, best of 5")
    print(f"{'cell':5} {'H':>4} {'B':>3} {'one call':>9} {'per step':>9}  faster")
    for name in args.cells.split(","):
        for H in map(int, args.hidden.split(",")):
            for B in map(int, args.batches.split(",")):
                how = (H, B, args.T, args.dtype)
                one = chunk_us_per_char(name, *how, small=True, window=args.window)
                per = chunk_us_per_char(name, *how, small=False, window=args.window)
                best = "one call" if one < per else "per step"
                print(f"{name:5} {H:4} {B:3} {one:9.2f} {per:9.2f}  {best}", flush=True)
    gemms_as_loops(args.window)


if __name__ == "__main__":
    main()
