"""User-facing errors: a mistake in what the user asked for, reported as one clear line.

Anything else that is raised is a bug and keeps its traceback.
"""

import math
import numbers


class RnnexpError(Exception):
    """A user mistake (bad config value, unusable corpus, …); the message says what to change."""


def install_hint(extra: str) -> str:
    """The command that installs an optional part of rnnexp (pyproject.toml's extras)."""
    return f'pip install "rnnexp[{extra}]"'


def first_line(e: BaseException) -> str:
    """The first line of an exception's text (its type's name when it has none): what a
    one-line error quotes of a library's many-line message."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def disk_problem(e: OSError) -> str:
    """An OSError of a file being written, said as what it means: its reason and where, the
    temporary folder named as $TMPDIR when it is there (a full /tmp is not a full disk)."""
    import tempfile
    from pathlib import Path

    words = e.strerror or str(e)
    tmp = tempfile.gettempdir()
    if e.filename and Path(str(e.filename)).is_relative_to(tmp):
        return f"{words} in the temporary folder {tmp} (TMPDIR: set it to a folder with room)"
    return f"{words} ({e.filename})" if e.filename else words


class ConfigError(RnnexpError, ValueError):
    """A hyperparameter or option that cannot work."""


def check_interval(
    name: str, value, low: float, high: float, *, low_closed: bool = True, high_closed: bool = False
) -> float:
    """A finite number (not a bool) between low and high, ends included as asked, as a float;
    else one line: `optimizer.decay must be a number in [0, 1), got 1.0`."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    above = low <= value if low_closed else low < value
    below = value <= high if high_closed else value < high
    if not (ok and above and below):
        interval = f"{'[' if low_closed else '('}{low:g}, {high:g}{']' if high_closed else ')'}"
        raise ConfigError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def check_whole(name: str, value, least: int) -> int:
    """A whole number (not a bool) >= least; else one line: `inspect.units must be a whole
    number >= 1, got 0`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ConfigError(f"{name} must be a whole number >= {least}, got {value!r}")
    return int(value)


def check_fits(what: str, need: int) -> None:
    """Refuse, before allocating, what needs more bytes than this machine's memory (sizes
    are computed by arithmetic on Python ints: a 20-digit value costs nothing to refuse)."""
    import os

    have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if need > have:
        raise ConfigError(
            f"{what}: about {_gib(need)} GiB, more than this machine's {_gib(have)} GiB"
        )


def _gib(n: int) -> str:
    gib = n / 2**30
    return f"{gib:,.1f}" if gib < 1e6 else f"{gib:.1e}"


def check_keys(node: str, name: str, keys: list[str], given: dict) -> None:
    """Refuse a key that option `name` of a config group does not take, naming its keys:
    `optimizer.beta1 is not a key of sgd (its keys: lr)`."""
    unknown = sorted(set(given) - set(keys))
    if unknown:
        its = ", ".join(keys) or "none"
        raise ConfigError(f"{node}.{unknown[0]} is not a key of {name} (its keys: {its})")


class CorpusError(RnnexpError):
    """A corpus that cannot be read, downloaded, verified or cut into sequences."""
