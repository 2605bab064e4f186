"""Small array operations the cells and the network share."""

from __future__ import annotations

import numpy as np


def xty(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = x.T @ y for x (N, I), y (N, J); for N = 1 an outer product (the same products:
    a GEMM with one term per sum is slower here than a broadcast multiply)."""
    if x.shape[0] == 1:
        return np.multiply(x[0][:, None], y[0][None, :], out=out)
    return np.matmul(x.T, y, out=out)


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
    """For recurrent_product at a large batch and a wide Whh (H, G > H), the gated cells':
    (Whh.T contiguous, result.T) buffers, Whh.T refreshed from the current weights (backward
    reuses it); None otherwise (for a square Whh the plain product is faster: 49 against
    53 us at B 32, H 256, float32)."""
    if B < LARGE_BATCH or Whh.shape[1] <= Whh.shape[0]:
        return None
    WhhT = transposed(Whh, ws, B)
    if getattr(ws, "zT", None) is None:
        ws.zT = np.empty((Whh.shape[1], B), Whh.dtype)
    return WhhT, ws.zT


def backward_transpose(Whh: np.ndarray, ws, B: int) -> np.ndarray:
    """Whh.T for the backward step's GEMM: the contiguous copy the chunk's forward made
    (ws.fast, from gemm_buffers: the same weights), else `transposed`'s."""
    return transposed(Whh, ws, B) if ws.fast is None else ws.fast[0]


def recurrent_product(h, Whh, out, fast, add=None) -> None:
    """out = h Whh (+ add): (B, H) x (H, G). With `fast` (gemm_buffers) it is computed as
    (Whh.T h.T).T: OpenBLAS runs that shape ~30 % faster at B 32, H 256, G 4H (183 against
    265 us), and the transpose back rides on the add. h.T goes to the GEMM as a view: BLAS
    reads it transposed at the speed of a contiguous copy, without the copy."""
    if fast is None:
        np.dot(h, Whh, out=out)
        if add is not None:
            out += add
        return
    WhhT, zT = fast
    np.dot(WhhT, h.T, out=zT)
    if add is None:
        np.copyto(out, zT.T)
    else:
        np.add(zT.T, add, out=out)
