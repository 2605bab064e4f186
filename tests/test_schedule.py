"""Learning-rate schedules against their reference formulas (char-rnn's train.lua, nanoGPT's
get_lr), and their effect through a real run's config."""

import math

import numpy as np
import pytest

from rnnexp.errors import ConfigError
from rnnexp.schedule import make_schedule


def test_constant_is_the_optimizers_rate():
    rate = make_schedule("constant", 0.1, 100, 7)
    assert {rate(t) for t in range(200)} == {0.1}


def test_epoch_decay_follows_char_rnn():
    # train.lua: after iteration i (1-based) with i % ntrain == 0 and i / ntrain >= decay_after,
    # learningRate *= decay. Replayed literally, against the schedule of each 0-based step.
    ntrain, after, decay, lr = 5, 2, 0.5, 1.0
    rate = make_schedule("epoch_decay", lr, 60, ntrain, decay=decay, after_epochs=after)
    current = lr
    for i in range(1, 41):
        assert rate(i - 1) == pytest.approx(current, rel=1e-15), i  # the rate of iteration i
        if i % ntrain == 0 and i / ntrain >= after:
            current *= decay
    assert rate(0) == lr and rate(2 * ntrain - 1) == lr and rate(2 * ntrain) == lr * decay


def test_cosine_follows_nanogpt():
    lr, steps, warmup, ratio = 6e-4, 1000, 100, 0.1

    def get_lr(it):  # nanoGPT's train.py, with lr_decay_iters = steps
        if it < warmup:
            return lr * (it + 1) / (warmup + 1)
        if it > steps:
            return lr * ratio
        decay_ratio = (it - warmup) / (steps - warmup)
        coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
        return lr * ratio + coeff * (lr - lr * ratio)

    rate = make_schedule("cosine", lr, steps, 50, warmup_steps=warmup, min_lr_ratio=ratio)
    ours = np.array([rate(t) for t in range(steps + 5)])
    np.testing.assert_allclose(ours, [get_lr(t) for t in range(steps + 5)], rtol=1e-12)
    assert ours.argmax() == warmup and ours[-1] == pytest.approx(lr * ratio)
    # a run whose length is a time budget passes the steps it holds: the same formula then
    longer = make_schedule("cosine", lr, 2 * steps, 50, warmup_steps=warmup, min_lr_ratio=ratio)
    assert [rate(t, 2 * steps) for t in range(0, 2 * steps, 7)] == [
        longer(t) for t in range(0, 2 * steps, 7)
    ]


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("cosne", {}, "unknown schedule 'cosne'; valid: constant, cosine, epoch_decay"),
        ("cosine", {"decay": 0.9}, r"schedule.decay is not a key of cosine \(its keys: warmup_"),
        ("constant", {"warmup_steps": 3}, r"is not a key of constant \(its keys: none\)"),
        ("cosine", {"warmup_steps": -1}, r"schedule.warmup_steps must be a whole number >= 0"),
        ("cosine", {"min_lr_ratio": 1.5}, r"schedule.min_lr_ratio must be a number in \[0, 1\]"),
        ("epoch_decay", {"decay": 0}, r"schedule.decay must be a number in \(0, 1\], got 0"),
        ("epoch_decay", {"after_epochs": 2.5}, r"after_epochs must be a whole number >= 0"),
    ],
)
def test_nonsense_schedules_are_refused(name, options, message):
    with pytest.raises(ConfigError, match=message):
        make_schedule(name, 0.1, 100, 10, **options)
