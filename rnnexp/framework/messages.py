"""Hydra's, OmegaConf's and YAML's errors as one line that says what is valid: theirs span
many lines (a config search path, a stack of keys) and end in a hint about stack traces.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from rnnexp.errors import RnnexpError, first_line, install_hint
from rnnexp.framework.settings import GROUPS

# Hydra plugins that come with an optional extra of rnnexp's (pyproject.toml)
EXTRAS = {"hydra/launcher/ray": "ray", "hydra/launcher/submitit_slurm": "slurm",
          "hydra/launcher/submitit_local": "slurm"}  # fmt: skip


class Refused(BaseException):  # noqa: N818
    """What stops a command from inside Hydra: a check that fails (its one line), or a sweep
    resumed by its own command line, which the command then launches (`relaunch`). rnnexp's
    one BaseException, because Hydra 1.3 turns a callback's Exception into a warning and goes
    on, and a task's into a traceback."""

    def __init__(self, line: str = "", relaunch: list[str] | None = None) -> None:
        super().__init__(line or " ".join(relaunch or []))
        self.relaunch = relaunch


def refusing(check: Callable) -> Callable:
    """A Hydra callback's method whose errors stop the command, each as one line."""

    @functools.wraps(check)
    def wrapped(self, config: Any, **kwargs: Any) -> None:
        try:
            check(self, config, **kwargs)
        except RnnexpError as e:
            raise Refused(str(e)) from None
        except config_errors() as e:  # composing a sweep's jobs
            raise Refused(one_line(e)) from None
        except Exception as e:  # what no check foresaw: still one line, and nothing runs
            raise Refused(f"{type(e).__name__}: {first_line(e)}") from None

    return wrapped


def config_errors() -> tuple[type[BaseException], ...]:
    """What composing a config raises for a mistake in it or in the command line."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException
    from yaml import YAMLError

    return HydraException, OmegaConfBaseException, YAMLError


_KINDS = {int: "a whole number", float: "a number", bool: "true or false"}  # by schema type


def one_line(e: BaseException) -> str:
    """Hydra's and OmegaConf's error (many lines, ending in a hint about stack traces) as one
    line that says what is valid, from the fields of their structured errors."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(e, MissingConfigException) and e.missing_cfg_file:
        group, _, name = e.missing_cfg_file.rpartition("/")
        extra = EXTRAS.get(e.missing_cfg_file)
        if extra:  # a plugin of an extra that is not installed
            return f"{group}={name} needs rnnexp's {extra} extra: {install_hint(extra)}"
        if e.options is not None and group:
            return f"unknown {group} {name!r}; valid: {', '.join(e.options)}"
    if isinstance(e, OverrideParseException):
        key, eq, value = (e.override or "").partition("=")
        quoted = f"{key}='{value}'" if eq else f"'{e.override}'"
        return (
            f"cannot read {e.override!r}: {first_line(e)}; for a value with spaces or special "
            f'characters, quote it for Hydra inside quotes for the shell: "{quoted}"'
        )
    mark = getattr(e, "problem_mark", None)  # YAML's syntax errors
    if mark is not None:
        return f"cannot read {mark.name} (line {mark.line + 1}): {e.context or ''} {e.problem}"
    # the OmegaConf error under Hydra's: its cause, or (a config file's) the one it met
    cause = next((c for c in (e.__cause__, e.__context__, e)
                  if isinstance(c, OmegaConfBaseException)), None)  # fmt: skip
    said = _value_problem(cause) if cause is not None else None
    if said and first_line(e).startswith("In '"):  # Hydra's own words: which config file
        return f"{first_line(e).partition(': ')[0]}: {said}"
    return said or first_line(e)


def _value_problem(cause) -> str | None:
    """A key that must be set, a value of the wrong type, or a key the schema does not
    have, named with what is valid (the error's key, value and schema: its object_type)."""
    import dataclasses
    import typing

    from omegaconf.errors import (
        ConfigAttributeError,
        ConfigKeyError,
        MissingMandatoryValue,
        ValidationError,
    )

    if isinstance(cause, MissingMandatoryValue):
        hint = " (corpus=file corpus.path=/path/to/text.txt)" * (cause.full_key == "corpus.path")
        return f"{cause.full_key} must be set{hint}"
    key, full, schema, parent = cause.key, cause.full_key, cause.object_type, cause.parent_node
    if not full:
        return None
    if dataclasses.is_dataclass(schema):
        fields = {f.name for f in dataclasses.fields(schema)}
    elif parent is not None:  # a free node (corpus.options): the keys it has
        fields = {str(k) for k in parent}
    else:
        return None
    if isinstance(cause, ValidationError) and key in fields:
        if cause.value is None:
            return f"{full} cannot be null: give a value"
        hint = typing.get_type_hints(schema)[key]
        kinds = [_KINDS[t] for t in (hint, *typing.get_args(hint)) if t in _KINDS]
        null = " or null" if type(None) in typing.get_args(hint) else ""
        return f"{full}={cause.value} is not {kinds[0] if kinds else 'of the right type'}{null}"
    if not isinstance(cause, ConfigKeyError | ConfigAttributeError):
        return None
    if full == "experiment":  # a preset's keys, without its header, land under experiment:
        return f"unknown key {key!r} (an experiment file starts with # @package _global_)"
    return unknown_key(full, fields)


def unknown_key(full: str, valid: set[str]) -> str:
    """`unknown key 'train.stepz'; valid keys of train: batch_size, ...`."""
    where = full.rpartition(".")[0]
    place = f"of {where}" if where else "at the top level"
    valid = valid | (set() if where else set(GROUPS))  # a group is a key (experiment=, search=)
    return f"unknown key '{full}'; valid keys {place}: {', '.join(sorted(valid))}"
