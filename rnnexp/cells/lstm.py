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

from rnnexp.cells.ops import backward_transpose, gemm_buffers, recurrent_product, xty
from rnnexp.init import init_weights


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
        # sigmoid(x) = (1 + tanh(x / 2)) / 2: all four gates in one tanh, scaled per column
        half = np.full(4 * H, 0.5, dtype)
        half[2 * H : 3 * H] = 1.0  # g is a plain tanh
        shift = half.copy()
        shift[2 * H : 3 * H] = 0.0
        K = max(1, min(T, 32768 // (B * 4 * H)))
        return SimpleNamespace(
            hs=np.empty((T + 1, B, H), dtype),  # h_0 .. h_T
            cs=np.empty((T + 1, B, H), dtype),  # c_0 .. c_T
            gates=np.empty((T, B, 4 * H), dtype),  # i, f, g, o after their nonlinearities
            tc=np.empty((T, B, H), dtype),  # tanh(c_t)
            dz=np.empty((T, B, 4 * H), dtype),  # gradient at z_t: also at a_t
            # backward's factors for blocks of K steps (_gate_factors): ~128 KB a block
            deriv=np.empty((K, B, 4 * H), dtype),  # each gate's derivative
            dc_from_h=np.empty((K, B, H), dtype),  # o (1 - tanh(c)^2): dc_t per dh_t
            by_dc=np.empty((K, B, 3, H), dtype),  # g, c_{t-1}, i: di, df, dg per dc_t
            dh=np.empty((B, H), dtype),
            WhhT=None,  # a contiguous Whh.T, for large batches
            fast=None,  # the forward's gemm_buffers
            dc=np.empty((B, H), dtype),
            tmp=np.empty((B, H), dtype),
            scratch=(np.empty((B, 4 * H), dtype), np.empty((B, H), dtype), half, shift, None),
        )

    def step(self, p: dict, a_t: np.ndarray, state: list, out: list, scratch) -> None:
        """state [h, c] -> out [h, c], each (B, H); scratch: z (B, 4H) and tanh c (B, H),
        which keep the gates and tanh(c_t) after the step, the gates' column scales, and
        the buffers of a faster recurrent GEMM at large B (ops.gemm_buffers)."""
        H = self.H
        z, tc, half, shift, fast = scratch
        recurrent_product(state[0], p["Whh"], z, fast, add=a_t)
        z *= half  # x / 2 for i, f, o: one tanh for every gate
        np.tanh(z, out=z)
        z *= half  # then (1 + t) / 2 = t / 2 + 1 / 2 for i, f, o; g stays tanh
        z += shift
        c = out[1]
        np.multiply(z[:, H : 2 * H], state[1], out=c)  # f c_{t-1}
        np.multiply(z[:, :H], z[:, 2 * H : 3 * H], out=tc)  # i g, in tc until tanh(c) is due
        c += tc
        np.tanh(c, out=tc)
        np.multiply(z[:, 3 * H :], tc, out=out[0])  # o tanh(c_t)

    def forward(self, p: dict, a: np.ndarray, state: list, ws) -> list:
        h, c, gates, tc, step = ws.hs, ws.cs, ws.gates, ws.tc, self.step
        _, _, half, shift, _ = ws.scratch
        ws.fast = fast = gemm_buffers(p["Whh"], ws, a.shape[1])  # backward reuses it
        h[0], c[0] = state
        for t in range(a.shape[0]):
            scratch = (gates[t], tc[t], half, shift, fast)
            step(p, a[t], [h[t], c[t]], [h[t + 1], c[t + 1]], scratch)
        return [h[-1], c[-1]]

    def observe(self, ws) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        H, gates = self.H, ws.gates  # g (the candidate) is a tanh, not a gate
        named = {"input": gates[:, :, :H], "forget": gates[:, :, H : 2 * H]}
        return ws.tc, named | {"output": gates[:, :, 3 * H :]}

    def backward(self, p: dict, dh: np.ndarray, ws, g: dict) -> np.ndarray:
        T, B, H = dh.shape
        tc, dz, f = ws.tc, ws.dz, ws.gates[:, :, H : 2 * H]
        WhhT = backward_transpose(p["Whh"], ws)
        dh_t, dc, tmp = ws.dh, ws.dc, ws.tmp
        dc.fill(0)
        dh_t.fill(0)  # the gradient reaching h_T from the next chunk: none (truncated BPTT)
        dz3 = dz[:, :, : 3 * H].reshape(T, B, 3, H)
        K = ws.deriv.shape[0]
        for stop in range(T, 0, -K):  # blocks of K steps, the last first
            start = max(0, stop - K)
            deriv, dc_from_h, by_dc = self._gate_factors(ws, start, stop)
            for t in range(stop - 1, start - 1, -1):  # eight calls a step
                k = t - start
                dh_t += dh[t]
                np.multiply(dh_t, dc_from_h[k], out=tmp)
                dc += tmp  # dL/dc_t: through h_t, and from c_{t+1}
                np.multiply(dc[:, None, :], by_dc[k], out=dz3[t])  # di, df, dg
                np.multiply(dh_t, tc[t], out=dz[t][:, 3 * H :])  # do
                dz[t] *= deriv[k]  # through each gate's nonlinearity
                dc *= f[t]  # on to c_{t-1}
                np.dot(dz[t], WhhT, out=dh_t)  # on to h_{t-1}
        xty(ws.hs[:-1].reshape(T * B, H), dz.reshape(T * B, 4 * H), out=g["Whh"])
        return dz

    def _gate_factors(self, ws, start: int, stop: int):
        """What the gradient is multiplied by at steps start..stop-1, which does not depend
        on the gradient itself: computed for K steps at once (few calls when B is small;
        blocks small enough to stay in cache when B is large). Returns, per step k of the
        block: each gate's derivative (B, 4H), o (1 - tanh(c)^2) (B, H), and g, c_{t-1}, i
        (B, 3, H), the factors of di, df, dg in dc."""
        H, n = self.H, stop - start
        gates, tc = ws.gates[start:stop], ws.tc[start:stop]
        deriv, dc_from_h, by_dc = ws.deriv[:n], ws.dc_from_h[:n], ws.by_dc[:n]
        np.subtract(1.0, gates, out=deriv)  # s (1 - s) for i, f, o ...
        deriv *= gates
        gg, dg = gates[:, :, 2 * H : 3 * H], deriv[:, :, 2 * H : 3 * H]
        np.multiply(gg, gg, out=dg)  # ... and 1 - g^2 for g
        np.subtract(1.0, dg, out=dg)
        np.multiply(tc, tc, out=dc_from_h)
        np.subtract(1.0, dc_from_h, out=dc_from_h)
        dc_from_h *= gates[:, :, 3 * H :]
        by_dc[:, :, 0] = gg
        by_dc[:, :, 1] = ws.cs[start:stop]
        by_dc[:, :, 2] = gates[:, :, :H]
        return deriv, dc_from_h, by_dc
