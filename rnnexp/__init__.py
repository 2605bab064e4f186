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

from rnnexp.cells import CELLS
from rnnexp.checkpoint import load_model, save_model
from rnnexp.config import PRESETS, ModelConfig, preset
from rnnexp.corpora import CORPORA, Corpus, load_corpus
from rnnexp.data import Streams, Vocab, split
from rnnexp.errors import ConfigError, CorpusError, RnnexpError
from rnnexp.evaluate import Evaluation, evaluate
from rnnexp.init import INITS
from rnnexp.model import CharRNN
from rnnexp.optim import OPTIMIZERS, clip_grads, make_optimizer
from rnnexp.sample import sample
from rnnexp.schedule import SCHEDULES, make_schedule
from rnnexp.trainer import DivergedError, StepResult, Trainer


def __getattr__(name: str):
    """run, runs and Result on first use: the engine alone imports no Hydra nor MLflow."""
    if name in ("Result", "run", "runs"):
        from rnnexp.framework import api

        return getattr(api, name)
    raise AttributeError(f"module 'rnnexp' has no attribute {name!r}")


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
