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
# folder -> what was there before this process claimed it: the names already in it, and the
# folders made for it (itself, and missing parents), so discard() removes only its own
_before: dict[Path, tuple[set[str], list[Path]]] = {}


def _make(folder: Path) -> list[Path]:
    """mkdir -p; the folders it made, deepest first."""
    made = []
    for f in [folder, *folder.parents]:
        if f.exists():
            break
        made.append(f)
    folder.mkdir(parents=True, exist_ok=True)
    return made


def claim_fresh(base: Path) -> Path:
    """The first of base, base_2, base_3, … that this process creates; claimed and held."""
    parents = _make(base.parent)
    n = 1
    while True:
        folder = base if n == 1 else base.with_name(f"{base.name}_{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            n += 1
            continue
        return claim(folder, made=[folder, *parents])


def claim(folder: Path, made: list[Path] | None = None) -> Path:
    """Claim a folder the user named (made if missing) and hold it; refuse one that holds a
    run, or that another process claimed first. `made`: the folders the caller made for it."""
    made = _make(folder) if made is None else made
    existing = {p.name for p in folder.iterdir()}
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
    _before[folder.resolve()] = (existing, made)
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


def discard(folder: Path) -> None:
    """Undo the claim of a run that never started: remove what appeared in its folder since
    (Hydra's .hydra/ and log, the marker) and the folders made for it, and let it go. What
    was there before stays, and so does a folder this process did not make."""
    import shutil

    folder = folder.resolve()
    if folder not in _before:
        return  # not claimed by this process (a resumed run's folder)
    existing, made = _before.pop(folder)
    fd = _held.pop(folder, None)
    if fd is not None:
        os.close(fd)
    for entry in folder.iterdir():
        if entry.name in existing:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for f in made:  # deepest first; one another process wrote into stays
        try:
            f.rmdir()
        except OSError:
            break


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
