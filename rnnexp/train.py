"""The training loop: next chunk, forward/backward, clip, update; hidden state carried.

A Trainer holds everything a step changes (parameters via the model, optimizer state,
stream position, hidden state, step count, smoothed loss), so a run can be inspected,
continued or saved between steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnnexp.data import Streams
from rnnexp.errors import ConfigError, RnnexpError
from rnnexp.model import CharRNN
from rnnexp.optim import SGD, Adagrad, clip_grads


class DivergedError(RnnexpError):
    """The loss became NaN or infinite; parameters are left at their last finite values."""


@dataclass(frozen=True)
class StepResult:
    step: int  # steps done, counting this one
    loss: float  # nats summed over the chunk's T characters, mean over the B streams
    loss_per_char: float  # loss / T
    smooth_loss: float  # min-char-rnn's running average of `loss`
    wrapped: bool  # the streams started over from the beginning of the text


class Trainer:
    def __init__(
        self,
        model: CharRNN,
        optimizer: SGD | Adagrad,
        train_ids: np.ndarray,
        *,
        seq_length: int,
        batch_size: int = 1,
        clip: float | None = 5.0,
    ):
        if clip is not None and (isinstance(clip, bool) or not clip > 0):
            raise ConfigError(
                f"train.clip must be a positive number or null (no clipping), got {clip!r}"
            )
        self.model = model
        self.optimizer = optimizer
        self.streams = Streams(train_ids, batch_size, seq_length)
        self.clip = clip
        self.hprev = model.zero_state(batch_size)
        self.grads = model.new_grads()  # filled in place every step
        self.step = 0
        # the notebooks' starting point: the loss of a uniform guess over the chunk
        self.smooth_loss = -math.log(1.0 / model.config.vocab_size) * seq_length

    def train_step(self) -> StepResult:
        inputs, targets, wrapped = self.streams.next()
        if wrapped:
            self.hprev = self.model.zero_state(self.streams.batch_size)
        loss, grads, hnext = self.model.loss_and_grads(inputs, targets, self.hprev, self.grads)
        if not math.isfinite(loss):
            raise DivergedError(
                f"loss is {loss} at step {self.step + 1}; lower optimizer.lr or clip"
            )
        clip_grads(grads, self.clip)
        self.optimizer.step(self.model.params, grads)
        self.hprev = hnext
        self.step += 1
        self.smooth_loss = 0.999 * self.smooth_loss + 0.001 * loss
        T = self.streams.seq_length
        return StepResult(self.step, loss, loss / T, self.smooth_loss, wrapped)

    def run(self, steps: int) -> list[StepResult]:
        """`steps` more steps; their results in order."""
        return [self.train_step() for _ in range(steps)]
