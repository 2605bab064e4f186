"""A benchmark's result for the docs: docs/results/NAME.json holds the command, the machine,
the date and the figures, and the benchmark's own `table(result)` turns it into the Markdown
table it prints, the same one the performance page shows (docs/hooks.py calls it at build)."""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


def machine() -> str:
    """The CPU's model name and its core count: what the figures were measured on."""
    name = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        name = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                     if line.startswith("model name")), name)  # fmt: skip
    return f"{name}, {os.cpu_count()} cores"


def write(path: Path, command: str, **figures: object) -> None:
    """The result file: the exact command, this machine, today, and the figures."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = {"command": command, "machine": machine(), "date": datetime.date.today().isoformat()}
    path.write_text(json.dumps({**head, **figures}, indent=2) + "\n")
    print(f"written: {path}")


def markdown(head: list[str], rows: list[list[object]], right: int = 1) -> str:
    """A Markdown table; the columns from `right` on are aligned right (figures)."""
    rule = ["---" if i < right else "---:" for i in range(len(head))]
    lines = [head, rule, *rows]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines)
