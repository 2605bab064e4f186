"""rnnexp's search (search=optuna): a Hydra sweeper on Optuna >= 4 whose trials are jobs of
the sweep, launched one by one by Hydra's launcher as soon as a slot is free.

The space is Hydra's sweep syntax (choice, range, interval, tag(log, ...)); the study is the
sweep's (study.py), so jobs report to it and a pruner stops the losers. Each ask seeds the
sampler with seed + the trial's number: one job at a time, a search resumed after a kill asks
what it would have asked.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from rnnexp.errors import ConfigError, install_hint
from rnnexp.framework.settings import yaml_value
from rnnexp.framework.study import JOB_ATTR, open_study, place_of

SAMPLERS = {"tpe": "TPESampler", "random": "RandomSampler", "grid": "GridSampler",
            "qmc": "QMCSampler", "cmaes": "CmaEsSampler"}  # fmt: skip


def distribution(override: Any) -> Any:
    """Hydra's sweep syntax as Optuna's distribution: choice(...) and a shuffled range are
    categorical; range(a, b, step) a stepped int or float; interval(a, b) a uniform float (an
    int with whole ends), log-uniform when tagged log."""
    from hydra.core.override_parser.types import Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    if override.is_choice_sweep() or override.is_range_sweep() and value.shuffle:
        return CategoricalDistribution(list(override.sweep_iterator(Transformer.encode)))
    if override.is_range_sweep():
        ends = (value.start, value.stop - value.step, value.step)
        if any(isinstance(x, float) for x in ends):
            return FloatDistribution(ends[0], ends[1], step=ends[2])
        return IntDistribution(*(int(x) for x in ends[:2]), step=int(ends[2]))
    log_scale = "log" in value.tags
    if isinstance(value.start, int) and isinstance(value.end, int):
        return IntDistribution(value.start, value.end, log=log_scale)
    return FloatDistribution(value.start, value.end, log=log_scale)


def search_space(lines: list[str]) -> tuple[dict[str, Any], dict[str, list], list[str]]:
    """The swept keys of `lines` as Optuna distributions and, where Hydra lists their values
    (choice, range), as GridSampler's lists; the other overrides as they are. A key given
    again later wins (`search=optuna train.seq_length=16` fixes what the preset searches)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Transformer

    space, grid, fixed = {}, {}, {}
    for o in OverridesParser.create().parse_overrides(lines):
        key = o.get_key_element()  # a key searched again keeps its place: the runs' names
        grid.pop(key, None)
        if o.is_sweep_override():
            space[key], _ = distribution(o), fixed.pop(key, None)
            if o.is_discrete_sweep():
                grid[key] = list(o.sweep_iterator(Transformer.encode))
        else:
            fixed[key], _ = o.input_line, space.pop(key, None)
    return space, grid, list(fixed.values())


class Search:
    """The sweeper's work (the plugin, rnnexp/hydra_plugins/, hands it over)."""

    def __init__(self, sampler: str, seed: int, n_trials: int, n_jobs: int | None,
                 storage: str | None, params: dict | None) -> None:  # fmt: skip
        import importlib.util

        from rnnexp.errors import check_whole
        from rnnexp.framework.settings import check_no_password

        if sampler not in SAMPLERS:
            raise ConfigError(f"hydra.sweeper.sampler is one of {', '.join(SAMPLERS)}, "
                              f"got {sampler!r}")  # fmt: skip
        if sampler == "cmaes" and not importlib.util.find_spec("cmaes"):
            raise ConfigError(f"hydra.sweeper.sampler=cmaes needs cmaes: {install_hint('cmaes')}")
        check_whole("hydra.sweeper.n_trials", n_trials, 1)
        check_whole("hydra.sweeper.seed", seed, 0)
        if n_jobs is not None:
            check_whole("hydra.sweeper.n_jobs", n_jobs, 1)
        check_no_password(storage, "hydra.sweeper.storage")
        self.sampler, self.seed, self.n_trials, self.n_jobs = sampler, seed, n_trials, n_jobs
        self.storage, self.params = storage, dict(params or {})
        self.config: Any = None
        self.launcher: Any = None

    def setup(self, config: Any, launcher: Any) -> None:
        self.config, self.launcher = config, launcher

    def slots(self) -> int:
        """Trials at a time: hydra.sweeper.n_jobs, else the launcher's; one in-process."""
        choice = self.config.hydra.runtime.choices.get("hydra/launcher")
        if choice in (None, "basic"):  # jobs run in this process: one at a time
            return 1
        if self.n_jobs is not None:
            return self.n_jobs
        n = self.config.hydra.launcher.get("n_jobs") if choice == "joblib" else -1
        return max(1, os.cpu_count() + 1 + n if n < 0 else n)

    def sweep(self, arguments: list[str]) -> list[Any]:
        import math

        import optuna

        lines = [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        space, grid, fixed = search_space(lines)
        if self.sampler == "grid" and grid.keys() != space.keys():
            raise ConfigError("hydra.sweeper.sampler=grid takes choice(...) and range(...), not "
                              "an interval")  # fmt: skip
        grid = grid if self.sampler == "grid" else None
        n_trials = min(self.n_trials, math.prod(map(len, grid.values()))) if grid else self.n_trials
        study, _ = open_study(place_of(self.storage, Path(self.config.hydra.sweep.dir)),
                              create=True)  # fmt: skip
        trials = study.get_trials(deepcopy=False)
        # a killed search's trials that were running: their jobs resume from checkpoints
        again = [(t.number, t.params) for t in trials if t.state.name == "RUNNING"]
        asked, returns = len(trials), []

        def ask() -> tuple[int, dict]:
            nonlocal asked
            study.sampler = self._make_sampler(self.seed + asked, grid)
            trial = study.ask(space)
            trial.set_user_attr(JOB_ATTR, trial.number)
            asked += 1
            return trial.number, trial.params

        def launch(number: int, params: dict) -> Any:
            job = fixed + [f"{k}={yaml_value(params[k])}" for k in space]  # in the space's order
            return number, self.launcher.launch([job], initial_job_idx=number)[0]

        with ThreadPoolExecutor(self.slots()) as pool:
            running = set()
            while again or asked < n_trials or running:
                while len(running) < self.slots() and (again or asked < n_trials):
                    running.add(pool.submit(launch, *(again.pop(0) if again else ask())))
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    number, ret = future.result()
                    returns.append(ret)
                    if not _finite(ret):  # a job that could not say how it ended
                        study.tell(number, state=optuna.trial.TrialState.FAIL,
                                   skip_if_finished=True)  # fmt: skip
        return returns

    def _make_sampler(self, seed: int, grid: dict | None) -> Any:
        import optuna

        kind = getattr(optuna.samplers, SAMPLERS[self.sampler])
        if grid is not None:
            return kind(grid, seed=seed)
        if self.sampler == "qmc":  # QMC's points go by the trial's number, not its seed
            return kind(seed=self.seed, warn_asynchronous_seeding=False)
        return kind(seed=seed)


def _finite(ret: Any) -> bool:
    """Whether a job ran and returned a finite loss (it told the study how it ended)."""
    from hydra.core.utils import JobStatus

    return ret.status == JobStatus.COMPLETED and abs(ret.return_value) < float("inf")
