"""Everything rnnexp says to MLflow goes through this package, over MlflowClient: a store's
experiments and look-ups here; one run (mlflow_run.py); a run's model (models.py, and
pyfunc_model.py, the code MLflow runs to load it); clients and one-line store errors
(client.py); runs whose process died (abandoned.py). What needs no MLflow is in plain.py
(and serving.py, what a served model does with a request).

A local sqlite store is opened under a file lock: MLflow creates its tables without one, so
processes opening a fresh store together can corrupt it.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from rnnexp import faults
from rnnexp.atomic import temporary_name
from rnnexp.errors import RnnexpError, first_line
from rnnexp.framework import rundir
from rnnexp.framework.store import artifact_location, sqlite_path, store_lock
from rnnexp.framework.tracking.abandoned import close_abandoned
from rnnexp.framework.tracking.client import (
    client_for,
    fetch,
    global_uris,
    looking_up,
    store_errors,
)
from rnnexp.framework.tracking.mlflow_run import MlflowRun
from rnnexp.framework.tracking.plain import Child, NullRun, flatten, tag_is

log = logging.getLogger("rnnexp")
RUN_ID = re.compile(r"[0-9a-f]{32}")  # an MLflow run id
# MLflow 3's UI opens an experiment by this tag: in the runs table for model training, in the
# GenAI overview for genai_development, or by its guess when the tag is absent
EXPERIMENT_KIND = "mlflow.experimentKind"
KIND_VALUE = "custom_model_development"
KIND = {EXPERIMENT_KIND: KIND_VALUE}


def open_experiment(uri: str, name: str) -> str:
    """Create the store (if new) and the experiment (if new); return the experiment id."""
    from mlflow.exceptions import MlflowException

    with store_lock(uri), store_errors(uri):
        _create_whole(uri)
        client = client_for(uri)
        try:
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                return client.create_experiment(
                    name, artifact_location=artifact_location(uri, name), tags=KIND
                )
            live = experiment.lifecycle_stage != "deleted"
            if live and EXPERIMENT_KIND not in experiment.tags:  # made before rnnexp set it
                client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND, KIND_VALUE)
            if live:
                close_abandoned(uri, [experiment.experiment_id])
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
    if path is None:
        return
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):  # a creation a kill cut off
        if rundir.stale(tmp):
            tmp.unlink(missing_ok=True)
    if path.exists():
        return _made_by_mlflow(path)
    tmp = temporary_name(path)
    try:
        client_for(f"sqlite:///{tmp}").search_experiments(max_results=1)  # creates every table
        faults.point("store")
        os.replace(tmp, path)
    except Exception as e:
        raise RnnexpError(f"cannot create the tracking store {path}: {first_line(e)}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _made_by_mlflow(path: Path) -> None:
    """A sqlite file with tables but not MLflow's schema version is somebody else's database
    (or a store whose creation was cut off): left as it is, where MLflow would add its tables
    to it. sqlite waits up to 30 s for a lock another process holds on it."""
    import contextlib
    import sqlite3
    from urllib.parse import quote

    try:
        with contextlib.closing(sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True,
                                                timeout=30)) as db:  # fmt: skip
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as e:
        raise RnnexpError(f"the tracking store {path} failed: {e}; it was left as it is") from None
    if tables and "alembic_version" not in tables:
        raise RnnexpError(
            f"tracking store {path} is not an MLflow store (its tables are not MLflow's); it was "
            f"left as it is: set tracking.uri to your store, or to a new file"
        )


def find_sweep_parent(uri: str, experiment_id: str, sweep_dir: str) -> Child:
    """The running parent run of the sweep whose folder is `sweep_dir`."""
    where = f"{tag_is('rnnexp.sweep_dir', sweep_dir)} and attributes.status = 'RUNNING'"
    runs = client_for(uri).search_runs([experiment_id], where, max_results=1,
                                       order_by=["attributes.start_time DESC"])  # fmt: skip
    if not runs:
        raise RnnexpError(f"no running sweep with folder {sweep_dir} in {uri}")
    r = runs[0]
    return Child(r.info.run_id, r.info.run_name, r.info.status, {}, r.data.tags)


def run_record(uri: str, run_id: str, hint: str = "set tracking.uri to the run's store"
               ) -> tuple[str, dict[str, float], dict[str, str]]:  # fmt: skip
    """A run's status, latest metrics and tags, as the store (which must exist) has them."""
    with looking_up(uri, f"run {run_id}", hint) as client:
        run = client.get_run(run_id)
    return run.info.status, dict(run.data.metrics), dict(run.data.tags)


def download_artifacts(uri: str, run_id: str, path: str, dst: Path, hint: str) -> Path:
    """Artifact `path` of run `run_id` (a file or folder), downloaded into `dst`, bounded
    (client.fetch)."""
    with looking_up(uri, f"run {run_id}", hint) as client:
        root = client.get_run(run_id).info.artifact_uri.rstrip("/")
    # global_uris: a server's mlflow-artifacts:/ root is resolved through them
    with global_uris(uri):
        return fetch(f"{root}/{path}", dst, f"artifact {path} of run {run_id}")


def children(uri: str, parent_run_id: str, experiment_id: str | None = None) -> list[Child]:
    """The runs nested under `parent_run_id` (a sweep's jobs), oldest first."""
    client = client_for(uri)
    with store_errors(uri):
        experiment_id = experiment_id or client.get_run(parent_run_id).info.experiment_id
        found = client.search_runs(
            [experiment_id],
            tag_is("mlflow.parentRunId", parent_run_id),
            max_results=50_000,
            order_by=["attributes.start_time ASC"],
        )
    return [Child(r.info.run_id, r.info.run_name, r.info.status, dict(r.data.metrics),
                  dict(r.data.tags)) for r in found]  # fmt: skip


def runs_frame(uri: str, experiment: str, filter_string: str = "", max_results: int = 10_000):
    """The runs of an experiment as a pandas DataFrame, one row a run (MLflow's search_runs:
    run_id, status, start_time, metrics.*, params.*, tags.*), newest first."""
    import mlflow

    with looking_up(uri, f"experiment {experiment!r}", "set tracking_uri to the store"), \
            store_errors(uri), global_uris(uri):  # fmt: skip
        return mlflow.search_runs(experiment_names=[experiment], filter_string=filter_string,
                                  max_results=max_results, output_format="pandas")  # fmt: skip


__all__ = ["Child", "MlflowRun", "NullRun", "flatten", "open_experiment", "download_artifacts",
           "find_sweep_parent", "RUN_ID", "run_record", "children", "runs_frame"]  # fmt: skip
