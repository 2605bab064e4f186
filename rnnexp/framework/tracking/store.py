"""A tracking store, as MLflow meets it: `Store`, made once from the resolved URI (the plain
values of store.StoreUri, and a client on it, tracking and registry alike), its experiments
and look-ups, a store that must already exist, its failures as one line, and MLflow's global
URIs pinned where MLflow's own internals read them instead of the client's.

A local sqlite store is opened under a file lock: MLflow creates its tables without one, so
processes opening a fresh store together can corrupt it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from rnnexp import faults
from rnnexp.atomic import temporary_name
from rnnexp.errors import RnnexpError, disk_problem, first_line
from rnnexp.framework import rundir
from rnnexp.framework.settings import redact
from rnnexp.framework.store import StoreUri
from rnnexp.framework.tracking.abandoned import AbandonedRuns
from rnnexp.framework.tracking.plain import Child, check_download, check_local_download, tag_is

# MLflow logs each store error with its traceback before raising it; rnnexp reports it as
# one line (Store.errors)
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
logging.getLogger("alembic").setLevel(logging.WARNING)  # INFO lines, one per migration
# MLflow 3's UI opens an experiment by this tag: in the runs table for model training, in the
# GenAI overview for genai_development, or by its guess when the tag is absent
EXPERIMENT_KIND = "mlflow.experimentKind"
KIND_VALUE = "custom_model_development"


def client_for(uri: str):
    from mlflow import MlflowClient  # deferred: importing mlflow takes a second or two

    # no progress bar on downloads: rnnexp-sample's stdout is the text, a sweep's is its log
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return MlflowClient(tracking_uri=uri, registry_uri=uri)  # the registry: the same store


class Store(StoreUri, AbandonedRuns):
    """One tracking store, for a whole command: its client made at first use; the runs whose
    process died closed (abandoned.py)."""

    @functools.cached_property
    def client(self):
        return client_for(self.uri)

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """A store that fails mid-run (disk full, server gone) is one line, not MLflow's
        tracebacks: MlflowException, and OSError from copying artifacts, become RnnexpError."""
        from mlflow.exceptions import MlflowException

        try:
            yield
        except (MlflowException, OSError) as e:
            if self.path is not None and not self.path.exists():  # its file removed under it
                raise RnnexpError(f"the tracking store {self.path} was deleted while this "
                                  f"command used it") from None  # fmt: skip
            root: BaseException = e  # the database's or the file system's own words
            while getattr(root, "orig", None) or root.__cause__:
                root = getattr(root, "orig", None) or root.__cause__
            said = disk_problem(root) if isinstance(root, OSError) else first_line(root)
            raise RnnexpError(f"the tracking store {self.shown} failed: {said}") from None

    @contextlib.contextmanager
    def looking_up(self, what: str, hint: str) -> Iterator:
        """The client of a store that must already exist (a look-up never creates one: MLflow
        makes a fresh sqlite file on first contact); a look-up the store refuses (no such run,
        model, version or alias) as one line naming `what` and the store, then `hint`."""
        from mlflow.exceptions import MlflowException

        if self.path is not None and not self.path.is_file():
            raise RnnexpError(f"{what}: there is no MLflow store at {self.path}; {hint}")
        try:
            yield self.client
        except MlflowException as e:
            raise RnnexpError(f"{what} in {self.shown}: {e.message}; {hint}") from None

    @contextlib.contextmanager
    def global_uris(self) -> Iterator[None]:
        """MLflow's global tracking and registry URIs set to this store within, restored
        after (a server's mlflow-artifacts:/ root, a run's logged models, are read through
        them)."""
        import mlflow

        before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")  # set_*_uri writes them too
        env = {k: os.environ.get(k) for k in names}
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
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

    def open_experiment(self, name: str) -> str:
        """Create the store (if new) and the experiment (if new); return the experiment id."""
        from mlflow.exceptions import MlflowException

        with self.lock(), self.errors():
            self._create_whole()
            client = self.client  # its first contact: an older store's schema is said by errors()
            try:
                experiment = client.get_experiment_by_name(name)
                if experiment is None:
                    return client.create_experiment(
                        name, artifact_location=self.artifact_location(name),
                        tags={EXPERIMENT_KIND: KIND_VALUE},
                    )  # fmt: skip
                live = experiment.lifecycle_stage != "deleted"
                if live and EXPERIMENT_KIND not in experiment.tags:  # made before rnnexp set it
                    client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND, KIND_VALUE)
                if live:
                    self.close_abandoned([experiment.experiment_id])
            except MlflowException as e:
                if e.error_code == "RESOURCE_ALREADY_EXISTS":  # made meanwhile by another process
                    return client.get_experiment_by_name(name).experiment_id
                raise RnnexpError(f"MLflow tracking store {self.shown}: {e.message}") from None
        if experiment.lifecycle_stage == "deleted":
            raise RnnexpError(f"MLflow experiment {name!r} is deleted in {self.shown}; restore "
                              f"it (mlflow experiments restore) or pick another "
                              f"tracking.experiment")  # fmt: skip
        return experiment.experiment_id

    def _create_whole(self) -> None:
        """A new sqlite store is built under a temporary name and renamed into place (under
        the store lock): a creation cut off (disk full, a kill) leaves no half-built store."""
        path = self.path
        if path is None:
            return
        for tmp in path.parent.glob(f".{path.name}.*.tmp"):  # a creation a kill cut off
            if rundir.stale(tmp):
                tmp.unlink(missing_ok=True)
        if path.exists():
            return _made_by_mlflow(path)
        tmp = temporary_name(path)
        try:
            client_for(f"sqlite:///{tmp}").search_experiments(max_results=1)  # every table
            faults.point("store")
            os.replace(tmp, path)
        except Exception as e:
            raise RnnexpError(f"cannot create the tracking store {path}: {first_line(e)}") from None
        finally:
            tmp.unlink(missing_ok=True)

    def find_sweep_parent(self, experiment_id: str, sweep_dir: str) -> Child:
        """The running parent run of the sweep whose folder is `sweep_dir`."""
        where = f"{tag_is('rnnexp.sweep_dir', sweep_dir)} and attributes.status = 'RUNNING'"
        runs = self.client.search_runs([experiment_id], where, max_results=1,
                                       order_by=["attributes.start_time DESC"])  # fmt: skip
        if not runs:
            raise RnnexpError(f"no running sweep with folder {sweep_dir} in {self.shown}")
        r = runs[0]
        return Child(r.info.run_id, r.info.run_name, r.info.status, {}, r.data.tags)

    def run_record(self, run_id: str, hint: str = "set tracking.uri to the run's store"
                   ) -> tuple[str, dict[str, float], dict[str, str]]:  # fmt: skip
        """A run's status, latest metrics and tags, as the store (which must exist) has them."""
        with self.looking_up(f"run {run_id}", hint) as client:
            run = client.get_run(run_id)
        return run.info.status, dict(run.data.metrics), dict(run.data.tags)

    def children(self, parent_run_id: str, experiment_id: str | None = None) -> list[Child]:
        """The runs nested under `parent_run_id` (a sweep's jobs), oldest first."""
        with self.errors():
            experiment_id = experiment_id or self.client.get_run(parent_run_id).info.experiment_id
            found = self.client.search_runs(
                [experiment_id],
                tag_is("mlflow.parentRunId", parent_run_id),
                max_results=50_000,
                order_by=["attributes.start_time ASC"],
            )
        return [Child(r.info.run_id, r.info.run_name, r.info.status, dict(r.data.metrics),
                      dict(r.data.tags)) for r in found]  # fmt: skip

    def runs_frame(self, experiment: str, filter_string: str = "", max_results: int = 10_000):
        """The runs of an experiment as a pandas DataFrame, one row a run (MLflow's search_runs:
        run_id, status, start_time, metrics.*, params.*, tags.*), newest first."""
        import mlflow

        with self.looking_up(f"experiment {experiment!r}", "set tracking_uri to the store"), \
                self.errors(), self.global_uris():  # fmt: skip
            return mlflow.search_runs(experiment_names=[experiment], filter_string=filter_string,
                                      max_results=max_results, output_format="pandas")  # fmt: skip

    def download_artifacts(self, run_id: str, path: str, dst: Path, hint: str) -> Path:
        """Artifact `path` of run `run_id` (a file or folder), downloaded into `dst`, bounded
        (fetch)."""
        with self.looking_up(f"run {run_id}", hint) as client:
            root = client.get_run(run_id).info.artifact_uri.rstrip("/")
        return self.fetch(f"{root}/{path}", dst, f"artifact {path} of run {run_id}")

    def fetch(self, artifact_uri: str, dst: Path, what: str) -> Path:
        """The artifact (a file or folder) at `artifact_uri` downloaded into `dst`, after its
        listing was checked: regular files only where the store is a local folder (a store's
        record could point at /dev, whose files never end), at most MAX_DOWNLOAD_BYTES in all;
        a server's through this store's global URIs. `what` names it in an error."""
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        import mlflow.artifacts
        from mlflow.exceptions import MlflowException

        parts = urlparse(artifact_uri)
        total, count = 0, 0
        try:
            with self.global_uris():
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


def _made_by_mlflow(path: Path) -> None:
    """A sqlite file with tables but not MLflow's schema version is somebody else's database
    (or a store whose creation was cut off): left as it is, where MLflow would add its tables
    to it. sqlite waits up to 30 s for a lock another process holds on it."""
    import sqlite3
    from urllib.parse import quote

    try:
        with contextlib.closing(sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True,
                                                timeout=30)) as db:  # fmt: skip
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as e:
        raise RnnexpError(f"the tracking store {path} failed: {e}; it was left as it is") from None
    if tables and "alembic_version" not in tables:
        raise RnnexpError(f"tracking store {path} is not an MLflow store (its tables are not "
                          f"MLflow's); it was left as it is: set tracking.uri to your store, or to "
                          f"a new file")  # fmt: skip
