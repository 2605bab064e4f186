"""BLAS threads of a run. `threads=N` fixes them; the jobs of a parallel sweep share the cores
(cores / n_jobs each); by default (`threads=null`) a run trains on one thread and takes the
others only while they make its steps faster, trying now and then (`Chooser`).

Why not simply all cores: a user's machine is busy. Two OpenBLAS threads per run collapse
4-30x as soon as a second run, a test or a notebook wants a core (each of a step's hundred
small products waits for a thread the kernel has descheduled), so a count fixed at the start
is wrong for someone. The chooser measures instead, step by step, and backs off its trials.

Two threads are tried only while the rest of the machine leaves a core free (the CPU time
other processes, and a virtual machine's neighbours, took over the last second): two runs side
by side would each find a second thread a little faster while it slows the other, and both
would end on two threads, collapsed.

A run must stay the same run whatever its neighbours did: the count changes only where this
machine's BLAS gives the run's training products the same bits at either count (checked on
one chunk before the first step); evaluation, samples and the look inside run on one thread.
"""

from __future__ import annotations

import logging
import os
import statistics
from contextlib import contextmanager

import numpy as np

from rnnexp.cells import CELLS
from rnnexp.config import ModelConfig

log = logging.getLogger("rnnexp")

# below this many multiply-adds in a step's recurrent product (B x H x gates*H), a second BLAS
# thread gains at most ~20 % on a quiet machine: such a run keeps one thread, no trials
ONE_THREAD_BELOW = 1_000_000
FIRST_TRIAL = 0.5  # seconds of training before the first trial of more threads
BACK_TRIAL = 15.0  # and before a trial of one thread again, once more were taken
LONGEST_WAIT = 60.0  # between trials, after the wait doubled at each trial the count lost
TRIAL_STEPS = 3  # steps a trial times, after one to warm up
WINDOW = 15  # recent step times at the current count that a trial is compared with
BETTER = 0.93  # a trial wins when its steps take at most this share of the current ones
SLOWER = 1.5  # steps this much slower than before at the current count: a neighbour came
LOOK_EVERY = 1.0  # seconds between looks at what the rest of the machine uses
CROWDED = 0.3  # cores the rest of the machine uses (averaged over a look) that leave none free


def recurrent_work(model: ModelConfig, batch_size: int) -> int:
    """Multiply-adds of one step's recurrent product, (B, H) x (H, gates * H)."""
    return batch_size * model.hidden_size * CELLS[model.cell].gates * model.hidden_size


def threads_per_job(launcher: str | None, n_jobs: int | None, ray_cpus: int | None) -> int | None:
    """BLAS threads of a sweep's job: jobs in parallel share the cores, cores / n_jobs each with
    joblib, the cores Ray reserved for the task with Ray, so two jobs on two cores do not each
    start two threads and fight. None: chosen as the job trains (jobs one after the other)."""
    if launcher == "ray":
        return max(1, int(ray_cpus or 1))
    if launcher != "joblib":
        return None
    cores = os.cpu_count() or 1
    n_jobs = n_jobs or -1
    n_jobs = cores + 1 + n_jobs if n_jobs < 0 else n_jobs  # joblib: -1 is all cores
    return max(1, cores // max(1, n_jobs))


def _blas():
    """threadpoolctl's handle on the BLAS libraries numpy loaded."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


def same_bits_at_any_count(model, inputs: np.ndarray, targets: np.ndarray, most: int) -> bool:
    """Whether a chunk's loss, gradients and next state come out to the bit at 1 and at `most`
    BLAS threads (OpenBLAS may split a long sum differently on more threads: float64 products
    with 400 terms did, here)."""
    blas, out = _blas(), []
    for n in (1, most):
        blas.limit(limits=n)
        state = model.zero_state(inputs.shape[0])
        loss, grads, hnext = model.loss_and_grads(inputs, targets, state, model.new_grads(),
                                                  np.random.default_rng(0))  # fmt: skip
        out.append((loss, grads.flat.tobytes(), b"".join(h.tobytes() for h in hnext)))
    return out[0] == out[1]


class Chooser:
    """The BLAS threads of a run's training steps: `fixed`, or (None) one, and `most` while a
    trial shows them faster. `after(seconds)` is told each step's time and sets the count of
    the next; `one()` runs a block on one thread (evaluation, samples)."""

    def __init__(self, fixed: int | None, most: int, adaptive: bool):
        self.blas = _blas()
        self.adaptive = adaptive and fixed is None and most > 1
        self.counts = (1, most)
        self.current = fixed or 1
        self.times: dict[int, list[float]] = {n: [] for n in self.counts}
        self.trial: list[float] | None = None  # step times of a trial under way
        self.trained = 0.0  # seconds of training steps so far
        self.wait, self.next_trial = FIRST_TRIAL, FIRST_TRIAL
        self.steps_at: dict[int, int] = {}  # steps trained at each count: the run's record
        self.crowded, self.looked = False, None
        self.blas.limit(limits=self.current)

    @classmethod
    def for_run(cls, fixed: int | None, model, trainer) -> Chooser:
        """For a run: `fixed` threads (threads=N, or a parallel sweep's share), else adaptive
        when the model is large enough to gain and its products keep their bits."""
        most = os.cpu_count() or 1
        big = recurrent_work(model.config, trainer.streams.batch_size) >= ONE_THREAD_BELOW
        if fixed is not None or not big or most < 2:
            return cls(fixed or 1, most, adaptive=False)
        data, T = trainer.streams.data, trainer.streams.seq_length  # the first chunk: (B, T)
        same = same_bits_at_any_count(model, data[:, :T], data[:, 1 : T + 1], most)
        if not same:
            log.info(
                "1 BLAS thread: this machine's BLAS gives this model's products other "
                "bits on %d threads, and a run is the same run whatever else runs",
                most,
            )
        return cls(None, most, adaptive=same)

    def describe(self) -> str:
        """`BLAS threads: 1, 2 while faster` (threads=null, adaptive), or `BLAS threads: 4`."""
        if self.adaptive:
            return f"BLAS threads: 1, {self.counts[1]} while faster and a core is free"
        return f"BLAS threads: {self.current}"

    @contextmanager
    def one(self):
        """A block on one thread (its results then never depend on the count)."""
        self.blas.limit(limits=1)
        try:
            yield
        finally:
            self.blas.limit(limits=self.current)

    def after(self, seconds: float, step: int) -> None:
        """A training step took `seconds`: keep its time, and set the next step's count."""
        self.steps_at[self.current] = self.steps_at.get(self.current, 0) + 1
        self.trained += seconds
        if not self.adaptive:
            return
        self._look()
        if self.crowded and self.current > 1:  # a neighbour wants a core: give it back
            self.trial = None
            self._set(1)
            log.info("step %d: 1 BLAS thread from here: other processes use the cores", step)
            return
        if self.trial is not None:
            self._go_on_trial(seconds, step)
            return
        recent = self.times[self.current]
        before = statistics.median(recent) if len(recent) >= WINDOW else None
        recent.append(seconds)
        del recent[:-WINDOW]
        slowed = before is not None and statistics.median(recent[-3:]) > SLOWER * before
        if self.crowded and self.current == 1:
            return  # a second thread would take a neighbour's core
        if slowed or self.trained >= self.next_trial:  # a neighbour came, or it is time
            self.trial = []
            self._set(self._other())

    def _go_on_trial(self, seconds: float, step: int) -> None:
        self.trial.append(seconds)
        home = self._other()  # the count the trial left, and its recent step times
        measured = self.trial[1:]  # the first step warms the trial's threads up
        ours = statistics.median(self.times[home]) if self.times[home] else None
        clearly_worse = ours is not None and measured and measured[0] > 2 * ours
        if len(measured) < TRIAL_STEPS and not clearly_worse:
            return
        trial, self.trial = statistics.mean(measured), None
        if ours is not None and trial < BETTER * ours:  # the trial's count is faster: taken
            log.info("step %d: %d BLAS thread%s from here, %.2fx as fast as %d", step,
                     self.current, "s" * (self.current > 1), ours / trial, home)  # fmt: skip
            self.times[self.current] = measured
            self.wait = BACK_TRIAL if self.current > 1 else FIRST_TRIAL
        else:  # back, and wait twice as long before the next trial
            self._set(home)
            self.wait = min(2 * self.wait, LONGEST_WAIT)
        self.next_trial = self.trained + self.wait

    def steps(self, before: dict | None = None) -> dict[str, int]:
        """The steps trained at each count, with those `before` (a resumed run's, as saved)."""
        steps = {str(n): k for n, k in (before or {}).items()}
        for n, k in self.steps_at.items():
            steps[str(n)] = steps.get(str(n), 0) + k
        return dict(sorted(steps.items(), key=lambda item: int(item[0])))

    def record(self, before: dict | None = None) -> str:
        """steps() as the run's tag: `1: 120, 2: 1880`."""
        return ", ".join(f"{n}: {k}" for n, k in self.steps(before).items())

    def _look(self) -> None:
        """Every LOOK_EVERY seconds: whether other processes (a VM's neighbours included,
        as stolen time) used CROWDED cores or more since the last look."""
        import time

        import psutil

        now = time.monotonic()
        if self.looked is not None and now - self.looked[0] < LOOK_EVERY:
            return
        m = psutil.cpu_times()  # Linux's guest times are inside user and nice already
        busy = m.user + m.nice + m.system + sum(getattr(m, k, 0.0) for k in ("irq", "softirq",
                                                                            "steal"))  # fmt: skip
        mine = psutil.Process().cpu_times()
        ours = mine.user + mine.system
        if self.looked is not None:
            then, busy_then, ours_then = self.looked
            others = (busy - busy_then - (ours - ours_then)) / (now - then)
            self.crowded = others >= CROWDED
        self.looked = (now, busy, ours)

    def _other(self) -> int:
        return self.counts[1] if self.current == self.counts[0] else self.counts[0]

    def _set(self, n: int) -> None:
        self.current = n
        self.blas.limit(limits=n)
