"""Text to integer ids, the train/validation split, and B parallel streams cut into chunks.

The vocabulary is sorted, so a character has the same id in every process (the notebooks'
`list(set(text))` orders differently from one interpreter to the next).
"""

from __future__ import annotations

import numpy as np

from rnnexp.errors import CorpusError, check_interval, check_whole


class Vocab:
    """Sorted characters <-> ids: the same ids in every process.

    Examples:
        >>> vocab = Vocab.from_text("hello")
        >>> vocab.chars, vocab.encode("hel").tolist(), vocab.decode([2, 1])
        ('ehlo', [1, 0, 2], 'lh')
    """

    def __init__(self, chars: str):
        if len(set(chars)) != len(chars) or list(chars) != sorted(chars):
            raise ValueError("vocabulary must be distinct characters in sorted order")
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """(len(text),) int64 ids; a character outside the vocabulary is a clear error."""
        try:
            return np.fromiter((self.index[c] for c in text), np.int64, len(text))
        except KeyError as e:
            raise CorpusError(f"character {e.args[0]!r} is not in the model's vocabulary") from None

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in ids)


def check_val_fraction(value: float) -> float:
    """The one rule for corpus.val_fraction: some text to train on, some to validate on."""
    return check_interval("corpus.val_fraction", value, 0, 1, low_closed=False)


def split(ids: np.ndarray, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation): the last `val_fraction` of the text is the validation split.

    Examples:
        >>> [len(part) for part in split(np.arange(100))]
        [90, 10]
    """
    check_val_fraction(val_fraction)
    n_val = int(round(len(ids) * val_fraction))
    return ids[: len(ids) - n_val], ids[len(ids) - n_val :]


class Streams:
    """karpathy/char-rnn's minibatch loader: the text cut into B contiguous streams of S ids,
    read T at a time, each stream carrying its own hidden state.

    At B = 1 this is min-char-rnn's pointer: `if p + T + 1 >= len(data)`, back to 0 and
    reset the hidden state."""

    def __init__(self, ids: np.ndarray, batch_size: int, seq_length: int):
        for key, v in (("batch_size", batch_size), ("seq_length", seq_length)):
            check_whole(f"train.{key}", v, 1)
        S = len(ids) // batch_size
        if S < seq_length + 1:
            raise CorpusError(
                f"training text of {len(ids)} characters is too short for batch_size={batch_size} "
                f"streams of seq_length={seq_length} (each stream needs seq_length + 1 = "
                f"{seq_length + 1}); use a smaller batch_size or seq_length, or a longer text"
            )
        self.data = np.ascontiguousarray(ids[: batch_size * S].reshape(batch_size, S))  # (B, S)
        self.seq_length = seq_length
        self.pos = 0  # where the next chunk starts in every stream

    @property
    def batch_size(self) -> int:
        return self.data.shape[0]

    @property
    def steps_per_pass(self) -> int:
        """Chunks read before the streams start over: an epoch, in steps."""
        S, T = self.data.shape[1], self.seq_length
        return max(1, -(-(S - T - 1) // T))

    def next(self) -> tuple[np.ndarray, np.ndarray, bool]:
        """(inputs (B, T), targets (B, T) = inputs shifted by one, wrapped): `wrapped` says
        the streams started over, so the caller resets the hidden state."""
        T = self.seq_length
        wrapped = self.pos + T + 1 >= self.data.shape[1]
        if wrapped:
            self.pos = 0
        chunk = self.data[:, self.pos : self.pos + T + 1]
        self.pos += T
        return chunk[:, :-1], chunk[:, 1:], wrapped
