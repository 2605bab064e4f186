"""Hydra callback: a sweep's MLflow store, experiment and parent run are made once, in the
launching process, before any job starts; jobs read their ids from the sweep folder (or, on
another machine of a Ray cluster, find the parent on the tracking server by the folder's tag).

Jobs that each opened a fresh sqlite store together would corrupt it, and concurrent
`set_experiment` calls can file runs under "Default". Ids go through a file, not the
environment: an exported MLFLOW_RUN_ID would make every job log into one run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from rnnexp.atomic import atomic_write
from rnnexp.framework import grid_table, rundir
from rnnexp.framework.messages import refusing
from rnnexp.framework.provenance import run_tags
from rnnexp.framework.rundir import CHECKPOINT_FILE, SWEEP_FILE
from rnnexp.framework.settings import override_key, quote, typed_overrides
from rnnexp.framework.study import finish_study, make_study, study_of
from rnnexp.framework.summary import say, sweep_summary, sweep_table
from rnnexp.framework.tracking import MlflowRun, Store
from rnnexp.inspect.page import PAGE

log = logging.getLogger("rnnexp")


def finished_job(folder: Path, store: Store) -> float | None:
    """A resumed sweep's job that finished before: its final val/loss (what the job returns
    to Hydra); None if it has to be resumed."""
    from rnnexp.checkpoint import load_checkpoint

    _, meta = load_checkpoint(folder / CHECKPOINT_FILE)
    loop = meta.get("loop")
    if not isinstance(loop, dict) or "val_loss" not in loop or not meta.get("run_id"):
        return None  # resumed: its checkpoint is checked there
    if MlflowRun(store, meta["run_id"]).status() != "FINISHED":
        return None
    log.info("%s finished before the sweep stopped: kept as it is", folder)
    return loop["val_loss"]


def job_ids(store: Store, experiment: str, sweep_dir: Path) -> tuple[str, str, list[str]]:
    """The experiment id, parent run id and swept keys of a sweep's job, from the file its
    launcher wrote in the sweep folder; a job on another machine of a cluster, where that
    folder is not, asks the tracking server for the running parent tagged with the folder."""
    path = sweep_dir / SWEEP_FILE
    if path.is_file():
        ids = json.loads(path.read_text())
        return ids["experiment_id"], ids["parent_run_id"], ids["swept"]
    experiment_id = store.open_experiment(experiment)
    parent = store.find_sweep_parent(experiment_id, str(sweep_dir))
    swept = parent.tags.get("rnnexp.swept", "")
    return experiment_id, parent.run_id, swept.split(",") if swept else []


def resume_argv(folder: Path, multirun: DictConfig) -> list[str]:
    """The command line that runs the sweep of `folder` again, from its multirun.yaml (its
    config, as its last command composed it): its --config-dir, its overrides, its store, its
    folder, and resume= (each once, however often it resumed). A grid runs job for job; a
    search goes on with its study (search.py)."""
    saved = multirun.hydra
    dirs = [f"--config-dir={s.path.removeprefix('file://')}"
            for s in saved.runtime.config_sources if s.provider == "command-line"]  # fmt: skip
    ours = ("resume", "tracking.uri", "hydra.sweep.dir", "hydra.mode")  # given below
    lines = [o for o in [*typed_overrides(saved), *typed_overrides(saved, "hydra")]
             if override_key(o) not in ours]  # fmt: skip
    where, store = quote(str(folder)), quote(multirun.tracking.uri)
    return ["-m", *dirs, f"resume={where}", f"tracking.uri={store}", *lines,
            f"hydra.sweep.dir={where}"]  # fmt: skip


def swept_keys(overrides: list[str], config: DictConfig) -> list[str]:
    """The keys that vary across the sweep: swept on the command line (model=rnn,srn) or
    searched by the sweeper (hydra.sweeper.params). Its jobs' runs are named by these alone,
    so runs read apart in the MLflow UI's tables and legends."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    keys = [o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()]
    fixed = {o.get_key_element() for o in parsed if not o.is_sweep_override()}
    params = [str(k) for k in OmegaConf.select(config, "hydra.sweeper.params") or {}]
    return list(dict.fromkeys([*keys, *(k for k in params if k not in fixed)]))


def is_search(config: DictConfig) -> bool:
    """A sweeper that picks the jobs itself (search=optuna), not Hydra's grid of values."""
    return config.hydra.runtime.choices.get("hydra/sweeper") not in (None, "basic")


class SweepTracking(Callback):
    failed: list[str] = []  # jobs of the last sweep that did not finish: the command exits 1
    failed_trials: list[str] = []  # trials of a search that did not finish: reported, exit 0
    active: dict | None = None  # the ids of the sweep under way, to close it if interrupted
    last: dict | None = None  # the folder and Store of the command's sweep, kept after it ends

    @classmethod
    def resume_hint(cls) -> str:
        """How to finish the sweep under way, if one is: '; finish it with: rnnexp -m ...'."""
        return f"; finish the sweep with: rnnexp -m resume={cls.active['folder']}" if (
            cls.active) else ""  # fmt: skip

    @classmethod
    def interrupted(cls, status: str, reason: str) -> None:
        """The sweep stopped before its end (Ctrl-C, SIGTERM, an error in the sweeper), when
        Hydra calls no end callback: close the parent run with `status`, and as KILLED the
        jobs still RUNNING in processes of their own (joblib's, Ray's), which stop with it."""
        if cls.active:
            store, experiment_id = cls.active["store"], cls.active["experiment_id"]
            parent = MlflowRun(store, cls.active["parent_run_id"], experiment_id)
            for child in store.children(parent.run_id, experiment_id):
                if child.status == "RUNNING":
                    MlflowRun(store, child.run_id).finish("KILLED", "stopped with its sweep")
            parent.finish(status, reason)
            cls.active = None

    @refusing
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)  # claimed (checks.py), absolute
        store = Store(config.tracking.uri)  # resolved there too: the sweep's, once
        path = sweep_dir / SWEEP_FILE
        if path.is_file():  # resumed (checks.py held it): its parent run goes on
            ids = json.loads(path.read_text())
            store.open_experiment(config.tracking.experiment)  # and closes the dead jobs' runs
            MlflowRun(store, ids["parent_run_id"]).reopen(sweep_dir, "rnnexp.sweep_dir")
            ids |= {"store": store, "folder": str(sweep_dir)}
            SweepTracking.active = SweepTracking.last = ids
            return
        study = make_study(is_search(config) or config.prune.name != "none",
                           OmegaConf.select(config, "hydra.sweeper.storage"), sweep_dir,
                           store.uri)  # fmt: skip
        experiment_id = store.open_experiment(config.tracking.experiment)
        overrides = typed_overrides(config.hydra)
        name = "sweep " + " ".join(overrides) if overrides else "sweep"
        swept = swept_keys(overrides, config)
        tags = (
            run_tags(overrides)
            | {
                # the folder's path as the jobs compute it: a job on another machine finds this
                # parent by it, and reads what it names its run by from rnnexp.swept
                "rnnexp.sweep_dir": str(sweep_dir),
                "rnnexp.swept": ",".join(swept),
            }
            | ({"rnnexp.study": json.dumps(study)} if study else {})
        )
        parent = MlflowRun.start(store, experiment_id, name, tags)
        ids = {"experiment_id": experiment_id, "parent_run_id": parent.run_id, "swept": swept,
               "study": study}  # fmt: skip
        text = json.dumps(ids, indent=2).encode()
        atomic_write(path, lambda f: f.write(text))
        SweepTracking.active = SweepTracking.last = ids | {"store": store, "folder": str(sweep_dir)}
        rundir.started(sweep_dir)  # its parent run is open: the folder stays, to resume

    @refusing
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from rnnexp.framework.tracking.models import register_model

        launch_dir = Path(config.hydra.runtime.cwd)
        path = Path(config.hydra.sweep.dir) / SWEEP_FILE
        ids = json.loads(path.read_text())
        store = SweepTracking.last["store"]  # the one its start made
        parent = MlflowRun(store, ids["parent_run_id"], ids["experiment_id"])
        jobs = sorted(store.children(parent.run_id, ids["experiment_id"]), key=lambda c: c.name)
        failed = [c.name for c in jobs if c.status != "FINISHED"] + _lost(path.parent, jobs)
        labels = {c.run_id: label(c) for c in jobs}
        figure = self._compare(parent, jobs, labels, path.parent)
        pruned = {c.run_id: int(c.tags["rnnexp.pruned"]) for c in jobs if "rnnexp.pruned" in c.tags}
        best = self._tag_best(parent, [c for c in jobs if c.run_id not in pruned])
        study = self._study(parent, study_of(store, "", path.parent), len(pruned), config)
        registered = None
        if best is not None:  # a look inside the best network, on the sweep's own page
            parent.copy_artifact(best.run_id, PAGE)
            model_id = best.tags.get("rnnexp.model_id")
            if config.tracking.register and model_id:  # models:/NAME@best
                version = register_model(store, config.tracking.register, model_id,
                                         best.run_id, alias="best")  # fmt: skip
                registered = f"{config.tracking.register}/{version}"
                parent.set_tags({"rnnexp.registered": registered})
        rows = [{"label": labels[c.run_id], "val": c.val_loss, "status": f"pruned at "
                 f"{pruned[c.run_id]:,}" if c.run_id in pruned else c.status,
                 "best": c.metrics.get("val/best_loss"), "is_best": best is not None and c is best}
                for c in jobs]  # fmt: skip
        grid = grid_table.report(parent, jobs, ids["swept"], path.parent, launch_dir)
        table = "\n".join([sweep_table(rows, ids["swept"]), *grid])
        parent.log_text(table + "\n", "summary.txt")
        summary = sweep_summary(table, best and f"{best.name} (val {best.val_loss:.4f})", figure,
                                registered and f"{registered} (alias best)",
                                parent.ui_link(launch_dir, children=True), launch_dir,
                                study)  # fmt: skip
        SweepTracking.active = None
        if failed and is_search(config) and best is not None:
            # a search explores: a trial that blew up is a result (Optuna scored it +inf),
            # not a failed search, as long as some trial finished and was picked best
            parent.set_tags({"rnnexp.failed_trials": str(len(failed))})
            SweepTracking.failed, SweepTracking.failed_trials = [], failed
            parent.finish("FINISHED")
        else:
            SweepTracking.failed, SweepTracking.failed_trials = failed, []
            error = f"jobs not finished: {', '.join(failed)}" if failed else None
            parent.finish("FAILED" if failed else "FINISHED", error)
        try:  # the record first: a summary that cannot be printed (stdout on a full disk,
            print(summary, flush=True)  # a closed pipe) changes nothing that happened
        except (OSError, ValueError) as e:
            say(f"rnnexp: the sweep's summary could not be printed ({e.strerror or e}); it is "
                f"the parent run's artifact summary.txt")  # fmt: skip

    @staticmethod
    def _study(parent, place, pruned: int, config: DictConfig) -> str:
        """A sweep's study at its end: the parent's sweep/pruned, a search's best parameters,
        history and importances; what the summary says of it ('' without a study)."""
        if place is None:
            return ""
        best, figures = finish_study(place, Path(config.hydra.sweep.dir), is_search(config))
        parent.log_metrics({"sweep/pruned": pruned}, step=0)
        if best:
            parent.log_text(json.dumps(best, indent=2) + "\n", "search/best_params.json")
        for figure in figures:
            parent.log_artifact(figure, "search")
        return f"{pruned} {'job' if pruned == 1 else 'jobs'} pruned; optuna-dashboard {place.uri}"

    @staticmethod
    def _tag_best(parent, children):
        """The finished child with the lowest final val/loss: tagged, named on the parent, its
        loss the parent's metric sweep/best_val_loss, and returned (None if no child finished
        with one)."""
        scored = [(c.val_loss, c) for c in children if c.status == "FINISHED"]
        scored = [(v, c) for v, c in scored if v is not None and v == v]  # no NaN
        if not scored:
            return None
        val, best = min(scored, key=lambda x: x[0])
        MlflowRun(parent.store, best.run_id).set_tags({"rnnexp.best": "true"})
        parent.set_tags({"rnnexp.best_run": best.name})
        parent.log_metrics({"sweep/best_val_loss": val}, step=0)
        parent.flush()
        return best

    @staticmethod
    def _compare(parent, children, labels: dict[str, str], sweep_dir: Path) -> Path | None:
        """The children's validation curves in one figure, an artifact of the parent run;
        a job that failed is drawn as failed, with its reason."""
        from rnnexp.framework.plots import compare_curves

        if not children:
            return None
        series, failed = {}, {}
        for c in children:
            series[labels[c.run_id]] = parent.history(c.run_id, "val/loss")
            if c.status != "FINISHED":
                failed[labels[c.run_id]] = c.tags.get("rnnexp.error") or c.status
        title = f"validation loss of the {len(series)} runs of the sweep"
        figure = compare_curves(sweep_dir / "comparison.png", series, title, failed)
        parent.log_artifact(figure)
        return figure


def label(child) -> str:
    """A job by what varies across its sweep (the rnnexp.varied tag), values shortened."""
    return varied_label(json.loads(child.tags.get("rnnexp.varied") or "[]")) or child.name


def varied_label(varied: list[str]) -> str:
    """What varies across a sweep, short enough that jobs read apart in the first characters
    of the MLflow UI's name column and a legend: `optimizer.lr=0.012345 model.hidden_size=64`
    -> `lr=0.0123 hidden_size=64` (a group keeps its name: `model=gru`)."""
    last = [override_key(o).rpartition(".")[2] for o in varied]
    out = []
    for o, tail in zip(varied, last, strict=True):
        o = short(o).lstrip("+~")
        key, _, value = o.partition("=")
        if "/" in value:  # a path: its file's name tells the jobs apart
            o = f"{key}={value.rstrip('/').rsplit('/', 1)[-1]}"
        # the last part of the key, unless another varied key ends the same way
        out.append(o if last.count(tail) > 1 else tail + "=" + o.partition("=")[2])
    return " ".join(out)


def short(override: str) -> str:
    """`optimizer.lr=0.012345678901234567` -> `optimizer.lr=0.0123`: a label, not a record (the
    exact value is in the run's params)."""
    key, eq, value = override.partition("=")
    try:
        number = float(value)
    except ValueError:
        return override
    return f"{key}={number:.3g}" if eq and len(value) > 6 and "." in value else override


def _lost(sweep_dir: Path, jobs: list) -> list[str]:
    """Jobs that failed before their MLflow run opened: a folder of Hydra's, no run."""
    ran = {Path(c.tags.get("rnnexp.output_dir", "")).name for c in jobs}
    return [f"job {n} (no run)" for n in sorted((p.name for p in sweep_dir.iterdir() if p.is_dir()
            and p.name.isdigit()), key=int) if n not in ran]  # fmt: skip
