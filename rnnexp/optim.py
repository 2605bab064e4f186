"""Optimizers that see only the params and grads dicts (same keys), plus elementwise clipping.

Their state is keyed by parameter name, so it is saved and restored as a flat dict of arrays
and a run resumes exactly. (Notebook 000 zipped its Adagrad memories in a different order
than its parameters, so one matrix was scaled by another's history: keys make that impossible.)
"""

from __future__ import annotations

import numpy as np

from rnnexp.errors import ConfigError
from rnnexp.params import FlatParams, same_layout

Params = dict[str, np.ndarray]


def clip_grads(grads: Params, clip: float | None) -> None:
    """Clip every gradient elementwise to [-clip, clip] in place (min-char-rnn); None: no clip."""
    if clip is None:
        return
    for g in [grads.flat] if isinstance(grads, FlatParams) else grads.values():
        np.clip(g, -clip, clip, out=g)


MAX_LR = 1e6  # a step of lr x a gradient entry (clipped to 5) beyond millions only blows up


def _check_lr(lr: float) -> float:
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not np.isfinite(lr) or lr <= 0:
        raise ConfigError(f"optimizer.lr must be a positive number, got {lr!r}")
    if lr > MAX_LR:
        raise ConfigError(
            f"optimizer.lr={lr:.3g} is over {MAX_LR:g}: every step would move the weights by "
            f"millions; rates that learn are near 0.001-0.1"
        )
    return float(lr)


class SGD:
    """p -= lr * g"""

    def __init__(self, lr: float):
        self.lr = _check_lr(lr)
        self._buf: np.ndarray | None = None

    def step(self, params: Params, grads: Params) -> None:
        if same_layout(params, grads):  # one buffer: the same arithmetic in two calls
            buf = self._buf
            if buf is None or buf.shape != grads.flat.shape or buf.dtype != grads.flat.dtype:
                buf = self._buf = np.empty_like(grads.flat)
            np.multiply(grads.flat, self.lr, out=buf)
            params.flat -= buf
            return
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
        self._bufs: tuple[np.ndarray, np.ndarray] | None = None

    def step(self, params: Params, grads: Params) -> None:
        if not self.mem and same_layout(params, grads):
            self.mem = params.like()
        if same_layout(params, grads, self.mem):
            self._step_flat(params.flat, grads.flat, self.mem.flat)
            return
        for k, g in grads.items():
            m = self.mem.get(k)
            if m is None:
                m = self.mem[k] = np.zeros_like(params[k])
            m += g * g
            params[k] -= self.lr * g / np.sqrt(m + self.eps)

    def _step_flat(self, p: np.ndarray, g: np.ndarray, m: np.ndarray) -> None:
        """The per-key update on whole buffers, in place, in the same order of operations."""
        if self._bufs is None or self._bufs[0].shape != g.shape or self._bufs[0].dtype != g.dtype:
            self._bufs = (np.empty_like(g), np.empty_like(g))
        a, b = self._bufs
        np.multiply(g, g, out=a)
        m += a  # mem += g * g
        np.add(m, self.eps, out=b)
        np.sqrt(b, out=b)  # sqrt(mem + eps)
        np.multiply(g, self.lr, out=a)  # lr * g
        np.divide(a, b, out=a)
        p -= a

    def state_dict(self) -> dict[str, np.ndarray]:
        return {f"mem.{k}": m.copy() for k, m in self.mem.items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        bad = [k for k in state if not k.startswith("mem.")]
        if bad:
            raise ValueError(f"not Adagrad state: {bad}")
        mem = {k.removeprefix("mem."): np.array(v) for k, v in state.items()}
        self.mem = FlatParams.of(mem) if mem else {}


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad}


def make_optimizer(name: str, lr: float, **kwargs) -> SGD | Adagrad:
    """The optimizer registered under `name` (`sgd`, `adagrad`)."""
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; valid: {', '.join(sorted(OPTIMIZERS))}")
    return OPTIMIZERS[name](lr, **kwargs)
