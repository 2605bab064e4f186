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

from dataclasses import dataclass

import numpy as np

from rnnexp.errors import ConfigError

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


def _activate(a: np.ndarray, kind: str) -> np.ndarray:
    """f(a) in place."""
    if kind == "tanh":
        return np.tanh(a, out=a)
    # sigmoid(a) = (1 + tanh(a/2)) / 2: no overflow in exp for large |a|
    a *= 0.5
    np.tanh(a, out=a)
    a += 1.0
    a *= 0.5
    return a


def _derivative(h: np.ndarray, kind: str) -> np.ndarray:
    """f'(a) written in terms of h = f(a)."""
    return 1.0 - h * h if kind == "tanh" else h * (1.0 - h)


class CharRNN:
    """Parameters plus the math. `params` and the grads it returns share keys:
    `l{l}.Wxh`, `l{l}.Whh`, `l{l}.bh` per layer, then `Why`, `by`."""

    def __init__(self, config: ModelConfig, rng: np.random.Generator):
        self.config = config
        self.params = init_params(config, rng)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.config.dtype)

    def zero_state(self, batch_size: int) -> State:
        """Hidden states of all layers at the start of a stream, each (B, H)."""
        return [
            np.zeros((batch_size, self.config.hidden_size), self.dtype)
            for _ in range(self.config.layers)
        ]

    def _forward(self, inputs: np.ndarray, hprev: State) -> tuple[list[np.ndarray], np.ndarray]:
        """inputs (B, T) ints, hprev per layer (B, H).
        Returns per-layer states hs[l] (T+1, B, H) with hs[l][0] = hprev[l], and logits (T*B, V),
        rows in time-major order (row t*B + b is stream b at step t)."""
        c, p = self.config, self.params
        B, T = inputs.shape
        H = c.hidden_size
        hs = []
        below = None
        for l in range(c.layers):
            # everything that does not depend on the recurrence: one gather or GEMM per chunk
            if l == 0:
                a = p["l0.Wxh"][inputs.T]  # (T, B, H): rows of Wxh, never a one-hot product
            else:
                a = (below.reshape(T * B, H) @ p[f"l{l}.Wxh"]).reshape(T, B, H)
            a += p[f"l{l}.bh"]
            h = np.empty((T + 1, B, H), self.dtype)
            h[0] = hprev[l]
            Whh = p[f"l{l}.Whh"]
            for t in range(T):  # the recurrence: the only step-by-step part
                at = a[t]
                at += h[t] @ Whh
                h[t + 1] = _activate(at, c.activation)
            hs.append(h)
            below = h[1:]
        logits = below.reshape(T * B, H) @ p["Why"] + p["by"]  # (T*B, V)
        return hs, logits

    def advance(self, inputs: np.ndarray, hprev: State) -> State:
        """Feed inputs (B, T) ints through the layers; the state after the last (B, H) each."""
        hs, _ = self._forward(inputs, hprev)
        return [h[-1].copy() for h in hs]

    def loss(self, inputs: np.ndarray, targets: np.ndarray, hprev: State) -> tuple[float, State]:
        """Forward only: (summed chunk loss averaged over streams, next state)."""
        hs, logits = self._forward(inputs, hprev)
        loss, _ = _softmax_xent(logits, targets)
        return loss / inputs.shape[0], [h[-1].copy() for h in hs]

    def loss_and_grads(
        self, inputs: np.ndarray, targets: np.ndarray, hprev: State
    ) -> tuple[float, Params, State]:
        """inputs, targets (B, T) ints; hprev per layer (B, H).
        Returns the loss (nats summed over the chunk, mean over the B streams), gradients
        under the keys of `params`, and the last hidden state of each layer (B, H)."""
        c, p = self.config, self.params
        B, T = inputs.shape
        H = c.hidden_size
        hs, logits = self._forward(inputs, hprev)
        loss, dy = _softmax_xent(logits, targets)  # dy (T*B, V) = probs - one_hot(targets)
        dy /= B

        grads: Params = {}
        top = hs[-1][1:].reshape(T * B, H)
        grads["Why"] = top.T @ dy
        grads["by"] = dy.sum(0)
        dh = (dy @ p["Why"].T).reshape(T, B, H)  # dloss/dh_t of the top layer, from the readout
        for l in reversed(range(c.layers)):
            Whh = p[f"l{l}.Whh"]
            dhraw = self._backward_recurrence(dh, hs[l], Whh).reshape(T * B, H)
            grads[f"l{l}.Whh"] = hs[l][:-1].reshape(T * B, H).T @ dhraw
            grads[f"l{l}.bh"] = dhraw.sum(0)
            if l > 0:
                below = hs[l - 1][1:].reshape(T * B, H)
                grads[f"l{l}.Wxh"] = below.T @ dhraw
                # into the layer below through this layer's activation derivative (in dhraw):
                # the notebook's two-layer net skipped it
                dh = (dhraw @ p[f"l{l}.Wxh"].T).reshape(T, B, H)
            else:
                dWxh = np.zeros_like(p["l0.Wxh"])
                np.add.at(dWxh, inputs.T.reshape(-1), dhraw)  # scatter-add rows, no one-hot
                grads["l0.Wxh"] = dWxh
        return loss / B, grads, [h[-1].copy() for h in hs]

    def _backward_recurrence(self, dh: np.ndarray, h: np.ndarray, Whh: np.ndarray) -> np.ndarray:
        """dh (T, B, H): gradient reaching h_t from outside the recurrence; h (T+1, B, H).
        Returns dhraw (T, B, H), the gradient at the pre-activations."""
        deriv = _derivative(h[1:], self.config.activation)
        if not self.config.bptt:
            return dh * deriv  # context units are constants: nothing flows back through time
        dhraw = np.empty_like(dh)
        dhnext = np.zeros_like(dh[0])
        for t in reversed(range(dh.shape[0])):
            np.multiply(dh[t] + dhnext, deriv[t], out=dhraw[t])
            dhnext = dhraw[t] @ Whh.T
        return dhraw

    def step(self, ix: np.ndarray, h: State) -> tuple[np.ndarray, State]:
        """One character per stream: ix (B,) ints, h per layer (B, H) -> logits (B, V), new h."""
        c, p = self.config, self.params
        x = None
        out = []
        for l in range(c.layers):
            a = p["l0.Wxh"][ix] if l == 0 else x @ p[f"l{l}.Wxh"]
            a = a + h[l] @ p[f"l{l}.Whh"] + p[f"l{l}.bh"]
            x = _activate(a, c.activation)
            out.append(x)
        return x @ p["Why"] + p["by"], out


def init_params(config: ModelConfig, rng: np.random.Generator) -> Params:
    """Weights N(0, 1) * init_scale, biases zero (min-char-rnn's initialisation)."""
    V, H, s, dt = config.vocab_size, config.hidden_size, config.init_scale, config.dtype
    params: Params = {}
    for l in range(config.layers):
        params[f"l{l}.Wxh"] = (rng.standard_normal((V if l == 0 else H, H)) * s).astype(dt)
        params[f"l{l}.Whh"] = (rng.standard_normal((H, H)) * s).astype(dt)
        params[f"l{l}.bh"] = np.zeros(H, dt)
    params["Why"] = (rng.standard_normal((H, V)) * s).astype(dt)
    params["by"] = np.zeros(V, dt)
    return params


def _softmax_xent(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """logits (T*B, V) time-major rows, targets (B, T). Returns the summed cross-entropy
    (nats) and its gradient w.r.t. the logits, probs - one_hot, overwriting `logits`."""
    rows = np.arange(logits.shape[0])
    tgt = targets.T.reshape(-1)
    logits -= logits.max(1, keepdims=True)  # stable: exp never overflows
    picked = logits[rows, tgt].astype(np.float64)
    np.exp(logits, out=logits)
    z = logits.sum(1, keepdims=True)
    loss = float(np.sum(np.log(z[:, 0], dtype=np.float64) - picked))
    logits /= z
    logits[rows, tgt] -= 1.0
    return loss, logits
