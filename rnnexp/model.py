"""One BPTT core for all models: a stack of simple recurrent layers with a softmax readout.

For layer l (layer 0 reads characters, layer l > 0 reads the layer below), step t, activation f:

    h_t^l = f(x_t^l Wxh^l + h_{t-1}^l Whh^l + bh^l)     x_t^0 = one_hot(c_t): a row of Wxh^0
    y_t   = h_t^top Why + by                           logits over the vocabulary
    loss  = mean over streams of sum_t -log softmax(y_t)[c_{t+1}]   (summed over the chunk)

f is tanh (`rnn`, `stacked2`) or the logistic sigmoid (`srn`). Backward runs BPTT through the
whole chunk, or none (Elman 1990): h_{t-1} is then a context copy fed as a constant input,
and no gradient flows through it. Rows are batch entries, so weights are (in, out): Wxh^0 is
(V, H), the transpose of min-char-rnn's (H, V).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from rnnexp.errors import ConfigError
from rnnexp.params import FlatParams

Params = dict[str, np.ndarray]
State = list[np.ndarray]  # one (B, H) hidden state per layer

ACTIVATIONS = ("tanh", "sigmoid")
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    hidden_size: int
    layers: int = 1
    activation: str = "tanh"  # "tanh" | "sigmoid"
    bptt: bool = True  # False: Elman's context units, no gradient through h_{t-1}
    init_scale: float = 0.01  # weights ~ N(0, 1) * init_scale, biases 0, as the notebooks
    dtype: str = "float64"

    def __post_init__(self) -> None:
        for key in ("vocab_size", "hidden_size", "layers"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"model.{key} must be a whole number >= 1, got {value!r}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"unknown model.activation {self.activation!r}; valid: {', '.join(ACTIVATIONS)}"
            )
        if str(self.dtype) not in DTYPES:
            raise ConfigError(f"unknown model.dtype {self.dtype!r}; valid: {', '.join(DTYPES)}")
        if not np.isfinite(self.init_scale) or self.init_scale <= 0:
            raise ConfigError(
                f"model.init_scale must be a positive number, got {self.init_scale!r}"
            )
        _check_fits_in_memory(self)


def param_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The shape of every parameter, by key, without allocating any."""
    V, H = config.vocab_size, config.hidden_size
    shapes: dict[str, tuple[int, ...]] = {}
    for l in range(config.layers):
        shapes |= {f"l{l}.Wxh": (V if l == 0 else H, H), f"l{l}.Whh": (H, H), f"l{l}.bh": (H,)}
    return shapes | {"Why": (H, V), "by": (V,)}


def _check_fits_in_memory(config: ModelConfig) -> None:
    """Refuse, before allocating, a model whose parameters, gradients, optimizer state and
    float64 initial draw (4 copies) cannot fit in this machine's memory."""
    n = sum(math.prod(shape) for shape in param_shapes(config).values())
    need = 4 * n * max(np.dtype(config.dtype).itemsize, 8)
    have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if need > have:
        raise ConfigError(
            f"model.hidden_size={config.hidden_size} with {config.layers} layer(s) has "
            f"{n:,} parameters: about {need / 2**30:,.0f} GiB with gradients and optimizer "
            f"state, more than this machine's {have / 2**30:,.0f} GiB"
        )


# The three models of the notebooks are settings of the one core.
PRESETS: dict[str, dict] = {
    "rnn": dict(layers=1, activation="tanh", bptt=True),  # min-char-rnn
    "stacked2": dict(layers=2, activation="tanh", bptt=True),  # two tanh layers, both carried
    "srn": dict(layers=1, activation="sigmoid", bptt=False),  # Elman's simple recurrent net
}


def preset(name: str, vocab_size: int, hidden_size: int, **overrides) -> ModelConfig:
    """The ModelConfig of a named model (`rnn`, `stacked2`, `srn`), with optional overrides."""
    if name not in PRESETS:
        raise ConfigError(f"unknown model {name!r}; valid: {', '.join(sorted(PRESETS))}")
    return ModelConfig(vocab_size, hidden_size, **{**PRESETS[name], **overrides})


def _activate(a: np.ndarray, kind: str, out: np.ndarray) -> np.ndarray:
    """out = f(a); `a` may be overwritten."""
    if kind == "tanh":
        return np.tanh(a, out=out)
    # sigmoid(a) = (1 + tanh(a/2)) / 2: no overflow in exp for large |a|
    np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def _derivative(h: np.ndarray, kind: str, out: np.ndarray) -> np.ndarray:
    """out = f'(a), written in terms of h = f(a)."""
    if kind == "tanh":
        np.multiply(h, h, out=out)  # 1 - h^2
        return np.subtract(1.0, out, out=out)
    np.subtract(1.0, h, out=out)  # h (1 - h)
    out *= h
    return out


class _Workspace:
    """Buffers for one (B, T) chunk shape, reused step after step: a training step then
    allocates nothing large (fresh large arrays cost page faults every time)."""

    def __init__(self, config: ModelConfig, B: int, T: int):
        H, V, dt = config.hidden_size, config.vocab_size, np.dtype(config.dtype)
        self.hs = [np.empty((T + 1, B, H), dt) for _ in range(config.layers)]  # h_0 .. h_T
        self.a = np.empty((T, B, H), dt)  # pre-activations of the current layer
        self.logits = np.empty((T * B, V), dt)  # then probs, then dy
        self.dh = np.empty((T, B, H), dt)  # gradient reaching h_t from outside the recurrence
        self.dhraw = np.empty((T, B, H), dt)  # gradient at the pre-activations
        self.deriv = np.empty((T, B, H), dt)  # f'(a_t)
        self.tmp = np.empty((B, H), dt)
        self.rows = np.arange(T * B)
        self.WhhT: np.ndarray | None = None  # a contiguous Whh.T, for large batches


class CharRNN:
    """Parameters plus the math. `params` and the grads it returns share keys:
    `l{l}.Wxh`, `l{l}.Whh`, `l{l}.bh` per layer, then `Why`, `by`. Both are FlatParams:
    views into one buffer each, so optimizers update everything in a few calls."""

    def __init__(self, config: ModelConfig, rng: np.random.Generator):
        self.config = config
        self._params = FlatParams.of(init_params(config, rng), config.dtype)
        self._workspaces: dict[tuple[int, int], _Workspace] = {}

    @property
    def params(self) -> FlatParams:
        return self._params

    @params.setter
    def params(self, values: dict[str, np.ndarray]) -> None:
        """Copy `values` in (same keys and shapes as the config implies)."""
        if values.keys() != self._params.keys():
            raise ValueError(f"parameters {sorted(values)} are not {sorted(self._params)}")
        for k, v in values.items():
            if np.shape(v) != self._params[k].shape:
                raise ValueError(f"{k} has shape {np.shape(v)}, expected {self._params[k].shape}")
            self._params[k][...] = v

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.config.dtype)

    def zero_state(self, batch_size: int) -> State:
        """Hidden states of all layers at the start of a stream, each (B, H)."""
        return [
            np.zeros((batch_size, self.config.hidden_size), self.dtype)
            for _ in range(self.config.layers)
        ]

    def new_grads(self) -> FlatParams:
        """A gradient buffer for loss_and_grads(..., grads=) to fill step after step."""
        return self._params.like()

    def _workspace(self, B: int, T: int) -> _Workspace:
        ws = self._workspaces.get((B, T))
        if ws is None:
            if len(self._workspaces) >= 4:  # evaluation's last short chunk adds shapes
                self._workspaces.clear()
            ws = self._workspaces[(B, T)] = _Workspace(self.config, B, T)
        return ws

    def _forward(self, inputs: np.ndarray, hprev: State) -> tuple[list[np.ndarray], np.ndarray]:
        """inputs (B, T) ints, hprev per layer (B, H).
        Returns per-layer states hs[l] (T+1, B, H) with hs[l][0] = hprev[l], and logits (T*B, V),
        rows in time-major order (row t*B + b is stream b at step t). Both are workspace
        buffers, overwritten by the next call with the same shape."""
        c, p = self.config, self._params
        B, T = inputs.shape
        H = c.hidden_size
        ws = self._workspace(B, T)
        a, tmp, dot = ws.a, ws.tmp, np.dot
        below = None
        for l in range(c.layers):
            # everything that does not depend on the recurrence: one gather or GEMM per chunk
            if l == 0:  # rows of Wxh, never a one-hot product: (T, B, H)
                # ids come from a Vocab, so in range; mode="clip" skips the bounds-checking
                # copy that "raise" makes with out=, 4-5x faster
                np.take(p["l0.Wxh"], inputs.T, axis=0, out=a, mode="clip")
            else:
                np.matmul(below.reshape(T * B, H), p[f"l{l}.Wxh"], out=a.reshape(T * B, H))
            a += p[f"l{l}.bh"]
            h = ws.hs[l]
            h[0] = hprev[l]
            Whh, act = p[f"l{l}.Whh"], c.activation
            for t in range(T):  # the recurrence: the only step-by-step part
                dot(h[t], Whh, out=tmp)  # np.dot: the least call overhead for these shapes
                tmp += a[t]
                _activate(tmp, act, out=h[t + 1])
            below = h[1:]
        logits = np.matmul(below.reshape(T * B, H), p["Why"], out=ws.logits)  # (T*B, V)
        logits += p["by"]
        return ws.hs, logits

    def advance(self, inputs: np.ndarray, hprev: State) -> State:
        """Feed inputs (B, T) ints through the layers; the state after the last (B, H) each."""
        hs, _ = self._forward(inputs, hprev)
        return [h[-1].copy() for h in hs]

    def loss(self, inputs: np.ndarray, targets: np.ndarray, hprev: State) -> tuple[float, State]:
        """Forward only: (summed chunk loss averaged over streams, next state)."""
        hs, logits = self._forward(inputs, hprev)
        loss = _softmax_xent(logits, targets, self._workspace(*inputs.shape).rows, grad=False)[0]
        return loss / inputs.shape[0], [h[-1].copy() for h in hs]

    def loss_and_grads(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        hprev: State,
        grads: FlatParams | None = None,
    ) -> tuple[float, FlatParams, State]:
        """inputs, targets (B, T) ints; hprev per layer (B, H).
        Returns the loss (nats summed over the chunk, mean over the B streams), gradients
        under the keys of `params` (written into `grads` when given, see new_grads), and the
        last hidden state of each layer (B, H)."""
        c, p = self.config, self._params
        B, T = inputs.shape
        H = c.hidden_size
        g = self.new_grads() if grads is None else grads
        ws = self._workspace(B, T)
        hs, logits = self._forward(inputs, hprev)
        loss, dy = _softmax_xent(logits, targets, ws.rows)  # dy (T*B, V) = probs - one_hot
        dy /= B

        top = hs[-1][1:].reshape(T * B, H)
        _xty(top, dy, out=g["Why"])
        np.sum(dy, axis=0, out=g["by"])
        dh, dh2 = ws.dh, ws.dh.reshape(T * B, H)
        np.matmul(dy, p["Why"].T, out=dh2)  # dloss/dh_t of the top layer, from the readout
        for l in reversed(range(c.layers)):
            Whh = p[f"l{l}.Whh"]
            dhraw = self._backward_recurrence(dh, hs[l], Whh, ws).reshape(T * B, H)
            _xty(hs[l][:-1].reshape(T * B, H), dhraw, out=g[f"l{l}.Whh"])
            np.sum(dhraw, axis=0, out=g[f"l{l}.bh"])
            if l > 0:
                below = hs[l - 1][1:].reshape(T * B, H)
                _xty(below, dhraw, out=g[f"l{l}.Wxh"])
                # into the layer below through this layer's activation derivative (in dhraw):
                # the notebook's two-layer net skipped it
                np.matmul(dhraw, p[f"l{l}.Wxh"].T, out=dh2)
            else:
                _scatter_add_rows(g["l0.Wxh"], inputs.T.reshape(-1), dhraw)
        return loss / B, g, [h[-1].copy() for h in hs]

    def _backward_recurrence(
        self, dh: np.ndarray, h: np.ndarray, Whh: np.ndarray, ws: _Workspace | None = None
    ) -> np.ndarray:
        """dh (T, B, H): gradient reaching h_t from outside the recurrence; h (T+1, B, H).
        Returns dhraw (T, B, H), the gradient at the pre-activations."""
        if ws is None:
            ws = _Workspace(self.config, dh.shape[1], dh.shape[0])
        deriv, dhraw = ws.deriv, ws.dhraw
        _derivative(h[1:], self.config.activation, out=deriv)
        if not self.config.bptt:
            return np.multiply(dh, deriv, out=dhraw)  # context units are constants
        WhhT, tmp, dot, multiply = Whh.T, ws.tmp, np.dot, np.multiply
        T, B = dh.shape[:2]
        if B >= 16:  # a GEMM against a transposed view runs ~13 % slower than a contiguous one
            WhhT = ws.WhhT if ws.WhhT is not None else np.empty_like(Whh)
            ws.WhhT = np.copyto(WhhT, Whh.T) or WhhT
        multiply(dh[T - 1], deriv[T - 1], out=dhraw[T - 1])
        for t in range(T - 2, -1, -1):
            dot(dhraw[t + 1], WhhT, out=tmp)  # dhnext
            tmp += dh[t]
            multiply(tmp, deriv[t], out=dhraw[t])
        return dhraw

    def step(self, ix: np.ndarray, h: State) -> tuple[np.ndarray, State]:
        """One character per stream: ix (B,) ints, h per layer (B, H) -> logits (B, V), new h."""
        c, p = self.config, self._params
        x = None
        out = []
        for l in range(c.layers):  # as _forward does it: h Whh + (x Wxh + bh), with np.dot
            a = p["l0.Wxh"][ix] if l == 0 else np.dot(x, p[f"l{l}.Wxh"])
            a += p[f"l{l}.bh"]
            a = np.dot(h[l], p[f"l{l}.Whh"]) + a
            x = _activate(a, c.activation, out=a)
            out.append(x)
        return np.dot(x, p["Why"]) + p["by"], out


def _xty(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = x.T @ y for x (N, I), y (N, J); for N = 1 an outer product (the same products:
    a GEMM with one term per sum is slower here than a broadcast multiply)."""
    if x.shape[0] == 1:
        return np.multiply(x[0][:, None], y[0][None, :], out=out)
    return np.matmul(x.T, y, out=out)


def _scatter_add_rows(out: np.ndarray, index: np.ndarray, rows: np.ndarray) -> None:
    """out = 0, then out[index[k]] += rows[k] for every k, in order of k: the gradient of a
    row gather. Rows are sorted by index once (stably), then each run is summed: 7x faster
    than np.add.at on a 8192-row chunk, adding in the same order."""
    out.fill(0)
    if len(index) == 1:
        out[index[0]] = rows[0]
        return
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    if len(index) < 4 * len(out):  # few rows: one reduceat beats a loop over the vocabulary
        first = np.empty(len(index), bool)  # where each run of equal indices starts
        first[0] = True
        np.not_equal(sorted_index[1:], sorted_index[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        out[sorted_index[starts]] = np.add.reduceat(rows[order], starts, axis=0)
        return
    sorted_rows = rows[order]
    bounds = np.searchsorted(sorted_index, np.arange(len(out) + 1))
    for v in np.flatnonzero(bounds[1:] > bounds[:-1]):
        np.sum(sorted_rows[bounds[v] : bounds[v + 1]], axis=0, out=out[v])


def init_params(config: ModelConfig, rng: np.random.Generator) -> Params:
    """Weights N(0, 1) * init_scale, biases zero (min-char-rnn's initialisation)."""
    s, dt = config.init_scale, config.dtype
    # drawn in key order (Wxh, Whh, bh per layer, then Why, by): the same draws as always
    return {
        k: np.zeros(shape, dt) if len(shape) == 1 else (rng.standard_normal(shape) * s).astype(dt)
        for k, shape in param_shapes(config).items()
    }


def _softmax_xent(
    logits: np.ndarray, targets: np.ndarray, rows: np.ndarray | None = None, grad: bool = True
) -> tuple[float, np.ndarray]:
    """logits (T*B, V) time-major rows, targets (B, T). Returns the summed cross-entropy
    (nats) and, with grad, its gradient w.r.t. the logits, probs - one_hot, both computed
    in place in `logits`."""
    rows = np.arange(logits.shape[0]) if rows is None else rows
    tgt = targets.T.reshape(-1)
    logits -= logits.max(1, keepdims=True)  # stable: exp never overflows
    picked = logits[rows, tgt].astype(np.float64)
    np.exp(logits, out=logits)
    z = logits.sum(1, keepdims=True)
    loss = float(np.sum(np.log(z[:, 0], dtype=np.float64) - picked))
    if not grad:
        return loss, logits
    logits /= z
    logits[rows, tgt] -= 1.0
    return loss, logits
