"""The simple recurrent cell: min-char-rnn's tanh layer, and Elman's sigmoid one.

    h_t = f(a_t + h_{t-1} Whh)          a_t = x_t Wxh + bh, projected by the network

f is tanh or the logistic sigmoid. Backward runs BPTT through the whole chunk, or none
(`bptt=False`, Elman 1990): h_{t-1} is then a context copy fed as a constant input, and no
gradient flows through it.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from rnnexp.cells.jit import SMALL_BATCH, add_product, copy, kernel, product_t
from rnnexp.cells.ops import recurrent_product, transposed, xty
from rnnexp.cells.scalars import sigmoid, tanh
from rnnexp.init import init_weights

ACTIVATIONS = ("tanh", "sigmoid")


@kernel
def _df(h, logistic, one):
    """Its derivative, written in terms of h = f(z): 1 - h^2, or h (1 - h)."""
    return h * (one - h) if logistic else one - h * h


@kernel
def _cell(z, logistic, h):
    """One step's elementwise work, every row: h = f(z), z (B, H) = a_t + h_{t-1} Whh, f
    tanh or the logistic sigmoid."""
    for b in range(z.shape[0]):  # rows as 1-D views: with them LLVM vectorizes the j loop
        zb, hb = z[b], h[b]
        if logistic:  # a loop each: one choosing per element did not vectorize (12 ns, 1.8)
            for j in range(zb.shape[0]):
                hb[j] = sigmoid(zb[j])
        else:
            for j in range(zb.shape[0]):
                hb[j] = tanh(zb[j])


@kernel
def small_step(Whh, a_t, h_prev, z, logistic, h):
    """A step at a small batch, its product included: z = a_t + h_prev Whh, then _cell."""
    copy(a_t, z)
    add_product(h_prev, Whh, z)
    _cell(z, logistic, h)


@kernel
def _steps(Whh, a, hs, z, logistic):
    """The chunk at a small batch, in one call: small_step for t = 0 .. T-1."""
    for t in range(a.shape[0]):
        small_step(Whh, a[t], hs[t], z, logistic, hs[t + 1])


@kernel
def _cell_back(product, dh_out, h, logistic, dz):
    """One step back, every row: dz = (product + dh_out) f'(z), the gradient at z_t from
    h_t, which the step after reaches through its product and the outside through dh_out."""
    one = dz.dtype.type(1)
    for b in range(dz.shape[0]):  # rows as 1-D views, for SIMD (_cell)
        pb, ob, hb, db = product[b], dh_out[b], h[b], dz[b]
        for j in range(db.shape[0]):
            db[j] = (pb[j] + ob[j]) * _df(hb[j], logistic, one)


@kernel
def _back_steps(Whh, dh, hs, logistic, dz, product, bptt):
    """The chunk backward in one call: _cell_back, then dz_t Whh.T, at a small batch; or,
    without BPTT (product stays 0), at any batch."""
    for t in range(dh.shape[0] - 1, -1, -1):
        _cell_back(product, dh[t], hs[t + 1], logistic, dz[t])
        if bptt:
            product_t(dz[t], Whh, product)


class RNN:
    gates = 1
    parts = ("h",)

    def __init__(self, hidden_size: int, activation: str = "tanh", bptt: bool = True):
        self.H, self.activation, self.bptt = hidden_size, activation, bptt
        self.logistic = activation == "sigmoid"

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
            dz=np.empty((T, B, H), dtype),  # gradient at the pre-activations
            tmp=tmp,
            scratch=tmp,  # what step writes into
            WhhT=None,  # a contiguous Whh.T, for large batches
        )

    def step(self, p: dict, a_t: np.ndarray, state: list, out: list, scratch) -> None:
        """h = f(a_t + h_prev Whh): state [h_prev] -> out [h], each (B, H)."""
        if a_t.shape[0] < SMALL_BATCH:
            small_step(p["Whh"], a_t, state[0], scratch, self.logistic, out[0])
        else:  # the product in BLAS, the rest in one compiled pass
            recurrent_product(state[0], p["Whh"], scratch, None, add=a_t)
            _cell(scratch, self.logistic, out[0])

    def forward(self, p: dict, a: np.ndarray, state: list, ws) -> list:
        h, tmp = ws.hs, ws.scratch
        h[0] = state[0]
        if a.shape[1] < SMALL_BATCH:
            _steps(p["Whh"], a, h, tmp, self.logistic)
            return [h[-1]]
        for t in range(a.shape[0]):
            self.step(p, a[t], [h[t]], [h[t + 1]], tmp)
        return [h[-1]]

    def observe(self, ws) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return ws.hs[1:], {}  # no gates

    def backward(self, p: dict, dh: np.ndarray, ws, g: dict) -> np.ndarray:
        T, B, H = dh.shape
        h, dz, product = ws.hs, ws.dz, ws.tmp
        product.fill(0)  # nothing reaches h_T from the next chunk (truncated BPTT)
        if B < SMALL_BATCH or not self.bptt:  # without BPTT the context units are constants
            _back_steps(p["Whh"], dh, h, self.logistic, dz, product, self.bptt)
        else:  # two calls a step: the pointwise pass, the product in BLAS
            WhhT = transposed(p["Whh"], ws, B)
            for t in range(T - 1, -1, -1):
                _cell_back(product, dh[t], h[t + 1], self.logistic, dz[t])
                np.dot(dz[t], WhhT, out=product)
        xty(h[:-1].reshape(T * B, H), dz.reshape(T * B, H), out=g["Whh"])
        return dz
