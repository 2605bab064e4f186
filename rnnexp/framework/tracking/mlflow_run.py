"""One MLflow run, as rnnexp writes it: through MlflowClient on its store (no global active
run, no MLFLOW_RUN_ID), metrics buffered and written with `log_batch` (one `log_metric` per
point costs ~9 ms on sqlite), and a run reopened to resume without logging a point twice.
(`NullRun`, the same methods doing nothing, is in plain.py.)
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from rnnexp.errors import RnnexpError
from rnnexp.framework import rundir
from rnnexp.framework.tracking.plain import as_params, dataset_source, ui_link
from rnnexp.framework.tracking.store import Store

log = logging.getLogger("rnnexp")
MAX_METRICS_PER_BATCH = 1000  # MLflow's limits for one log_batch request
MAX_PARAMS_PER_BATCH = 100
RUN_NAME_LIMIT = 250  # its runs.name column: sqlite keeps a longer name, PostgreSQL refuses it


def in_store(method: Callable) -> Callable:
    """The method's store failures as one line (Store.errors)."""

    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        with self.store.errors():
            return method(self, *args, **kwargs)

    return wrapped


class MlflowRun:
    """One MLflow run, written through MlflowClient (no global active run, no MLFLOW_RUN_ID)."""

    def __init__(self, store: Store, run_id: str, experiment_id: str | None = None):
        self.store, self.client = store, store.client
        self.run_id = run_id
        self.experiment_id = experiment_id
        self._monitor = None  # MLflow's system metrics sampler, if asked for
        self._metrics: list = []
        self._logged: dict[str, int] = {}  # metric -> last step the store already has

    @classmethod
    def start(cls, store: Store, experiment_id: str, run_name: str, tags: dict[str, str],
              parent_run_id: str | None = None) -> MlflowRun:  # fmt: skip
        """A new run (under `parent_run_id`: a sweep's job), its name cut to what stores keep."""
        tags = dict(tags)
        if len(run_name) > RUN_NAME_LIMIT:  # a sweep named by a long command line
            run_name = run_name[: RUN_NAME_LIMIT - 1] + "…"
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id  # shows the run nested in the UI
        with store.lock(), store.errors():
            run = store.client.create_run(experiment_id, tags=tags, run_name=run_name)
        return cls(store, run.info.run_id, experiment_id)

    def status(self) -> str:
        """RUNNING, FINISHED, FAILED or KILLED, as the store has it."""
        with self.store.looking_up(f"MLflow run {self.run_id}", "it cannot be continued") as c:
            return c.get_run(self.run_id).info.status

    @in_store
    def reopen(self, folder: Path, folder_tag: str = "rnnexp.output_dir") -> None:
        """Set the run RUNNING again to continue it (resume) from `folder` (held by this
        process), its one writer: refused while another live process writes it (a copy of the
        folder resumed elsewhere), also when two start at the same moment (each claims the
        run's last close by a param of its own name, which MLflow lets only the first write).
        Metric points it already holds are not logged twice: steps trained again after a crash
        skip up to the last step the store has for each metric."""
        from mlflow.exceptions import MlflowException

        run = self.client.get_run(self.run_id)
        self.experiment_id = run.info.experiment_id
        writer = Path(run.data.tags.get(folder_tag) or folder)
        host = run.data.tags.get("rnnexp.host", socket.gethostname())
        other = writer.resolve() != folder.resolve()
        if run.info.status == "RUNNING" and other and not rundir.abandoned(writer, host):
            raise RnnexpError(f"MLflow run {self.run_id} is being written from {writer} by a live "
                              f"process: one writer per run; let it end, or stop it")  # fmt: skip
        claim, me = f"rnnexp.resumed.{run.info.end_time or 0}", f"pid {os.getpid()} {folder}"
        try:
            self.client.log_param(self.run_id, claim, me)
        except MlflowException:  # claimed: by a process that died since, or by one starting now
            held = self.client.get_run(self.run_id).data.params.get(claim, "")
            pid = held.split()[1] if held.startswith("pid ") else ""
            if pid.isdigit() and rundir.alive(int(pid)):
                raise RnnexpError(f"MLflow run {self.run_id} was resumed at this moment by another "
                                  f"process ({held}): one writer per run") from None  # fmt: skip
        for key in run.data.metrics:
            history = self.client.get_metric_history(self.run_id, key)
            self._logged[key] = max((m.step for m in history), default=-1)
        if "rnnexp.error" in run.data.tags:  # what stopped it is over: it runs again
            self.client.delete_tag(self.run_id, "rnnexp.error")
        if other:  # a copy of its folder continues it: the run lives there now
            self.client.set_tag(self.run_id, folder_tag, str(folder.resolve()))
        self.client.update_run(self.run_id, status="RUNNING")

    def ui_link(self, launch_dir: Path, children: bool = False) -> str:
        return ui_link(self.store, self.experiment_id, self.run_id, launch_dir, children)

    def monitor_system(self, resume: bool) -> None:
        """MLflow's system metrics (system/cpu_utilization_percentage, memory, disk, network)
        sampled on a thread of MLflow's until finish(); a resumed run continues their steps."""
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # start/stop lines
        self._monitor = SystemMetricsMonitor(self.run_id, resume_logging=resume,
                                             tracking_uri=self.store.uri)  # fmt: skip
        self._monitor.start()

    @in_store
    def log_params(self, params: dict[str, object]) -> None:
        """`params` (nested: a config) as one param per leaf, by its dotted key."""
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in as_params(params).items()]
        for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + MAX_PARAMS_PER_BATCH])

    @in_store
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

    @in_store
    def flush(self) -> None:
        while self._metrics:
            batch = self._metrics[:MAX_METRICS_PER_BATCH]
            self.client.log_batch(self.run_id, metrics=batch)
            del self._metrics[: len(batch)]

    @in_store
    def log_dataset(self, name: str, source: str, digest: str, context: str,
                    profile: dict | None = None) -> None:  # fmt: skip
        """A text as the run's dataset input (the UI's dataset column), for `context` training
        or evaluation: `source` a URL, a file's path, or `generated: ...` (the generator and
        its options); `profile` what the UI shows of its size."""
        from mlflow.entities import Dataset, DatasetInput, InputTag
        from mlflow.exceptions import MlflowException

        kind, where = dataset_source(source)
        dataset = Dataset(name, digest, kind, json.dumps(where),
                          profile=json.dumps(profile) if profile else None)  # fmt: skip
        tags = [InputTag("mlflow.data.context", context)]
        # MLflow adds a dataset's row after looking for it, unlocked: two runs starting at once
        # on one corpus collide (a UNIQUE constraint). A local store is locked; a server's
        # second try finds the row the other run made
        with self.store.lock():
            for attempt in range(3):
                try:
                    self.client.log_inputs(self.run_id, datasets=[DatasetInput(dataset, tags)])
                    return
                except MlflowException:
                    if attempt == 2:
                        raise
                    time.sleep(0.2 * (attempt + 1))

    @in_store
    def log_model(self, model_dir: Path, step: int) -> str:
        """The model in `model_dir` (model.npz + model.json) as the run's MLflow model
        (tracking/models.py); returns its model id, also the tag rnnexp.model_id."""
        from rnnexp.framework.tracking.models import log_model

        model_id = log_model(self.client, self.run_id, model_dir, step)
        self.set_tags({"rnnexp.model_id": model_id})
        return model_id

    @in_store
    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    @in_store
    def log_artifact(self, local_path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(local_path), artifact_path)

    @in_store
    def history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """Metric `key` of run `run_id`, (step, value) by step."""
        return sorted((m.step, m.value) for m in self.client.get_metric_history(run_id, key))

    @in_store
    def copy_artifact(self, run_id: str, path: str) -> bool:
        """Artifact `path` of run `run_id` logged to this run too (a sweep's parent shows its
        best child's page); False if that run has none."""
        import tempfile

        # MLflow lists a run's logged models through its global URIs
        with tempfile.TemporaryDirectory() as scratch, self.store.global_uris():
            if not any(f.path == path for f in self.client.list_artifacts(run_id)):
                return False
            local = self.client.download_artifacts(run_id, path, scratch)
            self.client.log_artifact(self.run_id, local)
        return True

    @in_store
    def finish(self, status: str = "FINISHED", error: str | None = None) -> None:
        """Flush, record the error (if any) as a tag, and close with FINISHED/FAILED/KILLED."""
        if self._monitor is not None:
            self._monitor.finish()
            self._monitor = None
        if self.client.get_run(self.run_id).info.lifecycle_stage == "deleted":
            # deleted (in the UI, say) while it ran: MLflow writes nothing to a deleted run,
            # so it is restored for a moment to be closed, and deleted again
            self._metrics.clear()
            self.client.restore_run(self.run_id)
            error = f"deleted while it ran; {error}" if error else "deleted while it ran"
            self.client.set_tag(self.run_id, "rnnexp.error", error[:5000])
            self.client.set_terminated(self.run_id, status=status)
            self.client.delete_run(self.run_id)
            return
        self.flush()
        if error:
            self.set_tags({"rnnexp.error": error[:5000]})
        self.client.set_terminated(self.run_id, status=status)
