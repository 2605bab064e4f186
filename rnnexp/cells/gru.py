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

from typing import NamedTuple

import numpy as np

from rnnexp.cells.jit import kernel
from rnnexp.cells.recurrence import Cell
from rnnexp.cells.scalars import sigmoid, tanh


class Weights(NamedTuple):
    Whh: np.ndarray  # (H, 3H)
    bhn: np.ndarray  # (H,)


class Trace(NamedTuple):  # recurrence.Cell.buffers, and:
    states: np.ndarray
    z: np.ndarray  # hh_t = h_{t-1} Whh, then r, u after σ and hh^n + bhn
    dz: np.ndarray  # the gradient at hh_t
    dh: np.ndarray
    da: np.ndarray  # (T, B, 3H) the gradient at a_t
    ns: np.ndarray  # (T, B, H) n_t
    dd: np.ndarray  # (B, H) the gradient at h_t's direct part (through u h_t), from h_{t+1}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


@kernel
def elementwise(w, a, tr, t):
    """Step t's elementwise work, every row: hh (B, 3H) = h_{t-1} Whh in; r, u and
    hh^n + bhn out; n_t (B, H) and h_t (B, H)."""
    (_, bhn), (states, hh, _, _, _, n, _) = w, tr
    hh, a_t, h_prev, n, h = hh[t], a[t], states[0, t], n[t], states[0, t + 1]
    B, H = n.shape
    for b in range(B):  # rows as 1-D views: with them LLVM vectorizes the loop over j
        hr, hu, hnb = hh[b, :H], hh[b, H : 2 * H], hh[b, 2 * H :]
        ar, au, an = a_t[b, :H], a_t[b, H : 2 * H], a_t[b, 2 * H :]
        hp, nb, hb = h_prev[b], n[b], h[b]
        for j in range(H):
            r, u = sigmoid(ar[j] + hr[j]), sigmoid(au[j] + hu[j])
            hn = hnb[j] + bhn[j]
            nn = tanh(an[j] + r * hn)
            hr[j], hu[j], hnb[j], nb[j] = r, u, hn, nn
            hb[j] = nn + u * (hp[j] - nn)  # (1 - u) n + u h_{t-1}


@kernel
def elementwise_back(w, dh, tr, t):
    """Step t back, every row. The gradient at h_t is dh_t (its direct part through u, from
    the step after) + product (through that step's recurrent product) + dh[t] (from
    outside); writes dz_t (B, 3H) at hh_t, da_t (B, 3H) at a_t, and dh_t for h_{t-1}."""
    states, hh, dhh, product, da, n, dh_t = tr
    dh_out, dhh, da, hh, n, h_prev = dh[t], dhh[t], da[t], hh[t], n[t], states[0, t]
    B, H = n.shape
    one = dhh.dtype.type(1)
    for b in range(B):  # rows as 1-D views, for SIMD (elementwise)
        hr, hu, hnb = hh[b, :H], hh[b, H : 2 * H], hh[b, 2 * H :]
        dr, du, dn = dhh[b, :H], dhh[b, H : 2 * H], dhh[b, 2 * H :]
        ar, au, an = da[b, :H], da[b, H : 2 * H], da[b, 2 * H :]
        dhb, pb, ob, hp, nb = dh_t[b], product[b], dh_out[b], h_prev[b], n[b]
        for j in range(H):
            r, u, hn, nn = hr[j], hu[j], hnb[j], nb[j]
            d = dhb[j] + pb[j] + ob[j]
            d_u = d * (hp[j] - nn) * u * (one - u)  # at u's pre-activation
            d_n = d * (one - u) * (one - nn * nn)  # at n's: a^n ...
            d_r = d_n * hn * r * (one - r)  # at r's: a^r and hh^r alike
            dr[j], du[j], dn[j] = d_r, d_u, d_n * r  # ... and hh^n, through r
            ar[j], au[j], an[j] = d_r, d_u, d_n
            dhb[j] = d * u  # on to h_{t-1} directly, through u h_{t-1}


class GRU(Cell):
    gates = 3
    adds_input = False  # a^n stays apart from hh^n: r multiplies the latter alone
    carries = ("dd",)
    Weights, Trace = Weights, Trace
    elementwise, elementwise_back = staticmethod(elementwise), staticmethod(elementwise_back)

    def param_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        return super().param_shapes(n_in) | {"bhn": (self.H,)}

    def trace(self, B: int, T: int, dtype) -> Trace:
        H = self.H
        own = {"ns": np.empty((T, B, H), dtype), "dd": np.empty((B, H), dtype)}
        return Trace(**self.buffers(B, T, dtype) | {"da": np.empty((T, B, 3 * H), dtype)}, **own)

    def own_grads(self, tr, g: dict) -> None:
        T, B, H = tr.ns.shape
        np.sum(tr.dz[:, :, 2 * H :].reshape(T * B, H), axis=0, out=g["bhn"])

    def observe(self, ws) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        H, hh = self.H, ws.trace.z  # r and u after their sigmoid (elementwise keeps them)
        return ws.hs[1:], {"reset": hh[:, :, :H], "update": hh[:, :, H : 2 * H]}

    def numpy_forward(self, p: dict, a: np.ndarray, state: list) -> dict:
        """The chunk in plain numpy: a (T, B, 3H), state [h_0] -> {"h": h_0 .. h_T, and
        r, u, n, hh^n + bhn (T, B, H) each}."""
        H, hs, saved = self.H, [state[0]], {"r": [], "u": [], "n": [], "hn": []}
        for t in range(len(a)):
            hh = hs[-1] @ p["Whh"]
            r = _sigmoid(a[t, :, :H] + hh[:, :H])
            u = _sigmoid(a[t, :, H : 2 * H] + hh[:, H : 2 * H])
            hn = hh[:, 2 * H :] + p["bhn"]
            n = np.tanh(a[t, :, 2 * H :] + r * hn)
            hs.append((1 - u) * n + u * hs[-1])
            for k, v in zip(("r", "u", "n", "hn"), (r, u, n, hn), strict=True):
                saved[k].append(v)
        return {"h": np.stack(hs)} | {k: np.stack(v) for k, v in saved.items()}

    def numpy_backward(self, p: dict, dh: np.ndarray, saved: dict) -> tuple[np.ndarray, dict]:
        """dh (T, B, H) the gradient at each h_t from outside -> (da (T, B, 3H),
        {"Whh", "bhn"})."""
        H, hs, dnext = self.H, saved["h"], np.zeros_like(dh[0])
        da = np.empty((len(dh), dh.shape[1], 3 * H), dh.dtype)
        dhh = np.empty_like(da)  # at hh_t: r multiplies hh^n
        for t in reversed(range(len(dh))):
            r, u, n, hn = (saved[k][t] for k in ("r", "u", "n", "hn"))
            d = dh[t] + dnext
            d_u = d * (hs[t] - n) * u * (1 - u)
            d_n = d * (1 - u) * (1 - n * n)
            d_r = d_n * hn * r * (1 - r)
            da[t] = np.concatenate([d_r, d_u, d_n], axis=1)
            dhh[t] = np.concatenate([d_r, d_u, d_n * r], axis=1)
            dnext = d * u + dhh[t] @ p["Whh"].T  # on to h_{t-1}: directly, and through hh_t
        dWhh = hs[:-1].reshape(-1, H).T @ dhh.reshape(-1, 3 * H)
        return da, {"Whh": dWhh, "bhn": dhh[:, :, 2 * H :].sum(axis=(0, 1))}


CELL = GRU
