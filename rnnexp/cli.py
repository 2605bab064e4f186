"""`rnnexp [overrides]` (also `python -m rnnexp`): the Hydra entrypoint.

The only module that sees a DictConfig. It checks the command line first (one clear line for
an unknown option, a misspelled key, a wrong type or a nonsense value, before anything runs),
then hands plain Settings to rnnexp.experiment.run and returns the final validation loss,
which Hydra's sweepers minimise.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from rnnexp import experiment
from rnnexp.errors import RnnexpError
from rnnexp.preflight import check_command_line
from rnnexp.settings import Settings, override_key
from rnnexp.sweep import SweepTracking

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
EXPERIMENTS_DIR = ROOT / "experiments"


def register_configs() -> None:
    """The schema of conf/config.yaml, and experiments/*.yaml as the `experiment` group.

    Registered by absolute path, so `experiment=NAME` works from any working directory
    (a relative hydra.searchpath would silently find nothing elsewhere)."""
    cs = ConfigStore.instance()
    cs.store(name="rnnexp_schema", node=Settings)
    for path in sorted(EXPERIMENTS_DIR.glob("*.yaml")):
        cs.store(group="experiment", name=path.stem, node=OmegaConf.load(path), package="_global_")


def flatten(node: dict, prefix: str = "") -> dict[str, str]:
    """{"train": {"steps": 5}} -> {"train.steps": "5"}: MLflow params, one per leaf."""
    flat: dict[str, str] = {}
    for k, v in node.items():
        if isinstance(v, dict) and v:
            flat.update(flatten(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = "null" if v is None else str(v)
    return flat


def _resume_target(s: Settings, launch_dir: Path, overrides: list[str]) -> tuple[Settings, Path]:
    """The settings a run was started with, and its folder, from resume=<folder or run id>."""
    from rnnexp.tracking import RUN_ID, resolve_uri

    extra = [o for o in overrides if override_key(o) not in ("resume", "tracking.uri")]
    if extra:  # MLflow refuses changed params, and the run must stay the run it was
        raise RnnexpError(f"resume continues a run with its own config: drop {' '.join(extra)}")
    folder = Path(s.resume).expanduser()
    if not folder.is_dir():
        if not RUN_ID.fullmatch(s.resume):
            raise RnnexpError(f"resume={s.resume} is neither a run folder nor an MLflow run id")
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        uri = resolve_uri(s.tracking.uri, launch_dir)
        try:
            tags = MlflowClient(uri).get_run(s.resume).data.tags
        except MlflowException as e:
            raise RnnexpError(f"run {s.resume} in {uri}: {e.message}") from None
        folder = Path(tags.get("rnnexp.output_dir", ""))
    saved = folder / ".hydra" / "config.yaml"
    if not saved.is_file():
        raise RnnexpError(f"{folder} is not an rnnexp run folder (no .hydra/config.yaml)")
    if not (folder / experiment.CHECKPOINT_FILE).is_file():
        raise RnnexpError(f"{folder} has no {experiment.CHECKPOINT_FILE} to resume from")
    original = OmegaConf.merge(OmegaConf.structured(Settings), OmegaConf.load(saved))
    return OmegaConf.to_object(original), folder


def _threads_per_job(hc) -> int | None:
    """Jobs of a parallel sweep share the cores: cores / n_jobs BLAS threads each with joblib,
    the cores Ray reserved for the task with Ray, so two jobs on two cores do not each start
    two threads and fight. None: no limit."""
    launcher = hc.runtime.choices.get("hydra/launcher")
    if hc.mode != RunMode.MULTIRUN or launcher not in ("joblib", "ray"):
        return None
    if launcher == "ray":
        return max(1, int(hc.launcher.ray.remote.get("num_cpus") or 1))
    cores = os.cpu_count() or 1
    n_jobs = hc.launcher.get("n_jobs") or -1
    n_jobs = cores + 1 + n_jobs if n_jobs < 0 else n_jobs  # joblib: -1 is all cores
    return max(1, cores // max(1, n_jobs))


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def task(cfg: DictConfig) -> float:
    hc = HydraConfig.get()
    launch_dir = Path(hc.runtime.cwd)
    overrides = list(hc.overrides.task)
    settings = OmegaConf.to_object(cfg)
    if settings.resume:
        try:
            settings, folder = _resume_target(settings, launch_dir, overrides)
        except RnnexpError as e:
            print(f"rnnexp: error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        launch = experiment.Launch(folder, launch_dir, f"resume {folder}", resume=True,
                                   threads=_threads_per_job(hc))  # fmt: skip
        return _run(settings, launch)
    launch = experiment.Launch(
        output_dir=Path(hc.runtime.output_dir),
        launch_dir=launch_dir,
        run_name=",".join(overrides) or "defaults",
        overrides=overrides,
        config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
        params=flatten(OmegaConf.to_container(cfg, resolve=True)),
        sweep_dir=launch_dir / hc.sweep.dir if hc.mode == RunMode.MULTIRUN else None,
        threads=_threads_per_job(hc),
    )
    return _run(settings, launch)


def _run(settings: Settings, launch: experiment.Launch) -> float:
    try:
        return experiment.run(settings, launch)
    except RnnexpError as e:
        print(f"rnnexp: error: {e}", file=sys.stderr)
        if launch.sweep_dir is None:
            raise SystemExit(2) from None
        # one job of a sweep: its run is FAILED; the others go on, and the sweep exits 1.
        # +inf is the worst score to a minimising sweeper (Optuna refuses NaN)
        return float("inf")


def main() -> None:
    register_configs()
    # conf/hydra/launcher/ray.yaml replaces the plugin's preset of the same name on purpose
    # (see that file); Hydra still merges it onto the plugin's schema, and warns that it does
    warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/ray' is validated against")
    error = check_command_line(sys.argv[1:], CONF_DIR)
    if error:
        print(f"rnnexp: error: {error}", file=sys.stderr)
        sys.exit(2)
    try:
        task()
    except KeyboardInterrupt as e:  # the run is already marked KILLED (and checkpointed)
        SweepTracking.interrupted("KILLED", f"interrupted: {e}" if str(e) else "interrupted")
        print(f"rnnexp: interrupted: {e}" if str(e) else "rnnexp: interrupted", file=sys.stderr)
        sys.exit(128 + getattr(e, "signum", 2))  # 130 for Ctrl-C, 143 for SIGTERM
    except BaseException:  # Hydra reports its own errors and exits: close the sweep first
        SweepTracking.interrupted("FAILED", "the sweep stopped on an error (see its output)")
        raise
    if SweepTracking.failed_trials:
        print(
            f"rnnexp: {len(SweepTracking.failed_trials)} trials of the search failed (FAILED "
            f"runs, scored +inf): {', '.join(SweepTracking.failed_trials)}",
            file=sys.stderr,
        )
    if SweepTracking.failed:
        print(
            f"rnnexp: error: sweep jobs failed: {', '.join(SweepTracking.failed)}", file=sys.stderr
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
