"""A password in a tracking URI is never printed or written: not in the run's params, tags or
name, not in Hydra's files or the log, not in an error message."""

from pathlib import Path

from helpers import TINY, rnnexp, runs

from rnnexp.framework.settings import redact

PASSWORD = "pa55-W0rd-xyzzy"


def leaks(folder: Path) -> list[str]:
    """Files under `folder` whose bytes contain the password."""
    return [
        str(p) for p in folder.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()
    ]


REFUSED = (
    "holds a password, which would be recorded: give the URI without it, and the password in "
    "MLFLOW_TRACKING_PASSWORD (an MLflow server), or PGPASSWORD or ~/.pgpass (PostgreSQL)"
)


def test_uris_are_shown_with_the_password_masked():
    assert (
        redact(f"postgresql://me:{PASSWORD}@db:5432/mlflow") == "postgresql://me:***@db:5432/mlflow"
    )
    assert redact("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    uri = f"postgresql://me@db:5432/mlflow?sslmode=disable&password={PASSWORD}"
    assert redact(uri) == "postgresql://me@db:5432/mlflow?sslmode=disable&password=***"
    # shown as given but for the secret: a sqlite file's slashes kept (not a host named tmp)
    assert (
        redact(f"sqlite:////tmp/x.db?pwd={PASSWORD}&mode=ro")
        == "sqlite:////tmp/x.db?pwd=***&mode=ro"
    )


def test_a_password_in_a_uri_is_refused_wherever_it_comes_from(tmp_path):
    """The command line, $MLFLOW_TRACKING_URI, a preset, an interpolation: one line, the URI
    masked, nothing written (Hydra's files, a folder, the store)."""
    uri = f"postgresql://me:{PASSWORD}@127.0.0.1:9/db"
    presets = tmp_path / "mine" / "experiment"
    presets.mkdir(parents=True)
    (presets / "pw.yaml").write_text(f"# @package _global_\ntracking:\n  uri: {uri}\n")
    for args, extra in (
        ([f"tracking.uri={uri}"], {}),
        ([f"tracking.uri=http://me:{PASSWORD}@127.0.0.1:9"], {}),
        ([f"tracking.uri=sqlite:///x.db?token={PASSWORD}"], {}),
        (["-m", "seed=0,1"], {"MLFLOW_TRACKING_URI": uri}),
        (["tracking.uri=${oc.env:MY_URI}"], {"MY_URI": uri}),
        (["--config-dir", "mine", "experiment=pw"], {}),
    ):
        r = rnnexp(*args, *TINY, fresh=True, cwd=tmp_path, **extra)
        assert r.returncode == 2 and PASSWORD not in r.stdout + r.stderr, args
        assert r.stderr.startswith("rnnexp: error: tracking.uri ") and REFUSED in r.stderr, args
    # printed as composed, the interpolation unresolved
    r = rnnexp(
        "--cfg", "job", "tracking.uri=${oc.env:MY_URI}", fresh=True, cwd=tmp_path, MY_URI=uri
    )
    assert r.returncode == 0 and "${oc.env:MY_URI}" in r.stdout and PASSWORD not in r.stdout
    assert leaks(tmp_path) == [str(presets / "pw.yaml")]  # the file that holds it, alone
    assert not (tmp_path / "outputs").exists()


def test_a_run_whose_password_is_in_the_environment_records_it_nowhere(tmp_path, mlflow_server):
    env = {"MLFLOW_TRACKING_USERNAME": "me", "MLFLOW_TRACKING_PASSWORD": PASSWORD}
    r = rnnexp(*TINY, f"tracking.uri={mlflow_server}", "tracking.experiment=secret",
               cwd=tmp_path, **env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert PASSWORD not in r.stdout + r.stderr
    (run,) = runs(mlflow_server, "secret")
    recorded = [run.info.run_name, *run.data.params.values(), *run.data.tags.values()]
    assert not [v for v in recorded if PASSWORD in v]
    assert not leaks(tmp_path)  # .hydra/*.yaml, rnnexp.log, checkpoint, model
