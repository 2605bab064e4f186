"""Faults lose nothing and say one line: a store whose creation is cut off or that is damaged,
a database that does not answer, a resume aimed at another store, a look-up in the wrong
folder, a kill between the last checkpoint and the saved model."""

import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import free_port
from helpers import (
    SMALL,
    TINY,
    artifacts,
    env,
    history,
    inspect_cmd,
    launch,
    one_line,
    rnnexp,
    run_here,
    runs,
    sample_cmd,
    wait_for,
)

from rnnexp.errors import RnnexpError
from rnnexp.framework.api import runs as store_runs  # rnnexp.runs (helpers has its own runs)


def store(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"


def test_a_store_whose_creation_is_cut_off_is_not_left_half_built(tmp_path):
    def small_files():  # as `ulimit -f 300`: no file may grow past 300 KiB
        resource.setrlimit(resource.RLIMIT_FSIZE, (300 * 1024, 300 * 1024))

    cut = subprocess.run([sys.executable, "-m", "rnnexp", *TINY], cwd=tmp_path, env=env(),
                         capture_output=True, text=True, preexec_fn=small_files)  # fmt: skip
    assert cut.returncode == 2
    assert one_line(cut).startswith(
        f"rnnexp: error: cannot create the tracking store {tmp_path}/outputs/mlflow.db: "
    )
    assert not (tmp_path / "outputs" / "mlflow.db").exists()
    assert not list((tmp_path / "outputs").glob(".*.tmp"))
    again = run_here(*TINY, fresh=True, cwd=tmp_path)  # the next run creates it whole
    assert again.returncode == 0, again.stderr
    assert [r.info.status for r in runs(store(tmp_path))] == ["FINISHED"]


@pytest.mark.parametrize("damage", ["half-built", "not a database", "a FIFO"])
def test_a_damaged_store_is_named_and_left_alone(tmp_path, damage):
    """Said in one line, without advice to move a file rnnexp may not have made (the URI may
    name /etc/passwd), and left as it was; a FIFO is refused before it is opened (which
    would wait for a writer forever)."""
    db = tmp_path / "outputs" / "mlflow.db"
    db.parent.mkdir()
    if damage == "half-built":  # tables made, the schema version never stamped
        with sqlite3.connect(db) as c:
            c.execute("CREATE TABLE spans (id INTEGER)")
    elif damage == "a FIFO":
        os.mkfifo(db)
    else:
        db.write_bytes(b"these are my notes, not a database\n" * 100)
    before = None if damage == "a FIFO" else db.read_bytes()
    r = run_here(*TINY, cwd=tmp_path, timeout=60)
    assert r.returncode == 2
    said = {
        "half-built": "is not an MLflow store (its tables are not MLflow's); it was left as it "
        "is: set tracking.uri to your store, or to a new file",
        "not a database": "is not an MLflow store (not an sqlite database): set tracking.uri "
        "to your store, or to a new file",
        "a FIFO": "is not a regular file: name an MLflow sqlite store, or a new file",
    }[damage]
    assert one_line(r) == f"rnnexp: error: tracking store {db} {said}"
    assert "mv " not in r.stderr
    assert before is None or db.read_bytes() == before


def test_a_store_another_process_holds_locked_is_waited_for_not_called_damaged(tmp_path):
    # sqlite waits for the lock (up to 30 s), then the run goes on
    assert run_here(*TINY, "tracking.experiment=first", cwd=tmp_path).returncode == 0
    db = tmp_path / "outputs" / "mlflow.db"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(4)\n"
        "c.execute('COMMIT')")], stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "locked"
    r = run_here(*TINY, cwd=tmp_path)
    holder.wait(timeout=30)
    assert r.returncode == 0, r.stderr
    assert "damaged" not in r.stderr
    assert [x.info.status for x in runs(store(tmp_path))] == ["FINISHED"]


@pytest.mark.slow
def test_a_store_locked_mid_run_fails_the_run_and_loses_nothing(tmp_path):
    """Locked by another process while the run trains, the store fails the run with one line
    once MLflow's own retries give up; the run cannot close itself then, so the next command
    that opens the store closes it KILLED, and resume= continues it from its last checkpoint."""
    proc = launch(*SMALL, "train.steps=3000", "train.checkpoint_every=20", "train.log_every=20",
                  "hydra.run.dir=outputs/r", cwd=tmp_path)  # fmt: skip
    wait_for(proc, tmp_path / "outputs" / "r" / "checkpoint.npz", timeout=120)
    db = tmp_path / "outputs" / "mlflow.db"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); sys.stdin.read()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "locked"
    _, err = proc.communicate(timeout=300)
    holder.communicate("")  # the lock goes
    assert proc.returncode == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("rnnexp: error: ") and "locked" in last, err
    (run,) = runs(store(tmp_path))
    assert run.info.status == "RUNNING"  # it could not write its own end
    other = run_here(*TINY, "tracking.enabled=true", cwd=tmp_path)  # opens the store
    assert other.returncode == 0, other.stderr
    run = [r for r in runs(store(tmp_path)) if r.info.run_id == run.info.run_id][0]
    assert run.info.status == "KILLED"
    assert "its process died before closing it; continue with: rnnexp resume=" in (
        run.data.tags["rnnexp.error"])  # fmt: skip
    resumed = run_here("resume=outputs/r", cwd=tmp_path, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    run = [r for r in runs(store(tmp_path)) if r.info.run_id == run.info.run_id][0]
    assert run.info.status == "FINISHED" and "rnnexp.error" not in run.data.tags
    steps = [s for s, _ in history(store(tmp_path), run.info.run_id, "train/loss")]
    assert steps == list(range(20, 3001, 20))  # every point once


def test_a_store_of_an_older_mlflow_is_named_with_its_upgrade_command(tmp_path):
    assert run_here(*TINY, cwd=tmp_path).returncode == 0
    db = tmp_path / "outputs" / "mlflow.db"
    with sqlite3.connect(db) as c:  # as MLflow 2.x left it: a revision before this one's head
        c.execute("UPDATE alembic_version SET version_num = 'f5a4f2784254'")
    before = db.read_bytes()
    r = rnnexp(*TINY, fresh=True, cwd=tmp_path)  # a new process: MLflow's first contact
    assert one_line(r).startswith(
        f"rnnexp: error: the tracking store sqlite:///{db} failed: Detected out-of-date "
        f"database schema (found version f5a4f2784254, "
    ) and "mlflow db upgrade" in one_line(r)
    assert db.read_bytes() == before and len(list((tmp_path / "outputs" / "runs").iterdir())) == 1


@pytest.mark.parametrize("saved", ["", "seed: [", "train: {steps: -5}"])
def test_a_run_folder_whose_saved_config_is_cut_or_edited_is_one_line(tmp_path, saved):
    assert (
        run_here(*TINY, "tracking.enabled=false", "hydra.run.dir=run", cwd=tmp_path).returncode == 0
    )
    (tmp_path / "run" / ".hydra" / "config.yaml").write_text(saved)
    r = run_here("resume=run", cwd=tmp_path)
    assert r.returncode == 2
    assert one_line(r).startswith(
        "rnnexp: error: run cannot be resumed: its .hydra/ is unreadable ("
    ) and one_line(r).endswith("); it was cut short or edited")


def test_an_unreachable_database_store_fails_fast(tmp_path):
    uri = f"postgresql://rnnexp@127.0.0.1:{free_port()}/mlflow"
    start = time.monotonic()
    r = run_here(*TINY, f"tracking.uri={uri}", fresh=True, cwd=tmp_path, PGPASSWORD="s3cr3t-pw")
    assert time.monotonic() - start < 15
    assert r.returncode == 2
    assert one_line(r).startswith(
        "rnnexp: error: cannot reach the postgresql tracking store postgresql://rnnexp@127.0.0.1:"
    )
    assert "s3cr3t-pw" not in r.stderr + r.stdout
    assert not (tmp_path / "outputs" / "runs").exists() or not any(
        (tmp_path / "outputs" / "runs").iterdir()
    )


@pytest.mark.slow
def test_resume_never_writes_to_a_store_the_user_did_not_name(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    proc = launch(*SMALL, "train.steps=8000", "train.max_seconds=5", "hydra.run.dir=outputs/cut",
                  fresh=True, cwd=theirs)  # fmt: skip
    wait_for(proc, theirs / "outputs" / "cut" / "rnnexp.log", "BLAS threads")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    their_db = theirs / "outputs" / "mlflow.db"
    before = their_db.read_bytes()
    mine = tmp_path / "mine"
    mine.mkdir()
    r = run_here(f"resume={theirs}/outputs/cut", fresh=True, cwd=mine)
    assert r.returncode == 2
    assert one_line(r) == (
        f"rnnexp: error: {theirs}/outputs/cut is tracked in sqlite:///{their_db}, not in this "
        f"command's store sqlite:///{mine}/outputs/mlflow.db: resume it with "
        f"tracking.uri=sqlite:///{their_db}"
    )
    assert their_db.read_bytes() == before and not (mine / "outputs" / "mlflow.db").exists()
    ok = run_here(
        f"resume={theirs}/outputs/cut", f"tracking.uri=sqlite:///{their_db}", fresh=True, cwd=mine
    )
    assert ok.returncode == 0, ok.stderr
    (run,) = runs(f"sqlite:///{their_db}")
    assert run.info.status == "FINISHED"
    for key in ("train/loss", "perf/chars_per_s", "val/loss"):  # each step once
        steps = [s for s, _ in history(f"sqlite:///{their_db}", run.info.run_id, key)]
        assert steps == sorted(set(steps)), key


def test_a_look_up_never_creates_a_store(tmp_path):
    r = sample_cmd("0123456789abcdef0123456789abcdef", cwd=tmp_path)
    assert r.returncode == 2
    assert one_line(r) == (
        f"rnnexp-sample: error: run 0123456789abcdef0123456789abcdef: there is no MLflow store "
        f"at {tmp_path}/outputs/mlflow.db; run this from the folder the run was launched from, "
        f"or pass --tracking-uri"
    )
    r = run_here("resume=0123456789abcdef0123456789abcdef", fresh=True, cwd=tmp_path)
    assert r.returncode == 2 and "there is no MLflow store at" in one_line(r)
    assert not (tmp_path / "outputs").exists()


def test_a_look_up_in_a_store_that_does_not_answer_is_one_line_at_once(tmp_path):
    # rnnexp-sample and rnnexp-inspect check a store as a run does: MLflow would retry a
    # server or database for minutes, and meet a file that is no database with a traceback
    db = tmp_path / "notdb.db"
    db.write_text("not a database")
    run_id = "0123456789abcdef0123456789abcdef"
    for uri, said in (
        ("http://127.0.0.1:9", "cannot reach the MLflow tracking server"),
        ("postgresql://bob@127.0.0.1:1/db", "cannot reach the postgresql"),
        (f"sqlite:///{db}", f"tracking store {db} is not an MLflow store"),
    ):
        for cmd, name in ((sample_cmd, "rnnexp-sample"), (inspect_cmd, "rnnexp-inspect")):
            start = time.monotonic()
            r = cmd(run_id, "--tracking-uri", uri, cwd=tmp_path)
            assert r.returncode == 2 and one_line(r).startswith(f"{name}: error: {said}"), r.stderr
            assert time.monotonic() - start < 30
        start = time.monotonic()  # and rnnexp.runs, from Python, as they do
        with pytest.raises(RnnexpError, match=f"^{re.escape(said)}"):
            store_runs(tracking_uri=uri)
        assert time.monotonic() - start < 30
    # a look-up only reads: a store where nothing may be written is looked in, not refused
    r = sample_cmd(run_id, "--tracking-uri", "sqlite:////proc/no.db", cwd=tmp_path)
    assert one_line(r).startswith("rnnexp-sample: error: run 0123456789abcdef0123456789abcdef: "
                                  "there is no MLflow store at /proc/no.db"), r.stderr  # fmt: skip


def test_a_signal_after_the_last_step_still_saves_the_model(tmp_path):
    proc = launch(*TINY, "hydra.run.dir=outputs/end", cwd=tmp_path)
    # the loop is done, the final checkpoint written; the model and plot are being saved
    wait_for(proc, tmp_path / "outputs" / "end" / "rnnexp.log", "trained 30 steps")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    (run,) = runs(store(tmp_path))
    assert run.info.status == "FINISHED"  # complete: nothing was left undone
    assert run.data.tags["rnnexp.model_id"].startswith("m-")  # its MLflow model, logged
    assert (tmp_path / "outputs" / "end" / "model" / "model.npz").is_file()


@pytest.mark.slow
def test_resume_finishes_a_run_killed_before_its_model_was_saved(tmp_path):
    from mlflow import MlflowClient

    done = run_here(*TINY, "hydra.run.dir=outputs/end", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "outputs" / "end"
    saved = (folder / "model" / "model.npz").read_bytes()
    # what a kill -9 right after the final checkpoint leaves: no model, no plot, RUNNING
    (run,) = runs(store(tmp_path))
    client = MlflowClient(store(tmp_path))
    logged = Path(urlparse(run.info.artifact_uri).path)
    for f in ("model/model.npz", "model/model.json", "loss_curve.png"):
        (folder / f).unlink()
    (logged / "loss_curve.png").unlink()
    client.update_run(run.info.run_id, status="RUNNING")
    r = run_here("resume=outputs/end", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (folder / "model" / "model.npz").read_bytes() == saved
    (run,) = runs(store(tmp_path))
    assert run.info.status == "FINISHED"
    assert "loss_curve.png" in artifacts(store(tmp_path), run.info.run_id)
    again = run_here("resume=outputs/end", cwd=tmp_path)
    assert again.returncode == 2 and "nothing to resume" in one_line(again)
    assert runs(store(tmp_path))[0].info.status == "FINISHED"


@pytest.mark.slow
def test_a_kill_mid_run_resumes_without_logging_any_step_twice(tmp_path):
    proc = launch(*SMALL, "train.steps=6000", "train.checkpoint_every=2000", "train.eval_every=200",
                  "hydra.run.dir=outputs/cut", cwd=tmp_path)  # fmt: skip
    # past the first checkpoint (2000), with later points already in the store
    wait_for(proc, tmp_path / "outputs" / "cut" / "rnnexp.log", "step 2600/6000")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    r = run_here("resume=outputs/cut", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (run,) = runs(store(tmp_path))
    assert run.info.status == "FINISHED"
    for key in ("train/loss", "train/smooth_loss", "perf/chars_per_s", "val/loss", "val/bpc"):
        steps = [s for s, _ in history(store(tmp_path), run.info.run_id, key)]
        assert len(steps) == len(set(steps)), f"{key} has steps logged twice"
        assert max(steps) == 6000


def test_a_model_file_claiming_an_impossible_size_is_refused_before_allocating(tmp_path):
    import json

    import numpy as np

    folder = tmp_path / "model"
    folder.mkdir()
    config = {"name": "rnn", "cell": "rnn", "vocab_size": 3, "hidden_size": 1_000_000,
              "layers": 1, "activation": "tanh", "bptt": True, "init_scale": 0.01,
              "dtype": "float64"}  # fmt: skip
    meta = {"format": "rnnexp-model-1", "config": config, "vocab": ["a", "b", "c"], "start": "a"}
    (folder / "model.json").write_text(json.dumps(meta))
    np.savez(folder / "model.npz", by=np.zeros(3))
    r = sample_cmd(str(folder), cwd=tmp_path)
    assert r.returncode == 2
    assert one_line(r).startswith(f"rnnexp-sample: error: cannot load a model from {folder}: ")
    assert "GiB" in r.stderr and "more than this machine's" in r.stderr
