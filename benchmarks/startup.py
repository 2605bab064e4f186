"""How fast the `rnnexp` command answers when it trains nothing: --help, --cfg job, and a
mistake on the command line (one line, exit 2). Wall time of the whole process, median of N
runs, in a throwaway folder; and whether MLflow and numba were imported (neither must be).

    .venv/bin/python benchmarks/startup.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

CASES = {
    "rnnexp --help": ["--help"],
    "rnnexp --cfg job": ["--cfg", "job"],
    "rnnexp model=rnm (error)": ["model=rnm"],
    "python -c pass (the floor)": None,
}


def wall(args: list[str] | None, cwd: str) -> float:
    cmd = (
        [sys.executable, "-c", "pass"] if args is None else [sys.executable, "-m", "rnnexp", *args]
    )
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, capture_output=True, check=False)
    return time.perf_counter() - start


def imported(args: list[str], cwd: str) -> str:
    """Which of MLflow and numba the command imported (neither should be)."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "rnnexp", *args], cwd=cwd,
                       capture_output=True, text=True)  # fmt: skip
    names = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines()}
    return ", ".join(f"imports {m}: {m in names}" for m in ("mlflow", "numba"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as cwd:
        for name, case in CASES.items():
            times = [wall(case, cwd) for _ in range(args.repeats)]
            which = "" if case is None else f"  {imported(case, cwd)}"
            print(f"{name:28s} median {statistics.median(times):.3f} s "
                  f"(min {min(times):.3f}, max {max(times):.3f}){which}")  # fmt: skip


if __name__ == "__main__":
    main()
