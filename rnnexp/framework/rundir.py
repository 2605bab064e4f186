"""A folder of its own for every run and every sweep, whatever the timing.

A folder is claimed by creating its marker file `.rnnexp` with O_EXCL, before Hydra writes
anything into it, and held with an exclusive `flock` on that marker while its process lives
(the kernel drops the lock when the process dies, however it dies: a free lock on a folder
whose run the store shows RUNNING means its process is gone). Time-named folders that collide
(runs started in the same second) take the next free suffix: `…_21-18-05`, `…_21-18-05_2`,
which still sort by time. A run is written only into a new or empty folder, and a folder held
by a live process cannot be resumed by another. rnnexp deletes only what it wrote: the
claimed folder of a run that never started, and its own temporary files of dead writers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from rnnexp.errors import RnnexpError

MARKER = ".rnnexp"  # in every run and sweep folder: who holds it; flock-ed while it runs
CHECKPOINT_FILE = "checkpoint.npz"  # in a run's folder: everything resume= needs
SWEEP_FILE = "rnnexp_sweep.json"  # in a sweep's folder: the tracking ids its jobs log under
# signs of a run or sweep already in a folder
RUN_FILES = (".hydra", CHECKPOINT_FILE, "model", "multirun.yaml", SWEEP_FILE)
# rnnexp.atomic's temporary files: `.NAME.PID.tmp`, beside the file NAME they become
TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.tmp")
# all a folder holds until its run starts: the claim, Hydra's files, the log's first lines
UNSTARTED = {MARKER, ".hydra", "rnnexp.log", "multirun.yaml"}
HYDRA_FILES = {"config.yaml", "hydra.yaml", "overrides.yaml"}  # what Hydra writes in .hydra/
_held: dict[Path, int] = {}  # folder -> fd of its locked marker, for this process's lifetime
# claimed folders whose run (or sweep) has not started yet -> the folders made for them
# (itself, and missing parents, deepest first): what discard() may remove
_unstarted: dict[Path, list[Path]] = {}


def _make(folder: Path) -> list[Path]:
    """mkdir -p; the folders it made, deepest first."""
    made = []
    for f in [folder, *folder.parents]:
        if f.exists():
            break
        made.append(f)
    folder.mkdir(parents=True, exist_ok=True)
    return made


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the end of the block: a claim is whole (marker, lock,
    record of what to discard) or not made when the command stops, never half made."""
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


@_signals_held()
def claim_fresh(base: Path) -> Path:
    """The first of base, base_2, base_3, … that this process creates; claimed and held.
    Folders beside it that a killed command claimed and never started a run in go."""
    parents = _make(base.parent)
    for other in base.parent.iterdir():
        if _never_started(other):
            shutil.rmtree(other, ignore_errors=True)
    n = 1
    while True:
        folder = base if n == 1 else base.with_name(f"{base.name}_{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            n += 1
            continue
        return claim(folder, made=[folder, *parents])


@_signals_held()
def claim(folder: Path, made: list[Path] | None = None) -> Path:
    """Claim a folder the user named, new or empty (made if missing), and hold it; refuse one
    with anything in it, or that another process claimed first. `made`: the folders the
    caller made for it."""
    if folder.exists() and not folder.is_dir():
        raise RnnexpError(f"{folder} is a file, not a folder: name a new or empty folder")
    made = _make(folder) if made is None else made
    if _never_started(folder):  # claimed by a command killed before its run started
        _empty(folder)
    taken = [f for f in RUN_FILES if (folder / f).exists()]
    if taken:
        raise RnnexpError(f"{folder} already holds a run ({taken[0]}): choose another folder, "
                          f"or continue that run with resume={folder}")  # fmt: skip
    try:
        fd = os.open(folder / MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise RnnexpError(f"{folder} is already claimed by another run ({MARKER})") from None
    _lock(folder, fd)  # held from its first moment: never taken for a dead command's
    others = sorted(p.name for p in folder.iterdir() if p.name != MARKER)
    if others:  # the user's own files: a run's would overwrite or mix with them
        os.unlink(folder / MARKER)
        os.close(_held.pop(folder.resolve()))
        raise RnnexpError(f"{folder} is not empty "
                          f"({', '.join(others[:3])}{', …' if others[3:] else ''}): a run writes "
                          f"only into a new or empty folder; name another")  # fmt: skip
    _write_owner(fd)
    _unstarted[folder.resolve()] = made
    return folder


def hold(folder: Path) -> None:
    """Hold an existing run folder (to resume it, or a sweep job's own folder): refused while
    another live process holds it. Holding a folder this process already holds is a no-op."""
    folder = folder.resolve()
    if folder in _held:
        return
    fd = os.open(folder / MARKER, os.O_CREAT | os.O_RDWR, 0o644)
    _lock(folder, fd)
    _write_owner(fd)  # the holder a second command is told about is this one, not the first


def is_held(folder: Path) -> bool:
    """Whether a live process (this one included) holds the folder; False for a folder that
    is gone or was never claimed."""
    folder = folder.resolve()
    if folder in _held:
        return True
    try:
        fd = os.open(folder / MARKER, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # drops the shared lock taken to look


def _never_started(folder: Path) -> bool:
    """A folder a command claimed and was killed in (SIGKILL: no chance to discard it) before
    its run started: nothing in it but what the claim and Hydra wrote (a marker in rnnexp's
    words, Hydra's own three files), and nobody holds it."""
    if not folder.is_dir() or folder.is_symlink():
        return False
    names = {p.name for p in folder.iterdir() if not stale(p)}  # a first write cut off
    if MARKER not in names or not names <= UNSTARTED or is_held(folder):
        return False
    hydra = folder / ".hydra"
    if hydra.exists() and not {p.name for p in hydra.iterdir()} <= HYDRA_FILES:
        return False
    owner = (folder / MARKER).read_text(errors="replace")
    return re.fullmatch(r"pid \d+ on \S+\n", owner) is not None


def abandoned(folder: Path, host: str) -> bool:
    """Whether the run (or sweep) of `folder`, started on `host`, has no live process: on this
    machine, its folder is gone or nothing holds it. Another machine's runs are its own."""
    if host != socket.gethostname():
        return False
    return not folder.is_dir() or not is_held(folder)


def _write_owner(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)


def _lock(folder: Path, fd: int) -> None:
    for _ in range(50):  # is_held()'s look holds the lock for microseconds: retry
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            time.sleep(0.01)
    else:
        os.close(fd)
        who = (folder / MARKER).read_text().strip() or "another process"
        raise RnnexpError(f"{folder} is in use by a running rnnexp ({who})")
    _held[folder.resolve()] = fd


def started(folder: Path) -> None:
    """The run (or sweep) of a claimed folder has started: its folder stays, whatever follows."""
    _unstarted.pop(folder.resolve(), None)


def discard(folder: Path) -> None:
    """Undo the claim of a run that never started: remove the folder's contents (all written
    since it was claimed, new or empty) and the folders made for it, and let it go. A folder
    this process did not claim, or whose run started, is left alone."""
    folder = folder.resolve()
    if folder not in _unstarted:
        return
    made = _unstarted.pop(folder)
    let_go(folder)
    _empty(folder)
    for f in made:  # deepest first; one another process wrote into stays
        try:
            f.rmdir()
        except OSError:
            break


def _empty(folder: Path) -> None:
    """Remove everything in `folder` (a link itself, never what it points to)."""
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def let_go(folder: Path) -> None:
    """Let go of one folder this process holds (a sweep's job over, in a worker that lives on)."""
    fd = _held.pop(folder.resolve(), None)
    if fd is not None:
        os.close(fd)


def release() -> None:
    """Let go of every folder this process holds (its command is over; so does its exit)."""
    for fd in _held.values():
        os.close(fd)
    _held.clear()
    _unstarted.clear()


def discard_unstarted() -> None:
    """discard() every folder this process claimed whose run never started (an error, or a
    signal, before its first step)."""
    for folder in list(_unstarted):
        discard(folder)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete rnnexp's own temporary files (`.NAME.PID.tmp`) in `folder` and its subfolders
    whose writer is dead: what a kill left mid-write. Any other file, and a live writer's,
    stays."""
    removed = [tmp for tmp in folder.rglob(".*.tmp") if stale(tmp)]
    for tmp in removed:
        tmp.unlink(missing_ok=True)
    return removed


def stale(tmp: Path) -> bool:
    """Whether `tmp` is a temporary file of rnnexp's (`.NAME.PID.tmp`) whose writer is dead."""
    found = TEMPORARY.fullmatch(tmp.name)
    return found is not None and not alive(int(found["pid"]))


def check_cwd() -> None:
    """The folder the command runs in still exists: a deleted one fails deep in a library
    (Hydra records it first thing, numba's dispatcher asks for it)."""
    try:
        os.getcwd()
    except FileNotFoundError:
        raise RnnexpError("the folder this command was started from was deleted: cd to a "
                          "folder that exists") from None  # fmt: skip


def alive(pid: int) -> bool:
    """Whether process `pid` of this machine lives (this one does)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or a number no process has
        return False
    except PermissionError:  # another user's live process
        return True
    return True
