"""A sweep of 8 notebook-sized jobs (min-char-rnn: B = 1, H100, ~30 s each), run one after the
other (Hydra's basic launcher) and 2 at a time (hydra/launcher=joblib, n_jobs=2), each job
then limited to cores / 2 BLAS threads. Prints both wall times and their ratio.

    RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/parallel_sweep.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sweep(extra: list[str], steps: int, jobs: int, folder: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    args = [
        sys.executable, "-m", "rnnexp", "-m", "experiment=min_char_rnn",
        f"seed={','.join(str(i) for i in range(jobs))}", f"train.steps={steps}",
        f"train.eval_every={steps // 3}", f"train.sample_every={steps // 2}",
        f"tracking.uri=sqlite:///{folder / 'mlflow.db'}", f"hydra.sweep.dir={folder / 'sweep'}",
        *extra,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(args, env=env, cwd=folder, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=90000, help="steps per job (~30 s here)")
    p.add_argument("--jobs", type=int, default=8)
    args = p.parse_args()
    times = {}
    for name, extra in (
        ("sequential", []),
        ("joblib n_jobs=2", ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            times[name] = sweep(extra, args.steps, args.jobs, Path(tmp))
        print(f"{name}: {args.jobs} jobs of {args.steps} steps in {times[name]:.1f} s", flush=True)
    seq, par = times.values()
    print(f"parallel / sequential = {par / seq:.3f} (1/{seq / par:.2f}); {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
