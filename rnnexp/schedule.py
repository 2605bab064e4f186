"""Learning-rate schedules: the rate of each step as a function of the step alone, so a resumed
run takes exactly the rates it would have taken (nothing to checkpoint).

    constant     lr at every step
    epoch_decay  char-rnn's: lr * decay^k, k the passes over the training text completed
                 since pass `after_epochs` (char-rnn: learning_rate_decay 0.97 after 10)
    cosine       nanoGPT's: linear warmup over `warmup_steps`, then a half cosine from lr down
                 to lr * min_lr_ratio at the last step (train.steps)
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

from rnnexp.errors import ConfigError, check_interval, check_keys, check_whole

Schedule = Callable[[int], float]  # step index t (0 for the first step) -> learning rate


def constant(lr: float, steps: int, steps_per_epoch: int) -> Schedule:
    return lambda t: lr


def epoch_decay(
    lr: float, steps: int, steps_per_epoch: int, decay: float = 0.97, after_epochs: int = 10
) -> Schedule:
    """char-rnn's train.lua: at the end of each pass over the text from pass `after_epochs`
    on, the rate is multiplied by `decay`."""
    decay = check_interval("schedule.decay", decay, 0, 1, low_closed=False, high_closed=True)
    after_epochs = check_whole("schedule.after_epochs", after_epochs, 0)

    first = max(1, after_epochs)  # the first pass whose end decays the rate

    def rate(t: int) -> float:
        done = t // steps_per_epoch  # passes completed before step t
        return lr * decay ** (done - first + 1) if done >= first else lr

    return rate


def cosine(
    lr: float, steps: int, steps_per_epoch: int, warmup_steps: int = 100, min_lr_ratio: float = 0.1
) -> Schedule:
    """nanoGPT's get_lr, decaying over the run's train.steps."""
    warmup_steps = check_whole("schedule.warmup_steps", warmup_steps, 0)
    min_lr = lr * check_interval("schedule.min_lr_ratio", min_lr_ratio, 0, 1, high_closed=True)

    def rate(t: int) -> float:
        if t < warmup_steps:
            return lr * (t + 1) / (warmup_steps + 1)
        if t >= steps:
            return min_lr
        progress = (t - warmup_steps) / max(1, steps - warmup_steps)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)

    return rate


SCHEDULES = {"constant": constant, "epoch_decay": epoch_decay, "cosine": cosine}


def make_schedule(name: str, lr: float, steps: int, steps_per_epoch: int, **options) -> Schedule:
    """The schedule `name` for a run of `steps` steps, `steps_per_epoch` of them per pass over
    the training text, starting from the optimizer's lr."""
    if name not in SCHEDULES:
        raise ConfigError(f"unknown schedule {name!r}; valid: {', '.join(sorted(SCHEDULES))}")
    keys = list(inspect.signature(SCHEDULES[name]).parameters)[3:]  # after lr, steps, epoch
    check_keys("schedule", name, keys, options)
    return SCHEDULES[name](lr, steps, steps_per_epoch, **options)
