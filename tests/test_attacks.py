"""What an attacker tried, a test per class of attack: sizes from the corpus's real
vocabulary, YAML from outside bounded, a value accepted is a value that can run (or a resume
can finish it), advice that is true, records that say what happened."""

import math
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import (
    TINY,
    env,
    history,
    one_line,
    place_store,
    rnnexp,
    run_here,
    runs,
    sample_cmd,
    wait_for_metric,
)

from rnnexp.errors import RnnexpError

# ten aliases, each ten copies of the one before: 12 lines, 10^10 values once expanded
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(9)
)


def test_sizes_are_checked_with_the_corpus_real_vocabulary(tmp_path):
    # 200,000 distinct characters: a logit each, for each of a step's characters; the
    # settings' guess of 256 symbols lets this step size through
    text = "".join(chr(c) for c in range(0x10000, 0x10000 + 200_000))
    (tmp_path / "wide.txt").write_text(text, encoding="utf-8")
    r = run_here("corpus=file", f"corpus.path={tmp_path / 'wide.txt'}", "train.batch_size=1",
                 "train.seq_length=200000", fresh=True, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2
    assert one_line(r).startswith(
        "rnnexp: error: train.batch_size=1 x train.seq_length=200000 for gru H128 x1 and "
        "200,000 symbols: about "
    )
    assert not (tmp_path / "outputs").exists()  # no store, no folder: nothing opened


def test_yaml_from_outside_is_bounded_before_it_is_read(tmp_path):
    # a preset of the user's --config-dir, refused before Hydra composes it (which would
    # expand it for hours)
    mine = tmp_path / "mine" / "experiment"
    mine.mkdir(parents=True)
    (mine / "laughs.yaml").write_text("# @package _global_\n" + LAUGHS)
    r = rnnexp("--config-dir", str(tmp_path / "mine"), "experiment=laughs", *TINY, fresh=True,
               cwd=tmp_path, timeout=60)  # fmt: skip
    assert r.returncode == 2
    assert one_line(r) == (
        f"rnnexp: error: {mine / 'laughs.yaml'} holds 12,345,679,021 values 12 deep, each alias "
        "(*name) counted where it is used; a config has at most 100,000, 100 deep"
    )
    # a run folder received from someone: its .hydra/config.yaml, read by resume= and
    # rnnexp-inspect
    assert (
        run_here(*TINY, "tracking.enabled=false", "hydra.run.dir=r", cwd=tmp_path).returncode == 0
    )
    saved = tmp_path / "r" / ".hydra" / "config.yaml"
    for bad, said in ((LAUGHS, "holds 12,345,679,021 values"),
                      ("x: " + "[" * 200 + "]" * 200 + "\n", "values 201 deep"),
                      ("a: &a [1, *a]\n", "contains itself through an alias"),
                      ("# big\n" * 300_000, "is 1,800,000 bytes; a config file")):  # fmt: skip
        saved.write_text(bad)
        r = rnnexp("resume=r", "tracking.enabled=false", fresh=True, cwd=tmp_path, timeout=60)
        assert r.returncode == 2 and one_line(r).startswith("rnnexp: error: r/.hydra/config.yaml ")
        assert said in r.stderr
    saved.write_text(LAUGHS)
    r = rnnexp_inspect(tmp_path, "r")
    assert r.returncode == 2 and one_line(r).startswith("rnnexp-inspect: error: r/.hydra/config")


def rnnexp_inspect(tmp_path, *args):
    """rnnexp-inspect in a process of its own: a hang ends the test, not the suite."""
    return subprocess.run([sys.executable, "-m", "rnnexp.framework.inspect_command", *args],
                          cwd=tmp_path, env=env(), capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_a_value_accepted_can_run_or_a_resume_can_finish_it(tmp_path):
    # a name MLflow refuses to register under is refused before anything runs, not at the
    # end of the training (where every resume= failed the same way, the key fixed in it)
    r = run_here(*TINY, "tracking.register=..x", cwd=tmp_path)
    assert r.returncode == 2 and one_line(r).startswith(
        "rnnexp: error: tracking.register must be a model name without '/' or ':' that does "
        "not start with '..', got '..x'"
    )
    assert not (tmp_path / "outputs" / "runs").exists()
    # keys that change how a run is computed or recorded, not what, may be given to resume=
    assert run_here(*TINY, "hydra.run.dir=outputs/r", cwd=tmp_path).returncode == 0
    r = run_here("resume=outputs/r", "train.steps=40", "threads=1", "tracking.register=tiny",
                 cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (run,) = runs(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    assert run.info.status == "FINISHED" and run.data.tags["rnnexp.registered"].startswith("tiny/")
    assert run.data.tags["rnnexp.trained_further"] == "train.steps: 30 -> 40"
    # and a message about a value prints it as the config spells it
    r = run_here("resume=outputs/r", "train.max_seconds=5", "train.steps=50", cwd=tmp_path)
    assert r.returncode == 2 and one_line(r) == (
        "rnnexp: error: train.max_seconds=5.0 would cut the run short: it trains to no time "
        "limit (null)"
    )


def test_a_blow_up_on_the_validation_text_fails_the_run():
    from rnnexp import CharRNN, DivergedError, Trainer, make_optimizer, preset

    model = CharRNN(preset("rnn", 5, 4), np.random.default_rng(0))
    trainer = Trainer(model, make_optimizer("adam"), np.arange(200) % 5, seq_length=8)
    trainer.check_validation(1.2)  # below 3 ln 5 = 4.83: fine
    for bad in (76.0, math.inf, math.nan):  # a search's trial saw 76 nats/char
        with pytest.raises(DivergedError, match=r"^val/loss is \S+ nats/char at step 0, over 3x"):
            trainer.check_validation(bad)
    assert issubclass(DivergedError, RnnexpError)


def test_advice_names_what_is_true_of_a_run_folder(tmp_path):
    assert (
        run_here(*TINY, "tracking.enabled=false", "hydra.run.dir=r", cwd=tmp_path).returncode == 0
    )
    folder = tmp_path / "r"
    r = sample_cmd(str(folder), "--best", "--length", "5", cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == (
        "rnnexp-sample: the run's final model is its best (it has no model_best/): using it\n"
    )
    shutil.rmtree(folder / "model")  # as a run stopped before its end leaves it
    r = sample_cmd(str(folder), cwd=tmp_path)
    assert r.returncode == 2 and one_line(r) == (
        f"rnnexp-sample: error: {folder} stopped before its end and has no model yet: finish "
        f"it with rnnexp resume={folder}"
    )
    (tmp_path / "notes").mkdir()
    r = sample_cmd(str(tmp_path / "notes"), cwd=tmp_path)
    assert r.returncode == 2 and "holds no rnnexp model (model/model.json)" in r.stderr


# ---------------------------------------------------------------- records that say what happened

LONG = [*TINY[:2], "corpus=fizzbuzz", "train.steps=200000", "train.checkpoint_every=300",
        "model.hidden_size=16"]  # fmt: skip


def start(tmp_path, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rnnexp", *args], cwd=tmp_path, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def every_run(uri: str) -> list:
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("rnnexp")
    return client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL)


def test_a_run_deleted_in_the_ui_while_it_trains_is_closed(tmp_path):
    from mlflow import MlflowClient

    place_store(tmp_path, (), {})
    uri = f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"
    proc = start(tmp_path, *LONG, "hydra.run.dir=outputs/r")
    wait_for_metric(proc, tmp_path / "outputs" / "mlflow.db")
    (run,) = every_run(uri)
    MlflowClient(uri).delete_run(run.info.run_id)  # as the UI's Delete does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("rnnexp: error: the tracking store ")
    (run,) = every_run(uri)
    assert run.info.lifecycle_stage == "deleted"  # left as the user wanted it
    assert run.info.status == "FAILED" and "deleted while it ran" in run.data.tags["rnnexp.error"]


def test_two_copies_of_a_run_folder_resumed_at_once_have_one_writer(tmp_path):

    place_store(tmp_path, (), {})
    uri = f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"
    proc = start(tmp_path, *[o for o in LONG if "steps" not in o], "train.steps=6000",
                 "hydra.run.dir=outputs/r")  # fmt: skip
    wait_for_metric(proc, tmp_path / "outputs" / "mlflow.db")
    proc.terminate()
    proc.communicate(timeout=60)
    assert proc.returncode == 143
    shutil.copytree(tmp_path / "outputs" / "r", tmp_path / "outputs" / "copy")
    both = [start(tmp_path, f"resume=outputs/{name}") for name in ("r", "copy")]
    results = [(p.communicate(timeout=300), p.returncode) for p in both]
    codes = sorted(code for _, code in results)
    errors = [err for (_, err), code in results if code == 2]
    # one continues the run; the other is refused while it writes, or finds it finished
    assert codes == [0, 2], results
    assert "one writer per run" in errors[0] or "nothing to resume" in errors[0], errors
    (run,) = every_run(uri)
    assert run.info.status == "FINISHED"
    steps = [s for s, _ in history(uri, run.info.run_id, "train/loss")]
    assert len(steps) == len(set(steps))  # no point written twice


def test_a_sweeps_record_holds_when_its_summary_cannot_be_printed(tmp_path):

    place_store(tmp_path, (), {})
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "rnnexp", "-m", "seed=0,1", *TINY],
                           cwd=tmp_path, env=env(), stdout=full, stderr=subprocess.PIPE,
                           text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "the sweep's summary could not be printed (No space left on device)" in r.stderr
    statuses = {x.info.status for x in runs(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")}
    assert statuses == {"FINISHED"}


# ---------------------------------------------------------------- one line, not a traceback


def test_what_went_wrong_is_one_line_not_a_traceback(tmp_path):
    mine = tmp_path / "mine" / "experiment"
    mine.mkdir(parents=True)
    for name, other in (("a", "b"), ("b", "a")):  # presets whose defaults name each other
        (mine / f"{name}.yaml").write_text(
            f"# @package _global_\ndefaults:\n  - /experiment/{other}\n"
        )
    r = rnnexp("--config-dir", str(tmp_path / "mine"), "experiment=a", *TINY, cwd=tmp_path)
    assert r.returncode == 2 and one_line(r).startswith(
        "rnnexp: error: composing the config never ends: a defaults list that includes itself"
    )
    gone = tmp_path / "gone"
    gone.mkdir()
    proc = subprocess.run([sys.executable, "-c", f"import os; os.chdir({str(gone)!r}); "
                           f"os.rmdir({str(gone)!r}); from rnnexp.framework.cli import main; "
                           "main(['train.steps=5'])"], env=env(), capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 2 and one_line(proc) == (
        "rnnexp: error: the folder this command was started from was deleted: cd to a folder "
        "that exists"
    )
    untracked = run_here(*TINY, "tracking.enabled=false", "hydra.run.dir=r", cwd=tmp_path)
    assert untracked.returncode == 0
    sample = [sys.executable, "-m", "rnnexp.framework.sample_command", "r", "--length", "50"]
    with open("/dev/full", "w") as full:
        r = subprocess.run(sample, cwd=tmp_path, env=env(), stdout=full, stderr=subprocess.PIPE,
                           text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2 and one_line(r) == (
        "rnnexp-sample: error: cannot write the text to standard output: No space left on device"
    )
    r = subprocess.run([*sample, "--prime", "é"], cwd=tmp_path, env=env(PYTHONIOENCODING="ascii"),
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2 and "'\\xe9' is not in the model's vocabulary" in one_line(r)
    r = subprocess.run(sample, cwd=tmp_path, env=env(PYTHONIOENCODING="ascii"),
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0 and r.stderr == "" and len(r.stdout) == 52  # prime, 50, newline


# ---------------------------------------------------------------- bounded, and never silent


def test_a_long_sweep_check_says_what_it_does(tmp_path, monkeypatch):
    from rnnexp.framework import checks

    monkeypatch.setattr(checks, "SAY_EVERY", 0.0)
    r = run_here("-m", "seed=0,1,2", *TINY, "tracking.enabled=true", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "rnnexp: checked 1 of the sweep's 3 jobs before any runs; about " in r.stderr


def test_a_param_too_long_for_mlflow_is_said_and_kept_whole(tmp_path):
    from mlflow import MlflowClient

    r = run_here(*TINY, "sample.prime=" + "a" * 7000, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (run,) = runs(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    logged = run.data.params["sample.prime"]
    assert len(logged) == 6000 and logged.endswith("… (cut: whole in config.yaml)")
    log = (tmp_path / run.data.tags["rnnexp.output_dir"] / "rnnexp.log").read_text()
    assert "param sample.prime is 7000 characters, over MLflow's 6000: logged cut" in log
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    config = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    assert "a" * 7000 in open(config).read()


def test_downloads_are_bounded_and_checked_before_they_are_copied(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from rnnexp.framework.tracking import plain as tracking_plain

    assert run_here(*TINY, "tracking.register=tiny", cwd=tmp_path).returncode == 0
    uri = f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"
    (run,) = runs(uri)
    client = MlflowClient(uri, registry_uri=uri)
    # a store whose record points the model's files at /dev: its devices would never end
    client.create_registered_model("evil")
    client.create_model_version("evil", "file:///dev", run_id=run.info.run_id)
    r = sample_cmd("models:/evil/1", cwd=tmp_path)
    assert r.returncode == 2 and one_line(r).startswith(
        "rnnexp-sample: error: models:/evil/1: /dev/"
    )
    assert "is not a regular file: not downloaded" in r.stderr
    # sizes from the listing, before a byte is copied
    monkeypatch.setattr(tracking_plain, "MAX_DOWNLOAD_BYTES", 1000)
    r = sample_cmd(run.info.run_id, cwd=tmp_path)
    assert r.returncode == 2 and one_line(r).endswith("holds over 1,000 bytes or 10,000 files: "
                                                      "not downloaded")  # fmt: skip
    monkeypatch.undo()
    # a download that fails says so, with no advice about where the command runs from
    shutil.rmtree(tmp_path / "outputs" / "mlartifacts")
    r = sample_cmd(run.info.run_id, "--best", cwd=tmp_path)
    assert r.returncode == 2 and "cannot be downloaded from its artifact store" in one_line(r)
    assert "launched from" not in r.stderr


def test_a_full_temporary_folder_is_named_as_such(tmp_path, monkeypatch):
    import errno

    from rnnexp.errors import disk_problem

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # read $TMPDIR again
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x" / "model.npz"))
    assert disk_problem(full) == (
        f"No space left on device in the temporary folder {tmp_path} (TMPDIR: set it to a "
        "folder with room)"
    )
    elsewhere = OSError(errno.ENOSPC, "No space left on device", "/data/run/checkpoint.npz")
    assert disk_problem(elsewhere) == "No space left on device (/data/run/checkpoint.npz)"


def test_a_length_is_sized_by_arithmetic_before_anything_is_made(tmp_path):
    untracked = run_here(*TINY, "tracking.enabled=false", "hydra.run.dir=r", cwd=tmp_path)
    assert untracked.returncode == 0
    r = rnnexp_inspect(tmp_path, "r", "--length", "300000000")
    assert r.returncode == 2 and one_line(r).startswith(
        "rnnexp-inspect: error: --length 300,000,000 for "
    )
    assert "GiB, more than this machine's" in r.stderr


def test_what_a_second_attack_found_holds(tmp_path):
    """A refused command changes no file (Hydra's own logging opens its files before any
    check); a YAML nested past Python's recursion is one line; negative seeds; null named
    as such; a path varied in a sweep is named by its file."""
    from rnnexp.framework.sweep import varied_label

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    r = run_here("+hydra.hydra_logging.handlers.evil={class:logging.FileHandler,filename:"
                 f"{victim},mode:w}}", *TINY, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2 and "Hydra's own logging is rnnexp's" in one_line(r)
    mine = tmp_path / "mine" / "hydra" / "hydra_logging"
    mine.mkdir(parents=True)
    (mine / "evil.yaml").write_text(f"handlers:\n  f:\n    filename: {victim}\n    mode: w\n")
    r = run_here("--config-dir", str(tmp_path / "mine"), *TINY, cwd=tmp_path)
    assert r.returncode == 2 and "sets Hydra's own logging, which is rnnexp's" in one_line(r)
    assert victim.read_text() == "precious"
    deep = tmp_path / "deep" / "experiment"
    deep.mkdir(parents=True)
    (deep / "n.yaml").write_text("# @package _global_\nx: " + "[" * 5000 + "]" * 5000 + "\n")
    r = run_here("--config-dir", str(tmp_path / "deep"), "experiment=n", *TINY, cwd=tmp_path)
    assert r.returncode == 2 and one_line(r).endswith("nests deeper than a config can (over 100 "
                                                      "levels)")  # fmt: skip
    r = run_here("train.steps=null", cwd=tmp_path, fresh=True)
    assert one_line(r) == "rnnexp: error: train.steps cannot be null: give a value"
    untracked = run_here(*TINY, "tracking.enabled=false", "hydra.run.dir=r", cwd=tmp_path)
    assert untracked.returncode == 0
    r = sample_cmd("r", "--seed", "-1", cwd=tmp_path)
    assert r.returncode == 2 and "invalid seed value: '-1'" in r.stderr
    assert varied_label(["corpus.path=/data/long/folder/a.txt", "seed=1"]) == "path=a.txt seed=1"
