"""Files that are whole or absent: write to a temporary name beside the target, fsync, rename.

A reader (another process, MLflow logging the file, a resume after a crash) never sees a
half-written file, and a write that fails (disk full) leaves no temporary file behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from rnnexp import faults


def temporary_name(path: Path) -> Path:
    """`.NAME.PID.tmp` beside `path`: hidden, and tells which process wrote it."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call write(f) on a temporary file, then rename it to `path`; return `path`."""
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        faults.point(f"write:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
