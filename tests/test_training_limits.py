"""How long a run trains and what it keeps, through the real entrypoint and store: a wall-clock
budget (train.max_seconds), training a finished run further (resume= with more steps), the
model of the best validation loss, the unigram baseline and the learning rate as metrics."""

import numpy as np
import pytest
from helpers import artifacts, history, run_here, runs, sample_cmd

FAST = ["corpus=elman", "model.hidden_size=16", "train.log_every=10", "train.sample_every=0"]


def store(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"


def best_ngram(config) -> tuple[int, float]:
    """The run's corpus split as a run splits it, and its best n-gram computed without a cache."""
    import yaml

    from rnnexp import Vocab, load_corpus, split
    from rnnexp.ngram import best, cross_entropies

    c = yaml.safe_load(config.read_text())["corpus"]
    text = load_corpus(c["name"], **c["options"]).text
    vocab = Vocab.from_text(text)
    train, val = split(vocab.encode(text), c["val_fraction"])
    return best(cross_entropies(train, val, len(vocab)))


def params(folder) -> dict[str, bytes]:
    with np.load(folder / "model" / "model.npz", allow_pickle=False) as npz:
        return {k: npz[k].tobytes() for k in npz.files}


@pytest.mark.slow
def test_max_seconds_stops_training_and_says_why(tmp_path):
    r = run_here(*FAST, "train.steps=10000000", "train.max_seconds=4", "train.eval_every=200",
               "hydra.run.dir=outputs/budget", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (run,) = runs(store(tmp_path))
    assert run.info.status == "FINISHED" and run.data.tags["rnnexp.stopped_by"] == "max_seconds"
    last = history(store(tmp_path), run.info.run_id, "train/loss")[-1][0]
    assert 50 < last < 10_000_000  # stopped by time, and evaluated where it stopped
    assert history(store(tmp_path), run.info.run_id, "val/loss")[-1][0] == last
    log = (tmp_path / "outputs" / "budget" / "rnnexp.log").read_text()
    assert f"stopped at step {last} of 10000000: train.max_seconds=4.0 s" in log
    again = run_here("resume=outputs/budget", cwd=tmp_path)
    assert (
        again.returncode == 2 and "(train.max_seconds reached): nothing to resume" in again.stderr
    )
    bad = run_here("train.max_seconds=0", cwd=tmp_path)  # refused before anything runs
    assert bad.returncode == 2 and "train.max_seconds must be > 0 or null, got 0.0" in bad.stderr


@pytest.mark.slow
def test_a_finished_run_trains_further_to_the_parameters_of_a_longer_run(tmp_path):
    # a fixed rate: cosine's rate at a step depends on train.steps, so a run trained further
    # is a longer run only where the schedule does not look at the end
    fixed = [*FAST, "schedule=constant"]
    short = run_here(*fixed, "train.steps=60", "train.eval_every=30", "hydra.run.dir=outputs/a",
                   cwd=tmp_path)  # fmt: skip
    assert short.returncode == 0, short.stderr
    long = run_here(*fixed, "train.steps=100", "train.eval_every=30", "hydra.run.dir=outputs/b",
                  cwd=tmp_path)  # fmt: skip
    assert long.returncode == 0, long.stderr
    cut = run_here("resume=outputs/a", "train.steps=40", cwd=tmp_path)
    assert cut.returncode == 2 and "train.steps=40 would cut the run short: it trains to 60" in (
        cut.stderr
    )
    other = run_here("resume=outputs/a", "train.clip=1", cwd=tmp_path)
    assert (
        other.returncode == 2
        and "tracking.system_metrics, tracking.register may change): drop train.clip=1"
        in (other.stderr)
    )
    more = run_here("resume=outputs/a", "train.steps=100", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert params(tmp_path / "outputs" / "a") == params(tmp_path / "outputs" / "b")
    uri = store(tmp_path)
    a = next(r for r in runs(uri) if r.data.tags["rnnexp.output_dir"].endswith("a"))
    assert a.info.status == "FINISHED" and len(runs(uri)) == 2  # the same run, continued
    assert a.data.tags["rnnexp.trained_further"] == "train.steps: 60 -> 100"
    assert a.data.params["train.steps"] == "60"  # params are what it started with
    assert [s for s, _ in history(uri, a.info.run_id, "val/loss")] == [30, 60, 90, 100]
    # a later resume= knows the run now trains to 100: nothing left
    done = run_here("resume=outputs/a", cwd=tmp_path)
    assert done.returncode == 2 and "finished at step 100 (all steps done)" in done.stderr


def test_a_schedule_over_seconds_decays_to_its_end_by_the_time_budget(tmp_path):
    """train.schedule_over=seconds: the cosine's length is what train.max_seconds holds at the
    speed so far, so its rate is near its floor when the time is up, train.steps far away."""
    r = run_here(*FAST, "train.steps=10000000", "train.max_seconds=4", "train.eval_every=100000",
                 "schedule=cosine", "schedule.warmup_steps=5", "train.schedule_over=seconds",
                 cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (run,) = runs(store(tmp_path))
    assert run.data.tags["rnnexp.stopped_by"] == "max_seconds"
    assert run.data.params["train.schedule_over"] == "seconds"  # recorded: not bit for bit
    lr = history(store(tmp_path), run.info.run_id, "train/lr")
    peak, floor = (
        float(run.data.params["optimizer.lr"]),
        float(run.data.params["optimizer.lr"]) * 0.1,
    )
    assert lr[-1][0] > 100 and lr[-1][1] < floor * 1.1  # the end of the cosine, at the end
    middle = lr[len(lr) // 2][1]
    assert floor * 1.5 < middle < peak  # on its way down halfway through the time


def test_the_best_model_baseline_and_rate_are_recorded(tmp_path):
    r = run_here(*FAST, "train.steps=300", "train.eval_every=50", "schedule=cosine",
               "schedule.warmup_steps=20", "hydra.run.dir=outputs/run", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    uri = store(tmp_path)
    (run,) = runs(uri)
    rid = run.info.run_id
    val = history(uri, rid, "val/loss")
    best_step, best = min(val, key=lambda p: p[1])
    assert history(uri, rid, "val/best_loss")[-1] == (300, best)
    assert history(uri, rid, "val/best_step")[-1] == (300, best_step)
    (unigram,) = history(uri, rid, "corpus/unigram")
    assert unigram[0] == 0 and val[-1][1] < unigram[1] < np.log(6)  # learned beyond frequencies
    # the best Kneser-Ney order, counted afresh here: its value, its order, the summary's line
    (ngram,) = history(uri, rid, "corpus/ngram")
    order, ce = best_ngram(tmp_path / "outputs" / "run" / ".hydra" / "config.yaml")
    assert ngram == (0, pytest.approx(ce, abs=1e-12)) and ce < unigram[1]
    assert run.data.tags["rnnexp.ngram_order"] == str(order)
    side = "below" if val[-1][1] < ce else "above"
    said = (tmp_path / "outputs" / "run" / "rnnexp.log").read_text()  # the closing summary
    assert f"n-gram     {ce:.4f} ({order}-gram, Kneser-Ney): the run ended " in said
    assert f"{abs(val[-1][1] - ce):.4f} {side} it" in said
    page = (tmp_path / "outputs" / "run" / "inspect.html").read_text()  # its errors against it
    assert f"<h2>Errors against the {order}-gram</h2>" in page
    lr = dict(history(uri, rid, "train/lr"))
    peak = float(run.data.params["optimizer.lr"])
    # logged at step s: the rate of that step, index s - 1: warmup (s / 21) x peak up to 20
    assert lr[10] == pytest.approx(peak * 10 / 21) and lr[20] == pytest.approx(peak * 20 / 21)
    assert lr[300] == pytest.approx(peak * 0.1, rel=0.01)  # cosine down to min_lr_ratio
    # model_best/ only where the best model is not the final one: no second copy
    files = artifacts(uri, rid)
    kept = {"model_best/model.npz", "model_best/model.json"} <= set(files)
    assert kept == (best_step != 300) == (tmp_path / "outputs/run/model_best").is_dir()
    best_text = sample_cmd("outputs/run", "--best", "--length", "40", cwd=tmp_path)
    final_text = sample_cmd("outputs/run", "--length", "40", cwd=tmp_path)
    assert best_text.returncode == 0 and final_text.returncode == 0
    by_id = sample_cmd(rid, "--best", "--length", "40", cwd=tmp_path)
    assert by_id.stdout == best_text.stdout
    assert (best_step == 300) == (best_text.stdout == final_text.stdout)


def test_resume_accepts_the_command_that_started_the_run(tmp_path):
    # the same command with resume= added continues the run; a value that differs is named
    started = [*FAST, "model=gru", "train.clip=2.5"]
    first = run_here(*started, "train.steps=40", "hydra.run.dir=outputs/r", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = run_here(*started, "resume=outputs/r", "train.steps=60", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    (run,) = runs(store(tmp_path))
    assert run.data.tags["rnnexp.trained_further"] == "train.steps: 40 -> 60"
    other = run_here("model=lstm", "train.clip=2.5", "train.seq_length=9", "resume=outputs/r",
                   cwd=tmp_path)  # fmt: skip
    assert other.returncode == 2
    assert other.stderr.strip().endswith(
        "drop model=lstm (the run has gru) train.seq_length=9 (the run has 64)"
    ), other.stderr
