"""A password in a tracking URI is never printed or written: not in the run's params, tags or
name, not in Hydra's files or the log, not in an error message."""

from pathlib import Path

from helpers import TINY, rnnexp, runs

from rnnexp.framework.store import move_credentials, redact

PASSWORD = "pa55-W0rd-xyzzy"


def leaks(folder: Path) -> list[str]:
    """Files under `folder` whose bytes contain the password."""
    return [
        str(p) for p in folder.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()
    ]


def test_uris_are_shown_with_the_password_masked():
    assert (
        redact(f"postgresql://me:{PASSWORD}@db:5432/mlflow") == "postgresql://me:***@db:5432/mlflow"
    )
    assert redact("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    clean, env = move_credentials(f"https://me:{PASSWORD}@mlflow.example:443")
    assert clean == "https://mlflow.example:443"
    assert env == {"MLFLOW_TRACKING_USERNAME": "me", "MLFLOW_TRACKING_PASSWORD": PASSWORD}
    clean, env = move_credentials(f"postgresql+psycopg://me:{PASSWORD}@db/mlflow")
    assert clean == "postgresql+psycopg://me@db/mlflow" and env == {"PGPASSWORD": PASSWORD}


def test_a_password_as_a_query_parameter_is_masked_and_moved_too(tmp_path):
    uri = f"postgresql://me@db:5432/mlflow?sslmode=disable&password={PASSWORD}"
    assert redact(uri) == "postgresql://me@db:5432/mlflow?sslmode=disable&password=***"
    assert move_credentials(uri) == ("postgresql://me@db:5432/mlflow?sslmode=disable",
                                     {"PGPASSWORD": PASSWORD})  # fmt: skip
    # a store that does not answer: the error names it, less the password, and nothing
    # (Hydra's files, a folder, the store) is written
    r = rnnexp(*TINY, f"tracking.uri=postgresql://me@127.0.0.1:9/db?password={PASSWORD}",
               cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2 and "cannot reach the postgresql tracking store" in r.stderr
    assert PASSWORD not in r.stdout + r.stderr and not leaks(tmp_path)
    assert rnnexp(*TINY, f"tracking.uri=sqlite:///x.db?token={PASSWORD}",
                  cwd=tmp_path).stderr.count(PASSWORD) == 0  # fmt: skip


def test_a_password_from_a_config_file_or_an_interpolation_is_refused(tmp_path):
    """Only the command line's and $MLFLOW_TRACKING_URI's passwords can be moved out before
    Hydra records the config: one from a preset or ${oc.env:...} is refused, written nowhere."""
    uri = f"postgresql://me:{PASSWORD}@127.0.0.1:9/db"
    presets = tmp_path / "mine" / "experiment"
    presets.mkdir(parents=True)
    (presets / "pw.yaml").write_text(f"# @package _global_\ntracking:\n  uri: {uri}\n")
    for args in (["tracking.uri=${oc.env:MY_URI}"], ["--config-dir", "mine", "experiment=pw"]):
        r = rnnexp(*args, *TINY, fresh=True, cwd=tmp_path, MY_URI=uri)
        assert r.returncode == 2 and PASSWORD not in r.stdout + r.stderr
        assert r.stderr.startswith(
            "rnnexp: error: tracking.uri postgresql://me:***@127.0.0.1:9/db"
            " holds a password from a config file or an interpolation"
        )
    # printed as composed, the interpolation unresolved
    r = rnnexp(
        "--cfg", "job", "tracking.uri=${oc.env:MY_URI}", fresh=True, cwd=tmp_path, MY_URI=uri
    )
    assert r.returncode == 0 and "${oc.env:MY_URI}" in r.stdout and PASSWORD not in r.stdout
    assert leaks(tmp_path) == [str(presets / "pw.yaml")]  # the file that holds it, alone
    assert not (tmp_path / "outputs").exists()


def test_a_refused_server_uri_is_reported_without_its_password(tmp_path):
    r = rnnexp(*TINY, f"tracking.uri=http://me:{PASSWORD}@127.0.0.1:9", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("rnnexp: error: cannot reach the MLflow tracking server http://")
    assert PASSWORD not in r.stdout + r.stderr
    assert not leaks(tmp_path)


def test_a_run_with_a_password_in_its_uri_records_it_nowhere(tmp_path, mlflow_server):
    host = mlflow_server.removeprefix("http://")
    uri = f"http://me:{PASSWORD}@{host}"
    r = rnnexp(*TINY, f"tracking.uri={uri}", "tracking.experiment=secret", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert PASSWORD not in r.stdout + r.stderr
    (run,) = runs(mlflow_server, "secret")
    recorded = [run.info.run_name, *run.data.params.values(), *run.data.tags.values()]
    assert not [v for v in recorded if PASSWORD in v]
    assert run.data.params["tracking.uri"] == mlflow_server  # the URI, less the password
    assert not leaks(tmp_path)  # .hydra/*.yaml, rnnexp.log, checkpoint, model

    sweep = rnnexp("-m", *TINY, "seed=0,1", cwd=tmp_path, MLFLOW_TRACKING_URI=uri)
    assert sweep.returncode == 0, sweep.stderr
    assert PASSWORD not in sweep.stdout + sweep.stderr
    assert not leaks(tmp_path)
