"""Sampling speed: characters per second of rnnexp.sample, per model size and dtype.

    .venv/bin/python benchmarks/sampling.py --threads 1

Speed does not depend on what the weights are, so the models are untrained.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--chars", type=int, default=5000, help="characters per timed sample")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--models",
        default="rnn:100,rnn:256,lstm:256,gru:256,rnn:512,stacked2:256",
        help="model:H pairs (default: %(default)s)",
    )
    args = p.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy loads
    import numpy as np

    from rnnexp import CharRNN, Vocab, preset, sample

    vocab = Vocab("".join(chr(32 + i) for i in range(65)))  # tiny shakespeare's size
    print(f"numpy {np.__version__}, BLAS threads {args.threads}, median of {args.repeats}")
    for name, H in ((m, int(h)) for m, h in (x.split(":") for x in args.models.split(","))):
        for dtype in ("float64", "float32"):
            model = CharRNN(preset(name, len(vocab), H, dtype=dtype, init_scale=0.05),
                            np.random.default_rng(0))  # fmt: skip
            rng = np.random.default_rng(0)
            sample(model, vocab, rng, 200)  # warm-up
            rates = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                sample(model, vocab, rng, args.chars)
                rates.append(args.chars / (time.perf_counter() - start))
            print(f"{name} H{H} {dtype}: {statistics.median(rates):,.0f} chars/s")


if __name__ == "__main__":
    main()
