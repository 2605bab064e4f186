"""Validation loss over a whole split, in nats and bits per character."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnnexp.model import CharRNN


@dataclass(frozen=True)
class Evaluation:
    loss: float  # nats per predicted character
    bpc: float  # bits per character: loss / ln 2
    chars: int  # characters predicted


def evaluate(model: CharRNN, ids: np.ndarray, chunk: int = 256) -> Evaluation:
    """Loss of predicting ids[1:] from ids[:-1] as one stream from a zero state, in chunks
    of `chunk` characters with the hidden state carried across them: the number does not
    depend on the chunk length, only on the text."""
    n = len(ids) - 1
    if n < 1:
        raise ValueError("need at least 2 characters to evaluate")
    h = model.zero_state(1)
    total = 0.0
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        loss, h = model.loss(ids[None, start:stop], ids[None, start + 1 : stop + 1], h)
        total += loss
    return Evaluation(total / n, total / n / math.log(2), n)
