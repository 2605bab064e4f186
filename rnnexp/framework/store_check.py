"""Whether a tracking store can be used, checked before a run starts, in one line if not: a
server that answers, a database server that takes a connection, a sqlite file that can be
made or is a whole MLflow store of this MLflow's schema, not held locked for long by another
process. Plain Python, no MLflow: well under a second. Nothing is changed.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sqlite3
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote, urlparse

from rnnexp.errors import RnnexpError, install_hint
from rnnexp.framework.store import redact, sqlite_path

NOT_SQLITE = "not an sqlite database"
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}  # database stores


def check_store(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, with one line, before a run starts, if the store cannot be used: a server
    that does not answer /health within `timeout`, a database server that does not accept a
    connection (MLflow itself retries either for minutes), a sqlite file that cannot be
    created, or one that is not a whole MLflow store. Nothing is changed."""
    scheme = urlparse(uri).scheme.split("+")[0]
    if scheme in ("http", "https"):
        _check_server(uri, timeout)
    elif scheme in DEFAULT_PORTS:
        _check_database(uri, scheme, timeout)
    elif scheme == "sqlite":
        _check_sqlite(uri)
    else:
        raise RnnexpError(
            f"tracking store {redact(uri)} is not a store URI rnnexp can use: give "
            f"sqlite:///path/to/mlflow.db, http://HOST:PORT (an MLflow server), or "
            f"postgresql://USER@HOST/DATABASE (also mysql://, mssql://)"
        )


def _check_server(uri: str, timeout: float) -> None:
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as r:
            if r.status == 200:
                return
            reason = f"HTTP {r.status}"
    except OSError as e:  # refused, unreachable, timed out, HTTP errors
        reason = str(getattr(e, "reason", e))
    raise RnnexpError(
        f"cannot reach the MLflow tracking server {redact(uri)} ({reason}); "
        f"start it, or set tracking.uri (or MLFLOW_TRACKING_URI) to another store"
    )


def _check_database(uri: str, scheme: str, timeout: float) -> None:
    _check_driver(uri)
    parts = urlparse(uri)
    address = (parts.hostname or "localhost", parts.port or DEFAULT_PORTS[scheme])
    try:
        socket.create_connection(address, timeout=timeout).close()
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise RnnexpError(
            f"cannot reach the {scheme} tracking store {redact(uri)} ({reason}); start "
            f"the database server, or set tracking.uri (or MLFLOW_TRACKING_URI) elsewhere"
        ) from None


def _check_sqlite(uri: str) -> None:
    path = sqlite_path(uri)
    if path is None:  # sqlite://x.db, sqlite:/x.db, sqlite:// (in memory)
        raise RnnexpError(
            f"tracking store {uri}: a sqlite store is a file, sqlite:///relative/path.db or "
            f"sqlite:////absolute/path.db (an in-memory one would be gone when the run ends)"
        )
    folder = path.parent  # made when the store is created: a check creates nothing
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise RnnexpError(f"cannot create the tracking store {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK) or _read_only_mount(folder):
        raise RnnexpError(f"cannot write the tracking store {path}: its folder is read-only")
    if folder == path.parent and not path.exists():
        try:  # a folder that takes no files whatever its modes say (/proc, /sys)
            tempfile.TemporaryFile(dir=folder).close()
        except OSError as e:
            raise RnnexpError(f"cannot create the tracking store {path}: {e.strerror}") from None
    if path.is_dir():
        raise RnnexpError(f"tracking store {path} is a folder: name a file in it (mlflow.db)")
    if path.exists() and not path.is_file():  # a FIFO or a device: opening it would block
        raise RnnexpError(f"tracking store {path} is not a regular file: name an MLflow sqlite "
                          f"store, or a new file")  # fmt: skip
    if path.exists():
        problem = _wait_while_busy(path)
        if problem == NOT_SQLITE:  # somebody's file, not a store: nothing to advise about it
            raise RnnexpError(f"tracking store {path} is not an MLflow store ({problem}): set "
                              f"tracking.uri to your store, or to a new file")  # fmt: skip
        if problem:
            raise RnnexpError(
                f"tracking store {path} is damaged ({problem}); it was left as it is: restore "
                f"it from a backup, or set tracking.uri to a new file"
            )
        schema = _schema_problem(path)
        if schema:
            raise RnnexpError(f"tracking store {path} {schema}")


# how long a command waits for a sqlite store another process holds locked (a long write,
# `sqlite3` open in a transaction) before it gives up, saying so
BUSY_WAIT = 30.0


def _wait_while_busy(path: Path) -> str | None:
    """sqlite_problem(path), waiting up to BUSY_WAIT seconds while another process holds the
    store locked; a store still locked after that is an error that says so."""
    import time

    deadline = time.monotonic() + BUSY_WAIT
    said = False
    while True:
        try:
            return sqlite_problem(path)
        except StoreBusy as e:
            if time.monotonic() >= deadline:
                raise RnnexpError(
                    f"tracking store {path} is busy: another process has held it locked for "
                    f"{BUSY_WAIT:.0f} s ({e}); try again when it is done, or set tracking.uri"
                ) from None
            if not said:  # before the run's log exists: on the command's stderr
                print(f"rnnexp: tracking store {path} is locked by another process: waiting "
                      f"up to {BUSY_WAIT:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
                said = True
            time.sleep(0.5)


class StoreBusy(Exception):
    """Another process holds a sqlite store locked."""


def _schema_problem(path: Path) -> str | None:
    """Whether the store's schema is the one the installed MLflow writes: an older MLflow's
    needs `mlflow db upgrade` (which rnnexp leaves to the user: take a backup first)."""
    import importlib.util

    spec = importlib.util.find_spec("mlflow")
    folder = Path(spec.origin).parent / "store" / "db_migrations" / "versions"
    revisions, parents = set(), set()
    for f in folder.glob("*.py"):
        text = f.read_text()
        revisions.update(re.findall(r'^revision = "(\w+)"', text, re.M))
        parents.update(re.findall(r'^down_revision = "(\w+)"', text, re.M))
    heads = revisions - parents
    with _read_only(path) as db:
        found = db.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    if not heads or found in heads:
        return None
    if found in revisions:
        return (
            f"was made by an older MLflow (schema {found}): back it up, then upgrade it with "
            f"mlflow db upgrade sqlite:///{path}"
        )
    return f"was made by a newer MLflow (schema {found}): upgrade mlflow, or set tracking.uri"


def _check_driver(uri: str) -> None:
    """A database store's Python driver is installed (SQLAlchemy's error names a module)."""
    import importlib.util

    scheme = urlparse(uri).scheme
    if scheme in ("postgresql", "postgresql+psycopg"):
        driver = "psycopg"
    elif scheme == "postgresql+psycopg2":
        driver = "psycopg2"
    else:
        return
    if importlib.util.find_spec(driver) is None:
        raise RnnexpError(
            f"a PostgreSQL tracking store needs its driver ({driver}): {install_hint('server')}"
        )


def _read_only(path: Path) -> contextlib.closing:
    """A read-only connection to a sqlite file, closed on leaving `with`. It does not wait
    for another process's lock (sqlite's default waits 5 s): a locked store raises at once,
    and _wait_while_busy waits for it, saying so."""
    return contextlib.closing(
        sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=0.1)
    )


def sqlite_problem(path: Path) -> str | None:
    """What keeps a file from being a whole MLflow sqlite store, or None. A store whose
    creation was cut off has some tables but no schema version (MLflow stamps it last)."""
    with open(path, "rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            return NOT_SQLITE
    try:
        with _read_only(path) as db:
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                return f"sqlite integrity check: {check}"
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            if (
                "alembic_version" not in tables
                or not db.execute("SELECT version_num FROM alembic_version").fetchone()
            ):
                return "its tables were never completed: no schema version"
    except sqlite3.OperationalError as e:
        if "locked" in str(e) or "busy" in str(e):
            raise StoreBusy(str(e)) from None
        return f"sqlite: {e}"
    except sqlite3.Error as e:
        return f"sqlite: {e}"
    return None


def _read_only_mount(folder: Path) -> bool:
    """os.access says yes to root on a read-only file system; statvfs knows."""
    return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
