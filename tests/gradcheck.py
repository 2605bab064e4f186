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


def max_relative_error_above_noise(analytic: dict, numeric: dict, floor: float = 1e-3) -> dict:
    """max_relative_error over the entries whose numeric gradient is at least `floor` times
    the parameter's largest: central differences in float64 are exact to ~1e-10 absolute
    (roundoff of a loss of ~10 nats over eps = 1e-5), so an entry of 1e-6 cannot be checked
    to a relative 1e-6 by them, right or wrong."""
    out = {}
    for k in analytic:
        keep = np.abs(numeric[k]) >= floor * np.abs(numeric[k]).max()
        out[k] = max_relative_error({k: analytic[k][keep]}, {k: numeric[k][keep]})[k]
    return out
