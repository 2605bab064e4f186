"""Saved models: exact round trip; anything that does not match its own config is refused."""

import io
import json
import zipfile

import numpy as np
import pytest

from rnnexp import CharRNN, Vocab, preset
from rnnexp.checkpoint import load_checkpoint, load_model, save_checkpoint, save_model
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
    with pytest.raises(RnnexpError, match="member by holds Python objects"):
        load_model(path)


def test_missing_or_corrupt_files_are_clear(saved, tmp_path):
    with pytest.raises(RnnexpError, match="cannot load a model from"):
        load_model(tmp_path / "nowhere")
    path, _, _ = saved
    (path / "model.npz").write_bytes(b"not a zip file")
    with pytest.raises(RnnexpError, match="cannot load a model from"):
        load_model(path)


def _npz(path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data)


def _npy(array=None, header: dict | None = None, tail: bytes = b"") -> bytes:
    f = io.BytesIO()
    if header is None:
        np.save(f, array)
    else:
        np.lib.format.write_array_header_1_0(f, header)
    return f.getvalue() + tail


@pytest.mark.parametrize(
    "member, message",
    [
        (_npy(header={"descr": "<f4", "fortran_order": False, "shape": (2**40,)}),
         r"parameter by is float32\(1099511627776,\), the config says float32\(8,\)"),
        # the right header, and 256 MB of zeros that deflate to 256 kB after it
        (_npy(np.zeros(8, np.float32), tail=bytes(2**28)),
         "member by declares 32 bytes but holds 268,435,488"),
        (_npy(np.zeros(8, np.float32))[:-4], "member by declares 32 bytes but holds 28"),
    ],
)  # fmt: skip
def test_a_crafted_npz_is_refused_before_anything_is_allocated(saved, member, message):
    path, model, _ = saved
    members = {k: _npy(v) for k, v in model.params.items()} | {"by": member}
    _npz(path / "model.npz", members)
    with pytest.raises(RnnexpError, match=message):
        load_model(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[]", "model.json is not a JSON object"),
        ("[" * 200_000 + "]" * 200_000, "model.json is nested too deep"),
        ('{"format": "rnnexp-model-1", "config": 3}', "its config is not a mapping"),
    ],
)
def test_a_crafted_model_json_is_one_line(saved, text, message):
    path, _, _ = saved
    (path / "model.json").write_text(text)
    with pytest.raises(RnnexpError, match=message):
        load_model(path)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"config": {"layers": 100_000_000}}, r"100000000 layer\(s\) has [\d,]+ parameters"),
        ({"config": {"hidden_size": 10**20}}, "more than this machine's"),
        ({"vocab": ["h", "e"]}, "its vocabulary is not a string of characters"),
        ({"vocab": "hhe"}, "vocabulary must be distinct characters in sorted order"),
        ({"start": "hello"}, "start character 'hello' is not one character"),
    ],
)  # fmt: skip
def test_a_model_json_with_absurd_values_is_refused_at_once(saved, change, message):
    path, _, _ = saved
    meta = json.loads((path / "model.json").read_text())
    for k, v in change.items():
        meta[k] = meta[k] | v if isinstance(v, dict) else v
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(RnnexpError, match=message):
        load_model(path)


def test_a_checkpoint_is_read_with_the_same_care(tmp_path):
    path = save_checkpoint(tmp_path / "checkpoint.npz", {"w": np.ones(3)}, {"step": 4})
    arrays, meta = load_checkpoint(path)
    assert meta["step"] == 4 and arrays["w"].tolist() == [1, 1, 1]
    header = {"descr": "<f8", "fortran_order": False, "shape": (2**40,)}
    _npz(path, {"__meta__": _npy(np.array('{"format": "rnnexp-checkpoint-1"}')),
                "w": _npy(header=header)})  # fmt: skip
    with pytest.raises(RnnexpError, match="corrupted or not an rnnexp checkpoint: member w"):
        load_checkpoint(path)


@pytest.mark.parametrize("name", ["model.json", "model.npz"])
def test_a_device_or_fifo_in_place_of_a_model_file_is_refused_at_once(saved, name):
    import os

    path, _, _ = saved
    (path / name).unlink()
    (path / name).symlink_to("/dev/zero")  # reads forever
    with pytest.raises(RnnexpError, match=f"{name} is not a regular file"):
        load_model(path)
    (path / name).unlink()
    os.mkfifo(path / name)  # blocks forever
    with pytest.raises(RnnexpError, match=f"{name} is not a regular file"):
        load_model(path)


def test_a_model_whose_parameters_are_not_finite_is_refused(saved):
    path, model, _ = saved
    np.savez(path / "model.npz", **dict(model.params, by=np.full(8, np.nan, np.float32)))
    with pytest.raises(RnnexpError, match="parameter by is not finite"):
        load_model(path)


@pytest.mark.parametrize("meta", ["[]", '"x"', "[" * 100_000 + "]" * 100_000])
def test_a_checkpoint_whose_metadata_is_not_an_object_is_one_line(tmp_path, meta):
    path = save_checkpoint(tmp_path / "checkpoint.npz", {"w": np.ones(3)}, {"step": 4})
    _npz(path, {"__meta__": _npy(np.array(meta)), "w": _npy(np.ones(3))})
    with pytest.raises(RnnexpError, match="corrupted or not an rnnexp checkpoint: its metadata"):
        load_checkpoint(path)
