"""Generating text from a model: prime it, then draw one character at a time."""

from __future__ import annotations

import numpy as np

from rnnexp.data import Vocab
from rnnexp.errors import ConfigError
from rnnexp.model import CharRNN, State, _activate


def sample(
    model: CharRNN,
    vocab: Vocab,
    rng: np.random.Generator,
    length: int,
    prime: str = "",
    temperature: float = 1.0,
    state: State | None = None,
) -> str:
    """`prime` followed by `length` generated characters.

    The prime text is fed through the model from `state` (zero when None); without a prime
    the first character is drawn uniformly. temperature 1.0 samples the model's distribution,
    lower is more conservative, 0 always takes the most likely character."""
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ConfigError(f"sample length must be a whole number >= 0, got {length!r}")
    if not temperature >= 0:
        raise ConfigError(f"temperature must be >= 0, got {temperature!r}")
    h = model.zero_state(1) if state is None else [x[:1].copy() for x in state]
    if prime:
        ids = vocab.encode(prime)
        if len(ids) > 1:
            h = model.advance(ids[None, :-1], h)
        x = int(ids[-1])
    else:
        x = int(rng.integers(len(vocab)))
    return prime + vocab.decode(_generate(model, h, x, length, temperature, rng))


def _generate(
    model: CharRNN, h: list[np.ndarray], x: int, length: int, temperature: float, rng
) -> list[int]:
    """The per-character loop, lean: buffers made once, the input rows of layer 0 with their
    bias added once, the same calls in the same order as CharRNN._forward. h: (1, H) each."""
    c, p = model.config, model.params
    L, V = c.layers, c.vocab_size
    table = p["l0.Wxh"] + p["l0.bh"]  # (V, H): x Wxh + bh for every character x
    Whh = [p[f"l{l}.Whh"] for l in range(L)]
    Wxh = [None] + [p[f"l{l}.Wxh"] for l in range(1, L)]
    bh = [None] + [p[f"l{l}.bh"] for l in range(1, L)]
    Why, by = p["Why"], p["by"]
    tmp, below = np.empty_like(h[0]), np.empty_like(h[0])
    logits, z, cdf = np.empty((1, V), model.dtype), np.empty(V), np.empty(V)
    dot, act, out = np.dot, c.activation, []
    for _ in range(length):
        for l in range(L):
            dot(h[l], Whh[l], out=tmp)
            if l == 0:
                tmp += table[x]
            else:
                dot(h[l - 1], Wxh[l], out=below)
                below += bh[l]
                tmp += below
            _activate(tmp, act, out=h[l])
        dot(h[-1], Why, out=logits)
        logits += by
        if temperature == 0:
            x = int(logits.argmax())
        else:
            np.subtract(logits[0], logits.max(), out=z)  # float64 whatever the model's dtype
            z *= 1.0 / temperature
            np.exp(z, out=z)
            np.cumsum(z, out=cdf)
            # inverse-CDF draw: one uniform number per character, cheaper than rng.choice
            x = min(int(cdf.searchsorted(rng.random() * cdf[-1], side="right")), V - 1)
        out.append(x)
    return out
