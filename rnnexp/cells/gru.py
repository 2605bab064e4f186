"""The GRU cell as PyTorch and cuDNN compute it (`nn.GRU`), the reset gate applied after the
recurrent product (Cho et al. 2014 apply it before: r ⊙ h_{t-1} is multiplied by W_hn). This
variant is chosen because it is the one people train and compare against, its weights copy
over from `nn.GRU` as they are, and its three recurrent products are one GEMM per step:

    hh = h_{t-1} Whh                        a_t = x_t Wxh + bh (3H wide), from the network
    r = σ(a^r + hh^r)   u = σ(a^u + hh^u)
    n = tanh(a^n + r ⊙ (hh^n + bhn))
    h_t = (1 - u) ⊙ n + u ⊙ h_{t-1}

Gates in PyTorch's order r, z (u here), n. bh holds b_ir + b_hr, b_iz + b_hz and b_in; bhn
is b_hn, which sits inside the reset product and so cannot be folded into bh.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from rnnexp.cells.ops import (
    backward_transpose,
    gemm_buffers,
    recurrent_product,
    sigmoid,
    xty,
)
from rnnexp.init import init_weights


class GRU:
    gates = 3
    parts = ("h",)

    def __init__(self, hidden_size: int):
        self.H = hidden_size

    def param_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        H = self.H
        return {"Wxh": (n_in, 3 * H), "Whh": (H, 3 * H), "bh": (3 * H,), "bhn": (H,)}

    def init(self, shapes: dict, rng: np.random.Generator, scheme: str, scale: float,
             dtype) -> dict:  # fmt: skip
        return init_weights(shapes, rng, scheme, scale, dtype)

    def workspace(self, B: int, T: int, dtype) -> SimpleNamespace:
        H = self.H
        return SimpleNamespace(
            hs=np.empty((T + 1, B, H), dtype),  # h_0 .. h_T
            hh=np.empty((T, B, 3 * H), dtype),  # r, u after σ; then hh^n + bhn
            ns=np.empty((T, B, H), dtype),  # n_t
            du=np.empty((T, B, H), dtype),  # (h_{t-1} - n) u (1 - u): dL/du^pre per dh_t
            dn=np.empty((T, B, H), dtype),  # (1 - u) (1 - n^2): dL/dn^pre per dh_t
            dr=np.empty((T, B, H), dtype),  # (hh^n + bhn) r (1 - r): dL/dr^pre per dn^pre
            dhh=np.empty((T, B, 3 * H), dtype),  # gradient at hh_t
            da=np.empty((T, B, 3 * H), dtype),  # gradient at a_t
            dh=np.empty((B, H), dtype),
            WhhT=None,  # a contiguous Whh.T, for large batches
            fast=None,  # the forward's gemm_buffers
            tmp=np.empty((B, H), dtype),
            scratch=(np.empty((B, 3 * H), dtype), np.empty((B, H), dtype), None),
        )

    def step(self, p: dict, a_t: np.ndarray, state: list, out: list, scratch) -> None:
        """state [h] -> out [h], each (B, H); scratch (B, 3H), (B, H) keeps r, u, hh^n + bhn
        and n after the step."""
        H = self.H
        hh, n, fast = scratch
        h = state[0]
        recurrent_product(h, p["Whh"], hh, fast)
        rz = hh[:, : 2 * H]
        rz += a_t[:, : 2 * H]
        sigmoid(rz, out=rz)  # r, u
        hn = hh[:, 2 * H :]
        hn += p["bhn"]
        np.multiply(hh[:, :H], hn, out=n)
        n += a_t[:, 2 * H :]
        np.tanh(n, out=n)
        new = out[0]
        np.subtract(h, n, out=new)  # h_t = n + u (h_{t-1} - n)
        new *= hh[:, H : 2 * H]
        new += n

    def forward(self, p: dict, a: np.ndarray, state: list, ws) -> list:
        h, hh, ns, step = ws.hs, ws.hh, ws.ns, self.step
        ws.fast = fast = gemm_buffers(p["Whh"], ws, a.shape[1])  # backward reuses it
        h[0] = state[0]
        for t in range(a.shape[0]):
            step(p, a[t], [h[t]], [h[t + 1]], (hh[t], ns[t], fast))
        return [h[-1]]

    def observe(self, ws) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        H, hh = self.H, ws.hh  # r and u after their sigmoid (step keeps them)
        return ws.hs[1:], {"reset": hh[:, :, :H], "update": hh[:, :, H : 2 * H]}

    def backward(self, p: dict, dh: np.ndarray, ws, g: dict) -> np.ndarray:
        T, B, H = dh.shape
        hs, hh, ns, dhh, da = ws.hs, ws.hh, ws.ns, ws.dhh, ws.da
        r, u, hn = hh[:, :, :H], hh[:, :, H : 2 * H], hh[:, :, 2 * H :]
        # everything that does not depend on the gradient flowing back, for the whole chunk
        # at once: the step loop below is then eight calls
        du, dn, dr = ws.du, ws.dn, ws.dr
        np.subtract(1.0, u, out=dr)  # 1 - u, used twice
        np.multiply(dr, u, out=du)
        np.subtract(hs[:-1], ns, out=dn)
        du *= dn  # (h_{t-1} - n) u (1 - u)
        np.multiply(ns, ns, out=dn)
        np.subtract(1.0, dn, out=dn)
        dn *= dr  # (1 - u) (1 - n^2)
        np.subtract(1.0, r, out=dr)
        dr *= r
        dr *= hn  # (hh^n + bhn) r (1 - r)
        WhhT = backward_transpose(p["Whh"], ws)
        dh_t, tmp = ws.dh, ws.tmp
        dh_t.fill(0)  # nothing reaches h_T from the next chunk (truncated BPTT)
        for t in range(T - 1, -1, -1):
            d_r, d_u, d_hn = dhh[t][:, :H], dhh[t][:, H : 2 * H], dhh[t][:, 2 * H :]
            dh_t += dh[t]
            np.multiply(dh_t, du[t], out=d_u)  # at u's pre-activation: a^u and hh^u alike
            np.multiply(dh_t, dn[t], out=da[t][:, 2 * H :])  # at n's: a^n ...
            np.multiply(da[t][:, 2 * H :], r[t], out=d_hn)  # ... and hh^n + bhn, through r
            np.multiply(da[t][:, 2 * H :], dr[t], out=d_r)  # at r's: a^r and hh^r alike
            dh_t *= u[t]  # on to h_{t-1}: directly through u ⊙ h_{t-1} ...
            np.dot(dhh[t], WhhT, out=tmp)
            dh_t += tmp  # ... and through the recurrent product
        da[:, :, : 2 * H] = dhh[:, :, : 2 * H]  # r and u see a_t and hh_t alike
        xty(hs[:-1].reshape(T * B, H), dhh.reshape(T * B, 3 * H), out=g["Whh"])
        np.sum(dhh[:, :, 2 * H :].reshape(T * B, H), axis=0, out=g["bhn"])
        return da
