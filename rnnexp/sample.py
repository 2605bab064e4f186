"""Generating text from a model: prime it, then draw one character at a time."""

from __future__ import annotations

import numpy as np

from rnnexp.data import Vocab
from rnnexp.errors import ConfigError
from rnnexp.model import CharRNN, State


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
    out = []
    for _ in range(length):
        logits, h = model.step(np.array([x]), h)
        z = logits[0].astype(np.float64)
        if temperature == 0:
            x = int(np.argmax(z))
        else:
            z = np.exp((z - z.max()) / temperature)
            cdf = np.cumsum(z)
            # inverse-CDF draw: one uniform number per character, cheaper than rng.choice
            x = min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(z) - 1)
        out.append(x)
    return prime + vocab.decode(out)
