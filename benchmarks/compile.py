"""What the compiled kernels cost at start-up: a first run on an empty kernel cache (it
compiles) against the next (it loads), per cell and dtype, in fresh processes, 1 BLAS thread.

    .venv/bin/python benchmarks/compile.py

"engine": the seconds from a new model to its first training step at batch 1 and 32 and a
sampling step, in-process; "rnnexp": the wall time of `rnnexp model=M model.dtype=D
train.steps=1` (the whole command: imports, store, artifacts). Each cold run gets its own
empty NUMBA_CACHE_DIR, as a fresh install has. Median of --repeats.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ENGINE = """
import time, numpy as np
from rnnexp import CharRNN, Trainer, make_optimizer, preset
start = time.perf_counter()
for B in (1, 32):
    model = CharRNN(preset("{cell}", 65, 128, dtype="{dtype}"), np.random.default_rng(0))
    ids = np.random.default_rng(0).integers(0, 65, 10_000)
    Trainer(model, make_optimizer("adam", lr=1e-3), ids, seq_length=16, batch_size=B).train_step()
    model.stepper()(1, model.zero_state(1))
print(time.perf_counter() - start)
"""


def engine(cell: str, dtype: str, cache: str) -> float:
    code = ENGINE.format(cell=cell, dtype=dtype)
    env = os.environ | {"NUMBA_CACHE_DIR": cache, "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)  # fmt: skip
    return float(out.stdout)


def command(cell: str, dtype: str, cache: str, folder: str) -> float:
    env = os.environ | {"NUMBA_CACHE_DIR": cache, "OPENBLAS_NUM_THREADS": "1"}
    args = [f"model={cell}", f"model.dtype={dtype}", "train.steps=1"]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rnnexp", *args], env=env, cwd=folder,
                   capture_output=True, check=True)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cells", default="rnn,lstm,gru")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--no-command", action="store_true", help="the engine only")
    args = parser.parse_args()
    print(f"{'cell':6} {'dtype':8} {'what':7} {'cold s':>7} {'warm s':>7} {'compiling s':>11}")
    for cell in args.cells.split(","):
        for dtype in args.dtypes.split(","):
            kinds = [("engine", engine)] + ([] if args.no_command else [("rnnexp", command)])
            for what, fn in kinds:
                cold, warm = [], []
                for _ in range(args.repeats):
                    with tempfile.TemporaryDirectory() as tmp:
                        extra = (tmp,) if what == "rnnexp" else ()
                        cold.append(fn(cell, dtype, f"{tmp}/cache", *extra))
                        warm.append(fn(cell, dtype, f"{tmp}/cache", *extra))
                c, w = statistics.median(cold), statistics.median(warm)
                print(f"{cell:6} {dtype:8} {what:7} {c:7.2f} {w:7.2f} {c - w:11.2f}", flush=True)


if __name__ == "__main__":
    main()
