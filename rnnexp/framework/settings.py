"""The shape of an experiment's settings: every config key and its type, as plain dataclasses.

The entrypoint registers `Settings` as the schema of conf/config.yaml, so a misspelled key
or a value of the wrong type fails before anything runs. The YAML files hold every default
(and say why); these classes hold none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnnexp.config import ModelConfig


@dataclass
class CorpusSettings:
    name: str
    path: str | None  # corpus=file only
    max_chars: int | None
    val_fraction: float
    options: dict[str, Any]  # the generator's keywords, for generated corpora


@dataclass
class OptimizerSettings:
    name: str  # sgd | adagrad
    lr: float


@dataclass
class TrainSettings:
    steps: int
    seq_length: int
    batch_size: int
    clip: float | None
    diverge_factor: float | None
    eval_every: int
    eval_streams: int
    sample_every: int
    sample_length: int
    log_every: int
    checkpoint_every: int


@dataclass
class SampleSettings:
    temperature: float
    prime: str


@dataclass
class TrackingSettings:
    uri: str | None
    experiment: str


@dataclass
class Settings:
    seed: int
    threads: int | None  # BLAS threads; None: decided by the launch (Launch.threads)
    resume: str | None  # a run's output folder or MLflow run id to continue
    model: ModelConfig  # rnnexp/model.py: the model is described once
    corpus: CorpusSettings
    optimizer: OptimizerSettings
    train: TrainSettings
    sample: SampleSettings
    tracking: TrackingSettings


def override_key(override: str) -> str:
    """The dotted key a command-line override sets: `+train.steps=5` -> `train.steps`."""
    return override.split("=", 1)[0].lstrip("+~")
