"""Everything rnnexp says to MLflow goes through here; `NullRun` has the same methods and
does nothing, so the library runs without a tracking store.

Metrics are buffered and written with `log_batch` (one `log_metric` per point costs ~9 ms on
sqlite). A local sqlite store is opened under a file lock: MLflow creates its tables without
one, so processes opening a fresh store together can corrupt it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from rnnexp.errors import RnnexpError

RUN_ID = re.compile(r"[0-9a-f]{32}")  # an MLflow run id
MAX_METRICS_PER_BATCH = 1000  # MLflow's limits for one log_batch request
MAX_PARAMS_PER_BATCH = 100


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


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
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


def _client(uri: str):
    from mlflow import MlflowClient  # deferred: importing mlflow takes a second or two

    return MlflowClient(tracking_uri=uri)


def open_experiment(uri: str, name: str) -> str:
    """Create the store (if new) and the experiment (if new); return the experiment id."""
    from mlflow.exceptions import MlflowException

    with _store_lock(uri):
        client = _client(uri)
        try:
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                return client.create_experiment(
                    name, artifact_location=_artifact_location(uri, name)
                )
        except MlflowException as e:
            if e.error_code == "RESOURCE_ALREADY_EXISTS":  # made meanwhile by another process
                return client.get_experiment_by_name(name).experiment_id
            raise RnnexpError(f"MLflow tracking store {uri}: {e.message}") from None
    if experiment.lifecycle_stage == "deleted":
        raise RnnexpError(
            f"MLflow experiment {name!r} is deleted in {uri}; restore it "
            f"(mlflow experiments restore) or pick another tracking.experiment"
        )
    return experiment.experiment_id


def find_sweep_parent(uri: str, experiment_id: str, sweep_dir: str):
    """The running parent run (an mlflow Run) of the sweep whose folder is `sweep_dir`."""
    quote = '"' if "'" in sweep_dir else "'"
    runs = _client(uri).search_runs(
        [experiment_id],
        f"tags.`rnnexp.sweep_dir` = {quote}{sweep_dir}{quote} and attributes.status = 'RUNNING'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    if not runs:
        raise RnnexpError(f"no running sweep with folder {sweep_dir} in {uri}")
    return runs[0]


def _artifact_location(uri: str, experiment: str) -> str | None:
    """Artifacts of a local sqlite store live beside it (outputs/mlartifacts/<experiment>),
    not in ./mlruns of whatever the cwd is; a server decides for itself."""
    path = sqlite_path(uri)
    if path is None:
        return None
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment)
    return (path.parent / "mlartifacts" / slug).resolve().as_uri()


class MlflowRun:
    """One MLflow run, written through MlflowClient (no global active run, no MLFLOW_RUN_ID)."""

    def __init__(self, uri: str, run_id: str):
        self.uri = uri
        self.run_id = run_id
        self.client = _client(uri)
        self._metrics: list = []

    @classmethod
    def start(
        cls,
        uri: str,
        experiment_id: str,
        run_name: str,
        tags: dict[str, str],
        parent_run_id: str | None = None,
    ) -> MlflowRun:
        tags = dict(tags)
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id  # shows the run nested in the UI
        with _store_lock(uri):
            run = _client(uri).create_run(experiment_id, tags=tags, run_name=run_name)
        return cls(uri, run.info.run_id)

    @classmethod
    def reopen(cls, uri: str, run_id: str) -> MlflowRun:
        """An existing run, set RUNNING again to be continued (resume)."""
        from mlflow.exceptions import MlflowException

        run = cls(uri, run_id)
        try:
            run.client.update_run(run_id, status="RUNNING")
        except MlflowException as e:
            raise RnnexpError(
                f"cannot continue MLflow run {run_id} in {uri}: {e.message}"
            ) from None
        return run

    def log_params(self, params: dict[str, object]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + MAX_PARAMS_PER_BATCH])

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Buffered; written by flush() or when a batch is full. NaN/inf are kept as such."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        for k, v in metrics.items():
            self._metrics.append(Metric(k, float(v), now, step))
        if len(self._metrics) >= MAX_METRICS_PER_BATCH:
            self.flush()

    def flush(self) -> None:
        while self._metrics:
            batch = self._metrics[:MAX_METRICS_PER_BATCH]
            self.client.log_batch(self.run_id, metrics=batch)
            del self._metrics[: len(batch)]

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_artifact(self, local_path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(local_path), artifact_path)

    def finish(self, status: str = "FINISHED", error: str | None = None) -> None:
        """Flush, record the error (if any) as a tag, and close with FINISHED/FAILED/KILLED."""
        self.flush()
        if error:
            self.set_tags({"rnnexp.error": error[:5000]})
        self.client.set_terminated(self.run_id, status=status)


class NullRun:
    """Same methods as MlflowRun; records nothing."""

    run_id = None

    def log_params(self, params: dict[str, object]) -> None: ...
    def set_tags(self, tags: dict[str, str]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...
    def flush(self) -> None: ...
    def log_text(self, text: str, artifact_file: str) -> None: ...
    def log_artifact(self, local_path: Path, artifact_path: str | None = None) -> None: ...
    def finish(self, status: str = "FINISHED", error: str | None = None) -> None: ...


def check_store(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, before a run starts, if the store cannot be used: a server that does not
    answer /health within `timeout` (MLflow itself would retry for minutes), or a sqlite file
    that cannot be created or is not a database. Other stores are left to MLflow."""
    if urlparse(uri).scheme in ("http", "https"):
        import urllib.request

        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as r:
                if r.status == 200:
                    return
                reason = f"HTTP {r.status}"
        except OSError as e:  # refused, unreachable, timed out, HTTP errors
            reason = str(getattr(e, "reason", e))
        raise RnnexpError(
            f"cannot reach the MLflow tracking server {uri} ({reason}); "
            f"start it, or set tracking.uri (or MLFLOW_TRACKING_URI) to another store"
        )
    path = sqlite_path(uri)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RnnexpError(f"cannot create the folder of the tracking store {path}: {e}") from None
    if not os.access(path.parent, os.W_OK):
        raise RnnexpError(f"cannot write the tracking store {path}: its folder is read-only")
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                raise RnnexpError(f"tracking store {path} is not an sqlite database")
