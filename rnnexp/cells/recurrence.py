"""One recurrence driver for every cell: `Cell`, the base class a cell's file fills in with
its math, runs a chunk forward and backward in each batch regime, and a character at a time
for sampling. Nothing here names a cell: the compiled loops reach a cell's kernels through
the type of its `Weights` (a NamedTuple class of its file), chosen when numba types them.

Two regimes, by batch size: below SMALL_BATCH the chunk's whole recurrence is one compiled
call, the recurrent products as loops (jit.py); from it on, a step is the product in BLAS,
then the cell's one compiled elementwise pass. Sampling steps with the small-batch step.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from rnnexp.cells.jit import add_product, copy, kernel, overload, product_t, zero
from rnnexp.cells.ops import backward_transpose, gemm_buffers, recurrent_product, xty
from rnnexp.init import init_weights

# below this, a chunk's recurrence is one call, its products the loops of jit.py: from batch
# 2 on OpenBLAS computes them faster (benchmarks/kernels.py)
SMALL_BATCH = 2

_CELL_OF = {}  # a cell's Weights class -> the cell's class: what the compiled loops dispatch on
# the driver's arrays, first in every Trace (Cell.buffers), by position: kernels get a trace
# as a plain tuple; and Whh first in every Weights
STATES, Z, DZ, DH, DA = range(5)
FIELDS = ("states", "z", "dz", "dh", "da")


class Cell:
    """A layer's recurrence. A subclass (one file per cell) declares its math:

    - `gates`: G = gates * H, the width of its projected input a_t and of z_t;
    - `parts`: the names of the (B, H) arrays it carries from chunk to chunk (`h`, `h, c`);
    - `Weights`, a NamedTuple of what its kernels read of a layer, Whh first (fields named
      as its parameters, or as its options: `cell.logistic`), made by `weights(p)`;
    - `Trace`, a NamedTuple of one chunk's arrays, made by `trace(B, T, dtype)`: the
      driver's first (FIELDS, `buffers`), then the cell's own;
    - the kernels `elementwise(w, a, tr, t)`, one step's work past its product z_t, and
      `elementwise_back(w, dh, tr, t)`, its gradient: dz_t from dh[t] (from outside) and
      dh (from the step after, through its product), and the gradient at a_t in da. They
      unpack w and tr by position (from Python they get plain tuples: typed 3x faster);
    - `adds_input`: whether z_t starts from a_t (z_t = a_t + h_{t-1} Whh), or is the product
      alone (the GRU adds a_t itself); `carries`: its own (B, H) gradients carried back a
      step; `Options`: a dataclass of its own config keys (rnnexp/config.py), or None;
    - `observe(ws)`: what a look inside shows (rnnexp/inspect/trace.py);
    - `numpy_forward`, `numpy_backward`: the chunk in plain numpy, the definition the kernels
      are tested against (tests/test_cells.py).
    """

    gates: int
    parts: tuple[str, ...] = ("h",)
    adds_input = True
    carries: tuple[str, ...] = ()
    bptt = True  # the gradient flows back through h_{t-1} (the rnn cell's option)
    Options = None
    Weights: type
    Trace: type
    elementwise = elementwise_back = None  # the cell's kernels

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        assert cls.Trace._fields[:5] == FIELDS and cls.Weights._fields[0] == "Whh", cls
        _CELL_OF[cls.Weights] = cls

    def __init__(self, hidden_size: int) -> None:
        self.H = hidden_size

    def param_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        """Its parameters by local key: the input projection (n_in, G) and its bias, Whh."""
        G = self.gates * self.H
        return {"Wxh": (n_in, G), "Whh": (self.H, G), "bh": (G,)}

    def init(self, shapes: dict, rng: np.random.Generator, scheme: str, scale: float,
             dtype) -> dict:  # fmt: skip
        """Their first values (rnnexp/init.py), drawn in key order."""
        return init_weights(shapes, rng, scheme, scale, dtype)

    def weights(self, p: dict):
        """The Weights its kernels read: each field a parameter of p, or an option of self."""
        return self.Weights(*(p[k] if k in p else getattr(self, k) for k in self.Weights._fields))

    def buffers(self, B: int, T: int, dtype) -> dict[str, np.ndarray]:
        """The driver's arrays of a Trace; `da` is dz unless the cell keeps its own."""
        H, G = self.H, self.gates * self.H
        dz = np.empty((T, B, G), dtype)  # the gradient at z_t
        return {
            "states": np.empty((len(self.parts), T + 1, B, H), dtype),  # h (and c) at 0 .. T
            "z": np.empty((T, B, G), dtype),  # z_t, then what backward needs of the step
            "dz": dz,
            "dh": np.empty((B, H), dtype),  # dz_{t+1} Whh.T: at h_t through the next product
            "da": dz,  # the gradient at a_t
        }

    def trace(self, B: int, T: int, dtype):
        return self.Trace(**self.buffers(B, T, dtype))

    def own_grads(self, tr, g: dict) -> None:
        """The gradients of parameters of its own beyond Whh, into g (the GRU's bhn)."""

    def workspace(self, B: int, T: int, dtype) -> SimpleNamespace:
        """Buffers for one chunk shape, made once: the trace, and the large batches' GEMM
        buffers (ops.gemm_buffers). `hs` (T+1, B, H) holds h_0 .. h_T, the layer's output."""
        tr = self.trace(B, T, dtype)
        return SimpleNamespace(
            trace=tr,
            arrays=tuple(tr),  # what the kernels get: numba types a plain tuple 3x faster
            hs=tr.states[0],
            last=[tr.states[k, T] for k in range(len(self.parts))],  # the state after it
            carries=[getattr(tr, name) for name in ("dh", *self.carries)],
            weights=(None, None),  # p, and its Weights
            WhhT=None,
            zT=None,
            fast=None,
        )

    def _weights(self, p: dict, ws):
        """The Weights of p, made once per dict: the model's are the same, call after call."""
        if ws.weights[0] is not p:
            ws.weights = (p, self.weights(p))
        return ws.weights[1]

    def forward(self, p: dict, a: np.ndarray, state: list, ws) -> list:
        """a (T, B, G) the projected inputs, state its parts at t = 0: the chunk, step by
        step, keeping in ws what backward needs. Returns the parts at T (views into ws)."""
        T, B, _ = a.shape
        w, tr, states = self._weights(p, ws), ws.arrays, ws.trace.states
        for k, part in enumerate(state):
            states[k, 0] = part
        if B < SMALL_BATCH:
            _steps(w, a, tr)
            return list(ws.last)
        ws.fast = fast = gemm_buffers(p["Whh"], ws, B)  # backward reuses it
        plain, z, add = tuple(w), ws.trace.z, self.adds_input
        for t in range(T):  # the product in BLAS, the rest in one compiled pass
            recurrent_product(states[0, t], p["Whh"], z[t], fast, add=a[t] if add else None)
            self.elementwise(plain, a, tr, t)
        return list(ws.last)

    def backward(self, p: dict, dh: np.ndarray, ws, g: dict) -> np.ndarray:
        """dh (T, B, H), the gradient reaching each h_t from outside the recurrence; returns
        da (T, B, G), the gradient at the projected inputs, and writes the gradients of the
        parameters only the cell sees (Whh, ...) into g."""
        T, B, H = dh.shape
        w, tr, trace = self._weights(p, ws), ws.arrays, ws.trace
        for carry in ws.carries:  # nothing from the next chunk (truncated BPTT)
            carry.fill(0)
        if B < SMALL_BATCH or not self.bptt:  # without BPTT, no product: one call at any B
            _back_steps(w, dh, tr, self.bptt)
        else:  # two calls a step: the pointwise pass, the product in BLAS
            WhhT, plain = backward_transpose(p["Whh"], ws, B), tuple(w)
            for t in range(T - 1, -1, -1):
                self.elementwise_back(plain, dh, tr, t)
                np.dot(trace.dz[t], WhhT, out=trace.dh)  # on to h_{t-1}
        xty(trace.states[0, :-1].reshape(T * B, H), trace.dz.reshape(T * B, -1), out=g["Whh"])
        self.own_grads(trace, g)
        return trace.da


def start(w, a_t, z):
    """z = a_t, for a cell whose z_t starts from its input, else 0 (compiled code only)."""
    raise NotImplementedError("a kernel: called from compiled code")


def elementwise(w, a, tr, t):
    """The cell's elementwise (compiled code only)."""
    raise NotImplementedError("a kernel: called from compiled code")


def elementwise_back(w, dh, tr, t):
    """The cell's elementwise_back (compiled code only)."""
    raise NotImplementedError("a kernel: called from compiled code")


# each picks the cell's code when numba types the call: Weights' class names the cell
@overload(start, inline="always")
def _start(w, a_t, z):
    if _CELL_OF[w.instance_class].adds_input:
        return lambda w, a_t, z: copy(a_t, z)
    return lambda w, a_t, z: zero(z)


@overload(elementwise, inline="always")
def _elementwise(w, a, tr, t):
    return _CELL_OF[w.instance_class].elementwise.py_func  # its source, inlined as a kernel


@overload(elementwise_back, inline="always")
def _elementwise_back(w, dh, tr, t):
    return _CELL_OF[w.instance_class].elementwise_back.py_func


@kernel
def small_step(w, a, tr, t):
    """Step t of a chunk at a small batch, its product included: z_t = a_t + h_{t-1} Whh (or
    the product alone), then the cell's elementwise pass."""
    z = tr[Z][t]
    start(w, a[t], z)
    add_product(tr[STATES][0, t], w[0], z)
    elementwise(w, a, tr, t)


@kernel
def _steps(w, a, tr):
    """The chunk at a small batch, in one call: small_step for t = 0 .. T-1."""
    for t in range(a.shape[0]):
        small_step(w, a, tr, t)


@kernel
def _back_steps(w, dh, tr, bptt):
    """The chunk backward in one call: elementwise_back, then dz_t Whh.T, at a small batch;
    or, without BPTT (dh stays 0), at any batch."""
    for t in range(dh.shape[0] - 1, -1, -1):
        elementwise_back(w, dh, tr, t)
        if bptt:
            product_t(tr[DZ][t], w[0], tr[DH])


@kernel
def step(w, a, tr):
    """One character through a layer (sampling): tr a trace of one step at batch 1, its
    state at t = 0 before and after; a (1, 1, G)."""
    small_step(w, a, tr, 0)
    states = tr[STATES]
    for k in range(states.shape[0]):
        copy(states[k, 1], states[k, 0])
