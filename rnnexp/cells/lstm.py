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

from rnnexp.cells.ops import init_weights, sigmoid, xty


class LSTM:
    gates = 4
    parts = ("h", "c")

    def __init__(self, hidden_size: int):
        self.H = hidden_size

    def param_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        H = self.H
        return {"Wxh": (n_in, 4 * H), "Whh": (H, 4 * H), "bh": (4 * H,)}

    def init(self, shapes: dict, rng: np.random.Generator, scale: float, dtype) -> dict:
        p = init_weights(shapes, rng, scale, dtype)
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
            tmp=np.empty((B, H), dtype),
            scratch=(np.empty((B, 4 * H), dtype), np.empty((B, H), dtype)),
        )

    def step(self, p: dict, a_t: np.ndarray, state: list, out: list, scratch) -> None:
        """state [h, c] -> out [h, c], each (B, H); scratch (z (B, 4H), tanh c (B, H)) keeps
        the gates and tanh(c_t) after the step."""
        H = self.H
        z, tc = scratch
        np.dot(state[0], p["Whh"], out=z)
        z += a_t
        sigmoid(z[:, : 2 * H], out=z[:, : 2 * H])  # i, f
        np.tanh(z[:, 2 * H : 3 * H], out=z[:, 2 * H : 3 * H])  # g
        sigmoid(z[:, 3 * H :], out=z[:, 3 * H :])  # o
        c = out[1]
        np.multiply(z[:, H : 2 * H], state[1], out=c)
        np.multiply(z[:, :H], z[:, 2 * H : 3 * H], out=tc)  # i g, in tc until tanh(c) is due
        c += tc
        np.tanh(c, out=tc)
        np.multiply(z[:, 3 * H :], tc, out=out[0])

    def forward(self, p: dict, a: np.ndarray, state: list, ws) -> list:
        h, c, gates, tc, step = ws.hs, ws.cs, ws.gates, ws.tc, self.step
        h[0], c[0] = state
        for t in range(a.shape[0]):
            step(p, a[t], [h[t], c[t]], [h[t + 1], c[t + 1]], (gates[t], tc[t]))
        return [h[-1], c[-1]]

    def backward(self, p: dict, dh: np.ndarray, ws, g: dict) -> np.ndarray:
        T, B, H = dh.shape
        gates, tc, cs, dz = ws.gates, ws.tc, ws.cs, ws.dz
        WhhT = p["Whh"].T
        dh_t, dc, tmp = ws.dh, ws.dc, ws.tmp
        dc.fill(0)
        dh_t.fill(0)  # the gradient reaching h_T from the next chunk: none (truncated BPTT)
        for t in range(T - 1, -1, -1):
            i, f, gg, o = (gates[t][:, k * H : (k + 1) * H] for k in range(4))
            di, df, dg, do = (dz[t][:, k * H : (k + 1) * H] for k in range(4))
            dh_t += dh[t]
            np.multiply(dh_t, tc[t], out=do)  # dL/do
            np.multiply(tc[t], tc[t], out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            tmp *= o
            tmp *= dh_t
            dc += tmp  # dL/dc_t: through h_t, and from c_{t+1}
            np.multiply(dc, gg, out=di)
            np.multiply(dc, i, out=dg)
            np.multiply(dc, cs[t], out=df)
            dc *= f  # on to c_{t-1}
            for d, s in ((di, i), (df, f), (do, o)):  # through σ: s (1 - s)
                np.subtract(1.0, s, out=tmp)
                tmp *= s
                d *= tmp
            np.multiply(gg, gg, out=tmp)  # through tanh: 1 - g^2
            np.subtract(1.0, tmp, out=tmp)
            dg *= tmp
            np.dot(dz[t], WhhT, out=dh_t)  # on to h_{t-1}
        xty(ws.hs[:-1].reshape(T * B, H), dz.reshape(T * B, 4 * H), out=g["Whh"])
        return dz
