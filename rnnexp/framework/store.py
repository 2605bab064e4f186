"""The tracking store: where it is (tracking.uri, $MLFLOW_TRACKING_URI, or sqlite
outputs/mlflow.db under the launch dir), whether it answers, and how its URI is shown.

Plain Python, no MLflow: the entrypoint checks a store in well under a second, and the
password of a URI is moved into the environment before anything records the URI.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlparse

from rnnexp.errors import RnnexpError, install_hint

DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}  # database stores


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


# query parameters that carry a secret (libpq's, SQLAlchemy's, MySQL drivers')
SECRET_KEYS = re.compile(r"(?i)^(password|passwd|pwd|sslpassword|token|secret|access_token)$")


def redact(uri: str) -> str:
    """The URI with its password, if any, shown as *** (as MLflow and SQLAlchemy print them),
    in the user part or a query parameter (`?password=...`)."""
    parts = urlparse(uri)
    query = _query(parts.query)
    if parts.password is None and not any(SECRET_KEYS.match(k) for k, _ in query):
        return uri  # as it was given: urlparse's round trip drops sqlite:////'s slashes
    if parts.password is not None:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1))
    query = [(k, "***" if SECRET_KEYS.match(k) else v) for k, v in query]
    return parts._replace(query=urlencode(query, safe="*")).geturl()


def _query(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def move_credentials(uri: str) -> tuple[str, dict[str, str]]:
    """(the URI without its password, the environment variables that carry it instead), so
    a password never enters the config, the run's params and tags, or Hydra's files.
    http(s): MLflow reads MLFLOW_TRACKING_USERNAME and _PASSWORD; postgresql: libpq reads
    PGPASSWORD. Other stores take the password from their own configuration files."""
    parts = urlparse(uri)
    secret = [v for k, v in _query(parts.query) if SECRET_KEYS.match(k)]
    if secret and parts.scheme.split("+")[0] == "postgresql" and parts.password is None:
        # libpq's ?password=: the same password, moved the same way
        rest = [(k, v) for k, v in _query(parts.query) if not SECRET_KEYS.match(k)]
        return parts._replace(query=urlencode(rest)).geturl(), {"PGPASSWORD": secret[0]}
    if parts.password is None and not secret:
        return uri, {}
    if parts.password is None:
        raise RnnexpError(
            f"tracking store {redact(uri)}: a password in the URI would be recorded; keep "
            f"it in the environment or the database client's own configuration instead"
        )
    host = parts.netloc.rpartition("@")[2]
    password = unquote(parts.password)
    if parts.scheme in ("http", "https"):
        env = {"MLFLOW_TRACKING_USERNAME": unquote(parts.username or ""),
               "MLFLOW_TRACKING_PASSWORD": password}  # fmt: skip
        return parts._replace(netloc=host).geturl(), env
    if parts.scheme.split("+")[0] == "postgresql":
        user = f"{parts.username}@" if parts.username else ""
        return parts._replace(netloc=user + host).geturl(), {"PGPASSWORD": password}
    raise RnnexpError(
        f"tracking store {redact(uri)}: a password in a {parts.scheme} URI would be recorded; "
        f"keep it in the database client's own configuration instead"
    )


def check_no_password(uri: str | None) -> None:
    """A password left in tracking.uri after the command line's was moved out (cli) came from
    a preset or an interpolation (${oc.env:...}): it would be recorded, so it is refused."""
    try:
        moved = uri is not None and move_credentials(uri)[1]
    except RnnexpError:
        moved = True
    if moved:
        raise RnnexpError(
            f"tracking.uri {redact(uri)} holds a password from a config file or an "
            f"interpolation, where it would be recorded: give the URI on the command line or "
            f"in MLFLOW_TRACKING_URI (rnnexp moves the password out), or the password in "
            f"PGPASSWORD / MLFLOW_TRACKING_PASSWORD"
        )


def take_credentials(argv: list[str]) -> list[str]:
    """A password in a command line's tracking.uri (or in $MLFLOW_TRACKING_URI) moved into
    the environment variables its client reads (move_credentials), before Hydra records the
    command line anywhere; the command line without it."""
    from rnnexp.framework.settings import override_key, quote

    env_uri = os.environ.get("MLFLOW_TRACKING_URI")
    if env_uri:
        clean, env = move_credentials(env_uri)
        os.environ.update(env | {"MLFLOW_TRACKING_URI": clean})
    out = []
    for arg in argv:
        if override_key(arg) == "tracking.uri":
            key, _, value = arg.partition("=")
            clean, env = move_credentials(value.strip("'\""))
            os.environ.update(env)
            arg = f"{key}={quote(clean)}" if env else arg
        out.append(arg)
    return out


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite URI (sqlite:///rel.db or sqlite:////abs.db), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(unquote(uri[len("sqlite:///") :]))


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Exclusive lock around opening a local sqlite store; other stores need none."""
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def check_store(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, with one line, before a run starts, if the store cannot be used: a server
    that does not answer /health within `timeout`, a database server that does not accept a
    connection (MLflow itself retries either for minutes), a sqlite file that cannot be
    created, or one that is not a whole MLflow store. Nothing is changed."""
    scheme = urlparse(uri).scheme.split("+")[0]
    if scheme not in ("sqlite", "http", "https", *DEFAULT_PORTS):
        raise RnnexpError(
            f"tracking store {redact(uri)} is not a store URI rnnexp can use: give "
            f"sqlite:///path/to/mlflow.db, http://HOST:PORT (an MLflow server), or "
            f"postgresql://USER@HOST/DATABASE (also mysql://, mssql://)"
        )
    if scheme in ("http", "https"):
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
    if scheme in DEFAULT_PORTS:
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
        return
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
    if path.exists():
        problem = _wait_while_busy(path)
        if problem:
            raise RnnexpError(
                f"tracking store {path} is damaged ({problem}); it was left as it is: move it "
                f"aside (mv {path} {path}.damaged) to start a new store, or set tracking.uri"
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
            return "not an sqlite database"
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
