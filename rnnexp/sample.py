"""Generating text from a model: prime it, then draw one character at a time."""

from __future__ import annotations

import math

import numpy as np

from rnnexp.data import Vocab
from rnnexp.errors import check_fits, check_interval, check_whole
from rnnexp.model import CharRNN, State


def check_temperature(value: float) -> float:
    """The one rule for a sampling temperature: 0 (greedy) or more."""
    return check_interval("sample.temperature", value, 0, math.inf, high_closed=True)


def check_length(name: str, length: int) -> int:
    """The one rule for how many characters to generate: a whole number >= 0 whose ids and
    text fit in memory (~64 bytes a character while it is written)."""
    check_whole(name, length, 0)
    check_fits(f"{name}={length}", 64 * length)
    return length


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
    lower is more conservative, 0 always takes the most likely character.

    Examples:
        >>> model = CharRNN(preset("rnn", 3, 8), np.random.default_rng(0))  # untrained
        >>> text = sample(model, Vocab("abc"), np.random.default_rng(0), 10, prime="ab")
        >>> len(text), text[:2], set(text) <= set("abc")
        (12, 'ab', True)
    """
    check_length("sample length", length)
    check_temperature(temperature)
    h = model.zero_state(1) if state is None else [x[:1].copy() for x in state]
    if prime:
        ids = vocab.encode(prime)
        if len(ids) > 1:
            h = model.advance(ids[None, :-1], h)
        x = int(ids[-1])
    else:
        x = int(rng.integers(len(vocab)))
    return prime + vocab.decode(_generate(model, h, x, length, temperature, rng))


def _generate(model: CharRNN, h: State, x: int, length: int, temperature: float, rng) -> list[int]:
    """The per-character loop, compiled (rnnexp/stepping.py): each cell's own step, then an
    inverse-CDF draw, one uniform number per character drawn from `rng` up front (the same
    numbers, in the same order, as one call per character), none at temperature 0. h: (1, H)
    each, updated in place."""
    u = rng.random(length) if temperature > 0 else np.zeros(length)
    return model.stepper().generate(x, h, u, temperature).tolist()
