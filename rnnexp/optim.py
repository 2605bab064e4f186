"""Optimizers that see only the params and grads dicts (same keys), plus elementwise clipping.

Their state is keyed by parameter name, so it is saved and restored as a flat dict of arrays
and a run resumes exactly. (Notebook 000 zipped its Adagrad memories in a different order
than its parameters, so one matrix was scaled by another's history: keys make that impossible.)
"""

from __future__ import annotations

import numpy as np

from rnnexp.errors import ConfigError

Params = dict[str, np.ndarray]


def clip_grads(grads: Params, clip: float | None) -> None:
    """Clip every gradient elementwise to [-clip, clip] in place (min-char-rnn); None: no clip."""
    if clip is None:
        return
    for g in grads.values():
        np.clip(g, -clip, clip, out=g)


def _check_lr(lr: float) -> float:
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not np.isfinite(lr) or lr <= 0:
        raise ConfigError(f"optimizer.lr must be a positive number, got {lr!r}")
    return float(lr)


class SGD:
    """p -= lr * g"""

    def __init__(self, lr: float):
        self.lr = _check_lr(lr)

    def step(self, params: Params, grads: Params) -> None:
        for k, g in grads.items():
            params[k] -= self.lr * g

    def state_dict(self) -> dict[str, np.ndarray]:
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if state:
            raise ValueError(f"SGD has no state, got keys {sorted(state)}")


class Adagrad:
    """min-char-rnn's update: mem += g**2; p -= lr * g / sqrt(mem + eps)."""

    def __init__(self, lr: float, eps: float = 1e-8):
        self.lr = _check_lr(lr)
        self.eps = eps
        self.mem: dict[str, np.ndarray] = {}  # running sum of squared gradients, per parameter

    def step(self, params: Params, grads: Params) -> None:
        for k, g in grads.items():
            m = self.mem.get(k)
            if m is None:
                m = self.mem[k] = np.zeros_like(params[k])
            m += g * g
            params[k] -= self.lr * g / np.sqrt(m + self.eps)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {f"mem.{k}": m.copy() for k, m in self.mem.items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        bad = [k for k in state if not k.startswith("mem.")]
        if bad:
            raise ValueError(f"not Adagrad state: {bad}")
        self.mem = {k.removeprefix("mem."): np.array(v) for k, v in state.items()}


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad}


def make_optimizer(name: str, lr: float, **kwargs) -> SGD | Adagrad:
    """The optimizer registered under `name` (`sgd`, `adagrad`)."""
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; valid: {', '.join(sorted(OPTIMIZERS))}")
    return OPTIMIZERS[name](lr, **kwargs)
