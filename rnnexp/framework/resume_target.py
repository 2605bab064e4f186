"""Which run or sweep a `resume=` command continues, checked before anything runs: a run's
folder or MLflow run id, a sweep's folder or parent run id; its saved config whole, and the
command not changing it (only train.steps and train.max_seconds may grow: train further).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rnnexp.errors import RnnexpError, first_line
from rnnexp.framework import experiment, rundir, sweep
from rnnexp.framework.preflight import GROUPS, Plan
from rnnexp.framework.resume import LIMITS
from rnnexp.framework.settings import Settings, override_key
from rnnexp.framework.store import redact

# what resume= may change: a run trained further is the same run with more steps or time
FURTHER = tuple(f"train.{name}" for name in LIMITS)


def further(settings: Settings, overrides: list[str]) -> dict[str, object]:
    """The FURTHER keys this command sets, by their name under train (checked and applied
    by the run, which knows how far it got)."""
    keys = {override_key(o) for o in overrides}
    return {name: getattr(settings.train, name) for name in LIMITS if f"train.{name}" in keys}


def resume_folder(s: Settings, overrides: list[str], uri: str) -> Path:
    """The folder of the run that resume=<folder or MLflow run id> continues."""
    from rnnexp.framework.tracking import RUN_ID, get_run_tags

    folder = Path(s.resume).expanduser()
    if not folder.is_dir():
        if not RUN_ID.fullmatch(s.resume):
            raise RnnexpError(f"resume={s.resume} is neither a run folder nor an MLflow run id")
        hint = "resume from the folder the run was launched from, or set tracking.uri"
        tags = get_run_tags(uri, s.resume, hint)
        folder = Path(tags.get("rnnexp.output_dir") or tags.get("rnnexp.sweep_dir", ""))
    if (folder / experiment.SWEEP_FILE).is_file():
        raise RnnexpError(f"{folder} is a sweep: resume it with rnnexp -m resume={s.resume}")
    if not (folder / ".hydra" / "config.yaml").is_file():
        raise RnnexpError(f"{folder} is not an rnnexp run folder (no .hydra/config.yaml)")
    saved_settings(folder)  # readable, and still a valid config
    differ = _differing(s, overrides, folder / ".hydra")
    if differ:  # MLflow refuses changed params, and the run must stay the run it was
        raise RnnexpError(
            f"resume continues a run with its own config (only {' and '.join(FURTHER)} "
            f"may grow, to train it further): drop {' '.join(differ)}"
        )
    return folder.resolve()


def saved_settings(folder: Path) -> Settings:
    """The Settings a run folder was started with (.hydra/config.yaml), checked: a file cut
    short by a kill, or edited by hand, is one line."""
    from omegaconf.errors import OmegaConfBaseException
    from yaml import YAMLError

    path = folder / ".hydra" / "config.yaml"
    try:
        saved = OmegaConf.load(path)
        if not isinstance(saved, DictConfig) or not saved:
            raise ValueError("empty, or not a mapping")
        OmegaConf.load(folder / ".hydra" / "overrides.yaml")
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Settings), saved))
    except (OSError, ValueError, YAMLError, OmegaConfBaseException) as e:
        raise RnnexpError(
            f"{folder} cannot be resumed: its {path.parent.name}/ is unreadable "
            f"({first_line(e)}); it was cut short or edited"
        ) from None


def _differing(s: Settings, overrides: list[str], saved: Path) -> list[str]:
    """The overrides that would change the run's saved config, each with the run's value:
    the command that started a run, with resume= added, continues it."""
    started = set(OmegaConf.load(saved / "overrides.yaml"))
    config = OmegaConf.load(saved / "config.yaml")
    differ = []
    for o in overrides:
        key = override_key(o)
        if key in ("resume", "tracking.uri", *FURTHER) or o in started:
            continue
        path = f"{key}.name" if key in GROUPS else key  # a group: its option's name
        ours: object = s
        for part in path.split("."):
            ours = getattr(ours, part, _ABSENT)
        theirs = OmegaConf.select(config, path, default=_ABSENT)
        if ours is _ABSENT or ours != theirs:
            differ.append(o if theirs is _ABSENT else f"{o} (the run has {theirs})")
    return differ


_ABSENT = object()  # a key one side does not have


def resume_sweep(plan: Plan, argv: list[str]) -> list[str]:
    """`rnnexp -m resume=<sweep folder or parent run id>`: the sweep's folder held, and the
    command line that runs its jobs again (each job decides, from its folder, whether it is
    done, to be resumed, or to be run: task())."""
    others = [o for o in plan.overrides if override_key(o) != "resume"]
    if others:
        raise RnnexpError(f"a sweep resumes with its own config: drop {' '.join(others)}")
    folder = sweep.sweep_folder(plan.settings.resume, plan.uri)
    ids = json.loads((folder / experiment.SWEEP_FILE).read_text())
    if ids["uri"] != plan.uri:  # never write to a store the user did not name
        raise RnnexpError(
            f"{folder} is tracked in {redact(ids['uri'])}, not in this command's store "
            f"{redact(plan.uri)}: resume it with tracking.uri={redact(ids['uri'])}"
        )
    rundir.hold(folder)  # refused while the sweep still runs
    for job in sorted(folder.iterdir()):  # a job whose launcher was killed may train on
        if job.is_dir() and rundir.is_held(job):
            who = (job / rundir.MARKER).read_text().strip()
            raise RnnexpError(
                f"job {job.name} of {folder} still runs ({who}): let it end, or stop it, "
                f"then resume the sweep"
            )
    os.environ[sweep.RESUMING] = str(folder)
    flags = [a for a in argv if a not in plan.overrides and a not in ("-m", "--multirun")]
    return sweep.resume_argv(folder, flags)
