"""rnnexp's `rnn` against min-char-rnn itself (benchmarks/classic_loop.py), at B = 1:
same loss, same gradients, same training trajectory, up to the transposed layout."""

import sys

import numpy as np
import pytest
from conftest import ROOT

from rnnexp import CharRNN, Trainer, make_optimizer, preset

sys.path.insert(0, str(ROOT / "benchmarks"))
import classic_loop  # noqa: E402

V, H, T = 11, 16, 9


def to_ours(p: dict) -> dict:
    """min-char-rnn's column layout (H, V) -> rnnexp's row layout (V, H)."""
    return {
        "l0.Wxh": p["Wxh"].T.copy(),
        "l0.Whh": p["Whh"].T.copy(),
        "l0.bh": p["bh"][:, 0].copy(),
        "Why": p["Why"].T.copy(),
        "by": p["by"][:, 0].copy(),
    }


def test_loss_and_gradients_equal_min_char_rnn():
    rng = np.random.default_rng(3)
    ref = dict(
        Wxh=rng.normal(0, 0.3, (H, V)),
        Whh=rng.normal(0, 0.3, (H, H)),
        Why=rng.normal(0, 0.3, (V, H)),
        bh=rng.normal(0, 0.1, (H, 1)),
        by=rng.normal(0, 0.1, (V, 1)),
    )
    inputs, targets = rng.integers(0, V, T), rng.integers(0, V, T)
    hprev = rng.uniform(-0.5, 0.5, (H, 1))
    loss, dWxh, dWhh, dWhy, dbh, dby, hlast = classic_loop.lossFun(
        list(inputs), list(targets), hprev, ref["Wxh"], ref["Whh"], ref["Why"], ref["bh"], ref["by"]
    )

    model = CharRNN(preset("rnn", V, H), np.random.default_rng(0))
    model.params = to_ours(ref)
    ours, grads, h = model.loss_and_grads(inputs[None], targets[None], [hprev[:, 0][None]])
    assert ours == pytest.approx(loss, rel=1e-12)
    # min-char-rnn clips inside lossFun; these gradients stay well inside +-5
    want = to_ours(dict(Wxh=dWxh, Whh=dWhh, Why=dWhy, bh=dbh, by=dby))
    for k in want:
        np.testing.assert_allclose(grads[k], want[k], rtol=1e-10, atol=1e-13, err_msg=k)
    np.testing.assert_allclose(h[0][0], hlast[:, 0], rtol=1e-12)


def test_training_follows_min_char_rnn_step_for_step():
    # same start, 30 Adagrad steps on a text that wraps around: the same parameters and
    # smoothed loss (to rounding: the two sum in different orders)
    data = np.random.default_rng(5).integers(0, V, 120)
    ref, ref_smooth = classic_loop.train(data, V, H, T, learning_rate=0.1, steps=30, seed=0)
    start, _ = classic_loop.train(data, V, H, T, learning_rate=0.1, steps=0, seed=0)

    model = CharRNN(preset("rnn", V, H), np.random.default_rng(0))
    model.params = to_ours(start)
    adagrad = make_optimizer("adagrad", lr=0.1, initial_accumulator=0.0)  # min-char-rnn's
    trainer = Trainer(model, adagrad, data, seq_length=T, clip=5.0)
    results = trainer.run(30)
    assert any(r.wrapped for r in results)
    assert trainer.smooth_loss == pytest.approx(ref_smooth, rel=1e-9)
    for k, v in to_ours(ref).items():
        np.testing.assert_allclose(model.params[k], v, rtol=1e-7, atol=1e-10, err_msg=k)


CLASSIC_TO_OURS = {  # benchmarks/classic_loop.py names -> rnnexp's, transposed
    "Wxh": "l0.Wxh", "Whh": "l0.Whh", "bh": "l0.bh", "Wh2": "l1.Wxh", "Wh2h2": "l1.Whh",
    "bh2": "l1.bh", "Why": "Why", "by": "by",
}  # fmt: skip


@pytest.mark.parametrize("kind", ["stacked2", "srn"])
def test_classic_stacked2_and_srn_are_rnnexps_math(kind):
    # the benchmark's notebook-style references compute exactly what rnnexp computes
    rng = np.random.default_rng(4)
    ref = {k: rng.normal(0, 0.3, v.shape) for k, v in classic_loop.init(kind, V, H).items()}
    inputs, targets = rng.integers(0, V, T), rng.integers(0, V, T)
    hprev, h2prev = rng.uniform(0.1, 0.9, (H, 1)), rng.uniform(-0.5, 0.5, (H, 1))
    if kind == "srn":
        loss, grads, _ = classic_loop.lossFun_srn(list(inputs), list(targets), hprev, *ref.values())
        state = [hprev[:, 0][None]]
    else:
        loss, grads, _, _ = classic_loop.lossFun_stacked2(
            list(inputs), list(targets), hprev, h2prev, *ref.values()
        )
        state = [hprev[:, 0][None], h2prev[:, 0][None]]
    model = CharRNN(preset(kind, V, H), np.random.default_rng(0))
    model.params = {
        CLASSIC_TO_OURS[k]: (v[:, 0] if v.shape[1] == 1 else v.T).copy() for k, v in ref.items()
    }
    ours, our_grads, _ = model.loss_and_grads(inputs[None], targets[None], state)
    assert ours == pytest.approx(loss, rel=1e-12)
    for k, g in zip(ref, grads, strict=True):
        want = g[:, 0] if g.shape[1] == 1 else g.T
        assert np.abs(want).max() < 5  # inside the classic loop's clip: comparable
        np.testing.assert_allclose(our_grads[CLASSIC_TO_OURS[k]], want, rtol=1e-9, atol=1e-12)
