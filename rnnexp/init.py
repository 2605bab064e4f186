"""Initialisation schemes by name: how a model's weights are first drawn (`model.init`).
Biases start at zero in every scheme (an LSTM's forget gate then at 1, rnnexp/cells/lstm.py).

    normal      N(0, 1) * init_scale             the notebooks and min-char-rnn (scale 0.01)
    uniform     U(-init_scale, init_scale)       char-rnn (scale 0.08)
    xavier      U(±sqrt(6 / (fan_in + fan_out))) Glorot & Bengio 2010; init_scale unused
    orthogonal  xavier, but each gate's (H, H) block of a recurrent Whh a random orthogonal
                matrix (Saxe et al. 2014): h Whh neither grows nor shrinks h at first

Weights are drawn from the run's generator in key order, so a seed gives one set of weights.
"""

from __future__ import annotations

import numpy as np

INITS = ("normal", "uniform", "xavier", "orthogonal")
"""The ways weights are drawn (`model.init`); `model.init_scale`: normal's std, uniform's bound."""


def init_weights(shapes: dict, rng: np.random.Generator, scheme: str, scale: float, dtype) -> dict:
    """Arrays for `shapes` (key -> shape): 1-d ones (biases) zero, the others drawn by
    `scheme`; the key `Whh` marks a recurrent matrix (H, gates * H)."""
    out = {}
    for key, shape in shapes.items():
        if len(shape) == 1:
            w = np.zeros(shape)
        elif scheme == "normal":
            w = rng.standard_normal(shape) * scale
        elif scheme == "uniform":  # scaled after the draw: any finite scale stays finite
            w = rng.uniform(-1.0, 1.0, shape) * scale
        elif scheme == "orthogonal" and key == "Whh":
            H = shape[0]
            w = np.concatenate([_orthogonal(H, rng) for _ in range(shape[1] // H)], axis=1)
        else:  # xavier, and orthogonal's non-recurrent weights
            bound = np.sqrt(6.0 / (shape[0] + shape[1]))
            w = rng.uniform(-bound, bound, shape)
        out[key] = w.astype(dtype)
    return out


def _orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random orthogonal (n, n) matrix, uniform over the orthogonal group: the Q of a
    Gaussian matrix's QR with the signs of R's diagonal taken out (Mezzadri 2007)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))
