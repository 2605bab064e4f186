"""A run's training loop: the Trainer's steps (rnnexp/trainer.py) with metrics at their
intervals, evaluation, samples and checkpoints, and what a person watching sees: a tqdm bar
on a terminal, else a progress line every PROGRESS_EVERY seconds (a log file, CI, nohup), and
each sample printed. A signal (signals.py) stops it between steps, after a checkpoint; a
sweep's pruner or train.patience at a periodic evaluation, which reads a fixed sample of the
validation split (train.eval_chars; the last step reads the whole split).
"""

from __future__ import annotations

import gc
import logging
import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnexp.atomic import atomic_write
from rnnexp.cells.jit import compiled_here
from rnnexp.checkpoint import BEST_MODEL_DIR, load_model, save_model
from rnnexp.evaluate import evaluate
from rnnexp.framework.build import Built
from rnnexp.framework.settings import Settings
from rnnexp.framework.signals import Interrupted
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
    stopped_by: str = ""  # why training ended: steps, max_seconds, pruned or patience
    since_best: int = 0  # periodic evaluations since the best one (train.patience)
    limits: dict = field(default_factory=dict)  # train.steps, max_seconds the run trains to
    eval_time: float = 0.0
    sample_time: float = 0.0
    loop_time: float = 0.0  # seconds of the loop in all: steps, evaluation, samples, checkpoints
    sample: str = ""  # the last sample, for the run's summary
    blas_threads: dict = field(default_factory=dict)  # steps trained at each BLAS count
    train: list = field(default_factory=list)  # (step, train/loss) for the loss curve
    val: list = field(default_factory=list)  # (step, val/loss)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Loop:
    """What the loop works with, handed over by the run (run.py) that owns them."""

    s: Settings
    b: Built
    state: LoopState
    folder: Path  # the run's folder: samples, model_best/
    tracked: Any  # its MLflow run (or NullRun): metrics, samples
    threads: Any  # its BLAS threads (threads.Chooser)
    interrupt: dict  # signals.deferred_interrupts: a signal's number, between steps
    checkpoint: Callable[[], None]  # everything resume= needs, written whole
    check_folder: Callable[[], None]  # raises if the run's folder was deleted
    trial: Any = None  # a sweep job's trial (study.JobTrial): its pruner may stop the run


def can_train(s: Settings, b: Built, state: LoopState) -> bool:
    """Whether the run has steps and seconds left (a resumed run may have been given more)."""
    t = s.train
    return b.trainer.step < t.steps and (t.max_seconds is None or state.train_time < t.max_seconds)


def horizon(done: int, spent: float, budget: float, cap: int) -> int:
    """The steps a run of `budget` seconds holds, at the speed of its first `done` steps
    (`spent` seconds); at most `cap` (train.steps), and more than `done`."""
    if spent <= 0:
        return cap
    return min(cap, max(done + 1, round(done * budget / spent)))


def train(loop: Loop) -> None:
    """Train from the run's current step to train.steps (or train.max_seconds); checkpoints
    every train.checkpoint_every steps, at the end and on a signal, always between steps."""
    # the ~400k objects MLflow, Hydra and SQLAlchemy left would be traversed by every full
    # collection the steps trigger (0.26 s of a 2.5 s min-char-rnn run, 0.09 s frozen): out of
    # the collector's sight for the loop, after a collection, and back in it after (a sweep's
    # jobs run one after another in one process: each would pin the last one's objects)
    gc.collect()
    gc.freeze()
    try:
        # a diverging run is caught by its loss and weights (Trainer), with one line; numpy's
        # warnings about the inf and NaN on the way would only print before it
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            _steps(loop)
    finally:
        gc.unfreeze()


def _steps(loop: Loop) -> None:
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    t, trainer, state = loop.s.train, loop.b.trainer, loop.state
    first = trainer.step + 1
    terminal = sys.stderr.isatty()
    bar = tqdm(total=t.steps, initial=trainer.step, unit="step", disable=not terminal,
               dynamic_ncols=True)  # fmt: skip
    clock = {"began": time.perf_counter(), "progress": time.perf_counter()}
    loop_start = time.perf_counter()
    compiled_before = compiled_here()  # by earlier runs of this process (rnnexp.run, a sweep)
    with bar, logging_redirect_tqdm():
        for step in range(first, t.steps + 1):
            if t.schedule_over == "seconds":
                trainer.horizon = horizon(step - 1, state.train_time, t.max_seconds, t.steps)
            start = time.perf_counter()
            r = trainer.train_step()
            took = time.perf_counter() - start
            if step == first:  # the estimate of what is left starts after the first step,
                clock["began"] = time.perf_counter()  # which may compile kernels for seconds
            if step == first and (compiled := compiled_here() - compiled_before):
                log.info("step %d took %.1f s: it compiled %d numba kernels for this model, once "
                         "on this machine (later runs load them from the cache)", step, took,
                         compiled)  # fmt: skip
            loop.threads.after(took, step)  # and the BLAS threads of the next step
            evaluates, last = _count(loop, step, took, r.loss_per_char)
            if step % t.log_every == 0 or last:
                rate = _log_window(loop, r, step, last, first, clock)
                bar.set_postfix(loss=f"{state.train[-1][1]:.3f}", chars_s=f"{rate:,.0f}")
            if evaluates or last or t.sample_every and step % t.sample_every == 0:
                loop.check_folder()  # before anything is written there: not rebuilt in part
            with loop.threads.one():  # the same numbers whatever the steps' thread count
                if evaluates or last:
                    _evaluate(loop, step, last)
                    if not last and (why := _stops_early(loop, step)):
                        state.stopped_by, last = why, True
                if t.sample_every and (step % t.sample_every == 0 or last):
                    _sample(loop, step, last)
            bar.update()
            signum = loop.interrupt["signum"]
            if signum is not None or step % t.checkpoint_every == 0 or last:
                loop.tracked.flush()  # the metrics up to here are safe with the checkpoint
                state.loop_time += time.perf_counter() - loop_start
                loop_start = time.perf_counter()
                loop.checkpoint()
            if signum is not None and not last:
                raise Interrupted(signum, step)
            if last:
                break
    _say_end(loop, first)


def _say_end(loop: Loop, first: int) -> None:
    """Why training stopped before train.steps, and the run's count and times."""
    t, trainer, state = loop.s.train, loop.b.trainer, loop.state  # a resumed run's included
    why = {"max_seconds": f"train.max_seconds={t.max_seconds} s of training reached",
           "pruned": "the sweep's pruner stopped it (its val/loss among the worst)",
           "patience": f"train.patience={t.patience} evaluations without a new best"}  # fmt: skip
    if state.stopped_by in why:
        log.info("stopped at step %d of %d: %s", trainer.step, t.steps, why[state.stopped_by])
    since = f" ({trainer.step - first + 1} since it resumed at step {first - 1})" * (first > 1)
    log.info("trained %d steps%s; in all %.2f s, of which training steps %.2f s, evaluation "
             "%.2f s (%.0f %%), samples %.2f s", trainer.step, since, state.loop_time,
             state.train_time, state.eval_time, 100 * state.eval_time / max(state.loop_time,
             1e-9), state.sample_time)  # fmt: skip


def _count(loop: Loop, step: int, took: float, loss_per_char: float) -> tuple[bool, bool]:
    """The step's time and loss counted; (a periodic evaluation is due, it is the last)."""
    t, state = loop.s.train, loop.state
    state.window_time += took
    evaluates = t.evaluates(step, state.train_time, state.train_time + took)
    state.train_time += took
    state.window_loss += loss_per_char
    state.window_steps += 1
    out_of_time = t.max_seconds is not None and state.train_time >= t.max_seconds
    last = step == t.steps or out_of_time
    if last:
        state.stopped_by = "max_seconds" if out_of_time else "steps"
    return evaluates, last


def _log_window(loop: Loop, r, step: int, last: bool, first: int, clock: dict) -> float:
    """The train/ metrics of the steps since the last point, and a progress line now and
    then when no terminal shows the bar; returns the window's chars/s."""
    t, state = loop.s.train, loop.state
    loop.b.trainer.check_finite()  # a NaN weight shows in the loss late, if ever
    loss = state.window_loss / state.window_steps
    rate = state.window_steps * t.batch_size * t.seq_length / state.window_time
    metrics = {
        "train/loss": loss,
        "train/smooth_loss": r.smooth_loss,  # min-char-rnn's: nats per chunk
        "train/smooth_loss_per_char": r.smooth_loss / t.seq_length,  # comparable across T
        "train/lr": r.lr,  # of the window's last step (schedule=...)
        "perf/chars_per_s": rate,
        "perf/blas_threads": loop.threads.current,  # of the window's last step
    }
    loop.tracked.log_metrics(metrics, step)
    state.train.append((step, loss))
    state.window_loss, state.window_steps, state.window_time = 0.0, 0, 0.0
    now = time.perf_counter()
    if not sys.stderr.isatty() and now - clock["progress"] >= PROGRESS_EVERY and not last:
        clock["progress"] = now
        left = (now - clock["began"]) / max(step - first, 1) * (t.steps - step)
        if t.max_seconds is not None:  # a time budget ends it first (train.steps a cap)
            left = min(left, t.max_seconds - state.train_time)
        log.info("step %d/%d  train %.4f nats/char  %s chars/s  about %s left",
                 step, t.steps, loss, f"{rate:,.0f}", _duration(left))  # fmt: skip
    return rate


def _evaluate(loop: Loop, step: int, last: bool) -> None:
    """val/loss: over a fixed sample of the split, or the whole split at the last step (for
    the final model and the best one); the best model so far saved in model_best/."""
    t, b, state = loop.s.train, loop.b, loop.state
    start = time.perf_counter()
    # side-by-side streams make evaluation one batched pass; each reads >= 1000 characters,
    # so the zero-state start of each costs little (a short split is read as one stream)
    streams = max(1, min(t.eval_streams, len(b.val_ids) // 1000))
    if last:
        ev = evaluate(b.model, b.val_ids, streams)
        state.best_val_loss, state.best_step = _settle_best(loop, ev.loss, step, streams)
    else:
        ev = evaluate(b.model, b.val_ids, streams, chars=t.eval_chars)
        state.since_best += 1
        if ev.loss < state.best_estimate:  # char-rnn keeps its checkpoints by val loss
            state.best_estimate = state.best_val_loss = ev.loss
            state.best_step, state.since_best = step, 0
            save_model(loop.folder / BEST_MODEL_DIR, b.model, b.vocab, b.corpus.text[0])
    state.eval_time += time.perf_counter() - start
    state.val_loss = ev.loss
    best = {"val/best_loss": state.best_val_loss, "val/best_step": state.best_step}
    loop.tracked.log_metrics({"val/loss": ev.loss, "val/bpc": ev.bpc} | best, step)
    loop.tracked.flush()
    state.val.append((step, ev.loss))
    b.trainer.check_validation(ev.loss)  # logged first: the run's curve shows the blow-up
    over = "the whole validation split" if ev.chars == len(b.val_ids) - 1 else (
        f"{ev.chars:,} chars of the validation split")  # fmt: skip
    log.info("step %d/%d  val %.4f nats/char (%.3f bpc) over %s", step, t.steps,
             ev.loss, ev.bpc, over)  # fmt: skip


def _stops_early(loop: Loop, step: int) -> str:
    """Why the run stops at this evaluation before its end, if it does: its sweep's pruner
    (study.py), or train.patience evaluations without a new best (Lightning's EarlyStopping)."""
    patience, state = loop.s.train.patience, loop.state
    if loop.trial is not None and loop.trial.report(state.val_loss, step, state.train_time):
        return "pruned"
    return "patience" if patience is not None and state.since_best >= patience else ""


def _settle_best(loop: Loop, final: float, step: int, streams: int) -> tuple[float, int]:
    """The best model's loss over the whole split, and its step: the final model's, or that of
    the earlier model the sampled losses picked (model_best/) if it does better on the whole
    split. model_best/ is removed when the final model is the best: no second copy of it."""
    folder, state = loop.folder / BEST_MODEL_DIR, loop.state
    if (folder / "model.npz").is_file() and state.best_step < step:
        earlier = evaluate(load_model(folder)[0], loop.b.val_ids, streams).loss
        if earlier < final:
            return earlier, state.best_step
    shutil.rmtree(folder, ignore_errors=True)
    return final, step


def _sample(loop: Loop, step: int, last: bool) -> None:
    """A sample of the model's text: in the run's folder, its artifacts and the log."""
    s, b, state = loop.s, loop.b, loop.state
    start = time.perf_counter()
    # no prime: start where every training stream starts, a zero state and the first
    # character; a random first character is a start the model may never have seen
    prime = s.sample.prime or b.corpus.text[0]
    text = sample(b.model, b.vocab, b.rng, s.train.sample_length, prime, s.sample.temperature)
    name = f"{SAMPLES_DIR}/step_{step:07d}.txt"
    (loop.folder / SAMPLES_DIR).mkdir(exist_ok=True)
    atomic_write(loop.folder / name, lambda f: f.write(text.encode()))
    loop.tracked.log_text(text, name)
    state.sample = text
    state.sample_time += time.perf_counter() - start
    if not last:  # the summary shows the last one
        indented = "\n".join("    " + line for line in text.splitlines())
        log.info("sample at step %d:\n%s", step, indented)


def _duration(seconds: float) -> str:
    """3.5 -> '4 s', 95 -> '1 min 35 s'."""
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
