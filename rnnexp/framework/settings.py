"""The shape of an experiment's settings: every config key and its type, as plain dataclasses.

The entrypoint registers `Settings` as the schema of conf/config.yaml: a misspelled key or a
value of the wrong type fails before anything runs, and each class checks its values when made
(`__post_init__`), once, with the rule the code that uses it shares. The YAML files hold every
default (and say why); these classes none, but None for a key another option of the group uses,
and for a key added later the value runs saved before it ran with (their folders still resume).
A password in a store's URI is refused (on the command line too), and masked wherever shown.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse

from rnnexp.config import MODEL_CONFIGS, ModelConfig, step_bytes
from rnnexp.data import check_val_fraction
from rnnexp.errors import ConfigError, RnnexpError, check_fits, check_whole
from rnnexp.evaluate import CHUNK as EVAL_CHUNK
from rnnexp.framework.study import NO_PRUNING, PruneSettings
from rnnexp.optim import OPTIMIZERS, OptimizerConfig
from rnnexp.sample import check_length, check_temperature
from rnnexp.schedule import SCHEDULES
from rnnexp.trainer import check_train_args

GROUPS = ("model", "corpus", "optimizer", "schedule", "experiment", "search", "prune")  # conf/'s
EVAL_POINTS = 10  # periodic val/loss points of a run by default: a curve in every run and sweep
MAX_THREADS = 1024  # more BLAS threads than any machine has cores: a typo


@dataclass
class CorpusSettings:
    name: str
    path: str | None  # corpus=file only
    max_chars: int | None
    val_fraction: float
    options: dict[str, Any]  # the generator's keywords, for generated corpora

    def __post_init__(self) -> None:
        check_val_fraction(self.val_fraction)  # the rule split() applies
        if self.max_chars is not None:
            check_whole("corpus.max_chars", self.max_chars, 1)


@dataclass
class TrainSettings:
    steps: int
    max_seconds: float | None  # stop after this much training time too (evaluation excluded)
    seq_length: int
    batch_size: int
    clip: float | None
    diverge_factor: float | None
    # steps between periodic val/loss; None: a tenth of train.steps (of train.max_seconds'
    # training time when set), so every run's curve has EVAL_POINTS points whatever its length
    eval_every: int | None
    eval_streams: int
    sample_every: int
    sample_length: int
    log_every: int
    checkpoint_every: int
    # characters each periodic evaluation reads; None: the whole split (what a run saved
    # before the key existed did)
    eval_chars: int | None = None
    # the schedule's length: "steps" (train.steps; a rerun to the bit) or "seconds" (the steps
    # train.max_seconds holds at the speed so far, each step); "steps" before the key existed
    schedule_over: str = "steps"
    patience: int | None = None  # periodic evaluations without a new best before it stops

    def __post_init__(self) -> None:
        keys = ("steps", "seq_length", "batch_size", "eval_streams", "log_every")
        for key in (*keys, "sample_length", "checkpoint_every"):
            check_whole(f"train.{key}", getattr(self, key), 1)
        for key in ("eval_every", "patience", "eval_chars"):
            if getattr(self, key) is not None:
                check_whole(f"train.{key}", getattr(self, key), 1)
        check_length("train.sample_length", self.sample_length)  # the rule sample() applies
        check_whole("train.sample_every", self.sample_every, 0)  # 0: no samples
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ConfigError(f"train.max_seconds must be > 0 or null, got {self.max_seconds}")
        if self.schedule_over not in ("steps", "seconds"):
            raise ConfigError(f"train.schedule_over is steps or seconds, got "
                              f"{self.schedule_over!r}")  # fmt: skip
        if self.schedule_over == "seconds" and self.max_seconds is None:
            raise ConfigError("train.schedule_over=seconds runs the schedule over "
                              "train.max_seconds: set it")  # fmt: skip
        check_train_args(self.clip, self.diverge_factor)  # the Trainer's own rule

    def eval_period(self) -> int:
        """Steps between periodic evaluations (by train.steps when they go by time)."""
        return self.eval_every or max(1, self.steps // EVAL_POINTS)

    def marks(self) -> tuple[int, int]:
        """A run's first periodic evaluation and its end, in `progress`'s unit."""
        if self.max_seconds is None:
            return self.eval_period(), self.steps
        return max(1, int(self.max_seconds / EVAL_POINTS)), max(1, int(self.max_seconds))

    def progress(self, step: int, seconds: float) -> int:
        """A pruner's measure of a run: its step, or on train.max_seconds its training seconds."""
        return step if self.max_seconds is None else int(seconds)

    def evaluates(self, step: int, seconds_before: float, seconds_after: float) -> bool:
        """Whether a periodic val/loss is due after `step`, which took the training time from
        `seconds_before` to `seconds_after`: every train.eval_every steps, or by default at
        each tenth of the run (of train.steps; of train.max_seconds when that is set)."""
        if self.eval_every is not None or self.max_seconds is None:
            return step % self.eval_period() == 0
        period = self.max_seconds / EVAL_POINTS
        return seconds_after // period > seconds_before // period


@dataclass
class SampleSettings:
    temperature: float
    prime: str

    def __post_init__(self) -> None:
        check_temperature(self.temperature)  # the rule sample() applies


@dataclass
class InspectSettings:
    enabled: bool  # inspect.html (and gate_saturation.png) at the end of every run
    length: int  # characters of the validation split inspected, from its start
    units: int  # K: the most interpretable units drawn one by one

    def __post_init__(self) -> None:
        for key in ("length", "units"):
            check_whole(f"inspect.{key}", getattr(self, key), least=1)


@dataclass
class TrackingSettings:
    enabled: bool  # False: no MLflow run (NullRun), no store opened
    uri: str | None
    experiment: str
    register: str | None  # a registered model's name: the run's model (a sweep's best) joins it
    # MLflow's system/* metrics (CPU, memory, ...) while it runs; False in runs saved before it
    system_metrics: bool = False

    def __post_init__(self) -> None:
        if not self.experiment.strip():
            raise ConfigError("tracking.experiment must be a name, got ''")
        name = self.register
        # MLflow's rule for a model's name, which it may use as a path: no '/', ':', '.', '..x'
        if name is not None and (not name.strip() or "/" in name or ":" in name
                                 or posixpath.normpath(name) != name or name.startswith("..")
                                 or name == "."):  # fmt: skip
            raise ConfigError(f"tracking.register must be a model name without '/' or ':' that "
                              f"does not start with '..', got {name!r}")  # fmt: skip
        if name is not None and not self.enabled:
            raise ConfigError("tracking.register needs tracking.enabled=true: it registers in "
                              "MLflow")  # fmt: skip
        check_no_password(self.uri)


@dataclass
class Settings:
    seed: int
    threads: int | None  # BLAS threads; None: decided by the launch (Launch.threads)
    resume: str | None  # a run's output folder or MLflow run id to continue
    model: ModelConfig  # rnnexp/model.py: the model is described once
    corpus: CorpusSettings
    optimizer: OptimizerConfig  # the chosen kind's own dataclass (rnnexp/optim.py): its keys
    schedule: Any  # the chosen one's own dataclass (rnnexp/schedule.py): its keys alone
    train: TrainSettings
    sample: SampleSettings
    inspect: InspectSettings
    tracking: TrackingSettings
    prune: PruneSettings = field(default_factory=lambda: PruneSettings(*NO_PRUNING))  # study.py

    def __post_init__(self) -> None:
        """What no single node can check: each option's node is the option it names (no sgd
        run as optimizer.name=adam); the sizes of a step, an evaluation and an inspection."""
        for group, (key, options) in OPTIONS.items():
            node, named = getattr(self, group), getattr(getattr(self, group), key)
            if options.get(named) is not type(node):
                raise ConfigError(f"{group}.{key}={named} in a {type(node).__name__}: choose "
                                  f"the {group} with {group}={named}")  # fmt: skip
        check_whole("seed", self.seed, 0)
        if self.threads is not None and not 1 <= self.threads <= MAX_THREADS:
            raise ConfigError(f"threads must be a whole number in [1, {MAX_THREADS}] or null "
                              f"(automatic), got {self.threads}")  # fmt: skip
        if self.resume is not None and not str(self.resume).strip():  # an unset $RUN, say
            raise ConfigError("resume= is empty: name a run's folder or MLflow run id")
        self.check_sizes()

    def check_sizes(self, vocab: int = 256) -> None:
        """That one training step, an evaluation's chunk and the inspection's trace fit, by
        arithmetic before any allocation, for `vocab` symbols (build.py checks the corpus's)."""
        t, m = self.train, self.model
        for what, batch, length in (
            (f"train.batch_size={t.batch_size} x train.seq_length={t.seq_length}", t.batch_size,
             t.seq_length),
            (f"train.eval_streams={t.eval_streams}", t.eval_streams, EVAL_CHUNK),
            (f"inspect.length={self.inspect.length}", 1, self.inspect.length),
        ):  # fmt: skip
            check_fits(f"{what} for {m.name or m.cell} H{m.hidden_size} x{m.layers} and "
                       f"{vocab:,} symbols", step_bytes(m, batch, length, vocab))  # fmt: skip


# each group whose options have keys of their own: the option's dataclass, by the key that
# names it in the node (conf/GROUP/NAME.yaml names its schema: /GROUP_NAME)
OPTIONS = {"model": ("cell", MODEL_CONFIGS), "optimizer": ("name", OPTIMIZERS),
           "schedule": ("name", SCHEDULES)}  # fmt: skip


def schema_of(saved: dict) -> dict[str, type]:
    """Each group's dataclass in a saved config (.hydra/config.yaml): it reads back typed."""
    return {group: options[saved[group][key]] for group, (key, options) in OPTIONS.items()}


# query parameters that carry a secret (libpq's, SQLAlchemy's, MySQL drivers')
SECRET_KEYS = re.compile(r"(?i)^(password|passwd|pwd|sslpassword|token|secret|access_token)$")


def redact(uri: str) -> str:
    """The URI with its password, if any, shown as *** (as MLflow and SQLAlchemy print them),
    in the user part or a query parameter (`?password=...`)."""
    try:
        parts = _parse(uri)
    except RnnexpError:
        return "(the tracking URI, unparsable)"
    head, mark, query = uri.partition("?")  # edited as given: urlparse's round trip drops slashes
    if parts.password is not None:
        head = head.replace(f":{parts.password}@", ":***@", 1)
    pairs = [pair.partition("=") for pair in query.split("&")] if mark else []
    hidden = [(k, eq, "***" if eq and SECRET_KEYS.match(unquote(k)) else v) for k, eq, v in pairs]
    return head + mark + "&".join("".join(pair) for pair in hidden)


def check_no_password(uri: str | None, key: str = "tracking.uri") -> None:
    """A password in a store's URI (`key`) would be recorded (the config, the run's params,
    Hydra's files): refused, in one line that says where a password goes instead."""
    if uri is None:
        return
    parts = _parse(uri, key)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if parts.password is not None or any(SECRET_KEYS.match(k) for k, _ in query):
        raise RnnexpError(f"{key} {redact(uri)} holds a password, which would be recorded: give "
                          f"the URI without it, and the password in MLFLOW_TRACKING_PASSWORD (an "
                          f"MLflow server), or PGPASSWORD or ~/.pgpass (PostgreSQL)")  # fmt: skip


def _parse(uri: str, key: str = "tracking.uri"):
    """urlparse, its error one line that does not repeat the URI (it may hold a password)."""
    try:
        parts = urlparse(uri)
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError as e:
        raise RnnexpError(f"{key} is not a valid URI: {e}") from None
    return parts


def check_command_line(argv: list[str]) -> None:
    """tracking.uri on the command line, and $MLFLOW_TRACKING_URI, hold no password (before
    Hydra records the command line anywhere), and a sweep has one store."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    check_no_password(os.environ.get("MLFLOW_TRACKING_URI"))
    for arg, key in zip(argv, map(override_key, argv), strict=True):
        if key not in ("tracking.uri", "hydra.sweeper.storage"):
            continue
        try:  # each value may hold a password: a sweep is refused before any is read
            sweep = OverridesParser.create().parse_override(arg).is_sweep_override()
        except Exception:  # not Hydra's grammar: Hydra says so, once its password is refused
            sweep = False
        if sweep:
            raise RnnexpError(f"a sweep lives in one store: give {key} one value")
        check_no_password(arg.partition("=")[2].strip("'\""), key)


def override_key(override: str) -> str:
    """The dotted key a command-line override sets: `+train.steps=5` -> `train.steps`."""
    return override.split("=", 1)[0].lstrip("+~")


def typed_overrides(hydra: Any, kind: str = "task") -> list[str]:
    """The command line's overrides (`kind`: task or hydra) in a config's `hydra` node, as
    typed: one may hold a ${...} only a job resolves (hydra.sweep.subdir=${hydra.job.num})."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(hydra.overrides[kind], resolve=False)


def yaml_value(value: object) -> str:
    """A value as the config and the command line spell it: null, true, false, 0.01."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return str(value)


def quote(value: str) -> str:
    """`value` as a quoted string of Hydra's override grammar, taken literally."""
    value = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), value)
    return "'" + value.replace("${", "\\${") + "'"
