"""rnnexp: character-level recurrent language models in numpy, as reproducible experiments.

The library (no Hydra here) works from a notebook as well as from the `rnnexp` entrypoint:

    corpus = load_corpus("sevenths")
    vocab = Vocab.from_text(corpus.text)
    train_ids, val_ids = split(vocab.encode(corpus.text))
    rng = np.random.default_rng(0)
    model = CharRNN(preset("rnn", len(vocab), hidden_size=32), rng)
    adagrad = make_optimizer("adagrad", lr=0.1, initial_accumulator=0.0)  # min-char-rnn's
    trainer = Trainer(model, adagrad, train_ids, seq_length=25)
    trainer.run(500)
    evaluate(model, val_ids).loss, sample(model, vocab, rng, 60, prime="1")

and the tracked experiments of the command line, composed by Hydra and logged to MLflow:

    result = run(["model=lstm", "train.steps=500"])  # or run([...], multirun=True): a sweep
    result.run_id, result.folder, result.metrics["val/loss"]
    runs()  # the store's runs, a pandas DataFrame
"""

from rnnexp import kernel_cache

kernel_cache.place()  # NUMBA_CACHE_DIR, before any module of the package imports numba

# each public name and its module, imported on first use (PEP 562): `rnnexp --help` and the
# command's start import neither numba nor the engine before they need them
_WHERE = {
    "CELLS": "cells", "load_model": "checkpoint", "save_model": "checkpoint",
    "PRESETS": "config", "ModelConfig": "config", "preset": "config",
    "CORPORA": "corpora", "Corpus": "corpora", "load_corpus": "corpora",
    "Streams": "data", "Vocab": "data", "split": "data",
    "ConfigError": "errors", "CorpusError": "errors", "RnnexpError": "errors",
    "Evaluation": "evaluate", "evaluate": "evaluate", "INITS": "init", "CharRNN": "model",
    "OPTIMIZERS": "optim", "clip_grads": "optim", "make_optimizer": "optim",
    "sample": "sample", "SCHEDULES": "schedule", "make_schedule": "schedule",
    "DivergedError": "trainer", "StepResult": "trainer", "Trainer": "trainer",
    "Result": "framework.api", "run": "framework.api", "runs": "framework.api",
}  # fmt: skip


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'rnnexp' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"rnnexp.{_WHERE[name]}"), name)
    globals()[name] = value  # once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


__all__ = [
    "CELLS",
    "CORPORA",
    "INITS",
    "OPTIMIZERS",
    "PRESETS",
    "SCHEDULES",
    "CharRNN",
    "ConfigError",
    "Corpus",
    "CorpusError",
    "DivergedError",
    "Evaluation",
    "ModelConfig",
    "Result",
    "RnnexpError",
    "StepResult",
    "Streams",
    "Trainer",
    "Vocab",
    "clip_grads",
    "evaluate",
    "load_corpus",
    "load_model",
    "make_optimizer",
    "make_schedule",
    "preset",
    "run",
    "runs",
    "sample",
    "save_model",
    "split",
]
