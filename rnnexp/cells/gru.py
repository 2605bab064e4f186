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

from rnnexp.cells.jit import SMALL_BATCH, add_product, kernel, product_t, zero
from rnnexp.cells.ops import (
    backward_transpose,
    gemm_buffers,
    recurrent_product,
    xty,
)
from rnnexp.cells.scalars import sigmoid, tanh
from rnnexp.init import init_weights


@kernel
def _cell(hh, a_t, bhn, h_prev, n, h):
    """One step's elementwise work, every row: hh (B, 3H) = h_{t-1} Whh in; r, u and
    hh^n + bhn out; n (B, H) and h (B, H), which may be h_prev (each element is read first)."""
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
def small_step(Whh, bhn, a_t, h_prev, hh, n, h):
    """A step at a small batch, its product included: hh = h_prev Whh, then _cell."""
    zero(hh)
    add_product(h_prev, Whh, hh)
    _cell(hh, a_t, bhn, h_prev, n, h)


@kernel
def _steps(Whh, bhn, a, hs, hh, ns):
    """The chunk at a small batch, in one call: small_step for t = 0 .. T-1."""
    for t in range(a.shape[0]):
        small_step(Whh, bhn, a[t], hs[t], hh[t], ns[t], hs[t + 1])


@kernel
def _cell_back(dh_t, product, dh_out, hh, n, h_prev, dhh, da):
    """One step back, every row. The gradient at h_t is dh_t (its direct part through u, from
    the step after) + product (through that step's recurrent product) + dh_out (from outside);
    writes dhh (B, 3H) at hh_t, da (B, 3H) at a_t, and dh_t's direct part for h_{t-1}."""
    B, H = n.shape
    one = dhh.dtype.type(1)
    for b in range(B):  # rows as 1-D views, for SIMD (_cell)
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


@kernel
def _back_steps(Whh, dh, hs, hh, ns, dhh, da, dh_t, product):
    """The chunk backward at a small batch, in one call: _cell_back, then dhh_t Whh.T."""
    for t in range(dh.shape[0] - 1, -1, -1):
        _cell_back(dh_t, product, dh[t], hh[t], ns[t], hs[t], dhh[t], da[t])
        product_t(dhh[t], Whh, product)


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
            dhh=np.empty((T, B, 3 * H), dtype),  # gradient at hh_t
            da=np.empty((T, B, 3 * H), dtype),  # gradient at a_t
            dh=np.empty((B, H), dtype),  # gradient at h_t, its direct part
            product=np.empty((B, H), dtype),  # ... and its part through the next product
            WhhT=None,  # a contiguous Whh.T, for large batches
            fast=None,  # the forward's gemm_buffers
            scratch=(np.empty((B, 3 * H), dtype), np.empty((B, H), dtype), None),
        )

    def step(self, p: dict, a_t: np.ndarray, state: list, out: list, scratch) -> None:
        """state [h] -> out [h], each (B, H); scratch (B, 3H), (B, H) keeps r, u, hh^n + bhn
        and n after the step."""
        hh, n, fast = scratch
        if a_t.shape[0] < SMALL_BATCH:
            small_step(p["Whh"], p["bhn"], a_t, state[0], hh, n, out[0])
        else:  # the product in BLAS, the rest in one compiled pass
            recurrent_product(state[0], p["Whh"], hh, fast)
            _cell(hh, a_t, p["bhn"], state[0], n, out[0])

    def forward(self, p: dict, a: np.ndarray, state: list, ws) -> list:
        h, hh, ns = ws.hs, ws.hh, ws.ns
        h[0] = state[0]
        if a.shape[1] < SMALL_BATCH:
            _steps(p["Whh"], p["bhn"], a, h, hh, ns)
            return [h[-1]]
        ws.fast = fast = gemm_buffers(p["Whh"], ws, a.shape[1])  # backward reuses it
        for t in range(a.shape[0]):
            self.step(p, a[t], [h[t]], [h[t + 1]], (hh[t], ns[t], fast))
        return [h[-1]]

    def observe(self, ws) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        H, hh = self.H, ws.hh  # r and u after their sigmoid (step keeps them)
        return ws.hs[1:], {"reset": hh[:, :, :H], "update": hh[:, :, H : 2 * H]}

    def backward(self, p: dict, dh: np.ndarray, ws, g: dict) -> np.ndarray:
        T, B, H = dh.shape
        hs, hh, ns, dhh, da, dh_t, product = ws.hs, ws.hh, ws.ns, ws.dhh, ws.da, ws.dh, ws.product
        dh_t.fill(0)  # nothing reaches h_T from the next chunk (truncated BPTT)
        product.fill(0)
        if B < SMALL_BATCH:
            _back_steps(p["Whh"], dh, hs, hh, ns, dhh, da, dh_t, product)
        else:  # two calls a step: the pointwise pass, the product in BLAS
            WhhT = backward_transpose(p["Whh"], ws)
            for t in range(T - 1, -1, -1):
                _cell_back(dh_t, product, dh[t], hh[t], ns[t], hs[t], dhh[t], da[t])
                np.dot(dhh[t], WhhT, out=product)
        xty(hs[:-1].reshape(T * B, H), dhh.reshape(T * B, 3 * H), out=g["Whh"])
        np.sum(dhh[:, :, 2 * H :].reshape(T * B, H), axis=0, out=g["bhn"])
        return da
