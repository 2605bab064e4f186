"""Resuming: which run or sweep a `resume=` command continues, checked before anything runs
(a run's folder or MLflow run id, a sweep's folder or parent run id; its saved config whole,
the command not changing it), and a built run put back where its checkpoint left it, in the
store it was tracked in. Only train.steps and train.max_seconds may grow: train it further.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rnnexp.checkpoint import MODEL_DIR, load_checkpoint
from rnnexp.errors import CorpusError, RnnexpError, first_line
from rnnexp.framework import rundir, sweep
from rnnexp.framework.bounds import check_yaml
from rnnexp.framework.build import Built
from rnnexp.framework.messages import Refused
from rnnexp.framework.settings import (
    GROUPS,
    Settings,
    override_key,
    redact,
    schema_of,
    typed_overrides,
    yaml_value,
)
from rnnexp.framework.tracking import RUN_ID, MlflowRun, NullRun, Store

# the keys of train that set how far a run trains: resume= may raise them to train it further,
# and each checkpoint keeps the values the run trains to (LoopState.limits)
LIMITS = ("steps", "max_seconds")
FURTHER = tuple(f"train.{name}" for name in LIMITS)
# keys that change how a run computes or is recorded, not what it computes: a resume may set
# them (a register name that could not be registered is fixed or dropped this way)
HOW = ("threads", "tracking.system_metrics", "tracking.register")


def limits(s: Settings) -> dict[str, object]:
    """The values of LIMITS the run trains to, by name."""
    return {name: getattr(s.train, name) for name in LIMITS}


def train_further(s: Settings, trained_to: dict[str, object], requested: dict[str, object]) -> str:
    """Set s.train's limits to those the run last trained to (a run trained further keeps
    its new limits in its checkpoints), then to the `requested` ones, which may only grow
    (None, max_seconds' null, is no limit: the most);
    returns what grew, `train.steps: 1000 -> 2000`, or ''."""
    for name, value in trained_to.items():
        setattr(s.train, name, value)
    grown = []
    for name, new in requested.items():
        old = getattr(s.train, name)
        if new == old:
            continue
        if new is not None and (old is None or new < old):  # None: no limit
            to = "no time limit (null)" if old is None else yaml_value(old)
            raise RnnexpError(f"train.{name}={yaml_value(new)} would cut the run short: it trains "
                              f"to {to}")  # fmt: skip
        setattr(s.train, name, new)
        grown.append(f"train.{name}: {yaml_value(old)} -> {yaml_value(new)}")
    return ", ".join(grown)


def restore(b: Built, path: Path, store: Store | None, track: bool
            ) -> tuple[dict, MlflowRun | NullRun, str]:  # fmt: skip
    """Put a built run back where its checkpoint left it: its loop's state (as saved), its
    tracking run (not yet reopened) and that run's status (FINISHED when nothing is left)."""
    arrays, meta = load_checkpoint(path)
    if meta.get("corpus_sha256") != b.corpus.sha256:
        raise CorpusError(f"the corpus text changed since {path} was written: cannot resume")
    try:
        b.trainer.load_state_dict(arrays)
    except (KeyError, ValueError) as e:
        raise RnnexpError(f"checkpoint {path} does not fit the run's config: {e}") from None
    try:
        b.rng.bit_generator.state = meta["rng"]
        loop = dict(meta["loop"])
        if "run_id" not in meta:  # None for an untracked run, but there
            raise KeyError("run_id")
    except (KeyError, TypeError, ValueError) as e:
        raise RnnexpError(f"checkpoint {path} is not a whole rnnexp checkpoint: {e!r}") from None
    if not track or not meta["run_id"]:
        done = (path.parent / MODEL_DIR / "model.npz").exists()
        return loop, NullRun(), "FINISHED" if done else "KILLED"
    tracked = MlflowRun(store, meta["run_id"])
    return loop, tracked, tracked.status()


def with_how(saved: Settings, given: Settings, overrides: list[str]) -> Settings:
    """The run's saved settings with the HOW keys this command sets (threads, tracking
    options) taken from its own settings."""
    keys = {override_key(o) for o in overrides}
    for key in HOW:
        if key in keys:
            *path, name = key.split(".")
            source, target = given, saved
            for part in path:
                source, target = getattr(source, part), getattr(target, part)
            setattr(target, name, getattr(source, name))
    return saved


def further(settings: Settings, overrides: list[str]) -> dict[str, object]:
    """The FURTHER keys this command sets, by their name under train (checked and applied
    by the run, which knows how far it got)."""
    keys = {override_key(o) for o in overrides}
    return {name: getattr(settings.train, name) for name in LIMITS if f"train.{name}" in keys}


def resume_folder(s: Settings, overrides: list[str], store: Store) -> Path:
    """The folder of the run that resume=<folder or MLflow run id> continues, held by this
    process (refused while another runs there) and checked: a run, whose config the command
    does not change, that got as far as its first checkpoint."""
    folder = named_folder(s.resume, store)
    if not folder.is_dir():
        raise RnnexpError(f"resume={s.resume} is neither a run folder nor an MLflow run id")
    if (folder / rundir.SWEEP_FILE).is_file():
        raise RnnexpError(f"{folder} is a sweep: resume it with rnnexp -m resume={s.resume}")
    if not (folder / ".hydra" / "config.yaml").is_file():
        raise RnnexpError(f"{folder} is not an rnnexp run folder (no .hydra/config.yaml)")
    _check_store(folder, saved_settings(folder).tracking.uri, store)
    differ = _differing(s, overrides, folder / ".hydra")
    if differ:  # MLflow refuses changed params, and the run must stay the run it was
        raise RnnexpError(f"resume continues a run with its own config (only "
                          f"{' and '.join(FURTHER)} may grow, to train it further; "
                          f"{', '.join(HOW)} may change): drop {' '.join(differ)}")  # fmt: skip
    rundir.hold(folder)  # a run still training there is "in use", whatever it has
    if not (folder / rundir.CHECKPOINT_FILE).is_file():
        # stopped before its first checkpoint, a moment after it started: its MLflow run
        # (if it got one) is closed, and there is nothing to continue
        store.close_abandoned()
        raise RnnexpError(f"{folder} was stopped before its first step ({rundir.CHECKPOINT_FILE} "
                          f"missing): nothing to resume; start the run again")  # fmt: skip
    return folder.resolve()


def named_folder(resume: str, store: Store) -> Path:
    """The folder `resume=` names: itself, or the folder of the MLflow run (a run's, or a
    sweep's parent run) of that id; what is there, the caller checks."""
    folder = Path(resume).expanduser()
    if folder.is_dir() or not RUN_ID.fullmatch(resume):
        return folder
    hint = "resume from the folder it was launched from, or set tracking.uri"
    tags = store.run_record(resume, hint)[2]
    return Path(tags.get("rnnexp.output_dir") or tags.get("rnnexp.sweep_dir") or resume)


def saved_settings(folder: Path) -> Settings:
    """The Settings a run folder was started with (.hydra/config.yaml), checked: a file cut
    short by a kill, or edited by hand, is one line."""
    from rnnexp.framework.messages import config_errors

    path = folder / ".hydra" / "config.yaml"
    for name in ("config.yaml", "overrides.yaml"):  # a received folder's files: bounded first
        check_yaml(folder / ".hydra" / name)
    try:
        saved = OmegaConf.load(path)
        if not isinstance(saved, DictConfig) or not saved:
            raise ValueError("empty, or not a mapping")
        OmegaConf.load(folder / ".hydra" / "overrides.yaml")
        typed = OmegaConf.structured(Settings)
        for group, schema in schema_of(OmegaConf.to_container(saved)).items():
            typed[group] = OmegaConf.structured(schema)
        return OmegaConf.to_object(OmegaConf.merge(typed, saved))
    except (OSError, KeyError, TypeError, ValueError, *config_errors()) as e:
        raise RnnexpError(f"{folder} cannot be resumed: its {path.parent.name}/ is unreadable "
                          f"({first_line(e)}); it was cut short or edited") from None  # fmt: skip


def _differing(s: Settings, overrides: list[str], saved: Path) -> list[str]:
    """The overrides that would change the run's saved config, each with the run's value:
    the command that started a run, with resume= added, continues it."""
    started = set(OmegaConf.load(saved / "overrides.yaml"))
    config = OmegaConf.load(saved / "config.yaml")
    differ = []
    for o in overrides:
        key = override_key(o)
        if key in ("resume", "tracking.uri", *FURTHER, *HOW) or o in started:
            continue
        path = f"{key}.name" if key in GROUPS else key  # a group: its option's name
        ours: object = s
        for part in path.split("."):
            ours = getattr(ours, part, _ABSENT)
        theirs = OmegaConf.select(config, path, default=_ABSENT)
        if ours is _ABSENT or ours != theirs:
            differ.append(o if theirs is _ABSENT else f"{o} (the run has {yaml_value(theirs)})")
    return differ


_ABSENT = object()  # a key one side does not have


def _check_store(folder: Path, recorded: str | None, store: Store) -> None:
    """A run (or sweep) continues in the store it was tracked in (its config recorded it,
    resolved), which must be this command's: never write to a store the user did not name."""
    if recorded and recorded != store.uri:
        raise RnnexpError(f"{folder} is tracked in {redact(recorded)}, not in this command's "
                          f"store {store.shown}: resume it with "
                          f"tracking.uri={redact(recorded)}")  # fmt: skip


def resume_sweep(s: Settings, config: DictConfig, store: Store) -> Path:
    """`rnnexp -m resume=<sweep folder or parent run id>`: relaunched with the sweep's own
    command line (its multirun.yaml: its overrides, store and folder) and resume=<its
    folder>; in that command, the folder, held (each job decides from its own folder whether
    it is done, to be resumed, or to be run: cli.task)."""
    folder = named_folder(s.resume, store)
    if (folder / ".hydra").is_dir():
        raise RnnexpError(f"{folder} is a run's folder, not a sweep's: resume it without -m")
    if not folder.is_dir():
        raise RnnexpError(f"resume={s.resume} is neither a sweep folder nor a sweep's run id")
    if not (folder / rundir.SWEEP_FILE).is_file() or not (folder / "multirun.yaml").is_file():
        raise RnnexpError(f"{folder} is not a sweep that started (no {rundir.SWEEP_FILE}): nothing "
                          f"to resume; start the sweep again")  # fmt: skip
    folder = folder.resolve()
    check_yaml(folder / "multirun.yaml")
    multirun = OmegaConf.load(folder / "multirun.yaml")  # the sweep's own command's config
    _check_store(folder, OmegaConf.select(multirun, "tracking.uri"), store)
    own = _own(typed_overrides(config.hydra))
    if str(config.hydra.sweep.dir) != str(folder):  # the command as typed
        if own:
            raise RnnexpError(f"a sweep resumes with its own config: drop {' '.join(own)}")
        raise Refused(relaunch=sweep.resume_argv(folder, multirun))  # as typed: run it so
    if own != _own(typed_overrides(multirun.hydra)):
        raise RnnexpError(f"{folder} was started by another command line: it cannot resume")
    rundir.hold(folder)  # refused while the sweep still runs
    for job in sorted(folder.iterdir()):  # a job whose launcher was killed may train on
        if job.is_dir() and rundir.is_held(job):
            who = (job / rundir.MARKER).read_text().strip()
            raise RnnexpError(f"job {job.name} of {folder} still runs ({who}): let it end, or stop "
                              f"it, then resume the sweep")  # fmt: skip
    return folder


def _own(overrides) -> list[str]:
    """A sweep's overrides but resume= and its store (which its multirun.yaml records)."""
    return [o for o in overrides if override_key(o) not in ("resume", "tracking.uri")]


def resume_command(folder: Path, sweep_dir: Path | None) -> str:
    """The command that continues a run: a sweep's job is continued by resuming its sweep,
    which finishes the jobs that never ran as well."""
    return f"rnnexp -m resume={sweep_dir}" if sweep_dir else f"rnnexp resume={folder}"
