"""The n-gram baselines of a corpus (rnnexp/ngram.py): interpolated Kneser-Ney models of
orders 1 to 20, counted on the training split and scored on the validation split, with the
time the 20 orders take on one core and the process's peak memory.

    RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/ngram.py [--corpus shakespeare]

prints a Markdown table; the full run on tiny shakespeare writes docs/results/ngram.json (the
command, the machine, the date and the figures). It computes, never reads the cache.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from pathlib import Path

import report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
COMMAND = "RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/ngram.py"


def table(result: dict) -> str:
    """Each order's cross-entropy on the validation split, in nats and bits a character."""
    best = result["best_order"]
    rows = [[f"**{k}** (best)" if k == best else k, f"{c:.4f}", f"{c / math.log(2):.3f}"]
            for k, c in enumerate(result["cross_entropy"], 1)]  # fmt: skip
    table = report.markdown(["order", "val nats/char", "bits/char"], rows, right=0)
    if "seconds" in result:  # the full run: what the 20 orders cost
        table += f"\n\n{result['corpus']}: {len(rows)} orders counted and scored in "
        table += f"{result['seconds']:.1f} s on one core, {result['peak_mb']} MB at the peak"
    return table


def main() -> None:
    from rnnexp import Vocab, load_corpus, split
    from rnnexp.ngram import MAX_ORDER, cross_entropies

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="shakespeare")
    p.add_argument("--write", type=Path, default=report.RESULTS / "ngram.json")
    args = p.parse_args()
    text = load_corpus(args.corpus).text
    vocab = Vocab.from_text(text)
    train_ids, val_ids = split(vocab.encode(text), 0.1)
    start = time.perf_counter()
    ce = cross_entropies(train_ids, val_ids, len(vocab), MAX_ORDER)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best = int(ce.argmin()) + 1
    print(
        f"{args.corpus}: {len(train_ids):,} training characters, {len(val_ids):,} validation, "
        f"V={len(vocab)}; {len(ce)} orders in {seconds:.1f} s, peak memory {peak_mb:.0f} MB"
    )
    result = {"best_order": best, "cross_entropy": [round(float(c), 4) for c in ce]}
    print("\n" + table(result))
    if args.corpus == "shakespeare":
        report.write(args.write, COMMAND, corpus=args.corpus, seconds=round(seconds, 2),
                     peak_mb=round(peak_mb), **result)  # fmt: skip


if __name__ == "__main__":
    main()
