"""What a look inside costs: tracing 10,000 characters of tiny shakespeare through a one-layer
H512 network (the units, gates and next-character guesses kept), ranking its units against
the text's features, and writing the page (and the gate figure), at 1 BLAS thread, median of
three; the issue's budget is 2 s.

    .venv/bin/python benchmarks/inspection.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--chars", type=int, default=10_000)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cells", default="rnn,lstm,gru")
    args = p.parse_args()
    N, H = args.chars, args.hidden
    cases = [(c, d) for c in args.cells.split(",") for d in ("float32", "float64")]
    import numpy as np
    from threadpoolctl import threadpool_limits

    from rnnexp import CharRNN, preset
    from rnnexp.corpora import load_corpus
    from rnnexp.data import Vocab
    from rnnexp.inspect.page import inspect, write

    text = load_corpus("shakespeare").text
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text[-N:])
    print(f"{N:,} characters, H{H}, 1 layer, 1 BLAS thread; seconds, median of {args.repeats}")
    print(f"{'cell':5s} {'dtype':8s} {'trace+rank':>10s} {'whole page':>10s} {'page MB':>8s}")
    with threadpool_limits(1), tempfile.TemporaryDirectory() as scratch:
        page = Path(scratch) / "inspect.html"
        for cell, dtype in cases:
            model = CharRNN(preset(cell, len(vocab), H, dtype=dtype), np.random.default_rng(0))
            ranked, whole = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                inspect(model, vocab, ids)
                ranked.append(time.perf_counter() - start)
                start = time.perf_counter()
                write(page, model, vocab, ids, "benchmark", "benchmark",
                      gates=Path(scratch) / "gates.png")  # fmt: skip
                whole.append(time.perf_counter() - start)
            size = page.stat().st_size / 1e6
            print(f"{cell:5s} {dtype:8s} {statistics.median(ranked):10.2f} "
                  f"{statistics.median(whole):10.2f} {size:8.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
