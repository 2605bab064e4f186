"""Optimizer steps against values worked out by hand; clipping; exact state round trips."""

import math

import numpy as np
import pytest

from rnnexp.errors import ConfigError
from rnnexp.optim import OPTIMIZERS, Adagrad, Optimizer, clip_grads, make_optimizer


def test_sgd_step():
    params = {"w": np.array([1.0, 2.0])}
    make_optimizer("sgd", lr=0.1).step(params, {"w": np.array([0.5, -1.0])})
    np.testing.assert_array_equal(params["w"], [1.0 - 0.05, 2.0 + 0.1])


def test_adagrad_steps_by_hand():
    params = {"w": np.array([1.0]), "b": np.array([0.0])}
    opt = make_optimizer("adagrad", lr=0.1, initial_accumulator=0.0)  # min-char-rnn's start
    opt.step(params, {"w": np.array([2.0]), "b": np.array([-3.0])})
    # mem = 4, 9: p -= 0.1 * g / sqrt(mem + 1e-8)
    assert params["w"][0] == pytest.approx(1.0 - 0.1 * 2 / math.sqrt(4 + 1e-8), abs=1e-15)
    assert params["b"][0] == pytest.approx(0.0 + 0.1 * 3 / math.sqrt(9 + 1e-8), abs=1e-15)
    opt.step(params, {"w": np.array([1.0]), "b": np.array([0.0])})
    assert params["w"][0] == pytest.approx(
        1.0 - 0.1 * 2 / math.sqrt(4 + 1e-8) - 0.1 * 1 / math.sqrt(5 + 1e-8), abs=1e-15
    )
    np.testing.assert_array_equal(opt.state_dict()["mem.w"], [5.0])
    np.testing.assert_array_equal(opt.state_dict()["mem.b"], [9.0])


def test_clipping_is_elementwise_and_optional():
    g = {"w": np.array([-7.0, -5.0, 0.3, 5.0, 12.0])}
    clip_grads(g, 5.0)
    np.testing.assert_array_equal(g["w"], [-5.0, -5.0, 0.3, 5.0, 5.0])
    g = {"w": np.array([-7.0, 12.0])}
    clip_grads(g, None)
    np.testing.assert_array_equal(g["w"], [-7.0, 12.0])


def test_adagrad_state_round_trip_resumes_exactly():
    rng = np.random.default_rng(0)
    grads = [{"w": rng.normal(size=(3, 2))} for _ in range(4)]
    a_params = {"w": np.ones((3, 2))}
    a = Optimizer(Adagrad(lr=0.05, eps=1e-8, initial_accumulator=0.0))
    for g in grads:
        a.step(a_params, g)

    b_params = {"w": np.ones((3, 2))}
    b = Optimizer(Adagrad(lr=0.05, eps=1e-8, initial_accumulator=0.0))
    for g in grads[:2]:
        b.step(b_params, g)
    resumed = Optimizer(Adagrad(lr=0.05, eps=1e-8, initial_accumulator=0.0))
    resumed.load_state_dict({k: v.copy() for k, v in b.state_dict().items()})
    for g in grads[2:]:
        resumed.step(b_params, g)
    np.testing.assert_array_equal(a_params["w"], b_params["w"])


@pytest.mark.parametrize("lr", [0, -0.1, float("nan"), float("inf"), "0.1", True])
def test_nonsense_learning_rates_are_refused(lr):
    with pytest.raises(ConfigError, match="optimizer.lr must be a positive number"):
        make_optimizer("adagrad", lr=lr)


def test_unknown_optimizer_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown optimizer 'adamw'; valid: adagrad, adam, rms"):
        make_optimizer("adamw", lr=0.1)


@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop", "adam"])
def test_one_buffer_updates_equal_per_array_updates_to_the_bit(name):
    # the fast path (FlatParams: a few calls over one buffer) against the plain-dict path
    from rnnexp.params import FlatParams

    rng = np.random.default_rng(0)
    shapes = {"l0.Wxh": (7, 5), "l0.Whh": (5, 5), "l0.bh": (5,), "Why": (5, 7), "by": (7,)}
    start = {k: rng.normal(size=s) for k, s in shapes.items()}
    flat, plain = FlatParams.of(start), {k: v.copy() for k, v in start.items()}
    fast, slow = make_optimizer(name, lr=0.1), make_optimizer(name, lr=0.1)
    grads_flat = flat.like()
    for _ in range(5):
        g = {k: rng.normal(scale=4.0, size=s) for k, s in shapes.items()}
        for k in g:
            grads_flat[k][...] = g[k]
        clip_grads(grads_flat, 5.0)
        clip_grads(g, 5.0)
        fast.step(flat, grads_flat)
        slow.step(plain, g)
    for k in shapes:
        assert flat[k].tobytes() == plain[k].tobytes(), k
    assert fast.state_dict().keys() == slow.state_dict().keys()
    for k, v in fast.state_dict().items():
        assert v.tobytes() == slow.state_dict()[k].tobytes(), k


# adagrad is min-char-rnn's, sqrt(mem + eps), not PyTorch's sqrt(mem) + eps: by hand above
TORCH = {"sgd": ("SGD", {}), "rmsprop": ("RMSprop", {"alpha": 0.95}), "adam": ("Adam", {})}


@pytest.mark.parametrize("name", sorted(TORCH))
def test_optimizers_take_pytorchs_steps(name):
    # torch.optim with the same hyperparameters, 20 steps of random gradients, float64
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    start = {"w": rng.normal(size=(4, 3)), "b": rng.normal(size=3)}
    grads = [{k: rng.normal(scale=10.0 ** rng.integers(-3, 2), size=v.shape)
              for k, v in start.items()} for _ in range(20)]  # fmt: skip
    ours, opt = {k: v.copy() for k, v in start.items()}, make_optimizer(name, lr=0.01)
    theirs = {k: torch.tensor(v, requires_grad=True) for k, v in start.items()}
    cls, kwargs = TORCH[name]
    if name != "sgd":
        kwargs = {**kwargs, "eps": 1e-8}
    peer = getattr(torch.optim, cls)(theirs.values(), lr=0.01, **kwargs)
    for g in grads:
        opt.step(ours, g)
        for k, t in theirs.items():
            t.grad = torch.tensor(g[k])
        peer.step()
    for k in start:
        np.testing.assert_allclose(ours[k], theirs[k].detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_round_trip_resumes_exactly(name):
    from rnnexp.params import FlatParams

    rng = np.random.default_rng(0)
    grads = [FlatParams.of({"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)})
             for _ in range(6)]  # fmt: skip
    a_params, b_params = (FlatParams.of({"w": np.ones((3, 2)), "b": np.zeros(2)}) for _ in "ab")
    a, b = make_optimizer(name, lr=0.05), make_optimizer(name, lr=0.05)
    for g in grads:
        a.step(a_params, g)
    for g in grads[:3]:
        b.step(b_params, g)
    resumed = make_optimizer(name, lr=0.05)
    resumed.load_state_dict({k: v.copy() for k, v in b.state_dict().items()})
    for g in grads[3:]:
        resumed.step(b_params, g)
    assert a_params.flat.tobytes() == b_params.flat.tobytes()
    assert {k: v.tobytes() for k, v in a.state_dict().items()} == {
        k: v.tobytes() for k, v in resumed.state_dict().items()
    }


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("rmsprop", {"decay": 1.0}, r"optimizer.decay must be a number in \[0, 1\), got 1.0"),
        ("adam", {"beta1": -0.1}, r"optimizer.beta1 must be a number in \[0, 1\), got -0.1"),
        ("adam", {"beta2": float("nan")}, r"optimizer.beta2 must be a number in \[0, 1\)"),
        ("adam", {"eps": 0}, r"optimizer.eps must be a number in \[1e-30, 1\), got 0"),
        ("adagrad", {"initial_accumulator": -1}, r"optimizer.initial_accumulator must be"),
        ("sgd", {"beta1": 0.9}, r"optimizer.beta1 is not a key of sgd \(its keys: lr\)"),
        ("adagrad", {"decay": 0.9}, r"not a key of adagrad \(its keys: lr, eps, initial_acc"),
    ],
)
def test_nonsense_optimizer_options_are_refused(name, options, message):
    with pytest.raises(ConfigError, match=message):
        make_optimizer(name, lr=0.1, **options)


def test_adagrad_initial_accumulator_softens_the_first_step():
    # from 0 the first step is about ±lr whatever the gradient's size; from 0.1 it follows g
    g = np.array([1e-3, 2.0])
    for start in (0.0, 0.1):
        p = {"w": np.zeros(2)}
        make_optimizer("adagrad", lr=0.1, initial_accumulator=start).step(p, {"w": g.copy()})
        np.testing.assert_allclose(p["w"], -0.1 * g / np.sqrt(start + g * g + 1e-8), rtol=1e-12)
        if start == 0:
            np.testing.assert_allclose(p["w"], [-0.1, -0.1], rtol=0.01)
        else:
            assert abs(p["w"][0]) < 0.001


def test_the_settings_are_a_value_the_live_optimizer_holds():
    # a schedule changes the live optimizer's rate and its steps fill its state; the config
    # it was made from (a run's settings) stays as it was given
    import dataclasses

    opt = make_optimizer("adam", lr=0.01)
    before = dataclasses.asdict(opt.config)
    opt.lr = 0.5
    opt.step({"w": np.ones(2)}, {"w": np.ones(2)})
    assert dataclasses.asdict(opt.config) == before and before["lr"] == 0.01
    assert set(opt.state_dict()) == {"m.w", "v.w", "t"}
