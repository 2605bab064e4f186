"""A trained model on disk: `model.npz` (parameters under their keys) and `model.json` (the
ModelConfig, the vocabulary, and the character its training streams start from). Loaded with
allow_pickle=False and checked against each other: neither code nor a mismatched model."""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from rnnexp.atomic import atomic_write
from rnnexp.config import model_config, param_shapes
from rnnexp.data import Vocab
from rnnexp.errors import RnnexpError, check_fits
from rnnexp.model import CharRNN

FORMAT = "rnnexp-model-1"
# a run's folder keeps its final model in model/ and the one of its lowest val/loss in
# model_best/ (both artifacts too): rnnexp-sample reads either
MODEL_DIR, BEST_MODEL_DIR = "model", "model_best"


def save_model(directory: Path, model: CharRNN, vocab: Vocab, start: str) -> Path:
    """Write model.npz and model.json into `directory`, each atomically; return the directory.
    `start` is the first character of the training text: from a zero state, the input every
    training stream began with, so the natural seed for unprimed samples."""
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "config": asdict(model.config), "vocab": vocab.chars, "start": start}
    atomic_write(directory / "model.json", lambda f: f.write(json.dumps(meta, indent=2).encode()))
    atomic_write(directory / "model.npz", lambda f: np.savez(f, **model.params))
    return directory


def load_model(directory: Path) -> tuple[CharRNN, Vocab, str]:
    """The model, vocabulary and start character saved by save_model, validated before
    anything is allocated: model.json's types and sizes, then each npz member's declared
    shape and dtype against those its config implies (a crafted file is one line)."""
    directory = Path(directory)
    try:
        meta = _read_json(directory / "model.json")
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
        if not isinstance(meta.get("config"), dict):
            raise ValueError("its config is not a mapping")
        config = model_config(**meta["config"])  # checked: a size this machine can hold
        if not isinstance(meta.get("vocab"), str):
            raise ValueError("its vocabulary is not a string of characters")
        vocab = Vocab(meta["vocab"])  # distinct characters, sorted
        start = meta.get("start")
        if not isinstance(start, str) or len(start) != 1 or start not in vocab.index:
            raise ValueError(f"start character {start!r} is not one character of the vocabulary")
        if config.vocab_size != len(vocab):
            raise ValueError(
                f"vocabulary has {len(vocab)} characters, the model expects {config.vocab_size}"
            )
        dtype = np.dtype(config.dtype)
        expected = {k: (shape, dtype) for k, shape in param_shapes(config).items()}
        params = read_npz(directory / "model.npz", expected)
        broken = [k for k, v in params.items() if not np.isfinite(v).all()]
        if broken:  # a model that diverged, or was made so: it would write nonsense
            raise ValueError(f"parameter {broken[0]} is not finite")
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
        raise RnnexpError(f"cannot load a model from {directory}: {e}") from None
    model = CharRNN(config, np.random.default_rng(0))
    model.params = params
    return model, vocab, start


MAX_JSON = 64 * 2**20  # bytes of a model.json: a config and a vocabulary of a few thousand


def _read_json(path: Path) -> dict:
    """A JSON object from a regular file of at most MAX_JSON bytes."""
    _check_regular(path)
    if path.stat().st_size > MAX_JSON:
        raise ValueError(f"{path.name} is over {MAX_JSON // 2**20} MB")
    return _json_object(path.read_text(), path.name)


def _json_object(text: str, what: str) -> dict:
    """A JSON object, nested as rnnexp's JSON is; anything else is refused."""
    try:
        meta = json.loads(text)
    except RecursionError:
        raise ValueError(f"{what} is nested too deep") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{what} is not a JSON object")
    return meta


def _check_regular(path: Path) -> None:
    """A regular file (a link to one included): not a device such as /dev/zero, which
    reads forever, nor a FIFO, which blocks."""
    if path.exists() and not path.is_file():
        raise ValueError(f"{path.name} is not a regular file")


def read_npz(path: Path, expected: dict[str, tuple] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an npz file, without pickles, each member's header read before its
    data: its declared shape and dtype must be `expected[name]` (when given: the same names,
    no more, no fewer) and its size what the member holds once inflated; so a member that
    declares 8 TiB, or inflates to more than it says, is refused before any allocation."""
    from numpy.lib import format as npy

    arrays, total = {}, 0
    _check_regular(path)
    with zipfile.ZipFile(path) as z:
        members = {m.filename.removesuffix(".npy"): m for m in z.infolist()}
        if expected is not None and members.keys() != expected.keys():
            raise ValueError(
                f"parameters {sorted(members)} do not match the config's {sorted(expected)}"
            )
        for name, member in members.items():
            with z.open(member) as f:
                version = npy.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise ValueError(f"member {name} is npy format {version}")
                read_header = npy.read_array_header_1_0 if version == (1, 0) else (
                    npy.read_array_header_2_0)  # fmt: skip
                shape, fortran, dtype = read_header(f)
                if dtype.hasobject:
                    raise ValueError(f"member {name} holds Python objects")
                if expected is not None and (shape, dtype) != expected[name]:
                    want = expected[name]
                    raise ValueError(
                        f"parameter {name} is {dtype}{shape}, the config says {want[1]}{want[0]}"
                    )
                size = math.prod(shape) * dtype.itemsize
                if size != member.file_size - f.tell():  # what the member holds, inflated
                    raise ValueError(
                        f"member {name} declares {size:,} bytes but holds "
                        f"{member.file_size - f.tell():,}"
                    )
                total += size
                check_fits(f"{path.name}'s arrays", total)
                data = np.frombuffer(f.read(size), dtype=dtype, count=math.prod(shape))
            arrays[name] = data.reshape(shape, order="F" if fortran else "C").copy()
    return arrays


CHECKPOINT = "rnnexp-checkpoint-1"


def save_checkpoint(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """arrays (a Trainer's state_dict and more) and JSON-able meta in one npz, atomically: a
    crash while writing leaves the previous checkpoint whole."""
    doc = json.dumps({"format": CHECKPOINT, **meta})
    atomic_write(path, lambda f: np.savez(f, __meta__=np.array(doc), **arrays))
    return path


def load_checkpoint(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) saved by save_checkpoint; anything else is refused with a clear error."""
    try:
        arrays = read_npz(path)
        meta = _json_object(str(arrays.pop("__meta__")), "its metadata")
        if meta.get("format") != CHECKPOINT:
            raise ValueError(f"format {meta.get('format')!r}, expected {CHECKPOINT!r}")
    except FileNotFoundError:
        raise RnnexpError(f"no checkpoint at {path}") from None
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
        raise RnnexpError(
            f"checkpoint {path} is corrupted or not an rnnexp checkpoint: {e}"
        ) from None
    return arrays, meta
