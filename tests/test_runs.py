"""End-to-end runs through the real entrypoint, recorded in a real MLflow store: a sqlite file
in tmp_path, and a real `mlflow server` on 127.0.0.1."""

import json
import os
import re
import signal
import subprocess
import sys
import warnings

import pytest
import yaml
from conftest import ROOT
from helpers import (
    SMALL,
    TINY,
    artifacts,
    env,
    history,
    inspect_cmd,
    page_data,
    run_here,
    runs,
    sample_cmd,
    wait_for_metric,
)

from rnnexp.framework.settings import override_key
from rnnexp.framework.sweep import varied_label


def default_store(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One tiny run with the default store under its launch dir; (folder, uri, run)."""
    tmp = tmp_path_factory.mktemp("run")
    whole = [o for o in TINY if "val_fraction" not in o]  # elman's 10 %: 2,718 characters
    r = run_here(*whole, "corpus=elman", "hydra.run.dir=outputs/the_run", cwd=tmp)
    assert r.returncode == 0, r.stderr
    uri = default_store(tmp)
    (run,) = runs(uri)
    return tmp, uri, run


def test_a_run_records_params_tags_metrics_and_artifacts(finished):
    tmp, uri, run = finished
    assert run.info.status == "FINISHED"
    log = (tmp / "outputs" / "the_run" / "rnnexp.log").read_text()
    assert "BLAS threads: 1" in log  # a small model: one thread (threads=null)
    assert run.data.tags["rnnexp.blas_threads"] == "1: 30"  # steps trained at each count
    assert run.data.metrics["perf/blas_threads"] == 1
    assert "trained 30 steps; in all" in log and "evaluation" in log
    assert "gru-elman-adam: step 30 of 30 (all steps)" in log  # the closing summary
    p = run.data.params
    assert p["train.steps"] == "30" and p["model.name"] == "gru" and p["corpus.name"] == "elman"
    assert p["corpus.options.n_b"] == "3000" and p["seed"] == "0"
    assert p["tracking.uri"] == uri  # the store, resolved once, as the run's config holds it
    t = run.data.tags
    assert t["rnnexp.corpus"] == "elman" and len(t["rnnexp.corpus_sha256"]) == 64
    assert t["rnnexp.corpus_source"].startswith("generated: elman(length=10000")
    assert t["rnnexp.stopped_by"] == "steps" and "rnnexp.corpus_part" not in t
    assert t["rnnexp.vocab_size"] == "6" and p["model.vocab_size"] == "0"  # set by the corpus
    assert t["rnnexp.overrides"].startswith(" ".join(TINY[:3]))
    if (ROOT / ".git").exists():  # a checkout: the code version is on the run
        assert len(t["mlflow.source.git.commit"].removesuffix("-dirty")) == 40
    assert (t["mlflow.source.name"], t["mlflow.source.type"]) == ("rnnexp", "LOCAL")
    assert t["mlflow.user"] and t["rnnexp.varied"] == "[]"
    assert run.info.run_name == "gru-elman-adam"  # what the run is: model, corpus, optimizer

    assert [s for s, _ in history(uri, run.info.run_id, "train/loss")] == [5, 10, 15, 20, 25, 30]
    assert [s for s, _ in history(uri, run.info.run_id, "train/smooth_loss")] == [
        5,
        10,
        15,
        20,
        25,
        30,
    ]
    per_chunk = history(uri, run.info.run_id, "train/smooth_loss")
    per_char = history(uri, run.info.run_id, "train/smooth_loss_per_char")
    assert per_char == [(s, pytest.approx(v / 16)) for s, v in per_chunk]  # T = 16
    assert [s for s, _ in history(uri, run.info.run_id, "perf/chars_per_s")] == [
        5,
        10,
        15,
        20,
        25,
        30,
    ]
    val = history(uri, run.info.run_id, "val/loss")
    bpc = history(uri, run.info.run_id, "val/bpc")
    assert [s for s, _ in val] == [10, 20, 30] and [s for s, _ in bpc] == [10, 20, 30]
    assert bpc[-1][1] == pytest.approx(val[-1][1] / 0.6931471805599453)
    assert history(uri, run.info.run_id, "corpus/entropy_floor") == [
        (0, pytest.approx(0.3675, abs=1e-4))
    ]

    files = artifacts(uri, run.info.run_id)
    expected = {"config.yaml", "gate_saturation.png", "inspect.html", "loss_curve.png",
                "samples/step_0000015.txt", "samples/step_0000030.txt"}  # fmt: skip
    # the final model's one copy in the store is the MLflow model (mlflow_model); the best
    # one is there only when it is not the final one
    best_is_final = t["rnnexp.best_model"] == "model"
    if not best_is_final:
        expected |= {"model_best/model.json", "model_best/model.npz"}
    assert set(files) == expected
    out = tmp / "outputs" / "the_run"
    assert (out / "model_best").exists() != best_is_final
    (inspected,) = history(uri, run.info.run_id, "perf/inspect_s")
    assert inspected[0] == 30 and 0 < inspected[1] < 10
    for f in (
        "model/model.npz",
        "model/model.json",
        "loss_curve.png",
        "rnnexp.log",
        "inspect.html",
        "gate_saturation.png",
        "samples/step_0000015.txt",
        "samples/step_0000030.txt",
    ):
        assert (out / f).is_file(), f
    assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    title = Image.open(out / "loss_curve.png").text["Title"]
    assert title == "gru: 1 gru layer H128 on elman, adam lr 0.005"
    # the corpus is the run's dataset input: named, digested, with its source; its validation
    # split is the evaluation input
    training, evaluation = sorted(run.inputs.dataset_inputs, key=lambda d: d.tags[0].value,
                                  reverse=True)  # fmt: skip
    d = training.dataset
    assert (d.name, d.digest, d.source_type) == ("elman", t["rnnexp.corpus_sha256"][:16], "code")
    assert "elman(length=10000" in d.source and training.tags[0].value == "training"
    e = evaluation.dataset
    assert (e.name, evaluation.tags[0].value) == ("elman-validation", "evaluation")
    assert json.loads(e.profile)["chars"] == 2718 and e.digest != d.digest
    # the MLflow UI opens the experiment in its runs table, not the GenAI overview
    from mlflow import MlflowClient

    kind = MlflowClient(uri).get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"]
    assert kind == "custom_model_development"
    # artifacts beside the store, not in ./mlruns of the cwd
    assert not (tmp / "mlruns").exists() and (tmp / "outputs" / "mlartifacts").is_dir()


def test_samples_and_config_are_readable(finished):
    from mlflow import MlflowClient

    _, uri, run = finished
    client = MlflowClient(uri)
    sample = open(client.download_artifacts(run.info.run_id, "samples/step_0000030.txt")).read()
    assert len(sample) == 21 and set(sample) <= set("abceiu")  # the start character + 20
    config = open(client.download_artifacts(run.info.run_id, "config.yaml")).read()
    assert "steps: 30" in config and "name: elman" in config


def test_the_sample_command_reads_a_finished_run(finished):
    tmp, uri, run = finished
    by_dir = sample_cmd("outputs/the_run", "--length", "50", "--seed", "1", cwd=tmp)
    assert by_dir.returncode == 0, by_dir.stderr
    by_id = sample_cmd(run.info.run_id, "--length", "50", "--seed", "1", cwd=tmp)
    assert by_id.returncode == 0, by_id.stderr
    assert by_dir.stdout == by_id.stdout and len(by_dir.stdout) == 52  # start + 50 + newline
    (tmp / "prime.txt").write_text("aebuu")
    primed = sample_cmd("outputs/the_run", "--prime-file", "prime.txt", "--length", "5",
                        "--temperature", "0", cwd=tmp)  # fmt: skip
    assert primed.returncode == 0 and primed.stdout.startswith("aebuu") and len(primed.stdout) == 11
    bad = sample_cmd("outputs/the_run", "--prime", "xyz", cwd=tmp)
    assert bad.returncode == 2
    assert (
        bad.stderr.strip() == "rnnexp-sample: error: character 'x' is not in the model's vocabulary"
    )
    missing = sample_cmd("0" * 32, cwd=tmp)
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_the_inspect_command_reads_a_finished_run(finished):
    """rnnexp-inspect writes the page of a run, by folder or id, for the run's validation
    text, a file, or the model's own writing; mistakes are one line."""
    tmp, uri, run = finished
    by_dir = inspect_cmd("outputs/the_run", "--out", "a.html", cwd=tmp)
    assert by_dir.returncode == 0 and by_dir.stdout.strip() == "a.html", by_dir.stderr
    by_id = inspect_cmd(run.info.run_id, "--out", "b.html", cwd=tmp)
    assert by_id.returncode == 0, by_id.stderr
    # the run's own page, again: the start of the validation split, the same units
    pages = [(tmp / f).read_text() for f in ("a.html", "b.html")]
    own = (tmp / "outputs" / "the_run" / "inspect.html").read_text()
    assert page_data(pages[0]) == page_data(pages[1]) == page_data(own)
    assert len(page_data(own)["chars"]) == 2000  # inspect.length
    (tmp / "t.txt").write_text("aebuuciiiae" * 3)
    r = inspect_cmd("outputs/the_run", "--text", "t.txt", "--units", "0,127", "--out", "t.html",
                    cwd=tmp)  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = page_data((tmp / "t.html").read_text())
    assert "".join(data["chars"]) == "aebuuciiiae" * 3 and [u[0] for u in data["ranked"]] == [
        0,
        127,
    ]
    r = inspect_cmd("outputs/the_run", "--prime", "aebuu", "--length", "40", "--out", "p.html",
                    cwd=tmp)  # fmt: skip
    assert r.returncode == 0, r.stderr
    chars = page_data((tmp / "p.html").read_text())["chars"]
    assert len(chars) == 45 and "".join(chars).startswith("aebuu")
    for args, message in [
        (["--units", "200"], "no unit 200: this model has units 0..127"),
        (["--units", "1,x"], "--units takes unit numbers separated by commas, got '1,x'"),
        (["--text", "missing.txt"], "corpus file not found: missing.txt"),
        (["--prime", "xyz"], "character 'x' is not in the model's vocabulary"),
        (["--length", "0"], "--length must be >= 1, got 0"),
        (["--out", "nowhere/x.html"], "cannot write nowhere/x.html: No such file or directory"),
    ]:
        bad = inspect_cmd("outputs/the_run", *args, cwd=tmp)
        assert (bad.returncode, bad.stderr.strip()) == (2, f"rnnexp-inspect: error: {message}")
    bare = inspect_cmd("outputs/the_run/model", cwd=tmp)
    assert bare.returncode == 2 and "is a model, not a run's folder" in bare.stderr
    assert not (tmp / "inspect.html").exists()


def test_the_inspect_command_reads_only_the_text_a_run_recorded(finished):
    """A run folder from someone else names whatever file it likes as its corpus: the page
    embeds its text only if it is the text the run trained on (its recorded sha256)."""
    import shutil

    tmp, _, _ = finished
    foreign = tmp / "foreign"
    shutil.copytree(tmp / "outputs" / "the_run", foreign)
    secret = tmp / "secret.txt"
    secret.write_text("aebuu the password is hunter2 " * 100)
    config = foreign / ".hydra" / "config.yaml"
    saved = yaml.safe_load(config.read_text())
    saved["corpus"] |= {"name": "file", "path": str(secret), "options": {}}
    config.write_text(yaml.safe_dump(saved))
    r = inspect_cmd("foreign", "--out", "f.html", cwd=tmp)
    assert (r.returncode, r.stderr.strip()) == (2, (
        f"rnnexp-inspect: error: the run trained on another text than {secret} holds now: its "
        f"validation split is not read; name the text to inspect with --text FILE"))  # fmt: skip
    assert not (tmp / "f.html").exists()


def test_same_seed_same_metrics_and_samples(tmp_path):
    for inspect in ("true", "false"):  # the look inside reads the model, and changes nothing
        r = run_here(*TINY, "model=stacked2", "model.hidden_size=16", "seed=5",
                   f"inspect.enabled={inspect}", cwd=tmp_path)  # fmt: skip
        assert r.returncode == 0, r.stderr
    uri = default_store(tmp_path)
    a, b = runs(uri)
    for key in ("train/loss", "train/smooth_loss", "val/loss", "val/bpc"):
        assert history(uri, a.info.run_id, key) == history(uri, b.info.run_id, key), key
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    for step in ("0000015", "0000030"):
        texts = [
            open(client.download_artifacts(r.info.run_id, f"samples/step_{step}.txt")).read()
            for r in (a, b)
        ]
        assert texts[0] == texts[1]
    assert "inspect.html" in artifacts(uri, a.info.run_id)
    assert "inspect.html" not in artifacts(uri, b.info.run_id)  # inspect.enabled=false
    import numpy as np

    a_npz, b_npz = (np.load(f"{r.data.tags['rnnexp.output_dir']}/model/model.npz") for r in (a, b))
    assert a_npz.files == b_npz.files
    assert all(np.array_equal(a_npz[k], b_npz[k]) for k in a_npz.files)


def test_a_diverged_run_is_failed_with_its_error(tmp_path):
    r = run_here(*TINY, "model.init_scale=1e38", cwd=tmp_path)  # float32 logits overflow: NaN
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("rnnexp: error: loss is nan at step 1")
    (run,) = runs(default_store(tmp_path))
    assert run.info.status == "FAILED"
    assert run.data.tags["rnnexp.error"].startswith("DivergedError: loss is nan at step 1")


def test_a_run_that_overflows_says_so_in_one_line_without_numpys_warnings(tmp_path):
    # float32 weights of 1e38 overflow in the first products: inf, then NaN, at step 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = run_here(*TINY, "model.init_scale=1e38", "train.diverge_factor=null", cwd=tmp_path)
    assert r.returncode == 2
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert "RuntimeWarning" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("rnnexp: error: loss is nan at step 1") and "init_scale=1e+38" in last


def test_ctrl_c_marks_the_run_killed(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnexp", *SMALL, "train.steps=10000000", "train.log_every=100"],
        cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for_metric(proc, tmp_path / "outputs" / "mlflow.db")  # a step trained and logged
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "rnnexp: interrupted" in stderr and "Traceback" not in stderr
    (run,) = runs(default_store(tmp_path))
    assert run.info.status == "KILLED"
    assert len(history(default_store(tmp_path), run.info.run_id, "train/loss")) > 0  # kept


def test_a_sweep_is_one_parent_with_a_child_per_job(tmp_path):
    r = run_here("-m", "model=srn,rnn", "seed=0,1", *TINY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    check_sweep(default_store(tmp_path), 4, {"model", "seed"})


def test_a_job_that_fails_before_its_run_opens_fails_the_sweep(tmp_path):
    """A batch elman's text cannot hold is found as its job builds, before it has an MLflow
    run: the sweep counts it from its folder, names it, and fails."""
    r = run_here("-m", "corpus=elman", *[o for o in TINY if "batch" not in o],
                 "train.batch_size=4,5000", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "rnnexp: error: sweep jobs failed: job 1 (no run)\n" in r.stderr
    (parent,) = [x for x in runs(default_store(tmp_path)) if x.info.run_name.startswith("sweep ")]
    assert parent.info.status == "FAILED" and "job 1" in parent.data.tags["rnnexp.error"]


def test_a_failed_job_fails_the_sweep_but_not_the_other_jobs(tmp_path):
    # plain SGD at lr 1000 without clipping blows up at once: that job is FAILED
    r = run_here("-m", "optimizer=sgd", "optimizer.lr=0.005,1000", "train.clip=null",
               "corpus=fizzbuzz", "corpus.options.n=100", *TINY, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 1
    assert "rnnexp: error: sweep jobs failed: lr=1000 · gru-fizzbuzz-sgd\n" in r.stderr
    assert "Traceback" not in r.stderr
    # the sweep's summary: a row per job, the best one, where its figure is
    assert "lr=1000   FAILED" in r.stdout and "<- best" in r.stdout
    assert "best job   lr=0.005 · gru-fizzbuzz-sgd (val " in r.stdout
    assert re.search(r"comparison outputs/multiruns/[^/]+/comparison.png", r.stdout)
    all_runs = runs(default_store(tmp_path))
    status = {r.info.run_name: r.info.status for r in all_runs}
    assert status["lr=1000 · gru-fizzbuzz-sgd"] == "FAILED"
    assert status["lr=0.005 · gru-fizzbuzz-sgd"] == "FINISHED"
    (parent,) = [r for r in all_runs if r.info.run_name.startswith("sweep ")]
    assert parent.info.status == "FAILED"
    assert "lr=1000" in parent.data.tags["rnnexp.error"]
    from mlflow import MlflowClient
    from PIL import Image

    png = MlflowClient(default_store(tmp_path)).download_artifacts(
        parent.info.run_id, "comparison.png", str(tmp_path)
    )
    labels = Image.open(png).text["Description"].splitlines()  # the figure's legend
    assert labels[0] == "lr=0.005"
    assert labels[1].startswith("lr=1000: FAILED (DivergedError: loss per character")


def test_sweep_labels_round_long_numbers_and_differ_early():
    from rnnexp.framework.sweep import short, varied_label

    # what varies, first and short: the MLflow UI's name column shows a name's start
    grid = [[f"optimizer.lr={lr}", f"model.hidden_size={h}"] for lr in (0.001, 0.003, 0.01,
            0.0123456789) for h in (64, 128)]  # fmt: skip
    labels = [varied_label(v) for v in grid]
    assert labels[0] == "lr=0.001 hidden_size=64" and labels[-1] == "lr=0.0123 hidden_size=128"
    assert len({label[:24] for label in labels}) == len(grid)
    assert varied_label(["model=gru", "optimizer=adam"]) == "model=gru optimizer=adam"
    assert varied_label(["+model.dropout=0.1", "x.dropout=2"]) == "model.dropout=0.1 x.dropout=2"

    assert short("optimizer.lr=0.012345678901234567") == "optimizer.lr=0.0123"
    assert short("model.hidden_size=128") == "model.hidden_size=128"
    assert short("model=rnn") == "model=rnn" and short("optimizer.lr=0.1") == "optimizer.lr=0.1"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optimizer.lr=0.1"], r"loss per character averages \d+\.?\d* nats at step \d+, over 3x"),
        (["optimizer.lr=1000", "train.clip=null"], r"loss per character averages \d+"),
    ],
)
def test_a_blown_up_run_stops_at_once_failed(tmp_path, overrides, message):
    # plain SGD on notebook 004's fizzbuzz in the notebooks' loop and initialisation
    notebook = ["model=rnn", "optimizer=sgd", "schedule=constant", "model.init=normal",
                "model.init_scale=0.01", "model.dtype=float64", "corpus=fizzbuzz",
                "corpus.options.n=100", "train.batch_size=1", "train.seq_length=25"]  # fmt: skip
    r = run_here("train.steps=300", *notebook, *overrides, cwd=tmp_path)
    assert r.returncode == 2
    assert re.match(f"rnnexp: error: {message}", r.stderr.strip().splitlines()[-1])
    (run,) = runs(default_store(tmp_path))
    assert run.info.status == "FAILED"
    assert re.search(message, run.data.tags["rnnexp.error"])


def test_an_unreachable_tracking_server_fails_before_anything_runs(tmp_path):
    from conftest import free_port

    r = run_here(*TINY, f"tracking.uri=http://127.0.0.1:{free_port()}", fresh=True, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("rnnexp: error: cannot reach the MLflow tracking server")
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "outputs").exists()


def test_parallel_joblib_sweep_on_a_fresh_store(tmp_path):
    r = run_here(
        "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=4", "seed=0,1,2,3", *TINY,
        "tracking.register=seeds", fresh=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    uri = default_store(tmp_path)
    check_sweep(uri, 4, {"seed"})
    # the sweep registered its best child's model, and only that: models:/seeds@best
    from mlflow import MlflowClient

    client = MlflowClient(uri, registry_uri=uri)
    (version,) = client.search_model_versions("name='seeds'")
    best = client.get_model_version_by_alias("seeds", "best")
    (child,) = [c for c in runs(uri) if c.data.tags.get("rnnexp.best") == "true"]
    assert str(best.version) == str(version.version) == "1" and best.run_id == child.info.run_id
    assert child.data.tags["rnnexp.registered"] == "seeds/1"
    assert not (tmp_path / "mlflow.db").exists()  # MLflow's default store: never made here
    # 4 jobs at once share the cores: each limited to cores / 4 BLAS threads (at least 1)
    logs = list((tmp_path / "outputs" / "multiruns").glob("*/*/rnnexp.log"))
    assert len(logs) == 4
    share = max(1, (os.cpu_count() or 1) // 4)
    for log in logs:
        assert f"BLAS threads: {share}" in log.read_text()


def check_sweep(
    uri: str, n: int, swept: set[str], experiment: str = "rnnexp", steps: tuple = (6, 3)
) -> None:
    """One parent, n FINISHED children under it, every metric point there, nothing in Default."""
    from mlflow import MlflowClient

    all_runs = runs(uri, experiment)
    parents = [r for r in all_runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in parents]
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.info.run_name.startswith("sweep ")
    children = [r for r in all_runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == n == len(all_runs) - 1
    names = set()
    for c in children:
        assert c.info.status == "FINISHED"
        names.add(c.info.run_name)
        varied = json.loads(c.data.tags["rnnexp.varied"])
        assert {override_key(o) for o in varied} == swept  # what varies, as data
        assert c.info.run_name.startswith(varied_label(varied) + " · ")  # and first in the name
        assert len(history(uri, c.info.run_id, "train/loss")) == steps[0]  # every point
        assert len(history(uri, c.info.run_id, "val/loss")) == steps[1]
    assert len(names) == n == len({name[:24] for name in names})  # apart in the UI's column
    # the children side by side, their table, and a look inside the best one
    files = set(artifacts(uri, parent.info.run_id))
    assert {"comparison.png", "inspect.html", "summary.txt"} <= files
    best = min(c.data.metrics["val/loss"] for c in children)
    assert parent.data.metrics["sweep/best_val_loss"] == best  # a metric, comparable in the UI
    default = MlflowClient(uri).get_experiment_by_name("Default")
    assert MlflowClient(uri).search_runs([default.experiment_id]) == []


def test_a_run_against_a_real_mlflow_server(tmp_path, mlflow_server):
    r = run_here(
        *TINY,
        f"tracking.uri={mlflow_server}",
        "tracking.experiment=server",
        fresh=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    (run,) = runs(mlflow_server, "server")
    assert run.info.status == "FINISHED"
    assert len(history(mlflow_server, run.info.run_id, "train/loss")) == 6
    assert run.data.tags["rnnexp.model_id"].startswith("m-")  # its MLflow model, on the server
    assert not (tmp_path / "outputs" / "mlflow.db").exists()  # nothing went to the default store


def test_a_run_without_tracking_keeps_its_folder_and_opens_no_store(tmp_path):
    """tracking.enabled=false: no MLflow at all (even an unreachable server is never asked),
    the run's folder still has its model, curve and page; a sweep needs its parent run."""
    r = run_here(*TINY, "tracking.enabled=false", "tracking.uri=http://127.0.0.1:9",
               "hydra.run.dir=outputs/alone", fresh=True, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = tmp_path / "outputs" / "alone"
    for f in ("model/model.npz", "loss_curve.png", "inspect.html", "checkpoint.npz"):
        assert (out / f).is_file(), f
    assert not list(tmp_path.rglob("mlflow.db")) and not (tmp_path / "mlruns").exists()
    assert sample_cmd("outputs/alone", "--length", "5", cwd=tmp_path).returncode == 0
    for args, message in [
        (["-m", "seed=1,2"], "a sweep is tracked (its parent run gathers the jobs"),
        (["tracking.register=x"], "tracking.register needs tracking.enabled=true"),
    ]:
        bad = run_here(*args, "tracking.enabled=false", fresh=True, cwd=tmp_path)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr


def test_mlflow_tracking_uri_from_the_environment(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    # an experiment made before rnnexp set its kind gets it (the UI then opens its runs table)
    MlflowClient(uri).create_experiment("rnnexp", (tmp_path / "artifacts").as_uri())
    r = run_here(*TINY, fresh=True, cwd=tmp_path, MLFLOW_TRACKING_URI=uri)
    assert r.returncode == 0, r.stderr
    assert len(runs(uri)) == 1
    assert not (tmp_path / "outputs" / "mlflow.db").exists()
    experiment = MlflowClient(uri).get_experiment_by_name("rnnexp")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_mlflow_experiment_name_from_the_environment_and_system_metrics(tmp_path):
    # MLflow's own variable names the experiment when tracking.experiment is not given;
    # tracking.system_metrics=true adds MLflow's system/* metrics (sampled every second here)
    r = run_here(*SMALL, "train.steps=300", "corpus=elman", "tracking.system_metrics=true",
               cwd=tmp_path, MLFLOW_EXPERIMENT_NAME="mine",
               MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL="0.5")  # fmt: skip
    assert r.returncode == 0, r.stderr
    (run,) = runs(default_store(tmp_path), "mine")
    assert run.data.params["tracking.experiment"] == "mine"
    assert "system/cpu_utilization_percentage" in run.data.metrics
    assert "system/system_memory_usage_megabytes" in run.data.metrics
    given = run_here(*TINY, "tracking.experiment=theirs", cwd=tmp_path, MLFLOW_EXPERIMENT_NAME="x")
    assert given.returncode == 0, given.stderr
    (other,) = runs(default_store(tmp_path), "theirs")  # the command line wins
    assert not [k for k in other.data.metrics if k.startswith("system/")]  # off by default


def test_an_optuna_search_tags_its_best_trial(tmp_path):
    r = run_here(
        "search=optuna", "prune=none", "hydra.sweeper.n_trials=3", "corpus=elman",
        "train.steps=100",
        "train.batch_size=4",
        "train.eval_every=50", "optimizer.lr=tag(log,interval(0.01,0.05))",  # a narrower space
        cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    uri = default_store(tmp_path)
    check_sweep(uri, 3, {"optimizer.lr", "model.hidden_size", "train.seq_length"}, steps=(10, 2))
    all_runs = runs(uri)
    (parent,) = [x for x in all_runs if x.info.run_name.startswith("sweep ")]
    children = [x for x in all_runs if x is not parent]
    best = min(children, key=lambda x: x.data.metrics["val/loss"])
    assert [x.data.tags.get("rnnexp.best") for x in children].count("true") == 1
    assert best.data.tags["rnnexp.best"] == "true"
    assert parent.data.tags["rnnexp.best_run"] == best.info.run_name


@pytest.mark.parametrize("lr, status", [("choice(0.02,1000.0)", 0), ("interval(500,1000)", 1)])
def test_a_search_with_blown_up_trials(tmp_path, lr, status):
    """A trial that blows up is a search's result (FAILED, scored +inf): the search finishes
    and exits 0 as long as some trial finished; when none did, it failed."""
    r = run_here(
        "search=optuna", "hydra.sweeper.n_trials=4", "corpus=elman", "train.steps=100",
        "train.batch_size=4",
        "train.eval_every=50", f"optimizer.lr={lr}", cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert r.returncode == status, r.stderr
    all_runs = runs(default_store(tmp_path))
    (parent,) = [x for x in all_runs if x.info.run_name.startswith("sweep ")]
    children = [x for x in all_runs if x is not parent]
    failed = [c for c in children if c.info.status == "FAILED"]
    assert len(children) == 4 and failed
    if status == 0:
        assert parent.info.status == "FINISHED"
        assert parent.data.tags["rnnexp.failed_trials"] == str(len(failed))
        assert f"rnnexp: {len(failed)} trials of the search failed" in r.stderr
        (best,) = [c for c in children if c.data.tags.get("rnnexp.best") == "true"]
        assert "optimizer.lr=0.02" in json.loads(best.data.tags["rnnexp.varied"])
        assert parent.data.tags["rnnexp.best_run"] == best.info.run_name
    else:
        assert parent.info.status == "FAILED" and len(failed) == 4
        assert "rnnexp: error: sweep jobs failed" in r.stderr
