"""Sampling: reproducible from a seed, primed, temperature-controlled."""

import numpy as np
import pytest

from rnnexp import CharRNN, Trainer, Vocab, load_corpus, make_optimizer, preset, sample, split
from rnnexp.errors import ConfigError, CorpusError


@pytest.fixture(scope="module")
def sevenths():
    text = load_corpus("sevenths").text
    vocab = Vocab.from_text(text)
    config = preset("stacked2", len(vocab), 32, init="normal", init_scale=0.01)
    model = CharRNN(config, np.random.default_rng(0))
    Trainer(
        model,
        make_optimizer("adagrad", lr=0.1, initial_accumulator=0.0),
        split(vocab.encode(text))[0],
        seq_length=25,
    ).run(300)
    return model, vocab


def test_same_seed_same_text(sevenths):
    model, vocab = sevenths
    a = sample(model, vocab, np.random.default_rng(1), 200, temperature=3.0)
    b = sample(model, vocab, np.random.default_rng(1), 200, temperature=3.0)
    c = sample(model, vocab, np.random.default_rng(2), 200, temperature=3.0)
    assert a == b and a != c and len(a) == 200


def test_trained_model_continues_the_prime(sevenths):
    model, vocab = sevenths
    text = sample(model, vocab, np.random.default_rng(0), 60, prime="428", temperature=0)
    assert text == "428" + ("571428" * 10)
    text = sample(model, vocab, np.random.default_rng(0), 60, prime="4285", temperature=1.0)
    assert text.startswith("4285714285714")


def test_temperature_flattens_the_distribution(sevenths):
    model, vocab = sevenths
    hot = sample(model, vocab, np.random.default_rng(0), 600, prime="1", temperature=50.0)
    assert len(set(hot)) == len(vocab)  # every digit turns up
    assert "142857142857" not in hot


def test_bad_sampling_requests_are_clear(sevenths):
    model, vocab = sevenths
    with pytest.raises(CorpusError, match="'x' is not in the model's vocabulary"):
        sample(model, vocab, np.random.default_rng(0), 10, prime="1x")
    with pytest.raises(ConfigError, match="temperature"):
        sample(model, vocab, np.random.default_rng(0), 10, temperature=-1)


@pytest.mark.parametrize("name", ["rnn", "stacked2"])
def test_step_by_step_follows_the_chunked_forward_pass(name):
    # one character at a time (sampling) against a whole chunk (training): the same calls
    # in the same order, so one layer agrees to the bit; a second layer's input projection
    # is one GEMM over the chunk, blocked differently by BLAS, so it agrees to rounding
    vocab = Vocab("124578")
    model = CharRNN(preset(name, 6, 16, init_scale=0.5), np.random.default_rng(0))
    ids = vocab.encode("142857142857")
    h, step = model.zero_state(1), model.stepper()
    for i in ids:
        step(int(i), h)
    want = model.advance(ids[None], model.zero_state(1))
    assert h[0].tobytes() == want[0].tobytes()
    np.testing.assert_allclose(h[-1], want[-1], rtol=1e-13, atol=1e-15)


def test_greedy_sampling_of_a_trained_model(sevenths):
    model, vocab = sevenths
    greedy = sample(model, vocab, np.random.default_rng(0), 12, prime="142857142857", temperature=0)
    assert greedy == "142857" * 4
