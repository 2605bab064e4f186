"""Initialisation schemes (rnnexp/init.py): each draws what it says, from the run's generator."""

import numpy as np
import pytest

from rnnexp import INITS, CharRNN, preset

V, H = 11, 16


def params(cell: str, init: str, scale: float = 0.08, seed: int = 0) -> dict:
    config = preset(cell, V, H, layers=2, init=init, init_scale=scale)
    return dict(CharRNN(config, np.random.default_rng(seed)).params)


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_each_scheme_draws_what_it_says(cell, init):
    p, again = params(cell, init), params(cell, init)  # one seed, one set of weights
    assert all(np.array_equal(p[k], again[k]) for k in p) and p.keys() == again.keys()
    for k, w in p.items():
        if w.ndim == 1:  # biases: zero, but an LSTM's forget gate, which starts open
            want = np.zeros_like(w)
            if cell == "lstm" and k.endswith(".bh"):
                want[H : 2 * H] = 1.0
            np.testing.assert_array_equal(w, want)
            continue
        recurrent = k.endswith(".Whh")
        if init == "normal":
            assert abs(w.std() - 0.08) < 0.02
        elif init == "uniform":
            assert np.abs(w).max() <= 0.08 and np.abs(w).max() > 0.07
        elif init == "orthogonal" and recurrent:  # every gate's (H, H) block: Q^T Q = I
            for g in range(w.shape[1] // H):
                block = w[:, g * H : (g + 1) * H]
                np.testing.assert_allclose(block.T @ block, np.eye(H), atol=1e-12)
        else:  # xavier, and orthogonal's other weights
            bound = np.sqrt(6.0 / (w.shape[0] + w.shape[1]))
            assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound


def test_a_huge_uniform_scale_stays_finite():
    # scaled after the draw: numpy's uniform(-s, s) overflows its range for s near 1e308
    assert all(np.isfinite(w).all() for w in params("rnn", "uniform", 1e308).values())
