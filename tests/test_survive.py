"""Runs that survive, through the real entrypoint: bad input ends in one clear line with the
store intact; an interrupted run resumes to the very same parameters; many writers at once
lose nothing."""

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from helpers import SMALL, TINY, env, history, run_here, runs, wait_for_metric

SHARED = ROOT.parent / "shared" / "corpora"


def store(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"


def files(tmp_path) -> dict[str, str]:
    """A folder of bad corpus files, made fresh for each test."""
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1") * 20)
    (tmp_path / "short.txt").write_text("tiny\n")
    (tmp_path / "a_folder").mkdir()
    return {k: str(tmp_path / k) for k in ("empty.txt", "binary.bin", "latin1.txt", "short.txt")}


BAD = [  # (overrides, what the one line must say)
    (["model=rnm"], "unknown model 'rnm'; valid: gru, lstm, rnn, srn, stacked2"),
    (["corpus=shakespear"], "unknown corpus 'shakespear'; valid: alice, elman, file, "),
    (["optimizer=adamw"], "unknown optimizer 'adamw'; valid: adagrad, adam, rmsprop, sgd"),
    (
        ["optimizer=sgd", "optimizer.beta1=0.9"],
        "unknown key 'optimizer.beta1'; valid keys of optimizer: lr, name",
    ),
    (["optimizer=rmsprop", "optimizer.decay=1"], "optimizer.decay must be a number in [0, 1)"),
    (["model.params=0"], "model.params must be a whole number >= 1, got 0"),
    (["model.params=100000000000"], "model.params=100000000000 (model.hidden_size=182573) with"),
    (["corpus=python", "corpus.options.chars=-1"], "python chars must be a whole number >= 1"),
    (["schedule=cosne"], "unknown schedule 'cosne'; valid: constant, cosine, epoch_decay"),
    (
        ["schedule=constant", "schedule.warmup_steps=5"],
        "unknown key 'schedule.warmup_steps'; valid keys of schedule: name",
    ),
    (["model.init=he"], "unknown model.init 'he'; valid: normal, uniform, xavier, orthogonal"),
    (["model.dropout=1"], "model.dropout must be a number in [0, 1), got 1.0"),
    (["train.max_seconds=-1"], "train.max_seconds must be > 0 or null, got -1.0"),
    (["train.stpes=5"], "unknown key 'train.stpes'; valid keys of train: "),
    (["optimizer.lr=fast"], "optimizer.lr=fast is not a number"),
    (["optimizer.lr=-0.1"], "optimizer.lr must be a positive number, got -0.1"),
    (["model.hidden_size=0"], "model.hidden_size must be a whole number >= 1, got 0"),
    (["train.seq_length=0"], "train.seq_length must be a whole number >= 1, got 0"),
    (
        ["corpus=fizzbuzz", "corpus.options.n=100", "train.batch_size=100"],
        "training text of 405 characters is too short for batch_size=100",  # 98 % of 413
    ),
    (["corpus=file", "corpus.path=/no/such/file.txt"], "corpus file not found: /no/such/file.txt"),
    (["corpus=file", "corpus.path={tmp}/a_folder"], "corpus path is not a file: "),
    (["corpus=file", "corpus.path={tmp}/empty.txt"], "corpus file is empty: "),
    (
        ["corpus=file", "corpus.path={tmp}/binary.bin"],
        "corpus file looks binary (it has NUL bytes)",
    ),
    (["corpus=file", "corpus.path={tmp}/latin1.txt"], "corpus file is not UTF-8 text: "),
    (["corpus=file", "corpus.path={tmp}/short.txt"], "training text of 5 characters is too short"),
    (["tracking.uri=http://127.0.0.1:9"], "cannot reach the MLflow tracking server http://127"),
    (["seed=-1"], "seed must be a whole number >= 0, got -1"),
    (["model.hidden_size=200000"], "model.hidden_size=200000 with 1 layer(s) has 120,001,"),
    (["sample.prime=X78"], "sample.prime has characters that shakespeare never uses: '78'"),
    (["optimizer.lr=1e300"], "optimizer.lr=1e+300 is over 1e+06: every step would move"),
    (["train.steps=50", "train.steps=60"], "train.steps is given twice (train.steps=50 and "),
    (["corpus.path=a b("], "cannot read 'corpus.path=a b(': "),
    # nothing a config says puts a file outside the run's folder
    (["hydra.job.name=../../x"], "hydra.job.name='../../x' names the run's log file: give a "),
    (
        ["hydra.job_logging.handlers.file.filename={tmp}/x.log"],
        "hydra.job_logging.handlers.file.filename=/",
    ),
    (
        ["hydra.job_logging.handlers.file.filename=${{hydra.runtime.output_dir}}/../y.log"],
        "hydra.job_logging.handlers.file.filename=${hydra.runtime.output_dir}/../y.log would ",
    ),
    (["tracking.register=..x"], "tracking.register must be a model name without '/' or ':' "),
]


@pytest.mark.parametrize("overrides, message", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_nothing_logged(tmp_path, overrides, message):
    files(tmp_path)
    steps = [o for o in TINY if o not in SMALL]  # the values under test may set B and T
    r = run_here(*[o.format(tmp=tmp_path) for o in overrides], *steps, fresh=True, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"rnnexp: error: {message}"), r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert not (tmp_path / "outputs" / "mlflow.db").exists()  # no store, no half-logged run
    assert not list(tmp_path.glob("outputs/runs/*"))  # and no folder, whenever it was found


def test_a_corrupted_download_is_refused_and_left_alone(tmp_path):
    (tmp_path / "data").mkdir()
    bad = tmp_path / "data" / "kafka.txt"
    bad.write_text("One morning, as Gregor Samsa was waking up from anxious dreams\n" * 50)
    r = run_here(
        "corpus=kafka", *TINY, fresh=True, cwd=tmp_path, RNNEXP_DATA_DIR=str(tmp_path / "data")
    )
    assert r.returncode == 2
    assert r.stderr.strip().startswith("rnnexp: error: ") and "expected 836497d1" in r.stderr
    assert "delete it to download again" in r.stderr
    assert bad.read_text().startswith("One morning")
    assert not (tmp_path / "outputs" / "mlflow.db").exists()
    assert not (tmp_path / "outputs").exists()  # a run that never started leaves no folder


def test_a_run_goes_only_into_a_new_or_empty_folder_and_keeps_the_users_files(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "kafka.txt").write_text("not kafka\n" * 50)
    mine, empty = tmp_path / "mine", tmp_path / "empty"
    mine.mkdir()
    empty.mkdir()
    (mine / "notes.txt").write_text("my notes")
    (mine / ".draft.tmp").write_text("x")  # named like a temporary file: still the user's
    (mine / ".notes.txt.999999.tmp").write_text("y")  # even rnnexp's own naming, unclaimed
    for folder in (mine, tmp_path, "/etc"):  # never written into, whoever runs it
        for command in (["hydra.run.dir"], ["-m", "seed=1,2", "hydra.sweep.dir"]):
            *sweep, key = command
            r = run_here(*sweep, "corpus=kafka", *TINY, f"{key}={folder}", fresh=True,
                         cwd=tmp_path, RNNEXP_DATA_DIR=str(tmp_path / "data"))  # fmt: skip
            [line] = r.stderr.strip().splitlines()
            assert r.returncode == 2 and line.startswith(f"rnnexp: error: {folder} is not empty (")
            assert line.endswith("): a run writes only into a new or empty folder; name another")
    assert not list(tmp_path.glob("mine_*")) and not Path("/etc_2").exists()
    r = run_here(*TINY, "hydra.run.dir=''", fresh=True, cwd=tmp_path)
    assert r.stderr.strip() == "rnnexp: error: hydra.run.dir is empty: name a new or empty folder"
    r = run_here("corpus=kafka", *TINY, f"hydra.run.dir={empty}", fresh=True, cwd=tmp_path,
               RNNEXP_DATA_DIR=str(tmp_path / "data"))  # fmt: skip
    assert r.returncode == 2 and "expected 836497d1" in r.stderr  # claimed, then failed
    assert sorted(p.name for p in mine.iterdir()) == [".draft.tmp", ".notes.txt.999999.tmp",
                                                      "notes.txt"]  # fmt: skip
    assert empty.is_dir() and list(empty.iterdir()) == []  # as it was
    # a marker made by hand over a user's files is not a claim rnnexp made: nothing goes
    hand = tmp_path / "hand"
    (hand / ".hydra").mkdir(parents=True)
    (hand / ".rnnexp").touch()
    (hand / ".hydra" / "notes.txt").write_text("precious")
    r = run_here(*TINY, f"hydra.run.dir={hand}", fresh=True, cwd=tmp_path)
    assert r.returncode == 2 and (hand / ".hydra" / "notes.txt").read_text() == "precious"
    shutil.rmtree(hand)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "empty", "mine"]
    home = tmp_path / "home"  # ~ is the user's home, not a folder named ~
    r = run_here(*TINY, "tracking.enabled=false", "hydra.run.dir=~/run", fresh=True, cwd=tmp_path,
               HOME=str(home))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (home / "run" / "checkpoint.npz").is_file() and not (tmp_path / "~").exists()


def test_a_bad_run_leaves_the_store_and_earlier_runs_intact(tmp_path):
    assert run_here(*TINY, cwd=tmp_path).returncode == 0
    assert run_here("model.init_scale=1e38", *TINY, cwd=tmp_path).returncode == 2  # NaN at once
    assert run_here("corpus=file", "corpus.path=/nope", *TINY, cwd=tmp_path).returncode == 2
    good, failed = runs(store(tmp_path))
    assert (good.info.status, failed.info.status) == ("FINISHED", "FAILED")
    assert len(history(store(tmp_path), good.info.run_id, "train/loss")) == 6


# ---------------------------------------------------------------- interruption and resume

# two layers with dropout: the masks come from the run's generator, which resume restores too
LONG = [*SMALL, "train.steps=3000", "train.checkpoint_every=500", "train.eval_every=1500",
        "corpus=fizzbuzz", "model.layers=2", "model.hidden_size=32",
        "model.dropout=0.2"]  # fmt: skip


def start(tmp_path, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rnnexp", *LONG, f"hydra.run.dir=outputs/{name}"],
        cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def interrupt(tmp_path, name: str, signum: int) -> subprocess.Popen:
    """Start a long run, let it train a little, send `signum`; return the finished process."""
    proc = start(tmp_path, name)
    # a step trained and logged (at the first checkpoint after it), not a time: a first run
    # on an empty kernel cache spends seconds compiling before its first step
    wait_for_metric(proc, tmp_path / "outputs" / "mlflow.db", tmp_path / "outputs" / name)
    proc.send_signal(signum)
    proc.communicate(timeout=60)
    return proc


def params(folder) -> dict[str, bytes]:
    with np.load(folder / "model" / "model.npz", allow_pickle=False) as npz:
        return {k: npz[k].tobytes() for k in npz.files}


# SIGINT takes the same path as SIGTERM after its handler: the default suite runs one
@pytest.mark.parametrize(
    "signum",  # SIGHUP: a closed terminal or ssh session stops a run as SIGTERM does
    [signal.SIGTERM, signal.SIGHUP, pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
)
def test_an_interrupted_run_resumes_to_the_same_parameters_bit_for_bit(tmp_path, signum):
    full = run_here(*LONG, "hydra.run.dir=outputs/full", cwd=tmp_path)
    assert full.returncode == 0, full.stderr
    cut = interrupt(tmp_path, "cut", signum)
    assert cut.returncode == 128 + signum
    uri = store(tmp_path)
    run = [r for r in runs(uri) if r.data.tags["rnnexp.output_dir"].endswith("cut")][0]
    assert run.info.status == "KILLED"
    assert "continue with: rnnexp resume=" in run.data.tags["rnnexp.error"]
    stopped_at = max(s for s, _ in history(uri, run.info.run_id, "train/loss"))
    assert 0 < stopped_at < 3000
    assert (tmp_path / "outputs" / "cut" / "checkpoint.npz").is_file()

    resumed = run_here("resume=outputs/cut", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert params(tmp_path / "outputs" / "cut") == params(tmp_path / "outputs" / "full")
    finished = [r for r in runs(uri) if r.info.run_id == run.info.run_id][0]
    assert finished.info.status == "FINISHED" and len(runs(uri)) == 2  # the same run, continued
    whole = [r for r in runs(uri) if r.info.run_id != run.info.run_id][0]
    for key in ("train/loss", "val/loss"):  # every point there, each the uninterrupted value
        assert history(uri, run.info.run_id, key) == history(uri, whole.info.run_id, key)


@pytest.mark.slow
def test_resume_by_run_id_and_its_mistakes(tmp_path):
    cut = interrupt(tmp_path, "cut", signal.SIGTERM)
    assert cut.returncode == 143
    (run,) = runs(store(tmp_path))
    r = run_here("resume=outputs/cut", "train.seq_length=5", cwd=tmp_path)
    assert r.returncode == 2
    assert "resume continues a run with its own config (only train.steps and " in r.stderr
    assert (
        "may grow, to train it further; threads, tracking.system_metrics, tracking.register may "
        "change): drop train.seq_length=5" in r.stderr
    )
    r = run_here("resume=outputs/nothing", cwd=tmp_path)
    assert "is neither a run folder nor an MLflow run id" in r.stderr and r.returncode == 2
    assert run_here(f"resume={run.info.run_id}", cwd=tmp_path).returncode == 0
    assert runs(store(tmp_path))[0].info.status == "FINISHED"
    r = run_here("resume=outputs/cut", cwd=tmp_path)
    assert (
        r.returncode == 2
        and "finished at step 3000 (all steps done): nothing to resume" in r.stderr
    )


def test_a_corrupted_checkpoint_is_refused(tmp_path):
    assert interrupt(tmp_path, "cut", signal.SIGTERM).returncode == 143
    ckpt = tmp_path / "outputs" / "cut" / "checkpoint.npz"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # a torn file
    r = run_here("resume=outputs/cut", cwd=tmp_path)
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert line == (
        f"rnnexp: error: checkpoint {tmp_path}/outputs/cut/checkpoint.npz is corrupted or not "
        "an rnnexp checkpoint: File is not a zip file"
    )
    assert ckpt.stat().st_size == 1000  # refused, not replaced


def test_a_checkpoint_of_another_shape_is_refused(tmp_path):
    from rnnexp.checkpoint import load_checkpoint, save_checkpoint

    assert interrupt(tmp_path, "cut", signal.SIGTERM).returncode == 143
    ckpt = tmp_path / "outputs" / "cut" / "checkpoint.npz"
    arrays, meta = load_checkpoint(ckpt)
    arrays["param.l0.Whh"] = np.zeros((3, 3))
    save_checkpoint(ckpt, arrays, meta)
    r = run_here("resume=outputs/cut", cwd=tmp_path)
    assert r.returncode == 2
    assert "does not fit the run's config: l0.Whh has shape (3, 3), expected (32, 96)" in r.stderr


# ---------------------------------------------------------------- concurrent writers


@pytest.mark.slow
def test_eight_parallel_jobs_on_a_fresh_store(tmp_path):
    r = run_here("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=8",
               "seed=0,1,2,3,4,5,6,7", *TINY, cwd=tmp_path, timeout=600, fresh=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    from test_runs import check_sweep

    check_sweep(store(tmp_path), 8, {"seed"})


@pytest.mark.slow
def test_a_parallel_sweep_against_a_real_mlflow_server(tmp_path, mlflow_server):
    r = run_here("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=4", "seed=0,1,2,3", *TINY,
               f"tracking.uri={mlflow_server}", "tracking.experiment=server-sweep",
               cwd=tmp_path, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr
    from test_runs import check_sweep

    check_sweep(mlflow_server, 4, {"seed"}, experiment="server-sweep")


def test_two_commands_at_once_on_a_fresh_store(tmp_path):
    procs = [
        subprocess.Popen([sys.executable, "-m", "rnnexp", *TINY, f"seed={i}"], cwd=tmp_path,
                         env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    both = runs(store(tmp_path))
    assert len(both) == 2 and {r.info.status for r in both} == {"FINISHED"}
    for r in both:
        assert len(history(store(tmp_path), r.info.run_id, "train/loss")) == 6


def test_no_pickle_on_any_load_path():
    # loading code must never unpickle: every np.load call in the package passes
    # allow_pickle=False, and nothing calls pickle itself
    import re

    calls = 0
    for path in (ROOT / "rnnexp").rglob("*.py"):
        text = path.read_text()
        assert "pickle.load" not in text and "allow_pickle=True" not in text, path
        for args in re.findall(r"np\.load\(([^)]*)\)", text):
            assert "allow_pickle=False" in args, (path, args)
            calls += 1
    # none: npz files are read by checkpoint.read_npz alone, each member's header first, so
    # an array of Python objects is refused there (tests/test_checkpoint.py), never unpickled
    assert calls == 0


def test_ctrl_c_on_a_sweep_kills_the_job_and_the_parent(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnexp", "-m", "seed=0,1", "train.steps=20000", *SMALL],
        cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for_metric(proc, tmp_path / "outputs" / "mlflow.db")  # job 0 trained and logged
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    status = {r.info.run_name: r.info.status for r in runs(store(tmp_path))}
    # seed=1 never started
    assert status == {
        "seed=0 · gru-shakespeare-adam": "KILLED",
        f"sweep {' '.join(proc.args[4:])}": "KILLED",
    }


def test_a_missing_extra_names_the_pip_install_that_brings_it(tmp_path, monkeypatch):
    # the plugin or driver of an extra, hidden as if never installed
    code = (
        "import sys; sys.modules['hydra_plugins.hydra_submitit_launcher'] = None\n"
        "from rnnexp.framework.cli import main\n"
        "sys.argv = ['rnnexp', '-m', 'hydra/launcher=submitit_slurm']; main()"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env(), capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == (
        "rnnexp: error: hydra/launcher=submitit_slurm needs rnnexp's slurm extra: "
        'pip install "rnnexp[slurm]"'
    )
    assert not (tmp_path / "outputs").exists()
    from rnnexp.errors import RnnexpError
    from rnnexp.framework.store import check_store

    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(
        RnnexpError, match=r'its driver \(psycopg\): pip install "rnnexp\[server\]"'
    ):
        check_store("postgresql://me@127.0.0.1:1/mlflow")
