"""The same 4-job sweep (min-char-rnn jobs, seeds 0-3) run and logged five ways: one job
after the other (Hydra's basic launcher) and 2 at a time with joblib, with the local sqlite
store; joblib logging to `mlflow server` on PostgreSQL;
Ray tasks on a `ray start --head` cluster logging to `mlflow server` on sqlite, and on
PostgreSQL. Every service is started here on 127.0.0.1 (Debian's postgresql: `make
system-deps`) and stopped afterwards; the figures are wall times of the whole `rnnexp -m`
command, start-up included.

    RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/sweep_backends.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the services' helpers

from conftest import serve_mlflow  # noqa: E402
from helpers import env  # noqa: E402
from pg import postgres  # noqa: E402
from ray_head import start_ray_head  # noqa: E402

from rnnexp.framework.tracking import Store  # noqa: E402

RAY_ENV = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
           "RAY_USAGE_STATS_ENABLED": "0"}  # fmt: skip


def sweep(launcher: list[str], uri: str, steps: int, folder: Path) -> float:
    args = [
        sys.executable, "-m", "rnnexp", "-m", *launcher, "experiment=min_char_rnn",
        "seed=0,1,2,3", f"train.steps={steps}", f"train.eval_every={steps // 2}",
        f"train.sample_every={steps // 2}", f"tracking.uri={uri}",
    ]  # fmt: skip
    start = time.perf_counter()
    r = subprocess.run(args, env=env(**RAY_ENV), cwd=folder, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(args)}\n{r.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=10000, help="steps per job (~4 s here)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    joblib = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for name in ("sqlite-server", "pg-server"):
            (tmp / name).mkdir()
        sqlite_server = stack.enter_context(
            serve_mlflow(tmp / "sqlite-server", f"sqlite:///{tmp / 'sqlite-server' / 'db'}")
        )
        pg_server = stack.enter_context(
            serve_mlflow(tmp / "pg-server", stack.enter_context(postgres()))
        )
        head = stack.enter_context(start_ray_head(RAY_ENV))
        ray = ["hydra/launcher=ray", f"hydra.launcher.ray.init.address={head}"]
        # a store that exists, as after a project's first run: a fresh one adds ~1 s of schema
        # creation; opening an existing one still costs each job ~1.5 s (SQLAlchemy, schema check)
        local = f"sqlite:///{tmp / 'local.db'}"
        Store(local).open_experiment("rnnexp")
        ways = {
            "one at a time, local sqlite file": ([], local),
            "joblib, local sqlite file": (joblib, local),
            "joblib, mlflow server on PostgreSQL": (joblib, pg_server),
            "Ray head, mlflow server on sqlite": (ray, sqlite_server),
            "Ray head, mlflow server on PostgreSQL": (ray, pg_server),
        }
        times: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.repeats):  # interleaved, so a slow minute of the machine hits all
            for name, (launcher, uri) in ways.items():
                folder = Path(tempfile.mkdtemp(dir=tmp))
                times[name].append(sweep(launcher, uri, args.steps, folder))
        for name, t in times.items():
            print(f"{name:40s} 4 jobs x {args.steps} steps: median {statistics.median(t):5.1f} s"
                  f"  (min {min(t):.1f}, max {max(t):.1f}, {len(t)} runs)")  # fmt: skip
    print(f"{os.cpu_count()} cores; Ray head with 2 CPUs, 1 per job")


if __name__ == "__main__":
    main()
