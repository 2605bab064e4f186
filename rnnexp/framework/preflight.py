"""Check a command line before Hydra runs anything: compose the config as Hydra will (for a
sweep, once per value of each swept key) and turn any mistake into one line that says what
is valid. Hydra's own messages span many lines and end in a hint about stack traces.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import re
import typing
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from rnnexp.errors import RnnexpError, first_line, install_hint
from rnnexp.framework.settings import Settings, override_key
from rnnexp.framework.store import resolve_uri
from rnnexp.resources import EXPERIMENTS_DIR

GROUPS = ("model", "corpus", "optimizer", "schedule", "experiment", "search")
# Hydra plugins that come with an optional extra of rnnexp's (pyproject.toml)
EXTRAS = {("hydra/sweeper", "optuna"): "search", ("hydra/launcher", "ray"): "ray"}

_TYPE_NAMES = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}


@dataclasses.dataclass
class Plan:
    """What a command line that passed its checks will do."""

    runs: bool = False  # False: help, --cfg, --info, …: nothing is trained or written
    help: bool = False  # --help: rnnexp's own help
    print_config: bool = False  # --cfg job: print `config`
    multirun: bool = False  # -m, or a config that sets hydra.mode: MULTIRUN (a search)
    settings: Settings | None = None  # the first job's
    folder: str = ""  # hydra.run.dir (a run) or hydra.sweep.dir (a sweep), resolved
    named: bool = False  # the user set that folder's key: it is taken as named, not renumbered
    overrides: list[str] = dataclasses.field(default_factory=list)
    config: DictConfig | None = None  # the first job's
    help_template: str = ""  # conf/hydra/help/rnnexp.yaml's, header and footer filled in
    uri: str = ""  # the tracking store, resolved against the launch folder
    folders: tuple[Path, ...] = ()  # conf/, then the user's --config-dir


def check_command_line(argv: list[str], conf_dir: Path, launch_dir: Path) -> Plan:
    """The Plan of a command line whose every job composes into valid Settings; else
    RnnexpError with the first problem as one line."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    args = _hydra_flags(argv)
    if args.hydra_help or args.info or args.shell_completion or args.version:
        return Plan()
    if args.config_path or args.config_name or args.experimental_rerun:
        return Plan()  # another config than ours: Hydra checks it
    folders = _config_folders(conf_dir, args.config_dir)
    parsed = []
    for line in args.overrides:
        try:
            parsed += OverridesParser.create().parse_overrides([line])
        except OverrideParseException as e:
            key, eq, value = line.partition("=")
            quoted = f"{key}='{value}'" if eq else f"'{line}'"
            raise RnnexpError(
                f"cannot read {line!r}: {first_line(e)}; for a value with spaces or special "
                f'characters, quote it for Hydra inside quotes for the shell: "{quoted}"'
            ) from None
    for o in parsed:
        if o.is_sweep_override() and o.get_key_element().lstrip("+~").startswith("hydra."):
            key = o.get_key_element().lstrip("+~")
            raise RnnexpError(
                f"{o.input_line}: Hydra cannot sweep its own keys; give a search space on the "
                f"key itself ({key.removeprefix('hydra.sweeper.params.')}=...)"
            )
    _check_repeated(parsed)
    sweeps = [o for o in parsed if o.is_sweep_override()]
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    jobs = _jobs(parsed)
    checked = _check(jobs[0], folders)
    if isinstance(checked, str):
        raise RnnexpError(checked)
    first, config, hydra = checked
    _check_no_password(first.tracking.uri)
    # -m, or a config that sets hydra.mode: MULTIRUN itself (a search preset does)
    multirun = args.multirun or hydra["mode"] == "RunMode.MULTIRUN"
    if sweeps and not multirun:
        raise RnnexpError(
            f"{sweeps[0].input_line} is a sweep: add -m (--multirun) to run one job per value"
        )
    for overrides in jobs[1:]:
        problem = _check(overrides, folders)
        if isinstance(problem, str):
            raise RnnexpError(problem)
    if args.cfg or args.help:  # nothing will run: no store needed
        if args.cfg == "job" and not args.package:  # printed here: no second composition
            if args.resolve:
                OmegaConf.resolve(config)
            return Plan(print_config=True, settings=first, config=config)
        return Plan(help=args.help, settings=first, config=config, help_template=hydra["help"],
                    folders=folders)  # fmt: skip
    if multirun and not first.tracking.enabled:
        raise RnnexpError(
            "a sweep is tracked (its parent run gathers the jobs, compares them and picks the "
            "best): drop tracking.enabled=false, or -m"
        )
    if any(override_key(o.input_line) == "tracking.uri" for o in sweeps):
        raise RnnexpError("a sweep lives in one tracking store: give tracking.uri one value")
    # the command's store, resolved once, here; the entrypoint hands it on to every job
    uri = resolve_uri(first.tracking.uri, launch_dir)
    if multirun:
        error = _check_launcher(hydra["launcher"], hydra["ray_address"], uri)
        if error:
            raise RnnexpError(error)
    error = _check_store(uri) if first.tracking.enabled else None
    if error:
        raise RnnexpError(error)
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    return Plan(
        runs=True,
        multirun=multirun,
        settings=first,
        folder=hydra["sweep_dir" if multirun else "run_dir"],
        named=any(override_key(o) == key for o in fixed),
        overrides=list(args.overrides),
        config=config,
        uri=uri,
    )


def _hydra_flags(argv: list[str]) -> argparse.Namespace:
    """The flags of Hydra's command line (as `rnnexp --hydra-help` lists them) that decide
    what a command does, and its overrides; Hydra reads the same line again when it runs,
    and reports any flag this does not know."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("overrides", nargs="*")
    for flag, short in (("--help", "-h"), ("--run", "-r"), ("--multirun", "-m"),
                        ("--shell-completion", "-sc")):  # fmt: skip
        p.add_argument(flag, short, action="store_true")
    for flag in ("--hydra-help", "--version", "--resolve"):
        p.add_argument(flag, action="store_true")
    for flag, short in (("--cfg", "-c"), ("--package", "-p"), ("--config-path", "-cp"),
                        ("--config-name", "-cn"), ("--config-dir", "-cd")):  # fmt: skip
        p.add_argument(flag, short)
    p.add_argument("--info", "-i", nargs="?", const="all")
    p.add_argument("--experimental-rerun")
    return p.parse_known_args(argv)[0]


def _config_folders(conf_dir: Path, user_dir: str | None) -> tuple[Path, ...]:
    """rnnexp's conf/, then the user's own folder of groups and presets if given
    (--config-dir DIR, as Hydra reads it: DIR/model/NAME.yaml, DIR/experiment/NAME.yaml)."""
    if user_dir is None:
        return (conf_dir,)
    folder = Path(user_dir).expanduser().resolve()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "no such folder"
        raise RnnexpError(f"--config-dir {user_dir}: {what}")
    for mine in sorted(folder.glob("*/*.yaml")):  # Hydra reads rnnexp's first: yours unseen
        group = mine.parent.name
        ours = EXPERIMENTS_DIR if group == "experiment" else conf_dir / group
        if (ours / mine.name).is_file():
            raise RnnexpError(
                f"{mine}: rnnexp has a {group} of that name, which Hydra reads first; "
                f"give yours a name of its own"
            )
    return conf_dir, folder


def _check_repeated(parsed: list) -> None:
    """A key given twice: Hydra keeps the last value silently, and a later error would quote
    the wrong one."""
    seen: dict[str, str] = {}
    for o in parsed:
        key = o.get_key_element().lstrip("+~")
        if key in seen:
            raise RnnexpError(f"{key} is given twice ({seen[key]} and {o.input_line}): keep one")
        seen[key] = o.input_line


def _check_no_password(uri: str | None) -> None:
    """A password left in tracking.uri after the command line's was moved out (take_credentials)
    came from a preset, a --config-dir file or an interpolation (${oc.env:...}): it would be
    recorded in the run's config, params and Hydra's files, so it is refused."""
    from rnnexp.framework.store import move_credentials, redact

    try:
        moved = uri is not None and move_credentials(uri)[1]
    except RnnexpError:
        moved = True
    if moved:
        raise RnnexpError(
            f"tracking.uri {redact(uri)} holds a password from a config file or an "
            f"interpolation, where it would be recorded: give the URI on the command line or "
            f"in MLFLOW_TRACKING_URI (rnnexp moves the password out), or the password in "
            f"PGPASSWORD / MLFLOW_TRACKING_PASSWORD"
        )


def _check_launcher(launcher: str | None, address: str | None, uri: str) -> str | None:
    """hydra/launcher=ray: its plugin is installed, and jobs sent to a cluster log to a
    tracking server (a local sqlite file is out of reach of other machines)."""
    from urllib.parse import urlparse

    if launcher != "ray":
        return None
    if not all(importlib.util.find_spec(m) for m in ("ray", "hydra_plugins.hydra_ray_launcher")):
        return f"hydra/launcher=ray needs the Ray extra: {install_hint('ray')}"
    # ray.init() joins the cluster at `address`, else at $RAY_ADDRESS, else starts a local one
    address = address or os.environ.get("RAY_ADDRESS")
    if address and address != "local" and urlparse(uri).scheme not in ("http", "https"):
        return (
            f"hydra/launcher=ray on the cluster at {address} runs jobs on other machines, which "
            f"cannot write the tracking store {uri}: start an MLflow server (README, "
            f"Scaling out) and set tracking.uri=http://HOST:PORT"
        )
    return None


def _check_store(uri: str) -> str | None:
    """The tracking store answers, before the first step rather than at the end."""
    from rnnexp.framework.store import check_store

    try:
        check_store(uri)
    except RnnexpError as e:
        return str(e)
    return None


def _jobs(parsed: list) -> list[list[str]]:
    """Override lists that between them use every value of every swept key once."""
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    values: dict[str, list[str]] = {}
    for o in parsed:
        if o.is_sweep_override():
            try:  # choice and range sweeps; interval and glob are the sweeper's business
                values[o.get_key_element()] = list(o.sweep_string_iterator())
            except Exception:
                continue
    first = [f"{k}={v[0]}" for k, v in values.items() if v]
    jobs = [fixed + first]
    for i, (k, v) in enumerate(values.items()):
        for value in v[1:]:
            jobs.append(fixed + first[:i] + [f"{k}={value}"] + first[i + 1 :])
    return jobs


def _compose(overrides: list[str], folders: tuple[Path, ...], hydra: bool = False) -> DictConfig:
    """The config Hydra will compose from rnnexp's conf/ and the user's folders."""
    from hydra import compose, initialize_config_dir

    if folders[1:]:  # searched as Hydra's --config-dir adds them
        overrides = [
            *overrides,
            f"hydra.searchpath=[{','.join(f'file://{f}' for f in folders[1:])}]",
        ]
    with initialize_config_dir(config_dir=str(folders[0]), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=hydra)


def _check(
    overrides: list[str], folders: tuple[Path, ...]
) -> str | tuple[Settings, DictConfig, dict]:
    """The job's Settings, its config and a few values of Hydra's node if it composes and
    validates, else the problem as one line. One composition per job: each costs ~0.1 s."""
    from hydra.errors import MissingConfigException
    from omegaconf.errors import (
        ConfigAttributeError,
        ConfigKeyError,
        MissingMandatoryValue,
        OmegaConfBaseException,
        ValidationError,
    )

    from rnnexp.framework.build import validate

    try:
        cfg = _compose(overrides, folders, hydra=True)
        h = cfg.hydra
        hydra = {  # what the checks and the entrypoint need of Hydra's node, as plain values
            "mode": str(h.mode),
            "run_dir": str(h.run.dir),
            "sweep_dir": str(h.sweep.dir),
            "launcher": h.runtime.choices.get("hydra/launcher"),
            "ray_address": OmegaConf.select(h, "launcher.ray.init.address"),
            "help": str(h.help.template),
        }
        with open_dict(cfg):
            del cfg["hydra"]  # the job's config alone, typed by the Settings schema
        unknown = _unknown_key(cfg, Settings)
        if unknown:
            return _unknown_key_message(unknown, overrides, folders)
        settings = OmegaConf.to_object(cfg)
        validate(settings)
        return settings, cfg, hydra
    except MissingConfigException as e:
        group, _, name = (e.missing_cfg_file or "").rpartition("/")
        if (group, name) in EXTRAS:  # a plugin of an extra that is not installed
            extra = EXTRAS[group, name]
            return f"{group}={name} needs rnnexp's {extra} extra: {install_hint(extra)}"
        if e.options is not None and group:
            return f"unknown {group} {name!r}; valid: {', '.join(e.options)}"
        return first_line(e)
    except MissingMandatoryValue as e:
        key = getattr(e, "full_key", "")
        hint = " (corpus=file corpus.path=/path/to/text.txt)" if key == "corpus.path" else ""
        return f"{key} must be set{hint}"
    except RnnexpError as e:
        return str(e)
    except Exception as e:  # Hydra wraps OmegaConf's errors in ConfigCompositionException
        cause = e.__cause__ if isinstance(e.__cause__, OmegaConfBaseException) else e
        key = getattr(cause, "full_key", None)
        if isinstance(cause, ValidationError) and key:
            value = next((o.split("=", 1)[1] for o in overrides if override_key(o) == key), None)
            return (
                f"{key}={value} is not {_type_name(key)}"
                if value is not None
                else first_line(cause)
            )
        if isinstance(cause, ConfigAttributeError | ConfigKeyError) and key:  # no such key
            return _unknown_key_message(key, overrides, folders)
        return _file_problem(cause)


def _file_problem(e: BaseException) -> str:
    """A config file's mistake (a user's --config-dir preset, mostly) as one line that names
    the file and what is wrong; Hydra's and YAML's put that on their second lines."""
    mark = getattr(e, "problem_mark", None)  # YAML's syntax errors
    if mark is not None:
        return f"cannot read {mark.name} (line {mark.line + 1}): {e.context or ''} {e.problem}"
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    if len(lines) < 2 or not lines[0].endswith(":"):
        return first_line(e)
    where = lines[0].split(":")[0]  # In 'model/x'
    found = re.match(r"Key '(.+)' not in '(\w+)'", lines[1])
    if found is None:
        return f"{where}: {lines[1]}"
    hint = " (an experiment file starts with # @package _global_)" if found[2] == "Settings" else ""
    return f"{where}: unknown key {found[1]!r}{hint}"


def _unknown_key_message(key: str, overrides: list[str], folders: tuple[Path, ...]) -> str:
    """'unknown key train.stepz; valid keys of train: steps, ...', the valid keys read from
    the config composed without the offending override."""
    parent, _, _ = key.rpartition(".")
    rest = [
        o for o in overrides if override_key(o) != key and not override_key(o).startswith(key + ".")
    ]
    try:
        node = _compose(rest, folders)
        for part in parent.split(".") if parent else []:
            node = node[part]
        valid = sorted(str(k) for k in node.keys())
    except Exception:
        return f"unknown key {key!r}"
    if not parent:
        valid = sorted(set(valid) | set(GROUPS))
    where = f"of {parent}" if parent else "at the top level"
    return f"unknown key {key!r}; valid keys {where}: {', '.join(valid)}"


def _unknown_key(cfg: DictConfig, schema: type, prefix: str = "") -> str | None:
    """The first key of `cfg` that `schema` does not have (`+key=` slips past Hydra's check)."""
    hints = typing.get_type_hints(schema)
    for k in cfg.keys():
        k = str(k)
        if k not in hints:
            return prefix + k
        sub = hints[k]
        if dataclasses.is_dataclass(sub) and isinstance(cfg[k], DictConfig):
            found = _unknown_key(cfg[k], sub, f"{prefix}{k}.")
            if found:
                return found
    return None


def _type_name(key: str) -> str:
    """'a whole number' for train.steps, from the schema's annotation."""
    node: type = Settings
    for part in key.split("."):
        hints = typing.get_type_hints(node) if dataclasses.is_dataclass(node) else {}
        if part not in hints:
            return "of the right type"
        node = hints[part]
    args = [a for a in typing.get_args(node) if a is not type(None)]
    base = args[0] if args else node
    name = _TYPE_NAMES.get(base, getattr(base, "__name__", str(base)))
    return name + (" or null" if type(None) in typing.get_args(node) else "")
