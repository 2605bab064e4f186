"""Sweeps as Ray tasks (hydra/launcher=ray): against a real `ray start --head` on 127.0.0.1, and
a local Ray started by the sweep itself; a cluster with a local sqlite store is refused.

Ray runs with token authentication and its own temp folder, and HOME points at an empty folder
that must stay empty: nothing of Ray's lands in the home folder.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from helpers import TINY, rnnexp, runs
from ray_head import start_ray_head
from test_runs import check_sweep


@pytest.fixture
def ray_env(tmp_path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {
        "HOME": str(home),
        "RAY_AUTH_MODE": "token",  # Ray's coming default, with the token in the environment
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        "RAY_USAGE_STATS_ENABLED": "0",
        "MPLCONFIGDIR": str(tmp_path / "mpl"),  # matplotlib's font cache: not Ray's, not here
        "XDG_CACHE_HOME": str(tmp_path / "cache"),  # rnnexp's n-gram baselines: not Ray's
    }


@pytest.fixture
def ray_head(ray_env):
    with start_ray_head(ray_env) as address:
        yield address


def check_outputs(launch_dir: Path, n: int) -> None:
    """Every job wrote its folder (config, checkpoint) under the launch dir's outputs/,
    not in the Ray worker's working directory."""
    (sweep,) = (launch_dir / "outputs" / "multiruns").iterdir()
    for i in range(n):
        assert (sweep / str(i) / ".hydra" / "config.yaml").is_file()
        assert (sweep / str(i) / "checkpoint.npz").is_file()


SWEEP = ["corpus=elman", "model.hidden_size=16,24,32,40", *TINY]


@pytest.mark.slow
def test_a_sweep_on_a_ray_cluster_logs_to_a_server(tmp_path, ray_env, ray_head, mlflow_server):
    start = time.monotonic()
    r = rnnexp("-m", "hydra/launcher=ray", f"hydra.launcher.ray.init.address={ray_head}",
               *SWEEP, f"tracking.uri={mlflow_server}", "tracking.experiment=ray-cluster",
               cwd=tmp_path, timeout=600, **ray_env)  # fmt: skip
    print(f"4 jobs on the Ray head: {time.monotonic() - start:.1f} s")
    assert r.returncode == 0, r.stderr
    check_sweep(mlflow_server, 4, {"model.hidden_size"}, experiment="ray-cluster")
    check_outputs(tmp_path, 4)
    assert "BLAS threads: 1" in r.stdout + r.stderr  # the one core Ray reserved per job
    assert list(Path(ray_env["HOME"]).iterdir()) == []


@pytest.fixture
def ray_temp():
    """Ray's temp folder, short: its unix sockets live under it (108-byte path limit)."""
    temp = tempfile.mkdtemp(prefix="rnnexp-ray-")
    yield temp
    shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_a_sweep_on_a_local_ray(tmp_path, ray_env, ray_temp):
    r = rnnexp("-m", "hydra/launcher=ray", f"+hydra.launcher.ray.init._temp_dir={ray_temp}", *SWEEP,
               cwd=tmp_path, timeout=600, **ray_env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    check_sweep(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}", 4, {"model.hidden_size"})
    check_outputs(tmp_path, 4)
    assert list(Path(ray_env["HOME"]).iterdir()) == []


@pytest.mark.parametrize("how", ["override", "RAY_ADDRESS"])
def test_a_ray_cluster_with_a_local_store_is_refused(tmp_path, how):
    address = "10.1.2.3:6379"  # never contacted: the check comes first
    if how == "override":
        r = rnnexp("-m", "hydra/launcher=ray", f"hydra.launcher.ray.init.address={address}",
                   "seed=0,1", fresh=True, cwd=tmp_path)  # fmt: skip
    else:
        r = rnnexp(
            "-m", "hydra/launcher=ray", "seed=0,1", fresh=True, cwd=tmp_path, RAY_ADDRESS=address
        )
    assert r.returncode == 2
    assert r.stderr.startswith(f"rnnexp: error: hydra/launcher=ray on the cluster at {address}")
    assert "tracking.uri=http://HOST:PORT" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "outputs").exists()


def test_a_job_without_the_sweep_file_finds_its_parent_on_the_server(tmp_path):
    """A job on another machine has no sweep folder: it finds the parent by the folder's tag."""
    from rnnexp.errors import RnnexpError
    from rnnexp.framework.sweep import job_ids
    from rnnexp.framework.tracking import MlflowRun, Store

    uri = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(uri)
    exp = store.open_experiment("rnnexp")
    sweep_dir = tmp_path / "elsewhere" / "outputs" / "multiruns" / "x"  # never created
    other = MlflowRun.start(store, exp, "sweep other", {"rnnexp.sweep_dir": str(tmp_path / "o")})
    tags = {"rnnexp.sweep_dir": str(sweep_dir), "rnnexp.swept": "model,seed"}
    parent = MlflowRun.start(store, exp, "sweep", tags)
    assert job_ids(store, "rnnexp", sweep_dir) == (exp, parent.run_id, ["model", "seed"])
    assert parent.run_id != other.run_id
    parent.finish("FINISHED", None)  # a finished sweep is no job's parent
    with pytest.raises(RnnexpError, match="no running sweep"):
        job_ids(store, "rnnexp", sweep_dir)
    assert len(runs(uri)) == 2


@pytest.mark.slow
def test_a_pruned_search_on_a_local_ray(tmp_path, ray_env, ray_temp):
    """search=optuna on Ray: two trials at a time as Ray tasks (the search's threads, Ray
    started once before them), each reporting to the sweep's study; asha prunes."""
    r = rnnexp("search=optuna", "hydra/launcher=ray", "hydra.sweeper.n_trials=4",
               "hydra.sweeper.n_jobs=2", f"+hydra.launcher.ray.init._temp_dir={ray_temp}",
               "corpus=elman", *TINY, cwd=tmp_path, timeout=600,
               **ray_env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    import optuna

    (sweep,) = (tmp_path / "outputs" / "multiruns").iterdir()
    study = optuna.load_study(study_name="rnnexp", storage=f"sqlite:///{sweep / 'study.db'}")
    assert len(study.trials) == 4
    assert {t.state.name for t in study.trials} <= {"COMPLETE", "PRUNED"}
    children = [x for x in runs(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
                if "mlflow.parentRunId" in x.data.tags]  # fmt: skip
    assert len(children) == 4 and {c.info.status for c in children} == {"FINISHED"}
    assert list(Path(ray_env["HOME"]).iterdir()) == []
