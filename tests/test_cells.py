"""The cells: gradients against central differences at depth 1-3, agreement with PyTorch's
nn.RNN, nn.LSTM and nn.GRU (same weights copied over), one recurrence for training and
sampling; and a run of each simple-cell model repeated to the bit on this machine."""

import numpy as np
import pytest
from gradcheck import max_relative_error, max_relative_error_above_noise, numerical_grads
from threadpoolctl import threadpool_limits

from rnnexp import CharRNN, Trainer, Vocab, evaluate, load_corpus, make_optimizer, preset, sample
from rnnexp import split as split_text
from rnnexp.cells.ops import LARGE_BATCH
from rnnexp.cells.recurrence import SMALL_BATCH
from rnnexp.errors import ConfigError

V, H, B, T = 7, 5, 3, 4
# each batch regime of the kernels: the whole chunk in one call; a compiled pass per step
# around BLAS products; those products in their transposed form
BATCHES = [1, SMALL_BATCH, LARGE_BATCH]


def make(cell: str, layers: int, dtype: str = "float64", seed: int = 0) -> CharRNN:
    # N(0, 1) * 0.5 so the gates are far from linear and every path matters
    config = preset(cell, V, H, layers=layers, init="normal", init_scale=0.5, dtype=dtype)
    return CharRNN(config, np.random.default_rng(seed))


def batch(model: CharRNN, seed: int = 1, B: int = B):
    rng = np.random.default_rng(seed)
    inputs, targets = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    state = [rng.uniform(-0.9, 0.9, (B, H)).astype(model.dtype) for _ in model.zero_state(B)]
    return inputs, targets, state  # a carried h (and c) that is not zero


@pytest.mark.parametrize("B", BATCHES)
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gradients_match_finite_differences(cell, layers, B):
    model = make(cell, layers)
    inputs, targets, state = batch(model, B=B)
    _, grads, _ = model.loss_and_grads(inputs, targets, state)
    # eps 1e-4: truncation error ~eps^2 (1e-8 relative) stays under the roundoff that a
    # smaller step amplifies through three layers of gates
    numeric = numerical_grads(lambda: model.loss(inputs, targets, state)[0], model.params, 1e-4)
    checked = max_relative_error_above_noise(dict(grads), numeric)
    every = max_relative_error(dict(grads), numeric)  # tiny entries included: noise-bound
    print(f"\n{cell} x{layers} B{B}: max relative error {max(checked.values()):.1e} "
          f"({max(every.values()):.1e} with entries under 1e-3 of the largest)")  # fmt: skip
    assert max(checked.values()) < 1e-6, checked
    assert max(every.values()) < 1e-4, every


@pytest.mark.parametrize("B", BATCHES)
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_float32_follows_float64(cell, B):
    m64, m32 = make(cell, 2), make(cell, 2, "float32")
    inputs, targets, state = batch(m64, B=B)
    l64, g64, _ = m64.loss_and_grads(inputs, targets, state)
    l32, g32, _ = m32.loss_and_grads(inputs, targets, [s.astype(np.float32) for s in state])
    assert l32 == pytest.approx(l64, rel=1e-5)
    for k in g64:
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sampling_steps_through_the_same_recurrence(cell):
    model = make(cell, 2)
    ids = np.array([1, 4, 2, 6, 5, 0, 3])
    state, step = model.zero_state(1), model.stepper()
    for i in ids:
        step(int(i), state)
    want = model.advance(ids[None], model.zero_state(1))
    assert state[0].tobytes() == want[0].tobytes()  # layer 0: the same calls, to the bit
    for got, exp in zip(state, want, strict=True):
        np.testing.assert_allclose(got, exp, rtol=1e-13, atol=1e-15)


def test_lstm_starts_with_its_forget_gate_open_and_carries_h_and_c():
    model = make("lstm", 2)
    b = model.params["l1.bh"]
    assert np.all(b[H : 2 * H] == 1.0) and np.all(b[:H] == 0) and np.all(b[2 * H :] == 0)
    assert len(model.zero_state(4)) == 4 and model.zero_state(4)[0].shape == (4, H)


def test_gate_options_belong_to_the_rnn_cell():
    with pytest.raises(ConfigError, match=r"model.activation is not a key of lstm \(its keys: "):
        preset("lstm", V, H, activation="sigmoid")
    with pytest.raises(ConfigError, match="unknown model.cell 'tcn'; valid: gru, lstm, rnn"):
        preset("rnn", V, H, cell="tcn")


@pytest.mark.parametrize("B", BATCHES)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_agrees_with_pytorch(cell, layers, B):
    torch = pytest.importorskip("torch")
    model = make(cell, layers)
    inputs, targets, state = batch(model, B=B)
    loss, grads, nxt = model.loss_and_grads(inputs, targets, state)

    p = {k: torch.tensor(v, dtype=torch.float64) for k, v in model.params.items()}
    rnn_cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    net = rnn_cls(V, H, num_layers=layers, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        for l in range(layers):  # ours are (in, out): PyTorch's are (out, in)
            getattr(net, f"weight_ih_l{l}").copy_(p[f"l{l}.Wxh"].T)
            getattr(net, f"weight_hh_l{l}").copy_(p[f"l{l}.Whh"].T)
            getattr(net, f"bias_ih_l{l}").copy_(p[f"l{l}.bh"])
            bias_hh = torch.zeros(model.cells[l].gates * H, dtype=torch.float64)
            if cell == "gru":
                bias_hh[2 * H :] = p[f"l{l}.bhn"]  # b_hn, inside the reset product
            getattr(net, f"bias_hh_l{l}").copy_(bias_hh)
    readout = torch.nn.Linear(H, V, dtype=torch.float64)
    with torch.no_grad():
        readout.weight.copy_(p["Why"].T)
        readout.bias.copy_(p["by"])
    x = torch.nn.functional.one_hot(torch.tensor(inputs), V).to(torch.float64)
    parts = [torch.tensor(s) for s in state]
    if cell == "lstm":
        h0 = (torch.stack(parts[0::2]), torch.stack(parts[1::2]))
    else:
        h0 = torch.stack(parts)
    out, hn = net(x, h0)
    logits = readout(out)  # (B, T, V)
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.tensor(targets).reshape(-1),
                                           reduction="sum") / B  # fmt: skip
    ce.backward()

    assert abs(ce.item() - loss) < 1e-10
    theirs = {"Why": readout.weight.grad.T, "by": readout.bias.grad}
    for l in range(layers):
        theirs[f"l{l}.Wxh"] = getattr(net, f"weight_ih_l{l}").grad.T
        theirs[f"l{l}.Whh"] = getattr(net, f"weight_hh_l{l}").grad.T
        theirs[f"l{l}.bh"] = getattr(net, f"bias_ih_l{l}").grad
        if cell == "gru":
            theirs[f"l{l}.bhn"] = getattr(net, f"bias_hh_l{l}").grad[2 * H :]
    assert theirs.keys() == grads.keys()
    for k, g in theirs.items():
        np.testing.assert_allclose(grads[k], g.numpy(), rtol=0, atol=1e-10, err_msg=k)
    ours_next = np.stack(nxt[0::2] if cell == "lstm" else nxt)
    want_next = hn[0] if cell == "lstm" else hn
    np.testing.assert_allclose(ours_next, want_next.detach().numpy(), rtol=0, atol=1e-12)


def trained(name: str, batch_size: int, seq_length: int, dtype: str) -> bytes:
    """Everything a short run of the model computes, as bytes: parameters and state after
    60 Adagrad steps, the last loss, the validation loss and a sample."""
    corpus = load_corpus("elman")
    vocab = Vocab.from_text(corpus.text)
    train_ids, val_ids = split_text(vocab.encode(corpus.text))
    rng = np.random.default_rng(0)
    config = preset(name, len(vocab), 32, dtype=dtype, init="normal", init_scale=0.01)
    model = CharRNN(config, rng)
    trainer = Trainer(model, make_optimizer("adagrad", lr=0.1, initial_accumulator=0.0), train_ids,
                      seq_length=seq_length, batch_size=batch_size)  # fmt: skip
    last = trainer.run(60)[-1].loss
    state = b"".join(h.tobytes() for h in trainer.hprev)
    text = sample(model, vocab, rng, 100, prime="ae", temperature=0.9)
    losses = repr((last, evaluate(model, val_ids, 4).loss)).encode()
    return model.params.flat.tobytes() + state + losses + text.encode()


# the simple-cell models at both batch regimes and dtypes. Bits are a promise of one machine
# and install (other CPUs take other BLAS kernels): the run is repeated here, never compared
# with bits recorded elsewhere; test_agrees_with_pytorch checks the values themselves
CASES = [("rnn", 1, 25, "float64"), ("rnn", 32, 25, "float32"), ("stacked2", 32, 50, "float64"),
         ("srn", 1, 1, "float64"), ("srn", 16, 1, "float32")]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_a_simple_cell_run_repeats_to_the_bit(case):
    with threadpool_limits(1):
        first, second = trained(*case), trained(*case)
    assert first == second


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_trainer_resumes_a_gated_model_exactly(cell):
    corpus = load_corpus("sevenths")
    vocab = Vocab.from_text(corpus.text)
    ids = vocab.encode(corpus.text)

    def trainer() -> Trainer:
        model = CharRNN(preset(cell, len(vocab), 8, layers=2), np.random.default_rng(0))
        adagrad = make_optimizer("adagrad", lr=0.1, initial_accumulator=0.0)
        return Trainer(model, adagrad, ids, seq_length=7, batch_size=3)

    whole = trainer()
    whole.run(20)
    first = trainer()
    first.run(10)
    second = trainer()
    second.load_state_dict(first.state_dict())  # h and c of both layers among them
    second.run(10)
    assert second.model.params.flat.tobytes() == whole.model.params.flat.tobytes()
    assert [h.tobytes() for h in second.hprev] == [h.tobytes() for h in whole.hprev]


@pytest.mark.slow
def test_a_sweep_over_cells_trains_saves_and_samples_each(tmp_path):
    from helpers import TINY, run_here, runs, sample_cmd

    r = run_here("-m", "model=rnn,lstm,gru", "model.layers=2", "model.hidden_size=16", *TINY,
               cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    children = [c for c in runs(f"sqlite:///{tmp_path}/outputs/mlflow.db")
                if "mlflow.parentRunId" in c.data.tags]  # fmt: skip
    assert sorted(c.data.params["model.cell"] for c in children) == ["gru", "lstm", "rnn"]
    for c in children:
        assert c.info.status == "FINISHED"
        out = sample_cmd(c.data.tags["rnnexp.output_dir"], "--length", "20", cwd=tmp_path)
        assert out.returncode == 0 and len(out.stdout) == 22, out.stderr


def test_the_engine_imports_no_framework():
    # the library runs from a notebook: no Hydra, MLflow, figures or framework module loaded
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, rnnexp\n"
        "m = rnnexp.CharRNN(rnnexp.preset('lstm', 5, 4), np.random.default_rng(0))\n"
        "bad = [k for k in sys.modules if k.split('.')[0] in ('hydra', 'mlflow', 'matplotlib')"
        " or k.startswith('rnnexp.framework')]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
