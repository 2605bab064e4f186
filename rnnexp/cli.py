"""`rnnexp`: train the default experiment (rnn on fizzbuzz with Adagrad) and print progress.

A stand-in until the Hydra entrypoint arrives; it uses only the library's public API.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from rnnexp import (
    CharRNN,
    RnnexpError,
    Trainer,
    Vocab,
    evaluate,
    load_corpus,
    make_optimizer,
    preset,
    sample,
    split,
)


def main() -> int:
    seed, steps, every = 0, 2000, 500
    try:
        corpus = load_corpus("fizzbuzz")
        vocab = Vocab.from_text(corpus.text)
        train_ids, val_ids = split(vocab.encode(corpus.text))
        rng = np.random.default_rng(seed)
        model = CharRNN(preset("rnn", len(vocab), hidden_size=100), rng)
        trainer = Trainer(model, make_optimizer("adagrad", lr=0.1), train_ids, seq_length=25)
    except RnnexpError as e:
        print(f"rnnexp: error: {e}", file=sys.stderr)
        return 2
    print(f"rnn H100 T25 Adagrad lr 0.1 on {corpus.name}: {len(corpus.text)} chars, V={len(vocab)}")
    start = time.perf_counter()
    for _ in range(steps // every):
        r = trainer.run(every)[-1]
        val = evaluate(model, val_ids)
        rate = r.step * 25 / (time.perf_counter() - start)
        print(
            f"step {r.step:5d}  smooth loss {r.smooth_loss:7.3f}  "
            f"val {val.loss:.3f} nats/char ({val.bpc:.3f} bpc)  {rate:,.0f} chars/s"
        )
    print("----\n" + sample(model, vocab, rng, 200, prime="1\n") + "\n----")
    return 0


if __name__ == "__main__":
    sys.exit(main())
