"""BLAS threads beside a neighbour: training chars/s of `rnnexp` runs with threads=1,
threads=2 and the default (threads=null: one thread, a second while it is faster), alone, beside
a second run of the same command, and beside a CPU hog (one busy process); each figure the
median of the runs of that cell. Prints a Markdown table; the full table (both models) is
also written to docs/results/threads.json (the command, the machine, the date, the figures).

    RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/threads.py
    .venv/bin/python benchmarks/threads.py --steps 200 --models gru   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import report

MODELS = {  # name -> overrides: the default run, and a larger LSTM
    "gru": ["model=gru"],
    "lstm": ["model=lstm", "model.hidden_size=256"],
}
SETTINGS = {"threads=1": ["threads=1"], "threads=2": ["threads=2"], "default": []}
RATE = re.compile(r"\(all steps\), ([\d,]+) chars/s")


def start(args: list[str], folder: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.Popen(
        [sys.executable, "-m", "rnnexp", *args, "tracking.enabled=false", "inspect.enabled=false",
         "train.sample_every=0"], cwd=folder, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def rate(proc: subprocess.Popen) -> float:
    out, _ = proc.communicate()
    found = RATE.search(out)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"a run failed:\n{out[-2000:]}")
    return float(found.group(1).replace(",", ""))


def measure(args: list[str], beside: str, folder: Path) -> float:
    """chars/s of a run of `args`, alone, beside a second run of it, or beside a busy process."""
    if beside == "a run":
        procs = [start(args, folder), start(args, folder)]
        return statistics.mean(rate(p) for p in procs)
    hog = None
    if beside == "a CPU hog":
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
    try:
        return rate(start(args, folder))
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()


def table(result: dict) -> str:
    """Training chars/s at each BLAS thread setting, alone and beside other work."""
    rows = [[r["model"], r["beside"], *(f"{r[k]:,.0f}" for k in SETTINGS),
             f"{r['default / threads=1']:.2f}"] for r in result["rows"]]  # fmt: skip
    return report.markdown(["model", "beside", *SETTINGS, "default / threads=1"], rows, right=2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=1, help="runs per cell (median)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--write", type=Path, default=report.RESULTS / "threads.json")
    a = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for model in a.models:
            for beside in ("nothing", "a run", "a CPU hog"):
                row = {"model": model, "beside": beside}
                for name, setting in SETTINGS.items():
                    args = [*MODELS[model], *setting, f"train.steps={a.steps}"]
                    rates = [measure(args, beside, Path(scratch)) for _ in range(a.repeats)]
                    row[name] = statistics.median(rates)
                row["default / threads=1"] = row["default"] / row["threads=1"]
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n" + table({"rows": rows}))
    if a.models == list(MODELS):
        command = "RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/threads.py"
        report.write(a.write, " ".join([command, *sys.argv[1:]]), rows=rows)


if __name__ == "__main__":
    main()
