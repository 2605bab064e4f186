"""Saved models: exact round trip; anything that does not match its own config is refused."""

import json

import numpy as np
import pytest

from rnnexp import CharRNN, Vocab, preset
from rnnexp.checkpoint import load_model, save_model
from rnnexp.errors import RnnexpError


@pytest.fixture
def saved(tmp_path):
    vocab = Vocab.from_text("hello world")
    model = CharRNN(preset("stacked2", len(vocab), 8, dtype="float32"), np.random.default_rng(0))
    return save_model(tmp_path / "model", model, vocab, "h"), model, vocab


def test_round_trip_is_exact(saved):
    path, model, vocab = saved
    loaded, v, start = load_model(path)
    assert v.chars == vocab.chars and start == "h" and loaded.config == model.config
    for k in model.params:
        assert loaded.params[k].tobytes() == model.params[k].tobytes()
    assert not list(path.glob(".*tmp"))  # no temporary files left behind


def test_wrong_shape_is_refused(saved):
    path, model, _ = saved
    params = dict(model.params, **{"l1.Whh": np.zeros((8, 9), np.float32)})
    np.savez(path / "model.npz", **params)
    with pytest.raises(RnnexpError, match=r"parameter l1.Whh is float32\(8, 9\), the config says"):
        load_model(path)


def test_vocabulary_mismatch_is_refused(saved):
    path, _, _ = saved
    meta = json.loads((path / "model.json").read_text())
    meta["vocab"] = "abch"
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(RnnexpError, match="vocabulary has 4 characters, the model expects 8"):
        load_model(path)


def test_pickled_arrays_are_refused(saved):
    path, model, _ = saved
    np.savez(path / "model.npz", **dict(model.params, by=np.array([{"evil": 1}], dtype=object)))
    with pytest.raises(RnnexpError, match="allow_pickle=False"):
        load_model(path)


def test_missing_or_corrupt_files_are_clear(saved, tmp_path):
    with pytest.raises(RnnexpError, match="cannot load a model from"):
        load_model(tmp_path / "nowhere")
    path, _, _ = saved
    (path / "model.npz").write_bytes(b"not a zip file")
    with pytest.raises(RnnexpError, match="cannot load a model from"):
        load_model(path)
