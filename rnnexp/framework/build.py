"""An experiment's parts from its settings, checked before anything is logged: corpus,
vocabulary, splits, model, optimizer and trainer, and the run's one random generator.

`validate` runs the same checks up front, for every job of a sweep, where that is cheap.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, replace

import numpy as np

from rnnexp import ngram
from rnnexp.corpora import Corpus, load_corpus
from rnnexp.data import Vocab, split
from rnnexp.errors import ConfigError, CorpusError
from rnnexp.evaluate import unigram_cross_entropy
from rnnexp.framework.settings import Settings
from rnnexp.model import CharRNN
from rnnexp.optim import Optimizer
from rnnexp.synthetic import GENERATORS
from rnnexp.trainer import Trainer


@dataclass
class Built:
    corpus: Corpus
    vocab: Vocab
    train_ids: np.ndarray
    val_ids: np.ndarray
    model: CharRNN
    trainer: Trainer
    rng: np.random.Generator
    unigram: float  # val split's cross-entropy under the training split's char frequencies
    ngram: tuple[int, float] | None  # (order, val cross-entropy) of the best Kneser-Ney n-gram
    ngram_p: np.ndarray | None  # its probability of each character of val_ids[1:]


def validate(s: Settings) -> None:
    """The checks that run up front, for each job of a sweep, beyond the settings' own
    (their dataclasses check every value): the corpus, where reading it is cheap (generated,
    or a local file)."""
    if s.corpus.name in GENERATORS or s.corpus.name == "file":
        check_corpus(s, load_corpus_of(s.corpus))


def check_corpus(s: Settings, corpus: Corpus) -> None:
    """The settings that depend on the text itself: the sizes, with its real vocabulary (a
    text of a million distinct characters has a million logits a character), and the prime."""
    vocab = len(set(corpus.text))
    replace(s.model, vocab_size=vocab)  # its parameters, checked as the model is described
    s.check_sizes(vocab)
    unseen = sorted(set(s.sample.prime) - set(corpus.text))
    if unseen:
        raise ConfigError(f"sample.prime has characters that {corpus.name} never uses: "
                          f"{''.join(unseen)!r}; the model cannot read them")  # fmt: skip


def load_corpus_of(c) -> Corpus:
    """The corpus of corpus settings `c`, read once in a process: the check of a job and its
    run share it (a file is known by its size and time too: an edit is read again)."""
    stamp = None
    if c.path is not None and os.path.isfile(path := os.path.expanduser(c.path)):
        info = os.stat(path)
        stamp = (info.st_size, info.st_mtime_ns)
    return _read(c.name, c.path, c.max_chars, json.dumps(c.options, sort_keys=True), stamp)


@functools.lru_cache(maxsize=2)
def _read(name: str, path: str | None, max_chars: int | None, options: str, stamp) -> Corpus:
    """load_corpus, by hashable arguments (the options as sorted JSON) and the file's stamp."""
    return load_corpus(name, path=path, max_chars=max_chars, **json.loads(options))


def splits(corpus: Corpus, val_fraction: float) -> tuple[Vocab, np.ndarray, np.ndarray]:
    """The corpus's vocabulary, and its text as ids split into training and validation."""
    vocab = Vocab.from_text(corpus.text)
    return vocab, *split(vocab.encode(corpus.text), val_fraction)


def check_val(corpus: Corpus, val_ids: np.ndarray) -> None:
    """A validation split long enough to score a prediction on."""
    if len(val_ids) < 2:
        raise CorpusError(f"validation split of {corpus.name} has {len(val_ids)} characters; "
                          f"it needs 2 or more (raise corpus.val_fraction or use a longer "
                          f"text)")  # fmt: skip


def build(s: Settings) -> Built:
    """Everything a run needs, checked, before anything is logged (the values were checked
    when the settings were made)."""
    c = s.corpus
    corpus = load_corpus_of(c)  # checks it too: read once here
    check_corpus(s, corpus)
    vocab, train_ids, val_ids = splits(corpus, c.val_fraction)
    rng = np.random.default_rng(s.seed)  # the run's one source of randomness
    if s.model.vocab_size not in (0, len(vocab)):
        raise ConfigError(f"model.vocab_size is the corpus's ({len(vocab)}): leave it unset")
    model = CharRNN(replace(s.model, vocab_size=len(vocab)), rng)
    optimizer = Optimizer(s.optimizer)  # live: its state, and the lr a schedule changes
    trainer = Trainer(
        model,
        optimizer,
        train_ids,
        seq_length=s.train.seq_length,
        batch_size=s.train.batch_size,
        clip=s.train.clip,
        diverge_factor=s.train.diverge_factor,
        rng=rng,  # dropout masks, when model.dropout > 0
    )
    trainer.schedule = s.schedule.rates(optimizer.lr, s.train.steps,
                                        trainer.streams.steps_per_pass)  # fmt: skip
    check_val(corpus, val_ids)
    unigram = unigram_cross_entropy(train_ids, val_ids, len(vocab))
    found = ngram.baseline(train_ids, val_ids, len(vocab))  # ~10 s a million chars, then cached
    best, p = (ngram.best(found[0]), found[1]) if found else (None, None)
    return Built(corpus, vocab, train_ids, val_ids, model, trainer, rng, unigram, best, p)
