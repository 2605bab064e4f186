"""Validation loss over a split, or over a fixed sample of it, in nats and bits per character."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnnexp.model import CharRNN

CHUNK = 256  # characters of each stream per forward pass: sets only the memory it takes


@dataclass(frozen=True)
class Evaluation:
    """A loss over a split, as `evaluate` returns it: `loss` (nats/char) is `val/loss`."""

    loss: float  # nats per predicted character
    bpc: float  # bits per character: loss / ln 2
    chars: int  # characters predicted


def evaluate(
    model: CharRNN, ids: np.ndarray, streams: int = 1, chunk: int = CHUNK, chars: int | None = None
) -> Evaluation:
    """Loss of predicting every character of ids[1:] from the ones before it.

    The text is cut into `streams` contiguous pieces of equal length, read side by side from
    a zero state (one batched pass instead of one long sequential one); the last piece's
    state then carries on over the few characters left over. streams=1 is one stream from
    the start. `chunk` only sets the memory used: the state is carried across chunks.

    chars: predict only about this many characters, the start of every piece (nanoGPT's
    eval_iters): the same sample of the whole split at every call, for a cheap estimate.

    Examples:
        >>> model = CharRNN(preset("rnn", 3, 8), np.random.default_rng(0))
        >>> result = evaluate(model, Vocab("abc").encode("abcabcabc"))
        >>> result.chars, round(result.loss / result.bpc, 6)  # nats/char, bits/char: ln 2 apart
        (8, 0.693147)
    """
    n = len(ids) - 1  # predictions
    if n < 1:
        raise ValueError("need at least 2 characters to evaluate")
    S = max(1, min(streams, n))
    L = n // S
    inputs, targets = ids[: S * L].reshape(S, L), ids[1 : S * L + 1].reshape(S, L)
    read = L if chars is None else max(1, min(L, chars // S))  # characters of each piece
    h = model.zero_state(S)
    total = 0.0
    for start in range(0, read, chunk):
        stop = min(start + chunk, read)
        loss, h = model.loss(inputs[:, start:stop], targets[:, start:stop], h)
        total += loss * S  # model.loss averages over the streams
    if read < L:  # a sample: the leftover characters are not part of it
        return Evaluation(total / (S * read), total / (S * read) / math.log(2), S * read)
    h = [x[-1:] for x in h]  # the last stream reads on over the leftover characters
    for start in range(S * L, n, chunk):
        stop = min(start + chunk, n)
        loss, h = model.loss(ids[None, start:stop], ids[None, start + 1 : stop + 1], h)
        total += loss
    return Evaluation(total / n, total / n / math.log(2), n)


def unigram_cross_entropy(train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int) -> float:
    """Nats per character of `val_ids` under the training split's character frequencies
    (add-one smoothed over the vocabulary): what a model that learned only how often each
    character occurs would score. A run whose validation loss is not below it learned
    nothing about sequences."""
    counts = np.bincount(train_ids, minlength=vocab_size) + 1.0
    logp = np.log(counts / counts.sum())
    # the characters evaluate() predicts; + 0.0: a one-character text's -0.0 printed as 0
    return float(-logp[val_ids[1:]].mean()) + 0.0
