"""Central finite differences in float64, for the gradient tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_grads(loss: Callable[[], float], params: dict[str, np.ndarray], eps: float = 1e-5):
    """d loss / d params by central differences, perturbing each entry of `params` in place."""
    grads = {}
    for k, p in params.items():
        g = np.zeros_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = loss()
            flat[i] = old - eps
            down = loss()
            flat[i] = old
            gflat[i] = (up - down) / (2 * eps)
        grads[k] = g
    return grads


def max_relative_error(analytic: dict[str, np.ndarray], numeric: dict[str, np.ndarray]) -> dict:
    """Per key, max |a - n| / max(|a| + |n|, 1e-8) over the entries (cs231n's measure)."""
    assert analytic.keys() == numeric.keys()
    return {
        k: float(
            np.max(
                np.abs(analytic[k] - numeric[k])
                / np.maximum(np.abs(analytic[k]) + np.abs(numeric[k]), 1e-8)
            )
        )
        for k in analytic
    }
