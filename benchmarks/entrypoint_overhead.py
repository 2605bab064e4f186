"""What a run through the `rnnexp` entrypoint costs over the bare engine loop at the same
settings: MLflow logging (batched), evaluation and samples at their intervals, progress.

    RNNEXP_DATA_DIR=../shared/corpora .venv/bin/python benchmarks/entrypoint_overhead.py

The bare loop is Trainer.run in this process; the full run is `python -m rnnexp` with a
throwaway sqlite store, its training loop timed by the run itself (the "trained N steps in
X s" line of its log). Start-up and the final artifacts are reported apart: they do not grow
with the run.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def bare(preset: str, steps: int, threads: int) -> float:
    """Seconds of Trainer.run(steps) for the preset, in a fresh process."""
    code = f"""
import time, sys
sys.path.insert(0, {str(HERE.parent)!r})
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from rnnexp.framework.cli import CONF_DIR, register_configs
from rnnexp.framework.build import build
register_configs()
with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
    s = OmegaConf.to_object(compose("config", overrides=["experiment={preset}"]))
b = build(s)
start = time.perf_counter()
b.trainer.run({steps})
print(time.perf_counter() - start)
"""
    r = subprocess.run([sys.executable, "-c", code], env=_env(threads), capture_output=True,
                       text=True, check=True)  # fmt: skip
    return float(r.stdout.strip().splitlines()[-1])


def full(preset: str, steps: int, threads: int, folder: Path) -> tuple[float, float, float]:
    """(training loop s, of it evaluation + samples s, whole process s) of a real run."""
    out = folder / f"run{time.monotonic_ns()}"
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "rnnexp", f"experiment={preset}", f"train.steps={steps}",
         f"hydra.run.dir={out}", f"tracking.uri=sqlite:///{folder / 'mlflow.db'}"],
        env=_env(threads), capture_output=True, text=True, check=True, cwd=folder,
    )  # fmt: skip
    wall = time.perf_counter() - start
    log = (out / "rnnexp.log").read_text()
    m = re.search(
        r"trained \d+ steps; in all ([0-9.]+) s, .* evaluation ([0-9.]+) s .*samples ([0-9.]+) s",
        log,
    )
    return float(m.group(1)), float(m.group(2)) + float(m.group(3)), wall


def _env(threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    return env


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--preset", default="min_char_rnn", help="experiment preset (default: %(default)s)"
    )
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pairs = []
        for _ in range(args.repeats):  # interleaved, so both see the same machine load
            b = bare(args.preset, args.steps, args.threads)
            loop, chosen, wall = full(args.preset, args.steps, args.threads, Path(tmp))
            pairs.append((b, loop, chosen, wall))
            print(f"bare {b:.2f} s | entrypoint loop {loop:.2f} s, of which evaluation and "
                  f"samples {chosen:.2f} s | framework overhead {(loop - chosen) / b - 1:+.1%} "
                  f"| whole process {wall:.2f} s", flush=True)  # fmt: skip
    b, loop, chosen, wall = (statistics.median(x) for x in zip(*pairs, strict=True))
    print(f"experiment={args.preset} train.steps={args.steps}, median of {args.repeats}: bare "
          f"loop {b:.2f} s; entrypoint loop {loop:.2f} s = {(loop - chosen) / b - 1:+.1%} "
          f"framework overhead + {chosen:.2f} s of evaluation and samples at the preset's "
          f"intervals ({loop / b - 1:+.1%} in all); start-up and final artifacts "
          f"{wall - loop:.1f} s more")  # fmt: skip


if __name__ == "__main__":
    main()
