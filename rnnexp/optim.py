"""Optimizers that see only the params and grads dicts (same keys), plus elementwise clipping.

Each kind is a dataclass whose fields are its keys (what conf/optimizer/NAME.yaml sets, and
the schema Hydra checks that file and the command line against), checked once when it is
made, a value nothing changes; the live `Optimizer` holds one, with the learning rate of the
step and the state. A kind writes its update once, as one compiled pass over the elements
(`update`, numba), run on the one buffer of a FlatParams (one call for every parameter at
once) or per array for plain dicts, the same numbers either way. Their state is keyed by
parameter name (`mem.l0.Whh`, `m.Why`, …), so it is saved and restored as a flat dict of
arrays and a run resumes exactly.
(Notebook 000 zipped its Adagrad memories in a different order than its parameters, so one
matrix was scaled by another's history: keys make that impossible.)

    sgd      p -= lr g
    adagrad  mem += g²;  p -= lr g / sqrt(mem + eps)                  (min-char-rnn)
    rmsprop  ms = decay ms + (1 - decay) g²;  p -= lr g / (sqrt(ms) + eps)   (char-rnn)
    adam     m = β1 m + (1 - β1) g;  v = β2 v + (1 - β2) g²;  at step t
             p -= lr / (1 - β1^t) · m / (sqrt(v) / sqrt(1 - β2^t) + eps)   (PyTorch's)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from rnnexp.cells.jit import kernel
from rnnexp.errors import ConfigError, check_interval
from rnnexp.params import FlatParams, same_layout
from rnnexp.resources import option_values

Params = dict[str, np.ndarray]


def clip_grads(grads: Params, clip: float | None) -> None:
    """Clip every gradient elementwise to [-clip, clip] in place (min-char-rnn); None: no clip."""
    if clip is None:
        return
    for g in [grads.flat] if isinstance(grads, FlatParams) else grads.values():
        _clip(_flat(g), clip)


@kernel
def _clip(g, clip):
    """g = min(max(g, -clip), clip), a NaN kept (np.clip's 8 us a min-char-rnn step: ~2)."""
    hi = g.dtype.type(clip)
    for i in range(g.shape[0]):
        x = g[i]
        g[i] = hi if x > hi else (-hi if x < -hi else x)


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


@dataclass
class OptimizerConfig:
    """An optimizer's settings, a value nothing changes (the `optimizer` node of a run's
    settings): its keys, checked once here, and its update rule (`update`)."""

    lr: float  # the step size a run starts with (a schedule changes the live optimizer's)
    slots: ClassVar[tuple[str, ...]] = ()  # names of the per-parameter state arrays
    counts_steps: ClassVar[bool] = False  # its update needs the step number (Adam's t)

    def __post_init__(self) -> None:
        self.lr = _check_lr(self.lr)

    @property
    def initial(self) -> float:
        """What the state arrays start at."""
        return 0.0

    def update(self, lr: float, t: int, p: np.ndarray, g: np.ndarray, *state: np.ndarray) -> None:
        """One step on p (in place), at learning rate `lr`, the `t`-th step."""
        raise NotImplementedError


class Optimizer:
    """A live optimizer: its settings (`config`), the learning rate of this step (a schedule
    sets `lr`), the steps taken and its state, arrays by slot and parameter name, made on the
    first step (filled with the config's `initial`); the update runs on one buffer of a
    FlatParams or per array."""

    def __init__(self, config: OptimizerConfig):
        self.config, self.lr, self.t = config, config.lr, 0
        self.state: dict[str, dict[str, np.ndarray]] = {s: {} for s in config.slots}

    def step(self, params: Params, grads: Params) -> None:
        c = self.config
        self.t += 1
        if c.slots and not self.state[c.slots[0]] and same_layout(params, grads):
            for s in c.slots:
                self.state[s] = params.like()
                self.state[s].flat.fill(c.initial)
        if same_layout(params, grads, *self.state.values()):
            c.update(self.lr, self.t, params.flat, grads.flat,
                     *(self.state[s].flat for s in c.slots))  # fmt: skip
            return
        for k, g in grads.items():
            arrays = []
            for s in c.slots:
                if k not in self.state[s]:
                    self.state[s][k] = np.full_like(params[k], c.initial)
                arrays.append(self.state[s][k])
            c.update(self.lr, self.t, params[k], g, *arrays)

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {f"{s}.{k}": v.copy() for s in self.config.slots for k, v in self.state[s].items()}
        return state | ({"t": np.array(self.t)} if self.config.counts_steps else {})

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        state = dict(state)
        self.t = int(state.pop("t", 0))
        slots = self.config.slots
        bad = [k for k in state if k.split(".", 1)[0] not in slots]
        if bad:
            raise ValueError(f"not {type(self.config).__name__} state: {sorted(bad)}")
        for s in slots:
            arrays = {k[len(s) + 1 :]: np.array(v) for k, v in state.items()
                      if k.startswith(f"{s}.")}  # fmt: skip
            self.state[s] = FlatParams.of(arrays) if arrays else {}


@dataclass
class SGD(OptimizerConfig):
    """p -= lr * g"""

    name: str = field(default="sgd", init=False)  # the option's own name (fixed)

    def update(self, lr, t, p, g):
        _sgd(_flat(p), _flat(g), lr)


@dataclass
class Adagrad(OptimizerConfig):
    """min-char-rnn's update: mem += g**2; p -= lr * g / sqrt(mem + eps). `initial_accumulator`
    is where mem starts: 0 in min-char-rnn and PyTorch, 0.1 in TensorFlow, whose first step is
    then not ±lr on every weight whatever its gradient."""

    eps: float  # inside the square root
    initial_accumulator: float  # where mem starts
    name: str = field(default="adagrad", init=False)  # the option's own name (fixed)
    slots = ("mem",)  # running sum of squared gradients

    def __post_init__(self) -> None:
        super().__post_init__()
        self.eps = check_interval("optimizer.eps", self.eps, 1e-30, 1)
        key = "optimizer.initial_accumulator"
        self.initial_accumulator = check_interval(key, self.initial_accumulator, 0, 1e6)

    @property
    def initial(self) -> float:
        return self.initial_accumulator

    def update(self, lr, t, p, g, mem):
        _adagrad(_flat(p), _flat(g), _flat(mem), lr, self.eps)


@dataclass
class RMSprop(OptimizerConfig):
    """char-rnn's optimizer (torch7 optim.rmsprop, PyTorch's RMSprop without momentum):
    a running mean of squared gradients that forgets, so steps do not shrink forever."""

    decay: float  # how much of the mean square each step keeps
    eps: float  # added to its square root
    name: str = field(default="rmsprop", init=False)  # the option's own name (fixed)
    slots = ("ms",)  # running mean of squared gradients

    def __post_init__(self) -> None:
        super().__post_init__()
        self.decay = check_interval("optimizer.decay", self.decay, 0, 1)
        self.eps = check_interval("optimizer.eps", self.eps, 1e-30, 1)

    def update(self, lr, t, p, g, ms):
        _rmsprop(_flat(p), _flat(g), _flat(ms), lr, self.decay, self.eps)


@dataclass
class Adam(OptimizerConfig):
    """Adam (Kingma & Ba 2015) as PyTorch computes it: bias-corrected running means of the
    gradient and its square."""

    beta1: float  # the decay of the running mean of g
    beta2: float  # and of g**2
    eps: float  # added to the square root
    name: str = field(default="adam", init=False)  # the option's own name (fixed)
    slots = ("m", "v")
    counts_steps = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.beta1 = check_interval("optimizer.beta1", self.beta1, 0, 1)
        self.beta2 = check_interval("optimizer.beta2", self.beta2, 0, 1)
        self.eps = check_interval("optimizer.eps", self.eps, 1e-30, 1)

    def update(self, lr, t, p, g, m, v):
        step = lr / (1 - self.beta1**t)  # the bias corrections of step t
        root = math.sqrt(1 - self.beta2**t)
        _adam(_flat(p), _flat(g), _flat(m), _flat(v), step, self.beta1, self.beta2, root, self.eps)


def _flat(a: np.ndarray) -> np.ndarray:
    """a as one row, a view: the kernels update it in place."""
    if not a.flags.c_contiguous:
        raise ValueError("an optimizer updates contiguous arrays only")
    return a.reshape(-1)


# the updates, one pass each over the elements, in the parameters' dtype (x.dtype.type: a
# Python float is float64 in a kernel)
@kernel
def _sgd(p, g, lr):
    lr = p.dtype.type(lr)
    for i in range(p.shape[0]):
        p[i] -= lr * g[i]


@kernel
def _adagrad(p, g, mem, lr, eps):
    lr, eps = p.dtype.type(lr), p.dtype.type(eps)
    for i in range(p.shape[0]):
        mem[i] += g[i] * g[i]
        p[i] -= lr * g[i] / np.sqrt(mem[i] + eps)


@kernel
def _rmsprop(p, g, ms, lr, decay, eps):
    lr, eps, keep = p.dtype.type(lr), p.dtype.type(eps), p.dtype.type(decay)
    new = p.dtype.type(1 - decay)
    for i in range(p.shape[0]):
        ms[i] = keep * ms[i] + new * (g[i] * g[i])
        p[i] -= lr * g[i] / (np.sqrt(ms[i]) + eps)


@kernel
def _adam(p, g, m, v, step, beta1, beta2, root, eps):
    t = p.dtype.type
    step, b1, b2, root, eps = t(step), t(beta1), t(beta2), t(root), t(eps)
    n1, n2 = t(1 - beta1), t(1 - beta2)
    for i in range(p.shape[0]):
        m[i] = b1 * m[i] + n1 * g[i]
        v[i] = b2 * v[i] + n2 * (g[i] * g[i])
        p[i] -= step * (m[i] / (np.sqrt(v[i]) / root + eps))  # PyTorch's order


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam}
"""Each optimizer's settings dataclass by name: the keys `make_optimizer` and `optimizer=` take."""


def make_optimizer(name: str, **values: float) -> Optimizer:
    """A live optimizer of the kind registered under `name`, its keys as
    conf/optimizer/NAME.yaml sets them (the one place their values are written) but those
    given in `values`.

    Examples:
        >>> make_optimizer("adam", lr=0.01).config
        Adam(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-08, name='adam')
    """
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; valid: {', '.join(sorted(OPTIMIZERS))}")
    return Optimizer(OPTIMIZERS[name](**option_values("optimizer", name, OPTIMIZERS[name], values)))
