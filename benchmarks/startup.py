"""How fast the `rnnexp` command answers when it trains nothing: --help, --cfg job, and a
mistake on the command line (one line, exit 2). Wall time of the whole process, median of N
runs, in a throwaway folder; and whether MLflow and numba were imported (neither must be).
Prints a Markdown table and writes docs/results/startup.json.

    .venv/bin/python benchmarks/startup.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import report

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
    return ", ".join(m for m in ("mlflow", "numba") if m in names) or "neither mlflow nor numba"


def table(result: dict) -> str:
    """Each command's wall time (median, min, max of the repeats) and what it imported."""
    rows = [[f"`{r['command']}`", r["imports"], f"{r['median']:.2f}", f"{r['min']:.2f}",
             f"{r['max']:.2f}"] for r in result["rows"]]  # fmt: skip
    head = ["command", "imports", "median (s)", "min (s)", "max (s)"]
    return report.markdown(head, rows, right=2) + f"\n\nmedian of {result['repeats']} runs each"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--write", type=Path, default=report.RESULTS / "startup.json")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as cwd:
        for name, case in CASES.items():
            times = [wall(case, cwd) for _ in range(args.repeats)]
            which = "" if case is None else imported(case, cwd)
            rows.append({"command": name, "median": statistics.median(times), "min": min(times),
                         "max": max(times), "imports": which})  # fmt: skip
            print(rows[-1], flush=True)
    result = {"repeats": args.repeats, "rows": rows}
    print("\n" + table(result))
    if args.repeats >= 7:
        report.write(args.write, ".venv/bin/python benchmarks/startup.py", **result)


if __name__ == "__main__":
    main()
