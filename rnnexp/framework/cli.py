"""`rnnexp [overrides]` (also `python -m rnnexp`): the Hydra entrypoint, the only module that
sees a job's DictConfig.

Hydra parses the command line and composes each job; its callbacks check every job before
any runs and claim the folder (rnnexp/framework/checks.py), and open a sweep's parent run
(sweep.py). `task` hands the job's Settings to rnnexp.framework.run.run and returns
the final validation loss, which Hydra's sweepers minimise. A mistake is one line, exit 2.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from rnnexp import faults
from rnnexp.errors import RnnexpError
from rnnexp.framework import rundir, settings
from rnnexp.framework.bounds import check_config_dir
from rnnexp.framework.checks import settings_of
from rnnexp.framework.messages import Refused, config_errors, one_line
from rnnexp.framework.resume import further, saved_settings, with_how
from rnnexp.framework.run import Job, run
from rnnexp.framework.settings import OPTIONS, Settings, override_key, quote, typed_overrides
from rnnexp.framework.signals import check_dropped, stop_on_sigterm
from rnnexp.framework.summary import say
from rnnexp.framework.sweep import SweepTracking, finished_job
from rnnexp.framework.threads import threads_per_job
from rnnexp.framework.tracking import Store
from rnnexp.resources import CONF_DIR


def register_configs() -> None:
    """The schema of conf/config.yaml (settings.py), and of each option with keys of its own,
    GROUP_NAME, that its YAML names (top-level configs: --help lists no group of them)."""
    cs = ConfigStore.instance()
    cs.store(name="rnnexp_schema", node=Settings)
    for group, (_, options) in OPTIONS.items():
        for name, schema in options.items():
            cs.store(name=f"{group}_{name}", node=schema)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def task(cfg: DictConfig) -> float:
    """One job: a run, or a job of a sweep (whose failure is a FAILED run scored +inf, so
    the other jobs go on)."""
    hc = HydraConfig.get()
    in_sweep = hc.mode == RunMode.MULTIRUN
    faults.point("sweep-job" if in_sweep else "hydra")
    s = settings_of(cfg, typed_overrides(hc))  # those its check made, in this process
    output_dir = Path(hc.runtime.output_dir)
    store = Store(s.tracking.uri)  # resolved by its check (checks.py): this job's, once
    if not in_sweep:
        _last.folder, _last.store = output_dir, store
    job = Job(
        output_dir=output_dir,
        launch_dir=Path(hc.runtime.cwd),
        experiment=hc.runtime.choices.get("experiment"),
        overrides=typed_overrides(hc),
        sweep_dir=Path(hc.sweep.dir) if in_sweep else None,
        num=hc.job.num if in_sweep else None,
        store=store,
        threads=threads_per_job(hc.runtime.choices.get("hydra/launcher"), hc.launcher.get(
            "n_jobs"), OmegaConf.select(hc, "launcher.ray.remote.num_cpus")) if in_sweep else None,
    )  # fmt: skip
    try:
        if in_sweep and not (output_dir / rundir.CHECKPOINT_FILE).is_file():
            s.resume = None  # a job of a resumed sweep that never got going: it runs
        if s.resume:  # checks.py pointed Hydra at the run's folder
            done = finished_job(output_dir, store) if in_sweep else None
            if done is not None:
                return done
            job.resume, job.further = True, further(s, job.overrides)
            s = with_how(saved_settings(output_dir), s, job.overrides)
            s.tracking.uri = store.uri  # the store it was tracked in: checks.py made sure
        else:
            job.config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
            job.params = OmegaConf.to_container(cfg, resolve=True)
        return run(s, job)
    except RnnexpError as e:
        if not in_sweep:  # Refused passes through Hydra, which reports an Exception again
            raise Refused(str(e)) from None
        print(f"rnnexp: error: {e}", file=sys.stderr)
        return float("inf")  # the worst score to a minimising sweeper (Optuna refuses NaN)
    finally:  # the job is over; a launcher's worker lives on (joblib's, idle): let its folder go
        rundir.let_go(output_dir)


# Hydra's flags that each choose what the command does
MODES = {"-m": "--multirun", "--multirun": "--multirun", "-c": "--cfg", "--cfg": "--cfg",
         "-i": "--info", "--info": "--info", "-r": "--run", "--run": "--run"}  # fmt: skip


def prepare(argv: list[str]) -> list[str]:
    """The command line as Hydra should read it. `corpus.path=~/my_text.txt`, as typed into
    bash (which expands ~ only at the start of a word): quoted for Hydra, whose grammar
    rejects a bare ~ (the path is expanded where it is read). A password in tracking.uri
    is refused before Hydra records the command line anywhere (store.py). Two of
    Hydra's modes at once are refused here (Hydra raises a ValueError for them)."""
    modes = {MODES[a.split("=")[0]] for a in argv if a.split("=")[0] in MODES}
    if len(modes) > 1:
        raise RnnexpError(f"{' and '.join(sorted(modes))}: give one of them")
    for i, arg in enumerate(argv):  # a user's presets, bounded before Hydra composes them
        flag, eq, value = arg.partition("=")
        if flag.lstrip("+~").startswith(("hydra.hydra_logging", "hydra/hydra_logging")) and (
                value not in ("default", "disabled")):  # fmt: skip
            raise RnnexpError(f"{flag}: Hydra's own logging is rnnexp's (Hydra opens its "
                              f"files before any check); hydra/hydra_logging=disabled turns "
                              f"it off")  # fmt: skip
        if flag in ("--config-dir", "-cd"):
            folder = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            check_config_dir(Path(folder).expanduser())
    # no password in tracking.uri: refused before Hydra records it
    settings.check_command_line(argv)
    out = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        home = eq and not key.startswith("-") and (value == "~" or value.startswith("~/"))
        out.append(f"{key}={quote(value)}" if home else arg)
    # a pruned grid runs each point once in an order of a seed's (the search's grid sampler,
    # search.py): in the order given, the worst values often come first, where asha keeps them
    keys = {a.partition("=")[0].lstrip("+~") for a in out}
    if "--multirun" in modes and not keys & {"search", "hydra/sweeper"} and any(
            a.startswith("prune=") and a != "prune=none" for a in out):  # fmt: skip
        out += ["hydra/sweeper=optuna", "hydra.sweeper.sampler=grid"]
    return out


@dataclass
class Outcome:
    """What a command did, for rnnexp.run: the folder of its run or sweep, its store, and the
    jobs of a sweep that failed (a grid's: the command exits 1; a search's: reported)."""

    folder: Path | None = None
    store: Store | None = None
    sweep: bool = False
    failed: list[str] = field(default_factory=list)
    failed_trials: list[str] = field(default_factory=list)


class CommandError(RnnexpError):
    """A command refused or stopped by an error: its one line, and the exit code."""

    def __init__(self, line: object, code: int = 2):
        super().__init__(str(line))
        self.code = code


_last = Outcome()  # the command under way: task and the sweep's callback fill it in


def main(argv: list[str] | None = None) -> None:
    """The `rnnexp` command; `argv` (default: sys.argv[1:]) to call it in-process."""
    if hasattr(sys.stdout, "reconfigure"):  # a charset without a character: '?', not a lost line
        sys.stdout.reconfigure(errors="replace")
    try:
        outcome = execute(sys.argv[1:] if argv is None else argv)
    except CommandError as e:
        say(f"rnnexp: error: {e}")
        sys.exit(e.code)
    except KeyboardInterrupt as e:  # a run under way is already KILLED (and checkpointed)
        said = f": {e}" if str(e) else ""
        say(f"rnnexp: interrupted{said}{getattr(e, 'hint', '')}")
        sys.exit(128 + getattr(e, "signum", 2))  # 130 for Ctrl-C, 143 for SIGTERM, 129 SIGHUP
    if outcome.failed_trials:
        say(f"rnnexp: {len(outcome.failed_trials)} trials of the search failed (FAILED runs, "
            f"scored +inf): {', '.join(outcome.failed_trials)}")  # fmt: skip
    if outcome.failed:
        say(f"rnnexp: error: sweep jobs failed: {', '.join(outcome.failed)}")
        sys.exit(1)


def execute(argv: list[str]) -> Outcome:
    """The command `rnnexp ARGV`, in this process: what it did, or CommandError (its line
    and exit code); KeyboardInterrupt for Ctrl-C and SIGTERM, with the run or sweep closed."""
    global _last
    try:
        rundir.check_cwd()
    except RnnexpError as e:
        raise CommandError(e) from None
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its errors: execute makes each one line
    register_configs()
    # conf/hydra/launcher/ray.yaml replaces the plugin's preset of the same name on purpose
    # (see that file); Hydra still merges it onto the plugin's schema, and warns that it does
    warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/ray' is validated against")
    # a log line that cannot be written (a full disk) must not print a traceback per line:
    # the run reports the failure itself, in one line
    logging.raiseExceptions = False
    _last = Outcome()
    with stop_on_sigterm():
        faults.point("startup")
        given = sys.argv[:]  # Hydra reads the command line from sys.argv: set, then put back
        try:
            args: list[str] | None = list(argv)
            while args is not None:  # once, or twice for a sweep resumed with its own overrides
                args = _launch(args)
            check_dropped()  # a stop asked for in its last moments: said, and exit 143
        except KeyboardInterrupt as e:  # a run under way is already KILLED (and checkpointed)
            rundir.discard_unstarted()
            e.hint = SweepTracking.resume_hint()
            SweepTracking.interrupted("KILLED", f"interrupted: {e}" if str(e) else "interrupted")
            raise
        except BaseException:  # a run that never started leaves no folder, a sweep no open run
            rundir.discard_unstarted()
            SweepTracking.interrupted("FAILED", "the sweep stopped on an error (see its output)")
            raise
        finally:  # the command is over (called in-process too): its folders are let go
            rundir.release()
            sys.argv[:] = given
    if SweepTracking.last:
        _last.folder, _last.store, _last.sweep = Path(SweepTracking.last["folder"]), \
            SweepTracking.last["store"], True  # fmt: skip
    _last.failed, _last.failed_trials = SweepTracking.failed, SweepTracking.failed_trials
    return _last


def _help(args: list[str]) -> bool:
    """`rnnexp --help [overrides]`: conf/hydra/help/rnnexp.yaml's page, the groups' options
    from conf/'s folders, the config composed once (Hydra's compose API). Hydra's own page
    composes it once per option (1.6 s); with --config-dir and Hydra's other flags it is
    still Hydra's (False: not shown here)."""
    if not set(args) & {"--help", "-h"} or any(
            a.startswith("-") for a in args if a not in ("--help", "-h")):  # fmt: skip
        return False
    import yaml
    from hydra import compose, initialize_config_dir

    overrides = [a for a in args if a not in ("--help", "-h")]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=prepare(overrides))
    page = yaml.safe_load((CONF_DIR / "hydra" / "help" / "rnnexp.yaml").read_text())
    groups = [f"{g.name}: {', '.join(sorted(p.stem for p in g.glob('*.yaml')))}"
              for g in sorted(CONF_DIR.iterdir()) if g.is_dir() and g.name != "hydra"]  # fmt: skip
    text = (page["template"].replace("${hydra.help.header}", page["header"])
            .replace("${hydra.help.footer}", page["footer"])
            .replace("$APP_CONFIG_GROUPS", "\n".join(groups) + "\n")
            .replace("$CONFIG", OmegaConf.to_yaml(cfg)))  # fmt: skip
    print(text)
    return True


def _launch(args: list[str]) -> list[str] | None:
    """Hydra on `args`; the command line to launch next, if any."""
    SweepTracking.failed, SweepTracking.failed_trials, SweepTracking.last = [], [], None
    try:
        if _help(args):  # its mistakes and a closed pipe are said as a run's are
            return None
        sys.argv[1:] = prepare(args)
        task()
    except BrokenPipeError:  # `rnnexp --help | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return None
    except RecursionError:  # Hydra composing a defaults list that includes itself
        rundir.discard_unstarted()
        raise CommandError("composing the config never ends: a defaults list that includes itself "
                           "(a preset naming another that names it), or a ${...} that refers to "
                           "itself") from None  # fmt: skip
    except (Refused, RnnexpError, *config_errors()) as e:
        if isinstance(e, Refused) and e.relaunch is not None:
            return e.relaunch
        rundir.discard_unstarted()
        SweepTracking.interrupted("FAILED", "the sweep stopped on an error (see its output)")
        line = str(e) if isinstance(e, Refused | RnnexpError) else _swept(e, args) or one_line(e)
        raise CommandError(line) from None
    return None


def _swept(e: BaseException, args: list[str]) -> str | None:
    """What Hydra refuses of a sweep before composing anything (a bare composition error),
    said from the overrides (Hydra's parser): a sweep of one of its own keys, or one in a run
    (no -m, no search preset)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import ConfigCompositionException

    if type(e) is not ConfigCompositionException or e.__cause__ is not None:
        return None
    parser = OverridesParser.create()
    for arg in args:
        try:
            o = parser.parse_override(arg) if "=" in arg and not arg.startswith("-") else None
        except config_errors():
            continue
        if o is not None and o.is_sweep_override() and o.is_hydra_override():
            return (
                f"{arg}: Hydra cannot sweep its own keys; give a search space on the key "
                f"itself ({override_key(arg).removeprefix('hydra.sweeper.params.')}=...)"
            )
        if o is not None and o.is_sweep_override() and "-m" not in args and (
                "--multirun" not in args):  # fmt: skip
            return f"{arg} is a sweep: add -m (--multirun) to run one job per value"
    return None
