"""The gated cells against PyTorch: training characters per second (forward + backward + clip
+ Adagrad update) of rnnexp's `lstm` and `gru` and of `nn.LSTM` / `nn.GRU` with a linear
readout, at equal H, T, B and dtype, on tiny shakespeare, 1 BLAS thread.

    RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/cells.py

Each figure is the median of --repeats windows of --seconds after a warm-up, each
measurement in a fresh process; rnnexp and PyTorch alternate, so their ratio is taken under
the same machine load. Needs the `bench` extra (torch==2.13.0, the CPU build).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from throughput import _data, _timed, torch_step  # noqa: E402  (the same data and step)

SETTINGS = [(256, 64, 32, "float32"), (256, 64, 1, "float32")]  # H, T, B, dtype: the targets'


def _rate(step, chars: int, seconds: float) -> float:
    return _timed(step, chars, seconds, repeats=1)[0]


def work(impl: str, cell: str, H: int, T: int, B: int, dtype: str, seconds: float) -> float:
    ids, V = _data()
    if impl == "rnnexp":
        import numpy as np

        from rnnexp import CharRNN, Trainer, make_optimizer, preset

        model = CharRNN(preset(cell, V, H, dtype=dtype), np.random.default_rng(0))
        trainer = Trainer(model, make_optimizer("adagrad", lr=0.01), ids, seq_length=T,
                          batch_size=B)  # fmt: skip
        return _rate(trainer.train_step, B * T, seconds)
    import torch

    torch.set_num_threads(1)
    dt = {"float32": torch.float32, "float64": torch.float64}[dtype]
    torch.manual_seed(0)
    net = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](V, H, batch_first=True, dtype=dt)
    head = torch.nn.Linear(H, V, dtype=dt)
    optimizer = torch.optim.Adagrad([*net.parameters(), *head.parameters()], lr=0.01)
    return _rate(torch_step(net, head, optimizer, ids, V, B, T, dt), B * T, seconds)


def measure(job: list, threads: int) -> float:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)  # set before numpy or torch loads, in the child
    r = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], env=env,
                       capture_output=True, text=True, check=True)  # fmt: skip
    return float(r.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cells", default="lstm,gru")
    p.add_argument("--worker")
    args = p.parse_args()
    if args.worker:
        print(work(*json.loads(args.worker)))
        return
    print(f"{'cell':5s} {'H':>4s} {'T':>3s} {'B':>3s} {'dtype':8s} {'rnnexp':>10s} "
          f"{'PyTorch':>10s}  ratio   (chars/s, median of {args.repeats})")  # fmt: skip
    for cell in args.cells.split(","):
        for H, T, B, dtype in SETTINGS:
            ours, theirs = [], []
            for _ in range(args.repeats):  # alternating: the same load for both
                ours.append(measure(["rnnexp", cell, H, T, B, dtype, args.seconds], args.threads))
                theirs.append(measure(["torch", cell, H, T, B, dtype, args.seconds], args.threads))
            a, b = statistics.median(ours), statistics.median(theirs)
            print(f"{cell:5s} {H:4d} {T:3d} {B:3d} {dtype:8s} {a:10,.0f} {b:10,.0f}  {a / b:5.2f}x")


if __name__ == "__main__":
    main()
