"""A run's training: the Trainer's steps (rnnexp/trainer.py) with metrics at their
intervals, evaluation, samples and checkpoints. Ctrl-C or SIGTERM finishes the current step
and writes a checkpoint before the run stops (a second Ctrl-C stops at once), so `resume=`
continues it exactly.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from rnnexp.evaluate import evaluate
from rnnexp.sample import sample

log = logging.getLogger("rnnexp")


@dataclass
class LoopState:
    """The loop's own bookkeeping, saved with each checkpoint (JSON)."""

    window_loss: float = 0.0  # sum of loss/char since the last train/loss point
    window_steps: int = 0
    window_time: float = 0.0
    val_loss: float = math.nan
    best_val_loss: float = math.inf  # the lowest val/loss so far, and its step
    best_step: int = 0
    train_time: float = 0.0  # seconds in training steps so far (what train.max_seconds counts)
    stopped_by: str = ""  # why training ended: "steps" or "max_seconds"
    limits: dict = field(default_factory=dict)  # train.steps, max_seconds the run trains to
    eval_time: float = 0.0
    sample_time: float = 0.0
    train: list = field(default_factory=list)  # (step, train/loss) for the loss curve
    val: list = field(default_factory=list)  # (step, val/loss)

    def to_json(self) -> dict:
        return asdict(self)


class Interrupted(KeyboardInterrupt):
    """Training stopped by a signal after a finished step and a written checkpoint."""

    def __init__(self, signum: int, step: int):
        super().__init__(f"{signal.Signals(signum).name} at step {step}")
        self.signum = signum


@contextmanager
def deferred_interrupts() -> Iterator[dict]:
    """Within: SIGINT and SIGTERM only set flag["signum"]; the loop stops between steps. A
    second Ctrl-C raises at once. Signal handlers exist only in the main thread."""
    flag: dict = {"signum": None}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["signum"] == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: stop now
        flag["signum"] = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def train_loop(
    s, b, tracked, state: LoopState, checkpoint: Callable[[LoopState], None], interrupt: dict,
    save_best: Callable[[], None] = lambda: None,
) -> float:  # fmt: skip
    """Train b.trainer from its current step to s.train.steps; return the last val loss.
    `checkpoint(state)` is called every train.checkpoint_every steps, at the end and on an
    interrupt (`interrupt["signum"]` set by deferred_interrupts), always between steps;
    `save_best()` after each evaluation that beats every earlier one."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    t, trainer = s.train, b.trainer
    chars_per_step = t.batch_size * t.seq_length
    # no prime: start where every training stream starts, a zero state and the first
    # character; a random first character is a start the model may never have seen
    prime = s.sample.prime or b.corpus.text[0]
    # side-by-side streams make evaluation one batched pass; each reads >= 1000 characters,
    # so the zero-state start of each costs little (a short split is read as one stream)
    eval_streams = max(1, min(t.eval_streams, len(b.val_ids) // 1000))
    first = trainer.step + 1
    bar = tqdm(total=t.steps, initial=trainer.step, unit="step",
               disable=not sys.stderr.isatty(), dynamic_ncols=True)  # fmt: skip
    loop_start = time.perf_counter()
    with bar, logging_redirect_tqdm():
        for step in range(first, t.steps + 1):
            start = time.perf_counter()
            r = trainer.train_step()
            took = time.perf_counter() - start
            state.window_time += took
            state.train_time += took
            state.window_loss += r.loss_per_char
            state.window_steps += 1
            out_of_time = t.max_seconds is not None and state.train_time >= t.max_seconds
            last = step == t.steps or out_of_time
            if last:
                state.stopped_by = "max_seconds" if out_of_time else "steps"
            if step % t.log_every == 0 or last:
                trainer.check_finite()  # a NaN weight shows in the loss late, if ever
                loss = state.window_loss / state.window_steps
                rate = state.window_steps * chars_per_step / state.window_time
                metrics = {
                    "train/loss": loss,
                    "train/smooth_loss": r.smooth_loss,  # min-char-rnn's: nats per chunk
                    "train/smooth_loss_per_char": r.smooth_loss / t.seq_length,  # comparable
                    "train/lr": r.lr,  # of the window's last step (schedule=...)
                }
                tracked.log_metrics(metrics | {"perf/chars_per_s": rate}, step)
                state.train.append((step, loss))
                bar.set_postfix(loss=f"{loss:.3f}", chars_s=f"{rate:,.0f}")
                state.window_loss, state.window_steps, state.window_time = 0.0, 0, 0.0
            if step % t.eval_every == 0 or last:
                start = time.perf_counter()
                ev = evaluate(b.model, b.val_ids, eval_streams)
                state.eval_time += time.perf_counter() - start
                state.val_loss = ev.loss
                if ev.loss < state.best_val_loss:  # char-rnn keeps its checkpoints by val loss
                    state.best_val_loss, state.best_step = ev.loss, step
                    save_best()
                best = {"val/best_loss": state.best_val_loss, "val/best_step": state.best_step}
                tracked.log_metrics({"val/loss": ev.loss, "val/bpc": ev.bpc} | best, step)
                tracked.flush()
                state.val.append((step, ev.loss))
                log.info("step %d/%d  val %.4f nats/char (%.3f bpc)", step, t.steps,
                         ev.loss, ev.bpc)  # fmt: skip
            if t.sample_every and (step % t.sample_every == 0 or last):
                start = time.perf_counter()
                text = sample(b.model, b.vocab, b.rng, t.sample_length, prime, s.sample.temperature)
                tracked.log_text(text, f"samples/step_{step:07d}.txt")
                state.sample_time += time.perf_counter() - start
            bar.update()
            if interrupt["signum"] is not None or step % t.checkpoint_every == 0 or last:
                tracked.flush()  # the metrics up to here are safe with the checkpoint
                checkpoint(state)
            if interrupt["signum"] is not None and not last:
                raise Interrupted(interrupt["signum"], step)
            if last:
                break
    loop = time.perf_counter() - loop_start
    done = trainer.step - first + 1
    if state.stopped_by == "max_seconds":
        log.info("stopped at step %d of %d: train.max_seconds=%g s of training reached",
                 trainer.step, t.steps, t.max_seconds)  # fmt: skip
    log.info(
        "trained %d steps in %.2f s (%.0f chars/s), of which evaluation %.2f s, samples %.2f s; "
        "%.2f s of training steps in all",
        done, loop, done * chars_per_step / max(loop, 1e-9), state.eval_time, state.sample_time,
        state.train_time,
    )  # fmt: skip
    return state.val_loss
