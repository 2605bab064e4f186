"""Dropout after each layer (char-rnn's -dropout): exact gradients through the masks, drawn
from the run's generator; evaluation and sampling without it."""

import numpy as np
import pytest
from gradcheck import max_relative_error_above_noise, numerical_grads

from rnnexp import CharRNN, preset
from rnnexp.errors import ConfigError

V, H, B, T = 7, 5, 3, 4


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradients_through_the_dropout_masks_match_finite_differences(cell):
    model = CharRNN(preset(cell, V, H, layers=2, dropout=0.4, init_scale=0.5),
                    np.random.default_rng(0))  # fmt: skip
    rng = np.random.default_rng(1)
    inputs, targets = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    state = [rng.uniform(-0.9, 0.9, (B, H)) for _ in model.zero_state(B)]

    def loss_and_grads():  # the same masks every time: the generator restarts
        return model.loss_and_grads(inputs, targets, state, rng=np.random.default_rng(7))

    loss, grads, _ = loss_and_grads()
    numeric = numerical_grads(lambda: loss_and_grads()[0], model.params, 1e-4)
    assert max(max_relative_error_above_noise(dict(grads), numeric).values()) < 1e-6
    # the masks did something: without them the loss differs, and so does another draw
    assert loss != pytest.approx(model.loss(inputs, targets, state)[0], rel=1e-6)
    other = model.loss_and_grads(inputs, targets, state, rng=np.random.default_rng(8))[0]
    assert loss != pytest.approx(other, rel=1e-6)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_masks_drop_about_the_rate_and_keep_the_mean(dtype):
    config = preset("rnn", V, 64, layers=2, dropout=0.25, dtype=dtype)
    model = CharRNN(config, np.random.default_rng(0))
    inputs = np.random.default_rng(1).integers(0, V, (16, 32))
    model.loss_and_grads(inputs, inputs, model.zero_state(16), rng=np.random.default_rng(2))
    mask = model._workspace(16, 32).masks[0]
    assert abs((mask == 0).mean() - 0.25) < 0.01 and abs(mask.mean() - 1.0) < 0.02


def test_without_a_generator_there_is_no_dropout():
    # evaluation (model.loss) and training without rng see the same network
    model = CharRNN(preset("gru", V, H, layers=2, dropout=0.5), np.random.default_rng(0))
    inputs = np.random.default_rng(1).integers(0, V, (B, T))
    state = model.zero_state(B)
    assert model.loss_and_grads(inputs, inputs, state)[0] == model.loss(inputs, inputs, state)[0]


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, True])
def test_nonsense_dropout_is_refused(rate):
    with pytest.raises(ConfigError, match="model.dropout must be a number in \\[0, 1\\)"):
        preset("rnn", V, H, dropout=rate)
