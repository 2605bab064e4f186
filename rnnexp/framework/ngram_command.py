"""`rnnexp-ngram`: a corpus's interpolated Kneser-Ney n-gram baselines, order by order: what
a model that sees only the k - 1 characters before each one scores on the validation split
every run is measured on. The best order is the `corpus/ngram` each run logs.

    rnnexp-ngram corpus=kafka
    rnnexp-ngram corpus=file corpus.path=~/notes.txt corpus.val_fraction=0.05
    rnnexp-ngram experiment=karpathy2015

It takes the command line of `rnnexp` (the corpus's keys are the ones that count); the table
is computed once per corpus and split on a machine (~10 s for a million characters), then read
from the user's cache.
"""

from __future__ import annotations

import math
import sys
import time

from rnnexp.errors import RnnexpError


def settings(args: list[str]):
    """The Settings `rnnexp ARGS` would run, composed by Hydra and checked as a run's are."""
    from hydra import compose, initialize_config_dir

    from rnnexp.framework.checks import job_settings
    from rnnexp.framework.cli import prepare, register_configs
    from rnnexp.framework.messages import config_errors, one_line
    from rnnexp.resources import CONF_DIR

    flags = [a for a in args if a.startswith("-")]
    if flags:
        raise RnnexpError(f"{flags[0]}: rnnexp-ngram takes overrides, as rnnexp does "
                          f"(corpus=kafka corpus.val_fraction=0.05)")  # fmt: skip
    register_configs()
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            return job_settings(compose("config", overrides=prepare(args)))
    except config_errors() as e:
        raise RnnexpError(one_line(e)) from None


def table(s) -> str:
    """The validation cross-entropy of each order, nats and bits per character, the best
    marked, the unigram beside them, and the seconds it took (or reading it from the cache)."""
    from rnnexp import ngram
    from rnnexp.evaluate import unigram_cross_entropy
    from rnnexp.framework.build import check_val, load_corpus_of, splits

    corpus = load_corpus_of(s.corpus)
    vocab, train_ids, val_ids = splits(corpus, s.corpus.val_fraction)
    check_val(corpus, val_ids)
    start = time.perf_counter()
    found = ngram.baseline(train_ids, val_ids, len(vocab))
    took = time.perf_counter() - start
    if found is None:
        raise RnnexpError(f"the training split of {corpus.name} has {len(train_ids):,} "
                          f"characters; n-grams are counted up to {ngram.MAX_CHARS:,}")  # fmt: skip
    ce = found[0]
    order, _ = ngram.best(ce)
    lines = [
        f"{corpus.name}: Kneser-Ney n-grams counted on its training split "
        f"({len(train_ids):,} characters, {len(vocab)} symbols), scored on its validation "
        f"split ({len(val_ids):,})",
        "order  nats/char  bits/char",
        *(
            f"{k:>5}  {c:>9.4f}  {c / math.log(2):>9.3f}"
            + "  <- best (corpus/ngram)" * (k == order)
            for k, c in enumerate(ce, 1)
        ),  # fmt: skip
        f"unigram (character frequencies alone): "
        f"{unigram_cross_entropy(train_ids, val_ids, len(vocab)):.4f}",
        f"{took:.1f} s",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from rnnexp.framework.rundir import check_cwd
    from rnnexp.framework.summary import print_out

    args = sys.argv[1:] if argv is None else argv
    try:
        check_cwd()
        text = __doc__ if set(args) & {"-h", "--help"} else table(settings(args))
    except RnnexpError as e:
        print(f"rnnexp-ngram: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while it counts: nothing is kept half-written
        print("rnnexp-ngram: interrupted", file=sys.stderr)
        return 130
    return print_out(text, "rnnexp-ngram", "the table")


if __name__ == "__main__":
    sys.exit(main())
