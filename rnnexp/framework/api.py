"""rnnexp from Python, a notebook say: `run` does what the `rnnexp` command does (Hydra's
composition of conf/ and the overrides, every check, MLflow tracking, a sweep with
multirun=True) in this process, and returns what it made; `runs` reads a store's runs as a
pandas DataFrame.

    result = rnnexp.run(["model=lstm", "train.steps=500"])
    result.run_id, result.folder, result.metrics["val/loss"]
    rnnexp.runs()[["run_id", "status", "metrics.val/loss", "params.model.name"]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rnnexp.framework.rundir import CHECKPOINT_FILE, SWEEP_FILE


@dataclass
class Result:
    """A run, or a sweep (its parent run and its jobs), as the store has it at the end:
    `run([...]).metrics["val/loss"]`, `run([...], multirun=True).best.folder`."""

    run_id: str | None  # its MLflow run (a sweep's: the parent); None when not tracked
    folder: Path  # the run's (or sweep's) output folder
    status: str  # FINISHED, FAILED or KILLED
    metrics: dict[str, float]  # the latest value of each: val/loss, val/best_loss, train/loss...
    jobs: list[Result] = field(default_factory=list)  # a sweep's runs, in the order they began
    uri: str | None = None  # the tracking store's URI
    tags: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def best(self) -> Result | None:
        """A sweep's job tagged best (lowest final val/loss); None for a run."""
        return next((j for j in self.jobs if j.tags.get("rnnexp.best") == "true"), None)


def run(overrides: Sequence[str] = (), multirun: bool = False) -> Result:
    """Run `rnnexp OVERRIDES` (with -m when `multirun`) in this process, as the command line
    does; return the run, or the sweep with its jobs. A refused command raises RnnexpError
    (a CommandError: its one line, as the command prints it); a failed run raises too, a
    sweep returns with its failed jobs' statuses. Example:
    `run(["optimizer.lr=0.001,0.01"], multirun=True)`."""
    import logging

    from rnnexp.errors import RnnexpError
    from rnnexp.framework import cli

    if isinstance(overrides, str):  # run("model=lstm") would iterate its characters
        overrides = overrides.split()
    if not all(isinstance(o, str) for o in overrides):
        raise RnnexpError(f"overrides are strings like 'model=lstm', got {list(overrides)!r}")
    argv = [*(["-m"] if multirun else []), *overrides]
    root = logging.getLogger()
    handlers = list(root.handlers)
    try:
        outcome = cli.execute(argv)
    finally:  # Hydra's log file of the run (or job) is closed: the notebook's later lines
        for h in set(root.handlers) - set(handlers):  # do not go into a finished run's log
            if isinstance(h, logging.FileHandler):
                root.removeHandler(h)
                h.close()
    if outcome.folder is None:  # --help, --cfg: nothing ran
        raise ValueError(f"rnnexp {' '.join(argv)} runs nothing: it prints")
    if outcome.sweep:
        return _sweep(outcome.folder, outcome.store)
    return _run(outcome.folder, outcome.store)


def runs(experiment: str | None = None, tracking_uri: str | None = None, where: str = "",
         max_results: int = 10_000):  # fmt: skip
    """The runs of an experiment as a pandas DataFrame (MLflow's search_runs: a row a run,
    columns run_id, status, start_time, metrics.val/loss, params.optimizer.lr, tags...),
    newest first. `experiment`: $MLFLOW_EXPERIMENT_NAME, else rnnexp; `tracking_uri`:
    $MLFLOW_TRACKING_URI, else outputs/mlflow.db here, as for the command; `where`: MLflow's
    filter, e.g. "metrics.`val/loss` < 2 and params.`model.name` = 'lstm'"."""
    import os

    from rnnexp.framework.rundir import check_cwd
    from rnnexp.framework.tracking import Store

    check_cwd()
    experiment = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "rnnexp"
    store = Store.named(tracking_uri, Path.cwd(), writes=False)  # a look-up only reads
    return store.runs_frame(experiment, where, max_results)


def _run(folder: Path, store) -> Result:
    """A run by its folder: its MLflow run's record, or its checkpoint's when untracked."""
    from rnnexp.checkpoint import load_checkpoint

    meta = load_checkpoint(folder / CHECKPOINT_FILE)[1]
    if meta.get("run_id") and store:
        status, metrics, tags = store.run_record(meta["run_id"])
        return Result(meta["run_id"], folder, status, metrics, uri=store.uri, tags=tags)
    loop = meta.get("loop") or {}
    metrics = {"val/loss": loop.get("val_loss"), "val/best_loss": loop.get("best_val_loss")}
    done = (folder / "model" / "model.json").is_file()
    return Result(None, folder, "FINISHED" if done else "KILLED", metrics)


def _sweep(folder: Path, store) -> Result:
    import json

    parent, uri = json.loads((folder / SWEEP_FILE).read_text())["parent_run_id"], store.uri
    jobs = [Result(c.run_id, Path(c.tags.get("rnnexp.output_dir", folder)), c.status,
                   c.metrics, uri=uri, tags=c.tags) for c in store.children(parent)]  # fmt: skip
    status, metrics, tags = store.run_record(parent)
    return Result(parent, folder, status, metrics, jobs, uri, tags)
