"""One character at a time through the whole network, compiled: sampling's loop, and its
one-step form (`CharRNN.stepper`). Each layer steps with its cell's small-batch step, the one
the chunk forward runs at batch 1 (recurrence.step: the recurrence is written once); around
it, the per-character form of model.py's input projections and readout, then the draw.

Each layer's state lives in a trace of one step (its cell's), at t = 0; the layers' weights
and traces are tuples over layers (numba's typed form of a list of one type).
"""

from __future__ import annotations

import math

import numpy as np

from rnnexp.cells.jit import add_product, fill_rows, kernel
from rnnexp.cells.recurrence import STATES, step


@kernel
def advance(weights, traces, Wxh, bh, Why, by, x, a, logits):
    """Feed character x through every layer, each layer's state (its trace at t = 0)
    updated; logits (1, V) the readout after it. a (1, 1, G) is a buffer."""
    for l in range(len(weights)):
        if l == 0:  # a row of Wxh + bh, as the chunk forward's gathered table
            row, b = Wxh[0][x], bh[0]
            for j in range(b.shape[0]):
                a[0, 0, j] = row[j] + b[j]
        else:
            fill_rows(a[0], bh[l])
            add_product(traces[l - 1][STATES][0, 0], Wxh[l], a[0])
        step(weights[l], a, traces[l])
    fill_rows(logits, by)
    add_product(traces[len(weights) - 1][STATES][0, 0], Why, logits)


@kernel
def generate(weights, traces, Wxh, bh, Why, by, x, a, logits, u, temperature, out):
    """out[k] = the character drawn after feeding x, then each drawn one: from the softmax
    of logits / temperature by its inverse CDF at u[k] in [0, 1) (float64 whatever the
    model's dtype), or the likeliest at temperature 0 (u unused)."""
    V = logits.shape[1]
    p = np.empty(V)
    for k in range(out.shape[0]):
        advance(weights, traces, Wxh, bh, Why, by, x, a, logits)
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
        self.cells, self.traces = cells, tuple(cell.trace(1, 1, dt) for cell in cells)
        self.args = (
            tuple(cell.weights(p) for cell, p in zip(cells, layers, strict=True)),
            tuple(tuple(tr) for tr in self.traces),  # plain tuples (recurrence.Cell)
            tuple(p["Wxh"] for p in layers),
            tuple(p["bh"] for p in layers),
            model.params["Why"],
            model.params["by"],
        )
        self.a = np.empty((1, 1, cells[0].gates * model.config.hidden_size), dt)
        self.logits = np.empty((1, model.config.vocab_size), dt)

    def _pack(self, state: list) -> None:
        parts = iter(state)
        for tr in self.traces:
            for k in range(len(tr.states)):
                tr.states[k, 0] = next(parts)

    def _unpack(self, state: list) -> None:
        parts = iter(state)
        for tr in self.traces:
            for k in range(len(tr.states)):
                next(parts)[...] = tr.states[k, 0]

    def __call__(self, x: int, state: list) -> np.ndarray:
        self._pack(state)
        advance(*self.args, x, self.a, self.logits)
        self._unpack(state)
        return self.logits

    def generate(self, x: int, state: list, u: np.ndarray, temperature: float) -> np.ndarray:
        """The ids drawn after x, one per entry of u (see the kernel); state in place."""
        out = np.empty(len(u), np.int64)
        self._pack(state)
        generate(*self.args, x, self.a, self.logits, u, float(temperature), out)
        self._unpack(state)
        return out
