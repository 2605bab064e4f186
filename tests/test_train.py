"""The training loop: it learns, it is deterministic, it reports the notebooks' numbers."""

import math
from collections import Counter

import numpy as np
import pytest

from rnnexp import (
    CharRNN,
    DivergedError,
    Trainer,
    Vocab,
    evaluate,
    load_corpus,
    make_optimizer,
    preset,
    split,
)
from rnnexp.errors import ConfigError


def setup(
    corpus: str,
    model: str = "rnn",
    hidden: int = 32,
    seed: int = 0,
    lr: float = 0.1,
    optimizer: str = "adagrad",
    dtype: str = "float64",
    **train,
):
    c = load_corpus(corpus)
    vocab = Vocab.from_text(c.text)
    train_ids, val_ids = split(vocab.encode(c.text))
    # the notebooks' initialisation, which the figures these tests print (-s) are for
    config = preset(model, len(vocab), hidden, dtype=dtype, init="normal", init_scale=0.01)
    model = CharRNN(config, np.random.default_rng(seed))
    trainer = Trainer(model, make_optimizer(optimizer, lr=lr), train_ids, **train)
    return c, trainer, val_ids


def test_rnn_learns_sevenths_to_below_a_hundredth_of_a_nat():
    _, trainer, val = setup("sevenths", seq_length=25)
    trainer.run(300)
    assert evaluate(trainer.model, val).loss < 0.01


def test_rnn_gets_within_five_percent_of_the_elman_floor():
    corpus, trainer, val = setup("elman", seq_length=25, batch_size=8)
    trainer.run(1000)
    loss = evaluate(trainer.model, val).loss
    print(
        f"elman val loss {loss:.4f}, floor {corpus.entropy_floor:.4f}, "
        f"gap {loss / corpus.entropy_floor - 1:.1%}"
    )
    assert loss < 1.05 * corpus.entropy_floor


def bigram_entropy(text: str) -> float:
    """nats/char of the best prediction from the current character alone."""
    pairs, firsts = Counter(zip(text, text[1:], strict=False)), Counter(text[:-1])
    n = len(text) - 1
    return -sum(k / n * math.log(k / firsts[a]) for (a, _), k in pairs.items())


def test_srn_uses_its_context_units():
    # Elman's net, one character per SGD update as notebook 003: it must beat the bigram
    # entropy (0.652 here), the floor of any predictor that sees only the current letter
    corpus, trainer, val = setup("elman", "srn", hidden=128, optimizer="sgd", lr=0.1, seq_length=1)
    before = evaluate(trainer.model, val).loss
    trainer.run(16_000)
    after = evaluate(trainer.model, val).loss
    # sigmoid units start at 0.5, not 0: near, not at, the uniform guess over 6 letters
    assert before == pytest.approx(math.log(6), abs=0.05)
    assert after < bigram_entropy(corpus.text) - 0.05, after


def test_stacked2_learns():
    corpus, trainer, val = setup("elman", "stacked2", lr=0.05, seq_length=25, batch_size=8)
    trainer.run(600)
    assert evaluate(trainer.model, val).loss < 1.15 * corpus.entropy_floor


def test_same_seed_same_parameters_bit_for_bit():
    runs = []
    for _ in range(2):
        _, trainer, _ = setup("fizzbuzz", "stacked2", seed=7, seq_length=10, batch_size=4)
        results = trainer.run(50)
        runs.append((trainer.model.params, [r.loss for r in results]))
    (p1, l1), (p2, l2) = runs
    assert l1 == l2
    for k in p1:
        assert p1[k].tobytes() == p2[k].tobytes(), k
    _, other, _ = setup("fizzbuzz", "stacked2", seed=8, seq_length=10, batch_size=4)
    other.run(50)
    assert not np.array_equal(other.model.params["Why"], p1["Why"])


def test_smoothed_loss_starts_at_the_uniform_guess():
    _, trainer, _ = setup("fizzbuzz", seq_length=10)
    V = trainer.model.config.vocab_size
    assert trainer.smooth_loss == pytest.approx(math.log(V) * 10)
    r = trainer.train_step()
    assert r.smooth_loss == pytest.approx(0.999 * math.log(V) * 10 + 0.001 * r.loss)
    assert r.loss == pytest.approx(math.log(V) * 10, rel=1e-3)  # tiny weights: near uniform
    assert r.loss_per_char == pytest.approx(r.loss / 10)


def test_float32_follows_float64():
    _, t64, val = setup("elman", seq_length=25, batch_size=4)
    _, t32, _ = setup("elman", seq_length=25, batch_size=4, dtype="float32")
    assert t32.model.params["l0.Whh"].dtype == np.float32
    for a, b in zip(t64.run(5), t32.run(5), strict=True):
        assert b.loss == pytest.approx(a.loss, rel=1e-5)
    assert evaluate(t32.model, val).loss == pytest.approx(evaluate(t64.model, val).loss, rel=1e-5)


def test_a_nan_loss_stops_before_the_update():
    _, trainer, _ = setup("fizzbuzz", seq_length=10)
    trainer.model.params["by"][0] = np.inf
    before = {k: v.copy() for k, v in trainer.model.params.items()}
    with np.errstate(invalid="ignore"), pytest.raises(DivergedError, match="loss is nan at step 1"):
        trainer.train_step()
    assert trainer.step == 0
    for k in before:
        np.testing.assert_array_equal(trainer.model.params[k], before[k])


@pytest.mark.parametrize("clip", [0, -1.0, True])
def test_nonsense_clip_is_refused(clip):
    with pytest.raises(ConfigError, match="train.clip"):
        setup("fizzbuzz", seq_length=10, clip=clip)


def test_evaluation_does_not_depend_on_the_chunk_length():
    _, trainer, val = setup("fizzbuzz", seq_length=10)
    trainer.run(20)
    a, b = evaluate(trainer.model, val, chunk=7), evaluate(trainer.model, val, chunk=256)
    assert a.loss == pytest.approx(b.loss, rel=1e-12)
    assert a.chars == len(val) - 1
    assert a.bpc == pytest.approx(a.loss / math.log(2))


def test_batched_evaluation_predicts_every_character_once():
    _, trainer, val = setup("elman", seq_length=25, batch_size=4)
    trainer.run(50)
    one = evaluate(trainer.model, val)
    assert one.chars == len(val) - 1
    for streams in (2, 7, 64):
        many = evaluate(trainer.model, val, streams=streams, chunk=100)
        assert many.chars == len(val) - 1
        # each extra stream starts from a zero state: worse, by little when streams are long
        # (2717 / 7 = 388 characters each), by more when short (64 streams of 42)
        assert one.loss <= many.loss < one.loss * (1.02 if streams <= 7 else 1.15)
    # one stream per character: every prediction from a zero state and one input
    assert evaluate(trainer.model, val[:30], streams=29).chars == 29
    # the same stream cut differently gives the same number
    a = evaluate(trainer.model, val, streams=5, chunk=7)
    b = evaluate(trainer.model, val, streams=5, chunk=1000)
    assert a.loss == pytest.approx(b.loss, rel=1e-12)


def test_a_sampled_evaluation_reads_the_start_of_every_stream():
    # train.eval_chars: the first chars // S predictions of each of the S pieces, the same
    # characters at every call; the whole split when it asks for as much or more
    _, trainer, val = setup("elman", seq_length=25, batch_size=4)
    trainer.run(50)
    model, S = trainer.model, 4
    part = evaluate(model, val, streams=S, chars=400)
    L = (len(val) - 1) // S
    pieces = [val[i * L : i * L + 101] for i in range(S)]  # 100 predictions each
    want = sum(evaluate(model, p).loss for p in pieces) / S
    assert part.chars == 400 and part.loss == pytest.approx(want, rel=1e-12)
    assert evaluate(model, val, streams=S, chars=400).loss == part.loss  # the same sample
    whole = evaluate(model, val, streams=S)
    assert evaluate(model, val, streams=S, chars=10**9) == whole
