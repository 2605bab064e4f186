"""The Trainer: one training step at a time (next chunk, forward/backward, clip, update),
the hidden state carried from step to step. The loop around it, with metrics, evaluation and
checkpoints, is a run's (rnnexp/framework/loop.py).

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
from rnnexp.optim import Optimizer, clip_grads
from rnnexp.schedule import Rates


def check_train_args(clip: float | None, diverge_factor: float | None) -> None:
    """The Trainer's own hyperparameters, checked: also run up front for every sweep job."""
    if clip is not None and (isinstance(clip, bool) or not clip > 0):
        raise ConfigError(f"train.clip must be > 0 or null (no clipping), got {clip!r}")
    if diverge_factor is not None and not diverge_factor > 1:
        raise ConfigError(f"train.diverge_factor must be > 1 or null, got {diverge_factor!r}")


def _first_step_hint(step: int, model: CharRNN) -> str:
    """Before any update, the initial weights are to blame, not the rate."""
    if step > 1:
        return ""
    scale = model.config.init_scale
    return f"; at step 1, before any update: the initial weights, model.init_scale={scale:g}"


class DivergedError(RnnexpError):
    """Training blew up: a NaN or infinite loss (parameters are left at their values before
    that step), or a loss per character that stays far above the uniform guess ln V."""


@dataclass(frozen=True)
class StepResult:
    """What one training step reports: its losses and the learning rate it used."""

    step: int  # steps done, counting this one
    loss: float  # nats summed over the chunk's T characters, mean over the B streams
    loss_per_char: float  # loss / T
    smooth_loss: float  # min-char-rnn's running average of `loss`
    wrapped: bool  # the streams started over from the beginning of the text
    lr: float  # the learning rate of this step's update


class Trainer:
    """Trains a model on a text, a step at a time: B streams of T characters, BPTT through
    the chunk, clip, update (min-char-rnn's loop, batched as char-rnn's).

    Examples:
        >>> model = CharRNN(preset("rnn", 3, 16), np.random.default_rng(0))
        >>> ids = Vocab("abc").encode("abc" * 200)
        >>> results = Trainer(model, make_optimizer("adagrad"), ids, seq_length=10).run(300)
        >>> results[-1].loss_per_char < 0.01  # nats/char: "abc" repeated is learned
        True
    """

    def __init__(
        self,
        model: CharRNN,
        optimizer: Optimizer,
        train_ids: np.ndarray,
        *,
        seq_length: int,
        batch_size: int = 1,
        clip: float | None = 5.0,
        diverge_factor: float | None = 3.0,
        schedule: Rates | None = None,
        rng: np.random.Generator | None = None,
    ):
        """diverge_factor: stop with DivergedError once the running average of the loss per
        character (decay 0.9 per step, so a few steps of blow-up, not one spike) exceeds
        diverge_factor * ln V, the uniform guess; None turns the check off. A stable softmax
        keeps even absurd logits finite, so a blown-up run need never produce a NaN.
        schedule: the learning rate of step t (rnnexp/schedule.py); None: the optimizer's.
        rng: draws the dropout masks when the model has dropout (the run's one generator)."""
        check_train_args(clip, diverge_factor)
        self.model = model
        self.optimizer = optimizer
        self.streams = Streams(train_ids, batch_size, seq_length)
        self.schedule = schedule
        # the steps the schedule decays over when the run's length is not the schedule's own
        # (a time budget: set before each step by whoever keeps the time); None: its own
        self.horizon: int | None = None
        self.rng = rng
        if model.config.dropout and rng is None:
            raise ValueError("a model with dropout trains with an rng for its masks")
        self.clip = clip
        self.diverge_factor = diverge_factor
        uniform = math.log(model.config.vocab_size)
        self.diverge_at = None if diverge_factor is None else diverge_factor * max(uniform, 1.0)
        self.recent_loss = uniform  # running average of the loss per character
        self.hprev = model.zero_state(batch_size)
        self.grads = model.new_grads()  # filled in place every step
        self.step = 0
        # the notebooks' starting point: the loss of a uniform guess over the chunk
        self.smooth_loss = -math.log(1.0 / model.config.vocab_size) * seq_length

    def train_step(self) -> StepResult:
        inputs, targets, wrapped = self.streams.next()
        if wrapped:
            self.hprev = self.model.zero_state(self.streams.batch_size)
        if self.schedule is not None:  # a function of the step alone: resumes exactly
            self.optimizer.lr = (self.schedule(self.step) if self.horizon is None
                                 else self.schedule(self.step, self.horizon))  # fmt: skip
        loss, grads, hnext = self.model.loss_and_grads(
            inputs, targets, self.hprev, self.grads, self.rng
        )
        if not math.isfinite(loss):
            hint = _first_step_hint(self.step + 1, self.model)
            raise DivergedError(
                f"loss is {loss} at step {self.step + 1}; lower optimizer.lr or clip{hint}"
            )
        clip_grads(grads, self.clip)
        self.optimizer.step(self.model.params, grads)
        self.hprev = hnext
        self.step += 1
        self.smooth_loss = 0.999 * self.smooth_loss + 0.001 * loss
        T = self.streams.seq_length
        self.recent_loss = 0.9 * self.recent_loss + 0.1 * loss / T
        if self.diverge_at is not None and self.recent_loss > self.diverge_at:
            hint = _first_step_hint(self.step, self.model)
            raise DivergedError(
                f"loss per character averages {self.recent_loss:.3g} nats at step {self.step}, "
                f"over {self.diverge_factor:g}x the uniform "
                f"guess ln V = {math.log(self.model.config.vocab_size):.2f}: the run has blown up; "
                f"lower optimizer.lr (or clip harder with sgd){hint}"
            )
        return StepResult(self.step, loss, loss / T, self.smooth_loss, wrapped, self.optimizer.lr)

    def check_validation(self, loss: float) -> None:
        """Raise DivergedError if a validation loss per character is not finite or tops the
        same bound as the training loss: a model can fit its training text and blow up on
        text it has not seen (76 nats/char in a search's trial)."""
        if self.diverge_at is not None and not loss <= self.diverge_at:
            raise DivergedError(
                f"val/loss is {loss:.3g} nats/char at step {self.step}, over "
                f"{self.diverge_factor:g}x the uniform guess ln V = "
                f"{math.log(self.model.config.vocab_size):.2f}: the run has blown up on the "
                f"validation text; lower optimizer.lr"
            )

    def check_finite(self) -> None:
        """Raise DivergedError if any parameter is NaN or infinite (one pass over them all)."""
        if not np.isfinite(self.model.params.flat).all():
            bad = [k for k, v in self.model.params.items() if not np.isfinite(v).all()]
            raise DivergedError(f"parameters {', '.join(bad)} are not finite at step {self.step}")

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything a step changes, as arrays under flat names: with the model's config and
        the same data, load_state_dict continues the run exactly where it was."""
        state = {f"param.{k}": v.copy() for k, v in self.model.params.items()}
        state |= {f"opt.{k}": v for k, v in self.optimizer.state_dict().items()}
        state |= {f"h.{i}": h.copy() for i, h in enumerate(self.hprev)}  # h (and c) per layer
        state["scalars"] = np.array(
            [self.step, self.streams.pos, self.smooth_loss, self.recent_loss]
        )
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.model.params = {k[6:]: v for k, v in state.items() if k.startswith("param.")}
        self.optimizer.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("opt.")})
        hprev = [state[f"h.{i}"] for i in range(len(self.hprev))]  # every carried part
        if any(h.shape != s.shape for h, s in zip(hprev, self.hprev, strict=True)):
            raise ValueError("hidden states do not match the batch size and model")
        self.hprev = [h.astype(self.model.dtype) for h in hprev]
        step, pos, smooth, recent = state["scalars"].tolist()
        self.step, self.streams.pos = int(step), int(pos)
        self.smooth_loss, self.recent_loss = smooth, recent

    def run(self, steps: int) -> list[StepResult]:
        """`steps` more steps; their results in order."""
        return [self.train_step() for _ in range(steps)]
