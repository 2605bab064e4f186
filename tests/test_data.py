"""Vocabulary, split and the streams loader."""

import numpy as np
import pytest

from rnnexp.data import Streams, Vocab, split
from rnnexp.errors import ConfigError, CorpusError


def test_vocab_is_sorted_and_round_trips():
    v = Vocab.from_text("hello world")
    assert v.chars == " dehlorw"
    ids = v.encode("world")
    assert ids.tolist() == [7, 5, 6, 4, 1]
    assert v.decode(ids) == "world"
    with pytest.raises(CorpusError, match="'z' is not in the model's vocabulary"):
        v.encode("zebra")


def test_split_keeps_the_last_tenth_for_validation():
    train, val = split(np.arange(1000))
    assert len(train) == 900 and val.tolist() == list(range(900, 1000))


def test_one_stream_is_min_char_rnns_pointer():
    data = np.arange(40)
    s = Streams(data, batch_size=1, seq_length=10)
    starts, wraps = [], []
    for _ in range(8):
        x, y, wrapped = s.next()
        np.testing.assert_array_equal(y, x + 1)
        starts.append(int(x[0, 0]))
        wraps.append(wrapped)
    # p + 10 + 1 >= 40 sends p back to 0: chunks at 0, 10, 20, then 0 again
    assert starts == [0, 10, 20, 0, 10, 20, 0, 10]
    assert wraps == [False, False, False, True, False, False, True, False]


def test_streams_are_contiguous_slices():
    s = Streams(np.arange(100), batch_size=4, seq_length=5)
    x, y, _ = s.next()
    assert x[:, 0].tolist() == [0, 25, 50, 75]
    x, y, _ = s.next()
    assert x[:, 0].tolist() == [5, 30, 55, 80] and y[:, -1].tolist() == [10, 35, 60, 85]


def test_text_shorter_than_one_sequence_is_refused():
    Streams(np.arange(11), batch_size=1, seq_length=10)  # exactly T + 1: fine
    with pytest.raises(CorpusError, match="too short for batch_size=1 streams of seq_length=10"):
        Streams(np.arange(10), batch_size=1, seq_length=10)
    with pytest.raises(CorpusError, match="smaller batch_size"):
        Streams(np.arange(100), batch_size=16, seq_length=10)


def test_split_and_the_settings_share_one_rule_for_val_fraction():
    for bad in (0, 1, 1.5, -0.1):
        with pytest.raises(ConfigError, match=r"corpus.val_fraction must be a number in \(0, 1\)"):
            split(np.arange(100), bad)
