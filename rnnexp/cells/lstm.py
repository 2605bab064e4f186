"""The LSTM cell with a forget gate (Hochreiter & Schmidhuber 1997; Gers et al. 2000), gates
in PyTorch's order i, f, g, o, so its weights copy over from `nn.LSTM` as they are:

    z_t = a_t + h_{t-1} Whh                 a_t = x_t Wxh + bh (4H wide), from the network
    i = σ(z^i)   f = σ(z^f)   g = tanh(z^g)   o = σ(z^o)
    c_t = f ⊙ c_{t-1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)

It carries (h, c). The forget gate's bias starts at 1, as in char-rnn, so the cell remembers
from the first step. (PyTorch's b_ih + b_hh are the one bias bh here.)
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from rnnexp.cells.jit import SMALL_BATCH, add_product, copy, kernel, product_t
from rnnexp.cells.ops import (
    backward_transpose,
    gemm_buffers,
    recurrent_product,
    xty,
)
from rnnexp.cells.scalars import sigmoid, tanh
from rnnexp.init import init_weights


@kernel
def _cell(z, c_prev, c, tc, h):
    """One step's elementwise work, every row: z (B, 4H) the pre-activations in, the gates
    i, f, g, o out; c_{t-1} -> c, tanh(c) into tc, h = o tanh(c), each (B, H). c may be
    c_prev and h the previous h (sampling steps in place: each element is read first)."""
    B, H = c.shape
    for b in range(B):  # rows as 1-D views: with them LLVM vectorizes the loop over j
        zi, zf, zg, zo = z[b, :H], z[b, H : 2 * H], z[b, 2 * H : 3 * H], z[b, 3 * H :]
        cp, cb, tb, hb = c_prev[b], c[b], tc[b], h[b]
        for j in range(H):
            i, f, g, o = sigmoid(zi[j]), sigmoid(zf[j]), tanh(zg[j]), sigmoid(zo[j])
            cc = f * cp[j] + i * g
            t = tanh(cc)
            zi[j], zf[j], zg[j], zo[j] = i, f, g, o
            cb[j], tb[j], hb[j] = cc, t, o * t


@kernel
def small_step(Whh, a_t, h_prev, c_prev, z, tc, h, c):
    """A step at a small batch, its product included: z = a_t + h_prev Whh, then _cell."""
    copy(a_t, z)
    add_product(h_prev, Whh, z)
    _cell(z, c_prev, c, tc, h)


@kernel
def _steps(Whh, a, hs, cs, gates, tc):
    """The chunk at a small batch, in one call: small_step for t = 0 .. T-1."""
    for t in range(a.shape[0]):
        small_step(Whh, a[t], hs[t], cs[t], gates[t], tc[t], hs[t + 1], cs[t + 1])


@kernel
def _cell_back(dh_t, dh_out, dc, gates, tc, c_prev, dz):
    """One step back, every row: dh_t (B, H) the gradient at h_t through h_{t+1} (the last
    step's product), dh_out at h_t from outside; dc at c_t from c_{t+1}, left at c_{t-1}.
    Writes dz (B, 4H), the gradient at z_t (and a_t)."""
    B, H = dc.shape
    one = dz.dtype.type(1)
    for b in range(B):  # rows as 1-D views, for SIMD (_cell)
        gi, gf, gg, go = (
            gates[b, :H],
            gates[b, H : 2 * H],
            gates[b, 2 * H : 3 * H],
            gates[b, 3 * H :],
        )
        di, df, dg, do = dz[b, :H], dz[b, H : 2 * H], dz[b, 2 * H : 3 * H], dz[b, 3 * H :]
        dhb, dob, dcb, tb, cp = dh_t[b], dh_out[b], dc[b], tc[b], c_prev[b]
        for j in range(H):
            i, f, g, o, t = gi[j], gf[j], gg[j], go[j], tb[j]
            dh = dhb[j] + dob[j]
            d = dcb[j] + dh * o * (one - t * t)  # dL/dc_t: through h_t, and from c_{t+1}
            di[j] = d * g * i * (one - i)
            df[j] = d * cp[j] * f * (one - f)
            dg[j] = d * i * (one - g * g)
            do[j] = dh * t * o * (one - o)
            dcb[j] = d * f


@kernel
def _back_steps(Whh, dh, gates, tc, cs, dz, dh_t, dc):
    """The chunk backward at a small batch, in one call: _cell_back, then dh_t = dz_t Whh.T."""
    for t in range(dh.shape[0] - 1, -1, -1):
        _cell_back(dh_t, dh[t], dc, gates[t], tc[t], cs[t], dz[t])
        product_t(dz[t], Whh, dh_t)


class LSTM:
    gates = 4
    parts = ("h", "c")

    def __init__(self, hidden_size: int):
        self.H = hidden_size

    def param_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        H = self.H
        return {"Wxh": (n_in, 4 * H), "Whh": (H, 4 * H), "bh": (4 * H,)}

    def init(self, shapes: dict, rng: np.random.Generator, scheme: str, scale: float,
             dtype) -> dict:  # fmt: skip
        p = init_weights(shapes, rng, scheme, scale, dtype)
        p["bh"][self.H : 2 * self.H] = 1.0  # forget gate open
        return p

    def workspace(self, B: int, T: int, dtype) -> SimpleNamespace:
        H = self.H
        return SimpleNamespace(
            hs=np.empty((T + 1, B, H), dtype),  # h_0 .. h_T
            cs=np.empty((T + 1, B, H), dtype),  # c_0 .. c_T
            gates=np.empty((T, B, 4 * H), dtype),  # i, f, g, o after their nonlinearities
            tc=np.empty((T, B, H), dtype),  # tanh(c_t)
            dz=np.empty((T, B, 4 * H), dtype),  # gradient at z_t: also at a_t
            dh=np.empty((B, H), dtype),
            dc=np.empty((B, H), dtype),
            WhhT=None,  # a contiguous Whh.T, for large batches
            fast=None,  # the forward's gemm_buffers
            scratch=(np.empty((B, 4 * H), dtype), np.empty((B, H), dtype), None),
        )

    def step(self, p: dict, a_t: np.ndarray, state: list, out: list, scratch) -> None:
        """state [h, c] -> out [h, c], each (B, H); scratch: z (B, 4H) and tanh c (B, H),
        which keep the gates and tanh(c_t) after the step, and the buffers of a faster
        recurrent GEMM at large B (ops.gemm_buffers)."""
        z, tc, fast = scratch
        if a_t.shape[0] < SMALL_BATCH:
            small_step(p["Whh"], a_t, state[0], state[1], z, tc, out[0], out[1])
        else:  # the product in BLAS, the rest in one compiled pass
            recurrent_product(state[0], p["Whh"], z, fast, add=a_t)
            _cell(z, state[1], out[1], tc, out[0])

    def forward(self, p: dict, a: np.ndarray, state: list, ws) -> list:
        h, c, gates, tc = ws.hs, ws.cs, ws.gates, ws.tc
        h[0], c[0] = state
        if a.shape[1] < SMALL_BATCH:
            _steps(p["Whh"], a, h, c, gates, tc)
            return [h[-1], c[-1]]
        ws.fast = fast = gemm_buffers(p["Whh"], ws, a.shape[1])  # backward reuses it
        for t in range(a.shape[0]):
            self.step(p, a[t], [h[t], c[t]], [h[t + 1], c[t + 1]], (gates[t], tc[t], fast))
        return [h[-1], c[-1]]

    def observe(self, ws) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        H, gates = self.H, ws.gates  # g (the candidate) is a tanh, not a gate
        named = {"input": gates[:, :, :H], "forget": gates[:, :, H : 2 * H]}
        return ws.tc, named | {"output": gates[:, :, 3 * H :]}

    def backward(self, p: dict, dh: np.ndarray, ws, g: dict) -> np.ndarray:
        T, B, H = dh.shape
        dz, dh_t, dc = ws.dz, ws.dh, ws.dc
        dc.fill(0)
        dh_t.fill(0)  # the gradient reaching h_T from the next chunk: none (truncated BPTT)
        if B < SMALL_BATCH:
            _back_steps(p["Whh"], dh, ws.gates, ws.tc, ws.cs, dz, dh_t, dc)
        else:  # two calls a step: the pointwise pass, the product in BLAS
            WhhT = backward_transpose(p["Whh"], ws)
            for t in range(T - 1, -1, -1):
                _cell_back(dh_t, dh[t], dc, ws.gates[t], ws.tc[t], ws.cs[t], dz[t])
                np.dot(dz[t], WhhT, out=dh_t)  # on to h_{t-1}
        xty(ws.hs[:-1].reshape(T * B, H), dz.reshape(T * B, 4 * H), out=g["Whh"])
        return dz
