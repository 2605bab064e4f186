"""The tracking store before MLflow meets it: where it is (tracking.uri,
$MLFLOW_TRACKING_URI, or sqlite outputs/mlflow.db under the launch dir), whether it can be
used at all, and `StoreUri`, the store as plain values, made once from its resolved URI: the
URI shown with any password masked, its sqlite file, the lock a local store is opened under
and where its artifacts go (tracking.Store adds MLflow's client to it).

Plain Python, no MLflow: a store checked in well under a second, and one that MLflow would
retry for minutes (a server or database that does not answer, a file that is not a
database) refused at once, in one line. What only MLflow can tell (a damaged or older store)
it tells at its first contact (tracking/store.py: Store.errors).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from rnnexp.errors import RnnexpError, install_hint
from rnnexp.framework.settings import redact


def resolve_uri(uri: str | None, launch_dir: Path) -> str:
    """tracking.uri if set, else $MLFLOW_TRACKING_URI, else sqlite outputs/mlflow.db under the
    launch dir; a relative sqlite path is made absolute against the launch dir."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if not uri:
        return f"sqlite:///{(launch_dir / 'outputs' / 'mlflow.db').resolve()}"
    path = sqlite_path(uri)
    if path is not None and not path.is_absolute():
        return f"sqlite:///{(launch_dir / path).resolve()}"
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite URI (sqlite:///rel.db or sqlite:////abs.db), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(unquote(uri[len("sqlite:///") :]))


class StoreUri:
    """A store's resolved URI as plain values, computed once: `uri`, `shown` (any password
    masked), `path` (its sqlite file, or None), and what follows from them."""

    def __init__(self, uri: str):
        self.uri = uri
        self.path = sqlite_path(uri)

    @classmethod
    def named(cls, uri: str | None, launch_dir: Path, check: bool = True, writes: bool = True):
        """The store a command names (resolve_uri), and with `check` one that cannot be used
        refused at once in one line (check_store: to write in it, or only to read), before
        MLflow would retry it for minutes."""
        uri = resolve_uri(uri, launch_dir)
        if check:
            check_store(uri, writes=writes)
        return cls(uri)

    @functools.cached_property
    def shown(self) -> str:
        return redact(self.uri)

    @property
    def is_server(self) -> bool:
        return self.uri.startswith(("http://", "https://"))

    def artifact_location(self, experiment: str) -> str | None:
        """Artifacts of a local sqlite store live beside it (outputs/mlartifacts/<experiment>),
        not in ./mlruns of whatever the cwd is; a server decides for itself."""
        if self.path is None:
            return None
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment)
        return (self.path.parent / "mlartifacts" / slug).resolve().as_uri()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock around opening a local sqlite store; other stores need none."""
        if self.path is None:
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}  # database stores


def check_store(uri: str, timeout: float = 5.0, writes: bool = True) -> None:
    """Fail fast, with one line, before a run starts, if the store cannot be used: a server
    that does not answer /health within `timeout`, a database server that does not accept a
    connection (MLflow itself retries either for minutes), a sqlite file that cannot be
    made or written (when the command `writes`: a look-up reads a read-only store), or one
    that is no sqlite database. Nothing is changed."""
    scheme = urlparse(uri).scheme.split("+")[0]
    if scheme in ("http", "https"):
        _check_server(uri, timeout)
    elif scheme in DEFAULT_PORTS:
        _check_database(uri, scheme, timeout)
    elif scheme == "sqlite":
        _check_sqlite(uri, writes)
    else:
        raise RnnexpError(f"tracking store {redact(uri)} is not a store URI rnnexp can use: give "
                          f"sqlite:///path/to/mlflow.db, http://HOST:PORT (an MLflow server), or "
                          f"postgresql://USER@HOST/DATABASE (also mysql://, mssql://)")  # fmt: skip


def _check_server(uri: str, timeout: float) -> None:
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as r:
            if r.status == 200:
                return
            reason = f"HTTP {r.status}"
    except OSError as e:  # refused, unreachable, timed out, HTTP errors
        reason = str(getattr(e, "reason", e))
    raise RnnexpError(f"cannot reach the MLflow tracking server {redact(uri)} ({reason}); "
                      f"start it, or set tracking.uri (or MLFLOW_TRACKING_URI) to another "
                      f"store")  # fmt: skip


def _check_database(uri: str, scheme: str, timeout: float) -> None:
    import importlib.util
    import socket

    driver = {"postgresql": "psycopg", "postgresql+psycopg": "psycopg",
              "postgresql+psycopg2": "psycopg2"}.get(urlparse(uri).scheme)  # fmt: skip
    if driver and importlib.util.find_spec(driver) is None:
        raise RnnexpError(f"a PostgreSQL tracking store needs its driver ({driver}): "
                          f"{install_hint('server')}")  # fmt: skip
    parts = urlparse(uri)
    address = (parts.hostname or "localhost", parts.port or DEFAULT_PORTS[scheme])
    try:
        socket.create_connection(address, timeout=timeout).close()
    except OSError as e:
        raise RnnexpError(f"cannot reach the {scheme} tracking store {redact(uri)} ("
                          f"{e.strerror or type(e).__name__}); start the database server, or set "
                          f"tracking.uri (or MLFLOW_TRACKING_URI) elsewhere") from None  # fmt: skip


def _check_sqlite(uri: str, writes: bool) -> None:
    import tempfile

    path = sqlite_path(uri)
    if path is None:  # sqlite://x.db, sqlite:/x.db, sqlite:// (in memory)
        raise RnnexpError(f"tracking store {uri}: a sqlite store is a file, "
                          f"sqlite:///relative/path.db or sqlite:////absolute/path.db (an "
                          f"in-memory one would be gone when the run ends)")  # fmt: skip
    if writes:  # made or written by this command (a look-up only reads)
        folder = path.parent  # made when the store is created: a check creates nothing
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir():
            raise RnnexpError(f"cannot create the tracking store {path}: {folder} is not a folder")
        # os.access says yes to root on a read-only file system; statvfs knows
        if not os.access(folder, os.W_OK) or os.statvfs(folder).f_flag & os.ST_RDONLY:
            raise RnnexpError(f"cannot write the tracking store {path}: its folder is read-only")
        if folder == path.parent and not path.exists():
            try:  # a folder that takes no files whatever its modes say (/proc, /sys)
                tempfile.TemporaryFile(dir=folder).close()
            except OSError as e:
                raise RnnexpError(f"cannot create the tracking store {path}: "
                                  f"{e.strerror}") from None  # fmt: skip
    if path.is_dir():
        raise RnnexpError(f"tracking store {path} is a folder: name a file in it (mlflow.db)")
    if path.exists() and not path.is_file():  # a FIFO or a device: opening it would block
        raise RnnexpError(f"tracking store {path} is not a regular file: name an MLflow sqlite "
                          f"store, or a new file")  # fmt: skip
    if path.exists():
        with open(path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":  # somebody's file: nothing to advise
                raise RnnexpError(f"tracking store {path} is not an MLflow store (not an "
                                  f"sqlite database): set tracking.uri to your store, or to "
                                  f"a new file")  # fmt: skip
