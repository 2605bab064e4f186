"""A look inside: the trace reads a text as the model scores it, the features and the ranking
find what they claim, and the page carries everything it draws, self-contained."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
from helpers import page_data

from rnnexp import CharRNN, Trainer, make_optimizer, preset
from rnnexp.data import Vocab
from rnnexp.inspect.trace import trace
from rnnexp.inspect.units import (
    correlations,
    period,
    rank_units,
    text_features,
)
from rnnexp.synthetic import sevenths

TEXT = 'Hi "you" (a [b]) x\nSo.\nab'
GATES = {"rnn": [], "lstm": ["input", "forget", "output"], "gru": ["reset", "update"]}


def model_for(text: str, cell: str, layers: int = 2, H: int = 8, seed: int = 0):
    vocab = Vocab.from_text(text)
    config = preset(cell, len(vocab), H, layers=layers, init="uniform", init_scale=0.5)
    return CharRNN(config, np.random.default_rng(seed)), vocab


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_trace_reads_the_text_as_the_model_scores_it(cell):
    text = TEXT * 20
    model, vocab = model_for(text, cell)
    ids = vocab.encode(text)
    t = trace(model, ids, top=3, chunk=64)
    N = len(ids)
    # its surprisal is the model's loss on the text, read as one stream from a zero state
    loss, state = model.loss(ids[None, :-1], ids[None, 1:], model.zero_state(1))
    assert np.isnan(t.surprisal[0]) and np.sum(t.surprisal[1:]) == pytest.approx(loss, rel=1e-9)
    assert t.loss == pytest.approx(loss / (N - 1), rel=1e-9)
    # the units after the last character are the carried state (tanh(c) for the LSTM)
    last = model.advance(ids[None, :], model.zero_state(1))
    tops = [last[2 * l + 1] if cell == "lstm" else last[l] for l in range(2)]
    for l, top in enumerate(tops):
        want = np.tanh(top[0]) if cell == "lstm" else top[0]
        np.testing.assert_allclose(t.units[l, -1], want, rtol=1e-5, atol=1e-6)
    # the guesses: likeliest first, the model's distribution after each character
    assert np.all(np.diff(t.top_probs, axis=1) <= 0) and np.all(t.top_probs.sum(1) <= 1 + 1e-9)
    step, h = model.stepper(), model.zero_state(1)
    for i in range(5):
        logits = step(int(ids[i]), h)[0].astype(np.float64)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        assert t.top_ids[i, 0] == p.argmax() and t.top_probs[i, 0] == pytest.approx(p.max())
    # the gates the cell has, per layer, as fractions of the text
    assert sorted(t.saturation) == sorted((l, g) for l in range(2) for g in GATES[cell])
    for left, right in t.saturation.values():
        assert left.shape == (8,) and np.all(left >= 0) and np.all(left + right <= 1)
    # chunking is an implementation detail
    again = trace(model, ids, top=3, chunk=7)
    np.testing.assert_allclose(again.units, t.units, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(again.surprisal[1:], t.surprisal[1:], rtol=1e-9)


def test_gate_saturation_counts_the_gates_values():
    text = TEXT * 10
    model, vocab = model_for(text, "gru", layers=1)
    ids = vocab.encode(text)
    t = trace(model, ids)
    # the update gate recomputed by hand from the states the trace saw
    p = {k.split(".", 1)[1]: v for k, v in model.params.items() if k.startswith("l0.")}
    h, us = np.zeros(8), []
    for x in ids:
        a = p["Wxh"][x] + p["bh"]
        hh = h @ p["Whh"]
        r = 1 / (1 + np.exp(-(a[:8] + hh[:8])))
        u = 1 / (1 + np.exp(-(a[8:16] + hh[8:16])))
        n = np.tanh(a[16:] + r * (hh[16:] + p["bhn"]))
        h = (1 - u) * n + u * h
        us.append(u)
    us = np.array(us)
    left, right = t.saturation[(0, "update")]
    np.testing.assert_allclose(left, (us < 0.1).mean(0))
    np.testing.assert_allclose(right, (us > 0.9).mean(0))
    np.testing.assert_allclose(t.units[0, -1], h, rtol=1e-6)  # kept as float32


def test_features_say_what_their_names_say():
    f = text_features(TEXT)
    #                         H i _ " y o u " _ ( a _ [ b ] ) _ x \n S o . \n a b
    assert f["position in line"].tolist()[:20] == [*range(1, 19), 0, 1]
    assert f["characters left in line"][0] == 18 and f["characters left in line"][18] == 0
    assert f["inside quotes"].tolist()[2:9] == [0, 1, 1, 1, 1, 0, 0]
    assert f["bracket depth"].tolist()[8:17] == [0, 1, 1, 1, 2, 2, 1, 0, 0]
    assert f["position in word"].tolist()[:4] == [1, 2, 0, 0]
    assert f["end of sentence"].tolist()[21] == 1 and f["upper case"].tolist()[:2] == [1, 0]
    assert "after a digit" not in f  # constant on this text: no unit can track it
    assert period("142857" * 50) == 6 and period(TEXT) is None
    assert "position in the period of '142857'" in text_features("142857" * 50)


def test_the_ranking_shows_the_strongest_unit_of_each_feature_first():
    rng = np.random.default_rng(0)
    text = (TEXT * 40)[:800]
    feats = text_features(text)
    units = rng.normal(size=(800, 20))  # noise, but for two planted units
    units[:, 7] = feats["position in line"] / 18 + 0.1 * rng.normal(size=800)
    units[:, 3] = -feats["inside quotes"] + 0.3 * rng.normal(size=800)
    units[:, 11] = feats["position in line"] / 18 + 0.5 * rng.normal(size=800)  # a weaker copy
    names = list(feats)
    r = correlations(units, feats)
    ranked = rank_units(r, names, 3)
    # each feature's best unit first, the strongest feature first, then the rest by |r|
    assert [(m.unit, m.feature) for m in ranked[:2]] == [
        (7, "position in line"), (3, "inside quotes"),
    ]  # fmt: skip
    assert ranked[0].r > 0.95 and ranked[1].r < -0.7
    assert ranked[2].unit == 11 and len(ranked) == 3


def test_the_ranking_finds_the_period_a_model_learned_on_sevenths():
    """A GRU trained on the digits of 1/7 keeps track of where it is in "142857": its most
    interpretable unit is one that follows the position in the period."""
    text, _ = sevenths(3000)
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    rng = np.random.default_rng(0)
    model = CharRNN(preset("gru", len(vocab), 16), rng)
    adagrad = make_optimizer("adagrad", lr=0.1, initial_accumulator=0.0)
    trainer = Trainer(model, adagrad, ids, seq_length=25,
                      batch_size=1, clip=5.0, diverge_factor=3.0, rng=rng)  # fmt: skip
    for _ in range(300):
        trainer.train_step()
    t = trace(model, ids[:600])
    assert t.loss < 0.01  # it learned the sequence
    feats = text_features(text[:600])
    r = correlations(t.units[0], feats)
    best = rank_units(r, list(feats), 4)[0]
    assert best.feature == "position in the period of '142857'" and abs(best.r) > 0.9
    # the unit does what r says: its value at each phase is set by the phase
    phase = np.arange(600) % 6
    means = [t.units[0, phase == k, best.unit].mean() for k in range(6)]
    assert np.ptp(means) > 0.5


def test_the_page_carries_its_data_and_needs_nothing_from_the_network(tmp_path):
    from rnnexp.inspect.page import render, write

    # the text cannot end the page's script early, nor fill in the template
    text = TEXT + "</script><b>x</b>__TITLE__" + TEXT
    model, vocab = model_for(text * 5, "lstm")
    ids = vocab.encode(text * 5)
    files = write(tmp_path / "inspect.html", model, vocab, ids, "<i>lstm</i>", "about",
                  units=4, gates=tmp_path / "gate_saturation.png")  # fmt: skip
    assert files == [tmp_path / "inspect.html", tmp_path / "gate_saturation.png"]
    page = files[0].read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|@import|url\(""", page)
    assert "<title>&lt;i&gt;lstm&lt;/i&gt;</title>" in page and "<i>lstm</i>" not in page
    assert page.count("</script>") == 2 and page.count('<img alt="gate saturation"') == 1
    data = page_data(page)
    assert "".join(data["chars"]) == text * 5 and data["layers"] == 2 and data["hidden"] == 8
    units = np.frombuffer(base64.b64decode(data["units"]), np.int8).reshape(16, len(ids))
    t = trace(model, ids)
    np.testing.assert_allclose(units / 127, t.units.transpose(0, 2, 1).reshape(16, -1),
                               atol=0.5 / 127 + 1e-6)  # fmt: skip
    assert len(data["ranked"]) == 4 and data["k"] == 5 and len(data["top_ids"]) == 5 * len(ids)
    assert data["surprisal"][0] is None
    # a cell without gates: no figure
    rnn, _ = model_for(text * 5, "rnn")
    from rnnexp.inspect.page import inspect

    plain = render(inspect(rnn, vocab, ids), "rnn", "about")
    assert "gate saturation" not in plain


def test_the_page_names_each_features_strongest_unit_and_its_errors_against_a_baseline(
        tmp_path):  # fmt: skip
    """Code (this Python's own): the page names the unit most correlated with being inside a
    string, the bracket depth and the position in the line (r by numpy's corrcoef here), and
    counts the characters each model gets wrong (p < 0.5), the network against a baseline."""
    from rnnexp import load_corpus
    from rnnexp.inspect.page import write

    code = load_corpus("python", chars=4000).text
    model, vocab = model_for(code, "lstm")
    ids = vocab.encode(code)
    other = np.random.default_rng(1).random(len(ids) - 1)  # a baseline's p of each next char
    write(tmp_path / "p.html", model, vocab, ids, "t", "a", reference=("6-gram", other))
    page = (tmp_path / "p.html").read_text()
    t = trace(model, ids)
    values = t.units.transpose(1, 0, 2).reshape(len(ids), -1).astype(np.float64)
    feats = text_features(code)
    for name in ("inside a string", "bracket depth", "position in line"):
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.array([np.corrcoef(values[:, u], feats[name])[0, 1] for u in range(16)])
        u = int(np.nanargmax(np.abs(r)))
        assert f"<tr><td>{name}</td><td>{u}</td><td>{r[u]:+.3f}</td></tr>" in page, name
    net = np.exp(-t.surprisal[1:])
    counts = {"both right": (net >= 0.5) & (other >= 0.5), "only the network right": (net >= 0.5)
              & (other < 0.5), "only the n-gram right": (net < 0.5) & (other >= 0.5),
              "both wrong": (net < 0.5) & (other < 0.5)}  # fmt: skip
    assert "<h2>Errors against the 6-gram</h2>" in page
    for what, where in counts.items():
        assert f"<tr><td>{what}</td><td>{where.sum():,}</td>" in page, what
