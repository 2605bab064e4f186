"""Searches and pruned sweeps: rnnexp's Optuna sweeper (a Hydra plugin), the prune= group,
train.patience, a study stored with its sweep and resumed after a kill. Real Hydra multiruns,
real MLflow and Optuna stores."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import optuna
import pytest
from helpers import SMALL, artifacts, history, launch, refusal, rnnexp, run_here, runs

# a tiny corpus a GRU learns in ~100 steps; lr 0.02 learns it far sooner than 3e-4 or 1e-4,
# so with asha the fast job runs to the end and the slow ones stop at the first rung
EVERY = [*SMALL, "corpus=elman", "inspect.enabled=false", "train.sample_every=0"]
QUICK = [*EVERY, "train.steps=120", "train.eval_every=20"]


def store(cwd: Path) -> str:
    return f"sqlite:///{cwd / 'outputs' / 'mlflow.db'}"


def study_trials(folder: Path) -> list:
    study = optuna.load_study(study_name="rnnexp", storage=f"sqlite:///{folder / 'study.db'}")
    return study.get_trials()


def split(every: list) -> tuple:
    (parent,) = [r for r in every if "mlflow.parentRunId" not in r.data.tags]
    return parent, [r for r in every if r is not parent]


def test_a_pruned_grid_stops_its_losers_at_once_and_keeps_them_resumable(tmp_path):
    """Hydra's own grid (the basic sweeper, jobs in the order given): its fast job first, so
    asha stops the slow ones at its first rung."""
    r = run_here("-m", *QUICK, "optimizer.lr=0.02,0.0003,0.0001", "prune=asha",
                 "hydra/sweeper=basic", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    parent, children = split(runs(store(tmp_path)))
    by_lr = {c.data.params["optimizer.lr"]: c for c in children}
    assert {c.info.status for c in children} == {"FINISHED"}
    for lr in ("0.0003", "0.0001"):
        c = by_lr[lr]
        assert c.data.tags["rnnexp.pruned"] == "20" and c.data.tags["rnnexp.stopped_by"] == "pruned"
        curve = history(store(tmp_path), c.info.run_id, "val/loss")
        assert [s for s, _ in curve] == [20] and c.data.metrics["val/loss"] == curve[-1][1]
    fast = by_lr["0.02"]
    assert "rnnexp.pruned" not in fast.data.tags and fast.data.tags["rnnexp.best"] == "true"
    assert r.stdout.count("pruned at 20") == 2 and "2 jobs pruned" in r.stdout
    assert parent.data.metrics["sweep/pruned"] == 2
    [folder] = (tmp_path / "outputs" / "multiruns").iterdir()
    states = sorted(t.state.name for t in study_trials(folder))
    assert states == ["COMPLETE", "PRUNED", "PRUNED"]
    # a pruned job's checkpoint is kept: resume= trains it to its end
    slow = Path(by_lr["0.0003"].data.tags["rnnexp.output_dir"])
    again = run_here(f"resume={slow}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    curve = history(store(tmp_path), by_lr["0.0003"].info.run_id, "val/loss")
    assert curve[-1][0] == 120 and len(curve) == 6


def test_patience_stops_a_run_after_evaluations_without_a_new_best(tmp_path):
    """The elman letters are learnt to their floor in ~100 steps; after that the loss only
    wanders, so two evaluations without a new best come long before step 3,000."""
    r = run_here(*EVERY, "train.steps=3000", "train.eval_every=10", "train.patience=2",
                 cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    [run] = runs(store(tmp_path))
    assert run.data.tags["rnnexp.stopped_by"] == "patience" and "train.patience reached" in r.stdout
    curve = history(store(tmp_path), run.info.run_id, "val/loss")
    stop, best = curve[-1][0], min(curve, key=lambda p: p[1])
    assert stop < 3000 and stop == best[0] + 20  # two evaluations after its best
    assert run.data.metrics["val/best_step"] == best[0]
    folder = Path(run.data.tags["rnnexp.output_dir"])
    assert (folder / "model_best" / "model.npz").is_file()  # the best model kept


def test_a_job_on_a_time_budget_is_compared_at_its_seconds_of_training(tmp_path):
    """Jobs of other batch sizes take steps of other lengths: on train.max_seconds a job
    reports its whole seconds of training, each once, and the pruner's rungs are seconds."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from rnnexp.framework import loop
    from rnnexp.framework.cli import register_configs
    from rnnexp.framework.run import Job, Run
    from rnnexp.framework.study import JobTrial, make_study
    from rnnexp.resources import CONF_DIR

    register_configs()
    overrides = ["corpus=elman", "train.steps=1000000", "train.max_seconds=3", "prune=asha",
                 "train.batch_size=4", "train.seq_length=16", "train.sample_every=0"]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        s = OmegaConf.to_object(compose("config", overrides=overrides))
    assert s.train.marks() == (1, 3)  # first rung at a tenth of the budget, its end at 3 s
    (tmp_path / "job").mkdir()  # a run's folder exists before it runs
    run = Run(s, Job(output_dir=tmp_path / "job", launch_dir=tmp_path))  # untracked
    run.trial = JobTrial(make_study(True, None, tmp_path, None), 0, s.prune, s.train)
    loop.train(run)
    [trial] = study_trials(tmp_path)
    seconds, losses = list(trial.intermediate_values), dict(run.state.val)
    assert seconds == sorted(set(seconds)) and set(seconds) <= {0, 1, 2, 3} and len(seconds) >= 3
    assert set(trial.intermediate_values.values()) <= set(losses.values())
    assert max(losses) > 100 * max(seconds)  # steps: not what was reported


def test_a_search_records_its_study_and_what_it_found(tmp_path):
    r = run_here("search=optuna", "hydra.sweeper.n_trials=4", *QUICK, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    parent, children = split(runs(store(tmp_path)))
    assert len(children) == 4 and parent.info.status == "FINISHED"
    [folder] = (tmp_path / "outputs" / "multiruns").iterdir()
    trials = study_trials(folder)
    uri, name = json.loads(parent.data.tags["rnnexp.study"])
    assert len(trials) == 4 and (uri, name) == (f"sqlite:///{folder}/study.db", "rnnexp")
    assert sorted(t.user_attrs["rnnexp.job"] for t in trials) == [0, 1, 2, 3]
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert parent.data.metrics["sweep/pruned"] == len(pruned)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = min(complete, key=lambda t: t.value)
    (tagged,) = [c for c in children if c.data.tags.get("rnnexp.best") == "true"]
    assert tagged.data.metrics["val/loss"] == pytest.approx(best.value)
    found = artifacts(store(tmp_path), parent.info.run_id, "search")
    assert {"search/best_params.json", "search/search_history.png"} <= set(found)
    client = __import__("mlflow").MlflowClient(store(tmp_path))
    path = client.download_artifacts(parent.info.run_id, "search/best_params.json", str(tmp_path))
    assert json.loads(Path(path).read_text()) == best.params
    # each trial's values are its job's: the overrides its run was given
    for c in children:
        t = trials[int(Path(c.data.tags["rnnexp.output_dir"]).name)]
        assert float(c.data.params["optimizer.lr"]) == pytest.approx(t.params["optimizer.lr"])


def test_a_pruned_grid_runs_each_point_once_through_the_grid_sampler(tmp_path):
    """`-m ... prune=asha`: the search's grid sampler, every point of choice x range once (a
    value given twice too) in an order of its seed's, two slots asking side by side (Optuna's
    GridSampler may hand a running trial's point out again), n_trials the grid's size."""
    r = run_here("-m", "prune=asha", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *EVERY,
                 "train.steps=20", "train.eval_every=10", "optimizer.lr=0.02,0.01,0.02",
                 "model.hidden_size=range(8,12,2)", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    [folder] = (tmp_path / "outputs" / "multiruns").iterdir()
    points = sorted((t.params["optimizer.lr"], t.params["model.hidden_size"])
                    for t in study_trials(folder))  # fmt: skip
    assert points == [(0.01, 8), (0.01, 10), (0.02, 8), (0.02, 10)]
    saved = (folder / "multirun.yaml").read_text()
    assert "hydra/sweeper=optuna" in saved and "hydra.sweeper.sampler=grid" in saved


def test_the_search_space_and_sampler_are_checked_before_anything_runs(tmp_path):
    assert refusal("search=optuna", "hydra.sweeper.sampler=annealing", cwd=tmp_path) == (
        "hydra.sweeper.sampler is one of tpe, random, grid, qmc, cmaes, got 'annealing'"
    )
    assert refusal("prune=asha", cwd=tmp_path) == (
        "prune=asha stops the losing jobs of a sweep: add -m (train.patience=N stops a single "
        "run early)"
    )
    assert refusal("-m", "prune=sometimes", cwd=tmp_path) == (
        "unknown prune 'sometimes'; valid: asha, hyperband, median, none"
    )
    assert refusal("search=optuna", "hydra.sweeper.storage=postgresql://u:pw@db/x",
                   cwd=tmp_path).startswith("hydra.sweeper.storage")  # fmt: skip
    assert refusal("search=optuna", "hydra.sweeper.sampler=grid", cwd=tmp_path) == (
        "hydra.sweeper.sampler=grid takes choice(...) and range(...), not an interval: optimizer.lr"
    )
    assert refusal("search=optuna", "optimizer.lr=interval(0.1,0.01)", cwd=tmp_path).startswith(
        "optimizer.lr=interval(0.1,0.01) is not a search space Optuna takes: "
    )


def test_a_search_refuses_a_value_of_its_space_before_any_job_runs(tmp_path):
    """Each value a search may give a key (every choice, each end of an interval) is checked
    before anything runs, as a grid's jobs are: not by the trial that draws it."""
    line = refusal("search=optuna", "model.hidden_size=choice(16,-3)", *QUICK, cwd=tmp_path)
    assert "model.hidden_size" in line and "-3" in line, line
    line = refusal("search=optuna", "train.batch_size=interval(0,4)", *QUICK, cwd=tmp_path)
    assert "train.batch_size" in line, line
    assert refusal("-m", "hydra/sweeper=optuna", *QUICK, cwd=tmp_path) == (
        "the search has no space: give hydra.sweeper.params, or KEY=choice(...), "
        "KEY=interval(...) in the command"
    )


def test_the_space_is_the_points_hydra_lists_each_once():
    """range(1, 10, 4) is 1, 5, 9 (its stop is not a point); a float range's points are
    choices (no end past Hydra's last point, no Optuna warning); a value given twice runs
    once."""
    import warnings

    from rnnexp.framework.search import search_space

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        space, grid, fixed = search_space(["a=range(1,10,4)", "b=range(0.5,2.0,0.5)",
                                           "c=choice(64,64,32)", "e=3"])  # fmt: skip
    assert grid == {"a": [1, 5, 9], "b": [0.5, 1.0, 1.5], "c": [64, 32]} and fixed == ["e=3"]
    assert (space["a"].low, space["a"].high, space["a"].step) == (1, 9, 4)


def test_a_study_goes_in_no_other_database_and_in_no_other_sweep(tmp_path):
    """Not the tracking store (Optuna's tables in MLflow's database), nor memory, nor a file
    in another sweep's folder: one line, and the store is left as it was."""
    first = run_here("-m", *QUICK, "optimizer.lr=0.02,0.01", "prune=asha", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    [other] = (tmp_path / "outputs" / "multiruns").iterdir()
    mlflow_db = tmp_path / "outputs" / "mlflow.db"
    before = mlflow_db.read_bytes()
    for where in (f"sqlite:///{mlflow_db}", "sqlite://", "sqlite:///:memory:",
                  f"sqlite:///{other}/study.db"):  # fmt: skip
        line = run_here("search=optuna", *QUICK, f"hydra.sweeper.storage={where}",
                        cwd=tmp_path).stderr.strip()  # fmt: skip
        assert line.startswith("rnnexp: error: hydra.sweeper.storage=sqlite://") and line.endswith(
            " is not a file for the sweep's study (in memory, the tracking store, or another "
            "sweep's): name a new file, or an Optuna study's"
        ), line
    assert mlflow_db.read_bytes() == before and not (tmp_path / ":memory:").exists()
    # a relative file is the launch folder's, as a relative store is, and recorded so
    r = run_here("search=optuna", "hydra.sweeper.n_trials=2", *QUICK,
                 "hydra.sweeper.storage=sqlite:///mine.db", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    parents = [x for x in runs(store(tmp_path)) if "rnnexp.study" in x.data.tags]
    parent = max(parents, key=lambda x: x.info.start_time)  # this search's
    uri, _ = json.loads(parent.data.tags["rnnexp.study"])
    assert uri == f"sqlite:///{tmp_path.resolve() / 'mine.db'}" and (tmp_path / "mine.db").is_file()


def test_an_unreachable_study_storage_is_one_line_before_any_run(tmp_path):
    line = refusal("search=optuna", "hydra.sweeper.storage=postgresql://nobody@127.0.0.1:9/x",
                   *QUICK, cwd=tmp_path)  # fmt: skip
    assert line.startswith("the sweep's Optuna study at postgresql://nobody@127.0.0.1:9/x cannot "
                           "be opened: ")  # fmt: skip


def _trials(folder: Path) -> list:
    return [(t.number, t.state.name, t.params, t.value, t.intermediate_values)
            for t in study_trials(folder)]  # fmt: skip


@pytest.mark.slow
def test_a_search_killed_mid_trial_resumes_to_the_same_study(tmp_path):
    """SIGKILL in the middle of the second trial, then `-m resume=`: the same trials, the same
    values and the same pruning decisions as the search that was never stopped."""
    args = ["search=optuna", "hydra.sweeper.n_trials=5", *QUICK, "train.checkpoint_every=40"]
    whole = tmp_path / "whole"
    whole.mkdir()
    assert run_here(*args, cwd=whole).returncode == 0
    cut = tmp_path / "cut"
    cut.mkdir()
    # checkpoints: trial 0 at steps 0 and 40, then 80 and 120, or fewer if pruned; the 5th
    # checkpoint of the process is in trial 1 or 2, mid-trial either way
    killed = rnnexp(*args, cwd=cut, RNNEXP_KILL_AT="checkpointed@5")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [folder] = (cut / "outputs" / "multiruns").iterdir()
    assert "RUNNING" in {t[1] for t in _trials(folder)}
    r = run_here("-m", f"resume={folder}", cwd=cut)
    assert r.returncode == 0, r.stderr
    [reference] = (whole / "outputs" / "multiruns").iterdir()
    assert _trials(folder) == _trials(reference)
    statuses = {c.info.status for c in split(runs(store(cut)))[1]}
    assert statuses == {"FINISHED"}


@pytest.mark.slow
def test_submitit_runs_a_pruned_search_that_resumes_after_its_launcher_is_killed(tmp_path):
    """hydra/launcher=submitit_local: each trial a job of submitit's own (as on a Slurm
    node). The launching command is killed while its second trial trains; that job goes on by
    itself; `-m resume=` waits for it (refused while it runs), then completes the search."""
    args = ["search=optuna", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=1", *EVERY,
            "hydra/launcher=submitit_local", "train.steps=400", "train.eval_every=20"]  # fmt: skip
    proc = launch(*args, cwd=tmp_path)
    deadline = time.monotonic() + 240
    while not list(tmp_path.glob("outputs/multiruns/*/1/rnnexp.log")):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    proc.communicate()
    [folder] = (tmp_path / "outputs" / "multiruns").iterdir()
    while True:  # the orphaned job holds its folder until it ends
        r = run_here("-m", f"resume={folder}", cwd=tmp_path)
        if r.returncode == 0:
            break
        assert "still runs" in r.stderr and time.monotonic() < deadline, r.stderr
        time.sleep(1)
    trials = study_trials(folder)
    assert len(trials) == 4 and {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    parent, children = split(runs(store(tmp_path)))
    assert parent.info.status == "FINISHED" and len(children) == 4
    assert {c.info.status for c in children} == {"FINISHED"}
    assert list(folder.glob(".submitit/*/*_log.out"))  # submitit's own files, in the sweep


@pytest.mark.slow
def test_a_search_starts_a_trial_as_soon_as_a_slot_is_free(tmp_path):
    """2 slots (joblib), trials that train 1 s or 12 s; with the grid sampler's seed 0, the
    first two are one of each (its order: a seeded permutation, the same on any machine). The
    third starts when the short one ends, not when the long one does (Hydra's batches)."""
    r = run_here("search=optuna", "hydra.sweeper.sampler=grid", "hydra.sweeper.seed=0",
                 "hydra.sweeper.n_trials=3", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                 "prune=none", *EVERY, "optimizer.lr=0.01", "model.hidden_size=16",
                 "train.steps=1000000", "train.max_seconds=choice(1,12)", "seed=choice(0,1)",
                 cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    _, children = split(runs(store(tmp_path)))
    spans = sorted((c.info.start_time / 1e3, c.info.end_time / 1e3, float(c.data.params[
        "train.max_seconds"])) for c in children)  # fmt: skip
    assert sorted(x[2] for x in spans[:2]) == [1, 12], spans
    long_end = max(end for _, end, _ in spans[:2])
    assert spans[2][0] < long_end - 5, spans  # the third began while the long one trained


@pytest.mark.slow
def test_a_pruned_sweep_on_a_postgresql_store_keeps_its_study_in_that_database(tmp_path):
    """tracking.uri=postgresql://...: the study in the same database, schema `optuna` (MLflow's
    and Optuna's tables both keep an alembic_version), so jobs anywhere report to it; the
    password from PGPASSWORD, as for the store."""
    from pg import postgres

    with postgres() as uri:
        user, _, rest = uri.removeprefix("postgresql://").partition(":")
        password, _, where = rest.partition("@")
        bare = f"postgresql://{user}@{where}"
        r = run_here("-m", *QUICK, "optimizer.lr=0.02,0.0003", "prune=asha",
                     f"tracking.uri={bare}", cwd=tmp_path, PGPASSWORD=password)  # fmt: skip
        assert r.returncode == 0, r.stderr
        parent, children = split(runs(uri))
        place = json.loads(parent.data.tags["rnnexp.study"])
        assert place[0] == f"{bare}?options=-csearch_path%3Doptuna" and password not in place[0]
        study = optuna.load_study(study_name=place[1], storage=place[0].replace(
            bare, uri.split("?")[0]))  # fmt: skip
        assert sorted(t.state.name for t in study.get_trials()) == ["COMPLETE", "PRUNED"]
        assert not list(tmp_path.glob("outputs/multiruns/*/study.db"))


@pytest.mark.slow
def test_a_job_killed_as_its_pruning_closes_stays_pruned(tmp_path):
    """SIGKILL after the pruned job's artifacts, before its run is closed: resumed, it is
    closed as pruned at the same step, not trained on from its checkpoint."""
    args = ["-m", *QUICK, "optimizer.lr=0.02,0.0003", "prune=asha", "hydra/sweeper=basic"]
    killed = rnnexp(*args, cwd=tmp_path, RNNEXP_KILL_AT="artifacts@2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [folder] = (tmp_path / "outputs" / "multiruns").iterdir()
    r = run_here("-m", f"resume={folder}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    _, children = split(runs(store(tmp_path)))
    slow = next(c for c in children if c.data.params["optimizer.lr"] == "0.0003")
    assert slow.info.status == "FINISHED" and slow.data.tags["rnnexp.pruned"] == "20"
    assert [s for s, _ in history(store(tmp_path), slow.info.run_id, "val/loss")] == [20]
    assert sorted(t.state.name for t in study_trials(folder)) == ["COMPLETE", "PRUNED"]
