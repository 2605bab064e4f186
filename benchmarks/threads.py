"""Does a second BLAS thread pay? Training characters per second at 1 and 2 threads, in one
process, alternating (so both see the same machine load), median of three 1 s windows, for
small and large models: the measurements behind the `threads=null` rule (README, Performance).

    RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/threads.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

CASES = [  # model, H, B, T, dtype
    ("rnn", 100, 1, 25, "float64"),
    ("lstm", 128, 1, 25, "float64"),
    ("stacked2", 256, 1, 25, "float64"),
    ("rnn", 100, 32, 25, "float64"),
    ("gru", 128, 16, 25, "float64"),
    ("rnn", 512, 32, 64, "float32"),
    ("lstm", 256, 32, 64, "float32"),
    ("lstm", 512, 64, 64, "float32"),
]


def main() -> None:
    import numpy as np
    from threadpoolctl import threadpool_limits
    from throughput import _data

    from rnnexp import CharRNN, Trainer, make_optimizer, preset
    from rnnexp.framework.run import recurrent_work  # what threads=null decides by

    ids, V = _data()
    print(f"{'model':14s} {'B':>3s} {'T':>3s} {'dtype':8s} {'B*H*G*H':>11s} {'1 thread':>9s} "
          f"{'2 threads':>9s}  2/1")  # fmt: skip
    for name, H, B, T, dtype in CASES:
        config = preset(name, V, H, dtype=dtype)
        model = CharRNN(config, np.random.default_rng(0))
        trainer = Trainer(model, make_optimizer("adagrad", lr=0.01), ids, seq_length=T,
                          batch_size=B)  # fmt: skip
        rates: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(3):
            for threads in (1, 2):
                with threadpool_limits(threads, user_api="blas"):
                    for _ in range(3):  # warm-up at this thread count
                        trainer.train_step()
                    steps, start = 0, time.perf_counter()
                    while time.perf_counter() - start < 1.0:
                        trainer.train_step()
                        steps += 1
                    rates[threads].append(steps * B * T / (time.perf_counter() - start))
        one, two = statistics.median(rates[1]), statistics.median(rates[2])
        work = recurrent_work(config, B)
        print(f"{name + f' H{H}':14s} {B:3d} {T:3d} {dtype:8s} {work:11,d} {one:9,.0f} "
              f"{two:9,.0f}  {two / one:4.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
