"""Where numba caches the compiled kernels: a folder of rnnexp's own, named for a digest of
every file that defines kernels, given to numba by its documented NUMBA_CACHE_DIR.

numba checks a cached kernel against its own file only, while a kernel inlines kernels of
other files (jit.py's loops and scalars.py's tanh into every cell, a cell's step into the
sampling loop): edit tanh, and every cell would load stale code. A folder per digest makes
any edit a fresh cache, which numba's documentation gives as the remedy (a cleared cache).
The folder lies under the user's NUMBA_CACHE_DIR when set, else ~/.cache/rnnexp (or
$XDG_CACHE_HOME/rnnexp); a copy of the package in a folder nobody may write caches there too.

A cache that cannot be used costs only itself: no folder that can be written, a disk with
less than MIN_FREE left (numba's save raises out of the compile, which would end a run), or
numba imported before rnnexp (it read NUMBA_CACHE_DIR then): kernels compile in each process.
A file cut short (a power cut before the disk wrote it) is removed, and compiled again.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
TAG = "rnnexp-kernels-"
MIN_FREE = 64 << 20  # a model's kernels take ~1 MB; a disk this close to full is left alone


def _sources_digest() -> str:
    """A digest of every file of the package that defines kernels."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_bytes()
        if b"@kernel" in text or b"@overload" in text:
            digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + text)
    return digest.hexdigest()[:16]


def user_cache() -> Path | None:
    """rnnexp's folder in the user's cache, ~/.cache/rnnexp (or $XDG_CACHE_HOME/rnnexp), where
    what is computed once per machine is kept (the n-gram baselines too); None: no home."""
    try:
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rnnexp"
    except RuntimeError:  # no home folder at all
        return None


def place() -> None:
    """NUMBA_CACHE_DIR set to this version's folder, before numba is imported (it reads it
    then). A child process inherits it: its parent folder is then the base."""
    given = os.environ.get("NUMBA_CACHE_DIR")
    if given:
        base = Path(given).parent if Path(given).name.startswith(TAG) else Path(given)
    elif (base := user_cache()) is None:
        return
    os.environ["NUMBA_CACHE_DIR"] = str(base / (TAG + _sources_digest()))


def usable() -> bool:
    """Whether numba may cache the kernels (see the module's docstring); damaged files of
    the folder removed first."""
    import numba

    folder = os.environ.get("NUMBA_CACHE_DIR", "")
    if not Path(folder).name.startswith(TAG) or numba.config.CACHE_DIR != folder:
        return False
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()  # a mode or a read-only mount says no
        if shutil.disk_usage(folder).free < MIN_FREE:
            return False
        for path in Path(folder).rglob("*.nb[ic]"):  # numba's index and data files
            if not _whole(path):
                path.unlink(missing_ok=True)
    except OSError:
        return False
    return True


def _whole(path: Path) -> bool:
    """Whether a cache file is whole: one or more complete pickles (an index is two), read
    without making a single one of the objects they hold."""
    try:
        with open(path, "rb") as f:
            _Opaque(f).load()  # one at least: an empty file is a write the disk never made
            while f.peek(1):
                _Opaque(f).load()
    except Exception:  # any stream a pickle cannot be read from whole
        return False
    return True


class _Anything:
    """What every class in a pickle reads as, to check its stream and nothing else."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        pass


class _Opaque(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> type:
        return _Anything
