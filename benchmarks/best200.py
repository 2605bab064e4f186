"""The best model in 200 seconds: rnnexp's `experiment=shakespeare_200s`, run through the real
entrypoint, against PyTorch's `nn.GRU` with the preset's recipe (read from the preset: size,
Adam's rate, the cosine over the seconds, dropout, clip, B, T; one-hot inputs, float32) and
`nn.LSTM` (the same, at a constant rate), trained for the same seconds, all on one CPU
thread, one after the other. All are scored the same way on the same validation split of
tiny shakespeare: rnnexp.evaluate's 16 side-by-side streams from a zero state (PyTorch's
models are read by a copy of that loop below).

    RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/best200.py [--seconds 200]

Needs the `bench` extra (torch==2.13.0, the CPU build).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))


def splits():
    from rnnexp import Vocab, load_corpus, split

    text = load_corpus("shakespeare").text
    vocab = Vocab.from_text(text)
    train_ids, val_ids = split(vocab.encode(text), 0.1)
    return train_ids, val_ids, len(vocab)


def recipe():
    """The preset's settings (rnnexp.framework.settings.Settings), as the entrypoint composes
    them: what PyTorch's side trains with too."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from rnnexp.framework.cli import CONF_DIR, register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return OmegaConf.to_object(compose("config", overrides=["experiment=shakespeare_200s"]))


def ours(seconds: float) -> tuple[float, int, float]:
    """(final val loss, steps, seconds of training steps) of the preset, run by the
    entrypoint on one BLAS thread."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        r = subprocess.run(
            [sys.executable, "-m", "rnnexp", "experiment=shakespeare_200s", "threads=1",
             f"train.max_seconds={seconds}", f"hydra.run.dir={tmp}/run",
             f"tracking.uri=sqlite:///{tmp}/mlflow.db"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        log = (Path(tmp) / "run" / "rnnexp.log").read_text()
    vals = re.findall(r"step (\d+)/\d+  val ([0-9.]+) nats/char", log)
    spent = re.findall(r"of which training steps ([0-9.]+) s", log)
    assert vals and spent, r.stderr
    return float(vals[-1][1]), int(vals[-1][0]), float(spent[-1])


def theirs(seconds: float, cell: str = "LSTM", cosine: bool = False) -> tuple[float, int, float]:
    """(val loss, steps, seconds of training steps) of nn.LSTM or nn.GRU + Adam 5e-3 trained
    for `seconds` of step time; with `cosine`, the preset's recipe: its cosine (warmup 50,
    down to 0.1 x) over the steps the seconds hold at the speed so far, computed by rnnexp's
    own schedule and estimate (rnnexp.schedule, framework/loop.horizon)."""
    import torch
    from throughput import torch_step

    from rnnexp.framework.loop import horizon
    from rnnexp.schedule import make_schedule

    torch.set_num_threads(1)
    torch.manual_seed(0)
    s = recipe()
    assert s.optimizer.name == "adam" and s.train.clip == 5.0 and s.model.layers == 1, s
    train_ids, val_ids, V = splits()
    H, B, T, lr = s.model.hidden_size, s.train.batch_size, s.train.seq_length, s.optimizer.lr
    dt = getattr(torch, s.model.dtype)
    net = getattr(torch.nn, cell)(V, H, batch_first=True, dtype=dt)
    head = torch.nn.Linear(H, V, dtype=dt)
    optimizer = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=lr)
    rate = make_schedule("cosine", lr, 10**9, 1, warmup_steps=s.schedule.warmup_steps,
                         min_lr_ratio=s.schedule.min_lr_ratio)  # fmt: skip
    step = torch_step(net, head, optimizer, train_ids, V, B, T, dt, s.model.dropout)
    steps, spent = 0, 0.0
    while spent < seconds:
        if cosine:
            for group in optimizer.param_groups:
                group["lr"] = rate(steps, horizon(steps, spent, seconds, 10**9))
        start = time.perf_counter()
        step()
        spent += time.perf_counter() - start
        steps += 1
    return evaluate_torch(net, head, val_ids, V), steps, spent


def evaluate_torch(net, head, ids, V: int, streams: int = 16, chunk: int = 256) -> float:
    """rnnexp.evaluate's loop for a PyTorch model: `streams` side-by-side pieces from a zero
    state, the last one reading on over the leftover characters."""
    import torch
    import torch.nn.functional as F

    n = len(ids) - 1
    S = max(1, min(streams, n))
    L = n // S
    data = torch.from_numpy(ids.astype("int64"))
    total, h = 0.0, None
    with torch.no_grad():
        x_all, y_all = data[: S * L].reshape(S, L), data[1 : S * L + 1].reshape(S, L)
        for start in range(0, L, chunk):
            x, y = x_all[:, start : start + chunk], y_all[:, start : start + chunk]
            out, h = net(F.one_hot(x, V).float(), h)
            total += F.cross_entropy(head(out).reshape(-1, V), y.reshape(-1), reduction="sum")
        h = tuple(s[:, -1:].contiguous() for s in h) if isinstance(h, tuple) else h[:, -1:]
        for start in range(S * L, n, chunk):
            x = data[start : min(start + chunk, n)][None]
            y = data[start + 1 : min(start + chunk, n) + 1][None]
            out, h = net(F.one_hot(x, V).float(), h)
            total += F.cross_entropy(head(out).reshape(-1, V), y.reshape(-1), reduction="sum")
    return float(total) / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=200.0)
    args = p.parse_args()
    rows = [("rnnexp experiment=shakespeare_200s", *ours(args.seconds)),
            ("PyTorch nn.GRU, the same recipe", *theirs(args.seconds, "GRU", cosine=True)),
            ("PyTorch nn.LSTM, at a constant rate", *theirs(args.seconds))]  # fmt: skip
    print(f"{'':36s} {'val nats/char':>13s} {'steps':>7s} {'training s':>10s}")
    for name, loss, steps, spent in rows:
        print(f"{name:36s} {loss:13.4f} {steps:7d} {spent:10.1f}", flush=True)


if __name__ == "__main__":
    main()
