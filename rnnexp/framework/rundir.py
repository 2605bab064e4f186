"""A folder of its own for every run and every sweep, whatever the timing.

A folder is claimed by creating its marker file `.rnnexp` with O_EXCL, before Hydra writes
anything into it, and held with an exclusive `flock` on that marker while its process lives
(the kernel drops the lock when the process dies, however it dies). Time-named folders that
collide (runs started in the same second) take the next free suffix: `…_21-18-05`,
`…_21-18-05_2`, which still sort by time. A folder named by the user that holds a run is
refused, and a folder held by a live process cannot be resumed by another.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from rnnexp.errors import RnnexpError

MARKER = ".rnnexp"  # in every run and sweep folder: who claimed it; flock-ed while it runs
# signs of a run or sweep already in a folder
RUN_FILES = (".hydra", "checkpoint.npz", "model", "multirun.yaml", "rnnexp_sweep.json")
_held: dict[Path, int] = {}  # folder -> fd of its locked marker, for this process's lifetime


def claim_fresh(base: Path) -> Path:
    """The first of base, base_2, base_3, … that this process creates; claimed and held."""
    base.parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        folder = base if n == 1 else base.with_name(f"{base.name}_{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            n += 1
            continue
        return claim(folder)


def claim(folder: Path) -> Path:
    """Claim a folder the user named (made if missing) and hold it; refuse one that holds a
    run, or that another process claimed first."""
    folder.mkdir(parents=True, exist_ok=True)
    taken = [f for f in RUN_FILES if (folder / f).exists()]
    if taken:
        raise RnnexpError(
            f"{folder} already holds a run ({taken[0]}): choose another folder, "
            f"or continue that run with resume={folder}"
        )
    try:
        fd = os.open(folder / MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise RnnexpError(f"{folder} is already claimed by another run ({MARKER})") from None
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    _lock(folder, fd)
    return folder


def hold(folder: Path) -> None:
    """Hold an existing run folder (to resume it, or a sweep job's own folder): refused while
    another live process holds it. Holding a folder this process already holds is a no-op."""
    folder = folder.resolve()
    if folder in _held:
        return
    fd = os.open(folder / MARKER, os.O_CREAT | os.O_RDWR, 0o644)
    _lock(folder, fd)


def _lock(folder: Path, fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        who = (folder / MARKER).read_text().strip() or "another process"
        raise RnnexpError(f"{folder} is in use by a running rnnexp ({who})") from None
    _held[folder.resolve()] = fd


def discard(folder: Path, log_file: str) -> None:
    """Remove what a run that never started left in its folder (Hydra's .hydra/ and its log,
    the marker), and the folder itself if nothing else is in it; let it go."""
    import shutil

    folder = folder.resolve()
    if any((folder / f).exists() for f in RUN_FILES if f != ".hydra"):
        return  # a run's files: never this run's to remove
    shutil.rmtree(folder / ".hydra", ignore_errors=True)
    for name in (log_file, MARKER):
        (folder / name).unlink(missing_ok=True)
    fd = _held.pop(folder, None)
    if fd is not None:
        os.close(fd)
    try:
        folder.rmdir()
    except OSError:  # the user's folder, with files of its own
        pass


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the `.NAME.PID.tmp` files that atomic writes of dead processes left in a folder
    this process holds (no other process writes there); return what was removed."""
    removed = []
    for tmp in folder.glob(".*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2]
        if pid != str(os.getpid()):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
