"""A trained model read over a text, with what happens inside kept: every unit's value at
every character (what each cell's `observe` names: tanh(c) for the LSTM, h otherwise), how
often each gate unit saturates, and the next-character distribution after each character.

The text is one stream from a zero state, fed in chunks through the model's own forward pass
(the code training runs), so the surprisal summed here is the model's loss on the text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnexp.model import CharRNN

# Karpathy, Johnson & Fei-Fei (2015) call a gate left-saturated below 0.1, right above 0.9
LEFT, RIGHT = 0.1, 0.9


@dataclass
class Trace:
    ids: np.ndarray  # (N,) the text's character ids
    units: np.ndarray  # (L, N, H) float32: each layer's observed values after character t
    surprisal: np.ndarray  # (N,) nats: -log p(c_t | c_<t); NaN at t = 0 (nothing before it)
    top_ids: np.ndarray  # (N, k) the k likeliest characters after c_t, likeliest first
    top_probs: np.ndarray  # (N, k) their probabilities
    # (layer, gate) -> (left, right): the fraction of characters each unit's gate spends
    # below LEFT and above RIGHT, two (H,) arrays; empty for cells without gates
    saturation: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]

    @property
    def loss(self) -> float:
        """Mean surprisal over the characters that have a prediction (nats/char)."""
        return float(np.mean(self.surprisal[1:])) if len(self.surprisal) > 1 else float("nan")


def trace(model: CharRNN, ids: np.ndarray, top: int = 5, chunk: int = 256) -> Trace:
    """Feed `ids` (N,) through `model` as one stream from a zero state, `chunk` characters
    per forward pass; keep the units, gate saturation and the `top` next-character guesses."""
    ids = np.asarray(ids, dtype=np.int64)
    N, H, L = len(ids), model.config.hidden_size, model.config.layers
    V = model.config.vocab_size
    k = max(1, min(top, V))
    units = np.empty((L, N, H), np.float32)
    logp_next = np.empty(N)  # log p of the character that follows each position
    top_ids = np.empty((N, k), np.int64)
    top_probs = np.empty((N, k))
    counts: dict[tuple[int, str], list[np.ndarray]] = {}
    state = model.zero_state(1)
    for start in range(0, N, chunk):
        x = ids[None, start : start + chunk]  # (1, T)
        T = x.shape[1]
        last, logits, ws = model.forward(x, state)
        state = [s.copy() for s in last]
        for l, cell in enumerate(model.cells):
            values, gates = cell.observe(ws.cells[l])
            units[l, start : start + T] = values[:, 0]
            for name, g in gates.items():
                left, right = counts.setdefault((l, name), [np.zeros(H), np.zeros(H)])
                left += np.count_nonzero(g[:, 0] < LEFT, axis=0)
                right += np.count_nonzero(g[:, 0] > RIGHT, axis=0)
        # logits (T, V): rows are positions (B = 1); log-softmax in float64
        z = logits.astype(np.float64)
        z -= z.max(1, keepdims=True)
        z -= np.log(np.exp(z).sum(1, keepdims=True))
        following = ids[start + 1 : start + T + 1]  # the character after each position
        rows = np.arange(len(following))
        logp_next[start : start + len(following)] = z[rows, following]
        best = np.argsort(-z, axis=1, kind="stable")[:, :k]
        top_ids[start : start + T] = best
        top_probs[start : start + T] = np.exp(np.take_along_axis(z, best, axis=1))
    surprisal = np.full(N, np.nan)
    surprisal[1:] = -logp_next[: N - 1]
    saturation = {key: (left / N, right / N) for key, (left, right) in counts.items()}
    return Trace(ids, units, surprisal, top_ids, top_probs, saturation)
