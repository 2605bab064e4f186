"""Everything rnnexp says to MLflow goes through here; `NullRun` has the same methods and
does nothing, so the library runs without a tracking store.

Metrics are buffered and written with `log_batch` (one `log_metric` per point costs ~9 ms on
sqlite). A local sqlite store is opened under a file lock: MLflow creates its tables without
one, so processes opening a fresh store together can corrupt it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rnnexp.atomic import temporary_name
from rnnexp.errors import RnnexpError, first_line
from rnnexp.framework.store import redact, sqlite_path, store_lock

# MLflow logs each store error with its traceback before raising it; rnnexp reports it as
# one line (store_errors)
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
logging.getLogger("alembic").setLevel(logging.WARNING)  # INFO lines, one per migration

RUN_ID = re.compile(r"[0-9a-f]{32}")  # an MLflow run id
MAX_METRICS_PER_BATCH = 1000  # MLflow's limits for one log_batch request
MAX_PARAMS_PER_BATCH = 100


def _client(uri: str):
    from mlflow import MlflowClient  # deferred: importing mlflow takes a second or two

    return MlflowClient(tracking_uri=uri)


def open_experiment(uri: str, name: str) -> str:
    """Create the store (if new) and the experiment (if new); return the experiment id."""
    from mlflow.exceptions import MlflowException

    with store_lock(uri):
        _create_whole(uri)
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


def _create_whole(uri: str) -> None:
    """A new sqlite store is built under a temporary name and renamed into place (under the
    store lock): a creation cut off (disk full, a kill) leaves no half-built store behind."""
    path = sqlite_path(uri)
    if path is None or path.exists():
        return
    tmp = temporary_name(path)
    try:
        _client(f"sqlite:///{tmp}").search_experiments(max_results=1)  # creates every table
        os.replace(tmp, path)
    except Exception as e:
        raise RnnexpError(f"cannot create the tracking store {path}: {first_line(e)}") from None
    finally:
        tmp.unlink(missing_ok=True)


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


def _existing_store(uri: str, what: str, hint: str):
    """A client for a store that must already exist: a look-up never creates one (MLflow
    makes a fresh sqlite file on first contact)."""
    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        raise RnnexpError(f"{what}: there is no MLflow store at {path}; {hint}")
    return _client(uri)


def get_run_tags(uri: str, run_id: str, hint: str) -> dict[str, str]:
    """The tags of run `run_id` in the store at `uri` (which must exist)."""
    from mlflow.exceptions import MlflowException

    client = _existing_store(uri, f"run {run_id}", hint)
    try:
        return client.get_run(run_id).data.tags
    except MlflowException as e:
        raise RnnexpError(f"run {run_id} in {redact(uri)}: {e.message}; {hint}") from None


def download_artifacts(uri: str, run_id: str, path: str, dst: Path, hint: str) -> Path:
    """Artifact `path` of run `run_id` (a file or folder), downloaded into `dst`."""
    from mlflow.exceptions import MlflowException

    client = _existing_store(uri, f"run {run_id}", hint)
    _quiet_downloads()
    try:
        return Path(client.download_artifacts(run_id, path, str(dst)))
    except MlflowException as e:
        raise RnnexpError(f"run {run_id} in {redact(uri)}: {e.message}; {hint}") from None


def _quiet_downloads() -> None:
    """No progress bar on downloads: rnnexp-sample's stdout is the text, a sweep's is its log."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _artifact_location(uri: str, experiment: str) -> str | None:
    """Artifacts of a local sqlite store live beside it (outputs/mlartifacts/<experiment>),
    not in ./mlruns of whatever the cwd is; a server decides for itself."""
    path = sqlite_path(uri)
    if path is None:
        return None
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment)
    return (path.parent / "mlartifacts" / slug).resolve().as_uri()


@contextlib.contextmanager
def store_errors(uri: str) -> Iterator[None]:
    """A store that fails mid-run (disk full, server gone) is one line, not MLflow's
    tracebacks: MlflowException, and OSError from copying artifacts, become RnnexpError."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, OSError) as e:
        root: BaseException = e  # the database's or the file system's own words
        while getattr(root, "orig", None) or root.__cause__:
            root = getattr(root, "orig", None) or root.__cause__
        raise RnnexpError(f"the tracking store {redact(uri)} failed: {first_line(root)}") from None


def _in_store(method: Callable) -> Callable:
    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        with store_errors(self.uri):
            return method(self, *args, **kwargs)

    return wrapped


class MlflowRun:
    """One MLflow run, written through MlflowClient (no global active run, no MLFLOW_RUN_ID)."""

    def __init__(self, uri: str, run_id: str):
        self.uri = uri
        self.run_id = run_id
        self.client = _client(uri)
        self._metrics: list = []
        self._logged: dict[str, int] = {}  # metric -> last step the store already has

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
        with store_lock(uri), store_errors(uri):
            run = _client(uri).create_run(experiment_id, tags=tags, run_name=run_name)
        return cls(uri, run.info.run_id)

    def status(self) -> str:
        """RUNNING, FINISHED, FAILED or KILLED, as the store has it."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_run(self.run_id).info.status
        except MlflowException as e:
            raise RnnexpError(
                f"cannot continue MLflow run {self.run_id} in {redact(self.uri)}: {e.message}"
            ) from None

    @_in_store
    def reopen(self) -> None:
        """Set the run RUNNING again to continue it (resume). Metric points it already holds
        are not logged twice: steps trained again after a crash skip up to the last step
        the store has for each metric."""
        run = self.client.get_run(self.run_id)
        for key in run.data.metrics:
            history = self.client.get_metric_history(self.run_id, key)
            self._logged[key] = max((m.step for m in history), default=-1)
        self.client.update_run(self.run_id, status="RUNNING")

    @_in_store
    def log_params(self, params: dict[str, object]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + MAX_PARAMS_PER_BATCH])

    @_in_store
    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Buffered; written by flush() or when a batch is full. NaN/inf are kept as such."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        for k, v in metrics.items():
            if step > self._logged.get(k, -1):
                self._metrics.append(Metric(k, float(v), now, step))
        if len(self._metrics) >= MAX_METRICS_PER_BATCH:
            self.flush()

    @_in_store
    def flush(self) -> None:
        while self._metrics:
            batch = self._metrics[:MAX_METRICS_PER_BATCH]
            self.client.log_batch(self.run_id, metrics=batch)
            del self._metrics[: len(batch)]

    @_in_store
    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    @_in_store
    def log_artifact(self, local_path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(local_path), artifact_path)

    @_in_store
    def copy_artifact(self, run_id: str, path: str) -> bool:
        """Artifact `path` of run `run_id` logged to this run too (a sweep's parent shows its
        best child's page); False if that run has none."""
        import tempfile

        if not any(f.path == path for f in self.client.list_artifacts(run_id)):
            return False
        _quiet_downloads()
        with tempfile.TemporaryDirectory() as scratch:
            local = self.client.download_artifacts(run_id, path, scratch)
            self.client.log_artifact(self.run_id, local)
        return True

    @_in_store
    def finish(self, status: str = "FINISHED", error: str | None = None) -> None:
        """Flush, record the error (if any) as a tag, and close with FINISHED/FAILED/KILLED."""
        self.flush()
        if error:
            self.set_tags({"rnnexp.error": error[:5000]})
        self.client.set_terminated(self.run_id, status=status)


class NullRun:
    """Same methods as MlflowRun; records nothing."""

    run_id = None

    def status(self) -> str: ...
    def reopen(self) -> None: ...
    def log_params(self, params: dict[str, object]) -> None: ...
    def set_tags(self, tags: dict[str, str]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...
    def flush(self) -> None: ...
    def log_text(self, text: str, artifact_file: str) -> None: ...
    def log_artifact(self, local_path: Path, artifact_path: str | None = None) -> None: ...
    def finish(self, status: str = "FINISHED", error: str | None = None) -> None: ...
