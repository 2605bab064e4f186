"""hydra/sweeper=optuna: Hydra's Sweeper API around rnnexp's search (framework/search.py).
Hydra imports this whenever it lists its plugins: nothing heavy here (Optuna comes later)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


class RnnexpSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        from rnnexp.framework.search import Search

        self.search = Search(**settings)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:  # fmt: skip
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )
        self.search.setup(config, self.launcher)

    def sweep(self, arguments: list[str]) -> Any:
        from rnnexp.atomic import atomic_write

        # the sweep's config, as Hydra's basic sweeper saves it: what `-m resume=` reads
        text = OmegaConf.to_yaml(self.config).encode()
        atomic_write(Path(self.config.hydra.sweep.dir) / "multirun.yaml", lambda f: f.write(text))
        if type(self.launcher).__module__.startswith("hydra_plugins.hydra_ray_launcher"):
            # its first launch starts Ray, and the search launches from a thread per slot:
            # Ray started by a launch of no job, before them
            self.launcher.launch([], initial_job_idx=0)
        return self.search.sweep(arguments)
