"""Learning-rate schedules: the rate of each step as a function of the step alone, so a resumed
run takes exactly the rates it would have taken (nothing to checkpoint).

    constant     lr at every step
    epoch_decay  char-rnn's: lr * decay^k, k the passes over the training text completed
                 since pass `after_epochs` (char-rnn: learning_rate_decay 0.97 after 10)
    cosine       nanoGPT's: linear warmup over `warmup_steps`, then a half cosine from lr down
                 to lr * min_lr_ratio at the last step (train.steps)

Each is a dataclass whose fields are its keys (what conf/schedule/NAME.yaml sets, and the
schema Hydra checks it against), checked once when it is made; `rates` gives the function of
the step for a run of `steps` steps from the optimizer's lr. That function also takes the
run's length as a second argument, for a run whose length is a time budget (train.schedule_over
=seconds: the framework passes the steps the budget holds at the speed so far).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from rnnexp.errors import ConfigError, check_interval, check_whole
from rnnexp.resources import option_values

# step index t (0 for the first step) [, the run's length in steps] -> learning rate
Rates = Callable[..., float]


@dataclass
class Constant:
    """The optimizer's lr at every step (min-char-rnn, the notebooks)."""

    name: str = field(default="constant", init=False)  # the option's own name (fixed)

    def rates(self, lr: float, steps: int, steps_per_epoch: int) -> Rates:
        return lambda t, steps=steps: lr


@dataclass
class EpochDecay:
    """char-rnn's train.lua: at the end of each pass over the text from pass `after_epochs`
    on, the rate is multiplied by `decay`."""

    decay: float
    after_epochs: int
    name: str = field(default="epoch_decay", init=False)  # the option's own name (fixed)

    def __post_init__(self) -> None:
        check_interval("schedule.decay", self.decay, 0, 1, low_closed=False, high_closed=True)
        check_whole("schedule.after_epochs", self.after_epochs, 0)

    def rates(self, lr: float, steps: int, steps_per_epoch: int) -> Rates:
        first = max(1, self.after_epochs)  # the first pass whose end decays the rate

        def rate(t: int, steps: int = steps) -> float:
            done = t // steps_per_epoch  # passes completed before step t
            return lr * self.decay ** (done - first + 1) if done >= first else lr

        return rate


@dataclass
class Cosine:
    """nanoGPT's get_lr, decaying over the run's train.steps (or what its time budget holds)."""

    warmup_steps: int
    min_lr_ratio: float
    name: str = field(default="cosine", init=False)  # the option's own name (fixed)

    def __post_init__(self) -> None:
        check_whole("schedule.warmup_steps", self.warmup_steps, 0)
        check_interval("schedule.min_lr_ratio", self.min_lr_ratio, 0, 1, high_closed=True)

    def rates(self, lr: float, steps: int, steps_per_epoch: int) -> Rates:
        warmup, min_lr = self.warmup_steps, lr * self.min_lr_ratio

        def rate(t: int, steps: int = steps) -> float:
            if t < warmup:
                return lr * (t + 1) / (warmup + 1)
            if t >= steps:
                return min_lr
            progress = (t - warmup) / max(1, steps - warmup)
            return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)

        return rate


Schedule = Constant | EpochDecay | Cosine
SCHEDULES = {"constant": Constant, "epoch_decay": EpochDecay, "cosine": Cosine}
"""Each learning-rate schedule's settings dataclass by name, as `schedule=` chooses it."""


def make_schedule(name: str, lr: float, steps: int, steps_per_epoch: int, **values) -> Rates:
    """The rates of schedule `name` (its keys as conf/schedule/NAME.yaml sets them, but those
    in `values`) for a run of `steps` steps, `steps_per_epoch` of them per pass over the
    training text, starting from the optimizer's lr: a function of the step.

    Examples:
        >>> rate = make_schedule("cosine", lr=0.01, steps=1000, steps_per_epoch=100)
        >>> [round(rate(t), 5) for t in (0, 100, 550, 1000)]
        [0.0001, 0.01, 0.0055, 0.001]
    """
    if name not in SCHEDULES:
        raise ConfigError(f"unknown schedule {name!r}; valid: {', '.join(sorted(SCHEDULES))}")
    schedule = SCHEDULES[name](**option_values("schedule", name, SCHEDULES[name], values))
    return schedule.rates(lr, steps, steps_per_epoch)
