"""Opening a tracking store: MLflow clients on one store (tracking and registry alike), a
store that must already exist, its failures as one line, and MLflow's global URIs pinned
where MLflow's own internals read them instead of the client's.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from rnnexp.errors import RnnexpError, disk_problem, first_line
from rnnexp.framework.store import redact, sqlite_path
from rnnexp.framework.tracking.plain import check_download, check_local_download

# MLflow logs each store error with its traceback before raising it; rnnexp reports it as
# one line (store_errors)
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
logging.getLogger("alembic").setLevel(logging.WARNING)  # INFO lines, one per migration


def client_for(uri: str):
    from mlflow import MlflowClient  # deferred: importing mlflow takes a second or two

    # no progress bar on downloads: rnnexp-sample's stdout is the text, a sweep's is its log
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return MlflowClient(tracking_uri=uri, registry_uri=uri)  # the registry: the same store


@contextlib.contextmanager
def global_uris(uri: str) -> Iterator[None]:
    """MLflow's global tracking and registry URIs set to `uri` within, restored after."""
    import mlflow

    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")  # set_*_uri writes them too
    env = {k: os.environ.get(k) for k in names}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def looking_up(uri: str, what: str, hint: str) -> Iterator:
    """A client for a store that must already exist (a look-up never creates one: MLflow
    makes a fresh sqlite file on first contact); a look-up the store refuses (no such run,
    model, version or alias) as one line naming `what` and the store, then `hint`."""
    from mlflow.exceptions import MlflowException

    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        raise RnnexpError(f"{what}: there is no MLflow store at {path}; {hint}")
    try:
        yield client_for(uri)
    except MlflowException as e:
        raise RnnexpError(f"{what} in {redact(uri)}: {e.message}; {hint}") from None


@contextlib.contextmanager
def store_errors(uri: str) -> Iterator[None]:
    """A store that fails mid-run (disk full, server gone) is one line, not MLflow's
    tracebacks: MlflowException, and OSError from copying artifacts, become RnnexpError."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, OSError) as e:
        path = sqlite_path(uri)
        if path is not None and not path.exists():  # its file removed under it
            raise RnnexpError(f"the tracking store {path} was deleted while this command used "
                              f"it") from None  # fmt: skip
        root: BaseException = e  # the database's or the file system's own words
        while getattr(root, "orig", None) or root.__cause__:
            root = getattr(root, "orig", None) or root.__cause__
        said = disk_problem(root) if isinstance(root, OSError) else first_line(root)
        raise RnnexpError(f"the tracking store {redact(uri)} failed: {said}") from None


def fetch(artifact_uri: str, dst: Path, what: str) -> Path:
    """The artifact (a file or folder) at `artifact_uri` downloaded into `dst`, after its
    listing was checked: regular files only where the store is a local folder (a store's
    record could point at /dev, whose files never end), at most MAX_DOWNLOAD_BYTES in all.
    `what` names it in an error."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    parts = urlparse(artifact_uri)
    total, count = 0, 0
    try:
        if parts.scheme in ("", "file"):
            check_local_download(Path(url2pathname(parts.path)), what)
        else:
            stack = [artifact_uri.rstrip("/")]
            while stack:
                here = stack.pop()
                for f in mlflow.artifacts.list_artifacts(artifact_uri=here):
                    if f.is_dir:
                        stack.append(f"{here}/{f.path.rsplit('/', 1)[-1]}")
                    else:
                        total, count = total + (f.file_size or 0), count + 1
                        check_download(what, total, count)
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri,
                                                        dst_path=str(dst)))  # fmt: skip
    except (MlflowException, OSError) as e:
        reason = disk_problem(e) if isinstance(e, OSError) else first_line(e.message)
        raise RnnexpError(f"{what} cannot be downloaded from its artifact store "
                          f"{redact(artifact_uri)}: {reason}") from None  # fmt: skip


def in_store(method: Callable) -> Callable:
    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        with store_errors(self.uri):
            return method(self, *args, **kwargs)

    return wrapped
