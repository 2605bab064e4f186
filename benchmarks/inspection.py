"""What a look inside costs: tracing 10,000 characters of tiny shakespeare through a one-layer
H512 network (the units, gates and next-character guesses kept), ranking its units against
the text's features, and writing the page (and the gate figure), at 1 BLAS thread, median of
three. Prints a Markdown table and writes docs/results/inspection.json.

    .venv/bin/python benchmarks/inspection.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import report

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def table(result: dict) -> str:
    """Each cell and dtype: the trace and ranking, the whole page, the page's size."""
    rows = [[r["cell"], r["dtype"], f"{r['trace_rank_s']:.2f}", f"{r['page_s']:.2f}",
             f"{r['page_mb']:.1f}"] for r in result["rows"]]  # fmt: skip
    head = ["cell", "dtype", "trace + rank (s)", "whole page (s)", "page (MB)"]
    return report.markdown(head, rows, right=2) + (
        f"\n\n{result['chars']:,} characters, H{result['hidden']}, one layer, median of "
        f"{result['repeats']}"
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--chars", type=int, default=10_000)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cells", default="rnn,lstm,gru")
    p.add_argument("--write", type=Path, default=report.RESULTS / "inspection.json")
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
    rows = []
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
            rows.append({"cell": cell, "dtype": dtype, "trace_rank_s": statistics.median(ranked),
                         "page_s": statistics.median(whole),
                         "page_mb": page.stat().st_size / 1e6})  # fmt: skip
            print(rows[-1], flush=True)
    result = {"chars": N, "hidden": H, "repeats": args.repeats, "rows": rows}
    print("\n" + table(result))
    if (N, H, args.repeats, args.cells) == (10_000, 512, 3, "rnn,lstm,gru"):
        report.write(args.write, ".venv/bin/python benchmarks/inspection.py", **result)


if __name__ == "__main__":
    main()
