"""The n-gram baselines of a corpus (rnnexp/ngram.py): interpolated Kneser-Ney models of
orders 1 to 20, counted on the training split and scored on the validation split, with the
time the 20 orders take on one core and the process's peak memory.

    RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/ngram.py [--corpus shakespeare]

prints a Markdown table; the full run on tiny shakespeare writes docs/results/ngram.json (the
command, the machine, the date and the figures). It computes, never reads the cache.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    from search import cpu_name

    from rnnexp import Vocab, load_corpus, split
    from rnnexp.ngram import MAX_ORDER, cross_entropies

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="shakespeare")
    p.add_argument("--write", type=Path, default=ROOT / "docs" / "results" / "ngram.json")
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
    print("\n| order | val nats/char | bits/char |\n|---:|---:|---:|")
    for k, c in enumerate(ce, 1):
        mark = " (best)" if k == best else ""
        print(f"| {k}{mark} | {c:.4f} | {c / 0.6931471805599453:.3f} |")
    if args.corpus == "shakespeare":
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(json.dumps({
            "command": "RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/ngram.py",
            "machine": f"{cpu_name()}, {os.cpu_count()} cores",
            "date": datetime.date.today().isoformat(), "corpus": args.corpus,
            "seconds": round(seconds, 2), "peak_mb": round(peak_mb), "best_order": best,
            "cross_entropy": [round(float(c), 4) for c in ce],
        }, indent=2) + "\n")  # fmt: skip
        print(f"written: {args.write}")


if __name__ == "__main__":
    main()
