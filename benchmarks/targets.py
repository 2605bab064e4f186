"""The compiled kernels' targets (issue 23) as one table, each ratio taken in this run, at
1 BLAS thread, from the other benchmarks' own measurements:

    RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/targets.py

- the gated cells against PyTorch's nn.LSTM / nn.GRU (benchmarks/cells.py);
- the notebooks' loop (experiment=min_char_rnn: rnn H100 T25 B1 float64) through `rnnexp`
  against the classic loop (benchmarks/classic_loop.py, via throughput.py) and against the
  engine in-process (benchmarks/entrypoint_overhead.py): the run's training time without
  the evaluation and samples its preset asks for, and with them;
- sampling at H256, every cell, against the code of --against (the last commit before the
  kernels; `git archive` of it, run the same way: benchmarks/sampling.py);
- the first run's compile time on an empty kernel cache (benchmarks/compile.py).
The 200 s question has its own benchmark (benchmarks/best200.py: 3 x 200 s).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import cells  # noqa: E402
import compile as compile_time  # noqa: E402
import entrypoint_overhead  # noqa: E402
import throughput  # noqa: E402

BEFORE = "da0996a"  # the last commit whose cells were numpy calls


def row(what: str, value: str, target: str) -> None:
    print(f"| {what} | {value} | {target} |", flush=True)


def against_pytorch(args) -> None:
    for cell, B, target in [("lstm", 32, ">= 1.3x"), ("gru", 32, ">= 1.5x"),
                            ("lstm", 1, ">= 3x"), ("gru", 1, ">= 6x")]:  # fmt: skip
        ours, theirs = [], []
        for _ in range(args.repeats):  # alternating: the same load for both
            job = [cell, 256, 64, B, "float32", args.seconds]
            ours.append(cells.measure(["rnnexp", *job], 1))
            theirs.append(cells.measure(["torch", *job], 1))
        a, b = statistics.median(ours), statistics.median(theirs)
        row(f"{cell} B{B} H256 T64 f32 vs nn.{cell.upper()}", f"{a / b:.2f}x "
            f"({a:,.0f} / {b:,.0f} chars/s)", target)  # fmt: skip


def notebooks_loop(args) -> None:
    steps, chars = args.steps, args.steps * 25
    classic, engine, trained, asked = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            job = argparse.Namespace(threads=1, seconds=args.seconds, repeats=1)
            classic.append(throughput.measure(job, "classic", "rnn H100 T25")["rates"][0])
            engine.append(chars / entrypoint_overhead.bare("min_char_rnn", steps, 1))
            loop, extra, _ = entrypoint_overhead.full("min_char_rnn", steps, 1, Path(tmp))
            trained.append(chars / (loop - extra))
            asked.append(chars / loop)
    c, e = statistics.median(classic), statistics.median(engine)
    t, a = statistics.median(trained), statistics.median(asked)
    row("rnn H100 T25 B1 f64 through `rnnexp` vs the classic loop",
        f"{t / c:.2f}x ({t:,.0f} / {c:,.0f} chars/s)", ">= 6x (10x the goal)")  # fmt: skip
    row("the same through `rnnexp` vs the engine in-process",
        f"{t / e:.2f}x ({e:,.0f} chars/s in-process)", ">= 0.95x")  # fmt: skip
    row("... with the preset's evaluation and samples", f"{a / e:.2f}x", "-")


def sampling(args) -> None:
    models = ",".join(f"{m}:256" for m in ("rnn", "lstm", "gru"))
    now = _sampling_rates([], models, args)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "before.tar"
        subprocess.run(["git", "-C", str(HERE.parent), "archive", "-o", str(archive),
                        args.against, "rnnexp", "conf"], check=True)  # fmt: skip
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        before = _sampling_rates(["env", f"PYTHONPATH={tmp}"], models, args, cwd=tmp)
    for key in now:
        row(f"sampling {key}", f"{now[key] / before[key]:.2f}x ({now[key]:,.0f} / "
            f"{before[key]:,.0f} chars/s at {args.against})", ">= 3x")  # fmt: skip


def _sampling_rates(prefix: list[str], models: str, args, cwd=None) -> dict[str, float]:
    cmd = [*prefix, sys.executable, str(HERE / "sampling.py"), "--models", models,
           "--repeats", str(args.repeats)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=cwd).stdout
    return {m: float(r.replace(",", "")) for m, r in re.findall(r"^(.+): ([\d,]+) chars/s", out,
                                                                 re.M)}  # fmt: skip


def compiling(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cold = compile_time.command("lstm", "float32", f"{tmp}/cache", tmp)
        warm = compile_time.command("lstm", "float32", f"{tmp}/cache", tmp)
    row("first run after install (model=lstm), extra start-up for compiling",
        f"{cold - warm:.1f} s, then 0 (whole command {cold:.1f} s, then {warm:.1f} s)",
        "<= 10 s, then ~0")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0, help="a timed window")
    p.add_argument("--steps", type=int, default=10000, help="of the notebooks' loop")
    p.add_argument("--against", default=BEFORE, help="the commit sampling is compared with")
    p.add_argument("--only", default="pytorch,notebooks,sampling,compile")
    args = p.parse_args()
    print(f"| measure (1 BLAS thread, median of {args.repeats}) | now | target |")
    print("|---|---:|---:|")
    parts = {"pytorch": against_pytorch, "notebooks": notebooks_loop, "sampling": sampling,
             "compile": compiling}  # fmt: skip
    for name in args.only.split(","):
        parts[name](args)


if __name__ == "__main__":
    main()
