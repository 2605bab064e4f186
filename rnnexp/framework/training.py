"""A run's training: the Trainer's steps (rnnexp/trainer.py) with metrics at their
intervals, evaluation, samples and checkpoints, and what a person watching sees: a tqdm bar
on a terminal, else a progress line every PROGRESS_EVERY seconds (a log file, CI, nohup), and
each sample printed. Ctrl-C or SIGTERM finishes the current step and writes a checkpoint before
the run stops (a second Ctrl-C stops at once), so `resume=` continues it exactly.

Periodic evaluation reads a fixed sample of the validation split (train.eval_chars), so it
stays a small part of the run; the last step reads the whole split.
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
from pathlib import Path

from rnnexp.atomic import atomic_write
from rnnexp.checkpoint import BEST_MODEL_DIR, load_model, save_model
from rnnexp.evaluate import evaluate
from rnnexp.sample import sample

log = logging.getLogger("rnnexp")
PROGRESS_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal
SAMPLES_DIR = "samples"  # in a run's folder (and its artifacts): samples/step_NNNNNNN.txt


@dataclass
class LoopState:
    """The loop's own bookkeeping, saved with each checkpoint (JSON)."""

    window_loss: float = 0.0  # sum of loss/char since the last train/loss point
    window_steps: int = 0
    window_time: float = 0.0
    val_loss: float = math.nan
    best_val_loss: float = math.inf  # the best model's loss (over the whole split at the end)
    best_step: int = 0
    best_estimate: float = math.inf  # the lowest periodic (sampled) val/loss: picks model_best
    train_time: float = 0.0  # seconds in training steps so far (what train.max_seconds counts)
    stopped_by: str = ""  # why training ended: "steps" or "max_seconds"
    limits: dict = field(default_factory=dict)  # train.steps, max_seconds the run trains to
    eval_time: float = 0.0
    sample_time: float = 0.0
    loop_time: float = 0.0  # seconds of the loop in all: steps, evaluation, samples, checkpoints
    sample: str = ""  # the last sample, for the run's summary
    train: list = field(default_factory=list)  # (step, train/loss) for the loss curve
    val: list = field(default_factory=list)  # (step, val/loss)

    def to_json(self) -> dict:
        return asdict(self)


class Interrupted(KeyboardInterrupt):
    """Training stopped by a signal after a finished step and a written checkpoint; or,
    `step` None, the command stopped by SIGTERM before its run started."""

    def __init__(self, signum: int, step: int | None = None):
        at = "" if step is None else f" at step {step}"
        super().__init__(f"{signal.Signals(signum).name}{at}")
        self.signum = signum
        self.step = step


def stop_on_sigterm() -> None:
    """SIGTERM raises Interrupted (as Ctrl-C raises KeyboardInterrupt), so a command stopped
    before its run starts still says so and leaves no folder; the run defers both."""

    def handler(signum, frame):
        raise Interrupted(signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


@contextmanager
def deferred_interrupts() -> Iterator[dict]:
    """Within: SIGINT and SIGTERM stop the command at once (Interrupted) until the run is
    started (flag["armed"] set: its MLflow run open, its folder kept), then only set
    flag["signum"]: the loop stops between steps. A second Ctrl-C raises at once. Signal
    handlers exist only in the main thread."""
    flag: dict = {"signum": None, "armed": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if not flag["armed"]:  # nothing to save yet: the command stops, its folder goes
            raise Interrupted(signum)
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
    output_dir: Path | None = None,
) -> float:  # fmt: skip
    """Train b.trainer from its current step to s.train.steps; return the last val loss (of
    the whole validation split). `checkpoint(state)` is called every train.checkpoint_every
    steps, at the end and on an interrupt (`interrupt["signum"]` set by deferred_interrupts),
    always between steps. In output_dir: the samples (as well as in the tracking run), and
    model_best/, the model of each evaluation that beats every earlier one."""
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
    terminal = sys.stderr.isatty()
    bar = tqdm(total=t.steps, initial=trainer.step, unit="step", disable=not terminal,
               dynamic_ncols=True)  # fmt: skip
    began = loop_start = last_progress = time.perf_counter()
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
                now = time.perf_counter()
                if not terminal and now - last_progress >= PROGRESS_EVERY and not last:
                    last_progress = now
                    left = (now - began) / (step - first + 1) * (t.steps - step)
                    log.info("step %d/%d  train %.4f nats/char  %s chars/s  about %s left",
                             step, t.steps, loss, f"{rate:,.0f}", _duration(left))  # fmt: skip
            if step % t.eval_every == 0 or last:
                start = time.perf_counter()
                if last:  # the whole split, for the final model and the best one
                    ev = evaluate(b.model, b.val_ids, eval_streams)
                    state.best_val_loss, state.best_step = _settle_best(
                        b, state, ev.loss, step, output_dir, eval_streams)  # fmt: skip
                else:
                    ev = evaluate(b.model, b.val_ids, eval_streams, chars=t.eval_chars)
                    if ev.loss < state.best_estimate:  # char-rnn keeps its checkpoints by val loss
                        state.best_estimate = state.best_val_loss = ev.loss
                        state.best_step = step
                        if output_dir is not None:
                            save_model(output_dir / BEST_MODEL_DIR, b.model, b.vocab,
                                       b.corpus.text[0])  # fmt: skip
                state.eval_time += time.perf_counter() - start
                state.val_loss = ev.loss
                best = {"val/best_loss": state.best_val_loss, "val/best_step": state.best_step}
                tracked.log_metrics({"val/loss": ev.loss, "val/bpc": ev.bpc} | best, step)
                tracked.flush()
                state.val.append((step, ev.loss))
                over = "the whole validation split" if ev.chars == len(b.val_ids) - 1 else (
                    f"{ev.chars:,} chars of the validation split")  # fmt: skip
                log.info("step %d/%d  val %.4f nats/char (%.3f bpc) over %s", step, t.steps,
                         ev.loss, ev.bpc, over)  # fmt: skip
            if t.sample_every and (step % t.sample_every == 0 or last):
                start = time.perf_counter()
                text = sample(b.model, b.vocab, b.rng, t.sample_length, prime, s.sample.temperature)
                name = f"{SAMPLES_DIR}/step_{step:07d}.txt"
                if output_dir is not None:
                    (output_dir / SAMPLES_DIR).mkdir(exist_ok=True)
                    atomic_write(output_dir / name, lambda f, text=text: f.write(text.encode()))
                tracked.log_text(text, name)
                state.sample = text
                state.sample_time += time.perf_counter() - start
                if not last:  # the summary shows the last one
                    log.info("sample at step %d:\n%s", step, _indent(text))
            bar.update()
            if interrupt["signum"] is not None or step % t.checkpoint_every == 0 or last:
                tracked.flush()  # the metrics up to here are safe with the checkpoint
                state.loop_time += time.perf_counter() - loop_start
                loop_start = time.perf_counter()
                checkpoint(state)
            if interrupt["signum"] is not None and not last:
                raise Interrupted(interrupt["signum"], step)
            if last:
                break
    done = trainer.step - first + 1
    if state.stopped_by == "max_seconds":
        log.info("stopped at step %d of %d: train.max_seconds=%g s of training reached",
                 trainer.step, t.steps, t.max_seconds)  # fmt: skip
    log.info(
        "trained %d steps; in all %.2f s, of which training steps %.2f s, evaluation %.2f s "
        "(%.0f %%), samples %.2f s",
        done, state.loop_time, state.train_time, state.eval_time,
        100 * state.eval_time / max(state.loop_time, 1e-9), state.sample_time,
    )  # fmt: skip
    return state.val_loss


def _settle_best(b, state: LoopState, final: float, step: int, output_dir: Path | None,
                 streams: int) -> tuple[float, int]:  # fmt: skip
    """The best model's loss over the whole split, and its step: the final model's, or that of
    the earlier model the sampled losses picked (model_best/) if it does better on the whole
    split. model_best/ is removed when the final model is the best: no second copy of it."""
    import shutil

    folder = None if output_dir is None else output_dir / BEST_MODEL_DIR
    if folder is not None and (folder / "model.npz").is_file() and state.best_step < step:
        earlier = evaluate(load_model(folder)[0], b.val_ids, streams).loss
        if earlier < final:
            return earlier, state.best_step
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    return final, step


def _indent(text: str, prefix: str = "    ") -> str:
    """A sample as a block of the log: each of its lines indented."""
    return "\n".join(prefix + line for line in text.splitlines())


def _duration(seconds: float) -> str:
    """3.5 -> '4 s', 95 -> '1 min 35 s'."""
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
