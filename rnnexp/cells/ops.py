"""Small array operations the cells and the network share."""

from __future__ import annotations

import numpy as np


def sigmoid(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = 1 / (1 + exp(-a)) as (1 + tanh(a/2)) / 2: no overflow in exp for large |a|."""
    np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def xty(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = x.T @ y for x (N, I), y (N, J); for N = 1 an outer product (the same products:
    a GEMM with one term per sum is slower here than a broadcast multiply)."""
    if x.shape[0] == 1:
        return np.multiply(x[0][:, None], y[0][None, :], out=out)
    return np.matmul(x.T, y, out=out)


def init_weights(shapes: dict, rng: np.random.Generator, scale: float, dtype) -> dict:
    """Weights N(0, 1) * scale, biases zero (min-char-rnn's initialisation), drawn in key
    order."""
    return {
        k: np.zeros(s, dtype) if len(s) == 1 else (rng.standard_normal(s) * scale).astype(dtype)
        for k, s in shapes.items()
    }
