"""A run's model the MLflow way: a pyfunc with a signature and an input example, loaded in a
fresh process by MLflow's own `mlflow.pyfunc.load_model`, registered, served by `mlflow
models serve`; rnnexp-sample and rnnexp-inspect read models:/ URIs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import answers, free_port
from helpers import TINY, env, inspect_cmd, run_here, runs, sample_cmd


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """One tiny elman run, registered as `elman_rnn`; (folder, uri, run)."""
    tmp = tmp_path_factory.mktemp("model")
    r = run_here(*TINY, "corpus=elman", "tracking.register=elman_rnn", cwd=tmp)
    assert r.returncode == 0, r.stderr
    assert "registered as models:/elman_rnn/1" in r.stdout  # the log
    uri = f"sqlite:///{tmp / 'outputs' / 'mlflow.db'}"
    (run,) = runs(uri)
    return tmp, uri, run


PREDICT = """
import json, sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
rows = pd.DataFrame({"prime": ["aebuu", ""], "length": [30, 12], "temperature": [0.5, 1.0],
                     "seed": [3, 0]})
print(json.dumps({"texts": model.predict(rows)["text"].tolist(),
                  "inputs": [c.name for c in model.metadata.signature.inputs.inputs]}))
"""


def test_a_run_logs_an_mlflow_model_that_mlflow_loads_in_a_fresh_process(registered):
    from mlflow import MlflowClient

    tmp, uri, run = registered
    client = MlflowClient(uri)
    (output,) = run.outputs.model_outputs  # the run's logged model, at its last step
    assert output.step == 30 and run.data.tags["rnnexp.model_id"] == output.model_id
    logged = client.get_logged_model(output.model_id)
    assert str(logged.status).endswith("READY")
    assert logged.source_run_id == run.info.run_id
    files = {f.path for f in client.list_logged_model_artifacts(output.model_id)}
    assert {"MLmodel", "input_example.json", "pyfunc_model.py"} <= files
    # no pickle: the model is code plus the run's npz + json
    mlmodel = (Path(logged.artifact_location.removeprefix("file://")) / "MLmodel").read_text()
    assert "loader_module: mlflow.pyfunc.loaders.code_model" in mlmodel
    assert "pkl" not in " ".join(files)
    # loaded by MLflow alone, in a fresh process that knows the store only by its URI
    for model_uri in (f"models:/{output.model_id}",):  # (the registry's URIs: the next test)
        r = subprocess.run([sys.executable, "-c", PREDICT, model_uri], cwd=tmp,
                           env=env(MLFLOW_TRACKING_URI=uri), capture_output=True, text=True,
                           timeout=120)  # fmt: skip
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout.splitlines()[-1])
        assert out["inputs"] == ["prime", "length", "temperature", "seed"]
        primed, bare = out["texts"]
        assert primed.startswith("aebuu") and len(primed) == 35 and len(bare) == 13
        # the text rnnexp-sample writes with the same prime, length, temperature and seed
        same = sample_cmd(run.info.run_id, "--prime", "aebuu", "--length", "30",
                          "--temperature", "0.5", "--seed", "3", cwd=tmp)  # fmt: skip
        assert same.stdout.rstrip("\n") == primed


def test_the_commands_read_models_uris(registered):
    tmp, uri, run = registered
    a = sample_cmd("models:/elman_rnn/1", "--length", "40", "--seed", "2", cwd=tmp)
    b = sample_cmd(run.info.run_id, "--length", "40", "--seed", "2", cwd=tmp)
    assert a.returncode == 0 and a.stdout == b.stdout, a.stderr
    page = inspect_cmd("models:/elman_rnn/1", "--out", "m.html", cwd=tmp)
    assert page.returncode == 0, page.stderr  # the logging run's validation text
    assert "elman" in (tmp / "m.html").read_text()
    for source, message in [
        ("models:/elman_rnn/9", "Model Version (name=elman_rnn, version=9) not found"),
        ("models:/nope@best", "Registered Model with name=nope not found"),
        ("models:/a/b/c", "is not a model URI"),
    ]:
        bad = sample_cmd(source, cwd=tmp)
        assert bad.returncode == 2 and message in bad.stderr and len(bad.stderr.splitlines()) == 1
    assert not (tmp / "mlflow.db").exists()  # MLflow's default store, never made here


@pytest.mark.slow
def test_mlflow_serves_the_model(registered):
    """`mlflow models serve -m models:/<id> --env-manager local` answers POST /invocations."""
    tmp, uri, run = registered
    port = free_port()
    model_uri = f"models:/{run.data.tags['rnnexp.model_id']}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
         "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
        # the venv's commands on PATH, as for a user who activated it (serve runs uvicorn)
        cwd=tmp, env=env(MLFLOW_TRACKING_URI=uri, PATH=f"{Path(sys.executable).parent}:"
                         f"{os.environ['PATH']}"), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        started = answers(f"http://127.0.0.1:{port}/ping", proc, 120)
        assert started, "did not answer" if proc.poll() is None else proc.stderr.read()
        body = {"dataframe_records": [{"prime": "aebuu", "length": 25, "temperature": 0.5,
                                       "seed": 3}]}  # fmt: skip
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
        (prediction,) = answer["predictions"]
        assert prediction["text"].startswith("aebuu") and len(prediction["text"]) == 30
        print(json.dumps(body), "->", json.dumps(answer))  # what the closing note quotes
        # hostile requests: each a 400 at once, one line, no stack trace
        for row, message in [
            ({"length": 10**9}, "the request asks for 1,000,000,000 characters of length"),
            ({"length": 5, "prime": "a" * 10**7}, "10,000,000 characters of prime in all"),
            ({"length": 5, "prime": "\u00e9"}, "character '\u00e9' is not in the model's"),
            ({"length": 5, "temperature": -1}, "row 0: sample.temperature must be a number"),
        ]:
            status, answer = _post(port, {"dataframe_records": [row]})
            assert status == 400 and message in answer["message"], answer
            assert "stack_trace" not in answer
        # a body nested 100,000 deep: MLflow's own parser reads it (json.loads, before the
        # model sees a request) and answers an error at once, with its traceback (no
        # extension point lets rnnexp bound it); the server goes on serving
        deep = b'{"dataframe_records": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", deep,
                                         {"Content-Type": "application/json"})  # fmt: skip
        started = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        assert refused.value.code in (400, 500) and time.monotonic() - started < 10
        assert _post(port, body)[0] == 200
        # the largest request allowed is done in seconds, and SIGTERM stops the server
        started = time.monotonic()
        assert _post(port, {"dataframe_records": [{"length": 10_000}]})[0] == 200
        assert time.monotonic() - started < 30
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 30  # uvicorn too: no request keeps it from stopping
    while subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "the server did not stop on SIGTERM"
        time.sleep(0.2)


def _post(port: int, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations",
                                     json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_a_request_to_the_served_model_is_checked_and_bounded():
    """What a served model takes (tracking/serving.py), in-process: defaults for columns left
    out, a NaN refused rather than taken for the default, every request bounded."""
    import pandas as pd

    from rnnexp.framework.tracking.serving import BadRequest, requests

    assert requests(pd.DataFrame({"length": [10]})) == [
        {"prime": "", "length": 10, "temperature": 1.0, "seed": 0}
    ]
    for frame, message in [
        ({"length": [5], "temperature": [float("nan")]}, "row 0: temperature is missing or NaN"),
        ({"length": [5, 4], "seed": [1, None]}, "row 1: seed is missing or NaN"),
        ({"length": [-1]}, "row 0: length must be a whole number >= 0, got -1"),
        ({"length": [2.5]}, "row 0: length must be a whole number >= 0, got 2.5"),
        ({"length": [6000, 6000]}, "asks for 12,000 characters of length in all; this server "
                                   "takes at most 10,000 (RNNEXP_SERVE_MAX_LENGTH)"),
        ({"length": [0] * 300}, "the request has 300 rows; this server takes at most 100 "
                                "(RNNEXP_SERVE_MAX_ROWS)"),
    ]:  # fmt: skip
        with pytest.raises(BadRequest, match=re.escape(message)):
            requests(pd.DataFrame(frame))
