"""A kill at each named moment of a run's and a sweep's life (RNNEXP_KILL_AT: SIGKILL, so no
handler runs, as with the OOM killer or a power cut), then the next command: nothing lost
(the run, resumed, ends where an uninterrupted one does, to the bit), nothing left RUNNING,
nothing left behind (no temporary file, no folder of a run that never started, one logged
model per run)."""

import signal
import time

import numpy as np
import pytest
from helpers import TINY, history, launch, rnnexp, run_here, runs
from mlflow import MlflowClient

RUN = [*TINY, "train.checkpoint_every=10"]  # checkpoints at steps 0, 10, 20, 30


def store(folder) -> str:
    return f"sqlite:///{folder / 'outputs' / 'mlflow.db'}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """What an uninterrupted run leaves: its val/loss curve, parameters and last sample."""
    cwd = tmp_path_factory.mktemp("reference")
    assert run_here(*RUN, cwd=cwd).returncode == 0
    return _result(cwd, runs(store(cwd))[0])


def _result(cwd, run) -> tuple:
    folder = cwd / "outputs" / "runs" / run.data.tags["rnnexp.output_dir"].rsplit("/", 1)[1]
    with np.load(folder / "model" / "model.npz") as npz:
        params = {k: npz[k].tobytes() for k in npz.files}
    sample = (folder / "samples" / "step_0000030.txt").read_text()
    return history(store(cwd), run.info.run_id, "val/loss"), params, sample


def _leftovers(cwd) -> list[str]:
    """Temporary files anywhere under outputs/, and run folders beyond the one finished."""
    tmps = [str(p) for p in (cwd / "outputs").rglob("*.tmp")]
    folders = sorted((cwd / "outputs" / "runs").iterdir())
    return tmps + [str(f) for f in folders[1:]] if len(folders) > 1 else tmps


# (phase, what the next command is): "again" runs the same command again; "resume" continues
# the killed run; "refused" is a resume= told the run never reached its first step, then again
PHASES = [
    ("startup", "again"),
    ("claimed", "again"),  # the folder claimed, nothing in it yet
    ("store", "again"),  # a new sqlite store half made, under its temporary name
    ("hydra", "again"),  # Hydra's .hydra/ written
    ("opened", "refused"),  # the MLflow run made, nothing else
    ("write:checkpoint.npz", "refused"),  # the step-0 checkpoint cut off mid-write
    ("checkpointed", "resume"),  # just after the step-0 checkpoint
    ("write:checkpoint.npz@3", "resume"),  # step 20's checkpoint cut off: step 10's is whole
    ("write:step_0000015.txt", "resume"),  # a sample being written
    ("write:model.npz", "resume"),  # the final model being written
    ("model-logged", "resume"),  # the MLflow model logged, the rest not made
    ("artifacts", "resume"),  # everything made, the run not closed
]


# two in the default suite (the MLflow run with nothing else; a checkpoint cut off mid-run),
# every phase in CI's slow tests: ~20 s each
QUICK = ("opened", "write:checkpoint.npz@3")


@pytest.mark.parametrize(
    "phase, then",
    [pytest.param(p, t, marks=() if p in QUICK else pytest.mark.slow, id=p) for p, t in PHASES],
)
def test_a_kill_at_any_moment_of_a_run_loses_nothing(phase, then, tmp_path, reference):
    # the store phase is the making of a new store: from nothing
    killed = rnnexp(*RUN, cwd=tmp_path, RNNEXP_KILL_AT=phase, fresh=phase == "store")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    folders = sorted((tmp_path / "outputs" / "runs").glob("*"))
    if then == "again":
        assert run_here(*RUN, cwd=tmp_path).returncode == 0
    else:
        [folder] = folders
        r = run_here(f"resume={folder}", cwd=tmp_path)
        if then == "refused":
            assert r.returncode == 2
            assert r.stderr.strip().splitlines() == [
                f"rnnexp: error: {folder} was stopped before its first step (checkpoint.npz "
                f"missing): nothing to resume; start the run again"
            ]
            r = run_here(*RUN, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    every = runs(store(tmp_path))
    finished = [r for r in every if r.info.status == "FINISHED"]
    assert len(finished) == 1 and not [r for r in every if r.info.status == "RUNNING"]
    for r in every:
        if r.info.status == "KILLED":  # a run that never reached its first step, closed
            assert "it stopped before its first step: start it again" in r.data.tags[
                "rnnexp.error"]  # fmt: skip
    assert "rnnexp.error" not in finished[0].data.tags
    assert _result(tmp_path, finished[0]) == reference  # nothing lost
    client = MlflowClient(store(tmp_path))
    models = client.search_logged_models([finished[0].info.experiment_id])
    assert [m.source_run_id for m in models] == [finished[0].info.run_id]  # one model
    assert _leftovers(tmp_path) == []


SWEEP = ["-m", *RUN, "seed=0,1"]
SWEEP_PHASES = [
    "sweep-job@2",  # between its jobs
    "write:checkpoint.npz@6",  # the second job's step-10 checkpoint cut off
    "artifacts",  # the first job made everything, but was not closed
]


@pytest.mark.slow
@pytest.mark.parametrize("phase", SWEEP_PHASES)
def test_a_killed_sweep_resumes_job_for_job(phase, tmp_path, reference):
    killed = rnnexp(*SWEEP, cwd=tmp_path, RNNEXP_KILL_AT=phase)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [folder] = (tmp_path / "outputs" / "multiruns").iterdir()
    one_run = run_here(f"resume={folder}", cwd=tmp_path)  # a sweep is resumed whole
    assert one_run.stderr.strip() == (
        f"rnnexp: error: {folder} is a sweep: resume it with rnnexp -m resume={folder}"
    )
    r = run_here("-m", f"resume={folder}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "seed=0  FINISHED" in r.stdout and "seed=1  FINISHED" in r.stdout
    every = runs(store(tmp_path))
    assert {r.info.status for r in every} == {"FINISHED"} and len(every) == 3
    [parent] = [r for r in every if "mlflow.parentRunId" not in r.data.tags]
    children = {r.data.params["seed"]: r for r in every if r is not parent}
    best = min(children.values(), key=lambda c: c.data.metrics["val/loss"])
    assert parent.data.tags["rnnexp.best_run"] == best.info.run_name
    assert _val(tmp_path, children["0"]) == reference[0]  # the same run as alone
    assert len(_val(tmp_path, children["1"])) == 3
    assert not list((tmp_path / "outputs").rglob("*.tmp"))
    client = MlflowClient(store(tmp_path))
    models = client.search_logged_models([parent.info.experiment_id])
    assert sorted(m.source_run_id for m in models) == sorted(
        c.info.run_id for c in children.values()
    )
    # resumed once more, it has nothing left to do: every job kept, the parent closed again
    again = run_here("-m", f"resume={folder}", cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("FINISHED") == 2


def _val(cwd, run) -> list:
    return history(store(cwd), run.info.run_id, "val/loss")


def test_a_sweep_is_resumed_by_its_parent_run_id_and_a_search_is_not(tmp_path):
    killed = rnnexp(*SWEEP, cwd=tmp_path, RNNEXP_KILL_AT="sweep-job@2")
    assert killed.returncode == -signal.SIGKILL
    [parent] = [r for r in runs(store(tmp_path)) if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "RUNNING"  # until the store is next opened
    r = run_here("-m", f"resume={parent.info.run_id}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert {r.info.status for r in runs(store(tmp_path))} == {"FINISHED"}
    extra = run_here("-m", f"resume={parent.info.run_id}", "seed=5", cwd=tmp_path)
    assert extra.stderr.strip() == "rnnexp: error: a sweep resumes with its own config: drop seed=5"


@pytest.mark.parametrize("moment", ["claimed", "hydra"])
def test_sigterm_before_the_run_starts_says_so_and_leaves_no_folder(tmp_path, moment):
    """At the folder's claim (Hydra and the store come next), or once Hydra wrote its files
    (the corpus is read, MLflow imported, the run opened next): the command stops there,
    without opening a run or training a step. The process signals itself at that moment
    (RNNEXP_KILL_WITH): a test's own SIGTERM lands seconds late on a busy machine."""
    r = rnnexp(*RUN, cwd=tmp_path, fresh=True, RNNEXP_KILL_AT=moment, RNNEXP_KILL_WITH="SIGTERM")
    assert r.returncode == 143, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "rnnexp: interrupted: SIGTERM"
    assert not list(tmp_path.glob("outputs/runs/*")), r.stderr  # its folder, and its parents
    if (tmp_path / "outputs" / "mlflow.db").exists():
        assert runs(store(tmp_path)) == []  # no run opened


def test_a_stop_a_finalizer_swallowed_is_not_lost():
    """A signal's handler runs wherever the main thread is; in a GC callback (SQLAlchemy's,
    while a run opens its store) Python prints its exception and goes on: seen as a SIGTERM
    that stopped nothing. The command keeps it and raises it at its next check."""
    import gc
    import weakref

    from rnnexp.framework.signals import Interrupted, check_dropped, stop_on_sigterm

    class Store:
        pass

    with stop_on_sigterm():
        store = Store()
        weakref.finalize(store, signal.raise_signal, signal.SIGTERM)  # the handler, in it
        del store
        gc.collect()  # the finalizer ran and its exception went to sys.unraisablehook
        with pytest.raises(Interrupted, match="SIGTERM"):
            check_dropped()
        check_dropped()  # once


JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "how",
    [["-m", "seed=0,1"], ["-m", "seed=0,1", *JOBLIB],
     ["search=optuna", "hydra.sweeper.sampler=grid", "hydra.sweeper.n_trials=2",
      "optimizer.lr=0.01", "prune=none", *JOBLIB]],
    ids=["basic", "joblib", "search"],
)  # fmt: skip
def test_a_sweep_stopped_by_sigterm_resumes_too(tmp_path, how):
    """SIGTERM (Ctrl-C alike) closes the job and the parent KILLED, and jobs running in
    joblib's processes, which stop with it (a search's launches too): not a dead end either."""
    # long enough to be stopped in its first job; resumed, each job trains at most 4 s
    proc = launch(*how, *[o for o in TINY if "steps" not in o], "train.steps=2000",
                  "train.max_seconds=4", cwd=tmp_path)  # fmt: skip
    deadline = time.monotonic() + 120
    while not any("BLAS threads" in p.read_text()
                  for p in tmp_path.glob("outputs/multiruns/*/0/rnnexp.log")):  # fmt: skip
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert {r.info.status for r in runs(store(tmp_path))} == {"KILLED"}
    [folder] = (tmp_path / "outputs" / "multiruns").iterdir()
    r = run_here("-m", f"resume={folder}", cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr
    every = runs(store(tmp_path))
    assert len(every) == 3 and {x.info.status for x in every} == {"FINISHED"}
    for run in every:
        assert "rnnexp.error" not in run.data.tags


@pytest.mark.slow
def test_a_worker_that_outlives_its_killed_sweep_holds_no_finished_job(tmp_path):
    """joblib's workers live on after their sweep's launching command is SIGKILLed (idle, up
    to loky's timeout): a job over is let go by its worker, so -m resume= is not refused
    because of a job that ended."""
    import psutil

    proc = launch("-m", *[o for o in TINY if "steps" not in o], "train.steps=20,100000",
                  "train.max_seconds=8", *JOBLIB, cwd=tmp_path)  # fmt: skip
    deadline = time.monotonic() + 120
    logs = tmp_path / "outputs" / "multiruns"
    while not (
        any("trained 20 steps" in p.read_text() for p in logs.glob("*/0/rnnexp.log"))
        and any("BLAS threads" in p.read_text() for p in logs.glob("*/1/rnnexp.log"))
    ):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    time.sleep(1.0)  # job 0's worker back to idle, its job's run closed
    workers = psutil.Process(proc.pid).children(recursive=True)
    proc.kill()
    proc.wait()  # (not communicate: the workers hold its pipes open)
    [folder] = logs.iterdir()
    busy = int((folder / "1" / ".rnnexp").read_text().split()[1])  # job 1's worker
    try:
        psutil.Process(busy).kill()
        psutil.Process(busy).wait(30)
        idle = [w for w in workers if w.pid != busy and w.is_running()]
        assert any(w.status() != psutil.STATUS_ZOMBIE for w in idle)  # it outlives its sweep
        r = run_here("-m", f"resume={folder}", cwd=tmp_path, timeout=300)
        assert r.returncode == 0, r.stderr
    finally:
        for w in workers:  # only the processes this test's command started
            if w.is_running():
                w.kill()
