"""The simple recurrent cell: min-char-rnn's tanh layer, and Elman's sigmoid one.

    h_t = f(a_t + h_{t-1} Whh)          a_t = x_t Wxh + bh, projected by the network

f is tanh or the logistic sigmoid. Backward runs BPTT through the whole chunk, or none
(`bptt=False`, Elman 1990): h_{t-1} is then a context copy fed as a constant input, and no
gradient flows through it.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from rnnexp.cells.ops import sigmoid, transposed, xty
from rnnexp.init import init_weights

ACTIVATIONS = ("tanh", "sigmoid")


def activate(a: np.ndarray, kind: str, out: np.ndarray) -> np.ndarray:
    """out = f(a); `a` may be overwritten."""
    if kind == "tanh":
        return np.tanh(a, out=out)
    return sigmoid(a, out)


def derivative(h: np.ndarray, kind: str, out: np.ndarray) -> np.ndarray:
    """out = f'(a), written in terms of h = f(a)."""
    if kind == "tanh":
        np.multiply(h, h, out=out)  # 1 - h^2
        return np.subtract(1.0, out, out=out)
    np.subtract(1.0, h, out=out)  # h (1 - h)
    out *= h
    return out


class RNN:
    gates = 1
    parts = ("h",)

    def __init__(self, hidden_size: int, activation: str = "tanh", bptt: bool = True):
        self.H, self.activation, self.bptt = hidden_size, activation, bptt

    def param_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        H = self.H
        return {"Wxh": (n_in, H), "Whh": (H, H), "bh": (H,)}

    def init(self, shapes: dict, rng: np.random.Generator, scheme: str, scale: float,
             dtype) -> dict:  # fmt: skip
        return init_weights(shapes, rng, scheme, scale, dtype)

    def workspace(self, B: int, T: int, dtype) -> SimpleNamespace:
        H = self.H
        tmp = np.empty((B, H), dtype)
        return SimpleNamespace(
            hs=np.empty((T + 1, B, H), dtype),  # h_0 .. h_T
            deriv=np.empty((T, B, H), dtype),  # f'(a_t)
            dhraw=np.empty((T, B, H), dtype),  # gradient at the pre-activations
            tmp=tmp,
            scratch=tmp,  # what step writes into
            WhhT=None,  # a contiguous Whh.T, for large batches
        )

    def step(self, p: dict, a_t: np.ndarray, state: list, out: list, scratch) -> None:
        """h = f(a_t + h_prev Whh): state [h_prev] -> out [h], each (B, H)."""
        np.dot(state[0], p["Whh"], out=scratch)  # np.dot: the least call overhead here
        scratch += a_t
        activate(scratch, self.activation, out=out[0])

    def forward(self, p: dict, a: np.ndarray, state: list, ws) -> list:
        h, step, tmp = ws.hs, self.step, ws.scratch
        h[0] = state[0]
        for t in range(a.shape[0]):
            step(p, a[t], [h[t]], [h[t + 1]], tmp)
        return [h[-1]]

    def observe(self, ws) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return ws.hs[1:], {}  # no gates

    def backward(self, p: dict, dh: np.ndarray, ws, g: dict) -> np.ndarray:
        T, B, H = dh.shape
        h, deriv, dhraw = ws.hs, ws.deriv, ws.dhraw
        derivative(h[1:], self.activation, out=deriv)
        if not self.bptt:
            np.multiply(dh, deriv, out=dhraw)  # context units are constants
        else:
            WhhT, tmp, dot, multiply = transposed(p["Whh"], ws, B), ws.tmp, np.dot, np.multiply
            multiply(dh[T - 1], deriv[T - 1], out=dhraw[T - 1])
            for t in range(T - 2, -1, -1):
                dot(dhraw[t + 1], WhhT, out=tmp)  # dhnext
                tmp += dh[t]
                multiply(tmp, deriv[t], out=dhraw[t])
        xty(h[:-1].reshape(T * B, H), dhraw.reshape(T * B, H), out=g["Whh"])
        return dhraw
