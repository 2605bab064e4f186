"""One character at a time through the whole network, compiled: sampling's loop, and its
one-step form (`CharRNN.stepper`). Each layer steps with its cell's own kernel (`small_step`,
the one the chunk forward runs at batch 1: the recurrence is written once); around it, the
per-character form of model.py's input projections and readout, then the draw.

A model's state is a list of (1, H) arrays (h, or h and c, per layer); here it is packed as
one (L, 2, 1, H) array for the length of a call, each layer's parameters as tuples over
layers (numba's typed form of a list of arrays).
"""

from __future__ import annotations

import math

import numpy as np

from rnnexp.cells import GRU, LSTM, RNN, gru, lstm, rnn
from rnnexp.cells.jit import add_product, fill_rows, kernel

KINDS = {RNN: 0, LSTM: 1, GRU: 2}  # which cell's step the kernel runs


@kernel
def advance(kind, logistic, Wxh, Whh, bh, bhn, Why, by, x, state, a, z, tmp, logits):
    """Feed character x through every layer, state (L, 2, 1, H) updated in place (index 1:
    the LSTM's c); logits (1, V) the readout after it. a (1, G), z (1, G), tmp (1, H) are
    buffers. Each step reads the old state before it writes the new one."""
    for l in range(len(Whh)):
        if l == 0:  # a row of Wxh + bh, as the chunk forward's gathered table
            row, b = Wxh[0][x], bh[0]
            for j in range(b.shape[0]):
                a[0, j] = row[j] + b[j]
        else:
            fill_rows(a, bh[l])
            add_product(state[l - 1, 0], Wxh[l], a)
        h = state[l, 0]
        if kind == 0:
            rnn.small_step(Whh[l], a, h, z, logistic, h)
        elif kind == 1:
            lstm.small_step(Whh[l], a, h, state[l, 1], z, tmp, h, state[l, 1])
        else:
            gru.small_step(Whh[l], bhn[l], a, h, z, tmp, h)
    fill_rows(logits, by)
    add_product(state[len(Whh) - 1, 0], Why, logits)


@kernel
def generate(kind, logistic, Wxh, Whh, bh, bhn, Why, by, x, state, a, z, tmp, logits,
             u, temperature, out):  # fmt: skip
    """out[k] = the character drawn after feeding x, then each drawn one: from the softmax
    of logits / temperature by its inverse CDF at u[k] in [0, 1) (float64 whatever the
    model's dtype), or the likeliest at temperature 0 (u unused)."""
    V = logits.shape[1]
    p = np.empty(V)
    for k in range(out.shape[0]):
        advance(kind, logistic, Wxh, Whh, bh, bhn, Why, by, x, state, a, z, tmp, logits)
        y = logits[0]
        best = 0
        for v in range(1, V):
            if y[v] > y[best]:
                best = v
        if temperature == 0:
            x = best
        else:
            total, top = 0.0, float(y[best])
            for v in range(V):
                p[v] = math.exp((float(y[v]) - top) / temperature)
                total += p[v]
            target, cdf, x = u[k] * total, 0.0, V - 1
            for v in range(V):
                cdf += p[v]
                if cdf > target:
                    x = v
                    break
        out[k] = x


class Stepper:
    """step(x, state) -> logits (1, V): one character through every layer, the state (a
    list of (1, H) arrays) updated in place; and generate(), sampling's whole loop. Buffers
    are made once."""

    def __init__(self, model) -> None:
        cells, layers, dt = model.cells, model._layers, model.dtype
        H, G = model.config.hidden_size, cells[0].gates * model.config.hidden_size
        empty = np.empty(0, dt)
        self.args = (
            KINDS[type(cells[0])],
            bool(getattr(cells[0], "logistic", False)),
            tuple(p["Wxh"] for p in layers),
            tuple(p["Whh"] for p in layers),
            tuple(p["bh"] for p in layers),
            tuple(p.get("bhn", empty) for p in layers),
            model.params["Why"],
            model.params["by"],
        )
        self.parts = [len(c.parts) for c in cells]
        self.state = np.zeros((len(cells), 2, 1, H), dt)
        self.a, self.z, self.tmp = np.empty((1, G), dt), np.empty((1, G), dt), np.empty((1, H), dt)
        self.logits = np.empty((1, model.config.vocab_size), dt)

    def _pack(self, state: list) -> None:
        i = 0
        for l, n in enumerate(self.parts):
            self.state[l, :n] = state[i : i + n]
            i += n

    def _unpack(self, state: list) -> None:
        i = 0
        for l, n in enumerate(self.parts):
            for k in range(n):
                state[i + k][...] = self.state[l, k]
            i += n

    def __call__(self, x: int, state: list) -> np.ndarray:
        self._pack(state)
        advance(*self.args, x, self.state, self.a, self.z, self.tmp, self.logits)
        self._unpack(state)
        return self.logits

    def generate(self, x: int, state: list, u: np.ndarray, temperature: float) -> np.ndarray:
        """The ids drawn after x, one per entry of u (see the kernel); state in place."""
        out = np.empty(len(u), np.int64)
        self._pack(state)
        generate(*self.args, x, self.state, self.a, self.z, self.tmp, self.logits, u,
                 float(temperature), out)  # fmt: skip
        self._unpack(state)
        return out
