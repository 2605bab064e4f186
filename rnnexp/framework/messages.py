"""Hydra's, OmegaConf's and YAML's errors as one line that says what is valid: theirs span
many lines (a config search path, a stack of keys) and end in a hint about stack traces.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnnexp.errors import RnnexpError, first_line, install_hint
from rnnexp.framework.settings import GROUPS, override_key

# Hydra plugins that come with an optional extra of rnnexp's (pyproject.toml)
EXTRAS = {"hydra/sweeper/optuna": "search", "hydra/launcher/ray": "ray"}


class Refused(BaseException):  # noqa: N818
    """A command that fails its checks, as one line. A BaseException: Hydra 1.3 turns a
    callback's Exception into a warning and goes on."""


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


_TYPES = {"Integer": "a whole number", "Float": "a number", "bool": "true or false"}
# Hydra's messages that a line of rnnexp's says better: its pattern -> rnnexp's line
_HYDRA: dict[str, Callable[..., str]] = {
    r"Ambiguous value for argument '(.*)'": lambda line: (
        f"{line} is a sweep: add -m (--multirun) to run one job per value"
    ),
    r"Sweeping over Hydra's configuration is not supported : '(.*)'": lambda line: (
        f"{line}: Hydra cannot sweep its own keys; give a search space on the key itself "
        f"({override_key(line).removeprefix('hydra.sweeper.params.')}=...)"
    ),
    r"Additional config directory '(.*)' not found": lambda folder: (
        f"--config-dir {folder}: {'is not a folder' if Path(folder).exists() else 'no such folder'}"
    ),
}


def one_line(e: BaseException) -> str:
    """Hydra's and OmegaConf's error (many lines, ending in a hint about stack traces) as one
    line that says what is valid."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

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
    for pattern, line in _HYDRA.items():
        found = re.match(pattern, str(e))
        if found:
            return line(*found.groups())
    cause = e.__cause__ if isinstance(e.__cause__, OmegaConfBaseException) else e
    if isinstance(cause, MissingMandatoryValue):
        hint = " (corpus=file corpus.path=/path/to/text.txt)" * (cause.full_key == "corpus.path")
        return f"{cause.full_key} must be set{hint}"
    return _value_problem(cause) or _file_problem(cause)


def _value_problem(cause: BaseException) -> str | None:
    """A value of the wrong type, or a key the node does not have, named with what is valid."""
    from omegaconf.errors import ValidationError

    parent, key, full = (getattr(cause, a, None) for a in ("parent_node", "key", "full_key"))
    if parent is None or not full:
        return None
    if isinstance(cause, ValidationError) and key in parent:
        kind = next((n for word, n in _TYPES.items() if word in str(cause)), "of the right type")
        optional = " or null" if parent._get_node(key)._is_optional() else ""
        if cause.value is None:
            return f"{full} cannot be null: give a value"
        return f"{full}={cause.value} is not {kind}{optional}"
    if "not in" not in str(cause):
        return None
    return unknown_key(full, {str(k) for k in parent} - {"hydra"})


def unknown_key(full: str, valid: set[str]) -> str:
    """`unknown key 'train.stepz'; valid keys of train: batch_size, ...`."""
    where = full.rpartition(".")[0]
    place = f"of {where}" if where else "at the top level"
    valid = valid | (set() if where else set(GROUPS))  # a group is a key (experiment=, search=)
    return f"unknown key '{full}'; valid keys {place}: {', '.join(sorted(valid))}"


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
