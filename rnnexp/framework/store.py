"""The tracking store: where it is (tracking.uri, $MLFLOW_TRACKING_URI, or sqlite
outputs/mlflow.db under the launch dir), how its URI is shown and its password kept out of
every record, and the lock a local store is opened under (whether it answers: store_check.py).

Plain Python, no MLflow: the entrypoint checks a store in well under a second, and the
password of a URI is moved into the environment before anything records the URI.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlparse

from rnnexp.errors import RnnexpError


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
    try:
        parts = _parse(uri)
    except RnnexpError:
        return "(the tracking URI, unparsable)"
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
    parts = _parse(uri)
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
            if _is_sweep(arg):  # each value may hold a password: refused before any is read
                raise RnnexpError(
                    "a sweep lives in one tracking store: give tracking.uri one value"
                )
            key, _, value = arg.partition("=")
            clean, env = move_credentials(value.strip("'\""))
            os.environ.update(env)
            arg = f"{key}={quote(clean)}" if env else arg
        out.append(arg)
    return out


def _is_sweep(override: str) -> bool:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_override(override).is_sweep_override()
    except Exception:  # not Hydra's grammar: Hydra says so, once its password is out
        return False


def _parse(uri: str):
    """urlparse, its error one line that does not repeat the URI (it may hold a password)."""
    try:
        parts = urlparse(uri)
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError as e:
        raise RnnexpError(f"tracking.uri is not a valid URI: {e}") from None
    return parts


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
