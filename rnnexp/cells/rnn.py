"""The simple recurrent cell: min-char-rnn's tanh layer, and Elman's sigmoid one.

    h_t = f(a_t + h_{t-1} Whh)          a_t = x_t Wxh + bh, projected by the network

f is tanh or the logistic sigmoid. Backward runs BPTT through the whole chunk, or none
(`bptt=False`, Elman 1990): h_{t-1} is then a context copy fed as a constant input, and no
gradient flows through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from rnnexp.cells.jit import kernel
from rnnexp.cells.recurrence import Cell
from rnnexp.cells.scalars import sigmoid, tanh
from rnnexp.errors import ConfigError

ACTIVATIONS = ("tanh", "sigmoid")


@dataclass(kw_only=True)
class Options:
    """The cell's own keys of the model config (rnnexp/config.py)."""

    activation: str = "tanh"  # tanh | sigmoid
    bptt: bool = True  # False: Elman's context units, no gradient through h_{t-1}

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"unknown model.activation {self.activation!r}; valid: {', '.join(ACTIVATIONS)}"
            )


class Weights(NamedTuple):
    Whh: np.ndarray  # (H, H)
    logistic: bool  # f is the sigmoid, not tanh


class Trace(NamedTuple):  # recurrence.Cell.buffers: z_t is the pre-activation
    states: np.ndarray
    z: np.ndarray
    dz: np.ndarray
    dh: np.ndarray
    da: np.ndarray


@kernel
def _df(h, logistic, one):
    """Its derivative, written in terms of h = f(z): 1 - h^2, or h (1 - h)."""
    return h * (one - h) if logistic else one - h * h


@kernel
def elementwise(w, a, tr, t):
    """Step t's elementwise work, every row: h_t = f(z_t), z_t (B, H) = a_t + h_{t-1} Whh."""
    logistic, (states, z, _, _, _) = w[1], tr
    z, h = z[t], states[0, t + 1]
    for b in range(z.shape[0]):  # rows as 1-D views: with them LLVM vectorizes the j loop
        zb, hb = z[b], h[b]
        if logistic:  # a loop each: one choosing per element did not vectorize (12 ns, 1.8)
            for j in range(zb.shape[0]):
                hb[j] = sigmoid(zb[j])
        else:
            for j in range(zb.shape[0]):
                hb[j] = tanh(zb[j])


@kernel
def elementwise_back(w, dh, tr, t):
    """Step t back, every row: dz_t = (product + dh[t]) f'(z_t), the gradient at z_t from
    h_t, which the step after reaches through its product and the outside through dh[t]."""
    logistic, (states, _, dz, product, _) = w[1], tr
    out, h, dz = dh[t], states[0, t + 1], dz[t]
    one = dz.dtype.type(1)
    for b in range(dz.shape[0]):  # rows as 1-D views, for SIMD (elementwise)
        pb, ob, hb, db = product[b], out[b], h[b], dz[b]
        for j in range(db.shape[0]):
            db[j] = (pb[j] + ob[j]) * _df(hb[j], logistic, one)


class RNN(Cell):
    gates = 1
    Options, Weights, Trace = Options, Weights, Trace
    elementwise, elementwise_back = staticmethod(elementwise), staticmethod(elementwise_back)

    def __init__(self, hidden_size: int, activation: str = "tanh", bptt: bool = True):
        super().__init__(hidden_size)
        self.activation, self.bptt = activation, bptt
        self.logistic = activation == "sigmoid"

    def observe(self, ws) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return ws.hs[1:], {}  # no gates

    def numpy_forward(self, p: dict, a: np.ndarray, state: list) -> dict:
        """The chunk in plain numpy: a (T, B, H), state [h_0] -> {"h": h_0 .. h_T}."""
        hs = [state[0]]
        for t in range(len(a)):
            z = a[t] + hs[-1] @ p["Whh"]
            hs.append(1 / (1 + np.exp(-z)) if self.logistic else np.tanh(z))
        return {"h": np.stack(hs)}

    def numpy_backward(self, p: dict, dh: np.ndarray, saved: dict) -> tuple[np.ndarray, dict]:
        """dh (T, B, H) the gradient at each h_t from outside -> (da (T, B, H), {"Whh"})."""
        hs, dnext = saved["h"], np.zeros_like(dh[0])
        da = np.empty_like(dh)
        for t in reversed(range(len(dh))):
            h = hs[t + 1]
            da[t] = (dh[t] + dnext) * (h * (1 - h) if self.logistic else 1 - h * h)
            if self.bptt:  # else h_{t-1} is a constant input: nothing flows back through it
                dnext = da[t] @ p["Whh"].T
        H = dh.shape[2]
        return da, {"Whh": hs[:-1].reshape(-1, H).T @ da.reshape(-1, H)}


CELL = RNN
