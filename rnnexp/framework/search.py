"""rnnexp's search (search=optuna): a Hydra sweeper on Optuna >= 4 whose trials are jobs of
the sweep, each launched by Hydra's launcher as soon as a slot is free. The space is Hydra's
sweep syntax; the study is the sweep's (study.py), where jobs report and a pruner stops the
losers. Each ask seeds the sampler with seed + the trial's number: one job at a time, a
search resumed after a kill asks what it would have asked.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import threading
from pathlib import Path
from typing import Any

import psutil

from rnnexp.errors import ConfigError, check_whole, install_hint
from rnnexp.framework.settings import check_no_password, yaml_value
from rnnexp.framework.study import JOB_ATTR, open_study, study_of

DEFAULT_TRIALS = 20  # hydra.sweeper.n_trials=null: a search's trials (a grid's: all its points)
SAMPLERS = {"tpe": "TPESampler", "random": "RandomSampler", "grid": "RandomSampler",
            "qmc": "QMCSampler", "cmaes": "CmaEsSampler"}  # fmt: skip


def distribution(override: Any) -> Any:
    """Hydra's sweep syntax as Optuna's distribution: choice(...), a float or shuffled range
    categorical; range(a, b, step) of ints a stepped int; interval(a, b) a uniform float (an
    int with whole ends), log-uniform when tagged log."""
    from hydra.core.override_parser.types import Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    if override.is_discrete_sweep():  # its points as Hydra lists them, each once
        points = list(dict.fromkeys(override.sweep_iterator(Transformer.encode)))
        if override.is_range_sweep() and not value.shuffle and len(points) > 1 and all(
                type(p) is int for p in points):  # fmt: skip
            # an ordered int range (a float range's points are choices: exactly those)
            return IntDistribution(points[0], points[-1], step=points[1] - points[0])
        return CategoricalDistribution(points)
    log_scale = "log" in value.tags
    if isinstance(value.start, int) and isinstance(value.end, int):
        return IntDistribution(value.start, value.end, log=log_scale)
    return FloatDistribution(value.start, value.end, log=log_scale)


def search_space(lines: list[str]) -> tuple[dict[str, Any], dict[str, list], list[str]]:
    """The swept keys of `lines` as Optuna distributions and, where Hydra lists their values
    (choice, range), as GridSampler's lists; the other overrides as they are. A key given
    again later wins (`search=optuna train.seq_length=16` fixes what the preset searches)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    space, grid, fixed = {}, {}, {}
    for o in OverridesParser.create().parse_overrides(lines):
        key = o.get_key_element()  # a key searched again keeps its place: the runs' names
        grid.pop(key, None)
        if o.is_sweep_override():
            try:
                space[key], _ = distribution(o), fixed.pop(key, None)
            except ValueError as e:  # low > high, a log scale from 0, a step that does not fit
                raise ConfigError(f"{o.input_line} is not a search space Optuna takes: "
                                  f"{e}") from None  # fmt: skip
            if o.is_discrete_sweep():  # its points, for sampler=grid
                d = space[key]
                grid[key] = list(getattr(d, "choices", None) or range(d.low, d.high + 1, d.step))
        else:
            fixed[key], _ = o.input_line, space.pop(key, None)
    return space, grid, list(fixed.values())


class Search:
    """The sweeper's work (the plugin, rnnexp/hydra_plugins/, hands it over)."""

    def __init__(self, sampler: str, seed: int, n_trials: int | None, n_jobs: int | None,
                 storage: str | None, params: dict | None) -> None:  # fmt: skip
        if sampler not in SAMPLERS:
            raise ConfigError(f"hydra.sweeper.sampler is one of {', '.join(SAMPLERS)}, "
                              f"got {sampler!r}")  # fmt: skip
        if sampler == "cmaes" and not importlib.util.find_spec("cmaes"):
            raise ConfigError(f"hydra.sweeper.sampler=cmaes needs cmaes: {install_hint('cmaes')}")
        check_whole("hydra.sweeper.seed", seed, 0)
        for key, value in (("n_trials", n_trials), ("n_jobs", n_jobs)):  # null: chosen
            if value is not None:
                check_whole(f"hydra.sweeper.{key}", value, 1)
        check_no_password(storage, "hydra.sweeper.storage")
        self.sampler, self.seed, self.n_trials, self.n_jobs = sampler, seed, n_trials, n_jobs
        self.params = dict(params or {})  # storage: the sweep's start opens it (sweep.py)
        self.config = self.launcher = None  # setup()'s

    def setup(self, config: Any, launcher: Any) -> None:
        self.config, self.launcher = config, launcher

    def slots(self) -> int:
        """Trials at a time: hydra.sweeper.n_jobs, else the launcher's; one in-process."""
        choice = self.config.hydra.runtime.choices.get("hydra/launcher")
        if choice in (None, "basic"):  # jobs run in this process: one at a time
            return 1
        launcher = self.config.hydra.launcher.get("n_jobs") if choice == "joblib" else -1
        n = self.n_jobs or launcher
        return max(1, os.cpu_count() + 1 + n if n < 0 else n)

    def space(self, arguments: list[str]) -> tuple[dict[str, Any], dict[str, list], list[str]]:
        """The search space of hydra.sweeper.params and the command line's `arguments`: its
        distributions, its grid (sampler=grid) and the fixed overrides (search_space)."""
        lines = [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        space, grid, fixed = search_space(lines)
        if not space:  # n_trials of one job
            raise ConfigError("the search has no space: give hydra.sweeper.params, or "
                              "KEY=choice(...), KEY=interval(...) in the command")  # fmt: skip
        if self.sampler == "grid" and grid.keys() != space.keys():
            others = ", ".join(space.keys() - grid.keys())
            raise ConfigError(f"hydra.sweeper.sampler=grid takes choice(...) and range(...), "
                              f"not an interval: {others}")  # fmt: skip
        return space, grid, fixed

    def sweep(self, arguments: list[str]) -> list[Any]:
        import itertools

        import numpy as np
        import optuna

        space, grid, fixed = self.space(arguments)
        # the study its sweep's start made (sweep.py), as the sweep folder names it
        study, _ = open_study(study_of(None, "", Path(self.config.hydra.sweep.dir)))
        trials = study.get_trials(deepcopy=False)
        n_trials = self.n_trials or DEFAULT_TRIALS
        if self.sampler == "grid":  # every point once (a grid in its given order would put
            # the worst learning rates first, where asha keeps them: in an order of the seed's)
            points = list(itertools.product(*grid.values()))
            n_trials = min(self.n_trials or len(points), len(points))
            order = [] if trials else np.random.default_rng(self.seed).permutation(len(points))
            for i in order:
                study.enqueue_trial(dict(zip(grid, points[i], strict=True)))
        # a killed search's trials that were running: their jobs resume from checkpoints
        again = [(t.number, t.params) for t in trials if t.state.name == "RUNNING"]
        asked, returns, running = sum(t.state.name != "WAITING" for t in trials), [], 0

        def ask() -> tuple[int, dict]:
            nonlocal asked
            study.sampler = self._make_sampler(self.seed + asked)
            trial = study.ask(space)  # an enqueued grid point first
            trial.set_user_attr(JOB_ATTR, trial.number)
            asked += 1
            return trial.number, trial.params

        finished: queue.Queue = queue.Queue()

        def launch(number: int, params: dict) -> None:
            job = fixed + [f"{k}={yaml_value(params[k])}" for k in space]  # in the space's order
            try:
                finished.put((number, self.launcher.launch([job], initial_job_idx=number)[0]))
            except BaseException as e:  # raised again in the sweep's thread
                finished.put((number, e))

        try:
            while again or asked < n_trials or running:
                while running < self.slots() and (again or asked < n_trials):
                    # a daemon: a stopped sweep does not wait for its launches (below)
                    threading.Thread(target=launch, args=again.pop(0) if again else ask(),
                                     daemon=True).start()  # fmt: skip
                    running += 1
                number, ret = finished.get()
                running -= 1
                if isinstance(ret, BaseException):
                    raise ret
                returns.append(ret)
                if not _finite(ret):  # a job that could not say how it ended
                    study.tell(number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        except BaseException:  # stopped (Ctrl-C, SIGTERM), or a launch failed: its jobs stop
            for child in psutil.Process().children(recursive=True):  # with it, as joblib's
                child.terminate()  # workers do with Hydra's grid; they close their runs KILLED
            raise
        return returns

    def _make_sampler(self, seed: int) -> Any:
        import optuna

        kind = getattr(optuna.samplers, SAMPLERS[self.sampler])
        if self.sampler == "qmc":  # QMC's points go by the trial's number, not its seed
            return kind(seed=self.seed, warn_asynchronous_seeding=False)
        return kind(seed=seed)


def _finite(ret: Any) -> bool:
    """Whether a job ran and returned a finite loss (it told the study how it ended)."""
    from hydra.core.utils import JobStatus

    return ret.status == JobStatus.COMPLETED and abs(ret.return_value) < float("inf")
