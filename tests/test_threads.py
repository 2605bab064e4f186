"""BLAS threads chosen as a run trains: one, more only while a trial shows them faster and the
rest of the machine leaves a core free, back to one as soon as a neighbour wants it; only where
the run's products keep their bits (`benchmarks/threads.py` measures the speeds)."""

import os

import numpy as np
import pytest

from rnnexp import CharRNN, Trainer, make_optimizer, preset
from rnnexp.framework import threads
from rnnexp.framework.threads import Chooser


def feed(chooser: Chooser, speed: dict[int, float], steps: int, crowded: bool = False) -> None:
    """`steps` steps, each taking speed[count] seconds at the chooser's current count."""
    chooser._look = lambda: setattr(chooser, "crowded", crowded)
    for step in range(steps):
        chooser.after(speed[chooser.current], step)


def test_more_threads_are_taken_while_faster_and_given_back_to_a_neighbour():
    chooser = Chooser(None, 2, adaptive=True)
    feed(chooser, {1: 0.01, 2: 0.006}, 200)  # two threads 1.7x as fast: taken
    assert chooser.current == 2 and chooser.steps_at[2] > 100
    feed(chooser, {1: 0.01, 2: 0.006}, 5, crowded=True)  # a neighbour: one thread at once
    assert chooser.current == 1 and chooser.steps_at[2] > 100
    feed(chooser, {1: 0.01, 2: 0.003}, 500, crowded=True)  # no trial while it stays
    assert chooser.current == 1
    slow = Chooser(None, 2, adaptive=True)
    feed(slow, {1: 0.01, 2: 0.0098}, 3000)  # 2 % faster is noise: one thread
    assert slow.current == 1 and slow.steps_at[2] < 3000 * 0.02  # trials back off
    fixed = Chooser(3, 2, adaptive=True)
    feed(fixed, {3: 0.01}, 100)
    assert fixed.current == 3 and fixed.record() == "3: 100"


@pytest.mark.parametrize(
    "cell, hidden, batch, adaptive", [("rnn", 100, 1, False), ("gru", 128, 32, None)]
)
def test_a_run_adapts_only_when_large_and_its_bits_do_not_depend_on_the_count(
    cell, hidden, batch, adaptive
):
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: nothing to choose")
    model = CharRNN(preset(cell, 65, hidden), np.random.default_rng(0))
    trainer = Trainer(model, make_optimizer("adam"), np.arange(5000) % 65, seq_length=16,
                      batch_size=batch)  # fmt: skip
    chooser = Chooser.for_run(None, model, trainer)
    data = trainer.streams.data
    same = threads.same_bits_at_any_count(model, data[:, :16], data[:, 1:17], 2)
    assert chooser.adaptive == (same if adaptive is None else adaptive)
    assert Chooser.for_run(1, model, trainer).adaptive is False  # threads=1: fixed
