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

from typing import NamedTuple

import numpy as np

from rnnexp.cells.jit import kernel
from rnnexp.cells.recurrence import Cell
from rnnexp.cells.scalars import sigmoid, tanh


class Weights(NamedTuple):
    Whh: np.ndarray  # (H, 4H)


class Trace(NamedTuple):  # recurrence.Cell.buffers, and:
    states: np.ndarray  # h_t, c_t
    z: np.ndarray  # z_t, then the gates i, f, g, o after their nonlinearities
    dz: np.ndarray  # the gradient at z_t: also at a_t (da)
    dh: np.ndarray
    da: np.ndarray
    tc: np.ndarray  # (T, B, H) tanh(c_t)
    dc: np.ndarray  # (B, H) the gradient at c_t from c_{t+1}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


@kernel
def elementwise(w, a, tr, t):
    """Step t's elementwise work, every row: z_t (B, 4H) the pre-activations in, the gates
    i, f, g, o out; c_{t-1} -> c_t, tanh(c_t), h_t = o tanh(c_t), each (B, H)."""
    states, z, _, _, _, tc, _ = tr
    z, tc, h, c, c_prev = z[t], tc[t], states[0, t + 1], states[1, t + 1], states[1, t]
    B, H = c.shape
    for b in range(B):  # rows as 1-D views: with them LLVM vectorizes the loop over j
        zi, zf, zg, zo = z[b, :H], z[b, H : 2 * H], z[b, 2 * H : 3 * H], z[b, 3 * H :]
        cp, cb, tb, hb = c_prev[b], c[b], tc[b], h[b]
        for j in range(H):
            i, f, g, o = sigmoid(zi[j]), sigmoid(zf[j]), tanh(zg[j]), sigmoid(zo[j])
            cc = f * cp[j] + i * g
            th = tanh(cc)
            zi[j], zf[j], zg[j], zo[j] = i, f, g, o
            cb[j], tb[j], hb[j] = cc, th, o * th


@kernel
def elementwise_back(w, dh, tr, t):
    """Step t back, every row: dh_t (B, H) the gradient at h_t through h_{t+1} (the step
    after's product), dh[t] at h_t from outside; dc at c_t from c_{t+1}, left at c_{t-1}.
    Writes dz_t (B, 4H), the gradient at z_t (and a_t)."""
    states, gates, dz, dh_t, _, tc, dc = tr
    dh_out, dz, gates, tc, c_prev = dh[t], dz[t], gates[t], tc[t], states[1, t]
    B, H = dc.shape
    one = dz.dtype.type(1)
    for b in range(B):  # rows as 1-D views, for SIMD (elementwise)
        gi, gf, gg, go = (
            gates[b, :H],
            gates[b, H : 2 * H],
            gates[b, 2 * H : 3 * H],
            gates[b, 3 * H :],
        )
        di, df, dg, do = dz[b, :H], dz[b, H : 2 * H], dz[b, 2 * H : 3 * H], dz[b, 3 * H :]
        dhb, dob, dcb, tb, cp = dh_t[b], dh_out[b], dc[b], tc[b], c_prev[b]
        for j in range(H):
            i, f, g, o, th = gi[j], gf[j], gg[j], go[j], tb[j]
            d_h = dhb[j] + dob[j]
            d = dcb[j] + d_h * o * (one - th * th)  # dL/dc_t: through h_t, and from c_{t+1}
            di[j] = d * g * i * (one - i)
            df[j] = d * cp[j] * f * (one - f)
            dg[j] = d * i * (one - g * g)
            do[j] = d_h * th * o * (one - o)
            dcb[j] = d * f


class LSTM(Cell):
    gates = 4
    parts = ("h", "c")
    carries = ("dc",)
    Weights, Trace = Weights, Trace
    elementwise, elementwise_back = staticmethod(elementwise), staticmethod(elementwise_back)

    def init(self, shapes: dict, rng: np.random.Generator, scheme: str, scale: float,
             dtype) -> dict:  # fmt: skip
        p = super().init(shapes, rng, scheme, scale, dtype)
        p["bh"][self.H : 2 * self.H] = 1.0  # forget gate open
        return p

    def trace(self, B: int, T: int, dtype) -> Trace:
        H = self.H
        own = {"tc": np.empty((T, B, H), dtype), "dc": np.empty((B, H), dtype)}
        return Trace(**self.buffers(B, T, dtype), **own)

    def observe(self, ws) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        H, gates = self.H, ws.trace.z  # g (the candidate) is a tanh, not a gate
        named = {"input": gates[:, :, :H], "forget": gates[:, :, H : 2 * H]}
        return ws.trace.tc, named | {"output": gates[:, :, 3 * H :]}

    def numpy_forward(self, p: dict, a: np.ndarray, state: list) -> dict:
        """The chunk in plain numpy: a (T, B, 4H), state [h_0, c_0] -> {"h": h_0 .. h_T,
        "c": c_0 .. c_T, "gates": i, f, g, o (T, B, 4H)}."""
        H, hs, cs, gates = self.H, [state[0]], [state[1]], []
        for t in range(len(a)):
            z = a[t] + hs[-1] @ p["Whh"]
            i, f, o = _sigmoid(z[:, :H]), _sigmoid(z[:, H : 2 * H]), _sigmoid(z[:, 3 * H :])
            g = np.tanh(z[:, 2 * H : 3 * H])
            cs.append(f * cs[-1] + i * g)
            hs.append(o * np.tanh(cs[-1]))
            gates.append(np.concatenate([i, f, g, o], axis=1))
        return {"h": np.stack(hs), "c": np.stack(cs), "gates": np.stack(gates)}

    def numpy_backward(self, p: dict, dh: np.ndarray, saved: dict) -> tuple[np.ndarray, dict]:
        """dh (T, B, H) the gradient at each h_t from outside -> (da (T, B, 4H), {"Whh"})."""
        H, hs, cs = self.H, saved["h"], saved["c"]
        dnext, dc = np.zeros_like(dh[0]), np.zeros_like(dh[0])
        da = np.empty((len(dh), dh.shape[1], 4 * H), dh.dtype)
        for t in reversed(range(len(dh))):
            i, f, g, o = np.split(saved["gates"][t], 4, axis=1)
            d_h, tc = dh[t] + dnext, np.tanh(cs[t + 1])
            dc = dc + d_h * o * (1 - tc * tc)  # at c_t: through h_t, and from c_{t+1}
            da[t] = np.concatenate(
                [dc * g * i * (1 - i), dc * cs[t] * f * (1 - f), dc * i * (1 - g * g),
                 d_h * tc * o * (1 - o)], axis=1)  # fmt: skip
            dc = dc * f  # on to c_{t-1}
            dnext = da[t] @ p["Whh"].T  # on to h_{t-1}
        return da, {"Whh": hs[:-1].reshape(-1, H).T @ da.reshape(-1, 4 * H)}


CELL = LSTM
