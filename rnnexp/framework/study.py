"""A sweep's Optuna study: where the trials of a search, and the jobs of a pruned grid, are
recorded, so a pruner can stop the losers and a killed search can go on. It lives in an RDB
storage every job opens from its own process: a job reports its periodic val/loss there
(`JobTrial.report`), Optuna's pruner (its `prune=` settings) says whether it goes on, and it
tells how it ended (COMPLETE, PRUNED); the launcher tells FAIL for those that could not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from rnnexp.errors import ConfigError, RnnexpError, check_whole
from rnnexp.framework.rundir import SWEEP_FILE

STUDY_FILE = "study.db"  # in the sweep folder: optuna-dashboard sqlite:///<folder>/study.db
STUDY_NAME = "rnnexp"
SCHEMA = "optuna"  # a study in the tracking store's PostgreSQL database: its schema
JOB_ATTR = "rnnexp.job"  # a trial's user attribute: the sweep job (folder number) it runs as
PRUNERS = ("none", "median", "asha", "hyperband")


@dataclass
class PruneSettings:
    """prune=NAME (conf/prune/): which jobs of a sweep stop early, by Optuna's pruners."""

    name: str
    # no job stops before this step (second of training, on train.max_seconds); None: its
    # first periodic evaluation
    min_steps: int | None
    reduction_factor: int  # asha, hyperband: one job in this many goes on at each rung
    startup_trials: int  # median: jobs that run to their end before any is stopped

    def __post_init__(self) -> None:
        if self.name not in PRUNERS:
            raise ConfigError(f"prune.name is one of {', '.join(PRUNERS)}, got {self.name!r}")
        if self.min_steps is not None:
            check_whole("prune.min_steps", self.min_steps, 1)
        check_whole("prune.reduction_factor", self.reduction_factor, 2)
        check_whole("prune.startup_trials", self.startup_trials, 0)

    def pruner(self, first_eval: int, steps: int) -> Any:
        """Optuna's pruner for a job of `steps` steps (seconds for a run on a time budget) that
        first evaluates at `first_eval`."""
        import optuna

        low = self.min_steps or first_eval
        return {
            "none": lambda: optuna.pruners.NopPruner(),
            "median": lambda: optuna.pruners.MedianPruner(self.startup_trials, low - 1),
            "asha": lambda: optuna.pruners.SuccessiveHalvingPruner(low, self.reduction_factor),
            "hyperband": lambda: optuna.pruners.HyperbandPruner(low, max(steps, low),
                                                                self.reduction_factor),
        }[self.name]()  # fmt: skip


NO_PRUNING = ("none", None, 3, 4)  # what a run saved before prune= existed ran with


class Place(NamedTuple):
    """Where a sweep's study is: its storage's URI and its name there."""

    uri: str
    name: str


def place_of(storage: str | None, sweep_dir: Path, tracking_uri: str | None) -> Place:
    """The study of the sweep in `sweep_dir`: in the database given, or the tracking store's
    PostgreSQL database (schema `optuna`: MLflow's and Optuna's tables both keep an
    alembic_version), named by the sweep's folder; else the one in its folder's sqlite file."""
    if storage is None and (tracking_uri or "").startswith("postgresql"):
        mark = "&" if "?" in tracking_uri else "?"
        storage = f"{tracking_uri}{mark}options=-csearch_path%3D{SCHEMA}"
    if storage is None:
        return Place(f"sqlite:///{sweep_dir / STUDY_FILE}", STUDY_NAME)
    return Place(storage, str(sweep_dir))


def make_study(needed: bool, storage: str | None, sweep_dir: Path, tracking_uri: str | None,
               ) -> Place | None:  # fmt: skip
    """A search's study, or a pruned sweep's (`needed`), made in its storage before any job
    runs; where it is (None: a sweep whose jobs all run to their end)."""
    if not needed:
        return None
    if storage is None and (tracking_uri or "").startswith("postgresql"):  # place_of's
        import psycopg

        with psycopg.connect(tracking_uri) as c:
            c.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    place = place_of(storage, sweep_dir, tracking_uri)
    if place.uri.startswith("sqlite:"):
        _check_file(place.uri, sweep_dir, tracking_uri)
    open_study(place, create=True)
    return place


def _check_file(uri: str, sweep_dir: Path, tracking_uri: str | None) -> None:
    """A sqlite study: a file (not memory), not the tracking store, in no other sweep's folder."""
    path = Path(uri[len("sqlite:///") :] if uri.startswith("sqlite:///") else ":memory:")
    store = (tracking_uri or "").startswith("sqlite:///") and Path(tracking_uri[10:]).resolve()
    if path.name == ":memory:" or path.resolve() == store or (
            path.parent != sweep_dir and (path.parent / SWEEP_FILE).is_file()):  # fmt: skip
        raise RnnexpError(f"hydra.sweeper.storage={uri} is not a file for the sweep's study (in "
                          f"memory, the tracking store, or another sweep's): name a new file, "
                          f"or an Optuna study's")  # fmt: skip


def study_of(store: Any, experiment: str, sweep_dir: Path) -> Place | None:
    """Where a sweep's study is, if it has one: from the sweep folder's file, or from its
    parent run on the tracking server (a Ray worker on another machine)."""
    path = sweep_dir / SWEEP_FILE
    if path.is_file():
        study = json.loads(path.read_text()).get("study")
    else:
        parent = store.find_sweep_parent(store.open_experiment(experiment), str(sweep_dir))
        study = json.loads(parent.tags.get("rnnexp.study", "null"))
    return Place(*study) if study else None


def open_study(place: Place, pruner: Any = None, create: bool = False) -> tuple[Any, Any]:
    """The sweep's study (made if `create`), and its storage; one line if the storage cannot
    be reached or holds no such study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its INFO line per trial: ours say it
    # jobs write a sqlite study side by side: each waits for the other's write, not fails
    uri, name = place
    engine = {"connect_args": {"timeout": 60}} if uri.startswith("sqlite") else None
    try:
        storage = optuna.storages.RDBStorage(uri, engine_kwargs=engine)
        if create:
            study = optuna.create_study(storage=storage, study_name=name, pruner=pruner,
                                        direction="minimize", load_if_exists=True)  # fmt: skip
        else:
            study = optuna.load_study(study_name=name, storage=storage, pruner=pruner)
    except Exception as e:  # a database that does not answer, a URI it cannot read, no study
        if type(e).__module__.partition(".")[0] != "sqlalchemy" and not isinstance(
                e, (KeyError, ValueError, ImportError)):  # fmt: skip
            raise
        # (no password to hide: one in hydra.sweeper.storage is refused before it is used)
        raise RnnexpError(f"the sweep's Optuna study at {uri} cannot be opened: "
                          f"{str(e).splitlines()[0]}") from None  # fmt: skip
    return study, storage


class JobTrial:
    """A sweep job's trial: it reports the job's periodic val/loss, and says when the pruner
    stops the job. A grid's job asks the study for its trial; a search's was asked for it."""

    @classmethod
    def of(cls, store: Any, s: Any, sweep_dir: Path, job: int) -> JobTrial | None:
        """The trial of job `job` of the sweep in `sweep_dir` (Settings `s`), if it has one."""
        place = study_of(store, s.tracking.experiment, sweep_dir)
        return place and cls(place, job, s.prune, s.train)

    def __init__(self, place: Place, job: int, prune: PruneSettings, train: Any) -> None:
        import optuna

        self.train = train  # its progress: what the pruner compares jobs at
        self.study, storage = open_study(place, prune.pruner(*train.marks()))
        trials = self.study.get_trials(deepcopy=False)
        number = next((t.number for t in trials if t.user_attrs.get(JOB_ATTR) == job), None)
        if number is None:  # a grid's job, the first time it runs
            self.trial = self.study.ask()
            self.trial.set_user_attr(JOB_ATTR, job)
        else:  # a search's, or a job resumed
            study_id = storage.get_study_id_from_name(place.name)
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
            self.trial = optuna.trial.Trial(self.study, trial_id)
        self.number = self.trial.number
        # a job resumed reports again only past what it reported before it was stopped
        self.last = max(next((t.intermediate_values for t in trials if t.number == self.number),
                             {}), default=-1)  # fmt: skip

    def report(self, value: float, step: int, seconds: float) -> bool:
        """Report val/loss at `step`, after `seconds` of training; True if the pruner stops the
        job here."""
        at = self.train.progress(step, seconds)
        if at <= self.last:  # evaluated twice within a second of a time budget: nothing new
            return False
        self.last = at
        self.trial.report(value, at)
        return self.trial.should_prune()

    def tell(self, value: float | None, pruned: bool) -> None:
        """How the job ended: pruned (its last report is its value), or complete."""
        from optuna.trial import TrialState

        finite = value is not None and abs(value) < float("inf")  # not NaN, not inf
        state = "PRUNED" if pruned else "COMPLETE" if finite else "FAIL"
        values = value if state == "COMPLETE" else None
        self.study.tell(self.number, values, TrialState[state], skip_if_finished=True)


def finish_study(place: Place, folder: Path, search: bool) -> tuple[dict, list[Path]]:
    """A sweep's study at its end: a trial still RUNNING died without telling (FAIL; a killed
    sweep's stay, to be resumed). A search's best complete trial's parameters, and Optuna's
    optimisation history and parameter importances drawn (matplotlib) as PNGs in `folder`."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as draw

    study, _ = open_study(place)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not search or not complete:
        return {}, []
    figures = []
    for name, plot in (("history", draw.plot_optimization_history),
                       ("importances", draw.plot_param_importances)):  # fmt: skip
        try:
            with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
                warnings.simplefilter("ignore")
                ax = plot(study)
        except (ValueError, RuntimeError, ZeroDivisionError):  # importances: too few trials
            continue
        figures.append(folder / f"search_{name}.png")
        ax.figure.savefig(figures[-1], dpi=100, bbox_inches="tight")
        plt.close(ax.figure)
    return min(complete, key=lambda t: t.value).params, figures
