"""Every job of a command checked before any runs, through Hydra's own hooks: a callback that
sees the composed config of a run, or of each job of a sweep (composed with Hydra's compose
API), turns it into Settings (every value checked where its setting is defined), checks the
store, and claims the folder the command writes into. Hydra's and OmegaConf's errors become
one line that says what is valid (`one_line`).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from rnnexp import faults
from rnnexp.errors import RnnexpError, install_hint
from rnnexp.framework import resume, rundir
from rnnexp.framework.build import validate
from rnnexp.framework.messages import refusing, unknown_key
from rnnexp.framework.settings import Settings, override_key, quote, typed_overrides, yaml_value
from rnnexp.framework.store import resolve_uri
from rnnexp.framework.tracking import Store
from rnnexp.resources import check_own_names

# a job's Settings as its check made them, by the job's overrides: its task, in this process,
# takes them rather than making them again (a sweep's jobs in processes of their own make
# theirs once there)
CHECKED: dict[tuple[str, ...], Settings] = {}


def settings_of(cfg: DictConfig, overrides: list[str]) -> Settings:
    """The Settings of the job whose config is `cfg`: those its check made, else made now."""
    return CHECKED.pop(tuple(overrides), None) or job_settings(cfg)


def job_settings(cfg: DictConfig) -> Settings:
    """A job's config (Hydra's node aside) as Settings, every value checked: a key the schema
    does not know (`+key=` slips past Hydra's check), a value out of range, a corpus that
    cannot be read."""
    job = copy.deepcopy(cfg)
    with open_dict(job):
        job.pop("hydra", None)
    _no_unknown_key(job, Settings)
    s = OmegaConf.to_object(job)
    validate(s)
    return s


class Checks(Callback):
    """hydra.callbacks.checks (conf/config.yaml): before Hydra writes anything."""

    @refusing
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        s = _command_settings(config)
        if s.prune.name != "none":
            raise RnnexpError(f"prune={s.prune.name} stops the losing jobs of a sweep: add -m "
                              f"(train.patience=N stops a single run early)")  # fmt: skip
        launch_dir, store = Path(config.hydra.runtime.cwd), _store(s, config)
        s.tracking.uri = store.uri
        CHECKED.clear()
        CHECKED[tuple(_overrides(config))] = s  # handed to the task
        with read_write(config):
            config.tracking.uri = store.uri  # resolved once: the job's config carries it
            if s.resume:  # the run's own folder, log and store; its .hydra/ stays as it was
                config.hydra.run.dir = str(resume.resume_folder(s, _overrides(config), store))
                config.hydra.output_subdir = None
            else:
                config.hydra.run.dir = str(_claim("hydra.run.dir", launch_dir, config))
        faults.point("claimed")

    @refusing
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra import compose

        CHECKED.clear()  # this command's jobs only
        _check_command_line(config)
        # with Hydra's config loader: glob(...) lists a group's options (model='glob(g*)')
        loader = GlobalHydra.instance().config_loader()
        overrides = OverridesParser.create(loader).parse_overrides(_overrides(config))
        if any(override_key(o.input_line) == "resume" for o in overrides if o.is_sweep_override()):
            raise RnnexpError("resume= takes one folder or run id: -m resume=<sweep folder> "
                              "resumes a whole sweep; resume runs one at a time")  # fmt: skip
        values = _check_search(config)

        def make(job: list[str]) -> Settings:
            return job_settings(compose("config", overrides=job))

        if config.hydra.runtime.choices.get("hydra/sweeper") in (None, "basic") or (
                OmegaConf.select(config, "hydra.sweeper.sampler") == "grid"):  # fmt: skip
            jobs = _grid(overrides)
            if not jobs:  # seed='glob(*)': a glob lists a group's options, not values
                raise RnnexpError("the sweep has no jobs: a glob(...) that matches nothing?")
            # each job checked before any runs; the first's settings are the command's (what
            # is swept is not in the command's config: corpus=file corpus.path=a.txt,b.txt)
            s = _check_jobs(jobs, make)
        else:  # a search: the sweeper picks its values as it goes, each checked here first
            s, _ = job_settings(config), _check_jobs(values, make)
        if not s.tracking.enabled:
            raise RnnexpError("a sweep is tracked (its parent run gathers the jobs, "
                              "compares them and picks the best): drop "
                              "tracking.enabled=false, or -m")  # fmt: skip
        launch_dir, store = Path(config.hydra.runtime.cwd), _store(s, config)
        launcher = config.hydra.runtime.choices.get("hydra/launcher")
        address = OmegaConf.select(config, "hydra.launcher.ray.init.address")
        check_launcher(launcher, address, store, OmegaConf.select(config, "hydra.launcher.n_jobs"))
        subdir = OmegaConf.to_container(config.hydra.sweep, resolve=False)["subdir"]  # as typed
        if "${hydra.job." not in str(subdir):
            raise RnnexpError(f"hydra.sweep.subdir={subdir} gives every job the same folder: "
                              f"keep ${{hydra.job.num}} (or another ${{hydra.job...}} value) in "
                              f"it")  # fmt: skip
        if s.resume:
            folder = resume.resume_sweep(s, config, store)
        else:
            folder = _claim("hydra.sweep.dir", launch_dir, config)
        for job in CHECKED.values():  # each job's task takes them, with the store resolved
            job.tracking.uri = store.uri
        with read_write(config):
            config.tracking.uri, config.hydra.sweep.dir = store.uri, str(folder)
            if storage := OmegaConf.select(config, "hydra.sweeper.storage"):  # as the store's
                config.hydra.sweeper.storage = resolve_uri(storage, launch_dir)
            # the store, resolved once, and the folder reach every job (composed from these
            # overrides, in this process or another: joblib, Ray) through its config
            config.hydra.overrides.hydra += [f"tracking.uri={quote(store.uri)}",
                                             f"hydra.sweep.dir={quote(str(folder))}"]  # fmt: skip
        faults.point("claimed")


def _check_search(config: DictConfig) -> list[list[str]]:
    """rnnexp's search sweeper's settings and space, checked where they are defined (search.py);
    the jobs that check the values it may give: each choice and end, one key at a time."""
    if config.hydra.runtime.choices.get("hydra/sweeper") != "optuna":  # not one's own plugin
        return []
    from rnnexp.framework.search import Search

    node = OmegaConf.to_container(config.hydra.sweeper, resolve=True)
    node.pop("_target_", None)
    space, _, fixed = Search(**node).space(_overrides(config))
    return [[*fixed, f"{key}={yaml_value(v)}"] for key, d in space.items()
            for v in (d.choices if hasattr(d, "choices") else (d.low, d.high))]  # fmt: skip


def _grid(overrides: list) -> list[list[str]]:
    """The jobs of Hydra's basic sweeper, as it makes them: every combination of the swept
    values, the last override varying fastest (with Hydra's Override API)."""
    import itertools

    values = []
    for o in overrides:
        key = o.get_key_element()
        if o.is_sweep_override() and not o.is_discrete_sweep():  # interval(0, 1): a search's
            raise RnnexpError(f"{o.input_line}: a grid sweeps lists and ranges; an interval "
                              f"is a search space (search=optuna)")  # fmt: skip
        swept = o.sweep_string_iterator() if o.is_sweep_override() else [
            o.get_value_element_as_str()]  # fmt: skip
        values.append([f"{key}={v}" for v in swept])
    return [list(job) for job in itertools.product(*values)]


def check_launcher(launcher: str | None, address: str | None, store: Store,
                   n_jobs: int | None) -> None:  # fmt: skip
    """hydra/launcher=joblib runs some jobs at once (joblib refuses 0 with a traceback);
    hydra/launcher=ray: its plugin is installed, and jobs sent to a cluster log to a
    tracking server (a local sqlite file is out of reach of other machines)."""
    import importlib.util
    import os

    if launcher == "joblib" and n_jobs == 0:
        raise RnnexpError("hydra.launcher.n_jobs=0 runs no job: give how many run at once "
                          "(-1: one per core)")  # fmt: skip
    if launcher != "ray":
        return
    if not all(importlib.util.find_spec(m) for m in ("ray", "hydra_plugins.hydra_ray_launcher")):
        raise RnnexpError(f"hydra/launcher=ray needs the Ray extra: {install_hint('ray')}")
    # ray.init() joins the cluster at `address`, else at $RAY_ADDRESS, else starts a local one
    address = address or os.environ.get("RAY_ADDRESS")
    if address and address != "local" and not store.is_server:
        raise RnnexpError(f"hydra/launcher=ray on the cluster at {address} runs jobs on other "
                          f"machines, which cannot write the tracking store {store.uri}: start an "
                          f"MLflow server (docs: Scaling out) and set "
                          f"tracking.uri=http://HOST:PORT")  # fmt: skip


SAY_EVERY = 10.0  # seconds between the lines of a long check of a sweep's jobs


def _check_jobs(jobs: list[list[str]], make) -> Settings:
    """Each job's settings made (and so checked); the first job's returned. A sweep of many
    jobs says what it is doing while it is checked (~0.3 s a job), before any runs."""
    import time

    from rnnexp.framework.summary import say

    start = said = time.monotonic()
    first = None
    for i, job in enumerate(jobs, 1):
        s = CHECKED[tuple(job)] = make(job)
        first = first or s
        now = time.monotonic()
        if now - said >= SAY_EVERY and i < len(jobs):
            left = (now - start) / i * (len(jobs) - i)
            say(f"rnnexp: checked {i:,} of the sweep's {len(jobs):,} jobs before any runs; "
                f"about {left:.0f} s left")  # fmt: skip
            said = now
    return first


def _overrides(config: DictConfig) -> list[str]:
    return typed_overrides(config.hydra)


def _command_settings(config: DictConfig) -> Settings:
    """The Settings of a run's config, after the checks of its command line as a whole."""
    _check_command_line(config)
    return job_settings(config)


def _check_command_line(config: DictConfig) -> None:
    """The checks of a command line as a whole."""
    for source in config.hydra.runtime.config_sources:  # --config-dir DIR
        if source.provider == "command-line":
            check_own_names(Path(source.path.removeprefix("file://")))
    if config.hydra.output_subdir != ".hydra":  # elsewhere it could be another run's
        raise RnnexpError("hydra.output_subdir is rnnexp's: a run keeps its config in its "
                          "folder's .hydra/, where resume= reads it")  # fmt: skip
    _check_log_files(config)
    seen: dict[str, str] = {}
    for line in _overrides(config):  # Hydra keeps the last value of a key given twice
        key = override_key(line)
        if key in seen:
            raise RnnexpError(f"{key} is given twice ({seen[key]} and {line}): keep one")
        seen[key] = line


OUTPUT_DIR = "${hydra.runtime.output_dir}/"


def _check_log_files(config: DictConfig) -> None:
    """Every log file Hydra is told to write lies in the run's folder: a job name, or a
    handler's filename, that leads elsewhere would write into another run's folder or
    anywhere on the disk."""
    name = str(config.hydra.job.name)
    if not name.strip() or "/" in name or name in (".", ".."):
        raise RnnexpError(f"hydra.job.name={name!r} names the run's log file: give a plain name")
    for node in ("job_logging", "hydra_logging"):
        handlers = OmegaConf.select(config, f"hydra.{node}.handlers") or {}
        for key, handler in OmegaConf.to_container(handlers, resolve=False).items():
            where = handler.get("filename") if isinstance(handler, dict) else None
            rest = str(where).removeprefix(OUTPUT_DIR)
            if where is not None and (rest == str(where) or "/" in rest or ".." in rest):
                raise RnnexpError(f"hydra.{node}.handlers.{key}.filename={where} would write "
                                  f"a log outside the run's folder: keep it "
                                  f"{OUTPUT_DIR}NAME.log")  # fmt: skip


def _store(s: Settings, config: DictConfig) -> Store:
    """The command's store, resolved (the one place: store.resolve_uri) and, if it tracks,
    checked."""
    return Store.named(s.tracking.uri, Path(config.hydra.runtime.cwd), s.tracking.enabled)


def _claim(key: str, launch_dir: Path, config: DictConfig) -> Path:
    """The new or empty folder a run (or sweep) writes into, at `key` (hydra.run.dir or
    hydra.sweep.dir): the one named, or the first free one of the time-named default."""
    folder = str(OmegaConf.select(config, key))
    if not folder.strip():
        raise RnnexpError(f"{key} is empty: name a new or empty folder")
    named = any(override_key(o) == key for o in typed_overrides(config.hydra, "hydra"))
    wanted = launch_dir / Path(folder).expanduser()
    try:
        return rundir.claim(wanted) if named else rundir.claim_fresh(wanted)
    except OSError as e:
        raise RnnexpError(f"cannot create the output folder {wanted}: {e.strerror}") from None


def _no_unknown_key(cfg: DictConfig, schema: type, prefix: str = "") -> None:
    fields = {f.name: f.type for f in dataclasses.fields(schema)}
    for k in cfg:
        if k not in fields:  # the line Hydra's own refusal of a key gets (messages.py)
            raise RnnexpError(unknown_key(f"{prefix}{k}", set(fields)))
        kind = OmegaConf.get_type(cfg, k)
        if kind is not None and dataclasses.is_dataclass(kind):
            _no_unknown_key(cfg[k], kind, f"{prefix}{k}.")
