"""`rnnexp [overrides]` (also `python -m rnnexp`): the Hydra entrypoint.

The only module that sees a DictConfig. It checks the command line first (one clear line for
an unknown option, a misspelled key, a wrong type or a nonsense value, before anything runs),
then hands plain Settings to rnnexp.framework.experiment.run and returns the final validation loss,
which Hydra's sweepers minimise.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from rnnexp import faults
from rnnexp.errors import RnnexpError
from rnnexp.framework import experiment, rundir, sweep
from rnnexp.framework.preflight import GROUPS, Plan, check_command_line
from rnnexp.framework.resume_target import further, resume_folder, resume_sweep, saved_settings
from rnnexp.framework.settings import Settings, override_key
from rnnexp.framework.store import COMMAND_STORE, command_store
from rnnexp.framework.sweep import SweepTracking
from rnnexp.framework.tracking.abandoned import close_abandoned
from rnnexp.framework.training import stop_on_sigterm
from rnnexp.resources import CONF_DIR, EXPERIMENTS_DIR


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


def _quote(value: str) -> str:
    """`value` as a quoted string of Hydra's override grammar, taken literally."""
    value = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), value)
    return "'" + value.replace("${", "\\${") + "'"


def expand_home(argv: list[str]) -> list[str]:
    """`corpus.path=~/my_text.txt`, as typed into bash (which expands ~ only at the start of a
    word): quoted for Hydra, whose grammar rejects a bare ~; the path is expanded where it is
    read."""
    out = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        home = value == "~" or value.startswith("~/")
        out.append(f"{key}={_quote(value)}" if eq and home and not key.startswith("-") else arg)
    return out


def take_credentials(argv: list[str]) -> list[str]:
    """A password in tracking.uri (or $MLFLOW_TRACKING_URI) moves into the environment
    variables its client reads, before Hydra records the command line anywhere."""
    from rnnexp.framework.store import move_credentials

    env_uri = os.environ.get("MLFLOW_TRACKING_URI")
    if env_uri:
        clean, env = move_credentials(env_uri)
        os.environ.update(env | {"MLFLOW_TRACKING_URI": clean})
    out = []
    for arg in argv:
        if override_key(arg) == "tracking.uri":
            key, _, value = arg.partition("=")
            clean, env = move_credentials(value.strip("'\""))
            os.environ.update(env)
            arg = f"{key}={_quote(clean)}" if env else arg
        out.append(arg)
    return out


def claim_folder(plan: Plan, launch_dir: Path) -> list[str]:
    """The folder this command writes into, claimed before Hydra writes anything there; the
    Hydra overrides that point the run (or the sweep) at it."""
    if plan.settings.resume:
        folder = resume_folder(plan.settings, plan.overrides, plan.uri)
        rundir.hold(folder)  # first: a run still training there is "in use", whatever it has
        if not (folder / experiment.CHECKPOINT_FILE).is_file():
            # stopped before its first checkpoint, a moment after it started: its MLflow run
            # (if it got one) is closed, and there is nothing to continue
            close_abandoned(plan.uri)
            raise RnnexpError(
                f"{folder} was stopped before its first step ({experiment.CHECKPOINT_FILE} "
                f"missing): nothing to resume; start the run again"
            )
        # the run's own folder and log; its .hydra/ keeps the config it was started with
        return [f"hydra.run.dir={_quote(str(folder))}", "hydra.output_subdir=null"]
    if not plan.folder.strip():
        key = "hydra.sweep.dir" if plan.multirun else "hydra.run.dir"
        raise RnnexpError(f"{key} is empty: name a new or empty folder")
    wanted = launch_dir / Path(plan.folder).expanduser()
    try:
        folder = rundir.claim(wanted) if plan.named else rundir.claim_fresh(wanted)
    except OSError as e:
        raise RnnexpError(f"cannot create the output folder {wanted}: {e.strerror}") from None
    key = "hydra.sweep.dir" if plan.multirun else "hydra.run.dir"
    return [f"{key}={_quote(str(folder))}"]


def print_help(plan: Plan) -> None:
    """`rnnexp --help`: conf/hydra/help/rnnexp.yaml filled in with the config the checks
    composed (Hydra's own help composes it once per option of every group, its own
    included: over a second); the groups' options from conf/ and the user's --config-dir."""
    groups = {}
    for g in GROUPS:
        folders = [f / g for f in plan.folders] + ([EXPERIMENTS_DIR] if g == "experiment" else [])
        groups[g] = sorted({p.stem for folder in folders for p in folder.glob("*.yaml")})
    listing = "\n".join(f"{g}: {', '.join(groups[g])}" for g in sorted(groups))
    config = OmegaConf.to_yaml(plan.config)
    text = plan.help_template
    print(text.replace("$APP_CONFIG_GROUPS", listing + "\n").replace("$CONFIG", config))


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
    faults.point("sweep-job" if hc.mode == RunMode.MULTIRUN else "hydra")
    launch_dir = Path(hc.runtime.cwd)
    overrides = list(hc.overrides.task)
    settings = OmegaConf.to_object(cfg)
    uri = command_store(settings.tracking.uri, launch_dir)  # as main() resolved it
    output_dir = Path(hc.runtime.output_dir)
    threads = _threads_per_job(hc)
    if os.environ.get(sweep.RESUMING) and (output_dir / experiment.CHECKPOINT_FILE).is_file():
        # a job of a resumed sweep that got going before: kept if it finished, else resumed
        done = sweep.finished_job(output_dir, uri)
        if done is not None:
            return done
        settings.resume = str(output_dir)
    if settings.resume:  # main() pointed Hydra at the run's folder: its config, its store
        original = saved_settings(output_dir)
        launch = experiment.Launch(output_dir, launch_dir, uri=uri,
                                   resume=True, threads=threads, track=original.tracking.enabled,
                                   further=further(settings, overrides),
                                   sweep_dir=_sweep_dir(hc, launch_dir))  # fmt: skip
        return _run(original, launch)
    launch = experiment.Launch(
        output_dir=output_dir,
        launch_dir=launch_dir,
        experiment=hc.runtime.choices.get("experiment"),
        uri=uri,
        overrides=overrides,
        config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
        params=flatten(OmegaConf.to_container(cfg, resolve=True)),
        sweep_dir=_sweep_dir(hc, launch_dir),
        threads=threads,
        track=settings.tracking.enabled,
    )
    return _run(settings, launch)


def _sweep_dir(hc, launch_dir: Path) -> Path | None:
    return launch_dir / hc.sweep.dir if hc.mode == RunMode.MULTIRUN else None


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
    # a log line that cannot be written (a full disk) must not print a traceback per line:
    # the run reports the failure itself, in one line
    logging.raiseExceptions = False
    stop_on_sigterm()
    faults.point("startup")
    launch_dir = Path.cwd()
    try:
        _main(launch_dir)
    except KeyboardInterrupt as e:  # a run under way is already KILLED (and checkpointed)
        rundir.discard_unstarted()
        SweepTracking.interrupted("KILLED", f"interrupted: {e}" if str(e) else "interrupted")
        print(f"rnnexp: interrupted: {e}" if str(e) else "rnnexp: interrupted", file=sys.stderr)
        sys.exit(128 + getattr(e, "signum", 2))  # 130 for Ctrl-C, 143 for SIGTERM
    except BaseException:  # Hydra reports its own errors and exits: close the sweep first
        rundir.discard_unstarted()  # a run that never started leaves no folder behind
        SweepTracking.interrupted("FAILED", "the sweep stopped on an error (see its output)")
        raise


def _main(launch_dir: Path) -> None:
    try:
        argv = take_credentials(expand_home(sys.argv[1:]))
        plan = check_command_line(argv, CONF_DIR, launch_dir)
        if plan.help or plan.print_config:
            try:
                if plan.help:
                    print_help(plan)
                else:
                    sys.stdout.write(OmegaConf.to_yaml(plan.config))
                sys.stdout.flush()
            except BrokenPipeError:  # `rnnexp --help | head`: the reader has what it wanted
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return
        if plan.runs and plan.multirun and plan.settings.resume:
            argv = resume_sweep(plan, argv)
        elif plan.runs:
            argv += claim_folder(plan, launch_dir)
            faults.point("claimed")
            os.environ[COMMAND_STORE] = plan.uri  # the store, resolved once, to every job
    except RnnexpError as e:
        print(f"rnnexp: error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.argv[1:] = argv
    task()
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
