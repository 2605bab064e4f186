"""Training throughput of the rnnexp engine: characters per second for forward + backward +
clip + update (no sampling, evaluation or logging), on tiny shakespeare.

    RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/throughput.py --threads 1

Each figure is the median of --repeats timed windows of --seconds each, after a warm-up.
"""

from __future__ import annotations

import argparse
import os
import sys


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="BLAS threads (set before numpy loads)")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 32], help="batch sizes B")
    p.add_argument("--dtype", nargs="+", default=["float64", "float32"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=1.0, help="length of one timed window")
    p.add_argument("--only", nargs="*", help="configuration names to run (default: all)")
    return p.parse_args()


args = parse()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)  # must precede the first numpy import

import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from rnnexp import CharRNN, Trainer, Vocab, load_corpus, make_optimizer, preset  # noqa: E402

# name: (model, hidden size, sequence length, optimizer, lr) - the notebooks' settings
CONFIGS = {
    "rnn H100 T25": ("rnn", 100, 25, "adagrad", 0.1),
    "rnn H512 T64": ("rnn", 512, 64, "adagrad", 0.1),
    "stacked2 H256 T50": ("stacked2", 256, 50, "adagrad", 0.01),
    "srn H128 T1": ("srn", 128, 1, "sgd", 0.1),
}


def chars_per_second(trainer: Trainer, seconds: float) -> float:
    steps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        trainer.train_step()
        steps += 1
    B, T = trainer.streams.data.shape[0], trainer.streams.seq_length
    return steps * B * T / elapsed


def main() -> None:
    text = load_corpus("shakespeare").text
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    print(
        f"numpy {np.__version__}, python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} cores, BLAS threads {args.threads}"
    )
    print(f"{'config':<20} {'dtype':<8} {'B':>4} {'chars/s':>12}")
    for name, (model, H, T, opt, lr) in CONFIGS.items():
        if args.only and name not in args.only:
            continue
        for dtype in args.dtype:
            for B in args.batch:
                rng = np.random.default_rng(0)
                net = CharRNN(preset(model, len(vocab), H, dtype=dtype), rng)
                trainer = Trainer(net, make_optimizer(opt, lr=lr), ids, seq_length=T, batch_size=B)
                chars_per_second(trainer, 0.3)  # warm-up: caches, allocator, Adagrad memory
                rates = [chars_per_second(trainer, args.seconds) for _ in range(args.repeats)]
                print(f"{name:<20} {dtype:<8} {B:>4} {statistics.median(rates):>12,.0f}")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
