"""What pruning saves: the same sweep with prune=none and prune=asha, 2 jobs at a time
(hydra/launcher=joblib n_jobs=2), for
  (a) a 12-point grid: 6 learning rates x 2 widths, a GRU on tiny shakespeare, 1,500 steps,
      as `-m ... prune=asha` runs it (each point once, in an order of a seed's: the search's
      grid sampler) and as Hydra's own grid does (hydra/sweeper=basic: the order given);
  (b) a 32-trial TPE search (search=optuna) of the learning rate, width and chunk length,
      1,500 steps a trial.
For each: the wall time, the best job and its final val/loss, the pruned count, and how busy
the cores were (the CPU time of the sweep's processes over wall time x cores).

    RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/search.py

prints a Markdown table and writes docs/results/search.json (the command, the machine, the
date and the figures); --quick runs a tiny version of both (tests/test_benchmarks.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import report

LRS = "0.001,0.002,0.004,0.008,0.016,0.032"
WIDTHS = "64,128"
COMMAND = "RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/search.py"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sweep(args: list[str], folder: Path) -> dict:
    """One sweep in `folder`: its wall time, CPU busy fraction, best job and pruned count."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    store = f"sqlite:///{folder / 'mlflow.db'}"
    command = [sys.executable, "-m", "rnnexp", *args, "hydra/launcher=joblib",
               "hydra.launcher.n_jobs=2", f"tracking.uri={store}",
               f"hydra.sweep.dir={folder / 'sweep'}"]  # fmt: skip
    cpu, start = children_cpu(), time.perf_counter()
    r = subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, children_cpu() - cpu
    if r.returncode != 0:
        sys.exit(f"the sweep failed ({r.returncode}):\n{r.stderr[-3000:]}")
    from mlflow import MlflowClient

    from rnnexp.framework.sweep import varied_label

    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("rnnexp").experiment_id])
    jobs = [x for x in runs if "mlflow.parentRunId" in x.data.tags]
    best = next(x for x in jobs if x.data.tags.get("rnnexp.best") == "true")
    varied = json.loads(best.data.tags["rnnexp.varied"])
    return {
        "wall_s": round(wall, 1),
        "busy": round(cpu / (wall * (os.cpu_count() or 1)), 3),
        "jobs": len(jobs),
        "pruned": sum("rnnexp.pruned" in x.data.tags for x in jobs),
        "best": varied_label(varied),
        "best_params": {o.split("=")[0]: o.split("=", 1)[1] for o in varied},
        "best_val": round(best.data.metrics["val/loss"], 4),
    }


def table(result: dict) -> str:
    """Each sweep's wall time, busy cores, jobs, pruned jobs and best job, as Markdown."""
    rows = []
    for key, r in result["results"].items():
        name, _, prune = key.rpartition(" ")
        rows.append([name, prune.split("=")[1], f"{r['wall_s']:.0f}", f"{r['busy']:.0%}",
                     r["jobs"], r["pruned"], r["best"], f"{r['best_val']:.4f}"])  # fmt: skip
    head = ["sweep", "prune", "wall (s)", "cores busy", "jobs", "pruned", "best job", "best val"]
    return report.markdown(head, rows, right=2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a tiny version (a smoke test)")
    p.add_argument("--write", type=Path, default=report.RESULTS / "search.json")
    args = p.parse_args()
    if args.quick:
        common = ["corpus=elman", "train.batch_size=4", "train.eval_every=20", "train.steps=60",
                  "inspect.enabled=false"]  # fmt: skip
        lrs, widths, steps = "0.02,0.0003", "16", ["train.seq_length=16"]
        space = ["optimizer.lr=tag(log,interval(0.0003,0.03))", "model.hidden_size=choice(16,32)",
                 "train.seq_length=choice(16)"]  # fmt: skip
        trials = 3
    else:
        common = ["model=gru", "corpus=shakespeare", "train.steps=1500", "train.eval_every=150",
                  "inspect.enabled=false"]  # fmt: skip
        lrs, widths, steps = LRS, WIDTHS, []
        space = ["optimizer.lr=tag(log,interval(0.0003,0.03))", "model.hidden_size=choice(64,128)",
                 "train.seq_length=choice(32,64)"]  # fmt: skip
        trials = 32
    grid = ["-m", *common, *steps, f"optimizer.lr={lrs}", f"model.hidden_size={widths}"]
    search = ["search=optuna", f"hydra.sweeper.n_trials={trials}", *common, *space]
    results = {}
    for name, base, prunes in (("grid", grid, ("none", "asha")),
                               ("grid hydra/sweeper=basic", [*grid, "hydra/sweeper=basic"],
                                ("asha",)),
                               ("search", search, ("none", "asha"))):  # fmt: skip
        for prune in prunes:
            with tempfile.TemporaryDirectory() as tmp:
                results[f"{name} prune={prune}"] = out = sweep([*base, f"prune={prune}"], Path(tmp))
            print(f"{name} prune={prune}: {json.dumps(out)}", flush=True)
    print("\n" + table({"results": results}))
    for name, base in (("grid", "grid"), ("grid hydra/sweeper=basic", "grid"),
                       ("search", "search")):  # fmt: skip
        full, pruned = results[f"{base} prune=none"], results[f"{name} prune=asha"]
        print(f"{name}: asha / none wall = {pruned['wall_s'] / full['wall_s']:.2f}, best val "
              f"{pruned['best_val'] - full['best_val']:+.4f} nats")  # fmt: skip
    if not args.quick:
        report.write(args.write, COMMAND, grid=grid, search=search, results=results)


if __name__ == "__main__":
    main()
