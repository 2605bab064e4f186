"""A trained model on disk: `model.npz` (parameters under their keys) and `model.json` (the
ModelConfig, the vocabulary, and the character its training streams start from). Loaded with
allow_pickle=False and checked against each other: neither code nor a mismatched model."""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from rnnexp.atomic import atomic_write
from rnnexp.config import ModelConfig, param_shapes
from rnnexp.data import Vocab
from rnnexp.errors import RnnexpError
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
    """The model, vocabulary and start character saved by save_model, validated: shapes,
    keys and dtypes must be exactly those its config implies."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / "model.json").read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
        config = ModelConfig(**meta["config"])  # checked: a size this machine can hold
        vocab = Vocab(meta["vocab"])
        start = meta["start"]
        if len(start) != 1 or start not in vocab.index:
            raise ValueError(f"start character {start!r} is not one character of the vocabulary")
        with np.load(directory / "model.npz", allow_pickle=False) as npz:
            params = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
        raise RnnexpError(f"cannot load a model from {directory}: {e}") from None
    if config.vocab_size != len(vocab):
        raise RnnexpError(
            f"{directory}: vocabulary has {len(vocab)} characters, "
            f"the model expects {config.vocab_size}"
        )
    expected = param_shapes(config)  # nothing allocated for what the json merely claims
    if params.keys() != expected.keys():
        raise RnnexpError(
            f"{directory}: parameters {sorted(params)} do not match the config's {sorted(expected)}"
        )
    for k, shape in expected.items():
        if params[k].shape != shape or params[k].dtype != np.dtype(config.dtype):
            raise RnnexpError(
                f"{directory}: parameter {k} is {params[k].dtype}{params[k].shape}, "
                f"the config says {config.dtype}{shape}"
            )
    model = CharRNN(config, np.random.default_rng(0))
    model.params = params
    return model, vocab, start


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
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(str(arrays.pop("__meta__")))
        if meta.get("format") != CHECKPOINT:
            raise ValueError(f"format {meta.get('format')!r}, expected {CHECKPOINT!r}")
    except FileNotFoundError:
        raise RnnexpError(f"no checkpoint at {path}") from None
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
        raise RnnexpError(
            f"checkpoint {path} is corrupted or not an rnnexp checkpoint: {e}"
        ) from None
    return arrays, meta
