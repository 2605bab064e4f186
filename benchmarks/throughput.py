"""Training throughput: characters per second for forward + backward + clip + update (no
sampling, evaluation or logging) on tiny shakespeare, for rnnexp, the classic notebook loop
(benchmarks/classic_loop.py) and PyTorch on the CPU, with numpy's GEMM peak for scale.

    RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/throughput.py --threads 1

Each figure is the median of --repeats windows of --seconds, after a warm-up, measured in a
fresh process (so the peak memory is that measurement's own). rnnexp and PyTorch run back
to back for each setting, so their ratio is taken under the same machine load. PyTorch is
optional: `pip install torch==2.13.0` (the CPU build on these machines).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name: (model, H, T, optimizer, lr) - the notebooks' settings; srn updates per character
CONFIGS = {
    "rnn H100 T25": ("rnn", 100, 25, "adagrad", 0.1),
    "rnn H512 T64": ("rnn", 512, 64, "adagrad", 0.1),
    "stacked2 H256 T50": ("stacked2", 256, 50, "adagrad", 0.01),
    "srn H128 T1": ("srn", 128, 1, "sgd", 0.1),
}


def flops_per_char(model: str, H: int, V: int) -> int:
    """Multiply-adds x 2 of one training step, per character: per layer 2H^2 forward
    recurrence, 2H^2 dWhh, 2H^2 dhnext with BPTT, and 6H^2 more for a layer fed by another
    (input projection, dWxh, dh below); readout 6HV (forward, dWhy, dh). Gathers, elementwise
    work and the optimizer are not counted."""
    layers = 2 if model == "stacked2" else 1
    recurrent = 6 if model != "srn" else 4
    return layers * recurrent * H * H + (layers - 1) * 6 * H * H + 6 * H * V


# ---------------------------------------------------------------- workers (one per process)


def _data():
    sys.path.insert(0, str(HERE.parent))
    from rnnexp import Vocab, load_corpus

    text = load_corpus("shakespeare").text
    vocab = Vocab.from_text(text)
    return vocab.encode(text), len(vocab)


def _timed(step, chars_per_step: int, seconds: float, repeats: int) -> list[float]:
    start = time.perf_counter()
    while time.perf_counter() - start < min(0.5, seconds):  # warm-up: caches, allocator, state
        step()
    rates = []
    for _ in range(repeats):
        steps, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            step()
            steps += 1
        rates.append(steps * chars_per_step / elapsed)
    return rates


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _base_mb() -> float:
    """Resident memory now, with the peak mark reset to it (Linux): what training adds on
    top of the interpreter, libraries and corpus is then peak - base."""
    import gc

    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status_mb("VmRSS")


def _rss_mb() -> float:
    """Peak resident memory since the last _base_mb()."""
    return _status_mb("VmHWM")


def work_rnnexp(cfg: str, dtype: str, B: int, seconds: float, repeats: int) -> dict:
    import numpy as np

    from rnnexp import CharRNN, Trainer, make_optimizer, preset

    ids, V = _data()
    model, H, T, opt, lr = CONFIGS[cfg]
    base = _base_mb()
    net = CharRNN(preset(model, V, H, dtype=dtype), np.random.default_rng(0))
    trainer = Trainer(net, make_optimizer(opt, lr=lr), ids, seq_length=T, batch_size=B)
    rates = _timed(trainer.train_step, B * T, seconds, repeats)
    return dict(rates=rates, rss_mb=_rss_mb(), base_mb=base, V=V)


def work_classic(cfg: str, dtype: str, B: int, seconds: float, repeats: int) -> dict:
    sys.path.insert(0, str(HERE))
    import classic_loop

    ids, V = _data()
    model, H, T, opt, lr = CONFIGS[cfg]
    base = _base_mb()
    loop = classic_loop.Classic(model, ids, V, H, T, lr, sgd=opt == "sgd")
    rates = _timed(loop.step, T, seconds, repeats)
    return dict(rates=rates, rss_mb=_rss_mb(), base_mb=base, V=V)


def work_torch(cfg: str, dtype: str, B: int, seconds: float, repeats: int) -> dict:
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    ids, V = _data()
    model, H, T, opt, lr = CONFIGS[cfg]
    base = _base_mb()
    dt = {"float32": torch.float32, "float64": torch.float64}[dtype]
    torch.manual_seed(0)
    layers = 2 if model == "stacked2" else 1
    # nn.RNN has no sigmoid: srn is timed as a tanh net, the same work per character
    rnn = torch.nn.RNN(V, H, num_layers=layers, nonlinearity="tanh", batch_first=True, dtype=dt)
    head = torch.nn.Linear(H, V, dtype=dt)
    params = [*rnn.parameters(), *head.parameters()]
    optimizer = (
        torch.optim.SGD(params, lr=lr) if opt == "sgd" else torch.optim.Adagrad(params, lr=lr)
    )
    step = torch_step(rnn, head, optimizer, ids, V, B, T, dt)
    rates = _timed(step, B * T, seconds, repeats)
    return dict(rates=rates, rss_mb=_rss_mb(), base_mb=base, V=V)


def torch_step(net, head, optimizer, ids, V: int, B: int, T: int, dt, dropout: float = 0.0):
    """One PyTorch training step as rnnexp's: B streams, one-hot inputs, the chunk's summed
    loss averaged over the streams, clip to 5, update; the state carried, zero (None) at the
    start of the text. `net` is nn.RNN, nn.LSTM or nn.GRU (batch_first), one layer; dropout
    on its output, as rnnexp's model.dropout after every layer."""
    import torch
    import torch.nn.functional as F

    params = [p for m in (net, head) for p in m.parameters()]
    S = len(ids) // B
    streams = torch.from_numpy(ids[: B * S].reshape(B, S).copy())
    state = {"p": 0, "h": None}

    def step():
        p = state["p"]
        if p + T + 1 >= S:
            p, state["h"] = 0, None
        x, y = streams[:, p : p + T], streams[:, p + 1 : p + T + 1]
        out, h = net(F.one_hot(x, V).to(dt), state["h"])
        if dropout:
            out = F.dropout(out, dropout)
        loss = F.cross_entropy(head(out).reshape(-1, V), y.reshape(-1), reduction="sum") / B
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(params, 5.0)
        optimizer.step()
        state["h"] = tuple(s.detach() for s in h) if isinstance(h, tuple) else h.detach()
        state["p"] = p + T

    return step


def work_peak(cfg: str, dtype: str, B: int, seconds: float, repeats: int) -> dict:
    """numpy's own GEMM rate: (n x n) @ (n x n), best of the medians at two sizes."""
    import numpy as np

    best = 0.0
    for n in (1024, 2048):
        a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
        b = a.T.copy()
        a @ b
        times = []
        for _ in range(max(3, repeats)):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
        best = max(best, 2 * n**3 / statistics.median(times) / 1e9)
    return dict(gflops=best, rss_mb=_rss_mb())


WORKERS = {"rnnexp": work_rnnexp, "classic": work_classic, "torch": work_torch, "peak": work_peak}


# ---------------------------------------------------------------- orchestration


def measure(args, impl: str, cfg: str = "", dtype: str = "float64", B: int = 1) -> dict | None:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)  # set before numpy or torch loads, in the child
    job = json.dumps([impl, cfg, dtype, B, args.seconds, args.repeats])
    r = subprocess.run(
        [sys.executable, __file__, "--worker", job], env=env, capture_output=True, text=True
    )
    if r.returncode != 0:
        print(f"  {impl} {cfg} {dtype} B{B} failed: {r.stderr.strip().splitlines()[-1]}")
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (default 1)")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 32, 128])
    p.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=1.0, help="length of one timed window")
    p.add_argument("--only", nargs="*", help="configurations to run, by name (default: all)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        impl, cfg, dtype, B, seconds, repeats = json.loads(args.worker)
        print(json.dumps(WORKERS[impl](cfg, dtype, B, seconds, repeats)))
        return

    import numpy as np

    torch = not args.no_torch
    if torch:
        try:
            import torch as _torch  # noqa: F401
        except ImportError:
            print("PyTorch not installed (pip install torch==2.13.0): skipping it")
            torch = False
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, numpy {np.__version__}, threads {args.threads}, "
          f"median of {args.repeats} x {args.seconds:g} s")  # fmt: skip
    peak = {dt: measure(args, "peak", dtype=dt)["gflops"] for dt in args.dtype}
    print("numpy GEMM peak: " + ", ".join(f"{dt} {g:.1f} GFLOP/s" for dt, g in peak.items()))
    head = (
        f"{'config':<18} {'dtype':<7} {'B':>3} {'rnnexp c/s':>11} {'x classic':>9} "
        f"{'torch c/s':>10} {'x torch':>7} {'peak% ours':>10} {'peak% torch':>11} "
        f"{'MB ours':>7} {'MB torch':>8}"
    )
    print(head)
    results = {"peak_gflops": peak, "rows": [], "threads": args.threads}
    for cfg in CONFIGS:
        if args.only and cfg not in args.only:
            continue
        classic = measure(args, "classic", cfg)
        c_rate = statistics.median(classic["rates"])
        print(f"{cfg:<18} {'float64':<7} {1:>3} {'classic loop':>11} {c_rate:>9,.0f} c/s"
              f"{'':>38} {classic['rss_mb'] - classic['base_mb']:>7.0f}")  # fmt: skip
        results["rows"].append(dict(config=cfg, impl="classic", dtype="float64", B=1, **classic))
        for dtype in args.dtype:
            for B in args.batch:
                ours = measure(args, "rnnexp", cfg, dtype, B)
                theirs = measure(args, "torch", cfg, dtype, B) if torch else None
                if ours is None:
                    continue
                model, H, _, _, _ = CONFIGS[cfg]
                flops = flops_per_char(model, H, ours["V"])
                o_rate = statistics.median(ours["rates"])
                row = f"{cfg:<18} {dtype:<7} {B:>3} {o_rate:>11,.0f} {o_rate / c_rate:>8.1f}x "
                share = o_rate * flops / peak[dtype] / 1e9
                if theirs:
                    t_rate = statistics.median(theirs["rates"])
                    t_share = t_rate * flops / peak[dtype] / 1e9
                    row += (
                        f"{t_rate:>10,.0f} {o_rate / t_rate:>6.2f}x "
                        f"{share:>10.1%} {t_share:>11.1%} "
                        f"{ours['rss_mb'] - ours['base_mb']:>7.0f} "
                        f"{theirs['rss_mb'] - theirs['base_mb']:>8.0f}"
                    )
                else:
                    row += (
                        f"{'':>18} {share:>10.1%} {'':>11} {ours['rss_mb'] - ours['base_mb']:>7.0f}"
                    )
                print(row, flush=True)
                results["rows"].append(dict(config=cfg, impl="rnnexp", dtype=dtype, B=B, **ours))
                if theirs:
                    results["rows"].append(
                        dict(config=cfg, impl="torch", dtype=dtype, B=B, **theirs)
                    )
    print("c/s: characters per second; x classic: against the classic loop (float64, B=1);")
    print("x torch: against PyTorch at the same setting; peak%: model FLOPs/s over the GEMM peak;")
    print("MB: peak resident memory above the process's size before the model was built.")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
