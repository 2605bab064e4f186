"""Small array operations the cells and the network share."""

from __future__ import annotations

import numpy as np


def sigmoid(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = 1 / (1 + exp(-a)) as (1 + tanh(a/2)) / 2: no overflow in exp for large |a|."""
    np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def xty(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = x.T @ y for x (N, I), y (N, J); for N = 1 an outer product (the same products:
    a GEMM with one term per sum is slower here than a broadcast multiply)."""
    if x.shape[0] == 1:
        return np.multiply(x[0][:, None], y[0][None, :], out=out)
    return np.matmul(x.T, y, out=out)


def init_weights(shapes: dict, rng: np.random.Generator, scale: float, dtype) -> dict:
    """Weights N(0, 1) * scale, biases zero (min-char-rnn's initialisation), drawn in key
    order."""
    return {
        k: np.zeros(s, dtype) if len(s) == 1 else (rng.standard_normal(s) * scale).astype(dtype)
        for k, s in shapes.items()
    }


LARGE_BATCH = 16  # from here on a GEMM pays for a contiguous copy of its operand


def transposed(W: np.ndarray, ws, B: int) -> np.ndarray:
    """W.T for the backward step's GEMM: a contiguous copy in ws.WhhT at a large batch
    (against a transposed view the GEMM runs ~13 % slower there), the free view below it."""
    if B < LARGE_BATCH:
        return W.T
    if ws.WhhT is None:
        ws.WhhT = np.empty((W.shape[1], W.shape[0]), W.dtype)
    np.copyto(ws.WhhT, W.T)
    return ws.WhhT


def gemm_buffers(Whh: np.ndarray, ws, B: int):
    """For recurrent_product at a large batch: (Whh.T contiguous, h.T, result.T) buffers,
    Whh.T refreshed from the current weights (backward reuses it); None below it."""
    if B < LARGE_BATCH:
        return None
    WhhT = transposed(Whh, ws, B)
    if getattr(ws, "hT", None) is None:
        ws.hT = np.empty((Whh.shape[0], B), Whh.dtype)
        ws.zT = np.empty((Whh.shape[1], B), Whh.dtype)
    return WhhT, ws.hT, ws.zT


def backward_transpose(Whh: np.ndarray, ws) -> np.ndarray:
    """Whh.T for the backward step's GEMM: the contiguous copy the chunk's forward made
    (ws.fast, from gemm_buffers: the same weights), else the free view."""
    return Whh.T if ws.fast is None else ws.fast[0]


def recurrent_product(h, Whh, out, fast, add=None) -> None:
    """out = h Whh (+ add): (B, H) x (H, G). With `fast` (gemm_buffers) it is computed as
    (Whh.T h.T).T: OpenBLAS runs that shape ~30 % faster at B 32, H 256, G 4H (183 against
    265 us), and the transpose back rides on the add."""
    if fast is None:
        np.dot(h, Whh, out=out)
        if add is not None:
            out += add
        return
    WhhT, hT, zT = fast
    np.copyto(hT, h.T)
    np.dot(WhhT, hT, out=zT)
    if add is None:
        np.copyto(out, zT.T)
    else:
        np.add(zT.T, add, out=out)
